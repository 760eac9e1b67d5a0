/*
 * vb_msg.h — frames and messages: the only code that touches wire bytes.
 *
 * A frame is a 4-byte big-endian length followed by exactly that many bytes
 * holding one msgpack value: the array
 *     [program, version, type, serial, procedure, status, conn_id, body]
 * Everything read from a peer passes through, in order:
 *   1. vb_frame_reader  — length checked against the connection's limit
 *                         before the payload buffer is allocated;
 *   2. vb_msgpack_check — walks the raw bytes without allocating: nesting
 *                         depth, every declared str/bin length and every
 *                         array/map count against the bytes actually left;
 *   3. msgpack-c        — only then unpacks (it reserves count x 24 bytes per
 *                         declared container, bounded by step 2);
 *   4. vb_rd_*          — typed, bounds-checked field access for handlers.
 * Never index a frame by hand outside this module.
 */
#ifndef VB_MSG_H
#define VB_MSG_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "vb_error.h"
#include "vb_protocol.h"

typedef struct vb_msg_header {
    uint32_t program;   /* enum vb_program */
    uint32_t version;   /* the sender's version of that program */
    uint32_t type;      /* enum vb_msg_type */
    uint32_t serial;    /* chosen by the caller; echoed in the REPLY */
    uint32_t procedure; /* number in the program's table */
    uint32_t status;    /* enum vb_status; OK in calls */
    uint32_t conn_id;   /* 0 = the transport itself; >0 = a multiplexed connection on it */
} vb_msg_header;

/* ---- incremental frame reader (non-blocking sockets, partial reads) ----- */
typedef struct vb_frame_reader {
    uint8_t prefix[VB_FRAME_PREFIX_LEN];
    size_t prefix_have;
    uint8_t *payload;     /* allocated once the length is known and accepted */
    size_t payload_len;
    size_t payload_have;
    size_t max_frame;     /* the largest payload accepted */
} vb_frame_reader;

enum vb_frame_status {
    VB_FRAME_ERROR = -1,
    VB_FRAME_NEED_MORE = 0,
    VB_FRAME_READY = 1,
};

void vb_frame_reader_init(vb_frame_reader *r, size_t max_frame);
/* Change the limit (e.g. after authentication). Applies to the next frame. */
void vb_frame_reader_set_limit(vb_frame_reader *r, size_t max_frame);
/* Consume up to len bytes; *consumed says how many were used. Returns
 * VB_FRAME_READY when a whole frame is buffered (take it before feeding
 * again), VB_FRAME_NEED_MORE, or VB_FRAME_ERROR with err set (the
 * connection must then be dropped: the stream is out of sync). */
int vb_frame_reader_feed(vb_frame_reader *r, const uint8_t *data, size_t len,
                         size_t *consumed, vb_error *err);
/* Hand over the complete payload (caller frees, or passes to vb_msg_decode). */
uint8_t *vb_frame_reader_take(vb_frame_reader *r, size_t *len);
/* Wipe and free any partial frame. */
void vb_frame_reader_clear(vb_frame_reader *r);
/* 1 while some bytes of an unfinished frame are buffered (between frames: 0). */
int vb_frame_reader_partial(const vb_frame_reader *r);

/* ---- raw validation ----------------------------------------------------- */
/* Check that buf holds exactly one well-formed msgpack value within
 * max_depth, with every declared length satisfiable by the bytes left.
 * Allocates nothing. */
int vb_msgpack_check(const uint8_t *buf, size_t len, unsigned max_depth, vb_error *err);

/* ---- decoded messages --------------------------------------------------- */
typedef struct vb_msg {
    vb_msg_header hdr;
    const msgpack_object *body;  /* points into unpacked; valid until vb_msg_clear */
    uint8_t *payload;            /* owned: msgpack strings point into it */
    size_t payload_len;
    msgpack_unpacked unpacked;
    int unpacked_live;
} vb_msg;

/* Validate and decode one payload. Takes ownership of payload in every
 * case: after the call it belongs to msg (free with vb_msg_clear). */
int vb_msg_decode(vb_msg *msg, uint8_t *payload, size_t len, vb_error *err);
/* Wipe the payload (it may hold secrets) and release everything. */
void vb_msg_clear(vb_msg *msg);
/* For a message with status ERROR: read [code, domain, message] into out
 * as sent (tests and fuzzers look at raw bodies; receivers use vb_reply_error). */
int vb_msg_error_body(const vb_msg *msg, vb_error *out, vb_error *err);
/* An ERROR answer (REPLY or CALLBACK_REPLY) as the error its receiver
 * reports, always -1: the peer's [code, domain, message], where a code of
 * OK becomes PROTOCOL and an empty message says what the code means, so
 * whatever a peer sends, the caller gets an error a person can read. Every
 * receiver uses it: libvbroker, the remote driver, a daemon's credwait. */
int vb_reply_error(const vb_msg *reply, vb_error *err);
/* Check the frame's size against the procedure table's max body for
 * unsolicited messages (CALL, CALLBACK, EVENT); replies pass. */
int vb_msg_check_proc_size(const vb_msg *msg, vb_error *err);

