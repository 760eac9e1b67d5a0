/* The +tls transport end to end: real vbhostds with listen_tls, a
 * throwaway CA and certificates made here (libcrypto, vb_testsupport_pki.c),
 * on 127.0.0.1. SCRAM over TLS where tcp_min_ssf forbids it on plain TCP;
 * each refusal (wrong CA, expired, wrong name, revoked, no client
 * certificate, DN not allowed, key not matching) with the words that say
 * what to look at; the handshake held to the first-frame deadline; a chain
 * of two vbhostds over TLS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vb_net.h"
#include "vb_remote.h"
#include "vb_testsupport.h"

#define REALM "TLS.TEST"
#define PASSWORD "tls-Pa55-w0rd" /* distinctive, for the suite's secret scan */
#define DAY 86400L

static char *dir;      /* certificates, pkipath dirs, configs */
static char *sasl_dir;
static vb_ts_pki ca, other_ca, server, expired_server, client1, client2, revoked;
static vb_ts_hostd h_sasl;     /* SCRAM over TLS, tcp_min_ssf 56, CRL, client certs optional */
static vb_ts_hostd h_dn;       /* auth_tls none: the certificate is the login, DN list */
static vb_ts_hostd h_expired;  /* serves an expired certificate */
static vb_ts_hostd h_hop;      /* a hop: its clients' OPEN may reach h_sasl over TLS */
static char common[1200];     /* the SASL lines every vbhostd here gets */
static char pki_good[400], pki_nocert[400], pki_wrong_ca[400], pki_client2[400],
    pki_revoked[400];

/* ---- fixtures -------------------------------------------------------------- */

static int make_pkipath(char *out, const char *name, const vb_ts_pki *ca_id, const vb_ts_pki *id)
{
    return vb_ts_pki_dir(out, dir, name, ca_id, id);
}

