/*
 * vb_secretcache.h — the broker's in-memory cache of plain secrets.
 *
 * What a person typed for a login (user name, password, answers to prompts)
 * is kept per service so the next login to that service need not ask again,
 * like gpg-agent's passphrase cache or git's credential-cache daemon. An
 * entry lives until its sliding deadline (each fill moves it to now +
 * sliding_ms) or its absolute deadline (approve time + max_ms), whichever
 * comes first; it is wiped with explicit_bzero when it expires, is rejected,
 * cleared or replaced, and when the cache is freed.
 *
 * Time is the caller's monotonic clock in milliseconds (now_ms); nothing here
 * reads a clock or sleeps. Every function takes an internal mutex, so worker
 * threads may share one cache.
 *
 * This module must never log, print or return a secret except by filling a
 * request's results in vb_secretcache_fill.
 */
#ifndef VB_SECRETCACHE_H
#define VB_SECRETCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "vb_cred.h"

#define VB_SECRETCACHE_DEFAULT_SLIDING_MS (10u * 60u * 1000u)       /* 10 min */
#define VB_SECRETCACHE_DEFAULT_MAX_MS (8u * 60u * 60u * 1000u)      /* 8 h */
#define VB_SECRETCACHE_MAX_SERVICES 256   /* when full, the entry closest to expiry goes */
#define VB_SECRETCACHE_MAX_VALUE 8192     /* bytes; a longer answer is not kept */
#define VB_SECRETCACHE_MAX_KEY 4096       /* service name or prompt text; longer: not kept */

typedef struct vb_secretcache vb_secretcache;

/* 0 for either duration means its default. NULL when out of memory. */
vb_secretcache *vb_secretcache_new(uint64_t sliding_ms, uint64_t max_ms);
void vb_secretcache_free(vb_secretcache *c);                 /* wipes everything */

/* Fill req from the entry for service: only when the entry holds a value for
 * EVERY item in req (matched by key, see below; a request with two items of
 * the same key takes the stored values in order) — then set each item's
 * result (replacing and wiping any older one), move the sliding deadline and
 * return 1. Otherwise fill nothing and return 0; also 0 when req->retry is
 * set (the cached answer just failed) or req has no items. Expired entries
 * are wiped on the way. -1 only on out of memory, with nothing filled.
 *
 * Keys: the item type for PASSPHRASE, AUTHNAME, USERNAME, REALM, LANGUAGE,
 * CNONCE and EXTERNAL; the type plus the prompt text for ECHOPROMPT and
 * NOECHOPROMPT (a different question is a different answer). */
int vb_secretcache_fill(vb_secretcache *c, const char *service, vb_cred_request *req,
                        uint64_t now_ms);

/* Keep every item of req that has a result, for service, replacing any older
 * entry for that service; both deadlines restart at now_ms. A request with no
 * results changes nothing. When the new values cannot be kept (a value, a
 * prompt or the service name over its limit: return 0; out of memory: return
 * -1) the older entry is dropped all the same, since it is stale now. */
int vb_secretcache_approve(vb_secretcache *c, const char *service, const vb_cred_request *req,
                           uint64_t now_ms);

/* Forget the entry for service, but only if, for every item of req that has a
 * result, the entry holds an equal value under the same key (constant-time
 * compare) — so a newer credential approved by a concurrent login survives a
 * late reject of the old one. A request without results forgets nothing
 * (vb_secretcache_clear forgets unconditionally). */
void vb_secretcache_reject(vb_secretcache *c, const char *service, const vb_cred_request *req);

void vb_secretcache_expire(vb_secretcache *c, uint64_t now_ms);  /* wipe what expired */
void vb_secretcache_clear(vb_secretcache *c, const char *service); /* NULL: all */
/* Forget every answer asked through the hop named service (the key's first
 * field, "vbhostd on HOST:PORT": its own questions and those relayed through
 * it), for logout. Returns how many entries went. */
size_t vb_secretcache_clear_service(vb_secretcache *c, const char *service);
size_t vb_secretcache_count(vb_secretcache *c, uint64_t now_ms);  /* live entries; wipes expired */

/* Earliest deadline among the entries held (for the broker's timer), 0 when
 * empty. A deadline at or before now means: call vb_secretcache_expire. */
uint64_t vb_secretcache_next_expiry(vb_secretcache *c);

#endif
