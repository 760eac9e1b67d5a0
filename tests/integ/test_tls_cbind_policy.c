/* Channel binding as vbhostd's policy, and TLS 1.2 without the extended
 * master secret (issue 16's gaps):
 *
 *  - tls_require_cbind = 1 (the default): AUTH_SASL_INIT offers only -PLUS
 *    mechanisms on TLS and AUTH_SASL_START refuses one without it, naming
 *    the setting; with tls_require_cbind = 0 the same client is served;
 *  - a TLS 1.2 connection without the extended master secret (RFC 7627)
 *    has no tls-exporter value (RFC 9266): vbhostd turns it away after the
 *    handshake when the setting requires a binding; without the setting it
 *    neither offers nor accepts a token there and offers no -PLUS mechanism;
 *  - our client facing such a server connection (a man in the middle that
 *    disables the extended master secret toward it) logs in neither with
 *    its token nor with SCRAM, and says why.
 *
 * The hand-made client speaks the protocol in plain TCP to
 * tests/peers/tls_mitm.py in mode "tls-up", which opens the TLS connection
 * to vbhostd for it (with --up-no-ems: TLS 1.2 without the extended master
 * secret): a client that cannot know, so omits, the channel binding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_net.h"
#include "vb_remote.h"
#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"
#include "vb_token.h"

#define REALM "TLS.TEST"
#define PASSWORD "tls-Cb1nd-p0licy"

static char *dir;
static vb_ts_pki ca, server, mitm;
static char pki[400];     /* the client's pkipath: the CA only */
static vb_ts_hostd h_req; /* tls_require_cbind left at its default (1) */
static vb_ts_hostd h_open; /* tls_require_cbind = 0 */
static int fwd_port;
static pid_t fwd_pid;

static int start_hostd(vb_ts_hostd *h, const char *name, const char *extra)
{
    return vb_ts_hostd_start_tls(h, dir, name,
                                 "auth_tls = [\"token\", \"sasl\"]\ncert_file = \"%s\"\n"
                                 "key_file = \"%s\"\nca_file = \"%s\"\n"
                                 "sasl_conf_dir = \"%s/sasl\"\nsasl_realm = \"" REALM "\"\n%s",
                                 server.cert, server.key, ca.cert, dir, extra);
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("tlscbpol");
    char sasl[400];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (!dir || vb_ts_pki_ca(dir, "ca", "/O=vbroker tests/CN=test CA", &ca) < 0 ||
        vb_ts_pki_issue(dir, "server", &ca, "/O=vbroker tests/CN=vbhostd", "IP:127.0.0.1", -3600,
                        86400, 2, &server) < 0 ||
        vb_ts_pki_issue(dir, "mitm", &ca, "/O=vbroker tests/CN=not vbhostd", "IP:127.0.0.1",
                        -3600, 86400, 3, &mitm) < 0 ||
        vb_ts_pki_dir(pki, dir, "client-pki", &ca, NULL) < 0 ||
        vb_ts_sasl_setup(sasl, "vbhostd", REALM, "scram-sha-256", users, NULL) < 0 ||
        start_hostd(&h_req, "req", "") < 0 ||
        start_hostd(&h_open, "open", "tls_require_cbind = 0\n") < 0)
        return -1;
    fwd_port = vb_ts_free_tcp_port();
    return 0;
}

static int group_teardown(void **state)
{
    vb_ts_hostd *all[] = { &h_req, &h_open };
    int dirty = 0;
    for (size_t i = 0; i < 2; i++)
        if (all[i]->pid > 0)
            dirty |= vb_ts_check_exit(all[i]->log, vb_ts_stop(all[i]->pid, 5000), all[i]->log) < 0;
    vb_ts_group_teardown(state);
    return dirty ? -1 : 0;
}

static void stop_forwarder(void)
{
    if (fwd_pid > 0)
        vb_ts_stop(fwd_pid, 3000);
    fwd_pid = 0;
}

/* (the one a failed test left behind stopped first) */
static void start_forwarder(const vb_ts_hostd *h, const char *mode, const char *flag)
{
    stop_forwarder();
    fwd_pid = vb_ts_tls_forwarder(dir, fwd_port, h->tls_port, mode, &mitm, flag);
    assert_true(fwd_pid > 0);
}

