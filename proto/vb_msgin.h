/*
 * vb_msgin.h — the engine's input stage: bytes from a transport in,
 * decoded messages out (issue 17 item 2).
 *
 * Every reader of the protocol — libvbroker's connection to the broker, the
 * remote driver's connection to vbhostd, the daemons' streams (util/
 * vb_stream.c) — sits on one of these. The transport below it (a plain fd,
 * TLS, an SSH channel) and the SASL security layer hand it the plaintext
 * they read; it cuts frames against the connection's size limit
 * (vb_frame_reader: the length is checked before the payload is allocated)
 * and decodes each with the header checks of vb_msg_decode. As libvirt's
 * virNetMessage sits between virNetSocket and virNetClient, this stage
 * knows no socket and no procedure.
 *
 * Bytes taken in may carry secrets (a credential answer): they are wiped
 * when consumed, discarded or cleared.
 */
#ifndef VB_MSGIN_H
#define VB_MSGIN_H

#include <stddef.h>
#include <stdint.h>

#include "vb_msg.h"

typedef struct vb_msgin {
    vb_frame_reader reader;
    uint8_t *buf;           /* plaintext taken in and not yet cut into frames */
    size_t len, off;
} vb_msgin;

void vb_msgin_init(vb_msgin *in, size_t max_frame);
/* The largest payload accepted from the next frame on (e.g. after login). */
void vb_msgin_set_limit(vb_msgin *in, size_t max_frame);
/* Take in len plaintext bytes (copied). -1 when out of memory. */
int vb_msgin_push(vb_msgin *in, const uint8_t *data, size_t len, vb_error *err);
/* The next complete message: 1 (*msg is the caller's: vb_msg_clear it), 0
 * when more bytes are needed, -1 when the bytes are not frames or not a
 * message (err says which; the stream is out of sync: drop the connection). */
int vb_msgin_next(vb_msgin *in, vb_msg *msg, vb_error *err);
/* Bytes taken in and not yet cut into frames. */
size_t vb_msgin_pending(const vb_msgin *in);
/* 1 while a frame has started arriving and is not complete. */
int vb_msgin_partial(const vb_msgin *in);
/* Forget the bytes taken in (what follows a bad frame is not frames). */
void vb_msgin_discard(vb_msgin *in);
/* Wipe and free everything; the stage is reusable after vb_msgin_init. */
void vb_msgin_clear(vb_msgin *in);

/* For a blocking reader: the transport puts more plaintext into in
 * (vb_msgin_push), waiting as its owner decides; 0, or -1 with err (a
 * timeout, the peer gone). */
typedef int (*vb_msgin_fill_fn)(void *ctx, vb_msgin *in, vb_error *err);
/* The next message, filling from the transport until one is complete: 0,
 * or -1 with err (the fill's, or the bytes'). */
int vb_msgin_read(vb_msgin *in, vb_msgin_fill_fn fill, void *ctx, vb_msg *msg, vb_error *err);

#endif
