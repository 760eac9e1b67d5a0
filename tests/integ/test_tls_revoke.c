/* Revocation and TLS session resumption (issue 16's gaps): a certificate
 * revoked after a TLS session was made must not come back through that
 * session's ticket.
 *
 *  - server side: vbhostd re-reads crl_file on SIGHUP; a client whose
 *    certificate it now revokes is refused although it offers a ticket from
 *    before (the resumed session's certificate is verified again), with the
 *    CRL named in the log; a client still in good standing resumes;
 *  - client side: a client whose CRL (pkipath's cacrl.pem) now revokes the
 *    server's certificate does not resume the session it holds for that
 *    server: it refuses the server, naming its CRL file;
 *  - a restarted vbhostd resumes no ticket of its earlier run.
 *
 * A real vbhostd (auth_tls none: the client certificate is the login) on
 * 127.0.0.1, a throwaway CA; the client is this process (its TLS sessions
 * are kept in this process's memory, vb_tls_resume.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_remote.h"
#include "vb_testsupport.h"
#include "vb_tls_resume.h"

#define DAY 86400L
#define SERVER_SERIAL 60
#define CLIENT1_SERIAL 61
#define CLIENT2_SERIAL 62

static char *dir;
static vb_ts_pki ca, server, client1, client2;
static char pki1[400], pki2[400]; /* pkipaths with client1's / client2's certificate */
static char crl[500];             /* the server's crl_file */
static vb_ts_hostd h;

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("tlsrevoke");
    snprintf(crl, sizeof crl, "%s/crl.pem", dir);
    if (!dir || vb_ts_pki_ca(dir, "ca", "/C=GB/O=Lab/CN=Lab CA", &ca) < 0 ||
        vb_ts_pki_issue(dir, "server", &ca, "/C=GB/O=Lab/CN=vbhostd", "IP:127.0.0.1", -3600,
                        30 * DAY, SERVER_SERIAL, &server) < 0 ||
        vb_ts_pki_issue(dir, "client1", &ca, "/C=GB/O=Lab/CN=client1", NULL, -3600, 30 * DAY,
                        CLIENT1_SERIAL, &client1) < 0 ||
        vb_ts_pki_issue(dir, "client2", &ca, "/C=GB/O=Lab/CN=client2", NULL, -3600, 30 * DAY,
                        CLIENT2_SERIAL, &client2) < 0 ||
        vb_ts_pki_dir(pki1, dir, "pki1", &ca, &client1) < 0 ||
        vb_ts_pki_dir(pki2, dir, "pki2", &ca, &client2) < 0 ||
        vb_ts_pki_crl(crl, &ca, NULL, 0) < 0) /* nothing revoked yet */
        return -1;
    return vb_ts_hostd_start_tls(&h, dir, "h",
                                 "auth_tls = [\"none\"]\ntls_client_cert = \"required\"\n"
                                 "cert_file = \"%s\"\nkey_file = \"%s\"\nca_file = \"%s\"\n"
                                 "crl_file = \"%s\"\n",
                                 server.cert, server.key, ca.cert, crl);
}

static int group_teardown(void **state)
{
    int dirty = h.pid > 0 && vb_ts_check_exit(h.log, vb_ts_stop(h.pid, 5000), h.log) < 0;
    vb_tls_resume_forget_all();
    vb_ts_group_teardown(state);
    return dirty ? -1 : 0;
}

/* One connection with pkipath pki, and an OPEN on it: 0 when the server let
 * it in (*resumed: whether its TLS session was resumed), else -1 with err. */
static int connect_open(const char *pki, int *resumed, vb_error *err)
{
    char text[700];
    snprintf(text, sizeof text, "test+tls://127.0.0.1:%d/default?pkipath=%s&auth=none",
             h.tls_port, pki);
    vb_uri uri;
    vb_remote_opts opts = { .timeout_ms = vb_ts_scaled_ms(10000) };
    vb_remote *r = NULL;
    *resumed = 0;
    if (vb_uri_parse(text, &uri, err) < 0)
        return -1;
    int rc = vb_remote_connect(&uri, &opts, &r, err);
    vb_uri_clear(&uri);
    if (rc == 0) {
        *resumed = vb_tls_resumed(vb_tls_ssl(vb_remote_tls(r)));
        rc = vb_remote_open(r, "test:///default", 0, err);
        vb_remote_free(r); /* its TLS session stays in this process for the next one */
    }
    return rc;
}

static void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("expected \"%s\" in: %s", part, text);
}

/* vbhostd re-reads crl_file on SIGHUP (as `systemctl reload vbhostd` sends). */
static void revoke_at_server(const long *serials, size_t n)
{
    int reloads = vb_ts_count_in_file(h.log, "crl_file re-read");
    assert_int_equal(vb_ts_pki_crl(crl, &ca, serials, n), 0);
    assert_int_equal(kill(h.pid, SIGHUP), 0);
    assert_int_equal(vb_ts_wait_for_log(h.log, "crl_file re-read", reloads + 1,
                                        vb_ts_scaled_ms(5000)), 0);
}

