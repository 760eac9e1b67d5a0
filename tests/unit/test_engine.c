/* The message engine in proto/ gives every process the same answer to the
 * same bytes (issue 17 item 2):
 *
 *  - the credential-request codec (proto/vb_credwire.c) takes 8 hops and
 *    refuses a 9th; libvbroker, which used to keep the first 8 of any number
 *    silently, now refuses such a question to its broker the same way and
 *    never shows it to the app, and still shows an 8-hop one whole;
 *  - the input stage (proto/vb_msgin.c) every reader sits on gives one
 *    message per frame however the bytes arrive (one at a time, two frames
 *    in one read), refuses a frame over the connection's limit from its
 *    prefix alone, and refuses bytes that are not a message;
 *  - an ERROR reply whose code is OK and whose message is empty is an error
 *    a person can read (PROTOCOL) in libvbroker, as in the remote driver
 *    (test_calls), and a CALLBACK_REPLY like it, taken by a daemon's
 *    credwait, ends that login instead of passing for an empty answer.
 *
 * libvbroker talks to a scripted broker: a real thread on a real unix
 * socket in a private directory, speaking the real framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vb_calls.h"
#include "vb_credwire.h"
#include "vb_msgin.h"
#include "vb_offloop.h"
#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"
#include "vbroker.h"

/* ---- messages built and decoded as a peer's would be ------------------------ */

typedef struct hops_arg {
    size_t nhops;
} hops_arg;

/* CRED_REQUEST body: [service, hops, retry, items] with nhops hops, one item */
static void pack_request(vb_enc *enc, const void *arg)
{
    const hops_arg *a = arg;
    vb_enc_array(enc, 4);
    vb_enc_str(enc, "vbhostd on far");
    vb_enc_array(enc, (uint32_t)a->nhops);
    for (size_t i = 0; i < a->nhops; i++) {
        char hop[32];
        snprintf(hop, sizeof hop, "hop%zu", i);
        vb_enc_str(enc, hop);
    }
    vb_enc_bool(enc, 0);
    vb_enc_array(enc, 1);
    vb_enc_array(enc, 4);
    vb_enc_u64(enc, VB_CRED_PASSPHRASE);
    vb_enc_str(enc, "Password");
    vb_enc_nil(enc);
    vb_enc_nil(enc);
}

/* Decode the message h + body(arg) as a receiver would. */
static void make_msg(vb_msg *m, const vb_msg_header *h, vb_ts_body_fn body, const void *arg)
{
    size_t len;
    uint8_t *frame = vb_ts_wire_encode(h, body, arg, &len);
    assert_non_null(frame);
    uint8_t *payload = malloc(len - VB_FRAME_PREFIX_LEN);
    assert_non_null(payload);
    memcpy(payload, frame + VB_FRAME_PREFIX_LEN, len - VB_FRAME_PREFIX_LEN);
    vb_frame_free(frame, len);
    vb_error err;
    assert_int_equal(vb_msg_decode(m, payload, len - VB_FRAME_PREFIX_LEN, &err), 0);
}

/* ---- the input stage ----------------------------------------------------------- */

static uint8_t *ping_frame(uint32_t serial, size_t *len)
{
    vb_msg_header h = { VB_PROG_KEEPALIVE, VB_PROG_KEEPALIVE_VERSION, VB_MSG_EVENT, serial,
                        VB_KEEPALIVE_PROC_PING, VB_STATUS_OK, 0 };
    uint8_t *f = vb_ts_wire_encode(&h, NULL, NULL, len);
    assert_non_null(f);
    return f;
}

static void test_msgin_bytes_one_by_one(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = ping_frame(9, &len);
    vb_msgin in;
    vb_msgin_init(&in, VB_FRAME_MAX_PREAUTH);
    vb_msg m;
    vb_error err;
    for (size_t i = 0; i + 1 < len; i++) {
        assert_int_equal(vb_msgin_push(&in, f + i, 1, &err), 0);
        assert_int_equal(vb_msgin_next(&in, &m, &err), 0);
        assert_true(vb_msgin_partial(&in));
    }
    assert_int_equal(vb_msgin_push(&in, f + len - 1, 1, &err), 0);
    assert_int_equal(vb_msgin_next(&in, &m, &err), 1);
    assert_int_equal(m.hdr.serial, 9);
    assert_int_equal(m.hdr.procedure, VB_KEEPALIVE_PROC_PING);
    vb_msg_clear(&m);
    assert_false(vb_msgin_partial(&in));
    assert_int_equal(vb_msgin_pending(&in), 0);
    vb_msgin_clear(&in);
    vb_frame_free(f, len);
}

