/* vbhostd as it ships: started without --foreground, the way etc/vbhostd.conf
 * and vbhostd(8) start it without systemd. It detaches, is ready when the
 * command returns, issues tokens, logs to its log_file (or syslog, never the
 * terminal it left), stops on SIGTERM and re-reads its log settings on SIGHUP.
 * And as etc/systemd/vbhostd.service starts it: --foreground, Type=notify,
 * with the sockets of vbhostd.socket / vbhostd-tcp.socket / vbhostd-tls.socket
 * passed to it.
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
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vb_net.h"
#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vb_testsupport_wire.h"
#include "vb_tls.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "svc-Detached-pw-7"
#define START_MS 10000

static char *dir;
static char conf[300], sock[300], hlog[300], pidfile[300];
static char bsock[300], blog[300], bstate[300];

/* ---- the detached daemon --------------------------------------------------- */

static void write_conf_extra(const char *path, const char *listen, const char *log_file,
                             const char *level, const char *extra)
{
    char text[2000], sasl[300], logline[400] = "";
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    if (log_file)
        snprintf(logline, sizeof logline, "log_file = \"%s\"\n", log_file);
    snprintf(text, sizeof text,
             "listen_unix = \"%s\"\nstate_dir = \"%s/state\"\n"
             "auth_unix = [\"token\", \"sasl\"]\nsasl_conf_dir = \"%s\"\n"
             "sasl_realm = \"" REALM "\"\nlog_level = \"%s\"\n%s%s",
             listen, dir, sasl, level, logline, extra);
    assert_int_equal(vb_ts_write_file(path, text, 0600), 0);
}

static void write_conf(const char *path, const char *listen, const char *log_file,
                       const char *level)
{
    write_conf_extra(path, listen, log_file, level, "");
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
    vb_ts_note_secret(PASSWORD);
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0)
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

/* ---- under systemd: socket activation and Type=notify -------------------- */

/* systemd's side of socket activation, without systemd: bind each listener of
 * argv[1] ("unix:PATH" (mode 0600), "unixMODE:PATH" or "tcp:ADDR:PORT",
 * comma-separated) as a .socket unit
 * would, make them fds 3, 4, ..., set LISTEN_PID (own pid), LISTEN_FDS and
 * LISTEN_FDNAMES, and exec argv[2..] in this same process. */
static const char activation_launcher[] =
    "import os, socket, sys\n"
    "socks = []\n"
    "for spec in sys.argv[1].split(','):\n"
    "    kind, addr = spec.split(':', 1)\n"
    "    if kind.startswith('unix'):\n"
    "        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
    "        s.bind(addr)\n"
    "        os.chmod(addr, int(kind[4:] or '600', 8))\n"
    "    else:\n"
    "        host, port = addr.rsplit(':', 1)\n"
    "        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "        s.bind((host, int(port)))\n"
    "    s.listen(16)\n"
    "    socks.append(s)\n"
    "high = [os.dup(s.fileno()) + 100 for s in socks]\n"
    "for s, h in zip(socks, high):\n"
    "    os.dup2(s.fileno(), h)\n"
    "    s.close()\n"
    "for i, h in enumerate(high):\n"
    "    os.dup2(h, 3 + i)\n"
    "    os.close(h)\n"
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(high)),\n"
    "                  LISTEN_FDNAMES=':'.join('test-' + s.split(':')[0] for s in sys.argv[1].split(',')))\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n";

