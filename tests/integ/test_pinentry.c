/* The broker asks by itself: a program without a callback gets its question
 * through a pinentry on its own display or terminal (issue 21).
 *
 * program (no callback) → libvbroker → vbrokerd --pinentry tests/peers/pinentry_script.py
 *                                     → vbhostd (sasldb, password logins)
 *
 * The scripted pinentry (tests/peers/pinentry_script.py) answers, cancels,
 * hangs, crashes or holds as its mode file says, and writes what it was told
 * (never an answer) to a log the tests read: that log is how a test sees
 * that a pinentry started at all, what it was asked and on which screen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <poll.h>

#include "vb_fakehost.h"
#include "vb_msg.h"
#include "vb_net.h"
#include "vb_testsupport.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "pinentry-Pw-4-tests"
#define PROMPT_TIMEOUT_S 60
#define QUICK_TIMEOUT_S 3
#define START_MS 10000
#define OTHER_UID 65534

static char *dir;
static vb_ts_hostd hostd;
static char pe_log[300], pe_mode[300], release[300];

static int start_hostd(void)
{
    return vb_ts_hostd_start_sasl(&hostd, dir, "h", 0, REALM, "auth_unix = [\"sasl\"]\n");
}

typedef struct broker {
    char sock[300], log[300];
    pid_t pid;
} broker;

/* main answers within 60 s (a loaded machine starts python slowly); quick
 * gives up after 3 s, for the test of a pinentry that never answers */
static broker bmain, bquick;

/* The broker's own screen (DISPLAY=:66) must never be where it asks. */
static int start_broker(broker *b, const char *name, int prompt_timeout_s)
{
    char state[300], env_log[400], env_mode[400];
    snprintf(b->sock, sizeof b->sock, "%s/%s-run/sock", dir, name);
    snprintf(b->log, sizeof b->log, "%s/%s.log", dir, name);
    snprintf(state, sizeof state, "%s/%s-state", dir, name);
    snprintf(env_log, sizeof env_log, "VB_PE_LOG=%s", pe_log);
    snprintf(env_mode, sizeof env_mode, "VB_PE_MODE_FILE=%s", pe_mode);
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", prompt_timeout_s);
    char *env[] = { env_log, env_mode, "DISPLAY=:66", "WAYLAND_DISPLAY=broker-own", NULL };
    /* --upstream-idle 0: every open logs in again, so a second open that
     * asks nothing was answered by the broker's secret cache */
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", b->sock, "--state-dir", state,
                     "--log-level", "debug", "--prompt-timeout", timeout, "--upstream-idle", "0",
                     "--pinentry", VB_SRC_DIR "/tests/peers/pinentry_script.py", NULL };
    b->pid = vb_ts_spawn(argv, env, b->log);
    return b->pid > 0 && vb_ts_wait_unix_socket(b->sock, START_MS) == 0 ? 0 : -1;
}

static void use_broker(const broker *b)
{
    setenv("VBROKER_SOCKET", b->sock, 1);
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("pinentry");
    snprintf(pe_log, sizeof pe_log, "%s/pinentry.log", dir);
    snprintf(pe_mode, sizeof pe_mode, "%s/pinentry.mode", dir);
    snprintf(release, sizeof release, "%s/release", dir);
    vb_ts_note_secret(PASSWORD);
    static const char *const users[] = { "alice:" PASSWORD, "bob:" PASSWORD, "carol:" PASSWORD,
                                         "dave:" PASSWORD, "erin:" PASSWORD, "frank:" PASSWORD,
                                         "gina:" PASSWORD, "hank:" PASSWORD, "ivy:" PASSWORD,
                                         "jack:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0 ||
        start_hostd() < 0 || start_broker(&bmain, "bmain", PROMPT_TIMEOUT_S) < 0 ||
        start_broker(&bquick, "bquick", QUICK_TIMEOUT_S) < 0 ||
        vb_ts_write_file(pe_log, "", 0600) < 0)
        return -1;
    use_broker(&bmain);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    unsetenv("VBROKER_NON_INTERACTIVE");
    unsetenv("DISPLAY");
    unsetenv("WAYLAND_DISPLAY");
    /* this process has no terminal unless a test gives it one */
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0)
        return -1;
    close(null);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static void set_mode(const char *mode)
{
    char text[600];
    snprintf(text, sizeof text, "%s\n", mode);
    assert_int_equal(vb_ts_write_file(pe_mode, text, 0600), 0);
}

