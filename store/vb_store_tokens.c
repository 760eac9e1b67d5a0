/*
 * vb_store_tokens.c — the tokens vbhostd has issued (VB_STORE_DAEMON_TOKENS).
 *
 * A token is valid while it exists, is not revoked and expires > now.
 * Revoked and expired rows stay until purged, so a refusal can say why.
 */
#include "vb_store_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K VB_STORE_DAEMON_TOKENS

/* Columns 0..7 (TOKEN_COLS) of the current row into row, a vb_token_record
 * (also vbs_list's read_row). */
#define TOKEN_COLS "id, identity, auth_type, created, expires, last_used, revoked, bound_uid"
#define TOKEN_SECRET_COL 8

static int read_record(sqlite3_stmt *stmt, void *row)
{
    vb_token_record *rec = row;
    memset(rec, 0, sizeof *rec);
    if (vbs_copy_text(rec->id, sizeof rec->id, stmt, 0) != 0 ||
        vbs_copy_text(rec->identity, sizeof rec->identity, stmt, 1) != 0 ||
        vbs_copy_text(rec->auth_type, sizeof rec->auth_type, stmt, 2) != 0)
        return -1;
    rec->created = sqlite3_column_int64(stmt, 3);
    rec->expires = sqlite3_column_int64(stmt, 4);
    rec->last_used = sqlite3_column_int64(stmt, 5);
    rec->revoked = sqlite3_column_int(stmt, 6) != 0;
    rec->bound_uid = sqlite3_column_int64(stmt, 7);
    return 0;
}

static int bad_row(vb_store *st, vb_error *err)
{
    return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                        "store %s holds a token row this build cannot read", st->path);
}

int vb_store_token_add(vb_store *st, const char *id, const uint8_t *secret, size_t secret_len,
                       const char *identity, const char *auth_type, int64_t created,
                       int64_t expires, vb_error *err)
{
    return vb_store_token_add_bound(st, id, secret, secret_len, identity, auth_type, created,
                                    expires, -1, err);
}

int vb_store_token_add_bound(vb_store *st, const char *id, const uint8_t *secret,
                             size_t secret_len, const char *identity, const char *auth_type,
                             int64_t created, int64_t expires, int64_t bound_uid, vb_error *err)
{
    if (vbs_check_text("token id", id, VB_STORE_ID_MAX, err) != 0 ||
        vbs_check_secret(secret, secret_len, err) != 0 ||
        vbs_check_text("identity", identity, VB_STORE_IDENTITY_MAX, err) != 0 ||
        vbs_check_text("auth type", auth_type, VB_STORE_AUTH_TYPE_MAX, err) != 0 ||
        vbs_enter(st, K, "adding a token", err) != 0)
        return -1;

    char what[VB_STORE_ID_MAX + 32];
    snprintf(what, sizeof what, "adding token %s", id);
    sqlite3_stmt *stmt;
    int changes, rc = -1;
    if (vbs_prepare(st,
                    "INSERT INTO tokens (id, secret, identity, auth_type, created, expires, "
                    "bound_uid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &stmt, what, err) == 0) {
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(stmt, 2, secret, (int)secret_len, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, identity, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, auth_type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 5, created);
        sqlite3_bind_int64(stmt, 6, expires);
        sqlite3_bind_int64(stmt, 7, bound_uid < 0 ? -1 : bound_uid);
        rc = vbs_write(st, stmt, &changes, what, err);
    }
    vbs_leave(st);
    return rc;
}

int vb_store_token_get(vb_store *st, const char *id, int64_t now, uint8_t *secret,
                       size_t secret_cap, size_t *secret_len, vb_token_record *rec,
                       vb_error *err)
{
    if (rec != NULL)
        memset(rec, 0, sizeof *rec);
    if (secret_len != NULL)
        *secret_len = 0;
    if (secret == NULL || secret_len == NULL || secret_cap < VB_STORE_SECRET_MAX)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE,
                            "reading a token needs a secret buffer of at least %d bytes",
                            VB_STORE_SECRET_MAX);
    if (vbs_check_text("token id", id, VB_STORE_ID_MAX, err) != 0 ||
        vbs_enter(st, K, "reading a token", err) != 0)
        return -1;

    sqlite3_stmt *stmt;
    int ret = -1;
    if (vbs_prepare(st, "SELECT " TOKEN_COLS ", secret FROM tokens WHERE id = ?1", &stmt,
                    "reading a token", err) != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        ret = 0;
    } else if (rc != SQLITE_ROW) {
        vbs_sql_error(st, err, "reading a token");
    } else {
        vb_token_record r;
        if (read_record(stmt, &r) != 0) {
            bad_row(st, err);
        } else if (r.revoked || r.expires <= now) {
            ret = 0;
        } else if (vbs_copy_secret(secret, secret_cap, secret_len, stmt, TOKEN_SECRET_COL) != 0) {
            bad_row(st, err);
        } else {
            ret = 1;
        }
        if (ret >= 0 && rec != NULL)
            *rec = r;
    }
    sqlite3_finalize(stmt);
out:
    vbs_leave(st);
    return ret;
}

