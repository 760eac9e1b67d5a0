/* vb_session_keep.c — kept driver sessions (see the header for the rules).
 * A list of at most max entries (64 by default: a linear scan costs less
 * than the round trip it saves), and one thread that destroys entries as
 * they expire, so an idle session is logged out on time without an open. */
#include "vb_session_keep.h"

#include "vb_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

typedef struct keep_entry {
    char *key;
    char *label;
    char *user;
    const char *why;      /* set when the module ends it: logged at its logout */
    uint8_t digest[VB_SESSION_KEEP_DIGEST_LEN];
    uint64_t expires_ms;  /* monotonic */
    uint64_t seq;         /* put order: the oldest goes first */
    void *item;
    vb_session_keep_destroy_fn destroy;
    struct keep_entry *next;
} keep_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static unsigned idle_s, max_entries;
static keep_entry *entries;
static size_t nentries;
static uint64_t next_seq;
static int thread_running, stopping;
static pthread_t reaper;
static uint8_t hmac_key[32];
static int hmac_key_ok;

static void init_once(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&wake, &attr);
    pthread_condattr_destroy(&attr);
    hmac_key_ok = RAND_bytes(hmac_key, sizeof hmac_key) == 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void entry_destroy(keep_entry *e)
{
    if (!e)
        return;
    if (e->destroy) {
        if (e->why)
            vb_log(VB_LOG_INFO, "logging out the kept %s: %s", e->label, e->why);
        e->destroy(e->item);
    }
    OPENSSL_cleanse(e->digest, sizeof e->digest);
    free(e->key);
    free(e->label);
    free(e->user);
    free(e);
}

static void destroy_list(keep_entry *e)
{
    while (e) {
        keep_entry *next = e->next;
        entry_destroy(e);
        e = next;
    }
}

/* Unlink *pp (lock held) onto *out; why is logged at its logout. */
static void unlink_to(keep_entry **pp, keep_entry **out, const char *why)
{
    keep_entry *e = *pp;
    e->why = why;
    *pp = e->next;
    e->next = *out;
    *out = e;
    nentries--;
}

void vb_session_keep_configure(unsigned idle, unsigned max)
{
    pthread_once(&once, init_once);
    pthread_mutex_lock(&lock);
    idle_s = idle;
    max_entries = max;
    pthread_mutex_unlock(&lock);
}

int vb_session_keep_enabled(void)
{
    pthread_mutex_lock(&lock);
    int on = idle_s > 0 && max_entries > 0 && !stopping;
    pthread_mutex_unlock(&lock);
    return on;
}

int vb_session_keep_digest(const char *secret, size_t len,
                           uint8_t digest[VB_SESSION_KEEP_DIGEST_LEN])
{
    pthread_once(&once, init_once);
    unsigned outlen = 0;
    if (!hmac_key_ok || !HMAC(EVP_sha256(), hmac_key, (int)sizeof hmac_key,
                              (const unsigned char *)secret, len, digest, &outlen) ||
        outlen != VB_SESSION_KEEP_DIGEST_LEN)
        return -1;
    return 0;
}

