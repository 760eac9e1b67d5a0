/* Codec unit tests: round trips, partial reads, hostile inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vb_msg.h"

static uint8_t *encode(const vb_msg_header *hdr, void (*body)(vb_enc *), size_t *len)
{
    vb_enc enc;
    uint8_t *frame;
    vb_error err;
    vb_enc_begin(&enc, hdr);
    body(&enc);
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, len, &err), 0);
    return frame;
}

/* Feed a whole frame to a fresh reader (chunk bytes at a time) and decode it. */
static int read_frame(const uint8_t *frame, size_t len, size_t chunk, size_t max_frame,
                      vb_msg *msg, vb_error *err)
{
    vb_frame_reader r;
    vb_frame_reader_init(&r, max_frame);
    size_t off = 0;
    int st = VB_FRAME_NEED_MORE;
    while (off < len && st == VB_FRAME_NEED_MORE) {
        size_t n = len - off < chunk ? len - off : chunk;
        size_t used;
        st = vb_frame_reader_feed(&r, frame + off, n, &used, err);
        off += used;
    }
    if (st != VB_FRAME_READY) {
        vb_frame_reader_clear(&r);
        if (st == VB_FRAME_NEED_MORE)
            vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "incomplete");
        return -1;
    }
    assert_int_equal(off, len);
    size_t plen;
    uint8_t *payload = vb_frame_reader_take(&r, &plen);
    return vb_msg_decode(msg, payload, plen, err);
}

static void body_open(vb_enc *e)
{
    vb_enc_array(e, 4);
    vb_enc_str(e, "test:///default");
    vb_enc_u64(e, 1);
    vb_enc_bin(e, "\x00\x01\x02", 3);
    vb_enc_i64(e, -42);
}

static void body_empty(vb_enc *e) { vb_enc_array(e, 0); }

static void test_roundtrip_every_type(void **state)
{
    (void)state;
    for (uint32_t type = VB_MSG_CALL; type <= VB_MSG_TYPE_MAX; type++) {
        vb_msg_header hdr = { VB_PROG_HOST, 2, type, 1000 + type, VB_HOST_PROC_OPEN,
                              VB_STATUS_OK, type * 7 };
        size_t len;
        uint8_t *frame = encode(&hdr, body_open, &len);
        vb_msg msg;
        vb_error err;
        assert_int_equal(read_frame(frame, len, len, VB_FRAME_MAX_POSTAUTH, &msg, &err), 0);
        assert_memory_equal(&msg.hdr, &hdr, sizeof hdr);
        vb_rd rd;
        const char *s;
        size_t slen;
        uint64_t flags;
        const uint8_t *bin;
        size_t binlen;
        int64_t neg;
        assert_int_equal(vb_rd_init(&rd, msg.body, &err), 0);
        assert_int_equal(vb_rd_str(&rd, &s, &slen, &err), 0);
        assert_int_equal(slen, strlen("test:///default"));
        assert_memory_equal(s, "test:///default", slen);
        assert_int_equal(vb_rd_u64(&rd, &flags, &err), 0);
        assert_int_equal(flags, 1);
        assert_int_equal(vb_rd_bin(&rd, &bin, &binlen, &err), 0);
        assert_int_equal(binlen, 3);
        assert_memory_equal(bin, "\x00\x01\x02", 3);
        assert_int_equal(vb_rd_i64(&rd, &neg, &err), 0);
        assert_int_equal(neg, -42);
        assert_false(vb_rd_has_more(&rd));
        /* reading past the end is a protocol error, not a crash */
        assert_int_equal(vb_rd_u64(&rd, &flags, &err), -1);
        assert_int_equal(err.code, VB_ERR_PROTOCOL);
        vb_msg_clear(&msg);
        vb_frame_free(frame, len);
    }
}

