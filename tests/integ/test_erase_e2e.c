/* Erase means gone, end to end: `vbctl login` to a real vbhostd through a
 * real vbrokerd stores a token in both cache.db and tokens.db; `vbctl
 * logout` revokes it on the host and erases it here. With both daemons
 * still running (their connections stay open, so sqlite never removes the
 * -wal on its own), the token secret must be in none of the files of either
 * store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_testsupport.h"

#define REALM "LAB.TEST"
#define PASSWORD "erase-e2e-Pw-7"
#define START_MS 10000

static char *dir;
static char hconf[300], hsock[300], hlog[300], bsock[300], blog[300], bstate[300];
static char cache_db[400], tokens_db[400];

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("erase-e2e");
    if (dir == NULL)
        return -1;
    char sasl[300], text[1500];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    snprintf(hsock, sizeof hsock, "%s/h.sock", dir);
    snprintf(hlog, sizeof hlog, "%s/h.log", dir);
    snprintf(hconf, sizeof hconf, "%s/h.conf", dir);
    snprintf(tokens_db, sizeof tokens_db, "%s/h-state/tokens.db", dir);
    snprintf(text, sizeof text,
             "listen_unix = \"%s\"\nstate_dir = \"%s/h-state\"\n"
             "auth_unix = [\"token\", \"sasl\"]\nsasl_conf_dir = \"%s\"\n"
             "sasl_realm = \"" REALM "\"\n",
             hsock, dir, sasl);
    vb_ts_write_file(hconf, text, 0600);
    char *hargv[] = { VB_BUILD_DIR "/vbhostd", "-f", hconf, "--foreground", NULL };
    if (vb_ts_spawn(hargv, NULL, hlog) < 0 || vb_ts_wait_unix_socket(hsock, START_MS) < 0)
        return -1;

    snprintf(bsock, sizeof bsock, "%s/b-run/sock", dir);
    snprintf(blog, sizeof blog, "%s/b.log", dir);
    snprintf(bstate, sizeof bstate, "%s/b-state", dir);
    snprintf(cache_db, sizeof cache_db, "%s/cache.db", bstate);
    char *bargv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", bsock, "--state-dir", bstate, NULL };
    if (vb_ts_spawn(bargv, NULL, blog) < 0 || vb_ts_wait_unix_socket(bsock, START_MS) < 0)
        return -1;
    return 0;
}

static int vbctl(char *const argv[], const char *input)
{
    char env_sock[400];
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s", bsock);
    char *env[] = { env_sock, "VBROKER_NO_AUTOSTART=1", NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, env, input, &out, 30000);
    if (rc != 0)
        print_error("%s: exit %d: %s\n", argv[1], rc, out ? out : "");
    free(out);
    return rc;
}

/* The one secret in the table (a separate read-only connection, closed
 * before the erase). */
static size_t read_secret(const char *db_path, const char *sql, uint8_t *out, size_t cap)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    size_t n = (size_t)sqlite3_column_bytes(stmt, 0);
    assert_true(n >= 16 && n <= cap);
    memcpy(out, sqlite3_column_blob(stmt, 0), n);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

static const char *const SIDES[] = { "", "-wal", "-shm", "-journal" };

/* How many of the store's files hold the secret, raw or as hex (each
 * printed when report is set). */
static int files_holding(const char *db_path, const uint8_t *secret, size_t n, int report)
{
    char hex[2 * 64 + 1];
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", secret[i]);
    int found = 0;
    for (size_t i = 0; i < sizeof SIDES / sizeof *SIDES; i++) {
        char path[500];
        snprintf(path, sizeof path, "%s%s", db_path, SIDES[i]);
        if (access(path, F_OK) != 0)
            continue;
        size_t len = 0;
        char *data = vb_ts_read_file(path, &len);
        assert_non_null(data);
        if (memmem(data, len, secret, n) != NULL || memmem(data, len, hex, 2 * n) != NULL) {
            if (report)
                print_error("token secret found in %s\n", path);
            found++;
        }
        free(data);
    }
    return found;
}

static void test_logout_leaves_no_secret_in_either_store(void **state)
{
    (void)state;
    char uri[400];
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s", hsock);
    char *login[] = { VB_BUILD_DIR "/vbctl", "login", uri, NULL };
    assert_int_equal(vbctl(login, "alice\n" PASSWORD "\n"), 0);

    uint8_t secret[64], daemon_secret[64];
    size_t n = read_secret(cache_db, "SELECT secret FROM logins", secret, sizeof secret);
    size_t dn = read_secret(tokens_db, "SELECT secret FROM tokens", daemon_secret,
                            sizeof daemon_secret);
    assert_int_equal(n, dn);
    assert_memory_equal(secret, daemon_secret, n);
    assert_true(files_holding(cache_db, secret, n, 0) >= 1);
    assert_true(files_holding(tokens_db, secret, n, 0) >= 1);

    char *logout[] = { VB_BUILD_DIR "/vbctl", "logout", uri, NULL };
    assert_int_equal(vbctl(logout, NULL), 0);
    /* both daemons still run, their connections open */
    assert_int_equal(files_holding(cache_db, secret, n, 1), 0);
    assert_int_equal(files_holding(tokens_db, secret, n, 1), 0);
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(daemon_secret, sizeof daemon_secret);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logout_leaves_no_secret_in_either_store),
    };
    return cmocka_run_group_tests_name("erase-e2e", tests, group_setup, vb_ts_group_teardown);
}
