/* vbhostd's polkit authentication (issue 20) against a real polkitd on a
 * private system bus: a dbus-daemon with its own config (plus Debian's
 * /usr/share/dbus-1/system.d) and /usr/lib/polkit-1/polkitd with
 * DBUS_SYSTEM_BUS_ADDRESS, both started here and stopped by pid. The
 * action file goes to /usr/share/polkit-1/actions and the rules (the
 * shipped etc/polkit-1/60-vbroker.rules for a throwaway group, and
 * a rule of this test) to /etc/polkit-1/rules.d, under names of this run,
 * removed at the end with the throwaway users and group. Each client runs
 * in a forked child after setuid to one of those users, as a person would.
 * Needs root, dbus-daemon and polkitd (skipped otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vb_polkit.h"
#include "vb_remote.h"
#include "vb_testsupport.h"

#define POLKITD "/usr/lib/polkit-1/polkitd"
#define ACTIONS_DIR "/usr/share/polkit-1/actions"
#define RULES_DIR "/etc/polkit-1/rules.d"
#define MANAGE "org.vbroker.vbhostd.manage"
#define MONITOR "org.vbroker.vbhostd.monitor"
#define WAIT_MS 10000
#define AUTH_TIMEOUT_S 3

typedef vb_ts_account account;

static char *dir;
static char bus_addr[320], bus_env[360], sock[300], vbh_log[300], compat_sock[300], compat_log[300];
static char policy_path[300], rules_path[300], group_name[32];
static int group_created, have_peers;
static pid_t bus_pid, polkitd_pid, vbhostd_pid, compat_pid;
/* member: in the group of the shipped rule; watcher: granted monitor only;
 * outsider: refused by a rule; stranger: no rule (the action's auth_admin) */
static account member, watcher, outsider, stranger;

/* ---- throwaway accounts and the group ---------------------------------------- */

static int account_create(account *a, const char *role, const char *group)
{
    char name[32];
    snprintf(name, sizeof name, "vbpk%s%d", role, (int)getpid());
    return vb_ts_account_create(a, name, NULL, group);
}

/* ---- files polkitd reads -------------------------------------------------------- */

static int install_policy(void)
{
    char *text = vb_ts_read_file(VB_SRC_DIR "/etc/polkit-1/actions/org.vbroker.vbhostd.policy",
                                 NULL);
    int rc = text ? vb_ts_write_file(policy_path, text, 0644) : -1;
    free(text);
    return rc;
}

/* The shipped example rule with this run's group, and one rule of ours. */
static int install_rules(void)
{
    char *shipped = vb_ts_read_file(VB_SRC_DIR "/etc/polkit-1/60-vbroker.rules", NULL);
    char *at = shipped ? strstr(shipped, "isInGroup(\"vbroker\")") : NULL;
    if (!at) {
        free(shipped);
        return -1;
    }
    *at = '\0';
    size_t cap = strlen(shipped) + 4096;
    char *rules = malloc(cap);
    snprintf(rules, cap,
             "%sisInGroup(\"%s\")%s\n"
             "polkit.addRule(function(action, subject) {\n"
             "    if (subject.user == \"%s\" && action.id == \"" MONITOR "\")\n"
             "        return polkit.Result.YES;\n"
             "    if (subject.user == \"%s\" && action.id.indexOf(\"org.vbroker.\") == 0)\n"
             "        return polkit.Result.NO;\n"
             "});\n",
             shipped, group_name, at + strlen("isInGroup(\"vbroker\")"), watcher.name,
             outsider.name);
    int rc = vb_ts_write_file(rules_path, rules, 0644);
    free(rules);
    free(shipped);
    return rc;
}

/* ---- the private bus and polkitd ------------------------------------------------ */

