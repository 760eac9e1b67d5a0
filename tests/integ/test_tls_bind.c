/* Channel binding and session resumption over TLS (issue 16, items 3 and 4),
 * against a real vbhostd with a TLS listener and a real vbrokerd:
 *
 *  - `vbctl login test+tls://…` logs in with SCRAM-SHA-256-PLUS, then
 *    `vbctl --non-interactive … list` uses the token over TLS, also after a
 *    broker restart;
 *  - a resumed TLS connection has its own tls-exporter value, and a token
 *    login and a SCRAM-PLUS login both work on it; it still carries the
 *    client certificate, which the listener's policy (required, DN list)
 *    checks again;
 *  - a hand-made client's token proof without the channel binding is refused;
 *  - through a port forward the operator runs (listed in token_endpoints) the
 *    login and the token work; a man in the middle that takes the forward's
 *    place with its own certificate, from the CA the client trusts
 *    (tests/peers/tls_mitm.py), cannot log in with the relayed token proof
 *    nor with a relayed SCRAM-PLUS login, and the broker keeps the token.
 *
 * Daemons and peers are started here and stopped by pid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_msg.h"
#include "vb_net.h"
#include "vb_remote.h"
#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"
#include "vb_tls_cbind.h"
#include "vb_tls_resume.h"
#include "vb_token.h"

#define REALM "TLS.TEST"
#define PASSWORD "tls-B1nd-pw"

static char *dir;
static char pki[400]; /* the client's pkipath: cacert.pem (the CA of both certificates) */
static vb_ts_hostd h, h_dn; /* h_dn: the client certificate is the login, DN list */
static vb_ts_broker b;
static int tls_port, fwd_port;
static pid_t fwd_pid;

/* ---- a throwaway CA: the server's certificate and the man in the middle's ---- */

static vb_ts_pki ca, server, mitm, client1, client2;
static char pki_client1[400], pki_client2[400]; /* pkipaths with a client certificate */

static int make_pki(void)
{
    return vb_ts_pki_ca(dir, "ca", "/O=vbroker tests/CN=test CA", &ca) < 0 ||
                   vb_ts_pki_issue(dir, "server", &ca, "/O=vbroker tests/CN=vbhostd",
                                   "IP:127.0.0.1", -3600, 86400, 2, &server) < 0 ||
                   vb_ts_pki_issue(dir, "mitm", &ca, "/O=vbroker tests/CN=not vbhostd",
                                   "IP:127.0.0.1", -3600, 86400, 3, &mitm) < 0 ||
                   vb_ts_pki_issue(dir, "client1", &ca, "/O=vbroker tests/CN=client1", NULL,
                                   -3600, 86400, 4, &client1) < 0 ||
                   vb_ts_pki_issue(dir, "client2", &ca, "/O=vbroker tests/CN=client2", NULL,
                                   -3600, 86400, 5, &client2) < 0 ||
                   vb_ts_pki_dir(pki, dir, "client-pki", &ca, NULL) < 0 ||
                   vb_ts_pki_dir(pki_client1, dir, "client1-pki", &ca, &client1) < 0 ||
                   vb_ts_pki_dir(pki_client2, dir, "client2-pki", &ca, &client2) < 0
               ? -1
               : 0;
}

/* ---- daemons and peers ----------------------------------------------------------- */

static int start_hostd(void)
{
    fwd_port = vb_ts_free_tcp_port();
    /* the port forward at fwd_port is the operator's: token_endpoints lists it */
    if (vb_ts_hostd_start_tls(&h, dir, "h",
                              "auth_tls = [\"token\", \"sasl\"]\ncert_file = \"%s\"\n"
                              "key_file = \"%s\"\nca_file = \"%s\"\n"
                              "token_endpoints = [\"tls:127.0.0.1:%d\"]\n"
                              "sasl_conf_dir = \"%s/sasl\"\nsasl_realm = \"" REALM "\"\n",
                              server.cert, server.key, ca.cert, fwd_port, dir) < 0)
        return -1;
    tls_port = h.tls_port;
    return vb_ts_hostd_start_tls(&h_dn, dir, "dn",
                                 "auth_tls = [\"none\"]\ncert_file = \"%s\"\nkey_file = \"%s\"\n"
                                 "ca_file = \"%s\"\ntls_client_cert = \"required\"\n"
                                 "tls_allowed_dn_list = [\"O=vbroker tests,CN=client1\"]\n",
                                 server.cert, server.key, ca.cert);
}

