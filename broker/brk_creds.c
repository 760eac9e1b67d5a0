/* The broker's credential source, and the login cache behind `vbctl login`
 * and `vbctl logout`.
 *
 * fill:    the in-memory secret cache → auth.conf → the app's callback
 *          (through the thin client) → "credentials required".
 * approve: keep the answers in memory (sliding TTL, absolute maximum).
 * reject:  forget exactly those answers.
 * tokens:  cached logins in sqlite, keyed by the server's persistent id and
 *          offered only at the endpoint they were obtained at, so a token is
 *          only ever shown to the server that issued it, where it issued it;
 *          a token a server refuses is erased (exactly that one) once that
 *          server has proven who it is (vb_remote decides: docs/security.md
 *          "erase only on proof"), and the login falls through to the next
 *          auth type. */
#include "brk.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vb_authconf.h"
#include "vb_libvirt.h"
#include "vb_log.h"
#include "vb_remote.h"
#include "vb_textesc.h"
#include "vb_token.h"

/* auth.conf's SERVICE for a question, by its own kind (libvirt's names):
 * "vbhostd" for a login to vbhostd, "xenapi" for a XenAPI login, "ssh" for
 * an SSH password; NULL (never from a file) for a host key, a key
 * passphrase, or a question that does not say what it is for. */
static const char *authconf_service(const vb_cred_request *req)
{
    if (!req->kind)
        return NULL;
    if (strcmp(req->kind, VB_CRED_KIND_VBHOSTD) == 0)
        return "vbhostd";
    if (strcmp(req->kind, VB_CRED_KIND_XENAPI) == 0)
        return "xenapi";
    if (strcmp(req->kind, VB_CRED_KIND_SSH_PASSWORD) == 0)
        return "ssh";
    if (strcmp(req->kind, VB_CRED_KIND_LIBVIRT) == 0) /* libvirt's own [auth-libvirt-HOST] */
        return "libvirt";
    return NULL;
}

/* A relayed question the broker did not verify the first hop of (it never
 * is, through vb_remote; this is the broker's own guard): nothing of the
 * broker's answers it. */
static int unverified_relay(const vb_cred_request *req)
{
    return req->nhops > 0 && req->nverified == 0;
}

/* ---- failures, counted here ------------------------------------------------
 * A question is "the same" when its key is: the chain and what it asks. The
 * retry flag a hop sends is only shown to the person; whether the cache and
 * auth.conf are skipped is decided by the rejects the broker saw itself. */

/* The chain (whose first hop the broker verified), the kind and the target:
 * the key of failures and of the secret cache. */
static void question_key(const vb_cred_request *req, char *key, size_t len)
{
    const vb_cred_target *t = &req->target;
    snprintf(key, len, "%s|%s|%s://%s%s%s:%u", req->service ? req->service : "",
             req->kind ? req->kind : "", t->scheme ? t->scheme : "", t->user ? t->user : "",
             t->user ? "@" : "", t->host ? t->host : "", t->port);
}

static long find_failure(const brk_session *s, const char *key)
{
    for (size_t i = 0; i < s->nfailed_questions; i++)
        if (strcmp(s->failed_questions[i], key) == 0)
            return (long)i;
    return -1;
}

static void note_failure(brk_session *s, const vb_cred_request *req)
{
    char key[VB_SECRETCACHE_MAX_KEY];
    question_key(req, key, sizeof key);
    if (find_failure(s, key) >= 0)
        return;
    if (s->nfailed_questions == BRK_MAX_FAILED_QUESTIONS) { /* the oldest goes */
        free(s->failed_questions[0]);
        memmove(s->failed_questions, s->failed_questions + 1,
                (BRK_MAX_FAILED_QUESTIONS - 1) * sizeof s->failed_questions[0]);
        s->nfailed_questions--;
    }
    char *copy = strdup(key);
    if (copy)
        s->failed_questions[s->nfailed_questions++] = copy;
}

/* 1 when the last answer to this question failed (and forget that: the
 * answer given now gets its own verdict). */
