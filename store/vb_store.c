/*
 * vb_store.c — opening a store: the private directory, the 0600 file, the
 * connection settings, the schema and its migrations; plus the helpers the
 * token and login files share.
 *
 * The file checks rely on the directory: once it is ours and closed to
 * everyone else, nobody else can swap the file between our check and
 * sqlite's open.
 */
#include "vb_store_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- shared helpers ------------------------------------------------------ */

static int wipe(vb_store *st, int wait, const char *what, vb_error *err);
static int64_t monotonic_ms(void);

int vbs_enter(vb_store *st, enum vb_store_kind kind, const char *what, vb_error *err)
{
    if (st == NULL)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE, "%s: no store", what);
    if (st->pid != getpid())
        return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                            "%s: store %s was opened by process %ld; a store must not cross "
                            "fork(), open it again in this process",
                            what, st->path, (long)st->pid);
    if (st->kind != kind)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE, "%s: store %s is a %s", what,
                            st->path,
                            st->kind == VB_STORE_DAEMON_TOKENS ? "daemon token store"
                                                               : "broker login cache");
    pthread_mutex_lock(&st->lock);
    if (st->wipe_pending) /* an earlier erase could not wipe: try again, without waiting */
        wipe(st, 0, what, NULL);
    return 0;
}

void vbs_leave(vb_store *st)
{
    pthread_mutex_unlock(&st->lock);
}

int vbs_sql_error(vb_store *st, vb_error *err, const char *what)
{
    int code = sqlite3_errcode(st->db) & 0xff;
    /* say what happened in words a caller can act on: somebody else held
     * the file for the whole busy timeout, nothing was changed */
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                            "%s: the store %s is locked by another process (waited %d ms for it, "
                            "then gave up; nothing was changed); try again",
                            what, st->path, VB_STORE_BUSY_TIMEOUT_MS);
    return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE, "%s: %s (store %s)", what,
                        sqlite3_errmsg(st->db), st->path);
}

int vbs_prepare(vb_store *st, const char *sql, sqlite3_stmt **stmt, const char *what,
                vb_error *err)
{
    *stmt = NULL;
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK) {
        vbs_sql_error(st, err, what);
        sqlite3_finalize(*stmt);
        *stmt = NULL;
        return -1;
    }
    return 0;
}

/* The message must be taken before ROLLBACK replaces sqlite's. */
static int fail_rollback(vb_store *st, vb_error *err, const char *what)
{
    vbs_sql_error(st, err, what);
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

int vbs_write(vb_store *st, sqlite3_stmt *stmt, int *changes, const char *what, vb_error *err)
{
    *changes = 0;
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        fail_rollback(st, err, what);
        sqlite3_finalize(stmt);
        return -1;
    }
    if (sqlite3_step(stmt) != SQLITE_DONE) {
        /* Take the message before finalize; then drop stmt (and with it
         * any pointer to the caller's secret) before rolling back. */
        vbs_sql_error(st, err, what);
        sqlite3_finalize(stmt);
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    *changes = sqlite3_changes(st->db);
    sqlite3_finalize(stmt);
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return fail_rollback(st, err, what);
    return 0;
}

/* The TRUNCATE checkpoint of vbs_erase, tried until the busy timeout when
 * wait is set, else once. Sets or clears st->wipe_pending. 0, or -1 (what
 * names the call in the message).
 *
 * Not through sqlite's busy handler: while TRUNCATE waits in it for readers
 * it holds the write lock, so two processes that both write and wipe can
 * wait on each other until one times out; and a checkpoint running in
 * another process makes it fail at once without calling the handler. With
 * no handler each try takes the locks it can, and lets them go when it
 * returns. */
static int wipe(vb_store *st, int wait, const char *what, vb_error *err)
{
    int64_t deadline = monotonic_ms() + (wait ? VB_STORE_BUSY_TIMEOUT_MS : 0);
    int rc, nlog, nckpt;
    long pause_ms = 1;
    sqlite3_busy_timeout(st->db, 0);
    for (;;) {
        nlog = nckpt = -1;
        rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &nlog, &nckpt);
        if ((rc & 0xff) != SQLITE_BUSY || monotonic_ms() >= deadline)
            break;
        /* back off as sqlite's busy handler does: a try holds the write
         * lock while it copies, and others must get their turn */
        nanosleep(&(struct timespec){ .tv_nsec = pause_ms * 1000 * 1000 }, NULL);
        pause_ms = pause_ms < 32 ? pause_ms * 2 : 50;
    }
    sqlite3_busy_timeout(st->db, VB_STORE_BUSY_TIMEOUT_MS);
    /* Only a truncated log (0 frames left) is wiped; SQLITE_BUSY means
     * another connection kept its read (or its write, or its own
     * checkpoint) until the deadline: nckpt of nlog frames were copied. */
    st->wipe_pending = !(rc == SQLITE_OK && nlog == 0);
    if (!st->wipe_pending)
        return 0;
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
        return vbs_sql_error(st, err, what);
    return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                        "%s: done, but the old secret is still in %s-wal: another connection "
                        "held a read or write on the store for %d ms (%d of %d log frames "
                        "checkpointed); the wipe is retried on the store's next call",
                        what, st->path, VB_STORE_BUSY_TIMEOUT_MS, nckpt, nlog);
}

