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
    vb_enc_array(reply, 4);
    vb_enc_str(reply, VB_FEATURE_CONN_ID);
    vb_enc_str(reply, VB_FEATURE_TOKEN_BIND);
    vb_enc_str(reply, VB_FEATURE_CONCURRENT); /* driver calls of conn_ids overlap (2.1) */
    vb_enc_str(reply, VB_FEATURE_TLS_CBIND);
    return 0;
}

int vbh_auth_require_type(vbh_client *c, int type, vb_error *err)
{
    if (c->authenticated && !vbh_auth_list_has(c->lis->auth, VBH_AUTH_NONE))
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "this connection is already authenticated");
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

int vbh_auth_sasl_start(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    char *mech = NULL;
    const uint8_t *in, *out = NULL;
    size_t inlen, outlen = 0;
    int sasl_rc = SASL_OK;
    /* the type gate, the body, then the state (docs/protocol.md §5.7) */
    if (vbh_auth_require_type(c, VBH_AUTH_SASL, err) < 0 ||
        vb_rd_strdup(args, 64, &mech, err) < 0 || vb_rd_bin(args, &in, &inlen, err) < 0)
        return free(mech), -1;
    if (!mech)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH, "no SASL mechanism given");
    if (need_session(c, err) < 0 || vbh_cbind_check_mech(c, mech, err) < 0)
        return free(mech), -1;
    int progress = vb_sasl_server_start(c->sasl, mech, in, inlen, &out, &outlen, &sasl_rc, err);
    free(mech);
    return sasl_round(c, progress, out, outlen, sasl_rc, reply, err);
}

int vbh_auth_sasl_step(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    const uint8_t *in, *out = NULL;
    size_t inlen, outlen = 0;
    int sasl_rc = SASL_OK;
    if (vbh_auth_require_type(c, VBH_AUTH_SASL, err) < 0 ||
        vb_rd_bin(args, &in, &inlen, err) < 0 || need_session(c, err) < 0)
        return -1;
    /* cyrus dereferences the mechanism of a session that was never started */
    if (!vb_sasl_mech(c->sasl))
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH,
                            "no SASL exchange in progress: call AUTH_SASL_START first");
    int progress = vb_sasl_server_step(c->sasl, in, inlen, &out, &outlen, &sasl_rc, err);
    return sasl_round(c, progress, out, outlen, sasl_rc, reply, err);
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