static void test_roundtrip_error_reply(void **state)
{
    (void)state;
    vb_msg_header req = { VB_PROG_HOST, 2, VB_MSG_CALL, 9, VB_HOST_PROC_OPEN, VB_STATUS_OK, 3 };
    vb_error e = { 0 }, err;
    vb_error_set(&e, VB_ERR_AUTH_REQUIRED, VB_DOM_AUTH,
                 "authentication required: this server accepts sasl, token");
    uint8_t *frame;
    size_t len;
    assert_int_equal(vb_enc_error_reply(&req, VB_MSG_REPLY, &e, &frame, &len, &err), 0);
    vb_msg msg;
    assert_int_equal(read_frame(frame, len, len, VB_FRAME_MAX_PREAUTH, &msg, &err), 0);
    assert_int_equal(msg.hdr.type, VB_MSG_REPLY);
    assert_int_equal(msg.hdr.status, VB_STATUS_ERROR);
    assert_int_equal(msg.hdr.serial, 9);
    assert_int_equal(msg.hdr.conn_id, 3);
    vb_error got;
    assert_int_equal(vb_msg_error_body(&msg, &got, &err), 0);
    assert_int_equal(got.code, VB_ERR_AUTH_REQUIRED);
    assert_int_equal(got.domain, VB_DOM_AUTH);
    assert_string_equal(got.message, e.message);
    vb_msg_clear(&msg);
    vb_frame_free(frame, len);
}

static void test_partial_reads_one_byte(void **state)
{
    (void)state;
    vb_msg_header hdr = { VB_PROG_BROKER, 1, VB_MSG_CALLBACK, 77, VB_BROKER_PROC_CRED_REQUEST,
                          VB_STATUS_OK, 0 };
    size_t len;
    uint8_t *frame = encode(&hdr, body_open, &len);
    /* two frames back to back, fed one byte at a time through one reader */
    uint8_t *two = malloc(2 * len);
    memcpy(two, frame, len);
    memcpy(two + len, frame, len);
    vb_frame_reader r;
    vb_frame_reader_init(&r, VB_FRAME_MAX_PREAUTH);
    int frames = 0;
    vb_error err;
    for (size_t i = 0; i < 2 * len; i++) {
        size_t used;
        int st = vb_frame_reader_feed(&r, two + i, 1, &used, &err);
        assert_int_equal(used, 1);
        assert_int_not_equal(st, VB_FRAME_ERROR);
        if (st == VB_FRAME_READY) {
            size_t plen;
            uint8_t *p = vb_frame_reader_take(&r, &plen);
            vb_msg msg;
            assert_int_equal(vb_msg_decode(&msg, p, plen, &err), 0);
            assert_int_equal(msg.hdr.serial, 77);
            vb_msg_clear(&msg);
            frames++;
        }
    }
    assert_int_equal(frames, 2);
    vb_frame_reader_clear(&r);
    free(two);
    vb_frame_free(frame, len);
}

/* A frame whose payload is given raw. */
static uint8_t *raw_frame(const uint8_t *payload, size_t plen, size_t *len)
{
    uint8_t *f = malloc(plen + 4);
    f[0] = (uint8_t)(plen >> 24);
    f[1] = (uint8_t)(plen >> 16);
    f[2] = (uint8_t)(plen >> 8);
    f[3] = (uint8_t)plen;
    memcpy(f + 4, payload, plen);
    *len = plen + 4;
    return f;
}

static int decode_raw(const uint8_t *payload, size_t plen, vb_error *err)
{
    size_t len;
    uint8_t *f = raw_frame(payload, plen, &len);
    vb_msg msg;
    int rc = read_frame(f, len, 1, VB_FRAME_MAX_PREAUTH, &msg, err);
    if (rc == 0)
        vb_msg_clear(&msg);
    else if (msg.payload)
        vb_msg_clear(&msg);
    free(f);
    return rc;
}

