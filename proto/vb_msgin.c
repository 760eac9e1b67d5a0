/* The engine's input stage: plaintext in, checked and decoded messages out. */
#include "vb_msgin.h"

#include <stdlib.h>
#include <string.h>

void vb_msgin_init(vb_msgin *in, size_t max_frame)
{
    memset(in, 0, sizeof *in);
    vb_frame_reader_init(&in->reader, max_frame);
}

void vb_msgin_set_limit(vb_msgin *in, size_t max_frame)
{
    vb_frame_reader_set_limit(&in->reader, max_frame);
}

void vb_msgin_discard(vb_msgin *in)
{
    vb_frame_free(in->buf, in->len);
    in->buf = NULL;
    in->len = in->off = 0;
}

void vb_msgin_clear(vb_msgin *in)
{
    vb_msgin_discard(in);
    vb_frame_reader_clear(&in->reader);
}

size_t vb_msgin_pending(const vb_msgin *in)
{
    return in->len - in->off;
}

int vb_msgin_partial(const vb_msgin *in)
{
    return vb_frame_reader_partial(&in->reader);
}

int vb_msgin_push(vb_msgin *in, const uint8_t *data, size_t len, vb_error *err)
{
    size_t left = vb_msgin_pending(in);
    uint8_t *buf = malloc(left + len ? left + len : 1);
    if (!buf)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_PROTO, "out of memory");
    if (left)
        memcpy(buf, in->buf + in->off, left);
    if (len)
        memcpy(buf + left, data, len);
    vb_msgin_discard(in);
    in->buf = buf;
    in->len = left + len;
    return 0;
}

int vb_msgin_next(vb_msgin *in, vb_msg *msg, vb_error *err)
{
    while (in->off < in->len) {
        size_t used;
        int st = vb_frame_reader_feed(&in->reader, in->buf + in->off, in->len - in->off, &used,
                                      err);
        in->off += used;
        if (st == VB_FRAME_ERROR)
            return -1;
        if (st != VB_FRAME_READY)
            continue;
        if (in->off == in->len)
            vb_msgin_discard(in);
        size_t plen;
        uint8_t *payload = vb_frame_reader_take(&in->reader, &plen);
        if (vb_msg_decode(msg, payload, plen, err) < 0) {
            vb_msg_clear(msg);
            return -1;
        }
        return 1;
    }
    vb_msgin_discard(in);
    return 0;
}

int vb_msgin_read(vb_msgin *in, vb_msgin_fill_fn fill, void *ctx, vb_msg *msg, vb_error *err)
{
    for (;;) {
        int rc = vb_msgin_next(in, msg, err);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        if (fill(ctx, in, err) < 0)
            return -1;
    }
}