static int make_pki(void)
{
    char crl[400];
    long revoked_serial = 40;
    snprintf(crl, sizeof crl, "%s/cacrl.pem", dir);
    return vb_ts_pki_ca(dir, "ca", "/C=GB/O=Lab/CN=Lab CA", &ca) < 0 ||
                   vb_ts_pki_ca(dir, "other-ca", "/C=GB/O=Elsewhere/CN=Other CA", &other_ca) < 0 ||
                   /* the IP only: a client dialling "localhost" must refuse it */
                   vb_ts_pki_issue(dir, "server", &ca, "/C=GB/O=Lab/CN=vbhostd", "IP:127.0.0.1",
                                   -3600, 30 * DAY, 10, &server) < 0 ||
                   vb_ts_pki_issue(dir, "expired", &ca, "/C=GB/O=Lab/CN=old vbhostd",
                                   "IP:127.0.0.1", -30 * DAY, -DAY, 11, &expired_server) < 0 ||
                   vb_ts_pki_issue(dir, "client1", &ca, "/C=GB/O=Lab/CN=client1", NULL, -3600,
                                   30 * DAY, 20, &client1) < 0 ||
                   vb_ts_pki_issue(dir, "client2", &ca, "/C=GB/O=Lab/CN=client2", NULL, -3600,
                                   30 * DAY, 21, &client2) < 0 ||
                   vb_ts_pki_issue(dir, "revoked", &ca, "/C=GB/O=Lab/CN=revoked", NULL, -3600,
                                   30 * DAY, revoked_serial, &revoked) < 0 ||
                   vb_ts_pki_crl(crl, &ca, &revoked_serial, 1) < 0 ||
                   make_pkipath(pki_good, "pki-good", &ca, &client1) < 0 ||
                   make_pkipath(pki_nocert, "pki-nocert", &ca, NULL) < 0 ||
                   make_pkipath(pki_wrong_ca, "pki-wrong-ca", &other_ca, &client1) < 0 ||
                   make_pkipath(pki_client2, "pki-client2", &ca, &client2) < 0 ||
                   make_pkipath(pki_revoked, "pki-revoked", &ca, &revoked) < 0
               ? -1
               : 0;
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("tls");
    sasl_dir = vb_ts_tmpdir("tls-sasl");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (!dir || !sasl_dir || make_pki() < 0 ||
        vb_ts_sasl_setup(sasl_dir, "vbhostd", REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    const char *sasl_conf = "sasl_conf_dir = \"%s\"\nsasl_hostname = \"localhost\"\n"
                            "sasl_realm = \"" REALM "\"\n";
    snprintf(common, sizeof common, sasl_conf, sasl_dir);
    if (vb_ts_hostd_start_tls(&h_sasl, dir, "sasl",
                              "%sauth_tls = [\"sasl\", \"token\"]\ntcp_min_ssf = 56\n"
                              "first_frame_timeout = 2\n"
                              "cert_file = \"%s\"\nkey_file = \"%s\"\nca_file = \"%s\"\n"
                              "crl_file = \"%s/cacrl.pem\"\n",
                              common, server.cert, server.key, ca.cert, dir) < 0 ||
        vb_ts_hostd_start_tls(&h_dn, dir, "dn",
                              "auth_tls = [\"none\"]\ncert_file = \"%s\"\nkey_file = \"%s\"\n"
                              "ca_file = \"%s\"\ntls_allowed_dn_list = [\"C=GB,O=Lab,CN=client1\"]\n",
                              server.cert, server.key, ca.cert) < 0 ||
        vb_ts_hostd_start_tls(&h_expired, dir, "expired",
                              "%sauth_tls = [\"sasl\"]\ncert_file = \"%s\"\nkey_file = \"%s\"\n"
                              "ca_file = \"%s\"\n",
                              common, expired_server.cert, expired_server.key, ca.cert) < 0)
        return -1;
    if (vb_ts_hostd_start_tls(&h_hop, dir, "hop",
                              "%sauth_tls = [\"sasl\"]\ncert_file = \"%s\"\nkey_file = \"%s\"\n"
                              "ca_file = \"%s\"\nallow_remote_uris = 1\n"
                              "allowed_next_hops = [\"tls://127.0.0.1:%d\"]\n"
                              "next_hop_pkipath = \"%s\"\n",
                              common, server.cert, server.key, ca.cert, h_sasl.tls_port,
                              pki_good) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    vb_ts_hostd *all[] = { &h_sasl, &h_dn, &h_expired, &h_hop };
    int dirty = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->pid > 0) /* clean under SAN=1 too: no leak in the TLS paths */
            dirty |= vb_ts_check_exit(all[i]->log, vb_ts_stop(all[i]->pid, 5000), all[i]->log) < 0;
    vb_ts_group_teardown(state);
    return dirty ? -1 : 0;
}

/* ---- a client ---------------------------------------------------------------- */

static int answer_cb(vb_cred_request *req, void *opaque, vb_error *err)
{
    (void)err;
    int *asked = opaque;
    (*asked)++;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        const char *v = it->type == VB_CRED_AUTHNAME || it->type == VB_CRED_USERNAME ? "alice"
                        : it->type == VB_CRED_PASSPHRASE                              ? PASSWORD
                                                                                      : NULL;
        if (v)
            vb_cred_item_set_result(it, v, strlen(v));
    }
    return 0;
}

static const int cred_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE, VB_CRED_REALM };

static int asked;

static int connect_text(const char *text, vb_remote **r, vb_error *err)
{
    vb_uri uri;
    vb_error_clear(err);
    if (vb_uri_parse(text, &uri, err) < 0)
        return -1;
    vb_remote_opts opts = { .creds = { .fn = answer_cb, .opaque = &asked, .types = cred_types,
                                       .ntypes = 3 },
                            .timeout_ms = 20000 };
    int rc = vb_driver_check_uri(&uri, err) < 0 ? -1 : vb_remote_connect(&uri, &opts, r, err);
    vb_uri_clear(&uri);
    return rc;
}

/* test+tls://HOST:PORT/default?pkipath=PKI[&extra] */
static int connect_tls(const char *host, int port, const char *pki, const char *extra, vb_remote **r,
                       vb_error *err)
{
    char text[1200];
    snprintf(text, sizeof text, "test+tls://%s:%d/default%s%s%s%s", host, port,
             pki || extra ? "?" : "", pki ? "pkipath=" : "", pki ? pki : "",
             extra ? extra : "");
    return connect_text(text, r, err);
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part)) {
        fprintf(stderr, "expected \"%s\" in: %s\n", part, text);
        fail();
    }
}

static int log_has(const char *log, const char *part)
{
    char *text = vb_ts_read_file(log, NULL);
    int found = text && strstr(text, part);
    free(text);
    return found;
}

typedef struct log_wait {
    const char *log, *part;
} log_wait;

static int log_has_cond(void *arg)
{
    const log_wait *w = arg;
    return log_has(w->log, w->part);
}