static void test_server_revocation_reaches_resumed_sessions(void **state)
{
    (void)state;
    vb_error err;
    int resumed;
    vb_tls_resume_forget_all();
    /* both clients get a session (a ticket); a second connection resumes it */
    for (int i = 0; i < 2; i++) {
        if (connect_open(pki1, &resumed, &err) < 0)
            fail_msg("client1, connection %d: %s", i + 1, err.message);
        assert_int_equal(resumed, i);
        if (connect_open(pki2, &resumed, &err) < 0)
            fail_msg("client2, connection %d: %s", i + 1, err.message);
        assert_int_equal(resumed, i);
    }
    assert_int_equal(vb_tls_resume_count(), 2);

    const long serial = CLIENT1_SERIAL;
    revoke_at_server(&serial, 1);
    /* client1 offers its ticket from before the revocation: refused */
    int refusals = vb_ts_count_in_file(h.log, "is revoked (crl_file ");
    if (connect_open(pki1, &resumed, &err) == 0)
        fail_msg("the revoked client1 got in (%s)", resumed ? "its TLS session resumed"
                                                            : "full handshake");
    assert_contains(err.message, "revoked");
    assert_int_equal(vb_ts_wait_for_log(h.log, "is revoked (crl_file ", refusals + 1,
                                        vb_ts_scaled_ms(5000)), 0);
    char line[700];
    snprintf(line, sizeof line, "(C=GB,O=Lab,CN=client1) is revoked (crl_file %s)", crl);
    assert_true(vb_ts_count_in_file(h.log, line) >= 1);
    /* and again without a ticket (a full handshake) */
    vb_tls_resume_forget_all();
    assert_int_equal(connect_open(pki1, &resumed, &err), -1);
    assert_contains(err.message, "revoked");

    /* client2 is still good: its session is verified again and resumes */
    if (connect_open(pki2, &resumed, &err) < 0)
        fail_msg("client2 after the reload: %s", err.message);
    assert_false(resumed); /* forget_all above dropped its ticket: a full handshake */
    if (connect_open(pki2, &resumed, &err) < 0)
        fail_msg("client2, resumed: %s", err.message);
    assert_true(resumed);

    revoke_at_server(NULL, 0); /* the next test starts with nothing revoked */
}

/* The client's own CRL: pkipath's cacrl.pem now revokes the server's
 * certificate; the session it holds for that server is not resumed. */
static void test_client_revocation_reaches_cached_sessions(void **state)
{
    (void)state;
    vb_error err;
    int resumed;
    char client_crl[500];
    snprintf(client_crl, sizeof client_crl, "%s/cacrl.pem", pki2);
    assert_int_equal(vb_ts_pki_crl(client_crl, &ca, NULL, 0), 0);
    vb_tls_resume_forget_all();
    for (int i = 0; i < 2; i++) {
        if (connect_open(pki2, &resumed, &err) < 0)
            fail_msg("connection %d: %s", i + 1, err.message);
        assert_int_equal(resumed, i);
    }
    assert_int_equal(vb_tls_resume_count(), 1);
    const long serial = SERVER_SERIAL;
    assert_int_equal(vb_ts_pki_crl(client_crl, &ca, &serial, 1), 0);
    if (connect_open(pki2, &resumed, &err) == 0)
        fail_msg("trusted a revoked server certificate (%s)",
                 resumed ? "through its cached TLS session" : "full handshake");
    assert_contains(err.message, "the server's certificate (C=GB,O=Lab,CN=vbhostd) is revoked");
    assert_contains(err.message, client_crl);
    assert_int_equal(unlink(client_crl), 0);
}

/* A restarted vbhostd has a new ticket key: no session of its earlier run
 * resumes (each client verifies, and is verified, again). */
static void test_restart_voids_tickets(void **state)
{
    (void)state;
    vb_error err;
    int resumed;
    vb_tls_resume_forget_all();
    assert_int_equal(connect_open(pki1, &resumed, &err), 0);
    assert_int_equal(vb_tls_resume_count(), 1);
    assert_int_equal(vb_ts_check_exit(h.log, vb_ts_stop(h.pid, 5000), h.log), 0);
    assert_int_equal(vb_ts_hostd_restart(&h), 0);
    if (connect_open(pki1, &resumed, &err) < 0)
        fail_msg("after the restart: %s", err.message);
    assert_false(resumed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_revocation_reaches_resumed_sessions),
        cmocka_unit_test(test_client_revocation_reaches_cached_sessions),
        cmocka_unit_test(test_restart_voids_tickets),
    };
    return cmocka_run_group_tests_name("tls_revoke", tests, group_setup, group_teardown);
}
