/* Token logins (AUTH_TOKEN_CHALLENGE / AUTH_TOKEN_PROVE), issuing and
 * revoking tokens, and the admin view. The secret crosses the wire only in
 * the TOKEN_ISSUE reply, and only on a confidential connection. */
#include "vbh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vb_log.h"
#include "vb_net.h"
#include "vb_tls_cbind.h"

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

int vbh_tokens_usable_on(const vbh_listener *lis, const vbh_config *cfg)
{
    return vbh_auth_list_has(lis->auth, VBH_AUTH_TOKEN) &&
           (lis->is_unix || lis->is_tls || cfg->tcp_min_ssf == 0);
}

/* Tokens give no security layer: on TCP they are allowed when TLS gives
 * one strong enough, or when the operator requires none (tcp_min_ssf = 0). */
static int token_allowed_here(vbh_client *c, vb_error *err)
{
    if (vbh_auth_require_type(c, VBH_AUTH_TOKEN, err) < 0)
        return -1;
    if (!c->lis->is_unix && c->tls_ssf < c->srv->cfg->tcp_min_ssf)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "tokens are not accepted on %s while tcp_min_ssf requires a "
                            "security layer%s", c->lis->is_tls ? "this TLS cipher" : "plain TCP",
                            c->lis->is_tls ? " stronger than it" : " (listen_tls gives one)");
    return 0;
}

static void token_forget_pending(vbh_client *c)
{
    explicit_bzero(c->token_cnonce, sizeof c->token_cnonce);
    explicit_bzero(c->token_snonce, sizeof c->token_snonce);
    c->token_endpoint[0] = '\0';
    c->token_pending = 0;
}

/* Is ep (the endpoint the client says it dialled, canonical form in
 * docs/protocol.md) where this connection arrived? On the unix listener:
 * "unix:PATH", or "ssh:HOST:PORT/PATH" (the SSH tunnel ends at PATH; the
 * host was checked by SSH host-key verification, not here); on TCP:
 * "tcp:ADDR:PORT" of this connection's local end, numeric ("tls:" on a TLS
 * listener). Anything else is a
 * proof meant for another server, passed on by whoever sits in between,
 * unless the operator listed it in token_endpoints (a forwarder of theirs). */
static int endpoint_is_ours(const vbh_client *c, const char *ep, size_t len)
{
    char mine[VB_TOKEN_ENDPOINT_MAX + 1];
    const vbh_config *cfg = c->srv->cfg;
    for (size_t i = 0; i < cfg->ntoken_endpoints; i++) /* the operator's forwarders */
        if (strlen(cfg->token_endpoints[i]) == len && !memcmp(cfg->token_endpoints[i], ep, len))
            return 1;
    if (c->lis->is_unix) {
        const char *path = c->srv->cfg->listen_unix;
        const char *slash = len > 4 && memcmp(ep, "ssh:", 4) == 0 ? memchr(ep, '/', len) : NULL;
        size_t plen = strlen(path);
        if (slash)
            return plen == len - (size_t)(slash - ep) && memcmp(slash, path, plen) == 0;
        snprintf(mine, sizeof mine, "unix:%s", path);
    } else if (vb_net_tcp_endpoint(vb_stream_fd(c->stream), 0, mine, sizeof mine) < 0) {
        return 0;
    } else if (c->lis->is_tls) {
        memcpy(mine, "tls", 3); /* "tcp:ADDR:PORT" → "tls:ADDR:PORT" */
    }
    return strlen(mine) == len && memcmp(mine, ep, len) == 0;
}

/* The optional 3rd CHALLENGE field: the endpoint a bound proof is for. A
 * client that sends none speaks the unbound v1 proof, which a relaying
 * impostor could pass on: refused, as AUTH_UNAVAILABLE so an old client
 * falls back to its next auth type and keeps its token. */
static int read_endpoint(vbh_client *c, vb_rd *args, vb_error *err)
{
    const char *ep = NULL;
    size_t len = 0;
    if (vb_rd_has_more(args) && vb_rd_str(args, &ep, &len, err) < 0)
        return -1;
    if (!ep)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "this server takes only endpoint-bound token proofs (feature "
                            VB_FEATURE_TOKEN_BIND "); this client predates them");
    if (len == 0 || len > VB_TOKEN_ENDPOINT_MAX || memchr(ep, '\0', len) ||
        !endpoint_is_ours(c, ep, len)) {
        vb_log(VB_LOG_WARN, "client %s: token proof bound to an endpoint that is not the one it "
               "connected to (a relayed login?); refused", c->peer);
        return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH, "authentication failed");
    }
    memcpy(c->token_endpoint, ep, len);
    c->token_endpoint[len] = '\0';
    return 0;
}

