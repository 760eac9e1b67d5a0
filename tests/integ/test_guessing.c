/* Password guessing against a real vbhostd (SASL PLAIN on TCP, a real
 * sasldb): fifty connections, each from its own 127.0.0.N source address,
 * guess one account's password as fast as the server answers, for 10 s.
 * At most GUESS_BOUND wrong guesses may be answered, and at most as many
 * judged (the daemon's log: the rest were refused unjudged because the
 * account's queue was full; daemon/vbh_failures.c); a per-connection or
 * per-address delay answers and judges hundreds. Meanwhile another
 * account's right password logs in within 2 s.
 *
 * The measurement for docs/security.md: VB_GUESS_MEASURE_S=60 runs three
 * attacks (one address with 20 connections; 50 addresses with one each;
 * 50 connections, each from a fresh address) for that long and prints the guesses answered and judged per minute;
 * VB_GUESS_VBHOSTD=PATH measures another build of vbhostd (e.g. main's).
 * The daemon is started here and stopped by pid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vb_msg.h"
#include "vb_net.h"
#include "vb_testsupport.h"

#define REALM "LAB.TEST"
#define PW_ALICE "gu3ss-Me-Not-7"
#define PW_BOB "b0b-Is-Fine-4"
#define START_MS 10000
#define ATTACK_MS 10000
#define GUESS_BOUND 15        /* the queue answers 6 in 10 s: 0, .25, .75, 1.75, 3.75, 7.75 s */
#define OTHER_LOGIN_MS 2000
#define MAX_GUESSERS 64

/* ---- the daemon ---------------------------------------------------------- */

static char *dir;
static char conf[400], logpath[400];
static int port;
static pid_t pid;

static int start_hostd(void)
{
    char text[2000];
    snprintf(conf, sizeof conf, "%s/vbhostd.conf", dir);
    snprintf(logpath, sizeof logpath, "%s/vbhostd.log", dir);
    port = vb_ts_free_tcp_port();
    /* only keys every vbhostd knows, so VB_GUESS_VBHOSTD can measure an old one;
     * PLAIN needs no security layer (tcp_min_ssf 0): one round trip per guess */
    snprintf(text, sizeof text,
             "listen_tcp = \"127.0.0.1:%d\"\nauth_tcp = [\"sasl\"]\ntcp_min_ssf = 0\n"
             "state_dir = \"%s/state\"\nsasl_conf_dir = \"%s/sasl\"\n"
             "sasl_hostname = \"localhost\"\nsasl_realm = \"" REALM "\"\n"
             "max_anonymous_clients = 200\nlog_level = \"warn\"\n",
             port, dir, dir);
    if (vb_ts_write_file(conf, text, 0600) < 0)
        return -1;
    const char *bin = getenv("VB_GUESS_VBHOSTD");
    char *argv[] = { (char *)(bin && *bin ? bin : VB_BUILD_DIR "/vbhostd"), "-f", conf,
                     "--foreground", NULL };
    unlink(logpath); /* each run counts its own log lines */
    pid = vb_ts_spawn_daemon(argv, logpath);
    return pid > 0 && vb_ts_wait_tcp("127.0.0.1", port, vb_ts_scaled_ms(START_MS)) == 0 ? 0 : -1;
}

/* Guesses the daemon judged (logged as a wrong password and not refused
 * unjudged because the account's queue was full) since its log was fresh. */
static int judged_guesses(void)
{
    return vb_ts_count_in_file(logpath, "login failed: wrong password") -
           vb_ts_count_in_file(logpath, "failed logins queued");
}

static void stop_hostd(void)
{
    int status = vb_ts_stop(pid, vb_ts_scaled_ms(5000));
    pid = 0;
    assert_int_equal(vb_ts_check_exit("vbhostd", status, logpath), 0);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    dir = vb_ts_tmpdir("guessing");
    static const char *const users[] = { "alice:" PW_ALICE, "bob:" PW_BOB, NULL };
    return vb_ts_hostd_sasl_setup(dir, REALM, "plain", users, NULL);
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

/* ---- a client on the wire ------------------------------------------------- */

typedef struct wconn {
    int fd;
    uint32_t src;            /* 127.x.y.z: the low 24 bits */
    uint32_t serial;
    int awaiting_start;      /* the last CALL was AUTH_SASL_START */
    vb_frame_reader rd;
} wconn;

/* A TCP connection from 127.x.y.z (src: the low 24 bits) to the daemon. */
static int connect_from(uint32_t src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in me = { .sin_family = AF_INET }, to = { .sin_family = AF_INET };
    me.sin_addr.s_addr = htonl(0x7f000000u | (src & 0xffffffu));
    to.sin_addr.s_addr = htonl(0x7f000001u);
    to.sin_port = htons((uint16_t)port);
    if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof me) < 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* AUTH_SASL_INIT, or AUTH_SASL_START PLAIN for user with password. */
static int send_call(wconn *c, const char *user, const char *password)
{
    vb_msg_header h = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, ++c->serial,
                        user ? VB_HOST_PROC_AUTH_SASL_START : VB_HOST_PROC_AUTH_SASL_INIT,
                        VB_STATUS_OK, 0 };
    vb_enc enc;
    vb_enc_begin(&enc, &h);
    if (user) {
        char plain[200];
        int n = snprintf(plain, sizeof plain, "%c%s%c%s", 0, user, 0, password);
        vb_enc_array(&enc, 2);
        vb_enc_str(&enc, "PLAIN");
        vb_enc_bin(&enc, plain, (size_t)n);
    } else {
        vb_enc_array(&enc, 0);
    }
    uint8_t *frame;
    size_t len;
    vb_error err;
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, &err), 0);
    int rc = vb_net_write_all(c->fd, frame, len, NULL);
    vb_frame_free(frame, len);
    c->awaiting_start = user != NULL;
    return rc;
}

