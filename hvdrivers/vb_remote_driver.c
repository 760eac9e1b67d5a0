/* The remote driver: vb_remote (the client side of vbhostd) behind the
 * driver vtable, so vbrokerd opens test+tcp://h/default exactly as it opens
 * test:///default.
 *
 * Connection sharing: one authenticated transport ("upstream") per endpoint
 * and user serves every open of it while it lives; each open gets its own
 * conn_id on that transport, so a second `vbctl list` while the first
 * connection is up costs no new login. No lock is held across a call: the
 * opens' calls are in flight together, each waiting for its own reply and
 * answering its own nested questions (vb_remote_chan, proto/vb_calls.h), so
 * one person's pending prompt or one long XenAPI call stalls nobody else.
 * A server without "concurrent_calls" runs one driver call per transport at
 * a time: there an upstream is shared only by opens of the same hypervisor
 * connection (driver, path, name=), which would queue behind each other
 * anyway. An upstream nobody uses closes after the idle time.
 *
 * In vbhostd (VB_OPEN_PRIVATE) an upstream belongs to one credential source,
 * i.e. one client connection: another client opening the same next hop logs
 * in itself, and the upstream closes with its client's last open instead of
 * idling. A URI from the wire (VB_OPEN_FROM_WIRE) never logs in with peer or
 * none (but at the end of an ssh tunnel, as the ssh user), whatever the
 * source's priority says. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_cred.h"
#include "vb_driver.h"
#include "vb_loop.h"
#include "vb_remote.h"

/* How an open logs in (the transport), and what it opens there: big
 * enough for any URI's parts; a key that does not fit is never shared. */
#define KEY_MAX (VB_URI_MAX_LEN + 512)

typedef struct upstream {
    char key[KEY_MAX];           /* sharing_key */
    char target[KEY_MAX];        /* target_key of its first open */
    vb_remote *remote;
    unsigned refs;               /* opens using it */
    uint32_t next_conn_id;
    uint64_t idle_since_ms;
    uint64_t last_used_ms;       /* the last call on it ended */
    int broken;                  /* a call failed at the transport: no new opens */
    int private_scope;           /* VB_OPEN_PRIVATE: closed with its last open */
    int logged_out;              /* closed by a logout: no call goes on it any more */
    struct upstream *next;
} upstream;

typedef struct rconn {
    upstream *up;
    uint32_t conn_id;
    vb_cred_source creds;       /* this open's source, for nested prompts on any call */
    int types[VB_CRED_TYPE_MAX + 8];
    const char *prio[VB_REMOTE_MAX_PRIORITY]; /* a wire open's priority, without peer/none */
    int have_creds;
} rconn;

/* opens per shared transport; vbhostd allows 256 per transport, and beyond
 * some dozens one transport's bytes are the bottleneck anyway: another open
 * then gets a transport of its own */
#define SHARE_MAX_OPENS 64

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static upstream *registry;
static uint64_t idle_ms = 300000;
static unsigned logins_done; /* transports authenticated, for tests and status */

void vb_remote_driver_set_idle(uint64_t ms)
{
    idle_ms = ms;
}

/* Append "len:text|" (a length first, so no text can pass for two fields);
 * 0, or -1 when the key is full. */
static int key_add(char *key, size_t cap, size_t *n, const char *text)
{
    int w = snprintf(key + *n, cap - *n, "%zu:%s|", strlen(text ? text : ""), text ? text : "");
    if (w < 0 || (size_t)w >= cap - *n)
        return -1;
    *n += (size_t)w;
    return 0;
}

/* Opens that would reach and log in to the same vbhostd the same way: the
 * transport, user, host, port and every query parameter but name= (socket=,
 * auth=, server_uid=, known_hosts_verify=, ...: whatever a parameter changes
 * in how the transport is dialled or checked, two URIs that differ in it do
 * not share), a wire open's origin (it logs in differently), and for a
 * private open its credential source (whose login it is). Not the driver,
 * path or name=: those choose the hypervisor connection, which is never
 * shared (each open has its own conn_id). "" when too long: not shared. */
