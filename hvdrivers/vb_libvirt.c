/*
 * vb_libvirt.c — the "libvirt" driver (vb_libvirt.h): libvirt's client
 * library behind the driver vtable, with one shared connection per libvirt
 * URI.
 *
 * Threads. Cyrus SASL's DIGEST-MD5 client keeps global state that is not
 * safe without real mutexes (sasl_set_mutex): libvirt's own client crashed
 * in 7 of 50 runs of 48 concurrent logins in one process. libvirt calls
 * sasl_client_init itself but never sasl_set_mutex, so this driver installs
 * pthread mutexes (vb_sasl_client_init) before libvirt is first touched,
 * in this process-wide once. Besides, logins to the same URI never run
 * concurrently here: the first open logs in, the others wait for it and
 * share its connection. Logins to different URIs do run concurrently (a
 * prompt for one host must not stall another), safely with the mutexes.
 *
 * libvirt's event loop (virEventRegisterDefaultImpl) runs on a thread of
 * this driver; keepalive and the close callback need it.
 *
 * Secrets: the answers live in the credential request (wiped by
 * vb_cred_request_clear after approve/reject) and in the copies libvirt
 * asked for (it frees them after the SASL step); libvirt's and Cyrus's own
 * buffers are outside this driver's reach. No answer ever goes into an
 * error message or a log.
 */
#include "vb_libvirt.h"
#include "vb_cred.h"
#include "vb_loop.h"
#include "vb_paths.h"
#include "vb_sasl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/uri.h>

#define LV_LOGIN_TRIES 3
#define LV_MAX_ANSWERED 4   /* SASL steps that ask within one open */
#define LV_HOST_MAX 256
#define LV_TCP_DEFAULT_PORT 16509 /* libvirtd's listen_tcp */

/* One libvirt connection, shared by the opens of its URI. */
typedef struct lv_entry {
    char *uri;                  /* the libvirt URI (no "libvirt:") */
    virConnectPtr conn;         /* NULL while its login runs */
    unsigned opens;             /* lv_conn using it */
    int opening;                /* the first open is logging in; others wait */
    int dead;                   /* closed by libvirt, a failed keepalive, or a logout */
    int in_pool;                /* findable by later opens */
    int close_cb;               /* a close callback is registered */
    uint64_t idle_since_ms;
    struct lv_entry *next;
} lv_entry;

/* Where a login goes, from the libvirt URI (for the question's target). */
typedef struct lv_target {
    char host[LV_HOST_MAX];
    unsigned port;
    char user[128];
} lv_target;

/* One open. */
typedef struct lv_conn {
    lv_entry *e;
    char *uri;
    char *service;              /* "libvirt:URI": what the answers are for */
    lv_target target;
    int private_scope;          /* VB_OPEN_PRIVATE: its own connection */
    int wire;                   /* VB_OPEN_FROM_WIRE: must log in with what it answers */
    vb_cred_source creds;       /* the opener's, for a login again at a call */
    int types[VB_CRED_TYPE_MAX + 1];
    int have_creds;
    pthread_mutex_t lock;       /* e may be replaced by a call */
} lv_conn;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER; /* a login ended */
static lv_entry *pool;
static uint64_t idle_ms = 300000;
static unsigned keepalive_interval_s = 5, keepalive_count = 3;
static unsigned logins_done;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;
static char global_why[VB_ERROR_MESSAGE_MAX];
static int event_loop_running;

void vb_libvirt_driver_set_idle(uint64_t ms)
{
    idle_ms = ms;
}

void vb_libvirt_driver_set_keepalive(unsigned interval_s, unsigned count)
{
    keepalive_interval_s = interval_s;
    keepalive_count = count;
}

unsigned vb_libvirt_driver_logins(void)
{
    pthread_mutex_lock(&pool_lock);
    unsigned n = logins_done;
    pthread_mutex_unlock(&pool_lock);
    return n;
}

/* ---- process-wide set-up -------------------------------------------------- */

/* libvirt prints every error to stderr unless told otherwise; errors reach
 * the caller as values instead (virGetLastError). */
static void quiet(void *data, virErrorPtr e)
{
    (void)data;
    (void)e;
}

