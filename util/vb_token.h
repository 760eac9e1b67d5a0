/*
 * vb_token.h — login tokens: creation and the challenge–response proofs.
 *
 * A token is an id (32 hex chars, public) and a 256-bit secret from the
 * CSPRNG. The secret crosses the wire exactly once, when the server issues it
 * over a confidential connection; after that each side proves knowledge of it
 * with HMAC-SHA256 over both sides' fresh nonces, the server first:
 *
 *   server_proof = HMAC(secret, "vbroker-token-v1 server" 0x00 id 0x00 cnonce snonce)
 *   client_proof = HMAC(secret, "vbroker-token-v1 client" 0x00 id 0x00 cnonce snonce)
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

/* A fresh id (NUL-terminated) and secret. */
int vb_token_new(char id[VB_TOKEN_ID_LEN + 1], uint8_t secret[VB_TOKEN_SECRET_LEN], vb_error *err);
int vb_token_nonce(uint8_t nonce[VB_TOKEN_NONCE_LEN], vb_error *err);
int vb_token_proof(enum vb_token_role role, const uint8_t *secret, size_t secret_len, const char *id,
                   const uint8_t cnonce[VB_TOKEN_NONCE_LEN], const uint8_t snonce[VB_TOKEN_NONCE_LEN],
                   uint8_t proof[VB_TOKEN_PROOF_LEN], vb_error *err);
/* Constant-time comparison of two proofs: 1 when equal. */
int vb_token_proof_equal(const uint8_t *a, const uint8_t *b);
/* A token id has exactly VB_TOKEN_ID_LEN lowercase hex characters. */
int vb_token_id_valid(const char *id, size_t len);

#endif
