/* `vbctl login` of a nested URI logs in along the whole chain, so that the
 * next script run (`--non-interactive`) asks nothing, and it leaves the first
 * hop's own login as it was.
 *   app / vbctl → libvbroker → vbrokerd → vbhostd A (token, sasl)
 *                                          → [vbhostd B (sasl)] → XenAPI simulator */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "nested-Pw-31"
#define XEN_PASSWORD "xen-Nested-pw"

static char *dir;
static vb_ts_hostd ha, hb;
static vb_ts_broker broker, nokeep;
static int xen_port;

static int start_hostd(vb_ts_hostd *h, const char *name, const char *extra)
{
    return vb_ts_hostd_start_sasl(h, dir, name, 0, REALM, "%s", extra);
}

static int start_broker(vb_ts_broker *b, const char *name, const char *secret_ttl)
{
    const char *extra[] = { "--secret-ttl", secret_ttl, NULL };
    return vb_ts_broker_start(b, dir, name, extra);
}

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(XEN_PASSWORD);
    dir = vb_ts_tmpdir("nested");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    xen_port = vb_ts_free_tcp_port();
    char extra[1000];
    /* B: SASL only; A: a token or SASL, and it may reach B and the simulator */
    snprintf(extra, sizeof extra, "auth_unix = [\"sasl\"]\nallowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n",
             xen_port);
    if (start_hostd(&hb, "b", extra) < 0)
        return -1;
    snprintf(extra, sizeof extra,
             "auth_unix = [\"token\", \"sasl\"]\nallow_remote_uris = 1\n"
             "allowed_next_hops = [\"unix:%s\"]\nallowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n",
             hb.sock, xen_port);
    if (start_hostd(&ha, "a", extra) < 0 ||
        vb_ts_xensim_start(dir, xen_port, "root:" XEN_PASSWORD "\n") < 0)
        return -1;
    /* the default broker keeps typed answers (10 min); the other keeps none */
    if (start_broker(&broker, "broker", "600") < 0 || start_broker(&nokeep, "nokeep", "0") < 0)
        return -1;
    vb_ts_broker_use(&broker);
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

/* ---- URIs ----------------------------------------------------------------- */

static char *first_uri(void)
{
    static char buf[400];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s", ha.sock);
    return buf;
}

/* A opens the XenAPI host: name= is the XenAPI URI, percent-encoded. */
static char *xen_uri(void)
{
    static char buf[800];
    snprintf(buf, sizeof buf,
             "xenapi+unix:///?socket=%s&name=xenapi%%3A%%2F%%2Froot%%40127.0.0.1%%3A%d%%2F"
             "%%3Ftransport%%3Dhttp",
             ha.sock, xen_port);
    return buf;
}

/* A opens "xenapi over unix to B", B opens the XenAPI URI: encoded twice. */
static char *two_hop_uri(void)
{
    static char buf[1600];
    snprintf(buf, sizeof buf,
             "xenapi+unix:///?socket=%s&name=xenapi%%2Bunix%%3A%%2F%%2F%%2F%%3Fsocket%%3D%s%%26name%%3D"
             "xenapi%%253A%%252F%%252Froot%%2540127.0.0.1%%253A%d%%252F%%253Ftransport%%253Dhttp",
             ha.sock, hb.sock, xen_port);
    return buf;
}

/* ---- the app ---------------------------------------------------------------- */

/* Answers by who asks: the XenAPI host wants root, vbhostd alice. */
typedef struct form {
    int calls, xen_calls;
} form;

static int form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    form *f = data;
    int xen = strstr(req->service, "xenapi://") != NULL;
    f->calls++;
    f->xen_calls += xen;
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

static const int types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

/* A script's run: open without a callback, list. */
static int script_list(const char *uri, vb_error *err)
{
    vb_auth none = { types, 2, NULL, NULL };
    return vb_ts_open_list(uri, &none, NULL, err);
}