static void expect_reject(const uint8_t *payload, size_t plen, int code, const char *needle)
{
    vb_error err;
    vb_error_clear(&err);
    assert_int_equal(decode_raw(payload, plen, &err), -1);
    assert_int_equal(err.code, code);
    if (!strstr(err.message, needle))
        fail_msg("error '%s' does not mention '%s'", err.message, needle);
}

static void test_hostile_length_over_limit(void **state)
{
    (void)state;
    /* 64 KiB + 1 declared before auth: refused from the 4-byte prefix alone */
    const uint8_t prefix[4] = { 0x00, 0x01, 0x00, 0x01 };
    vb_frame_reader r;
    vb_frame_reader_init(&r, VB_FRAME_MAX_PREAUTH);
    size_t used;
    vb_error err;
    assert_int_equal(vb_frame_reader_feed(&r, prefix, 4, &used, &err), VB_FRAME_ERROR);
    assert_int_equal(err.code, VB_ERR_TOO_LARGE);
    assert_null(r.payload); /* nothing allocated */
    /* 4 GiB - 1 after auth */
    const uint8_t huge[4] = { 0xff, 0xff, 0xff, 0xff };
    vb_frame_reader_init(&r, VB_FRAME_MAX_POSTAUTH);
    assert_int_equal(vb_frame_reader_feed(&r, huge, 4, &used, &err), VB_FRAME_ERROR);
    assert_int_equal(err.code, VB_ERR_TOO_LARGE);
    assert_null(r.payload);
    /* zero length */
    const uint8_t zero[4] = { 0, 0, 0, 0 };
    vb_frame_reader_init(&r, VB_FRAME_MAX_POSTAUTH);
    assert_int_equal(vb_frame_reader_feed(&r, zero, 4, &used, &err), VB_FRAME_ERROR);
    assert_int_equal(err.code, VB_ERR_PROTOCOL);
}

static void test_hostile_huge_counts(void **state)
{
    (void)state;
    /* array32 declaring 2^32-1 elements inside a 5-byte frame */
    const uint8_t arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    expect_reject(arr, sizeof arr, VB_ERR_PROTOCOL, "declared count 4294967295");
    /* map32 declaring 2^32-1 pairs */
    const uint8_t map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00 };
    expect_reject(map, sizeof map, VB_ERR_PROTOCOL, "declared count");
    /* the body (inside a valid header) declares 0x10000000 elements */
    const uint8_t inner[] = { 0x98, 0x02, 0x02, 0x00, 0x01, 0x0a, 0x00, 0x00,
                              0xdd, 0x10, 0x00, 0x00, 0x00 };
    expect_reject(inner, sizeof inner, VB_ERR_PROTOCOL, "declared count 268435456");
    /* str32 declaring 4 GiB of text */
    const uint8_t str[] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a' };
    expect_reject(str, sizeof str, VB_ERR_PROTOCOL, "declared length 4294967295");
    /* bin16 longer than what is left */
    const uint8_t bin[] = { 0xc5, 0x01, 0x00, 'x', 'y' };
    expect_reject(bin, sizeof bin, VB_ERR_PROTOCOL, "declared length 256");
    /* many small containers that together owe more values than bytes left */
    const uint8_t owe[] = { 0x92, 0x9f, 0x9f, 0x00, 0x00 };
    expect_reject(owe, sizeof owe, VB_ERR_PROTOCOL, "declared count");
}

static void test_hostile_deep_nesting(void **state)
{
    (void)state;
    /* 1 KiB of nested one-element array headers */
    uint8_t deep[1024];
    memset(deep, 0x91, sizeof deep - 1);
    deep[sizeof deep - 1] = 0x00;
    expect_reject(deep, sizeof deep, VB_ERR_PROTOCOL, "nesting deeper than");
    /* exactly at the limit is fine for the validator */
    uint8_t ok[VB_MSG_MAX_DEPTH + 1];
    memset(ok, 0x91, VB_MSG_MAX_DEPTH);
    ok[VB_MSG_MAX_DEPTH] = 0x00;
    vb_error err;
    assert_int_equal(vb_msgpack_check(ok, sizeof ok, VB_MSG_MAX_DEPTH, &err), 0);
}