static int start_bus(void)
{
    char conf_path[300], conf[2048], bus_sock[300];
    snprintf(bus_sock, sizeof bus_sock, "%s/bus.sock", dir);
    snprintf(bus_addr, sizeof bus_addr, "unix:path=%s", bus_sock);
    snprintf(bus_env, sizeof bus_env, "DBUS_SYSTEM_BUS_ADDRESS=%s", bus_addr);
    /* the system bus's own default policy, then the services' files */
    snprintf(conf, sizeof conf,
             "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
             " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
             "<busconfig>\n"
             "  <type>system</type>\n"
             "  <listen>%s</listen>\n"
             "  <auth>EXTERNAL</auth>\n"
             "  <policy context=\"default\">\n"
             "    <allow user=\"*\"/>\n"
             "    <deny own=\"*\"/>\n"
             "    <deny send_type=\"method_call\"/>\n"
             "    <allow send_type=\"signal\"/>\n"
             "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
             "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
             "    <allow receive_type=\"method_call\"/>\n"
             "    <allow receive_type=\"method_return\"/>\n"
             "    <allow receive_type=\"error\"/>\n"
             "    <allow receive_type=\"signal\"/>\n"
             "    <allow send_destination=\"org.freedesktop.DBus\" "
             "send_interface=\"org.freedesktop.DBus\"/>\n"
             "  </policy>\n"
             "  <includedir>/usr/share/dbus-1/system.d</includedir>\n"
             "</busconfig>\n",
             bus_addr);
    snprintf(conf_path, sizeof conf_path, "%s/bus.conf", dir);
    char log[300];
    snprintf(log, sizeof log, "%s/dbus.log", dir);
    if (vb_ts_write_file(conf_path, conf, 0644) < 0)
        return -1;
    char cfg_arg[320];
    snprintf(cfg_arg, sizeof cfg_arg, "--config-file=%s", conf_path);
    char *argv[] = { "dbus-daemon", cfg_arg, "--nofork", "--nopidfile", NULL };
    bus_pid = vb_ts_spawn(argv, NULL, log);
    return bus_pid > 0 ? vb_ts_wait_unix_socket(bus_sock, vb_ts_scaled_ms(WAIT_MS)) : -1;
}

typedef struct probe {
    int want_rc;            /* 0: polkitd answers about MANAGE; -1: it fails */
    const char *want_text;  /* ... with this in its message */
} probe;

/* Ask polkitd about this test process, as vbhostd would ask about a client. */
static int probe_once(void *arg)
{
    const probe *p = arg;
    vb_polkit_subject self = { getpid(), 0, getuid() };
    int verdict;
    vb_error err;
    if (vb_polkit_start_time(getpid(), &self.start_time, NULL) < 0)
        return 0;
    int rc = vb_polkit_check(&self, MANAGE, 2000, &verdict, &err);
    if (p->want_rc == 0)
        return rc == 0;
    return rc < 0 && strstr(err.message, p->want_text) != NULL;
}

static int start_polkitd(void)
{
    char log[300];
    snprintf(log, sizeof log, "%s/polkitd.log", dir);
    char *argv[] = { POLKITD, "--no-debug", NULL };
    char *env[] = { bus_env, NULL };
    polkitd_pid = vb_ts_spawn(argv, env, log);
    probe ready = { 0, NULL }; /* owns its name and knows our action */
    return polkitd_pid > 0 ? vb_ts_wait_until(probe_once, &ready, vb_ts_scaled_ms(WAIT_MS)) : -1;
}

