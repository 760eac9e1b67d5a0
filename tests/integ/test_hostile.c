/* Hostile peers against a real vbhostd (SASL on TCP, tokens and SASL on its
 * unix socket) and a real vbrokerd: frames over the limit, declared counts
 * that cannot be satisfied, deep nesting, garbage, floods of unsolicited
 * CALLBACK_REPLYs, 1000 idle unauthenticated connections, clients that
 * send one byte per second (before authentication: auth_timeout; after it,
 * and to the broker: frame_timeout), and a server that claims another
 * server's id.
 *
 * Every refusal must be a clear error (or, where docs/protocol.md §5.6 says
 * so, a dropped connection) and every daemon must stay alive and keep serving
 * a normal open afterwards. Daemons are started here and stopped by pid.
 *
 * VB_TEST_DAEMON_WRAPPER="valgrind --error-exitcode=99 ..." runs every daemon
 * this file starts under that command; the last test then requires each one
 * to exit cleanly on SIGTERM (not 99). VB_TEST_SLOWDOWN=N stretches deadlines. */
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
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vb_msg.h"
#include "vb_net.h"
#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vb_testsupport_wire.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "h0stile-Pw-9"
#define START_MS 10000
#define MAX_ANON 50
#define IDLE_CONNS 1000

/* ---- deadlines ----------------------------------------------------------- */

/* RSS bounds in KiB. AddressSanitizer keeps freed memory in quarantine (up
 * to 256 MiB), so under SAN=1 a bounded daemon still grows by what it
 * freed: the bound is then only a sanity check. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_SLACK 8
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_SLACK 8
#endif
#endif
#ifndef RSS_SLACK
#define RSS_SLACK 1
#endif

/* ---- daemons ------------------------------------------------------------- */

typedef struct hostd {
    const char *name;
    const char *extra;     /* more vbhostd.conf lines */
    int tcp;               /* also listen on TCP */
    vb_ts_hostd d;
} hostd;

typedef struct broker {
    char sock[400], log[400], state[400];
    pid_t pid;
} broker;

static char *dir;
static hostd hA = { "hA", "auth_unix = [\"token\", \"sasl\"]\nauth_tcp = [\"sasl\"]\n"
                          "max_anonymous_clients = 100\n", 1, { .pid = 0 } };
static hostd hB = { "hB", "auth_unix = [\"token\", \"sasl\"]\n", 0, { .pid = 0 } };
/* all of the 1000 idle connections come from 127.0.0.1 and stay silent: one
 * group that may hold every slot, for longer than the first-frame deadline */
static hostd hL = { "hL", "auth_unix = [\"peer\"]\nauth_tcp = [\"sasl\"]\n"
                          "max_anonymous_clients = 50\nmax_anonymous_per_peer = 50\n"
                          "first_frame_timeout = 60\n", 1, { .pid = 0 } };
static hostd hT = { "hT", "auth_unix = [\"peer\"]\nauth_tcp = [\"sasl\"]\nauth_timeout = 2\n"
                          "frame_timeout = 2\nkeepalive_timeout = 2\n",
                    1, { .pid = 0 } };
/* defaults for the anonymous slots (20, 5 per peer); short deadlines */
static hostd hS = { "hS", "auth_unix = [\"peer\"]\nauth_tcp = [\"sasl\"]\n"
                          "first_frame_timeout = 2\noutput_timeout = 2\n", 1, { .pid = 0 } };
/* the reply flood, before login on either socket: PINGs are not logged at
 * info, so it answers them quickly */
static hostd hF = { "hF", "auth_unix = [\"sasl\"]\nauth_tcp = [\"sasl\"]\noutput_timeout = 2\n"
                          "log_level = \"info\"\n", 1, { .pid = 0 } };
static broker the_broker;

/* argv, behind VB_TEST_DAEMON_WRAPPER's words when it is set */
static int start_hostd(hostd *h)
{
    return vb_ts_hostd_start_sasl(&h->d, dir, h->name, h->tcp, REALM,
                                  "sasl_hostname = \"localhost\"\n%s", h->extra);
}

static int start_broker(broker *b)
{
    snprintf(b->sock, sizeof b->sock, "%s/brk-run/sock", dir);
    snprintf(b->log, sizeof b->log, "%s/vbrokerd.log", dir);
    snprintf(b->state, sizeof b->state, "%s/brk-state", dir);
    /* no password kept in memory and no idle host connection kept: every
     * open below logs in again (with the cached token when there is one) */
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", b->sock, "--state-dir", b->state,
                     "--secret-ttl", "0", "--upstream-idle", "0", "--log-level", "debug",
                     "--prompt-timeout", "20", "--frame-timeout", "2", NULL };
    b->pid = vb_ts_spawn_daemon(argv, b->log);
    return b->pid > 0 && vb_ts_wait_unix_socket(b->sock, vb_ts_scaled_ms(START_MS)) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* a dropped peer must show up as EPIPE, not kill us */
    /* 1000 idle connections plus everything else: make sure the fds exist
     * (the daemons inherit the limit) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    dir = vb_ts_tmpdir("hostile");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256 digest-md5", users, NULL) < 0)
        return -1;
    if (start_hostd(&hA) < 0 || start_hostd(&hB) < 0 || start_hostd(&hL) < 0 ||
        start_hostd(&hT) < 0 || start_hostd(&hS) < 0 || start_hostd(&hF) < 0 || start_broker(&the_broker) < 0)
        return -1;
    setenv("VBROKER_SOCKET", the_broker.sock, 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

/* ---- the app side: libvbroker ------------------------------------------- */

static char *unix_uri(const hostd *h, const char *params)
{
    static char buf[4][600];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 600, "test+unix:///default?socket=%s%s%s", h->d.sock, params ? "&" : "",
             params ? params : "");
    return b;
}

static char *tcp_uri(const hostd *h)
{
    static char buf[200];
    snprintf(buf, sizeof buf, "test+tcp://localhost:%d/default?auth=sasl.DIGEST-MD5", h->d.port);
    return buf;
}

/* A normal open through the broker, answered by the form when f is set:
 * the list of domains must come back. 0 or -1 with err set. */
static int open_list(const char *uri, vb_ts_form *f, vb_error *err)
{
    vb_auth auth = { vb_ts_form_types, 2, f ? vb_ts_form_cb : NULL, f };
    size_t n = 0;
    int rc = vb_ts_open_list(uri, &auth, &n, err);
    if (rc == 0 && n == 0)
        rc = vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_CLIENT, "no domains listed");
    return rc;
}

static int logins_cached(void)
{
    vb_broker_status st;
    vb_error err;
    if (vb_broker_get_status(&st, &err) < 0)
        return -1;
    int n = (int)st.nlogins;
    vb_broker_status_clear(&st);
    return n;
}

/* alive, and a password login over TCP (DIGEST-MD5 with its security layer)
 * through the broker still works */
static void assert_hostd_healthy(const hostd *h)
{
    assert_int_equal(kill(h->d.pid, 0), 0);
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_error err;
    const char *uri = h->tcp ? tcp_uri(h) : unix_uri(h, "auth=sasl");
    if (open_list(uri, &f, &err) < 0)
        fail_msg("%s no longer serves a normal open (%s): %s", h->name, uri, err.message);
}

static void assert_broker_healthy(void)
{
    assert_int_equal(kill(the_broker.pid, 0), 0);
    vb_broker_status st;
    vb_error err;
    if (vb_broker_get_status(&st, &err) < 0)
        fail_msg("the broker no longer answers STATUS: %s", err.message);
    vb_broker_status_clear(&st);
    assert_hostd_healthy(&hA);
}

static void assert_log_soon(const char *path, const char *needle)
{
    if (vb_ts_wait_for_log(path, needle, 1, vb_ts_scaled_ms(5000)) < 0)
        fail_msg("%s never said '%s'", path, needle);
}

/* The daemons log why they dropped a client ("client X disconnected: frame
 * of N bytes exceeds the limit ..."); count the drops for a reason other
 * than the peer leaving. */
typedef struct drops {
    const char *log, *prefix, *peer_left;
    int min;
} drops;

static int count_drops(const drops *d)
{
    return vb_ts_count_in_file(d->log, d->prefix) - vb_ts_count_in_file(d->log, d->peer_left);
}

static int drops_cond(void *arg)
{
    drops *d = arg;
    return count_drops(d) >= d->min;
}

/* the drop that just happened was logged with its reason */
static void assert_drop_explained(drops *d, int before, const char *what)
{
    d->min = before + 1;
    if (vb_ts_wait_until(drops_cond, d, vb_ts_scaled_ms(5000)) < 0)
        fail_msg("%s: no reason logged in %s for dropping the client that sent %s", d->log,
                 d->prefix, what);
}

/* ---- raw wire ------------------------------------------------------------ */

/* one frame: the 4-byte length, then payload */
static int send_payload(int fd, const uint8_t *payload, size_t len)
{
    uint8_t prefix[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                          (uint8_t)len };
    return vb_ts_send_all(fd, prefix, 4) < 0 ? -1 : vb_ts_send_all(fd, payload, len);
}

/* a CALL or REPLY header of prog's current version, conn_id 0 */
static vb_msg_header header(uint32_t prog, uint32_t type, uint32_t serial, uint32_t proc)
{
    vb_msg_header h = { prog, prog == VB_PROG_HOST ? VB_PROG_HOST_VERSION : VB_PROG_BROKER_VERSION,
                        type, serial, proc, VB_STATUS_OK, 0 };
    return h;
}

