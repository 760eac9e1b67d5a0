/*
 * vb_store.h — sqlite persistence for login tokens.
 *
 * Two kinds of store share this code: the tokens vbhostd has issued
 * (state_dir/tokens.db) and the logins vbrokerd has cached for its user
 * ($XDG_STATE_HOME/vbroker/cache.db). Each lives in one file, 0600 in a 0700
 * directory owned by the caller; every write runs in BEGIN IMMEDIATE so
 * several processes can share a file without losing rows.
 *
 * What it must never do: put a secret in an error message, a log line or a
 * list result; build SQL out of values (every value is a bound parameter);
 * follow a symlink to the database; use a connection across fork().
 *
 * Secrets are stored as BLOBs. A secret copied out to the caller is the
 * caller's to wipe (explicit_bzero) when done.
 *
 * Erasing: a call that removes or replaces a secret (login put over an old
 * token, login erase/erase_uri/purge, token revoke/purge) returns only once
 * the old bytes are in none of the store's files (the database, -wal, -shm):
 * secure_delete zeroes them in their page, then a TRUNCATE checkpoint
 * empties the -wal. When another connection's read transaction keeps the
 * -wal alive past VB_STORE_BUSY_TIMEOUT_MS, the change is committed but the
 * call returns -1 (VB_ERR_STORE, "done, but the old secret is still in
 * PATH-wal"); the store retries the wipe at its next calls and at close.
 *
 * Processes and threads: a vb_store must not cross a fork(). Open stores
 * after forking; a call on a store opened by another process fails with
 * VB_ERR_STORE, and vb_store_close() in such a process only frees the handle
 * without touching the database (closing it there could disturb the parent's
 * locks). Within one process a vb_store may be shared between threads: calls
 * are serialised by a mutex.
 */
#ifndef VB_STORE_H
#define VB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "vb_error.h"

/* Bounds, in bytes without the terminating NUL. Longer arguments are
 * refused with VB_ERR_INVALID_ARG; so are empty ones. */
#define VB_STORE_ID_MAX         64    /* token ids */
#define VB_STORE_SERVER_ID_MAX  71    /* "sha256:" + 64 hex digits */
#define VB_STORE_IDENTITY_MAX   255
#define VB_STORE_URI_MAX        1023
#define VB_STORE_AUTH_TYPE_MAX  15
#define VB_STORE_SECRET_MAX     64    /* secrets are 1..64 bytes */
#define VB_STORE_ENDPOINT_MAX   1100  /* the endpoint a login was obtained at */

/* How long a call waits for another process's write to finish. */
#define VB_STORE_BUSY_TIMEOUT_MS 5000
/* The schema this build writes; a file with a newer one is refused. */
#define VB_STORE_SCHEMA_VERSION 2

typedef struct vb_store vb_store;

enum vb_store_kind {
    VB_STORE_DAEMON_TOKENS,  /* vbhostd: tokens it issued */
    VB_STORE_BROKER_CACHE,   /* vbrokerd: logins it holds for its user */
};

/* Open or create the db at path. The parent directory must exist, belong to
 * the effective uid and have no group/other permission bits (else
 * VB_ERR_CONFIG naming the dir and its mode). A new file is created 0600
 * with O_CREAT|O_EXCL (whatever the umask); an existing one must be a
 * regular file (not a symlink) of ours without group/other bits (else
 * VB_ERR_CONFIG). WAL, busy timeout VB_STORE_BUSY_TIMEOUT_MS, foreign keys,
 * secure_delete and temp_store=MEMORY on; the schema is created or migrated to
 * VB_STORE_SCHEMA_VERSION. Refused with VB_ERR_STORE: a file written by a
 * newer build, a store of the other kind, a sqlite file that is not a store.
 * *out is NULL on failure. */
int vb_store_open(const char *path, enum vb_store_kind kind, vb_store **out, vb_error *err);
/* NULL is a no-op. */
void vb_store_close(vb_store *st);
/* Create dir (and missing parents) with mode 0700, whatever the umask;
 * refuse (VB_ERR_CONFIG) an existing dir owned by another uid or with
 * group/other bits. Existing parents are left alone. For
 * $XDG_STATE_HOME/vbroker. */
int vb_store_prepare_dir(const char *dir, vb_error *err);

/* Every function below returns -1 with err filled on error, including
 * VB_ERR_INVALID_ARG when called on a store of the other kind. */

/* ---- daemon: issued tokens (vbhostd state_dir/tokens.db) ---- */
typedef struct vb_token_record {
    char id[VB_STORE_ID_MAX + 1];
    char identity[VB_STORE_IDENTITY_MAX + 1];
    char auth_type[VB_STORE_AUTH_TYPE_MAX + 1];
    int64_t created, expires, last_used;  /* unix seconds; last_used 0: never */
    int revoked;
    int64_t bound_uid;                    /* the unix uid it was issued to; -1: none */
} vb_token_record;

