/*
 * vb_xenapi.c — the "xenapi" driver: a XenAPI host (XenServer, XCP-ng) over
 * XML-RPC on HTTPS (default) or HTTP, with libcurl and libxml2.
 *
 *   xenapi://[user@]host[:port]/[?transport=http][&cafile=PATH][&no_verify=1]
 *                                [&timeout=SECONDS]
 *
 * Login: one credential request (AUTHNAME, defaulting to the URI's user, and
 * PASSPHRASE) for the service "xenapi://HOST:PORT/"; whoever relays it may
 * qualify the name further. Three tries, each after the first with retry
 * set; the source hears reject() for every refused answer and approve() for
 * the one that worked, so a cache keeps exactly the good secret. A pool
 * member answers HOST_IS_SLAVE [master]: the same answers go once to the
 * master, same scheme and port, and every later call goes there too. A
 * session that expires (SESSION_INVALID) is replaced by a new login through
 * the same source, at most once per call. Close logs out: a host keeps at
 * most 500 sessions per user and destroys the oldest beyond that. Unless
 * the source names its owner (keep_owner: vbhostd's client) and keeping is
 * on: then close hands the session to vb_session_keep.h, and that owner's
 * next open of the same endpoint and options that is answered the same
 * user and password takes it instead of logging in (the answers are still
 * asked for, and approved as a login's would be).
 *
 * Secrets: the password lives in the credential request and in the request
 * buffer, both wiped as soon as the login call returns; the session ref is
 * wiped on close. Neither is ever put in an error (XenAPI error parameters
 * that are refs are shown as "(ref)"). libcurl's and OpenSSL's own send
 * buffers are outside this driver's reach.
 *
 * A connection serves one call at a time (its mutex), since the curl handle
 * and the session are shared state; it may be used from any thread.
 */
#include "vb_xenapi.h"
#include "vb_cred.h"
#include "vb_session_keep.h"
#include "vb_xenapi_xml.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libxml/parser.h>

#ifndef VB_VERSION
#define VB_VERSION "0"
#endif

#define XA_HTTPS_PORT 443
#define XA_HTTP_PORT 80
#define XA_LOGIN_TRIES 3
#define XA_CONNECT_TIMEOUT_MS 10000L
#define XA_DEFAULT_TIMEOUT_S 600L   /* a whole call: a clean shutdown waits for the guest */
#define XA_MAX_TIMEOUT_S 86400L
#define XA_LOGOUT_TIMEOUT_MS 5000L  /* close must not hang on a dead host */
#define XA_PROBE_TIMEOUT_MS 15000L  /* connect (10 s) and one tiny answer */
#define XA_NULL_REF "OpaqueRef:NULL"
#define XA_API_VERSION "2.0"
#define XA_ORIGINATOR "vbroker/" VB_VERSION
#define XA_MAX_ARGS 8
#define XA_HOST_MAX 253
#define XA_URI_SHAPE "xenapi://[user@]host[:port]/[?transport=http&cafile=PATH&no_verify=1]"

typedef struct xa_conn {
    pthread_mutex_t lock; /* one call at a time: the curl handle and the session */
    CURL *curl;
    struct curl_slist *headers;
    int https;
    int port;
    long timeout_ms;
    char *host;         /* where calls go: the URI's host, or the pool master */
    char *url;
    char *service;      /* "xenapi://HOST:PORT/" of the URI: what credentials are for */
    char *default_user; /* the URI's user, or NULL */
    char *user;         /* who is logged in, for messages */
    char *session;      /* OpaqueRef:…; NULL when logged out; wiped */
    vb_cred_source creds; /* the open's fn, opaque, approve, reject; zero when kept */
    vb_xr_buf body;     /* the request being sent; wiped after each call */
    vb_xr_buf reply;    /* the response bytes; wiped after each parse */
    int reply_too_large;
    int wire;           /* a client's URI (VB_OPEN_FROM_WIRE): follow no pool redirect */
    /* keeping the session at close (vb_session_keep.h), when the source
     * names its owner: keep_key is owner, endpoint and options (no secret,
     * keep_key_for), keep_digest the keyed digest of the password that made
     * the session, keep_owner_shown the owner for the log */
    char *keep_key;
    char keep_owner_shown[160];
    uint8_t keep_digest[VB_SESSION_KEEP_DIGEST_LEN];
    int keep_digest_ok;
    char curl_err[CURL_ERROR_SIZE];
} xa_conn;

/* One XenAPI answer: Success with value, or Failure with code + errdesc. */
typedef struct xa_reply {
    vb_xr_value *doc;
    const vb_xr_value *value;
    const vb_xr_value *errdesc;
    const char *code;
} xa_reply;

