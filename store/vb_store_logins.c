/*
 * vb_store_logins.c — the logins vbrokerd caches for its user
 * (VB_STORE_BROKER_CACHE): one token per (server_id, identity).
 *
 * Erase matches the token, not only the key (as git's credential reject
 * does): a broker that saw an old token fail must not erase the newer one
 * another client stored meanwhile.
 */
#include "vb_store_priv.h"

#include <stdlib.h>
#include <string.h>

#define K VB_STORE_BROKER_CACHE

#define LOGIN_COLS "server_id, identity, token_id, uri, auth_type, created, expires, endpoint"
#define LOGIN_SECRET_COL 8

/* Columns 0..7 (LOGIN_COLS) of the current row into row, a vb_cached_login (also vbs_list's
 * read_row). */
static int read_login(sqlite3_stmt *stmt, void *row)
{
    vb_cached_login *rec = row;
    memset(rec, 0, sizeof *rec);
    if (vbs_copy_text(rec->server_id, sizeof rec->server_id, stmt, 0) != 0 ||
        vbs_copy_text(rec->identity, sizeof rec->identity, stmt, 1) != 0 ||
        vbs_copy_text(rec->token_id, sizeof rec->token_id, stmt, 2) != 0 ||
        vbs_copy_text(rec->uri, sizeof rec->uri, stmt, 3) != 0 ||
        vbs_copy_text(rec->auth_type, sizeof rec->auth_type, stmt, 4) != 0)
        return -1;
    rec->created = sqlite3_column_int64(stmt, 5);
    rec->expires = sqlite3_column_int64(stmt, 6);
    return vbs_copy_text(rec->endpoint, sizeof rec->endpoint, stmt, 7) != 0 ? -1 : 0;
}

static int bad_row(vb_store *st, vb_error *err)
{
    return vb_error_set(err, VB_ERR_STORE, VB_DOM_STORE,
                        "store %s holds a login row this build cannot read", st->path);
}

/* A fixed-size field of the caller's record: terminated inside the array
 * (so within the bound) and non-empty. */
static int check_field(const char *name, const char *field, size_t size, vb_error *err)
{
    if (memchr(field, '\0', size) == NULL)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE,
                            "%s is longer than %zu bytes", name, size - 1);
    return vbs_check_text(name, field, size - 1, err);
}

int vb_store_login_put(vb_store *st, const vb_cached_login *rec, const uint8_t *secret,
                       size_t secret_len, vb_error *err)
{
    if (rec == NULL)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE, "storing a login: no record");
    if (check_field("server id", rec->server_id, sizeof rec->server_id, err) != 0 ||
        check_field("identity", rec->identity, sizeof rec->identity, err) != 0 ||
        check_field("token id", rec->token_id, sizeof rec->token_id, err) != 0 ||
        check_field("uri", rec->uri, sizeof rec->uri, err) != 0 ||
        check_field("auth type", rec->auth_type, sizeof rec->auth_type, err) != 0 ||
        (rec->endpoint[0] && check_field("endpoint", rec->endpoint, sizeof rec->endpoint, err) != 0) ||
        vbs_check_secret(secret, secret_len, err) != 0 ||
        vbs_enter(st, K, "storing a login", err) != 0)
        return -1;

    sqlite3_stmt *stmt;
    int changes, ret = -1;
    if (vbs_prepare(st,
                    "INSERT INTO logins (" LOGIN_COLS ", secret) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                    "ON CONFLICT (server_id, identity) DO UPDATE SET "
                    "  token_id = excluded.token_id, uri = excluded.uri,"
                    "  auth_type = excluded.auth_type, created = excluded.created,"
                    "  expires = excluded.expires, endpoint = excluded.endpoint,"
                    "  secret = excluded.secret",
                    &stmt, "storing a login", err) == 0) {
        sqlite3_bind_text(stmt, 1, rec->server_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, rec->identity, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, rec->token_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, rec->uri, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 5, rec->auth_type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 6, rec->created);
        sqlite3_bind_int64(stmt, 7, rec->expires);
        sqlite3_bind_text(stmt, 8, rec->endpoint, -1, SQLITE_STATIC);
        sqlite3_bind_blob(stmt, 9, secret, (int)secret_len, SQLITE_STATIC);
        /* An upsert that updates inserts no row: the rowid stays 0, and the
         * token it replaced must be wiped. A new row needs no wipe. */
        sqlite3_set_last_insert_rowid(st->db, 0);
        ret = vbs_write(st, stmt, &changes, "storing a login", err);
        if (ret == 0 && (sqlite3_last_insert_rowid(st->db) == 0 || st->wipe_pending))
            ret = vbs_wipe(st, "storing a login", err);
    }
    vbs_leave(st);
    return ret;
}

/* identity is user, or user@realm. */
static int identity_matches(const char *identity, const char *user)
{
    size_t n = strlen(user);
    return strncmp(identity, user, n) == 0 && (identity[n] == '\0' || identity[n] == '@');
}

