/* Protocol conformance: a raw client written from docs/protocol.md alone
 * sends each case to a real vbhostd and a real vbrokerd and asserts the
 * documented answer within a deadline (a missing answer fails in seconds,
 * never hangs): the order of checks (§5.7), KEEPALIVE calls (§9.2), a
 * client's CALLBACK and a CALL with status ERROR (§5.6), serial 0 (§3), a
 * SASL mechanism that is not offered (§9.3), TOKEN_ISSUE on a listener
 * without token (§9.9), the replier's version (§4), and how soon after
 * keepalive_timeout a silent pinging client is closed (§9.2). */
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
#include <time.h>

#include "vb_msg.h"
#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"

#define REALM "LAB.TEST"
#define ANSWER_MS 5000

static char *dir;
static vb_ts_hostd hP; /* auth_unix = ["peer"] */
static vb_ts_hostd hS; /* auth_unix = ["sasl"], SCRAM-SHA-256 only */
static vb_ts_hostd hK; /* peer, keepalive_timeout = 1 */
static vb_ts_broker the_broker;

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    dir = vb_ts_tmpdir("conform");
    const char *users[] = { "alice:c0nform-Pw", NULL };
    if (!dir || vb_ts_hostd_sasl_setup(dir, REALM, "SCRAM-SHA-256", users, NULL) < 0)
        return -1;
    if (vb_ts_hostd_start(&hP, dir, "hP", 0, "auth_unix = [\"peer\"]\n") < 0 ||
        vb_ts_hostd_start_sasl(&hS, dir, "hS", 0, REALM,
                               "auth_unix = [\"sasl\"]\nsasl_hostname = \"localhost\"\n") < 0 ||
        vb_ts_hostd_start(&hK, dir, "hK", 0, "auth_unix = [\"peer\"]\nkeepalive_timeout = 1\n") < 0)
        return -1;
    return vb_ts_broker_start(&the_broker, dir, "brk", NULL);
}

/* ---- one exchange -------------------------------------------------------- */

static vb_msg_header hdr(uint32_t prog, uint32_t type, uint32_t serial, uint32_t proc)
{
    vb_msg_header h = { prog, vb_proto_program_version(prog), type, serial, proc, VB_STATUS_OK, 0 };
    return h;
}

static void connect_to(vb_ts_wire *w, const char *sock)
{
    assert_int_equal(vb_ts_wire_connect_unix(w, sock), 0);
}

/* send h (body NULL: []), and require an answer of type want_type that
 * repeats serial, program, procedure and conn_id */
static void exchange(vb_ts_wire *w, const vb_msg_header *h, vb_ts_body_fn body, const void *arg,
                     uint32_t want_type, vb_msg *m)
{
    int rc = vb_ts_wire_call(w, h, body, arg, vb_ts_scaled_ms(ANSWER_MS), m);
    if (rc != 1)
        fail_msg("no answer to %s %u/%u serial %u (%s)", vb_proto_msg_type_name(h->type),
                 h->program, h->procedure, h->serial, rc == 0 ? "connection closed" : "timeout");
    assert_int_equal(m->hdr.type, want_type);
    assert_int_equal(m->hdr.serial, h->serial);
    assert_int_equal(m->hdr.program, h->program);
    assert_int_equal(m->hdr.procedure, h->procedure);
    assert_int_equal(m->hdr.conn_id, h->conn_id);
}

/* the answer to h is an ERROR (code, domain) */
static void expect_error(vb_ts_wire *w, const vb_msg_header *h, vb_ts_body_fn body,
                         const void *arg, int code, int domain)
{
    vb_msg m;
    exchange(w, h, body, arg, h->type == VB_MSG_CALLBACK ? VB_MSG_CALLBACK_REPLY : VB_MSG_REPLY, &m);
    int got_code, got_domain;
    assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
    vb_ts_wire_error(&m, &got_code, &got_domain);
    if (got_code != code || got_domain != domain)
        fail_msg("%s %u/%u: got %s (%s), want %s (%s)", vb_proto_msg_type_name(h->type),
                 h->program, h->procedure, vb_proto_error_code_name(got_code),
                 vb_proto_error_domain_name(got_domain), vb_proto_error_code_name(code),
                 vb_proto_error_domain_name(domain));
    vb_msg_clear(&m);
}

