/* Store tests: the private dir and 0600 file, the schema version, the
 * daemon's issued tokens (add, get, expire, revoke, touch, list, purge), the
 * broker's cached logins (realm match, latest wins, exact erase), two
 * processes writing at once without losing a row, and secrets kept as
 * blobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vb_store.h"
#include "vb_testsupport.h"

#define T0 1700000000   /* "now" in the token and login stories */
#define SERVER_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SERVER_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* ---- helpers ------------------------------------------------------------ */

static char *join(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return sb.st_mode & 07777;
}

static vb_store *open_ok(const char *path, enum vb_store_kind kind)
{
    vb_store *st = NULL;
    vb_error err;
    vb_error_clear(&err);
    if (vb_store_open(path, kind, &st, &err) != 0)
        fail_msg("vb_store_open %s: %s", path, err.message);
    assert_non_null(st);
    return st;
}

/* The call returned -1 with code in the store domain and a message holding
 * fragment. */
static void assert_fails(int rc, const vb_error *err, int code, const char *fragment)
{
    assert_int_equal(rc, -1);
    if (err->code != code || err->domain != VB_DOM_STORE ||
        (fragment && !strstr(err->message, fragment)))
        fail_msg("want code %d with '%s', got code %d domain %d: %s", code,
                 fragment ? fragment : "", err->code, err->domain, err->message);
}

static void open_fails(const char *path, enum vb_store_kind kind, int code, const char *fragment)
{
    vb_store *st = (vb_store *)1;
    vb_error err;
    vb_error_clear(&err);
    assert_fails(vb_store_open(path, kind, &st, &err), &err, code, fragment);
    assert_null(st);
}

/* Run one SQL statement on the file directly (not through the store). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static vb_cached_login login(const char *server_id, const char *identity, const char *token_id,
                             const char *uri, int64_t created, int64_t expires)
{
    vb_cached_login rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.server_id, sizeof rec.server_id, "%s", server_id);
    snprintf(rec.identity, sizeof rec.identity, "%s", identity);
    snprintf(rec.token_id, sizeof rec.token_id, "%s", token_id);
    snprintf(rec.uri, sizeof rec.uri, "%s", uri);
    snprintf(rec.auth_type, sizeof rec.auth_type, "sasl");
    rec.created = created;
    rec.expires = expires;
    return rec;
}

static void put_ok(vb_store *st, const vb_cached_login *rec, const char *secret)
{
    vb_error err;
    if (vb_store_login_put(st, rec, (const uint8_t *)secret, strlen(secret), &err) != 0)
        fail_msg("login_put: %s", err.message);
}

/* login_get → 1 with this token id and secret. */
static void get_login_is(vb_store *st, const char *server, const char *user, int64_t now,
                         const char *token_id, const char *secret)
{
    vb_cached_login rec;
    uint8_t buf[VB_STORE_SECRET_MAX];
    size_t len = 0;
    vb_error err;
    vb_error_clear(&err);
    int rc = vb_store_login_get(st, server, NULL, user, now, &rec, buf, sizeof buf, &len, &err);
    if (rc != 1)
        fail_msg("login_get %s user %s: rc %d (%s), want %s", server, user ? user : "(any)",
                 rc, err.message, token_id);
    assert_string_equal(rec.token_id, token_id);
    assert_string_equal(rec.server_id, server);
    assert_int_equal(len, strlen(secret));
    assert_memory_equal(buf, secret, len);
    explicit_bzero(buf, sizeof buf);
}

static void get_login_none(vb_store *st, const char *server, const char *user, int64_t now)
{
    vb_cached_login rec;
    uint8_t buf[VB_STORE_SECRET_MAX];
    size_t len = 99;
    vb_error err;
    vb_error_clear(&err);
    int rc = vb_store_login_get(st, server, NULL, user, now, &rec, buf, sizeof buf, &len, &err);
    if (rc != 0)
        fail_msg("login_get %s user %s: rc %d (%s) token %s, want none", server,
                 user ? user : "(any)", rc, err.message, rec.token_id);
    assert_int_equal(len, 0);
}

static const uint8_t SECRET1[32] = { 0x00, 0xff, 0x10, 0x80, 's', 'e', 'c', 'r', 'e', 't', '-',
                                     '1', 0x00, 0x7f, 0xc3, 0x28, 1, 2, 3, 4, 5, 6, 7, 8,
                                     9, 10, 11, 12, 13, 14, 15, 16 };

/* ---- the directory and the file ----------------------------------------- */

static void test_open_creates_private_file(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    assert_non_null(dir);
    assert_int_equal(mode_of(dir), 0700);
    char *path = join(dir, "tokens.db");

    /* umask 0: the modes must come from the store, not from the umask */
    mode_t old = umask(0);
    vb_store *st = open_ok(path, VB_STORE_DAEMON_TOKENS);
    vb_error err;
    assert_int_equal(vb_store_token_add(st, "t1", SECRET1, sizeof SECRET1, "alice", "sasl", T0,
                                        T0 + 60, &err),
                     0);
    umask(old);

    assert_int_equal(mode_of(path), 0600);
    char *wal = join(dir, "tokens.db-wal"), *shm = join(dir, "tokens.db-shm");
    assert_int_equal(mode_of(wal), 0600);
    assert_int_equal(mode_of(shm), 0600);
    vb_store_close(st);

    /* reopening the existing file is fine */
    st = open_ok(path, VB_STORE_DAEMON_TOKENS);
    vb_store_close(st);
    vb_store_close(NULL);
    free(wal);
    free(shm);
    free(path);
}