static void assert_contains(const char *text, const char *part)
{
    if (!text || !strstr(text, part))
        fail_msg("expected \"%s\" in: %s", part, text ? text : "(nothing)");
}

/* ---- the hand-made client ------------------------------------------------------ */

typedef struct raw {
    vb_ts_wire w;
    uint32_t serial;
} raw;

static void raw_open(raw *c)
{
    vb_error err;
    memset(c, 0, sizeof *c);
    int fd = vb_net_connect_tcp("127.0.0.1", fwd_port, 5000, &err);
    if (fd < 0)
        fail_msg("%s", err.message);
    vb_ts_wire_adopt(&c->w, fd);
}

/* One call: its answer in *m (vb_msg_clear it). */
static void raw_call(raw *c, uint32_t proc, vb_ts_body_fn body, const void *arg, vb_msg *m)
{
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, ++c->serial, proc,
                          VB_STATUS_OK, 0 };
    assert_int_equal(vb_ts_wire_call(&c->w, &hdr, body, arg, vb_ts_scaled_ms(10000), m), 1);
}

/* An ERROR answer: its code, and its message in msg. */
static int raw_error(const vb_msg *m, char *msg, size_t len)
{
    vb_error refusal, err;
    assert_int_equal(m->hdr.status, VB_STATUS_ERROR);
    assert_int_equal(vb_msg_error_body(m, &refusal, &err), 0);
    snprintf(msg, len, "%s", refusal.message);
    return refusal.code;
}

/* AUTH_LIST's auth types, joined by ",". */
static void auth_types(raw *c, char *out, size_t len)
{
    vb_msg m;
    vb_rd rd, types;
    vb_error err;
    raw_call(c, VB_HOST_PROC_AUTH_LIST, NULL, NULL, &m);
    assert_int_equal(m.hdr.status, VB_STATUS_OK);
    assert_int_equal(vb_rd_init(&rd, m.body, &err), 0);
    assert_int_equal(vb_rd_array(&rd, &types, &err), 0);
    out[0] = '\0';
    while (vb_rd_has_more(&types)) {
        const char *s;
        size_t n;
        assert_int_equal(vb_rd_str(&types, &s, &n, &err), 0);
        snprintf(out + strlen(out), len - strlen(out), "%.*s,", (int)n, s);
    }
    vb_msg_clear(&m);
}

/* AUTH_SASL_INIT's mechanism list (or, on an error, "ERROR: message"). */
static void sasl_mechs(raw *c, char *out, size_t len)
{
    vb_msg m;
    vb_rd rd;
    vb_error err;
    raw_call(c, VB_HOST_PROC_AUTH_SASL_INIT, NULL, NULL, &m);
    if (m.hdr.status != VB_STATUS_OK) {
        char why[600];
        raw_error(&m, why, sizeof why);
        snprintf(out, len, "ERROR: %s", why);
    } else {
        const char *s;
        size_t n;
        assert_int_equal(vb_rd_init(&rd, m.body, &err), 0);
        assert_int_equal(vb_rd_str(&rd, &s, &n, &err), 0);
        snprintf(out, len, "%.*s", (int)n, s);
    }
    vb_msg_clear(&m);
}

typedef struct start_args {
    const char *mech;
    const char *first; /* the client's first SASL message */
} start_args;

static void pack_start(vb_enc *enc, const void *arg)
{
    const start_args *a = arg;
    vb_enc_array(enc, 2);
    vb_enc_str(enc, a->mech);
    vb_enc_bin(enc, (const uint8_t *)a->first, strlen(a->first));
}

/* SCRAM's client-first message of a client that cannot bind ("n"). */
static const char scram_first_unbound[] = "n,,n=alice,r=4f2c9e1b7a5d3c8e6f0a1b2c";

/* ---- tls_require_cbind --------------------------------------------------------- */

