/* vb_msg_server_intake: steps 3-6 of the order of checks in
 * docs/protocol.md §5.7, case by case (the daemons' side of it is
 * tests/integ/test_conform.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vb_msg.h"

typedef struct intake_case {
    const char *what;
    vb_msg_header hdr;
    uint32_t body_bytes; /* one str of this many bytes in the body; 0: [] */
    vb_intake want;
    int code;            /* for the refusals */
} intake_case;

#define K VB_PROG_KEEPALIVE
#define H VB_PROG_HOST
#define PING VB_KEEPALIVE_PROC_PING
#define PONG VB_KEEPALIVE_PROC_PONG

static const intake_case cases[] = {
    { "a CALL", { H, 2, VB_MSG_CALL, 1, VB_HOST_PROC_OPEN, 0, 0 }, 0, VB_INTAKE_CALL, 0 },
    { "a REPLY", { H, 2, VB_MSG_REPLY, 1, VB_HOST_PROC_OPEN, 0, 0 }, 0, VB_INTAKE_IGNORE, 0 },
    { "a CALLBACK_REPLY", { H, 2, VB_MSG_CALLBACK_REPLY, 1, 30, 1, 0 }, 0,
      VB_INTAKE_CALLBACK_REPLY, 0 },
    { "a HOST EVENT", { H, 2, VB_MSG_EVENT, 0, 31, 0, 0 }, 0, VB_INTAKE_IGNORE, 0 },
    { "a PING EVENT, serial 0", { K, 1, VB_MSG_EVENT, 0, PING, 0, 0 }, 0, VB_INTAKE_PING, 0 },
    { "a PONG EVENT", { K, 1, VB_MSG_EVENT, 0, PONG, 0, 0 }, 0, VB_INTAKE_IGNORE, 0 },
    { "a PING CALL", { K, 1, VB_MSG_CALL, 3, PING, 0, 0 }, 0, VB_INTAKE_PING, 0 },
    { "a PING CALL over 256 bytes", { K, 1, VB_MSG_CALL, 3, PING, 0, 0 }, 300,
      VB_INTAKE_REFUSE, VB_ERR_TOO_LARGE },
    { "a PING EVENT over 256 bytes", { K, 1, VB_MSG_EVENT, 0, PING, 0, 0 }, 300,
      VB_INTAKE_IGNORE, 0 },
    { "a PONG CALL", { K, 1, VB_MSG_CALL, 3, PONG, 0, 0 }, 0, VB_INTAKE_REFUSE,
      VB_ERR_NO_SUPPORT },
    { "KEEPALIVE procedure 9", { K, 1, VB_MSG_CALL, 3, 9, 0, 0 }, 0, VB_INTAKE_REFUSE,
      VB_ERR_NO_SUPPORT },
    { "a client's CALLBACK", { H, 2, VB_MSG_CALLBACK, 3, 30, 0, 0 }, 0, VB_INTAKE_REFUSE,
      VB_ERR_NO_SUPPORT },
    { "a CALLBACK with serial 0", { H, 2, VB_MSG_CALLBACK, 0, 30, 0, 0 }, 0, VB_INTAKE_REFUSE,
      VB_ERR_NO_SUPPORT },
    { "a CALL with serial 0", { H, 2, VB_MSG_CALL, 0, VB_HOST_PROC_OPEN, 0, 0 }, 0,
      VB_INTAKE_REFUSE_CLOSE, VB_ERR_PROTOCOL },
    { "serial 0 before status", { H, 2, VB_MSG_CALL, 0, 99, 1, 0 }, 0, VB_INTAKE_REFUSE_CLOSE,
      VB_ERR_PROTOCOL },
    { "a CALL with status ERROR", { H, 2, VB_MSG_CALL, 1, 99, 1, 0 }, 0, VB_INTAKE_REFUSE,
      VB_ERR_PROTOCOL },
    { "a PING CALL with status ERROR", { K, 1, VB_MSG_CALL, 1, PING, 1, 0 }, 0,
      VB_INTAKE_REFUSE, VB_ERR_PROTOCOL },
    { "an unknown program", { 7, 1, VB_MSG_CALL, 1, 1, 0, 0 }, 0, VB_INTAKE_CALL, 0 },
};

static void decode_case(const intake_case *c, vb_msg *msg)
{
    vb_enc enc;
    vb_enc_begin(&enc, &c->hdr);
    if (c->body_bytes) {
        char *text = calloc(1, c->body_bytes + 1);
        assert_non_null(text);
        memset(text, 'x', c->body_bytes);
        vb_enc_array(&enc, 1);
        vb_enc_str(&enc, text);
        free(text);
    } else {
        vb_enc_array(&enc, 0);
    }
    uint8_t *frame;
    size_t len;
    vb_error err;
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, &err), 0);
    uint8_t *payload = malloc(len - VB_FRAME_PREFIX_LEN);
    assert_non_null(payload);
    memcpy(payload, frame + VB_FRAME_PREFIX_LEN, len - VB_FRAME_PREFIX_LEN);
    vb_frame_free(frame, len);
    assert_int_equal(vb_msg_decode(msg, payload, len - VB_FRAME_PREFIX_LEN, &err), 0);
}

static void test_intake_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const intake_case *c = &cases[i];
        vb_msg msg;
        vb_error err;
        decode_case(c, &msg);
        vb_error_clear(&err);
        vb_intake got = vb_msg_server_intake(&msg, &err);
        if (got != c->want)
            fail_msg("%s: intake %d, want %d", c->what, (int)got, (int)c->want);
        if (c->code && (err.code != c->code || err.domain != (c->code == VB_ERR_TOO_LARGE
                                                                  ? VB_DOM_PROTO
                                                                  : VB_DOM_RPC)))
            fail_msg("%s: %s (%d), want %s", c->what, vb_proto_error_code_name(err.code),
                     err.domain, vb_proto_error_code_name(c->code));
        vb_msg_clear(&msg);
    }
}

static void test_answer_types(void **state)
{
    (void)state;
    assert_int_equal(vb_msg_answer_type(VB_MSG_CALL), VB_MSG_REPLY);
    assert_int_equal(vb_msg_answer_type(VB_MSG_CALLBACK), VB_MSG_CALLBACK_REPLY);
}

static void test_pong(void **state)
{
    (void)state;
    vb_msg_header ping = { K, 7, VB_MSG_CALL, 42, PING, 0, 3 };
    uint8_t *frame;
    size_t len;
    vb_error err;
    assert_int_equal(vb_enc_pong(&ping, &frame, &len, &err), 0);
    uint8_t *payload = malloc(len - VB_FRAME_PREFIX_LEN);
    assert_non_null(payload);
    memcpy(payload, frame + VB_FRAME_PREFIX_LEN, len - VB_FRAME_PREFIX_LEN);
    vb_frame_free(frame, len);
    vb_msg m;
    assert_int_equal(vb_msg_decode(&m, payload, len - VB_FRAME_PREFIX_LEN, &err), 0);
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    assert_int_equal(m.hdr.serial, 42);
    assert_int_equal(m.hdr.conn_id, 3);
    assert_int_equal(m.hdr.procedure, PONG);
    assert_int_equal(m.hdr.version, VB_PROG_KEEPALIVE_VERSION);
    vb_msg_clear(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intake_cases),
        cmocka_unit_test(test_answer_types),
        cmocka_unit_test(test_pong),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
