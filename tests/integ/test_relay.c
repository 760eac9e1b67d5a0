/* The nested login: a driver deep in the chain needs credentials, and the
 * question travels back up to the person at the top.
 *   app → libvbroker → vbrokerd → vbhostd A (peer) → vbhostd B (SASL) → test driver
 * vbhostd A's remote driver logs in to B; B's SASL questions reach A as its
 * own login's questions, A relays them to the broker as CRED_FILL callbacks,
 * the broker asks the app's callback with the chain-qualified service. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "inner-Pw-77"

static char *dir;
static vb_ts_hostd ha, hb;
static vb_ts_broker broker;
static int xen_port;
#define XEN_PASSWORD "xen-Root-pw"

static int start_hostd(vb_ts_hostd *h, const char *name, int tcp, const char *extra)
{
    return vb_ts_hostd_start_sasl(h, dir, name, tcp, REALM, "%s", extra);
}

/* A: peer on its unix socket, SASL (with a security layer) on TCP; it may
 * reach B and the XenAPI simulator, nothing else */
static int start_a(void)
{
    char extra[1000];
    snprintf(extra, sizeof extra,
             "auth_unix = [\"peer\"]\nallow_remote_uris = 1\n"
             "auth_tcp = [\"sasl\"]\nallowed_next_hops = [\"unix:%s\"]\n"
             "allowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n",
             hb.sock, xen_port);
    return start_hostd(&ha, "a", 1, extra);
}

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(XEN_PASSWORD);
    dir = vb_ts_tmpdir("relay");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256 digest-md5", users, NULL) < 0)
        return -1;
    /* the XenAPI simulator's port first: both daemons' allow-lists name it */
    xen_port = vb_ts_free_tcp_port();
    char b_extra[200];
    snprintf(b_extra, sizeof b_extra, "auth_unix = [\"sasl\"]\nallowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n",
             xen_port);
    if (start_hostd(&hb, "b", 0, b_extra) < 0 || start_a() < 0)
        return -1;
    /* a XenAPI host (the simulator) behind vbhostd A */
    if (vb_ts_xensim_start(dir, xen_port, "root:" XEN_PASSWORD "\n") < 0 ||
        vb_ts_broker_start(&broker, dir, "broker", NULL) < 0)
        return -1;
    vb_ts_broker_use(&broker);
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

typedef struct form {
    const char *user;
    const char *passwords[3];
    int calls, retries, max_hops;
    char service[512];
    char first_hop[256];
} form;

