/*
 * vb_tls_cbind.h — the channel binding of a TLS connection (RFC 9266
 * "tls-exporter"): what token proofs and SASL -PLUS mechanisms are bound to
 * (docs/protocol.md 9.3 and 9.7a, docs/security.md 6.2).
 */
#ifndef VB_TLS_CBIND_H
#define VB_TLS_CBIND_H

#include <stdint.h>

#include "vb_error.h"
#include "vb_tls.h"

#define VB_TLS_CBIND_TYPE "tls-exporter"
#define VB_TLS_CBIND_LABEL "EXPORTER-Channel-Binding"
#define VB_TLS_CBIND_LEN 32

/* The connection's tls-exporter value (label EXPORTER-Channel-Binding, no
 * context, 32 bytes). -1 (AUTH_UNAVAILABLE) on a TLS 1.2 connection without
 * the extended master secret, where the value is not safe to bind to. */
int vb_tls_channel_binding(const vb_tls *t, uint8_t out[VB_TLS_CBIND_LEN], vb_error *err);

#endif