static int pinentries_started(void)
{
    return vb_ts_count_in_file(pe_log, "start pid=");
}

static int in_log(const char *needle)
{
    return vb_ts_count_in_file(pe_log, needle);
}

static char *uri_for(const char *user)
{
    static char buf[400];
    snprintf(buf, sizeof buf, "test+unix://%s@/default?socket=%s", user, hostd.sock);
    return buf;
}

static vb_conn *open_as_uri(const char *uri, vb_error *err)
{
    memset(err, 0, sizeof *err);
    return vb_open_auth(uri, NULL, 0, err);
}

/* A program without a callback: auth NULL. */
static vb_conn *open_as(const char *user, unsigned flags, vb_error *err)
{
    memset(err, 0, sizeof *err);
    return vb_open_auth(uri_for(user), NULL, flags, err);
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* The pid of the last pinentry that started, from its log line. */
static pid_t last_pinentry_pid(void)
{
    char *text = vb_ts_read_file(pe_log, NULL);
    pid_t pid = -1;
    for (char *p = text; p && (p = strstr(p, "start pid=")); p++)
        pid = (pid_t)atoi(p + strlen("start pid="));
    free(text);
    return pid;
}

static int pid_gone(void *arg)
{
    pid_t pid = *(pid_t *)arg;
    return kill(pid, 0) < 0 && errno == ESRCH;
}

/* ---- tests --------------------------------------------------------------- */

/* The story of the issue: asked once on the program's display, the open
 * succeeds, the next open asks nothing (the broker's secret cache). */
static void test_asks_once_on_the_programs_display(void **state)
{
    (void)state;
    set_mode("answer " PASSWORD);
    setenv("DISPLAY", ":77", 1);
    int started = pinentries_started();
    vb_error err;
    vb_conn *c = open_as("alice", 0, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    vb_close(c);
    assert_int_equal(pinentries_started(), started + 1);
    assert_int_equal(in_log("GETPIN"), 1);        /* the user name came from the URI */
    assert_int_equal(in_log("SETREPEAT"), 0);
    assert_int_equal(in_log("CONFIRM"), 0);
    /* the program's display, not the broker's */
    assert_int_equal(in_log("display=:77 wayland=- term=-"), 1);
    assert_int_equal(in_log(":66"), 0);
    assert_int_equal(in_log("broker-own"), 0);
    /* the person can tell who asks and for what */
    char who[200];
    snprintf(who, sizeof who, "SETDESC test_pinentry (pid %d) asks for a vbhostd login to alice@",
             (int)getpid());
    assert_int_equal(in_log(who), 1);
    snprintf(who, sizeof who, "SETTITLE vbroker: test_pinentry (pid %d)", (int)getpid());
    assert_int_equal(in_log(who), 1);
    assert_int_equal(in_log("SETTIMEOUT "), 1);
    assert_int_equal(in_log("bye"), 1);

    c = open_as("alice", 0, &err);
    if (!c)
        fail_msg("second open: %s", err.message);
    vb_close(c);
    assert_int_equal(pinentries_started(), started + 1);
    assert_true(vb_ts_count_in_file(hostd.log, "alice") >= 2); /* it did log in again */
    unsetenv("DISPLAY");
}

static void test_cancel_is_a_clear_error(void **state)
{
    (void)state;
    set_mode("cancel");
    setenv("WAYLAND_DISPLAY", "wayland-7", 1);
    int started = pinentries_started();
    vb_error err;
    vb_conn *c = open_as("bob", 0, &err);
    unsetenv("WAYLAND_DISPLAY");
    assert_null(c);
    assert_int_equal(pinentries_started(), started + 1);
    assert_int_equal(in_log("display=- wayland=wayland-7"), 1);
    assert_int_equal(err.code, VBROKER_ERR_AUTH_CANCELLED);
    assert_non_null(strstr(err.message, "credentials required"));
    assert_non_null(strstr(err.message, "cancelled at the pinentry"));
}

static void test_crash_is_a_clear_error(void **state)
{
    (void)state;
    set_mode("crash");
    setenv("DISPLAY", ":77", 1);
    vb_error err;
    uint64_t t0 = now_ms();
    vb_conn *c = open_as("carol", 0, &err);
    unsetenv("DISPLAY");
    assert_null(c);
    assert_true(now_ms() - t0 < (uint64_t)vb_ts_scaled_ms(PROMPT_TIMEOUT_S * 1000 / 2));
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_non_null(strstr(err.message, "died of signal 6"));
}

/* A pinentry that never answers is ended at the prompt timeout: the open
 * fails with TIMEOUT and no pinentry is left behind. */
static void test_hung_pinentry_times_out_and_is_ended(void **state)
{
    (void)state;
    set_mode("hang");
    setenv("DISPLAY", ":77", 1);
    use_broker(&bquick);
    int started = pinentries_started();
    vb_error err;
    uint64_t t0 = now_ms();
    vb_conn *c = open_as("dave", 0, &err);
    uint64_t took = now_ms() - t0;
    use_broker(&bmain);
    unsetenv("DISPLAY");
    assert_null(c);
    assert_int_equal(pinentries_started(), started + 1);
    assert_int_equal(err.code, VBROKER_ERR_TIMEOUT);
    assert_non_null(strstr(err.message, "pinentry"));
    assert_true(took >= QUICK_TIMEOUT_S * 1000u - 100u);
    /* the timeout, the SIGTERM and the reaping; not the main broker's 60 s */
    assert_true(took < (uint64_t)vb_ts_scaled_ms((QUICK_TIMEOUT_S + 10) * 1000));
    pid_t pid = last_pinentry_pid();
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_until(pid_gone, &pid, vb_ts_scaled_ms(3000)), 0);
}

/* Non-interactive never asks by any route: the flag, the environment
 * variable, vbctl --non-interactive. Seen by the pinentry never starting. */
static void test_non_interactive_never_starts_a_pinentry(void **state)
{
    (void)state;
    set_mode("answer " PASSWORD);
    setenv("DISPLAY", ":77", 1);
    int started = pinentries_started();
    vb_error err;
    vb_conn *c = open_as("erin", VB_OPEN_NON_INTERACTIVE, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);

    setenv("VBROKER_NON_INTERACTIVE", "1", 1);
    c = open_as("erin", 0, &err);
    unsetenv("VBROKER_NON_INTERACTIVE");
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);

    char env_sock[400];
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s", bmain.sock);
    char *env[] = { env_sock, "VBROKER_NO_AUTOSTART=1", "DISPLAY=:77", NULL };
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", uri_for("erin"), "--non-interactive", "list",
                     NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, env, NULL, &out, 30000);
    assert_int_not_equal(rc, 0);
    assert_non_null(out);
    assert_non_null(strstr(out, "needs a login and --non-interactive forbids asking"));
    free(out);
    char *login[] = { VB_BUILD_DIR "/vbctl", "-c", uri_for("erin"), "--non-interactive", "login",
                      NULL };
    rc = vb_ts_run(login, env, NULL, &out, 30000);
    free(out);
    assert_int_not_equal(rc, 0);
    unsetenv("DISPLAY");
    assert_int_equal(pinentries_started(), started);

    /* and with nowhere to ask (no display, no terminal): no pinentry either */
    c = open_as("erin", 0, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_int_equal(pinentries_started(), started);
}

