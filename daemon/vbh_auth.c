/* The auth procedures: AUTH_LIST, SASL (INIT/START/STEP), PEER, and the
 * notes on each finished attempt behind the delayed answers (vbh_failures.h). */
#include "vbh.h"

#include <fnmatch.h>
#include <pwd.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_log.h"
#include "vb_net.h"
#include "vb_tls_cbind.h"
#include "vbh_failures.h"

/* The failure table, made at the first attempt it has to judge. */
static vbh_failures *failures_of(vbh_server *srv)
{
    const vbh_config *cfg = srv->cfg;
    if (!srv->failures) {
        vbh_fail_limits lim = {
            .table_size = cfg->auth_failure_table_size,
            .forget_ms = (uint64_t)cfg->auth_failure_forget_s * 1000,
            .max_ms = (uint64_t)cfg->auth_failure_max_delay_s * 1000,
            /* deep enough for a few maximal steps; short enough that the
             * owner of an attacked account is not locked out for long */
            .horizon_ms = (uint64_t)cfg->auth_failure_max_delay_s * 2000,
            .global_per_s = cfg->auth_failures_per_second,
        };
        srv->failures = vbh_failures_new(&lim);
    }
    return srv->failures;
}

/* A login attempt finished (ok: the credentials were right): note it for
 * account (NULL: no name known) and this client's source. */
static vbh_fail_verdict note_attempt(vbh_client *c, const char *account, int ok)
{
    uint64_t now = vb_now_ms();
    vbh_failures *f = failures_of(c->srv);
    vbh_fail_verdict v = { now + (uint64_t)c->srv->cfg->auth_failure_max_delay_s * 1000, 0 };
    if (f) /* without memory for the table, every answer is slow: fail safe */
        v = vbh_failures_note(f, account, c->failure_source, ok, now);
    c->auth_noted = 1;
    c->auth_answer_at = v.answer_at;
    return v;
}

uint64_t vbh_auth_answer_delay(vbh_client *c, int failed)
{
    if (!c->auth_noted && failed)
        note_attempt(c, NULL, 0);
    if (!c->auth_noted)
        return 0;
    c->auth_noted = 0;
    uint64_t now = vb_now_ms();
    return c->auth_answer_at > now ? c->auth_answer_at - now : 0;
}

int vbh_auth_list_handler(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    (void)err;
    const vbh_auth_list *list = c->lis->auth;
    vb_error no_cb;
    /* never offer what we refuse (on TLS a token proof needs the binding) */
    int hide_token = !vbh_tokens_usable_on(c->lis, c->srv->cfg) || vbh_cbind_missing(c, &no_cb);
    uint32_t n = 0;
    for (size_t i = 0; i < list->n; i++)
        n += !(hide_token && list->types[i] == VBH_AUTH_TOKEN);
    vb_enc_array(reply, 3);
    vb_enc_array(reply, n);
    for (size_t i = 0; i < list->n; i++)
        if (!(hide_token && list->types[i] == VBH_AUTH_TOKEN))
            vb_enc_str(reply, vbh_auth_type_name(list->types[i]));
    vb_enc_str(reply, c->srv->server_id);
    /* what an earlier server lacked, so a client need not guess */
    /* the operator allows it, the fix for the plugin is in this executable,
     * and this listener's minimum lets 3DES (SSF 112) through: a client told
     * "digest_3des" caps itself at 112 and would find no layer above it */
    unsigned listener_min = c->lis->is_unix ? 0 : c->srv->cfg->tcp_min_ssf;
    int des = c->srv->cfg->sasl_digest_3des && vb_sasl_3des_usable() &&
              listener_min <= VB_SASL_3DES_SSF;
    vb_enc_array(reply, 4 + (uint32_t)des);
    vb_enc_str(reply, VB_FEATURE_CONN_ID);
    vb_enc_str(reply, VB_FEATURE_TOKEN_BIND);
    vb_enc_str(reply, VB_FEATURE_CONCURRENT); /* driver calls of conn_ids overlap (2.1) */
    vb_enc_str(reply, VB_FEATURE_TLS_CBIND);
    if (des)
        vb_enc_str(reply, VB_FEATURE_DIGEST_3DES);
    return 0;
}

