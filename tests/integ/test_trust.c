/* The relay's trust model under attack (docs/security.md §6, issue 13).
 *
 * A scripted hostile vbhostd (tests/peers/vb_fakehost.c: a real thread on a
 * real socket, speaking the real framing) asks the broker for credentials
 * where the rule forbids it: during AUTH_LIST and during SASL, on a
 * transport that did not authenticate ("none", or a server from before
 * authentication), between calls, for another service than the hop it is,
 * and — after a genuine nested XenAPI login through a real vbhostd — on the
 * same endpoint, for the XenAPI password the broker holds. Each test asserts
 * what the hostile side received (no password bytes) and, where the rule
 * was broken, that the broker dropped the connection and logged why.
 *
 * Then the genuine paths: auth.conf answers a nested XenAPI login through
 * its own [auth-xenapi-HOST] group; and text a hop supplies reaches the app
 * escaped (U+202E, U+2028). Processes started here are stopped by pid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "vb_fakehost.h"
#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define CONF_PASSWORD "authconf-Pw-31"
#define APP_PASSWORD "app-Typed-Pw-57"
#define XEN_PASSWORD "xen-Trust-pw-8"

static char *dir;
static char authfile[300], xen_authfile[300];
static vb_ts_hostd front, inner;
static vb_ts_broker broker;
static int xen_port;

/* ---- peers --------------------------------------------------------------- */

/* A vbhostd on its unix socket DIR/NAME.sock with the given auth_unix line
 * (and allowed to open remote URIs: a hop in a longer chain). */
static int start_vbhostd(vb_ts_hostd *h, const char *name, const char *auth_lines)
{
    /* the operator lets it reach the simulator and the inner vbhostd */
    return vb_ts_hostd_start(h, dir, name, 0,
                             "%sallow_remote_uris = 1\nallowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n"
                             "allowed_next_hops = [\"unix:%s/inner.sock\"]\n",
                             auth_lines, xen_port, dir);
}

/* the vbhostd in front, restarted after an impostor took its socket */
static int start_hostd(void)
{
    return start_vbhostd(&front, "h", "auth_unix = [\"peer\"]\n");
}

/* a second vbhostd behind it, for the two-hop chain. It takes SASL: the
 * hop in front may not log in to it as itself (peer), so the person logs in
 * to it through the relay like to the XenAPI host behind it (the same
 * answers, root and XEN_PASSWORD, do for both here). */
static int start_inner_hostd(void)
{
    char lines[700];
    static const char *const users[] = { "root:" XEN_PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, "TRUST.TEST", "scram-sha-256", users, NULL) < 0)
        return -1;
    snprintf(lines, sizeof lines,
             "auth_unix = [\"sasl\"]\nsasl_conf_dir = \"%s/sasl\"\nsasl_realm = \"TRUST.TEST\"\n", dir);
    return start_vbhostd(&inner, "inner", lines);
}

static int start_xen_sim(void)
{
    xen_port = vb_ts_free_tcp_port();
    return vb_ts_xensim_start(dir, xen_port, "root:" XEN_PASSWORD "\n") > 0 ? 0 : -1;
}

static int start_broker(void)
{
    if (vb_ts_broker_start(&broker, dir, "broker", NULL) < 0)
        return -1;
    vb_ts_broker_use(&broker);
    return 0;
}

/* An auth.conf for the OUTER hops (vbhostd at 127.0.0.1 and on unix
 * sockets, plus catch-all -default groups): none of it may ever reach a
 * server that has not authenticated, nor a question for another service. */