static void *event_loop(void *arg)
{
    (void)arg;
    for (;;)
        virEventRunDefaultImpl();
    return NULL;
}

static void global_init(void)
{
    vb_error err;
    /* the mutexes first: before libvirt's own sasl_client_init */
    if (vb_sasl_client_init(&err) < 0) {
        snprintf(global_why, sizeof global_why, "%s", err.message);
        return;
    }
    virSetErrorFunc(NULL, quiet);
    if (virInitialize() < 0) {
        snprintf(global_why, sizeof global_why, "virInitialize failed");
        return;
    }
    global_rc = 0;
    pthread_t t;
    pthread_attr_t attr;
    /* without the loop there is no keepalive and no close callback, but
     * opens and calls still work: dead connections are then found by
     * virConnectIsAlive at the next open */
    if (virEventRegisterDefaultImpl() == 0 && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        event_loop_running = pthread_create(&t, &attr, event_loop, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
}

/* ---- errors ---------------------------------------------------------------- */

static int code_of(int vir_code)
{
    switch (vir_code) {
    case VIR_ERR_NO_DOMAIN:
        return VB_ERR_NO_DOMAIN;
    case VIR_ERR_OPERATION_INVALID:
        return VB_ERR_OPERATION_INVALID;
    case VIR_ERR_OPERATION_DENIED:
    case VIR_ERR_ACCESS_DENIED:
        return VB_ERR_READ_ONLY;
    case VIR_ERR_AUTH_FAILED:
        return VB_ERR_AUTH_FAILED;
    case VIR_ERR_AUTH_CANCELLED:
        return VB_ERR_AUTH_CANCELLED;
    case VIR_ERR_AUTH_UNAVAILABLE:
        return VB_ERR_AUTH_UNAVAILABLE;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_SYSTEM_ERROR:
    case VIR_ERR_RPC:
        return VB_ERR_NO_CONNECT;
    case VIR_ERR_INVALID_ARG:
        return VB_ERR_INVALID_ARG;
    case VIR_ERR_NO_SUPPORT:
        return VB_ERR_NO_SUPPORT;
    default:
        return VB_ERR_REMOTE;
    }
}

/* libvirt's last error on this thread as err, after "what: ". */
static int lv_error(vb_error *err, const char *what)
{
    virErrorPtr e = virGetLastError();
    int code = e ? code_of(e->code) : VB_ERR_REMOTE;
    vb_error_set(err, code, VB_DOM_DRIVER, "%s: %s", what,
                 e && e->message ? e->message : "libvirt gave no reason");
    virResetLastError();
    return -1;
}

/* ---- the login's question ---------------------------------------------------- */

/* Host, port and user of a libvirt URI; "localhost" when it names none
 * (qemu:///system, a unix socket). */
static void parse_target(const char *uri, lv_target *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->host, sizeof t->host, "localhost");
    xmlURIPtr u = xmlParseURI(uri);
    if (!u)
        return;
    if (u->server && u->server[0])
        snprintf(t->host, sizeof t->host, "%s", u->server);
    if (u->port > 0 && u->port < 65536)
        t->port = (unsigned)u->port;
    if (u->user)
        snprintf(t->user, sizeof t->user, "%s", u->user);
    xmlFreeURI(u);
}

/* What one virConnectOpenAuth asked and was answered. */
typedef struct lv_login {
    lv_conn *c;
    int retry;
    vb_cred_request answered[LV_MAX_ANSWERED];
    size_t nanswered;
    int fn_failed;              /* the source could not answer: err says why */
    vb_error err;
} lv_login;

static int build_request(const lv_login *l, virConnectCredentialPtr cred, unsigned ncred,
                         vb_cred_request *req)
{
    const lv_conn *c = l->c;
    memset(req, 0, sizeof *req);
    req->retry = l->retry;
    if (!(req->service = strdup(c->service)) ||
        vb_cred_request_set_target(req, VB_CRED_KIND_LIBVIRT, "libvirt", c->target.host,
                                   c->target.port,
                                   c->target.user[0] ? c->target.user : NULL) < 0)
        return -1;
    for (unsigned i = 0; i < ncred; i++) {
        const char *def = cred[i].defresult;
        if (cred[i].type == VIR_CRED_AUTHNAME && !def && c->target.user[0])
            def = c->target.user;
        if (vb_cred_request_add(req, cred[i].type, cred[i].prompt, cred[i].challenge, def) < 0)
            return -1;
    }
    return 0;
}

/* libvirt frees what it gets (with free: glib's g_free is free) */
static int hand_to_libvirt(const vb_cred_request *req, virConnectCredentialPtr cred, unsigned ncred)
{
    for (unsigned i = 0; i < ncred; i++) {
        const vb_cred_item *it = &req->items[i];
        const char *v = it->result ? it->result : it->defresult;
        size_t len = it->result ? it->resultlen : (v ? strlen(v) : 0);
        if (!v || !(cred[i].result = malloc(len + 1)))
            return -1;
        memcpy(cred[i].result, v, len);
        cred[i].result[len] = '\0';
        cred[i].resultlen = (unsigned)len;
    }
    return 0;
}

/* virConnectAuth's callback: every item of this step in one request. */
static int auth_cb(virConnectCredentialPtr cred, unsigned int ncred, void *opaque)
{
    lv_login *l = opaque;
    lv_conn *c = l->c;
    vb_cred_request req;
    if (ncred > VB_CRED_MAX_ITEMS || l->nanswered == LV_MAX_ANSWERED) {
        vb_error_set(&l->err, VB_ERR_NO_SUPPORT, VB_DOM_DRIVER,
                     "%s asked more than this driver answers in one login", c->service);
        l->fn_failed = 1;
        return -1;
    }
    if (build_request(l, cred, ncred, &req) < 0) {
        vb_cred_request_clear(&req);
        vb_error_set(&l->err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
        l->fn_failed = 1;
        return -1;
    }
    int rc = -1;
    if (vb_driver_ask(c->have_creds ? &c->creds : NULL, &req, VB_DOM_DRIVER, "a libvirt login",
                      &l->err) < 0) {
        /* l->err says why */
    } else if (hand_to_libvirt(&req, cred, ncred) < 0) {
        vb_error_set(&l->err, VB_ERR_CRED_REQUIRED, VB_DOM_DRIVER,
                     "no answer given for an item %s asked", c->service);
    } else {
        rc = 0;
    }
    if (rc == 0) {
        l->answered[l->nanswered++] = req; /* approve or reject after the open */
    } else {
        for (unsigned i = 0; i < ncred; i++)
            if (cred[i].result) {
                explicit_bzero(cred[i].result, cred[i].resultlen);
                free(cred[i].result);
                cred[i].result = NULL;
            }
        vb_cred_request_clear(&req);
        l->fn_failed = 1;
    }
    return rc;
}

enum lv_verdict { LV_WORKED, LV_REFUSED, LV_UNKNOWN };

/* Tell the source every answer of this open worked (approve) or was
 * refused (reject), or nothing when the open failed otherwise (the answers
 * were never judged: neither kept nor counted as wrong); then wipe them. */
static void settle(lv_login *l, enum lv_verdict v, char *user, size_t user_len)
{
    const lv_conn *c = l->c;
    for (size_t i = 0; i < l->nanswered; i++) {
        vb_cred_request *req = &l->answered[i];
        for (size_t k = 0; user && k < req->nitems; k++)
            if (req->items[k].type == VB_CRED_AUTHNAME && req->items[k].result)
                snprintf(user, user_len, "%s", req->items[k].result);
        if (v != LV_UNKNOWN && c->have_creds)
            vb_driver_verdict(&c->creds, req, v == LV_WORKED);
        vb_cred_request_clear(req);
    }
    l->nanswered = 0;
}

/* Peer or person text for a message: control characters become '?'. */
static void shown(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
    for (char *p = dst; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* The cred types offered to libvirt: what the source answers, without
 * EXTERNAL (this process's own identity). */
static size_t offered_types(const lv_conn *c, int *types, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; c->have_creds && i < c->creds.ntypes && n < max; i++)
        if (c->creds.types[i] >= VB_CRED_USERNAME && c->creds.types[i] < VB_CRED_EXTERNAL)
            types[n++] = c->creds.types[i];
    if (n == 0) { /* nothing can answer: libvirt still says what it needed */
        types[n++] = VIR_CRED_AUTHNAME;
        types[n++] = VIR_CRED_PASSPHRASE;
    }
    return n;
}

/* virConnectOpenAuth with up to LV_LOGIN_TRIES answers. */
static int login(lv_conn *c, virConnectPtr *out, vb_error *err)
{
    int types[VB_CRED_TYPE_MAX + 1];
    virConnectAuth auth = { types, (unsigned)offered_types(c, types, VB_CRED_TYPE_MAX + 1), auth_cb,
                            NULL };
    char user[128] = "";
    for (int attempt = 0; attempt < LV_LOGIN_TRIES; attempt++) {
        lv_login l;
        memset(&l, 0, sizeof l);
        l.c = c;
        l.retry = attempt > 0;
        auth.cbdata = &l;
        virConnectPtr conn = virConnectOpenAuth(c->uri, &auth, 0);
        if (conn && c->wire && l.nanswered == 0) {
            virConnectClose(conn);
            return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DRIVER,
                                "%s let this server in without asking for credentials (no "
                                "authentication, or a login with this server's own identity): "
                                "refused for a URI sent to this server",
                                c->service);
        }
        if (conn) {
            settle(&l, LV_WORKED, NULL, 0);
            *out = conn;
            return 0;
        }
        virErrorPtr e = virGetLastError();
        int refused = e && e->code == VIR_ERR_AUTH_FAILED && !l.fn_failed && l.nanswered > 0;
        if (!refused) {
            settle(&l, LV_UNKNOWN, NULL, 0);
            if (l.fn_failed) {
                vb_error_copy(err, &l.err);
                virResetLastError();
                return -1;
            }
            return lv_error(err, "libvirt"); /* the caller names the URI */
        }
        settle(&l, LV_REFUSED, user, sizeof user);
        virResetLastError();
    }
    char u[128];
    shown(u, sizeof u, user);
    return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_DRIVER,
                        "libvirt host %s refused the login as '%s' %d times (wrong user name "
                        "or password)",
                        c->service, u, LV_LOGIN_TRIES);
}

/* ---- the pool ------------------------------------------------------------------ */

/* libvirt's event thread: the connection closed (EOF, keepalive, error). */
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
    (void)conn;
    (void)reason;
    lv_entry *e = opaque;
    pthread_mutex_lock(&pool_lock);
    e->dead = 1;
    pthread_mutex_unlock(&pool_lock);
}

static void entry_destroy(lv_entry *e)
{
    if (!e)
        return;
    if (e->conn) {
        if (e->close_cb) /* waits for a callback in progress: none runs after it */
            virConnectUnregisterCloseCallback(e->conn, on_close);
        virConnectClose(e->conn);
    }
    free(e->uri);
    free(e);
}

/* pool_lock held */
static void unlink_entry(lv_entry *e)
{
    for (lv_entry **p = &pool; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    e->in_pool = 0;
    e->next = NULL;
}

/* pool_lock held: a usable shared connection of uri, or one being opened */
static lv_entry *find_entry(const char *uri)
{
    for (lv_entry *e = pool; e; e = e->next)
        if (!e->dead && strcmp(e->uri, uri) == 0)
            return e;
    return NULL;
}

static void after_login(lv_entry *e)
{
    virConnectPtr conn = e->conn;
    if (event_loop_running && keepalive_interval_s)
        virConnectSetKeepAlive(conn, (int)keepalive_interval_s, keepalive_count);
    if (event_loop_running)
        e->close_cb = virConnectRegisterCloseCallback(conn, on_close, e, NULL) == 0;
    virResetLastError();
}

/* Log in for a new entry (its login is in progress: e->opening). */
static int open_entry(lv_conn *c, lv_entry *e, vb_error *err)
{
    virConnectPtr conn = NULL;
    int rc = login(c, &conn, err);
    pthread_mutex_lock(&pool_lock);
    e->opening = 0;
    if (rc == 0) {
        e->conn = conn;
        logins_done++;
    } else if (e->in_pool) {
        unlink_entry(e);
    }
    pthread_cond_broadcast(&pool_cond);
    pthread_mutex_unlock(&pool_lock);
    if (rc == 0)
        after_login(e);
    return rc;
}

static lv_entry *new_entry(const char *uri)
{
    lv_entry *e = calloc(1, sizeof *e);
    if (e && !(e->uri = strdup(uri))) {
        free(e);
        return NULL;
    }
    if (e) {
        e->opens = 1;
        e->opening = 1;
    }
    return e;
}

/* Drop one open of e; destroys it when nobody can reach it any more. */
static void release(lv_entry *e)
{
    int destroy = 0;
    pthread_mutex_lock(&pool_lock);
    if (--e->opens == 0) {
        e->idle_since_ms = vb_now_ms();
        if (e->in_pool && (idle_ms == 0 || e->dead))
            unlink_entry(e);
        destroy = !e->in_pool;
    }
    pthread_mutex_unlock(&pool_lock);
    if (destroy)
        entry_destroy(e);
}

/* A live connection for c: a shared one, or a new login. */
static int acquire(lv_conn *c, lv_entry **out, vb_error *err)
{
    if (c->private_scope) {
        lv_entry *e = new_entry(c->uri);
        if (!e)
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
        if (open_entry(c, e, err) < 0) {
            free(e->uri);
            free(e);
            return -1;
        }
        *out = e;
        return 0;
    }
    for (;;) {
        pthread_mutex_lock(&pool_lock);
        lv_entry *e;
        while ((e = find_entry(c->uri)) && e->opening)
            pthread_cond_wait(&pool_cond, &pool_lock);
        if (e) {
            e->opens++;
            pthread_mutex_unlock(&pool_lock);
            if (virConnectIsAlive(e->conn) == 1) {
                *out = e;
                return 0;
            }
            virResetLastError();
            pthread_mutex_lock(&pool_lock); /* found dead before the close callback */
            e->dead = 1;
            pthread_mutex_unlock(&pool_lock);
            release(e);
            continue;
        }
        if (!(e = new_entry(c->uri))) {
            pthread_mutex_unlock(&pool_lock);
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
        }
        e->in_pool = 1;
        e->next = pool;
        pool = e;
        pthread_mutex_unlock(&pool_lock);
        if (open_entry(c, e, err) < 0) {
            free(e->uri);
            free(e);
            return -1;
        }
        *out = e;
        return 0;
    }
}

/* entries unlinked under pool_lock, closed outside it (a close may wait
 * for the host) */
static void destroy_all(lv_entry *gone)
{
    while (gone) {
        lv_entry *next = gone->next;
        entry_destroy(gone);
        gone = next;
    }
}

void vb_libvirt_driver_reap(void)
{
    lv_entry *gone = NULL;
    uint64_t now = vb_now_ms();
    pthread_mutex_lock(&pool_lock);
    for (lv_entry *e = pool, *next; e; e = next) {
        next = e->next;
        if (e->opens == 0 && !e->opening && (e->dead || now - e->idle_since_ms >= idle_ms)) {
            unlink_entry(e);
            e->next = gone;
            gone = e;
        }
    }
    pthread_mutex_unlock(&pool_lock);
    destroy_all(gone);
}

unsigned vb_libvirt_driver_close_uri(const char *uri_text)
{
    const char *uri = NULL;
    size_t plen = strlen(VB_URI_LIBVIRT_PREFIX);
    if (uri_text)
        uri = strncmp(uri_text, VB_URI_LIBVIRT_PREFIX, plen) == 0 ? uri_text + plen : uri_text;
    lv_entry *gone = NULL;
    unsigned n = 0;
    pthread_mutex_lock(&pool_lock);
    for (lv_entry *e = pool, *next; e; e = next) {
        next = e->next;
        if (e->opening || (uri && strcmp(e->uri, uri) != 0))
            continue;
        unlink_entry(e);
        e->dead = 1;
        n++;
        if (e->opens == 0) { /* else the last open's release destroys it */
            e->next = gone;
            gone = e;
        }
    }
    pthread_mutex_unlock(&pool_lock);
    destroy_all(gone);
    return n;
}

size_t vb_libvirt_driver_list(vb_transport_info *out, size_t max)
{
    size_t n = 0;
    uint64_t now = vb_now_ms();
    pthread_mutex_lock(&pool_lock);
    for (lv_entry *e = pool; e && n < max; e = e->next) {
        if (e->opening || e->dead)
            continue;
        vb_transport_info *t = &out[n++];
        memset(t, 0, sizeof *t);
        snprintf(t->endpoint, sizeof t->endpoint, "%s%s", VB_URI_LIBVIRT_PREFIX, e->uri);
        snprintf(t->auth_type, sizeof t->auth_type, "libvirt");
        t->opens = e->opens;
        t->idle_ms = e->opens ? 0 : now - e->idle_since_ms;
    }
    pthread_mutex_unlock(&pool_lock);
    return n;
}

/* ---- a client's URI (vbhostd) ------------------------------------------------------ */

int vb_libvirt_wire_endpoint(const char *libvirt_uri, char *host, size_t host_len, int *port,
                             vb_error *err)
{
    xmlURIPtr u = xmlParseURI(libvirt_uri);
    size_t slen = u && u->scheme ? strlen(u->scheme) : 0;
    int rc = 0;
    if (!u || slen < 5 || strcmp(u->scheme + slen - 4, "+tcp") != 0 || !u->server ||
        !u->server[0])
        rc = vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DRIVER,
                          "a libvirt URI sent to this server must be DRIVER+tcp://HOST[:PORT]/PATH "
                          "(tls would use this server's certificate, ssh its keys, a unix "
                          "socket its uid)");
    else if (strchr(libvirt_uri, '?') || strchr(libvirt_uri, '#'))
        rc = vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DRIVER,
                          "a libvirt URI sent to this server may carry no parameters (authfile=, "
                          "socket=, command= ... would act as this server)");
    else if (strlen(u->server) >= host_len)
        rc = vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER, "host name too long");
    if (rc == 0) {
        snprintf(host, host_len, "%s", u->server);
        *port = u->port > 0 && u->port < 65536 ? u->port : LV_TCP_DEFAULT_PORT;
    }
    xmlFreeURI(u);
    return rc;
}