static void login_ok(const char *uri, form *f, vb_login_info *info)
{
    vb_auth auth = { types, 2, form_cb, f };
    vb_error err;
    if (vb_login_chain(uri, &auth, 0, info, &err) < 0)
        fail_msg("login %s: %s", uri, err.message);
}

static void forget_everything(void)
{
    vb_logout_result *res;
    size_t n;
    vb_error err;
    assert_int_equal(vb_logout(NULL, &res, &n, &err), 0);
    vb_logout_results_free(res, n);
}

/* The broker's cached logins: how many, and the one for uri (created time). */
static size_t logins_for(const char *uri, int64_t *created)
{
    vb_broker_status st;
    vb_error err;
    if (vb_broker_get_status(&st, &err) < 0)
        fail_msg("status: %s", err.message);
    size_t n = 0;
    for (size_t i = 0; i < st.nlogins; i++)
        if (strcmp(st.logins[i].uri, uri) == 0) {
            n++;
            if (created)
                *created = st.logins[i].created;
        }
    vb_broker_status_clear(&st);
    return n;
}

static const vb_login_hop *hop_naming(const vb_login_info *info, const char *needle)
{
    for (size_t i = 0; i < info->nhops; i++)
        if (strstr(info->hops[i].hop, needle))
            return &info->hops[i];
    return NULL;
}

static const vb_login_hop *xen_hop(const vb_login_info *info)
{
    char want[64];
    snprintf(want, sizeof want, "xenapi://127.0.0.1:%d/", xen_port);
    return hop_naming(info, want);
}

/* ---- tests ------------------------------------------------------------------ */

/* The user's case: the first hop has its own login; `vbctl login NESTED`
 * asks only the XenAPI password, keeps it, and the first hop's login stays
 * exactly as it was (same URI, same creation time, still usable). */
static void test_nested_login_keeps_the_first_hops_own_login(void **state)
{
    (void)state;
    forget_everything();
    form f = { 0, 0 };
    vb_login_info first;
    login_ok(first_uri(), &f, &first);
    assert_int_equal(f.calls, 1);
    vb_login_info_clear(&first);
    int64_t created = 0, created_after = 0;
    assert_int_equal(logins_for(first_uri(), &created), 1);

    memset(&f, 0, sizeof f);
    vb_login_info info;
    time_t before = time(NULL);
    login_ok(xen_uri(), &f, &info);
    assert_int_equal(f.calls, 1); /* the XenAPI question only */
    assert_int_equal(f.xen_calls, 1);
    /* what was kept, per hop: A's own login (its token, as it was) and the
     * XenAPI answer in the broker's memory, for at most 8 h */
    assert_int_equal(info.nhops, 2);
    const vb_login_hop *a = hop_naming(&info, ha.sock);
    assert_non_null(a);
    assert_non_null(strstr(a->kept, "token"));
    assert_non_null(strstr(a->kept, "unchanged"));
    assert_true(a->until > before);
    const vb_login_hop *x = xen_hop(&info);
    assert_non_null(x);
    assert_non_null(strstr(x->kept, "memory"));
    assert_true(x->until > before && x->until <= before + 8 * 3600 + 5);
    assert_null(strstr(x->kept, XEN_PASSWORD));
    vb_login_info_clear(&info);

    /* the first hop's own login is untouched, and nothing was added */
    assert_int_equal(logins_for(first_uri(), &created_after), 1);
    assert_int_equal(created_after, created);
    assert_int_equal(logins_for(xen_uri(), NULL), 0);

    /* the next script runs ask nothing: the nested one and the first hop's */
    vb_error err;
    if (script_list(xen_uri(), &err) < 0)
        fail_msg("script, nested: %s", err.message);
    if (script_list(first_uri(), &err) < 0)
        fail_msg("script, first hop: %s", err.message);
}

/* A nested URI whose auth= takes a password at the first hop: the login
 * logs in with it (not the token), and still leaves A's own login as it
 * was instead of replacing it with a new token (and revoking the old); the
 * script's run finds both answers in the broker's memory. */