/* The expiry thread: sleeps until the earliest entry expires. */
static void *reap(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        uint64_t now = now_ms(), next = 0;
        keep_entry *expired = NULL;
        for (keep_entry **pp = &entries; *pp;) {
            if ((*pp)->expires_ms <= now) {
                unlink_to(pp, &expired, "idle (xenapi_session_keep)");
                continue;
            }
            if (!next || (*pp)->expires_ms < next)
                next = (*pp)->expires_ms;
            pp = &(*pp)->next;
        }
        if (expired) {
            pthread_mutex_unlock(&lock); /* a logout is a round trip */
            destroy_list(expired);
            pthread_mutex_lock(&lock);
            continue;
        }
        if (!next) {
            pthread_cond_wait(&wake, &lock);
            continue;
        }
        struct timespec at = { (time_t)(next / 1000), (long)(next % 1000) * 1000000 };
        int rc = pthread_cond_timedwait(&wake, &lock, &at);
        (void)rc; /* ETIMEDOUT or a wake-up: look again */
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int vb_session_keep_put(const char *key, const char *label, const char *user,
                        const uint8_t digest[VB_SESSION_KEEP_DIGEST_LEN], void *item,
                        vb_session_keep_destroy_fn destroy)
{
    pthread_once(&once, init_once);
    keep_entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key)) || !(e->label = strdup(label)) ||
        !(e->user = strdup(user))) {
        if (e) {
            free(e->key);
            free(e->label);
            free(e);
        }
        return -1;
    }
    memcpy(e->digest, digest, sizeof e->digest);
    e->item = item;
    e->destroy = destroy;
    keep_entry *evicted = NULL;
    pthread_mutex_lock(&lock);
    if (!idle_s || !max_entries || stopping ||
        (!thread_running && pthread_create(&reaper, NULL, reap, NULL) != 0)) {
        pthread_mutex_unlock(&lock);
        e->destroy = NULL; /* the caller keeps the item */
        entry_destroy(e);
        return -1;
    }
    thread_running = 1;
    while (nentries >= max_entries) {
        keep_entry **oldest = &entries;
        for (keep_entry **pp = &entries; *pp; pp = &(*pp)->next)
            if ((*pp)->seq < (*oldest)->seq)
                oldest = pp;
        unlink_to(oldest, &evicted, "more kept than xenapi_sessions_max");
    }
    e->expires_ms = now_ms() + (uint64_t)idle_s * 1000;
    e->seq = next_seq++;
    e->next = entries;
    entries = e;
    nentries++;
    unsigned keep_s = idle_s;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    vb_log(VB_LOG_DEBUG, "keeping the %s for %u s", label, keep_s);
    destroy_list(evicted);
    return 0;
}

void *vb_session_keep_take(const char *key, const char *user,
                           const uint8_t digest[VB_SESSION_KEEP_DIGEST_LEN])
{
    keep_entry *found = NULL, *stale = NULL;
    pthread_mutex_lock(&lock);
    for (keep_entry **pp = &entries; *pp;) {
        keep_entry *e = *pp;
        if (strcmp(e->key, key) != 0 || strcmp(e->user, user) != 0) {
            pp = &e->next;
            continue;
        }
        if (CRYPTO_memcmp(e->digest, digest, sizeof e->digest) != 0) {
            unlink_to(pp, &stale, "another password was given"); /* that session is done */
            continue;
        }
        if (!found || e->seq > found->seq)
            found = e;
        pp = &e->next;
    }
    void *item = NULL;
    if (found) {
        for (keep_entry **pp = &entries; *pp; pp = &(*pp)->next)
            if (*pp == found) {
                keep_entry *taken = NULL;
                unlink_to(pp, &taken, NULL);
                break;
            }
        item = found->item;
        found->destroy = NULL;
        found->next = NULL;
    }
    pthread_mutex_unlock(&lock);
    if (found)
        vb_log(VB_LOG_DEBUG, "reusing the kept %s", found->label);
    entry_destroy(found);
    destroy_list(stale);
    return item;
}

int vb_session_keep_has(const char *key)
{
    int has = 0;
    pthread_mutex_lock(&lock);
    for (keep_entry *e = entries; e && !has; e = e->next)
        has = strcmp(e->key, key) == 0;
    pthread_mutex_unlock(&lock);
    return has;
}

void vb_session_keep_shutdown(void)
{
    pthread_mutex_lock(&lock);
    stopping = 1;
    keep_entry *all = entries;
    entries = NULL;
    nentries = 0;
    int joined = thread_running;
    thread_running = 0;
    if (joined)
        pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    if (joined)
        pthread_join(reaper, NULL);
    for (keep_entry *e = all; e; e = e->next)
        e->why = "shutting down";
    destroy_list(all);
}