static void test_required_binding_refuses_unbound_sasl(void **state)
{
    (void)state;
    raw c;
    vb_msg m;
    char text[800];
    start_forwarder(&h_req, "tls-up", NULL);
    raw_open(&c);
    auth_types(&c, text, sizeof text);
    assert_contains(text, "sasl,");
    sasl_mechs(&c, text, sizeof text);
    assert_string_equal(text, "SCRAM-SHA-256-PLUS"); /* not the plain SCRAM-SHA-256 */
    start_args plain = { "SCRAM-SHA-256", scram_first_unbound };
    raw_call(&c, VB_HOST_PROC_AUTH_SASL_START, pack_start, &plain, &m);
    assert_int_equal(raw_error(&m, text, sizeof text), VB_ERR_AUTH_UNAVAILABLE);
    assert_contains(text, "tls_require_cbind = 1");
    vb_msg_clear(&m);
    /* (the -PLUS name with a client-first message that binds nothing is
     * refused at the end of the exchange: tests/unit/test_sasl_cbind.c) */
    vb_ts_wire_close(&c.w);
    stop_forwarder();
    assert_true(vb_ts_count_in_file(h_req.log, "refused SASL SCRAM-SHA-256 without channel "
                                               "binding (tls_require_cbind)") >= 1);
    assert_int_equal(vb_ts_count_in_file(h_req.log, "authenticated as"), 0);
}

/* tls_require_cbind = 0: the same client gets its SCRAM exchange going */
static void test_binding_not_required_serves_unbound_sasl(void **state)
{
    (void)state;
    raw c;
    vb_msg m;
    char text[800];
    start_forwarder(&h_open, "tls-up", NULL);
    raw_open(&c);
    sasl_mechs(&c, text, sizeof text);
    strcat(text, ",");
    assert_contains(text, "SCRAM-SHA-256-PLUS,");
    assert_contains(text, ",SCRAM-SHA-256,");
    start_args plain = { "SCRAM-SHA-256", scram_first_unbound };
    raw_call(&c, VB_HOST_PROC_AUTH_SASL_START, pack_start, &plain, &m);
    assert_int_equal(m.hdr.status, VB_STATUS_OK); /* the server-first message */
    vb_msg_clear(&m);
    vb_ts_wire_close(&c.w);
    stop_forwarder();
}

/* ---- TLS 1.2 without the extended master secret ---------------------------------- */

/* vbhostd requiring the binding turns the connection away at once, saying why */
static void test_no_ems_refused_when_binding_required(void **state)
{
    (void)state;
    raw c;
    vb_msg m;
    char text[800];
    start_forwarder(&h_req, "tls-up", "--up-no-ems");
    raw_open(&c);
    raw_call(&c, VB_HOST_PROC_AUTH_LIST, NULL, NULL, &m);
    assert_int_equal(raw_error(&m, text, sizeof text), VB_ERR_AUTH_UNAVAILABLE);
    assert_contains(text, "tls_require_cbind = 1");
    assert_contains(text, "no extended master secret");
    vb_msg_clear(&m);
    assert_int_equal(vb_ts_wire_wait_closed(&c.w, vb_ts_scaled_ms(5000)), 0);
    vb_ts_wire_close(&c.w);
    stop_forwarder();
    assert_true(vb_ts_count_in_file(h_req.log, "refused: this vbhostd takes logins on TLS "
                                               "only with a channel binding") >= 1);
}

static int form(vb_cred_request *req, void *opaque, vb_error *err)
{
    (void)opaque;
    (void)err;
    for (size_t i = 0; i < req->nitems; i++) {
        const char *v = req->items[i].type == VB_CRED_PASSPHRASE ? PASSWORD : "alice";
        vb_cred_item_set_result(&req->items[i], v, strlen(v));
    }
    return 0;
}

static const int form_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

/* A token issued over a proper connection to h. */
static void issue_token(const vb_ts_hostd *h, vb_remote_token *tok)
{
    char text[700];
    snprintf(text, sizeof text, "test+tls://127.0.0.1:%d/default?pkipath=%s&auth=sasl",
             h->tls_port, pki);
    vb_uri uri;
    vb_error err;
    vb_remote *r = NULL;
    vb_remote_opts opts = { .creds = { .fn = form, .types = form_types, .ntypes = 2 },
                            .timeout_ms = vb_ts_scaled_ms(10000) };
    assert_int_equal(vb_uri_parse(text, &uri, &err), 0);
    if (vb_remote_connect(&uri, &opts, &r, &err) < 0)
        fail_msg("%s", err.message);
    vb_uri_clear(&uri);
    if (vb_remote_issue_token(r, 600, tok, &err) < 0)
        fail_msg("%s", err.message);
    vb_remote_free(r);
}

