/* proto/vb_paths: one rule per per-user path. Absolute XDG variables win,
 * relative ones are ignored (XDG spec), HOME must be absolute, else the
 * account's home; the socket falls back to a fixed name under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_paths.h"

static const char *const vars[] = { "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME",
                                    "XDG_RUNTIME_DIR", "VBROKER_SOCKET" };
#define NVARS (sizeof vars / sizeof vars[0])
static char *saved[NVARS];

static int save_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVARS; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    return 0;
}

static int restore_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVARS; i++) {
        if (saved[i])
            setenv(vars[i], saved[i], 1);
        else
            unsetenv(vars[i]);
        free(saved[i]);
        saved[i] = NULL;
    }
    return 0;
}

static void expect(char *got, const char *want)
{
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* the account's home as vb_path_home may use it, NULL when it has none */
static const char *account_home(void)
{
    struct passwd *pw = getpwuid(getuid());
    struct stat st;
    if (!pw || !pw->pw_dir || pw->pw_dir[0] != '/' || stat(pw->pw_dir, &st) != 0 ||
        !S_ISDIR(st.st_mode))
        return NULL;
    return pw->pw_dir;
}

static void test_xdg_wins_when_absolute(void **state)
{
    (void)state;
    setenv("HOME", "/home/fred", 1);
    setenv("XDG_CONFIG_HOME", "/xdg/config", 1);
    setenv("XDG_STATE_HOME", "/xdg/state", 1);
    expect(vb_path_home(), "/home/fred");
    expect(vb_path_config_home(), "/xdg/config");
    expect(vb_path_config_dir(), "/xdg/config/vbroker");
    expect(vb_path_config_file("auth.conf"), "/xdg/config/vbroker/auth.conf");
    expect(vb_path_config_file("pki"), "/xdg/config/vbroker/pki");
    expect(vb_path_state_dir(), "/xdg/state/vbroker");
}

static void test_relative_xdg_is_ignored(void **state)
{
    (void)state;
    setenv("HOME", "/home/fred", 1);
    setenv("XDG_CONFIG_HOME", "relative/config", 1);
    setenv("XDG_STATE_HOME", "", 1);
    expect(vb_path_config_home(), "/home/fred/.config");
    expect(vb_path_config_file("known_hosts"), "/home/fred/.config/vbroker/known_hosts");
    expect(vb_path_state_dir(), "/home/fred/.local/state/vbroker");
}

static void test_home_must_be_absolute(void **state)
{
    (void)state;
    const char *acct = account_home();
    char want[512];
    snprintf(want, sizeof want, "%s/.local/state/vbroker", acct ? acct : "");
    const char *bad[] = { NULL, "", "relative" };
    for (size_t i = 0; i < 3; i++) {
        if (bad[i])
            setenv("HOME", bad[i], 1);
        else
            unsetenv("HOME");
        /* never a relative or shared place: the account's home, or none */
        expect(vb_path_home(), acct);
        expect(vb_path_state_dir(), acct ? want : NULL);
    }
}

static void test_broker_socket(void **state)
{
    (void)state;
    char buf[256], want[64];
    setenv("VBROKER_SOCKET", "/x/sock", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    vb_path_broker_socket(buf, sizeof buf);
    assert_string_equal(buf, "/x/sock");
    unsetenv("VBROKER_SOCKET");
    vb_path_broker_socket(buf, sizeof buf);
    assert_string_equal(buf, "/run/user/1000/vbroker/sock");
    setenv("XDG_RUNTIME_DIR", "run/relative", 1);
    vb_path_broker_socket(buf, sizeof buf);
    snprintf(want, sizeof want, "/tmp/vbroker-%u/sock", (unsigned)getuid());
    assert_string_equal(buf, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_xdg_wins_when_absolute, save_env, restore_env),
        cmocka_unit_test_setup_teardown(test_relative_xdg_is_ignored, save_env, restore_env),
        cmocka_unit_test_setup_teardown(test_home_must_be_absolute, save_env, restore_env),
        cmocka_unit_test_setup_teardown(test_broker_socket, save_env, restore_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
