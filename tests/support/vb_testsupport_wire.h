/*
 * vb_testsupport_wire.h — a raw protocol client for tests that speak the
 * wire as an outside client written from docs/protocol.md would: any header
 * (status, serial 0, odd types and versions included), bodies through the
 * proto/ encoder, and reads that never hang (every read has a deadline).
 */
#ifndef VB_TESTSUPPORT_WIRE_H
#define VB_TESTSUPPORT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "vb_msg.h"

typedef void (*vb_ts_body_fn)(vb_enc *enc, const void *arg);

/* A connection with the bytes read past one frame kept for the next. */
typedef struct vb_ts_wire {
    int fd;
    vb_frame_reader rd;
    uint8_t buf[16384];
    size_t have, off;
} vb_ts_wire;

/* Connect to a unix socket: 0, or -1 with a diagnostic. */
int vb_ts_wire_connect_unix(vb_ts_wire *w, const char *path);
/* Read frames from fd, connected already (closed by vb_ts_wire_close). */
void vb_ts_wire_adopt(vb_ts_wire *w, int fd);
void vb_ts_wire_close(vb_ts_wire *w);

/* Send one message with header h and the body body(enc, arg) makes (NULL:
 * []): 0, or -1 when the peer is gone. */
int vb_ts_wire_send(vb_ts_wire *w, const vb_msg_header *h, vb_ts_body_fn body, const void *arg);
/* The frame of that message (free it with vb_frame_free), or NULL with a
 * diagnostic when it does not encode. */
uint8_t *vb_ts_wire_encode(const vb_msg_header *h, vb_ts_body_fn body, const void *arg,
                           size_t *len);
/* The same on a bare descriptor. */
int vb_ts_send_msg(int fd, const vb_msg_header *h, vb_ts_body_fn body, const void *arg);
/* Write all of buf (any bytes: hostile ones too): 0, or -1 when the peer is gone. */
int vb_ts_send_all(int fd, const void *buf, size_t len);

/* The next message: 1 (vb_msg_clear it), 0 when the peer closed, -1 on
 * bytes that do not decode (or a read error), -2 after timeout_ms. */
int vb_ts_wire_read(vb_ts_wire *w, int timeout_ms, vb_msg *out);

/* Send a HOST CALL of procedure on conn_id (the current HOST version) and
 * do not wait: several may be in flight. 0, or -1 as vb_ts_wire_send. */
int vb_ts_wire_host_call(vb_ts_wire *w, uint32_t serial, uint32_t procedure, uint32_t conn_id,
                         vb_ts_body_fn body, const void *arg);

/* Send one message of program prog (its current version), conn_id 0. */
int vb_ts_wire_send_msg(vb_ts_wire *w, uint32_t prog, uint32_t type, uint32_t serial,
                        uint32_t proc, vb_ts_body_fn body, const void *arg);

/* Something is buffered or the socket is readable now. */
int vb_ts_wire_readable(vb_ts_wire *w);

/* Send a KEEPALIVE PING (serial) and wait for its reply, skipping anything
 * else: the milliseconds it took, or -1 when none came within timeout_ms. */
int64_t vb_ts_wire_ping_ms(vb_ts_wire *w, uint32_t serial, int timeout_ms);

/* Send, then read the answer: 1 with *out, else 0/-1 as vb_ts_wire_read. */
int vb_ts_wire_call(vb_ts_wire *w, const vb_msg_header *h, vb_ts_body_fn body, const void *arg,
                    int timeout_ms, vb_msg *out);

/* 0 once the peer has closed (whatever it sent first is skipped), -1 if it
 * is still open after timeout_ms. */
int vb_ts_wire_wait_closed(vb_ts_wire *w, int timeout_ms);

/* A body for vb_ts_wire_send: an ERROR that says nothing, [OK, NONE, ""]
 * (arg unused), as a broken peer might send it. */
void vb_ts_pack_empty_error(vb_enc *enc, const void *arg);

/* AUTH_TOKEN_CHALLENGE's body, for vb_ts_wire_send: [id, cnonce
 * (VB_TOKEN_NONCE_LEN bytes), endpoint], or without endpoint (NULL) the
 * old unbound two-field form. */
typedef struct vb_ts_token_challenge {
    const char *id;
    const uint8_t *cnonce;
    const char *endpoint;
} vb_ts_token_challenge;
void vb_ts_pack_token_challenge(vb_enc *enc, const void *arg);

/* For an ERROR answer: its code and domain (-1, -1 when the body does not
 * read). */
void vb_ts_wire_error(const vb_msg *m, int *code, int *domain);

#endif