static void assert_log_soon(const char *log, const char *part)
{
    log_wait w = { log, part };
    if (vb_ts_wait_until(log_has_cond, &w, vb_ts_scaled_ms(5000)) < 0) {
        fprintf(stderr, "expected \"%s\" in %s\n", part, log);
        fail();
    }
}

static void open_and_list(vb_remote *r)
{
    vb_error err;
    vb_domain_info *doms = NULL;
    size_t n = 0;
    assert_int_equal(vb_remote_open(r, "test:///default", 0, &err), 0);
    assert_int_equal(vb_remote_list_domains(r, &doms, &n, &err), 0);
    assert_true(n >= 1);
    free(doms);
}

/* ---- success --------------------------------------------------------------------- */

/* tcp_min_ssf = 56 forbids SCRAM on plain TCP; TLS below it counts, so the
 * SCRAM login works (channel-bound: -PLUS), without a SASL layer on top. */
static void test_scram_over_tls(void **state)
{
    (void)state;
    vb_remote *r = NULL;
    vb_error err;
    asked = 0;
    if (connect_tls("127.0.0.1", h_sasl.tls_port, pki_good, NULL, &r, &err) < 0)
        fail_msg("%s", err.message);
    assert_string_equal(vb_remote_auth_type(r), "sasl");
    assert_string_equal(vb_remote_sasl_mech(r), "SCRAM-SHA-256-PLUS");
    assert_int_equal(vb_remote_ssf(r), 0); /* TLS is the layer */
    assert_non_null(vb_remote_tls(r));
    assert_true(vb_tls_ssf(vb_remote_tls(r)) >= 128);
    assert_string_equal(vb_tls_version(vb_remote_tls(r)), "TLSv1.3");
    assert_true(asked > 0);
    open_and_list(r);
    vb_remote_free(r);
    assert_log_soon(h_sasl.log, "client certificate C=GB,O=Lab,CN=client1");
}

/* client certificates are optional there: a client without one logs in too */
static void test_client_cert_optional(void **state)
{
    (void)state;
    vb_remote *r = NULL;
    vb_error err;
    if (connect_tls("127.0.0.1", h_sasl.tls_port, pki_nocert, NULL, &r, &err) < 0)
        fail_msg("%s", err.message);
    open_and_list(r);
    vb_remote_free(r);
}

/* auth_tls = none with a DN list: the verified certificate is the login */
static void test_certificate_login(void **state)
{
    (void)state;
    vb_remote *r = NULL;
    vb_error err;
    if (connect_tls("127.0.0.1", h_dn.tls_port, pki_good, NULL, &r, &err) < 0)
        fail_msg("%s", err.message);
    assert_string_equal(vb_remote_auth_type(r), "none");
    open_and_list(r);
    vb_remote_free(r);
}

/* tcp_min_ssf = 56 refuses tokens on plain TCP; over TLS one is issued (its
 * secret inside TLS) and logs in, its proof bound to the TCP endpoint the
 * connection reached. */
static vb_remote_token issued;
static char token_endpoint_seen[200];

static int lookup_issued(void *opaque, const char *server_id, const char *endpoint,
                         const char *user, char *id, size_t idlen, uint8_t *secret, size_t slen)
{
    (void)opaque;
    (void)server_id;
    (void)user;
    snprintf(token_endpoint_seen, sizeof token_endpoint_seen, "%s", endpoint);
    if (idlen <= strlen(issued.id) || slen < sizeof issued.secret)
        return 0;
    memcpy(id, issued.id, strlen(issued.id) + 1);
    memcpy(secret, issued.secret, sizeof issued.secret);
    return 1;
}

static void test_token_over_tls(void **state)
{
    (void)state;
    vb_remote *r = NULL;
    vb_error err;
    if (connect_tls("127.0.0.1", h_sasl.tls_port, pki_good, "&auth=sasl", &r, &err) < 0)
        fail_msg("%s", err.message);
    if (vb_remote_issue_token(r, 600, &issued, &err) < 0)
        fail_msg("%s", err.message);
    vb_remote_free(r);
    char text[600];
    snprintf(text, sizeof text, "test+tls://127.0.0.1:%d/default?pkipath=%s&auth=token",
             h_sasl.tls_port, pki_good);
    vb_uri uri;
    assert_int_equal(vb_uri_parse(text, &uri, &err), 0);
    vb_remote_opts opts = { .creds = { .fn = answer_cb, .opaque = &asked, .types = cred_types,
                                       .ntypes = 3, .token_lookup = lookup_issued },
                            .timeout_ms = 20000 };
    asked = 0;
    if (vb_remote_connect(&uri, &opts, &r, &err) < 0)
        fail_msg("%s", err.message);
    vb_uri_clear(&uri);
    assert_string_equal(vb_remote_auth_type(r), "token");
    assert_int_equal(asked, 0);
    char want[100];
    snprintf(want, sizeof want, "tls:127.0.0.1:%d", h_sasl.tls_port);
    assert_string_equal(token_endpoint_seen, want);
    open_and_list(r);
    vb_remote_free(r);
    explicit_bzero(&issued, sizeof issued);
}