/* no idle host connection: every open makes a new TLS connection */
static int start_broker(void)
{
    const char *extra[] = { "--upstream-idle", "0", "--secret-ttl", "0", NULL };
    return vb_ts_broker_start(&b, dir, "b", extra);
}

/* tests/peers/tls_mitm.py at fwd_port: mode "tcp" (the operator's port
 * forward) or "tls" (the man in the middle). */
static int start_forwarder(const char *mode)
{
    fwd_pid = vb_ts_tls_forwarder(dir, fwd_port, tls_port, mode, &mitm, NULL);
    return fwd_pid > 0 ? 0 : -1;
}

static void stop_forwarder(void)
{
    if (fwd_pid > 0)
        vb_ts_stop(fwd_pid, 3000);
    fwd_pid = 0;
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("tlsbind");
    char sasl[400];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (!dir || make_pki() < 0 ||
        vb_ts_sasl_setup(sasl, "vbhostd", REALM, "scram-sha-256", users, NULL) < 0 ||
        start_hostd() < 0 || start_broker() < 0)
        return -1;
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

static const char *uri_at(int port)
{
    static char buf[2][600];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "test+tls://127.0.0.1:%d/default?pkipath=%s", port, pki);
    return buf[k];
}

static int vbctl(const char *const args[], const char *input, char **out)
{
    char *argv[12];
    size_t n = 0;
    argv[n++] = VB_BUILD_DIR "/vbctl";
    for (; *args && n < 11; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    return vb_ts_broker_run(&b, argv, input, out, vb_ts_scaled_ms(30000));
}

static int vbctl_login(const char *uri, char **out)
{
    const char *args[] = { "login", uri, NULL };
    return vbctl(args, "alice\n" PASSWORD "\n", out);
}

static int vbctl_list(const char *uri, char **out)
{
    const char *args[] = { "-c", uri, "--non-interactive", "list", NULL };
    return vbctl(args, NULL, out);
}

static int count(const char *needle)
{
    return vb_ts_count_in_file(h.log, needle);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_login_then_token_over_tls_and_after_restart(void **state)
{
    (void)state;
    char *out = NULL;
    int plus = count("(sasl SCRAM-SHA-256-PLUS");
    assert_int_equal(vbctl_login(uri_at(tls_port), &out), 0);
    assert_non_null(strstr(out, "Logged in to"));
    assert_null(strstr(out, PASSWORD));
    free(out);
    assert_int_equal(count("(sasl SCRAM-SHA-256-PLUS"), plus + 1); /* channel-bound */
    int tokens = count("(token "), sasl = count("(sasl ");
    assert_int_equal(vbctl_list(uri_at(tls_port), &out), 0);
    free(out);
    assert_int_equal(vbctl_list(uri_at(tls_port), &out), 0);
    free(out);
    assert_int_equal(count("(token "), tokens + 2); /* two new TLS connections, two tokens */
    assert_int_equal(count("(sasl "), sasl);
    /* the second one resumed the first one's TLS session */
    assert_true(vb_ts_count_in_file(b.log, "TLS session resumed") >= 1);
    /* a restarted broker has the token on disk, not the TLS session */
    vb_ts_stop(b.pid, 5000);
    assert_int_equal(start_broker(), 0);
    int resumed = vb_ts_count_in_file(b.log, "TLS session resumed");
    assert_int_equal(vbctl_list(uri_at(tls_port), &out), 0);
    free(out);
    assert_int_equal(count("(token "), tokens + 3);
    assert_int_equal(count("(sasl "), sasl);
    assert_int_equal(vb_ts_count_in_file(b.log, "TLS session resumed"), resumed);
}

/* In this process: a full handshake with a SCRAM-PLUS login that gets a
 * token, then a resumed one that logs in with it. Both logins check the
 * channel binding on both ends; the two connections' values differ. */
typedef struct held_token {
    vb_remote_token tok;
    char server_id[80];
} held_token;

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

static int lookup(void *opaque, const char *server_id, const char *endpoint, const char *user,
                  char *id, size_t id_len, uint8_t *secret, size_t secret_len)
{
    (void)endpoint;
    (void)user;
    const held_token *t = opaque;
    if (!t->tok.id[0] || strcmp(server_id, t->server_id) != 0 || id_len <= VB_TOKEN_ID_LEN ||
        secret_len < VB_TOKEN_SECRET_LEN)
        return 0;
    memcpy(id, t->tok.id, VB_TOKEN_ID_LEN + 1);
    memcpy(secret, t->tok.secret, VB_TOKEN_SECRET_LEN);
    return 1;
}

static vb_remote *connect_at(const char *text, held_token *t, const char *auth, vb_error *err)
{
    static const int types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };
    const char *prio[] = { auth };
    vb_remote_opts opts = { 0 };
    opts.creds.fn = form;
    opts.creds.types = types;
    opts.creds.ntypes = 2;
    opts.creds.auth_priority = prio;
    opts.creds.nauth_priority = 1;
    opts.creds.token_lookup = lookup;
    opts.creds.opaque = t;
    vb_uri uri;
    vb_remote *r = NULL;
    if (vb_uri_parse(text, &uri, err) == 0) {
        vb_remote_connect(&uri, &opts, &r, err);
        vb_uri_clear(&uri);
    }
    return r;
}

static vb_remote *connect_tls(held_token *t, const char *auth, vb_error *err)
{
    return connect_at(uri_at(tls_port), t, auth, err);
}

/* A resumed session still carries the client certificate, and the listener's
 * policy (certificate required, DN list) is applied to it again; a session
 * made with one certificate is never offered with another. */
static void test_resumption_keeps_the_certificate_policy(void **state)
{
    (void)state;
    char u1[600], u2[600];
    snprintf(u1, sizeof u1, "test+tls://127.0.0.1:%d/default?pkipath=%s", h_dn.tls_port,
             pki_client1);
    snprintf(u2, sizeof u2, "test+tls://127.0.0.1:%d/default?pkipath=%s", h_dn.tls_port,
             pki_client2);
    held_token t;
    memset(&t, 0, sizeof t);
    vb_error err;
    vb_tls_resume_forget_all();
    for (int i = 0; i < 2; i++) {
        vb_remote *r = connect_at(u1, &t, "none", &err);
        if (!r)
            fail_msg("client1, connection %d: %s", i + 1, err.message);
        assert_int_equal(vb_tls_resumed(vb_tls_ssl(vb_remote_tls(r))), i); /* the 2nd resumed */
        assert_int_equal(vb_remote_open(r, "test:///default", 0, &err), 0); /* let in: DN allowed */
        vb_remote_free(r);
    }
    int refused = vb_ts_count_in_file(h_dn.log, "tls_allowed_dn_list");
    vb_remote *r = connect_at(u2, &t, "none", &err);
    if (r) {
        /* the server may end the handshake's aftermath with its refusal */
        assert_int_equal(vb_remote_open(r, "test:///default", 0, &err), -1);
        assert_false(vb_tls_resumed(vb_tls_ssl(vb_remote_tls(r))));
        vb_remote_free(r);
    }
    assert_true(vb_ts_count_in_file(h_dn.log, "tls_allowed_dn_list") > refused);
}

static void test_resumed_connection_has_its_own_binding(void **state)
{
    (void)state;
    vb_error err;
    held_token t;
    memset(&t, 0, sizeof t);
    vb_tls_resume_forget_all();
    vb_remote *first = connect_tls(&t, "sasl", &err);
    if (!first)
        fail_msg("first connection: %s", err.message);
    assert_string_equal(vb_remote_sasl_mech(first), "SCRAM-SHA-256-PLUS");
    assert_false(vb_tls_resumed(vb_tls_ssl(vb_remote_tls(first))));
    assert_int_equal(vb_remote_issue_token(first, 600, &t.tok, &err), 0);
    snprintf(t.server_id, sizeof t.server_id, "%s", vb_remote_server_id(first));
    uint8_t cb1[VB_TLS_CBIND_LEN], cb2[VB_TLS_CBIND_LEN];
    assert_int_equal(vb_tls_channel_binding(vb_remote_tls(first), cb1, &err), 0);
    vb_remote_free(first); /* its session (ticket) is kept for the next connection */
    assert_int_equal(vb_tls_resume_count(), 1);

    vb_remote *second = connect_tls(&t, "token", &err);
    if (!second)
        fail_msg("resumed connection, token login: %s", err.message);
    assert_true(vb_tls_resumed(vb_tls_ssl(vb_remote_tls(second))));
    assert_string_equal(vb_remote_auth_type(second), "token");
    assert_int_equal(vb_tls_channel_binding(vb_remote_tls(second), cb2, &err), 0);
    assert_memory_not_equal(cb1, cb2, sizeof cb1);
    vb_remote_free(second);

    vb_remote *third = connect_tls(&t, "sasl", &err);
    if (!third)
        fail_msg("resumed connection, SCRAM-PLUS login: %s", err.message);
    assert_true(vb_tls_resumed(vb_tls_ssl(vb_remote_tls(third))));
    assert_string_equal(vb_remote_sasl_mech(third), "SCRAM-SHA-256-PLUS");
    vb_remote_free(third);
    explicit_bzero(&t, sizeof t);
}

/* ---- a hand-made client: a proof without the channel binding ------------- */

typedef struct raw {
    vb_tls *tls;
    int fd;
    vb_frame_reader rd;
    uint32_t serial;
} raw;

static void pack_proof(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 1);
    vb_enc_bin(enc, arg, VB_TOKEN_PROOF_LEN);
}

