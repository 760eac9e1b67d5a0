/* vbhostd as it ships: started without --foreground, the way etc/vbhostd.conf,
 * vbhostd(8) and the systemd unit start it. It detaches, is ready when the
 * command returns, issues tokens, logs to its log_file (or syslog, never the
 * terminal it left), stops on SIGTERM and re-reads its log settings on SIGHUP.
 * The test process is a child subreaper, so the detached daemon becomes its
 * child and is waited for and cleaned up by pid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "svc-Detached-pw-7"
#define START_MS 10000

static char *dir;
static char conf[300], sock[300], hlog[300], pidfile[300];
static char bsock[300], blog[300], bstate[300];

/* ---- the detached daemon --------------------------------------------------- */

static void write_conf(const char *path, const char *listen, const char *log_file,
                       const char *level)
{
    char text[1500], sasl[300], logline[400] = "";
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    if (log_file)
        snprintf(logline, sizeof logline, "log_file = \"%s\"\n", log_file);
    snprintf(text, sizeof text,
             "listen_unix = \"%s\"\nstate_dir = \"%s/state\"\n"
             "auth_unix = [\"token\", \"sasl\"]\nsasl_conf_dir = \"%s\"\n"
             "sasl_realm = \"" REALM "\"\nlog_level = \"%s\"\n%s",
             listen, dir, sasl, level, logline);
    assert_int_equal(vb_ts_write_file(path, text, 0600), 0);
}

/* Run `vbhostd -f CONFIG --pidfile FILE` (no --foreground) to completion:
 * its exit status, and what it printed in *out. */
static int run_detached(const char *config, char **out)
{
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", (char *)config, "--pidfile", pidfile, NULL };
    return vb_ts_run(argv, NULL, NULL, out, START_MS);
}

static pid_t read_pidfile(void)
{
    char *text = vb_ts_read_file(pidfile, NULL);
    pid_t pid = text ? (pid_t)atol(text) : -1;
    free(text);
    return pid;
}

/* Start it detached; the command returns only once it is ready, so the socket
 * answers at once, and what it logs afterwards is not in the command's output. */
static pid_t start_detached(void)
{
    char *out = NULL;
    int rc = run_detached(conf, &out);
    if (rc != 0)
        fail_msg("vbhostd (detached) exited %d: %s", rc, out ? out : "");
    assert_true(out == NULL || strstr(out, "ready") == NULL);
    free(out);
    pid_t pid = read_pidfile();
    assert_true(pid > 1);
    assert_int_equal(vb_ts_adopt(pid, "vbhostd"), 0);
    assert_int_equal(vb_ts_wait_unix_socket(sock, 1), 0); /* ready means ready */
    return pid;
}

static int stop_within(pid_t pid, int timeout_ms)
{
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = -1;
    if (vb_ts_wait_pid_exit(pid, timeout_ms, &status) != 0)
        return -1;
    return status;
}

/* ---- the broker in front of it ------------------------------------------- */

static const char *uri(void)
{
    static char buf[400];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s", sock);
    return buf;
}

static int vbctl_list_non_interactive(void)
{
    char env_sock[400];
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s", bsock);
    char *env[] = { env_sock, "VBROKER_NO_AUTOSTART=1", NULL };
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", (char *)uri(), "--non-interactive", "list", NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, env, NULL, &out, 30000);
    free(out);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    if (vb_ts_adopt_orphans() < 0)
        return -1;
    dir = vb_ts_tmpdir("service");
    char sasl[300];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    mkdir(sasl, 0700);
    vb_ts_note_secret(PASSWORD);
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_sasl_setup(sasl, "vbhostd", REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    snprintf(conf, sizeof conf, "%s/vbhostd.conf", dir);
    snprintf(sock, sizeof sock, "%s/vbhostd.sock", dir);
    snprintf(hlog, sizeof hlog, "%s/vbhostd.log", dir);
    snprintf(pidfile, sizeof pidfile, "%s/vbhostd.pid", dir);
    snprintf(bsock, sizeof bsock, "%s/broker-run/sock", dir);
    snprintf(blog, sizeof blog, "%s/broker.log", dir);
    snprintf(bstate, sizeof bstate, "%s/broker-state", dir);
    /* no idle host connection in the broker: every run logs in anew, so the
     * restarted daemon is really asked for the token */
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", bsock, "--state-dir", bstate,
                     "--log-level", "debug", "--upstream-idle", "0", NULL };
    if (vb_ts_spawn(argv, NULL, blog) < 0 || vb_ts_wait_unix_socket(bsock, START_MS) < 0)
        return -1;
    setenv("VBROKER_SOCKET", bsock, 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    return 0;
}

/* ---- tests --------------------------------------------------------------- */

/* The whole story an operator meets: start, log in once (vbhostd issues a
 * token from the sqlite store it opened after detaching), scripts reuse the
 * token, SIGTERM stops it within 2 s, a restart keeps serving that token. */
static void test_detached_daemon_token_login_sigterm_restart(void **state)
{
    (void)state;
    write_conf(conf, sock, hlog, "debug");
    pid_t pid = start_detached();

    vb_ts_form person = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &person };
    char *identity = NULL;
    int64_t expires = 0;
    vb_error err;
    if (vb_login(uri(), &auth, 0, &identity, &expires, &err) < 0)
        fail_msg("login to the detached vbhostd: %s", err.message);
    free(identity);
    assert_int_equal(person.calls, 1);
    assert_int_equal(vbctl_list_non_interactive(), 0);
    assert_true(vb_ts_count_in_file(hlog, "(token ") >= 1);

    assert_int_equal(stop_within(pid, vb_ts_scaled_ms(2000)), 0);
    assert_int_equal(access(pidfile, F_OK), -1); /* removed at a clean stop */
    assert_int_equal(access(sock, F_OK), -1);

    int token_logins = vb_ts_count_in_file(hlog, "(token ");
    pid = start_detached();
    assert_int_equal(vbctl_list_non_interactive(), 0);
    assert_true(vb_ts_count_in_file(hlog, "(token ") > token_logins);
    assert_int_equal(person.calls, 1); /* the restart asked nobody */
    assert_int_equal(stop_within(pid, vb_ts_scaled_ms(2000)), 0);
}

