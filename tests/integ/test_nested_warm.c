/* A warm nested open reuses the XenAPI session vbhostd kept at the last
 * close of the same identity, and only when the broker answers the same
 * password again (docs/security.md "Kept XenAPI sessions").
 *   app → vbrokerd (alice's, or bob's) → vbhostd (sasl) → XenAPI simulator
 * The simulator's call log counts logins and logouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define ALICE_PW "warm-Alice-17"
#define BOB_PW "warm-Bob-23"
#define XEN_PW1 "xen-Warm-pw1"
#define XEN_PW2 "xen-Warm-pw2"
#define LOGIN "session.login_with_password user=root "
#define LOGOUT "session.logout user=root Success"
/* vbhostd's line at each logout it decides, then the reason */
#define KEPT_OUT "logging out the kept XenAPI session of 'root' at xenapi://127.0.0.1:"

static char *dir, calls[400];
static vb_ts_hostd hd, brief; /* brief keeps a session 2 s */
static vb_ts_broker alice, bob;
static pid_t xensim;
static int xen_port;
static const char *xen_pw = XEN_PW1; /* what the app answers the XenAPI host */
static int xen_asked;                /* how often the app was asked it */

static int start_hostd(vb_ts_hostd *h, const char *name, const char *keep)
{
    return vb_ts_hostd_start(h, dir, name, 0,
                             "sasl_conf_dir = \"%s/sasl\"\nsasl_realm = \"" REALM "\"\n"
                             "auth_unix = [\"sasl\"]\nallowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n"
                             "%s\n",
                             dir, xen_port, keep);
}

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(XEN_PW1);
    vb_ts_note_secret(XEN_PW2);
    dir = vb_ts_tmpdir("nestwarm");
    char sasl[300];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    snprintf(calls, sizeof calls, "%s/xen-calls.log", dir);
    mkdir(sasl, 0700);
    static const char *const users[] = { "alice:" ALICE_PW, "bob:" BOB_PW, NULL };
    if (vb_ts_sasl_setup(sasl, "vbhostd", REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    xen_port = vb_ts_free_tcp_port();
    if ((xensim = vb_ts_xensim_start(dir, xen_port, "root:" XEN_PW1 "\n")) < 0 ||
        start_hostd(&hd, "hd", "") < 0 ||
        start_hostd(&brief, "brief", "xenapi_session_keep = 2") < 0)
        return -1;
    const char *extra[] = { "--secret-ttl", "600", NULL };
    if (vb_ts_broker_start(&alice, dir, "alice", extra) < 0 ||
        vb_ts_broker_start(&bob, dir, "bob", extra) < 0)
        return -1;
    vb_ts_broker_use(&alice);
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

/* The XenAPI host through h: name= is the XenAPI URI, percent-encoded. */
static const char *xen_uri(const vb_ts_hostd *h)
{
    static char buf[800];
    snprintf(buf, sizeof buf,
             "xenapi+unix:///?socket=%s&name=xenapi%%3A%%2F%%2Froot%%40127.0.0.1%%3A%d%%2F"
             "%%3Ftransport%%3Dhttp",
             h->sock, xen_port);
    return buf;
}

/* The person at the app: vbhostd's question by the broker's user, the
 * XenAPI host's with xen_pw; "alice-noxen" cancels the XenAPI question. */
static int form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    const char *who = data;
    int xen = strstr(req->service, "xenapi://") != NULL;
    xen_asked += xen;
    if (xen && strcmp(who, "alice-noxen") == 0)
        return -1;
    int is_bob = strcmp(who, "bob") == 0;
    for (unsigned i = 0; i < n; i++) {
        const char *v = NULL;
        if (creds[i].type == VB_CRED_AUTHNAME)
            v = xen ? "root" : is_bob ? "bob" : "alice";
        else if (creds[i].type == VB_CRED_PASSPHRASE)
            v = xen ? xen_pw : is_bob ? BOB_PW : ALICE_PW;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

static const int types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

static int count(const char *path, const char *needle)
{
    return vb_ts_count_in_file(path, needle);
}

/* Open, list, close through broker b as who (NULL: a script, nobody to ask);
 * returns once h has closed the connection. */
static int open_list(const vb_ts_broker *b, const vb_ts_hostd *h, const char *who,
                     vb_error *err)
{
    vb_ts_broker_use(b);
    int closed = count(h->log, "closed connection");
    vb_auth auth = { types, 2, who ? form_cb : NULL, (void *)who };
    int rc = vb_ts_open_list(xen_uri(h), &auth, NULL, err);
    if (rc == 0 && vb_ts_wait_for_log(h->log, "closed connection", closed + 1,
                                      vb_ts_scaled_ms(10000)) < 0)
        fail_msg("%s did not close the connection", h->log);
    vb_ts_broker_use(&alice);
    return rc;
}

static void open_ok(const vb_ts_broker *b, const vb_ts_hostd *h, const char *who)
{
    vb_error err;
    if (open_list(b, h, who, &err) < 0)
        fail_msg("open as %s: %s", who ? who : "a script", err.message);
}

static void forget(const vb_ts_broker *b, const char *uri)
{
    vb_ts_broker_use(b);
    vb_logout_result *res;
    size_t n;
    vb_error err;
    if (vb_logout(uri, &res, &n, &err) < 0)
        fail_msg("logout: %s", err.message);
    vb_logout_results_free(res, n);
    vb_ts_broker_use(&alice);
}

/* The host ends every session (the simulator's SIGUSR1), as a restarted xapi. */
static void drop_host_sessions(void)
{
    int dropped = count(calls, "sessions dropped");
    assert_int_equal(kill(xensim, SIGUSR1), 0);
    assert_int_equal(vb_ts_wait_for_log(calls, "sessions dropped", dropped + 1,
                                        vb_ts_scaled_ms(5000)), 0);
}

/* ---- tests ------------------------------------------------------------------ */

/* The second open of the same identity logs in no more: the session of the
 * first close is reused (and not logged out at that close). */
static void test_same_identity_reuses_the_session(void **state)
{
    (void)state;
    int logins = count(calls, LOGIN), logouts = count(calls, LOGOUT);
    open_ok(&alice, &hd, "alice");
    assert_int_equal(count(calls, LOGIN), logins + 1);
    open_ok(&alice, &hd, "alice");
    open_ok(&alice, &hd, NULL); /* a script: the broker answers from memory */
    assert_int_equal(count(calls, LOGIN), logins + 1);
    assert_int_equal(count(calls, LOGOUT), logouts);
}

/* Hostile: bob, another vbhostd identity, answers the very same XenAPI user
 * and password; he gets a session of his own, never alice's. */
static void test_other_identity_logs_in_itself(void **state)
{
    (void)state;
    open_ok(&alice, &hd, "alice"); /* alice has a kept session */
    int logins = count(calls, LOGIN);
    open_ok(&bob, &hd, "bob");
    assert_int_equal(count(calls, LOGIN), logins + 1);
    /* each then reuses their own */
    open_ok(&alice, &hd, "alice");
    open_ok(&bob, &hd, "bob");
    assert_int_equal(count(calls, LOGIN), logins + 1);
}

/* The password changed on the host and the broker answers the new one: a
 * new login, and the session of the old password is logged out. */
static void test_changed_password_logs_in_again(void **state)
{
    (void)state;
    open_ok(&alice, &hd, "alice");
    int logins = count(calls, LOGIN), logouts = count(calls, LOGOUT);
    char users[400];
    snprintf(users, sizeof users, "%s/xen-users", dir);
    assert_int_equal(vb_ts_write_file(users, "root:" XEN_PW2 "\n", 0600), 0);
    int reloaded = count(calls, "users reloaded");
    assert_int_equal(kill(xensim, SIGHUP), 0);
    assert_int_equal(vb_ts_wait_for_log(calls, "users reloaded", reloaded + 1,
                                        vb_ts_scaled_ms(5000)), 0);
    forget(&alice, NULL);
    xen_pw = XEN_PW2;
    int said = count(hd.log, "another password was given");
    open_ok(&alice, &hd, "alice");
    assert_int_equal(count(calls, LOGIN), logins + 1);
    assert_int_equal(count(calls, LOGOUT), logouts + 1);
    assert_int_equal(count(hd.log, "another password was given"), said + 1);
    open_ok(&alice, &hd, "alice");
    assert_int_equal(count(calls, LOGIN), logins + 1);
}

/* The host ended every session (a restarted xapi): the reused session gets
 * SESSION_INVALID at its first call, and the driver logs in again, once,
 * without the app noticing. */
static void test_session_invalid_logs_in_again(void **state)
{
    (void)state;
    open_ok(&alice, &hd, "alice");
    int logins = count(calls, LOGIN);
    drop_host_sessions();
    open_ok(&alice, &hd, NULL);
    assert_int_equal(count(calls, LOGIN), logins + 1);
    open_ok(&alice, &hd, NULL);
    assert_int_equal(count(calls, LOGIN), logins + 1);
}

/* Two sessions of one identity kept (two opens at once), then the host ends
 * every session: the open reuses one, meets SESSION_INVALID at its first
 * call and logs in anew; it must not take the other dead kept one instead. */
static void test_session_invalid_with_two_kept(void **state)
{
    (void)state;
    vb_error err;
    vb_auth auth = { types, 2, form_cb, "alice" };
    int closed = count(hd.log, "closed connection");
    vb_conn *a = vb_open_auth(xen_uri(&hd), &auth, 0, &err);
    if (!a)
        fail_msg("open a: %s", err.message);
    vb_conn *b = vb_open_auth(xen_uri(&hd), &auth, 0, &err);
    if (!b)
        fail_msg("open b: %s", err.message);
    vb_close(a);
    vb_close(b);
    assert_int_equal(vb_ts_wait_for_log(hd.log, "closed connection", closed + 2,
                                        vb_ts_scaled_ms(10000)), 0);
    int logins = count(calls, LOGIN);
    drop_host_sessions();
    open_ok(&alice, &hd, NULL);
    assert_int_equal(count(calls, LOGIN), logins + 1);
}

/* Idle: a session nobody reused for xenapi_session_keep (2 s) is logged out. */
static void test_idle_session_is_logged_out(void **state)
{
    (void)state;
    int logins = count(calls, LOGIN), logouts = count(calls, LOGOUT);
    open_ok(&alice, &brief, "alice");
    open_ok(&alice, &brief, "alice");
    assert_int_equal(count(calls, LOGIN), logins + 1);
    assert_int_equal(vb_ts_wait_for_log(calls, LOGOUT, logouts + 1, vb_ts_scaled_ms(10000)), 0);
    assert_int_equal(vb_ts_wait_for_log(brief.log, KEPT_OUT, 1, vb_ts_scaled_ms(5000)), 0);
    assert_true(count(brief.log, "for sasl:alice@" REALM ": idle (xenapi_session_keep)") >= 1);
}

/* `vbctl logout` of the nested URI: the broker forgets the XenAPI answer,
 * so the next script run fails (exit 77) though vbhostd still keeps the
 * session: reuse needs the password again. vbhostd's shutdown logs the
 * kept session out. */
static void test_logout_ends_reuse_and_shutdown_logs_out(void **state)
{
    (void)state;
    open_ok(&alice, &hd, "alice");
    int logins = count(calls, LOGIN), logouts = count(calls, LOGOUT);
    char *logout[] = { VB_BUILD_DIR "/vbctl", "logout", (char *)xen_uri(&hd), NULL };
    char *out = NULL;
    int rc = vb_ts_broker_run(&alice, logout, NULL, &out, 30000);
    free(out);
    assert_true(rc == 0 || rc == 1); /* 1: nothing stored under it, answers forgotten */
    char *list[] = { VB_BUILD_DIR "/vbctl", "--non-interactive", "-c", (char *)xen_uri(&hd),
                     "list", NULL };
    out = NULL;
    rc = vb_ts_broker_run(&alice, list, NULL, &out, 30000);
    if (rc != 77)
        fail_msg("vbctl list after logout: %d: %s", rc, out ? out : "");
    free(out);
    /* vbhostd's own question answered, the XenAPI host's not: no reuse */
    vb_error err;
    int asked = xen_asked;
    assert_int_equal(open_list(&alice, &hd, "alice-noxen", &err), -1);
    assert_int_equal(xen_asked, asked + 1);
    assert_int_equal(count(calls, LOGIN), logins);
    assert_int_equal(count(calls, LOGOUT), logouts);
    assert_int_equal(vb_ts_stop(hd.pid, vb_ts_scaled_ms(10000)), 0);
    hd.pid = 0;
    assert_int_equal(vb_ts_wait_for_log(calls, LOGOUT, logouts + 1, vb_ts_scaled_ms(10000)), 0);
    assert_true(count(hd.log, "for sasl:alice@" REALM ": shutting down") >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_identity_reuses_the_session),
        cmocka_unit_test(test_other_identity_logs_in_itself),
        cmocka_unit_test(test_changed_password_logs_in_again),
        cmocka_unit_test(test_session_invalid_logs_in_again),
        cmocka_unit_test(test_session_invalid_with_two_kept),
        cmocka_unit_test(test_idle_session_is_logged_out),
        cmocka_unit_test(test_logout_ends_reuse_and_shutdown_logs_out),
    };
    return cmocka_run_group_tests_name("nested_warm", tests, group_setup, group_teardown);
}