static void sharing_key(const vb_uri *uri, unsigned flags, const struct vb_cred_source *creds,
                        char *key, size_t cap)
{
    char port[16], source[64];
    size_t n = 0;
    snprintf(port, sizeof port, "%d", uri->port);
    snprintf(source, sizeof source, "%p/%p", creds ? (void *)creds->opaque : NULL,
             creds ? (void *)(uintptr_t)creds->fn : NULL);
    int bad = key_add(key, cap, &n, uri->transport ? uri->transport : "unix") < 0 ||
              key_add(key, cap, &n, uri->user) < 0 || key_add(key, cap, &n, uri->host) < 0 ||
              key_add(key, cap, &n, port) < 0 ||
              key_add(key, cap, &n, flags & VB_OPEN_FROM_WIRE ? "wire" : "") < 0 ||
              key_add(key, cap, &n, flags & VB_OPEN_PRIVATE ? source : "") < 0;
    for (size_t i = 0; i < uri->nparams && !bad; i++)
        if (strcmp(uri->params[i].key, "name") != 0)
            bad = key_add(key, cap, &n, uri->params[i].key) < 0 ||
                  key_add(key, cap, &n, uri->params[i].value) < 0;
    if (bad)
        key[0] = '\0';
}

/* The hypervisor connection an open asks vbhostd for: driver, path, name=.
 * Only a server that runs one driver call per transport at a time makes it
 * part of the sharing (find_shared). */
static void target_key(const vb_uri *uri, char *key, size_t cap)
{
    size_t n = 0;
    if (key_add(key, cap, &n, uri->driver) < 0 || key_add(key, cap, &n, uri->path) < 0 ||
        key_add(key, cap, &n, vb_uri_param_get(uri, "name")) < 0)
        key[0] = '\0';
}

static void upstream_free(upstream *up)
{
    vb_remote_free(up->remote);
    free(up);
}

/* Close upstreams idle for longer than the idle time (callers: any open, and
 * the broker's timer). */
