/*
 * fuzz_frame.c — libFuzzer target for everything a peer's bytes pass through:
 * vb_frame_reader, vb_msgpack_check, vb_msg_decode and the vb_rd_* readers.
 *
 * Input layout (the seed generator, gen_corpus.c, writes the same):
 *   byte 0   limits: bits 0-1 pick the mode — 0 pre-auth (64 KiB), 1 post-auth
 *            (4 MiB), 2 pre-auth for the first frame then post-auth (a login
 *            happened), 3 a limit configured down to 256 << bits 2-4;
 *   byte 1   chunking: the stream is fed in chunks of 1..2^(byte1 % 17)
 *            bytes, sizes drawn from a PRNG seeded by bytes 0-1, so one input
 *            also tests every way a socket may split it;
 *   rest     the byte stream a peer sends: frames back to back.
 * Every complete frame is decoded; a decoded body is walked with every typed
 * reader on every field, then re-encoded canonically and decoded again.
 * A broken invariant calls abort() so the fuzzer reports it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vb_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Nesting the walk follows; the validator stops at VB_MSG_MAX_DEPTH anyway. */
#define FRAME_WALK_DEPTH 32

/* Reads land here, so the bytes behind every view are really touched. */
static volatile uint8_t frame_sink;

static void frame_check(int ok)
{
    if (!ok)
        abort();
}

static void frame_touch(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++)
        acc ^= b[i];
    frame_sink ^= acc;
}