static void test_msgin_two_frames_one_read(void **state)
{
    (void)state;
    size_t l1, l2;
    uint8_t *f1 = ping_frame(1, &l1), *f2 = ping_frame(2, &l2);
    uint8_t both[256];
    assert_true(l1 + l2 <= sizeof both);
    memcpy(both, f1, l1);
    memcpy(both + l1, f2, l2);
    vb_msgin in;
    vb_msgin_init(&in, VB_FRAME_MAX_PREAUTH);
    vb_msg m;
    vb_error err;
    assert_int_equal(vb_msgin_push(&in, both, l1 + l2 - 1, &err), 0);
    assert_int_equal(vb_msgin_next(&in, &m, &err), 1);
    assert_int_equal(m.hdr.serial, 1);
    vb_msg_clear(&m);
    assert_int_equal(vb_msgin_pending(&in), l2 - 1);
    assert_int_equal(vb_msgin_next(&in, &m, &err), 0);
    assert_int_equal(vb_msgin_push(&in, both + l1 + l2 - 1, 1, &err), 0);
    assert_int_equal(vb_msgin_next(&in, &m, &err), 1);
    assert_int_equal(m.hdr.serial, 2);
    vb_msg_clear(&m);
    vb_msgin_clear(&in);
    vb_frame_free(f1, l1);
    vb_frame_free(f2, l2);
}

static void test_msgin_refuses(void **state)
{
    (void)state;
    vb_msgin in;
    vb_msg m;
    vb_error err;
    /* a 4-byte prefix announcing 1 MiB + 1 against a 1 MiB limit: refused
     * before any payload arrives */
    const uint8_t big[4] = { 0x00, 0x10, 0x00, 0x01 };
    vb_msgin_init(&in, 1 << 20);
    assert_int_equal(vb_msgin_push(&in, big, sizeof big, &err), 0);
    assert_int_equal(vb_msgin_next(&in, &m, &err), -1);
    assert_int_equal(err.code, VB_ERR_TOO_LARGE);
    vb_msgin_clear(&in);
    /* a whole frame holding msgpack that is not a message (a bare integer) */
    const uint8_t notmsg[5] = { 0x00, 0x00, 0x00, 0x01, 0x07 };
    vb_msgin_init(&in, 1 << 20);
    assert_int_equal(vb_msgin_push(&in, notmsg, sizeof notmsg, &err), 0);
    assert_int_equal(vb_msgin_next(&in, &m, &err), -1);
    assert_int_equal(err.code, VB_ERR_PROTOCOL);
    vb_msgin_clear(&in);
}

/* ---- the daemons' codec ------------------------------------------------------ */

static int decode_hops(size_t nhops, vb_cred_request *req, vb_error *err)
{
    vb_msg_header h = { VB_PROG_BROKER, VB_PROG_BROKER_VERSION, VB_MSG_CALLBACK, 7,
                        VB_BROKER_PROC_CRED_REQUEST, VB_STATUS_OK, 0 };
    hops_arg a = { nhops };
    vb_msg m;
    make_msg(&m, &h, pack_request, &a);
    int rc = vb_credwire_decode_request(m.body, req, err);
    vb_msg_clear(&m);
    return rc;
}

static void test_codec_hop_limit(void **state)
{
    (void)state;
    vb_cred_request req;
    vb_error err;
    assert_int_equal(decode_hops(VB_CRED_MAX_HOPS, &req, &err), 0);
    assert_int_equal(req.nhops, VB_CRED_MAX_HOPS);
    assert_string_equal(req.hops[VB_CRED_MAX_HOPS - 1], "hop7");
    vb_cred_request_clear(&req);
    assert_int_equal(decode_hops(VB_CRED_MAX_HOPS + 1, &req, &err), -1);
    assert_int_equal(err.code, VB_ERR_PROTOCOL);
    assert_non_null(strstr(err.message, "too many hops"));
    vb_cred_request_clear(&req);
}

/* ---- the one normalisation ---------------------------------------------------- */

