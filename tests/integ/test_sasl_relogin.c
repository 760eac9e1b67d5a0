/* Hostile: SASL again on a connection whose SASL security layer is on.
 *
 * On a listener that lists "none" besides "sasl", an authenticated client may
 * call the AUTH_SASL_* procedures again. Once a DIGEST-MD5 login has switched
 * the layer on, vbhostd's stream encodes every frame with that SASL session:
 * a new INIT freed it, and a STEP on the finished exchange failed and freed
 * it, under the stream (a use after free; with the steps on SASL lanes, also
 * two threads in one Cyrus connection). vbhostd died with SIGSEGV in 2 runs of
 * 3 (found in review). Now each is refused, through the layer, and the
 * connection goes on working. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vb_msgin.h"
#include "vb_sasl.h"
#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"

#define REALM "RELOGIN.TEST"
#define PASSWORD "Rel0gin-pw-83"
#define WAIT_MS 5000

static char *dir;
static vb_ts_hostd hostd;

static vb_msg_header call_header(uint32_t serial, uint32_t proc)
{
    vb_msg_header h = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, serial, proc,
                        VB_STATUS_OK, 0 };
    return h;
}

typedef struct sasl_args {
    const char *mech; /* START only */
    const uint8_t *data;
    size_t len;
} sasl_args;

static void start_body(vb_enc *e, const void *arg)
{
    const sasl_args *a = arg;
    vb_enc_array(e, 2);
    vb_enc_str(e, a->mech);
    vb_enc_bin(e, a->data ? a->data : (const uint8_t *)"", a->len);
}

static void step_body(vb_enc *e, const void *arg)
{
    const sasl_args *a = arg;
    vb_enc_array(e, 1);
    vb_enc_bin(e, a->data ? a->data : (const uint8_t *)"", a->len);
}

static void empty_body(vb_enc *e, const void *arg)
{
    (void)arg;
    vb_enc_array(e, 0);
}

static int answer(vb_cred_request *req, void *opaque, vb_error *err)
{
    (void)opaque;
    (void)err;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        const char *v = it->type == VB_CRED_PASSPHRASE ? PASSWORD : "alice";
        vb_cred_item_set_result(it, v, strlen(v));
    }
    return 0;
}

/* A DIGEST-MD5 login on w in the clear; the client's session, its layer on. */
static vb_sasl *login(vb_ts_wire *w)
{
    vb_error err;
    vb_msg m;
    vb_msg_header init = call_header(1, VB_HOST_PROC_AUTH_SASL_INIT);
    assert_int_equal(vb_ts_wire_call(w, &init, empty_body, NULL, WAIT_MS, &m), 1);
    vb_msg_clear(&m);
    static const int types[] = { VB_CRED_AUTHNAME, VB_CRED_USERNAME, VB_CRED_PASSPHRASE };
    assert_int_equal(vb_sasl_client_init(&err), 0);
    vb_sasl *cl = vb_sasl_client_new("vbhostd", "localhost", w->fd, 0, types, 3, &err);
    assert_non_null(cl);
    vb_sasl_prompter p = { answer, NULL, "relogin", 0, NULL };
    const char *mech;
    sasl_args a = { "DIGEST-MD5", NULL, 0 };
    int rc = vb_sasl_client_start(cl, "DIGEST-MD5", &p, &mech, &a.data, &a.len, &err);
    assert_true(rc >= 0);
    uint32_t proc = VB_HOST_PROC_AUTH_SASL_START;
    for (uint32_t serial = 2; serial < 10; serial++) {
        vb_msg_header h = call_header(serial, proc);
        assert_int_equal(vb_ts_wire_call(w, &h, proc == VB_HOST_PROC_AUTH_SASL_START ? start_body
                                                                                     : step_body,
                                          &a, WAIT_MS, &m),
                         1);
        assert_int_equal(m.hdr.status, VB_STATUS_OK);
        vb_rd rd;
        int done = 0;
        const uint8_t *d = NULL;
        size_t n = 0;
        assert_int_equal(vb_rd_init(&rd, m.body, &err), 0);
        assert_int_equal(vb_rd_bool(&rd, &done, &err), 0);
        assert_int_equal(vb_rd_bin(&rd, &d, &n, &err), 0);
        proc = VB_HOST_PROC_AUTH_SASL_STEP;
        a.data = NULL;
        a.len = 0;
        if (rc != VB_SASL_COMPLETE && (n > 0 || !done))
            rc = vb_sasl_client_step(cl, d, n, &p, &a.data, &a.len, &err);
        vb_msg_clear(&m);
        if (done) {
            assert_true(vb_sasl_ssf(cl) > 0); /* the layer is on from here */
            return cl;
        }
    }
    fail_msg("the login did not complete");
    return NULL;
}