int vbh_auth_require_type(vbh_client *c, int type, vb_error *err)
{
    if (c->authenticated && !vbh_auth_list_has(c->lis->auth, VBH_AUTH_NONE))
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "this connection is already authenticated");
    /* the stream encodes every frame with c->sasl: a new SASL exchange would
     * free or step it under the stream (also on a listener that lists "none") */
    if (c->layer_on && type == VBH_AUTH_SASL)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "this connection already has a SASL security layer; open a new "
                            "connection to log in again");
    if (!vbh_auth_list_has(c->lis->auth, type)) {
        char types[64];
        vbh_auth_list_format(c->lis->auth, types, sizeof types);
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "this listener does not accept %s authentication (it accepts %s)",
                            vbh_auth_type_name(type), types);
    }
    return 0;
}

/* On TLS the SASL session gets the connection's channel binding, so the
 * -PLUS mechanisms are offered and a relayed SCRAM login fails (docs/protocol.md
 * 9.7a). A TLS 1.2 connection without the extended master secret has none:
 * then only the mechanisms without it are offered (a client of ours refuses
 * them on TLS, saying why). */
static int sasl_bind_tls(vbh_client *c, vb_error *err)
{
    uint8_t cb[VB_TLS_CBIND_LEN];
    vb_error why;
    const vb_tls *tls = vb_stream_tls(c->stream);
    if (!tls)
        return 0;
    if (vb_tls_channel_binding(tls, cb, &why) < 0) {
        vb_log(VB_LOG_WARN, "client %s: no SASL channel binding: %s", c->peer, why.message);
        return 0;
    }
    int rc = vb_sasl_set_channel_binding(c->sasl, VB_TLS_CBIND_TYPE, cb, sizeof cb, err);
    explicit_bzero(cb, sizeof cb);
    if (rc == 0 && vbh_cbind_required(c)) /* tls_require_cbind: Cyrus refuses "n" and "y" too */
        rc = vb_sasl_require_channel_binding(c->sasl, err);
    return rc;
}

int vbh_auth_sasl_init(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    vbh_config *cfg = c->srv->cfg;
    if (vbh_auth_require_type(c, VBH_AUTH_SASL, err) < 0)
        return -1;
    vb_sasl_free(c->sasl);
    /* plain TCP has no confidentiality of its own: demand a SASL layer, or
     * TLS below (its cipher counts toward the same minimum) */
    c->min_ssf = c->lis->is_unix ? 0 : cfg->tcp_min_ssf;
    c->sasl = vb_sasl_server_new(cfg->sasl_app, cfg->sasl_hostname, cfg->sasl_realm,
                                 vb_stream_fd(c->stream), c->min_ssf, err);
    if (c->sasl && c->tls_ssf) /* TLS is the layer: SCRAM needs no SASL one on top */
        vb_sasl_set_external_ssf(c->sasl, c->tls_ssf);
    char *mechlist = NULL;
    if (!c->sasl || sasl_bind_tls(c, err) < 0 ||
        vb_sasl_server_mechlist(c->sasl, &mechlist, err) < 0 ||
        vbh_cbind_filter_mechs(c, &mechlist, err) < 0) {
        free(mechlist);
        return -1;
    }
    vb_enc_array(reply, 1);
    vb_enc_str(reply, mechlist);
    vb_log(VB_LOG_DEBUG, "client %s: SASL mechanisms offered: %s (min ssf %u)", c->peer, mechlist,
           c->min_ssf);
    free(mechlist);
    return 0;
}

