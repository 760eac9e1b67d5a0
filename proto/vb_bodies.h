/*
 * vb_bodies.h — message bodies that several programs share (HOST and BROKER
 * LIST_DOMAINS), encoded and decoded in one place.
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

#endif