int vbs_wipe(vb_store *st, const char *what, vb_error *err)
{
    return wipe(st, 1, what, err);
}

int vbs_erase(vb_store *st, sqlite3_stmt *stmt, int *changes, const char *what, vb_error *err)
{
    if (vbs_write(st, stmt, changes, what, err) != 0)
        return -1;
    if (*changes == 0 && !st->wipe_pending)
        return 0;
    return wipe(st, 1, what, err);
}

/* vbs_list's loop over a prepared statement; finalizes stmt */
static int collect(vb_store *st, sqlite3_stmt *stmt, size_t row_size, vbs_read_row_fn read_row,
                   const char *row_kind, const char *what, void **rows, size_t *n, vb_error *err)
{
    char *arr = NULL;
    size_t len = 0, cap = 0;
    int ret = -1, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char *grown = realloc(arr, ncap * row_size);
            if (grown == NULL) {
                vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_STORE, "%s: out of memory", what);
                goto done;
            }
            arr = grown;
            cap = ncap;
        }
        if (read_row(stmt, arr + len * row_size) != 0) {
            vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                         "store %s holds a %s row this build cannot read", st->path, row_kind);
            goto done;
        }
        len++;
    }
    if (rc != SQLITE_DONE) {
        vbs_sql_error(st, err, what);
        goto done;
    }
    ret = 0;
done:
    sqlite3_finalize(stmt);
    if (ret == 0 && len > 0) {
        *rows = arr;
        *n = len;
    } else {
        free(arr);
    }
    return ret;
}

int vbs_list(vb_store *st, enum vb_store_kind kind, const char *sql, size_t row_size,
             vbs_read_row_fn read_row, const char *row_kind, const char *what, void **rows,
             size_t *n, vb_error *err)
{
    if (rows == NULL || n == NULL)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE, "%s: recs and n are required",
                            what);
    *rows = NULL;
    *n = 0;
    if (vbs_enter(st, kind, what, err) != 0)
        return -1;
    sqlite3_stmt *stmt;
    int ret = -1;
    if (vbs_prepare(st, sql, &stmt, what, err) == 0)
        ret = collect(st, stmt, row_size, read_row, row_kind, what, rows, n, err);
    vbs_leave(st);
    return ret;
}

int vbs_check_text(const char *name, const char *s, size_t max, vb_error *err)
{
    if (s == NULL || s[0] == '\0')
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE, "%s is empty", name);
    if (strnlen(s, max + 1) > max)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE,
                            "%s is longer than %zu bytes", name, max);
    return 0;
}

int vbs_check_secret(const uint8_t *secret, size_t len, vb_error *err)
{
    if (secret == NULL || len == 0 || len > VB_STORE_SECRET_MAX)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE,
                            "a secret must be 1 to %d bytes, not %zu", VB_STORE_SECRET_MAX,
                            secret ? len : 0);
    return 0;
}

int vbs_copy_text(char *dst, size_t cap, sqlite3_stmt *stmt, int col)
{
    const unsigned char *t = sqlite3_column_text(stmt, col);
    int len = sqlite3_column_bytes(stmt, col);
    if (t == NULL || len < 0 || (size_t)len >= cap || memchr(t, '\0', (size_t)len) != NULL)
        return -1;
    memcpy(dst, t, (size_t)len);
    dst[len] = '\0';
    return 0;
}