static void test_open_refuses_open_dir(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    char *path = join(dir, "cache.db");

    assert_int_equal(chmod(dir, 0755), 0);
    open_fails(path, VB_STORE_BROKER_CACHE, VB_ERR_CONFIG, "0755");
    open_fails(path, VB_STORE_BROKER_CACHE, VB_ERR_CONFIG, dir);
    assert_int_equal(access(path, F_OK), -1); /* nothing was created */

    assert_int_equal(chmod(dir, 0710), 0);
    open_fails(path, VB_STORE_BROKER_CACHE, VB_ERR_CONFIG, "0710");

    if (geteuid() == 0) {
        assert_int_equal(chmod(dir, 0700), 0);
        assert_int_equal(chown(dir, 65534, 65534), 0);
        open_fails(path, VB_STORE_BROKER_CACHE, VB_ERR_CONFIG, "uid 65534");
        assert_int_equal(chown(dir, 0, 0), 0);
    }

    char *missing = join(dir, "no/such/dir/cache.db");
    assert_int_equal(chmod(dir, 0700), 0);
    open_fails(missing, VB_STORE_BROKER_CACHE, VB_ERR_CONFIG, "no/such/dir");
    free(missing);
    free(path);
}

static void test_open_refuses_open_file(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    char *path = join(dir, "tokens.db");

    assert_int_equal(vb_ts_write_file(path, "", 0644), 0);
    open_fails(path, VB_STORE_DAEMON_TOKENS, VB_ERR_CONFIG, "0644");

    /* a store that was fine, opened up later */
    assert_int_equal(unlink(path), 0);
    vb_store_close(open_ok(path, VB_STORE_DAEMON_TOKENS));
    assert_int_equal(chmod(path, 0640), 0);
    open_fails(path, VB_STORE_DAEMON_TOKENS, VB_ERR_CONFIG, "0640");
    assert_int_equal(chmod(path, 0600), 0);
    vb_store_close(open_ok(path, VB_STORE_DAEMON_TOKENS));

    /* a readable side file left behind */
    char *wal = join(dir, "tokens.db-wal");
    assert_int_equal(vb_ts_write_file(wal, "", 0644), 0);
    open_fails(path, VB_STORE_DAEMON_TOKENS, VB_ERR_CONFIG, "tokens.db-wal");
    assert_int_equal(unlink(wal), 0);

    /* a symlink, even to a good store */
    char *link = join(dir, "link.db");
    assert_int_equal(symlink(path, link), 0);
    open_fails(link, VB_STORE_DAEMON_TOKENS, VB_ERR_CONFIG, "symbolic link");

    if (geteuid() == 0) {
        assert_int_equal(chown(path, 65534, 65534), 0);
        open_fails(path, VB_STORE_DAEMON_TOKENS, VB_ERR_CONFIG, "uid 65534");
    }
    free(link);
    free(wal);
    free(path);
}

static void test_prepare_dir(void **state)
{
    (void)state;
    char *base = vb_ts_tmpdir("store");
    char *a = join(base, "a"), *ab = join(base, "a/b"), *abc = join(base, "a/b/c/");
    vb_error err;
    vb_error_clear(&err);

    mode_t old = umask(0);
    int rc = vb_store_prepare_dir(abc, &err);
    umask(old);
    if (rc != 0)
        fail_msg("prepare_dir: %s", err.message);
    assert_int_equal(mode_of(a), 0700);
    assert_int_equal(mode_of(ab), 0700);
    assert_int_equal(mode_of(abc), 0700);
    /* an existing good one is fine, and a store opens in it */
    assert_int_equal(vb_store_prepare_dir(abc, &err), 0);
    char *db = join(abc, "cache.db");
    vb_store_close(open_ok(db, VB_STORE_BROKER_CACHE));

    assert_int_equal(chmod(ab, 0755), 0);
    assert_fails(vb_store_prepare_dir(ab, &err), &err, VB_ERR_CONFIG, "0755");
    assert_non_null(strstr(err.message, ab));
    /* a parent we did not create is left alone */
    assert_int_equal(vb_store_prepare_dir(abc, &err), 0);
    assert_int_equal(mode_of(ab), 0755);

    char *file = join(base, "file");
    assert_int_equal(vb_ts_write_file(file, "x", 0600), 0);
    assert_fails(vb_store_prepare_dir(file, &err), &err, VB_ERR_CONFIG, "not a directory");
    assert_fails(vb_store_prepare_dir("", &err), &err, VB_ERR_INVALID_ARG, NULL);
    free(file);
    free(db);
    free(a);
    free(ab);
    free(abc);
}

/* ---- schema --------------------------------------------------------------- */

static void test_schema_version(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    char *path = join(dir, "tokens.db");
    vb_store_close(open_ok(path, VB_STORE_DAEMON_TOKENS));

    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT kind, version FROM schema_version", -1,
                                        &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "daemon-tokens");
    assert_int_equal(sqlite3_column_int64(stmt, 1), VB_STORE_SCHEMA_VERSION);
    assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);

    /* the other kind of store is refused, and the file is left as it was */
    open_fails(path, VB_STORE_BROKER_CACHE, VB_ERR_STORE, "daemon-tokens");
    vb_store_close(open_ok(path, VB_STORE_DAEMON_TOKENS));

    /* a newer build wrote it */
    raw_exec(path, "UPDATE schema_version SET version = 99");
    open_fails(path, VB_STORE_DAEMON_TOKENS, VB_ERR_STORE, "schema version 99");

    /* some other program's sqlite file */
    char *foreign = join(dir, "foreign.db");
    assert_int_equal(vb_ts_write_file(foreign, "", 0600), 0);
    raw_exec(foreign, "CREATE TABLE t (x)");
    open_fails(foreign, VB_STORE_DAEMON_TOKENS, VB_ERR_STORE, "not a vbroker store");

    /* an empty 0600 file (a crash right after creation) becomes a store */
    char *empty = join(dir, "empty.db");
    assert_int_equal(vb_ts_write_file(empty, "", 0600), 0);
    vb_store_close(open_ok(empty, VB_STORE_BROKER_CACHE));
    free(empty);
    free(foreign);
    free(path);
}