static const char *sasl_reason(int rc)
{
    switch (rc) {
    case SASL_BADAUTH: return "wrong password";
    case SASL_NOUSER: return "unknown user";
    case SASL_NOMECH: return "mechanism not available";
    case SASL_TOOWEAK: return "mechanism too weak for this transport";
    case SASL_ENCRYPT: return "encryption required";
    case SASL_BADPROT: return "protocol error";
    default: return sasl_errstring(rc, NULL, NULL);
    }
}

static int username_allowed(const vbh_config *cfg, const char *user)
{
    if (!cfg->sasl_allowed_set)
        return 1; /* no list configured: every SASL-authenticated user */
    for (size_t i = 0; i < cfg->nsasl_allowed_usernames; i++)
        if (fnmatch(cfg->sasl_allowed_usernames[i], user, 0) == 0)
            return 1;
    return 0;
}

/* The last SASL round completed: check policy and the account's queue,
 * then let the client in. A policy refusal counts as a failure of the
 * account, so a right password outside the policy looks like a wrong one;
 * a full queue refuses without judging (vbh_failures.h). */
static int sasl_finish(vbh_client *c, vb_error *err)
{
    const char *user = vb_sasl_username(c->sasl);
    unsigned ssf = vb_sasl_ssf(c->sasl);
    int allowed = user && username_allowed(c->srv->cfg, user);
    /* cyrus enforces min_ssf too; never trust one layer alone */
    int strong = ssf + c->tls_ssf >= c->min_ssf;
    vbh_fail_verdict v = note_attempt(c, vb_sasl_authname(c->sasl), allowed && strong);
    if (!allowed)
        vb_log(VB_LOG_WARN, "client %s: user '%s' authenticated but is not in "
               "sasl_allowed_username_list", c->peer, user ? user : "?");
    else if (!strong)
        vb_log(VB_LOG_WARN, "client %s: SASL ssf %u (and TLS %u) below the required %u", c->peer,
               ssf, c->tls_ssf, c->min_ssf);
    else if (v.refused)
        vb_log(VB_LOG_WARN, "client %s: account '%s' has too many failed logins queued; refused "
               "without judging the password", c->peer, user);
    if (!allowed || !strong || v.refused) {
        vb_sasl_free(c->sasl);
        c->sasl = NULL;
        return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH, "authentication failed");
    }
    vbh_client_mark_authenticated(c, "sasl", user);
    c->enable_layer = ssf > 0;
    vb_log(VB_LOG_INFO, "client %s authenticated as '%s' (sasl %s, ssf %u)", c->peer, user,
           vb_sasl_mech(c->sasl), ssf);
    return 0;
}

static int sasl_round(vbh_client *c, int progress, const uint8_t *out, size_t outlen, int sasl_rc,
                      vb_enc *reply, vb_error *err)
{
    if (progress < 0) {
        const char *account = c->sasl ? vb_sasl_authname(c->sasl) : NULL;
        vb_log(VB_LOG_WARN, "client %s: SASL %s login failed: %s [%d]", c->peer,
               c->sasl && vb_sasl_mech(c->sasl) ? vb_sasl_mech(c->sasl) : "?",
               sasl_reason(sasl_rc), sasl_rc);
        if (err->code == VB_ERR_AUTH_FAILED && note_attempt(c, account, 0).refused)
            vb_log(VB_LOG_WARN, "client %s: account '%s' has too many failed logins queued",
                   c->peer, account ? account : "?");
        vb_sasl_free(c->sasl);
        c->sasl = NULL;
        return -1;
    }
    if (progress == VB_SASL_COMPLETE && sasl_finish(c, err) < 0)
        return -1;
    vb_enc_array(reply, 2);
    vb_enc_bool(reply, progress == VB_SASL_COMPLETE);
    vb_enc_bin(reply, out ? out : (const uint8_t *)"", outlen);
    return 0;
}

static int need_session(vbh_client *c, vb_error *err)
{
    if (!c->sasl)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "no SASL exchange in progress: call AUTH_SASL_INIT first");
    return 0;
}