static void expect_ok(vb_ts_wire *w, const vb_msg_header *h, vb_ts_body_fn body, const void *arg)
{
    vb_msg m;
    exchange(w, h, body, arg, VB_MSG_REPLY, &m);
    if (m.hdr.status != VB_STATUS_OK) {
        int code, domain;
        vb_ts_wire_error(&m, &code, &domain);
        fail_msg("%u/%u: got %s, want OK", h->program, h->procedure, vb_proto_error_code_name(code));
    }
    vb_msg_clear(&m);
}

/* the connection still serves: AUTH_LIST (vbhostd) or STATUS (vbrokerd) */
static void assert_still_serving(vb_ts_wire *w, uint32_t prog, uint32_t serial)
{
    vb_msg_header h = prog == VB_PROG_HOST ? hdr(VB_PROG_HOST, VB_MSG_CALL, serial,
                                                 VB_HOST_PROC_AUTH_LIST)
                                           : hdr(VB_PROG_BROKER, VB_MSG_CALL, serial,
                                                 VB_BROKER_PROC_STATUS);
    expect_ok(w, &h, NULL, NULL);
}

static void login_peer(vb_ts_wire *w, uint32_t serial)
{
    vb_msg_header h = hdr(VB_PROG_HOST, VB_MSG_CALL, serial, VB_HOST_PROC_AUTH_PEER);
    expect_ok(w, &h, NULL, NULL);
}

/* ---- KEEPALIVE (§9.2) ------------------------------------------------------ */

static void big_open_body(vb_enc *enc, const void *arg);

static void keepalive_calls(const char *sock, uint32_t prog)
{
    vb_ts_wire w;
    connect_to(&w, sock);
    vb_msg_header ping = hdr(VB_PROG_KEEPALIVE, VB_MSG_CALL, 4, VB_KEEPALIVE_PROC_PING);
    vb_msg m;
    assert_int_equal(vb_ts_wire_call(&w, &ping, NULL, NULL, vb_ts_scaled_ms(ANSWER_MS), &m), 1);
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    assert_int_equal(m.hdr.serial, 4);
    assert_int_equal(m.hdr.program, VB_PROG_KEEPALIVE);
    assert_int_equal(m.hdr.procedure, VB_KEEPALIVE_PROC_PONG);
    assert_int_equal(m.hdr.version, VB_PROG_KEEPALIVE_VERSION);
    vb_msg_clear(&m);
    /* PONG is no request, and 9 is no KEEPALIVE procedure: answered, not dropped */
    vb_msg_header pong = hdr(VB_PROG_KEEPALIVE, VB_MSG_CALL, 5, VB_KEEPALIVE_PROC_PONG);
    expect_error(&w, &pong, NULL, NULL, VB_ERR_NO_SUPPORT, VB_DOM_RPC);
    vb_msg_header nine = hdr(VB_PROG_KEEPALIVE, VB_MSG_CALL, 6, 9);
    expect_error(&w, &nine, NULL, NULL, VB_ERR_NO_SUPPORT, VB_DOM_RPC);
    ping.serial = 8; /* a PING is small too (§5.5) */
    uint32_t limit = vb_proto_proc_lookup(VB_PROG_KEEPALIVE, VB_KEEPALIVE_PROC_PING)->max_body;
    expect_error(&w, &ping, big_open_body, &limit, VB_ERR_TOO_LARGE, VB_DOM_PROTO);
    assert_still_serving(&w, prog, 7);
    vb_ts_wire_close(&w);
}

static void test_keepalive_calls_answered_by_vbhostd(void **state)
{
    (void)state;
    keepalive_calls(hP.sock, VB_PROG_HOST);
}

static void test_keepalive_calls_answered_by_broker(void **state)
{
    (void)state;
    keepalive_calls(the_broker.sock, VB_PROG_BROKER);
}

/* ---- a CALL with status ERROR, a client's CALLBACK (§5.6) ------------------ */