/* A vbhostd on its own socket with this auth_unix line (and extra keys). */
static pid_t start_vbhostd(const char *tag, const char *auth_unix, const char *extra, char *sock_out,
                           size_t sock_len, char *log_out, size_t log_len)
{
    char conf_path[300], conf[1024], pidfile[300];
    snprintf(sock_out, sock_len, "%s/%s.sock", dir, tag);
    snprintf(log_out, log_len, "%s/%s.log", dir, tag);
    snprintf(pidfile, sizeof pidfile, "%s/%s.pid", dir, tag);
    snprintf(conf, sizeof conf,
             "listen_unix = \"%s\"\nlisten_unix_mode = \"0666\"\n"
             "auth_unix = %s\n"
             "auth_timeout = %d\n"
             "auth_attempts_per_connection = 3\n"
             "state_dir = \"%s/%s-state\"\n"
             "log_level = \"debug\"\n%s",
             sock_out, auth_unix, AUTH_TIMEOUT_S, dir, tag, extra);
    snprintf(conf_path, sizeof conf_path, "%s/%s.conf", dir, tag);
    if (vb_ts_write_file(conf_path, conf, 0600) < 0)
        return -1;
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf_path, "--foreground", "--pidfile",
                     pidfile, NULL };
    char *env[] = { bus_env, NULL };
    pid_t pid = vb_ts_spawn(argv, env, log_out);
    return pid > 0 && vb_ts_wait_unix_socket(sock_out, vb_ts_scaled_ms(WAIT_MS)) == 0 ? pid : -1;
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("polkit");
    if (!dir)
        return -1;
    chmod(dir, 0711); /* the throwaway users reach the socket, nothing else */
    if (geteuid() != 0 || access(POLKITD, X_OK) != 0 || access("/usr/bin/dbus-daemon", X_OK) != 0)
        return 0; /* each test skips */
    snprintf(group_name, sizeof group_name, "vbpkg%d", (int)getpid());
    snprintf(policy_path, sizeof policy_path, ACTIONS_DIR "/org.vbroker.vbhostd.vbpk%d.policy",
             (int)getpid());
    snprintf(rules_path, sizeof rules_path, RULES_DIR "/50-vbpk%d.rules", (int)getpid());
    if (vb_ts_group_create(group_name) < 0)
        return -1;
    group_created = 1;
    if (account_create(&member, "mem", group_name) < 0 || account_create(&watcher, "wat", NULL) < 0 ||
        account_create(&outsider, "out", NULL) < 0 || account_create(&stranger, "str", NULL) < 0)
        return -1;
    if (install_policy() < 0 || install_rules() < 0 || start_bus() < 0)
        return -1;
    setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_addr, 1); /* this process's probes */
    char compat_extra[128];
    /* polkit for new clients, peer for the watcher's clients from before polkit */
    snprintf(compat_extra, sizeof compat_extra, "peer_allowed_users = [\"%s\"]\n", watcher.name);
    if (start_polkitd() < 0 ||
        (vbhostd_pid = start_vbhostd("vbhostd", "[\"polkit\"]", "", sock, sizeof sock, vbh_log,
                                     sizeof vbh_log)) < 0 ||
        (compat_pid = start_vbhostd("compat", "[\"polkit\", \"peer\"]", compat_extra, compat_sock,
                                    sizeof compat_sock, compat_log, sizeof compat_log)) < 0)
        return -1;
    have_peers = 1;
    return 0;
}

static int group_teardown(void **state)
{
    if (vbhostd_pid > 0)
        vb_ts_stop(vbhostd_pid, 5000);
    if (compat_pid > 0)
        vb_ts_stop(compat_pid, 5000);
    if (polkitd_pid > 0) {
        kill(polkitd_pid, SIGCONT); /* a failed test may have left it stopped */
        vb_ts_stop(polkitd_pid, 5000);
    }
    if (bus_pid > 0)
        vb_ts_stop(bus_pid, 5000);
    if (policy_path[0])
        unlink(policy_path);
    if (rules_path[0])
        unlink(rules_path);
    vb_ts_account_remove(&member);
    vb_ts_account_remove(&watcher);
    vb_ts_account_remove(&outsider);
    vb_ts_account_remove(&stranger);
    if (group_created)
        vb_ts_group_remove(group_name);
    return vb_ts_group_teardown(state);
}

static void need_peers(void)
{
    if (!have_peers)
        skip();
}

/* ---- a client as one of the accounts ---------------------------------------------- */

typedef struct outcome {
    int connect_rc, open_rc, code;
    long elapsed_ms;
    char auth_type[32];
    char message[VB_ERROR_MESSAGE_MAX];
} outcome;

typedef struct client_spec {
    const char *sock;             /* default: the polkit-only vbhostd */
    const char *auth;             /* the URI's auth=, NULL: none */
    const char *const *priority;  /* without auth=: this list (NULL: the default) */
    size_t npriority;
} client_spec;