/* ---- SASL steps off the loop ---------------------------------------------
 *
 * A Cyrus step costs milliseconds of CPU (DIGEST-MD5 with RC4 several, a
 * SCRAM server deriving its keys more, GSSAPI reads a keytab): on the loop
 * it would hold up every other client's calls and PINGs, and keep a second
 * core idle while logins queue. So AUTH_SASL_START and _STEP come in three
 * parts, like the token calls: on the loop the checks in their order (type
 * gate, body, state: docs/protocol.md 5.7) and the arguments go into a job;
 * a SASL lane runs the one Cyrus call; on the loop again the job's answer is
 * judged and sent (sasl_round: failure notes, policy, the layer) through
 * vbh_dispatch_resume, with the delays of any auth call. The job owns the
 * session meanwhile (a client that leaves cannot free it under the lane) and
 * the client is not read, so its steps stay in order. */

typedef struct sasl_job {
    vbh_client *c;              /* a reference, dropped when done */
    vb_msg msg;                 /* the call: the input points into its body */
    vbh_handler finish;         /* answers it (loop thread) */
    vb_sasl *sasl;              /* the session, the job's until done */
    char *mech;                 /* START: the mechanism; NULL for a STEP */
    const uint8_t *in;
    size_t inlen;
    int progress, sasl_rc;      /* the step's result ... */
    const uint8_t *out;         /* (Cyrus's buffer: valid until the next step) */
    size_t outlen;
    vb_error err;
} sasl_job;

/* Lane thread: the Cyrus call, nothing else (the client is not ours). */
static void sasl_job_run(void *arg)
{
    sasl_job *job = arg;
    vb_error_clear(&job->err);
    job->sasl_rc = SASL_OK;
    if (job->mech)
        job->progress = vb_sasl_server_start(job->sasl, job->mech, job->in, job->inlen, &job->out,
                                             &job->outlen, &job->sasl_rc, &job->err);
    else
        job->progress = vb_sasl_server_step(job->sasl, job->in, job->inlen, &job->out,
                                            &job->outlen, &job->sasl_rc, &job->err);
}

static void sasl_job_free(sasl_job *job)
{
    vb_msg_clear(&job->msg);
    free(job->mech);
    free(job);
}

/* Loop thread: the step is done; the session goes back to its client (or
 * away with it), and the answer out. */
static void sasl_job_done(void *arg)
{
    sasl_job *job = arg;
    vbh_client *c = job->c;
    c->sasl_busy = 0;
    if (c->gone) {
        vb_sasl_free(job->sasl);
    } else {
        c->sasl = job->sasl;
        c->sasl_job = job;
        vbh_dispatch_resume(c, &job->msg, job->finish);
        c->sasl_job = NULL;
    }
    vbh_client_unref(c);
    sasl_job_free(job);
}

/* The checks of START (mech set) or STEP, in their order, and the job's
 * arguments: 0, or -1 with err (answered at once, as before any step). */
static int sasl_prepare(vbh_client *c, vb_rd *args, int start, sasl_job *job, vb_error *err)
{
    /* the type gate, the body, then the state (docs/protocol.md §5.7) */
    if (vbh_auth_require_type(c, VBH_AUTH_SASL, err) < 0 ||
        (start && vb_rd_strdup(args, 64, &job->mech, err) < 0) ||
        vb_rd_bin(args, &job->in, &job->inlen, err) < 0)
        return -1;
    if (start && !job->mech)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH, "no SASL mechanism given");
    if (need_session(c, err) < 0 || (start && vbh_cbind_check_mech(c, job->mech, err) < 0))
        return -1;
    /* cyrus dereferences the mechanism of a session that was never started */
    if (!start && !vb_sasl_mech(c->sasl))
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "no SASL exchange in progress: call AUTH_SASL_START first");
    return 0;
}

static vb_lane *next_lane(vbh_server *srv)
{
    return srv->sasl_lanes[srv->next_sasl_lane++ % srv->nsasl_lanes];
}

