/*
 * vb_tls.h — the TLS layer under the framing (the +tls transport), OpenSSL.
 *
 * Both ends: certificates verified against a CA (and a CRL when there is
 * one), TLS 1.2 at least, 1.3 preferred. The client checks the server's
 * name (DNS or IP SAN) and sends a certificate when it has one; the server
 * asks for one, verifies it when sent, and leaves the policy (required, the
 * DN list) to its caller, which can then tell the client why it is refused.
 *
 * Errors are for a person: each names the file or setting to look at and
 * the peer. Nothing here logs, and no private key ever reaches a message.
 */
#ifndef VB_TLS_H
#define VB_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "vb_error.h"

#define VB_TLS_DEFAULT_PORT 16514
#define VB_TLS_PATH_MAX 1024

/* libvirt's layout, under vbroker names */
#define VB_TLS_SYSTEM_CA "/etc/pki/CA/cacert.pem"
#define VB_TLS_SYSTEM_CRL "/etc/pki/CA/cacrl.pem"
#define VB_TLS_SYSTEM_DIR "/etc/pki/vbroker"
#define VB_TLS_SERVER_CERT VB_TLS_SYSTEM_DIR "/servercert.pem"
#define VB_TLS_SERVER_KEY VB_TLS_SYSTEM_DIR "/private/serverkey.pem"
#define VB_TLS_CLIENT_CERT VB_TLS_SYSTEM_DIR "/clientcert.pem"
#define VB_TLS_CLIENT_KEY VB_TLS_SYSTEM_DIR "/private/clientkey.pem"

typedef struct vb_tls vb_tls;         /* one session over one socket */
typedef struct vb_tls_ctx vb_tls_ctx; /* a server's certificates and policy */

/* ---- client ---------------------------------------------------------------- */

/* The files a client uses: with pkipath, PKIPATH/{cacert,cacrl,clientcert,
 * clientkey}.pem; else, per file, $XDG_CONFIG_HOME/vbroker/pki/NAME (or
 * ~/.config/...) when it exists, else the system path. cert/key are "" when
 * this client has no certificate; crl "" without one. */
typedef struct vb_tls_client_files {
    char ca[VB_TLS_PATH_MAX];
    char crl[VB_TLS_PATH_MAX];
    char cert[VB_TLS_PATH_MAX];
    char key[VB_TLS_PATH_MAX];
} vb_tls_client_files;
int vb_tls_client_locate(const char *pkipath, vb_tls_client_files *out, vb_error *err);
/* The pkipath a connection without pkipath= uses in this process (vbhostd's
 * next_hop_pkipath); NULL: the default search above. Set once at start. */
void vb_tls_client_set_default_pkipath(const char *pkipath);

/* TLS over the connected socket fd (left non-blocking; the session owns
 * nothing but its own state: close fd after vb_tls_free). host is the name
 * dialled (checked against the certificate's DNS or IP SANs) and port is
 * for messages. no_verify: accept any certificate (the caller warns). */
int vb_tls_client_connect(int fd, const char *host, int port, const char *pkipath, int no_verify,
                          int timeout_ms, vb_tls **out, vb_error *err);
/* Blocking-with-deadline I/O on a client session. read: *got > 0 bytes, or
 * -1 (VB_ERR_TIMEOUT when nothing came within timeout_ms; PEER_CLOSED). */
int vb_tls_read(vb_tls *t, void *buf, size_t cap, int timeout_ms, size_t *got, vb_error *err);
int vb_tls_write_all(vb_tls *t, const void *buf, size_t len, int timeout_ms, vb_error *err);

/* ---- server ---------------------------------------------------------------- */

enum vb_tls_client_cert { VB_TLS_CLIENT_CERT_NONE, VB_TLS_CLIENT_CERT_OPTIONAL,
                          VB_TLS_CLIENT_CERT_REQUIRED };

typedef struct vb_tls_server_conf {
    const char *cert_file, *key_file, *ca_file;
    const char *crl_file;  /* NULL: none */
    int client_cert;       /* enum vb_tls_client_cert: ask for one (verified when sent) or not */
} vb_tls_server_conf;

/* Loads and checks every file (readable, the key matches the certificate);
 * errors name the file and the setting. */
vb_tls_ctx *vb_tls_server_ctx_new(const vb_tls_server_conf *conf, vb_error *err);
void vb_tls_ctx_free(vb_tls_ctx *ctx);
/* Reads crl_file (and ca_file with it) again, for the handshakes from now
 * on, resumed ones included (vb_tls_resume.h): 0, or -1 with err naming the
 * file, and the CRL read before stays in force. Nothing to do (0) without
 * a crl_file or client certificates. Not while a handshake of ctx runs on
 * another thread. */
int vb_tls_server_reload_crl(vb_tls_ctx *ctx, vb_error *err);
/* Messages of a server session begin "TLS: " (the caller names the client). */
vb_tls *vb_tls_server_new(vb_tls_ctx *ctx, int fd, vb_error *err);

/* Non-blocking steps on a server session (fd non-blocking). */
enum { VB_TLS_OK = 0, VB_TLS_WANT_READ = 1, VB_TLS_WANT_WRITE = 2 };
/* VB_TLS_OK when the handshake is complete, WANT_* to be called again when
 * the socket allows, -1 with err (why, naming the server's files). */
int vb_tls_handshake(vb_tls *t, vb_error *err);
/* recv: VB_TLS_OK with *got > 0, WANT_*, or -1 (PEER_CLOSED at the end). */
int vb_tls_recv(vb_tls *t, void *buf, size_t cap, size_t *got, vb_error *err);
/* send: VB_TLS_OK with *sent > 0 (maybe less than len), WANT_*, or -1. */
int vb_tls_send(vb_tls *t, const void *buf, size_t len, size_t *sent, vb_error *err);

/* ---- both ------------------------------------------------------------------ */

/* Decrypted bytes held inside the session (poll on the socket will not
 * announce them). */
int vb_tls_pending(const vb_tls *t);
/* The cipher's strength in bits (what counts for tcp_min_ssf). */
unsigned vb_tls_ssf(const vb_tls *t);
const char *vb_tls_version(const vb_tls *t);
/* The peer certificate's subject DN, RFC 4514 characters in certificate
 * order ("C=GB,O=Example,CN=client1", as libvirt's tls_allowed_dn_list
 * patterns are written): 1 and buf filled, or 0 without a certificate. */
int vb_tls_peer_dn(const vb_tls *t, char *buf, size_t len);
/* RFC 5705 / 8446 keying material exporter (RFC 9266 tls-exporter uses
 * label "EXPORTER-Channel-Binding", no context, 32 bytes). */
int vb_tls_exporter(const vb_tls *t, const char *label, const uint8_t *context,
                    size_t context_len, uint8_t *out, size_t out_len, vb_error *err);
/* The OpenSSL session (SSL *), for channel binding and resumption. */
void *vb_tls_ssl(const vb_tls *t);
/* 1 when the peer's certificate was not verified (client no_verify=1). */
int vb_tls_unverified(const vb_tls *t);
/* 1 when this client sent a certificate. */
int vb_tls_sent_cert(const vb_tls *t);
/* Frees the session (a close_notify is attempted, never waited for). */
void vb_tls_free(vb_tls *t);

/* tls_allowed_dn_list: dn matches one of the fnmatch patterns. */
int vb_tls_dn_allowed(const char *dn, char *const *patterns, size_t n);

#endif