static void test_nested_login_with_auth_sasl_keeps_the_first_hops_login(void **state)
{
    (void)state;
    forget_everything();
    form f = { 0, 0 };
    vb_login_info info;
    login_ok(first_uri(), &f, &info);
    vb_login_info_clear(&info);
    int64_t created = 0, created_after = 0;
    assert_int_equal(logins_for(first_uri(), &created), 1);
    char uri[900];
    snprintf(uri, sizeof uri, "%s&auth=sasl.SCRAM-SHA-256", xen_uri());
    memset(&f, 0, sizeof f);
    login_ok(uri, &f, &info);
    /* A's password is still in the broker's memory from the first login */
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.xen_calls, 1);
    assert_non_null(strstr(info.hops[0].kept, "unchanged"));
    vb_login_info_clear(&info);
    assert_int_equal(logins_for(first_uri(), &created_after), 1);
    assert_int_equal(created_after, created);
    assert_int_equal(logins_for(uri, NULL), 0);
    vb_error err;
    if (script_list(uri, &err) < 0)
        fail_msg("script: %s", err.message);
    if (script_list(first_uri(), &err) < 0)
        fail_msg("script, first hop: %s", err.message);
}

/* Without a login of the first hop: one login asks both hops, keeps A's
 * token under the nested URI, and the next script run asks nothing. */
static void test_nested_login_from_nothing(void **state)
{
    (void)state;
    forget_everything();
    form f = { 0, 0 };
    vb_login_info info;
    login_ok(xen_uri(), &f, &info);
    assert_int_equal(f.calls, 2);
    assert_int_equal(f.xen_calls, 1);
    assert_int_equal(info.nhops, 2);
    const vb_login_hop *a = hop_naming(&info, ha.sock);
    assert_non_null(a);
    assert_non_null(strstr(a->kept, "token"));
    assert_null(strstr(a->kept, "unchanged"));
    assert_non_null(xen_hop(&info));
    vb_login_info_clear(&info);
    assert_int_equal(logins_for(xen_uri(), NULL), 1);
    vb_error err;
    if (script_list(xen_uri(), &err) < 0)
        fail_msg("script: %s", err.message);
}

/* broker → A → B → XenAPI: B's SASL answer and the XenAPI answer are kept
 * in the broker's memory, A's login as a token. */
static void test_two_daemon_chain(void **state)
{
    (void)state;
    forget_everything();
    form f = { 0, 0 };
    vb_login_info info;
    login_ok(two_hop_uri(), &f, &info);
    assert_int_equal(f.calls, 3); /* A's SASL, B's SASL, XenAPI */
    assert_int_equal(f.xen_calls, 1);
    assert_int_equal(info.nhops, 3);
    assert_non_null(strstr(info.hops[0].hop, ha.sock));
    assert_non_null(strstr(info.hops[0].kept, "token"));
    const vb_login_hop *b = NULL;
    for (size_t i = 1; i < info.nhops; i++)
        if (strstr(info.hops[i].hop, hb.sock) && !strstr(info.hops[i].hop, "xenapi://"))
            b = &info.hops[i];
    assert_non_null(b);
    assert_non_null(strstr(b->kept, "memory"));
    assert_non_null(xen_hop(&info));
    vb_login_info_clear(&info);
    vb_error err;
    if (script_list(two_hop_uri(), &err) < 0)
        fail_msg("script: %s", err.message);
}

/* A broker that keeps no typed answer (--secret-ttl 0): the login says
 * which hop it could not keep, and the script run is asked (exit 77). */