static void malformed_requests(const char *sock, uint32_t prog, uint32_t proc, uint32_t cb_proc)
{
    vb_ts_wire w;
    connect_to(&w, sock);
    vb_msg_header h = hdr(prog, VB_MSG_CALL, 1, proc);
    h.status = VB_STATUS_ERROR;
    expect_error(&w, &h, NULL, NULL, VB_ERR_PROTOCOL, VB_DOM_RPC);
    /* status comes before the procedure lookup */
    h = hdr(prog, VB_MSG_CALL, 2, 99);
    h.status = VB_STATUS_ERROR;
    expect_error(&w, &h, NULL, NULL, VB_ERR_PROTOCOL, VB_DOM_RPC);
    /* a server takes no CALLBACK: answered with a CALLBACK_REPLY */
    vb_msg_header cb = hdr(prog, VB_MSG_CALLBACK, 3, cb_proc);
    expect_error(&w, &cb, NULL, NULL, VB_ERR_NO_SUPPORT, VB_DOM_RPC);
    assert_still_serving(&w, prog, 4);
    vb_ts_wire_close(&w);
}

static void test_malformed_requests_answered_by_vbhostd(void **state)
{
    (void)state;
    malformed_requests(hP.sock, VB_PROG_HOST, VB_HOST_PROC_AUTH_LIST, VB_HOST_PROC_CRED_FILL);
}

static void test_malformed_requests_answered_by_broker(void **state)
{
    (void)state;
    malformed_requests(the_broker.sock, VB_PROG_BROKER, VB_BROKER_PROC_STATUS,
                       VB_BROKER_PROC_CRED_REQUEST);
}

/* ---- serial 0 (§3) ------------------------------------------------------- */

static void serial_zero(const char *sock, uint32_t prog, uint32_t proc)
{
    vb_ts_wire w;
    connect_to(&w, sock);
    vb_msg_header h = hdr(prog, VB_MSG_CALL, 0, proc);
    expect_error(&w, &h, NULL, NULL, VB_ERR_PROTOCOL, VB_DOM_RPC);
    assert_int_equal(vb_ts_wire_wait_closed(&w, vb_ts_scaled_ms(ANSWER_MS)), 0);
    vb_ts_wire_close(&w);
}

static void test_serial_zero_refused_by_vbhostd(void **state)
{
    (void)state;
    serial_zero(hP.sock, VB_PROG_HOST, VB_HOST_PROC_AUTH_LIST);
}

static void test_serial_zero_refused_by_broker(void **state)
{
    (void)state;
    serial_zero(the_broker.sock, VB_PROG_BROKER, VB_BROKER_PROC_STATUS);
}

/* ---- the order of checks (§5.7) -------------------------------------------- */

/* an OPEN a little over its procedure's max body (arg: that limit) */
static void big_open_body(vb_enc *enc, const void *arg)
{
    static char name[VB_FRAME_MAX_PREAUTH / 2];
    size_t len = (size_t)*(const uint32_t *)arg + 16;
    assert_true(len < sizeof name);
    memset(name, 'x', len);
    name[len] = '\0';
    vb_enc_array(enc, 2);
    vb_enc_str(enc, name);
    vb_enc_u64(enc, 0);
}

static void wrong_body(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 1);
    vb_enc_bool(enc, 1); /* OPEN's name is a str */
}