/* libvirt's client answers from an auth.conf of this process before it
 * asks (LIBVIRT_AUTH_FILE, $XDG_CONFIG_HOME/libvirt/auth.conf or
 * ~/.config/libvirt/auth.conf, /etc/libvirt/auth.conf): 1 with its path when
 * one exists. */
static int own_libvirt_authfile(char *path, size_t len)
{
    const char *env = getenv("LIBVIRT_AUTH_FILE");
    char *config_home = vb_path_config_home();
    char candidates[3][512] = { "", "", "/etc/libvirt/auth.conf" };
    if (env && *env)
        snprintf(candidates[0], sizeof candidates[0], "%s", env);
    if (config_home)
        snprintf(candidates[1], sizeof candidates[1], "%s/libvirt/auth.conf", config_home);
    free(config_home);
    for (size_t i = 0; i < 3; i++)
        if (candidates[i][0] && access(candidates[i], F_OK) == 0) {
            snprintf(path, len, "%s", candidates[i]);
            return 1;
        }
    return 0;
}

/* A client's URI (in vbhostd): TCP to a host and port (the daemon checks
 * them against its allow-list), no parameters, no auth.conf of this process
 * that libvirt would read; and after the login, the login must have asked
 * (login()). */
static int check_wire(const vb_uri *uri, vb_error *err)
{
    char host[LV_HOST_MAX], conf[1600];
    int port;
    if (vb_libvirt_wire_endpoint(uri->path, host, sizeof host, &port, err) < 0)
        return -1;
    if (own_libvirt_authfile(conf, sizeof conf))
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DRIVER,
                            "this server has a libvirt auth.conf (%.400s), whose answers libvirt "
                            "would give before asking: no libvirt URI sent to this server is "
                            "opened while it exists",
                            conf);
    return 0;
}

