/* Erase means gone: after every path that erases or replaces a secret (the
 * broker's token_rejected erase, logout of one URI, logout --all, the
 * expired-login purge, a re-login replacing a token; vbhostd's revoke and
 * purge) the secret's bytes are found in none of the store's files — not in
 * the database, not in its -wal, -shm or -journal — while the store is still
 * open (a broker runs for days) and after it is closed. The same with a
 * second connection open on the file, with another process reading it all
 * the while, and with a reader that holds its snapshot past the busy
 * timeout: then the erase says so, and the wipe happens on a later call.
 *
 * Each scan first proves itself: the secret is found before the erase. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vb_store.h"
#include "vb_testsupport.h"

#define T0 1700000000
#define SERVER_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SERVER_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SECRET_LEN 32
#define WINDOW 8 /* any 8 bytes of a 32-byte random secret count as a remnant */

/* ---- finding a secret in raw file bytes ----------------------------------- */

typedef struct secret {
    uint8_t raw[SECRET_LEN];
    char hex_lower[2 * SECRET_LEN + 1];
    char hex_upper[2 * SECRET_LEN + 1];
    char b64[3][4 * SECRET_LEN / 3 + 4]; /* from byte offset 0, 1, 2, whole groups only */
} secret;

static void base64_groups(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    out[o] = '\0';
}

/* A fresh random secret and the textual forms it could leak in: hex, and
 * base64 as it appears whatever its alignment inside a longer encoding. */
static secret new_secret(void)
{
    secret s;
    assert_int_equal(getrandom(s.raw, sizeof s.raw, 0), (ssize_t)sizeof s.raw);
    for (size_t i = 0; i < SECRET_LEN; i++) {
        snprintf(s.hex_lower + 2 * i, 3, "%02x", s.raw[i]);
        snprintf(s.hex_upper + 2 * i, 3, "%02X", s.raw[i]);
    }
    for (size_t k = 0; k < 3; k++)
        base64_groups(s.raw + k, SECRET_LEN - k, s.b64[k]);
    return s;
}

/* Where s shows in data, as text for a failure message; NULL if nowhere. */
static const char *find_secret(const uint8_t *data, size_t len, const secret *s)
{
    for (size_t off = 0; off + WINDOW <= SECRET_LEN; off++)
        if (memmem(data, len, s->raw + off, WINDOW) != NULL)
            return "raw bytes";
    if (memmem(data, len, s->hex_lower, strlen(s->hex_lower)) != NULL ||
        memmem(data, len, s->hex_upper, strlen(s->hex_upper)) != NULL)
        return "hex";
    for (size_t k = 0; k < 3; k++)
        if (memmem(data, len, s->b64[k], strlen(s->b64[k])) != NULL)
            return "base64";
    return NULL;
}

