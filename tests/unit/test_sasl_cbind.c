/* SASL channel binding (docs/security.md "channel binding") with the
 * installed Cyrus and a real sasldb: both ends of a login in one process,
 * each with the tls-exporter value of "its" TLS connection. The same value
 * on both ends logs in with SCRAM-SHA-256-PLUS; a man in the middle, who
 * has two TLS connections and so two values, cannot relay the login; a
 * mechanism list with the -PLUS names stripped does not make a bound
 * client fall back; and Cyrus's server refuses a client that has a
 * channel binding but was told the server has none (SCRAM's "y" flag).
 * The mech_list has only mechanisms that can bind: Cyrus 2.1.28's listing
 * overflows its buffer then (vb_sasl works around it; SAN=1 checks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_sasl.h"
#include "vb_testsupport.h"
#include "vb_testsupport_saslcb.h"

#define APP "vbcbind"
#define REALM "CBIND.TEST"
static const char PASSWORD[] = "cbind-Secret-42";
static char *conf_dir;

static int group_setup(void **state)
{
    (void)state;
    vb_error err;
    char user[64];
    snprintf(user, sizeof user, "alice:%s", PASSWORD);
    const char *const users[] = { user, NULL };
    conf_dir = vb_ts_tmpdir("cbind");
    vb_ts_sasl_pin_plugins();
    if (!conf_dir || vb_ts_sasl_setup(conf_dir, APP, REALM, "SCRAM-SHA-256 SCRAM-SHA-1", users,
                                      NULL) < 0 ||
        vb_sasl_server_init(APP, conf_dir, &err) < 0 || vb_sasl_client_init(&err) < 0)
        return -1;
    return 0;
}

static int answer(vb_cred_request *req, void *opaque, vb_error *err)
{
    (void)opaque;
    (void)err;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        const char *v = it->type == VB_CRED_PASSPHRASE ? PASSWORD : "alice";
        vb_cred_item_set_result(it, v, strlen(v));
    }
    return 0;
}

static const int CRED_TYPES[] = { VB_CRED_AUTHNAME, VB_CRED_USERNAME, VB_CRED_PASSPHRASE };

typedef struct ends {
    vb_sasl *server, *client;
    char *mechlist;
} ends;

/* A server and a client session; cb bytes of 0 mean "no channel binding". */
static void ends_new(ends *e, uint8_t server_cb, uint8_t client_cb)
{
    vb_error err;
    uint8_t v[32];
    e->server = vb_sasl_server_new("vbhostd", "localhost", REALM, -1, 0, &err);
    e->client = vb_sasl_client_new("vbhostd", "localhost", -1, 0, CRED_TYPES, 3, &err);
    assert_non_null(e->server);
    assert_non_null(e->client);
    if (server_cb) {
        memset(v, server_cb, sizeof v);
        assert_int_equal(vb_sasl_set_channel_binding(e->server, "tls-exporter", v, sizeof v, &err),
                         0);
    }
    if (client_cb) {
        memset(v, client_cb, sizeof v);
        assert_int_equal(vb_sasl_set_channel_binding(e->client, "tls-exporter", v, sizeof v, &err),
                         0);
    }
    e->mechlist = NULL;
    assert_int_equal(vb_sasl_server_mechlist(e->server, &e->mechlist, &err), 0);
}

static void ends_free(ends *e)
{
    vb_sasl_free(e->server);
    vb_sasl_free(e->client);
    free(e->mechlist);
}

/* Run the exchange over mechlist, the server told the mechanism is
 * server_mech (NULL: the one the client chose); 0 when both ends completed,
 * else -1 with *err from the end that gave up. */
static int login_as(ends *e, const char *mechlist, const char *server_mech, vb_error *err)
{
    vb_sasl_prompter p = { answer, NULL, "vbhostd on test", 0, NULL };
    const char *mech = NULL;
    const uint8_t *cout = NULL, *sout = NULL;
    size_t clen = 0, slen = 0;
    int c = vb_sasl_client_start(e->client, mechlist, &p, &mech, &cout, &clen, err);
    if (c < 0)
        return -1;
    int s = vb_sasl_server_start(e->server, server_mech ? server_mech : mech, cout, clen, &sout,
                                 &slen, NULL, err);
    while (s == VB_SASL_CONTINUE) {
        if ((c = vb_sasl_client_step(e->client, sout, slen, &p, &cout, &clen, err)) < 0)
            return -1;
        s = vb_sasl_server_step(e->server, cout, clen, &sout, &slen, NULL, err);
    }
    if (s < 0)
        return -1;
    if (c != VB_SASL_COMPLETE && vb_sasl_client_step(e->client, sout, slen, &p, &cout, &clen,
                                                     err) != VB_SASL_COMPLETE)
        return -1;
    return 0;
}

