#include "vb_credwire.h"

#include <stdlib.h>
#include <string.h>

#define TEXT_MAX 4096

void vb_credwire_encode_request(vb_enc *enc, const vb_cred_request *req)
{
    vb_enc_array(enc, 4);
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
    return 0;
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
