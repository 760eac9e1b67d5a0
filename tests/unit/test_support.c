/* The test-support library itself: real processes, a real sasldb, a real KDC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sasl/sasl.h>

#include "vb_testsupport.h"

/* Gone, or a zombie waiting for init to reap it (for grandchildren we cannot
 * waitpid). */
static int pid_dead(void *arg)
{
    pid_t pid = *(pid_t *)arg;
    if (kill(pid, 0) != 0)
        return errno == ESRCH;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 1;
    char state = '?';
    int n = fscanf(f, "%*d (%*[^)]) %c", &state);
    fclose(f);
    return n == 1 && (state == 'Z' || state == 'X');
}

static int never(void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static int after_calls(void *arg)
{
    return ++*(int *)arg >= 3;
}

/* ---- processes ---------------------------------------------------------- */

static void test_spawn_and_stop(void **state)
{
    (void)state;
    char *argv[] = { "sleep", "100", NULL };   /* found through PATH */
    pid_t pid = vb_ts_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, 0), 0);
    assert_int_equal(getpgid(pid), pid);   /* its own process group */
    assert_true(vb_ts_rss_kib(pid) > 0);
    assert_int_equal(vb_ts_pid_count(), 1);

    int64_t t0 = vb_ts_now_ms();
    assert_int_equal(vb_ts_stop(pid, 5000), 128 + SIGTERM);
    assert_true(vb_ts_now_ms() - t0 < 5000);   /* SIGTERM sufficed */
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(vb_ts_pid_count(), 0);
    assert_int_equal(vb_ts_stop(pid, 100), -1);   /* no longer ours */
}

static void test_stop_escalates_to_sigkill(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("trap");
    assert_non_null(dir);
    char ready[256];
    snprintf(ready, sizeof ready, "%s/ready", dir);
    /* Ignores SIGTERM; says so once the trap is installed. */
    char script[512];
    snprintf(script, sizeof script, "trap '' TERM; : > %s; while :; do sleep 1; done", ready);
    char *argv[] = { "/bin/sh", "-c", script, NULL };
    pid_t pid = vb_ts_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_file(ready, 5000), 0);
    int64_t t0 = vb_ts_now_ms();
    assert_int_equal(vb_ts_stop(pid, 200), 128 + SIGKILL);
    int64_t took = vb_ts_now_ms() - t0;
    assert_true(took >= 190 && took < 3000);
    assert_int_equal(kill(pid, 0), -1);
}

static void test_stop_sweeps_process_group(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("group");
    assert_non_null(dir);
    char pidfile[256], script[1024];
    snprintf(pidfile, sizeof pidfile, "%s/child.pid", dir);
    /* The shell dies of SIGTERM; its background sleep would be left behind. */
    snprintf(script, sizeof script, "sleep 100 & echo $! > %s.tmp; mv %s.tmp %s; wait",
             pidfile, pidfile, pidfile);
    char *argv[] = { "/bin/sh", "-c", script, NULL };
    pid_t pid = vb_ts_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_file(pidfile, 5000), 0);
    char *text = vb_ts_read_file(pidfile, NULL);
    assert_non_null(text);
    pid_t grandchild = (pid_t)atoi(text);
    free(text);
    assert_true(grandchild > 0);
    assert_int_equal(getpgid(grandchild), pid);

    assert_int_equal(vb_ts_stop(pid, 5000), 128 + SIGTERM);
    assert_int_equal(vb_ts_wait_until(pid_dead, &grandchild, 5000), 0);
}

static void test_spawn_env_log_and_exit_status(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("spawn");
    assert_non_null(dir);
    char log[256];
    snprintf(log, sizeof log, "%s/out.log", dir);
    setenv("VBTS_DROP", "present", 1);
    char *argv[] = { "/bin/sh", "-c",
                     "echo val=$VBTS_X drop=${VBTS_DROP:-gone}; echo oops >&2; exit 7", NULL };
    char *env[] = { "VBTS_X=hello", "VBTS_DROP", NULL };
    pid_t pid = vb_ts_spawn(argv, env, log);
    assert_true(pid > 0);
    int status = -1;
    assert_int_equal(vb_ts_wait_pid_exit(pid, 5000, &status), 0);
    assert_int_equal(status, 7);
    unsetenv("VBTS_DROP");

    char *text = vb_ts_read_file(log, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "val=hello drop=gone\n"));
    assert_non_null(strstr(text, "oops\n"));
    free(text);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char *bad[] = { "/nonexistent/vbts-program", NULL };
    assert_int_equal(vb_ts_spawn(bad, NULL, NULL), -1);
    char *missing[] = { "vbts-no-such-command", NULL };
    assert_int_equal(vb_ts_spawn(missing, NULL, NULL), -1);
    assert_int_equal(vb_ts_pid_count(), 0);
}

