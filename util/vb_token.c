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

/* msg grows by one field; 0, or -1 when it would not fit. */
static int put(uint8_t *msg, size_t cap, size_t *n, const void *data, size_t len)
{
    if (len > cap - *n)
        return -1;
    memcpy(msg + *n, data, len);
    *n += len;
    return 0;
}

/* A field with its length in front, so no two bindings hash alike. */
static int put_counted(uint8_t *msg, size_t cap, size_t *n, const void *data, size_t len)
{
    uint8_t be[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len };
    return put(msg, cap, n, be, sizeof be) < 0 ? -1 : put(msg, cap, n, data ? data : "", len);
}

static int proof_over(enum vb_token_role role, const uint8_t *secret, size_t secret_len,
                      const char *id, const vb_token_binding *bind, const uint8_t *cnonce,
                      const uint8_t *snonce, uint8_t proof[VB_TOKEN_PROOF_LEN], vb_error *err)
{
    uint8_t msg[64 + VB_TOKEN_ID_LEN + 3 * 4 + 256 + VB_TOKEN_ENDPOINT_MAX + VB_TOKEN_CBIND_MAX +
                2 * VB_TOKEN_NONCE_LEN];
    const char *label = bind ? (role == VB_TOKEN_SERVER ? "vbroker-token-v2 server"
                                                        : "vbroker-token-v2 client")
                             : (role == VB_TOKEN_SERVER ? "vbroker-token-v1 server"
                                                        : "vbroker-token-v1 client");
    if (strlen(id) != VB_TOKEN_ID_LEN)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH, "malformed token id");
    size_t n = 0;
    int bad = put(msg, sizeof msg, &n, label, strlen(label) + 1) < 0 || /* with its NUL */
              put(msg, sizeof msg, &n, id, VB_TOKEN_ID_LEN + 1) < 0;
    if (!bad && bind) {
        size_t sidlen = bind->server_id ? strlen(bind->server_id) : 0;
        size_t eplen = bind->endpoint ? strlen(bind->endpoint) : 0;
        bad = sidlen > 255 || eplen > VB_TOKEN_ENDPOINT_MAX || bind->cbind_len > VB_TOKEN_CBIND_MAX ||
              put_counted(msg, sizeof msg, &n, bind->server_id, sidlen) < 0 ||
              put_counted(msg, sizeof msg, &n, bind->endpoint, eplen) < 0 ||
              put_counted(msg, sizeof msg, &n, bind->cbind, bind->cbind_len) < 0;
    }
    bad = bad || put(msg, sizeof msg, &n, cnonce, VB_TOKEN_NONCE_LEN) < 0 ||
          put(msg, sizeof msg, &n, snonce, VB_TOKEN_NONCE_LEN) < 0;
    if (bad)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH,
                            "token binding too long (server id, endpoint or channel binding)");
    unsigned int outlen = 0;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, msg, n, proof, &outlen) ||
        outlen != VB_TOKEN_PROOF_LEN)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_AUTH, "HMAC-SHA256 failed");
    return 0;
}

int vb_token_proof(enum vb_token_role role, const uint8_t *secret, size_t secret_len, const char *id,
                   const uint8_t cnonce[VB_TOKEN_NONCE_LEN], const uint8_t snonce[VB_TOKEN_NONCE_LEN],
                   uint8_t proof[VB_TOKEN_PROOF_LEN], vb_error *err)
{
    return proof_over(role, secret, secret_len, id, NULL, cnonce, snonce, proof, err);
}

int vb_token_proof_bound(enum vb_token_role role, const uint8_t *secret, size_t secret_len,
                         const char *id, const vb_token_binding *bind,
                         const uint8_t cnonce[VB_TOKEN_NONCE_LEN],
                         const uint8_t snonce[VB_TOKEN_NONCE_LEN], uint8_t proof[VB_TOKEN_PROOF_LEN],
                         vb_error *err)
{
    if (!bind)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH, "a bound proof needs a binding");
    return proof_over(role, secret, secret_len, id, bind, cnonce, snonce, proof, err);
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