/* Stands for "the current session ref" in an argument list, so a call that
 * passes the session twice (session.get_this_host) survives a re-login. */
static const char xa_session_arg[] = "(session)";

/* ---- small helpers ------------------------------------------------------- */

static void reply_clear(xa_reply *r)
{
    vb_xr_value_free(r->doc);
    memset(r, 0, sizeof *r);
}

/* Peer text for a message: control characters become '?', at most size-1 bytes. */
static void shown(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
    for (char *p = dst; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* Hostnames and IP literals only: the master address comes from the peer. */
static int host_ok(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    if (n == 0 || n > XA_HOST_MAX)
        return 0;
    for (const char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_:", *p))
            return 0;
    return 1;
}

/* "host:port", IPv6 in brackets. */
static void host_port(char *buf, size_t size, const char *host, int port)
{
    snprintf(buf, size, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static const char *param(const xa_reply *r, size_t i)
{
    if (!r->errdesc || i >= r->errdesc->n)
        return "";
    const char *s = vb_xr_str(&r->errdesc->items[i]);
    return s ? s : "";
}

/* "CODE [p1, p2]" without refs (a session ref is a secret, and no ref means
 * anything to a person) and without control characters. */
static void describe_failure(const xa_reply *r, char *buf, size_t size)
{
    char code[64], p[128];
    shown(code, sizeof code, r->code);
    size_t used = (size_t)snprintf(buf, size, "%s", code);
    for (size_t i = 1; r->errdesc && i < r->errdesc->n && used + 4 < size; i++) {
        const char *raw = param(r, i);
        shown(p, sizeof p, strncmp(raw, "OpaqueRef:", 10) == 0 ? "(ref)" : raw);
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i == 1 ? " [" : ", ", p);
        if (used < size && i + 1 == r->errdesc->n)
            used += (size_t)snprintf(buf + used, size - used, "]");
    }
}

static int failure_error(xa_conn *c, const char *what, const xa_reply *r, vb_error *err)
{
    char desc[320], hp[300];
    describe_failure(r, desc, sizeof desc);
    host_port(hp, sizeof hp, c->host, c->port);
    return vb_error_set(err, VB_ERR_REMOTE, VB_DOM_XENAPI, "%s on XenAPI host %s: %s", what, hp,
                        desc);
}

/* ---- HTTP ---------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    xa_conn *c = opaque;
    size_t n = size * nmemb;
    if (c->reply.len + n > VB_XR_MAX_RESPONSE) {
        c->reply_too_large = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    return vb_xr_buf_add(&c->reply, data, n) == 0 ? n : 0;
}

static int set_host(xa_conn *c, const char *host, vb_error *err)
{
    char hp[300], *url = NULL, *copy = strdup(host);
    host_port(hp, sizeof hp, host, c->port);
    if (!copy || asprintf(&url, "%s://%s/", c->https ? "https" : "http", hp) < 0) {
        free(copy);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    }
    free(c->host);
    free(c->url);
    c->host = copy;
    c->url = url;
    curl_easy_setopt(c->curl, CURLOPT_URL, c->url);
    return 0;
}

static int curl_failed(xa_conn *c, const char *method, CURLcode rc, vb_error *err)
{
    char hp[300], why[CURL_ERROR_SIZE];
    host_port(hp, sizeof hp, c->host, c->port);
    shown(why, sizeof why, c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc));
    switch (rc) {
    case CURLE_WRITE_ERROR:
        if (c->reply_too_large)
            return vb_error_set(err, VB_ERR_TOO_LARGE, VB_DOM_XENAPI,
                                "the answer of XenAPI host %s to %s is over %u bytes; refused",
                                hp, method, VB_XR_MAX_RESPONSE);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    case CURLE_OPERATION_TIMEDOUT:
        return vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_XENAPI,
                            "XenAPI host %s did not answer %s in time (%s)", hp, method, why);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_XENAPI,
                            "the TLS certificate of XenAPI host %s is not trusted (%s): give "
                            "its CA with cafile=PATH, or no_verify=1 for a test host",
                            hp, why);
    case CURLE_SSL_CONNECT_ERROR:
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_XENAPI,
                            "TLS with XenAPI host %s failed (%s)%s", hp, why,
                            " (does it speak HTTPS? transport=http selects plain HTTP)");
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_XENAPI,
                            "XenAPI host %s closed the connection during %s (%s)%s", hp, method,
                            why, c->https ? "" : "; if it speaks HTTPS, drop transport=http");
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    default:
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_XENAPI,
                            "cannot reach XenAPI host %s (%s)", hp, why);
    }
}

/* POST c->body, leave the answer in c->reply. */
static int post(xa_conn *c, const char *method, long timeout_ms, vb_error *err)
{
    vb_xr_buf_wipe(&c->reply);
    c->reply_too_large = 0;
    c->curl_err[0] = '\0';
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, c->body.data);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body.len);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLcode rc = curl_easy_perform(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    if (rc != CURLE_OK)
        return curl_failed(c, method, rc, err);
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        char hp[300];
        host_port(hp, sizeof hp, c->host, c->port);
        return vb_error_set(err, VB_ERR_REMOTE, VB_DOM_XENAPI,
                            "XenAPI host %s answered %s with HTTP status %ld", hp, method,
                            status);
    }
    return 0;
}

/* One XML-RPC call: 0 Success, 1 Failure (r->code), -1 err. */
static int rpc(xa_conn *c, const char *method, const vb_xr_arg *args, size_t nargs,
               long timeout_ms, xa_reply *r, vb_error *err)
{
    memset(r, 0, sizeof *r);
    int rc = vb_xr_build_call(method, args, nargs, &c->body, err);
    if (rc == 0)
        rc = post(c, method, timeout_ms, err);
    vb_xr_buf_wipe(&c->body);
    if (rc == 0 && vb_xr_parse_response(c->reply.data, c->reply.len, &r->doc, err) < 0) {
        char hp[300];
        host_port(hp, sizeof hp, c->host, c->port);
        vb_error_prefix(err, "%s on XenAPI host %s", method, hp);
        rc = -1;
    }
    vb_xr_buf_wipe(&c->reply); /* may be 16 MiB: not kept between calls */
    if (rc < 0)
        return -1;
    int st = vb_xr_status(r->doc, &r->value, &r->errdesc, err);
    if (st < 0) {
        reply_clear(r);
        return -1;
    }
    if (st == 0) {
        r->code = vb_xr_str(&r->errdesc->items[0]);
        return 1;
    }
    return 0;
}

/* ---- login --------------------------------------------------------------- */

/* Ask for user name and password in one request; fills the defaults. */
static int ask(xa_conn *c, int retry, vb_cred_request *req, vb_error *err)
{
    memset(req, 0, sizeof *req);
    req->service = strdup(c->service);
    req->retry = retry;
    if (!req->service ||
        vb_cred_request_set_target(req, VB_CRED_KIND_XENAPI, "xenapi", c->host, (unsigned)c->port,
                                   c->default_user) < 0 ||
        vb_cred_request_add(req, VB_CRED_AUTHNAME, "Username", NULL,
                                             c->default_user) < 0 ||
        vb_cred_request_add(req, VB_CRED_PASSPHRASE, "Password", NULL, NULL) < 0)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    if (vb_driver_ask(&c->creds, req, VB_DOM_XENAPI, "a XenAPI login", err) < 0)
        return -1;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        if (!it->result && it->defresult &&
            vb_cred_item_set_result(it, it->defresult, strlen(it->defresult)) < 0)
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
        if (!it->result)
            return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_XENAPI,
                                "no %s given for %s", vb_cred_type_name(it->type), c->service);
    }
    return 0;
}

