/* tls_require_cbind: on a TLS listener, logins only with the channel
 * binding (RFC 9266 tls-exporter), which a man in the middle with a
 * certificate the client trusts cannot relay (docs/security.md 6.2).
 *
 * Token proofs on TLS are always bound (vbh_tokens.c), whatever the
 * setting. The setting decides the rest: SASL is offered and accepted only
 * as -PLUS mechanisms, and a connection that has no channel binding at all
 * (TLS 1.2 without the extended master secret) is turned away after its
 * handshake unless the certificate is the login (auth_tls "none"). */
#include "vbh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_log.h"
#include "vb_tls_cbind.h"

int vbh_cbind_required(const vbh_client *c)
{
    return c->lis->is_tls && c->srv->cfg->tls_require_cbind;
}

int vbh_cbind_missing(const vbh_client *c, vb_error *why)
{
    uint8_t cb[VB_TLS_CBIND_LEN];
    const vb_tls *tls = vb_stream_tls(c->stream);
    if (!tls)
        return 0;
    int missing = vb_tls_channel_binding(tls, cb, why) < 0;
    explicit_bzero(cb, sizeof cb);
    return missing;
}

int vbh_cbind_admit(const vbh_client *c, char *why, size_t len)
{
    vb_error no_cb;
    if (!vbh_cbind_required(c) || vbh_auth_list_has(c->lis->auth, VBH_AUTH_NONE) ||
        !vbh_cbind_missing(c, &no_cb))
        return 0;
    snprintf(why, len,
             "this vbhostd takes logins on TLS only with a channel binding (tls_require_cbind = 1 "
             "in its vbhostd.conf), and this connection has none: %s",
             no_cb.message);
    return -1;
}

int vbh_cbind_filter_mechs(const vbh_client *c, char **mechlist, vb_error *err)
{
    if (!vbh_cbind_required(c))
        return 0;
    char *bound = vb_sasl_plus_only(*mechlist, ',');
    if (!bound)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SASL, "out of memory");
    if (!*bound) {
        vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_SASL,
                     "this vbhostd takes SASL logins on TLS only with a channel-bound (-PLUS) "
                     "mechanism (tls_require_cbind = 1), and none of its mechanisms has one "
                     "(it has: %s); its operator can add SCRAM-SHA-256 to the SASL mech_list",
                     *mechlist);
        free(bound);
        return -1;
    }
    free(*mechlist);
    *mechlist = bound;
    return 0;
}

int vbh_cbind_check_mech(const vbh_client *c, const char *mech, vb_error *err)
{
    if (!vbh_cbind_required(c) || vb_sasl_mech_is_plus(mech))
        return 0;
    vb_log(VB_LOG_WARN, "client %s: refused SASL %s without channel binding (tls_require_cbind)",
           c->peer, mech);
    return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_SASL,
                        "this vbhostd takes SASL logins on TLS only with a channel-bound mechanism "
                        "(tls_require_cbind = 1): use a -PLUS one from its list "
                        "(SCRAM-SHA-256-PLUS, say), not %s",
                        mech);
}