/* Send h's call through cl's layer; read one answer through it. */
static int layered_call(vb_ts_wire *w, vb_sasl *cl, const vb_msg_header *h, vb_ts_body_fn body,
                        const void *arg, vb_msg *out)
{
    vb_error err;
    size_t flen, elen;
    uint8_t *frame = vb_ts_wire_encode(h, body, arg, &flen);
    uint8_t *enc = NULL;
    if (!frame || vb_sasl_encode(cl, frame, flen, &enc, &elen, &err) < 0)
        return -1;
    int sent = vb_ts_send_all(w->fd, enc, elen);
    if (enc != frame)
        vb_frame_free(enc, elen);
    vb_frame_free(frame, flen);
    if (sent < 0)
        return -1;
    vb_msgin in;
    vb_msgin_init(&in, 1 << 20);
    int64_t deadline = vb_ts_now_ms() + vb_ts_scaled_ms(WAIT_MS);
    int got = 0;
    while (!got) {
        struct pollfd p = { w->fd, POLLIN, 0 };
        int64_t now = vb_ts_now_ms();
        if (now >= deadline || poll(&p, 1, (int)(deadline - now)) != 1)
            break;
        uint8_t buf[4096];
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0)
            break; /* vbhostd closed (or died) */
        uint8_t *plain;
        size_t plen;
        if (vb_sasl_decode(cl, buf, (size_t)n, &plain, &plen, &err) < 0)
            break;
        int pushed = vb_msgin_push(&in, plain, plen, &err);
        if (plain != buf)
            vb_frame_free(plain, plen);
        if (pushed < 0)
            break;
        got = vb_msgin_next(&in, out, &err);
        if (got < 0)
            break;
    }
    vb_msgin_clear(&in);
    return got == 1 ? 0 : -1;
}

static void expect_refused(vb_ts_wire *w, vb_sasl *cl, uint32_t serial, uint32_t proc,
                           vb_ts_body_fn body, const void *arg)
{
    vb_msg m;
    vb_msg_header h = call_header(serial, proc);
    if (layered_call(w, cl, &h, body, arg, &m) < 0)
        fail_msg("no answer to procedure %u through the layer (vbhostd alive: %d)", proc,
                 kill(hostd.pid, 0) == 0);
    int code, domain;
    vb_ts_wire_error(&m, &code, &domain);
    assert_int_equal(m.hdr.status, VB_STATUS_ERROR);
    assert_int_equal(code, VB_ERR_OPERATION_INVALID);
    assert_non_null(memmem(m.payload, m.payload_len, "already has a SASL security layer", 33));
    vb_msg_clear(&m);
}

static void test_sasl_again_through_the_layer_is_refused(void **state)
{
    (void)state;
    vb_ts_wire w;
    assert_int_equal(vb_ts_wire_connect_unix(&w, hostd.sock), 0);
    vb_sasl *cl = login(&w);
    sasl_args junk = { "DIGEST-MD5", (const uint8_t *)"x", 1 };
    expect_refused(&w, cl, 100, VB_HOST_PROC_AUTH_SASL_STEP, step_body, &junk);
    expect_refused(&w, cl, 101, VB_HOST_PROC_AUTH_SASL_START, start_body, &junk);
    expect_refused(&w, cl, 102, VB_HOST_PROC_AUTH_SASL_INIT, empty_body, NULL);
    /* the layer still works both ways, and vbhostd serves the connection */
    vb_msg m;
    vb_msg_header list = call_header(103, VB_HOST_PROC_AUTH_LIST);
    assert_int_equal(layered_call(&w, cl, &list, empty_body, NULL, &m), 0);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    vb_msg_clear(&m);
    vb_sasl_free(cl);
    vb_ts_wire_close(&w);
    assert_int_equal(kill(hostd.pid, 0), 0);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    vb_ts_note_secret(PASSWORD);
    dir = vb_ts_tmpdir("relogin");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (!dir || vb_ts_hostd_sasl_setup(dir, REALM, "DIGEST-MD5", users, NULL) < 0)
        return -1;
    return vb_ts_hostd_start_sasl(&hostd, dir, "h", 0, REALM,
                                  "auth_unix = [\"sasl\", \"none\"]\n"
                                  "sasl_hostname = \"localhost\"\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sasl_again_through_the_layer_is_refused),
    };
    return cmocka_run_group_tests_name("sasl_relogin", tests, group_setup, vb_ts_group_teardown);
}