static int form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    form *f = data;
    const char *pw = f->passwords[f->calls < 3 ? f->calls : 2];
    f->calls++;
    f->retries += req->retry;
    snprintf(f->service, sizeof f->service, "%s", req->service);
    if ((int)req->nhops > f->max_hops)
        f->max_hops = (int)req->nhops;
    if (req->nhops)
        snprintf(f->first_hop, sizeof f->first_hop, "%s", req->hops[0]);
    for (unsigned i = 0; i < n; i++) {
        const char *v = creds[i].type == VB_CRED_AUTHNAME ? f->user
                        : creds[i].type == VB_CRED_PASSPHRASE ? pw : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

static const int types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

/* The outer URI names A; its name= (percent-encoded) names B with an auth choice. */
static char *chain_uri(const char *inner_auth)
{
    static char buf[1200];
    snprintf(buf, sizeof buf,
             "test+unix:///default?socket=%s&name=test%%2Bunix%%3A%%2F%%2F%%2Fdefault%%3Fsocket%%3D%s"
             "%%26auth%%3D%s",
             ha.sock, hb.sock, inner_auth);
    return buf;
}

static int open_list(const char *uri, form *f, vb_error *err)
{
    vb_auth auth = { types, 2, f ? form_cb : NULL, f };
    return vb_ts_open_list(uri, &auth, NULL, err);
}

static void test_nested_prompt_reaches_the_app(void **state)
{
    (void)state;
    form f = { "alice", { PASSWORD, PASSWORD, PASSWORD }, 0, 0, 0, "", "" };
    vb_error err;
    if (open_list(chain_uri("sasl.SCRAM-SHA-256"), &f, &err) < 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 1);
    /* the service names the chain: the hop the broker used, then B */
    assert_non_null(strstr(f.service, ha.sock));
    assert_non_null(strstr(f.service, hb.sock));
    assert_non_null(strstr(f.service, "\u2192"));
    assert_true(f.max_hops >= 1);
    assert_non_null(strstr(f.first_hop, ha.sock));
    /* vbhostd A logged the relay; B saw alice log in */
    char *alog = vb_ts_read_file(ha.log, NULL);
    assert_non_null(strstr(alog, "relaying a credential request"));
    assert_null(strstr(alog, PASSWORD));
    free(alog);
    /* the second run in the same session asks nothing */
    assert_int_equal(open_list(chain_uri("sasl.SCRAM-SHA-256"), &f, &err), 0);
    assert_int_equal(f.calls, 1);
}

/* logout --all forgets the typed passwords too: the next login asks again */
static void forget_everything(void)
{
    vb_logout_result *res;
    size_t n;
    vb_error err;
    assert_int_equal(vb_logout(NULL, &res, &n, &err), 0);
    vb_logout_results_free(res, n);
}

static void test_wrong_then_right_through_the_chain(void **state)
{
    (void)state;
    forget_everything();
    form f = { "alice", { "wrong-1", PASSWORD, PASSWORD }, 0, 0, 0, "", "" };
    vb_error err;
    if (open_list(chain_uri("sasl.DIGEST-MD5"), &f, &err) < 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 2);
    assert_int_equal(f.retries, 1);
}

static void test_script_without_callback_gets_cred_required(void **state)
{
    (void)state;
    forget_everything();
    vb_error err;
    assert_int_equal(open_list(chain_uri("sasl"), NULL, &err), -1);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_non_null(strstr(err.message, hb.sock)); /* names the inner service */
}

/* vbhostd A opens the XenAPI host itself: xenapi over the unix transport,
 * name= the XenAPI URI (plain HTTP to the simulator on loopback). */
static char *xen_uri(void)
{
    static char buf[800];
    snprintf(buf, sizeof buf,
             "xenapi+unix:///?socket=%s&name=xenapi%%3A%%2F%%2Froot%%40127.0.0.1%%3A%d%%2F%%3Ftransport%%3Dhttp",
             ha.sock, xen_port);
    return buf;
}

static void test_nested_xenapi_login_relayed_to_the_app(void **state)
{
    (void)state;
    forget_everything();
    form f = { "root", { XEN_PASSWORD, XEN_PASSWORD, XEN_PASSWORD }, 0, 0, 0, "", "" };
    vb_error err;
    if (open_list(xen_uri(), &f, &err) < 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 1);
    char want[64];
    snprintf(want, sizeof want, "xenapi://127.0.0.1:%d/", xen_port);
    assert_non_null(strstr(f.service, want));
    assert_non_null(strstr(f.service, ha.sock));
    assert_non_null(strstr(f.first_hop, ha.sock));
    /* the second run in the same session asks nothing */
    assert_int_equal(open_list(xen_uri(), &f, &err), 0);
    assert_int_equal(f.calls, 1);
}

static void test_nested_xenapi_wrong_then_right(void **state)
{
    (void)state;
    forget_everything();
    form f = { "root", { "nope", XEN_PASSWORD, XEN_PASSWORD }, 0, 0, 0, "", "" };
    vb_error err;
    if (open_list(xen_uri(), &f, &err) < 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 2);
    assert_int_equal(f.retries, 1);
}

static void test_nested_xenapi_script_gets_cred_required(void **state)
{
    (void)state;
    forget_everything();
    vb_error err;
    assert_int_equal(open_list(xen_uri(), NULL, &err), -1);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_non_null(strstr(err.message, "xenapi://"));
}

/* Answers by who asks: the XenAPI host wants root, vbhostd B wants alice. */
typedef struct chain_form {
    int calls, xen_calls;
    char last_service[600];
} chain_form;

static int chain_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    chain_form *f = data;
    int xen = strstr(req->service, "xenapi://") != NULL;
    f->calls++;
    f->xen_calls += xen;
    snprintf(f->last_service, sizeof f->last_service, "%s", req->service);
    for (unsigned i = 0; i < n; i++) {
        const char *v = creds[i].type == VB_CRED_AUTHNAME     ? (xen ? "root" : "alice")
                        : creds[i].type == VB_CRED_PASSPHRASE ? (xen ? XEN_PASSWORD : PASSWORD)
                                                              : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

/* broker → vbhostd A → vbhostd B (SASL) → XenAPI: two nested logins, both
 * asked at the top, the XenAPI one with both hops in its service name. */
static void test_two_daemon_chain_to_xenapi(void **state)
{
    (void)state;
    forget_everything();
    char inner[600], uri[1600];
    /* B opens the XenAPI URI; A opens "xenapi over unix to B"; the broker opens A */
    snprintf(inner, sizeof inner,
             "xenapi%%2Bunix%%3A%%2F%%2F%%2F%%3Fsocket%%3D%s%%26name%%3D"
             "xenapi%%253A%%252F%%252Froot%%2540127.0.0.1%%253A%d%%252F%%253Ftransport%%253Dhttp",
             hb.sock, xen_port);
    snprintf(uri, sizeof uri, "xenapi+unix:///?socket=%s&name=%s", ha.sock, inner);
    chain_form f = { 0, 0, "" };
    vb_auth auth = { types, 2, chain_cb, &f };
    vb_error err;
    vb_conn *c = vb_open_auth(uri, &auth, 0, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.xen_calls, 1);
    assert_true(f.calls >= 2); /* B's SASL login, then the XenAPI login */
    /* the XenAPI question names both daemons it crossed */
    assert_non_null(strstr(f.last_service, ha.sock));
    assert_non_null(strstr(f.last_service, hb.sock));
    vb_domain *doms;
    size_t n;
    assert_int_equal(vb_list_domains(c, &doms, &n, &err), 0);
    assert_true(n >= 3);
    vb_domains_free(doms, n);
    vb_close(c);
}

/* The same nested XenAPI login with the first hop over TCP (SASL with a
 * security layer): two questions reach the top, vbhostd's and XenAPI's. */
static void test_nested_xenapi_over_tcp(void **state)
{
    (void)state;
    forget_everything();
    char uri[800];
    snprintf(uri, sizeof uri,
             "xenapi+tcp://127.0.0.1:%d/?auth=sasl.DIGEST-MD5&name=xenapi%%3A%%2F%%2Froot%%40127.0.0.1"
             "%%3A%d%%2F%%3Ftransport%%3Dhttp",
             ha.port, xen_port);
    chain_form f = { 0, 0, "" };
    vb_auth auth = { types, 2, chain_cb, &f };
    vb_error err;
    vb_conn *c = vb_open_auth(uri, &auth, 0, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 2);
    assert_int_equal(f.xen_calls, 1);
    char hop[64];
    snprintf(hop, sizeof hop, "127.0.0.1:%d", ha.port);
    assert_non_null(strstr(f.last_service, hop));
    vb_domain *doms;
    size_t n;
    assert_int_equal(vb_list_domains(c, &doms, &n, &err), 0);
    vb_domains_free(doms, n);
    vb_close(c);
}

/* Local use: xenapi:// opened in the broker itself, same driver, same source. */
static void test_xenapi_opened_in_the_broker(void **state)
{
    (void)state;
    forget_everything();
    char uri[200];
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?transport=http", xen_port);
    form f = { "root", { XEN_PASSWORD, XEN_PASSWORD, XEN_PASSWORD }, 0, 0, 0, "", "" };
    vb_error err;
    if (open_list(uri, &f, &err) < 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.max_hops, 0); /* nobody relayed it */
    assert_non_null(strstr(f.service, "xenapi://127.0.0.1:"));
    assert_int_equal(open_list(uri, &f, &err), 0);
    assert_int_equal(f.calls, 1); /* kept by the broker */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_prompt_reaches_the_app),
        cmocka_unit_test(test_wrong_then_right_through_the_chain),
        cmocka_unit_test(test_script_without_callback_gets_cred_required),
        cmocka_unit_test(test_nested_xenapi_login_relayed_to_the_app),
        cmocka_unit_test(test_nested_xenapi_wrong_then_right),
        cmocka_unit_test(test_nested_xenapi_script_gets_cred_required),
        cmocka_unit_test(test_two_daemon_chain_to_xenapi),
        cmocka_unit_test(test_nested_xenapi_over_tcp),
        cmocka_unit_test(test_xenapi_opened_in_the_broker),
    };
    return cmocka_run_group_tests_name("relay", tests, group_setup, group_teardown);
}
