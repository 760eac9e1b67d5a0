/*
 * vb_session_keep.h — a driver's logged-in sessions kept between opens,
 * process-wide, for reuse by a later open of the same owner with the same
 * secret (vbhostd: a XenAPI session per relayed identity).
 *
 * An entry is found by key (who owns it and where it leads, built by the
 * driver; never a secret) and user, and is handed out only when the digest
 * of the secret the new open was given matches: an HMAC-SHA256 under a key
 * made at random once per process, so the secret itself is never kept and
 * a digest means nothing outside this process. Taking an entry removes it
 * (one user at a time); an entry of the same key and user whose digest does
 * not match (the password changed) is destroyed at that moment.
 *
 * Limits: an entry is destroyed idle_s after it was put (a thread of this
 * module does it: the driver's destroy logs the session out), the oldest
 * beyond max entries at once, all of them at vb_session_keep_shutdown. With
 * idle_s or max 0, or never configured, nothing is kept.
 *
 * Log (vb_log: keeping is configured by vbhostd only): each entry has a
 * label (what and whose, no secret). Keeping and reusing are debug lines;
 * every logout the module decides is an info line with its reason (idle,
 * another password, over the limit, shutdown).
 */
#ifndef VB_SESSION_KEEP_H
#define VB_SESSION_KEEP_H

#include <stddef.h>
#include <stdint.h>

#define VB_SESSION_KEEP_DIGEST_LEN 32
#define VB_SESSION_KEEP_DEFAULT_IDLE_S 300
#define VB_SESSION_KEEP_DEFAULT_MAX 64

/* Destroys (logs out and frees) an item; called without the module's lock,
 * on the thread that put, took, expired or shut down. */
typedef void (*vb_session_keep_destroy_fn)(void *item);

/* Process-wide; call before the first put (vbhostd: at start). */
void vb_session_keep_configure(unsigned idle_s, unsigned max);
int vb_session_keep_enabled(void);
/* HMAC-SHA256 of secret under the process key: 0, or -1 (keep nothing). */
int vb_session_keep_digest(const char *secret, size_t len,
                           uint8_t digest[VB_SESSION_KEEP_DIGEST_LEN]);
/* Hand item over: 0 when kept (the module owns it), -1 when not (disabled,
 * out of memory: the caller still owns it). May destroy the oldest entry.
 * label names it in the log ("XenAPI session of root at xenapi://h:443/
 * for sasl:alice"). */
int vb_session_keep_put(const char *key, const char *label, const char *user,
                        const uint8_t digest[VB_SESSION_KEEP_DIGEST_LEN], void *item,
                        vb_session_keep_destroy_fn destroy);
/* The newest entry of key and user with this digest, now the caller's; NULL
 * when none. Entries of key and user with another digest are destroyed. */
void *vb_session_keep_take(const char *key, const char *user,
                           const uint8_t digest[VB_SESSION_KEEP_DIGEST_LEN]);
/* 1 when some entry has key (any user). */
int vb_session_keep_has(const char *key);
/* Destroy every entry and stop the expiry thread (vbhostd: at exit). */
void vb_session_keep_shutdown(void);

#endif