/* Follow HOST_IS_SLAVE [master]: same scheme and port, new address. */
static int to_master(xa_conn *c, const xa_reply *r, vb_error *err)
{
    const char *master = param(r, 1);
    if (!host_ok(master)) {
        char m[80];
        shown(m, sizeof m, master);
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                            "%s is a pool member and names its master as '%s', which is not "
                            "a host name or address",
                            c->service, m);
    }
    /* a client's URI reaches only the host the operator allowed: the master
     * is another address, which must be allowed (and named) on its own */
    if (c->wire)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_XENAPI,
                            "%s is a pool member; its master is %s: open xenapi://%s/ instead "
                            "(if this server may reach it)",
                            c->service, master, master);
    return set_host(c, master, err);
}

/* Send the answers in req; 0 logged in, 1 refused (wrong credentials), -1 other. */
static int login_with(xa_conn *c, const vb_cred_request *req, vb_error *err)
{
    const char *user = req->items[0].result, *pass = req->items[1].result;
    vb_xr_arg args[] = { VB_XR_S(user), VB_XR_S(pass), VB_XR_S(XA_API_VERSION),
                         VB_XR_S(XA_ORIGINATOR) };
    xa_reply r;
    int redirected = 0, rc;
    while ((rc = rpc(c, "session.login_with_password", args, 4, c->timeout_ms, &r, err)) == 1 &&
           strcmp(r.code, "HOST_IS_SLAVE") == 0 && !redirected) {
        redirected = 1;
        rc = to_master(c, &r, err);
        reply_clear(&r);
        if (rc < 0)
            return -1;
    }
    if (rc == 0) {
        const char *ref = vb_xr_str(r.value);
        char *user_copy = strdup(user);
        if (!ref || !*ref || !user_copy) {
            free(user_copy);
            reply_clear(&r);
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                                "%s answered the login without a session", c->service);
        }
        vb_xr_wipe_free(c->session);
        c->session = strdup(ref);
        free(c->user);
        c->user = user_copy;
        reply_clear(&r);
        return c->session ? 0 : vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    }
    if (rc == 1 && strcmp(r.code, "SESSION_AUTHENTICATION_FAILED") == 0) {
        reply_clear(&r);
        return 1;
    }
    if (rc == 1)
        failure_error(c, "logging in", &r, err);
    reply_clear(&r);
    return -1;
}