static void test_cleanup_kills_leftovers(void **state)
{
    (void)state;
    char *argv[] = { "sleep", "100", NULL };
    pid_t a = vb_ts_spawn(argv, NULL, NULL);
    pid_t b = vb_ts_spawn(argv, NULL, NULL);
    assert_true(a > 0 && b > 0);
    char *dir = vb_ts_tmpdir("cleanup");
    assert_non_null(dir);
    char copy[256];
    snprintf(copy, sizeof copy, "%s", dir);
    struct stat st;
    assert_int_equal(stat(copy, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    vb_ts_cleanup();
    assert_int_equal(kill(a, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(kill(b, 0), -1);
    assert_int_equal(vb_ts_pid_count(), 0);
    assert_int_equal(stat(copy, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_run_with_stdin(void **state)
{
    (void)state;
    char *argv[] = { "/bin/sh", "-c", "read x; echo got:$x", NULL };
    char *out = NULL;
    assert_int_equal(vb_ts_run(argv, NULL, "hello world\n", &out, 5000), 0);
    assert_non_null(out);
    assert_string_equal(out, "got:hello world\n");
    free(out);

    char *fail[] = { "/bin/sh", "-c", "echo to-stderr >&2; exit 3", NULL };
    assert_int_equal(vb_ts_run(fail, NULL, NULL, &out, 5000), 3);
    assert_string_equal(out, "to-stderr\n");
    free(out);

    /* A child that never reads a large stdin must not hang or kill us (SIGPIPE). */
    size_t big = 1 << 20;
    char *blob = malloc(big + 1);
    assert_non_null(blob);
    memset(blob, 'x', big);
    blob[big] = '\0';
    char *noread[] = { "/bin/true", NULL };
    assert_int_equal(vb_ts_run(noread, NULL, blob, NULL, 5000), 0);
    /* And one that reads it all back. */
    char *cat[] = { "/bin/cat", NULL };
    assert_int_equal(vb_ts_run(cat, NULL, blob, &out, 10000), 0);
    assert_int_equal(strlen(out), big);
    free(out);
    free(blob);
}

static void test_run_timeout_kills_group(void **state)
{
    (void)state;
    char *argv[] = { "/bin/sh", "-c", "sleep 100 & echo bg=$!; wait; echo never", NULL };
    char *out = NULL;
    int64_t t0 = vb_ts_now_ms();
    assert_int_equal(vb_ts_run(argv, NULL, NULL, &out, 300), -1);
    int64_t took = vb_ts_now_ms() - t0;
    assert_true(took >= 290 && took < 3000);
    assert_non_null(out);
    assert_null(strstr(out, "never"));
    const char *bg = strstr(out, "bg=");
    assert_non_null(bg);
    pid_t grandchild = (pid_t)atoi(bg + 3);
    free(out);
    assert_true(grandchild > 0);
    assert_int_equal(vb_ts_wait_until(pid_dead, &grandchild, 5000), 0);
    assert_int_equal(vb_ts_pid_count(), 0);
}

/* ---- waiting ------------------------------------------------------------ */

static void test_wait_until(void **state)
{
    (void)state;
    int calls = 0;
    int64_t t0 = vb_ts_now_ms();
    assert_int_equal(vb_ts_wait_until(never, &calls, 200), -1);
    int64_t took = vb_ts_now_ms() - t0;
    assert_true(took >= 200);
    assert_true(took < 200 + 500);
    assert_true(calls >= 10);   /* it polled, rather than slept once */

    int n = 0;
    t0 = vb_ts_now_ms();
    assert_int_equal(vb_ts_wait_until(after_calls, &n, 5000), 0);
    assert_int_equal(n, 3);
    assert_true(vb_ts_now_ms() - t0 < 1000);
}

static void test_wait_file_and_pid(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("wait");
    assert_non_null(dir);
    char path[256], script[1024];
    snprintf(path, sizeof path, "%s/late", dir);
    assert_int_equal(vb_ts_wait_file(path, 20), -1);
    snprintf(script, sizeof script, "echo hi > %s", path);
    char *argv[] = { "/bin/sh", "-c", script, NULL };
    pid_t pid = vb_ts_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_file(path, 5000), 0);
    int status = -1;
    assert_int_equal(vb_ts_wait_pid_exit(pid, 5000, &status), 0);
    assert_int_equal(status, 0);
    assert_int_equal(vb_ts_wait_pid_exit(pid, 10, &status), -1);   /* already reaped */

    char *sleeper[] = { "sleep", "100", NULL };
    pid = vb_ts_spawn(sleeper, NULL, NULL);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_pid_exit(pid, 30, &status), -1);
    assert_int_equal(kill(pid, 0), 0);   /* a timeout leaves it running */
    assert_int_equal(vb_ts_stop(pid, 5000), 128 + SIGTERM);
}

static void test_free_port_and_tcp_wait(void **state)
{
    (void)state;
    int port = vb_ts_free_tcp_port();
    assert_true(port > 0 && port < 65536);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(vb_ts_wait_tcp("127.0.0.1", port, 20), -1);   /* nobody listens yet */
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(vb_ts_wait_tcp("127.0.0.1", port, 2000), 0);
    close(fd);
}

static void test_unix_socket_wait(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("unix");
    assert_non_null(dir);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", dir);
    assert_int_equal(vb_ts_wait_unix_socket(sa.sun_path, 20), -1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(vb_ts_wait_unix_socket(sa.sun_path, 2000), 0);
    close(fd);
}

static void test_rss(void **state)
{
    (void)state;
    assert_true(vb_ts_rss_kib(getpid()) > 0);
    char *argv[] = { "/bin/true", NULL };
    pid_t pid = vb_ts_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_pid_exit(pid, 5000, NULL), 0);
    assert_int_equal(vb_ts_rss_kib(pid), -1);   /* reaped: no /proc entry */
}

/* ---- SASL --------------------------------------------------------------- */

static void test_sasl_setup(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("sasl");
    assert_non_null(dir);
    const char *users[] = { "alice:s3cret pass", "bob:hunter2", NULL };
    char keytab[256];
    snprintf(keytab, sizeof keytab, "%s/none.keytab", dir);
    assert_int_equal(vb_ts_sasl_setup(dir, "vbtest", "LAB.TEST", "SCRAM-SHA-256 PLAIN",
                                      users, keytab), 0);

    char conf_path[256], db[256];
    snprintf(conf_path, sizeof conf_path, "%s/vbtest.conf", dir);
    snprintf(db, sizeof db, "%s/sasldb", dir);
    char *conf = vb_ts_read_file(conf_path, NULL);
    assert_non_null(conf);
    assert_non_null(strstr(conf, "mech_list: SCRAM-SHA-256 PLAIN\n"));
    assert_non_null(strstr(conf, "pwcheck_method: auxprop\n"));
    assert_non_null(strstr(conf, "auxprop_plugin: sasldb\n"));
    assert_non_null(strstr(conf, "keytab: "));
    free(conf);
    struct stat st;
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    char *list[] = { "/usr/sbin/sasldblistusers2", "-f", db, NULL };
    char *out = NULL;
    assert_int_equal(vb_ts_run(list, NULL, NULL, &out, 5000), 0);
    assert_non_null(strstr(out, "alice@LAB.TEST: userPassword"));
    assert_non_null(strstr(out, "bob@LAB.TEST: userPassword"));
    free(out);

    /* The library, pointed at the dir, checks those passwords. */
    assert_true(vb_ts_sasl_pin_plugins() > 0);
    assert_int_equal(sasl_set_path(SASL_PATH_TYPE_CONFIG, dir), SASL_OK);
    assert_int_equal(sasl_server_init(NULL, "vbtest"), SASL_OK);
    sasl_conn_t *conn = NULL;
    assert_int_equal(sasl_server_new("vbtest", "localhost", "LAB.TEST", NULL, NULL, NULL, 0, &conn),
                     SASL_OK);
    int ok = sasl_checkpass(conn, "alice", 5, "s3cret pass", 11);
    int bad = sasl_checkpass(conn, "alice", 5, "wrong", 5);
    int nouser = sasl_checkpass(conn, "carol", 5, "s3cret pass", 11);
    const char *mechs = NULL;
    int lm = sasl_listmech(conn, NULL, "", " ", "", &mechs, NULL, NULL);
    char mechs_copy[256] = "";
    if (lm == SASL_OK)
        snprintf(mechs_copy, sizeof mechs_copy, "%s", mechs);
    sasl_dispose(&conn);
    sasl_server_done();
    assert_int_equal(ok, SASL_OK);
    assert_int_equal(bad, SASL_BADAUTH);
    assert_int_equal(nouser, SASL_NOUSER);
    assert_int_equal(lm, SASL_OK);
    assert_non_null(strstr(mechs_copy, "SCRAM-SHA-256"));
    assert_non_null(strstr(mechs_copy, "PLAIN"));
    assert_null(strstr(mechs_copy, "DIGEST-MD5"));   /* mech_list came from our file */

    assert_int_equal(vb_ts_sasl_setup(dir, "vbtest", "LAB.TEST", "PLAIN",
                                      (const char *const[]){ "no-colon", NULL }, NULL), -1);
}

/* ---- KDC ---------------------------------------------------------------- */

static void test_kdc(void **state)
{
    (void)state;
    const char *users[] = { "alice:alice-pw", "bob:bob pw 2", NULL };
    const char *svcs[] = { "vbhostd/localhost", NULL };
    vb_ts_kdc kdc;
    int64_t t0 = vb_ts_now_ms();
    assert_int_equal(vb_ts_kdc_start(&kdc, "LAB.TEST", users, svcs), 0);
    int64_t setup_ms = vb_ts_now_ms() - t0;
    fprintf(stderr, "test_kdc: KDC on 127.0.0.1:%d ready in %lld ms\n", kdc.port, (long long)setup_ms);
    assert_true(setup_ms < 10000);
    assert_true(kdc.pid > 0);
    assert_int_equal(kill(kdc.pid, 0), 0);
    assert_int_equal(vb_ts_wait_tcp("127.0.0.1", kdc.port, 1000), 0);

    char **env = vb_ts_kdc_env_list(&kdc);
    char *out = NULL;

    /* start left a TGT for users[0] */
    char *klist[] = { "/usr/bin/klist", NULL };
    assert_int_equal(vb_ts_run(klist, env, NULL, &out, 5000), 0);
    assert_non_null(strstr(out, "Default principal: alice@LAB.TEST"));
    free(out);

    char *kdestroy[] = { "/usr/bin/kdestroy", NULL };
    assert_int_equal(vb_ts_run(kdestroy, env, NULL, NULL, 5000), 0);
    assert_int_not_equal(vb_ts_run(klist, env, NULL, NULL, 5000), 0);   /* no ccache */

    assert_int_equal(vb_ts_kinit(&kdc, "bob", "bob pw 2"), 0);
    assert_int_equal(vb_ts_run(klist, env, NULL, &out, 5000), 0);
    assert_non_null(strstr(out, "Default principal: bob@LAB.TEST"));
    assert_non_null(strstr(out, "krbtgt/LAB.TEST@LAB.TEST"));
    free(out);

    assert_int_equal(vb_ts_kinit(&kdc, "alice", "not-her-password"), -1);
    assert_int_equal(vb_ts_kinit(&kdc, "mallory", "x"), -1);
    assert_int_equal(vb_ts_kinit(&kdc, "alice", "alice-pw"), 0);
    assert_int_equal(vb_ts_run(klist, env, NULL, &out, 5000), 0);
    assert_non_null(strstr(out, "Default principal: alice@LAB.TEST"));
    free(out);

    /* The exported service key is the KDC's current one. */
    char *klist_k[] = { "/usr/bin/klist", "-k", kdc.keytab, NULL };
    assert_int_equal(vb_ts_run(klist_k, env, NULL, &out, 5000), 0);
    assert_non_null(strstr(out, "vbhostd/localhost@LAB.TEST"));
    free(out);
    char *kinit_k[] = { "/usr/bin/kinit", "-k", "-t", kdc.keytab, "vbhostd/localhost", NULL };
    assert_int_equal(vb_ts_run(kinit_k, env, NULL, &out, 5000), 0);
    free(out);
    vb_ts_env_free(env);

    vb_ts_kdc_env(&kdc, 1);
    assert_string_equal(getenv("KRB5_CONFIG"), kdc.krb5_conf);
    assert_string_not_equal(getenv("KRB5_CONFIG"), "/etc/krb5.conf");
    assert_string_equal(getenv("KRB5_KDC_PROFILE"), kdc.kdc_conf);
    assert_non_null(getenv("KRB5RCACHEDIR"));
    char expect[512];
    snprintf(expect, sizeof expect, "FILE:%s", kdc.keytab);
    assert_string_equal(getenv("KRB5_KTNAME"), expect);
    snprintf(expect, sizeof expect, "FILE:%s", kdc.ccache);
    assert_string_equal(getenv("KRB5CCNAME"), expect);
    vb_ts_kdc_env(&kdc, 0);
    assert_null(getenv("KRB5_KTNAME"));

    char *conf = vb_ts_read_file(kdc.krb5_conf, NULL);
    assert_non_null(conf);
    assert_non_null(strstr(conf, "dns_canonicalize_hostname = false"));
    free(conf);

    pid_t pid = kdc.pid;
    char dir[256];
    snprintf(dir, sizeof dir, "%s", kdc.dir);
    vb_ts_kdc_stop(&kdc);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);
    assert_null(kdc.dir);
    assert_int_equal(vb_ts_pid_count(), 0);
    fprintf(stderr, "test_kdc: whole test %lld ms\n", (long long)(vb_ts_now_ms() - t0));
}

static void test_kdc_without_users(void **state)
{
    (void)state;
    vb_ts_kdc kdc;
    assert_int_equal(vb_ts_kdc_start(&kdc, "OTHER.TEST", NULL, NULL), 0);
    assert_int_equal(vb_ts_kinit(&kdc, "nobody", "x"), -1);
    vb_ts_kdc_stop(&kdc);
    /* bad input fails cleanly, leaving nothing behind */
    const char *quote[] = { "eve:pass\"word", NULL };
    assert_int_equal(vb_ts_kdc_start(&kdc, "LAB.TEST", quote, NULL), -1);
    assert_int_equal(kdc.pid, 0);
    assert_int_equal(vb_ts_pid_count(), 0);
}

/* krb5kdc exits when its port is taken; start must retry on a fresh one,
 * and must not mistake the squatter's listener for the KDC. */
static void test_kdc_port_taken(void **state)
{
    (void)state;
    int port = vb_ts_free_tcp_port();
    assert_true(port > 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    char num[16];
    snprintf(num, sizeof num, "%d", port);
    setenv("VB_TS_KDC_PORT", num, 1);

    const char *users[] = { "carol:carol-pw", NULL };
    vb_ts_kdc kdc;
    int64_t t0 = vb_ts_now_ms();
    int rc = vb_ts_kdc_start(&kdc, "RETRY.TEST", users, NULL);
    int64_t took = vb_ts_now_ms() - t0;
    unsetenv("VB_TS_KDC_PORT");
    close(fd);
    assert_int_equal(rc, 0);
    assert_int_not_equal(kdc.port, port);
    assert_true(took < 5000);
    assert_int_equal(vb_ts_kinit(&kdc, "carol", "carol-pw"), 0);
    vb_ts_kdc_stop(&kdc);
    assert_int_equal(vb_ts_pid_count(), 0);
}

static int group_setup(void **state)
{
    (void)state;
    /* Nothing in this process may fall back on /etc/krb5.conf, even the SASL
     * GSSAPI plugin when it loads: point at an empty file of our own. */
    char *dir = vb_ts_tmpdir("krb5-none");
    if (dir == NULL)
        return -1;
    char path[256];
    snprintf(path, sizeof path, "%s/krb5.conf", dir);
    if (vb_ts_write_file(path, "", 0600) != 0)
        return -1;
    setenv("KRB5_CONFIG", path, 1);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_and_stop),
        cmocka_unit_test(test_stop_escalates_to_sigkill),
        cmocka_unit_test(test_stop_sweeps_process_group),
        cmocka_unit_test(test_spawn_env_log_and_exit_status),
        cmocka_unit_test(test_run_with_stdin),
        cmocka_unit_test(test_run_timeout_kills_group),
        cmocka_unit_test(test_wait_until),
        cmocka_unit_test(test_wait_file_and_pid),
        cmocka_unit_test(test_free_port_and_tcp_wait),
        cmocka_unit_test(test_unix_socket_wait),
        cmocka_unit_test(test_rss),
        cmocka_unit_test(test_sasl_setup),
        cmocka_unit_test(test_kdc),
        cmocka_unit_test(test_kdc_without_users),
        cmocka_unit_test(test_kdc_port_taken),
        cmocka_unit_test(test_cleanup_kills_leftovers),
    };
    return cmocka_run_group_tests_name("support", tests, group_setup, vb_ts_group_teardown);
}