static void test_hostile_truncated(void **state)
{
    (void)state;
    vb_msg_header hdr = { VB_PROG_HOST, 2, VB_MSG_CALL, 1, VB_HOST_PROC_OPEN, VB_STATUS_OK, 0 };
    size_t len;
    uint8_t *frame = encode(&hdr, body_open, &len);
    /* the payload cut short at every point must never decode */
    size_t plen = len - 4;
    for (size_t cut = 1; cut < plen; cut++) {
        vb_error err;
        assert_int_equal(vb_msgpack_check(frame + 4, cut, VB_MSG_MAX_DEPTH, &err), -1);
        assert_int_equal(err.code, VB_ERR_PROTOCOL);
    }
    /* a frame whose bytes stop arriving is never reported as complete */
    vb_msg msg;
    vb_error err;
    assert_int_equal(read_frame(frame, len - 1, 1, VB_FRAME_MAX_PREAUTH, &msg, &err), -1);
    vb_frame_free(frame, len);
    /* truncated length bytes inside a str16 header */
    const uint8_t hdrcut[] = { 0xda, 0x00 };
    expect_reject(hdrcut, sizeof hdrcut, VB_ERR_PROTOCOL, "truncated msgpack header");
}

static void test_hostile_invalid_bytes(void **state)
{
    (void)state;
    const uint8_t never_used[] = { 0xc1 };
    expect_reject(never_used, sizeof never_used, VB_ERR_PROTOCOL, "invalid msgpack type byte 0xc1");
    const uint8_t ext[] = { 0xd4, 0x01, 0x02 };
    expect_reject(ext, sizeof ext, VB_ERR_PROTOCOL, "ext type");
    const uint8_t trailing[] = { 0x90, 0x00 };
    expect_reject(trailing, sizeof trailing, VB_ERR_PROTOCOL, "trailing");
    /* well-formed msgpack that is not a message */
    const uint8_t not_array[] = { 0xa3, 'a', 'b', 'c' };
    expect_reject(not_array, sizeof not_array, VB_ERR_PROTOCOL, "not an array of 8 fields");
    const uint8_t short_hdr[] = { 0x93, 0x01, 0x02, 0x03 };
    expect_reject(short_hdr, sizeof short_hdr, VB_ERR_PROTOCOL, "not an array of 8 fields");
    const uint8_t neg_field[] = { 0x98, 0xff, 0x02, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x90 };
    expect_reject(neg_field, sizeof neg_field, VB_ERR_PROTOCOL, "'program'");
    const uint8_t bad_type[] = { 0x98, 0x02, 0x02, 0x09, 0x01, 0x0a, 0x00, 0x00, 0x90 };
    expect_reject(bad_type, sizeof bad_type, VB_ERR_PROTOCOL, "unknown message type 9");
    const uint8_t bad_status[] = { 0x98, 0x02, 0x02, 0x00, 0x01, 0x0a, 0x05, 0x00, 0x90 };
    expect_reject(bad_status, sizeof bad_status, VB_ERR_PROTOCOL, "unknown message status 5");
}

/* Without sanitizers, prove the hostile inputs cost no large allocation:
 * decode them in a child whose address space is capped at +64 MiB. msgpack-c
 * reached with `dd 10000000` would reserve 6 GB and fail with a different
 * error, which the child reports as a failure. */
#if defined(__SANITIZE_ADDRESS__)
#define VB_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VB_UNDER_ASAN 1
#endif
#endif