/* The terminal a program names must be this user's: another uid's terminal
 * is refused before any pinentry starts; our own is used, by name. */
static void test_terminal_of_another_user_is_refused(void **state)
{
    (void)state;
    set_mode("answer " PASSWORD);
    int master, slave;
    char name[128];
    assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
    int saved = dup(0);
    assert_true(saved >= 0);
    assert_int_equal(dup2(slave, 0), 0);
    setenv("TERM", "xterm-test", 1);
    int started = pinentries_started();

    vb_error err;
    assert_int_equal(chown(name, OTHER_UID, (gid_t)-1), 0);
    vb_conn *c = open_as("frank", 0, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_non_null(strstr(err.message, "belongs to uid 65534"));
    assert_int_equal(pinentries_started(), started);

    assert_int_equal(chown(name, getuid(), (gid_t)-1), 0);
    c = open_as("frank", 0, &err);
    if (!c)
        fail_msg("open on our own terminal: %s", err.message);
    vb_close(c);
    assert_int_equal(pinentries_started(), started + 1);
    char option[200];
    snprintf(option, sizeof option, "OPTION ttyname=%s\n", name);
    assert_int_equal(in_log(option), 1);
    assert_int_equal(in_log("OPTION ttytype=xterm-test"), 1);
    /* a terminal only: the broker's own display is not passed on */
    assert_int_equal(in_log("display=- wayland=- term=xterm-test"), 1);

    assert_int_equal(dup2(saved, 0), 0);
    close(saved);
    close(slave);
    close(master);
    unsetenv("TERM");
}

typedef struct opener {
    const char *user;
    pthread_t thread;
    int ok;
    vb_error err;
} opener;

static void *open_thread(void *arg)
{
    opener *o = arg;
    vb_conn *c = open_as(o->user, 0, &o->err);
    o->ok = c != NULL;
    vb_close(c);
    return NULL;
}

typedef struct count_at_least {
    const char *needle;
    int n;
} count_at_least;

static int log_has(void *arg)
{
    count_at_least *w = arg;
    return in_log(w->needle) >= w->n;
}

/* Two programs ask at once: the second question waits until the first
 * pinentry is gone, then gets its own. */
static void test_one_pinentry_at_a_time(void **state)
{
    (void)state;
    char mode[400];
    unlink(release);
    snprintf(mode, sizeof mode, "hold %s %s", release, PASSWORD);
    set_mode(mode);
    setenv("DISPLAY", ":77", 1);
    int started = pinentries_started();
    int getpins = in_log("GETPIN");
    opener a = { "gina", 0, 0, { 0, 0, "" } }, b = { "hank", 0, 0, { 0, 0, "" } };
    assert_int_equal(pthread_create(&a.thread, NULL, open_thread, &a), 0);
    count_at_least first = { "GETPIN", getpins + 1 };
    assert_int_equal(vb_ts_wait_until(log_has, &first, 10000), 0);
    assert_int_equal(pthread_create(&b.thread, NULL, open_thread, &b), 0);
    /* b's question reaches the broker and waits: no second pinentry */
    assert_int_equal(vb_ts_wait_for_log(bmain.log, "client unix", 1, 10000), 0);
    count_at_least second = { "start pid=", started + 2 };
    assert_int_equal(vb_ts_wait_until_quiet(log_has, &second, vb_ts_scaled_ms(700)), -1);
    assert_int_equal(vb_ts_write_file(release, "", 0600), 0);
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    unsetenv("DISPLAY");
    if (!a.ok || !b.ok)
        fail_msg("a: %s / b: %s", a.err.message, b.err.message);
    assert_int_equal(pinentries_started(), started + 2);
    /* in the log, the first pinentry said bye before the second started */
    char *text = vb_ts_read_file(pe_log, NULL);
    char *p = text;
    for (int i = 0; i < started + 1; i++)
        p = strstr(p, "start pid=") + 1;
    char *bye = strstr(p, "\nbye\n");
    char *next = strstr(p, "start pid=");
    assert_non_null(bye);
    assert_non_null(next);
    assert_true(bye < next);
    free(text);
}

/* The program leaves while its pinentry is up: the pinentry goes at once,
 * not at the prompt timeout (60 s here). */
static void test_pinentry_ends_when_its_program_leaves(void **state)
{
    (void)state;
    char mode[400], result[300], env_sock[400];
    unlink(release);
    snprintf(mode, sizeof mode, "hold %s %s", release, PASSWORD); /* never released */
    set_mode(mode);
    snprintf(result, sizeof result, "%s/left-result.out", dir);
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s", bmain.sock);
    char *env[] = { env_sock, "VBROKER_NO_AUTOSTART=1", "DISPLAY=:77", NULL };
    char *argv[] = { VB_BUILD_DIR "/tests/test_pinentry", "--open-without-callback",
                     uri_for("jack"), result, NULL };
    int getpins = in_log("GETPIN");
    pid_t program = vb_ts_spawn(argv, env, NULL);
    assert_true(program > 0);
    count_at_least asked = { "GETPIN", getpins + 1 };
    assert_int_equal(vb_ts_wait_until(log_has, &asked, vb_ts_scaled_ms(30000)), 0);
    pid_t pinentry = last_pinentry_pid();
    assert_true(pinentry > 0 && !pid_gone(&pinentry));
    uint64_t t0 = now_ms();
    vb_ts_stop(program, 5000);
    assert_int_equal(vb_ts_wait_until(pid_gone, &pinentry, vb_ts_scaled_ms(10000)), 0);
    /* well before the 60 s prompt timeout */
    assert_true(now_ms() - t0 < (uint64_t)vb_ts_scaled_ms(10000));
}

/* A yes/no question (an unknown SSH host key, relayed by a hop) is a
 * CONFIRM: OK is "yes", a cancel is "no"; the description names the hop
 * chain, verified or reported. */
static void test_host_key_question_is_a_confirm(void **state)
{
    (void)state;
    char sock[300], uri[600];
    snprintf(sock, sizeof sock, "%s/fake.sock", dir);
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s", sock);
    vb_fakehost_script script = { VB_FAKEHOST_ASK_ON_OPEN, "peer", NULL, "ssh host key of 10.0.0.9",
                                  "ssh-hostkey", "10.0.0.9", NULL, 22, 0 };
    const char *modes[] = { "answer -", "cancel" };
    const char *answers[] = { "yes", "no" };
    setenv("DISPLAY", ":77", 1);
    for (int i = 0; i < 2; i++) {
        set_mode(modes[i]);
        int confirms = in_log("CONFIRM"), getpins = in_log("GETPIN");
        vb_fakehost *f = vb_fakehost_start_unix(sock, &script);
        assert_non_null(f);
        vb_error err;
        vb_conn *c = open_as_uri(uri, &err);
        vb_close(c);
        assert_int_equal(vb_fakehost_wait_answered(f, vb_ts_scaled_ms(30000)), 0);
        assert_int_equal(vb_fakehost_answered_ok(f), 1);
        assert_true(vb_fakehost_received(f, answers[i]));
        vb_fakehost_stop(f);
        assert_int_equal(in_log("CONFIRM"), confirms + 1);
        assert_int_equal(in_log("GETPIN"), getpins);
    }
    unsetenv("DISPLAY");
    assert_int_equal(in_log("SETOK Yes, connect"), 2);
    assert_true(in_log("whether to accept the SSH host key of 10.0.0.9:22") == 2);
    assert_true(in_log("(verified by the broker)") >= 2);
}

/* Text a hop supplies (kind, target) cannot add a command to the Assuan
 * conversation nor reorder the dialog's text: it arrives escaped, then
 * percent-escaped. */
static void test_hop_text_cannot_break_the_dialog(void **state)
{
    (void)state;
    char sock[300], uri[600];
    snprintf(sock, sizeof sock, "%s/fake-text.sock", dir);
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s", sock);
    vb_fakehost_script script = { VB_FAKEHOST_ASK_ON_OPEN, "peer", NULL, "evil service",
                                  "xenapi%0AGETPIN", "evil\nSETREPEAT\xe2\x80\xae" "exe.moc", "root",
                                  443, 0 };
    set_mode("cancel");
    setenv("DISPLAY", ":77", 1);
    int getpins = in_log("\nGETPIN\n");
    vb_fakehost *f = vb_fakehost_start_unix(sock, &script);
    assert_non_null(f);
    vb_error err;
    vb_conn *c = open_as_uri(uri, &err);
    vb_close(c);
    assert_int_equal(vb_fakehost_wait_answered(f, vb_ts_scaled_ms(30000)), 0);
    vb_fakehost_stop(f);
    unsetenv("DISPLAY");
    /* the one GETPIN the broker meant (the user name is the target's), and
     * no SETREPEAT line at all */
    assert_int_equal(in_log("\nGETPIN\n"), getpins + 1);
    assert_int_equal(in_log("\nSETREPEAT"), 0);
    /* the text as a person sees it: visible escapes, the % kept as text */
    assert_true(in_log("xenapi%0AGETPIN login to root@evil\\x0aSETREPEAT\\u202eexe.moc:443") >= 1);
}

/* ---- what libvbroker never sends, straight on the socket ------------------- */

typedef struct raw_open {
    uint32_t flags;
    const char *display;
    const char *tty;
} raw_open;

/* OPEN [uri, flags, [], [], can_prompt false, [display, nil, tty, nil]] as a
 * hostile or buggy client might send it; the reply's error (code 0: OK). */
static void raw_open_call(const raw_open *o, vb_error *out)
{
    vb_error err;
    int fd = vb_net_connect_unix(bmain.sock, &err);
    if (fd < 0)
        fail_msg("connect: %s", err.message);
    vb_msg_header hdr = { VB_PROG_BROKER, VB_PROG_BROKER_VERSION, VB_MSG_CALL, 1,
                          VB_BROKER_PROC_OPEN, VB_STATUS_OK, 0 };
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 7);
    vb_enc_str(&enc, uri_for("ivy"));
    vb_enc_u64(&enc, o->flags);
    vb_enc_array(&enc, 0);
    vb_enc_array(&enc, 0);
    vb_enc_bool(&enc, 0);
    vb_enc_str(&enc, NULL); /* auth_file */
    vb_enc_array(&enc, 4);
    vb_enc_str(&enc, o->display);
    vb_enc_str(&enc, NULL);
    vb_enc_str(&enc, o->tty);
    vb_enc_str(&enc, NULL);
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, &err), 0);
    assert_int_equal(write(fd, frame, len), (ssize_t)len);
    free(frame);

    vb_frame_reader rd;
    vb_frame_reader_init(&rd, VB_FRAME_MAX_POSTAUTH);
    uint8_t buf[4096];
    int st = 0;
    uint64_t deadline = now_ms() + (uint64_t)vb_ts_scaled_ms(30000);
    while (st != VB_FRAME_READY) {
        struct pollfd p = { fd, POLLIN, 0 };
        assert_true(now_ms() < deadline);
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        assert_true(n > 0);
        size_t used = 0;
        st = vb_frame_reader_feed(&rd, buf, (size_t)n, &used, &err);
        assert_int_not_equal(st, VB_FRAME_ERROR);
    }
    size_t plen;
    uint8_t *payload = vb_frame_reader_take(&rd, &plen);
    vb_msg m;
    assert_int_equal(vb_msg_decode(&m, payload, plen, &err), 0);
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    memset(out, 0, sizeof *out);
    if (m.hdr.status != VB_STATUS_OK)
        assert_int_equal(vb_msg_error_body(&m, out, &err), 0);
    vb_msg_clear(&m);
    vb_frame_reader_clear(&rd);
    close(fd);
}

