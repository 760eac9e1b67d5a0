#include "vb_credwire.h"

#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 4096

/* [service, hops, retry, items, id, kind, target, nverified]: the last four
 * are optional trailing fields (docs/protocol.md 9.13); a peer from before
 * them reads the first four and ignores the rest. */
void vb_credwire_encode_request(vb_enc *enc, const vb_cred_request *req)
{
    vb_enc_array(enc, 8);
    vb_enc_str(enc, req->service);
    vb_enc_array(enc, (uint32_t)req->nhops);
    for (size_t i = 0; i < req->nhops; i++)
        vb_enc_str(enc, req->hops[i]);
    vb_enc_bool(enc, req->retry);
    vb_enc_array(enc, (uint32_t)req->nitems);
    for (size_t i = 0; i < req->nitems; i++) {
        const vb_cred_item *it = &req->items[i];
        vb_enc_array(enc, 4);
        vb_enc_u64(enc, (uint64_t)it->type);
        vb_enc_str(enc, it->prompt);
        vb_enc_str(enc, it->challenge);
        vb_enc_str(enc, it->defresult);
    }
    vb_enc_u64(enc, req->id);
    vb_enc_str(enc, req->kind);
    if (req->target.host || req->target.scheme) {
        vb_enc_array(enc, 4);
        vb_enc_str(enc, req->target.scheme);
        vb_enc_str(enc, req->target.host);
        vb_enc_u64(enc, req->target.port);
        vb_enc_str(enc, req->target.user);
    } else {
        vb_enc_nil(enc);
    }
    vb_enc_u64(enc, req->nverified);
}

static int decode_item(vb_rd *items, vb_cred_request *req, vb_error *err)
{
    vb_rd f;
    uint32_t type;
    char *text[3] = { NULL, NULL, NULL };
    int rc = vb_rd_array(items, &f, err) < 0 || vb_rd_u32(&f, &type, err) < 0 ? -1 : 0;
    for (int k = 0; rc == 0 && k < 3; k++)
        rc = vb_rd_strdup(&f, TEXT_MAX, &text[k], err);
    if (rc == 0 && (type < 1 || type > VB_CRED_TYPE_MAX))
        rc = vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "unknown credential type %u", type);
    if (rc == 0 && vb_cred_request_add(req, (int)type, text[0], text[1], text[2]) < 0)
        rc = vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "too many credential items");
    for (int k = 0; k < 3; k++)
        free(text[k]);
    return rc;
}

/* target: nil, or [scheme, host, port, user] */
static int decode_target(vb_rd *rd, vb_cred_request *req, vb_error *err)
{
    if (rd->items[rd->next].type == MSGPACK_OBJECT_NIL)
        return vb_rd_skip(rd, err);
    vb_rd t;
    uint32_t port;
    char *scheme = NULL, *host = NULL, *user = NULL;
    int rc = vb_rd_array(rd, &t, err) < 0 || vb_rd_strdup(&t, TEXT_MAX, &scheme, err) < 0 ||
                     vb_rd_strdup(&t, TEXT_MAX, &host, err) < 0 || vb_rd_u32(&t, &port, err) < 0 ||
                     vb_rd_strdup(&t, TEXT_MAX, &user, err) < 0
                 ? -1
                 : 0;
    if (rc == 0 && vb_cred_request_set_target(req, req->kind, scheme, host, port, user) < 0)
        rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_PROTO, "out of memory");
    free(scheme);
    free(host);
    free(user);
    return rc;
}

/* The optional trailing fields: id, kind, target, nverified. */
static int decode_typed(vb_rd *rd, vb_cred_request *req, vb_error *err)
{
    uint64_t nverified = 0;
    if (vb_rd_has_more(rd) && vb_rd_u64(rd, &req->id, err) < 0)
        return -1;
    if (vb_rd_has_more(rd) && vb_rd_strdup(rd, TEXT_MAX, &req->kind, err) < 0)
        return -1;
    if (vb_rd_has_more(rd) && decode_target(rd, req, err) < 0)
        return -1;
    if (vb_rd_has_more(rd) && vb_rd_u64(rd, &nverified, err) < 0)
        return -1;
    req->nverified = nverified <= req->nhops ? (size_t)nverified : req->nhops;
    return 0;
}

int vb_credwire_decode_request(const msgpack_object *body, vb_cred_request *req, vb_error *err)
{
    vb_rd rd, hops, items;
    int retry;
    memset(req, 0, sizeof *req);
    if (vb_rd_init(&rd, body, err) < 0 || vb_rd_strdup(&rd, TEXT_MAX, &req->service, err) < 0 ||
        vb_rd_array(&rd, &hops, err) < 0)
        return -1;
    while (vb_rd_has_more(&hops)) {
        if (req->nhops >= VB_CRED_MAX_HOPS)
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "too many hops");
        if (vb_rd_strdup(&hops, TEXT_MAX, &req->hops[req->nhops], err) < 0)
            return -1;
        if (req->hops[req->nhops])
            req->nhops++;
    }
    if (vb_rd_bool(&rd, &retry, err) < 0 || vb_rd_array(&rd, &items, err) < 0)
        return -1;
    req->retry = retry;
    while (vb_rd_has_more(&items))
        if (decode_item(&items, req, err) < 0)
            return -1;
    return decode_typed(&rd, req, err);
}

void vb_credwire_encode_answer(vb_enc *enc, const vb_cred_request *req)
{
    vb_enc_array(enc, 1);
    vb_enc_array(enc, (uint32_t)req->nitems);
    for (size_t i = 0; i < req->nitems; i++) {
        if (req->items[i].result)
            vb_enc_bin(enc, req->items[i].result, req->items[i].resultlen);
        else
            vb_enc_nil(enc);
    }
}

int vb_credwire_decode_answer(const msgpack_object *body, vb_cred_request *req, vb_error *err)
{
    vb_rd rd, results;
    if (vb_rd_init(&rd, body, err) < 0 || vb_rd_array(&rd, &results, err) < 0)
        return -1;
    for (size_t i = 0; i < req->nitems && vb_rd_has_more(&results); i++) {
        const uint8_t *v;
        size_t vlen;
        if (vb_rd_bin(&results, &v, &vlen, err) < 0)
            return -1;
        if (v && vb_cred_item_set_result(&req->items[i], (const char *)v, vlen) < 0)
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_PROTO, "out of memory");
    }
    return 0;
}

int vb_credwire_answer_frame(const vb_msg_header *question, const vb_cred_request *req,
                             uint8_t **frame, size_t *len, vb_error *err)
{
    vb_msg_header hdr = *question;
    hdr.type = VB_MSG_CALLBACK_REPLY;
    hdr.status = VB_STATUS_OK;
    vb_enc enc;
    vb_enc_begin(&enc, &hdr);
    vb_credwire_encode_answer(&enc, req);
    return vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, frame, len, err);
}

int vb_credwire_request_frame(const vb_msg_header *hdr, const vb_cred_request *req,
                              uint8_t **frame, size_t *len, vb_error *err)
{
    vb_enc enc;
    vb_enc_begin(&enc, hdr);
    vb_credwire_encode_request(&enc, req);
    return vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, frame, len, err);
}