static int take_failure(brk_session *s, const vb_cred_request *req)
{
    char key[VB_SECRETCACHE_MAX_KEY];
    question_key(req, key, sizeof key);
    long i = find_failure(s, key);
    if (i < 0)
        return 0;
    free(s->failed_questions[i]);
    s->failed_questions[i] = s->failed_questions[--s->nfailed_questions];
    return 1;
}

void brk_creds_forget_failures(brk_session *s)
{
    for (size_t i = 0; i < s->nfailed_questions; i++)
        free(s->failed_questions[i]);
    s->nfailed_questions = 0;
}

/* Why auth.conf did not answer, when the person can do something about it:
 * the file was refused (its mode, a typo: the loader's message names the
 * file and the fix, never a value), or the client's VBROKER_AUTH_FILE names
 * another file than the one this broker reads. */
typedef struct authconf_note {
    char text[400];
} authconf_note;

static void note_add(authconf_note *note, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_add(authconf_note *note, const char *fmt, ...)
{
    size_t used = strlen(note->text);
    if (used && used + 2 < sizeof note->text)
        used += (size_t)snprintf(note->text + used, sizeof note->text - used, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(note->text + used, sizeof note->text - used, fmt, ap);
    va_end(ap);
}

/* The broker reads the auth.conf of its own environment, from when it
 * started (or the URI's authfile=); a client's VBROKER_AUTH_FILE is only
 * compared, never read: which file's passwords go out stays the broker's
 * (or the URI's) choice. */
static void note_other_auth_file(const brk_session *s, const vb_uri *uri, authconf_note *note)
{
    const char *theirs = s->client_auth_file;
    const char *in_uri = vb_uri_param_get(uri, "authfile");
    if (!theirs || !*theirs || (in_uri && *in_uri))
        return;
    char *mine = vb_authconf_path(NULL);
    if (mine && strcmp(mine, theirs) != 0)
        note_add(note, "VBROKER_AUTH_FILE=%s is not read: the running broker reads %s (its "
                 "environment at start); restart vbrokerd with it, or add ?authfile=%s to the URI",
                 theirs, mine, theirs);
    free(mine);
}

/* auth.conf by the question's own kind and target host, never the outer
 * URI's; a relayed question takes only a group named for its host. */
static int from_auth_conf(brk_session *s, vb_cred_request *req, authconf_note *note)
{
    const char *service = authconf_service(req);
    vb_uri uri;
    vb_error err;
    memset(&uri, 0, sizeof uri);
    if (!service || !s->cred_uri || vb_uri_parse(s->cred_uri, &uri, &err) < 0)
        return 0;
    char *path = vb_authconf_path(vb_uri_param_get(&uri, "authfile"));
    vb_authconf *conf = NULL;
    int filled = 0;
    if (path && vb_authconf_load(path, &conf, &err) < 0) {
        vb_log(VB_LOG_WARN, "ignoring %s: %s", path, err.message);
        note_add(note, "auth.conf ignored: %s", err.message);
    } else if (conf && req->nhops > 0)
        filled = vb_authconf_fill_exact(conf, service, req->target.host, req, &err) == 1;
    else if (conf)
        filled = vb_authconf_fill(conf, service, req->target.host, req, &err) == 1;
    if (!filled)
        note_other_auth_file(s, &uri, note);
    vb_authconf_free(conf);
    free(path);
    vb_uri_clear(&uri);
    return filled;
}

static int creds_fill(vb_cred_request *req, void *opaque, vb_error *err)
{
    brk_session *s = opaque;
    /* what the cache or the file holds just failed: ask the person. Only the
     * broker's own count decides; a hop's retry flag is shown, not obeyed */
    if (unverified_relay(req))
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_BROKER,
                            "a relayed question whose first hop the broker did not verify is "
                            "not answered");
    char key[VB_SECRETCACHE_MAX_KEY];
    question_key(req, key, sizeof key);
    int failed = take_failure(s, req);
    int shown_retry = req->retry || failed;
    req->retry = 0;
    if (!failed && s->srv->cfg->secret_ttl_ms &&
        vb_secretcache_fill(s->srv->secrets, key, req, vb_now_ms()) == 1) {
        vb_log(VB_LOG_DEBUG, "answered %s from the secret cache", req->service);
        return 0;
    }
    authconf_note note = { "" };
    if (!failed && from_auth_conf(s, req, &note))
        return 0;
    req->retry = shown_retry;
    if (!s->can_prompt || s->non_interactive) {
        if (brk_pinentry_can_ask(s)) /* the broker asks by itself (brk_pinentry.c) */
            return brk_pinentry_ask(s, req, err);
        char shown[1024]; /* a hop's text reaches the app only escaped */
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_BROKER,
                            "credentials required for %s, and this client cannot be asked (no "
                            "callback or --non-interactive); %s",
                            vb_text_escape_into(req->service ? req->service : "this login", shown,
                                                sizeof shown),
                            note.text[0] ? note.text
                                         : "run `vbctl login`, add them to auth.conf, or run "
                                           "interactively");
    }
    return brk_ask_client(s, req, err);
}