/* Append one encoded message to a growing buffer (so floods go out in one write). */
static void append_msg(uint8_t **buf, size_t *len, uint32_t prog, uint32_t type, uint32_t serial,
                       uint32_t proc, vb_ts_body_fn body, const void *arg)
{
    vb_msg_header h = header(prog, type, serial, proc);
    size_t flen;
    uint8_t *frame = vb_ts_wire_encode(&h, body, arg, &flen);
    assert_non_null(frame);
    *buf = realloc(*buf, *len + flen);
    assert_non_null(*buf);
    memcpy(*buf + *len, frame, flen);
    *len += flen;
    vb_frame_free(frame, flen);
}

static int send_msg(int fd, uint32_t prog, uint32_t type, uint32_t serial, uint32_t proc,
                    vb_ts_body_fn body, const void *arg)
{
    vb_msg_header h = header(prog, type, serial, proc);
    return vb_ts_send_msg(fd, &h, body, arg);
}

/* 0 once the peer has closed fd (EOF or reset; anything it sent first is
 * skipped), -1 if it is still open after timeout_ms. */
static int wait_dropped(int fd, int timeout_ms)
{
    int64_t deadline = vb_ts_now_ms() + timeout_ms;
    uint8_t buf[4096];
    for (;;) {
        int64_t left = deadline - vb_ts_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
            return 0;
    }
}

static int connect_tcp(const hostd *h)
{
    vb_error err;
    int fd = vb_net_connect_tcp("127.0.0.1", h->d.port, vb_ts_scaled_ms(5000), &err);
    if (fd < 0)
        fail_msg("connect to %s: %s", h->name, err.message);
    return fd;
}

static int connect_unix(const char *path)
{
    vb_error err;
    int fd = vb_net_connect_unix(path, &err);
    if (fd < 0)
        fail_msg("connect to %s: %s", path, err.message);
    return fd;
}

/* A unix connection to h, logged in as an allowed peer (AUTH_PEER, serial 1). */
static int connect_as_peer(vb_ts_wire *c, const hostd *h)
{
    int fd = connect_unix(h->d.sock);
    vb_ts_wire_adopt(c, fd);
    assert_int_equal(send_msg(fd, VB_PROG_HOST, VB_MSG_CALL, 1, VB_HOST_PROC_AUTH_PEER, NULL, NULL),
                     0);
    vb_msg m;
    assert_int_equal(vb_ts_wire_read(c, vb_ts_scaled_ms(5000), &m), 1);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    vb_msg_clear(&m);
    return fd;
}

/* the server answers AUTH_LIST on this connection (serial checked) */
static void assert_auth_list_answered(vb_ts_wire *c, uint32_t serial)
{
    assert_int_equal(send_msg(c->fd, VB_PROG_HOST, VB_MSG_CALL, serial, VB_HOST_PROC_AUTH_LIST,
                              NULL, NULL),
                     0);
    vb_msg m;
    int rc = vb_ts_wire_read(c, vb_ts_scaled_ms(5000), &m);
    if (rc != 1)
        fail_msg("no answer to AUTH_LIST (%s)", rc == 0 ? "connection closed" : "timeout");
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    assert_int_equal(m.hdr.serial, serial);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    vb_rd rd;
    vb_error err;
    const char *id;
    size_t idlen;
    assert_int_equal(vb_rd_init(&rd, m.body, &err), 0);
    assert_int_equal(vb_rd_skip(&rd, &err), 0);
    assert_int_equal(vb_rd_str(&rd, &id, &idlen, &err), 0);
    assert_int_equal(idlen, 32);
    vb_msg_clear(&m);
}

/* ---- hostile byte strings ------------------------------------------------ */

typedef struct hostile {
    const char *what;
    uint8_t *bytes; /* what is written, length prefix included */
    size_t len;
} hostile;

static uint64_t rng_state;

static uint8_t rng_byte(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)(rng_state >> 24);
}

static hostile framed(const char *what, const uint8_t *payload, size_t len)
{
    hostile h = { what, malloc(len + 4), len + 4 };
    h.bytes[0] = (uint8_t)(len >> 24);
    h.bytes[1] = (uint8_t)(len >> 16);
    h.bytes[2] = (uint8_t)(len >> 8);
    h.bytes[3] = (uint8_t)len;
    memcpy(h.bytes + 4, payload, len);
    return h;
}

static hostile raw(const char *what, const void *bytes, size_t len)
{
    hostile h = { what, malloc(len), len };
    memcpy(h.bytes, bytes, len);
    return h;
}

/* a valid HOST or BROKER header array whose body is `tail` */
static hostile with_header(const char *what, uint32_t prog, const uint8_t *tail, size_t tlen)
{
    uint8_t payload[2048];
    uint8_t hdr[] = { 0x98, (uint8_t)prog, prog == VB_PROG_HOST ? 2 : 1, 0x00, 0x01,
                      prog == VB_PROG_HOST ? VB_HOST_PROC_AUTH_LIST : VB_BROKER_PROC_STATUS,
                      0x00, 0x00 };
    memcpy(payload, hdr, sizeof hdr);
    memcpy(payload + sizeof hdr, tail, tlen);
    return framed(what, payload, sizeof hdr + tlen);
}

/* Every malformed input of docs/protocol.md §5 that must cost the sender its
 * connection and nothing else. limit: the receiver's frame limit. */
