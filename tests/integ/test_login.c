/* Log in once: tokens in sqlite, the in-memory secret cache, logout.
 * app / vbctl → libvbroker → vbrokerd (cache.db) → vbhostd (tokens.db). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "s3cret-Pw-4-tests"

static char *dir;
static vb_ts_hostd h1, h2;
static vb_ts_broker bmain, bshort;

static int start_hostd(vb_ts_hostd *h, const char *name)
{
    return vb_ts_hostd_start_sasl(h, dir, name, 0, REALM,
                                  "auth_unix = [\"token\", \"sasl\"]\nmax_anonymous_clients = 200\n");
}

/* the short-lived broker keeps passwords 1 s and no idle host connection,
 * so token expiry and revocation are seen by the next open */
static int start_broker(vb_ts_broker *b, const char *name, const char *ttl)
{
    const char *short_lived[] = { "--secret-ttl", ttl, "--secret-max", ttl, "--upstream-idle", "0",
                                  NULL };
    return vb_ts_broker_start(b, dir, name, ttl ? short_lived : NULL);
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("login");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    if (start_hostd(&h1, "h1") < 0 || start_hostd(&h2, "h2") < 0 ||
        start_broker(&bmain, "bmain", NULL) < 0 || start_broker(&bshort, "bshort", "1") < 0)
        return -1;
    vb_ts_broker_use(&bmain);
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

/* ---- helpers ------------------------------------------------------------- */

static char *uri_of(const vb_ts_hostd *h)
{
    static char buf[400];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s", h->sock);
    return buf;
}

static int open_list(const char *uri, vb_ts_form *f, vb_error *err)
{
    vb_auth auth = { vb_ts_form_types, 2, f ? vb_ts_form_cb : NULL, f };
    return vb_ts_open_list(uri, &auth, NULL, err);
}

static int logins_cached(void)
{
    vb_broker_status st;
    vb_error err;
    if (vb_broker_get_status(&st, &err) < 0)
        return -1;
    int n = (int)st.nlogins;
    vb_broker_status_clear(&st);
    return n;
}

static int vbctl_list_non_interactive(const char *uri, const vb_ts_broker *b)
{
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", (char *)uri, "--non-interactive", "list", NULL };
    return vb_ts_broker_run(b, argv, NULL, NULL, 30000);
}

/* ---- tests --------------------------------------------------------------- */

static void test_login_once_then_scripts_reuse_it(void **state)
{
    (void)state;
    vb_ts_broker_use(&bmain);
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    char *identity = NULL;
    int64_t expires = 0;
    vb_error err;
    if (vb_login(uri_of(&h1), &auth, 0, &identity, &expires, &err) < 0)
        fail_msg("login: %s", err.message);
    assert_int_equal(f.calls, 1);
    assert_string_equal(identity, "alice@" REALM);
    free(identity);
    assert_true(expires > (int64_t)time(NULL) + 3600);
    assert_int_equal(logins_cached(), 1);
    int token_logins = vb_ts_count_in_file(h1.log, "(token ");
    int sasl_logins = vb_ts_count_in_file(h1.log, "(sasl ");
    /* 20 scripts, no terminal, no prompt allowed */
    for (int i = 0; i < 20; i++)
        assert_int_equal(vbctl_list_non_interactive(uri_of(&h1), &bmain), 0);
    /* the token logged the broker in (once: the transport is then shared), and
     * no password login happened */
    assert_true(vb_ts_count_in_file(h1.log, "(token ") >= token_logins + 1);
    assert_int_equal(vb_ts_count_in_file(h1.log, "(sasl "), sasl_logins);
}

static void test_token_survives_broker_kill9(void **state)
{
    (void)state;
    vb_ts_broker_use(&bmain);
    kill(bmain.pid, SIGKILL);
    int status;
    vb_ts_wait_pid_exit(bmain.pid, 5000, &status);
    assert_int_equal(start_broker(&bmain, "bmain", NULL), 0);
    vb_error err;
    /* a fresh broker: no password in memory, only the token on disk */
    if (open_list(uri_of(&h1), NULL, &err) < 0)
        fail_msg("open after restart: %s", err.message);
}

static void test_second_open_asks_nothing(void **state)
{
    (void)state;
    vb_ts_broker_use(&bmain);
    /* h2 has no token: the first open asks, the second is answered from memory */
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_error err;
    assert_int_equal(open_list(uri_of(&h2), &f, &err), 0);
    assert_int_equal(f.calls, 1);
    assert_int_equal(open_list(uri_of(&h2), &f, &err), 0);
    assert_int_equal(f.calls, 1);
    assert_int_equal(open_list(uri_of(&h2), NULL, &err), 0); /* even for a script */
}

static void test_second_open_shares_the_transport(void **state)
{
    (void)state;
    vb_ts_broker_use(&bmain);
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    vb_error err;
    vb_conn *a = vb_open_auth(uri_of(&h2), &auth, 0, &err);
    assert_non_null(a);
    int logins = vb_ts_count_in_file(h2.log, "authenticated as");
    int opens = vb_ts_count_in_file(h2.log, " opened ");
    /* while the first connection is up, a second open costs no login */
    vb_conn *b = vb_open_auth(uri_of(&h2), NULL, 0, &err);
    if (!b)
        fail_msg("second open: %s", err.message);
    assert_int_equal(vb_ts_count_in_file(h2.log, "authenticated as"), logins);
    assert_int_equal(vb_ts_count_in_file(h2.log, " opened "), opens + 1);
    /* both work, each on its own connection id */
    vb_domain *doms;
    size_t n;
    assert_int_equal(vb_domain_shutdown(b, "web", &err), 0);
    assert_int_equal(vb_list_domains(a, &doms, &n, &err), 0);
    vb_domains_free(doms, n);
    assert_int_equal(vb_domain_start(a, "web", &err), 0);
    vb_close(b);
    char *host;
    assert_int_equal(vb_get_hostname(a, &host, &err), 0);
    free(host);
    vb_close(a);
}

static int after_time(void *arg)
{
    return (int64_t)time(NULL) > *(int64_t *)arg;
}

static void test_expiry_leads_to_prompt_or_77(void **state)
{
    (void)state;
    vb_ts_broker_use(&bshort); /* passwords live 1 s in this broker */
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    int64_t expires = 0;
    vb_error err;
    assert_int_equal(vb_login(uri_of(&h1), &auth, 1, NULL, &expires, &err), 0);
    assert_true(expires <= (int64_t)time(NULL) + 2);
    assert_int_equal(open_list(uri_of(&h1), NULL, &err), 0); /* the token, still valid */
    /* past the token's expiry, and past any password this broker kept (1 s)
     * from the opens above, whenever they finished on a loaded machine */
    int64_t opened = (int64_t)time(NULL);
    int64_t after = (expires > opened ? expires : opened) + 1;
    assert_int_equal(vb_ts_wait_until(after_time, &after, 5000), 0);
    /* an expired login is no longer listed (nor kept on disk) */
    assert_int_equal(logins_cached(), 0);
    assert_int_equal(vbctl_list_non_interactive(uri_of(&h1), &bshort), 77);
    f.calls = 0;
    assert_int_equal(open_list(uri_of(&h1), &f, &err), 0);
    assert_int_equal(f.calls, 1);
    vb_ts_broker_use(&bmain);
}

static char *first_token_id(const vb_ts_hostd *h)
{
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", (char *)h->conf, "--list-tokens", NULL };
    char *out = NULL;
    if (vb_ts_run(argv, NULL, NULL, &out, 10000) != 0)
        return NULL;
    /* the last valid token in the listing */
    char *id = NULL;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "valid") && strlen(line) > 32) {
            free(id);
            id = strndup(line, 32);
        }
    free(out);
    return id;
}