static void test_hop_not_kept_is_named(void **state)
{
    (void)state;
    setenv("VBROKER_SOCKET", nokeep.sock, 1);
    form f = { 0, 0 };
    vb_login_info info;
    login_ok(xen_uri(), &f, &info);
    const vb_login_hop *x = xen_hop(&info);
    assert_non_null(x);
    assert_int_equal(x->until, 0);
    assert_non_null(strstr(x->kept, "not kept"));
    const vb_login_hop *a = hop_naming(&info, ha.sock);
    assert_non_null(a);
    assert_true(a->until > 0);
    vb_login_info_clear(&info);
    vb_error err;
    assert_int_equal(script_list(xen_uri(), &err), -1);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_non_null(strstr(err.message, "xenapi://"));
    setenv("VBROKER_SOCKET", broker.sock, 1);
}

/* The same as a person does it: vbctl login, then a script's vbctl. */
static int vbctl(char *const argv[], const char *input, char **out)
{
    return vb_ts_broker_run(&broker, argv, input, out, 30000);
}

static void test_vbctl_login_then_script(void **state)
{
    (void)state;
    forget_everything();
    char *login[] = { VB_BUILD_DIR "/vbctl", "login", xen_uri(), NULL };
    char *out = NULL;
    int rc = vbctl(login, "alice\n" PASSWORD "\nroot\n" XEN_PASSWORD "\n", &out);
    if (rc != 0)
        fail_msg("vbctl login: %d: %s", rc, out ? out : "");
    assert_non_null(strstr(out, "Logged in to"));
    /* one line per hop saying what is kept and for how long */
    assert_non_null(strstr(out, ha.sock));
    assert_non_null(strstr(out, "token"));
    char want[64];
    snprintf(want, sizeof want, "xenapi://127.0.0.1:%d/", xen_port);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "memory"));
    assert_null(strstr(out, PASSWORD));
    assert_null(strstr(out, XEN_PASSWORD));
    free(out);
    char *list[] = { VB_BUILD_DIR "/vbctl", "--non-interactive", "-c", xen_uri(), "list", NULL };
    out = NULL;
    rc = vbctl(list, NULL, &out);
    if (rc != 0)
        fail_msg("vbctl list: %d: %s", rc, out ? out : "");
    assert_non_null(strstr(out, "web"));
    free(out);
}

/* Logging out of a nested URI whose login reused the first hop's own: no
 * login is stored under it (status 1, and vbctl says what it did forget),
 * the XenAPI answer is gone, so the next script exits 77, and the first
 * hop's own login still works. */
static void test_logout_of_nested_uri_forgets_its_hops(void **state)
{
    (void)state;
    forget_everything();
    form f = { 0, 0 };
    vb_login_info info;
    login_ok(first_uri(), &f, &info);
    vb_login_info_clear(&info);
    login_ok(xen_uri(), &f, &info);
    vb_login_info_clear(&info);
    vb_error err;
    if (script_list(xen_uri(), &err) < 0)
        fail_msg("script before the logout: %s", err.message);
    char *logout[] = { VB_BUILD_DIR "/vbctl", "logout", xen_uri(), NULL };
    char *out = NULL;
    assert_int_equal(vbctl(logout, NULL, &out), 1);
    assert_non_null(strstr(out, "forgotten"));
    free(out);
    char *list[] = { VB_BUILD_DIR "/vbctl", "--non-interactive", "-c", xen_uri(), "list", NULL };
    out = NULL;
    assert_int_equal(vbctl(list, NULL, &out), 77);
    free(out);
    if (script_list(first_uri(), &err) < 0)
        fail_msg("the first hop's own login after the nested logout: %s", err.message);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_login_keeps_the_first_hops_own_login),
        cmocka_unit_test(test_nested_login_with_auth_sasl_keeps_the_first_hops_login),
        cmocka_unit_test(test_nested_login_from_nothing),
        cmocka_unit_test(test_two_daemon_chain),
        cmocka_unit_test(test_hop_not_kept_is_named),
        cmocka_unit_test(test_vbctl_login_then_script),
        cmocka_unit_test(test_logout_of_nested_uri_forgets_its_hops),
    };
    return cmocka_run_group_tests_name("nested_login", tests, group_setup, group_teardown);
}