void vb_remote_driver_reap(void)
{
    uint64_t now = vb_now_ms();
    upstream *dead = NULL;
    pthread_mutex_lock(&registry_lock);
    for (upstream **pp = &registry; *pp;) {
        upstream *up = *pp;
        if (up->refs == 0 &&
            (up->broken || up->private_scope || now - up->idle_since_ms >= idle_ms)) {
            *pp = up->next;
            up->next = dead;
            dead = up;
        } else {
            pp = &up->next;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    while (dead) {
        upstream *up = dead;
        dead = up->next;
        upstream_free(up);
    }
}

/* Ping every upstream no call has used for interval_ms (a running call has
 * its own timeout, so one with calls in flight is skipped by
 * vb_remote_keepalive, which never waits for them); one that has not
 * answered `count` pings is marked broken: its opens fail at once, new opens
 * log in anew, and it is closed when the last of them goes. */
unsigned vb_remote_driver_keepalive(uint64_t interval_ms, unsigned count)
{
    uint64_t now = vb_now_ms();
    unsigned died = 0;
    pthread_mutex_lock(&registry_lock);
    for (upstream *up = registry; up; up = up->next) {
        vb_error err;
        if (!up->broken && now - up->last_used_ms >= interval_ms &&
            vb_remote_keepalive(up->remote, count, &err) < 0) {
            up->broken = 1;
            died++;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    if (died)
        vb_remote_driver_reap();
    return died;
}

/* Logout: every upstream to endpoint (NULL: all) whose server is server_id
 * (NULL: any) is closed now when no open uses it; one still in use gets no
 * further call (its opens fail, see ON_UPSTREAM) and closes with its last
 * open. Whoever logged in on it, the login is gone from the broker. */
unsigned vb_remote_driver_close_endpoint(const char *endpoint, const char *server_id)
{
    unsigned n = 0;
    pthread_mutex_lock(&registry_lock);
    for (upstream *up = registry; up; up = up->next) {
        const char *sid = vb_remote_server_id(up->remote);
        if ((endpoint && strcmp(vb_remote_endpoint(up->remote), endpoint) != 0) ||
            (server_id && (!sid || strcmp(sid, server_id) != 0)))
            continue;
        up->logged_out = up->broken = 1;
        n++;
    }
    pthread_mutex_unlock(&registry_lock);
    vb_remote_driver_reap();
    return n;
}

/* "sasl", "sasl over TLS", "token over TLS UNVERIFIED": an unverified server
 * certificate (no_verify=1) shows wherever a connection is described (vbctl
 * status). */
static void auth_and_transport(const vb_remote *r, char *buf, size_t len)
{
    const vb_tls *tls = vb_remote_tls(r);
    snprintf(buf, len, "%s%s", vb_remote_auth_type(r),
             !tls ? "" : vb_tls_unverified(tls) ? " over TLS UNVERIFIED" : " over TLS");
}

size_t vb_remote_driver_list(vb_transport_info *out, size_t max)
{
    uint64_t now = vb_now_ms();
    size_t n = 0;
    pthread_mutex_lock(&registry_lock);
    for (upstream *up = registry; up && n < max; up = up->next, n++) {
        vb_transport_info *i = &out[n];
        const char *sid = vb_remote_server_id(up->remote);
        snprintf(i->endpoint, sizeof i->endpoint, "%s", vb_remote_endpoint(up->remote));
        snprintf(i->server_id, sizeof i->server_id, "%s", sid ? sid : "");
        auth_and_transport(up->remote, i->auth_type, sizeof i->auth_type);
        i->opens = up->refs;
        i->idle_ms = up->refs ? 0 : now - up->idle_since_ms;
    }
    pthread_mutex_unlock(&registry_lock);
    return n;
}

size_t vb_remote_driver_upstreams(void)
{
    size_t n = 0;
    pthread_mutex_lock(&registry_lock);
    for (upstream *up = registry; up; up = up->next)
        n++;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

unsigned vb_remote_driver_logins(void)
{
    pthread_mutex_lock(&registry_lock);
    unsigned n = logins_done;
    pthread_mutex_unlock(&registry_lock);
    return n;
}

typedef struct open_keys {
    char key[KEY_MAX];     /* sharing_key */
    char target[KEY_MAX];  /* target_key */
} open_keys;

static upstream *find_shared(const char *key, const char *target)
{
    upstream *found = NULL;
    if (!key[0])
        return NULL;
    pthread_mutex_lock(&registry_lock);
    for (upstream *up = registry; up && !found; up = up->next)
        if (!up->broken && up->refs < SHARE_MAX_OPENS && vb_remote_multiplexes(up->remote) &&
            strcmp(up->key, key) == 0 &&
            (vb_remote_concurrent(up->remote) || (target[0] && strcmp(up->target, target) == 0)))
            found = up;
    if (found)
        found->refs++;
    pthread_mutex_unlock(&registry_lock);
    return found;
}

static upstream *new_upstream(const vb_uri *uri, const char *key, const char *target,
                              unsigned flags, struct vb_cred_source *creds, vb_error *err)
{
    vb_remote_opts opts = { .timeout_ms = 0, .flags = flags & VB_OPEN_FROM_WIRE };
    if (creds)
        opts.creds = *creds;
    upstream *up = calloc(1, sizeof *up);
    if (!up) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
        return NULL;
    }
    if (vb_remote_connect(uri, &opts, &up->remote, err) < 0) {
        free(up);
        return NULL;
    }
    snprintf(up->key, sizeof up->key, "%s", key);
    snprintf(up->target, sizeof up->target, "%s", target);
    up->last_used_ms = vb_now_ms();
    up->refs = 1;
    up->private_scope = (flags & VB_OPEN_PRIVATE) != 0;
    pthread_mutex_lock(&registry_lock);
    logins_done++;
    up->next = registry;
    registry = up;
    pthread_mutex_unlock(&registry_lock);
    return up;
}

static void release(upstream *up)
{
    pthread_mutex_lock(&registry_lock);
    if (--up->refs == 0)
        up->idle_since_ms = vb_now_ms();
    int reap = idle_ms == 0 || up->broken || up->private_scope;
    pthread_mutex_unlock(&registry_lock);
    if (reap)
        vb_remote_driver_reap();
}

/* What vbhostd should open: ?name= when given, else DRIVER:///PATH. */
static char *inner_name(const vb_uri *uri)
{
    const char *name = vb_uri_param_get(uri, "name");
    if (name)
        return strdup(name);
    size_t len = strlen(uri->driver) + strlen(uri->path ? uri->path : "") + 8;
    char *buf = malloc(len);
    if (buf)
        snprintf(buf, len, "%s:///%s", uri->driver, uri->path ? uri->path : "");
    return buf;
}

/* An open whose transport a logout closed fails every later call, as one
 * whose transport the keepalive gave up on (the caller's next open logs in
 * anew, or asks). */
static int logged_out(const rconn *c, vb_error *err)
{
    pthread_mutex_lock(&registry_lock);
    int out = c->up->logged_out;
    pthread_mutex_unlock(&registry_lock);
    if (out && err)
        vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_DRIVER,
                     "the connection to the host was closed by a logout; open it again");
    return out;
}

/* This open's channel on its upstream: its conn_id, and its own source
 * for the nested questions of its calls. */
static vb_remote_chan chan_of(const rconn *c)
{
    vb_remote_chan ch = { c->up->remote, c->conn_id, c->have_creds ? &c->creds : NULL };
    return ch;
}

static void touch(upstream *up)
{
    pthread_mutex_lock(&registry_lock);
    up->last_used_ms = vb_now_ms();
    pthread_mutex_unlock(&registry_lock);
}

/* Run one call on the shared transport, on this open's channel (no lock
 * held: other opens' calls run meanwhile). */
#define ON_UPSTREAM(rc, c, call)                  \
    do {                                          \
        if (logged_out((c), err)) {               \
            (rc) = -1;                            \
            break;                                \
        }                                         \
        vb_remote_chan ch = chan_of(c);           \
        (rc) = (call);                            \
        touch((c)->up);                           \
    } while (0)

static void note_transport_error(rconn *c, int rc, const vb_error *err)
{
    if (rc < 0 && err && (err->code == VB_ERR_PEER_CLOSED || err->code == VB_ERR_TIMEOUT ||
                          err->code == VB_ERR_PROTOCOL)) {
        pthread_mutex_lock(&registry_lock);
        c->up->broken = 1;
        pthread_mutex_unlock(&registry_lock);
    }
}

/* OPEN on the upstream with a fresh conn_id. On failure the upstream is
 * released (it may be freed): *broken says whether the transport died. */
static int open_on(rconn *c, const char *name, unsigned flags, vb_error *err, int *broken)
{
    pthread_mutex_lock(&registry_lock);
    c->conn_id = ++c->up->next_conn_id;
    pthread_mutex_unlock(&registry_lock);
    vb_remote_chan ch = chan_of(c);
    int rc = vb_remote_chan_open(&ch, name, flags & VB_OPEN_WIRE_FLAGS, err);
    touch(c->up);
    note_transport_error(c, rc, err);
    pthread_mutex_lock(&registry_lock);
    *broken = c->up->broken;
    pthread_mutex_unlock(&registry_lock);
    if (rc < 0) {
        release(c->up);
        c->up = NULL;
    }
    return rc;
}

/* A wire open's auth priority: the source's (or the built-in default's)
 * without what would log in as this process itself (peer and none, but
 * over ssh). */
static void wire_priority(rconn *c, const vb_uri *uri)
{
    static const char *const fallback[] = { "token", "sasl", "polkit", "peer", "none" }; /* vb_remote_auth.c's */
    const char *const *prio = c->creds.nauth_priority ? c->creds.auth_priority : fallback;
    size_t n = c->creds.nauth_priority ? c->creds.nauth_priority
                                       : sizeof fallback / sizeof fallback[0], kept = 0;
    for (size_t i = 0; i < n && kept < VB_REMOTE_MAX_PRIORITY; i++)
        if (!vb_driver_auth_is_own_identity(prio[i], uri->transport))
            c->prio[kept++] = prio[i];
    if (!kept) /* nothing left: sasl, asked of the source */
        c->prio[kept++] = "sasl";
    c->creds.auth_priority = c->prio;
    c->creds.nauth_priority = kept;
}

static int remote_open(const vb_uri *uri, unsigned flags, struct vb_cred_source *creds, void **conn,
                       vb_error *err)
{
    if ((flags & VB_OPEN_FROM_WIRE) && vb_driver_check_wire_uri(uri, err) < 0)
        return -1;
    vb_remote_driver_reap();
    rconn *c = calloc(1, sizeof *c);
    char *name = inner_name(uri);
    open_keys *k = malloc(sizeof *k); /* 9 KiB: not on a worker's stack */
    if (!c || !name || !k) {
        free(c);
        free(name);
        free(k);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
    }
    sharing_key(uri, flags, creds, k->key, sizeof k->key);
    target_key(uri, k->target, sizeof k->target);
    if (creds) { /* keep a copy: the caller's type list may live on its stack */
        c->creds = *creds;
        size_t n = creds->ntypes < sizeof c->types / sizeof c->types[0]
                       ? creds->ntypes
                       : sizeof c->types / sizeof c->types[0];
        memcpy(c->types, creds->types, n * sizeof c->types[0]);
        c->creds.types = c->types;
        c->creds.ntypes = n;
        c->have_creds = 1;
    }
    if (flags & VB_OPEN_FROM_WIRE)
        wire_priority(c, uri);
    int rc = -1, broken = 0, shared = 0;
    c->up = find_shared(k->key, k->target);
    if (c->up) {
        shared = 1;
        rc = open_on(c, name, flags, err, &broken);
    }
    /* no shared transport, or the shared one died since its last use: log in anew, once */
    if (!shared || (rc < 0 && broken)) {
        c->up = new_upstream(uri, k->key, k->target, flags, &c->creds, err); /* zeroed when no source */
        rc = c->up ? open_on(c, name, flags, err, &broken) : -1;
    }
    free(name);
    free(k);
    if (rc < 0) {
        free(c);
        return -1;
    }
    *conn = c;
    return 0;
}

static void remote_close(void *conn)
{
    rconn *c = conn;
    int rc;
    vb_error *err = NULL;
    ON_UPSTREAM(rc, c, vb_remote_chan_close(&ch, NULL));
    (void)rc;
    release(c->up);
    free(c);
}

static int remote_hostname(void *conn, char **hostname, vb_error *err)
{
    rconn *c = conn;
    int rc;
    ON_UPSTREAM(rc, c, vb_remote_chan_get_hostname(&ch, hostname, err));
    note_transport_error(c, rc, err);
    return rc;
}

static int remote_list(void *conn, vb_domain_info **doms, size_t *n, vb_error *err)
{
    rconn *c = conn;
    int rc;
    ON_UPSTREAM(rc, c, vb_remote_chan_list_domains(&ch, doms, n, err));
    note_transport_error(c, rc, err);
    return rc;
}

static int remote_start(void *conn, const char *name, vb_error *err)
{
    rconn *c = conn;
    int rc;
    ON_UPSTREAM(rc, c, vb_remote_chan_domain_start(&ch, name, err));
    note_transport_error(c, rc, err);
    return rc;
}

static int remote_shutdown(void *conn, const char *name, vb_error *err)
{
    rconn *c = conn;
    int rc;
    ON_UPSTREAM(rc, c, vb_remote_chan_domain_shutdown(&ch, name, err));
    note_transport_error(c, rc, err);
    return rc;
}

static void remote_describe(void *conn, vb_conn_info *info)
{
    const vb_remote *r = ((rconn *)conn)->up->remote;
    auth_and_transport(r, info->auth_type, sizeof info->auth_type);
    snprintf(info->sasl_mech, sizeof info->sasl_mech, "%s",
             vb_remote_sasl_mech(r) ? vb_remote_sasl_mech(r) : "");
    info->ssf = vb_remote_ssf(r);
    snprintf(info->server_id, sizeof info->server_id, "%s",
             vb_remote_server_id(r) ? vb_remote_server_id(r) : "");
}

const vb_driver vb_remote_driver = {
    .name = "remote",
    .open = remote_open,
    .close = remote_close,
    .get_hostname = remote_hostname,
    .list_domains = remote_list,
    .domain_start = remote_start,
    .domain_shutdown = remote_shutdown,
    .describe = remote_describe,
};