static void xa_destroy(void *conn);

/* The answer just given may match a session kept at an earlier close of
 * this owner and endpoint (vb_session_keep.h): the same user, and a
 * password with the same keyed digest. Then that session (with its curl
 * handle and its live connection to the host) replaces the login: 1; else
 * 0, and keep_digest is the answer's, for the login that follows. Not when
 * reuse is 0 (a re-login after SESSION_INVALID: the host may have ended
 * every session, the other kept ones too). */
static int adopt_kept(xa_conn *c, const vb_cred_request *req, int reuse)
{
    const char *user = req->items[0].result, *pass = req->items[1].result;
    c->keep_digest_ok =
        vb_session_keep_digest(pass, strlen(pass), c->keep_digest) == 0;
    xa_conn *k = c->keep_digest_ok && reuse
                     ? vb_session_keep_take(c->keep_key, user, c->keep_digest)
                     : NULL;
    if (!k)
        return 0;
    CURL *curl = c->curl;
    struct curl_slist *headers = c->headers;
    char *host = c->host, *url = c->url;
    c->curl = k->curl;
    c->headers = k->headers;
    c->host = k->host;
    c->url = k->url;
    k->curl = curl;
    k->headers = headers;
    k->host = host;
    k->url = url;
    vb_xr_wipe_free(c->session);
    c->session = k->session;
    k->session = NULL;
    free(c->user);
    c->user = k->user;
    k->user = NULL;
    /* the handle's callbacks wrote into k */
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_err);
    xa_destroy(k); /* no session left to log out */
    return 1;
}

/* reuse: an open's login may take a kept session (adopt_kept) */
static int login(xa_conn *c, int reuse, vb_error *err)
{
    char user[128] = "";
    for (int attempt = 0; attempt < XA_LOGIN_TRIES; attempt++) {
        vb_cred_request req;
        int rc = ask(c, attempt > 0, &req, err);
        if (rc == 0 && !(c->keep_key && adopt_kept(c, &req, reuse)))
            rc = login_with(c, &req, err);
        if (rc == 0)
            vb_driver_verdict(&c->creds, &req, 1);
        if (rc == 1) {
            shown(user, sizeof user, req.items[0].result);
            vb_driver_verdict(&c->creds, &req, 0);
        }
        vb_cred_request_clear(&req);
        if (rc <= 0)
            return rc;
    }
    return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_XENAPI,
                        "XenAPI host %s refused the login as '%s' %d times "
                        "(SESSION_AUTHENTICATION_FAILED)",
                        c->service, user, XA_LOGIN_TRIES);
}

/* Reach the host before anyone is asked for a password: a call without a
 * session (session.get_this_host on the null ref) is answered by any XenAPI
 * host, with SESSION_INVALID. Any XenAPI answer proves the host listens,
 * speaks XenAPI and (over HTTPS) has a trusted certificate; libcurl keeps
 * the connection for the login that follows. */
static int probe(xa_conn *c, vb_error *err)
{
    vb_xr_arg args[] = { VB_XR_S(XA_NULL_REF), VB_XR_S(XA_NULL_REF) };
    xa_reply r;
    int rc = rpc(c, "session.get_this_host", args, 2, XA_PROBE_TIMEOUT_MS, &r, err);
    reply_clear(&r);
    return rc < 0 ? -1 : 0;
}

static void forget_session(xa_conn *c)
{
    vb_xr_wipe_free(c->session);
    c->session = NULL;
}

/* A call on the session: it goes first, and xa_session_arg stands for it
 * anywhere else. An expired session is replaced by a new login, once.
 * 0 Success, 1 Failure, -1 err; reply_clear(r) is right in every case. */