/* The broker itself obeys non-interactive, whatever else the client says. */
static void test_broker_obeys_non_interactive_over_a_screen(void **state)
{
    (void)state;
    set_mode("answer " PASSWORD);
    int started = pinentries_started();
    raw_open o = { VB_OPEN_NON_INTERACTIVE, ":77", NULL };
    vb_error e;
    raw_open_call(&o, &e);
    assert_int_equal(e.code, VBROKER_ERR_CRED_REQUIRED);
    assert_int_equal(pinentries_started(), started);
}

/* A screen value that would be an Assuan command or an environment entry of
 * its own is refused at OPEN, before anything starts. */
static void test_screen_values_that_are_not_plain_text_are_refused(void **state)
{
    (void)state;
    set_mode("answer " PASSWORD);
    int started = pinentries_started();
    vb_error e;
    raw_open bad_tty = { 0, NULL, "/dev/pts/0\nGETPIN" };
    raw_open_call(&bad_tty, &e);
    assert_int_equal(e.code, VBROKER_ERR_PROTOCOL);
    assert_non_null(strstr(e.message, "tty"));
    raw_open bad_display = { 0, ":0 LD_PRELOAD=/tmp/x.so", NULL };
    raw_open_call(&bad_display, &e);
    assert_int_equal(e.code, VBROKER_ERR_PROTOCOL);
    raw_open not_dev = { 0, NULL, "/tmp/tty" };
    raw_open_call(&not_dev, &e);
    assert_int_equal(e.code, VBROKER_ERR_PROTOCOL);
    raw_open magic = { 0, NULL, "/dev/tty" };
    raw_open_call(&magic, &e);
    assert_int_equal(e.code, VBROKER_ERR_CRED_REQUIRED);
    assert_int_equal(pinentries_started(), started);
}