int vbs_copy_secret(uint8_t *dst, size_t cap, size_t *len, sqlite3_stmt *stmt, int col)
{
    if (sqlite3_column_type(stmt, col) != SQLITE_BLOB)
        return -1;
    const void *b = sqlite3_column_blob(stmt, col);
    int n = sqlite3_column_bytes(stmt, col);
    if (b == NULL || n <= 0 || (size_t)n > cap)
        return -1;
    memcpy(dst, b, (size_t)n);
    *len = (size_t)n;
    return 0;
}

/* ---- the directory and the file ----------------------------------------- */

static int check_private_dir(const char *dir, vb_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        int e = errno;
        return vb_error_set(err, e == ENOENT || e == ENOTDIR ? VB_ERR_CONFIG : VB_ERR_SYSTEM,
                            VB_DOM_STORE, "store directory %s: %s", dir, strerror(e));
    }
    if (!S_ISDIR(sb.st_mode))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_STORE,
                            "store directory %s is not a directory", dir);
    if (sb.st_uid != geteuid())
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_STORE,
                            "store directory %s (mode %04o) belongs to uid %ld, not to uid %ld",
                            dir, (unsigned)(sb.st_mode & 07777), (long)sb.st_uid,
                            (long)geteuid());
    if (sb.st_mode & 077)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_STORE,
                            "store directory %s has mode %04o; it must have no group or other "
                            "permissions (chmod 700 %s)",
                            dir, (unsigned)(sb.st_mode & 07777), dir);
    return 0;
}

/* A file of ours: regular, owned by us, no group/other bits. */
static int check_private_file(const char *path, const struct stat *sb, vb_error *err)
{
    if (!S_ISREG(sb->st_mode))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_STORE, "store %s is not a regular file",
                            path);
    if (sb->st_uid != geteuid())
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_STORE,
                            "store %s belongs to uid %ld, not to uid %ld", path,
                            (long)sb->st_uid, (long)geteuid());
    if (sb->st_mode & 077)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_STORE,
                            "store %s has mode %04o; it must have no group or other "
                            "permissions (chmod 600 %s)",
                            path, (unsigned)(sb->st_mode & 07777), path);
    return 0;
}

/* Create path 0600 if it is missing (O_EXCL: we made it, whatever the
 * umask), else check the existing file and sqlite's side files. */
static int create_or_check_file(const char *path, vb_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        /* the umask may have removed owner bits; never add any others */
        if (fchmod(fd, 0600) != 0) {
            int e = errno;
            close(fd);
            return vb_error_set_errno(err, e, VB_DOM_STORE, "chmod 600 %s", path);
        }
        close(fd);
        return 0;
    }
    if (errno != EEXIST)
        return vb_error_set_errno(err, errno, VB_DOM_STORE, "creating store %s", path);

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_STORE,
                                "store %s is a symbolic link", path);
        return vb_error_set_errno(err, errno, VB_DOM_STORE, "opening store %s", path);
    }
    struct stat sb;
    int rc = fstat(fd, &sb);
    int e = errno;
    close(fd);
    if (rc != 0)
        return vb_error_set_errno(err, e, VB_DOM_STORE, "stat %s", path);
    if (check_private_file(path, &sb, err) != 0)
        return -1;

    /* sqlite gives new side files the database's mode; check old ones. */
    static const char *const sides[] = { "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof sides / sizeof *sides; i++) {
        char side[PATH_MAX + 16];
        snprintf(side, sizeof side, "%s%s", path, sides[i]);
        if (lstat(side, &sb) != 0) {
            if (errno == ENOENT)
                continue;
            return vb_error_set_errno(err, errno, VB_DOM_STORE, "stat %s", side);
        }
        if (check_private_file(side, &sb, err) != 0)
            return -1;
    }
    return 0;
}

/* ---- schema --------------------------------------------------------------- */

/* migrations[v] takes a store from version v to v + 1; version 0 is an empty
 * file. Constant DDL only. To change the schema, append a step here (an
 * empty string for the kind it does not concern) and bump
 * VB_STORE_SCHEMA_VERSION. */