static int call(xa_conn *c, const char *method, const vb_xr_arg *args, size_t nargs, xa_reply *r,
                vb_error *err)
{
    vb_xr_arg all[XA_MAX_ARGS];
    memset(r, 0, sizeof *r);
    if (nargs + 1 > XA_MAX_ARGS)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_XENAPI, "%s: too many arguments",
                            method);
    if (!c->session && login(c, 0, err) < 0) /* an earlier re-login failed */
        return -1;
    for (int relogin = 0;; relogin++) {
        all[0] = VB_XR_S(c->session);
        for (size_t i = 0; i < nargs; i++)
            all[i + 1] = args[i].str == xa_session_arg ? VB_XR_S(c->session) : args[i];
        int rc = rpc(c, method, all, nargs + 1, c->timeout_ms, r, err);
        if (rc != 1 || strcmp(r->code, "SESSION_INVALID") != 0 || relogin)
            return rc;
        reply_clear(r);
        forget_session(c);
        if (login(c, 0, err) < 0) {
            vb_error_prefix(err, "the XenAPI session ended and logging in again failed");
            return -1;
        }
    }
}

/* ---- open / close -------------------------------------------------------- */

typedef struct xa_opts {
    int https, verify, port;
    const char *cafile;
    long timeout_ms;
} xa_opts;

static int bad_uri(vb_error *err, const char *what)
{
    return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_XENAPI,
                        "xenapi driver: %s (expected " XA_URI_SHAPE ")", what);
}

static int parse_opts(const vb_uri *uri, xa_opts *o, vb_error *err)
{
    memset(o, 0, sizeof *o);
    o->https = 1;
    o->verify = 1;
    o->timeout_ms = XA_DEFAULT_TIMEOUT_S * 1000;
    if (!uri)
        return bad_uri(err, "no URI");
    if (uri->transport)
        return bad_uri(err, "'+transport' is for the remote driver; the xenapi driver "
                            "talks to its host directly");
    if (!uri->host || !uri->host[0])
        return bad_uri(err, "no host");
    if (!host_ok(uri->host))
        return bad_uri(err, "the host is not a host name or address");
    if (uri->path && uri->path[0])
        return bad_uri(err, "a XenAPI URI has no path");
    const char *t = vb_uri_param_get(uri, "transport");
    if (t && strcmp(t, "http") == 0)
        o->https = 0;
    else if (t && strcmp(t, "https") != 0)
        return bad_uri(err, "transport= must be http or https");
    const char *nv = vb_uri_param_get(uri, "no_verify");
    if (nv && strcmp(nv, "1") == 0)
        o->verify = 0;
    else if (nv && strcmp(nv, "0") != 0)
        return bad_uri(err, "no_verify= must be 0 or 1");
    o->cafile = vb_uri_param_get(uri, "cafile");
    if (o->cafile && !o->cafile[0])
        return bad_uri(err, "cafile= is empty");
    const char *to = vb_uri_param_get(uri, "timeout");
    if (to) {
        char *end = NULL;
        long s = strtol(to, &end, 10);
        if (!*to || *end || s < 1 || s > XA_MAX_TIMEOUT_S)
            return bad_uri(err, "timeout= must be 1..86400 seconds");
        o->timeout_ms = s * 1000;
    }
    o->port = uri->port ? uri->port : o->https ? XA_HTTPS_PORT : XA_HTTP_PORT;
    return 0;
}

int vb_xenapi_uri_port(const vb_uri *uri)
{
    xa_opts o;
    return parse_opts(uri, &o, NULL) == 0 ? o.port : 0;
}

static int setup_curl(xa_conn *c, const xa_opts *o, vb_error *err)
{
    c->curl = curl_easy_init();
    c->headers = curl_slist_append(NULL, "Content-Type: text/xml");
    struct curl_slist *h = c->headers ? curl_slist_append(c->headers, "Expect:") : NULL;
    if (!c->curl || !h)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    c->headers = h;
    CURL *e = c->curl;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, XA_ORIGINATOR);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, XA_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
    if (o->cafile)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->cafile);
    return 0;
}