static void test_order_of_checks_at_vbhostd(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_to(&w, hP.sock);
    /* before authentication: procedure, then size, then the gate, then the body */
    vb_msg_header h = hdr(VB_PROG_HOST, VB_MSG_CALL, 1, 99);
    expect_error(&w, &h, NULL, NULL, VB_ERR_NO_SUPPORT, VB_DOM_RPC);
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 2, VB_BROKER_PROC_STATUS);
    expect_error(&w, &h, NULL, NULL, VB_ERR_NO_SUPPORT, VB_DOM_RPC);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 3, VB_HOST_PROC_OPEN);
    uint32_t limit = vb_proto_proc_lookup(VB_PROG_HOST, VB_HOST_PROC_OPEN)->max_body;
    expect_error(&w, &h, big_open_body, &limit, VB_ERR_TOO_LARGE, VB_DOM_PROTO);
    h.serial = 4;
    expect_error(&w, &h, wrong_body, NULL, VB_ERR_AUTH_REQUIRED, VB_DOM_AUTH);
    /* a newer client's version is served; the reply carries the server's */
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 5, VB_HOST_PROC_AUTH_LIST);
    h.version = 9;
    vb_msg m;
    exchange(&w, &h, NULL, NULL, VB_MSG_REPLY, &m);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    assert_int_equal(m.hdr.version, VB_PROG_HOST_VERSION);
    vb_msg_clear(&m);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 6, 99);
    h.version = 9;
    exchange(&w, &h, NULL, NULL, VB_MSG_REPLY, &m);
    assert_int_equal(m.hdr.version, VB_PROG_HOST_VERSION);
    vb_msg_clear(&m);
    login_peer(&w, 7);
    /* after it: the body before the state (NOT_OPEN) */
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 8, VB_HOST_PROC_DOMAIN_START);
    expect_error(&w, &h, NULL, NULL, VB_ERR_PROTOCOL, VB_DOM_PROTO);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 9, VB_HOST_PROC_GET_HOSTNAME);
    expect_error(&w, &h, NULL, NULL, VB_ERR_NOT_OPEN, VB_DOM_DAEMON);
    /* a client never CALLs the relay's procedures */
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 10, VB_HOST_PROC_CRED_FILL);
    expect_error(&w, &h, NULL, NULL, VB_ERR_NO_SUPPORT, VB_DOM_RPC);
    vb_ts_wire_close(&w);
}

static void test_order_of_checks_at_broker(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_to(&w, the_broker.sock);
    vb_msg_header h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 1, 99);
    h.version = 9;
    vb_msg m;
    exchange(&w, &h, NULL, NULL, VB_MSG_REPLY, &m);
    assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
    assert_int_equal(m.hdr.version, VB_PROG_BROKER_VERSION); /* the replier's (§4) */
    vb_msg_clear(&m);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 2, VB_HOST_PROC_AUTH_LIST);
    h.version = 7; /* a program it does not serve: the caller's version comes back */
    exchange(&w, &h, NULL, NULL, VB_MSG_REPLY, &m);
    assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
    assert_int_equal(m.hdr.version, 7);
    int code, domain;
    vb_ts_wire_error(&m, &code, &domain);
    assert_int_equal(code, VB_ERR_NO_SUPPORT);
    assert_int_equal(domain, VB_DOM_RPC);
    vb_msg_clear(&m);
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 3, VB_BROKER_PROC_CRED_REQUEST);
    expect_error(&w, &h, NULL, NULL, VB_ERR_NO_SUPPORT, VB_DOM_RPC);
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 4, VB_BROKER_PROC_OPEN);
    uint32_t limit = vb_proto_proc_lookup(VB_PROG_BROKER, VB_BROKER_PROC_OPEN)->max_body;
    expect_error(&w, &h, big_open_body, &limit, VB_ERR_TOO_LARGE, VB_DOM_PROTO);
    /* the body before the state (NOT_OPEN), as at vbhostd */
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 5, VB_BROKER_PROC_DOMAIN_START);
    expect_error(&w, &h, NULL, NULL, VB_ERR_PROTOCOL, VB_DOM_PROTO);
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 6, VB_BROKER_PROC_GET_HOSTNAME);
    expect_error(&w, &h, NULL, NULL, VB_ERR_NOT_OPEN, VB_DOM_BROKER);
    vb_ts_wire_close(&w);
}

/* ---- bodies as §9 writes them ---------------------------------------------- */