static int write_authfiles(void)
{
    snprintf(authfile, sizeof authfile, "%s/auth.conf", dir);
    snprintf(xen_authfile, sizeof xen_authfile, "%s/xen-auth.conf", dir);
    return vb_ts_write_file(authfile,
                            "[credentials-outer]\nauthname=alice\npassword=" CONF_PASSWORD "\n"
                            "[auth-vbhostd-127.0.0.1]\ncredentials=outer\n"
                            "[auth-vbhostd-localhost]\ncredentials=outer\n"
                            "[auth-vbhostd-default]\ncredentials=outer\n"
                            "[auth-xenapi-default]\ncredentials=outer\n",
                            0600) == 0 &&
                   vb_ts_write_file(xen_authfile,
                                    "[credentials-xen]\nauthname=root\npassword=" XEN_PASSWORD "\n"
                                    "[auth-xenapi-127.0.0.1]\ncredentials=xen\n",
                                    0600) == 0
               ? 0
               : -1;
}

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(CONF_PASSWORD);
    vb_ts_note_secret(APP_PASSWORD);
    vb_ts_note_secret(XEN_PASSWORD);
    dir = vb_ts_tmpdir("trust");
    if (!dir || write_authfiles() < 0 || start_xen_sim() < 0 || start_hostd() < 0 ||
        start_inner_hostd() < 0 || start_broker() < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

/* ---- the app ---------------------------------------------------------------- */

typedef struct app {
    const char *password;       /* what the person types; NULL: APP_PASSWORD */
    int calls;
    char service[1024];
    char prompts[1024];
    char hops[1024];
    char kind[128], target_host[128];
    size_t nhops, nverified;
} app;

static int app_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    app *a = data;
    a->calls++;
    snprintf(a->service, sizeof a->service, "%s", req->service ? req->service : "");
    a->hops[0] = a->prompts[0] = '\0';
    snprintf(a->kind, sizeof a->kind, "%s", req->kind ? req->kind : "");
    snprintf(a->target_host, sizeof a->target_host, "%s", req->target_host ? req->target_host : "");
    a->nhops = req->nhops;
    a->nverified = req->nverified;
    for (size_t i = 0; i < req->nhops; i++)
        snprintf(a->hops + strlen(a->hops), sizeof a->hops - strlen(a->hops), "%s|",
                 req->hops[i]);
    for (unsigned i = 0; i < n; i++) {
        snprintf(a->prompts + strlen(a->prompts), sizeof a->prompts - strlen(a->prompts), "%s|",
                 creds[i].prompt ? creds[i].prompt : "");
        const char *v = creds[i].type == VB_CRED_AUTHNAME     ? "root"
                        : creds[i].type == VB_CRED_PASSPHRASE ? (a->password ? a->password
                                                                             : APP_PASSWORD)
                                                              : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

static const int types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

/* Open uri (with the app callback when a is not NULL; else as a script,
 * `vbctl --non-interactive`) and list domains. */
static int open_list(const char *uri, app *a, vb_error *err)
{
    vb_auth auth = { types, 2, app_cb, a };
    return vb_ts_open_list(uri, a ? &auth : NULL, NULL, err);
}

static void forget_everything(void)
{
    vb_logout_result *res;
    size_t n;
    vb_error err;
    assert_int_equal(vb_logout(NULL, &res, &n, &err), 0);
    vb_logout_results_free(res, n);
}

/* ---- assertions ------------------------------------------------------------ */

/* The hostile server got nothing: no password of any source. */
static void assert_got_nothing(vb_fakehost *f)
{
    if (vb_fakehost_received(f, CONF_PASSWORD))
        fail_msg("the hostile server received the auth.conf password");
    if (vb_fakehost_received(f, APP_PASSWORD))
        fail_msg("the hostile server received the password the app typed");
    if (vb_fakehost_received(f, XEN_PASSWORD))
        fail_msg("the hostile server received the cached XenAPI password");
    assert_int_equal(vb_fakehost_answered_ok(f), 0);
}

/* ... and the broker dropped it, saying why in its log. */
static void assert_dropped(vb_fakehost *f, int log_before, const char *why)
{
    if (vb_fakehost_wait_dropped(f, vb_ts_scaled_ms(5000)) < 0)
        fail_msg("the broker kept talking to a server that broke the relay rule");
    if (vb_ts_wait_for_log(broker.log, "protocol violation", log_before + 1,
                           vb_ts_scaled_ms(5000)) < 0)
        fail_msg("no 'protocol violation' line in the broker log");
    char *log = vb_ts_read_file(broker.log, NULL);
    assert_non_null(log);
    if (!strstr(log, why))
        fail_msg("the broker log does not say '%s'", why);
    free(log);
}

static int violations(void)
{
    return vb_ts_count_in_file(broker.log, "protocol violation");
}

static char *tcp_uri(int port, const char *params)
{
    static char buf[900];
    snprintf(buf, sizeof buf, "test+tcp://127.0.0.1:%d/default?authfile=%s%s%s", port, authfile,
             params ? "&" : "", params ? params : "");
    return buf;
}

static char *unix_uri(const char *sock, const char *params)
{
    static char buf[900];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s&authfile=%s%s%s", sock, authfile,
             params ? "&" : "", params ? params : "");
    return buf;
}

/* ---- 1. a question before anyone proved anything ------------------------------ */

/* Open uri against the hostile server f (with the app callback, or as a
 * script), which asks where the rule forbids it: the open fails, nobody
 * was asked, f got nothing, and the broker dropped it saying `why`. */
static void attack(vb_fakehost *f, const char *uri, int with_app, const char *why)
{
    assert_non_null(f);
    int before = violations();
    app a = { 0 };
    vb_error err;
    assert_int_equal(open_list(uri, with_app ? &a : NULL, &err), -1);
    print_message("asked %s: %s\n", why, err.message);
    assert_int_equal(vb_fakehost_asked(f), 1);
    assert_got_nothing(f);
    assert_int_equal(a.calls, 0); /* nobody was asked for it either */
    assert_dropped(f, before, why);
    vb_fakehost_stop(f);
}

static void tcp_attack(enum vb_fakehost_when when, const char *params, int with_app,
                       const char *why)
{
    vb_fakehost_script s = { when, "sasl", NULL, "vbhostd on 127.0.0.1", NULL, NULL, NULL, 0, 0 };
    int port = vb_ts_free_tcp_port();
    attack(vb_fakehost_start_tcp(port, &s), tcp_uri(port, params), with_app, why);
}

static void test_question_during_auth_list_gets_nothing(void **state)
{
    (void)state;
    tcp_attack(VB_FAKEHOST_ASK_ON_AUTH_LIST, NULL, 1, "during AUTH_LIST");
    tcp_attack(VB_FAKEHOST_ASK_ON_AUTH_LIST, "auth=sasl.DIGEST-MD5", 1, "during AUTH_LIST");
    /* vbctl --non-interactive: auth.conf alone must not answer either */
    tcp_attack(VB_FAKEHOST_ASK_ON_AUTH_LIST, "auth=sasl.DIGEST-MD5", 0, "during AUTH_LIST");
}

static void test_question_during_sasl_gets_nothing(void **state)
{
    (void)state;
    tcp_attack(VB_FAKEHOST_ASK_ON_SASL_INIT, "auth=sasl.DIGEST-MD5", 1, "during AUTH_SASL_INIT");
}

/* ---- 2. a question on a transport that did not authenticate ------------------------ */

static void unix_attack(const char *auth, uint32_t conn_id_offset, const char *why)
{
    char sock[300];
    snprintf(sock, sizeof sock, "%s/fake-%s-%u.sock", dir, auth ? auth : "v1", conn_id_offset);
    vb_fakehost_script s = { VB_FAKEHOST_ASK_ON_OPEN, auth, NULL, "vbhostd on fake", NULL, NULL,
                             NULL, 0, conn_id_offset };
    attack(vb_fakehost_start_unix(sock, &s), unix_uri(sock, NULL), 1, why);
}

static void test_question_on_unauthenticated_transport_gets_nothing(void **state)
{
    (void)state;
    unix_attack("none", 0, "did not authenticate");
    unix_attack(NULL, 0, "did not authenticate"); /* a server from before authentication */
}

/* an authenticated server asks during OPEN, but for another connection id
 * on the shared transport than the call's */
static void test_question_for_another_connection_gets_nothing(void **state)
{
    (void)state;
    unix_attack("peer", 1, "for connection id");
}

/* vbhostd's side of the rule: it never relays a question to a client that
 * did not authenticate (a listener with auth none), so nobody is asked */
static void test_vbhostd_does_not_relay_to_unauthenticated_client(void **state)
{
    (void)state;
    char uri[900];
    vb_ts_hostd open_h;
    assert_int_equal(start_vbhostd(&open_h, "open", "auth_unix = [\"none\"]\n"), 0);
    const char *sock = open_h.sock, *log = open_h.log;
    pid_t pid = open_h.pid;
    snprintf(uri, sizeof uri,
             "xenapi+unix:///?socket=%s&name=xenapi%%3A%%2F%%2Froot%%40127.0.0.1%%3A%d%%2F%%3F"
             "transport%%3Dhttp",
             sock, xen_port);
    app a = { .password = XEN_PASSWORD };
    vb_error err;
    assert_int_equal(open_list(uri, &a, &err), -1);
    print_message("nested login behind an auth=none listener: %s\n", err.message);
    assert_int_equal(a.calls, 0);
    assert_int_equal(vb_ts_wait_for_log(log, "not relaying a credential request", 1,
                                        vb_ts_scaled_ms(5000)),
                     0);
    assert_true(vb_ts_stop(pid, vb_ts_scaled_ms(5000)) >= 0);
}

/* ---- 3. a question between calls ------------------------------------------------- */

static void test_question_between_calls_gets_nothing(void **state)
{
    (void)state;
    char sock[300];
    snprintf(sock, sizeof sock, "%s/fake-between.sock", dir);
    vb_fakehost_script s = { VB_FAKEHOST_ASK_AFTER_OPEN, "peer", NULL, "vbhostd on fake", NULL,
                             NULL, NULL, 0, 0 };
    vb_fakehost *f = vb_fakehost_start_unix(sock, &s);
    assert_non_null(f);
    int before = violations();
    app a = { 0 };
    vb_auth auth = { types, 2, app_cb, &a };
    vb_error err;
    vb_conn *c = vb_open_auth(unix_uri(sock, NULL), &auth, 0, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    /* the question is on its way before the next call starts */
    assert_int_equal(vb_fakehost_wait_asked(f, vb_ts_scaled_ms(5000)), 0);
    vb_domain *doms;
    size_t n;
    assert_int_equal(vb_list_domains(c, &doms, &n, &err), -1);
    print_message("CRED_FILL between calls: %s\n", err.message);
    vb_close(c);
    assert_got_nothing(f);
    assert_int_equal(a.calls, 0);
    assert_dropped(f, before, "between calls");
    vb_fakehost_stop(f);
}

/* ---- 4. a question for another service: never the outer host's entry ------------------ */

static void test_question_for_another_service_gets_no_outer_entry(void **state)
{
    (void)state;
    char sock[300];
    snprintf(sock, sizeof sock, "%s/fake-other.sock", dir);
    /* an authenticated hop (peer) asks during OPEN, as a nested login would,
     * for a XenAPI host that auth.conf has no group of its own for */
    vb_fakehost_script s = { VB_FAKEHOST_ASK_ON_OPEN, "peer", NULL, "xenapi://10.0.0.5:443/",
                             "xenapi", "10.0.0.5", "root", 443, 0 };
    vb_fakehost *f = vb_fakehost_start_unix(sock, &s);
    assert_non_null(f);
    vb_error err;
    assert_int_equal(open_list(unix_uri(sock, NULL), NULL, &err), -1);
    print_message("nested question for another host: %s\n", err.message);
    assert_int_equal(vb_fakehost_wait_answered(f, vb_ts_scaled_ms(5000)), 0);
    /* answered, but with an error: neither [auth-vbhostd-localhost] (the
     * outer hop's) nor [auth-xenapi-default] answers a relayed question */
    assert_int_equal(vb_fakehost_answered_error(f), 1);
    assert_got_nothing(f);
    vb_fakehost_stop(f);
}

/* ---- 5. after a genuine nested login, an impostor on the same endpoint ------------------ */

static char *xen_uri(const char *params)
{
    static char buf[1000];
    snprintf(buf, sizeof buf,
             "xenapi+unix:///?socket=%s&name=xenapi%%3A%%2F%%2Froot%%40127.0.0.1%%3A%d%%2F%%3F"
             "transport%%3Dhttp%s%s",
             front.sock, xen_port, params ? "&" : "", params ? params : "");
    return buf;
}

static void run_impostor(const char *auth, enum vb_fakehost_when when, const char *why)
{
    char service[100];
    snprintf(service, sizeof service, "xenapi://127.0.0.1:%d/", xen_port);
    vb_fakehost_script s = { when, auth, NULL, service, "xenapi", "127.0.0.1", "root",
                             (unsigned)xen_port, 0 };
    /* as a script: only the cache could answer */
    attack(vb_fakehost_start_unix(front.sock, &s), xen_uri(NULL), 0, why);
}

static void test_impostor_after_nested_login_gets_no_cached_password(void **state)
{
    (void)state;
    forget_everything();
    app a = { .password = XEN_PASSWORD };
    vb_error err;
    if (open_list(xen_uri(NULL), &a, &err) < 0)
        fail_msg("genuine nested login: %s", err.message);
    assert_int_equal(a.calls, 1);
    /* the broker holds the XenAPI password now: a second run asks nothing */
    assert_int_equal(open_list(xen_uri(NULL), &a, &err), 0);
    assert_int_equal(a.calls, 1);
    /* the real vbhostd goes; an impostor takes its socket and asks */
    assert_true(vb_ts_stop(front.pid, vb_ts_scaled_ms(5000)) >= 0);
    run_impostor("sasl", VB_FAKEHOST_ASK_ON_AUTH_LIST, "during AUTH_LIST");
    run_impostor("none", VB_FAKEHOST_ASK_ON_OPEN, "did not authenticate");
    assert_int_equal(start_hostd(), 0);
}

/* ---- the genuine paths ------------------------------------------------------------------ */

/* auth.conf answers the XenAPI hop by its own [auth-xenapi-127.0.0.1]. */
static void test_authconf_answers_nested_xenapi_by_its_own_entry(void **state)
{
    (void)state;
    forget_everything();
    char params[400];
    snprintf(params, sizeof params, "authfile=%s", xen_authfile);
    app a = { 0 };
    vb_error err;
    if (open_list(xen_uri(params), &a, &err) < 0)
        fail_msg("nested XenAPI login from auth.conf: %s", err.message);
    assert_int_equal(a.calls, 0);
}

/* broker → vbhostd → vbhostd → XenAPI: each login asked once (the inner
 * vbhostd's, then the XenAPI host's), and a second run is silent (the cache
 * answers through the same verified first hop); the app is told which hop
 * the broker verified. */
static void test_two_hop_nested_login_asks_once(void **state)
{
    (void)state;
    forget_everything();
    char uri[1600];
    snprintf(uri, sizeof uri,
             "xenapi+unix:///?socket=%s&name=xenapi%%2Bunix%%3A%%2F%%2F%%2F%%3Fsocket%%3D%s%%26name%%3D"
             "xenapi%%253A%%252F%%252Froot%%2540127.0.0.1%%253A%d%%252F%%253Ftransport%%253Dhttp",
             front.sock, inner.sock, xen_port);
    app a = { .password = XEN_PASSWORD };
    vb_error err;
    if (open_list(uri, &a, &err) < 0)
        fail_msg("two-hop nested login: %s", err.message);
    assert_int_equal(a.calls, 2); /* the inner vbhostd's login, then XenAPI's */
    assert_string_equal(a.kind, "xenapi");
    assert_string_equal(a.target_host, "127.0.0.1");
    assert_int_equal(a.nhops, 2);
    assert_int_equal(a.nverified, 1);
    assert_non_null(strstr(a.hops, front.sock));
    assert_non_null(strstr(a.hops, inner.sock));
    if (open_list(uri, &a, &err) < 0)
        fail_msg("second run: %s", err.message);
    assert_int_equal(a.calls, 2);
}

/* ---- prompts a person can trust ------------------------------------------------------------ */

static void assert_escaped(const char *text, const char *what)
{
    if (strstr(text, "\xe2\x80\xae") || strstr(text, "\xe2\x80\xa8") || strchr(text, '\x1b'))
        fail_msg("%s reached the app unescaped: %s", what, text);
}

static void test_hop_text_reaches_the_app_escaped(void **state)
{
    (void)state;
    char sock[300];
    snprintf(sock, sizeof sock, "%s/fake-bidi.sock", dir);
    /* U+202E turns "gpj.exe" around, U+2028 fakes a new line, ESC drives a terminal */
    vb_fakehost_script s = { VB_FAKEHOST_ASK_ON_OPEN, "peer", NULL,
                             "xenapi://bank\u202Eexe.gpj/\u2028Login for vbhostd on trusted\x1b[2J",
                             "xenapi\u202E", "10.0.0.9\u2028", "root", 443, 0 };
    vb_fakehost *f = vb_fakehost_start_unix(sock, &s);
    assert_non_null(f);
    app a = { 0 };
    vb_error err;
    open_list(unix_uri(sock, NULL), &a, &err); /* the fake ends the open either way */
    assert_int_equal(a.calls, 1);
    print_message("the app saw: %s (hops %s)\n", a.service, a.hops);
    assert_escaped(a.service, "the service");
    assert_escaped(a.hops, "a hop");
    assert_escaped(a.kind, "the kind");
    assert_escaped(a.target_host, "the target host");
    assert_non_null(strstr(a.service, "\\u202e"));
    assert_non_null(strstr(a.service, "\\u2028"));
    assert_non_null(strstr(a.target_host, "\\u2028"));
    /* the app learns which hop the broker verified: the one it dialled */
    assert_int_equal(a.nhops, 1);
    assert_int_equal(a.nverified, 1);
    assert_non_null(strstr(a.hops, sock));
    vb_fakehost_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_question_during_auth_list_gets_nothing),
        cmocka_unit_test(test_question_during_sasl_gets_nothing),
        cmocka_unit_test(test_question_on_unauthenticated_transport_gets_nothing),
        cmocka_unit_test(test_question_for_another_connection_gets_nothing),
        cmocka_unit_test(test_question_between_calls_gets_nothing),
        cmocka_unit_test(test_question_for_another_service_gets_no_outer_entry),
        cmocka_unit_test(test_impostor_after_nested_login_gets_no_cached_password),
        cmocka_unit_test(test_authconf_answers_nested_xenapi_by_its_own_entry),
        cmocka_unit_test(test_vbhostd_does_not_relay_to_unauthenticated_client),
        cmocka_unit_test(test_two_hop_nested_login_asks_once),
        cmocka_unit_test(test_hop_text_reaches_the_app_escaped),
    };
    return cmocka_run_group_tests_name("trust", tests, group_setup, group_teardown);
}
