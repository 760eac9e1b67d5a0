/*
 * vbh_failures.h — how fast vbhostd answers login attempts, from the
 * failures it has seen: per account (the SASL authentication name, known or
 * not), per source (an IPv4 address or prefix, an IPv6 /64, a unix uid) and
 * in total (a ceiling on failures per second).
 *
 * Each account and each source has a queue of answer times: a failure is
 * answered no earlier than the key's previous answer plus a delay that grows
 * with the key's failures (0, 250 ms, 500 ms, ... max), so parallel
 * connections line up behind each other instead of each getting its own
 * short delay. When an account's next failure would be answered beyond the
 * horizon, every attempt on it is refused ("failed", whatever the password:
 * no guess is judged until the queue drains), which also bounds how long an
 * attack can lock the account's owner out. So the guesses on one account
 * whose result anyone learns are bounded by the queue, however many
 * connections and addresses ask. A success is not delayed by its account's
 * queue (its right answer needs no hiding: it was judged like a failure
 * would have been, or refused); beyond the ceiling it waits the global delay.
 *
 * Pure logic: no I/O, no clock of its own (every call takes `now`, in ms on
 * any monotonic clock), fixed memory (two tables of table_size entries, the
 * least recently touched entry makes room), so it is unit-testable and
 * cannot grow. Not thread-safe: vbhostd uses it from its loop thread only.
 */
#ifndef VBH_FAILURES_H
#define VBH_FAILURES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define VBH_FAIL_KEY_MAX 128     /* longer names share an entry (more delay, never less) */
#define VBH_FAIL_BASE_MS 250u    /* the second failure's delay; each further one doubles it */
#define VBH_FAIL_GLOBAL_DELAY_MS 1000u /* beyond the ceiling, no answer sooner than this */

typedef struct vbh_fail_limits {
    unsigned table_size;     /* entries per table (accounts, sources); 0 acts as 1 */
    uint64_t forget_ms;      /* an entry without failures for this long starts over */
    uint64_t max_ms;         /* the largest delay one failure adds to its queue */
    uint64_t horizon_ms;     /* how far ahead an account's queue may reach */
    unsigned global_per_s;   /* failures per second (burst: one second's worth); 0: no ceiling */
} vbh_fail_limits;

typedef struct vbh_fail_verdict {
    uint64_t answer_at;      /* the answer goes out no earlier than this (the caller's clock) */
    int refused;             /* answer "failed" even if the login succeeded */
} vbh_fail_verdict;

typedef struct vbh_failures vbh_failures;

vbh_failures *vbh_failures_new(const vbh_fail_limits *limits);
void vbh_failures_free(vbh_failures *t);

/* A login attempt finished at now: ok says whether the credentials were
 * right. account (NULL: no name, e.g. a token or a malformed exchange) and
 * source (NULL: none) name the keys. A failure is counted and queued; a
 * success resets its account's count and, beyond the ceiling, waits the
 * global delay; a refused attempt (ok or not) counts nothing. */
vbh_fail_verdict vbh_failures_note(vbh_failures *t, const char *account, const char *source,
                                   int ok, uint64_t now);

/* Entries in use (accounts + sources), for tests and diagnostics. */
size_t vbh_failures_entries(const vbh_failures *t);
/* The failures counted for an account / a source (0 if none or forgotten). */
unsigned vbh_failures_account_count(const vbh_failures *t, const char *account, uint64_t now);
unsigned vbh_failures_source_count(const vbh_failures *t, const char *source, uint64_t now);

#endif
