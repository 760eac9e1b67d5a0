/* vb_testsupport_wire — a raw client of vbhostd for tests: it sends the
 * messages a test composes (any header: serial, conn_id, type) with the
 * proto/ encoder and reads what comes back whole, with a deadline, so a test
 * can put several calls in flight and leave a CALLBACK unanswered.
 *
 * Test code only. */
#ifndef VB_TESTSUPPORT_WIRE_H
#define VB_TESTSUPPORT_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "vb_msg.h"

typedef struct vb_ts_wire {
    int fd;
    vb_frame_reader rd;
    uint8_t buf[16384];
    size_t have, off;           /* bytes read and not yet fed to rd */
} vb_ts_wire;

/* Connect to a unix socket: 0, or -1 (printed). */
int vb_ts_wire_connect_unix(vb_ts_wire *w, const char *path);
void vb_ts_wire_close(vb_ts_wire *w);

/* Fills a message's body (exactly one value); NULL sends []. */
typedef void (*vb_ts_wire_body_fn)(vb_enc *enc, const void *arg);
/* Send one message with header hdr: 0, or -1. */
int vb_ts_wire_send(vb_ts_wire *w, const vb_msg_header *hdr, vb_ts_wire_body_fn body,
                    const void *arg);
/* A HOST CALL of procedure on conn_id (the current HOST version). */
int vb_ts_wire_call(vb_ts_wire *w, uint32_t serial, uint32_t procedure, uint32_t conn_id,
                    vb_ts_wire_body_fn body, const void *arg);
/* The next message (vb_msg_clear it): 1; 0 when the server closed; -1 when
 * nothing whole came within timeout_ms, or garbage. */
int vb_ts_wire_read(vb_ts_wire *w, int timeout_ms, vb_msg *out);

#endif
