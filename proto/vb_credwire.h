/*
 * vb_credwire.h — credential requests on the wire (BROKER CRED_REQUEST and
 * HOST CRED_FILL share one body), for every process that relays or answers
 * them: both daemons and libvbroker decode with this code, so a question one
 * of them refuses (a 9th hop, an unknown item type) every one refuses.
 *
 *   request: [service str, hops [str…], retry bool, items [[type, prompt, challenge, defresult]…]]
 *   answer:  [results [bin|nil …]]   (one per item, in order)
 */
#ifndef VB_CREDWIRE_H
#define VB_CREDWIRE_H

#include "vb_credreq.h"
#include "vb_msg.h"

void vb_credwire_encode_request(vb_enc *enc, const vb_cred_request *req);
int vb_credwire_decode_request(const msgpack_object *body, vb_cred_request *req, vb_error *err);
void vb_credwire_encode_answer(vb_enc *enc, const vb_cred_request *req);
/* Store the answer's results into req's items. */
int vb_credwire_decode_answer(const msgpack_object *body, vb_cred_request *req, vb_error *err);
/* The whole CALLBACK frame asking req (hdr: CRED_REQUEST or CRED_FILL, its
 * serial and conn_id). 0 with *frame (the caller's), or -1. */
int vb_credwire_request_frame(const vb_msg_header *hdr, const vb_cred_request *req,
                              uint8_t **frame, size_t *len, vb_error *err);
/* The whole CALLBACK_REPLY frame answering question with req's results
 * (same program, procedure, serial, conn_id). 0 with *frame (the caller's:
 * vb_frame_free wipes it), or -1. */
int vb_credwire_answer_frame(const vb_msg_header *question, const vb_cred_request *req,
                             uint8_t **frame, size_t *len, vb_error *err);

#endif
