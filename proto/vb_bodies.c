#include "vb_bodies.h"

#include <string.h>

void vb_body_encode_domain(vb_enc *enc, const vb_wire_domain *d)
{
    vb_enc_array(enc, 6);
    vb_enc_i64(enc, d->id);
    vb_enc_strn(enc, d->name, d->name_len);
    if (d->uuid)
        vb_enc_strn(enc, d->uuid, d->uuid_len);
    else
        vb_enc_nil(enc);
    vb_enc_u64(enc, d->state);
    vb_enc_u64(enc, d->memory_kib);
    vb_enc_u64(enc, d->vcpus);
}

int vb_body_read_domain(vb_rd *list, vb_wire_domain *d, vb_error *err)
{
    vb_rd f;
    memset(d, 0, sizeof *d);
    if (vb_rd_array(list, &f, err) < 0 || vb_rd_i64(&f, &d->id, err) < 0 ||
        vb_rd_str(&f, &d->name, &d->name_len, err) < 0 ||
        vb_rd_str(&f, &d->uuid, &d->uuid_len, err) < 0 || vb_rd_u32(&f, &d->state, err) < 0 ||
        vb_rd_u64(&f, &d->memory_kib, err) < 0 || vb_rd_u32(&f, &d->vcpus, err) < 0)
        return -1;
    if (!d->name || memchr(d->name, '\0', d->name_len) ||
        (d->uuid && memchr(d->uuid, '\0', d->uuid_len)))
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "malformed domain record");
    return 0;
}

static void pack_empty(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 0);
}

void vb_body_pack_str(vb_enc *enc, const void *s)
{
    vb_enc_array(enc, 1);
    vb_enc_str(enc, s);
}

static void pack_u64(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 1);
    vb_enc_u64(enc, *(const uint64_t *)arg);
}

static void pack_open(vb_enc *enc, const void *arg)
{
    const vb_body_open *a = arg;
    vb_enc_array(enc, 2);
    vb_enc_str(enc, a->name);
    vb_enc_u64(enc, a->flags);
}

vb_body_pack_fn vb_body_call_packer(enum vb_body body)
{
    switch (body) {
    case VB_BODY_EMPTY:
    case VB_BODY_HOSTNAME:
    case VB_BODY_DOMAINS:
    case VB_BODY_AUTH_LIST:
    case VB_BODY_SASL_INIT:
    case VB_BODY_AUTH_PEER:
    case VB_BODY_AUTH_POLKIT:
    case VB_BODY_STATUS:
        return pack_empty;
    case VB_BODY_NAME:
    case VB_BODY_LOGOUT:
    case VB_BODY_TOKEN_REVOKE:
        return vb_body_pack_str;
    case VB_BODY_TOKEN_ISSUE:
        return pack_u64;
    case VB_BODY_HOST_OPEN:
        return pack_open;
    default:
        return NULL;
    }
}

int vb_body_read_str(const msgpack_object *body, size_t max, char **out, vb_error *err)
{
    vb_rd rd;
    *out = NULL;
    return vb_rd_init(&rd, body, err) < 0 || vb_rd_strdup(&rd, max, out, err) < 0 ? -1 : 0;
}

int vb_body_read_domain_list(const msgpack_object *body, vb_rd *list, vb_error *err)
{
    vb_rd rd;
    return vb_rd_init(&rd, body, err) < 0 || vb_rd_array(&rd, list, err) < 0 ? -1 : 0;
}

int vb_body_call_frame(const vb_msg_header *hdr, vb_body_pack_fn pack, const void *arg,
                       size_t max_frame, uint8_t **frame, size_t *len, vb_error *err)
{
    if (!pack) {
        const vb_proc_info *info = vb_proto_proc_lookup(hdr->program, hdr->procedure);
        pack = info ? vb_body_call_packer(info->body) : NULL;
    }
    vb_enc enc;
    vb_enc_begin(&enc, hdr);
    if (pack)
        pack(&enc, arg);
    else
        vb_enc_array(&enc, 0);
    return vb_enc_finish(&enc, max_frame, frame, len, err);
}