/* This login's proof: bound to this server, the endpoint checked above and,
 * on TLS, this very connection (its tls-exporter value: a man in the middle
 * has another one, docs/security.md 6.2). */
static int token_proof(vbh_client *c, enum vb_token_role role, const uint8_t *secret,
                       size_t secret_len, const char *id, uint8_t *proof, vb_error *err)
{
    uint8_t cb[VB_TLS_CBIND_LEN];
    const vb_tls *tls = vb_stream_tls(c->stream);
    if (tls && vb_tls_channel_binding(tls, cb, err) < 0)
        return -1;
    vb_token_binding bind = { c->srv->server_id, c->token_endpoint, tls ? cb : NULL,
                              tls ? sizeof cb : 0 };
    int rc = vb_token_proof_bound(role, secret, secret_len, id, &bind, c->token_cnonce,
                                  c->token_snonce, proof, err);
    explicit_bzero(cb, sizeof cb);
    return rc;
}

static int read_token_id(vb_rd *args, char id[VB_TOKEN_ID_LEN + 1], vb_error *err)
{
    const char *p;
    size_t len;
    if (vb_rd_str(args, &p, &len, err) < 0)
        return -1;
    if (!vb_token_id_valid(p, len))
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH, "malformed token id");
    memcpy(id, p, len);
    id[len] = '\0';
    return 0;
}

/* ---- tokens.db off the loop ------------------------------------------------
 *
 * Every read and write of tokens.db runs on the server's store lane (one
 * thread, in order; vb_lane in util/vb_offloop.h), never on the loop: while
 * another process holds the database's write lock (`vbhostd --revoke-token`,
 * a backup, an editor), the lane waits for it up to the store's busy timeout
 * (VB_STORE_BUSY_TIMEOUT_MS), and everyone else is served meanwhile.
 *
 * A token call comes in three parts. Its handler in the table (the
 * "prepare" half, below) runs on the loop, checks the connection and reads
 * the arguments into a job (c->token_job); the lane makes the job's one
 * store call; the job's finish handler answers on the loop through
 * vbh_dispatch_resume (the delays and attempt counting of any auth call).
 * The client is not read between the call and its answer, so its calls are
 * answered in order, and a call after a revoke sees it (the lane keeps the
 * order across clients too). A client that leaves meanwhile keeps the job's
 * reference until the job is done; its answer is then dropped. */

enum token_op { TOKEN_OP_GET, TOKEN_OP_ADD, TOKEN_OP_REVOKE, TOKEN_OP_TOUCH };

typedef struct token_job {
    vbh_server *srv;
    vbh_client *c;              /* a reference; NULL for a touch (nobody to answer) */
    vb_msg msg;                 /* the call, answered when the job is done */
    vbh_handler finish;         /* answers it (loop thread) */
    enum token_op op;
    char id[VB_TOKEN_ID_LEN + 1];
    int64_t now, expires, bound_uid;
    char identity[VB_STORE_IDENTITY_MAX + 1]; /* ADD: the owner; REVOKE: only its tokens */
    char auth_type[VB_STORE_AUTH_TYPE_MAX + 1];
    uint8_t secret[VB_TOKEN_SECRET_LEN * 2]; /* ADD: the new one; GET: the stored one */
    size_t secret_len;
    uint8_t given[VB_TOKEN_PROOF_LEN];       /* PROVE: the client's proof */
    size_t given_len;
    vb_token_record rec;        /* GET */
    int rc;                     /* the store call's result */
    vb_error err;
} token_job;

static void token_job_free(token_job *job)
{
    vb_msg_clear(&job->msg);
    explicit_bzero(job, sizeof *job); /* the secret */
    free(job);
}

