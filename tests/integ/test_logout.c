/* Logout ends access: the broker's shared host connections and the answers
 * it holds for that host go with the token (issue 15). A broker with the
 * default --upstream-idle keeps idle host connections, as a user's does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vb_testsupport.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "s3cret-Pw-4-tests"

static char *dir;
static vb_ts_hostd h1;
static vb_ts_broker broker;

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("logout");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    /* the broker keeps its defaults (upstream idle time 300 s, secret cache):
     * what a user runs */
    if (vb_ts_hostd_start_sasl(&h1, dir, "h1", 0, REALM,
                               "auth_unix = [\"token\", \"sasl\"]\nmax_anonymous_clients = 200\n") < 0 ||
        vb_ts_broker_start(&broker, dir, "b", NULL) < 0)
        return -1;
    vb_ts_broker_use(&broker);
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

static char *uri_of(const vb_ts_hostd *h)
{
    static char buf[400];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s", h->sock);
    return buf;
}

static int vbctl(char *const argv[], const char *input, char **out)
{
    return vb_ts_broker_run(&broker, argv, input, out, 30000);
}

static int list_non_interactive(void)
{
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", uri_of(&h1), "--non-interactive", "list", NULL };
    return vbctl(argv, NULL, NULL);
}

static void login_and_list(void)
{
    char *login[] = { VB_BUILD_DIR "/vbctl", "login", uri_of(&h1), NULL };
    char *out = NULL;
    assert_int_equal(vbctl(login, "alice\n" PASSWORD "\n", &out), 0);
    assert_non_null(strstr(out, "Logged in to"));
    free(out);
    assert_int_equal(list_non_interactive(), 0);
}

static size_t host_connections(void)
{
    vb_broker_status st;
    vb_error err;
    if (vb_broker_get_status(&st, &err) < 0)
        fail_msg("status: %s", err.message);
    size_t n = st.nhosts;
    vb_broker_status_clear(&st);
    return n;
}

static void logout_then_77(char *what)
{
    login_and_list();
    assert_true(host_connections() >= 1); /* kept idle by the broker */
    int calls = vb_ts_count_in_file(h1.log, "opened test:");
    int ended = vb_ts_count_in_file(h1.log, "revoked; disconnecting");
    char *logout[] = { VB_BUILD_DIR "/vbctl", "logout", what, NULL };
    char *out = NULL;
    assert_int_equal(vbctl(logout, NULL, &out), 0);
    assert_non_null(strstr(out, "revoked on the host"));
    free(out);
    assert_int_equal(list_non_interactive(), 77);
    /* and nothing was opened on the old connection, which is gone */
    assert_int_equal(vb_ts_count_in_file(h1.log, "opened test:"), calls);
    assert_int_equal(host_connections(), 0);
    /* the host itself ended the broker's session of that token (owner revoke) */
    assert_true(vb_ts_count_in_file(h1.log, "revoked; disconnecting") > ended);
}

static void test_logout_uri_ends_access(void **state)
{
    (void)state;
    logout_then_77(uri_of(&h1));
}

static void test_logout_all_ends_access(void **state)
{
    (void)state;
    logout_then_77("--all");
}

static void test_status_lists_host_connections(void **state)
{
    (void)state;
    login_and_list();
    char *status[] = { VB_BUILD_DIR "/vbctl", "status", NULL };
    char *out = NULL;
    assert_int_equal(vbctl(status, NULL, &out), 0);
    assert_non_null(strstr(out, "Host connections: 1"));
    assert_non_null(strstr(out, h1.sock));
    assert_non_null(strstr(out, "token"));
    free(out);
    char *logout[] = { VB_BUILD_DIR "/vbctl", "logout", "--all", NULL };
    assert_int_equal(vbctl(logout, NULL, NULL), 0);
    assert_int_equal(vbctl(status, NULL, &out), 0);
    assert_non_null(strstr(out, "Host connections: 0"));
    free(out);
}

/* The full id of the newest valid token, from vbhostd --list-tokens. */
static int newest_token(char *id, size_t len)
{
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", h1.conf, "--list-tokens", NULL };
    char *out = NULL;
    int found = 0;
    if (vb_ts_run(argv, NULL, NULL, &out, 10000) != 0) {
        free(out);
        return -1;
    }
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, " valid") && sscanf(line, "%63s", id) == 1 && strlen(id) < len)
            found = 1;
    free(out);
    return found ? 0 : -1;
}

/* An admin's `vbhostd --revoke-token` (another process, writing tokens.db)
 * ends the running daemon's sessions of that token within a bounded time,
 * by its timer and at once on SIGHUP. */
static void test_admin_revoke_ends_sessions(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        login_and_list(); /* the broker keeps its token session to h1 */
        char id[64];
        assert_int_equal(newest_token(id, sizeof id), 0);
        int ended = vb_ts_count_in_file(h1.log, "revoked; disconnecting");
        char *revoke[] = { VB_BUILD_DIR "/vbhostd", "-f", h1.conf, "--revoke-token", id, NULL };
        char *out = NULL;
        assert_int_equal(vb_ts_run(revoke, NULL, NULL, &out, 10000), 0);
        free(out);
        if (round == 1) /* SIGHUP: now, not at the next tick */
            kill(h1.pid, SIGHUP);
        assert_int_equal(vb_ts_wait_for_log(h1.log, "revoked; disconnecting", ended + 1,
                                            vb_ts_scaled_ms(round == 1 ? 1500 : 6000)),
                         0);
        char *logout[] = { VB_BUILD_DIR "/vbctl", "logout", "--all", NULL };
        assert_int_equal(vbctl(logout, NULL, NULL), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logout_uri_ends_access),
        cmocka_unit_test(test_logout_all_ends_access),
        cmocka_unit_test(test_status_lists_host_connections),
        cmocka_unit_test(test_admin_revoke_ends_sessions),
    };
    return cmocka_run_group_tests_name("logout", tests, group_setup, group_teardown);
}
