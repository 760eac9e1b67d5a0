/* What a URI says wrong, and a host that is down, are reported before anyone
 * is asked for a password (#15.3, #15.4).
 *   app → libvbroker → vbrokerd → vbhostd S (SASL on its unix socket)
 *                               → vbhostd P (peer) → XenAPI host that is down
 * S would ask a password for any open, so every "nobody was asked" below
 * would fail if the check came after the login. The XenAPI port has nothing
 * listening on it. */
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
#define PASSWORD "strict-Pw-31"

static char *dir;
static vb_ts_hostd s_host, p_host;
static vb_ts_broker broker;
static const char *s_sock, *p_sock;
static int dead_port; /* nothing listens here: the XenAPI host that is down */

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(PASSWORD); /* the secret scan looks for it in every log */
    dir = vb_ts_tmpdir("uristrict");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256 digest-md5", users, NULL) < 0)
        return -1;
    dead_port = vb_ts_free_tcp_port();
    if (vb_ts_hostd_start_sasl(&s_host, dir, "s", 0, REALM, "auth_unix = [\"sasl\"]\n") < 0 ||
        vb_ts_hostd_start(&p_host, dir, "p", 0,
                          "auth_unix = [\"peer\"]\nallowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n",
                          dead_port) < 0 ||
        vb_ts_broker_start(&broker, dir, "broker", NULL) < 0)
        return -1;
    s_sock = s_host.sock;
    p_sock = p_host.sock;
    vb_ts_broker_use(&broker);
    return 0;
}

/* Open uri (and close it); the broker's error in *err. */
static int open_with(const char *uri, vb_ts_form *f, vb_error *err)
{
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, f };
    vb_conn *c = vb_open_auth(uri, &auth, 0, err);
    if (!c)
        return -1;
    vb_close(c);
    return 0;
}

static void expect_refused(const char *uri, int code, const char *const needles[])
{
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_error err;
    if (open_with(uri, &f, &err) == 0)
        fail_msg("%s opened", uri);
    if (err.code != code)
        fail_msg("%s: code %d, expected %d: %s", uri, err.code, code, err.message);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err.message, needles[i]))
            fail_msg("%s: '%s' not in: %s", uri, needles[i], err.message);
    if (f.calls != 0)
        fail_msg("%s: the app was asked %d times before the error: %s", uri, f.calls,
                 err.message);
}

/* The SASL host itself works, and asks: what the tests below must not see. */
static void test_the_host_asks(void **state)
{
    (void)state;
    char uri[400];
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s", s_sock);
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_error err;
    if (open_with(uri, &f, &err) < 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 1);
}

static void test_unknown_param(void **state)
{
    (void)state;
    char uri[600];
    /* a typo of auth= on a unix URI: named, with what this URI may carry */
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s&atuh=sasl", s_sock);
    expect_refused(uri, VBROKER_ERR_INVALID_ARG,
                   (const char *const[]){ "unknown URI parameter 'atuh'", "test+unix://",
                                          "known: ", "auth", "socket", "server_uid", NULL });
    /* an ssh-only parameter on the unix transport is as unknown */
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s&keyfile=/k", s_sock);
    expect_refused(uri, VBROKER_ERR_INVALID_ARG,
                   (const char *const[]){ "'keyfile'", NULL });
    /* the same key twice: the second would be ignored */
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s&auth=sasl&auth=token", s_sock);
    expect_refused(uri, VBROKER_ERR_INVALID_ARG,
                   (const char *const[]){ "'auth' is given twice", NULL });
    /* inside name=: the nested URI's own list (the xenapi driver's) */
    snprintf(uri, sizeof uri,
             "xenapi+unix:///?socket=%s&name=xenapi%%3A%%2F%%2F127.0.0.1%%3A%d%%2F%%3F"
             "transport%%3Dhttp%%26timeuot%%3D5",
             s_sock, dead_port);
    expect_refused(uri, VBROKER_ERR_INVALID_ARG,
                   (const char *const[]){ "in name=", "'timeuot'", "xenapi://", "timeout",
                                          "cafile", NULL });
    /* a local xenapi URI */
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?transport=http&no_verfy=1",
             dead_port);
    expect_refused(uri, VBROKER_ERR_INVALID_ARG,
                   (const char *const[]){ "'no_verfy'", "no_verify", NULL });
}