/* ---- the vtable ------------------------------------------------------------------ */

static void lv_close(void *conn)
{
    lv_conn *c = conn;
    if (!c)
        return;
    if (c->e)
        release(c->e);
    pthread_mutex_destroy(&c->lock);
    free(c->uri);
    free(c->service);
    free(c);
}

static void keep_creds(lv_conn *c, const vb_cred_source *creds)
{
    if (!creds)
        return;
    c->creds = *creds;
    size_t n = creds->ntypes < VB_CRED_TYPE_MAX + 1 ? creds->ntypes : VB_CRED_TYPE_MAX + 1;
    for (size_t i = 0; i < n; i++)
        c->types[i] = creds->types[i];
    c->creds.types = c->types; /* the caller's array may not outlive the open */
    c->creds.ntypes = n;
    c->creds.auth_priority = NULL; /* libvirt picks its own auth; not kept past the open */
    c->creds.nauth_priority = 0;
    c->have_creds = 1;
}

static int lv_open(const vb_uri *uri, unsigned flags, struct vb_cred_source *creds, void **conn,
                   vb_error *err)
{
    if (!vb_uri_is_libvirt(uri))
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                            "the libvirt driver opens libvirt:LIBVIRT-URI");
    /* libvirt must not reach the host as this process (its uid, its ssh
     * keys, its certificate, its Kerberos ticket, its auth.conf) for a
     * client's URI; every client's open is its own (VB_OPEN_PRIVATE) */
    if ((flags & VB_OPEN_FROM_WIRE) && check_wire(uri, err) < 0)
        return -1;
    pthread_once(&global_once, global_init);
    if (global_rc < 0)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_DRIVER, "libvirt: %s", global_why);
    lv_conn *c = calloc(1, sizeof *c);
    if (!c)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    c->private_scope = (flags & (VB_OPEN_PRIVATE | VB_OPEN_FROM_WIRE)) != 0;
    c->wire = (flags & VB_OPEN_FROM_WIRE) != 0;
    keep_creds(c, creds);
    parse_target(uri->path, &c->target);
    if (!(c->uri = strdup(uri->path)) ||
        asprintf(&c->service, "%s%s", VB_URI_LIBVIRT_PREFIX, uri->path) < 0) {
        c->service = NULL;
        lv_close(c);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
    }
    if (acquire(c, &c->e, err) < 0) {
        lv_close(c);
        return -1;
    }
    *conn = c;
    return 0;
}

