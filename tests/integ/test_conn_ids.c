/* vbhostd runs the calls of different conn_ids of one transport at the same
 * time, and the calls of one conn_id in order (docs/protocol.md 2.1), with
 * the relay rule per conn_id (9.12).
 *
 *   raw client (this test) ──unix, peer──▶ vbhostd A ──remote driver──▶ vbhostd B (SASL)
 *
 * conn_id 1 opens B through A: B's SASL questions come back to us as A's
 * CRED_FILL for conn_id 1, and we leave it unanswered, as a person who has
 * not typed yet (A would wait up to relay_timeout, 120 s). Meanwhile the
 * other conn_ids of the same transport must be served at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vb_credwire.h"
#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"

#define REALM "LAB.TEST"
#define PASSWORD "c0nnid-Pw-31"

static char *dir;
static vb_ts_hostd ha, hb;

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("connids");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0 ||
        vb_ts_hostd_start_sasl(&hb, dir, "b", 0, REALM, "auth_unix = [\"sasl\"]\n") < 0)
        return -1;
    return vb_ts_hostd_start(&ha, dir, "a", 0,
                             "auth_unix = [\"peer\"]\nallow_remote_uris = 1\n"
                             "allowed_next_hops = [\"unix:%s\"]\n",
                             hb.sock);
}

/* Both daemons exit cleanly (a sanitizer's report fails the group). */
static int group_teardown(void **state)
{
    int bad = vb_ts_check_exit("vbhostd A", vb_ts_stop(ha.pid, vb_ts_scaled_ms(5000)), ha.log) < 0;
    bad += vb_ts_check_exit("vbhostd B", vb_ts_stop(hb.pid, vb_ts_scaled_ms(5000)), hb.log) < 0;
    vb_ts_group_teardown(state);
    return bad ? -1 : 0;
}

/* ---- the wire ------------------------------------------------------------- */

static void body_open(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 2);
    vb_enc_str(enc, arg);
    vb_enc_u64(enc, 0);
}

/* B through A, logging in to B with SASL: A's driver must ask us */
static const char *nested_uri(void)
{
    static char buf[600];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s&auth=sasl.SCRAM-SHA-256", hb.sock);
    return buf;
}

static vb_msg next_msg(vb_ts_wire *w, int timeout_ms, const char *waiting_for)
{
    vb_msg m;
    if (vb_ts_wire_read(w, vb_ts_scaled_ms(timeout_ms), &m) != 1)
        fail_msg("nothing came from vbhostd A within %d ms while waiting for %s", timeout_ms,
                 waiting_for);
    return m;
}

/* The REPLY to serial; a CRED_APPROVE/REJECT before it must be about the
 * same conn_id (the verdict goes to the call that asked). */
static void expect_reply(vb_ts_wire *w, uint32_t serial, uint32_t conn_id, int ok, int timeout_ms)
{
    vb_msg m = next_msg(w, timeout_ms, "a reply");
    while (m.hdr.type == VB_MSG_EVENT) {
        assert_true(m.hdr.procedure == VB_HOST_PROC_CRED_APPROVE ||
                    m.hdr.procedure == VB_HOST_PROC_CRED_REJECT);
        assert_int_equal(m.hdr.conn_id, conn_id);
        vb_msg_clear(&m);
        m = next_msg(w, timeout_ms, "a reply after a verdict");
    }
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    assert_int_equal(m.hdr.serial, serial);
    assert_int_equal(m.hdr.conn_id, conn_id);
    if (ok && m.hdr.status != VB_STATUS_OK) {
        vb_error e, err;
        vb_msg_error_body(&m, &e, &err);
        fail_msg("call serial %u on conn_id %u failed: %s", serial, conn_id, e.message);
    }
    assert_int_equal(m.hdr.status, ok ? VB_STATUS_OK : VB_STATUS_ERROR);
    vb_msg_clear(&m);
}

/* An authenticated transport to A (AUTH_PEER, serial 1). */
static void connect_a(vb_ts_wire *w)
{
    assert_int_equal(vb_ts_wire_connect_unix(w, ha.sock), 0);
    assert_int_equal(vb_ts_wire_host_call(w, 1, VB_HOST_PROC_AUTH_PEER, 0, NULL, NULL), 0);
    expect_reply(w, 1, 0, 1, 5000);
}

/* OPEN of B on conn_id, until A asks us (the CRED_FILL, returned). */
static vb_msg open_nested_until_asked(vb_ts_wire *w, uint32_t serial, uint32_t conn_id)
{
    assert_int_equal(
        vb_ts_wire_host_call(w, serial, VB_HOST_PROC_OPEN, conn_id, body_open, nested_uri()), 0);
    vb_msg fill = next_msg(w, 10000, "the nested OPEN's CRED_FILL");
    assert_int_equal(fill.hdr.type, VB_MSG_CALLBACK);
    assert_int_equal(fill.hdr.procedure, VB_HOST_PROC_CRED_FILL);
    assert_int_equal(fill.hdr.conn_id, conn_id); /* the question names its call's id */
    return fill;
}