/* Log out (if logged in) and free. */
static void xa_destroy(void *conn)
{
    xa_conn *c = conn;
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    if (c->session && c->curl) {
        vb_xr_arg arg = VB_XR_S(c->session);
        xa_reply r;
        vb_error ignored;
        rpc(c, "session.logout", &arg, 1, XA_LOGOUT_TIMEOUT_MS, &r, &ignored);
        reply_clear(&r);
    }
    forget_session(c);
    pthread_mutex_unlock(&c->lock);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    vb_xr_buf_wipe(&c->body);
    vb_xr_buf_wipe(&c->reply);
    free(c->host);
    free(c->url);
    free(c->service);
    free(c->default_user);
    free(c->user);
    free(c->keep_key);
    explicit_bzero(c->keep_digest, sizeof c->keep_digest);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Keep a session for its owner's next open when allowed, else log out. */
static void xa_close(void *conn)
{
    xa_conn *c = conn;
    if (c && c->keep_key && c->session && c->keep_digest_ok && c->user) {
        /* the source (a client's relay) ends with this close */
        memset(&c->creds, 0, sizeof c->creds);
        char user[128], label[600];
        shown(user, sizeof user, c->user);
        snprintf(label, sizeof label, "XenAPI session of '%s' at %s for %s", user, c->service,
                 c->keep_owner_shown);
        if (vb_session_keep_put(c->keep_key, label, c->user, c->keep_digest, c, xa_destroy) == 0)
            return;
    }
    xa_destroy(c);
}

/* Where a kept session may be reused: its owner and every option that
 * shaped its curl handle and its host, each length-prefixed (no part can
 * pose as another). No secret is in it. */
static char *keep_key_for(const char *owner, const xa_conn *c, const xa_opts *o)
{
    char *key = NULL;
    const char *cafile = o->cafile ? o->cafile : "";
    if (asprintf(&key, "%zu:%s|%zu:%s|%d|%d|%zu:%s", strlen(owner), owner,
                 strlen(c->service), c->service, c->https * 2 + o->verify, c->wire,
                 strlen(cafile), cafile) < 0)
        return NULL;
    return key;
}

static int xa_open(const vb_uri *uri, unsigned flags, struct vb_cred_source *creds, void **conn,
                   vb_error *err)
{
    /* read-only is enforced by the daemons */
    xa_opts o;
    if (parse_opts(uri, &o, err) < 0 ||
        ((flags & VB_OPEN_FROM_WIRE) && vb_driver_check_wire_uri(uri, err) < 0))
        return -1;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_XENAPI, "libcurl: %s",
                            curl_easy_strerror(global_rc));
    xa_conn *c = calloc(1, sizeof *c);
    if (!c)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    c->https = o.https;
    c->port = o.port;
    c->timeout_ms = o.timeout_ms;
    c->wire = (flags & VB_OPEN_FROM_WIRE) != 0;
    if (creds) /* what a later login asks and tells (the rest may not outlive the open) */
        c->creds = (vb_cred_source){ .fn = creds->fn, .opaque = creds->opaque,
                                     .approve = creds->approve, .reject = creds->reject };
    char hp[300];
    host_port(hp, sizeof hp, uri->host, c->port);
    int rc = setup_curl(c, &o, err);
    if (rc == 0 && (asprintf(&c->service, "xenapi://%s/", hp) < 0 ||
                    (uri->user && !(c->default_user = strdup(uri->user)))))
        rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    if (rc == 0)
        rc = set_host(c, uri->host, err);
    if (rc == 0 && creds && creds->keep_owner && vb_session_keep_enabled() &&
        !(c->keep_key = keep_key_for(creds->keep_owner, c, &o)))
        rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    if (c->keep_key)
        shown(c->keep_owner_shown, sizeof c->keep_owner_shown, creds->keep_owner);
    if (rc == 0) {
        /* a kept session of this owner says the host was reachable; the
         * password is asked for all the same, before any reuse */
        int skip_probe = c->keep_key && vb_session_keep_has(c->keep_key);
        pthread_mutex_lock(&c->lock);
        rc = !skip_probe && probe(c, err) < 0 ? -1 : login(c, 1, err);
        pthread_mutex_unlock(&c->lock);
    }
    if (rc < 0) {
        xa_destroy(c);
        return -1;
    }
    *conn = c;
    return 0;
}

/* ---- calls --------------------------------------------------------------- */

static xa_conn *conn_of(void *conn, vb_error *err)
{
    if (!conn)
        vb_error_set(err, VB_ERR_NOT_OPEN, VB_DOM_XENAPI, "xenapi driver: connection not open");
    return conn;
}

/* hostname, or name_label when the host has none. */
static int pick_hostname(const vb_xr_value *rec, char **hostname, vb_error *err)
{
    const char *name = vb_xr_str(vb_xr_member(rec, "hostname"));
    if (!name || !*name)
        name = vb_xr_str(vb_xr_member(rec, "name_label"));
    if (!name || !*name)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                            "the host record has no hostname or name_label");
    *hostname = strdup(name);
    return *hostname ? 0 : vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
}

