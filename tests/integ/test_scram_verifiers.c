/* vbhostd with a sasldb that holds SCRAM verifiers only, as vbhostd(8)
 * recommends for SCRAM-only sites (issue 18, item 2): the recipe works, the
 * file holds no password, and a wrong password is still refused. */
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
#define PASSWORD "verifier-Pw-18"

static char *dir;
static char sasl_dir[300], sasldb[400], uri[600];
static vb_ts_hostd hostd;
static vb_ts_broker broker;

/* vbhostd(8)'s recipe: scram_secret_generate for saslpasswd2, and -n */
static int make_verifier_db(void)
{
    char conf[400], text[800], env[400];
    snprintf(conf, sizeof conf, "%s/vbhostd.conf", sasl_dir);
    snprintf(text, sizeof text,
             "mech_list: scram-sha-256\npwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
             "sasldb_path: %s\nscram_secret_generate: yes\n", sasldb);
    if (vb_ts_write_file(conf, text, 0600) < 0)
        return -1;
    snprintf(env, sizeof env, "SASL_CONF_PATH=%s", sasl_dir);
    char *argv[] = { "/usr/sbin/saslpasswd2", "-n", "-p", "-f", sasldb, "-a", "vbhostd",
                     "-u", REALM, "-c", "alice", NULL };
    char *envv[] = { env, NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, envv, PASSWORD, &out, 10000);
    if (rc != 0)
        fprintf(stderr, "saslpasswd2 -n: %s\n", out ? out : "");
    free(out);
    return rc == 0 && chmod(sasldb, 0600) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("scramver");
    snprintf(sasl_dir, sizeof sasl_dir, "%s/sasl", dir);
    snprintf(sasldb, sizeof sasldb, "%s/sasldb", sasl_dir);
    mkdir(sasl_dir, 0700);
    static const char *const cold[] = { "--secret-ttl", "0", "--upstream-idle", "0", NULL };
    if (make_verifier_db() < 0 ||
        vb_ts_hostd_start(&hostd, dir, "h", 0,
                          "auth_unix = [\"sasl\"]\nsasl_conf_dir = \"%s\"\n"
                          "sasl_realm = \"" REALM "\"\n", sasl_dir) < 0 ||
        vb_ts_broker_start(&broker, dir, "b", cold) < 0)
        return -1;
    vb_ts_broker_use(&broker);
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s&auth=sasl.SCRAM-SHA-256",
             hostd.sock);
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

static void the_file_holds_no_password(void **state)
{
    (void)state;
    char *argv[] = { "/usr/sbin/sasldblistusers2", "-f", sasldb, NULL };
    char *out = NULL;
    assert_int_equal(vb_ts_run(argv, NULL, NULL, &out, 10000), 0);
    assert_non_null(strstr(out, "alice@" REALM ": authPassword"));
    assert_null(strstr(out, "userPassword"));
    free(out);
}

static vb_conn *open_with(const char *password, vb_error *err)
{
    vb_ts_form form = { "alice", password, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &form };
    return vb_open_auth(uri, &auth, 0, err);
}

static void scram_login_against_verifiers(void **state)
{
    (void)state;
    vb_error err = { 0 };
    vb_conn *c = open_with(PASSWORD, &err);
    if (!c)
        fprintf(stderr, "open: %s\n", err.message);
    assert_non_null(c);
    char *host = NULL;
    assert_int_equal(vb_get_hostname(c, &host, &err), 0);
    free(host);
    vb_close(c);
}

static void wrong_password_is_refused(void **state)
{
    (void)state;
    vb_error err = { 0 };
    vb_conn *c = open_with("not-" PASSWORD, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_AUTH_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_file_holds_no_password),
        cmocka_unit_test(scram_login_against_verifiers),
        cmocka_unit_test(wrong_password_is_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