static void test_reply_error_code_ok(void **state)
{
    (void)state;
    vb_msg_header h = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_REPLY, 3, VB_HOST_PROC_OPEN,
                        VB_STATUS_ERROR, 0 };
    vb_msg m;
    make_msg(&m, &h, vb_ts_pack_empty_error, NULL);
    vb_error err;
    assert_int_equal(vb_reply_error(&m, &err), -1);
    assert_int_equal(err.code, VB_ERR_PROTOCOL);
    assert_true(err.message[0] != '\0');
    vb_msg_clear(&m);
}

/* A daemon asked its client (a CALLBACK) and got ERROR [OK, 0, ""] back:
 * the login fails; it must not go on as if the client had answered nothing. */
static void test_credwait_error_code_ok(void **state)
{
    (void)state;
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    vb_credwait w;
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    assert_int_equal(vb_cred_request_add(&req, VB_CRED_PASSPHRASE, "Password", NULL, NULL), 0);
    vb_credwait_init(&w, &mutex, &cond);
    uint32_t serial = vb_credwait_begin(&w, &req);
    vb_msg_header h = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALLBACK_REPLY, serial,
                        VB_HOST_PROC_CRED_FILL, VB_STATUS_ERROR, 0 };
    vb_msg m;
    make_msg(&m, &h, vb_ts_pack_empty_error, NULL);
    assert_int_equal(vb_credwait_answer(&w, &m), 0);
    vb_msg_clear(&m);
    int closing = 0;
    vb_error err;
    assert_int_equal(vb_credwait_wait(&w, &closing, 5, &err), -1);
    assert_int_equal(err.code, VB_ERR_PROTOCOL);
    assert_true(err.message[0] != '\0');
    assert_null(req.items[0].result);
    vb_cred_request_clear(&req);
}

/* A refusal is kept on the heap only until it is read: one no wait read is
 * freed by the next begin and by the owner's teardown (ASan sees a leak). */
static void test_credwait_refusal_not_kept(void **state)
{
    (void)state;
    pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    vb_credwait w;
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    assert_int_equal(vb_cred_request_add(&req, VB_CRED_PASSPHRASE, "Password", NULL, NULL), 0);
    vb_credwait_init(&w, &mutex, &cond);
    int closing = 1;
    vb_error err;
    for (int round = 0; round < 3; round++) {
        uint32_t serial = vb_credwait_begin(&w, &req);
        assert_false(w.refused);
        assert_null(w.refusal);
        if (round == 1) { /* the client left: not the stale refusal */
            assert_int_equal(vb_credwait_wait(&w, &closing, 5, &err), -1);
            assert_int_equal(err.code, VB_ERR_PEER_CLOSED);
            continue;
        }
        vb_msg_header h = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALLBACK_REPLY, serial,
                            VB_HOST_PROC_CRED_FILL, VB_STATUS_ERROR, 0 };
        vb_msg m;
        make_msg(&m, &h, vb_ts_pack_empty_error, NULL);
        assert_int_equal(vb_credwait_answer(&w, &m), 0);
        vb_msg_clear(&m);
        assert_non_null(w.refusal);
    }
    vb_credwait_clear(&w);
    assert_null(w.refusal);
    vb_cred_request_clear(&req);
}

/* ---- libvbroker against a scripted broker ------------------------------------- */

typedef struct fake_broker {
    int listen_fd;
    size_t nhops;              /* hops in the question it asks */
    /* what it saw */
    int answer_status;         /* of the CALLBACK_REPLY: VB_STATUS_* or -1 (none) */
    int answer_code;
    int got_open;
} fake_broker;