static void test_revoked_on_server_falls_back_and_erases(void **state)
{
    (void)state;
    vb_ts_broker_use(&bshort);
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    vb_error err;
    vb_logout_result *res;
    size_t n;
    assert_int_equal(vb_logout(NULL, &res, &n, &err), 0);
    vb_logout_results_free(res, n);
    assert_int_equal(vb_login(uri_of(&h1), &auth, 0, NULL, NULL, &err), 0);
    assert_int_equal(logins_cached(), 1);
    char *id = first_token_id(&h1);
    assert_non_null(id);
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", h1.conf, "--revoke-token", id, NULL };
    char *out = NULL;
    assert_int_equal(vb_ts_run(argv, NULL, NULL, &out, 10000), 0);
    free(out);
    free(id);
    /* wait out the cached password, then a script: the token is refused, erased, 77 */
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    int64_t after = (int64_t)t0.tv_sec + 1;
    assert_int_equal(vb_ts_wait_until(after_time, &after, 5000), 0);
    assert_int_equal(vbctl_list_non_interactive(uri_of(&h1), &bshort), 77);
    assert_int_equal(logins_cached(), 0);
    vb_ts_broker_use(&bmain);
}

static void test_logout_revokes_and_erases(void **state)
{
    (void)state;
    vb_ts_broker_use(&bmain);
    vb_logout_result *res;
    size_t n;
    vb_error err;
    assert_int_equal(logins_cached(), 1);
    assert_int_equal(vb_logout(uri_of(&h1), &res, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_true(res[0].revoked);
    assert_non_null(strstr(res[0].note, "revoked"));
    vb_logout_results_free(res, n);
    assert_int_equal(logins_cached(), 0);
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", h1.conf, "--list-tokens", NULL };
    char *out = NULL;
    assert_int_equal(vb_ts_run(argv, NULL, NULL, &out, 10000), 0);
    assert_non_null(strstr(out, "revoked"));
    free(out);
}

static void test_logout_when_host_unreachable(void **state)
{
    (void)state;
    vb_ts_broker_use(&bmain);
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    vb_error err;
    assert_int_equal(vb_login(uri_of(&h2), &auth, 0, NULL, NULL, &err), 0);
    vb_ts_stop(h2.pid, 5000);
    vb_logout_result *res;
    size_t n;
    assert_int_equal(vb_logout(NULL, &res, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_false(res[0].revoked);
    assert_non_null(strstr(res[0].note, "unreachable"));
    vb_logout_results_free(res, n);
    assert_int_equal(logins_cached(), 0);
    assert_int_equal(start_hostd(&h2, "h2"), 0);
}

static void test_token_only_for_its_server(void **state)
{
    (void)state;
    vb_ts_broker_use(&bmain);
    vb_ts_form f = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    vb_error err;
    assert_int_equal(vb_login(uri_of(&h1), &auth, 0, NULL, NULL, &err), 0);
    int before = vb_ts_count_in_file(h2.log, "token");
    /* h2 has another server id: h1's token is never shown to it */
    assert_int_equal(open_list(uri_of(&h2), &f, &err), 0);
    assert_int_equal(vb_ts_count_in_file(h2.log, "token"), before);
}

static void test_cache_modes_and_no_secrets_on_disk_or_in_logs(void **state)
{
    (void)state;
    char path[400];
    struct stat st;
    snprintf(path, sizeof path, "%s/cache.db", bmain.state);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(bmain.state, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    const char *files[] = { "cache.db", "cache.db-wal" };
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", bmain.state, files[i]);
        assert_int_equal(vb_ts_count_in_file(path, PASSWORD), 0);
    }
    assert_int_equal(vb_ts_count_in_file(bmain.log, PASSWORD), 0);
    assert_int_equal(vb_ts_count_in_file(bshort.log, PASSWORD), 0);
    assert_int_equal(vb_ts_count_in_file(h1.log, PASSWORD), 0);
    snprintf(path, sizeof path, "%s/h1-state/tokens.db", dir);
    assert_int_equal(vb_ts_count_in_file(path, PASSWORD), 0);
    /* a state dir open to others is refused */
    char bad[400], log[400];
    snprintf(bad, sizeof bad, "%s/open-state", dir);
    mkdir(bad, 0755);
    chmod(bad, 0755);
    snprintf(log, sizeof log, "%s/badsock/sock", dir);
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", log, "--state-dir", bad, NULL };
    char *out = NULL;
    assert_int_equal(vb_ts_run(argv, NULL, NULL, &out, 10000), 1);
    assert_non_null(strstr(out, "0755"));
    free(out);
}

static int run_vbctl(char *const argv[], const char *input, char **out)
{
    return vb_ts_broker_run(&bmain, argv, input, out, 30000);
}

static void test_vbctl_login_status_logout(void **state)
{
    (void)state;
    vb_ts_broker_use(&bmain);
    char *out = NULL;
    char *all[] = { VB_BUILD_DIR "/vbctl", "logout", "--all", NULL };
    assert_int_equal(run_vbctl(all, NULL, &out), 0);
    free(out);
    char *login[] = { VB_BUILD_DIR "/vbctl", "login", uri_of(&h1), NULL };
    assert_int_equal(run_vbctl(login, "alice\n" PASSWORD "\n", &out), 0);
    assert_non_null(strstr(out, "Logged in to"));
    assert_non_null(strstr(out, "alice@" REALM));
    assert_null(strstr(out, PASSWORD));
    free(out);
    char *status[] = { VB_BUILD_DIR "/vbctl", "status", NULL };
    assert_int_equal(run_vbctl(status, NULL, &out), 0);
    assert_non_null(strstr(out, "Logins:        1"));
    assert_non_null(strstr(out, "alice@" REALM));
    assert_null(strstr(out, PASSWORD));
    free(out);
    assert_int_equal(vbctl_list_non_interactive(uri_of(&h1), &bmain), 0);
    char *logout[] = { VB_BUILD_DIR "/vbctl", "logout", uri_of(&h1), NULL };
    assert_int_equal(run_vbctl(logout, NULL, &out), 0);
    assert_non_null(strstr(out, "revoked on the host"));
    free(out);
    assert_int_equal(logins_cached(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_once_then_scripts_reuse_it),
        cmocka_unit_test(test_token_survives_broker_kill9),
        cmocka_unit_test(test_second_open_asks_nothing),
        cmocka_unit_test(test_second_open_shares_the_transport),
        cmocka_unit_test(test_expiry_leads_to_prompt_or_77),
        cmocka_unit_test(test_revoked_on_server_falls_back_and_erases),
        cmocka_unit_test(test_logout_revokes_and_erases),
        cmocka_unit_test(test_logout_when_host_unreachable),
        cmocka_unit_test(test_token_only_for_its_server),
        cmocka_unit_test(test_vbctl_login_status_logout),
        cmocka_unit_test(test_cache_modes_and_no_secrets_on_disk_or_in_logs),
    };
    return cmocka_run_group_tests_name("login", tests, group_setup, group_teardown);
}