/* Answer fill as alice, on conn_id (not necessarily the question's). */
static void answer(vb_ts_wire *w, const vb_msg *fill, uint32_t conn_id)
{
    vb_cred_request req;
    vb_error err;
    memset(&req, 0, sizeof req);
    assert_int_equal(vb_credwire_decode_request(fill->body, &req, &err), 0);
    for (size_t i = 0; i < req.nitems; i++) {
        const char *v = req.items[i].type == VB_CRED_AUTHNAME     ? "alice"
                        : req.items[i].type == VB_CRED_PASSPHRASE ? PASSWORD
                                                                  : NULL;
        if (v)
            assert_int_equal(vb_cred_item_set_result(&req.items[i], v, strlen(v)), 0);
    }
    vb_msg_header hdr = fill->hdr;
    hdr.type = VB_MSG_CALLBACK_REPLY;
    hdr.conn_id = conn_id;
    assert_int_equal(vb_ts_wire_send(w, &hdr, (vb_ts_body_fn)vb_credwire_encode_answer, &req),
                     0);
    vb_cred_request_clear(&req);
}

/* ---- tests ---------------------------------------------------------------- */

/* conn_id 1 waits for a person; conn_id 2 of the same transport opens and
 * answers GET_HOSTNAME meanwhile, well within the deadline. */
static void test_pending_prompt_stalls_only_its_conn_id(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_a(&w);
    vb_msg fill = open_nested_until_asked(&w, 2, 1);

    int64_t t0 = vb_ts_now_ms();
    assert_int_equal(
        vb_ts_wire_host_call(&w, 3, VB_HOST_PROC_OPEN, 2, body_open, "test:///default"), 0);
    assert_int_equal(vb_ts_wire_host_call(&w, 4, VB_HOST_PROC_GET_HOSTNAME, 2, NULL, NULL), 0);
    expect_reply(&w, 3, 2, 1, 2000);
    vb_msg m = next_msg(&w, 2000, "GET_HOSTNAME on conn_id 2");
    assert_int_equal(m.hdr.serial, 4);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    vb_rd rd;
    const char *host;
    size_t len;
    vb_error err;
    assert_int_equal(vb_rd_init(&rd, m.body, &err), 0);
    assert_int_equal(vb_rd_str(&rd, &host, &len, &err), 0);
    assert_int_equal(len, strlen("test-host"));
    assert_memory_equal(host, "test-host", len);
    vb_msg_clear(&m);
    int64_t took = vb_ts_now_ms() - t0;
    if (took > vb_ts_scaled_ms(1000))
        fail_msg("conn_id 2 took %lld ms while conn_id 1 waited for a person", (long long)took);

    /* the question is still conn_id 1's: answered, its OPEN completes */
    answer(&w, &fill, 1);
    expect_reply(&w, 2, 1, 1, 10000);
    assert_int_equal(vb_ts_wire_host_call(&w, 5, VB_HOST_PROC_GET_HOSTNAME, 1, NULL, NULL), 0);
    expect_reply(&w, 5, 1, 1, 5000);
    vb_msg_clear(&fill);
    vb_ts_wire_close(&w);
}

/* Calls of one conn_id sent back to back are all run, in order: OPEN,
 * GET_HOSTNAME, CLOSE, then GET_HOSTNAME finds nothing open. */
static void test_one_conn_id_keeps_its_order(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_a(&w);
    assert_int_equal(vb_ts_wire_host_call(&w, 2, VB_HOST_PROC_OPEN, 3, body_open, "test:///default"),
                     0);
    assert_int_equal(vb_ts_wire_host_call(&w, 3, VB_HOST_PROC_GET_HOSTNAME, 3, NULL, NULL), 0);
    assert_int_equal(vb_ts_wire_host_call(&w, 4, VB_HOST_PROC_CLOSE, 3, NULL, NULL), 0);
    assert_int_equal(vb_ts_wire_host_call(&w, 5, VB_HOST_PROC_GET_HOSTNAME, 3, NULL, NULL), 0);
    expect_reply(&w, 2, 3, 1, 5000);
    expect_reply(&w, 3, 3, 1, 5000);
    expect_reply(&w, 4, 3, 1, 5000);
    vb_msg m = next_msg(&w, 5000, "the GET_HOSTNAME after CLOSE");
    assert_int_equal(m.hdr.serial, 5);
    assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
    vb_error e, err;
    assert_int_equal(vb_msg_error_body(&m, &e, &err), 0);
    assert_int_equal(e.code, VB_ERR_NOT_OPEN);
    vb_msg_clear(&m);
    vb_ts_wire_close(&w);
}