static size_t build_hostile(hostile *out, uint32_t prog, uint32_t limit)
{
    size_t n = 0;
    uint32_t over = limit + 1;
    uint8_t prefix[4] = { (uint8_t)(over >> 24), (uint8_t)(over >> 16), (uint8_t)(over >> 8),
                          (uint8_t)over };
    out[n++] = raw("length prefix one over the frame limit", prefix, 4);
    static const uint8_t max_prefix[4] = { 0xff, 0xff, 0xff, 0xff };
    out[n++] = raw("length prefix 2^32-1", max_prefix, 4);
    static const uint8_t zero[4] = { 0, 0, 0, 0 };
    out[n++] = raw("zero-length frame", zero, 4);
    static const uint8_t arr32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    out[n++] = framed("array of 2^32-1 elements in 5 bytes", arr32, sizeof arr32);
    out[n++] = with_header("body: array of 2^32-1 elements", prog, arr32, sizeof arr32);
    static const uint8_t map32[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
    out[n++] = with_header("body: map of 2^32-1 entries", prog, map32, sizeof map32);
    static const uint8_t str32[] = { 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 'x' };
    out[n++] = with_header("body: str of 2^32-1 bytes", prog, str32, sizeof str32);
    static const uint8_t bin32[] = { 0x91, 0xc6, 0xff, 0xff, 0xff, 0xff, 'x' };
    out[n++] = with_header("body: bin of 2^32-1 bytes", prog, bin32, sizeof bin32);
    uint8_t nest[1025];
    memset(nest, 0x91, 1024); /* fixarray of 1, 1024 times */
    nest[1024] = 0xc0;
    out[n++] = framed("1 KiB of nested array headers", nest, sizeof nest);
    out[n++] = with_header("body: 1 KiB of nested array headers", prog, nest, 1017);
    static const uint8_t ext[] = { 0x91, 0xd4, 0x01, 0x00 };
    out[n++] = with_header("body: msgpack ext type", prog, ext, sizeof ext);
    static const uint8_t trailing[] = { 0x90, 0xc0 };
    out[n++] = with_header("a second value after the message", prog, trailing, sizeof trailing);
    static const uint8_t short_hdr[] = { 0x97, 0x02, 0x02, 0x00, 0x01, 0x01, 0x00, 0x00 };
    out[n++] = framed("a header of 7 fields", short_hdr, sizeof short_hdr);
    static const uint8_t bad_type[] = { 0x98, 0x02, 0x02, 0x09, 0x01, 0x01, 0x00, 0x00, 0x90 };
    out[n++] = framed("message type 9", bad_type, sizeof bad_type);
    static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    out[n++] = raw("an HTTP request", http, sizeof http - 1);
    static const char ssh[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
    out[n++] = raw("an SSH banner", ssh, sizeof ssh - 1);
    static const uint8_t tls[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
                                   0x00, 0x01, 0xfc, 0x03, 0x03 };
    out[n++] = raw("a TLS ClientHello", tls, sizeof tls);
    for (uint64_t seed = 1; seed <= 16; seed++) {
        rng_state = seed * 0x9e3779b97f4a7c15ull;
        uint8_t junk[1500];
        size_t len = 64 + seed * 80;
        for (size_t i = 0; i < len; i++)
            junk[i] = rng_byte();
        out[n++] = framed("a frame of random bytes", junk, len);
    }
    return n;
}

static void free_hostile(hostile *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(h[i].bytes);
}

/* ---- tests: malformed input ---------------------------------------------- */

static void test_malformed_frames_dropped_by_vbhostd(void **state)
{
    (void)state;
    hostile h[64];
    size_t n = build_hostile(h, VB_PROG_HOST, VB_FRAME_MAX_PREAUTH);
    long rss0 = vb_ts_rss_kib(hA.d.pid);
    drops dA = { hA.d.log, "disconnected: ", "disconnected: peer closed", 0 };
    drops dL = { hL.d.log, "disconnected: ", "disconnected: peer closed", 0 };
    for (size_t i = 0; i < n; i++) {
        int before = count_drops(&dA);
        int fd = connect_tcp(&hA);
        assert_int_equal(vb_ts_send_all(fd, h[i].bytes, h[i].len), 0);
        if (wait_dropped(fd, vb_ts_scaled_ms(5000)) < 0)
            fail_msg("vbhostd kept a TCP client that sent %s", h[i].what);
        close(fd);
        assert_drop_explained(&dA, before, h[i].what);
    }
    /* the same, on an authenticated unix connection: the limit is then max_frame (4 MiB) */
    hostile post[64];
    size_t npost = build_hostile(post, VB_PROG_HOST, VB_FRAME_MAX_POSTAUTH);
    for (size_t i = 0; i < npost; i++) {
        int before = count_drops(&dL);
        vb_ts_wire c;
        int fd = connect_as_peer(&c, &hL);
        assert_int_equal(vb_ts_send_all(fd, post[i].bytes, post[i].len), 0);
        if (wait_dropped(fd, vb_ts_scaled_ms(5000)) < 0)
            fail_msg("vbhostd kept an authenticated client that sent %s", post[i].what);
        vb_ts_wire_close(&c);
        assert_drop_explained(&dL, before, post[i].what);
    }
    print_message("vbhostd dropped %zu + %zu malformed inputs; RSS %ld -> %ld KiB\n", n, npost,
                  rss0, vb_ts_rss_kib(hA.d.pid));
    free_hostile(h, n);
    free_hostile(post, npost);
    assert_hostd_healthy(&hA);
    assert_hostd_healthy(&hL);
}

static void test_malformed_frames_dropped_by_broker(void **state)
{
    (void)state;
    hostile h[64];
    size_t n = build_hostile(h, VB_PROG_BROKER, VB_FRAME_MAX_POSTAUTH);
    drops db = { the_broker.log, " left: ", " left: peer closed", 0 };
    for (size_t i = 0; i < n; i++) {
        int before = count_drops(&db);
        int fd = connect_unix(the_broker.sock);
        assert_int_equal(vb_ts_send_all(fd, h[i].bytes, h[i].len), 0);
        if (wait_dropped(fd, vb_ts_scaled_ms(5000)) < 0)
            fail_msg("vbrokerd kept a client that sent %s", h[i].what);
        close(fd);
        assert_drop_explained(&db, before, h[i].what);
    }
    free_hostile(h, n);
    assert_broker_healthy();
}

/* A frame of exactly the pre-auth limit is still read (and answered), one
 * byte more is not: the limit is the limit. */
static void test_preauth_limit_is_exact(void **state)
{
    (void)state;
    /* an AUTH_LIST call padded with a trailing bin field to exactly 64 KiB */
    uint8_t *payload = calloc(1, VB_FRAME_MAX_PREAUTH);
    uint8_t hdr[] = { 0x98, 0x02, 0x02, 0x00, 0x07, VB_HOST_PROC_AUTH_LIST, 0x00, 0x00, 0x91,
                      0xc6 };
    size_t binlen = VB_FRAME_MAX_PREAUTH - sizeof hdr - 4;
    memcpy(payload, hdr, sizeof hdr);
    payload[sizeof hdr] = (uint8_t)(binlen >> 24);
    payload[sizeof hdr + 1] = (uint8_t)(binlen >> 16);
    payload[sizeof hdr + 2] = (uint8_t)(binlen >> 8);
    payload[sizeof hdr + 3] = (uint8_t)binlen;
    int fd = connect_tcp(&hA);
    vb_ts_wire c;
    vb_ts_wire_adopt(&c, fd);
    assert_int_equal(send_payload(fd, payload, VB_FRAME_MAX_PREAUTH), 0);
    vb_msg m;
    int rc = vb_ts_wire_read(&c, vb_ts_scaled_ms(5000), &m);
    if (rc != 1)
        fail_msg("a frame of exactly 64 KiB was not answered (%d)", rc);
    /* AUTH_LIST's max body is 256: a well-delimited oversized call is refused
     * with TOO_LARGE, and the connection stays (§5.6) */
    assert_int_equal(m.hdr.serial, 7);
    assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
    vb_error e, err;
    assert_int_equal(vb_msg_error_body(&m, &e, &err), 0);
    assert_int_equal(e.code, VB_ERR_TOO_LARGE);
    vb_msg_clear(&m);
    assert_auth_list_answered(&c, 8);
    /* now one byte more */
    payload[sizeof hdr + 3] = (uint8_t)(binlen + 1);
    uint8_t *bigger = calloc(1, VB_FRAME_MAX_PREAUTH + 1);
    memcpy(bigger, payload, VB_FRAME_MAX_PREAUTH);
    assert_int_equal(send_payload(fd, bigger, VB_FRAME_MAX_PREAUTH + 1), 0);
    assert_int_equal(wait_dropped(fd, vb_ts_scaled_ms(5000)), 0);
    vb_ts_wire_close(&c);
    free(payload);
    free(bigger);
    assert_hostd_healthy(&hA);
}

/* ---- tests: CALLBACK_REPLY floods ---------------------------------------- */

static void pack_fake_answer(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 1);
    vb_enc_array(enc, 2);
    vb_enc_bin(enc, "mallory", 7);
    vb_enc_bin(enc, "not-the-password", 16);
}

static void append_flood(uint8_t **buf, size_t *len, uint32_t prog, uint32_t proc, int n,
                         uint32_t first_serial)
{
    for (int i = 0; i < n; i++)
        append_msg(buf, len, prog, VB_MSG_CALLBACK_REPLY, first_serial + (uint32_t)i, proc,
                   pack_fake_answer, NULL);
}

static void test_callback_reply_flood_at_vbhostd(void **state)
{
    (void)state;
    long rss0 = vb_ts_rss_kib(hA.d.pid);
    /* before authentication, on TCP */
    int fd = connect_tcp(&hA);
    vb_ts_wire c;
    vb_ts_wire_adopt(&c, fd);
    uint8_t *flood = NULL;
    size_t len = 0;
    append_flood(&flood, &len, VB_PROG_HOST, VB_HOST_PROC_CRED_FILL, 1000, 1);
    assert_int_equal(vb_ts_send_all(fd, flood, len), 0);
    assert_auth_list_answered(&c, 1);
    /* the connection still logs in: nothing of the flood was taken as an answer */
    assert_auth_list_answered(&c, 2);
    vb_ts_wire_close(&c);
    /* after authentication (peer, unix), then a driver call on the same connection */
    fd = connect_as_peer(&c, &hL);
    vb_msg m;
    assert_int_equal(vb_ts_send_all(fd, flood, len), 0);
    assert_auth_list_answered(&c, 2);
    assert_int_equal(send_msg(fd, VB_PROG_HOST, VB_MSG_CALL, 3, VB_HOST_PROC_GET_HOSTNAME, NULL,
                              NULL),
                     0);
    assert_int_equal(vb_ts_wire_read(&c, vb_ts_scaled_ms(5000), &m), 1);
    /* no hypervisor connection is open on it yet: a clear NOT_OPEN, not silence */
    assert_int_equal(m.hdr.serial, 3);
    assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
    vb_error e, err;
    assert_int_equal(vb_msg_error_body(&m, &e, &err), 0);
    assert_int_equal(e.code, VB_ERR_NOT_OPEN);
    vb_msg_clear(&m);
    vb_ts_wire_close(&c);
    free(flood);
    long rss1 = vb_ts_rss_kib(hA.d.pid);
    print_message("vbhostd RSS around 2 x 1000 CALLBACK_REPLYs: %ld -> %ld KiB\n", rss0, rss1);
    assert_true(rss1 - rss0 < 16 * 1024 * RSS_SLACK);
    assert_hostd_healthy(&hA);
    assert_hostd_healthy(&hL);
}

/* BROKER OPEN, asking for a password; the app's side of the wire by hand */
static const char *open_uri;

static void pack_broker_open(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 5);
    vb_enc_str(enc, open_uri);
    vb_enc_u64(enc, 0);
    vb_enc_array(enc, 2);
    vb_enc_u64(enc, VB_CRED_AUTHNAME);
    vb_enc_u64(enc, VB_CRED_PASSPHRASE);
    vb_enc_array(enc, 0);
    vb_enc_bool(enc, 1);
}

typedef struct answer {
    uint32_t types[16];
    uint32_t n;
} answer;

static void pack_answer(vb_enc *enc, const void *arg)
{
    const answer *a = arg;
    vb_enc_array(enc, 1);
    vb_enc_array(enc, a->n);
    for (uint32_t i = 0; i < a->n; i++) {
        const char *v = a->types[i] == VB_CRED_AUTHNAME     ? "alice"
                        : a->types[i] == VB_CRED_PASSPHRASE ? PASSWORD
                                                            : NULL;
        if (v)
            vb_enc_bin(enc, v, strlen(v));
        else
            vb_enc_nil(enc);
    }
}

/* read a CRED_REQUEST callback: its items' types, its retry flag */
static void read_cred_request(const vb_msg *m, answer *a, int *retry)
{
    vb_rd rd, hops, items, item;
    vb_error err;
    assert_int_equal(vb_rd_init(&rd, m->body, &err), 0);
    assert_int_equal(vb_rd_skip(&rd, &err), 0);
    assert_int_equal(vb_rd_array(&rd, &hops, &err), 0);
    assert_int_equal(vb_rd_bool(&rd, retry, &err), 0);
    assert_int_equal(vb_rd_array(&rd, &items, &err), 0);
    a->n = 0;
    while (vb_rd_has_more(&items) && a->n < 16) {
        assert_int_equal(vb_rd_array(&items, &item, &err), 0);
        assert_int_equal(vb_rd_u32(&item, &a->types[a->n++], &err), 0);
    }
}