/* ---- refusals, each with what to look at ------------------------------------------- */

static void expect_refusal(const char *host, int port, const char *pki, const char *extra,
                           const char *part1, const char *part2)
{
    vb_remote *r = NULL;
    vb_error err;
    int rc = connect_tls(host, port, pki, extra, &r, &err);
    if (rc == 0) {
        vb_remote_free(r);
        fail_msg("connected, expected a refusal saying \"%s\"", part1);
    }
    assert_contains(err.message, part1);
    if (part2)
        assert_contains(err.message, part2);
}

static void test_wrong_ca(void **state)
{
    (void)state;
    char ca_file[500];
    snprintf(ca_file, sizeof ca_file, "%s/cacert.pem", pki_wrong_ca);
    expect_refusal("127.0.0.1", h_sasl.tls_port, pki_wrong_ca, NULL,
                   "is not signed by a CA this client trusts", ca_file);
}

static void test_expired_server(void **state)
{
    (void)state;
    expect_refusal("127.0.0.1", h_expired.tls_port, pki_good, NULL, "expired on",
                   "must renew its cert_file");
}

static void test_wrong_name(void **state)
{
    (void)state;
    expect_refusal("localhost", h_sasl.tls_port, pki_good, NULL,
                   "the server's certificate is for IP:127.0.0.1", "not for the name this client dialled");
}

static void test_revoked_client(void **state)
{
    (void)state;
    expect_refusal("127.0.0.1", h_sasl.tls_port, pki_revoked, NULL, "revoked", NULL);
    assert_log_soon(h_sasl.log, "the client's certificate (C=GB,O=Lab,CN=revoked) is revoked");
}

static void test_client_cert_required(void **state)
{
    (void)state;
    expect_refusal("127.0.0.1", h_dn.tls_port, pki_nocert, NULL,
                   "requires a TLS client certificate", "tls_allowed_dn_list");
    assert_log_soon(h_dn.log, "sent no TLS client certificate");
}

static void test_dn_not_allowed(void **state)
{
    (void)state;
    expect_refusal("127.0.0.1", h_dn.tls_port, pki_client2, NULL, "C=GB,O=Lab,CN=client2",
                   "tls_allowed_dn_list");
    assert_log_soon(h_dn.log, "\"C=GB,O=Lab,CN=client2\" matches no pattern");
}

static void test_missing_ca_file(void **state)
{
    (void)state;
    char empty[400];
    snprintf(empty, sizeof empty, "%s/pki-empty", dir);
    mkdir(empty, 0700);
    expect_refusal("127.0.0.1", h_sasl.tls_port, empty, NULL, "no CA certificate", empty);
}

/* no_verify=1 connects to the expired server, and says so in the log */
static void test_no_verify(void **state)
{
    (void)state;
    vb_remote *r = NULL;
    vb_error err;
    if (connect_tls("127.0.0.1", h_expired.tls_port, pki_nocert, "&no_verify=1", &r, &err) < 0)
        fail_msg("%s", err.message);
    vb_remote_free(r);
    /* what vbctl status shows of such a connection (the driver's description) */
    char text[600];
    vb_uri uri;
    snprintf(text, sizeof text, "test+tls://127.0.0.1:%d/default?pkipath=%s&no_verify=1",
             h_expired.tls_port, pki_nocert);
    assert_int_equal(vb_uri_parse(text, &uri, &err), 0);
    const vb_driver *drv = vb_driver_for_uri(&uri, &err);
    assert_non_null(drv);
    vb_cred_source creds = { .fn = answer_cb, .opaque = &asked, .types = cred_types, .ntypes = 3 };
    void *conn = NULL;
    if (drv->open(&uri, 0, &creds, &conn, &err) < 0)
        fail_msg("%s", err.message);
    vb_conn_info info;
    vb_driver_describe(drv, conn, &info);
    assert_string_equal(info.auth_type, "sasl over TLS UNVERIFIED");
    drv->close(conn);
    vb_uri_clear(&uri);
    /* a URI with no_verify from the wire is refused by name */
    assert_int_equal(vb_uri_parse("test+tls://127.0.0.1/default?no_verify=1", &uri, &err), 0);
    assert_int_equal(vb_driver_check_wire_uri(&uri, &err), -1);
    assert_contains(err.message, "no_verify");
    vb_uri_clear(&uri);
    assert_int_equal(vb_uri_parse("test+tls://127.0.0.1/default?pkipath=/etc", &uri, &err), 0);
    assert_int_equal(vb_driver_check_wire_uri(&uri, &err), -1);
    assert_contains(err.message, "pkipath");
    vb_uri_clear(&uri);
}