/* the reply to h, OK, with its body's first field a str equal to want */
static void expect_str_reply(vb_ts_wire *w, const vb_msg_header *h, const char *want)
{
    vb_msg m;
    exchange(w, h, NULL, NULL, VB_MSG_REPLY, &m);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    vb_rd rd;
    const char *p;
    size_t len;
    vb_error err;
    assert_int_equal(vb_rd_init(&rd, m.body, &err), 0);
    assert_int_equal(vb_rd_str(&rd, &p, &len, &err), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
    vb_msg_clear(&m);
}

/* the reply to h, OK, its body an array of exactly nfields */
static void expect_fields(vb_ts_wire *w, const vb_msg_header *h, vb_ts_body_fn body,
                          const void *arg, uint32_t nfields)
{
    vb_msg m;
    exchange(w, h, body, arg, VB_MSG_REPLY, &m);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    assert_int_equal(m.body->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(m.body->via.array.size, nfields);
    vb_msg_clear(&m);
}

static void host_open_body(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 2);
    vb_enc_str(enc, arg);
    vb_enc_u64(enc, 0);
}

/* [uri, flags, cred_types, auth_priority, can_prompt, auth_file] */
static void broker_open_body(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 6);
    vb_enc_str(enc, arg);
    vb_enc_u64(enc, 0);
    vb_enc_array(enc, 0);
    vb_enc_array(enc, 0);
    vb_enc_bool(enc, 0);
    vb_enc_nil(enc);
}

static void nil_body(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 1);
    vb_enc_nil(enc);
}

static void test_host_bodies_as_documented(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_to(&w, hP.sock);
    vb_msg_header h = hdr(VB_PROG_HOST, VB_MSG_CALL, 1, VB_HOST_PROC_AUTH_LIST);
    expect_fields(&w, &h, NULL, NULL, 3); /* [types, server_id, features] */
    login_peer(&w, 2);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 3, VB_HOST_PROC_OPEN);
    expect_fields(&w, &h, host_open_body, "test:///default", 0);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 4, VB_HOST_PROC_GET_HOSTNAME);
    expect_str_reply(&w, &h, "test-host");
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 5, VB_HOST_PROC_LIST_DOMAINS);
    expect_fields(&w, &h, NULL, NULL, 1);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 6, VB_HOST_PROC_CLOSE);
    expect_fields(&w, &h, NULL, NULL, 0);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 7, VB_HOST_PROC_GET_HOSTNAME);
    expect_error(&w, &h, NULL, NULL, VB_ERR_NOT_OPEN, VB_DOM_DAEMON);
    vb_ts_wire_close(&w);
}

static void test_broker_bodies_as_documented(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_to(&w, the_broker.sock);
    vb_msg_header h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 1, VB_BROKER_PROC_STATUS);
    expect_fields(&w, &h, NULL, NULL, 6); /* pid, uptime, clients, upstreams, logins, hosts */
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 2, VB_BROKER_PROC_OPEN);
    expect_fields(&w, &h, broker_open_body, "test:///default", 0);
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 3, VB_BROKER_PROC_GET_HOSTNAME);
    expect_str_reply(&w, &h, "test-host");
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 4, VB_BROKER_PROC_LIST_DOMAINS);
    expect_fields(&w, &h, NULL, NULL, 1);
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 5, VB_BROKER_PROC_CLOSE);
    expect_fields(&w, &h, NULL, NULL, 0);
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 6, VB_BROKER_PROC_GET_HOSTNAME);
    expect_error(&w, &h, NULL, NULL, VB_ERR_NOT_OPEN, VB_DOM_BROKER);
    h = hdr(VB_PROG_BROKER, VB_MSG_CALL, 7, VB_BROKER_PROC_LOGOUT);
    expect_fields(&w, &h, nil_body, NULL, 1); /* [[records…]]: nothing cached */
    vb_ts_wire_close(&w);
}

/* The broker answers CLOSE at once and its worker closes the host connection
 * after it: a call that follows still finds nothing open (NOT_OPEN, not the
 * open that is still being closed upstream), and OPEN again works, on a
 * remote URI whose close is a round trip to vbhostd. */
static void test_broker_call_after_close_finds_nothing_open(void **state)
{
    (void)state;
    char uri[600];
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s", hP.sock);
    vb_ts_wire w;
    connect_to(&w, the_broker.sock);
    for (uint32_t round = 0; round < 3; round++) {
        uint32_t serial = 1 + round * 4;
        vb_msg_header h = hdr(VB_PROG_BROKER, VB_MSG_CALL, serial, VB_BROKER_PROC_OPEN);
        expect_fields(&w, &h, broker_open_body, uri, 0);
        h = hdr(VB_PROG_BROKER, VB_MSG_CALL, serial + 1, VB_BROKER_PROC_GET_HOSTNAME);
        expect_str_reply(&w, &h, "test-host");
        h = hdr(VB_PROG_BROKER, VB_MSG_CALL, serial + 2, VB_BROKER_PROC_CLOSE);
        expect_fields(&w, &h, NULL, NULL, 0);
        h = hdr(VB_PROG_BROKER, VB_MSG_CALL, serial + 3, VB_BROKER_PROC_GET_HOSTNAME);
        expect_error(&w, &h, NULL, NULL, VB_ERR_NOT_OPEN, VB_DOM_BROKER);
    }
    vb_ts_wire_close(&w);
}