int vb_store_login_get(vb_store *st, const char *server_id, const char *endpoint,
                       const char *user, int64_t now, vb_cached_login *rec, uint8_t *secret, size_t secret_cap,
                       size_t *secret_len, vb_error *err)
{
    if (rec != NULL)
        memset(rec, 0, sizeof *rec);
    if (secret_len != NULL)
        *secret_len = 0;
    if (secret == NULL || secret_len == NULL || secret_cap < VB_STORE_SECRET_MAX)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE,
                            "reading a login needs a secret buffer of at least %d bytes",
                            VB_STORE_SECRET_MAX);
    /* user "" is allowed: it names nobody, so it matches nothing */
    if (user != NULL && strnlen(user, VB_STORE_IDENTITY_MAX + 1) > VB_STORE_IDENTITY_MAX)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_STORE,
                            "user is longer than %d bytes", VB_STORE_IDENTITY_MAX);
    if (vbs_check_text("server id", server_id, VB_STORE_SERVER_ID_MAX, err) != 0 ||
        (endpoint != NULL &&
         vbs_check_text("endpoint", endpoint, VB_STORE_ENDPOINT_MAX, err) != 0) ||
        vbs_enter(st, K, "reading a login", err) != 0)
        return -1;

    /* The realm match is done here on bytes rather than in SQL, where
     * substr() and length() count characters. One statement, one snapshot;
     * only the chosen row's secret is read. */
    sqlite3_stmt *stmt;
    int ret = -1, rc;
    if (vbs_prepare(st,
                    "SELECT " LOGIN_COLS ", secret FROM logins "
                    "WHERE server_id = ?1 AND expires > ?2 AND (?3 IS NULL OR endpoint = ?3) "
                    "ORDER BY created DESC, rowid DESC",
                    &stmt, "reading a login", err) != 0)
        goto out;
    sqlite3_bind_text(stmt, 1, server_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now);
    if (endpoint != NULL)
        sqlite3_bind_text(stmt, 3, endpoint, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *identity = (const char *)sqlite3_column_text(stmt, 1);
        if (identity == NULL) {
            bad_row(st, err);
            goto done;
        }
        if (user != NULL && !identity_matches(identity, user))
            continue;
        vb_cached_login r;
        if (read_login(stmt, &r) != 0 ||
            vbs_copy_secret(secret, secret_cap, secret_len, stmt, LOGIN_SECRET_COL) != 0) {
            bad_row(st, err);
            goto done;
        }
        if (rec != NULL)
            *rec = r;
        ret = 1;
        goto done;
    }
    if (rc == SQLITE_DONE)
        ret = 0;
    else
        vbs_sql_error(st, err, "reading a login");
done:
    sqlite3_finalize(stmt);
out:
    vbs_leave(st);
    return ret;
}

int vb_store_login_erase(vb_store *st, const char *server_id, const char *token_id,
                         vb_error *err)
{
    if (vbs_check_text("server id", server_id, VB_STORE_SERVER_ID_MAX, err) != 0 ||
        vbs_check_text("token id", token_id, VB_STORE_ID_MAX, err) != 0 ||
        vbs_enter(st, K, "erasing a login", err) != 0)
        return -1;
    sqlite3_stmt *stmt;
    int changes, ret = -1;
    if (vbs_prepare(st, "DELETE FROM logins WHERE server_id = ?1 AND token_id = ?2", &stmt,
                    "erasing a login", err) == 0) {
        sqlite3_bind_text(stmt, 1, server_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, token_id, -1, SQLITE_STATIC);
        if (vbs_erase(st, stmt, &changes, "erasing a login", err) == 0)
            ret = changes > 0;
    }
    vbs_leave(st);
    return ret;
}

int vb_store_login_list(vb_store *st, vb_cached_login **recs, size_t *n, vb_error *err)
{
    void *rows = NULL;
    int ret = vbs_list(st, K, "SELECT " LOGIN_COLS " FROM logins ORDER BY server_id, identity",
                       sizeof **recs, read_login, "login", "listing logins",
                       recs ? &rows : NULL, n, err);
    if (recs)
        *recs = rows;
    return ret;
}

int vb_store_login_erase_uri(vb_store *st, const char *uri, vb_error *err)
{
    if ((uri != NULL && vbs_check_text("uri", uri, VB_STORE_URI_MAX, err) != 0) ||
        vbs_enter(st, K, "erasing logins", err) != 0)
        return -1;
    sqlite3_stmt *stmt;
    int changes, ret = -1;
    if (vbs_prepare(st, "DELETE FROM logins WHERE ?1 IS NULL OR uri = ?1", &stmt,
                    "erasing logins", err) == 0) {
        if (uri != NULL)
            sqlite3_bind_text(stmt, 1, uri, -1, SQLITE_STATIC);
        if (vbs_erase(st, stmt, &changes, "erasing logins", err) == 0)
            ret = changes;
    }
    vbs_leave(st);
    return ret;
}

int vb_store_login_purge(vb_store *st, int64_t now, vb_error *err)
{
    if (vbs_enter(st, K, "purging logins", err) != 0)
        return -1;
    sqlite3_stmt *stmt;
    int changes = 0, ret = -1;
    if (vbs_prepare(st, "DELETE FROM logins WHERE expires <= ?1", &stmt, "purging logins",
                    err) == 0) {
        sqlite3_bind_int64(stmt, 1, now);
        if (vbs_erase(st, stmt, &changes, "purging logins", err) == 0)
            ret = changes;
    }
    vbs_leave(st);
    return ret;
}