/* vbhostd, detached as it starts by default, refuses to start on a key that
 * is not the certificate's, or on a missing cert_file, and says which files
 * (the parent that waits for the daemon's start prints the daemon's words). */
static void expect_start_refused(const char *name, const char *tls_lines, const char *want)
{
    char conf[500], text[4000], *out = NULL;
    snprintf(conf, sizeof conf, "%s/%s.conf", dir, name);
    snprintf(text, sizeof text, "listen_tls = \"127.0.0.1:%d\"\nstate_dir = \"%s/%s-state\"\n%s%s",
             vb_ts_free_tcp_port(), dir, name, common, tls_lines);
    assert_int_equal(vb_ts_write_file(conf, text, 0600), 0);
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf, NULL };
    int status = vb_ts_run(argv, NULL, NULL, &out, vb_ts_scaled_ms(10000));
    assert_non_null(out);
    assert_int_not_equal(status, 0);
    assert_contains(out, want);
    assert_null(strstr(out, "PRIVATE KEY")); /* the key itself never shows */
    free(out);
}

static void test_server_key_mismatch(void **state)
{
    (void)state;
    char lines[1500], want[900];
    snprintf(lines, sizeof lines, "cert_file = \"%s\"\nkey_file = \"%s\"\nca_file = \"%s\"\n",
             server.cert, client1.key, ca.cert);
    snprintf(want, sizeof want, "key_file %s does not belong to cert_file %s", client1.key,
             server.cert);
    expect_start_refused("mismatch", lines, want);
    snprintf(lines, sizeof lines, "cert_file = \"%s/nope.pem\"\nkey_file = \"%s\"\n", dir,
             server.key);
    snprintf(want, sizeof want, "cert_file %s/nope.pem: cannot read it", dir);
    expect_start_refused("missing", lines, want);
}

/* The same daemon detached (the default) serves TLS as in the foreground. */
static void test_detached_daemon(void **state)
{
    (void)state;
    char conf[500], pidfile[500], text[4000], *out = NULL;
    int port = vb_ts_free_tcp_port();
    snprintf(conf, sizeof conf, "%s/detached.conf", dir);
    snprintf(pidfile, sizeof pidfile, "%s/detached.pid", dir);
    snprintf(text, sizeof text,
             "listen_tls = \"127.0.0.1:%d\"\nstate_dir = \"%s/detached-state\"\n"
             "log_file = \"%s/detached.log\"\n%sauth_tls = [\"sasl\"]\ncert_file = \"%s\"\n"
             "key_file = \"%s\"\nca_file = \"%s\"\n",
             port, dir, dir, common, server.cert, server.key, ca.cert);
    assert_int_equal(vb_ts_write_file(conf, text, 0600), 0);
    assert_int_equal(vb_ts_adopt_orphans(), 0);
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf, "--pidfile", pidfile, NULL };
    assert_int_equal(vb_ts_run(argv, NULL, NULL, &out, vb_ts_scaled_ms(10000)), 0);
    free(out);
    char *pidtext = vb_ts_read_file(pidfile, NULL);
    assert_non_null(pidtext);
    pid_t pid = (pid_t)atoi(pidtext);
    free(pidtext);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_adopt(pid, "vbhostd (detached)"), 0);
    vb_remote *r = NULL;
    vb_error err;
    if (connect_tls("127.0.0.1", port, pki_good, NULL, &r, &err) < 0)
        fail_msg("%s", err.message);
    open_and_list(r);
    vb_remote_free(r);
    char log[500];
    snprintf(log, sizeof log, "%s/detached.log", dir);
    assert_int_equal(vb_ts_check_exit("vbhostd (detached)", vb_ts_stop(pid, 5000), log), 0);
}