/* ---- authentication answers (§9.3, §9.9) ----------------------------------- */

static void mech_body(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 2);
    vb_enc_str(enc, arg);
    vb_enc_nil(enc);
}

/* A mechanism the server did not offer is AUTH_UNAVAILABLE, and not a
 * failed login: not delayed, not counted towards the 3 attempts. */
static void test_sasl_mechanism_not_offered(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_to(&w, hS.sock);
    uint32_t serial = 1;
    for (int i = 0; i < 5; i++) {
        vb_msg_header init = hdr(VB_PROG_HOST, VB_MSG_CALL, serial++, VB_HOST_PROC_AUTH_SASL_INIT);
        expect_ok(&w, &init, NULL, NULL);
        vb_msg_header start = hdr(VB_PROG_HOST, VB_MSG_CALL, serial++, VB_HOST_PROC_AUTH_SASL_START);
        int64_t t0 = vb_ts_now_ms();
        expect_error(&w, &start, mech_body, "PLAIN", VB_ERR_AUTH_UNAVAILABLE, VB_DOM_SASL);
        assert_true(vb_ts_now_ms() - t0 < 200); /* the 2nd failed login would wait 250 ms */
    }
    assert_still_serving(&w, VB_PROG_HOST, serial);
    vb_ts_wire_close(&w);
}

/* In an AUTH_* procedure: the type gate, then the body, then the state. */
static void test_order_of_checks_in_sasl(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_to(&w, hP.sock); /* a listener without sasl */
    vb_msg_header h = hdr(VB_PROG_HOST, VB_MSG_CALL, 1, VB_HOST_PROC_AUTH_SASL_START);
    expect_error(&w, &h, wrong_body, NULL, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH);
    vb_ts_wire_close(&w);
    connect_to(&w, hS.sock);
    h.serial = 2; /* no AUTH_SASL_INIT came first */
    expect_error(&w, &h, wrong_body, NULL, VB_ERR_PROTOCOL, VB_DOM_PROTO);
    h.serial = 3;
    expect_error(&w, &h, mech_body, "SCRAM-SHA-256", VB_ERR_OPERATION_INVALID, VB_DOM_AUTH);
    h = hdr(VB_PROG_HOST, VB_MSG_CALL, 4, VB_HOST_PROC_AUTH_SASL_STEP);
    expect_error(&w, &h, wrong_body, NULL, VB_ERR_PROTOCOL, VB_DOM_PROTO);
    assert_still_serving(&w, VB_PROG_HOST, 5);
    vb_ts_wire_close(&w);
}

static void ttl_body(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 1);
    vb_enc_u64(enc, 0);
}

static void test_token_issue_needs_a_token_listener(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_to(&w, hP.sock);
    login_peer(&w, 1);
    vb_msg_header h = hdr(VB_PROG_HOST, VB_MSG_CALL, 2, VB_HOST_PROC_TOKEN_ISSUE);
    expect_error(&w, &h, ttl_body, NULL, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH);
    vb_ts_wire_close(&w);
}

/* ---- keepalive_timeout is kept to the documented bound (§9.2) --------------- */

#define NPINGERS 5
#define STAGGER_MS 50
#define LATE_MS 160 /* the document's 100 ms, plus this loaded machine's scheduling */

/* Five clients ping, 50 ms apart, then fall silent: each is closed 1 s after
 * its ping, none early and none more than the bound late. (A check every
 * quarter period would close one of them at least 200 ms late.) */