int vbh_auth_sasl_begin(vbh_client *c, vb_msg *msg, vbh_handler finish, vb_error *err)
{
    sasl_job *job = calloc(1, sizeof *job);
    if (!job)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
    job->msg = *msg; /* the input points into its body, which moves with it */
    job->finish = finish;
    vb_rd args;
    int start = msg->hdr.procedure == VB_HOST_PROC_AUTH_SASL_START;
    int rc = vb_rd_init(&args, job->msg.body, err) < 0 ? -1 : sasl_prepare(c, &args, start, job, err);
    if (rc == 0 && c->srv->nsasl_lanes == 0)
        rc = vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_DAEMON, "no SASL lane");
    if (rc == 0) {
        vbh_client_ref(c); /* dropped in sasl_job_done */
        job->c = c;
        job->sasl = c->sasl;
        rc = vb_lane_submit(next_lane(c->srv), sasl_job_run, sasl_job_done, job, err);
        if (rc < 0)
            vbh_client_unref(c);
    }
    if (rc < 0) {
        job->msg = (vb_msg){ 0 }; /* still the caller's */
        sasl_job_free(job);
        return -1;
    }
    memset(msg, 0, sizeof *msg); /* moved */
    c->sasl = NULL;              /* the job's until done */
    c->sasl_busy = 1;
    vb_stream_pause(c->stream, 1); /* nothing more from it until this is answered */
    return 0;
}

/* Loop thread, in vbh_dispatch_resume: the finished job's answer. */
static int sasl_finish_job(vbh_client *c, vb_enc *reply, vb_error *err)
{
    sasl_job *job = c->sasl_job;
    if (!job)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_DAEMON, "a SASL answer outside its job");
    if (job->progress < 0)
        vb_error_copy(err, &job->err);
    return sasl_round(c, job->progress, job->out, job->outlen, job->sasl_rc, reply, err);
}

int vbh_auth_sasl_start(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args; /* read by vbh_auth_sasl_begin */
    return sasl_finish_job(c, reply, err);
}

int vbh_auth_sasl_step(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    return sasl_finish_job(c, reply, err);
}

int vbh_auth_lanes_start(vbh_server *srv, vb_error *err)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = cores < 1 ? 1 : cores > VBH_SASL_LANES_MAX ? VBH_SASL_LANES_MAX : (unsigned)cores;
    /* each lane's thread starts at its first step */
    for (srv->nsasl_lanes = 0; srv->nsasl_lanes < n; srv->nsasl_lanes++)
        if (!(srv->sasl_lanes[srv->nsasl_lanes] = vb_lane_new(srv->loop, VB_DOM_DAEMON, err)))
            return -1;
    return 0;
}

void vbh_auth_lanes_stop(vbh_server *srv)
{
    for (unsigned i = 0; i < srv->nsasl_lanes; i++) {
        vb_lane_free(srv->sasl_lanes[i], srv->loop);
        srv->sasl_lanes[i] = NULL;
    }
    srv->nsasl_lanes = 0;
}

int vbh_auth_peer(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    if (vbh_auth_require_type(c, VBH_AUTH_PEER, err) < 0)
        return -1;
    if (!c->lis->is_unix)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "peer authentication needs a unix socket");
    if (!c->peer_allowed) {
        vb_log(VB_LOG_WARN, "client %s: uid %u is not allowed by peer_allowed_users", c->peer,
               (unsigned)c->uid);
        return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH, "authentication failed");
    }
    struct passwd *pw = getpwuid(c->uid);
    char identity[128];
    if (pw)
        snprintf(identity, sizeof identity, "%s", pw->pw_name);
    else
        snprintf(identity, sizeof identity, "uid:%u", (unsigned)c->uid);
    vbh_client_mark_authenticated(c, "peer", identity);
    vb_log(VB_LOG_INFO, "client %s authenticated as '%s' (peer uid)", c->peer, identity);
    vb_enc_array(reply, 1);
    vb_enc_str(reply, identity);
    return 0;
}