/* Every byte of path (NULL when it does not exist). */
static uint8_t *read_raw(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            fail_msg("opening %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0)
            fail_msg("reading %s: %s", path, strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return buf;
}

static const char *const SIDE_FILES[] = { "", "-wal", "-shm", "-journal" };
#define NSIDES (sizeof SIDE_FILES / sizeof *SIDE_FILES)

/* How many of db's files (db, -wal, -shm, -journal) hold s in any form; each
 * finding is printed when report is set. */
static int files_holding(const char *db, const secret *s, int report)
{
    int found = 0;
    for (size_t i = 0; i < NSIDES; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s", db, SIDE_FILES[i]);
        size_t len = 0;
        uint8_t *data = read_raw(path, &len);
        if (data == NULL)
            continue;
        const char *how = find_secret(data, len, s);
        if (how != NULL) {
            found++;
            if (report)
                print_error("secret found as %s in %s (%zu bytes)\n", how, path, len);
        }
        free(data);
    }
    return found;
}

static void assert_present(const char *db, const secret *s)
{
    if (files_holding(db, s, 0) == 0)
        fail_msg("the scan cannot find a secret that is stored in %s", db);
}

static void assert_gone(const char *db, const secret *s)
{
    if (files_holding(db, s, 1) != 0)
        fail_msg("an erased secret is still in the files of %s", db);
}

/* ---- stores --------------------------------------------------------------- */

typedef struct fixture {
    char *dir;
    char path[4096];
    vb_store *st;
    vb_store *second; /* another connection on the same file, or NULL */
} fixture;

static vb_store *open_ok(const char *path, enum vb_store_kind kind)
{
    vb_store *st = NULL;
    vb_error err;
    if (vb_store_open(path, kind, &st, &err) != 0)
        fail_msg("vb_store_open %s: %s", path, err.message);
    return st;
}

static void fixture_open(fixture *f, enum vb_store_kind kind, int second)
{
    memset(f, 0, sizeof *f);
    f->dir = vb_ts_tmpdir("erase");
    assert_non_null(f->dir);
    snprintf(f->path, sizeof f->path, "%s/%s", f->dir,
             kind == VB_STORE_BROKER_CACHE ? "cache.db" : "tokens.db");
    f->st = open_ok(f->path, kind);
    if (second)
        f->second = open_ok(f->path, kind);
}

static void fixture_close(fixture *f)
{
    vb_store_close(f->st);
    vb_store_close(f->second);
}

static vb_cached_login login(const char *server_id, const char *identity, const char *token_id,
                             const char *uri, int64_t expires)
{
    vb_cached_login rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.server_id, sizeof rec.server_id, "%s", server_id);
    snprintf(rec.identity, sizeof rec.identity, "%s", identity);
    snprintf(rec.token_id, sizeof rec.token_id, "%s", token_id);
    snprintf(rec.uri, sizeof rec.uri, "%s", uri);
    snprintf(rec.auth_type, sizeof rec.auth_type, "sasl");
    rec.created = T0;
    rec.expires = expires;
    return rec;
}

static void put_ok(vb_store *st, const vb_cached_login *rec, const secret *s)
{
    vb_error err;
    if (vb_store_login_put(st, rec, s->raw, sizeof s->raw, &err) != 0)
        fail_msg("login_put: %s", err.message);
}

/* Rows that fill a few pages around the secret, so it is not alone on the
 * only page of the table. */
static void put_neighbours(vb_store *st, const char *tag)
{
    for (int i = 0; i < 40; i++) {
        char id[32], server[80];
        snprintf(id, sizeof id, "%s-%d", tag, i);
        snprintf(server, sizeof server, "sha256:%064d", i);
        vb_cached_login r = login(server, "carol", id, "vb+unix:///other", T0 + 3600);
        secret s = new_secret();
        put_ok(st, &r, &s);
    }
}

/* One erase path on a broker cache: put the secret among neighbours, check
 * it is found, erase it, check it is gone (store open; then closed). */
typedef void (*erase_fn)(vb_store *st);

static void erase_one(vb_store *st)
{
    vb_error err;
    assert_int_equal(vb_store_login_erase(st, SERVER_A, "tok-victim", &err), 1);
}

static void erase_uri(vb_store *st)
{
    vb_error err;
    assert_int_equal(vb_store_login_erase_uri(st, "vb+tcp://victim/", &err), 1);
}

static void erase_all(vb_store *st)
{
    vb_error err;
    assert_true(vb_store_login_erase_uri(st, NULL, &err) >= 1);
}

static void purge_expired(vb_store *st)
{
    vb_error err;
    assert_int_equal(vb_store_login_purge(st, T0 + 100, &err), 1);
}

static void broker_case(erase_fn erase, int second)
{
    fixture f;
    fixture_open(&f, VB_STORE_BROKER_CACHE, second);
    put_neighbours(f.st, "before");
    secret s = new_secret();
    /* expires at T0 + 10: only the purge (now T0 + 100) takes it among these */
    vb_cached_login victim = login(SERVER_A, "alice@LAB", "tok-victim", "vb+tcp://victim/",
                                   T0 + 10);
    put_ok(f.st, &victim, &s);
    put_neighbours(f.st, "after");
    /* the second connection reads the row, so it has had the page too */
    if (f.second) {
        uint8_t buf[VB_STORE_SECRET_MAX];
        size_t len = 0;
        vb_error err;
        assert_int_equal(vb_store_login_get(f.second, SERVER_A, NULL, NULL, T0, NULL, buf, sizeof buf,
                                            &len, &err),
                         1);
        assert_memory_equal(buf, s.raw, SECRET_LEN);
    }
    assert_present(f.path, &s);

    erase(f.st);
    assert_gone(f.path, &s);
    vb_store_close(f.st);
    f.st = NULL;
    assert_gone(f.path, &s);
    fixture_close(&f);
    assert_gone(f.path, &s);
}

/* One broker erase path, without and with a second connection open. */
typedef struct erase_path {
    erase_fn erase;
} erase_path;

static void test_broker_erase(void **state)
{
    const erase_path *path = *state;
    broker_case(path->erase, 0);
    broker_case(path->erase, 1);
}

static const erase_path TOKEN_REJECTED = { erase_one }, LOGOUT_URI = { erase_uri },
                        LOGOUT_ALL = { erase_all }, EXPIRED_PURGE = { purge_expired };

/* A re-login replaces the token for the same server and identity: the old
 * secret goes, the new one stays (and the scan finds it). */
static void test_relogin_replaces(void **state)
{
    (void)state;
    for (int second = 0; second <= 1; second++) {
        fixture f;
        fixture_open(&f, VB_STORE_BROKER_CACHE, second);
        put_neighbours(f.st, "n");
        secret old = new_secret(), fresh = new_secret();
        vb_cached_login r = login(SERVER_A, "alice", "tok-old", "vb+tcp://h/", T0 + 3600);
        put_ok(f.st, &r, &old);
        assert_present(f.path, &old);
        r = login(SERVER_A, "alice", "tok-new", "vb+tcp://h/", T0 + 7200);
        put_ok(f.st, &r, &fresh);
        assert_gone(f.path, &old);
        assert_present(f.path, &fresh);
        fixture_close(&f);
        assert_gone(f.path, &old);
        assert_present(f.path, &fresh);
    }
}

/* ---- vbhostd's tokens ------------------------------------------------------ */

static void add_token(vb_store *st, const char *id, const secret *s, int64_t expires)
{
    vb_error err;
    if (vb_store_token_add(st, id, s->raw, sizeof s->raw, "alice@LAB", "sasl", T0, expires,
                           &err) != 0)
        fail_msg("token_add: %s", err.message);
}

/* A revoked token keeps its row (so a refusal can say "revoked"), not its
 * secret. Also from a second process-like connection: `vbhostd
 * --revoke-token` opens the file while the daemon has it open. */
static void test_token_revoke(void **state)
{
    (void)state;
    for (int second = 0; second <= 1; second++) {
        fixture f;
        fixture_open(&f, VB_STORE_DAEMON_TOKENS, second);
        secret s = new_secret(), other = new_secret();
        add_token(f.st, "tok-victim", &s, T0 + 3600);
        add_token(f.st, "tok-other", &other, T0 + 3600);
        assert_present(f.path, &s);
        vb_error err;
        vb_store *admin = f.second ? f.second : f.st;
        assert_int_equal(vb_store_token_revoke(admin, "tok-victim", NULL, &err), 1);
        assert_gone(f.path, &s);
        assert_present(f.path, &other);

        /* still known as revoked, and never valid again */
        uint8_t buf[VB_STORE_SECRET_MAX];
        size_t len = 9;
        vb_token_record rec;
        assert_int_equal(vb_store_token_get(f.st, "tok-victim", T0, buf, sizeof buf, &len, &rec,
                                            &err),
                         0);
        assert_int_equal(rec.revoked, 1);
        assert_int_equal(len, 0);
        /* revoking again is still 1, and the other token is untouched */
        assert_int_equal(vb_store_token_revoke(f.st, "tok-victim", NULL, &err), 1);
        assert_int_equal(vb_store_token_get(f.st, "tok-other", T0, buf, sizeof buf, &len, &rec,
                                            &err),
                         1);
        assert_memory_equal(buf, other.raw, SECRET_LEN);
        fixture_close(&f);
        assert_gone(f.path, &s);
    }
}

static void test_token_purge(void **state)
{
    (void)state;
    for (int second = 0; second <= 1; second++) {
        fixture f;
        fixture_open(&f, VB_STORE_DAEMON_TOKENS, second);
        secret s = new_secret();
        add_token(f.st, "tok-victim", &s, T0 + 10);
        assert_present(f.path, &s);
        vb_error err;
        assert_int_equal(vb_store_token_purge(f.st, T0 + 100, 0, &err), 1);
        assert_gone(f.path, &s);
        fixture_close(&f);
        assert_gone(f.path, &s);
    }
}

/* ---- concurrent readers ----------------------------------------------------- */

/* A broker cache holding the login (SERVER_A, "tok-victim") among
 * neighbours; its secret. */
static secret open_with_victim(fixture *f)
{
    fixture_open(f, VB_STORE_BROKER_CACHE, 0);
    put_neighbours(f->st, "n");
    secret s = new_secret();
    vb_cached_login victim = login(SERVER_A, "alice", "tok-victim", "vb+tcp://victim/",
                                   T0 + 3600);
    put_ok(f->st, &victim, &s);
    return s;
}

/* Another process reads the cache in a loop (short transactions, as another
 * broker or an admin tool would) while this one erases: the erase waits for
 * its turn and wipes. */
static void test_erase_while_another_process_reads(void **state)
{
    (void)state;
    fixture f;
    secret s = open_with_victim(&f);

    int ready[2], stop[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(stop), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* child: its own connection, reading until the parent closes stop */
        close(ready[0]);
        close(stop[1]);
        vb_store *rd = NULL;
        vb_error err;
        if (vb_store_open(f.path, VB_STORE_BROKER_CACHE, &rd, &err) != 0)
            _exit(2);
        int signalled = 0;
        for (;;) {
            uint8_t buf[VB_STORE_SECRET_MAX];
            size_t len;
            if (vb_store_login_get(rd, SERVER_A, NULL, NULL, T0, NULL, buf, sizeof buf, &len, &err) < 0)
                _exit(3);
            if (!signalled) {
                signalled = write(ready[1], "r", 1) == 1;
                close(ready[1]);
            }
            struct timeval tv = { 0, 0 };
            fd_set fds;
            FD_ZERO(&fds);
            FD_SET(stop[0], &fds);
            if (select(stop[0] + 1, &fds, NULL, NULL, &tv) > 0)
                break;
        }
        vb_store_close(rd);
        _exit(0);
    }
    close(ready[1]);
    close(stop[0]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1); /* the reader is reading */
    close(ready[0]);

    assert_present(f.path, &s);
    vb_error err;
    int rc = vb_store_login_erase(f.st, SERVER_A, "tok-victim", &err);
    if (rc != 1)
        fail_msg("erase while another process reads: rc %d: %s", rc, err.message);
    assert_gone(f.path, &s);

    close(stop[1]);
    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_gone(f.path, &s);
    fixture_close(&f);
    assert_gone(f.path, &s);
}

/* Two processes each store and erase logins at once: every wipe waits for
 * the other's writes and checkpoints instead of failing. */
#define RACE_ROUNDS 60
static void race_child(const char *path, int which, const secret *s, int ready_fd, int gate_fd)
{
    vb_store *st = NULL;
    vb_error err;
    if (vb_store_open(path, VB_STORE_BROKER_CACHE, &st, &err) != 0) {
        fprintf(stderr, "child %d: open: %s\n", which, err.message);
        _exit(1);
    }
    char c;
    if (write(ready_fd, "r", 1) != 1 || read(gate_fd, &c, 1) != 0)
        _exit(1);
    for (int i = 0; i < RACE_ROUNDS; i++) {
        char server[80], id[32];
        snprintf(server, sizeof server, "sha256:%032d%032d", which, i);
        snprintf(id, sizeof id, "tok-%d-%d", which, i);
        vb_cached_login r = login(server, "alice", id, "vb+tcp://race/", T0 + 3600);
        if (vb_store_login_put(st, &r, s->raw, sizeof s->raw, &err) != 0 ||
            vb_store_login_erase(st, server, id, &err) != 1) {
            fprintf(stderr, "child %d: round %d: %s\n", which, i, err.message);
            _exit(1);
        }
    }
    vb_store_close(st);
    _exit(0);
}

static void test_two_processes_erase_at_once(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, VB_STORE_BROKER_CACHE, 0);
    put_neighbours(f.st, "n");
    secret secrets[2] = { new_secret(), new_secret() };
    int ready[2], gate[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(gate), 0);
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            close(ready[0]);
            close(gate[1]);
            race_child(f.path, c, &secrets[c], ready[1], gate[0]);
        }
    }
    close(ready[1]);
    close(gate[0]);
    char c2[2];
    assert_int_equal(read(ready[0], c2, 1), 1);
    assert_int_equal(read(ready[0], c2 + 1, 1), 1);
    close(gate[1]); /* both start now */
    for (int c = 0; c < 2; c++) {
        int status = -1;
        assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("eraser %d failed (status 0x%x)", c, status);
    }
    close(ready[0]);
    /* nothing of theirs is left, in any file */
    assert_gone(f.path, &secrets[0]);
    assert_gone(f.path, &secrets[1]);
    fixture_close(&f);
}