static const client_spec polkit_uri = { NULL, "polkit", NULL, 0 };

static void client_child(const account *a, unsigned flags, const client_spec *spec, int out)
{
    outcome o;
    memset(&o, 0, sizeof o);
    o.open_rc = -2; /* not reached */
    struct timespec t0, t1;
    vb_error err;
    vb_uri uri;
    vb_remote *r = NULL;
    char text[512];
    snprintf(text, sizeof text, "test+unix:///default?socket=%s%s%s", spec->sock ? spec->sock : sock,
             spec->auth ? "&auth=" : "", spec->auth ? spec->auth : "");
    if (vb_ts_become(a) < 0)
        _exit(10);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    vb_remote_opts opts = { .timeout_ms = 20000 };
    opts.creds.auth_priority = spec->priority;
    opts.creds.nauth_priority = spec->npriority;
    int parsed = vb_uri_parse(text, &uri, &err) == 0;
    o.connect_rc = parsed ? vb_remote_connect(&uri, &opts, &r, &err) : -1;
    if (o.connect_rc == 0) {
        snprintf(o.auth_type, sizeof o.auth_type, "%s", vb_remote_auth_type(r));
        o.open_rc = vb_remote_open(r, "test:///default", flags, &err);
        if (o.open_rc < 0 && (flags & VB_OPEN_READ_ONLY) == 0) {
            /* what a monitor-only user still may do on the same connection */
            o.code = err.code;
            snprintf(o.message, sizeof o.message, "%s", err.message);
            o.open_rc = vb_remote_open(r, "test:///default", VB_OPEN_READ_ONLY, &err) == 0 ? 1 : -1;
            err.code = o.code;
            snprintf(err.message, sizeof err.message, "%s", o.message);
        }
        vb_remote_free(r);
    }
    if (parsed)
        vb_uri_clear(&uri);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    o.elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (o.connect_rc < 0 || o.open_rc != 0) {
        o.code = err.code;
        snprintf(o.message, sizeof o.message, "%s", err.message);
    }
    _exit(write(out, &o, sizeof o) == (ssize_t)sizeof o ? 0 : 1);
}

/* Connect (as spec says) and open as account a: a running client. */
typedef struct client_run {
    pid_t pid;
    int fd;
} client_run;

static void client_start(const account *a, unsigned flags, const client_spec *spec, client_run *run)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        alarm(60); /* a hung client dies rather than hang the suite */
        close(p[0]);
        client_child(a, flags, spec, p[1]);
    }
    close(p[1]);
    run->pid = pid;
    run->fd = p[0];
}

/* Its outcome in *o (it has exited when this returns). */
static void client_finish(const account *a, client_run *run, outcome *o)
{
    pid_t pid = run->pid;
    int p[1] = { run->fd };
    struct pollfd pfd = { .fd = p[0], .events = POLLIN };
    memset(o, 0, sizeof *o);
    int ready = poll(&pfd, 1, vb_ts_scaled_ms(30000));
    ssize_t n = ready == 1 ? read(p[0], o, sizeof *o) : -1;
    close(p[0]);
    if (n != (ssize_t)sizeof *o)
        kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_int_equal(n, (ssize_t)sizeof *o);
    if (o->connect_rc < 0 || o->open_rc != 0)
        fprintf(stderr, "  %s: connect %d, open %d, code %d: %s (%ld ms)\n", a->name, o->connect_rc,
                o->open_rc, o->code, o->message, o->elapsed_ms);
}

static void run_client_spec(const account *a, unsigned flags, const client_spec *spec, outcome *o)
{
    client_run run;
    client_start(a, flags, spec, &run);
    client_finish(a, &run, o);
}

/* auth=polkit on the polkit-only vbhostd */
static void run_client(const account *a, unsigned flags, outcome *o)
{
    run_client_spec(a, flags, &polkit_uri, o);
}

/* ---- the cases ---------------------------------------------------------------------- */