static void test_hostile_inputs_bounded_memory(void **state)
{
    (void)state;
#ifdef VB_UNDER_ASAN
    skip();
#else
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl;
        getrlimit(RLIMIT_AS, &rl);
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long pages = 0;
        if (!f || fscanf(f, "%lu", &pages) != 1)
            _exit(3);
        fclose(f);
        rl.rlim_cur = pages * (unsigned long)sysconf(_SC_PAGESIZE) + 64ul * 1024 * 1024;
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(4);
        const uint8_t inner[] = { 0x98, 0x02, 0x02, 0x00, 0x01, 0x0a, 0x00, 0x00,
                                  0xdd, 0x10, 0x00, 0x00, 0x00 };
        uint8_t deep[1024];
        memset(deep, 0x91, sizeof deep);
        vb_error err;
        if (decode_raw(inner, sizeof inner, &err) != -1 || !strstr(err.message, "declared count"))
            _exit(1);
        if (decode_raw(deep, sizeof deep, &err) != -1 || !strstr(err.message, "nesting"))
            _exit(2);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

static void test_encoder_limit(void **state)
{
    (void)state;
    vb_msg_header hdr = { VB_PROG_HOST, 2, VB_MSG_CALL, 1, VB_HOST_PROC_OPEN, VB_STATUS_OK, 0 };
    vb_enc enc;
    vb_enc_begin(&enc, &hdr);
    char *big = malloc(VB_FRAME_MAX_PREAUTH);
    memset(big, 'x', VB_FRAME_MAX_PREAUTH);
    vb_enc_array(&enc, 1);
    vb_enc_strn(&enc, big, VB_FRAME_MAX_PREAUTH);
    uint8_t *frame;
    size_t len;
    vb_error err;
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, &err), -1);
    assert_int_equal(err.code, VB_ERR_TOO_LARGE);
    assert_null(frame);
    free(big);
}

static void test_proc_table(void **state)
{
    (void)state;
    const vb_proc_info *open = vb_proto_proc_lookup(VB_PROG_HOST, VB_HOST_PROC_OPEN);
    assert_non_null(open);
    assert_string_equal(open->name, "OPEN");
    assert_true(open->needs_auth);
    const vb_proc_info *list = vb_proto_proc_lookup(VB_PROG_HOST, VB_HOST_PROC_AUTH_LIST);
    assert_non_null(list);
    assert_false(list->needs_auth);
    assert_null(vb_proto_proc_lookup(VB_PROG_HOST, 9999));
    assert_null(vb_proto_proc_lookup(77, 1));
    assert_string_equal(vb_proto_error_code_name(VB_ERR_NO_SUPPORT), "NO_SUPPORT");
    assert_int_equal(vb_proto_program_version(VB_PROG_HOST), 2);

    /* a CALL larger than its procedure's max body is refused after decode */
    vb_msg_header hdr = { VB_PROG_HOST, 2, VB_MSG_CALL, 1, VB_HOST_PROC_GET_HOSTNAME,
                          VB_STATUS_OK, 0 };
    vb_enc enc;
    vb_enc_begin(&enc, &hdr);
    char pad[1000];
    memset(pad, 'p', sizeof pad);
    vb_enc_array(&enc, 1);
    vb_enc_strn(&enc, pad, sizeof pad);
    uint8_t *frame;
    size_t len;
    vb_error err;
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, &err), 0);
    vb_msg msg;
    assert_int_equal(read_frame(frame, len, len, VB_FRAME_MAX_PREAUTH, &msg, &err), 0);
    assert_int_equal(vb_msg_check_proc_size(&msg, &err), -1);
    assert_int_equal(err.code, VB_ERR_TOO_LARGE);
    vb_msg_clear(&msg);
    vb_frame_free(frame, len);
}