static void *broker_main(void *arg)
{
    fake_broker *b = arg;
    b->answer_status = -1;
    int fd = accept(b->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    vb_ts_wire w;
    vb_ts_wire_adopt(&w, fd);
    vb_msg m;
    if (vb_ts_wire_read(&w, vb_ts_scaled_ms(10000), &m) != 1)
        goto out;
    vb_msg_header open = m.hdr;
    b->got_open = m.hdr.type == VB_MSG_CALL && m.hdr.procedure == VB_BROKER_PROC_OPEN;
    vb_msg_clear(&m);
    vb_msg_header q = { VB_PROG_BROKER, VB_PROG_BROKER_VERSION, VB_MSG_CALLBACK, 500,
                        VB_BROKER_PROC_CRED_REQUEST, VB_STATUS_OK, 0 };
    hops_arg a = { b->nhops };
    vb_ts_wire_send(&w, &q, pack_request, &a);
    if (vb_ts_wire_read(&w, vb_ts_scaled_ms(10000), &m) != 1)
        goto out;
    if (m.hdr.type == VB_MSG_CALLBACK_REPLY && m.hdr.serial == 500) {
        b->answer_status = (int)m.hdr.status;
        if (m.hdr.status == VB_STATUS_ERROR) {
            int dom;
            vb_ts_wire_error(&m, &b->answer_code, &dom);
        }
    }
    vb_msg_clear(&m);
    /* the OPEN fails with an error that says nothing */
    open.type = VB_MSG_REPLY;
    open.status = VB_STATUS_ERROR;
    vb_ts_wire_send(&w, &open, vb_ts_pack_empty_error, NULL);
out:
    vb_ts_wire_close(&w);
    return NULL;
}

typedef struct app_seen {
    int calls;
    size_t nhops;
    char last_hop[32];
} app_seen;

static int app_cb(const vb_auth_request *req, vb_credential *creds, unsigned int ncreds,
                  void *cbdata)
{
    app_seen *seen = cbdata;
    seen->calls++;
    seen->nhops = req->nhops;
    if (req->nhops)
        snprintf(seen->last_hop, sizeof seen->last_hop, "%s", req->hops[req->nhops - 1]);
    for (unsigned i = 0; i < ncreds; i++) {
        creds[i].result = strdup("secret");
        creds[i].resultlen = creds[i].result ? 6 : 0;
    }
    return 0;
}

/* libvbroker opens through the fake broker, which asks one question with
 * nhops hops and then fails the OPEN with ERROR [OK, 0, ""]. */
static void open_through_fake(size_t nhops, fake_broker *b, app_seen *seen, vb_error *err)
{
    char *dir = vb_ts_tmpdir("engine");
    assert_non_null(dir);
    char path[108];
    snprintf(path, sizeof path, "%s/broker.sock", dir);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    memset(b, 0, sizeof *b);
    b->nhops = nhops;
    b->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(b->listen_fd >= 0);
    assert_int_equal(bind(b->listen_fd, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(b->listen_fd, 4), 0);
    setenv("VBROKER_SOCKET", path, 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, broker_main, b), 0);
    static const int types[] = { VB_CRED_PASSPHRASE };
    memset(seen, 0, sizeof *seen);
    vb_auth auth = { types, 1, app_cb, seen };
    vb_conn *c = vb_open_auth("test:///default", &auth, 0, err);
    if (c)
        vb_close(c);
    pthread_join(t, NULL);
    close(b->listen_fd);
    unlink(path);
    assert_null(c);
}

static void test_thin_client_hop_limit(void **state)
{
    (void)state;
    fake_broker b;
    app_seen seen;
    vb_error err;
    /* 8 hops: the app sees all of them and answers */
    open_through_fake(VB_CRED_MAX_HOPS, &b, &seen, &err);
    assert_true(b.got_open);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.nhops, VB_CRED_MAX_HOPS);
    assert_string_equal(seen.last_hop, "hop7");
    assert_int_equal(b.answer_status, VB_STATUS_OK);
    /* 9: refused to the broker as the daemons refuse it, the app never asked */
    open_through_fake(VB_CRED_MAX_HOPS + 1, &b, &seen, &err);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(b.answer_status, VB_STATUS_ERROR);
    assert_int_equal(b.answer_code, VB_ERR_PROTOCOL);
}

static void test_thin_client_error_code_ok(void **state)
{
    (void)state;
    fake_broker b;
    app_seen seen;
    vb_error err;
    open_through_fake(1, &b, &seen, &err);
    assert_int_equal(err.code, VBROKER_ERR_PROTOCOL);
    assert_true(err.message[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgin_bytes_one_by_one),
        cmocka_unit_test(test_msgin_two_frames_one_read),
        cmocka_unit_test(test_msgin_refuses),
        cmocka_unit_test(test_codec_hop_limit),
        cmocka_unit_test(test_reply_error_code_ok),
        cmocka_unit_test(test_credwait_error_code_ok),
        cmocka_unit_test(test_credwait_refusal_not_kept),
        cmocka_unit_test(test_thin_client_hop_limit),
        cmocka_unit_test(test_thin_client_error_code_ok),
    };
    return cmocka_run_group_tests(tests, NULL, vb_ts_group_teardown);
}