static void test_callback_reply_flood_at_broker(void **state)
{
    (void)state;
    long rss0 = vb_ts_rss_kib(the_broker.pid);
    /* 1000 answers nobody asked for, then STATUS on the same connection */
    int fd = connect_unix(the_broker.sock);
    vb_ts_wire c;
    vb_ts_wire_adopt(&c, fd);
    uint8_t *flood = NULL;
    size_t len = 0;
    append_flood(&flood, &len, VB_PROG_BROKER, VB_BROKER_PROC_CRED_REQUEST, 1000, 1);
    assert_int_equal(vb_ts_send_all(fd, flood, len), 0);
    assert_int_equal(send_msg(fd, VB_PROG_BROKER, VB_MSG_CALL, 1, VB_BROKER_PROC_STATUS, NULL,
                              NULL),
                     0);
    vb_msg m;
    assert_int_equal(vb_ts_wire_read(&c, vb_ts_scaled_ms(5000), &m), 1);
    assert_int_equal(m.hdr.serial, 1);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    vb_msg_clear(&m);

    /* while a real question is outstanding: 1000 wrong-serial answers (with a
     * wrong password) before the right one; only the right one is taken */
    open_uri = unix_uri(&hA, "auth=sasl");
    assert_int_equal(send_msg(fd, VB_PROG_BROKER, VB_MSG_CALL, 2, VB_BROKER_PROC_OPEN,
                              pack_broker_open, NULL),
                     0);
    assert_int_equal(vb_ts_wire_read(&c, vb_ts_scaled_ms(10000), &m), 1);
    assert_int_equal(m.hdr.type, VB_MSG_CALLBACK);
    assert_int_equal(m.hdr.procedure, VB_BROKER_PROC_CRED_REQUEST);
    uint32_t serial = m.hdr.serial;
    answer a;
    int retry = 0;
    read_cred_request(&m, &a, &retry);
    vb_msg_clear(&m);
    assert_false(retry);
    free(flood);
    flood = NULL;
    len = 0;
    append_flood(&flood, &len, VB_PROG_BROKER, VB_BROKER_PROC_CRED_REQUEST, 1000, serial + 1);
    append_msg(&flood, &len, VB_PROG_BROKER, VB_MSG_CALLBACK_REPLY, serial,
               VB_BROKER_PROC_CRED_REQUEST, pack_answer, &a);
    /* and the same answer again, late: ignored too */
    append_msg(&flood, &len, VB_PROG_BROKER, VB_MSG_CALLBACK_REPLY, serial,
               VB_BROKER_PROC_CRED_REQUEST, pack_fake_answer, NULL);
    assert_int_equal(vb_ts_send_all(fd, flood, len), 0);
    free(flood);
    int rc = vb_ts_wire_read(&c, vb_ts_scaled_ms(10000), &m);
    assert_int_equal(rc, 1);
    if (m.hdr.type == VB_MSG_CALLBACK) {
        read_cred_request(&m, &a, &retry);
        vb_msg_clear(&m);
        vb_ts_wire_close(&c);
        fail_msg("the broker asked again (retry=%d): the login used another answer than the "
                 "one with the right serial, sent first (a late duplicate of that serial, "
                 "carrying a wrong user, replaced it before the worker took it)",
                 retry);
    }
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    assert_int_equal(m.hdr.serial, 2);
    if (m.hdr.status != VB_STATUS_OK) {
        vb_error e, err;
        vb_msg_error_body(&m, &e, &err);
        fail_msg("OPEN failed after the flood: %s", e.message);
    }
    vb_msg_clear(&m);
    assert_int_equal(send_msg(fd, VB_PROG_BROKER, VB_MSG_CALL, 3, VB_BROKER_PROC_GET_HOSTNAME, NULL,
                              NULL),
                     0);
    assert_int_equal(vb_ts_wire_read(&c, vb_ts_scaled_ms(5000), &m), 1);
    assert_int_equal(m.hdr.serial, 3);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    vb_msg_clear(&m);
    vb_ts_wire_close(&c);
    long rss1 = vb_ts_rss_kib(the_broker.pid);
    print_message("vbrokerd RSS around 2 x 1000 CALLBACK_REPLYs: %ld -> %ld KiB\n", rss0, rss1);
    assert_true(rss1 - rss0 < 16 * 1024 * RSS_SLACK);
    assert_broker_healthy();
}

/* ---- tests: resource limits ---------------------------------------------- */

static int is_too_many_clients(int fd)
{
    vb_ts_wire c;
    vb_ts_wire_adopt(&c, fd);
    vb_msg m;
    int ok = 0;
    if (vb_ts_wire_read(&c, vb_ts_scaled_ms(2000), &m) == 1) {
        vb_error e, err;
        ok = m.hdr.serial == 0 && m.hdr.status == VB_STATUS_ERROR &&
             vb_msg_error_body(&m, &e, &err) == 0 && e.code == VB_ERR_TOO_MANY_CLIENTS &&
             strstr(e.message, "too many unauthenticated clients") != NULL;
        vb_msg_clear(&m);
    }
    vb_frame_reader_clear(&c.rd);
    return ok;
}

static void test_1000_idle_unauthenticated_connections(void **state)
{
    (void)state;
    long rss0 = vb_ts_rss_kib(hL.d.pid);
    int *fds = calloc(IDLE_CONNS, sizeof *fds);
    int64_t t0 = vb_ts_now_ms();
    for (int i = 0; i < IDLE_CONNS; i++)
        fds[i] = connect_tcp(&hL);
    /* every connection past MAX_ANON gets one TOO_MANY_CLIENTS frame and is
     * closed; the first MAX_ANON stay, silent */
    struct pollfd *p = calloc(IDLE_CONNS, sizeof *p);
    int readable = 0;
    int64_t deadline = vb_ts_now_ms() + vb_ts_scaled_ms(10000);
    while (readable < IDLE_CONNS - MAX_ANON && vb_ts_now_ms() < deadline) {
        for (int i = 0; i < IDLE_CONNS; i++)
            p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
        poll(p, IDLE_CONNS, 100);
        readable = 0;
        for (int i = 0; i < IDLE_CONNS; i++)
            readable += (p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    }
    poll(NULL, 0, 200); /* and no more than that */
    int refused = 0, silent = 0, other = 0;
    for (int i = 0; i < IDLE_CONNS; i++) {
        struct pollfd q = { .fd = fds[i], .events = POLLIN };
        if (poll(&q, 1, 0) == 0) {
            silent++;
        } else if (is_too_many_clients(fds[i])) {
            refused++;
            close(fds[i]);
            fds[i] = -1;
        } else {
            other++;
        }
    }
    long rss1 = vb_ts_rss_kib(hL.d.pid);
    print_message("%d connections in %lld ms: %d silent (admitted), %d refused with "
                  "TOO_MANY_CLIENTS, %d other; vbhostd RSS %ld -> %ld KiB\n",
                  IDLE_CONNS, (long long)(vb_ts_now_ms() - t0), silent, refused, other, rss0, rss1);
    assert_int_equal(other, 0);
    assert_int_equal(silent, MAX_ANON);
    assert_int_equal(refused, IDLE_CONNS - MAX_ANON);
    assert_true(rss1 - rss0 < 64 * 1024 * RSS_SLACK);
    /* an authenticated local user still gets in while the slots are full */
    vb_error err;
    if (open_list(unix_uri(&hL, "auth=peer"), NULL, &err) < 0)
        fail_msg("peer open while the anonymous slots are full: %s", err.message);
    assert_int_equal(kill(hL.d.pid, 0), 0);
    for (int i = 0; i < IDLE_CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(p);
    /* the slots come back: a TCP password login works within a deadline */
    int ok = 0;
    deadline = vb_ts_now_ms() + vb_ts_scaled_ms(5000);
    vb_ts_form f = { "alice", PASSWORD, 0 };
    while (!ok && vb_ts_now_ms() < deadline) {
        ok = open_list(tcp_uri(&hL), &f, &err) == 0;
        if (!ok)
            poll(NULL, 0, 50);
    }
    if (!ok)
        fail_msg("no TCP login after the idle clients left: %s", err.message);
    long rss2 = vb_ts_rss_kib(hL.d.pid);
    print_message("vbhostd RSS after they left: %ld KiB\n", rss2);
    assert_true(rss2 - rss0 < 64 * 1024 * RSS_SLACK);
    assert_hostd_healthy(&hL);
}

typedef struct slow_client {
    int fd;
    int64_t connected_ms;
    int64_t dropped_ms;   /* -1: never */
    int bytes_sent;
} slow_client;

static void test_slow_client_dropped_by_auth_timeout(void **state)
{
    (void)state;
    /* two hostile pacings at once: one byte of an AUTH_LIST frame per second
     * (the frame never completes), and a chatty client that keeps calling
     * AUTH_LIST but never logs in */
    uint8_t *frame = NULL;
    size_t flen = 0;
    append_msg(&frame, &flen, VB_PROG_HOST, VB_MSG_CALL, 1, VB_HOST_PROC_AUTH_LIST, NULL, NULL);
    slow_client cl[2];
    for (int i = 0; i < 2; i++) {
        cl[i].fd = connect_tcp(&hT);
        cl[i].connected_ms = vb_ts_now_ms();
        cl[i].dropped_ms = -1;
        cl[i].bytes_sent = 0;
    }
    int64_t deadline = vb_ts_now_ms() + 2000 + vb_ts_scaled_ms(4000);
    int64_t next_byte = vb_ts_now_ms();
    uint32_t serial = 1;
    while ((cl[0].dropped_ms < 0 || cl[1].dropped_ms < 0) && vb_ts_now_ms() < deadline) {
        if (vb_ts_now_ms() >= next_byte) {
            if (cl[0].dropped_ms < 0 && (size_t)cl[0].bytes_sent < flen - 1 &&
                send(cl[0].fd, frame + cl[0].bytes_sent, 1, MSG_NOSIGNAL) == 1)
                cl[0].bytes_sent++;
            if (cl[1].dropped_ms < 0 &&
                send_msg(cl[1].fd, VB_PROG_HOST, VB_MSG_CALL, serial++, VB_HOST_PROC_AUTH_LIST,
                         NULL, NULL) == 0)
                cl[1].bytes_sent += (int)flen;
            next_byte += 1000;
        }
        for (int i = 0; i < 2; i++) {
            if (cl[i].dropped_ms >= 0)
                continue;
            struct pollfd p = { .fd = cl[i].fd, .events = POLLIN };
            if (poll(&p, 1, 20) == 1) {
                uint8_t buf[4096];
                ssize_t n = read(cl[i].fd, buf, sizeof buf);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                    cl[i].dropped_ms = vb_ts_now_ms();
            }
        }
    }
    free(frame);
    for (int i = 0; i < 2; i++) {
        close(cl[i].fd);
        int64_t after = cl[i].dropped_ms < 0 ? -1 : cl[i].dropped_ms - cl[i].connected_ms;
        print_message("%s client dropped after %lld ms (auth_timeout = 2 s; %d bytes sent)\n",
                      i == 0 ? "1-byte-per-second" : "chatty unauthenticated", (long long)after,
                      cl[i].bytes_sent);
        if (after < 0)
            fail_msg("a slow unauthenticated client was still connected %d ms later",
                     2000 + vb_ts_scaled_ms(4000));
        assert_true(after >= 1900);
        assert_true(after <= 2000 + vb_ts_scaled_ms(2000));
    }
    assert_log_soon(hT.d.log, "did not authenticate within 2 s; disconnecting");
    assert_hostd_healthy(&hT);
}

/* Send frame one byte a second (never its last byte) until the peer drops
 * fd; the ms from the first byte to the drop, or -1 when it never came. */
static int64_t trickle_until_dropped(int fd, const uint8_t *frame, size_t flen, int limit_ms)
{
    int64_t first = vb_ts_now_ms(), deadline = first + limit_ms, next_byte = first;
    size_t sent = 0;
    while (vb_ts_now_ms() < deadline) {
        if (vb_ts_now_ms() >= next_byte && sent < flen - 1) {
            if (send(fd, frame + sent, 1, MSG_NOSIGNAL) != 1)
                return vb_ts_now_ms() - first; /* EPIPE: already gone */
            sent++;
            next_byte += 1000;
        }
        if (wait_dropped(fd, 50) == 0)
            return vb_ts_now_ms() - first;
    }
    return -1;
}

/* The frame in two halves pacing_ms apart, inside the frame timeout: the
 * answer comes (the deadline is for trickling, not for a pause). */
static void assert_split_frame_answered(vb_ts_wire *c, const uint8_t *frame, size_t flen, int pacing_ms)
{
    assert_int_equal(vb_ts_send_all(c->fd, frame, flen / 2), 0);
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, pacing_ms), 0); /* pacing: nothing may come back yet */
    assert_int_equal(vb_ts_send_all(c->fd, frame + flen / 2, flen - flen / 2), 0);
    vb_msg m;
    assert_int_equal(vb_ts_wire_read(c, vb_ts_scaled_ms(5000), &m), 1);
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    vb_msg_clear(&m);
}