static void wconn_open(wconn *c, uint32_t src)
{
    memset(c, 0, sizeof *c);
    c->src = src;
    c->fd = connect_from(src);
    vb_frame_reader_init(&c->rd, VB_FRAME_MAX_POSTAUTH);
    if (c->fd >= 0 && send_call(c, NULL, NULL) < 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void wconn_close(wconn *c)
{
    vb_frame_reader_clear(&c->rd);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Read what is there; for each whole message call on_msg. 0, or -1 when
 * the server closed (or sent garbage). */
static int wconn_pump(wconn *c, void (*on_msg)(wconn *, const vb_msg *, void *), void *arg)
{
    uint8_t buf[8192];
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    size_t off = 0;
    while (off < (size_t)n) {
        size_t used = 0;
        vb_error err;
        int st = vb_frame_reader_feed(&c->rd, buf + off, (size_t)n - off, &used, &err);
        off += used;
        if (st == VB_FRAME_ERROR)
            return -1;
        if (st == VB_FRAME_READY) {
            size_t len;
            uint8_t *p = vb_frame_reader_take(&c->rd, &len);
            vb_msg m;
            if (vb_msg_decode(&m, p, len, &err) < 0)
                return -1;
            on_msg(c, &m, arg);
            vb_msg_clear(&m);
        }
    }
    return 0;
}

/* ---- the attack ------------------------------------------------------------ */

typedef struct attack {
    int64_t end_ms;
    _Atomic long answered;   /* wrong guesses answered (AUTH_FAILED) before end_ms */
    long accepted;           /* must stay 0: every guess is wrong */
    long sent;
    const char *account;
} attack;

static void on_guess_reply(wconn *c, const vb_msg *m, void *arg)
{
    attack *a = arg;
    if (!c->awaiting_start) { /* the INIT's mechanism list: guess */
        char guess[64];
        snprintf(guess, sizeof guess, "wrong-%ld", a->sent++);
        send_call(c, a->account, guess);
        return;
    }
    if (m->hdr.status == VB_STATUS_OK) {
        a->accepted++;
        return;
    }
    vb_error e;
    if (vb_msg_error_body(m, &e, NULL) == 0 && e.code == VB_ERR_AUTH_FAILED && vb_ts_now_ms() < a->end_ms)
        a->answered++;
    send_call(c, NULL, NULL); /* a new exchange for the next guess */
}

/* The source of a guesser's next connection: 127.0.0.first .. first+nsrc-1
 * round robin, or (nsrc 0) a fresh address each time, from 127.1.0.0 on. */
static uint32_t next_source(int i, int first, int nsrc)
{
    static uint32_t fresh = 0x010000u;
    return nsrc ? (uint32_t)(first + i % nsrc) : fresh++;
}

/* nconn connections guess account's password until ms have passed;
 * each reconnects when closed. */
static void run_attack(attack *a, int nconn, int first, int nsrc, int ms)
{
    wconn c[MAX_GUESSERS];
    struct pollfd p[MAX_GUESSERS];
    assert_true(nconn <= MAX_GUESSERS);
    a->end_ms = vb_ts_now_ms() + ms;
    for (int i = 0; i < nconn; i++)
        wconn_open(&c[i], next_source(i, first, nsrc));
    while (vb_ts_now_ms() < a->end_ms) {
        for (int i = 0; i < nconn; i++) {
            if (c[i].fd < 0) { /* closed after its attempts: come back */
                wconn_close(&c[i]);
                wconn_open(&c[i], next_source(i, first, nsrc));
            }
            p[i] = (struct pollfd){ .fd = c[i].fd, .events = POLLIN };
        }
        int left = (int)(a->end_ms - vb_ts_now_ms());
        if (poll(p, (nfds_t)nconn, left > 100 ? 100 : left > 0 ? left : 0) < 0 && errno != EINTR)
            fail_msg("poll: %s", strerror(errno));
        for (int i = 0; i < nconn; i++)
            if (p[i].revents && c[i].fd >= 0 && wconn_pump(&c[i], on_guess_reply, a) < 0)
                wconn_close(&c[i]);
    }
    for (int i = 0; i < nconn; i++)
        wconn_close(&c[i]);
}

/* ---- the owner of another account ----------------------------------------- */

typedef struct login {
    attack *during;          /* start once this attack has had a few answers */
    int64_t took_ms;         /* -1: no success */
} login;

static int attack_under_way(void *arg)
{
    return ((attack *)arg)->answered >= 3;
}

static void on_login_reply(wconn *c, const vb_msg *m, void *arg)
{
    login *l = arg;
    if (!c->awaiting_start)
        send_call(c, "bob", PW_BOB);
    else if (m->hdr.status == VB_STATUS_OK)
        l->took_ms = 0; /* done: the caller stamps the time */
}

static void *login_thread(void *arg)
{
    login *l = arg;
    l->took_ms = -1;
    if (vb_ts_wait_until(attack_under_way, l->during, ATTACK_MS) < 0)
        return NULL;
    int64_t t0 = vb_ts_now_ms();
    wconn c;
    wconn_open(&c, 1);
    while (c.fd >= 0 && l->took_ms < 0 && vb_ts_now_ms() - t0 < 4 * OTHER_LOGIN_MS) {
        struct pollfd p = { .fd = c.fd, .events = POLLIN };
        if (poll(&p, 1, 100) > 0 && wconn_pump(&c, on_login_reply, l) < 0)
            break;
    }
    if (l->took_ms == 0)
        l->took_ms = vb_ts_now_ms() - t0;
    wconn_close(&c);
    return NULL;
}

/* ---- tests ------------------------------------------------------------------ */

/* 50 source addresses, one connection each, against alice: the answers are
 * bounded by alice's queue; bob gets in at once meanwhile. */
static void test_many_addresses_one_account(void **state)
{
    (void)state;
    assert_int_equal(start_hostd(), 0);
    attack a = { .account = "alice" };
    login l = { .during = &a, .took_ms = -1 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, login_thread, &l), 0);
    run_attack(&a, 50, 2, 50, ATTACK_MS);
    pthread_join(th, NULL);
    long answered = a.answered;
    stop_hostd();
    int judged = judged_guesses();
    print_message("50 addresses x 1 connection, %d s: %ld wrong guesses answered, %d judged "
                  "(%ld sent); bob logged in in %lld ms\n", ATTACK_MS / 1000, answered, judged,
                  a.sent, (long long)l.took_ms);
    assert_int_equal(a.accepted, 0);
    assert_true(a.sent > 0);
    if (answered > GUESS_BOUND || judged > GUESS_BOUND)
        fail_msg("guesses on one account in %d s: %ld answered, %d judged (bound %d)",
                 ATTACK_MS / 1000, answered, judged, GUESS_BOUND);
    assert_true(answered >= 3); /* the attack did reach the server */
    if (l.took_ms < 0 || l.took_ms >= OTHER_LOGIN_MS)
        fail_msg("bob's login during the attack: %lld ms (limit %d; -1: failed)",
                 (long long)l.took_ms, OTHER_LOGIN_MS);
}

/* The figures for docs/security.md (VB_GUESS_MEASURE_S=N): guesses answered
 * and judged per minute, (a) one address with 20 connections, (b) 50
 * addresses, (c) a fresh address for every connection. */
static void test_measure(void **state)
{
    (void)state;
    const char *s = getenv("VB_GUESS_MEASURE_S");
    if (!s || atoi(s) <= 0)
        skip();
    int ms = atoi(s) * 1000;
    static const struct { const char *what; int nconn, first, nsrc; } runs[] = {
        { "(a) 1 address, 20 connections", 20, 1, 1 },
        { "(b) 50 addresses, 1 connection each", 50, 2, 50 },
        { "(c) 50 connections, a fresh address for each", 50, 0, 0 },
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        assert_int_equal(start_hostd(), 0);
        attack a = { .account = "alice" };
        run_attack(&a, runs[i].nconn, runs[i].first, runs[i].nsrc, ms);
        long answered = a.answered;
        stop_hostd();
        int judged = judged_guesses();
        print_message("%s, %d s: %ld wrong guesses answered (%.0f/min), %d judged (%.0f/min)\n",
                      runs[i].what, ms / 1000, answered, (double)answered * 60000.0 / ms, judged,
                      (double)judged * 60000.0 / ms);
        assert_int_equal(a.accepted, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_addresses_one_account),
        cmocka_unit_test(test_measure),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
