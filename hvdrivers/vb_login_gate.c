/* vb_login_gate: a per-server counting semaphore, keyed by endpoint. */
#include "vb_login_gate.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 600

struct vb_login_slot {
    vb_login_slot *next;
    char key[KEY_MAX];
    unsigned holders;   /* logins holding one of the slots */
    unsigned waiters;   /* logins waiting for one; the entry lives while either is > 0 */
};

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_freed = PTHREAD_COND_INITIALIZER;
static vb_login_slot *gate_entries;
static unsigned gate_limit = VB_LOGIN_GATE_DEFAULT_LIMIT;
static unsigned gate_wait_ms = VB_LOGIN_GATE_DEFAULT_WAIT_MS;

void vb_login_gate_configure(unsigned limit, unsigned wait_ms)
{
    pthread_mutex_lock(&gate_lock);
    gate_limit = limit;
    gate_wait_ms = wait_ms;
    pthread_mutex_unlock(&gate_lock);
}

/* One key per server a login counts against: the transport and where it
 * dials (host and port, or the socket path). The user does not matter: the
 * server counts connections, not identities. */
static void endpoint_key(const vb_uri *uri, char *buf, size_t len)
{
    const char *socket = vb_uri_param_get(uri, "socket");
    snprintf(buf, len, "%s|%s|%d|%s", uri->transport ? uri->transport : "unix",
             uri->host ? uri->host : "", uri->port, socket ? socket : "");
}

static vb_login_slot *find_entry(const char *key)
{
    for (vb_login_slot *e = gate_entries; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static vb_login_slot *find_or_add_entry(const char *key)
{
    vb_login_slot *e = find_entry(key);
    if (e || !(e = calloc(1, sizeof *e)))
        return e;
    snprintf(e->key, sizeof e->key, "%s", key);
    e->next = gate_entries;
    gate_entries = e;
    return e;
}

static void drop_entry_if_unused(vb_login_slot *e)
{
    if (e->holders || e->waiters)
        return;
    for (vb_login_slot **p = &gate_entries; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            free(e);
            return;
        }
}

static struct timespec deadline_after(unsigned ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

vb_login_slot *vb_login_gate_enter(const vb_uri *uri)
{
    char key[KEY_MAX];
    endpoint_key(uri, key, sizeof key);
    pthread_mutex_lock(&gate_lock);
    vb_login_slot *e = gate_limit ? find_or_add_entry(key) : NULL;
    if (e) {
        struct timespec until = deadline_after(gate_wait_ms);
        int rc = 0;
        e->waiters++;
        while (e->holders >= gate_limit && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&gate_freed, &gate_lock, &until);
        e->waiters--;
        if (e->holders < gate_limit) {
            e->holders++;
        } else {
            drop_entry_if_unused(e);
            e = NULL; /* waited long enough: go ahead, the server decides */
        }
    }
    pthread_mutex_unlock(&gate_lock);
    return e;
}

void vb_login_gate_leave(vb_login_slot *slot)
{
    if (!slot)
        return;
    pthread_mutex_lock(&gate_lock);
    slot->holders--;
    drop_entry_if_unused(slot);
    pthread_cond_broadcast(&gate_freed);
    pthread_mutex_unlock(&gate_lock);
}

unsigned vb_login_gate_in_progress(const vb_uri *uri)
{
    char key[KEY_MAX];
    endpoint_key(uri, key, sizeof key);
    pthread_mutex_lock(&gate_lock);
    vb_login_slot *e = find_entry(key);
    unsigned n = e ? e->holders : 0;
    pthread_mutex_unlock(&gate_lock);
    return n;
}