/* What a server (vbhostd, vbrokerd) does with a decoded message before its
 * procedure table sees it: steps 3-6 of the order of checks in
 * docs/protocol.md §5.7, the same in both daemons. */
typedef enum vb_intake {
    VB_INTAKE_CALL,           /* a CALL of a program other than KEEPALIVE: the server's table decides */
    VB_INTAKE_CALLBACK_REPLY, /* the server matches it to its outstanding CALLBACK, or ignores it */
    VB_INTAKE_PING,           /* a KEEPALIVE PING (CALL or EVENT): answer vb_enc_pong */
    VB_INTAKE_IGNORE,         /* no answer: a REPLY, or an EVENT other than PING */
    VB_INTAKE_REFUSE,         /* answer err (as vb_msg_answer_type says); the connection stays */
    VB_INTAKE_REFUSE_CLOSE,   /* answer err, then close: serial 0 would pass for a refusal (9.6) */
} vb_intake;
vb_intake vb_msg_server_intake(const vb_msg *msg, vb_error *err);
/* The type of the answer to a request: REPLY to a CALL, CALLBACK_REPLY to a CALLBACK. */
uint32_t vb_msg_answer_type(uint32_t request_type);

/* ---- typed field reader over a body array -------------------------------
 * Missing fields are protocol errors; extra trailing fields are ignored so
 * that a newer peer may append fields. */
typedef struct vb_rd {
    const msgpack_object *items;
    uint32_t count;
    uint32_t next;
} vb_rd;

int vb_rd_init(vb_rd *rd, const msgpack_object *array, vb_error *err);
int vb_rd_has_more(const vb_rd *rd);
int vb_rd_u32(vb_rd *rd, uint32_t *out, vb_error *err);
int vb_rd_u64(vb_rd *rd, uint64_t *out, vb_error *err);
int vb_rd_i64(vb_rd *rd, int64_t *out, vb_error *err);
int vb_rd_bool(vb_rd *rd, int *out, vb_error *err);
/* A str field as a view (not NUL-terminated). nil gives ptr NULL, len 0. */
int vb_rd_str(vb_rd *rd, const char **ptr, size_t *len, vb_error *err);
/* A str field copied and NUL-terminated; embedded NULs and lengths over
 * max_len are protocol errors. nil gives *out = NULL. */
int vb_rd_strdup(vb_rd *rd, size_t max_len, char **out, vb_error *err);
/* A bin (or str) field as a view. nil gives ptr NULL, len 0. */
int vb_rd_bin(vb_rd *rd, const uint8_t **ptr, size_t *len, vb_error *err);
/* Enter a nested array field. */
int vb_rd_array(vb_rd *rd, vb_rd *sub, vb_error *err);
/* Skip one field whatever its type. */
int vb_rd_skip(vb_rd *rd, vb_error *err);

/* ---- encoder -------------------------------------------------------------
 * vb_enc_begin writes the prefix placeholder and the header; the caller then
 * packs exactly one body value (usually an array of fields) with the
 * vb_enc_* helpers or msgpack_pack_* on enc->pk; vb_enc_finish patches the
 * length. The buffer is wiped whenever it grows or is freed, because bodies
 * can carry secrets. */
typedef struct vb_enc {
    uint8_t *data;
    size_t len;
    size_t cap;
    int failed;          /* allocation failed; vb_enc_finish reports it */
    msgpack_packer pk;
} vb_enc;

void vb_enc_begin(vb_enc *enc, const vb_msg_header *hdr);
void vb_enc_array(vb_enc *enc, uint32_t n);
void vb_enc_u64(vb_enc *enc, uint64_t v);
void vb_enc_i64(vb_enc *enc, int64_t v);
void vb_enc_bool(vb_enc *enc, int v);
void vb_enc_nil(vb_enc *enc);
void vb_enc_str(vb_enc *enc, const char *s);              /* NULL → nil */
void vb_enc_strn(vb_enc *enc, const char *s, size_t len);
void vb_enc_bin(vb_enc *enc, const void *p, size_t len);  /* NULL → nil */
/* Finish: on success *frame (prefix + payload) belongs to the caller. Fails
 * when the payload exceeds max_frame or memory ran out. */
int vb_enc_finish(vb_enc *enc, size_t max_frame, uint8_t **frame, size_t *frame_len,
                  vb_error *err);
/* Wipe and free an unfinished encoder. */
void vb_enc_dispose(vb_enc *enc);

/* The PONG that answers ping: a REPLY to a CALL, an EVENT to an EVENT,
 * with the PING's serial and conn_id and body []. */
int vb_enc_pong(const vb_msg_header *ping, uint8_t **frame, size_t *frame_len, vb_error *err);
/* A complete ERROR reply to req (same program, procedure, serial, conn_id). */
int vb_enc_error_reply(const vb_msg_header *req, uint32_t reply_type, const vb_error *error,
                       uint8_t **frame, size_t *frame_len, vb_error *err);

/* Wipe and free a frame or payload buffer that may hold secrets. */
void vb_frame_free(uint8_t *frame, size_t len);

#endif