/* A member of the group in the shipped rule gets in and manages, unasked. */
static void test_member_manages(void **state)
{
    (void)state;
    need_peers();
    outcome o;
    run_client(&member, 0, &o);
    assert_int_equal(o.connect_rc, 0);
    assert_string_equal(o.auth_type, "polkit");
    assert_int_equal(o.open_rc, 0);
    assert_true(vb_ts_count_in_file(vbh_log, "(polkit " MANAGE ")") >= 1);
}

/* monitor without manage: in, read-only opens only, told why. */
static void test_watcher_read_only(void **state)
{
    (void)state;
    need_peers();
    outcome o;
    run_client(&watcher, 0, &o);
    assert_int_equal(o.connect_rc, 0);
    assert_int_equal(o.code, VB_ERR_READ_ONLY);
    assert_non_null(strstr(o.message, MONITOR));
    assert_int_equal(o.open_rc, 1); /* the read-only open that followed worked */
}

/* a's login (auth=polkit) is refused with code, its message holding both texts */
static void assert_refused(const account *a, int code, const char *text, const char *text2)
{
    outcome o;
    run_client(a, 0, &o);
    assert_int_equal(o.connect_rc, -1);
    assert_int_equal(o.code, code);
    assert_non_null(strstr(o.message, text));
    assert_non_null(strstr(o.message, text2));
}

/* A rule's "no": refused, the action named. */
static void test_outsider_denied(void **state)
{
    (void)state;
    need_peers();
    assert_refused(&outsider, VB_ERR_AUTH_FAILED, "polkit denied " MANAGE, outsider.name);
}

/* No rule: the action's default is auth_admin, which nobody can be asked
 * for here: refused, saying so and naming the action. */
static void test_stranger_needs_admin(void **state)
{
    (void)state;
    need_peers();
    assert_refused(&stranger, VB_ERR_CRED_REQUIRED, "requires authentication", MANAGE);
}

/* The pid-reuse defence, at polkitd: the member's own process with the
 * right start time passes; the same pid and uid with another start time
 * (what a process reusing the pid would have) does not. */
static void test_start_time_binds_the_process(void **state)
{
    (void)state;
    need_peers();
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[1]);
        if (vb_ts_become(&member) < 0)
            _exit(10);
        char c;
        _exit(read(p[0], &c, 1) < 0); /* until the parent closes the pipe */
    }
    close(p[0]);
    vb_polkit_subject s = { pid, 0, member.uid };
    int verdict = -1, rc;
    vb_error err;
    assert_int_equal(vb_polkit_start_time(pid, &s.start_time, &err), 0);
    rc = vb_polkit_check(&s, MANAGE, 5000, &verdict, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(verdict, VB_POLKIT_YES);
    s.start_time += 1;
    verdict = -1;
    rc = vb_polkit_check(&s, MANAGE, 5000, &verdict, &err);
    assert_int_equal(rc, -1);
    assert_int_equal(verdict, -1);
    assert_int_equal(err.code, VB_ERR_AUTH_FAILED);
    assert_non_null(strstr(err.message, "another process"));
    close(p[1]);
    int status;
    waitpid(pid, &status, 0);
}

/* polkit does not know the action (the policy file is not installed):
 * vbhostd says what to install, and the member is not let in. */
static void test_action_not_installed(void **state)
{
    (void)state;
    need_peers();
    glob_t g;
    size_t files = 0; /* ours among them */
    if (glob(ACTIONS_DIR "/org.vbroker.vbhostd*.policy", 0, NULL, &g) == 0) {
        files = g.gl_pathc;
        globfree(&g);
    }
    if (files > 1)
        skip(); /* installed for real, or another run's: not ours to remove */
    assert_int_equal(unlink(policy_path), 0);
    probe gone = { -1, "policy is not installed" };
    assert_int_equal(vb_ts_wait_until(probe_once, &gone, vb_ts_scaled_ms(WAIT_MS)), 0);
    outcome o;
    run_client(&member, 0, &o);
    assert_int_equal(install_policy(), 0);
    probe back = { 0, NULL };
    assert_int_equal(vb_ts_wait_until(probe_once, &back, vb_ts_scaled_ms(WAIT_MS)), 0);
    assert_int_equal(o.connect_rc, -1);
    assert_int_equal(o.code, VB_ERR_AUTH_UNAVAILABLE);
    assert_non_null(strstr(o.message, MANAGE));
    assert_non_null(strstr(o.message, "/usr/share/polkit-1/actions"));
}

