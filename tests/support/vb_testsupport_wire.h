/* vb_testsupport_wire — speak the wire to a daemon under test, frame by
 * frame: connect to its unix socket, send one message (with any body), read
 * one back against a deadline, and time a keepalive PING. For tests that
 * must see exactly what a daemon answers and when, without a client library
 * in between. Test code only. */
#ifndef VB_TESTSUPPORT_WIRE_H
#define VB_TESTSUPPORT_WIRE_H

#include <stdint.h>

#include "vb_msg.h"

/* A connection that keeps the bytes read after a frame for the next one. */
typedef struct vb_ts_wire {
    int fd;
    vb_frame_reader rd;
    uint8_t buf[16384];
    size_t have, off;
} vb_ts_wire;

/* Connect to the unix socket at path: 0, or -1 (with a diagnostic). */
int vb_ts_wire_connect(vb_ts_wire *w, const char *path);
void vb_ts_wire_close(vb_ts_wire *w);

/* Packs a message's body (exactly one value); NULL sends []. */
typedef void (*vb_ts_wire_body_fn)(vb_enc *enc, const void *arg);
/* Send one message with the program's current version: 0 or -1. */
int vb_ts_wire_send(vb_ts_wire *w, uint32_t prog, uint32_t type, uint32_t serial, uint32_t proc,
                    vb_ts_wire_body_fn body, const void *arg);
/* 1: a message in *out (vb_msg_clear it); 0: the peer closed; -1: nothing
 * whole within timeout_ms, or garbage. */
int vb_ts_wire_read(vb_ts_wire *w, int timeout_ms, vb_msg *out);
/* 1 when a whole message or the peer's close is waiting to be read now
 * (nothing is consumed). */
int vb_ts_wire_readable(vb_ts_wire *w);

/* Send a KEEPALIVE PING call (serial) and wait up to timeout_ms for the
 * answer with that serial, a PONG or an ERROR reply (a daemon that does not
 * speak KEEPALIVE still answers): the milliseconds it took, or -1. */
int64_t vb_ts_wire_ping_ms(vb_ts_wire *w, uint32_t serial, int timeout_ms);

#endif