/* The NOTIFY_SOCKET a service manager owns: a datagram socket at path. */
static int notify_socket(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    assert_true(strlen(path) < sizeof sun.sun_path);
    memcpy(sun.sun_path, path, strlen(path) + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
    return fd;
}

/* 0 once a notification carrying the line `want` arrives within timeout_ms. */
static int wait_notify(int fd, const char *want, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (poll(&p, 1, timeout_ms) > 0) {
        char msg[1024];
        ssize_t n = recv(fd, msg, sizeof msg - 1, 0);
        if (n < 0)
            return -1;
        msg[n] = '\0';
        for (char *line = strtok(msg, "\n"); line; line = strtok(NULL, "\n"))
            if (strcmp(line, want) == 0)
                return 0;
    }
    return -1;
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* `vbhostd --foreground` as vbhostd.service starts it from vbhostd.socket and
 * vbhostd-tcp.socket: it serves the sockets it was passed (the very socket
 * files, never unlinked and bound anew), tells the manager READY=1 once it
 * serves, logs a client in as its config says, brackets a SIGHUP with
 * RELOADING=1 and READY=1, and on SIGTERM says STOPPING=1, exits 0 and
 * leaves the sockets to systemd. */
static void test_socket_activated_with_notify(void **state)
{
    (void)state;
    char notify_path[400], listeners[700], extra[200], notify_env[450], tcp[64];
    int port = vb_ts_free_tcp_port();
    assert_true(port > 0);
    snprintf(tcp, sizeof tcp, "127.0.0.1:%d", port);
    snprintf(extra, sizeof extra, "listen_tcp = \"%s\"\n", tcp);
    write_conf_extra(conf, sock, hlog, "debug", extra);
    snprintf(notify_path, sizeof notify_path, "%s/notify", dir);
    int nfd = notify_socket(notify_path);
    snprintf(notify_env, sizeof notify_env, "NOTIFY_SOCKET=%s", notify_path);
    snprintf(listeners, sizeof listeners, "unix:%s,tcp:%s", sock, tcp);
    unlink(sock);
    char *env[] = { notify_env, NULL };
    char *argv[] = { "python3", "-I", "-S", "-c", (char *)activation_launcher, listeners,
                     VB_BUILD_DIR "/vbhostd", "-f", conf, "--foreground", NULL };
    pid_t pid = vb_ts_spawn(argv, env, NULL);
    assert_true(pid > 0);
    if (wait_notify(nfd, "READY=1", vb_ts_scaled_ms(START_MS)) < 0)
        fail_msg("no READY=1 from the socket-activated vbhostd (see %s)", hlog);
    ino_t passed = inode_of(sock);
    assert_true(passed != 0);
    assert_true(vb_ts_count_in_file(hlog, "(sockets from systemd)") >= 1);

    /* a client is served on the passed unix socket and logs in as auth_unix
     * says; the passed TCP socket answers too */
    vb_ts_form person = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &person };
    char *identity = NULL;
    int64_t expires = 0;
    vb_error err;
    if (vb_login(uri(), &auth, 0, &identity, &expires, &err) < 0)
        fail_msg("login through the passed socket: %s", err.message);
    assert_non_null(strstr(identity, "alice")); /* (by the token an earlier test got, or SASL) */
    free(identity);
    assert_int_equal(vb_ts_wait_tcp("127.0.0.1", port, vb_ts_scaled_ms(2000)), 0);
    assert_true(inode_of(sock) == passed); /* not unlinked and bound anew */

    /* a reload is bracketed for the manager: RELOADING=1, then READY=1 */
    assert_int_equal(kill(pid, SIGHUP), 0);
    assert_int_equal(wait_notify(nfd, "RELOADING=1", vb_ts_scaled_ms(5000)), 0);
    assert_int_equal(wait_notify(nfd, "READY=1", vb_ts_scaled_ms(5000)), 0);

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_notify(nfd, "STOPPING=1", vb_ts_scaled_ms(2000)), 0);
    int status = -1;
    assert_int_equal(vb_ts_wait_pid_exit(pid, vb_ts_scaled_ms(2000), &status), 0);
    assert_int_equal(status, 0);
    assert_true(inode_of(sock) == passed); /* systemd's socket stays for the next start */
    close(nfd);
    unlink(notify_path);
    unlink(sock);
}

/* A .socket unit that disagrees with vbhostd.conf: every passed socket that
 * is not a configured listener refuses the start, naming the socket, instead
 * of opening a listener nobody configured. Also a TCP socket on a wider
 * address (0.0.0.0) than listen_tcp (127.0.0.1) on the same port, and the
 * configured unix socket opened wider (0666) than listen_unix_mode (0600). */
static void test_socket_activation_refuses_unconfigured_socket(void **state)
{
    (void)state;
    char other[400], extra[200], tcp[64], wide[64];
    int port = vb_ts_free_tcp_port();
    assert_true(port > 0);
    snprintf(tcp, sizeof tcp, "127.0.0.1:%d", port);
    snprintf(wide, sizeof wide, "0.0.0.0:%d", port);
    snprintf(extra, sizeof extra, "listen_tcp = \"%s\"\n", tcp);
    write_conf_extra(conf, sock, hlog, "info", extra);
    snprintf(other, sizeof other, "%s/other.sock", dir);
    char listeners[3][900];
    snprintf(listeners[0], sizeof listeners[0], "unix:%s,unix:%s", sock, other);
    snprintf(listeners[1], sizeof listeners[1], "unix:%s,tcp:%s", sock, wide);
    snprintf(listeners[2], sizeof listeners[2], "unix666:%s", sock);
    const char *named[3] = { other, wide, "mode 0666, wider than listen_unix_mode 0600" };
    const char *why[3] = { "configures no such listener", "configures no such listener",
                           "SocketMode=" };
    for (int i = 0; i < 3; i++) {
        unlink(sock);
        unlink(other);
        char *argv[] = { "python3", "-I", "-S", "-c", (char *)activation_launcher, listeners[i],
                         VB_BUILD_DIR "/vbhostd", "-f", conf, "--foreground", NULL };
        char *out = NULL;
        int rc = vb_ts_run(argv, NULL, NULL, &out, START_MS);
        print_message("%s\n", out ? out : "");
        assert_int_equal(rc, 1);
        assert_non_null(out);
        assert_non_null(strstr(out, named[i]));
        assert_non_null(strstr(out, why[i]));
        assert_null(strstr(out, "ready"));
        free(out);
    }
    unlink(sock);
    unlink(other);
}

/* vbhostd-tls.socket: the TLS listener's socket passed by systemd. It is
 * matched to listen_tls and served with TLS (a client completes the
 * handshake on it and is answered); a passed socket on a wider address than
 * listen_tls refuses the start, naming both. The unit as shipped listens
 * where etc/vbhostd.conf's listen_tls example does. */
