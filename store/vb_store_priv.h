/*
 * vb_store_priv.h — what the store's files share: the handle, entering and
 * leaving a call, one-statement write transactions, bounded copies.
 * Not for use outside store/.
 */
#ifndef VB_STORE_PRIV_H
#define VB_STORE_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/types.h>

#include "vb_store.h"

struct vb_store {
    sqlite3 *db;
    enum vb_store_kind kind;
    pid_t pid;              /* the process that opened it: a store never crosses fork() */
    pthread_mutex_t lock;   /* one call at a time: a transaction spans several sqlite calls */
    char path[PATH_MAX];    /* for messages */
    int wipe_pending;       /* an erased secret may still be in the -wal: see vbs_erase */
    struct vb_store *abandoned_next; /* closed in a forked child: kept, see vb_store_close */
};

/* Check st belongs to this process and is of kind, then take its lock.
 * what names the call for messages. 0 or -1. */
int vbs_enter(vb_store *st, enum vb_store_kind kind, const char *what, vb_error *err);
void vbs_leave(vb_store *st);

/* VB_ERR_STORE "what: sqlite's message (path)". sqlite's messages name
 * tables and columns, never bound values. Returns -1. */
int vbs_sql_error(vb_store *st, vb_error *err, const char *what);

/* Prepare sql (constant text; values are bound by the caller). 0 or -1. */
int vbs_prepare(vb_store *st, const char *sql, sqlite3_stmt **stmt, const char *what,
                vb_error *err);

/* Run one bound write statement in BEGIN IMMEDIATE … COMMIT: the write lock
 * is taken up front, under the busy timeout. A transaction that reads and
 * then writes cannot get it once another process has committed in between
 * (SQLITE_BUSY_SNAPSHOT, which no timeout cures); every write goes through
 * here so none can forget. Finalizes stmt. *changes gets the rows changed.
 * 0 or -1. */
int vbs_write(vb_store *st, sqlite3_stmt *stmt, int *changes, const char *what, vb_error *err);

/* vbs_write for a statement that removes or replaces a secret (DELETE, a
 * revoke); then, when it changed a row, a
 * TRUNCATE checkpoint moves the rewritten pages (secure_delete zeroed the old
 * bytes in them) into the database file and empties the -wal, where the
 * frames written before still hold the old secret. A reader in a read
 * transaction keeps those frames alive; the checkpoint waits for it up to
 * the busy timeout. If it still cannot finish, the write stays committed
 * and this returns -1 (VB_ERR_STORE naming the -wal); the wipe is then
 * retried on every later call (without waiting) and at close. */
int vbs_erase(vb_store *st, sqlite3_stmt *stmt, int *changes, const char *what, vb_error *err);
/* The wipe of vbs_erase alone, for a write that changed a secret only in
 * some cases (an upsert that replaced a row). 0 or -1, as vbs_erase. */
int vbs_wipe(vb_store *st, const char *what, vb_error *err);

/* A listing: enter the store as kind, run the SELECT sql and collect every
 * row: read_row fills one row of row_size bytes from the statement
 * (non-zero: a row this build cannot read, reported as a row_kind row).
 * *rows is malloc'd (NULL when *n is 0); rows and n are required (else
 * VB_ERR_INVALID_ARG, "what: ..."). 0 or -1; nothing is returned on -1. */
typedef int (*vbs_read_row_fn)(sqlite3_stmt *stmt, void *row);
int vbs_list(vb_store *st, enum vb_store_kind kind, const char *sql, size_t row_size,
             vbs_read_row_fn read_row, const char *row_kind, const char *what, void **rows,
             size_t *n, vb_error *err);

/* s is non-NULL, non-empty and at most max bytes; else VB_ERR_INVALID_ARG
 * naming the argument. */
int vbs_check_text(const char *name, const char *s, size_t max, vb_error *err);
int vbs_check_secret(const uint8_t *secret, size_t len, vb_error *err);

/* Copy text column col into dst[cap]; -1 when it is NULL, too long or holds
 * a NUL (a row this code did not write). */
int vbs_copy_text(char *dst, size_t cap, sqlite3_stmt *stmt, int col);
/* Copy blob column col into dst[cap]; -1 when it is not a 1..cap byte blob. */
int vbs_copy_secret(uint8_t *dst, size_t cap, size_t *len, sqlite3_stmt *stmt, int col);

#endif