static const char *const daemon_migrations[] = {
    /* 0 → 1 */
    "CREATE TABLE tokens ("
    "  id        TEXT PRIMARY KEY NOT NULL,"
    "  secret    BLOB NOT NULL CHECK (typeof(secret) = 'blob'),"
    "  identity  TEXT NOT NULL,"
    "  auth_type TEXT NOT NULL,"
    "  created   INTEGER NOT NULL,"
    "  expires   INTEGER NOT NULL,"
    "  last_used INTEGER NOT NULL DEFAULT 0,"
    "  revoked   INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX tokens_expires ON tokens (expires);",
    /* 1 → 2: a token issued over a unix socket works only for the uid that
     * obtained it (-1: issued elsewhere, not bound to a uid) */
    "ALTER TABLE tokens ADD COLUMN bound_uid INTEGER NOT NULL DEFAULT -1;",
};

static const char *const broker_migrations[] = {
    /* 0 → 1 */
    "CREATE TABLE logins ("
    "  server_id TEXT NOT NULL,"
    "  identity  TEXT NOT NULL,"
    "  token_id  TEXT NOT NULL,"
    "  uri       TEXT NOT NULL,"
    "  auth_type TEXT NOT NULL,"
    "  secret    BLOB NOT NULL CHECK (typeof(secret) = 'blob'),"
    "  created   INTEGER NOT NULL,"
    "  expires   INTEGER NOT NULL,"
    "  PRIMARY KEY (server_id, identity)"
    ");"
    "CREATE INDEX logins_uri ON logins (uri);",
    /* 1 → 2: the endpoint the token was obtained at; it is offered there only
     * (rows from version 1 have '' and are offered nowhere: log in again) */
    "ALTER TABLE logins ADD COLUMN endpoint TEXT NOT NULL DEFAULT '';",
};

_Static_assert(sizeof daemon_migrations / sizeof *daemon_migrations == VB_STORE_SCHEMA_VERSION,
               "one daemon migration per schema version");
_Static_assert(sizeof broker_migrations / sizeof *broker_migrations == VB_STORE_SCHEMA_VERSION,
               "one broker migration per schema version");

static const char *kind_name(enum vb_store_kind kind)
{
    return kind == VB_STORE_DAEMON_TOKENS ? "daemon-tokens" : "broker-cache";
}

/* One row of sql's result as an int64 (*found 0 when there is none). */
static int query_int(vb_store *st, const char *sql, int64_t *val, int *found, vb_error *err)
{
    sqlite3_stmt *stmt;
    if (vbs_prepare(st, sql, &stmt, "reading the schema", err) != 0)
        return -1;
    int rc = sqlite3_step(stmt);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *val = sqlite3_column_int64(stmt, 0);
    else if (rc != SQLITE_DONE)
        vbs_sql_error(st, err, "reading the schema");
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Inside BEGIN IMMEDIATE: which version the file holds, 0 for a new file;
 * refuses a foreign file, the other kind, and a newer version. */
static int read_version(vb_store *st, int64_t *version, vb_error *err)
{
    int64_t n = 0;
    int found;
    if (query_int(st,
                  "SELECT count(*) FROM sqlite_schema WHERE type = 'table' "
                  "AND name = 'schema_version'",
                  &n, &found, err) != 0)
        return -1;
    if (n == 0) {
        if (query_int(st, "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                      &n, &found, err) != 0)
            return -1;
        if (n != 0)
            return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                                "%s is an sqlite database but not a vbroker store "
                                "(no schema_version table)",
                                st->path);
        *version = 0;
        return 0;
    }

    sqlite3_stmt *stmt;
    if (vbs_prepare(st, "SELECT kind, version FROM schema_version", &stmt, "reading the schema",
                    err) != 0)
        return -1;
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                         "store %s has an empty schema_version table", st->path);
        else
            vbs_sql_error(st, err, "reading the schema");
        sqlite3_finalize(stmt);
        return -1;
    }
    const char *kind = (const char *)sqlite3_column_text(stmt, 0);
    *version = sqlite3_column_int64(stmt, 1);
    int ret = 0;
    if (kind == NULL || strcmp(kind, kind_name(st->kind)) != 0)
        ret = vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                           "store %s holds %.32s, not %s", st->path, kind ? kind : "(null)",
                           kind_name(st->kind));
    else if (*version > VB_STORE_SCHEMA_VERSION)
        ret = vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                           "store %s has schema version %lld, newer than the %d this build "
                           "knows; a newer vbroker wrote it — use that, or move the file away",
                           st->path, (long long)*version, VB_STORE_SCHEMA_VERSION);
    else if (*version < 0)
        ret = vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                           "store %s has an invalid schema version %lld", st->path,
                           (long long)*version);
    else if (sqlite3_step(stmt) != SQLITE_DONE)
        ret = vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                           "store %s has more than one schema_version row", st->path);
    sqlite3_finalize(stmt);
    return ret;
}