static void assert_trickled_frame_dropped(int fd, const uint8_t *frame, size_t flen, const char *who)
{
    int64_t after = trickle_until_dropped(fd, frame, flen, 2000 + vb_ts_scaled_ms(4000));
    print_message("%s dropped a client trickling a %zu-byte frame after %lld ms (frame_timeout 2 s)\n",
                  who, flen, (long long)after);
    if (after < 0)
        fail_msg("%s kept a client trickling one byte a second", who);
    assert_true(after >= 1900);
    assert_true(after <= 2000 + vb_ts_scaled_ms(2000));
}

static void test_slow_authenticated_client_dropped_by_frame_timeout(void **state)
{
    (void)state;
    uint8_t *frame = NULL;
    size_t flen = 0;
    append_msg(&frame, &flen, VB_PROG_HOST, VB_MSG_CALL, 2, VB_HOST_PROC_AUTH_LIST, NULL, NULL);
    /* vbhostd: logged in (peer), answered, then one frame one byte a second */
    vb_ts_wire c;
    int fd = connect_as_peer(&c, &hT);
    assert_split_frame_answered(&c, frame, flen, 1000);
    assert_trickled_frame_dropped(fd, frame, flen, "vbhostd");
    vb_ts_wire_close(&c);
    assert_log_soon(hT.d.log, "did not arrive completely within 2000 ms");
    assert_hostd_healthy(&hT);
    free(frame);

    /* vbrokerd: the same for a thin client */
    frame = NULL;
    flen = 0;
    append_msg(&frame, &flen, VB_PROG_BROKER, VB_MSG_CALL, 1, VB_BROKER_PROC_STATUS, NULL, NULL);
    fd = connect_unix(the_broker.sock);
    vb_ts_wire_adopt(&c, fd);
    assert_split_frame_answered(&c, frame, flen, 1000);
    assert_trickled_frame_dropped(fd, frame, flen, "vbrokerd");
    vb_ts_wire_close(&c);
    assert_log_soon(the_broker.log, "did not arrive completely within 2000 ms");
    free(frame);
    vb_broker_status st;
    vb_error err;
    if (vb_broker_get_status(&st, &err) < 0)
        fail_msg("the broker no longer answers: %s", err.message);
    vb_broker_status_clear(&st);
}

/* A client that pinged once (so it speaks keepalive) and then fell silent
 * is dropped after keepalive_timeout; one that never pinged stays. */
static void test_silent_keepalive_client_dropped(void **state)
{
    (void)state;
    vb_ts_wire quiet, pinger;
    int quiet_fd = connect_as_peer(&quiet, &hT);
    int fd = connect_as_peer(&pinger, &hT);
    int64_t t0 = vb_ts_now_ms();
    assert_int_equal(send_msg(fd, VB_PROG_KEEPALIVE, VB_MSG_EVENT, 0, VB_KEEPALIVE_PROC_PING, NULL,
                              NULL),
                     0);
    vb_msg m;
    assert_int_equal(vb_ts_wire_read(&pinger, vb_ts_scaled_ms(5000), &m), 1);
    assert_int_equal(m.hdr.program, VB_PROG_KEEPALIVE);
    assert_int_equal(m.hdr.procedure, VB_KEEPALIVE_PROC_PONG);
    vb_msg_clear(&m);
    if (wait_dropped(fd, 2000 + vb_ts_scaled_ms(4000)) < 0)
        fail_msg("vbhostd kept a client that pinged and then said nothing for 6 s");
    int64_t after = vb_ts_now_ms() - t0;
    print_message("silent keepalive client dropped after %lld ms (keepalive_timeout 2 s)\n",
                  (long long)after);
    assert_true(after >= 1900);
    vb_ts_wire_close(&pinger);
    assert_log_soon(hT.d.log, "not even a keepalive, for 2 s");
    /* the one that never pinged is still served */
    assert_auth_list_answered(&quiet, 2);
    (void)quiet_fd;
    vb_ts_wire_close(&quiet);
    assert_hostd_healthy(&hT);
}

/* ---- tests: limits one peer cannot exhaust (issue 14: 4, 5, 7) ------------ */

/* A TCP connection to 127.0.0.1:port from source address src (any 127.x is
 * ours on loopback, so one test can play several peers), with a receive
 * buffer of rcvbuf bytes (0: the default); -1 when it fails. */
static int connect_from_rcvbuf(const char *src, int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    if (fd < 0)
        return -1;
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    inet_pton(AF_INET, src, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        a.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
    }
    close(fd);
    return -1;
}

static int connect_from(const char *src, int port)
{
    return connect_from_rcvbuf(src, port, 0);
}

#define ATTACK_SLOTS 20 /* vbhostd's default max_anonymous_clients */

/* Holds ATTACK_SLOTS connections, 5 from each of four addresses (the default
 * max_anonymous_per_peer), and reopens each one the moment the server drops
 * it. Silent, or chatty: then every connection calls AUTH_LIST every 50 ms,
 * so none of them is ever idle for long. */
typedef struct attacker {
    int port;
    int chatty;
    const char *src[ATTACK_SLOTS];
    int fd[ATTACK_SLOTS];
    atomic_int stop;
    atomic_int reopened;
    pthread_t thread;
} attacker;

static void attacker_chat(attacker *a, int64_t *next_ms)
{
    if (!a->chatty || vb_ts_now_ms() < *next_ms)
        return;
    for (int i = 0; i < ATTACK_SLOTS; i++)
        if (a->fd[i] >= 0)
            send_msg(a->fd[i], VB_PROG_HOST, VB_MSG_CALL, 1, VB_HOST_PROC_AUTH_LIST, NULL, NULL);
    *next_ms = vb_ts_now_ms() + 50;
}