/* Lane thread: the job's store call, nothing else (the client is not ours). */
static void token_job_run(void *arg)
{
    token_job *job = arg;
    vb_store *st = job->srv->tokens;
    vb_error_clear(&job->err);
    switch (job->op) {
    case TOKEN_OP_GET:
        job->rc = vb_store_token_get(st, job->id, job->now, job->secret, sizeof job->secret,
                                     &job->secret_len, &job->rec, &job->err);
        break;
    case TOKEN_OP_ADD:
        job->rc = vb_store_token_add_bound(st, job->id, job->secret, job->secret_len,
                                           job->identity, job->auth_type, job->now, job->expires,
                                           job->bound_uid, &job->err);
        break;
    case TOKEN_OP_REVOKE:
        job->rc = vb_store_token_revoke(st, job->id, job->identity, &job->err);
        break;
    case TOKEN_OP_TOUCH:
        job->rc = vb_store_token_touch(st, job->id, job->now, &job->err);
        if (job->rc < 0)
            vb_log(VB_LOG_WARN, "token %.8s…: last use not recorded: %s", job->id,
                   job->err.message);
        break;
    }
}

/* Loop thread: the store call is done; answer the call (unless its client
 * left), and read the client again. */
static void token_job_done(void *arg)
{
    token_job *job = arg;
    vbh_client *c = job->c;
    if (c) {
        c->token_busy = 0;
        if (!c->gone) {
            c->token_job = job;
            vbh_dispatch_resume(c, &job->msg, job->finish);
            c->token_job = NULL;
        }
        vbh_client_unref(c);
    }
    token_job_free(job);
}

int vbh_tokens_begin(vbh_client *c, vb_msg *msg, vbh_handler prepare, vb_error *err)
{
    token_job *job = calloc(1, sizeof *job);
    if (!job)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
    job->srv = c->srv;
    job->now = wall_now();
    vb_rd args;
    c->token_job = job;
    int rc = vb_rd_init(&args, msg->body, err) < 0 ? -1 : prepare(c, &args, NULL, err);
    c->token_job = NULL;
    if (rc == 0) {
        vbh_client_ref(c); /* dropped in token_job_done */
        job->c = c;
        rc = vb_lane_submit(c->srv->store_lane, token_job_run, token_job_done, job, err);
        if (rc < 0)
            vbh_client_unref(c);
    }
    if (rc < 0) {
        token_job_free(job);
        return -1;
    }
    job->msg = *msg; /* moved; only token_job_done reads it, on this thread */
    memset(msg, 0, sizeof *msg);
    c->token_busy = 1;
    vb_stream_pause(c->stream, 1); /* nothing more from it until this is answered */
    return 0;
}

/* Record a login's use; nobody waits for it (the lane keeps it before any
 * later call on the token). */
static void token_touch_later(vbh_client *c, const char *id)
{
    vb_error err;
    token_job *job = calloc(1, sizeof *job);
    if (!job)
        return;
    job->srv = c->srv;
    job->op = TOKEN_OP_TOUCH;
    job->now = wall_now();
    memcpy(job->id, id, sizeof job->id);
    if (vb_lane_submit(c->srv->store_lane, token_job_run, token_job_done, job, &err) < 0) {
        vb_log(VB_LOG_WARN, "client %s: token %.8s…: last use not recorded: %s", c->peer, id,
               err.message);
        token_job_free(job);
    }
}

/* The job a handler prepares or finishes (set around the call). */
static token_job *token_job_of(vbh_client *c, vb_error *err)
{
    if (!c->token_job)
        vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_DAEMON, "a token call outside its job");
    return c->token_job;
}

/* After a GET: the secret of a usable token, or TOKEN_REFUSED (logged with
 * the reason), or the store's error. */
static int usable_token(vbh_client *c, token_job *job, vb_error *err)
{
    if (job->rc < 0) {
        vb_log(VB_LOG_WARN, "client %s: token %.8s…: %s", c->peer, job->id, job->err.message);
        vb_error_copy(err, &job->err);
        return -1;
    }
    if (job->rc == 0) {
        vb_log(VB_LOG_WARN, "client %s: token %.8s… not accepted (%s)", c->peer, job->id,
               job->rec.id[0] ? (job->rec.revoked ? "revoked" : "expired") : "unknown");
        return vb_error_set(err, VB_ERR_TOKEN_REFUSED, VB_DOM_AUTH, "token not accepted");
    }
    /* issued over a unix socket: only that uid may use it (another local
     * user who got hold of it, e.g. by relaying, gets nothing) */
    if (job->rec.bound_uid >= 0 && (!c->lis->is_unix || (int64_t)c->uid != job->rec.bound_uid)) {
        vb_log(VB_LOG_WARN, "client %s: token %.8s… belongs to uid %lld; refused", c->peer, job->id,
               (long long)job->rec.bound_uid);
        return vb_error_set(err, VB_ERR_TOKEN_REFUSED, VB_DOM_AUTH, "token not accepted");
    }
    return 0;
}