static int login(ends *e, const char *mechlist, vb_error *err)
{
    return login_as(e, mechlist, NULL, err);
}

static void test_server_offers_plus(void **state)
{
    (void)state;
    ends e;
    ends_new(&e, 7, 0);
    /* every mechanism of this mech_list can bind: the listing Cyrus 2.1.28
     * writes one byte past its buffer for, unless vb_sasl grew it first
     * (under SAN=1 AddressSanitizer stops here) */
    assert_string_equal(e.mechlist,
                        "SCRAM-SHA-256-PLUS,SCRAM-SHA-256,SCRAM-SHA-1-PLUS,SCRAM-SHA-1");
    ends_free(&e);
    ends_new(&e, 0, 0);
    assert_null(strstr(e.mechlist, "-PLUS"));
    ends_free(&e);
}

static void test_same_binding_logs_in_with_plus(void **state)
{
    (void)state;
    ends e;
    vb_error err;
    ends_new(&e, 7, 7);
    assert_int_equal(login(&e, e.mechlist, &err), 0);
    assert_string_equal(vb_sasl_mech(e.client), "SCRAM-SHA-256-PLUS");
    assert_string_equal(vb_sasl_mech(e.server), "SCRAM-SHA-256-PLUS");
    assert_string_equal(vb_sasl_username(e.server), "alice@" REALM);
    ends_free(&e);
}

/* The man in the middle relays every message, but its two connections have
 * two exporter values: the server sees another binding and refuses. */
static void test_relayed_login_fails(void **state)
{
    (void)state;
    ends e;
    vb_error err;
    ends_new(&e, 7, 8);
    assert_int_equal(login(&e, e.mechlist, &err), -1);
    assert_int_equal(err.code, VB_ERR_AUTH_FAILED);
    ends_free(&e);
}

/* The man in the middle strips the -PLUS names: the bound client does not
 * fall back to a mechanism it could relay. */
static void test_stripped_plus_is_refused_by_the_client(void **state)
{
    (void)state;
    ends e;
    vb_error err;
    ends_new(&e, 7, 7);
    assert_int_equal(login(&e, "SCRAM-SHA-256,DIGEST-MD5", &err), -1);
    assert_int_equal(err.code, VB_ERR_AUTH_UNAVAILABLE);
    assert_non_null(strstr(err.message, "no channel-bound SASL mechanism"));
    ends_free(&e);
    /* nor to one that has no binding at all (it would complete, relayed) */
    ends_new(&e, 7, 7);
    assert_int_equal(login(&e, "DIGEST-MD5", &err), -1);
    assert_int_equal(err.code, VB_ERR_AUTH_UNAVAILABLE);
    ends_free(&e);
}

/* Cyrus's own downgrade check, which the server relies on for a client
 * that is not ours: a bound client told "no -PLUS here" sends SCRAM's "y"
 * flag, and a server with a binding refuses it. (Raw cyrus on the client
 * side: vb_sasl never picks a mechanism without the binding.) */