/* Create or migrate the schema in one write transaction, so two processes
 * opening a new file at once cannot both create it. */
static int schema_init(vb_store *st, vb_error *err)
{
    const char *const *steps =
        st->kind == VB_STORE_DAEMON_TOKENS ? daemon_migrations : broker_migrations;

    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return fail_rollback(st, err, "starting the schema transaction");
    int64_t version = 0;
    if (read_version(st, &version, err) != 0)
        goto fail;
    if (version == VB_STORE_SCHEMA_VERSION) {
        if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return fail_rollback(st, err, "reading the schema");
        return 0;
    }
    if (version == 0 &&
        sqlite3_exec(st->db,
                     "CREATE TABLE schema_version (kind TEXT NOT NULL, version INTEGER NOT NULL);"
                     "INSERT INTO schema_version VALUES ('', 0);",
                     NULL, NULL, NULL) != SQLITE_OK)
        return fail_rollback(st, err, "creating the schema");
    for (int64_t v = version; v < VB_STORE_SCHEMA_VERSION; v++)
        if (sqlite3_exec(st->db, steps[v], NULL, NULL, NULL) != SQLITE_OK)
            return fail_rollback(st, err, "migrating the schema");

    sqlite3_stmt *stmt;
    if (vbs_prepare(st, "UPDATE schema_version SET kind = ?1, version = ?2", &stmt,
                    "recording the schema version", err) != 0)
        goto fail;
    sqlite3_bind_text(stmt, 1, kind_name(st->kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, VB_STORE_SCHEMA_VERSION);
    int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) {
        vbs_sql_error(st, err, "recording the schema version");
        sqlite3_finalize(stmt);
        goto fail;
    }
    sqlite3_finalize(stmt);
    if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return fail_rollback(st, err, "committing the schema");
    return 0;

fail:
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* ---- connection ----------------------------------------------------------- */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The journal mode is persistent: a file already in WAL answers at once.
 * Switching a new file needs an exclusive lock, and sqlite reports
 * SQLITE_BUSY for it without calling the busy handler when another
 * connection is switching the same new file (two processes opening it at
 * once), so retry here for as long as the busy timeout would wait. */
static int set_wal(vb_store *st, vb_error *err)
{
    int64_t deadline = monotonic_ms() + VB_STORE_BUSY_TIMEOUT_MS;
    for (;;) {
        sqlite3_stmt *stmt;
        if (vbs_prepare(st, "PRAGMA journal_mode = WAL", &stmt, "switching to WAL", err) != 0)
            return -1;
        int rc = sqlite3_step(stmt);
        if (rc == SQLITE_ROW) {
            const char *mode = (const char *)sqlite3_column_text(stmt, 0);
            int wal = mode != NULL && strcmp(mode, "wal") == 0;
            if (!wal)
                vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                             "store %s cannot use WAL (journal mode %.16s)", st->path,
                             mode ? mode : "unknown");
            sqlite3_finalize(stmt);
            return wal ? 0 : -1;
        }
        int busy = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
        if (!busy || monotonic_ms() >= deadline) {
            vbs_sql_error(st, err, "switching to WAL");
            sqlite3_finalize(stmt);
            return -1;
        }
        sqlite3_finalize(stmt);
        nanosleep(&(struct timespec){ .tv_nsec = 2 * 1000 * 1000 }, NULL);
    }
}

static int configure(vb_store *st, vb_error *err)
{
    sqlite3 *db = st->db;
    sqlite3_extended_result_codes(db, 1);
    if (sqlite3_busy_timeout(db, VB_STORE_BUSY_TIMEOUT_MS) != SQLITE_OK)
        return vbs_sql_error(st, err, "setting the busy timeout");

    int fk = 0, defensive = 0;
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &defensive);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &fk);
    if (fk != 1)
        return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                            "store %s: this sqlite cannot enforce foreign keys", st->path);

    if (set_wal(st, err) != 0)
        return -1;

    /* Erased and purged secrets are overwritten with zeros in their page,
     * not left in free space or free pages (vbs_erase then flushes the
     * page out of the -wal). Read back: a build that cannot is refused. */
    int64_t on = 0;
    int found = 0;
    if (sqlite3_exec(db, "PRAGMA secure_delete = ON", NULL, NULL, NULL) != SQLITE_OK ||
        query_int(st, "PRAGMA secure_delete", &on, &found, err) != 0)
        return vbs_sql_error(st, err, "enabling secure_delete");
    if (!found || on != 1)
        return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                            "store %s: this sqlite cannot enable secure_delete", st->path);
    /* Statement journals and sorts stay in memory: a temp file holding a
     * copy of a page with a secret would outlive the erase on disk. */
    if (sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL) != SQLITE_OK)
        return vbs_sql_error(st, err, "keeping temporary data in memory");
    return 0;
}

