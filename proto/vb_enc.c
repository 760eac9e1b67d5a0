/* Encoder: msgpack-c packs into a buffer we own, so that every growth and
 * every free can wipe what may be a password or a token secret. */
#include "vb_msg.h"

#include <stdlib.h>
#include <string.h>

static int grow(vb_enc *enc, size_t need)
{
    size_t cap = enc->cap ? enc->cap : 256;
    while (cap - enc->len < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *data = malloc(cap);
    if (!data)
        return -1;
    if (enc->data) {
        memcpy(data, enc->data, enc->len);
        explicit_bzero(enc->data, enc->cap);
        free(enc->data);
    }
    enc->data = data;
    enc->cap = cap;
    return 0;
}

static int enc_write(void *opaque, const char *buf, size_t len)
{
    vb_enc *enc = opaque;
    if (enc->failed)
        return -1;
    if (len == 0) /* msgpack-c passes (NULL, 0) for an empty str or bin */
        return 0;
    if (enc->cap - enc->len < len && grow(enc, len) < 0) {
        enc->failed = 1;
        return -1;
    }
    memcpy(enc->data + enc->len, buf, len);
    enc->len += len;
    return 0;
}

void vb_enc_begin(vb_enc *enc, const vb_msg_header *hdr)
{
    static const uint8_t placeholder[VB_FRAME_PREFIX_LEN] = { 0 };
    memset(enc, 0, sizeof *enc);
    msgpack_packer_init(&enc->pk, enc, enc_write);
    enc_write(enc, (const char *)placeholder, sizeof placeholder);
    msgpack_pack_array(&enc->pk, VB_MSG_HEADER_FIELDS);
    msgpack_pack_uint32(&enc->pk, hdr->program);
    msgpack_pack_uint32(&enc->pk, hdr->version);
    msgpack_pack_uint32(&enc->pk, hdr->type);
    msgpack_pack_uint32(&enc->pk, hdr->serial);
    msgpack_pack_uint32(&enc->pk, hdr->procedure);
    msgpack_pack_uint32(&enc->pk, hdr->status);
    msgpack_pack_uint32(&enc->pk, hdr->conn_id);
}

void vb_enc_array(vb_enc *enc, uint32_t n) { msgpack_pack_array(&enc->pk, n); }
void vb_enc_u64(vb_enc *enc, uint64_t v) { msgpack_pack_uint64(&enc->pk, v); }
void vb_enc_i64(vb_enc *enc, int64_t v) { msgpack_pack_int64(&enc->pk, v); }
void vb_enc_nil(vb_enc *enc) { msgpack_pack_nil(&enc->pk); }

void vb_enc_bool(vb_enc *enc, int v)
{
    if (v)
        msgpack_pack_true(&enc->pk);
    else
        msgpack_pack_false(&enc->pk);
}

void vb_enc_strn(vb_enc *enc, const char *s, size_t len)
{
    msgpack_pack_str(&enc->pk, len);
    msgpack_pack_str_body(&enc->pk, s, len);
}

void vb_enc_str(vb_enc *enc, const char *s)
{
    if (!s)
        vb_enc_nil(enc);
    else
        vb_enc_strn(enc, s, strlen(s));
}

void vb_enc_bin(vb_enc *enc, const void *p, size_t len)
{
    if (!p) {
        vb_enc_nil(enc);
        return;
    }
    msgpack_pack_bin(&enc->pk, len);
    msgpack_pack_bin_body(&enc->pk, p, len);
}

void vb_enc_dispose(vb_enc *enc)
{
    vb_frame_free(enc->data, enc->cap);
    memset(enc, 0, sizeof *enc);
}

int vb_enc_finish(vb_enc *enc, size_t max_frame, uint8_t **frame, size_t *frame_len,
                  vb_error *err)
{
    *frame = NULL;
    *frame_len = 0;
    if (enc->failed) {
        vb_enc_dispose(enc);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_PROTO, "out of memory encoding a message");
    }
    size_t payload = enc->len - VB_FRAME_PREFIX_LEN;
    if (payload > max_frame) {
        vb_enc_dispose(enc);
        return vb_error_set(err, VB_ERR_TOO_LARGE, VB_DOM_PROTO,
                            "message of %zu bytes exceeds the limit of %zu bytes", payload, max_frame);
    }
    enc->data[0] = (uint8_t)(payload >> 24);
    enc->data[1] = (uint8_t)(payload >> 16);
    enc->data[2] = (uint8_t)(payload >> 8);
    enc->data[3] = (uint8_t)payload;
    if (enc->cap > enc->len) /* hand over a buffer whose length is exactly frame_len */
        memset(enc->data + enc->len, 0, enc->cap - enc->len);
    *frame = enc->data;
    *frame_len = enc->len;
    enc->data = NULL;
    vb_enc_dispose(enc);
    return 0;
}

int vb_enc_error_reply(const vb_msg_header *req, uint32_t reply_type, const vb_error *error,
                       uint8_t **frame, size_t *frame_len, vb_error *err)
{
    vb_msg_header hdr = *req;
    hdr.type = reply_type;
    hdr.status = VB_STATUS_ERROR;
    vb_enc enc;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 3);
    vb_enc_u64(&enc, (uint64_t)(error->code < 0 ? VB_ERR_INTERNAL : error->code));
    vb_enc_u64(&enc, (uint64_t)(error->domain < 0 ? VB_DOM_NONE : error->domain));
    vb_enc_str(&enc, error->message);
    return vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, frame, frame_len, err);
}

int vb_enc_pong(const vb_msg_header *ping, uint8_t **frame, size_t *frame_len, vb_error *err)
{
    vb_msg_header hdr = *ping;
    hdr.version = VB_PROG_KEEPALIVE_VERSION; /* the replier's */
    hdr.procedure = VB_KEEPALIVE_PROC_PONG;
    hdr.type = ping->type == VB_MSG_CALL ? VB_MSG_REPLY : VB_MSG_EVENT;
    hdr.status = VB_STATUS_OK;
    vb_enc enc;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 0);
    return vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, frame, frame_len, err);
}
