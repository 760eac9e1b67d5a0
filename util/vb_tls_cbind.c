/* The tls-exporter channel binding (vb_tls_cbind.h). */
#include "vb_tls_cbind.h"

#include <openssl/ssl.h>

int vb_tls_channel_binding(const vb_tls *t, uint8_t out[VB_TLS_CBIND_LEN], vb_error *err)
{
    SSL *ssl = t ? vb_tls_ssl(t) : NULL;
    if (!ssl)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_AUTH, "no TLS session to bind to");
    /* RFC 9266 section 2: with TLS 1.2 the exporter is unique to the
     * connection only under the extended master secret (RFC 7627) */
    if (SSL_version(ssl) < TLS1_3_VERSION && SSL_get_extms_support(ssl) != 1)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "this TLS 1.2 connection has no extended master secret, so it has no "
                            "channel binding (use TLS 1.3)");
    /* an empty context, not "no context" (RFC 9266; they differ under TLS 1.2) */
    static const uint8_t empty[1];
    return vb_tls_exporter(t, VB_TLS_CBIND_LABEL, empty, 0, out, VB_TLS_CBIND_LEN, err);
}