/* Without log_file a detached daemon logs to syslog: nothing of it stays on
 * the terminal (here: the pipe) it was started from. */
static void test_detached_daemon_leaves_the_terminal(void **state)
{
    (void)state;
    write_conf(conf, sock, NULL, "debug");
    pid_t pid = start_detached();
    char fd_path[64], target[PATH_MAX];
    for (int fd = 0; fd <= 2; fd++) {
        snprintf(fd_path, sizeof fd_path, "/proc/%d/fd/%d", (int)pid, fd);
        ssize_t n = readlink(fd_path, target, sizeof target - 1);
        assert_true(n > 0);
        target[n] = '\0';
        assert_string_equal(target, "/dev/null");
    }
    assert_int_equal(stop_within(pid, vb_ts_scaled_ms(2000)), 0);
}

/* A start that fails after detaching is reported by the command that
 * started it: exit 1 and the reason, not a silent 0. */
static void test_detached_start_failure_is_reported(void **state)
{
    (void)state;
    char bad[300], bad_sock[400];
    snprintf(bad, sizeof bad, "%s/bad.conf", dir);
    snprintf(bad_sock, sizeof bad_sock, "%s/no-such-dir/vbhostd.sock", dir);
    write_conf(bad, bad_sock, hlog, "info");
    char *out = NULL;
    int rc = run_detached(bad, &out);
    assert_int_equal(rc, 1);
    assert_non_null(out);
    assert_non_null(strstr(out, "cannot listen on"));
    assert_non_null(strstr(out, "no-such-dir"));
    free(out);
}

/* SIGHUP: the log file is reopened (logrotate moved it) and log_level is
 * re-read; the daemon keeps serving. */
static void test_sighup_reopens_log_and_rereads_level(void **state)
{
    (void)state;
    write_conf(conf, sock, hlog, "info");
    pid_t pid = start_detached();
    char rotated[400];
    snprintf(rotated, sizeof rotated, "%s.1", hlog);
    assert_int_equal(rename(hlog, rotated), 0);
    write_conf(conf, sock, hlog, "debug");
    assert_int_equal(kill(pid, SIGHUP), 0);
    assert_int_equal(vb_ts_wait_for_log(hlog, "SIGHUP: log reopened", 1, vb_ts_scaled_ms(5000)), 0);
    /* debug lines now appear (an accepted connection is logged at debug) */
    assert_int_equal(vbctl_list_non_interactive(), 0);
    assert_int_equal(vb_ts_wait_for_log(hlog, "debug:", 1, vb_ts_scaled_ms(5000)), 0);
    assert_int_equal(stop_within(pid, vb_ts_scaled_ms(2000)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detached_daemon_token_login_sigterm_restart),
        cmocka_unit_test(test_detached_daemon_leaves_the_terminal),
        cmocka_unit_test(test_detached_start_failure_is_reported),
        cmocka_unit_test(test_sighup_reopens_log_and_rereads_level),
    };
    return cmocka_run_group_tests_name("service", tests, group_setup, vb_ts_group_teardown);
}