static void creds_approve(void *opaque, const vb_cred_request *req)
{
    brk_session *s = opaque;
    char key[VB_SECRETCACHE_MAX_KEY];
    question_key(req, key, sizeof key);
    if (s->srv->cfg->secret_ttl_ms && !unverified_relay(req)) /* --secret-ttl 0: never keep */
        vb_secretcache_approve(s->srv->secrets, key, req, vb_now_ms());
}

int brk_creds_kept(brk_session *s, const vb_cred_request *req)
{
    char key[VB_SECRETCACHE_MAX_KEY];
    vb_cred_request probe;
    question_key(req, key, sizeof key);
    if (vb_cred_request_copy(&probe, req) < 0)
        return 0;
    for (size_t i = 0; i < probe.nitems; i++) { /* the probe's own answers must come from the cache */
        vb_cred_item *it = &probe.items[i];
        if (it->result)
            explicit_bzero(it->result, it->resultlen);
        free(it->result);
        it->result = NULL;
        it->resultlen = 0;
    }
    probe.retry = 0;
    int kept = vb_secretcache_fill(s->srv->secrets, key, &probe, vb_now_ms()) == 1;
    vb_cred_request_clear(&probe);
    return kept;
}

static void creds_reject(void *opaque, const vb_cred_request *req)
{
    brk_session *s = opaque;
    char key[VB_SECRETCACHE_MAX_KEY];
    question_key(req, key, sizeof key);
    note_failure(s, req);
    vb_secretcache_reject(s->srv->secrets, key, req);
}

static int token_lookup(void *opaque, const char *server_id, const char *endpoint,
                        const char *user, char *id, size_t id_len, uint8_t *secret,
                        size_t secret_len)
{
    brk_session *s = opaque;
    vb_cached_login rec;
    uint8_t buf[64];
    size_t got = 0;
    vb_error err;
    pthread_mutex_lock(&s->srv->cache_lock);
    int found = vb_store_login_get(s->srv->cache, server_id, endpoint, user, (int64_t)time(NULL),
                                   &rec, buf, sizeof buf, &got, &err);
    pthread_mutex_unlock(&s->srv->cache_lock);
    if (found < 0)
        vb_log(VB_LOG_WARN, "login cache: %s", err.message);
    if (found != 1 || got != secret_len || strlen(rec.token_id) >= id_len) {
        explicit_bzero(buf, sizeof buf);
        return 0;
    }
    memcpy(secret, buf, secret_len);
    explicit_bzero(buf, sizeof buf);
    snprintf(id, id_len, "%s", rec.token_id);
    return 1;
}

static void token_rejected(void *opaque, const char *server_id, const char *endpoint,
                           const char *id)
{
    (void)endpoint; /* the token id names the row */
    brk_session *s = opaque;
    vb_error err;
    pthread_mutex_lock(&s->srv->cache_lock);
    if (vb_store_login_erase(s->srv->cache, server_id, id, &err) < 0)
        vb_log(VB_LOG_WARN, "login cache: %s", err.message);
    pthread_mutex_unlock(&s->srv->cache_lock);
    vb_log(VB_LOG_INFO, "server %.8s…, which proved who it is, refused cached token %.8s…; "
           "erased it", server_id, id);
}

