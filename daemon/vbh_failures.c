/* Failed-login bookkeeping: bounded tables of answer queues, a ceiling on
 * failures per second. See vbh_failures.h for the model. */
#include "vbh_failures.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NIL UINT32_MAX

typedef struct fail_entry {
    char key[VBH_FAIL_KEY_MAX];
    unsigned count;          /* failures since the last success or since forgotten */
    uint64_t last_ms;        /* the last failure (or the creation) */
    uint64_t next_ms;        /* the latest answer time booked in this key's queue */
    uint32_t hnext;          /* hash chain */
    uint32_t lprev, lnext;   /* recency list: head most recent */
} fail_entry;

/* A fixed number of entries, a hash index and a recency list: lookups do
 * not scan, and a full table reuses its least recently touched entry. */
typedef struct fail_table {
    fail_entry *e;
    uint32_t *buckets;
    uint32_t cap, nbuckets, used;
    uint32_t head, tail;
} fail_table;

struct vbh_failures {
    vbh_fail_limits lim;
    fail_table accounts, sources;
    uint64_t tokens_milli;   /* the ceiling's bucket: 1000 per failure */
    uint64_t refill_ms;
    uint64_t global_next_ms; /* the global queue, used only beyond the ceiling */
};

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* ---- the tables ---------------------------------------------------------- */

