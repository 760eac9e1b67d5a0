/* DIGEST-MD5's security layers with the installed Cyrus and a real sasldb
 * (docs/security.md "DIGEST-MD5 layers"): both ends of a login in one
 * process, as vbhostd and the broker run them on plain TCP (min_ssf 56).
 * Debian's plugin keys 3DES with DES_key_sched, which OpenSSL 3 makes refuse
 * keys without parity bits; util/vb_sasl_des.c restores OpenSSL 1.x's
 * schedule. A client told the server can (AUTH_LIST's "digest_3des") takes
 * 3DES; one that was not told (an older client) still gets RC4; a client
 * that demands more than 3DES gives never gets less; and traffic crosses the
 * layer both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/des.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_sasl.h"
#include "vb_testsupport.h"

#define APP "vblayer"
#define REALM "LAYER.TEST"
static const char PASSWORD[] = "layer-Secret-42";

static int group_setup(void **state)
{
    (void)state;
    vb_error err;
    char user[64];
    snprintf(user, sizeof user, "alice:%s", PASSWORD);
    const char *const users[] = { user, NULL };
    char *conf_dir = vb_ts_tmpdir("layer");
    vb_ts_sasl_pin_plugins();
    if (!conf_dir || vb_ts_sasl_setup(conf_dir, APP, REALM, "DIGEST-MD5", users, NULL) < 0 ||
        vb_sasl_server_init(APP, conf_dir, &err) < 0 || vb_sasl_client_init(&err) < 0)
        return -1;
    return 0;
}

static const int CRED_TYPES[] = { VB_CRED_AUTHNAME, VB_CRED_USERNAME, VB_CRED_PASSPHRASE };

/* msg through from's layer and back out of to's. */
static void crosses(vb_sasl *from, vb_sasl *to, const char *msg)
{
    vb_error err;
    uint8_t *enc = NULL, *dec = NULL;
    size_t enclen = 0, declen = 0;
    assert_int_equal(vb_sasl_encode(from, (const uint8_t *)msg, strlen(msg), &enc, &enclen, &err), 0);
    assert_null(memmem(enc, enclen, msg, strlen(msg))); /* not in clear */
    assert_int_equal(vb_sasl_decode(to, enc, enclen, &dec, &declen, &err), 0);
    assert_int_equal(declen, strlen(msg));
    assert_memory_equal(dec, msg, declen);
    free(enc);
    free(dec);
}

/* A login on TCP (min_ssf client_min; the server's is 56) with or without
 * the client's preference: the negotiated ssf, after traffic both ways. */
static int tcp_login(unsigned client_min, int prefer)
{
    vb_error err;
    vb_sasl *server = vb_sasl_server_new("vbhostd", "localhost", REALM, -1, 56, &err);
    vb_sasl *client = vb_sasl_client_new("vbhostd", "localhost", -1, client_min, CRED_TYPES, 3,
                                         &err);
    assert_non_null(server);
    assert_non_null(client);
    if (prefer)
        vb_sasl_client_prefer_3des(client);
    if (vb_ts_sasl_login(server, client, "DIGEST-MD5", NULL, "alice", PASSWORD, &err) < 0)
        fail_msg("login: %s", err.message);
    int ssf = (int)vb_sasl_ssf(client);
    assert_int_equal(vb_sasl_ssf(server), ssf);
    crosses(client, server, "LIST_DOMAINS web db");
    crosses(server, client, "web db mail");
    crosses(client, server, "a second packet, with more than one DES block in it");
    vb_sasl_free(server);
    vb_sasl_free(client);
    return ssf;
}

static void test_3des_usable_here(void **state)
{
    (void)state;
    /* this test binary exports the fix (Makefile: EXPORT_DES) */
    assert_true(vb_sasl_3des_usable());
}

static void test_told_client_takes_3des(void **state)
{
    (void)state;
    assert_int_equal(tcp_login(56, 1), 112);
}

static void test_older_client_still_gets_rc4(void **state)
{
    (void)state;
    /* a client that was not told (before "digest_3des", or by a server
     * without the fix) picks the strongest layer offered, as before */
    assert_int_equal(tcp_login(56, 0), 128);
}

static void test_client_demanding_more_keeps_rc4(void **state)
{
    (void)state;
    /* min_ssf above 3DES's 112: the preference never weakens a demand */
    assert_int_equal(tcp_login(128, 1), 128);
}

/* The schedule is OpenSSL 1.x's (parity ignored), so the layer interoperates
 * with a peer whose plugin runs on OpenSSL 1.x; weak keys stay refused. */
static void test_schedule_is_the_unchecked_one(void **state)
{
    (void)state;
    DES_cblock key = { 0x00, 0x22, 0x44, 0x66, 0x88, 0xaa, 0xcc, 0xee }; /* every parity bit wrong */
    DES_key_schedule ours, unchecked;
    memset(&ours, 0, sizeof ours);
    assert_int_equal(DES_key_sched(&key, &ours), 0);
    DES_set_key_unchecked(&key, &unchecked);
    assert_memory_equal(&ours, &unchecked, sizeof ours);
    DES_cblock weak = { 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01 };
    assert_int_equal(DES_key_sched(&weak, &ours), -2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_3des_usable_here),
        cmocka_unit_test(test_told_client_takes_3des),
        cmocka_unit_test(test_older_client_still_gets_rc4),
        cmocka_unit_test(test_client_demanding_more_keeps_rc4),
        cmocka_unit_test(test_schedule_is_the_unchecked_one),
    };
    int rc = cmocka_run_group_tests(tests, group_setup, NULL);
    vb_ts_cleanup();
    return rc;
}