/* ---- Debian's pinentry-tty, as a person sees it (tmux) --------------------- */

#define PINENTRY_TTY "/usr/bin/pinentry-tty"
#define TMUX "/usr/bin/tmux"

static char tmux_sock[300];

static int tmux(char *out_cmd[], char **out)
{
    return vb_ts_run(out_cmd, NULL, NULL, out, 10000);
}

typedef struct pane_wait {
    const char *needle;
    char *last;           /* the last capture (malloc'd) */
} pane_wait;

static int pane_shows(void *arg)
{
    pane_wait *w = arg;
    char *argv[] = { TMUX, "-S", tmux_sock, "capture-pane", "-p", "-t", "vbpe", NULL };
    char *out = NULL;
    if (tmux(argv, &out) != 0) {
        free(out);
        return 0;
    }
    free(w->last);
    w->last = out;
    return out && strstr(out, w->needle) != NULL;
}

static int file_exists(void *arg)
{
    struct stat st;
    return stat((const char *)arg, &st) == 0 && st.st_size > 0;
}

/* A program without a callback in a real terminal (a tmux pane): the broker
 * runs Debian's pinentry-tty on that terminal; the prompt names the program
 * and the login; typing the password there opens the connection. */
static void test_real_pinentry_tty_in_tmux(void **state)
{
    (void)state;
    if (access(PINENTRY_TTY, X_OK) != 0 || access(TMUX, X_OK) != 0)
        skip(); /* mk/deps.sh test installs both */
    broker btty;
    char state_dir[300], result[300], cmd[2000], timeout[16];
    snprintf(btty.sock, sizeof btty.sock, "%s/btty-run/sock", dir);
    snprintf(btty.log, sizeof btty.log, "%s/btty.log", dir);
    snprintf(state_dir, sizeof state_dir, "%s/btty-state", dir);
    snprintf(timeout, sizeof timeout, "%d", PROMPT_TIMEOUT_S);
    char *bargv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", btty.sock, "--state-dir", state_dir,
                      "--log-level", "debug", "--prompt-timeout", timeout,
                      "--pinentry", PINENTRY_TTY, NULL };
    btty.pid = vb_ts_spawn(bargv, NULL, btty.log);
    assert_true(btty.pid > 0);
    assert_int_equal(vb_ts_wait_unix_socket(btty.sock, START_MS), 0);

    snprintf(tmux_sock, sizeof tmux_sock, "%s/tmux.sock", dir);
    snprintf(result, sizeof result, "%s/tty-result.out", dir);
    snprintf(cmd, sizeof cmd,
             "env -u DISPLAY -u WAYLAND_DISPLAY VBROKER_SOCKET=%s VBROKER_NO_AUTOSTART=1 "
             "%s/tests/test_pinentry --open-without-callback '%s' %s",
             btty.sock, VB_BUILD_DIR, uri_for("jack"), result);
    assert_int_equal(vb_ts_adopt_orphans(), 0); /* the tmux server daemonizes */
    char *start[] = { TMUX, "-S", tmux_sock, "-f", "/dev/null", "new-session", "-d", "-s", "vbpe",
                      "-x", "100", "-y", "30", cmd, NULL };
    char *out = NULL;
    int rc = tmux(start, &out);
    free(out);
    assert_int_equal(rc, 0);
    char *pid_cmd[] = { TMUX, "-S", tmux_sock, "display-message", "-p", "#{pid}", NULL };
    assert_int_equal(tmux(pid_cmd, &out), 0);
    pid_t server = (pid_t)atoi(out ? out : "0");
    free(out);
    assert_int_equal(vb_ts_adopt(server, "tmux"), 0);

    pane_wait w = { "jack@", NULL };
    int shown = vb_ts_wait_until(pane_shows, &w, vb_ts_scaled_ms(30000));
    char capture[300];
    snprintf(capture, sizeof capture, "%s/pinentry-tty-screen.out", dir);
    vb_ts_write_file(capture, w.last ? w.last : "", 0600);
    if (shown != 0)
        fail_msg("no pinentry prompt in the pane:\n%s", w.last ? w.last : "");
    char who[100];
    snprintf(who, sizeof who, "test_pinentry (pid ");
    assert_non_null(strstr(w.last, who));
    assert_non_null(strstr(w.last, "vbhostd login to jack@"));
    assert_null(strstr(w.last, PASSWORD));

    char *type[] = { TMUX, "-S", tmux_sock, "send-keys", "-t", "vbpe", PASSWORD, "Enter", NULL };
    assert_int_equal(tmux(type, &out), 0);
    free(out);
    assert_int_equal(vb_ts_wait_until(file_exists, result, vb_ts_scaled_ms(30000)), 0);
    char *text = vb_ts_read_file(result, NULL);
    assert_non_null(text);
    if (strncmp(text, "opened", 6) != 0)
        fail_msg("the program in the pane: %s", text);
    free(text);
    free(w.last);
    char *kill_server[] = { TMUX, "-S", tmux_sock, "kill-server", NULL };
    tmux(kill_server, &out);
    free(out);
    vb_ts_wait_pid_exit(server, vb_ts_scaled_ms(5000), NULL);
    vb_ts_stop(btty.pid, 5000);
}

