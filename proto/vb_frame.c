/* Incremental frame reader: length prefix first, payload allocated only once
 * the length has been checked against the connection's limit. */
#include "vb_msg.h"

#include <stdlib.h>
#include <string.h>

void vb_frame_free(uint8_t *frame, size_t len)
{
    if (!frame)
        return;
    explicit_bzero(frame, len);
    free(frame);
}

void vb_frame_reader_init(vb_frame_reader *r, size_t max_frame)
{
    memset(r, 0, sizeof *r);
    r->max_frame = max_frame;
}

void vb_frame_reader_set_limit(vb_frame_reader *r, size_t max_frame)
{
    r->max_frame = max_frame;
}

void vb_frame_reader_clear(vb_frame_reader *r)
{
    vb_frame_free(r->payload, r->payload_len);
    size_t max_frame = r->max_frame;
    vb_frame_reader_init(r, max_frame);
}

int vb_frame_reader_partial(const vb_frame_reader *r)
{
    return r->prefix_have > 0;
}

static uint32_t prefix_length(const uint8_t p[VB_FRAME_PREFIX_LEN])
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The prefix is complete: accept the length or refuse the frame. */
static int start_payload(vb_frame_reader *r, vb_error *err)
{
    uint32_t len = prefix_length(r->prefix);
    if (len == 0)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "empty frame (length 0)");
    if (len > r->max_frame)
        return vb_error_set(err, VB_ERR_TOO_LARGE, VB_DOM_PROTO,
                            "frame of %u bytes exceeds the limit of %zu bytes", len, r->max_frame);
    r->payload = malloc(len);
    if (!r->payload)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_PROTO, "no memory for a %u-byte frame", len);
    r->payload_len = len;
    r->payload_have = 0;
    return 0;
}

int vb_frame_reader_feed(vb_frame_reader *r, const uint8_t *data, size_t len,
                         size_t *consumed, vb_error *err)
{
    size_t used = 0;
    *consumed = 0;
    if (r->payload && r->payload_have == r->payload_len)
        return VB_FRAME_READY; /* the caller has not taken the last frame yet */
    while (r->prefix_have < VB_FRAME_PREFIX_LEN && used < len)
        r->prefix[r->prefix_have++] = data[used++];
    if (r->prefix_have < VB_FRAME_PREFIX_LEN) {
        *consumed = used;
        return VB_FRAME_NEED_MORE;
    }
    if (!r->payload && start_payload(r, err) < 0) {
        *consumed = used;
        return VB_FRAME_ERROR;
    }
    size_t want = r->payload_len - r->payload_have;
    size_t take = len - used < want ? len - used : want;
    if (take) {
        memcpy(r->payload + r->payload_have, data + used, take);
        r->payload_have += take;
        used += take;
    }
    *consumed = used;
    return r->payload_have == r->payload_len ? VB_FRAME_READY : VB_FRAME_NEED_MORE;
}

uint8_t *vb_frame_reader_take(vb_frame_reader *r, size_t *len)
{
    if (!r->payload || r->payload_have != r->payload_len) {
        *len = 0;
        return NULL;
    }
    uint8_t *payload = r->payload;
    *len = r->payload_len;
    r->payload = NULL;
    r->payload_len = r->payload_have = 0;
    r->prefix_have = 0;
    return payload;
}