/* The item types a login may ask for: what the app can answer, plus what
 * the broker's own sources can answer. USERNAME (the SASL authorization id)
 * only when the app offers it, as libvirt does, so a password login asks
 * exactly for the auth name and the password. */
static size_t login_cred_types(const brk_session *s, int *types, size_t max)
{
    static const int broker_answers[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE, VB_CRED_REALM };
    size_t n = 0;
    for (size_t i = 0; i < s->ncred_types && n < max; i++)
        types[n++] = s->cred_types[i];
    for (size_t k = 0; k < sizeof broker_answers / sizeof broker_answers[0]; k++) {
        int have = 0;
        for (size_t i = 0; i < n; i++)
            have |= types[i] == broker_answers[k];
        if (!have && n < max)
            types[n++] = broker_answers[k];
    }
    return n;
}

void brk_creds_source(brk_session *s, vb_cred_source *src, int *types, size_t ntypes_max,
                      int allow_token)
{
    memset(src, 0, sizeof *src);
    src->fn = creds_fill;
    src->opaque = s;
    src->types = types;
    src->ntypes = login_cred_types(s, types, ntypes_max);
    src->auth_priority = (const char *const *)s->priority;
    src->nauth_priority = s->npriority;
    src->approve = creds_approve;
    src->reject = creds_reject;
    if (allow_token) {
        src->token_lookup = token_lookup;
        src->token_rejected = token_rejected;
    }
}

/* ---- LOGIN: authenticate now and keep a token --------------------------------- */

typedef struct login_reply {
    const char *identity;
    int64_t expires;
    const brk_login_hops *hops;
} login_reply;

/* [identity, expires, hops [[hop, kept, until], …]] (hops: a nested URI's) */
static void body_login(vb_enc *enc, const void *arg)
{
    const login_reply *l = arg;
    vb_enc_array(enc, 3);
    vb_enc_str(enc, l->identity);
    vb_enc_i64(enc, l->expires);
    vb_enc_array(enc, (uint32_t)l->hops->n);
    for (size_t i = 0; i < l->hops->n; i++) {
        vb_enc_array(enc, 3);
        vb_enc_str(enc, l->hops->hop[i].hop);
        vb_enc_str(enc, l->hops->hop[i].kept);
        vb_enc_i64(enc, l->hops->hop[i].until);
    }
}

/* allow_token: a nested URI's login uses the first hop's own login when the
 * broker has one, instead of replacing it */
static int connect_for_login(brk_session *s, const char *uri_text, vb_uri *uri, int allow_token,
                             vb_remote **r, vb_error *err)
{
    /* a typo in the URI (nested ones too) is reported before anything is asked */
    if (vb_driver_check_uri(uri, err) < 0)
        return -1;
    if (!vb_uri_is_remote(uri))
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_BROKER,
                            "'%s' is a local URI: logins are kept for remote hosts "
                            "(DRIVER+unix|tcp|ssh://…)", uri_text);
    free(s->cred_uri);
    s->cred_uri = strdup(uri_text); /* auth.conf lookups use it */
    int types[BRK_MAX_CRED_TYPES + 3];
    vb_remote_opts opts = { .timeout_ms = 0 };
    /* an explicit login authenticates for real, not with the cached token;
     * only a nested URI's may use the first hop's own (allow_token) */
    brk_creds_source(s, &opts.creds, types, sizeof types / sizeof types[0], allow_token);
    return vb_remote_connect(uri, &opts, r, err);
}

/* A new login replaces the cached one for the same server and identity:
 * revoke the old token on the host now instead of leaving it valid. */