static void test_keepalive_timeout_is_punctual(void **state)
{
    (void)state;
    vb_ts_wire w[NPINGERS];
    int64_t sent[NPINGERS], closed[NPINGERS] = { 0 };
    for (int i = 0; i < NPINGERS; i++) {
        connect_to(&w[i], hK.sock);
        login_peer(&w[i], 1);
    }
    for (int i = 0; i < NPINGERS; i++) {
        if (i) { /* pacing, not synchronisation: spread the deadlines */
            struct timespec ts = { 0, STAGGER_MS * 1000000L };
            nanosleep(&ts, NULL);
        }
        vb_msg_header ping = hdr(VB_PROG_KEEPALIVE, VB_MSG_EVENT, 0, VB_KEEPALIVE_PROC_PING);
        sent[i] = vb_ts_now_ms();
        assert_int_equal(vb_ts_wire_send(&w[i], &ping, NULL, NULL), 0);
    }
    int64_t deadline = vb_ts_now_ms() + vb_ts_scaled_ms(5000);
    for (int left = NPINGERS; left > 0 && vb_ts_now_ms() < deadline;) {
        struct pollfd p[NPINGERS];
        for (int i = 0; i < NPINGERS; i++)
            p[i] = (struct pollfd){ .fd = closed[i] ? -1 : w[i].fd, .events = POLLIN };
        if (poll(p, NPINGERS, (int)(deadline - vb_ts_now_ms())) <= 0)
            continue;
        for (int i = 0; i < NPINGERS; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            vb_msg m;
            int rc = vb_ts_wire_read(&w[i], 0, &m); /* the PONG, then the close */
            if (rc == 1)
                vb_msg_clear(&m);
            else if (rc == 0) {
                closed[i] = vb_ts_now_ms();
                left--;
            }
        }
    }
    for (int i = 0; i < NPINGERS; i++) {
        if (!closed[i])
            fail_msg("client %d was not closed within 5 s of its ping", i);
        int64_t after = closed[i] - sent[i];
        if (after < 1000 - 10 || after > 1000 + vb_ts_scaled_ms(LATE_MS))
            fail_msg("client %d closed %lld ms after its ping (keepalive_timeout = 1 s)", i,
                     (long long)after);
        vb_ts_wire_close(&w[i]);
    }
}

/* Nothing above left a daemon broken: each exits cleanly on SIGTERM (under
 * SAN=1 or a valgrind wrapper, with no report). */
static void test_daemons_exit_cleanly(void **state)
{
    (void)state;
    const struct {
        const char *name, *log;
        pid_t pid;
    } d[] = { { "vbhostd hP", hP.log, hP.pid }, { "vbhostd hS", hS.log, hS.pid },
              { "vbhostd hK", hK.log, hK.pid }, { "vbrokerd", the_broker.log, the_broker.pid } };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        assert_int_equal(vb_ts_check_exit(d[i].name, vb_ts_stop(d[i].pid, vb_ts_scaled_ms(10000)),
                                          d[i].log),
                         0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_calls_answered_by_vbhostd),
        cmocka_unit_test(test_keepalive_calls_answered_by_broker),
        cmocka_unit_test(test_malformed_requests_answered_by_vbhostd),
        cmocka_unit_test(test_malformed_requests_answered_by_broker),
        cmocka_unit_test(test_serial_zero_refused_by_vbhostd),
        cmocka_unit_test(test_serial_zero_refused_by_broker),
        cmocka_unit_test(test_order_of_checks_at_vbhostd),
        cmocka_unit_test(test_order_of_checks_at_broker),
        cmocka_unit_test(test_host_bodies_as_documented),
        cmocka_unit_test(test_broker_bodies_as_documented),
        cmocka_unit_test(test_broker_call_after_close_finds_nothing_open),
        cmocka_unit_test(test_sasl_mechanism_not_offered),
        cmocka_unit_test(test_order_of_checks_in_sasl),
        cmocka_unit_test(test_token_issue_needs_a_token_listener),
        cmocka_unit_test(test_keepalive_timeout_is_punctual),
        cmocka_unit_test(test_daemons_exit_cleanly),
    };
    return cmocka_run_group_tests(tests, group_setup, vb_ts_group_teardown);
}