/* The program in the tmux pane: opens without a callback, writes what happened. */
static int open_without_callback(const char *uri, const char *result)
{
    vb_error err;
    vb_conn *c = vb_open_auth(uri, NULL, 0, &err);
    char text[700];
    snprintf(text, sizeof text, "%s\n", c ? "opened" : err.message);
    vb_close(c);
    printf("%s", text);
    return vb_ts_write_file(result, text, 0600) == 0 && c ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--open-without-callback") == 0)
        return open_without_callback(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_asks_once_on_the_programs_display),
        cmocka_unit_test(test_cancel_is_a_clear_error),
        cmocka_unit_test(test_crash_is_a_clear_error),
        cmocka_unit_test(test_hung_pinentry_times_out_and_is_ended),
        cmocka_unit_test(test_non_interactive_never_starts_a_pinentry),
        cmocka_unit_test(test_terminal_of_another_user_is_refused),
        cmocka_unit_test(test_one_pinentry_at_a_time),
        cmocka_unit_test(test_pinentry_ends_when_its_program_leaves),
        cmocka_unit_test(test_host_key_question_is_a_confirm),
        cmocka_unit_test(test_hop_text_cannot_break_the_dialog),
        cmocka_unit_test(test_broker_obeys_non_interactive_over_a_screen),
        cmocka_unit_test(test_screen_values_that_are_not_plain_text_are_refused),
        cmocka_unit_test(test_real_pinentry_tty_in_tmux),
    };
    return cmocka_run_group_tests_name("pinentry", tests, group_setup, vb_ts_group_teardown);
}