static void pack_none(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 0);
}

/* One call, its reply in *reply (0), or -1. */
static int raw_call(raw *c, uint32_t proc, void (*pack)(vb_enc *, const void *), const void *arg,
                    vb_msg *reply)
{
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, ++c->serial, proc,
                          VB_STATUS_OK, 0 };
    vb_enc enc;
    uint8_t *frame, buf[4096];
    size_t len, got, used;
    vb_error err;
    vb_enc_begin(&enc, &hdr);
    pack(&enc, arg);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, &err) < 0)
        return -1;
    int rc = vb_tls_write_all(c->tls, frame, len, 10000, &err);
    vb_frame_free(frame, len);
    int wait_ms = vb_ts_scaled_ms(10000);
    while (rc == 0 && vb_tls_read(c->tls, buf, sizeof buf, wait_ms, &got, &err) == 0) {
        for (size_t off = 0; off < got; off += used) {
            int st = vb_frame_reader_feed(&c->rd, buf + off, got - off, &used, &err);
            if (st == VB_FRAME_ERROR)
                return -1;
            if (st == VB_FRAME_READY) {
                uint8_t *payload = vb_frame_reader_take(&c->rd, &len);
                return vb_msg_decode(reply, payload, len, &err);
            }
        }
    }
    return -1;
}