/* An answer is taken only by the conn_id that asked: the right answer sent
 * on another conn_id logs nobody in, and the question stays open. */
static void test_answer_on_another_conn_id_is_not_taken(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_a(&w);
    vb_msg fill = open_nested_until_asked(&w, 2, 1);
    assert_int_equal(vb_ts_wire_host_call(&w, 3, VB_HOST_PROC_OPEN, 2, body_open, "test:///default"),
                     0);
    expect_reply(&w, 3, 2, 1, 5000);
    int before = vb_ts_count_in_file(ha.log, "nobody asked (connection 2)");
    answer(&w, &fill, 2);
    if (vb_ts_wait_for_log(ha.log, "nobody asked (connection 2)", before + 1,
                           vb_ts_scaled_ms(5000)) < 0)
        fail_msg("vbhostd A never said it ignored the answer on conn_id 2");
    /* conn_id 1's OPEN is still waiting: a PING is answered before it */
    vb_msg_header ping = { VB_PROG_KEEPALIVE, 1, VB_MSG_CALL, 4, VB_KEEPALIVE_PROC_PING,
                           VB_STATUS_OK, 0 };
    assert_int_equal(vb_ts_wire_send(&w, &ping, NULL, NULL), 0);
    vb_msg m = next_msg(&w, 5000, "the PONG");
    assert_int_equal(m.hdr.program, VB_PROG_KEEPALIVE);
    assert_int_equal(m.hdr.serial, 4);
    vb_msg_clear(&m);
    answer(&w, &fill, 1);
    expect_reply(&w, 2, 1, 1, 10000);
    vb_msg_clear(&fill);
    vb_ts_wire_close(&w);
}

/* At most VBH_MAX_CALLS_PER_CLIENT (512) driver calls in flight on a
 * transport: behind a pending OPEN, 511 more calls of its conn_id queue
 * (and are all answered, in order, once it completes); one more is refused
 * at once, and the refusal loses nothing else. */
static void test_calls_in_flight_are_bounded(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_a(&w);
    vb_msg fill = open_nested_until_asked(&w, 2, 1);
    for (uint32_t serial = 3; serial < 3 + 511; serial++)
        assert_int_equal(vb_ts_wire_host_call(&w, serial, VB_HOST_PROC_GET_HOSTNAME, 1, NULL, NULL), 0);
    assert_int_equal(vb_ts_wire_host_call(&w, 514, VB_HOST_PROC_GET_HOSTNAME, 2, NULL, NULL), 0);
    vb_msg m = next_msg(&w, 5000, "the refusal of call 513");
    assert_int_equal(m.hdr.serial, 514);
    assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
    vb_error e, err;
    assert_int_equal(vb_msg_error_body(&m, &e, &err), 0);
    assert_int_equal(e.code, VB_ERR_OPERATION_INVALID);
    assert_non_null(strstr(e.message, "512 calls"));
    vb_msg_clear(&m);
    answer(&w, &fill, 1);
    expect_reply(&w, 2, 1, 1, 10000);
    for (uint32_t serial = 3; serial < 3 + 511; serial++)
        expect_reply(&w, serial, 1, 1, 5000);
    vb_msg_clear(&fill);
    vb_ts_wire_close(&w);
}

/* A client that leaves while a question is pending: its worker stops
 * waiting at once and the nested connection to B is closed (not after the
 * 120 s relay timeout); A serves the next client. */
static void test_leaving_ends_the_pending_question(void **state)
{
    (void)state;
    vb_ts_wire w;
    connect_a(&w);
    int before = vb_ts_count_in_file(hb.log, "disconnected");
    vb_msg fill = open_nested_until_asked(&w, 2, 7);
    vb_msg_clear(&fill);
    vb_ts_wire_close(&w);
    if (vb_ts_wait_for_log(hb.log, "disconnected", before + 1, vb_ts_scaled_ms(5000)) < 0)
        fail_msg("A kept its nested connection to B after its client left");
    connect_a(&w);
    assert_int_equal(vb_ts_wire_host_call(&w, 2, VB_HOST_PROC_OPEN, 7, body_open, "test:///default"),
                     0);
    expect_reply(&w, 2, 7, 1, 5000);
    vb_ts_wire_close(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_prompt_stalls_only_its_conn_id),
        cmocka_unit_test(test_one_conn_id_keeps_its_order),
        cmocka_unit_test(test_answer_on_another_conn_id_is_not_taken),
        cmocka_unit_test(test_calls_in_flight_are_bounded),
        cmocka_unit_test(test_leaving_ends_the_pending_question),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