/* Without the setting: no token offered or accepted there, no -PLUS offered */
static void test_no_ems_has_no_binding(void **state)
{
    (void)state;
    vb_remote_token tok;
    issue_token(&h_open, &tok);
    raw c;
    vb_msg m;
    char text[800], endpoint[80];
    start_forwarder(&h_open, "tls-up", "--up-no-ems");
    raw_open(&c);
    auth_types(&c, text, sizeof text);
    assert_string_equal(text, "sasl,"); /* "token" is not offered */
    uint8_t cnonce[VB_TOKEN_NONCE_LEN];
    vb_error err;
    assert_int_equal(vb_token_nonce(cnonce, &err), 0);
    snprintf(endpoint, sizeof endpoint, "tls:127.0.0.1:%d", h_open.tls_port);
    vb_ts_token_challenge ch = { tok.id, cnonce, endpoint };
    raw_call(&c, VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, vb_ts_pack_token_challenge, &ch, &m);
    assert_int_equal(raw_error(&m, text, sizeof text), VB_ERR_AUTH_UNAVAILABLE);
    assert_contains(text, "no extended master secret");
    vb_msg_clear(&m);
    sasl_mechs(&c, text, sizeof text);
    assert_null(strstr(text, "-PLUS"));
    vb_ts_wire_close(&c.w);
    stop_forwarder();
    explicit_bzero(&tok, sizeof tok);
}

static vb_remote_token held;
static int lookups;

static int lookup(void *opaque, const char *server_id, const char *endpoint, const char *user,
                  char *id, size_t id_len, uint8_t *secret, size_t secret_len)
{
    (void)opaque, (void)server_id, (void)endpoint, (void)user;
    lookups++;
    if (id_len <= VB_TOKEN_ID_LEN || secret_len < VB_TOKEN_SECRET_LEN)
        return 0;
    memcpy(id, held.id, VB_TOKEN_ID_LEN + 1);
    memcpy(secret, held.secret, VB_TOKEN_SECRET_LEN);
    return 1;
}

/* Our client on a TLS 1.2 connection without the extended master secret
 * (the man in the middle disables it toward the client): neither its token
 * proof nor SCRAM goes out; it says why. */
static void test_client_refuses_binding_without_ems(void **state)
{
    (void)state;
    issue_token(&h_open, &held);
    start_forwarder(&h_open, "tls", "--down-no-ems");
    char text[700];
    snprintf(text, sizeof text, "test+tls://127.0.0.1:%d/default?pkipath=%s", fwd_port, pki);
    vb_uri uri;
    vb_error err;
    vb_remote *r = NULL;
    int logins = vb_ts_count_in_file(h_open.log, "authenticated as");
    lookups = 0;
    vb_remote_opts opts = { .creds = { .fn = form, .types = form_types, .ntypes = 2,
                                       .token_lookup = lookup },
                            .timeout_ms = vb_ts_scaled_ms(10000) };
    assert_int_equal(vb_uri_parse(text, &uri, &err), 0);
    int rc = vb_remote_connect(&uri, &opts, &r, &err);
    vb_uri_clear(&uri);
    if (rc == 0) {
        vb_remote_free(r);
        fail_msg("logged in over TLS 1.2 without the extended master secret");
    }
    assert_contains(err.message, "no extended master secret");
    stop_forwarder();
    assert_int_equal(lookups, 0); /* the token was not even looked up for this connection */
    assert_int_equal(vb_ts_count_in_file(h_open.log, "authenticated as"), logins);
    explicit_bzero(&held, sizeof held);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_required_binding_refuses_unbound_sasl),
        cmocka_unit_test(test_binding_not_required_serves_unbound_sasl),
        cmocka_unit_test(test_no_ems_refused_when_binding_required),
        cmocka_unit_test(test_no_ems_has_no_binding),
        cmocka_unit_test(test_client_refuses_binding_without_ems),
    };
    return cmocka_run_group_tests_name("tls_cbind_policy", tests, group_setup, group_teardown);
}