static void revoke_replaced(brk_session *s, vb_remote *r, const vb_cached_login *fresh)
{
    vb_cached_login old;
    uint8_t secret[64];
    size_t len = 0;
    int revoked = 0;
    pthread_mutex_lock(&s->srv->cache_lock);
    int found = vb_store_login_get(s->srv->cache, fresh->server_id, NULL, fresh->identity,
                                   (int64_t)time(NULL), &old, secret, sizeof secret, &len, NULL);
    pthread_mutex_unlock(&s->srv->cache_lock);
    explicit_bzero(secret, sizeof secret);
    if (found == 1 && strcmp(old.identity, fresh->identity) == 0 &&
        vb_remote_revoke_token(r, old.token_id, &revoked, NULL) == 0 && revoked)
        vb_log(VB_LOG_INFO, "revoked the token %.8s… this login replaces", old.token_id);
}

/* Ask the host for a token and keep it (replacing this identity's older one). */
static int keep_new_token(brk_session *s, const brk_job *job, vb_remote *r, vb_cached_login *rec,
                          vb_error *err)
{
    vb_remote_token tok;
    memset(&tok, 0, sizeof tok);
    memset(rec, 0, sizeof *rec);
    int rc = vb_remote_issue_token(r, job->ttl_s, &tok, err);
    if (rc == 0) {
        snprintf(rec->server_id, sizeof rec->server_id, "%s", vb_remote_server_id(r));
        snprintf(rec->identity, sizeof rec->identity, "%s", tok.identity);
        snprintf(rec->token_id, sizeof rec->token_id, "%s", tok.id);
        snprintf(rec->uri, sizeof rec->uri, "%s", job->uri);
        snprintf(rec->auth_type, sizeof rec->auth_type, "%s", vb_remote_auth_type(r));
        snprintf(rec->endpoint, sizeof rec->endpoint, "%s", vb_remote_endpoint(r));
        rec->created = (int64_t)time(NULL);
        rec->expires = tok.expires;
        revoke_replaced(s, r, rec);
        pthread_mutex_lock(&s->srv->cache_lock);
        rc = vb_store_login_put(s->srv->cache, rec, tok.secret, sizeof tok.secret, err);
        pthread_mutex_unlock(&s->srv->cache_lock);
        if (rc == 0)
            vb_log(VB_LOG_INFO, "client %s: logged in to %s as '%s' (token %.8s…)", s->peer,
                   job->uri, tok.identity, tok.id);
    }
    explicit_bzero(tok.secret, sizeof tok.secret);
    return rc;
}

/* The broker's cached login of r's host at r's endpoint (the one a token
 * login on r used): 1, 0 when there is none, -1 when the cache failed. */
static int find_own_login(brk_session *s, const vb_uri *uri, vb_remote *r, vb_cached_login *rec,
                          vb_error *err)
{
    uint8_t secret[64];
    size_t len = 0;
    pthread_mutex_lock(&s->srv->cache_lock);
    int found = vb_store_login_get(s->srv->cache, vb_remote_server_id(r), vb_remote_endpoint(r),
                                   uri->user, (int64_t)time(NULL), rec, secret, sizeof secret,
                                   &len, err);
    pthread_mutex_unlock(&s->srv->cache_lock);
    explicit_bzero(secret, sizeof secret);
    return found;
}

/* The first hop's entry: its token, new or the one it already had. */
static void note_first_hop(brk_login_hops *hops, const vb_uri *uri, const vb_cached_login *rec,
                           int reused)
{
    brk_login_hop *h = &hops->hop[hops->n++];
    char *service = vb_remote_service_name(uri);
    memset(h, 0, sizeof *h);
    vb_text_escape_into(service ? service : "the first hop", h->hop, sizeof h->hop);
    free(service);
    h->is_token = 1;
    h->until = rec->expires;
    char who[96], made[240]; /* the identity is the host's word */
    vb_text_escape_into(rec->identity, who, sizeof who);
    vb_text_escape_into(rec->uri, made, sizeof made);
    if (reused)
        snprintf(h->kept, sizeof h->kept, "its own login token as '%s' (made with %s), unchanged",
                 who, made);
    else
        snprintf(h->kept, sizeof h->kept, "new login token as '%s' (in the broker's cache.db)", who);
}

