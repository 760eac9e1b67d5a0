/*
 * vb_stream.h — one non-blocking message connection on an event loop.
 *
 * Reads bytes (through a TLS session when one is started: the lowest
 * layer), passes them through the SASL security layer when one is active, cuts frames (vb_frame_reader), decodes them (vb_msg_decode) and
 * hands each message to the owner; queues outgoing frames and writes them
 * as the socket allows. A protocol violation closes the stream (the byte
 * stream is out of sync) once the replies already queued are written; the
 * owner learns why through on_close.
 *
 * Output is bounded (vb_stream_set_output_limit): a peer that sends calls
 * and never reads the replies gets no more of its frames handled while its
 * queue is full, and is dropped when it stays full without reading.
 */
#ifndef VB_STREAM_H
#define VB_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "vb_loop.h"
#include "vb_msg.h"
#include "vb_sasl.h"
#include "vb_tls.h"

typedef struct vb_stream vb_stream;
/* msg belongs to the callee (vb_msg_clear it). May call vb_stream_close. */
typedef void (*vb_stream_msg_fn)(vb_stream *s, vb_msg *msg, void *data);
/* Called once when the stream dies (peer closed, error, or vb_stream_close);
 * the stream is freed right after. */
typedef void (*vb_stream_close_fn)(vb_stream *s, const vb_error *why, void *data);

vb_stream *vb_stream_new(vb_loop *loop, int fd, size_t max_frame, vb_stream_msg_fn on_msg,
                         vb_stream_close_fn on_close, void *data, vb_error *err);
/* Queue a complete frame (takes ownership). Goes through the security layer
 * when one is active. */
int vb_stream_send(vb_stream *s, uint8_t *frame, size_t len);
/* From now on both directions go through this SASL session's layer (the
 * stream does not own it). */
void vb_stream_set_sasl(vb_stream *s, vb_sasl *sasl);
void vb_stream_set_max_frame(vb_stream *s, size_t max_frame);
/* Called once the TLS handshake is complete (may send, may close). */
typedef void (*vb_stream_ready_fn)(vb_stream *s, void *data);
/* From now on everything goes through tls (a server session on this
 * stream's fd; the stream owns it): its handshake first, and no frame is
 * read or written before it completes. A handshake not complete within
 * timeout_ms (0: none) closes the stream. Call right after vb_stream_new. */
void vb_stream_start_tls(vb_stream *s, vb_tls *tls, unsigned timeout_ms, vb_stream_ready_fn ready);
/* The stream's TLS session (NULL without one). */
vb_tls *vb_stream_tls(const vb_stream *s);
/* Close the stream when a frame has started arriving and is not complete
 * ms later (0, the default: no deadline). */
void vb_stream_set_frame_timeout(vb_stream *s, unsigned ms);
/* Stop handling the peer's frames while max_bytes or more are queued for it
 * (resume when half of that is written), and close the stream when a full
 * queue, or the queue of a stream closing after its flush, has not moved for
 * stall_ms (0: never). The queue can exceed max_bytes by what the frames
 * handled before the check produced (one reply each); 0: unbounded. */
void vb_stream_set_output_limit(vb_stream *s, size_t max_bytes, unsigned stall_ms);
/* Stop / resume reading (e.g. while a delayed reply is pending). */
void vb_stream_pause(vb_stream *s, int paused);
/* Close now (queued output is dropped) or after the queue drains. */
void vb_stream_close(vb_stream *s);
void vb_stream_close_after_flush(vb_stream *s);
int vb_stream_fd(const vb_stream *s);
size_t vb_stream_queued_bytes(const vb_stream *s);

#endif