/* A client that opens TCP and never says hello is dropped by the
 * first-frame deadline (2 s here). */
static void test_silent_client_dropped(void **state)
{
    (void)state;
    vb_error err;
    int fd = vb_net_connect_tcp("127.0.0.1", h_sasl.tls_port, 5000, &err);
    assert_true(fd >= 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, vb_ts_scaled_ms(8000)), 1);
    char c;
    assert_true(recv(fd, &c, 1, 0) <= 0); /* closed, not answered */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 1500);
    close(fd);
    assert_log_soon(h_sasl.log, "no TLS handshake within 2000 ms");
}

/* Through the broker as a person uses it: vbctl asks for the name and the
 * password, the broker keeps the TLS connection, and `vbctl status` says it
 * is TLS. */
static void test_vbctl_over_tls(void **state)
{
    (void)state;
    vb_ts_broker b;
    char uri[600], *out = NULL;
    assert_int_equal(vb_ts_broker_start(&b, dir, "broker", NULL), 0);
    snprintf(uri, sizeof uri, "test+tls://127.0.0.1:%d/default?pkipath=%s&auth=sasl",
             h_sasl.tls_port, pki_good);
    char *list[] = { VB_BUILD_DIR "/vbctl", "-c", uri, "list", NULL };
    int rc = vb_ts_broker_run(&b, list, "alice\n" PASSWORD "\n", &out, vb_ts_scaled_ms(30000));
    if (rc != 0)
        fail_msg("vbctl list exited %d: %s", rc, out ? out : "");
    assert_contains(out, "test");
    free(out);
    char *status[] = { VB_BUILD_DIR "/vbctl", "status", NULL };
    assert_int_equal(vb_ts_broker_run(&b, status, NULL, &out, vb_ts_scaled_ms(30000)), 0);
    assert_contains(out, "sasl over TLS");
    assert_null(strstr(out, PASSWORD));
    free(out);
    assert_int_equal(vb_ts_check_exit("vbrokerd", vb_ts_stop(b.pid, 5000), b.log), 0);
}

/* ---- a chain: this client -> h_hop over TLS -> h_sasl over TLS ---------------------- */

static void test_chain_over_tls(void **state)
{
    (void)state;
    vb_remote *r = NULL;
    vb_error err;
    asked = 0;
    if (connect_tls("127.0.0.1", h_hop.tls_port, pki_good, NULL, &r, &err) < 0)
        fail_msg("%s", err.message);
    char next[200];
    snprintf(next, sizeof next, "test+tls://127.0.0.1:%d/default", h_sasl.tls_port);
    int before = asked;
    if (vb_remote_open(r, next, 0, &err) < 0)
        fail_msg("%s", err.message);
    assert_true(asked > before); /* the second hop's SCRAM login was relayed to us */
    vb_domain_info *doms = NULL;
    size_t n = 0;
    assert_int_equal(vb_remote_list_domains(r, &doms, &n, &err), 0);
    assert_true(n >= 1);
    free(doms);
    vb_remote_free(r);
    /* the hop verified h_sasl's certificate with its next_hop_pkipath and
     * showed the client certificate from there */
    assert_log_soon(h_sasl.log, "client certificate C=GB,O=Lab,CN=client1");
    assert_log_soon(h_hop.log, "opened test+tls://127.0.0.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scram_over_tls),
        cmocka_unit_test(test_client_cert_optional),
        cmocka_unit_test(test_certificate_login),
        cmocka_unit_test(test_token_over_tls),
        cmocka_unit_test(test_wrong_ca),
        cmocka_unit_test(test_expired_server),
        cmocka_unit_test(test_wrong_name),
        cmocka_unit_test(test_revoked_client),
        cmocka_unit_test(test_client_cert_required),
        cmocka_unit_test(test_dn_not_allowed),
        cmocka_unit_test(test_missing_ca_file),
        cmocka_unit_test(test_no_verify),
        cmocka_unit_test(test_server_key_mismatch),
        cmocka_unit_test(test_detached_daemon),
        cmocka_unit_test(test_silent_client_dropped),
        cmocka_unit_test(test_chain_over_tls),
        cmocka_unit_test(test_vbctl_over_tls),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