/* The live connection for a call (c->lock held): a connection found dead
 * before the call (libvirtd restarted, keepalive, logout) is replaced by a
 * new login through the opener's source first, so nothing was sent on it. */
static virConnectPtr live(lv_conn *c, vb_error *err)
{
    pthread_mutex_lock(&pool_lock);
    int dead = c->e->dead;
    pthread_mutex_unlock(&pool_lock);
    if (!dead && virConnectIsAlive(c->e->conn) == 1)
        return c->e->conn;
    virResetLastError();
    pthread_mutex_lock(&pool_lock);
    c->e->dead = 1;
    if (c->e->in_pool)
        unlink_entry(c->e);
    pthread_mutex_unlock(&pool_lock);
    lv_entry *fresh = NULL;
    if (acquire(c, &fresh, err) < 0) {
        vb_error_prefix(err, "the libvirt connection to %s ended and logging in again failed",
                        c->service);
        return NULL;
    }
    release(c->e);
    c->e = fresh;
    return fresh->conn;
}

static lv_conn *begin(void *conn, virConnectPtr *vc, vb_error *err)
{
    lv_conn *c = conn;
    if (!c)
        vb_error_set(err, VB_ERR_NOT_OPEN, VB_DOM_DRIVER, "libvirt driver: connection not open");
    if (!c)
        return NULL;
    pthread_mutex_lock(&c->lock);
    if (!(*vc = live(c, err))) {
        pthread_mutex_unlock(&c->lock);
        return NULL;
    }
    return c;
}