static void test_cyrus_refuses_the_y_flag(void **state)
{
    (void)state;
    ends e;
    vb_error err;
    ends_new(&e, 7, 0);
    vb_ts_sasl_client_creds raw;
    vb_ts_sasl_client_creds_init(&raw, "alice", PASSWORD);
    sasl_conn_t *c;
    uint8_t v[32];
    memset(v, 7, sizeof v);
    sasl_channel_binding_t cb = { "tls-exporter", 0, sizeof v, v };
    assert_int_equal(sasl_client_new("vbhostd", "localhost", NULL, NULL, raw.cbs, 0, &c), SASL_OK);
    assert_int_equal(sasl_setprop(c, SASL_CHANNEL_BINDING, &cb), SASL_OK);
    const char *out, *mech;
    unsigned outlen;
    sasl_interact_t *in = NULL;
    assert_int_equal(sasl_client_start(c, "SCRAM-SHA-256,DIGEST-MD5", &in, &out, &outlen, &mech),
                     SASL_CONTINUE);
    assert_int_equal(out[0], 'y'); /* "I can bind, you cannot" */
    const uint8_t *sout;
    size_t slen;
    assert_int_equal(vb_sasl_server_start(e.server, mech, (const uint8_t *)out, outlen, &sout,
                                          &slen, NULL, &err),
                     VB_SASL_CONTINUE);
    assert_int_equal(sasl_client_step(c, (const char *)sout, (unsigned)slen, &in, &out, &outlen),
                     SASL_CONTINUE);
    int rc = vb_sasl_server_step(e.server, (const uint8_t *)out, outlen, &sout, &slen, NULL, &err);
    assert_int_equal(rc, -1);
    assert_int_equal(err.code, VB_ERR_AUTH_FAILED);
    sasl_dispose(&c);
    vb_ts_sasl_client_creds_clear(&raw);
    ends_free(&e);
}

/* A client without a binding (not ours: ours always binds on TLS) still
 * logs in with plain SCRAM: the server's binding is not critical. */
static void test_unbound_client_still_served(void **state)
{
    (void)state;
    ends e;
    vb_error err;
    ends_new(&e, 7, 0);
    assert_int_equal(login(&e, "SCRAM-SHA-256", &err), 0);
    assert_string_equal(vb_sasl_mech(e.server), "SCRAM-SHA-256");
    ends_free(&e);
}

/* A client that names the -PLUS mechanism but binds nothing (SCRAM's "n"
 * flag): Cyrus 2.1.28 lets it in while the binding is not critical (the
 * name alone proves nothing), and refuses it once vb_sasl_require_channel_binding
 * made the binding critical, as vbhostd does under tls_require_cbind. */
static void test_plus_name_without_binding(void **state)
{
    (void)state;
    ends e;
    vb_error err;
    ends_new(&e, 7, 0);
    assert_int_equal(login_as(&e, "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", &err), 0);
    ends_free(&e);
    ends_new(&e, 7, 0);
    assert_int_equal(vb_sasl_require_channel_binding(e.server, &err), 0);
    assert_int_equal(login_as(&e, "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", &err), -1);
    assert_int_equal(err.code, VB_ERR_AUTH_FAILED);
    ends_free(&e);
    /* nor under the plain name; a bound client still logs in */
    ends_new(&e, 7, 0);
    assert_int_equal(vb_sasl_require_channel_binding(e.server, &err), 0);
    assert_int_equal(login(&e, "SCRAM-SHA-256", &err), -1);
    ends_free(&e);
    ends_new(&e, 7, 7);
    assert_int_equal(vb_sasl_require_channel_binding(e.server, &err), 0);
    assert_int_equal(login(&e, e.mechlist, &err), 0);
    assert_string_equal(vb_sasl_mech(e.server), "SCRAM-SHA-256-PLUS");
    ends_free(&e);
}

static void test_malformed_binding(void **state)
{
    (void)state;
    ends e;
    vb_error err;
    uint8_t big[VB_SASL_CBIND_MAX + 1] = { 0 };
    ends_new(&e, 0, 0);
    assert_int_equal(vb_sasl_set_channel_binding(e.client, "tls-exporter", big, sizeof big, &err),
                     -1);
    assert_int_equal(vb_sasl_set_channel_binding(e.client, "tls-exporter", big, 0, &err), -1);
    ends_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_offers_plus),
        cmocka_unit_test(test_same_binding_logs_in_with_plus),
        cmocka_unit_test(test_relayed_login_fails),
        cmocka_unit_test(test_stripped_plus_is_refused_by_the_client),
        cmocka_unit_test(test_cyrus_refuses_the_y_flag),
        cmocka_unit_test(test_unbound_client_still_served),
        cmocka_unit_test(test_plus_name_without_binding),
        cmocka_unit_test(test_malformed_binding),
    };
    return cmocka_run_group_tests(tests, group_setup, vb_ts_group_teardown);
}