static void *attack(void *arg)
{
    attacker *a = arg;
    struct pollfd p[ATTACK_SLOTS];
    int64_t next_chat = 0;
    while (!atomic_load(&a->stop)) {
        attacker_chat(a, &next_chat);
        for (int i = 0; i < ATTACK_SLOTS; i++) {
            if (a->fd[i] < 0)
                a->fd[i] = connect_from(a->src[i], a->port);
            p[i] = (struct pollfd){ .fd = a->fd[i], .events = POLLIN };
        }
        if (poll(p, ATTACK_SLOTS, 10) <= 0)
            continue;
        for (int i = 0; i < ATTACK_SLOTS; i++) {
            uint8_t buf[4096];
            if (!p[i].revents || a->fd[i] < 0 || read(a->fd[i], buf, sizeof buf) > 0)
                continue;
            close(a->fd[i]); /* refused, evicted or timed out: again */
            a->fd[i] = connect_from(a->src[i], a->port);
            atomic_fetch_add(&a->reopened, 1);
        }
    }
    return NULL;
}

static int any_readable(const int *fds, int n, int quiet_ms)
{
    struct pollfd p[ATTACK_SLOTS];
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    return poll(p, (nfds_t)n, quiet_ms) > 0;
}

/* The attacker takes every anonymous slot of hS, then keeps them while a
 * real password login (through the broker, from 127.0.0.1) must get in
 * within 10 s. */
static void login_against(int chatty, const char *const addrs[4])
{
    attacker a = { .port = hS.d.port, .chatty = chatty };
    for (int i = 0; i < ATTACK_SLOTS; i++) {
        a.src[i] = addrs[i / 5];
        a.fd[i] = connect_from(a.src[i], a.port);
        if (a.fd[i] < 0)
            fail_msg("cannot connect from %s: %s", a.src[i], strerror(errno));
    }
    /* every slot is the attacker's: none of its connections was turned away */
    assert_false(any_readable(a.fd, ATTACK_SLOTS, 300));
    atomic_init(&a.stop, 0);
    atomic_init(&a.reopened, 0);
    assert_int_equal(pthread_create(&a.thread, NULL, attack, &a), 0);
    int64_t t0 = vb_ts_now_ms(), deadline = t0 + 10000;
    int ok = 0, attempts = 0;
    vb_error err;
    while (!ok && vb_ts_now_ms() < deadline) {
        vb_ts_form f = { "alice", PASSWORD, 0 };
        attempts++;
        ok = open_list(tcp_uri(&hS), &f, &err) == 0;
    }
    int64_t took = vb_ts_now_ms() - t0;
    atomic_store(&a.stop, 1);
    pthread_join(a.thread, NULL);
    int closed_before = vb_ts_count_in_file(hS.d.log, " disconnected: "), open = 0;
    for (int i = 0; i < ATTACK_SLOTS; i++)
        if (a.fd[i] >= 0) {
            close(a.fd[i]);
            open++;
        }
    print_message("%s attacker from %s, %s, %s and %s: real login %s after %lld ms, %d "
                  "attempt(s); the attacker reopened %d connections\n",
                  chatty ? "chatty" : "silent", addrs[0], addrs[1], addrs[2], addrs[3],
                  ok ? "in" : "NOT in", (long long)took, attempts, atomic_load(&a.reopened));
    if (!ok)
        fail_msg("no real login within 10 s while an attacker held every anonymous slot: %s",
                 err.message);
    /* the next round starts with free slots */
    if (vb_ts_wait_for_log(hS.d.log, " disconnected: ", closed_before + open,
                           vb_ts_scaled_ms(5000)) < 0)
        fail_msg("hS did not see the attacker's connections close");
}

static void test_real_login_while_attacker_holds_every_slot(void **state)
{
    (void)state;
    /* silent, one address shared with the real user (it replaces the
     * attacker's never-used connections, and they only churn among
     * themselves) */
    static const char *const shared[] = { "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4" };
    login_against(0, shared);
    assert_log_soon(hS.d.log, "closed to make room for");
    /* chatty, from other addresses (the real user's group of one is never
     * the one to give way) */
    static const char *const others[] = { "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5" };
    login_against(1, others);
    assert_hostd_healthy(&hS);
}

/* A connection that has said nothing is dropped after first_frame_timeout (2 s
 * here), long before auth_timeout (30 s); one that has spoken is not. */
static void test_silent_connection_dropped_after_first_frame_timeout(void **state)
{
    (void)state;
    int silent = connect_from("127.0.0.5", hS.d.port);
    vb_ts_wire talker;
    vb_ts_wire_adopt(&talker, connect_from("127.0.0.6", hS.d.port));
    assert_true(silent >= 0 && talker.fd >= 0);
    int64_t t0 = vb_ts_now_ms();
    assert_auth_list_answered(&talker, 1);
    if (wait_dropped(silent, 2000 + vb_ts_scaled_ms(3000)) < 0)
        fail_msg("a connection that sent nothing was kept for 5 s (first_frame_timeout = 2 s)");
    int64_t after = vb_ts_now_ms() - t0;
    print_message("silent connection dropped after %lld ms\n", (long long)after);
    assert_true(after >= 1900);
    close(silent);
    assert_auth_list_answered(&talker, 2); /* it spoke: only auth_timeout applies to it */
    vb_ts_wire_close(&talker);
    assert_log_soon(hS.d.log, "sent no frame within 2 s of connecting");
}

/* n copies of one PING call: what a peer that never reads sends */
static uint8_t *ping_flood(size_t n, size_t *len)
{
    uint8_t *one = NULL;
    size_t flen = 0;
    append_msg(&one, &flen, VB_PROG_KEEPALIVE, VB_MSG_CALL, 1, VB_KEEPALIVE_PROC_PING, NULL, NULL);
    uint8_t *buf = malloc(n * flen);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * flen, one, flen);
    free(one);
    *len = n * flen;
    return buf;
}

/* Write buf to fd (non-blocking) until all of it is written, the peer
 * closes or resets the connection (*dropped), or the peer took nothing for
 * quiet_ms; the bytes written. */
static size_t write_until_stalled(int fd, const uint8_t *buf, size_t len, int quiet_ms,
                                  int *dropped)
{
    size_t off = 0;
    *dropped = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            *dropped = 1;
            break;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT | POLLRDHUP };
        int rc = poll(&p, 1, quiet_ms);
        if (rc <= 0)
            break;
        if (p.revents & (POLLERR | POLLHUP | POLLRDHUP)) {
            *dropped = 1;
            break;
        }
    }
    return off;
}

/* 0 once the peer closed or reset fd, found without reading a byte (reading
 * would let a paused server go on); -1 after timeout_ms. */
static int wait_closed_unread(int fd, int timeout_ms)
{
    int64_t deadline = vb_ts_now_ms() + timeout_ms;
    for (int64_t left; (left = deadline - vb_ts_now_ms()) > 0;) {
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        if (poll(&p, 1, (int)left) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return 0;
    }
    return -1;
}

#define FLOOD_PINGS 2000000

/* A peer that sends 2,000,000 calls and never reads the replies: the daemon
 * stops reading from it once its replies fill the output limit, its memory
 * stays bounded, and (vbhostd, output_timeout 2 s) it drops the peer. */
static void flood_without_reading(const char *who, pid_t pid, int fd, const char *log, int dropped)
{
    size_t len;
    uint8_t *flood = ping_flood(FLOOD_PINGS, &len);
    long rss0 = vb_ts_rss_kib(pid);
    int64_t t0 = vb_ts_now_ms();
    int closed_early;
    /* it stops reading once the replies fill its limit and the kernel's buffers:
     * the writes stall (or, in a slow build, the peer is dropped first) */
    size_t written = write_until_stalled(fd, flood, len, vb_ts_scaled_ms(3000), &closed_early);
    int64_t t1 = vb_ts_now_ms();
    long rss1 = vb_ts_rss_kib(pid);
    int closed = !dropped ? 0 : closed_early ? 0 : wait_closed_unread(fd, 2000 + vb_ts_scaled_ms(6000));
    long rss2 = vb_ts_rss_kib(pid);
    print_message("%s: %zu of %zu bytes of PING calls written before it stopped reading; RSS "
                  "%ld -> %ld KiB (paused) -> %ld KiB; writing took %lld ms; %s %lld ms later\n",
                  who, written, len, rss0, rss1, rss2, (long long)(t1 - t0),
                  !dropped ? "kept" : closed == 0 ? "dropped" : "NOT dropped",
                  (long long)(vb_ts_now_ms() - t1));
    free(flood);
    close(fd);
    if (written == len)
        fail_msg("%s read all %zu bytes from a peer that never read a reply", who, len);
    assert_true(rss1 - rss0 < 64 * 1024 * RSS_SLACK);
    assert_true(rss2 - rss0 < 64 * 1024 * RSS_SLACK);
    if (dropped) {
        if (closed < 0)
            fail_msg("%s kept a peer that read none of its replies", who);
        assert_log_soon(log, "read none of its");
    }
}

static void test_reply_flood_without_reading_is_bounded(void **state)
{
    (void)state;
    /* on the unix socket the kernel holds a fixed ~200 KiB for a peer that
     * does not read, so the replies back up into vbhostd at once */
    flood_without_reading("vbhostd on its unix socket (before login)", hF.d.pid,
                          connect_unix(hF.d.sock), hF.d.log, 1);
    /* on TCP the kernel's send buffer grows to 4 MiB first: a sanitized
     * vbhostd takes a minute to answer that many PINGs, so only here */
    if (RSS_SLACK == 1) {
        int fd = connect_from_rcvbuf("127.0.0.1", hF.d.port, 4096);
        assert_true(fd >= 0);
        flood_without_reading("vbhostd on TCP (before login)", hF.d.pid, fd, hF.d.log, 1);
    }
    assert_hostd_healthy(&hF);
    flood_without_reading("vbrokerd", the_broker.pid, connect_unix(the_broker.sock),
                          the_broker.log, 0);
    assert_broker_healthy();
}

/* Good calls and a bad frame in one write: the replies to the good calls
 * arrive, then the connection closes. */
static void assert_replies_flushed(int fd, uint32_t prog, uint32_t proc, const char *who)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    for (uint32_t serial = 1; serial <= 3; serial++)
        append_msg(&buf, &len, prog, VB_MSG_CALL, serial, proc, NULL, NULL);
    static const uint8_t bad[] = { 0, 0, 0, 3, 0xc1, 0xc1, 0xc1 }; /* 0xc1: never valid msgpack */
    buf = realloc(buf, len + sizeof bad);
    assert_non_null(buf);
    memcpy(buf + len, bad, sizeof bad);
    len += sizeof bad;
    vb_ts_wire c;
    vb_ts_wire_adopt(&c, fd);
    assert_int_equal(vb_ts_send_all(fd, buf, len), 0);
    free(buf);
    for (uint32_t serial = 1; serial <= 3; serial++) {
        vb_msg m;
        int rc = vb_ts_wire_read(&c, vb_ts_scaled_ms(5000), &m);
        if (rc != 1)
            fail_msg("%s: the reply to call %u, sent before a bad frame, never came (%s)", who,
                     serial, rc == 0 ? "closed first" : "timeout");
        assert_int_equal(m.hdr.serial, serial);
        assert_int_equal(m.hdr.type, VB_MSG_REPLY);
        vb_msg_clear(&m);
    }
    assert_int_equal(wait_dropped(fd, vb_ts_scaled_ms(5000)), 0);
    vb_ts_wire_close(&c);
}