/* A nested URI's first hop is logged in (and kept), but the chain beyond it
 * failed: say both. */
static void chain_failed(vb_error *err, const brk_login_hop *first)
{
    vb_error inner = *err;
    char msg[300];
    vb_text_escape_into(first->hop, msg, sizeof msg);
    vb_error_set(err, inner.code, inner.domain,
                 "%s is logged in (%.120s), but logging in beyond it failed: %s", msg, first->kept,
                 inner.message);
}

void brk_job_login(brk_session *s, const brk_job *job)
{
    vb_error err;
    vb_uri uri;
    vb_remote *r = NULL;
    vb_cached_login rec;
    brk_login_hops *hops = calloc(1, sizeof *hops);
    memset(&uri, 0, sizeof uri);
    memset(&rec, 0, sizeof rec);
    int rc = hops ? vb_uri_parse(job->uri, &uri, &err)
                  : vb_error_set(&err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
    int nested = rc == 0 && brk_nested_inner(&uri);
    if (rc == 0)
        rc = connect_for_login(s, job->uri, &uri, nested, &r, &err);
    if (rc == 0 && !vb_remote_server_id(r))
        rc = vb_error_set(&err, VB_ERR_NO_SUPPORT, VB_DOM_BROKER,
                          "this server predates tokens (HOST protocol v1)");
    /* a nested URI leaves the host's own login as it is, whether the token
     * logged in here or the URI's auth= chose a password */
    int reused = rc == 0 && nested ? find_own_login(s, &uri, r, &rec, &err) : 0;
    if (reused < 0)
        rc = -1;
    else if (rc == 0 && !reused)
        rc = keep_new_token(s, job, r, &rec, &err);
    vb_remote_free(r);
    if (rc == 0 && nested) {
        note_first_hop(hops, &uri, &rec, reused);
        if (brk_login_chain(s, job, &uri, hops, &err) < 0) {
            chain_failed(&err, &hops->hop[0]);
            rc = -1;
        }
    }
    static const brk_login_hops none;
    login_reply lr = { rec.identity, rec.expires, hops ? hops : &none };
    brk_post_reply(s, job, rc, body_login, &lr, &err);
    explicit_bzero(&rec, sizeof rec);
    free(hops);
    vb_uri_clear(&uri);
}

/* ---- LOGOUT: revoke on the host when reachable, erase here in any case ----------- */

typedef struct logout_item {
    vb_cached_login rec;
    uint8_t secret[32];
    int revoked;
    char note[160];
} logout_item;

typedef struct logout_list {
    logout_item *items;
    size_t n;
} logout_list;

static void body_logout(vb_enc *enc, const void *arg)
{
    const logout_list *l = arg;
    vb_enc_array(enc, 1);
    vb_enc_array(enc, (uint32_t)l->n);
    for (size_t i = 0; i < l->n; i++) {
        vb_enc_array(enc, 4);
        vb_enc_str(enc, l->items[i].rec.uri);
        vb_enc_str(enc, l->items[i].rec.identity);
        vb_enc_bool(enc, l->items[i].revoked);
        vb_enc_str(enc, l->items[i].note);
    }
}

/* Logout logs in with exactly the token being logged out. */
static int logout_token_lookup(void *opaque, const char *server_id, const char *endpoint,
                               const char *user, char *id, size_t id_len, uint8_t *secret,
                               size_t secret_len)
{
    (void)user;
    logout_item *it = opaque;
    if (strcmp(server_id, it->rec.server_id) != 0 || strcmp(endpoint, it->rec.endpoint) != 0)
        return 0; /* another server answers at that address now: show it nothing */
    memcpy(secret, it->secret, secret_len < sizeof it->secret ? secret_len : sizeof it->secret);
    snprintf(id, id_len, "%s", it->rec.token_id);
    return 1;
}

/* Log in with the token itself and revoke it. */
static void revoke_on_host(brk_session *s, logout_item *it)
{
    static const char *const token_only[] = { "token" };
    vb_uri uri;
    vb_error err;
    vb_remote *r = NULL;
    memset(&uri, 0, sizeof uri);
    int types[BRK_MAX_CRED_TYPES + 3];
    vb_remote_opts opts = { .timeout_ms = 15000 };
    brk_creds_source(s, &opts.creds, types, sizeof types / sizeof types[0], 1);
    opts.creds.auth_priority = token_only;
    opts.creds.nauth_priority = 1;
    opts.creds.fn = NULL; /* never prompt to log out */
    opts.creds.opaque = it;
    opts.creds.token_lookup = logout_token_lookup;
    opts.creds.token_rejected = NULL;
    opts.creds.approve = opts.creds.reject = NULL;
    int rc = vb_uri_parse(it->rec.uri, &uri, &err);
    if (rc == 0) {
        vb_uri_param *auth = NULL; /* the URI's auth= must not force sasl here */
        for (size_t i = 0; i < uri.nparams; i++)
            if (strcmp(uri.params[i].key, "auth") == 0)
                auth = &uri.params[i];
        if (auth) {
            free(auth->value);
            auth->value = strdup("token");
        }
        rc = vb_remote_connect(&uri, &opts, &r, &err);
    }
    if (rc == 0 && strcmp(vb_remote_auth_type(r), "token") != 0)
        rc = vb_error_set(&err, VB_ERR_AUTH_FAILED, VB_DOM_BROKER, "the host no longer accepts it");
    if (rc == 0)
        rc = vb_remote_revoke_token(r, it->rec.token_id, &it->revoked, &err);
    if (rc == 0)
        snprintf(it->note, sizeof it->note, "%s",
                 it->revoked ? "revoked on the host" : "the host did not know it");
    else if (err.code == VB_ERR_NO_CONNECT)
        snprintf(it->note, sizeof it->note, "host unreachable: erased locally only");
    else
        snprintf(it->note, sizeof it->note, "not revoked on the host (%.100s): erased locally",
                 err.message);
    vb_remote_free(r);
    vb_uri_clear(&uri);
}

static int collect_logins(brk_server *srv, const char *uri, logout_list *out, vb_error *err)
{
    vb_cached_login *recs = NULL;
    size_t n = 0;
    pthread_mutex_lock(&srv->cache_lock);
    int rc = vb_store_login_list(srv->cache, &recs, &n, err);
    pthread_mutex_unlock(&srv->cache_lock);
    if (rc < 0)
        return -1;
    out->items = calloc(n ? n : 1, sizeof *out->items);
    out->n = 0;
    for (size_t i = 0; out->items && i < n; i++) {
        if (uri && strcmp(recs[i].uri, uri) != 0)
            continue;
        logout_item *it = &out->items[out->n++];
        it->rec = recs[i];
        uint8_t secret[64];
        size_t len = 0;
        vb_cached_login exact;
        pthread_mutex_lock(&srv->cache_lock);
        /* the identity is exact, so this is the row itself (expired ones too are revoked) */
        if (vb_store_login_get(srv->cache, recs[i].server_id, NULL, recs[i].identity, INT64_MIN,
                               &exact, secret, sizeof secret, &len, NULL) == 1 &&
            strcmp(exact.token_id, recs[i].token_id) == 0 && len == sizeof it->secret)
            memcpy(it->secret, secret, sizeof it->secret);
        pthread_mutex_unlock(&srv->cache_lock);
        explicit_bzero(secret, sizeof secret);
    }
    free(recs);
    return out->items ? 0 : vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
}

/* What the broker holds for a logged-out host besides the token: its shared
 * connections to the logins' endpoints (a URI without a cached login names
 * no endpoint: those close at --upstream-idle) and the answers asked through
 * the URI's first hop (found by its service name, with or without a login). */
static void forget_host(brk_server *srv, const char *uri_text, const logout_list *l)
{
    if (!uri_text) {
        vb_remote_driver_close_endpoint(NULL, NULL);
        vb_libvirt_driver_close_uri(NULL);
        vb_secretcache_clear(srv->secrets, NULL);
        return;
    }
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].rec.endpoint[0])
            vb_remote_driver_close_endpoint(l->items[i].rec.endpoint, NULL);
    vb_uri uri;
    vb_error err;
    memset(&uri, 0, sizeof uri);
    if (vb_uri_parse(uri_text, &uri, &err) == 0 && !vb_uri_is_libvirt(&uri)) {
        char *service = vb_remote_service_name(&uri);
        if (service)
            vb_secretcache_clear_service(srv->secrets, service);
        free(service);
    }
    vb_uri_clear(&uri);
}