static int xa_get_hostname(void *conn, char **hostname, vb_error *err)
{
    xa_conn *c = conn_of(conn, err);
    if (!c)
        return -1;
    pthread_mutex_lock(&c->lock);
    xa_reply r;
    vb_xr_arg self = VB_XR_S(xa_session_arg);
    char *host_ref = NULL;
    int rc = call(c, "session.get_this_host", &self, 1, &r, err);
    if (rc == 1)
        rc = failure_error(c, "finding this host", &r, err);
    else if (rc == 0 && (!vb_xr_str(r.value) || !(host_ref = strdup(vb_xr_str(r.value)))))
        rc = vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                          "session.get_this_host did not answer a host ref");
    reply_clear(&r);
    if (rc == 0) {
        vb_xr_arg a = VB_XR_S(host_ref);
        rc = call(c, "host.get_record", &a, 1, &r, err);
        if (rc == 1)
            rc = failure_error(c, "reading the host record", &r, err);
        else if (rc == 0)
            rc = pick_hostname(r.value, hostname, err);
        reply_clear(&r);
    }
    free(host_ref);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int flag(const vb_xr_value *rec, const char *name)
{
    int b = 0;
    return vb_xr_bool(vb_xr_member(rec, name), &b) == 0 && b;
}

/* Templates, snapshots and the control domain are no domains to a user. */
static int visible(const vb_xr_value *rec)
{
    return rec->type == VB_XR_STRUCT && !flag(rec, "is_a_template") &&
           !flag(rec, "is_a_snapshot") && !flag(rec, "is_control_domain");
}

static uint32_t state_of(const char *ps)
{
    if (!ps)
        return VB_DOMAIN_NOSTATE;
    if (strcasecmp(ps, "Running") == 0)
        return VB_DOMAIN_RUNNING;
    if (strcasecmp(ps, "Halted") == 0)
        return VB_DOMAIN_SHUTOFF;
    if (strcasecmp(ps, "Paused") == 0)
        return VB_DOMAIN_PAUSED;
    if (strcasecmp(ps, "Suspended") == 0)
        return VB_DOMAIN_PMSUSPENDED;
    return VB_DOMAIN_NOSTATE;
}

static void fill_info(const vb_xr_value *rec, vb_domain_info *d)
{
    memset(d, 0, sizeof *d);
    /* a name a driver call could not take is shown, not hidden */
    shown(d->name, sizeof d->name, vb_xr_str(vb_xr_member(rec, "name_label")));
    const char *uuid = vb_xr_str(vb_xr_member(rec, "uuid"));
    if (uuid && strlen(uuid) == VB_UUID_STRING_LEN - 1)
        shown(d->uuid, sizeof d->uuid, uuid);
    d->state = state_of(vb_xr_str(vb_xr_member(rec, "power_state")));
    int64_t v;
    if (vb_xr_int(vb_xr_member(rec, "memory_static_max"), &v) == 0 && v > 0)
        d->memory_kib = (uint64_t)v / 1024;
    if (vb_xr_int(vb_xr_member(rec, "VCPUs_max"), &v) == 0 && v > 0)
        d->vcpus = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    d->id = -1;
    if ((d->state == VB_DOMAIN_RUNNING || d->state == VB_DOMAIN_PAUSED) &&
        vb_xr_int(vb_xr_member(rec, "domid"), &v) == 0 && v >= 0 && v <= INT32_MAX)
        d->id = (int32_t)v;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const vb_domain_info *)a)->name, ((const vb_domain_info *)b)->name);
}

/* VM.get_all_records: a map ref → record. */
static int all_records(xa_conn *c, xa_reply *r, vb_error *err)
{
    int rc = call(c, "VM.get_all_records", NULL, 0, r, err);
    if (rc == 1) {
        failure_error(c, "listing VMs", r, err);
        reply_clear(r);
        return -1;
    }
    if (rc == 0 && r->value->type != VB_XR_STRUCT) {
        reply_clear(r);
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                            "VM.get_all_records did not answer a map");
    }
    return rc;
}