static void test_replies_flushed_before_close_for_bad_frame(void **state)
{
    (void)state;
    assert_replies_flushed(connect_tcp(&hS), VB_PROG_HOST, VB_HOST_PROC_AUTH_LIST, "vbhostd");
    assert_replies_flushed(connect_unix(the_broker.sock), VB_PROG_BROKER, VB_BROKER_PROC_STATUS,
                           "vbrokerd");
    assert_hostd_healthy(&hS);
    assert_broker_healthy();
}

/* utime + stime of pid in ms */
static long cpu_ms(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *text = vb_ts_read_file(path, NULL);
    char *p = text ? strrchr(text, ')') : NULL;
    unsigned long ut = 0, st = 0;
    int ok = p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2;
    free(text);
    return ok ? (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK)) : -1;
}

static long soft_nofile(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    char *text = vb_ts_read_file(path, NULL);
    char *p = text ? strstr(text, "Max open files") : NULL;
    long soft = -1;
    if (p)
        sscanf(p + strlen("Max open files"), "%ld", &soft);
    free(text);
    return soft;
}

#define FD_SOFT "32"
#define FD_HARD 64
#define FD_CONNS 100

/* A daemon started with a soft descriptor limit of 32 and a hard one of 64:
 * it raises the soft limit to 64; 100 idle connections run it out of
 * descriptors, and it then waits (less than 0.3 s of CPU in 2 s) instead of
 * spinning on accept; a client that connected meanwhile is served once the
 * others leave. prog/proc: what the waiting client calls. */
static void assert_survives_fd_exhaustion(const char *who, char *const daemon_argv[],
                                          const char *sock, const char *log, uint32_t prog,
                                          uint32_t proc)
{
    char *argv[32] = { "prlimit", "--nofile=" FD_SOFT ":64", "--" };
    size_t n = 3;
    for (size_t i = 0; daemon_argv[i] && n < 31; i++)
        argv[n++] = daemon_argv[i];
    argv[n] = NULL;
    pid_t pid = vb_ts_spawn(argv, NULL, log);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_unix_socket(sock, vb_ts_scaled_ms(START_MS)), 0);
    long soft = soft_nofile(pid);
    print_message("%s: descriptor limit %s soft / %d hard at start, %ld soft now\n", who, FD_SOFT,
                  FD_HARD, soft);
    assert_int_equal(soft, FD_HARD);
    int fds[FD_CONNS], nfds = 0;
    for (; nfds < FD_CONNS; nfds++) {
        vb_error err;
        if ((fds[nfds] = vb_net_connect_unix(sock, &err)) < 0)
            break;
    }
    assert_true(nfds > FD_HARD);
    int waiting = fds[--nfds]; /* the last one is surely beyond the limit */
    vb_ts_wire c;
    vb_ts_wire_adopt(&c, waiting);
    assert_int_equal(send_msg(waiting, prog, VB_MSG_CALL, 1, proc, NULL, NULL), 0);
    vb_ts_wait_for_log(log, "not accepting until a descriptor frees", 1, vb_ts_scaled_ms(5000));
    long cpu0 = cpu_ms(pid);
    int64_t t0 = vb_ts_now_ms();
    struct pollfd p = { .fd = waiting, .events = POLLIN };
    poll(&p, 1, 2000); /* the measuring window: it must not be answered yet anyway */
    long used = cpu_ms(pid) - cpu0;
    print_message("%s out of descriptors with %d connections: %ld ms of CPU in %lld ms\n", who,
                  nfds + 1, used, (long long)(vb_ts_now_ms() - t0));
    assert_int_equal(p.revents, 0);
    /* the others leave (those still in the backlog too: they are ahead of it) */
    for (int i = 0; i < nfds; i++)
        close(fds[i]);
    t0 = vb_ts_now_ms();
    vb_msg m;
    int rc = vb_ts_wire_read(&c, vb_ts_scaled_ms(5000), &m);
    print_message("%s served the waiting client %lld ms after the others left\n", who,
                  (long long)(vb_ts_now_ms() - t0));
    if (rc != 1)
        fail_msg("%s never served a client that waited for a descriptor (%d)", who, rc);
    assert_int_equal(m.hdr.serial, 1);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    vb_msg_clear(&m);
    vb_ts_wire_close(&c);
    assert_true(used < 300);
    assert_log_soon(log, "not accepting until a descriptor frees");
    assert_int_equal(vb_ts_check_exit(who, vb_ts_stop(pid, vb_ts_scaled_ms(5000)), log), 0);
}

/* socket, log and state dir of an extra broker named tag, in dir */
static void extra_broker_paths(const char *tag, char sock[400], char log[400], char state_dir[400])
{
    snprintf(sock, 400, "%s/%s/sock", dir, tag);
    snprintf(log, 400, "%s/%s.log", dir, tag);
    snprintf(state_dir, 400, "%s/%s-state", dir, tag);
}

static void test_daemons_out_of_descriptors(void **state)
{
    (void)state;
    char sock[400], log[400], state_dir[400];
    extra_broker_paths("fd-brk", sock, log, state_dir);
    char *broker_argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", sock, "--state-dir", state_dir,
                            NULL };
    assert_survives_fd_exhaustion("vbrokerd", broker_argv, sock, log, VB_PROG_BROKER,
                                  VB_BROKER_PROC_STATUS);
    /* vbhostd: its unix socket with peer auth (allowed peers are not anonymous) */
    hostd h = { "hD", "auth_unix = [\"peer\"]\n", 0, { .pid = 0 } };
    assert_int_equal(start_hostd(&h), 0); /* writes the config; this one only checks it starts */
    assert_int_equal(vb_ts_check_exit("vbhostd hD", vb_ts_stop(h.d.pid, vb_ts_scaled_ms(5000)), h.d.log),
                     0);
    char *hostd_argv[] = { VB_BUILD_DIR "/vbhostd", "-f", h.d.conf, "--foreground", NULL };
    snprintf(log, sizeof log, "%s/hD-fd.log", dir);
    assert_survives_fd_exhaustion("vbhostd", hostd_argv, h.d.sock, log, VB_PROG_HOST,
                                  VB_HOST_PROC_AUTH_LIST);
}

/* --max-clients: the broker turns one more program away with a clear error */
static void test_broker_max_clients(void **state)
{
    (void)state;
    char sock[400], log[400], state_dir[400];
    extra_broker_paths("mc-brk", sock, log, state_dir);
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", sock, "--state-dir", state_dir,
                     "--max-clients", "3", NULL };
    pid_t pid = vb_ts_spawn_daemon(argv, log);
    assert_int_equal(vb_ts_wait_unix_socket(sock, vb_ts_scaled_ms(START_MS)), 0);
    vb_ts_wire c[4];
    for (int i = 0; i < 4; i++) {
        vb_ts_wire_adopt(&c[i], connect_unix(sock));
        /* the one over the limit may be closed before it could send anything */
        assert_true(i == 3 || send_msg(c[i].fd, VB_PROG_BROKER, VB_MSG_CALL, 1,
                                       VB_BROKER_PROC_STATUS, NULL, NULL) == 0);
        vb_msg m;
        assert_int_equal(vb_ts_wire_read(&c[i], vb_ts_scaled_ms(5000), &m), 1);
        if (i < 3) {
            assert_int_equal(m.hdr.serial, 1);
            assert_int_equal(m.hdr.status, VB_STATUS_OK);
        } else {
            vb_error e, err;
            assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
            assert_int_equal(vb_msg_error_body(&m, &e, &err), 0);
            assert_int_equal(e.code, VB_ERR_TOO_MANY_CLIENTS);
        }
        vb_msg_clear(&m);
    }
    for (int i = 0; i < 4; i++)
        vb_ts_wire_close(&c[i]);
    assert_int_equal(vb_ts_check_exit("vbrokerd", vb_ts_stop(pid, vb_ts_scaled_ms(5000)), log), 0);
}

