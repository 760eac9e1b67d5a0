/* The auth procedures: AUTH_LIST, SASL (INIT/START/STEP), PEER, and the
 * per-peer failure record behind the growing delay. */
#include "vbh.h"

#include <fnmatch.h>
#include <pwd.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_log.h"

#define FAILURE_WINDOW_MS  (10u * 60u * 1000u) /* forget a peer's failures after this */
#define FAILURE_BASE_MS    250u
#define FAILURE_MAX_MS     8000u

uint64_t vbh_auth_record_failure(vbh_client *c)
{
    vbh_server *srv = c->srv;
    uint64_t now = vb_now_ms();
    vbh_failure *found = NULL;
    for (vbh_failure **pp = &srv->failures; *pp;) {
        vbh_failure *f = *pp;
        if (now - f->last_ms > FAILURE_WINDOW_MS) { /* expire old entries as we go */
            *pp = f->next;
            free(f);
            continue;
        }
        if (strcmp(f->key, c->throttle_key) == 0)
            found = f;
        pp = &f->next;
    }
    if (!found && (found = calloc(1, sizeof *found))) {
        snprintf(found->key, sizeof found->key, "%s", c->throttle_key);
        found->next = srv->failures;
        srv->failures = found;
    }
    if (!found)
        return FAILURE_MAX_MS;
    found->count++;
    found->last_ms = now;
    /* the first failure answers at once (a typo); then 250 ms, 500 ms, ... 8 s */
    uint64_t delay = 0;
    if (found->count > 1) {
        unsigned shift = found->count - 2 > 5 ? 5 : found->count - 2;
        delay = (uint64_t)FAILURE_BASE_MS << shift;
    }
    return delay > FAILURE_MAX_MS ? FAILURE_MAX_MS : delay;
}

int vbh_auth_list_handler(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    (void)err;
    const vbh_auth_list *list = c->lis->auth;
    int hide_token = !vbh_tokens_usable_on(c->lis, c->srv->cfg); /* never offer what we refuse */
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
    vb_enc_array(reply, 2);
    vb_enc_str(reply, VB_FEATURE_CONN_ID);
    vb_enc_str(reply, VB_FEATURE_TOKEN_BIND);
    return 0;
}

static int require_type(vbh_client *c, int type, vb_error *err)
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

int vbh_auth_sasl_init(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    vbh_config *cfg = c->srv->cfg;
    if (require_type(c, VBH_AUTH_SASL, err) < 0)
        return -1;
    vb_sasl_free(c->sasl);
    /* plain TCP has no confidentiality of its own: demand a SASL layer */
    c->min_ssf = c->lis->is_unix ? 0 : cfg->tcp_min_ssf;
    c->sasl = vb_sasl_server_new(cfg->sasl_app, cfg->sasl_hostname, cfg->sasl_realm,
                                 vb_stream_fd(c->stream), c->min_ssf, err);
    char *mechlist = NULL;
    if (!c->sasl || vb_sasl_server_mechlist(c->sasl, &mechlist, err) < 0)
        return -1;
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

/* The last SASL round completed: check policy, then let the client in. */
static int sasl_finish(vbh_client *c, vb_error *err)
{
    const char *user = vb_sasl_username(c->sasl);
    unsigned ssf = vb_sasl_ssf(c->sasl);
    if (!user || !username_allowed(c->srv->cfg, user)) {
        vb_log(VB_LOG_WARN, "client %s: user '%s' authenticated but is not in "
               "sasl_allowed_username_list", c->peer, user ? user : "?");
        vb_sasl_free(c->sasl);
        c->sasl = NULL;
        return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH, "authentication failed");
    }
    if (ssf < c->min_ssf) { /* cyrus enforces min_ssf too; never trust one layer alone */
        vb_log(VB_LOG_WARN, "client %s: SASL ssf %u below the required %u", c->peer, ssf, c->min_ssf);
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
        vb_log(VB_LOG_WARN, "client %s: SASL %s login failed: %s [%d]", c->peer,
               c->sasl && vb_sasl_mech(c->sasl) ? vb_sasl_mech(c->sasl) : "?",
               sasl_reason(sasl_rc), sasl_rc);
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
    if (require_type(c, VBH_AUTH_SASL, err) < 0 || need_session(c, err) < 0 ||
        vb_rd_strdup(args, 64, &mech, err) < 0 || vb_rd_bin(args, &in, &inlen, err) < 0)
        return free(mech), -1;
    if (!mech) {
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_AUTH, "no SASL mechanism given");
    }
    int progress = vb_sasl_server_start(c->sasl, mech, in, inlen, &out, &outlen, &sasl_rc, err);
    free(mech);
    return sasl_round(c, progress, out, outlen, sasl_rc, reply, err);
}

int vbh_auth_sasl_step(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    const uint8_t *in, *out = NULL;
    size_t inlen, outlen = 0;
    int sasl_rc = SASL_OK;
    if (require_type(c, VBH_AUTH_SASL, err) < 0 || need_session(c, err) < 0 ||
        vb_rd_bin(args, &in, &inlen, err) < 0)
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
    if (require_type(c, VBH_AUTH_PEER, err) < 0)
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