/* polkitd hangs (stopped): the client hears a clear error before the auth
 * timeout, and vbhostd keeps serving (its loop never waited). */
static void test_polkitd_hung(void **state)
{
    (void)state;
    need_peers();
    assert_int_equal(kill(polkitd_pid, SIGSTOP), 0);
    outcome o, other;
    client_run waiting;
    client_start(&member, 0, &polkit_uri, &waiting);
    /* meanwhile vbhostd answers others: this one's AUTH_LIST comes back at
     * once (and offers no sasl), while the member still waits */
    static const client_spec sasl_uri = { NULL, "sasl", NULL, 0 };
    run_client_spec(&stranger, 0, &sasl_uri, &other);
    struct pollfd still = { .fd = waiting.fd, .events = POLLIN };
    int member_done = poll(&still, 1, 0);
    client_finish(&member, &waiting, &o);
    assert_int_equal(kill(polkitd_pid, SIGCONT), 0);
    assert_int_equal(other.connect_rc, -1);
    assert_int_equal(other.code, VB_ERR_AUTH_UNAVAILABLE);
    assert_non_null(strstr(other.message, "accepts polkit"));
    assert_true(other.elapsed_ms < 1000);
    assert_int_equal(member_done, 0);
    assert_int_equal(o.connect_rc, -1);
    assert_int_equal(o.code, VB_ERR_AUTH_UNAVAILABLE);
    assert_non_null(strstr(o.message, "did not answer"));
    assert_true(o.elapsed_ms < AUTH_TIMEOUT_S * 1000);
    assert_true(o.elapsed_ms >= AUTH_TIMEOUT_S * 1000 / 2); /* it did wait for polkitd */
    probe ready = { 0, NULL };
    assert_int_equal(vb_ts_wait_until(probe_once, &ready, vb_ts_scaled_ms(WAIT_MS)), 0);
    run_client(&member, 0, &o);
    assert_int_equal(o.connect_rc, 0);
}

/* polkitd not running at all: said so at once, with what to do. Runs last
 * of those that need polkitd, and starts it again. */
static void test_polkitd_not_running(void **state)
{
    (void)state;
    need_peers();
    vb_ts_stop(polkitd_pid, 5000);
    polkitd_pid = 0;
    outcome o;
    run_client(&member, 0, &o);
    assert_int_equal(o.connect_rc, -1);
    assert_int_equal(o.code, VB_ERR_AUTH_UNAVAILABLE);
    assert_non_null(strstr(o.message, "polkitd is not running"));
    assert_true(o.elapsed_ms < AUTH_TIMEOUT_S * 1000 / 2);
    assert_int_equal(start_polkitd(), 0);
    run_client(&member, 0, &o);
    assert_int_equal(o.connect_rc, 0);
}

/* A listener with ["polkit", "peer"]: a new client takes polkit (its
 * default priority puts it before peer); a client from before polkit (whose
 * list has no such name) skips it and logs in with peer as ever. */
static void test_old_and_new_clients(void **state)
{
    (void)state;
    need_peers();
    static const char *const old_default[] = { "token", "sasl", "peer", "none" };
    const client_spec new_client = { compat_sock, NULL, NULL, 0 };
    const client_spec old_client = { compat_sock, NULL, old_default, 4 };
    outcome o;
    run_client_spec(&member, 0, &new_client, &o);
    assert_int_equal(o.connect_rc, 0);
    assert_string_equal(o.auth_type, "polkit");
    assert_int_equal(o.open_rc, 0);
    run_client_spec(&watcher, 0, &old_client, &o);
    assert_int_equal(o.connect_rc, 0);
    assert_string_equal(o.auth_type, "peer");
    assert_int_equal(o.open_rc, 0); /* peer_allowed_users: full access, as before */
    run_client_spec(&member, 0, &old_client, &o); /* not in peer_allowed_users */
    assert_int_equal(o.connect_rc, -1);
    assert_int_equal(o.code, VB_ERR_AUTH_FAILED);
}