/* A libvirt: URI has no token: its logout closes the shared libvirt
 * connection and forgets the answers kept for it (by its service name, the
 * URI itself), and says so as one result. */
static int forget_libvirt(brk_server *srv, const char *uri_text, logout_list *l, vb_error *err)
{
    vb_uri uri;
    memset(&uri, 0, sizeof uri);
    int libvirt = uri_text && vb_uri_parse(uri_text, &uri, NULL) == 0 && vb_uri_is_libvirt(&uri);
    vb_uri_clear(&uri);
    if (!libvirt)
        return 0;
    unsigned closed = vb_libvirt_driver_close_uri(uri_text);
    size_t forgotten = vb_secretcache_clear_service(srv->secrets, uri_text);
    if (!closed && !forgotten)
        return 0;
    logout_item *items = realloc(l->items, (l->n + 1) * sizeof *items);
    if (!items)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
    l->items = items;
    logout_item *it = &items[l->n++];
    memset(it, 0, sizeof *it);
    snprintf(it->rec.uri, sizeof it->rec.uri, "%s", uri_text);
    snprintf(it->rec.identity, sizeof it->rec.identity, "libvirt connection");
    snprintf(it->note, sizeof it->note, "%u connection%s closed, %zu answer%s forgotten", closed,
             closed == 1 ? "" : "s", forgotten, forgotten == 1 ? "" : "s");
    return 0;
}