/* A reader that keeps its snapshot (an open read transaction still holding
 * the secret's page) past the busy timeout: the erase is committed but
 * cannot wipe; it says so instead of claiming success, and the next call
 * after the reader let go wipes. */
static void test_erase_reports_a_reader_holding_its_snapshot(void **state)
{
    (void)state;
    fixture f;
    secret s = open_with_victim(&f);

    sqlite3 *reader = NULL;
    assert_int_equal(sqlite3_open_v2(f.path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_prepare_v2(reader, "SELECT secret FROM logins", -1, &stmt, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW); /* the snapshot is held from here */

    vb_error err;
    vb_error_clear(&err);
    int rc = vb_store_login_erase(f.st, SERVER_A, "tok-victim", &err);
    if (rc != -1 || err.code != VB_ERR_STORE || strstr(err.message, "-wal") == NULL)
        fail_msg("erase under a held snapshot: rc %d code %d: %s (want -1 naming the -wal)", rc,
                 err.code, err.message);
    /* committed all the same: the login is gone for every reader after */
    uint8_t buf[VB_STORE_SECRET_MAX];
    size_t len;
    sqlite3_finalize(stmt);
    assert_int_equal(vb_store_login_get(f.st, SERVER_A, NULL, NULL, T0, NULL, buf, sizeof buf, &len,
                                        &err),
                     0);
    /* that call found the reader gone and wiped */
    assert_gone(f.path, &s);
    sqlite3_close(reader);
    fixture_close(&f);
    assert_gone(f.path, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        { "token_rejected_erase", test_broker_erase, NULL, NULL, (void *)&TOKEN_REJECTED },
        { "logout_uri", test_broker_erase, NULL, NULL, (void *)&LOGOUT_URI },
        { "logout_all", test_broker_erase, NULL, NULL, (void *)&LOGOUT_ALL },
        { "expired_login_purge", test_broker_erase, NULL, NULL, (void *)&EXPIRED_PURGE },
        cmocka_unit_test(test_relogin_replaces),
        cmocka_unit_test(test_token_revoke),
        cmocka_unit_test(test_token_purge),
        cmocka_unit_test(test_erase_while_another_process_reads),
        cmocka_unit_test(test_two_processes_erase_at_once),
        cmocka_unit_test(test_erase_reports_a_reader_holding_its_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, vb_ts_group_teardown);
}