/* ---- through the broker, as a script would ----------------------------------------- */

/* vbrokerd as account a (setpriv), on its own socket in a directory of a's. */
static pid_t start_broker(const account *a, char *sock_out, size_t len)
{
    char bdir[300], state_dir[320], log[320], uid[32], gid[32];
    snprintf(bdir, sizeof bdir, "%s/broker-%s", dir, a->name);
    snprintf(state_dir, sizeof state_dir, "%s/state", bdir);
    snprintf(log, sizeof log, "%s/vbrokerd-%s.log", dir, a->name); /* opened before setpriv */
    snprintf(sock_out, len, "%s/sock", bdir);
    snprintf(uid, sizeof uid, "--reuid=%u", (unsigned)a->uid);
    snprintf(gid, sizeof gid, "--regid=%u", (unsigned)a->gid);
    if (mkdir(bdir, 0700) < 0 || chown(bdir, a->uid, a->gid) < 0)
        return -1;
    char *argv[] = { "setpriv", uid, gid, "--clear-groups", "--", VB_BUILD_DIR "/vbrokerd",
                     "--socket", sock_out, "--state-dir", state_dir, NULL };
    char home[340];
    snprintf(home, sizeof home, "HOME=%s", bdir); /* not root's: no config file there */
    char *env[] = { home, "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", NULL };
    pid_t pid = vb_ts_spawn(argv, env, log);
    return pid > 0 && vb_ts_wait_unix_socket(sock_out, vb_ts_scaled_ms(WAIT_MS)) == 0 ? pid : -1;
}

/* vbctl --non-interactive -c URI hostname as account a through its broker. */
static int vbctl_as(const account *a, const char *broker_sock, const char *uri, char **out)
{
    char uid[32], gid[32], env_sock[340];
    snprintf(uid, sizeof uid, "--reuid=%u", (unsigned)a->uid);
    snprintf(gid, sizeof gid, "--regid=%u", (unsigned)a->gid);
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s", broker_sock);
    char *argv[] = { "setpriv", uid, gid, "--clear-groups", "--", VB_BUILD_DIR "/vbctl",
                     "--non-interactive", "-c", (char *)uri, "hostname", NULL };
    char home[340];
    snprintf(home, sizeof home, "HOME=%s/broker-%s", dir, a->name);
    char *env[] = { env_sock, "VBROKER_NO_AUTOSTART=1", home, "XDG_CONFIG_HOME", NULL };
    return vb_ts_run(argv, env, NULL, out, vb_ts_scaled_ms(30000));
}

/* A member's script gets in through its broker without a question; a
 * script of someone polkit wants a password from exits 77, the action named. */
static void test_vbctl_through_broker(void **state)
{
    (void)state;
    need_peers();
    char member_broker[340], stranger_broker[340], uri[400];
    pid_t mb = start_broker(&member, member_broker, sizeof member_broker);
    pid_t sb = start_broker(&stranger, stranger_broker, sizeof stranger_broker);
    assert_true(mb > 0 && sb > 0);
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s&auth=polkit", sock);
    char *out = NULL;
    int rc = vbctl_as(&member, member_broker, uri, &out);
    if (rc != 0)
        fprintf(stderr, "  vbctl as member: %d: %s\n", rc, out ? out : "");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "test-host"));
    free(out);
    out = NULL;
    rc = vbctl_as(&stranger, stranger_broker, uri, &out);
    assert_int_equal(rc, 77);
    assert_non_null(out);
    assert_non_null(strstr(out, MANAGE));
    free(out);
    vb_ts_stop(mb, 5000);
    vb_ts_stop(sb, 5000);
}