/* A client that runs the token challenge over TLS but leaves the channel
 * binding out of its proof (as one that could relay it would): the server,
 * whose proofs on TLS always cover it, refuses. */
static void test_unbound_proof_refused_on_tls(void **state)
{
    (void)state;
    vb_error err;
    held_token t;
    memset(&t, 0, sizeof t);
    vb_remote *first = connect_tls(&t, "sasl", &err);
    if (!first)
        fail_msg("login: %s", err.message);
    assert_int_equal(vb_remote_issue_token(first, 600, &t.tok, &err), 0);
    snprintf(t.server_id, sizeof t.server_id, "%s", vb_remote_server_id(first));
    vb_remote_free(first);

    raw c;
    memset(&c, 0, sizeof c);
    vb_frame_reader_init(&c.rd, VB_FRAME_MAX_POSTAUTH);
    c.fd = vb_net_connect_tcp("127.0.0.1", tls_port, 10000, &err);
    assert_true(c.fd >= 0);
    assert_int_equal(
        vb_tls_client_connect(c.fd, "127.0.0.1", tls_port, pki, 0, 10000, &c.tls, &err), 0);
    char endpoint[80];
    assert_int_equal(vb_net_tcp_endpoint(c.fd, 1, endpoint, sizeof endpoint), 0);
    memcpy(endpoint, "tls", 3);
    vb_msg reply;
    assert_int_equal(raw_call(&c, VB_HOST_PROC_AUTH_LIST, pack_none, NULL, &reply), 0);
    vb_msg_clear(&reply);
    uint8_t cn[VB_TOKEN_NONCE_LEN], sn[VB_TOKEN_NONCE_LEN], proof[VB_TOKEN_PROOF_LEN];
    assert_int_equal(vb_token_nonce(cn, &err), 0);
    vb_ts_token_challenge ca = { t.tok.id, cn, endpoint };
    assert_int_equal(
        raw_call(&c, VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, vb_ts_pack_token_challenge, &ca, &reply), 0);
    assert_int_equal(reply.hdr.status, VB_STATUS_OK);
    vb_rd rd;
    const uint8_t *snonce, *sproof;
    size_t snlen, splen;
    assert_int_equal(vb_rd_init(&rd, reply.body, &err), 0);
    assert_int_equal(vb_rd_bin(&rd, &snonce, &snlen, &err), 0);
    assert_int_equal(vb_rd_bin(&rd, &sproof, &splen, &err), 0);
    assert_int_equal(snlen, VB_TOKEN_NONCE_LEN);
    memcpy(sn, snonce, sizeof sn);
    /* the server's proof covers the channel binding: an unbound one differs */
    vb_token_binding unbound = { t.server_id, endpoint, NULL, 0 };
    assert_int_equal(vb_token_proof_bound(VB_TOKEN_SERVER, t.tok.secret, VB_TOKEN_SECRET_LEN,
                                          t.tok.id, &unbound, cn, sn, proof, &err),
                     0);
    assert_false(vb_token_proof_equal(proof, sproof));
    vb_msg_clear(&reply);
    assert_int_equal(vb_token_proof_bound(VB_TOKEN_CLIENT, t.tok.secret, VB_TOKEN_SECRET_LEN,
                                          t.tok.id, &unbound, cn, sn, proof, &err),
                     0);
    int wrong = count("wrong proof for token");
    assert_int_equal(raw_call(&c, VB_HOST_PROC_AUTH_TOKEN_PROVE, pack_proof, proof, &reply), 0);
    assert_int_equal(reply.hdr.status, VB_STATUS_ERROR);
    vb_error refusal;
    assert_int_equal(vb_msg_error_body(&reply, &refusal, &err), 0);
    assert_int_equal(refusal.code, VB_ERR_AUTH_FAILED);
    vb_msg_clear(&reply);
    assert_true(vb_ts_wait_for_log(h.log, "wrong proof for token", wrong + 1,
                                   vb_ts_scaled_ms(5000)) == 0);
    vb_tls_free(c.tls);
    close(c.fd);
    vb_frame_reader_clear(&c.rd);
    explicit_bzero(&t, sizeof t);
}

