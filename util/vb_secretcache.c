/*
 * vb_secretcache.c — per-service cache of typed secrets, with sliding and
 * absolute deadlines.
 *
 * At most VB_SECRETCACHE_MAX_SERVICES entries sit in a flat array searched
 * linearly: a few hundred string compares under the lock cost less than a
 * hash table's bookkeeping, and the bound keeps every operation O(n) small.
 * Expiry is lazy (every call that has a now_ms wipes what is due) plus the
 * broker's timer, which asks vb_secretcache_next_expiry when to call expire.
 *
 * Copies of secrets are made outside the lock where possible (approve builds
 * the new entry first) and fill hands out fresh copies, so no pointer into
 * the cache ever leaves it.
 */
#include "vb_secretcache.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct sc_value {
    int type;        /* enum vb_cred_type_public */
    char *prompt;    /* part of the key for ECHOPROMPT/NOECHOPROMPT, else NULL */
    char *value;     /* the secret, NUL-terminated; wiped before free */
    size_t len;
} sc_value;

typedef struct sc_entry {
    char *service;
    uint64_t sliding_deadline;   /* last fill (or approve) + sliding_ms */
    uint64_t max_deadline;       /* approve + max_ms; fills never move it */
    sc_value values[VB_CRED_MAX_ITEMS];
    size_t nvalues;
} sc_entry;

struct vb_secretcache {
    pthread_mutex_t lock;
    uint64_t sliding_ms;
    uint64_t max_ms;
    sc_entry *entries[VB_SECRETCACHE_MAX_SERVICES];  /* unordered, n used */
    size_t n;
};

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t entry_deadline(const sc_entry *e)
{
    return e->sliding_deadline < e->max_deadline ? e->sliding_deadline : e->max_deadline;
}

static void wipe_free(char *p, size_t len)
{
    if (p) {
        explicit_bzero(p, len);
        free(p);
    }
}

static void entry_free(sc_entry *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nvalues; i++) {
        wipe_free(e->values[i].value, e->values[i].len);
        free(e->values[i].prompt);
    }
    free(e->service);
    explicit_bzero(e, sizeof *e);
    free(e);
}

/* A prompt item's answer belongs to its question, not to its type alone. */
static bool keyed_by_prompt(int type)
{
    return type == VB_CRED_ECHOPROMPT || type == VB_CRED_NOECHOPROMPT;
}

static bool same_key(const vb_cred_item *it, const sc_value *v)
{
    if (it->type != v->type)
        return false;
    if (!keyed_by_prompt(it->type))
        return true;
    if (!it->prompt || !v->prompt)
        return !it->prompt && !v->prompt;
    return strcmp(it->prompt, v->prompt) == 0;
}

/* Pair each item of req (only those with a result when with_result) with a
 * distinct stored value of the same key, first unused one first, so repeated
 * keys pair up in order. map[i] is the value for item i. */
static bool entry_match(const sc_entry *e, const vb_cred_request *req, bool with_result,
                        size_t map[VB_CRED_MAX_ITEMS])
{
    bool used[VB_CRED_MAX_ITEMS] = { false };
    for (size_t i = 0; i < req->nitems; i++) {
        const vb_cred_item *it = &req->items[i];
        if (with_result && !it->result)
            continue;
        size_t j = 0;
        while (j < e->nvalues && (used[j] || !same_key(it, &e->values[j])))
            j++;
        if (j == e->nvalues)
            return false;
        used[j] = true;
        map[i] = j;
    }
    return true;
}

static size_t count_results(const vb_cred_request *req)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nitems; i++)
        n += req->items[i].result != NULL;
    return n;
}