static int xa_list_domains(void *conn, vb_domain_info **doms, size_t *n, vb_error *err)
{
    xa_conn *c = conn_of(conn, err);
    if (!c)
        return -1;
    *doms = NULL;
    *n = 0;
    pthread_mutex_lock(&c->lock);
    xa_reply r;
    int rc = all_records(c, &r, err);
    if (rc == 0) {
        const vb_xr_value *map = r.value;
        *doms = calloc(map->n ? map->n : 1, sizeof **doms);
        if (!*doms)
            rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
        for (size_t i = 0; rc == 0 && i < map->n; i++)
            if (visible(&map->items[i]))
                fill_info(&map->items[i], &(*doms)[(*n)++]);
        reply_clear(&r);
    }
    pthread_mutex_unlock(&c->lock);
    if (rc == 0)
        qsort(*doms, *n, sizeof **doms, by_name);
    return rc;
}

/* The ref of the one visible VM called name. */
static int find_vm(xa_conn *c, const char *name, char **ref, vb_error *err)
{
    xa_reply r;
    if (all_records(c, &r, err) < 0)
        return -1;
    size_t found = 0;
    const vb_xr_value *map = r.value;
    for (size_t i = 0; i < map->n; i++) {
        const char *label = vb_xr_str(vb_xr_member(&map->items[i], "name_label"));
        if (visible(&map->items[i]) && label && strcmp(label, name) == 0 && found++ == 0)
            *ref = strdup(map->names[i]);
    }
    reply_clear(&r);
    char hp[300];
    host_port(hp, sizeof hp, c->host, c->port);
    if (found == 0)
        return vb_error_set(err, VB_ERR_NO_DOMAIN, VB_DOM_XENAPI,
                            "no domain named '%s' on XenAPI host %s", name, hp);
    if (!*ref)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    if (found > 1) {
        free(*ref);
        *ref = NULL;
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_XENAPI,
                            "%zu domains are named '%s' on XenAPI host %s (XenAPI allows "
                            "that); rename one to address it",
                            found, name, hp);
    }
    return 0;
}

static int power_failure(xa_conn *c, const char *name, int start, const xa_reply *r,
                         vb_error *err)
{
    const char *verb = start ? "start" : "shut down";
    char expected[32], actual[32];
    if (strcmp(r->code, "VM_BAD_POWER_STATE") == 0) {
        shown(expected, sizeof expected, param(r, 2));
        shown(actual, sizeof actual, param(r, 3));
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_XENAPI,
                            "cannot %s domain '%s': it is %s, and XenAPI needs it %s "
                            "(VM_BAD_POWER_STATE)",
                            verb, name, actual, expected);
    }
    if (strcmp(r->code, "HANDLE_INVALID") == 0)
        return vb_error_set(err, VB_ERR_NO_DOMAIN, VB_DOM_XENAPI,
                            "domain '%s' went away before it could %s (HANDLE_INVALID)", name,
                            start ? "start" : "shut down");
    char what[320];
    snprintf(what, sizeof what, "%s domain '%s'", start ? "starting" : "shutting down", name);
    failure_error(c, what, r, err);
    if (strcmp(r->code, "VM_IS_TEMPLATE") == 0 || strcmp(r->code, "OPERATION_NOT_ALLOWED") == 0 ||
        strcmp(r->code, "OTHER_OPERATION_IN_PROGRESS") == 0)
        err->code = VB_ERR_OPERATION_INVALID;
    return -1;
}

static int power(void *conn, const char *name, int start, vb_error *err)
{
    xa_conn *c = conn_of(conn, err);
    if (!c || vb_domain_name_check(name, err) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    char *ref = NULL;
    int rc = find_vm(c, name, &ref, err);
    if (rc == 0) {
        vb_xr_arg args[] = { VB_XR_S(ref), VB_XR_B(0), VB_XR_B(0) }; /* not paused, no force */
        xa_reply r;
        rc = start ? call(c, "VM.start", args, 3, &r, err)
                   : call(c, "VM.clean_shutdown", args, 1, &r, err);
        if (rc == 1)
            rc = power_failure(c, name, start, &r, err);
        reply_clear(&r);
    }
    free(ref);
    pthread_mutex_unlock(&c->lock);
    return rc < 0 ? -1 : 0;
}

static int xa_domain_start(void *conn, const char *name, vb_error *err)
{
    return power(conn, name, 1, err);
}

static int xa_domain_shutdown(void *conn, const char *name, vb_error *err)
{
    return power(conn, name, 0, err);
}

static void xa_describe(void *conn, vb_conn_info *info)
{
    (void)conn;
    snprintf(info->auth_type, sizeof info->auth_type, "password");
}

const vb_driver vb_xenapi_driver = {
    .name = "xenapi",
    .open = xa_open,
    .close = xa_close,
    .get_hostname = xa_get_hostname,
    .list_domains = xa_list_domains,
    .domain_start = xa_domain_start,
    .domain_shutdown = xa_domain_shutdown,
    .describe = xa_describe,
};
