/*
 * vb_token.h — login tokens: creation and the challenge–response proofs.
 *
 * A token is an id (32 hex chars, public) and a 256-bit secret from the
 * CSPRNG. The secret crosses the wire exactly once, when the server issues it
 * over a confidential connection; after that each side proves knowledge of it
 * with HMAC-SHA256 over both sides' fresh nonces, the server first. The
 * bound proof (v2, docs/protocol.md "token binding") also covers where the
 * login happens, so a proof made for one server and endpoint is worthless
 * at any other (a relaying impostor cannot use it):
 *
 *   v1: HMAC(secret, "vbroker-token-v1 ROLE" 0x00 id 0x00 cnonce snonce)
 *   v2: HMAC(secret, "vbroker-token-v2 ROLE" 0x00 id 0x00
 *            len32 server_id  len32 endpoint  len32 channel_binding
 *            cnonce snonce)
 *
 * (len32: a big-endian byte count before each field; ROLE "server" or
 * "client"; channel_binding is empty until a TLS transport provides one.)
 *
 * Nothing here stores, sends or logs a secret.
 */
#ifndef VB_TOKEN_H
#define VB_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "vb_error.h"

#define VB_TOKEN_ID_LEN 32      /* hex characters */
#define VB_TOKEN_SECRET_LEN 32  /* bytes */
#define VB_TOKEN_NONCE_LEN 32   /* bytes */
#define VB_TOKEN_PROOF_LEN 32   /* HMAC-SHA256 */

enum vb_token_role { VB_TOKEN_SERVER, VB_TOKEN_CLIENT };

/* Where a bound proof is valid (all three are covered by the HMAC). */
#define VB_TOKEN_ENDPOINT_MAX 512    /* bytes of the canonical endpoint */
#define VB_TOKEN_CBIND_MAX 64        /* bytes of a channel binding */
typedef struct vb_token_binding {
    const char *server_id;           /* the id the server announced in AUTH_LIST */
    const char *endpoint;            /* canonical endpoint (docs/protocol.md) */
    const uint8_t *cbind;            /* TLS channel binding; NULL/0 until TLS exists */
    size_t cbind_len;
} vb_token_binding;

/* A fresh id (NUL-terminated) and secret. */
int vb_token_new(char id[VB_TOKEN_ID_LEN + 1], uint8_t secret[VB_TOKEN_SECRET_LEN], vb_error *err);
int vb_token_nonce(uint8_t nonce[VB_TOKEN_NONCE_LEN], vb_error *err);
int vb_token_proof(enum vb_token_role role, const uint8_t *secret, size_t secret_len, const char *id,
                   const uint8_t cnonce[VB_TOKEN_NONCE_LEN], const uint8_t snonce[VB_TOKEN_NONCE_LEN],
                   uint8_t proof[VB_TOKEN_PROOF_LEN], vb_error *err);
/* The v2 proof over bind as well (bind must be non-NULL). */
int vb_token_proof_bound(enum vb_token_role role, const uint8_t *secret, size_t secret_len,
                         const char *id, const vb_token_binding *bind,
                         const uint8_t cnonce[VB_TOKEN_NONCE_LEN],
                         const uint8_t snonce[VB_TOKEN_NONCE_LEN], uint8_t proof[VB_TOKEN_PROOF_LEN],
                         vb_error *err);
/* Constant-time comparison of two proofs: 1 when equal. */
int vb_token_proof_equal(const uint8_t *a, const uint8_t *b);
/* A token id has exactly VB_TOKEN_ID_LEN lowercase hex characters. */
int vb_token_id_valid(const char *id, size_t len);

#endif