/* vb_login (vbctl login) of uri fails with code, naming needle, asking nothing */
static void login_refused(const char *uri, int code, const char *needle)
{
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    vb_error err;
    char *identity = NULL;
    int64_t expires = 0;
    assert_int_equal(vb_login(uri, &auth, 0, &identity, &expires, &err), -1);
    free(identity);
    if (err.code != code || !strstr(err.message, needle) || f.calls != 0)
        fail_msg("login %s: code %d, %d questions: %s", uri, err.code, f.calls, err.message);
}

static void test_unknown_param_login(void **state)
{
    (void)state;
    char uri[400];
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s&atuh=sasl", s_sock);
    login_refused(uri, VBROKER_ERR_INVALID_ARG, "'atuh'");
}

static void test_wrong_driver(void **state)
{
    (void)state;
    char uri[600];
    /* vbhostd would say so only after the login */
    snprintf(uri, sizeof uri, "tset+unix:///default?socket=%s", s_sock);
    expect_refused(uri, VBROKER_ERR_NO_DRIVER,
                   (const char *const[]){ "no driver named 'tset'", "test, xenapi", NULL });
    snprintf(uri, sizeof uri, "test+unix:///?socket=%s&name=bogus%%3A%%2F%%2F%%2Fx", s_sock);
    expect_refused(uri, VBROKER_ERR_NO_DRIVER,
                   (const char *const[]){ "in name=", "'bogus'", NULL });
    expect_refused("bogus:///default", VBROKER_ERR_NO_DRIVER,
                   (const char *const[]){ "'bogus'", NULL });
    /* vb_login too */
    snprintf(uri, sizeof uri, "tset+unix:///default?socket=%s", s_sock);
    login_refused(uri, VBROKER_ERR_NO_DRIVER, "'tset'");
}

static void test_xenapi_host_down(void **state)
{
    (void)state;
    char uri[600], where[64];
    snprintf(where, sizeof where, "XenAPI host 127.0.0.1:%d", dead_port);
    /* from the broker itself */
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?transport=http", dead_port);
    expect_refused(uri, VBROKER_ERR_NO_CONNECT, (const char *const[]){ where, NULL });
    /* behind vbhostd P, which answers (peer): the error names the XenAPI
     * host, not the hop that reached it */
    snprintf(uri, sizeof uri,
             "xenapi+unix:///?socket=%s&name=xenapi%%3A%%2F%%2Froot%%40127.0.0.1%%3A%d%%2F%%3F"
             "transport%%3Dhttp",
             p_sock, dead_port);
    expect_refused(uri, VBROKER_ERR_NO_CONNECT, (const char *const[]){ where, NULL });
}

/* A vbhostd hop that is down: the transport fails before any question,
 * and the error says which hop it was. */
static void test_vbhostd_down(void **state)
{
    (void)state;
    char uri[400], where[80];
    snprintf(where, sizeof where, "vbhostd: cannot connect to 127.0.0.1 port %d", dead_port);
    snprintf(uri, sizeof uri, "test+tcp://127.0.0.1:%d/default?auth=sasl", dead_port);
    expect_refused(uri, VBROKER_ERR_NO_CONNECT, (const char *const[]){ where, NULL });
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s/nobody.sock", dir);
    expect_refused(uri, VBROKER_ERR_NO_CONNECT,
                   (const char *const[]){ "vbhostd: cannot connect to", "nobody.sock", NULL });
    snprintf(where, sizeof where, "ssh server on the way to vbhostd: cannot connect to "
                                  "127.0.0.1 port %d", dead_port);
    snprintf(uri, sizeof uri, "test+ssh://alice@127.0.0.1:%d/default?sshauth=password", dead_port);
    expect_refused(uri, VBROKER_ERR_NO_CONNECT, (const char *const[]){ where, NULL });
}

/* vbctl blames the XenAPI host, not vbhostd */
static void test_vbctl_blames_the_xenapi_host(void **state)
{
    (void)state;
    char uri[300];
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?transport=http", dead_port);
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", uri, "list", NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, NULL, "", &out, 30000);
    assert_non_null(out);
    if (rc == 0 || !strstr(out, "XenAPI host") || strstr(out, "vbhostd runs") ||
        strstr(out, "Password"))
        fail_msg("vbctl (exit %d) said: %s", rc, out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_host_asks),
        cmocka_unit_test(test_unknown_param),
        cmocka_unit_test(test_unknown_param_login),
        cmocka_unit_test(test_wrong_driver),
        cmocka_unit_test(test_xenapi_host_down),
        cmocka_unit_test(test_vbhostd_down),
        cmocka_unit_test(test_vbctl_blames_the_xenapi_host),
    };
    return cmocka_run_group_tests_name("uri_strict", tests, group_setup, vb_ts_group_teardown);
}