/* Copy req's answered items into a new entry (deadlines unset). */
static sc_entry *entry_new(const char *service, const vb_cred_request *req)
{
    sc_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->service = strdup(service);
    if (!e->service)
        goto oom;
    for (size_t i = 0; i < req->nitems; i++) {
        const vb_cred_item *it = &req->items[i];
        if (!it->result)
            continue;
        sc_value *v = &e->values[e->nvalues++];
        v->type = it->type;
        if (keyed_by_prompt(it->type) && it->prompt && !(v->prompt = strdup(it->prompt)))
            goto oom;
        if (!(v->value = malloc(it->resultlen + 1)))
            goto oom;
        memcpy(v->value, it->result, it->resultlen);
        v->value[it->resultlen] = '\0';
        v->len = it->resultlen;
    }
    return e;
oom:
    entry_free(e);
    return NULL;
}

/* The request's answers are within the limits that bound the cache. */
static bool fits_limits(const char *service, const vb_cred_request *req)
{
    if (strnlen(service, VB_SECRETCACHE_MAX_KEY + 1) > VB_SECRETCACHE_MAX_KEY)
        return false;
    for (size_t i = 0; i < req->nitems; i++) {
        const vb_cred_item *it = &req->items[i];
        if (!it->result)
            continue;
        if (it->resultlen > VB_SECRETCACHE_MAX_VALUE)
            return false;
        if (keyed_by_prompt(it->type) && it->prompt &&
            strnlen(it->prompt, VB_SECRETCACHE_MAX_KEY + 1) > VB_SECRETCACHE_MAX_KEY)
            return false;
    }
    return true;
}

/* --- helpers below run with c->lock held --- */

static sc_entry *find_locked(vb_secretcache *c, const char *service, size_t *idx)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->entries[i]->service, service) == 0) {
            *idx = i;
            return c->entries[i];
        }
    }
    return NULL;
}

static void remove_locked(vb_secretcache *c, size_t i)
{
    entry_free(c->entries[i]);
    c->entries[i] = c->entries[--c->n];
    c->entries[c->n] = NULL;
}

static void expire_locked(vb_secretcache *c, uint64_t now_ms)
{
    for (size_t i = 0; i < c->n;) {
        if (entry_deadline(c->entries[i]) <= now_ms)
            remove_locked(c, i);
        else
            i++;
    }
}

/* --- public API --- */

vb_secretcache *vb_secretcache_new(uint64_t sliding_ms, uint64_t max_ms)
{
    vb_secretcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->sliding_ms = sliding_ms ? sliding_ms : VB_SECRETCACHE_DEFAULT_SLIDING_MS;
    c->max_ms = max_ms ? max_ms : VB_SECRETCACHE_DEFAULT_MAX_MS;
    return c;
}

void vb_secretcache_free(vb_secretcache *c)
{
    if (!c)
        return;
    while (c->n > 0)
        remove_locked(c, c->n - 1);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int vb_secretcache_fill(vb_secretcache *c, const char *service, vb_cred_request *req,
                        uint64_t now_ms)
{
    if (!c || !service || !req || req->retry || req->nitems == 0 ||
        req->nitems > VB_CRED_MAX_ITEMS)
        return 0;

    /* Copy under the lock, hand over after: all items or none. */
    char *copy[VB_CRED_MAX_ITEMS] = { NULL };
    size_t len[VB_CRED_MAX_ITEMS] = { 0 };
    size_t map[VB_CRED_MAX_ITEMS];
    int rc = 0;

    pthread_mutex_lock(&c->lock);
    expire_locked(c, now_ms);
    size_t idx;
    sc_entry *e = find_locked(c, service, &idx);
    if (e && entry_match(e, req, false, map)) {
        rc = 1;
        for (size_t i = 0; i < req->nitems; i++) {
            const sc_value *v = &e->values[map[i]];
            if (!(copy[i] = malloc(v->len + 1))) {
                rc = -1;
                break;
            }
            memcpy(copy[i], v->value, v->len + 1);
            len[i] = v->len;
        }
        if (rc == 1)
            e->sliding_deadline = add_sat(now_ms, c->sliding_ms);
    }
    pthread_mutex_unlock(&c->lock);

    if (rc != 1) {
        for (size_t i = 0; i < req->nitems; i++)
            wipe_free(copy[i], len[i]);
        return rc;
    }
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        wipe_free(it->result, it->resultlen);
        it->result = copy[i];
        it->resultlen = len[i];
    }
    return 1;
}