/* 0, or -1 (an id that exists already is VB_ERR_STORE). Not bound to a uid. */
int vb_store_token_add(vb_store *st, const char *id, const uint8_t *secret, size_t secret_len,
                       const char *identity, const char *auth_type, int64_t created,
                       int64_t expires, vb_error *err);
/* The same, bound to bound_uid (>= 0: issued over a unix socket to that uid;
 * -1: not bound). */
int vb_store_token_add_bound(vb_store *st, const char *id, const uint8_t *secret,
                             size_t secret_len, const char *identity, const char *auth_type,
                             int64_t created, int64_t expires, int64_t bound_uid, vb_error *err);
/* 1: found, not revoked and expires > now — the secret is copied out
 * (secret_cap must be >= VB_STORE_SECRET_MAX) and rec filled; 0: unknown,
 * revoked or expired (*secret_len 0, nothing copied; rec filled when the row
 * exists so the caller can log why, zeroed otherwise); -1 error. rec may be
 * NULL. Does not update last_used (see touch). */
int vb_store_token_get(vb_store *st, const char *id, int64_t now, uint8_t *secret,
                       size_t secret_cap, size_t *secret_len, vb_token_record *rec,
                       vb_error *err);
/* last_used = max(last_used, now). 1 updated, 0 unknown id, -1 error. */
int vb_store_token_touch(vb_store *st, const char *id, int64_t now, vb_error *err);
/* Revoke id; when identity is non-NULL only if the token belongs to it. The
 * row stays, its secret is overwritten with random bytes (see Erasing).
 * 1 revoked (also when it already was), 0 not found / not owned, -1 error. */
int vb_store_token_revoke(vb_store *st, const char *id, const char *identity, vb_error *err);
/* Every row, oldest created first, without secrets. *recs is malloc'd (NULL
 * when *n is 0): free() it. */
int vb_store_token_list(vb_store *st, vb_token_record **recs, size_t *n, vb_error *err);
/* Delete the rows with expires <= now - keep_seconds, revoked or not
 * (keep_seconds >= 0: how long to remember an expired token for logs).
 * Returns how many rows went, or -1. */
int vb_store_token_purge(vb_store *st, int64_t now, int64_t keep_seconds, vb_error *err);

/* ---- broker: cached logins ($XDG_STATE_HOME/vbroker/cache.db) ---- */
typedef struct vb_cached_login {
    char server_id[VB_STORE_SERVER_ID_MAX + 1];
    char identity[VB_STORE_IDENTITY_MAX + 1];
    char token_id[VB_STORE_ID_MAX + 1];
    char uri[VB_STORE_URI_MAX + 1];
    char auth_type[VB_STORE_AUTH_TYPE_MAX + 1];
    int64_t created, expires;
    char endpoint[VB_STORE_ENDPOINT_MAX + 1]; /* where the token was obtained */
} vb_cached_login;

/* Upsert by (server_id, identity): one token per server and identity; the
 * new row replaces every other field. An empty endpoint is allowed (such a
 * login is offered nowhere). 0 or -1. */
int vb_store_login_put(vb_store *st, const vb_cached_login *rec, const uint8_t *secret,
                       size_t secret_len, vb_error *err);
/* The login for server_id whose expires > now, obtained at endpoint (NULL:
 * at any endpoint, for logout and replacement; a token is offered only
 * with the endpoint given). When user is non-NULL the
 * identity must equal user or start with user followed by '@' (SASL names
 * carry a realm: "alice@LAB.TEST"); bytes compare exactly, case included,
 * so user "" matches nothing (pass NULL for "any identity"). When several
 * match, the latest created wins. 1 found (secret copied out, secret_cap >=
 * VB_STORE_SECRET_MAX; rec filled when non-NULL), 0 none, -1 error. */
int vb_store_login_get(vb_store *st, const char *server_id, const char *endpoint,
                       const char *user, int64_t now, vb_cached_login *rec, uint8_t *secret, size_t secret_cap,
                       size_t *secret_len, vb_error *err);
/* Erase exactly (server_id, token_id): a newer token stored meanwhile for
 * the same identity survives. 1 erased, 0 no such row, -1 error. */
int vb_store_login_erase(vb_store *st, const char *server_id, const char *token_id,
                         vb_error *err);
/* Every row ordered by server_id, identity; secrets are never returned.
 * *recs is malloc'd (NULL when *n is 0): free() it. */
int vb_store_login_list(vb_store *st, vb_cached_login **recs, size_t *n, vb_error *err);
/* Erase every row whose uri equals uri (NULL: all rows). Returns the count
 * erased, or -1. */
int vb_store_login_erase_uri(vb_store *st, const char *uri, vb_error *err);
/* Erase every login whose token has expired (expires <= now): nothing can
 * use it, and its secret should not outlive it on disk. The count, or -1. */
int vb_store_login_purge(vb_store *st, int64_t now, vb_error *err);

#endif
