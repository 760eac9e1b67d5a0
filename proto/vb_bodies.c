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