int vb_store_open(const char *path, enum vb_store_kind kind, vb_store **out, vb_error *err)
{
    if (out == NULL)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE, "vb_store_open: out is NULL");
    *out = NULL;
    if (kind != VB_STORE_DAEMON_TOKENS && kind != VB_STORE_BROKER_CACHE)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE, "unknown store kind %d",
                            (int)kind);
    if (vbs_check_text("store path", path, PATH_MAX - 1, err) != 0)
        return -1;

    if (path[strlen(path) - 1] == '/')
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE,
                            "store path %s names a directory", path);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    if (check_private_dir(dir, err) != 0 || create_or_check_file(path, err) != 0)
        return -1;

    vb_store *st = calloc(1, sizeof *st);
    if (st == NULL)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_STORE, "out of memory");
    snprintf(st->path, sizeof st->path, "%s", path);
    st->kind = kind;
    st->pid = getpid();
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        free(st);
        return vb_error_set(err, VB_ERR_SYSTEM, VB_DOM_STORE, "pthread_mutex_init failed");
    }

    /* No SQLITE_OPEN_CREATE: the file exists now, and must be the one we
     * checked. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_PRIVATECACHE;
#ifdef SQLITE_OPEN_NOFOLLOW
    flags |= SQLITE_OPEN_NOFOLLOW;
#endif
    int rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    if (st->db == NULL) {
        vb_store_close(st);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_STORE, "opening store %s: %s", path,
                            sqlite3_errstr(rc));
    }
    if (rc != SQLITE_OK) {
        vbs_sql_error(st, err, "opening the store");
        vb_store_close(st);
        return -1;
    }
    if (configure(st, err) != 0 || schema_init(st, err) != 0) {
        vb_store_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

void vb_store_close(vb_store *st)
{
    if (st == NULL)
        return;
    /* In a forked child the connection's lock bookkeeping is the parent's:
     * closing it here could release or checkpoint behind the parent's back.
     * Leak it instead. */
    if (st->pid != getpid()) {
        /* kept reachable, so leak checkers (valgrind, LSan) in the child do
         * not report the connection we must not close */
        static vb_store *abandoned;
        st->abandoned_next = abandoned;
        abandoned = st;
        return;
    }
    /* The last chance to wipe what an erase could not; when this is the
     * last connection, sqlite3_close checkpoints and removes the -wal
     * anyway. */
    if (st->wipe_pending)
        wipe(st, 1, "closing the store", NULL);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* ---- the directory for a store ------------------------------------------- */

/* mkdir path 0700 (whatever the umask) unless it exists as a directory. */
static int make_dir(const char *path, vb_error *err)
{
    if (mkdir(path, 0700) == 0) {
        if (chmod(path, 0700) != 0)
            return vb_error_set_errno(err, errno, VB_DOM_STORE, "chmod 700 %s", path);
        return 0;
    }
    if (errno != EEXIST)
        return vb_error_set_errno(err, errno, VB_DOM_STORE, "creating directory %s", path);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return vb_error_set_errno(err, errno, VB_DOM_STORE, "stat %s", path);
    if (!S_ISDIR(sb.st_mode))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_STORE, "%s exists and is not a directory",
                            path);
    return 0;
}

int vb_store_prepare_dir(const char *dir, vb_error *err)
{
    if (vbs_check_text("store directory", dir, PATH_MAX - 1, err) != 0)
        return -1;
    char buf[PATH_MAX];
    size_t len = strlen(dir);
    memcpy(buf, dir, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';

    for (char *p = buf + 1; *p; p++) {
        if (*p != '/' || p[-1] == '/')
            continue;
        *p = '\0';
        int rc = make_dir(buf, err);
        *p = '/';
        if (rc != 0)
            return -1;
    }
    if (make_dir(buf, err) != 0)
        return -1;
    return check_private_dir(buf, err);
}