/* A call that changes nothing. When the connection turns out dead under
 * it (libvirtd restarted, and the close callback has not said so yet), log
 * in again and ask once more; a call that changes something is never sent
 * twice. */
typedef int (*lv_read_fn)(virConnectPtr vc, void *arg, vb_error *err);

static int read_call(void *conn, lv_read_fn fn, void *arg, vb_error *err)
{
    virConnectPtr vc;
    lv_conn *c = begin(conn, &vc, err);
    if (!c)
        return -1;
    int rc = fn(vc, arg, err);
    if (rc < 0 && virConnectIsAlive(vc) != 1 && (vc = live(c, err)))
        rc = fn(vc, arg, err);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int get_hostname(virConnectPtr vc, void *arg, vb_error *err)
{
    char **hostname = arg;
    char *h = virConnectGetHostname(vc);
    if (!h)
        return lv_error(err, "virConnectGetHostname");
    *hostname = strdup(h);
    free(h);
    return *hostname ? 0 : vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
}

static int lv_get_hostname(void *conn, char **hostname, vb_error *err)
{
    return read_call(conn, get_hostname, hostname, err);
}

static int fill_domain(virDomainPtr d, vb_domain_info *out, vb_error *err)
{
    virDomainInfo info;
    const char *name = virDomainGetName(d);
    memset(out, 0, sizeof *out);
    if (!name || virDomainGetUUIDString(d, out->uuid) < 0 || virDomainGetInfo(d, &info) < 0)
        return lv_error(err, "reading a domain");
    snprintf(out->name, sizeof out->name, "%s", name);
    unsigned id = virDomainGetID(d);
    out->id = id == (unsigned)-1 ? -1 : (int32_t)id;
    out->state = info.state;
    out->memory_kib = info.maxMem;
    out->vcpus = info.nrVirtCpu;
    return 0;
}

typedef struct lv_domains {
    vb_domain_info *doms;
    size_t n;
} lv_domains;

static int list_domains(virConnectPtr vc, void *arg, vb_error *err)
{
    lv_domains *out = arg;
    virDomainPtr *list = NULL;
    int count = virConnectListAllDomains(vc, &list, 0);
    if (count < 0)
        return lv_error(err, "virConnectListAllDomains");
    int rc = 0;
    if (!(out->doms = calloc(count ? (size_t)count : 1, sizeof *out->doms)))
        rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
    for (int i = 0; rc == 0 && i < count; i++)
        rc = fill_domain(list[i], &out->doms[i], err);
    out->n = rc == 0 ? (size_t)count : 0;
    for (int i = 0; i < count; i++)
        virDomainFree(list[i]);
    free(list);
    if (rc < 0) {
        free(out->doms);
        out->doms = NULL;
    }
    return rc;
}

static int lv_list_domains(void *conn, vb_domain_info **doms, size_t *n, vb_error *err)
{
    lv_domains out = { NULL, 0 };
    int rc = read_call(conn, list_domains, &out, err);
    *doms = out.doms;
    *n = out.n;
    return rc;
}

static int domain_do(void *conn, const char *name, int start, vb_error *err)
{
    if (vb_domain_name_check(name, err) < 0)
        return -1;
    virConnectPtr vc;
    lv_conn *c = begin(conn, &vc, err);
    if (!c)
        return -1;
    virDomainPtr d = virDomainLookupByName(vc, name);
    int rc = d ? 0 : lv_error(err, "virDomainLookupByName");
    if (rc == 0 && (start ? virDomainCreate(d) : virDomainShutdown(d)) < 0)
        rc = lv_error(err, start ? "virDomainCreate" : "virDomainShutdown");
    if (d)
        virDomainFree(d);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int lv_domain_start(void *conn, const char *name, vb_error *err)
{
    return domain_do(conn, name, 1, err);
}

static int lv_domain_shutdown(void *conn, const char *name, vb_error *err)
{
    return domain_do(conn, name, 0, err);
}

static void lv_describe(void *conn, vb_conn_info *info)
{
    (void)conn; /* libvirt does not say which auth it used */
    snprintf(info->auth_type, sizeof info->auth_type, "libvirt");
}

const vb_driver vb_libvirt_driver = {
    .name = "libvirt",
    .open = lv_open,
    .close = lv_close,
    .get_hostname = lv_get_hostname,
    .list_domains = lv_list_domains,
    .domain_start = lv_domain_start,
    .domain_shutdown = lv_domain_shutdown,
    .describe = lv_describe,
};
