/*
 * vb_bodies.h — the codecs of the bodies in proto/vb_protocol.h's VB_BODIES
 * that more than one peer encodes or decodes (HOST and BROKER driver calls,
 * servers and clients), in one place. A client stub names only its
 * procedure: the call's packer comes from the procedure's body column
 * (vb_body_call_packer).
 */
#ifndef VB_BODIES_H
#define VB_BODIES_H

#include <stddef.h>
#include <stdint.h>

#include "vb_msg.h"

/* One domain record: [id int, name str, uuid str|nil, state uint, memory_kib uint, vcpus uint].
 * Decoded strings are views into the message (not NUL-terminated). */
typedef struct vb_wire_domain {
    int64_t id;
    const char *name;
    size_t name_len;
    const char *uuid;   /* NULL when absent */
    size_t uuid_len;
    uint32_t state;
    uint64_t memory_kib;
    uint32_t vcpus;
} vb_wire_domain;

void vb_body_encode_domain(vb_enc *enc, const vb_wire_domain *d);
int vb_body_read_domain(vb_rd *list, vb_wire_domain *d, vb_error *err);

/* Packs a call body from arg (whose type the body fixes). */
typedef void (*vb_body_pack_fn)(vb_enc *enc, const void *arg);

/* HOST_OPEN's call: [name str, flags uint] */
typedef struct vb_body_open {
    const char *name;
    uint64_t flags;
} vb_body_open;

/* The packer of body's call, by shape: [] (arg unused), [str] (NAME, LOGOUT,
 * TOKEN_REVOKE: arg a const char *, NULL packs nil), [uint] (TOKEN_ISSUE: arg
 * a const uint64_t *), HOST_OPEN (arg a const vb_body_open *). NULL for the
 * bodies only one peer packs (SASL, token proofs, BROKER OPEN and LOGIN). */
vb_body_pack_fn vb_body_call_packer(enum vb_body body);

/* A whole CALL frame: hdr, then the body pack(arg) makes (NULL: the
 * procedure's own packer, vb_body_call_packer; [] without one). 0 with
 * *frame (the caller's), or -1 when it exceeds max_frame or memory ran out.
 * The client stubs of libvbroker and the remote driver build calls so. */
int vb_body_call_frame(const vb_msg_header *hdr, vb_body_pack_fn pack, const void *arg,
                       size_t max_frame, uint8_t **frame, size_t *len, vb_error *err);

/* The one-string body: [s] (a NAME call, a HOSTNAME reply). */
void vb_body_pack_str(vb_enc *enc, const void *s);
/* Its decoder: *out is a malloc'd copy (NULL for nil); PROTOCOL when it is
 * missing, not a string, or longer than max. */
int vb_body_read_str(const msgpack_object *body, size_t max, char **out, vb_error *err);
/* The DOMAINS reply's list: list is its array of domain records (read each
 * with vb_body_read_domain). */
int vb_body_read_domain_list(const msgpack_object *body, vb_rd *list, vb_error *err);

#endif
