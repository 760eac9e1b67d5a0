/* vbhostd refuses to start when the sasldb it would read (sasldb_path of
 * SASL_CONF_DIR/vbhostd.conf) is open to other users: the file holds
 * password equivalents. The message names the file and the chmod to run.
 * 0600, and 0640 with vbhostd's own group, start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_testsupport.h"

#define REALM "LAB.TEST"

static char *dir;
static char conf[300], sock[300], sasldb[400];

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("sasldb-mode");
    if (dir == NULL)
        return -1;
    char sasl[300], text[1200];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    snprintf(sasldb, sizeof sasldb, "%s/sasldb", sasl);
    static const char *const users[] = { "alice:sasldb-mode-Pw-3", NULL };
    if (vb_ts_sasl_setup(sasl, "vbhostd", REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    snprintf(sock, sizeof sock, "%s/h.sock", dir);
    snprintf(conf, sizeof conf, "%s/h.conf", dir);
    snprintf(text, sizeof text,
             "listen_unix = \"%s\"\nstate_dir = \"%s/state\"\nauth_unix = [\"sasl\"]\n"
             "sasl_conf_dir = \"%s\"\nsasl_realm = \"" REALM "\"\n",
             sock, dir, sasl);
    return vb_ts_write_file(conf, text, 0600);
}

/* vbhostd with the sasldb at mode: refused with the chmod in the message,
 * or started (its socket answers) and stopped again. */
static void start_with_mode(mode_t mode, int want_refused)
{
    assert_int_equal(chmod(sasldb, mode), 0);
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf, "--foreground", NULL };
    if (want_refused) {
        char *out = NULL;
        int rc = vb_ts_run(argv, NULL, NULL, &out, vb_ts_scaled_ms(10000));
        char want[500];
        snprintf(want, sizeof want, "chmod 0600 %s", sasldb);
        if (rc <= 0 || out == NULL || strstr(out, want) == NULL)
            fail_msg("mode %04o: exit %d, want non-zero with '%s' in: %s", (unsigned)mode, rc,
                     want, out ? out : "(nothing)");
        free(out);
        assert_int_equal(access(sock, F_OK), -1); /* it never listened */
        return;
    }
    char log[400];
    snprintf(log, sizeof log, "%s/h-%04o.log", dir, (unsigned)mode);
    pid_t pid = vb_ts_spawn(argv, NULL, log);
    assert_true(pid > 0);
    if (vb_ts_wait_unix_socket(sock, vb_ts_scaled_ms(10000)) != 0) {
        char *text = vb_ts_read_file(log, NULL);
        fail_msg("mode %04o: vbhostd did not start: %s", (unsigned)mode, text ? text : "");
    }
    assert_int_equal(vb_ts_check_exit("vbhostd", vb_ts_stop(pid, 5000), log), 0);
    unlink(sock);
}

static void test_open_sasldb_is_refused(void **state)
{
    (void)state;
    start_with_mode(0644, 1); /* saslpasswd2's habit is 0640 with a shared group */
    start_with_mode(0604, 1);
    start_with_mode(0660, 1); /* group may write: add users, change passwords */
    if (geteuid() == 0) {
        /* 0640 with a group that is not vbhostd's: its members read every password */
        gid_t other = getegid() == 1 ? 2 : 1;
        assert_int_equal(chown(sasldb, (uid_t)-1, other), 0);
        start_with_mode(0640, 1);
        assert_int_equal(chown(sasldb, (uid_t)-1, getegid()), 0);
    }
    start_with_mode(0600, 0);
}

static void test_own_group_may_read(void **state)
{
    (void)state;
    /* the file's group is vbhostd's own (the test runs vbhostd as itself) */
    assert_int_equal(chown(sasldb, (uid_t)-1, getegid()), 0);
    start_with_mode(0640, 0);
    start_with_mode(0600, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_sasldb_is_refused),
        cmocka_unit_test(test_own_group_may_read),
    };
    return cmocka_run_group_tests_name("sasldb-mode", tests, group_setup, vb_ts_group_teardown);
}