int vb_secretcache_approve(vb_secretcache *c, const char *service, const vb_cred_request *req,
                           uint64_t now_ms)
{
    if (!c || !service || !req || req->nitems > VB_CRED_MAX_ITEMS)
        return -1;
    if (count_results(req) == 0)
        return 0;

    int rc = 0;
    sc_entry *fresh = NULL;
    if (fits_limits(service, req)) {
        fresh = entry_new(service, req);
        if (!fresh)
            rc = -1;
    }

    pthread_mutex_lock(&c->lock);
    expire_locked(c, now_ms);
    size_t idx;
    if (find_locked(c, service, &idx))
        remove_locked(c, idx);
    if (fresh) {
        if (c->n == VB_SECRETCACHE_MAX_SERVICES) {
            size_t soonest = 0;
            for (size_t i = 1; i < c->n; i++)
                if (entry_deadline(c->entries[i]) < entry_deadline(c->entries[soonest]))
                    soonest = i;
            remove_locked(c, soonest);
        }
        fresh->sliding_deadline = add_sat(now_ms, c->sliding_ms);
        fresh->max_deadline = add_sat(now_ms, c->max_ms);
        c->entries[c->n++] = fresh;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void vb_secretcache_reject(vb_secretcache *c, const char *service, const vb_cred_request *req)
{
    if (!c || !service || !req || req->nitems > VB_CRED_MAX_ITEMS || count_results(req) == 0)
        return;

    pthread_mutex_lock(&c->lock);
    size_t idx;
    size_t map[VB_CRED_MAX_ITEMS];
    sc_entry *e = find_locked(c, service, &idx);
    if (e && entry_match(e, req, true, map)) {
        /* Look at every value, so the time taken does not say which differed. */
        int diff = 0;
        for (size_t i = 0; i < req->nitems; i++) {
            const vb_cred_item *it = &req->items[i];
            if (!it->result)
                continue;
            const sc_value *v = &e->values[map[i]];
            if (v->len != it->resultlen)
                diff |= 1;
            else
                diff |= CRYPTO_memcmp(v->value, it->result, v->len) != 0;
        }
        if (!diff)
            remove_locked(c, idx);
    }
    pthread_mutex_unlock(&c->lock);
}

void vb_secretcache_expire(vb_secretcache *c, uint64_t now_ms)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    expire_locked(c, now_ms);
    pthread_mutex_unlock(&c->lock);
}

void vb_secretcache_clear(vb_secretcache *c, const char *service)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    if (!service) {
        while (c->n > 0)
            remove_locked(c, c->n - 1);
    } else {
        size_t idx;
        if (find_locked(c, service, &idx))
            remove_locked(c, idx);
    }
    pthread_mutex_unlock(&c->lock);
}

/* "vbhostd on h:1" begins "vbhostd on h:1|kind|..." and, relayed,
 * "vbhostd on h:1 (server ..) → ...", but not "vbhostd on h:10|...". */
static bool begins_with_service(const char *key, const char *service)
{
    size_t n = strlen(service);
    return strncmp(key, service, n) == 0 && (key[n] == '|' || key[n] == ' ' || key[n] == '\0');
}

size_t vb_secretcache_clear_service(vb_secretcache *c, const char *service)
{
    size_t removed = 0;
    if (!c || !service)
        return 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = c->n; i > 0; i--)
        if (begins_with_service(c->entries[i - 1]->service, service)) {
            remove_locked(c, i - 1);
            removed++;
        }
    pthread_mutex_unlock(&c->lock);
    return removed;
}

size_t vb_secretcache_count(vb_secretcache *c, uint64_t now_ms)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    expire_locked(c, now_ms);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

uint64_t vb_secretcache_next_expiry(vb_secretcache *c)
{
    if (!c)
        return 0;
    uint64_t next = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        uint64_t d = entry_deadline(c->entries[i]);
        if (i == 0 || d < next)
            next = d;
    }
    pthread_mutex_unlock(&c->lock);
    return next;
}
