/* The token proofs against the test vectors of docs/protocol.md 9.3 (the v1
 * and the bound v2 proof), and what the binding changes: another server id,
 * another endpoint or a channel binding each give another proof. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vb_token.h"

static const char ID[] = "0123456789abcdef0123456789abcdef";
static const char SERVER_ID[] = "818a5fdac4a37fccc10c8c0d390b8325";
static const char ENDPOINT[] = "unix:/run/vbhostd/sock";

static void fill(uint8_t *b, uint8_t first)
{
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(first + i);
}

static void hex(const uint8_t *p, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void bound(enum vb_token_role role, const vb_token_binding *b, char out[65])
{
    uint8_t secret[32], cn[32], sn[32], proof[32];
    vb_error err;
    fill(secret, 0x00);
    fill(cn, 0x40);
    fill(sn, 0x80);
    assert_int_equal(vb_token_proof_bound(role, secret, sizeof secret, ID, b, cn, sn, proof, &err), 0);
    hex(proof, out);
}

static void test_v1_vector(void **state)
{
    (void)state;
    uint8_t secret[32], cn[32], sn[32], proof[32];
    char h[65];
    vb_error err;
    fill(secret, 0x00);
    fill(cn, 0x40);
    fill(sn, 0x80);
    assert_int_equal(vb_token_proof(VB_TOKEN_SERVER, secret, 32, ID, cn, sn, proof, &err), 0);
    hex(proof, h);
    assert_string_equal(h, "bf6e456914d1d9be5dcb9edc62260925bbd43aba905e771ba787dbc6fb306068");
    assert_int_equal(vb_token_proof(VB_TOKEN_CLIENT, secret, 32, ID, cn, sn, proof, &err), 0);
    hex(proof, h);
    assert_string_equal(h, "18080ff4adbf943faa79d57cad83bc5295044b0f86b241fb140eb4fe95a52d95");
}

static void test_v2_vector(void **state)
{
    (void)state;
    vb_token_binding b = { SERVER_ID, ENDPOINT, NULL, 0 };
    char h[65];
    bound(VB_TOKEN_SERVER, &b, h);
    assert_string_equal(h, "13c2bdc500b9c23027710ca7252a818a1af3645ab28cebed4bd2daae8d572ccd");
    bound(VB_TOKEN_CLIENT, &b, h);
    assert_string_equal(h, "67b6a5605c413de3d1507218e71294c655fa0b5eff03d74cb6f312f57cbd5dfa");
}

/* On TLS: the channel binding is the connection's tls-exporter value (32
 * bytes); here c0 c1 … df, endpoint tls:192.0.2.1:16514 (docs/protocol.md). */
static void test_v2_tls_vector(void **state)
{
    (void)state;
    uint8_t cb[32];
    fill(cb, 0xc0);
    vb_token_binding b = { SERVER_ID, "tls:192.0.2.1:16514", cb, sizeof cb };
    char h[65];
    bound(VB_TOKEN_SERVER, &b, h);
    assert_string_equal(h, "254f5dff17aaef33c3e69d6813a380e94ebd503bc6ef37fb3b1398009b348a44");
    bound(VB_TOKEN_CLIENT, &b, h);
    assert_string_equal(h, "b811e05ddc3a449b32d28afedcd6db00e6fd8591ac6c7f5e854aa1bcaccb8804");
}

static void test_binding_changes_the_proof(void **state)
{
    (void)state;
    static const uint8_t cb[4] = { 1, 2, 3, 4 };
    vb_token_binding variants[] = {
        { SERVER_ID, ENDPOINT, NULL, 0 },
        { "918a5fdac4a37fccc10c8c0d390b8325", ENDPOINT, NULL, 0 },
        { SERVER_ID, "unix:/tmp/evil/sock", NULL, 0 },
        { SERVER_ID, ENDPOINT, cb, sizeof cb },
        /* the length prefixes keep the fields apart: moving a byte from one
         * field to the next is another binding */
        { "818a5fdac4a37fccc10c8c0d390b832", "5unix:/run/vbhostd/sock", NULL, 0 },
    };
    size_t n = sizeof variants / sizeof variants[0];
    char proofs[8][65];
    for (size_t i = 0; i < n; i++)
        bound(VB_TOKEN_CLIENT, &variants[i], proofs[i]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(proofs[i], proofs[j]);
}

static void test_oversized_binding_refused(void **state)
{
    (void)state;
    char ep[VB_TOKEN_ENDPOINT_MAX + 2];
    memset(ep, 'a', sizeof ep - 1);
    ep[sizeof ep - 1] = '\0';
    vb_token_binding b = { SERVER_ID, ep, NULL, 0 };
    uint8_t secret[32] = { 0 }, cn[32] = { 0 }, sn[32] = { 0 }, proof[32];
    vb_error err;
    assert_int_equal(vb_token_proof_bound(VB_TOKEN_CLIENT, secret, 32, ID, &b, cn, sn, proof, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    assert_int_equal(vb_token_proof_bound(VB_TOKEN_CLIENT, secret, 32, ID, NULL, cn, sn, proof, &err),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_vector),
        cmocka_unit_test(test_v2_vector),
        cmocka_unit_test(test_v2_tls_vector),
        cmocka_unit_test(test_binding_changes_the_proof),
        cmocka_unit_test(test_oversized_binding_refused),
    };
    return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