static void test_reader_types(void **state)
{
    (void)state;
    vb_msg_header hdr = { VB_PROG_HOST, 2, VB_MSG_CALL, 1, VB_HOST_PROC_OPEN, VB_STATUS_OK, 0 };
    size_t len;
    uint8_t *frame = encode(&hdr, body_open, &len);
    vb_msg msg;
    vb_error err;
    assert_int_equal(read_frame(frame, len, 3, VB_FRAME_MAX_PREAUTH, &msg, &err), 0);
    vb_rd rd;
    uint32_t u;
    char *copy;
    assert_int_equal(vb_rd_init(&rd, msg.body, &err), 0);
    assert_int_equal(vb_rd_u32(&rd, &u, &err), -1); /* a string is not an integer */
    assert_int_equal(err.code, VB_ERR_PROTOCOL);
    assert_int_equal(vb_rd_init(&rd, msg.body, &err), 0);
    assert_int_equal(vb_rd_strdup(&rd, 4, &copy, &err), -1); /* longer than allowed */
    assert_int_equal(vb_rd_init(&rd, msg.body, &err), 0);
    assert_int_equal(vb_rd_strdup(&rd, 100, &copy, &err), 0);
    assert_string_equal(copy, "test:///default");
    free(copy);
    vb_msg_clear(&msg);
    vb_frame_free(frame, len);

    frame = encode(&hdr, body_empty, &len);
    assert_int_equal(read_frame(frame, len, 1, VB_FRAME_MAX_PREAUTH, &msg, &err), 0);
    assert_int_equal(vb_rd_init(&rd, msg.body, &err), 0);
    assert_false(vb_rd_has_more(&rd));
    vb_msg_clear(&msg);
    vb_frame_free(frame, len);
}

/* Found by fuzzing: msgpack-c leaves an empty string's pointer unset, so ""
 * must still read as "" (not as nil), and encoding it must not memcpy NULL. */
static void body_empties(vb_enc *e)
{
    vb_enc_array(e, 3);
    vb_enc_str(e, "");
    vb_enc_bin(e, "", 0);
    vb_enc_nil(e);
}

static void test_empty_string_is_not_nil(void **state)
{
    (void)state;
    vb_msg_header hdr = { VB_PROG_HOST, 2, VB_MSG_CALL, 1, VB_HOST_PROC_OPEN, VB_STATUS_OK, 0 };
    size_t len;
    uint8_t *frame = encode(&hdr, body_empties, &len);
    vb_msg msg;
    vb_error err;
    assert_int_equal(read_frame(frame, len, len, VB_FRAME_MAX_PREAUTH, &msg, &err), 0);
    vb_rd rd;
    const char *s;
    const uint8_t *b;
    size_t n;
    char *copy;
    assert_int_equal(vb_rd_init(&rd, msg.body, &err), 0);
    assert_int_equal(vb_rd_str(&rd, &s, &n, &err), 0);
    assert_non_null(s);
    assert_int_equal(n, 0);
    assert_int_equal(vb_rd_bin(&rd, &b, &n, &err), 0);
    assert_non_null(b);
    assert_int_equal(n, 0);
    assert_int_equal(vb_rd_str(&rd, &s, &n, &err), 0);
    assert_null(s); /* only nil is NULL */
    assert_int_equal(vb_rd_init(&rd, msg.body, &err), 0);
    assert_int_equal(vb_rd_strdup(&rd, 10, &copy, &err), 0);
    assert_non_null(copy);
    assert_string_equal(copy, "");
    free(copy);
    vb_msg_clear(&msg);
    vb_frame_free(frame, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_type),
        cmocka_unit_test(test_roundtrip_error_reply),
        cmocka_unit_test(test_partial_reads_one_byte),
        cmocka_unit_test(test_hostile_length_over_limit),
        cmocka_unit_test(test_hostile_huge_counts),
        cmocka_unit_test(test_hostile_deep_nesting),
        cmocka_unit_test(test_hostile_truncated),
        cmocka_unit_test(test_hostile_invalid_bytes),
        cmocka_unit_test(test_hostile_inputs_bounded_memory),
        cmocka_unit_test(test_encoder_limit),
        cmocka_unit_test(test_proc_table),
        cmocka_unit_test(test_reader_types),
        cmocka_unit_test(test_empty_string_is_not_nil),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