static uint32_t hash_key(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static int table_init(fail_table *t, unsigned cap)
{
    t->cap = cap ? cap : 1;
    t->nbuckets = 1;
    while (t->nbuckets < t->cap)
        t->nbuckets <<= 1;
    t->e = calloc(t->cap, sizeof *t->e);
    t->buckets = malloc(t->nbuckets * sizeof *t->buckets);
    if (!t->e || !t->buckets)
        return -1;
    for (uint32_t i = 0; i < t->nbuckets; i++)
        t->buckets[i] = NIL;
    t->used = 0;
    t->head = t->tail = NIL;
    return 0;
}

static void table_clear(fail_table *t)
{
    free(t->e);
    free(t->buckets);
}

static void lru_unlink(fail_table *t, uint32_t i)
{
    fail_entry *e = &t->e[i];
    if (e->lprev != NIL)
        t->e[e->lprev].lnext = e->lnext;
    else
        t->head = e->lnext;
    if (e->lnext != NIL)
        t->e[e->lnext].lprev = e->lprev;
    else
        t->tail = e->lprev;
}

static void lru_push_front(fail_table *t, uint32_t i)
{
    fail_entry *e = &t->e[i];
    e->lprev = NIL;
    e->lnext = t->head;
    if (t->head != NIL)
        t->e[t->head].lprev = i;
    t->head = i;
    if (t->tail == NIL)
        t->tail = i;
}

static void truncate_key(const char *key, char out[VBH_FAIL_KEY_MAX])
{
    snprintf(out, VBH_FAIL_KEY_MAX, "%s", key);
}

static uint32_t table_find(const fail_table *t, const char *key)
{
    char k[VBH_FAIL_KEY_MAX];
    truncate_key(key, k);
    for (uint32_t i = t->buckets[hash_key(k) & (t->nbuckets - 1)]; i != NIL; i = t->e[i].hnext)
        if (strcmp(t->e[i].key, k) == 0)
            return i;
    return NIL;
}

static void hash_remove(fail_table *t, uint32_t i)
{
    uint32_t *pp = &t->buckets[hash_key(t->e[i].key) & (t->nbuckets - 1)];
    while (*pp != i)
        pp = &t->e[*pp].hnext;
    *pp = t->e[i].hnext;
}

/* A free slot, or the least recently touched entry made free. */
static uint32_t table_take_slot(fail_table *t)
{
    if (t->used < t->cap)
        return t->used++;
    uint32_t i = t->tail;
    lru_unlink(t, i);
    hash_remove(t, i);
    return i;
}

/* An entry with nothing booked ahead and no failure for forget_ms. */
static int expired(const fail_entry *e, uint64_t forget_ms, uint64_t now)
{
    return e->next_ms <= now && now - e->last_ms >= forget_ms;
}

/* The key's entry, created if missing, reset if expired, made most recent. */
static fail_entry *table_touch(fail_table *t, const char *key, uint64_t forget_ms, uint64_t now)
{
    uint32_t i = table_find(t, key);
    if (i == NIL) {
        i = table_take_slot(t);
        fail_entry *e = &t->e[i];
        memset(e, 0, sizeof *e);
        truncate_key(key, e->key);
        e->last_ms = e->next_ms = now;
        uint32_t b = hash_key(e->key) & (t->nbuckets - 1);
        e->hnext = t->buckets[b];
        t->buckets[b] = i;
    } else {
        lru_unlink(t, i);
        if (expired(&t->e[i], forget_ms, now)) {
            t->e[i].count = 0;
            t->e[i].next_ms = now;
        }
    }
    lru_push_front(t, i);
    return &t->e[i];
}

/* The key's live entry, or NULL; creates nothing (a success must not fill the table). */
static fail_entry *table_get(const fail_table *t, const char *key, uint64_t forget_ms, uint64_t now)
{
    uint32_t i = key ? table_find(t, key) : NIL;
    return i == NIL || expired(&t->e[i], forget_ms, now) ? NULL : &t->e[i];
}

/* ---- the model ----------------------------------------------------------- */

vbh_failures *vbh_failures_new(const vbh_fail_limits *limits)
{
    vbh_failures *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->lim = *limits;
    if (table_init(&t->accounts, limits->table_size) < 0 ||
        table_init(&t->sources, limits->table_size) < 0) {
        vbh_failures_free(t);
        return NULL;
    }
    t->tokens_milli = (uint64_t)limits->global_per_s * 1000u;
    return t;
}

void vbh_failures_free(vbh_failures *t)
{
    if (!t)
        return;
    table_clear(&t->accounts);
    table_clear(&t->sources);
    free(t);
}

/* The delay the count-th failure adds: none for the first (a typo), then
 * 250 ms doubling up to max_ms. */
static uint64_t backoff(const vbh_failures *t, unsigned count)
{
    if (count < 2)
        return 0;
    unsigned shift = count - 2 > 20 ? 20 : count - 2;
    return min_u64((uint64_t)VBH_FAIL_BASE_MS << shift, t->lim.max_ms);
}

/* Book the next answer in one key's queue, no later than cap. */
static uint64_t book(const vbh_failures *t, fail_entry *e, uint64_t now, uint64_t cap)
{
    e->count++;
    e->last_ms = now;
    e->next_ms = min_u64(max_u64(now, e->next_ms) + backoff(t, e->count), cap);
    return e->next_ms;
}

/* Would the account's next failure be answered beyond the horizon? The
 * same question for a right and a wrong password, asked before the answer
 * is known: a right guess in a full queue must not be told apart. */
static int queue_full(const vbh_failures *t, const fail_entry *a, uint64_t now)
{
    return max_u64(now, a->next_ms) + backoff(t, a->count + 1) > now + t->lim.horizon_ms;
}

static void refill(vbh_failures *t, uint64_t now)
{
    uint64_t cap = (uint64_t)t->lim.global_per_s * 1000u;
    if (now > t->refill_ms)
        t->tokens_milli = min_u64(cap, t->tokens_milli + (now - t->refill_ms) * t->lim.global_per_s);
    t->refill_ms = max_u64(t->refill_ms, now);
}

static int over_ceiling(vbh_failures *t, uint64_t now)
{
    if (!t->lim.global_per_s)
        return 0;
    refill(t, now);
    return t->tokens_milli < 1000;
}

/* A failure beyond the ceiling waits in the global queue: the ceiling's
 * rate of answers, never sooner than the global delay. */
static uint64_t global_answer(vbh_failures *t, uint64_t now)
{
    if (!over_ceiling(t, now)) {
        if (t->lim.global_per_s)
            t->tokens_milli -= 1000;
        return now;
    }
    uint64_t gap = 1000u / t->lim.global_per_s;
    t->global_next_ms = min_u64(max_u64(now, t->global_next_ms) + gap, now + t->lim.horizon_ms);
    return max_u64(t->global_next_ms, now + VBH_FAIL_GLOBAL_DELAY_MS);
}

vbh_fail_verdict vbh_failures_note(vbh_failures *t, const char *account, const char *source,
                                   int ok, uint64_t now)
{
    vbh_fail_verdict v = { now, 0 };
    uint64_t forget = t->lim.forget_ms, horizon = now + t->lim.horizon_ms;
    fail_entry *a = NULL;
    if (account) {
        a = ok ? table_get(&t->accounts, account, forget, now)
               : table_touch(&t->accounts, account, forget, now);
        if (a && queue_full(t, a, now)) {
            /* judge nothing, answer no sooner than a queued failure would be */
            v.refused = 1;
            v.answer_at = horizon;
            return v;
        }
    }
    if (ok) {
        if (a)
            a->count = 0;
        /* beyond the ceiling a success is slow too: a client that gives up
         * waiting for it learns nothing sooner */
        if (over_ceiling(t, now))
            v.answer_at = now + VBH_FAIL_GLOBAL_DELAY_MS;
        return v;
    }
    if (a) /* not capped: queue_full keeps it within the horizon */
        v.answer_at = max_u64(v.answer_at, book(t, a, now, UINT64_MAX));
    if (source) /* a source's queue only slows its own failures: capped */
        v.answer_at = max_u64(v.answer_at,
                              book(t, table_touch(&t->sources, source, forget, now), now, horizon));
    v.answer_at = max_u64(v.answer_at, global_answer(t, now));
    return v;
}

size_t vbh_failures_entries(const vbh_failures *t)
{
    return (size_t)t->accounts.used + t->sources.used;
}

unsigned vbh_failures_account_count(const vbh_failures *t, const char *account, uint64_t now)
{
    const fail_entry *e = table_get(&t->accounts, account, t->lim.forget_ms, now);
    return e ? e->count : 0;
}

unsigned vbh_failures_source_count(const vbh_failures *t, const char *source, uint64_t now)
{
    const fail_entry *e = table_get(&t->sources, source, t->lim.forget_ms, now);
    return e ? e->count : 0;
}