/* AUTH_TOKEN_CHALLENGE [id, client_nonce, endpoint] → [server_nonce, server_proof] */
static int challenge_finish(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    uint8_t proof[VB_TOKEN_PROOF_LEN];
    token_job *job = token_job_of(c, err);
    int rc = job ? usable_token(c, job, err) : -1;
    if (rc == 0)
        rc = vb_token_nonce(c->token_snonce, err);
    if (rc == 0)
        rc = token_proof(c, VB_TOKEN_SERVER, job->secret, job->secret_len, job->id, proof, err);
    if (rc < 0) {
        token_forget_pending(c);
        return -1;
    }
    memcpy(c->token_id, job->id, sizeof c->token_id);
    c->token_pending = 1;
    vb_enc_array(reply, 2);
    vb_enc_bin(reply, c->token_snonce, VB_TOKEN_NONCE_LEN);
    vb_enc_bin(reply, proof, VB_TOKEN_PROOF_LEN);
    return 0;
}

int vbh_auth_token_challenge(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)reply;
    const uint8_t *cnonce;
    size_t cnlen;
    token_job *job = token_job_of(c, err);
    token_forget_pending(c);
    if (!job || token_allowed_here(c, err) < 0 || read_token_id(args, job->id, err) < 0 ||
        vb_rd_bin(args, &cnonce, &cnlen, err) < 0 || read_endpoint(c, args, err) < 0)
        return -1;
    if (cnlen != VB_TOKEN_NONCE_LEN)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH, "the client nonce must be %d bytes",
                            VB_TOKEN_NONCE_LEN);
    memcpy(c->token_cnonce, cnonce, VB_TOKEN_NONCE_LEN);
    job->op = TOKEN_OP_GET;
    job->finish = challenge_finish;
    return 0;
}

/* AUTH_TOKEN_PROVE [client_proof] → [identity] */
static int prove_finish(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    uint8_t want[VB_TOKEN_PROOF_LEN];
    token_job *job = token_job_of(c, err);
    int rc = job ? usable_token(c, job, err) : -1; /* revoked meanwhile? */
    if (rc == 0)
        rc = token_proof(c, VB_TOKEN_CLIENT, job->secret, job->secret_len, c->token_id, want, err);
    token_forget_pending(c); /* one proof per challenge */
    if (rc < 0)
        return -1;
    if (job->given_len != VB_TOKEN_PROOF_LEN || !vb_token_proof_equal(job->given, want)) {
        /* a wrong proof for a real token is an attack, not a stale cache entry */
        vb_log(VB_LOG_WARN, "client %s: wrong proof for token %.8s…", c->peer, c->token_id);
        return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH, "authentication failed");
    }
    token_touch_later(c, c->token_id);
    vbh_client_mark_authenticated(c, "token", job->rec.identity);
    memcpy(c->session_token, c->token_id, sizeof c->session_token);
    vb_log(VB_LOG_INFO, "client %s authenticated as '%s' (token %.8s…)", c->peer,
           job->rec.identity, c->token_id);
    vb_enc_array(reply, 1);
    vb_enc_str(reply, job->rec.identity);
    return 0;
}

int vbh_auth_token_prove(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)reply;
    const uint8_t *given;
    size_t given_len;
    token_job *job = token_job_of(c, err);
    if (!job || token_allowed_here(c, err) < 0 || vb_rd_bin(args, &given, &given_len, err) < 0)
        return -1;
    if (!c->token_pending)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "no token challenge in progress: call AUTH_TOKEN_CHALLENGE first");
    job->given_len = given_len;
    memcpy(job->given, given, given_len < sizeof job->given ? given_len : sizeof job->given);
    memcpy(job->id, c->token_id, sizeof job->id);
    job->op = TOKEN_OP_GET;
    job->finish = prove_finish;
    return 0;
}

/* TOKEN_ISSUE [ttl_s] → [id, secret, expires, identity] */
static int issue_finish(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    token_job *job = token_job_of(c, err);
    if (!job)
        return -1;
    if (job->rc < 0) {
        vb_log(VB_LOG_WARN, "client %s (%s): no token issued: %s", c->peer, c->identity,
               job->err.message);
        vb_error_copy(err, &job->err);
        return -1;
    }
    vb_enc_array(reply, 4);
    vb_enc_str(reply, job->id);
    vb_enc_bin(reply, job->secret, job->secret_len);
    vb_enc_i64(reply, job->expires);
    vb_enc_str(reply, job->identity);
    vb_log(VB_LOG_INFO, "client %s (%s): issued token %.8s… valid %lld s", c->peer, c->identity,
           job->id, (long long)(job->expires - job->now));
    return 0;
}

