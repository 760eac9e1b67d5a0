/* Raw msgpack validation before msgpack-c sees a byte.
 *
 * msgpack-c reserves declared_count x sizeof(msgpack_object) for every
 * array/map header before the elements arrive, so a 5-byte `dd ffffffff`
 * would reserve ~100 GB. This walker allocates nothing: it keeps the number
 * of values still owed by every open container and refuses any header whose
 * count, added to what is already owed, exceeds the bytes left (every value
 * takes at least one byte). Total unpack memory is therefore bounded by
 * 24 x frame length. */
#include "vb_msg.h"

#include <string.h>

#define MAX_DEPTH_SUPPORTED 64u

typedef struct cursor {
    const uint8_t *buf;
    size_t len;
    size_t pos;
} cursor;

static int need(const cursor *c, size_t n)
{
    return c->len - c->pos >= n;
}

static uint64_t read_be(const cursor *c, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | c->buf[c->pos + i];
    return v;
}

enum value_kind { KIND_SCALAR, KIND_CONTAINER };

typedef struct value_info {
    enum value_kind kind;
    size_t header_len;  /* type byte + length bytes */
    uint64_t payload;   /* bytes of data (scalars) */
    uint64_t children;  /* values owed (containers; map = 2 x entries) */
} value_info;

/* Classify the value starting at c->pos. */
static int classify(const cursor *c, value_info *v, vb_error *err)
{
    uint8_t t = c->buf[c->pos];
    memset(v, 0, sizeof *v);
    v->kind = KIND_SCALAR;
    v->header_len = 1;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
        return 0;
    if (t >= 0xa0 && t <= 0xbf) {
        v->payload = t & 0x1f;
        return 0;
    }
    if (t >= 0x80 && t <= 0x9f) {
        v->kind = KIND_CONTAINER;
        v->children = (uint64_t)(t & 0x0f) * (t <= 0x8f ? 2 : 1);
        return 0;
    }
    size_t lenbytes = 0;
    switch (t) {
    case 0xc4: case 0xd9: lenbytes = 1; break;            /* bin8, str8 */
    case 0xc5: case 0xda: lenbytes = 2; break;            /* bin16, str16 */
    case 0xc6: case 0xdb: lenbytes = 4; break;            /* bin32, str32 */
    case 0xca: v->payload = 4; return 0;                  /* float32 */
    case 0xcb: v->payload = 8; return 0;                  /* float64 */
    case 0xcc: case 0xd0: v->payload = 1; return 0;
    case 0xcd: case 0xd1: v->payload = 2; return 0;
    case 0xce: case 0xd2: v->payload = 4; return 0;
    case 0xcf: case 0xd3: v->payload = 8; return 0;
    case 0xdc: case 0xde: lenbytes = 2; v->kind = KIND_CONTAINER; break;
    case 0xdd: case 0xdf: lenbytes = 4; v->kind = KIND_CONTAINER; break;
    case 0xc7: case 0xc8: case 0xc9:
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "msgpack ext type 0x%02x at offset %zu is not used by this protocol",
                            t, c->pos);
    default: /* 0xc1 is "never used" */
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "invalid msgpack type byte 0x%02x at offset %zu", t, c->pos);
    }
    cursor after_type = { c->buf, c->len, c->pos + 1 };
    if (!need(&after_type, lenbytes))
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "truncated msgpack header at offset %zu", c->pos);
    uint64_t n = read_be(&after_type, lenbytes);
    v->header_len = 1 + lenbytes;
    if (v->kind == KIND_CONTAINER)
        v->children = (t == 0xde || t == 0xdf) ? 2 * n : n;
    else
        v->payload = n;
    return 0;
}

int vb_msgpack_check(const uint8_t *buf, size_t len, unsigned max_depth, vb_error *err)
{
    uint64_t owed[MAX_DEPTH_SUPPORTED + 1]; /* values still owed per open container */
    uint64_t owed_total = 1;                /* sum of owed[] */
    unsigned depth = 0;                     /* open containers */
    cursor c = { buf, len, 0 };

    if (max_depth > MAX_DEPTH_SUPPORTED)
        max_depth = MAX_DEPTH_SUPPORTED;
    owed[0] = 1; /* the single top-level value */
    while (owed_total > 0) {
        while (owed[depth] == 0)
            depth--;
        if (!need(&c, 1))
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                                "truncated message: %llu value(s) missing at offset %zu",
                                (unsigned long long)owed_total, c.pos);
        value_info v;
        if (classify(&c, &v, err) < 0)
            return -1;
        owed[depth]--;
        owed_total--;
        c.pos += v.header_len;
        size_t left = c.len - c.pos;
        if (v.kind == KIND_SCALAR) {
            if (v.payload > left)
                return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                                    "declared length %llu at offset %zu exceeds the %zu byte(s) left",
                                    (unsigned long long)v.payload, c.pos - v.header_len, left);
            c.pos += (size_t)v.payload;
            continue;
        }
        if (v.children > left || owed_total + v.children > left)
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                                "declared count %llu at offset %zu exceeds the %zu byte(s) left",
                                (unsigned long long)v.children, c.pos - v.header_len, left);
        if (v.children == 0)
            continue;
        if (depth + 1 > max_depth)
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                                "msgpack nesting deeper than %u at offset %zu", max_depth,
                                c.pos - v.header_len);
        owed[++depth] = v.children;
        owed_total += v.children;
    }
    if (c.pos != c.len)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO,
                            "%zu trailing byte(s) after the message", c.len - c.pos);
    return 0;
}