/* Every key a daemon reads (the strings after `(conf, "` in vbh_config.c, the
 * settings table of brk_config.c) has an entry `key = ...` (maybe commented
 * out) in its example file under etc/; the limits above included. */
static int documents_key(const char *conf_text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = conf_text; (p = strstr(p, key)) != NULL; p += klen) {
        const char *line = p;
        while (line > conf_text && line[-1] != '\n')
            line--;
        while (*line == '#' || *line == ' ')
            line++;
        if (line == p && strncmp(p + klen, " = ", 3) == 0)
            return 1;
    }
    return 0;
}

static int check_keys(const char *source, const char *marker, const char *example)
{
    char *src = vb_ts_read_file(source, NULL), *conf = vb_ts_read_file(example, NULL);
    assert_non_null(src);
    assert_non_null(conf);
    int checked = 0, missing = 0;
    for (const char *p = src; (p = strstr(p, marker)) != NULL;) {
        p += strlen(marker);
        char key[64];
        size_t n = strcspn(p, "\"");
        if (n == 0 || n >= sizeof key)
            continue;
        memcpy(key, p, n);
        key[n] = '\0';
        for (char *k = key; *k; k++)
            if (*k == '-')
                *k = '_';
        checked++;
        if (!documents_key(conf, key)) {
            print_error("%s reads '%s', which %s does not document\n", source, key, example);
            missing++;
        }
    }
    free(src);
    free(conf);
    assert_int_equal(missing, 0);
    return checked;
}

static void test_every_config_key_documented(void **state)
{
    (void)state;
    int nh = check_keys(VB_SRC_DIR "/daemon/vbh_config.c", "(conf, \"", VB_SRC_DIR "/etc/vbhostd.conf");
    int nb = check_keys(VB_SRC_DIR "/broker/brk_config.c", "{ \"", VB_SRC_DIR "/etc/vbrokerd.conf") +
             check_keys(VB_SRC_DIR "/broker/brk_config.c", "(conf, \"", VB_SRC_DIR "/etc/vbrokerd.conf");
    print_message("%d vbhostd keys and %d vbrokerd settings documented\n", nh, nb);
    assert_true(nh >= 30 && nb >= 10);
}

/* ---- tests: a server claiming another server's id ------------------------- */

static int run_sqlite(const char *db, const char *sql, char **out)
{
    char *argv[] = { "sqlite3", (char *)db, (char *)sql, NULL };
    char *o = NULL;
    int rc = vb_ts_run(argv, NULL, NULL, &o, 10000);
    if (out)
        *out = o;
    else
        free(o);
    return rc;
}

static void copy_file(const char *from, const char *to)
{
    size_t len;
    char *text = vb_ts_read_file(from, &len);
    assert_non_null(text);
    assert_int_equal(vb_ts_write_file(to, text, 0600), 0);
    free(text);
}

/* hB becomes a server that says it is hA: hA's server-id, and (when
 * with_token) a tokens.db holding hA's token ids with other secrets */
static void make_impostor(int with_token)
{
    assert_true(vb_ts_stop(hB.d.pid, 5000) >= 0);
    char path[500], from[500];
    snprintf(from, sizeof from, "%s/server-id", hA.d.state);
    snprintf(path, sizeof path, "%s/server-id", hB.d.state);
    copy_file(from, path);
    const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/tokens.db%s", hB.d.state, suffixes[i]);
        unlink(path);
    }
    if (with_token) {
        snprintf(from, sizeof from, "%s/tokens.db", hA.d.state);
        snprintf(path, sizeof path, "%s/tokens.db", hB.d.state);
        char sql[700];
        snprintf(sql, sizeof sql, ".backup '%s'", path);
        assert_int_equal(run_sqlite(from, sql, NULL), 0);
        assert_int_equal(run_sqlite(path, "UPDATE tokens SET secret = randomblob(32);", NULL), 0);
        chmod(path, 0600);
    }
    assert_int_equal(start_hostd(&hB), 0);
}

static void test_server_claiming_another_servers_id(void **state)
{
    (void)state;
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    vb_error err;
    if (vb_login(unix_uri(&hA, NULL), &auth, 0, NULL, NULL, &err) < 0)
        fail_msg("login to hA: %s", err.message);
    assert_int_equal(logins_cached(), 1);
    /* hA's token works, with no prompt */
    assert_int_equal(open_list(unix_uri(&hA, NULL), NULL, &err), 0);

    /* 1. an impostor that knows hA's token ids but not their secrets, at
     * another endpoint: the token was obtained at hA's socket, so it is not
     * even offered here (tests/integ/test_tokens_bound.c covers an impostor
     * that is offered one). The client proves nothing and keeps the token. */
    make_impostor(1);
    char db[500], *out = NULL;
    snprintf(db, sizeof db, "%s/tokens.db", hB.d.state);
    assert_int_equal(run_sqlite(db, "SELECT max(last_used) FROM tokens;", &out), 0);
    assert_non_null(out);
    long last_used = atol(out);
    free(out);
    int before = vb_ts_count_in_file(hB.d.log, "authenticated as");
    vb_conn *c = vb_open_auth(unix_uri(&hB, NULL), NULL, 0, &err);
    if (c)
        fail_msg("the broker logged in to a server that cannot prove it knows the token");
    print_message("impostor with hA's id: %s\n", err.message);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_int_equal(vb_ts_count_in_file(hB.d.log, "authenticated as"), before);
    assert_int_equal(logins_cached(), 1);
    /* the client sent no proof: the impostor never saw the token used */
    assert_int_equal(run_sqlite(db, "SELECT max(last_used) FROM tokens;", &out), 0);
    assert_non_null(out);
    assert_int_equal(atol(out), last_used);
    free(out);
    /* and the real server still takes it */
    if (open_list(unix_uri(&hA, NULL), NULL, &err) < 0)
        fail_msg("hA's token after meeting the impostor: %s", err.message);

    /* 2. an impostor that claims hA's id and knows nothing: it is offered no
     * token, so the broker keeps hA's login (an unproven server's refusal
     * would not erase it either: docs/security.md "erase only on proof")
     * and, with nobody to ask, the open fails with a clear error. The
     * impostor never authenticates the broker. */
    make_impostor(0);
    before = vb_ts_count_in_file(hB.d.log, "authenticated as");
    c = vb_open_auth(unix_uri(&hB, NULL), NULL, 0, &err);
    if (c)
        fail_msg("the broker logged in to an impostor without credentials");
    print_message("impostor with hA's id and no tokens: %s\n", err.message);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_int_equal(vb_ts_count_in_file(hB.d.log, "authenticated as"), before);
    assert_int_equal(logins_cached(), 1);
    assert_int_equal(kill(hB.d.pid, 0), 0);
    assert_hostd_healthy(&hA);
    assert_broker_healthy();
}

/* ---- everyone survived ---------------------------------------------------- */

static void test_every_daemon_alive_and_exits_cleanly(void **state)
{
    (void)state;
    assert_broker_healthy();
    hostd *all[] = { &hA, &hB, &hL, &hT, &hS, &hF };
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(kill(all[i]->d.pid, 0), 0);
    /* SIGTERM: each exits by itself, and (under VB_TEST_DAEMON_WRAPPER with
     * --error-exitcode=99) without memory errors or leaks */
    int bad = vb_ts_check_exit("vbrokerd", vb_ts_stop(the_broker.pid, vb_ts_scaled_ms(5000)), the_broker.log) < 0;
    for (size_t i = 0; i < 6; i++) {
        char name[40];
        snprintf(name, sizeof name, "vbhostd %s", all[i]->name);
        bad += vb_ts_check_exit(name, vb_ts_stop(all[i]->d.pid, vb_ts_scaled_ms(5000)), all[i]->d.log) < 0;
    }
    if (bad)
        fail_msg("%d daemon(s) did not exit cleanly on SIGTERM (see above)", bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_frames_dropped_by_vbhostd),
        cmocka_unit_test(test_malformed_frames_dropped_by_broker),
        cmocka_unit_test(test_preauth_limit_is_exact),
        cmocka_unit_test(test_callback_reply_flood_at_vbhostd),
        cmocka_unit_test(test_callback_reply_flood_at_broker),
        cmocka_unit_test(test_1000_idle_unauthenticated_connections),
        cmocka_unit_test(test_slow_client_dropped_by_auth_timeout),
        cmocka_unit_test(test_slow_authenticated_client_dropped_by_frame_timeout),
        cmocka_unit_test(test_silent_keepalive_client_dropped),
        cmocka_unit_test(test_real_login_while_attacker_holds_every_slot),
        cmocka_unit_test(test_silent_connection_dropped_after_first_frame_timeout),
        cmocka_unit_test(test_reply_flood_without_reading_is_bounded),
        cmocka_unit_test(test_replies_flushed_before_close_for_bad_frame),
        cmocka_unit_test(test_daemons_out_of_descriptors),
        cmocka_unit_test(test_broker_max_clients),
        cmocka_unit_test(test_every_config_key_documented),
        cmocka_unit_test(test_server_claiming_another_servers_id),
        cmocka_unit_test(test_every_daemon_alive_and_exits_cleanly),
    };
    return cmocka_run_group_tests_name("hostile", tests, group_setup, group_teardown);
}