int vbh_token_issue(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)reply;
    uint64_t ttl;
    token_job *job = token_job_of(c, err);
    if (!job || vb_rd_u64(args, &ttl, err) < 0)
        return -1;
    if (strcmp(c->auth_type, "sasl") != 0 && strcmp(c->auth_type, "peer") != 0)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "tokens are issued after a sasl or peer login only (this connection "
                            "used %s)", c->auth_type);
    if (!c->confidential)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "refusing to send a token secret over a connection without "
                            "confidentiality (use a SASL mechanism with a security layer, or the "
                            "unix socket)");
    if (!vbh_tokens_usable_on(c->lis, c->srv->cfg))
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "this listener does not accept token logins (add \"token\" to its auth "
                            "list; on TCP tokens also need tcp_min_ssf = 0), so a token issued "
                            "here could never be used");
    if (ttl == 0 || ttl > c->srv->cfg->token_ttl_s)
        ttl = c->srv->cfg->token_ttl_s;
    if (vb_token_new(job->id, job->secret, err) < 0)
        return -1;
    job->secret_len = VB_TOKEN_SECRET_LEN;
    job->expires = job->now + (int64_t)ttl;
    job->bound_uid = c->lis->is_unix ? (int64_t)c->uid : -1;
    snprintf(job->identity, sizeof job->identity, "%s", c->identity);
    snprintf(job->auth_type, sizeof job->auth_type, "%s", c->auth_type);
    job->op = TOKEN_OP_ADD;
    job->finish = issue_finish;
    return 0;
}

/* TOKEN_REVOKE [id] → [revoked bool]: only the caller's own tokens. */
static int revoke_finish(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    token_job *job = token_job_of(c, err);
    if (!job)
        return -1;
    if (job->rc < 0) {
        vb_log(VB_LOG_WARN, "client %s (%s): token %.8s… not revoked: %s", c->peer, c->identity,
               job->id, job->err.message);
        vb_error_copy(err, &job->err);
        return -1;
    }
    if (job->rc == 1) {
        vb_log(VB_LOG_INFO, "client %s (%s): revoked token %.8s…", c->peer, c->identity, job->id);
        vbh_end_token_sessions(c->srv, job->id, c); /* the caller's own reply still goes out */
    }
    vb_enc_array(reply, 1);
    vb_enc_bool(reply, job->rc == 1);
    return 0;
}

int vbh_token_revoke(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)reply;
    token_job *job = token_job_of(c, err);
    if (!job || read_token_id(args, job->id, err) < 0)
        return -1;
    snprintf(job->identity, sizeof job->identity, "%s", c->identity);
    job->op = TOKEN_OP_REVOKE;
    job->finish = revoke_finish;
    return 0;
}

/* ---- a revoked token ends its sessions ------------------------------------ */

unsigned vbh_end_token_sessions(vbh_server *srv, const char *id, const vbh_client *except)
{
    unsigned n = 0;
    for (vbh_client *o = srv->clients, *next; o; o = next) {
        next = o->next;
        if (o == except || o->gone || strcmp(o->session_token, id) != 0)
            continue;
        vb_log(VB_LOG_INFO, "client %s (%s): token %.8s… revoked; disconnecting", o->peer,
               o->identity, id);
        o->session_token[0] = '\0';
        vb_stream_close(o->stream); /* may free o: next was taken before */
        n++;
    }
    return n;
}

/* The token sessions' tokens, read on the lane: which are revoked or gone. */
typedef struct recheck_job {
    vbh_server *srv;
    size_t n;
    char (*ids)[VB_TOKEN_ID_LEN + 1];
    unsigned char *revoked;
} recheck_job;

/* Is the token still there and not revoked? An expired one keeps the
 * sessions it opened (as a SASL login does), a revoked or deleted one not.
 * A store that cannot answer ends nothing. */
static int token_revoked(vb_store *st, const char *id)
{
    uint8_t secret[VB_STORE_SECRET_MAX];
    size_t len = 0;
    vb_token_record rec;
    memset(&rec, 0, sizeof rec);
    int rc = vb_store_token_get(st, id, wall_now(), secret, sizeof secret, &len, &rec, NULL);
    explicit_bzero(secret, sizeof secret);
    return rc == 0 && (!rec.id[0] || rec.revoked);
}