void brk_job_logout(brk_session *s, const brk_job *job)
{
    vb_error err;
    logout_list list = { NULL, 0 };
    int rc = collect_logins(s->srv, job->uri, &list, &err);
    for (size_t i = 0; rc == 0 && i < list.n; i++) {
        revoke_on_host(s, &list.items[i]);
        pthread_mutex_lock(&s->srv->cache_lock);
        vb_store_login_erase(s->srv->cache, list.items[i].rec.server_id, list.items[i].rec.token_id,
                             NULL);
        pthread_mutex_unlock(&s->srv->cache_lock);
        vb_log(VB_LOG_INFO, "client %s: logged out of %s (%s)", s->peer, list.items[i].rec.uri,
               list.items[i].note);
    }
    forget_host(s->srv, job->uri, &list); /* --all: every connection and typed password */
    if (rc == 0)
        rc = forget_libvirt(s->srv, job->uri, &list, &err);
    brk_post_reply(s, job, rc, body_logout, &list, &err);
    if (list.items)
        explicit_bzero(list.items, list.n * sizeof *list.items);
    free(list.items);
}

int brk_encode_logins(brk_server *srv, vb_enc *enc, vb_error *err)
{
    vb_cached_login *recs = NULL;
    size_t n = 0, shown = 0;
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&srv->cache_lock);
    vb_store_login_purge(srv->cache, now, NULL); /* hygiene; the list skips expired ones anyway */
    int rc = vb_store_login_list(srv->cache, &recs, &n, err);
    pthread_mutex_unlock(&srv->cache_lock);
    if (rc < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        shown += recs[i].expires > now;
    vb_enc_array(enc, (uint32_t)shown);
    for (size_t i = 0; i < n; i++) {
        if (recs[i].expires <= now)
            continue;
        vb_enc_array(enc, 6);
        vb_enc_str(enc, recs[i].server_id);
        vb_enc_str(enc, recs[i].identity);
        vb_enc_str(enc, recs[i].uri);
        vb_enc_str(enc, recs[i].auth_type);
        vb_enc_i64(enc, recs[i].created);
        vb_enc_i64(enc, recs[i].expires);
    }
    free(recs);
    return 0;
}
