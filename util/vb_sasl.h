/*
 * vb_sasl.h — cyrus-sasl sessions for both ends, and the security layer.
 *
 * Installs real pthread mutexes (sasl_set_mutex) before any init: without
 * them concurrent logins corrupt the library's state. Client interactions
 * are gathered into ONE vb_cred_request per round, so the person at the top
 * sees one form. Secrets from interactions are wiped after each step.
 */
#ifndef VB_SASL_H
#define VB_SASL_H

#include <stddef.h>
#include <stdint.h>

#include "vb_cred.h"
#include "vb_error.h"

#define VB_SASL_MAX_MECHLIST 4096
#define VB_SASL_MAX_DATA     (16u * 1024u)  /* one START/STEP payload */

typedef struct vb_sasl vb_sasl;

enum vb_sasl_progress { VB_SASL_CONTINUE = 0, VB_SASL_COMPLETE = 1 };

/* Process-wide setup. The server reads CONF_DIR/APP.conf (sasldb path,
 * mech_list, keytab); conf_dir may be NULL for the system default. */
int vb_sasl_server_init(const char *app, const char *conf_dir, vb_error *err);
int vb_sasl_client_init(vb_error *err);

/* fd gives the local/remote addresses; min_ssf is the required security
 * strength (0 on unix sockets, tcp_min_ssf on plain TCP). */
vb_sasl *vb_sasl_server_new(const char *service, const char *fqdn, const char *realm, int fd,
                            unsigned min_ssf, vb_error *err);
/* cred_types: the credential types the caller can answer (others disable
 * the mechanisms that need them, as libvirt does). */
vb_sasl *vb_sasl_client_new(const char *service, const char *host, int fd, unsigned min_ssf,
                            const int *cred_types, size_t ncred_types, vb_error *err);
void vb_sasl_free(vb_sasl *s);

/* The SSF of DIGEST-MD5's 3DES layer (two-key triple DES). */
#define VB_SASL_3DES_SSF 112u
/* DIGEST-MD5's 3DES layer works in this process (util/vb_sasl_des.c: the
 * executable carries the fix for Debian's plugin under OpenSSL 3). */
int vb_sasl_3des_usable(void);
/* Client: the server can do 3DES too (its AUTH_LIST said so): if the
 * mechanism becomes DIGEST-MD5 and min_ssf allows, ask for at most ssf 112,
 * so the plugin picks 3DES instead of RC4 (RC4's biases, and the per-login
 * cost and leak of Debian's plugin: docs/security.md). Call before the
 * start; without it, and in a process where 3DES does not work, the
 * strongest layer offered is taken, as before. */
void vb_sasl_client_prefer_3des(vb_sasl *s);
/* The transport below already protects the connection with ssf bits (TLS):
 * it counts toward min_ssf, so mechanisms without a layer (SCRAM) qualify.
 * Call before the mechanism list is asked for. */
void vb_sasl_set_external_ssf(vb_sasl *s, unsigned ssf);

/* The channel binding of the connection under this session (RFC 9266
 * "tls-exporter" on TLS: docs/security.md), set before the first start.
 * A server then also offers the -PLUS mechanisms, and Cyrus's SCRAM refuses a
 * client that has a channel binding but thinks the server has none (the
 * "y" flag: a downgrade). A client with one uses only -PLUS mechanisms: a
 * mechanism without the binding can be relayed by a man in the middle. */
#define VB_SASL_CBIND_MAX 64
int vb_sasl_set_channel_binding(vb_sasl *s, const char *type, const uint8_t *data, size_t len,
                                vb_error *err);

/* Server side. *sasl_rc (optional) receives cyrus's return code so the
 * daemon log can tell a wrong password (SASL_BADAUTH) from an unknown user
 * (SASL_NOUSER); the client only ever sees "authentication failed". */
int vb_sasl_server_mechlist(vb_sasl *s, char **mechlist, vb_error *err);
int vb_sasl_server_start(vb_sasl *s, const char *mech, const uint8_t *in, size_t inlen,
                         const uint8_t **out, size_t *outlen, int *sasl_rc, vb_error *err);
int vb_sasl_server_step(vb_sasl *s, const uint8_t *in, size_t inlen, const uint8_t **out,
                        size_t *outlen, int *sasl_rc, vb_error *err);

/* Client side: interactions are answered through cred_fn (one request per
 * round); service names the login for the person ("vbhostd on HOST"). */
typedef struct vb_sasl_prompter {
    vb_cred_fn fn;
    void *opaque;
    const char *service;
    int retry;
    const vb_cred_target *target;   /* the login's target (kind vbhostd); may be NULL */
} vb_sasl_prompter;

int vb_sasl_client_start(vb_sasl *s, const char *mechlist, const vb_sasl_prompter *prompter,
                         const char **mech, const uint8_t **out, size_t *outlen, vb_error *err);
int vb_sasl_client_step(vb_sasl *s, const uint8_t *in, size_t inlen,
                        const vb_sasl_prompter *prompter, const uint8_t **out, size_t *outlen,
                        vb_error *err);

/* Client: the last request answered (its results are what was sent), or
 * NULL when the mechanism asked nothing. Valid until the next step. */
const vb_cred_request *vb_sasl_last_request(const vb_sasl *s);

/* After completion. */
unsigned vb_sasl_ssf(vb_sasl *s);
const char *vb_sasl_username(vb_sasl *s);
/* The authentication name the client gave (known user or not), also after a
 * failed exchange; NULL when the exchange never got that far. */
const char *vb_sasl_authname(vb_sasl *s);
/* The mechanism as the server saw it: X-PLUS when it was channel-bound. */
const char *vb_sasl_mech(vb_sasl *s);
/* After vb_sasl_set_channel_binding: make it critical, so that Cyrus
 * refuses a client that does not bind (a SCRAM "n" or "y" flag), also
 * under a -PLUS name. */
int vb_sasl_require_channel_binding(vb_sasl *s, vb_error *err);
/* 1 when mech is a channel-bound name (ends in -PLUS). */
int vb_sasl_mech_is_plus(const char *mech);
/* The -PLUS names of mechlist (separated by "," or " "), joined by sep:
 * malloc'd, "" when there are none; NULL when out of memory. */
char *vb_sasl_plus_only(const char *mechlist, char sep);

/* Security layer: encode splits input at SASL_MAXOUTBUF; decode accepts
 * any chunk of received bytes (cyrus reassembles packets). Outputs are
 * malloc'd (decode may return 0 bytes while a packet is incomplete). */
int vb_sasl_encode(vb_sasl *s, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                   vb_error *err);
int vb_sasl_decode(vb_sasl *s, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                   vb_error *err);

#endif