/* A process names itself: a name with ") " and digits in it must not move
 * the start time vbhostd reads (the field after the LAST ')' counts). */
static void test_start_time_survives_a_hostile_name(void **state)
{
    (void)state;
    int p[2], q[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(pipe2(q, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(p[1]);
        close(q[0]);
        char c;
        if (read(p[0], &c, 1) != 1) /* renamed only once the parent read the time */
            _exit(1);
        prctl(PR_SET_NAME, "x) R 1 2 3 4 5");
        if (write(q[1], "r", 1) != 1)
            _exit(1);
        _exit(read(p[0], &c, 1) < 0);
    }
    close(p[0]);
    close(q[1]);
    uint64_t before = 0, after = 1;
    vb_error err;
    assert_int_equal(vb_polkit_start_time(pid, &before, &err), 0);
    /* while its name has no blank: field 22 of /proc/PID/stat, plainly */
    char path[64], *stat = NULL, *field = NULL, *save = NULL;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    stat = vb_ts_read_file(path, NULL);
    assert_non_null(stat);
    field = strtok_r(stat, " ", &save);
    for (int i = 1; field && i < 22; i++)
        field = strtok_r(NULL, " ", &save);
    assert_non_null(field);
    assert_int_equal(before, strtoull(field, NULL, 10));
    free(stat);
    char c;
    assert_int_equal(write(p[1], "g", 1), 1);
    assert_int_equal(read(q[0], &c, 1), 1);
    stat = vb_ts_read_file(path, NULL);
    assert_non_null(stat);
    assert_non_null(strstr(stat, "(x) R 1 2 3 4 5)")); /* the name did change */
    free(stat);
    assert_int_equal(vb_polkit_start_time(pid, &after, &err), 0);
    close(p[1]);
    close(q[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(before > 0);
    assert_true(after == before);
}

/* polkit judges a local process: a TCP listener may not offer it. */
static void test_polkit_only_on_unix(void **state)
{
    (void)state;
    char conf_path[300], conf[512];
    snprintf(conf_path, sizeof conf_path, "%s/tcp.conf", dir);
    snprintf(conf, sizeof conf,
             "listen_tcp = \"127.0.0.1:%d\"\nauth_tcp = [\"polkit\"]\nstate_dir = \"%s/st2\"\n",
             vb_ts_free_tcp_port(), dir);
    assert_int_equal(vb_ts_write_file(conf_path, conf, 0600), 0);
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf_path, "--foreground", NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, NULL, NULL, &out, vb_ts_scaled_ms(WAIT_MS));
    assert_int_not_equal(rc, 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "only auth_unix may list it"));
    free(out);
}

/* Both vbhostd exit cleanly (no sanitizer report: a polkit thread's job,
 * its client reference and the sd-bus connection are all released). */
static void test_daemons_exit_cleanly(void **state)
{
    (void)state;
    need_peers();
    int status = vb_ts_stop(vbhostd_pid, 5000);
    vbhostd_pid = 0;
    assert_int_equal(vb_ts_check_exit("vbhostd", status, vbh_log), 0);
    status = vb_ts_stop(compat_pid, 5000);
    compat_pid = 0;
    assert_int_equal(vb_ts_check_exit("vbhostd (compat)", status, compat_log), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_manages),
        cmocka_unit_test(test_watcher_read_only),
        cmocka_unit_test(test_outsider_denied),
        cmocka_unit_test(test_stranger_needs_admin),
        cmocka_unit_test(test_start_time_binds_the_process),
        cmocka_unit_test(test_old_and_new_clients),
        cmocka_unit_test(test_vbctl_through_broker),
        cmocka_unit_test(test_action_not_installed),
        cmocka_unit_test(test_polkitd_hung),
        cmocka_unit_test(test_polkitd_not_running),
        cmocka_unit_test(test_polkit_only_on_unix),
        cmocka_unit_test(test_start_time_survives_a_hostile_name),
        cmocka_unit_test(test_daemons_exit_cleanly),
    };
    return cmocka_run_group_tests_name("polkit", tests, group_setup, group_teardown);
}
