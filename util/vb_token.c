#include "vb_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

int vb_token_nonce(uint8_t nonce[VB_TOKEN_NONCE_LEN], vb_error *err)
{
    if (RAND_bytes(nonce, VB_TOKEN_NONCE_LEN) != 1)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_AUTH, "no randomness available");
    return 0;
}

int vb_token_new(char id[VB_TOKEN_ID_LEN + 1], uint8_t secret[VB_TOKEN_SECRET_LEN], vb_error *err)
{
    uint8_t raw[VB_TOKEN_ID_LEN / 2];
    if (RAND_bytes(raw, sizeof raw) != 1 || RAND_bytes(secret, VB_TOKEN_SECRET_LEN) != 1)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_AUTH, "no randomness available");
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int vb_token_proof(enum vb_token_role role, const uint8_t *secret, size_t secret_len, const char *id,
                   const uint8_t cnonce[VB_TOKEN_NONCE_LEN], const uint8_t snonce[VB_TOKEN_NONCE_LEN],
                   uint8_t proof[VB_TOKEN_PROOF_LEN], vb_error *err)
{
    static const char server_label[] = "vbroker-token-v1 server";
    static const char client_label[] = "vbroker-token-v1 client";
    const char *label = role == VB_TOKEN_SERVER ? server_label : client_label;
    size_t idlen = strlen(id);
    uint8_t msg[sizeof server_label + VB_TOKEN_ID_LEN + 1 + 2 * VB_TOKEN_NONCE_LEN];
    if (idlen != VB_TOKEN_ID_LEN)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH, "malformed token id");
    size_t n = 0;
    memcpy(msg + n, label, sizeof server_label); /* includes the NUL separator */
    n += sizeof server_label;
    memcpy(msg + n, id, idlen);
    n += idlen;
    msg[n++] = 0;
    memcpy(msg + n, cnonce, VB_TOKEN_NONCE_LEN);
    n += VB_TOKEN_NONCE_LEN;
    memcpy(msg + n, snonce, VB_TOKEN_NONCE_LEN);
    n += VB_TOKEN_NONCE_LEN;
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, msg, n, proof, &outlen) ||
        outlen != VB_TOKEN_PROOF_LEN)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_AUTH, "HMAC-SHA256 failed");
    return 0;
}

int vb_token_proof_equal(const uint8_t *a, const uint8_t *b)
{
    return CRYPTO_memcmp(a, b, VB_TOKEN_PROOF_LEN) == 0;
}

int vb_token_id_valid(const char *id, size_t len)
{
    if (!id || len != VB_TOKEN_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}