static void test_man_in_the_middle_cannot_log_in(void **state)
{
    (void)state;
    char *out = NULL;
    const char *via = uri_at(fwd_port);
    /* through the operator's port forward: TLS end to end, all works */
    assert_int_equal(start_forwarder("tcp"), 0);
    assert_int_equal(vbctl_login(via, &out), 0);
    free(out);
    int tokens = count("(token ");
    assert_int_equal(vbctl_list(via, &out), 0);
    free(out);
    assert_int_equal(count("(token "), tokens + 1);
    stop_forwarder();

    /* the man in the middle takes the forward's place */
    assert_int_equal(start_forwarder("tls"), 0);
    int sasl_ok = count("(sasl "), refused = count("login failed");
    tokens = count("(token ");
    assert_int_not_equal(vbctl_list(via, &out), 0);
    assert_non_null(strstr(out, "could not prove it knows this login's token"));
    assert_non_null(strstr(out, "terminated the TLS connection"));
    free(out);
    assert_int_equal(count("(token "), tokens); /* no token login happened */
    /* the relayed SCRAM-PLUS login (a person typing the password again) */
    assert_int_not_equal(vbctl_login(via, &out), 0);
    assert_null(strstr(out, "Logged in to"));
    assert_null(strstr(out, PASSWORD));
    free(out);
    assert_int_equal(count("(sasl "), sasl_ok);
    /* vbhostd may write its line after the client has its answer: wait for it */
    assert_int_equal(vb_ts_wait_for_log(h.log, "login failed", refused + 1, 10000), 0);
    stop_forwarder();

    /* the real path again: the broker kept the token through all of it */
    assert_int_equal(start_forwarder("tcp"), 0);
    tokens = count("(token ");
    assert_int_equal(vbctl_list(via, &out), 0);
    free(out);
    assert_int_equal(count("(token "), tokens + 1);
    stop_forwarder();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_then_token_over_tls_and_after_restart),
        cmocka_unit_test(test_resumed_connection_has_its_own_binding),
        cmocka_unit_test(test_resumption_keeps_the_certificate_policy),
        cmocka_unit_test(test_unbound_proof_refused_on_tls),
        cmocka_unit_test(test_man_in_the_middle_cannot_log_in),
    };
    return cmocka_run_group_tests_name("tls_bind", tests, group_setup, vb_ts_group_teardown);
}