static void recheck_run(void *arg)
{
    recheck_job *job = arg;
    for (size_t i = 0; i < job->n; i++)
        job->revoked[i] = (unsigned char)token_revoked(job->srv->tokens, job->ids[i]);
}

static void recheck_done(void *arg)
{
    recheck_job *job = arg;
    vbh_server *srv = job->srv;
    for (size_t i = 0; i < job->n; i++)
        if (job->revoked[i])
            vbh_end_token_sessions(srv, job->ids[i], NULL);
    free(job->ids);
    free(job->revoked);
    free(job);
    srv->recheck_running = 0;
    if (srv->recheck_again) { /* asked for while this one read: it may have read too early */
        srv->recheck_again = 0;
        vbh_recheck_token_sessions(srv);
    }
}

static int seen(char (*ids)[VB_TOKEN_ID_LEN + 1], size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return 1;
    return 0;
}

void vbh_recheck_token_sessions(vbh_server *srv)
{
    if (srv->recheck_running) {
        srv->recheck_again = 1;
        return;
    }
    size_t n = 0;
    for (vbh_client *c = srv->clients; c; c = c->next)
        n += c->session_token[0] && !c->gone;
    if (n == 0)
        return;
    recheck_job *job = calloc(1, sizeof *job);
    if (job) {
        job->ids = calloc(n, sizeof *job->ids);
        job->revoked = calloc(n, 1);
    }
    if (!job || !job->ids || !job->revoked) {
        if (job) {
            free(job->ids);
            free(job->revoked);
        }
        free(job);
        return; /* out of memory: the next round tries again */
    }
    job->srv = srv;
    for (vbh_client *c = srv->clients; c; c = c->next)
        if (c->session_token[0] && !c->gone && !seen(job->ids, job->n, c->session_token))
            memcpy(job->ids[job->n++], c->session_token, sizeof job->ids[0]);
    vb_error err;
    if (vb_lane_submit(srv->store_lane, recheck_run, recheck_done, job, &err) < 0) {
        vb_log(VB_LOG_WARN, "cannot re-check the token sessions: %s", err.message);
        free(job->ids);
        free(job->revoked);
        free(job);
        return;
    }
    srv->recheck_running = 1;
}

/* ---- vbhostd --list-tokens / --revoke-token ID ---------------------------- */

static void print_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int vbh_admin_tokens(vbh_config *cfg, const char *revoke_id)
{
    vb_store *st;
    vb_error err;
    if (vbh_open_token_store(cfg, &st, &err) < 0) {
        fprintf(stderr, "vbhostd: %s\n", err.message);
        return 1;
    }
    int status = 0;
    if (revoke_id) {
        int rc = vb_store_token_revoke(st, revoke_id, NULL, &err);
        if (rc < 0)
            fprintf(stderr, "vbhostd: %s\n", err.message);
        else if (rc == 0)
            fprintf(stderr, "vbhostd: no token %s\n", revoke_id);
        else
            printf("revoked %s\n", revoke_id);
        status = rc == 1 ? 0 : 1;
    } else {
        vb_token_record *recs = NULL;
        size_t n = 0;
        if (vb_store_token_list(st, &recs, &n, &err) < 0) {
            fprintf(stderr, "vbhostd: %s\n", err.message);
            status = 1;
        }
        printf("%-32s  %-24s  %-6s  %-20s  %-20s  %-7s  %s\n", "ID", "IDENTITY", "AUTH",
               "EXPIRES", "LAST USED", "UID", "STATE");
        int64_t now = wall_now();
        for (size_t i = 0; i < n; i++) {
            char exp[32], used[32];
            print_time(recs[i].expires, exp, sizeof exp);
            print_time(recs[i].last_used, used, sizeof used);
            char uid[24] = "-"; /* the uid a unix-issued token is bound to */
            if (recs[i].bound_uid >= 0)
                snprintf(uid, sizeof uid, "%lld", (long long)recs[i].bound_uid);
            printf("%-32s  %-24s  %-6s  %-20s  %-20s  %-7s  %s\n", recs[i].id, recs[i].identity,
                   recs[i].auth_type, exp, used, uid,
                   recs[i].revoked ? "revoked" : recs[i].expires <= now ? "expired" : "valid");
        }
        free(recs);
    }
    vb_store_close(st);
    return status;
}