static char *unit_value(const char *path, const char *prefix)
{
    char *text = vb_ts_read_file(path, NULL);
    char *line = text ? strstr(text, prefix) : NULL;
    char *value = NULL;
    if (line) {
        line += strlen(prefix);
        value = strndup(line, strcspn(line, "\"\n"));
    }
    free(text);
    return value;
}

static void test_socket_activated_tls(void **state)
{
    (void)state;
    char *shipped = unit_value(VB_SRC_DIR "/etc/systemd/vbhostd-tls.socket", "\nListenStream=");
    char *example = unit_value(VB_SRC_DIR "/etc/vbhostd.conf", "\n#listen_tls = \"");
    assert_non_null(shipped);
    assert_non_null(example);
    assert_string_equal(shipped, example);
    free(shipped);
    free(example);

    vb_ts_pki ca, server;
    char pki[400], extra[1600], tls[64], wide[64], listeners[700];
    assert_int_equal(vb_ts_pki_ca(dir, "ca", "/O=vbroker tests/CN=service CA", &ca), 0);
    assert_int_equal(vb_ts_pki_issue(dir, "server", &ca, "/O=vbroker tests/CN=vbhostd",
                                     "IP:127.0.0.1", -3600, 86400, 2, &server), 0);
    assert_int_equal(vb_ts_pki_dir(pki, dir, "client-pki", &ca, NULL), 0);
    int port = vb_ts_free_tcp_port();
    assert_true(port > 0);
    snprintf(tls, sizeof tls, "127.0.0.1:%d", port);
    snprintf(wide, sizeof wide, "0.0.0.0:%d", port);
    snprintf(extra, sizeof extra,
             "listen_tls = \"%s\"\nauth_tls = [\"sasl\"]\ncert_file = \"%s\"\n"
             "key_file = \"%s\"\nca_file = \"%s\"\n",
             tls, server.cert, server.key, ca.cert);
    write_conf_extra(conf, sock, hlog, "debug", extra);

    /* a wider socket than listen_tls: refused, naming both */
    snprintf(listeners, sizeof listeners, "tcp:%s", wide);
    char *argv_wide[] = { "python3", "-I", "-S", "-c", (char *)activation_launcher, listeners,
                          VB_BUILD_DIR "/vbhostd", "-f", conf, "--foreground", NULL };
    char *out = NULL;
    unlink(sock);
    assert_int_equal(vb_ts_run(argv_wide, NULL, NULL, &out, START_MS), 1);
    assert_non_null(out);
    assert_non_null(strstr(out, wide));
    assert_non_null(strstr(out, "configures no such listener"));
    assert_non_null(strstr(out, tls));
    free(out);

    /* exactly listen_tls: served with TLS */
    snprintf(listeners, sizeof listeners, "unix:%s,tcp:%s", sock, tls);
    unlink(sock);
    char *argv[] = { "python3", "-I", "-S", "-c", (char *)activation_launcher, listeners,
                     VB_BUILD_DIR "/vbhostd", "-f", conf, "--foreground", NULL };
    int before = vb_ts_count_in_file(hlog, "(sockets from systemd)");
    pid_t pid = vb_ts_spawn(argv, NULL, NULL);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_for_log(hlog, "(sockets from systemd)", before + 1,
                                        vb_ts_scaled_ms(START_MS)), 0);
    vb_error err;
    int fd = vb_net_connect_tcp("127.0.0.1", port, 5000, &err);
    assert_true(fd >= 0);
    vb_tls *t = NULL;
    if (vb_tls_client_connect(fd, "127.0.0.1", port, pki, 0, vb_ts_scaled_ms(5000), &t, &err) < 0)
        fail_msg("TLS on the passed socket: %s", err.message);
    /* an AUTH_LIST answered over it */
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, 1,
                          VB_HOST_PROC_AUTH_LIST, VB_STATUS_OK, 0 };
    size_t len, got;
    uint8_t *frame = vb_ts_wire_encode(&hdr, NULL, NULL, &len), buf[512];
    assert_non_null(frame);
    assert_int_equal(vb_tls_write_all(t, frame, len, 5000, &err), 0);
    vb_frame_free(frame, len);
    assert_int_equal(vb_tls_read(t, buf, sizeof buf, vb_ts_scaled_ms(5000), &got, &err), 0);
    assert_true(got > 4);
    vb_tls_free(t);
    close(fd);
    assert_int_equal(vb_ts_check_exit("vbhostd (tls socket)", vb_ts_stop(pid, 5000), hlog), 0);
    unlink(sock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detached_daemon_token_login_sigterm_restart),
        cmocka_unit_test(test_detached_daemon_leaves_the_terminal),
        cmocka_unit_test(test_detached_start_failure_is_reported),
        cmocka_unit_test(test_sighup_reopens_log_and_rereads_level),
        cmocka_unit_test(test_socket_activated_with_notify),
        cmocka_unit_test(test_socket_activation_refuses_unconfigured_socket),
        cmocka_unit_test(test_socket_activated_tls),
    };
    return cmocka_run_group_tests_name("service", tests, group_setup, vb_ts_group_teardown);
}