/* ---- daemon tokens ------------------------------------------------------- */

static vb_store *token_store(void)
{
    char *dir = vb_ts_tmpdir("store");
    char *path = join(dir, "tokens.db");
    vb_store *st = open_ok(path, VB_STORE_DAEMON_TOKENS);
    free(path);
    return st;
}

static void test_token_lifecycle(void **state)
{
    (void)state;
    vb_store *st = token_store();
    vb_error err;
    vb_error_clear(&err);
    assert_int_equal(vb_store_token_add(st, "tok-a", SECRET1, sizeof SECRET1, "alice@LAB.TEST",
                                        "sasl", T0, T0 + 3600, &err),
                     0);
    assert_int_equal(vb_store_token_add(st, "tok-b", (const uint8_t *)"bob-secret", 10, "bob",
                                        "token", T0 + 1, T0 + 60, &err),
                     0);

    uint8_t buf[VB_STORE_SECRET_MAX];
    size_t len = 0;
    vb_token_record rec;
    assert_int_equal(vb_store_token_get(st, "tok-a", T0 + 10, buf, sizeof buf, &len, &rec, &err),
                     1);
    assert_int_equal(len, sizeof SECRET1);
    assert_memory_equal(buf, SECRET1, len);
    assert_string_equal(rec.id, "tok-a");
    assert_string_equal(rec.identity, "alice@LAB.TEST");
    assert_string_equal(rec.auth_type, "sasl");
    assert_int_equal(rec.created, T0);
    assert_int_equal(rec.expires, T0 + 3600);
    assert_int_equal(rec.last_used, 0);
    assert_int_equal(rec.revoked, 0);

    /* unknown: 0, rec zeroed */
    assert_int_equal(vb_store_token_get(st, "nope", T0, buf, sizeof buf, &len, &rec, &err), 0);
    assert_int_equal(len, 0);
    assert_string_equal(rec.id, "");

    /* expired at exactly expires: 0, no secret, but rec says why */
    memset(buf, 0, sizeof buf);
    assert_int_equal(vb_store_token_get(st, "tok-b", T0 + 60, buf, sizeof buf, &len, &rec, &err),
                     0);
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], 0);
    assert_string_equal(rec.identity, "bob");
    assert_int_equal(rec.expires, T0 + 60);
    assert_int_equal(vb_store_token_get(st, "tok-b", T0 + 59, buf, sizeof buf, &len, NULL, &err),
                     1);

    /* touch records the latest use and never goes back */
    assert_int_equal(vb_store_token_touch(st, "tok-a", T0 + 20, &err), 1);
    assert_int_equal(vb_store_token_touch(st, "tok-a", T0 + 15, &err), 1);
    assert_int_equal(vb_store_token_touch(st, "nope", T0 + 20, &err), 0);
    assert_int_equal(vb_store_token_get(st, "tok-a", T0 + 30, buf, sizeof buf, &len, &rec, &err),
                     1);
    assert_int_equal(rec.last_used, T0 + 20);

    /* revoke by someone else: 0, still valid; by the owner: 1, then refused */
    assert_int_equal(vb_store_token_revoke(st, "tok-a", "bob", &err), 0);
    assert_int_equal(vb_store_token_revoke(st, "tok-a", "alice", &err), 0); /* no realm match */
    assert_int_equal(vb_store_token_revoke(st, "nope", NULL, &err), 0);
    assert_int_equal(vb_store_token_get(st, "tok-a", T0 + 30, buf, sizeof buf, &len, &rec, &err),
                     1);
    assert_int_equal(vb_store_token_revoke(st, "tok-a", "alice@LAB.TEST", &err), 1);
    assert_int_equal(vb_store_token_get(st, "tok-a", T0 + 30, buf, sizeof buf, &len, &rec, &err),
                     0);
    assert_int_equal(len, 0);
    assert_int_equal(rec.revoked, 1);
    assert_string_equal(rec.identity, "alice@LAB.TEST");
    assert_int_equal(vb_store_token_revoke(st, "tok-b", NULL, &err), 1); /* admin: any owner */

    /* list: every row, oldest first */
    assert_int_equal(vb_store_token_add(st, "tok-c", (const uint8_t *)"c", 1, "carol", "sasl",
                                        T0 + 2, T0 + 7200, &err),
                     0);
    vb_token_record *recs = NULL;
    size_t n = 0;
    assert_int_equal(vb_store_token_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(recs[0].id, "tok-a");
    assert_int_equal(recs[0].revoked, 1);
    assert_int_equal(recs[0].last_used, T0 + 20);
    assert_string_equal(recs[1].id, "tok-b");
    assert_string_equal(recs[2].id, "tok-c");
    assert_string_equal(recs[2].identity, "carol");
    free(recs);

    /* purge: expired before now - keep, revoked or not; the live one stays */
    assert_int_equal(vb_store_token_purge(st, T0 + 3600 + 100, 200, &err), 1);  /* tok-b */
    assert_int_equal(vb_store_token_purge(st, T0 + 3600 + 100, 100, &err), 1);  /* tok-a */
    assert_int_equal(vb_store_token_purge(st, T0 + 3600 + 100, 0, &err), 0);
    assert_int_equal(vb_store_token_purge(st, INT64_MIN + 5, 10, &err), 0);
    assert_int_equal(vb_store_token_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(recs[0].id, "tok-c");
    free(recs);
    assert_int_equal(vb_store_token_purge(st, T0 + 7200, 0, &err), 1);
    assert_int_equal(vb_store_token_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(recs);

    explicit_bzero(buf, sizeof buf);
    vb_store_close(st);
}

static void test_token_bad_args(void **state)
{
    (void)state;
    vb_store *st = token_store();
    vb_error err;
    vb_error_clear(&err);
    char id65[66], ident256[257];
    memset(id65, 'x', 65);
    id65[65] = '\0';
    memset(ident256, 'i', 256);
    ident256[256] = '\0';
    const uint8_t *s = (const uint8_t *)"s3cr3t-value-XYZ";
    uint8_t buf[VB_STORE_SECRET_MAX + 1] = { 0 };
    size_t len;

    assert_fails(vb_store_token_add(st, id65, s, 16, "alice", "sasl", T0, T0 + 1, &err), &err,
                 VB_ERR_INVALID_ARG, "token id");
    id65[64] = '\0'; /* 64 is fine */
    assert_int_equal(vb_store_token_add(st, id65, s, 16, "alice", "sasl", T0, T0 + 9, &err), 0);
    assert_fails(vb_store_token_add(st, "t", s, 16, ident256, "sasl", T0, T0 + 1, &err), &err,
                 VB_ERR_INVALID_ARG, "identity");
    assert_fails(vb_store_token_add(st, "t", s, 16, "", "sasl", T0, T0 + 1, &err), &err,
                 VB_ERR_INVALID_ARG, "identity");
    assert_fails(vb_store_token_add(st, "t", buf, VB_STORE_SECRET_MAX + 1, "a", "sasl", T0,
                                    T0 + 1, &err),
                 &err, VB_ERR_INVALID_ARG, "secret");
    assert_fails(vb_store_token_add(st, "t", s, 0, "a", "sasl", T0, T0 + 1, &err), &err,
                 VB_ERR_INVALID_ARG, "secret");
    assert_fails(vb_store_token_add(st, "t", s, 16, "a", "sasl-with-a-long-name", T0, T0 + 1,
                                    &err),
                 &err, VB_ERR_INVALID_ARG, "auth type");
    assert_fails(vb_store_token_get(st, id65, T0, buf, 32, &len, NULL, &err), &err,
                 VB_ERR_INVALID_ARG, "secret buffer");

    /* a duplicate id is a store error that names the id, never the secret */
    assert_fails(vb_store_token_add(st, id65, s, 16, "bob", "sasl", T0, T0 + 9, &err), &err,
                 VB_ERR_STORE, id65);
    assert_null(strstr(err.message, "s3cr3t"));
    assert_int_equal(vb_store_token_get(st, id65, T0, buf, sizeof buf, &len, NULL, &err), 1);
    assert_memory_equal(buf, s, 16);

    /* the broker's calls on the daemon's store */
    vb_cached_login rec = login(SERVER_A, "alice", "t", "vb+tcp://h/", T0, T0 + 1);
    assert_fails(vb_store_login_put(st, &rec, s, 16, &err), &err, VB_ERR_INVALID_ARG,
                 "daemon token store");
    assert_fails(vb_store_token_list(NULL, NULL, NULL, &err), &err, VB_ERR_INVALID_ARG, NULL);
    vb_store_close(st);
}

/* ---- broker logins -------------------------------------------------------- */

static vb_store *login_store(char **dir_out)
{
    char *dir = vb_ts_tmpdir("store");
    char *path = join(dir, "cache.db");
    vb_store *st = open_ok(path, VB_STORE_BROKER_CACHE);
    free(path);
    if (dir_out)
        *dir_out = dir;
    return st;
}

static void test_login_get_matching(void **state)
{
    (void)state;
    vb_store *st = login_store(NULL);
    const char *uri = "vb+tcp://hostA/system";
    vb_cached_login r;

    r = login(SERVER_A, "alice@LAB.TEST", "tok-realm", uri, T0, T0 + 3600);
    put_ok(st, &r, "sec-realm");
    r = login(SERVER_A, "alice", "tok-plain", uri, T0 - 100, T0 + 3600);
    put_ok(st, &r, "sec-plain");
    r = login(SERVER_A, "alicex@LAB.TEST", "tok-alicex", uri, T0 + 50, T0 + 3600);
    put_ok(st, &r, "sec-alicex");
    r = login(SERVER_A, "bob", "tok-bob", uri, T0 + 10, T0 + 3600);
    put_ok(st, &r, "sec-bob");
    /* the latest of all, but expired by T0 + 100 */
    r = login(SERVER_A, "alice@OTHER", "tok-expiring", uri, T0 + 90, T0 + 100);
    put_ok(st, &r, "sec-expiring");
    r = login(SERVER_B, "alice@LAB.TEST", "tok-b", "vb+tcp://hostB/", T0 + 500, T0 + 3600);
    put_ok(st, &r, "sec-b");

    /* alice with a realm, latest created first; alicex is another user */
    get_login_is(st, SERVER_A, "alice", T0 + 1, "tok-expiring", "sec-expiring");
    get_login_is(st, SERVER_A, "alice", T0 + 100, "tok-realm", "sec-realm");
    get_login_is(st, SERVER_A, "alice@LAB.TEST", T0 + 100, "tok-realm", "sec-realm");
    get_login_is(st, SERVER_A, "alicex", T0 + 100, "tok-alicex", "sec-alicex");
    get_login_is(st, SERVER_A, "bob", T0 + 100, "tok-bob", "sec-bob");
    get_login_is(st, SERVER_A, NULL, T0 + 100, "tok-alicex", "sec-alicex");
    get_login_none(st, SERVER_A, "ali", T0 + 100);
    get_login_none(st, SERVER_A, "Alice", T0 + 100);
    get_login_none(st, SERVER_A, "alice@LAB", T0 + 100);
    get_login_none(st, SERVER_A, "carol", T0 + 100);
    /* everything expired */
    get_login_none(st, SERVER_A, NULL, T0 + 3600);
    /* another server's login is never returned, whatever the user */
    get_login_is(st, SERVER_B, "alice", T0 + 100, "tok-b", "sec-b");
    get_login_none(st, SERVER_B, "bob", T0 + 100);
    get_login_none(st, "sha256:cccc", NULL, T0 + 100);

    vb_cached_login out;
    uint8_t buf[VB_STORE_SECRET_MAX];
    size_t len;
    vb_error err;
    get_login_none(st, SERVER_A, "", T0 + 100); /* "" is a user name, not "anyone" */
    char user256[257];
    memset(user256, 'u', 256);
    user256[256] = '\0';
    assert_fails(vb_store_login_get(st, SERVER_A, NULL, user256, T0, &out, buf, sizeof buf, &len,
                                    &err),
                 &err, VB_ERR_INVALID_ARG, "user");
    assert_fails(vb_store_login_get(st, SERVER_A, NULL, NULL, T0, &out, buf, 16, &len, &err), &err,
                 VB_ERR_INVALID_ARG, "secret buffer");
    vb_store_close(st);
}

static void test_login_upsert_and_exact_erase(void **state)
{
    (void)state;
    vb_store *st = login_store(NULL);
    vb_error err;
    const char *uri = "vb+tcp://hostA/system";
    vb_cached_login r = login(SERVER_A, "alice@LAB.TEST", "tok-old", uri, T0, T0 + 3600);
    put_ok(st, &r, "sec-old");
    /* another client logs in again meanwhile: same server and identity */
    r = login(SERVER_A, "alice@LAB.TEST", "tok-new", uri, T0 + 5, T0 + 7200);
    put_ok(st, &r, "sec-new");

    vb_cached_login *recs = NULL;
    size_t n = 0;
    assert_int_equal(vb_store_login_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(recs[0].token_id, "tok-new");
    assert_int_equal(recs[0].expires, T0 + 7200);
    free(recs);

    /* the old token failed: erasing it leaves the newer one */
    assert_int_equal(vb_store_login_erase(st, SERVER_A, "tok-old", &err), 0);
    get_login_is(st, SERVER_A, "alice", T0 + 10, "tok-new", "sec-new");
    assert_int_equal(vb_store_login_erase(st, SERVER_B, "tok-new", &err), 0);
    assert_int_equal(vb_store_login_erase(st, SERVER_A, "tok-new", &err), 1);
    assert_int_equal(vb_store_login_erase(st, SERVER_A, "tok-new", &err), 0);
    get_login_none(st, SERVER_A, NULL, T0 + 10);

    /* fields over their bound are refused */
    r = login(SERVER_A, "alice", "t", uri, T0, T0 + 1);
    memset(r.uri, 'u', sizeof r.uri); /* no terminator */
    assert_fails(vb_store_login_put(st, &r, (const uint8_t *)"s", 1, &err), &err,
                 VB_ERR_INVALID_ARG, "uri");
    r = login(SERVER_A, "", "t", uri, T0, T0 + 1);
    assert_fails(vb_store_login_put(st, &r, (const uint8_t *)"s", 1, &err), &err,
                 VB_ERR_INVALID_ARG, "identity");
    vb_store_close(st);
}

static void test_login_list_and_erase_uri(void **state)
{
    (void)state;
    vb_store *st = login_store(NULL);
    vb_error err;
    vb_cached_login r;
    r = login(SERVER_B, "carol", "t3", "vb+tcp://hostB/", T0, T0 + 60);
    put_ok(st, &r, "s3");
    r = login(SERVER_A, "bob", "t2", "vb+tcp://hostA/", T0, T0 + 60);
    put_ok(st, &r, "s2");
    r = login(SERVER_A, "alice", "t1", "vb+tcp://hostA/", T0, T0 + 60);
    put_ok(st, &r, "s1");

    vb_cached_login *recs = NULL;
    size_t n = 0;
    assert_int_equal(vb_store_login_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(recs[0].identity, "alice");
    assert_string_equal(recs[0].uri, "vb+tcp://hostA/");
    assert_string_equal(recs[0].auth_type, "sasl");
    assert_string_equal(recs[1].identity, "bob");
    assert_string_equal(recs[2].server_id, SERVER_B);
    free(recs);

    assert_int_equal(vb_store_login_erase_uri(st, "vb+tcp://hostA/", &err), 2);
    assert_int_equal(vb_store_login_erase_uri(st, "vb+tcp://hostA/", &err), 0);
    assert_int_equal(vb_store_login_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(recs[0].identity, "carol");
    free(recs);
    r = login(SERVER_A, "alice", "t1", "vb+tcp://hostA/", T0, T0 + 60);
    put_ok(st, &r, "s1");
    assert_int_equal(vb_store_login_erase_uri(st, NULL, &err), 2);
    assert_int_equal(vb_store_login_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(recs);
    vb_store_close(st);
}

static void test_login_purge_erases_only_expired(void **state)
{
    (void)state;
    vb_store *st = login_store(NULL);
    vb_error err;
    vb_cached_login r = login(SERVER_A, "alice", "t1", "vb+tcp://hostA/", T0, T0 + 10);
    put_ok(st, &r, "s-expires-at-10");
    r = login(SERVER_B, "bob", "t2", "vb+tcp://hostB/", T0, T0 + 60);
    put_ok(st, &r, "s-expires-at-60");
    assert_int_equal(vb_store_login_purge(st, T0 + 9, &err), 0);
    assert_int_equal(vb_store_login_purge(st, T0 + 10, &err), 1); /* expires <= now */
    assert_int_equal(vb_store_login_purge(st, T0 + 10, &err), 0);
    vb_cached_login *recs = NULL;
    size_t n = 0;
    assert_int_equal(vb_store_login_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(recs[0].identity, "bob");
    free(recs);
    vb_store_close(st);
}

/* ---- processes ------------------------------------------------------------ */

#define PER_CHILD 500

/* In a forked child: open path, write PER_CHILD rows, exit 0 (else 1 and a
 * line on stderr). Never returns. */
static void child_writes(const char *path, enum vb_store_kind kind, int which)
{
    vb_store *st = NULL;
    vb_error err;
    vb_error_clear(&err);
    if (vb_store_open(path, kind, &st, &err) != 0) {
        fprintf(stderr, "child %d: open: %s\n", which, err.message);
        _exit(1);
    }
    for (int i = 0; i < PER_CHILD; i++) {
        char ident[64], id[64];
        snprintf(ident, sizeof ident, "user-%d-%d@LAB.TEST", which, i);
        snprintf(id, sizeof id, "tok-%d-%d", which, i);
        int rc;
        if (kind == VB_STORE_BROKER_CACHE) {
            vb_cached_login r = login(SERVER_A, ident, id, "vb+tcp://h/", T0 + i, T0 + 3600);
            rc = vb_store_login_put(st, &r, (const uint8_t *)id, strlen(id), &err);
        } else {
            rc = vb_store_token_add(st, id, (const uint8_t *)id, strlen(id), ident, "sasl",
                                    T0 + i, T0 + 3600, &err);
        }
        if (rc != 0) {
            fprintf(stderr, "child %d: write %d: %s\n", which, i, err.message);
            _exit(1);
        }
    }
    vb_store_close(st);
    _exit(0);
}

/* Both children start at once (they wait for the pipe to close), so they
 * also race to create and set up a new file. */
static void run_two_writers(const char *path, enum vb_store_kind kind)
{
    int gate[2];
    assert_int_equal(pipe(gate), 0);
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            char b;
            close(gate[1]);
            if (read(gate[0], &b, 1) != 0)
                _exit(1);
            close(gate[0]);
            child_writes(path, kind, c);
        }
    }
    close(gate[0]);
    close(gate[1]);
    for (int c = 0; c < 2; c++) {
        int status = 0;
        assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("writer %d failed (status 0x%x)", c, status);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Two processes create the file at once and each store 500 logins. */
static void test_concurrent_login_put(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    char *path = join(dir, "cache.db");
    double t = now_s();
    run_two_writers(path, VB_STORE_BROKER_CACHE);
    print_message("two writers, %d logins each: %.2f s\n", PER_CHILD, now_s() - t);

    vb_store *st = open_ok(path, VB_STORE_BROKER_CACHE);
    vb_cached_login *recs = NULL;
    size_t n = 0;
    vb_error err;
    assert_int_equal(vb_store_login_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 2 * PER_CHILD);
    free(recs);
    get_login_is(st, SERVER_A, "user-1-499", T0, "tok-1-499", "tok-1-499");
    vb_store_close(st);
    free(path);
}

/* The parent holds the file open while two children add 500 tokens each. */
static void test_concurrent_token_add(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    char *path = join(dir, "tokens.db");
    vb_store *st = open_ok(path, VB_STORE_DAEMON_TOKENS);
    double t = now_s();
    run_two_writers(path, VB_STORE_DAEMON_TOKENS);
    print_message("two writers, %d tokens each: %.2f s\n", PER_CHILD, now_s() - t);

    vb_token_record *recs = NULL;
    size_t n = 0;
    vb_error err;
    assert_int_equal(vb_store_token_list(st, &recs, &n, &err), 0);
    assert_int_equal(n, 2 * PER_CHILD);
    free(recs);
    vb_store_close(st);
    free(path);
}

/* Four processes open the same new file at once, round after round:
 * creating it, switching it to WAL and writing the schema must each happen
 * once, and no opener may fail for having lost the race. The parent starts
 * a round by writing one byte per opener into go[], and waits for one
 * result byte per opener on done[] before it starts the next. */
#define RACE_OPENERS 4
#define RACE_ROUNDS 40

static void race_opener(const char *dir, int go, int done)
{
    char b;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        if (read(go, &b, 1) != 1)
            _exit(1);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/race-%d.db", dir, round);
        vb_store *st = NULL;
        vb_error err;
        vb_error_clear(&err);
        char result = '0';
        if (vb_store_open(path, VB_STORE_DAEMON_TOKENS, &st, &err) != 0) {
            fprintf(stderr, "round %d, pid %ld: %s\n", round, (long)getpid(), err.message);
            result = '1';
        }
        vb_store_close(st);
        if (write(done, &result, 1) != 1)
            _exit(1);
    }
    _exit(0);
}

static void test_concurrent_open(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t pids[RACE_OPENERS];
    for (int c = 0; c < RACE_OPENERS; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            close(go[1]);
            close(done[0]);
            race_opener(dir, go[0], done[1]);
        }
    }
    close(go[0]);
    close(done[1]);

    double t = now_s();
    int failures = 0;
    for (int round = 0; round < RACE_ROUNDS; round++) {
        char bytes[RACE_OPENERS];
        memset(bytes, 'g', sizeof bytes);
        assert_int_equal(write(go[1], bytes, sizeof bytes), sizeof bytes);
        for (int c = 0; c < RACE_OPENERS; c++) {
            /* an opener that crashed never answers: fail, don't hang */
            struct pollfd pfd = { .fd = done[0], .events = POLLIN };
            if (poll(&pfd, 1, 10000) != 1)
                fail_msg("round %d: an opener did not answer within 10 s", round);
            assert_int_equal(read(done[0], bytes, 1), 1);
            failures += bytes[0] != '0';
        }
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/race-%d.db", dir, round);
        assert_int_equal(mode_of(path), 0600);
    }
    close(go[1]);
    close(done[0]);
    for (int c = 0; c < RACE_OPENERS; c++) {
        int status = 0;
        assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    print_message("%d rounds of %d openers: %.2f s\n", RACE_ROUNDS, RACE_OPENERS, now_s() - t);
    assert_int_equal(failures, 0);
}

/* A store opened before fork() is refused in the child, and the child
 * letting go of it does not disturb the parent. */
static void test_store_does_not_cross_fork(void **state)
{
    (void)state;
    vb_store *st = token_store();
    vb_error err;
    assert_int_equal(vb_store_token_add(st, "t1", SECRET1, 8, "alice", "sasl", T0, T0 + 60, &err),
                     0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint8_t buf[VB_STORE_SECRET_MAX];
        size_t len;
        vb_error cerr;
        vb_error_clear(&cerr);
        int rc = vb_store_token_get(st, "t1", T0, buf, sizeof buf, &len, NULL, &cerr);
        int ok = rc == -1 && cerr.code == VB_ERR_STORE && strstr(cerr.message, "fork") != NULL;
        vb_store_close(st);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    uint8_t buf[VB_STORE_SECRET_MAX];
    size_t len;
    assert_int_equal(vb_store_token_get(st, "t1", T0, buf, sizeof buf, &len, NULL, &err), 1);
    assert_int_equal(vb_store_token_add(st, "t2", SECRET1, 8, "bob", "sasl", T0, T0 + 60, &err),
                     0);
    vb_store_close(st);
}

/* ---- what is on disk ------------------------------------------------------ */

/* A secret goes in as a blob, byte for byte, in both kinds of store. */
static void test_secret_stored_as_blob(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    char *tpath = join(dir, "tokens.db"), *cpath = join(dir, "cache.db");
    vb_error err;
    vb_store *st = open_ok(tpath, VB_STORE_DAEMON_TOKENS);
    assert_int_equal(vb_store_token_add(st, "t1", SECRET1, sizeof SECRET1, "alice", "sasl", T0,
                                        T0 + 60, &err),
                     0);
    vb_store_close(st);
    st = open_ok(cpath, VB_STORE_BROKER_CACHE);
    vb_cached_login r = login(SERVER_A, "alice", "t1", "vb+tcp://h/", T0, T0 + 60);
    assert_int_equal(vb_store_login_put(st, &r, SECRET1, sizeof SECRET1, &err), 0);
    vb_store_close(st);

    const char *files[] = { tpath, cpath };
    const char *sql[] = { "SELECT typeof(secret), secret FROM tokens",
                          "SELECT typeof(secret), secret FROM logins" };
    for (int i = 0; i < 2; i++) {
        sqlite3 *db = NULL;
        sqlite3_stmt *stmt = NULL;
        assert_int_equal(sqlite3_open_v2(files[i], &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql[i], -1, &stmt, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "blob");
        assert_int_equal(sqlite3_column_bytes(stmt, 1), sizeof SECRET1);
        assert_memory_equal(sqlite3_column_blob(stmt, 1), SECRET1, sizeof SECRET1);
        assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
    }
    free(tpath);
    free(cpath);
}

static int file_contains(const char *path, const char *needle)
{
    size_t len = 0;
    char *data = vb_ts_read_file(path, &len);
    if (data == NULL)
        return 0;
    int found = memmem(data, len, needle, strlen(needle)) != NULL;
    free(data);
    return found;
}

/* Sanity for the byte-level checks: what was inserted can be found in the
 * files, what never was cannot. */
static void test_raw_file_bytes(void **state)
{
    (void)state;
    char *dir = NULL;
    vb_store *st = login_store(&dir);
    vb_cached_login r = login(SERVER_A, "marker-identity-present@LAB", "t1", "vb+tcp://h/", T0,
                              T0 + 60);
    put_ok(st, &r, "s1");
    char *db = join(dir, "cache.db"), *wal = join(dir, "cache.db-wal");
    /* the row may still be in the WAL only */
    int present = file_contains(db, "marker-identity-present@LAB") ||
                  file_contains(wal, "marker-identity-present@LAB");
    assert_true(present);
    assert_false(file_contains(db, "marker-identity-absent"));
    assert_false(file_contains(wal, "marker-identity-absent"));
    vb_store_close(st);
    /* closed: checkpointed into the main file */
    assert_true(file_contains(db, "marker-identity-present@LAB"));
    assert_false(file_contains(db, "marker-identity-absent"));
    free(db);
    free(wal);
}

/* A file written by a schema-1 build (no endpoint, no bound uid) migrates:
 * its login is kept but offered at no endpoint (log in again), its token is
 * bound to no uid; new rows carry both. */
static void test_schema_1_migrates_to_bound_tokens(void **state)
{
    (void)state;
    char *dir = vb_ts_tmpdir("store");
    char *cache = join(dir, "cache.db"), *tokens = join(dir, "tokens.db");
    assert_int_equal(vb_ts_write_file(cache, "", 0600), 0);
    assert_int_equal(vb_ts_write_file(tokens, "", 0600), 0);
    raw_exec(cache, "CREATE TABLE schema_version (kind TEXT NOT NULL, version INTEGER NOT NULL);"
                    "INSERT INTO schema_version VALUES ('broker-cache', 1);"
                    "CREATE TABLE logins (server_id TEXT NOT NULL, identity TEXT NOT NULL,"
                    " token_id TEXT NOT NULL, uri TEXT NOT NULL, auth_type TEXT NOT NULL,"
                    " secret BLOB NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
                    " PRIMARY KEY (server_id, identity));"
                    "INSERT INTO logins VALUES ('srv', 'alice', 'tok', 'test+unix:///x', 'sasl',"
                    " x'00ff', 1, 9999999999);");
    raw_exec(tokens, "CREATE TABLE schema_version (kind TEXT NOT NULL, version INTEGER NOT NULL);"
                     "INSERT INTO schema_version VALUES ('daemon-tokens', 1);"
                     "CREATE TABLE tokens (id TEXT PRIMARY KEY NOT NULL, secret BLOB NOT NULL,"
                     " identity TEXT NOT NULL, auth_type TEXT NOT NULL, created INTEGER NOT NULL,"
                     " expires INTEGER NOT NULL, last_used INTEGER NOT NULL DEFAULT 0,"
                     " revoked INTEGER NOT NULL DEFAULT 0);"
                     "INSERT INTO tokens (id, secret, identity, auth_type, created, expires)"
                     " VALUES ('old', x'00ff', 'alice', 'sasl', 1, 9999999999);");
    vb_error err;
    vb_cached_login rec;
    uint8_t buf[VB_STORE_SECRET_MAX];
    size_t len;
    vb_store *st = open_ok(cache, VB_STORE_BROKER_CACHE);
    assert_int_equal(vb_store_login_get(st, "srv", "unix:/x", NULL, 2, &rec, buf, sizeof buf, &len,
                                        &err),
                     0);
    assert_int_equal(vb_store_login_get(st, "srv", NULL, NULL, 2, &rec, buf, sizeof buf, &len, &err),
                     1);
    assert_string_equal(rec.endpoint, "");
    vb_cached_login fresh = login("srv", "bob", "tok2", "test+unix:///x", 3, 9999999999);
    snprintf(fresh.endpoint, sizeof fresh.endpoint, "unix:/x");
    put_ok(st, &fresh, "s2");
    assert_int_equal(vb_store_login_get(st, "srv", "unix:/x", NULL, 4, &rec, buf, sizeof buf, &len,
                                        &err),
                     1);
    assert_string_equal(rec.token_id, "tok2");
    assert_int_equal(vb_store_login_get(st, "srv", "unix:/y", NULL, 4, &rec, buf, sizeof buf, &len,
                                        &err),
                     0);
    vb_store_close(st);

    vb_token_record tr;
    st = open_ok(tokens, VB_STORE_DAEMON_TOKENS);
    assert_int_equal(vb_store_token_get(st, "old", 2, buf, sizeof buf, &len, &tr, &err), 1);
    assert_int_equal(tr.bound_uid, -1);
    assert_int_equal(vb_store_token_add_bound(st, "new", (const uint8_t *)"s", 1, "alice", "peer",
                                              2, 9999999999, 1000, &err),
                     0);
    assert_int_equal(vb_store_token_get(st, "new", 3, buf, sizeof buf, &len, &tr, &err), 1);
    assert_int_equal(tr.bound_uid, 1000);
    vb_store_close(st);
    explicit_bzero(buf, sizeof buf);
    free(cache);
    free(tokens);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_private_file),
        cmocka_unit_test(test_open_refuses_open_dir),
        cmocka_unit_test(test_open_refuses_open_file),
        cmocka_unit_test(test_prepare_dir),
        cmocka_unit_test(test_schema_version),
        cmocka_unit_test(test_schema_1_migrates_to_bound_tokens),
        cmocka_unit_test(test_token_lifecycle),
        cmocka_unit_test(test_token_bad_args),
        cmocka_unit_test(test_login_get_matching),
        cmocka_unit_test(test_login_upsert_and_exact_erase),
        cmocka_unit_test(test_login_list_and_erase_uri),
        cmocka_unit_test(test_login_purge_erases_only_expired),
        cmocka_unit_test(test_concurrent_login_put),
        cmocka_unit_test(test_concurrent_token_add),
        cmocka_unit_test(test_concurrent_open),
        cmocka_unit_test(test_store_does_not_cross_fork),
        cmocka_unit_test(test_secret_stored_as_blob),
        cmocka_unit_test(test_raw_file_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, vb_ts_group_teardown);
}