static uint32_t frame_rng(uint32_t *s)
{
    /* xorshift32: deterministic chunk sizes from the input's own bytes */
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* A failed read is a protocol error (or out of memory), never anything else. */
static void frame_expect_refusal(const vb_error *err)
{
    frame_check(err->code == VB_ERR_PROTOCOL || err->code == VB_ERR_NO_MEMORY);
    frame_check(strnlen(err->message, sizeof err->message) < sizeof err->message);
}

static void frame_walk(const msgpack_object *array, unsigned depth);

/* Field i of rd, read with every typed reader from a fresh position. */
static void frame_read_field(const vb_rd *rd, uint32_t i, const msgpack_object *o,
                             unsigned depth)
{
    vb_error err;
    vb_rd t;
    uint64_t u64;
    uint32_t u32;
    int64_t i64;
    int b;
    const char *s;
    const uint8_t *bin;
    size_t len;
    char *copy;
    vb_rd sub;

    t = *rd, t.next = i;
    if (vb_rd_u64(&t, &u64, &err) == 0) {
        frame_check(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && u64 == o->via.u64);
    } else {
        frame_check(o->type != MSGPACK_OBJECT_POSITIVE_INTEGER);
        frame_expect_refusal(&err);
    }

    t = *rd, t.next = i;
    if (vb_rd_u32(&t, &u32, &err) == 0) {
        frame_check(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && u32 == o->via.u64);
    } else {
        frame_check(o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX);
        frame_expect_refusal(&err);
    }

    t = *rd, t.next = i;
    if (vb_rd_i64(&t, &i64, &err) == 0) {
        frame_check((o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && i64 == o->via.i64 && i64 < 0) ||
                    (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && i64 >= 0 &&
                     (uint64_t)i64 == o->via.u64));
    } else {
        frame_check(o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER &&
                    (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > INT64_MAX));
        frame_expect_refusal(&err);
    }

    t = *rd, t.next = i;
    if (vb_rd_bool(&t, &b, &err) == 0) {
        frame_check(o->type == MSGPACK_OBJECT_BOOLEAN && (b == 0 || b == 1));
    } else {
        frame_check(o->type != MSGPACK_OBJECT_BOOLEAN);
        frame_expect_refusal(&err);
    }

    t = *rd, t.next = i;
    if (vb_rd_str(&t, &s, &len, &err) == 0) {
        frame_check(o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_NIL);
        /* NULL means nil (vb_msg.h): "" must not read as nil */
        frame_check((s == NULL) == (o->type == MSGPACK_OBJECT_NIL));
        frame_check(s ? len == o->via.str.size : len == 0);
        if (s)
            frame_touch(s, len);
    } else {
        frame_check(o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_NIL);
        frame_expect_refusal(&err);
    }

    static const size_t max_lens[] = { 0, 16, 4096, SIZE_MAX };
    for (size_t m = 0; m < sizeof max_lens / sizeof max_lens[0]; m++) {
        t = *rd, t.next = i;
        if (vb_rd_strdup(&t, max_lens[m], &copy, &err) == 0) {
            if (o->type == MSGPACK_OBJECT_NIL) {
                frame_check(copy == NULL);
                continue;
            }
            frame_check(o->type == MSGPACK_OBJECT_STR && copy != NULL);
            frame_check(o->via.str.size <= max_lens[m]);
            frame_check(strlen(copy) == o->via.str.size);
            frame_check(o->via.str.size == 0 ||
                        memcmp(copy, o->via.str.ptr, o->via.str.size) == 0);
            free(copy);
        } else {
            frame_check(copy == NULL);
            frame_expect_refusal(&err);
            frame_check(o->type != MSGPACK_OBJECT_STR || o->via.str.size > max_lens[m] ||
                        (o->via.str.size && memchr(o->via.str.ptr, '\0', o->via.str.size)));
        }
    }

    t = *rd, t.next = i;
    if (vb_rd_bin(&t, &bin, &len, &err) == 0) {
        frame_check(o->type == MSGPACK_OBJECT_BIN || o->type == MSGPACK_OBJECT_STR ||
                    o->type == MSGPACK_OBJECT_NIL);
        frame_check((bin == NULL) == (o->type == MSGPACK_OBJECT_NIL));
        if (bin)
            frame_touch(bin, len);
        else
            frame_check(len == 0);
    } else {
        frame_check(o->type != MSGPACK_OBJECT_BIN && o->type != MSGPACK_OBJECT_STR &&
                    o->type != MSGPACK_OBJECT_NIL);
        frame_expect_refusal(&err);
    }

    t = *rd, t.next = i;
    if (vb_rd_array(&t, &sub, &err) == 0) {
        frame_check(o->type == MSGPACK_OBJECT_ARRAY && sub.count == o->via.array.size);
        if (depth < FRAME_WALK_DEPTH)
            frame_walk(o, depth + 1);
    } else {
        frame_check(o->type != MSGPACK_OBJECT_ARRAY);
        frame_expect_refusal(&err);
    }

    t = *rd, t.next = i;
    frame_check(vb_rd_skip(&t, &err) == 0 && t.next == i + 1);
}

static void frame_walk(const msgpack_object *array, unsigned depth)
{
    vb_error err;
    vb_rd rd;
    if (vb_rd_init(&rd, array, &err) < 0) {
        frame_check(array->type != MSGPACK_OBJECT_ARRAY);
        frame_expect_refusal(&err);
        return;
    }
    frame_check(rd.count == array->via.array.size && rd.next == 0);
    for (uint32_t i = 0; i < rd.count; i++)
        frame_read_field(&rd, i, &array->via.array.ptr[i], depth);

    /* In order, the way handlers read: every field once, then nothing. */
    uint32_t n = 0;
    while (vb_rd_has_more(&rd)) {
        frame_check(vb_rd_skip(&rd, &err) == 0);
        n++;
    }
    frame_check(n == rd.count);
    uint64_t u64;
    int64_t i64;
    int b;
    const char *s;
    const uint8_t *bin;
    size_t len;
    char *copy;
    vb_rd sub;
    frame_check(vb_rd_u64(&rd, &u64, &err) < 0 && err.code == VB_ERR_PROTOCOL);
    frame_check(vb_rd_i64(&rd, &i64, &err) < 0 && err.code == VB_ERR_PROTOCOL);
    frame_check(vb_rd_bool(&rd, &b, &err) < 0 && err.code == VB_ERR_PROTOCOL);
    frame_check(vb_rd_str(&rd, &s, &len, &err) < 0 && err.code == VB_ERR_PROTOCOL);
    frame_check(vb_rd_strdup(&rd, SIZE_MAX, &copy, &err) < 0 && copy == NULL);
    frame_check(vb_rd_bin(&rd, &bin, &len, &err) < 0 && err.code == VB_ERR_PROTOCOL);
    frame_check(vb_rd_array(&rd, &sub, &err) < 0 && err.code == VB_ERR_PROTOCOL);
    frame_check(vb_rd_skip(&rd, &err) < 0 && err.code == VB_ERR_PROTOCOL);
}

/* Header and body packed canonically (smallest encodings) into a frame. */
static uint8_t *frame_reencode(const vb_msg *msg, size_t *len)
{
    vb_enc enc;
    vb_error err;
    uint8_t *frame;
    vb_enc_begin(&enc, &msg->hdr);
    msgpack_pack_object(&enc.pk, *msg->body);
    frame_check(vb_enc_finish(&enc, VB_FRAME_MAX_ABSOLUTE, &frame, len, &err) == 0);
    return frame;
}

/* Decode the payload of an encoded frame (a copy: decode takes ownership). */
static void frame_decode_copy(const uint8_t *frame, size_t len, vb_msg *msg)
{
    vb_error err;
    frame_check(len > VB_FRAME_PREFIX_LEN);
    uint8_t *payload = malloc(len - VB_FRAME_PREFIX_LEN);
    frame_check(payload != NULL);
    memcpy(payload, frame + VB_FRAME_PREFIX_LEN, len - VB_FRAME_PREFIX_LEN);
    frame_check(vb_msg_decode(msg, payload, len - VB_FRAME_PREFIX_LEN, &err) == 0);
}

/* What a decoded message must satisfy, and what every consumer calls on it. */
static void frame_decoded(const vb_msg *msg)
{
    vb_error err;
    frame_check(msg->hdr.type <= VB_MSG_TYPE_MAX && msg->hdr.status <= VB_STATUS_ERROR);
    frame_check(msg->body != NULL);
    if (vb_msg_check_proc_size(msg, &err) < 0)
        frame_check(err.code == VB_ERR_TOO_LARGE);
    const vb_proc_info *info = vb_proto_proc_lookup(msg->hdr.program, msg->hdr.procedure);
    if (info)
        frame_check(info->program == msg->hdr.program && info->number == msg->hdr.procedure &&
                    info->name != NULL);
    frame_touch(vb_proto_program_name(msg->hdr.program), 1);
    frame_touch(vb_proto_msg_type_name(msg->hdr.type), 1);
    if (msg->hdr.status == VB_STATUS_ERROR) {
        vb_error remote;
        if (vb_msg_error_body(msg, &remote, &err) == 0) {
            frame_check(strnlen(remote.message, sizeof remote.message) < sizeof remote.message);
            frame_touch(vb_proto_error_code_name(remote.code), 1);
            frame_touch(vb_proto_error_domain_name(remote.domain), 1);
        } else {
            frame_expect_refusal(&err);
        }
    }
    frame_walk(msg->body, 0);

    /* Canonical re-encoding decodes to the same header, and is a fixed point. */
    size_t len1, len2;
    uint8_t *frame1 = frame_reencode(msg, &len1);
    vb_msg again;
    frame_decode_copy(frame1, len1, &again);
    frame_check(memcmp(&again.hdr, &msg->hdr, sizeof msg->hdr) == 0);
    frame_check(len1 - VB_FRAME_PREFIX_LEN <= msg->payload_len);
    uint8_t *frame2 = frame_reencode(&again, &len2);
    frame_check(len1 == len2 && memcmp(frame1, frame2, len1) == 0);
    vb_frame_free(frame2, len2);
    vb_msg_clear(&again);
    vb_frame_free(frame1, len1);
}

static void frame_payload(uint8_t *payload, size_t len)
{
    vb_error err, check_err;
    /* The validator alone, at the protocol's depth and at the deepest. */
    int checked = vb_msgpack_check(payload, len, VB_MSG_MAX_DEPTH, &check_err);
    if (checked < 0)
        frame_expect_refusal(&check_err);
    if (vb_msgpack_check(payload, len, 64, &err) < 0)
        frame_check(checked < 0);

    vb_msg msg;
    if (vb_msg_decode(&msg, payload, len, &err) == 0) {
        frame_check(checked == 0);
        frame_decoded(&msg);
    } else {
        frame_expect_refusal(&err);
        /* What the validator passes, msgpack-c must unpack: the "unreachable"
         * guard in vb_msg_decode firing means the two disagree. */
        frame_check(checked < 0 || strstr(err.message, "msgpack decoding failed") == NULL);
    }
    vb_msg_clear(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned mode = data[0] & 3;
    size_t limit = mode == 1 ? VB_FRAME_MAX_POSTAUTH : VB_FRAME_MAX_PREAUTH;
    if (mode == 3)
        limit = (size_t)256 << ((data[0] >> 2) & 7);
    size_t max_chunk = (size_t)1 << (data[1] % 17);
    uint32_t seed = ((uint32_t)data[0] << 8 | data[1]) + 1;
    const uint8_t *stream = data + 2;
    size_t n = size - 2;

    vb_frame_reader r;
    vb_frame_reader_init(&r, limit);
    size_t off = 0;
    unsigned frames = 0;
    while (off < n) {
        size_t chunk = 1 + frame_rng(&seed) % max_chunk;
        if (chunk > n - off)
            chunk = n - off;
        size_t done = 0;
        while (done < chunk) {
            size_t used = SIZE_MAX;
            vb_error err;
            int st = vb_frame_reader_feed(&r, stream + off + done, chunk - done, &used, &err);
            frame_check(used <= chunk - done);
            done += used;
            if (st == VB_FRAME_ERROR) {
                /* the stream is out of sync: the connection is dropped */
                frame_check(err.code == VB_ERR_PROTOCOL || err.code == VB_ERR_TOO_LARGE ||
                            err.code == VB_ERR_NO_MEMORY);
                frame_check(r.payload == NULL);
                goto out;
            }
            if (st == VB_FRAME_NEED_MORE) {
                frame_check(done == chunk);
                break;
            }
            frame_check(st == VB_FRAME_READY);
            size_t plen;
            uint8_t *payload = vb_frame_reader_take(&r, &plen);
            frame_check(payload != NULL && plen > 0 && plen <= limit);
            size_t again_len = 1;
            frame_check(vb_frame_reader_take(&r, &again_len) == NULL && again_len == 0);
            frame_payload(payload, plen);
            if (mode == 2 && ++frames == 1) {
                /* logged in: the larger limit applies from the next frame */
                limit = VB_FRAME_MAX_POSTAUTH;
                vb_frame_reader_set_limit(&r, limit);
            }
        }
        off += chunk;
    }
out:
    vb_frame_reader_clear(&r);
    return 0;
}