/* One write keyed by id; 1 when it changed a row, 0 when none matched. */
static int write_by_id(vb_store *st, sqlite3_stmt *stmt, const char *what, vb_error *err)
{
    int changes;
    if (vbs_write(st, stmt, &changes, what, err) != 0)
        return -1;
    return changes > 0;
}

int vb_store_token_touch(vb_store *st, const char *id, int64_t now, vb_error *err)
{
    if (vbs_check_text("token id", id, VB_STORE_ID_MAX, err) != 0 ||
        vbs_enter(st, K, "touching a token", err) != 0)
        return -1;
    sqlite3_stmt *stmt;
    int ret = -1;
    if (vbs_prepare(st, "UPDATE tokens SET last_used = max(last_used, ?2) WHERE id = ?1", &stmt,
                    "touching a token", err) == 0) {
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, now);
        ret = write_by_id(st, stmt, "touching a token", err);
    }
    vbs_leave(st);
    return ret;
}

int vb_store_token_revoke(vb_store *st, const char *id, const char *identity, vb_error *err)
{
    if (vbs_check_text("token id", id, VB_STORE_ID_MAX, err) != 0 ||
        (identity != NULL &&
         vbs_check_text("identity", identity, VB_STORE_IDENTITY_MAX, err) != 0) ||
        vbs_enter(st, K, "revoking a token", err) != 0)
        return -1;
    sqlite3_stmt *stmt;
    int ret = -1;
    /* The row stays (a refusal can say "revoked"), its secret does not:
     * random bytes of the same length overwrite it in place. Not zeros: the
     * suite's secret scan takes every secret in the file for a real one. */
    int changes;
    if (vbs_prepare(st,
                    "UPDATE tokens SET revoked = 1, secret = randomblob(length(secret)) "
                    "WHERE id = ?1 AND (?2 IS NULL OR identity = ?2)",
                    &stmt, "revoking a token", err) == 0) {
        sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
        if (identity != NULL)
            sqlite3_bind_text(stmt, 2, identity, -1, SQLITE_STATIC);
        if (vbs_erase(st, stmt, &changes, "revoking a token", err) == 0)
            ret = changes > 0;
    }
    vbs_leave(st);
    return ret;
}

int vb_store_token_list(vb_store *st, vb_token_record **recs, size_t *n, vb_error *err)
{
    void *rows = NULL;
    int ret = vbs_list(st, K, "SELECT " TOKEN_COLS " FROM tokens ORDER BY created, id",
                       sizeof **recs, read_record, "token", "listing tokens",
                       recs ? &rows : NULL, n, err);
    if (recs)
        *recs = rows;
    return ret;
}

int vb_store_token_purge(vb_store *st, int64_t now, int64_t keep_seconds, vb_error *err)
{
    if (keep_seconds < 0)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE,
                            "purging tokens: keep_seconds is negative");
    if (vbs_enter(st, K, "purging tokens", err) != 0)
        return -1;
    int64_t cutoff;
    if (__builtin_sub_overflow(now, keep_seconds, &cutoff)) {
        vbs_leave(st);
        return 0; /* a cutoff before the earliest time there is: nothing to purge */
    }
    sqlite3_stmt *stmt;
    int changes = 0, ret = -1;
    if (vbs_prepare(st, "DELETE FROM tokens WHERE expires <= ?1", &stmt, "purging tokens",
                    err) == 0) {
        sqlite3_bind_int64(stmt, 1, cutoff);
        if (vbs_erase(st, stmt, &changes, "purging tokens", err) == 0)
            ret = changes;
    }
    vbs_leave(st);
    return ret;
}
