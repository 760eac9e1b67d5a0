/* TLS sessions for the +tls transport (vb_tls.h). OpenSSL does the
 * protocol and the verification; this file chooses the policy (versions,
 * names, files) and turns OpenSSL's verdicts into sentences. */
#include "vb_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vb_net.h"
#include "vb_tls_resume.h"

#define SUBJECT_MAX 256

struct vb_tls_ctx {
    SSL_CTX *ssl_ctx;
    int verifies; /* asks for client certificates: its store holds ca_file (and crl_file) */
    char cert_file[VB_TLS_PATH_MAX], ca_file[VB_TLS_PATH_MAX], crl_file[VB_TLS_PATH_MAX];
};

struct vb_tls {
    SSL *ssl;
    int fd;
    int is_server;
    int no_verify;
    int sent_cert;
    char peer[300];                   /* messages begin with it: "vbhostd at HOST:PORT", "TLS" */
    vb_tls_client_files files;        /* client: what it used */
    const vb_tls_ctx *ctx;            /* server: its files, for messages */
    /* the first verification failure, kept for the message */
    int verr;
    char vsubject[SUBJECT_MAX];       /* the certificate that failed */
    char vnames[SUBJECT_MAX];         /* its DNS/IP names (name mismatch) */
    char vnot_after[64], vnot_before[64];
};

/* ---- the socket under a session ------------------------------------------------ */

/* OpenSSL's own socket BIO writes with write(): a peer gone away would
 * raise SIGPIPE in a client application. This one sends with MSG_NOSIGNAL. */
static int sock_bio_write(BIO *b, const char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)n;
}

static int sock_bio_read(BIO *b, char *buf, int len)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = recv(fd, buf, (size_t)len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_read(b);
    return (int)n;
}

static long sock_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *sock_method;

static void sock_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vb socket");
    if (m && (BIO_meth_set_write(m, sock_bio_write) != 1 || BIO_meth_set_read(m, sock_bio_read) != 1 ||
              BIO_meth_set_ctrl(m, sock_bio_ctrl) != 1)) {
        BIO_meth_free(m);
        m = NULL;
    }
    sock_method = m;
}

/* The session reads and writes fd through the BIO above. */
static int attach_fd(SSL *ssl, int fd)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sock_method_make);
    BIO *b = sock_method ? BIO_new(sock_method) : NULL;
    if (!b)
        return -1;
    BIO_set_data(b, (void *)(intptr_t)fd);
    BIO_set_init(b, 1);
    SSL_set_bio(ssl, b, b);
    return 0;
}

/* ---- small helpers ---------------------------------------------------------- */

static int file_exists(const char *path)
{
    struct stat sb;
    return path && *path && stat(path, &sb) == 0;
}

/* NAME=value,... in certificate order, as libvirt's DN lists are written */
static void name_string(X509_NAME *name, char *buf, size_t len)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV) >= 0) {
        int n = BIO_read(b, buf, (int)len - 1);
        buf[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

static void time_string(const ASN1_TIME *t, char *buf, size_t len)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (t && ASN1_TIME_print(b, t)) {
        int n = BIO_read(b, buf, (int)len - 1);
        buf[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
}

/* "DNS:a, IP:127.0.0.1, CN=x": what names a certificate is for */
static void cert_names(X509 *cert, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && used < len; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char one[INET6_ADDRSTRLEN + 8] = "";
        if (g->type == GEN_DNS)
            snprintf(one, sizeof one, "DNS:%.*s", ASN1_STRING_length(g->d.dNSName) > 40
                                                      ? 40 : ASN1_STRING_length(g->d.dNSName),
                     (const char *)ASN1_STRING_get0_data(g->d.dNSName));
        else if (g->type == GEN_IPADD) {
            char ip[INET6_ADDRSTRLEN] = "?";
            int alen = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            inet_ntop(alen == 16 ? AF_INET6 : AF_INET, a, ip, sizeof ip);
            snprintf(one, sizeof one, "IP:%s", ip);
        }
        if (one[0])
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", one);
    }
    GENERAL_NAMES_free(sans);
    if (used < len) {
        char cn[128] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
        if (cn[0])
            snprintf(buf + used, len - used, "%sCN=%s", used ? ", " : "", cn);
    }
}

/* Keeps the first failure's details; the verdict stays OpenSSL's. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    vb_tls *t = ssl ? SSL_get_app_data(ssl) : NULL;
    if (!ok && t && !t->verr) {
        X509 *cert = X509_STORE_CTX_get_current_cert(x);
        t->verr = X509_STORE_CTX_get_error(x);
        if (cert) {
            name_string(X509_get_subject_name(cert), t->vsubject, sizeof t->vsubject);
            cert_names(cert, t->vnames, sizeof t->vnames);
            time_string(X509_get0_notAfter(cert), t->vnot_after, sizeof t->vnot_after);
            time_string(X509_get0_notBefore(cert), t->vnot_before, sizeof t->vnot_before);
        }
    }
    return ok;
}

static int load_crl(X509_STORE *st, const char *path)
{
    X509_LOOKUP *lu = st ? X509_STORE_add_lookup(st, X509_LOOKUP_file()) : NULL;
    if (!lu || X509_load_crl_file(lu, path, X509_FILETYPE_PEM) <= 0)
        return -1;
    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    return 0;
}

static void openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "no detail from OpenSSL");
    ERR_clear_error();
}

static SSL_CTX *ctx_common(const SSL_METHOD *method, vb_error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SYSTEM, "cannot make a TLS context");
        return NULL;
    }
    /* 1.2 at least; OpenSSL offers 1.3 first */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

/* A file a setting names must be there and readable: say which. */
static int need_file(const char *path, const char *what, vb_error *err)
{
    FILE *f = path && *path ? fopen(path, "re") : NULL;
    if (f) {
        fclose(f);
        return 0;
    }
    return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s %s: cannot read it: %s", what,
                        path && *path ? path : "(not set)", strerror(path && *path ? errno : ENOENT));
}

/* ---- what went wrong, for a person ------------------------------------------------ */

/* The peer's certificate failed our verification. */
static int explain_verify(const vb_tls *t, vb_error *err)
{
    const char *subj = t->vsubject[0] ? t->vsubject : "(no subject)";
    int code = t->is_server ? VB_ERR_AUTH_FAILED : VB_ERR_HOST_KEY;
    int dom = t->is_server ? VB_DOM_AUTH : VB_DOM_CLIENT;
    const char *whose = t->is_server ? "the client's certificate" : "the server's certificate";
    const char *ca = t->is_server ? t->ctx->ca_file : t->files.ca;
    const char *crl = t->is_server ? t->ctx->crl_file : t->files.crl;
    const char *ca_what = t->is_server ? "ca_file" : "CA file";
    switch (t->verr) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return vb_error_set(err, code, dom,
                            "%s: %s (%s) is not signed by a CA this %s trusts (%s %s)", t->peer,
                            whose, subj, t->is_server ? "server" : "client", ca_what, ca);
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return vb_error_set(err, code, dom, "%s: %s (%s) expired on %s; %s", t->peer, whose, subj,
                            t->vnot_after,
                            t->is_server ? "the client needs a new one"
                                         : "the server's operator must renew its cert_file");
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return vb_error_set(err, code, dom, "%s: %s (%s) is not valid before %s (check the clocks)",
                            t->peer, whose, subj, t->vnot_before);
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return vb_error_set(err, code, dom,
                            "%s: the server's certificate is for %s, not for the name this client "
                            "dialled; connect with a name the certificate lists, or have the "
                            "server's cert_file reissued with this name",
                            t->peer, t->vnames[0] ? t->vnames : subj);
    case X509_V_ERR_CERT_REVOKED:
        return vb_error_set(err, code, dom, "%s: %s (%s) is revoked (%s %s)", t->peer, whose, subj,
                            t->is_server ? "crl_file" : "CRL file", crl[0] ? crl : "?");
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        return vb_error_set(err, code, dom, "%s: no CRL from the CA of %s (%s) in %s", t->peer,
                            whose, subj, crl);
    default:
        return vb_error_set(err, code, dom, "%s: %s (%s) failed verification: %s (%s %s)", t->peer,
                            whose, subj, X509_verify_cert_error_string(t->verr), ca_what, ca);
    }
}

/* The peer refused us with an alert, or the bytes were not TLS. */
static int explain_ssl_error(const vb_tls *t, vb_error *err)
{
    unsigned long e = ERR_peek_last_error();
    int reason = ERR_GET_REASON(e);
    char detail[256];
    openssl_reason(detail, sizeof detail);
    const char *mine = t->is_server ? t->ctx->cert_file : t->files.cert;
    int code = t->is_server ? VB_ERR_NO_CONNECT : VB_ERR_AUTH_FAILED;
    int dom = t->is_server ? VB_DOM_RPC : VB_DOM_AUTH;
    const char *other = t->is_server ? "the client" : "the server";
    switch (reason) {
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return vb_error_set(err, code, dom,
                            "%s: %s requires a client certificate and this client sent none "
                            "(it looks for clientcert.pem and clientkey.pem in pkipath=, "
                            "$XDG_CONFIG_HOME/vbroker/pki/ or " VB_TLS_SYSTEM_DIR ")",
                            t->peer, other);
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        return vb_error_set(err, code, dom, "%s: %s says this side's certificate %s is revoked",
                            t->peer, other, mine[0] ? mine : "(none)");
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        return vb_error_set(err, code, dom, "%s: %s says this side's certificate %s has expired",
                            t->peer, other, mine[0] ? mine : "(none)");
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        return vb_error_set(err, code, dom,
                            "%s: %s does not trust the CA that signed this side's certificate %s "
                            "(%s)",
                            t->peer, other, mine[0] ? mine : "(none)",
                            t->is_server ? "the client's cacert.pem must be that CA"
                                         : "the server's ca_file must be that CA");
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        return vb_error_set(err, code, dom,
                            "%s: %s refused this side's certificate %s (%s)%s", t->peer, other,
                            mine[0] ? mine : "(none)", detail,
                            t->is_server ? "; a client refuses a server certificate whose names "
                                           "(cert_file) do not include the name it dialled"
                                         : "");
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_RPC,
                            "%s: %s does not speak TLS (is that a listen_tcp port rather than "
                            "listen_tls?) [%s]",
                            t->peer, other, detail);
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_RPC,
                            "%s: no TLS version in common (vbroker needs TLS 1.2 or later) [%s]",
                            t->peer, detail);
    default:
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_RPC, "%s: TLS failed: %s", t->peer,
                            detail);
    }
}

/* After an SSL_* call returned rc <= 0: -1 with err, or WANT_*. */
static int classify(vb_tls *t, int rc, int in_handshake, vb_error *err)
{
    int e = SSL_get_error(t->ssl, rc);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        return VB_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return VB_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_RPC, "%s closed the TLS connection",
                            t->is_server ? "the client" : "the server");
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_last_error())
            break;
        if (errno && errno != EPIPE && errno != ECONNRESET)
            return vb_error_set_errno(err, errno, VB_DOM_RPC, "%s: TLS", t->peer);
        return vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_RPC,
                            "%s: %s closed the connection%s", t->peer,
                            t->is_server ? "the client" : "the server",
                            in_handshake ? " during the TLS handshake (it may have refused this "
                                           "side's certificate or TLS version)"
                                         : "");
    default:
        break;
    }
    if (t->verr && (t->no_verify == 0))
        return explain_verify(t, err);
    return explain_ssl_error(t, err);
}

/* ---- client -------------------------------------------------------------------- */

static void user_pki_dir(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (xdg && xdg[0] == '/') {
        snprintf(buf, len, "%s/vbroker/pki", xdg);
        return;
    }
    if (!home || home[0] != '/') {
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
    }
    snprintf(buf, len, "%s/.config/vbroker/pki", home ? home : "/nonexistent");
}

/* The user's file when it exists (not for root, as libvirt), else the system's. */
static void pick(char *out, const char *user_dir, const char *name, const char *system)
{
    char mine[VB_TLS_PATH_MAX];
    snprintf(mine, sizeof mine, "%s/%s", user_dir, name);
    snprintf(out, VB_TLS_PATH_MAX, "%s", user_dir[0] && file_exists(mine) ? mine : system);
}

static char default_pkipath[VB_TLS_PATH_MAX];

void vb_tls_client_set_default_pkipath(const char *pkipath)
{
    snprintf(default_pkipath, sizeof default_pkipath, "%s", pkipath ? pkipath : "");
}

int vb_tls_client_locate(const char *pkipath, vb_tls_client_files *f, vb_error *err)
{
    char dir[VB_TLS_PATH_MAX] = "";
    memset(f, 0, sizeof *f);
    if (!pkipath || !*pkipath)
        pkipath = default_pkipath;
    if (pkipath && *pkipath) {
        if (strlen(pkipath) + sizeof "/clientcert.pem" > VB_TLS_PATH_MAX)
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT,
                                "pkipath is longer than %d bytes", VB_TLS_PATH_MAX - 16);
        int n = (int)strlen(pkipath);
        snprintf(f->ca, sizeof f->ca, "%.*s/cacert.pem", n, pkipath);
        snprintf(f->crl, sizeof f->crl, "%.*s/cacrl.pem", n, pkipath);
        snprintf(f->cert, sizeof f->cert, "%.*s/clientcert.pem", n, pkipath);
        snprintf(f->key, sizeof f->key, "%.*s/clientkey.pem", n, pkipath);
    } else {
        if (geteuid() != 0)
            user_pki_dir(dir, sizeof dir);
        pick(f->ca, dir, "cacert.pem", VB_TLS_SYSTEM_CA);
        pick(f->crl, dir, "cacrl.pem", VB_TLS_SYSTEM_CRL);
        pick(f->cert, dir, "clientcert.pem", VB_TLS_CLIENT_CERT);
        pick(f->key, dir, "clientkey.pem", VB_TLS_CLIENT_KEY);
    }
    if (!file_exists(f->crl))
        f->crl[0] = '\0';
    int have_cert = file_exists(f->cert), have_key = file_exists(f->key);
    if (have_cert && !have_key)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CLIENT,
                            "client certificate %s has no private key: %s is missing", f->cert,
                            f->key);
    if (!have_cert)
        f->cert[0] = f->key[0] = '\0';
    return 0;
}

/* The private key for the certificate already loaded: errors name the
 * files (never the key's contents). key_what/cert_what: "key_file" or
 * "client key", and so on. */
static int load_key(SSL_CTX *ctx, const char *key, const char *cert, const char *key_what,
                    const char *cert_what, int dom, vb_error *err)
{
    int ok = SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1;
    int mismatch = !ok && ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    if (ok && SSL_CTX_check_private_key(ctx) != 1)
        ok = 0, mismatch = 1;
    ERR_clear_error();
    if (ok)
        return 0;
    if (mismatch)
        return vb_error_set(err, VB_ERR_CONFIG, dom, "%s %s does not belong to %s %s", key_what,
                            key, cert_what, cert);
    return vb_error_set(err, VB_ERR_CONFIG, dom,
                        "%s %s: not an unencrypted PEM private key OpenSSL can read", key_what,
                        key);
}

static int client_ctx_files(SSL_CTX *ctx, const vb_tls_client_files *f, int no_verify,
                            vb_error *err)
{
    char detail[256];
    if (!no_verify) {
        if (!file_exists(f->ca))
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CLIENT,
                                "no CA certificate to verify the server with: %s does not exist "
                                "(put the CA's certificate there, or name a directory holding "
                                "cacert.pem with pkipath=)",
                                f->ca);
        if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1) {
            openssl_reason(detail, sizeof detail);
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CLIENT,
                                "CA file %s: not a PEM certificate OpenSSL can read (%s)", f->ca,
                                detail);
        }
        if (f->crl[0] && load_crl(SSL_CTX_get_cert_store(ctx), f->crl) < 0) {
            openssl_reason(detail, sizeof detail);
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CLIENT,
                                "CRL file %s: not a PEM CRL OpenSSL can read (%s)", f->crl, detail);
        }
    }
    if (!f->cert[0])
        return 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
        openssl_reason(detail, sizeof detail);
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CLIENT,
                            "client certificate %s: not a PEM certificate OpenSSL can read (%s)",
                            f->cert, detail);
    }
    return load_key(ctx, f->key, f->cert, "client key", "client certificate", VB_DOM_CLIENT, err);
}

/* host as dialled: an IP literal (maybe "[v6]") is checked against IP SANs */
static int set_peer_name(SSL *ssl, const char *host)
{
    char bare[256];
    size_t n = strlen(host);
    if (host[0] == '[' && n > 2 && host[n - 1] == ']')
        snprintf(bare, sizeof bare, "%.*s", (int)(n - 2), host + 1);
    else
        snprintf(bare, sizeof bare, "%s", host);
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    unsigned char buf[16];
    if (inet_pton(AF_INET, bare, buf) == 1 || inet_pton(AF_INET6, bare, buf) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(param, bare) == 1 ? 0 : -1;
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, bare, 0) != 1)
        return -1;
    SSL_set_tlsext_host_name(ssl, bare); /* SNI */
    return 0;
}

static int remaining_ms(const struct timespec *start, int timeout_ms)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long spent = (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
    return spent >= timeout_ms ? 0 : timeout_ms - (int)spent;
}

/* Wait for what OpenSSL wants, until the deadline: 0, or -1 (TIMEOUT). */
static int wait_for(const vb_tls *t, int want, const struct timespec *start, int timeout_ms,
                    const char *doing, vb_error *err)
{
    struct pollfd p = { .fd = t->fd, .events = want == VB_TLS_WANT_WRITE ? POLLOUT : POLLIN };
    for (;;) {
        int left = timeout_ms < 0 ? -1 : remaining_ms(start, timeout_ms);
        int rc = poll(&p, 1, left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return vb_error_set_errno(err, errno, VB_DOM_RPC, "poll");
        return vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_RPC, "%s: %s within %d ms", t->peer, doing,
                            timeout_ms);
    }
}

/* Resumption (vb_tls_resume.h): the session is remembered under everything
 * the first handshake's checks depended on, so it is offered only where they
 * would pass again. */
static void resume_client(SSL_CTX *ctx, vb_tls *t, const char *host, int port)
{
    char key[VB_TLS_RESUME_KEY_MAX];
    int n = snprintf(key, sizeof key, "%s|%d|%d|%s|%s|%s|%s", host ? host : "", port, t->no_verify,
                     t->files.ca, t->files.crl, t->files.cert, t->files.key);
    if (n > 0 && (size_t)n < sizeof key)
        vb_tls_resume_client(ctx, t->ssl, key);
}

int vb_tls_client_connect(int fd, const char *host, int port, const char *pkipath, int no_verify,
                          int timeout_ms, vb_tls **out, vb_error *err)
{
    *out = NULL;
    vb_tls *t = calloc(1, sizeof *t);
    if (!t)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    t->fd = fd;
    t->no_verify = no_verify;
    snprintf(t->peer, sizeof t->peer, "vbhostd at %s:%d", host ? host : "?", port);
    SSL_CTX *ctx = NULL;
    if (vb_tls_client_locate(pkipath, &t->files, err) < 0 ||
        !(ctx = ctx_common(TLS_client_method(), err)) ||
        client_ctx_files(ctx, &t->files, no_verify, err) < 0)
        goto fail;
    t->ssl = SSL_new(ctx);
    if (!t->ssl || attach_fd(t->ssl, fd) < 0 || (host && set_peer_name(t->ssl, host) < 0)) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "cannot set up a TLS session");
        goto fail;
    }
    SSL_set_app_data(t->ssl, t);
    SSL_set_verify(t->ssl, no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, verify_cb);
    resume_client(ctx, t, host, port);
    SSL_CTX_free(ctx); /* the session holds its own reference */
    ctx = NULL;
    t->sent_cert = t->files.cert[0] != '\0';
    vb_net_set_nonblock(fd, 1);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        ERR_clear_error();
        errno = 0; /* SSL_ERROR_SYSCALL reads it */
        int rc = SSL_connect(t->ssl);
        if (rc == 1)
            break;
        int st = classify(t, rc, 1, err);
        if (st < 0 || wait_for(t, st, &start, timeout_ms, "no TLS handshake", err) < 0)
            goto fail;
    }
    *out = t;
    return 0;
fail:
    SSL_CTX_free(ctx);
    vb_tls_free(t);
    return -1;
}

int vb_tls_read(vb_tls *t, void *buf, size_t cap, int timeout_ms, size_t *got, vb_error *err)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    *got = 0;
    for (;;) {
        ERR_clear_error();
        errno = 0; /* SSL_ERROR_SYSCALL reads it */
        int rc = SSL_read(t->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
        if (rc > 0) {
            *got = (size_t)rc;
            return 0;
        }
        int st = classify(t, rc, 0, err);
        if (st < 0)
            return -1;
        if (wait_for(t, st, &start, timeout_ms, "no answer", err) < 0) {
            if (err && err->code == VB_ERR_TIMEOUT)
                vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_RPC,
                             "no answer from the server within %d ms", timeout_ms);
            return -1;
        }
    }
}

int vb_tls_write_all(vb_tls *t, const void *buf, size_t len, int timeout_ms, vb_error *err)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    const uint8_t *p = buf;
    while (len > 0) {
        ERR_clear_error();
        errno = 0; /* SSL_ERROR_SYSCALL reads it */
        int rc = SSL_write(t->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (rc > 0) {
            p += rc;
            len -= (size_t)rc;
            continue;
        }
        int st = classify(t, rc, 0, err);
        if (st < 0 || wait_for(t, st, &start, timeout_ms, "could not send", err) < 0)
            return -1;
    }
    return 0;
}

/* ---- server -------------------------------------------------------------------- */

vb_tls_ctx *vb_tls_server_ctx_new(const vb_tls_server_conf *conf, vb_error *err)
{
    char detail[256];
    vb_tls_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory");
        return NULL;
    }
    snprintf(c->cert_file, sizeof c->cert_file, "%s", conf->cert_file ? conf->cert_file : "");
    snprintf(c->ca_file, sizeof c->ca_file, "%s", conf->ca_file ? conf->ca_file : "");
    snprintf(c->crl_file, sizeof c->crl_file, "%s", conf->crl_file ? conf->crl_file : "");
    if (need_file(conf->cert_file, "cert_file", err) < 0 ||
        need_file(conf->key_file, "key_file", err) < 0 ||
        (conf->client_cert != VB_TLS_CLIENT_CERT_NONE && need_file(conf->ca_file, "ca_file", err) < 0) ||
        (c->crl_file[0] && need_file(conf->crl_file, "crl_file", err) < 0) ||
        !(c->ssl_ctx = ctx_common(TLS_server_method(), err)))
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, conf->cert_file) != 1) {
        openssl_reason(detail, sizeof detail);
        vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                     "cert_file %s: not a PEM certificate OpenSSL can read (%s)", conf->cert_file,
                     detail);
        goto fail;
    }
    if (load_key(c->ssl_ctx, conf->key_file, conf->cert_file, "key_file", "cert_file",
                 VB_DOM_CONFIG, err) < 0)
        goto fail;
    if (conf->client_cert != VB_TLS_CLIENT_CERT_NONE) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->ca_file);
        if (SSL_CTX_load_verify_locations(c->ssl_ctx, conf->ca_file, NULL) != 1 || !names) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            openssl_reason(detail, sizeof detail);
            vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                         "ca_file %s: not a PEM certificate OpenSSL can read (%s)", conf->ca_file,
                         detail);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(c->ssl_ctx, names);
        if (c->crl_file[0] && load_crl(SSL_CTX_get_cert_store(c->ssl_ctx), c->crl_file) < 0) {
            openssl_reason(detail, sizeof detail);
            vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                         "crl_file %s: not a PEM CRL OpenSSL can read (%s)", c->crl_file, detail);
            goto fail;
        }
        /* ask for a certificate; whether one is required is the caller's
         * policy (it can then tell the client in words) */
        SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, verify_cb);
        c->verifies = 1;
    }
    static const unsigned char sid_ctx[] = "vbhostd";
    SSL_CTX_set_session_id_context(c->ssl_ctx, sid_ctx, sizeof sid_ctx - 1);
    vb_tls_resume_server(c->ssl_ctx); /* tickets for the daemon's life */
    return c;
fail:
    vb_tls_ctx_free(c);
    return NULL;
}

int vb_tls_server_reload_crl(vb_tls_ctx *ctx, vb_error *err)
{
    char detail[256];
    if (!ctx->verifies || !ctx->crl_file[0])
        return 0;
    /* a new store (the CA and the CRL as the files say now), swapped in
     * whole: a failure leaves the one in use untouched */
    X509_STORE *st = X509_STORE_new();
    if (!st)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory");
    if (X509_STORE_load_file(st, ctx->ca_file) != 1) {
        openssl_reason(detail, sizeof detail);
        X509_STORE_free(st);
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "ca_file %s: not a PEM certificate OpenSSL can read (%s)",
                            ctx->ca_file, detail);
    }
    if (need_file(ctx->crl_file, "crl_file", err) < 0) {
        X509_STORE_free(st);
        return -1;
    }
    if (load_crl(st, ctx->crl_file) < 0) {
        openssl_reason(detail, sizeof detail);
        X509_STORE_free(st);
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "crl_file %s: not a PEM CRL OpenSSL can read (%s)", ctx->crl_file,
                            detail);
    }
    SSL_CTX_set_cert_store(ctx->ssl_ctx, st); /* frees the old store */
    return 0;
}

void vb_tls_ctx_free(vb_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

vb_tls *vb_tls_server_new(vb_tls_ctx *ctx, int fd, vb_error *err)
{
    vb_tls *t = calloc(1, sizeof *t);
    if (!t || !(t->ssl = SSL_new(ctx->ssl_ctx)) || attach_fd(t->ssl, fd) < 0) {
        vb_tls_free(t);
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "cannot set up a TLS session");
        return NULL;
    }
    t->fd = fd;
    t->is_server = 1;
    t->ctx = ctx;
    /* the daemon's log line names the client already */
    snprintf(t->peer, sizeof t->peer, "TLS");
    SSL_set_app_data(t->ssl, t);
    return t;
}

int vb_tls_handshake(vb_tls *t, vb_error *err)
{
    ERR_clear_error();
    errno = 0; /* SSL_ERROR_SYSCALL reads it */
    int rc = SSL_accept(t->ssl);
    return rc == 1 ? VB_TLS_OK : classify(t, rc, 1, err);
}

int vb_tls_recv(vb_tls *t, void *buf, size_t cap, size_t *got, vb_error *err)
{
    *got = 0;
    ERR_clear_error();
    errno = 0; /* SSL_ERROR_SYSCALL reads it */
    int rc = SSL_read(t->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (rc > 0) {
        *got = (size_t)rc;
        return VB_TLS_OK;
    }
    return classify(t, rc, 0, err);
}

int vb_tls_send(vb_tls *t, const void *buf, size_t len, size_t *sent, vb_error *err)
{
    *sent = 0;
    ERR_clear_error();
    errno = 0; /* SSL_ERROR_SYSCALL reads it */
    int rc = SSL_write(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (rc > 0) {
        *sent = (size_t)rc;
        return VB_TLS_OK;
    }
    return classify(t, rc, 0, err);
}

/* ---- both ---------------------------------------------------------------------- */

int vb_tls_pending(const vb_tls *t)
{
    return t && SSL_pending(t->ssl) > 0;
}

unsigned vb_tls_ssf(const vb_tls *t)
{
    int bits = t ? SSL_get_cipher_bits(t->ssl, NULL) : 0;
    return bits > 0 ? (unsigned)bits : 0;
}

const char *vb_tls_version(const vb_tls *t)
{
    return t ? SSL_get_version(t->ssl) : "";
}

int vb_tls_peer_dn(const vb_tls *t, char *buf, size_t len)
{
    buf[0] = '\0';
    X509 *cert = t ? SSL_get0_peer_certificate(t->ssl) : NULL;
    if (!cert)
        return 0;
    name_string(X509_get_subject_name(cert), buf, len);
    return 1;
}

int vb_tls_exporter(const vb_tls *t, const char *label, const uint8_t *context,
                    size_t context_len, uint8_t *out, size_t out_len, vb_error *err)
{
    if (!t || SSL_export_keying_material(t->ssl, out, out_len, label, strlen(label), context,
                                         context_len, context != NULL) != 1) {
        ERR_clear_error();
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_AUTH,
                            "no TLS keying material to bind to");
    }
    return 0;
}

void *vb_tls_ssl(const vb_tls *t) { return t ? t->ssl : NULL; }
int vb_tls_unverified(const vb_tls *t) { return t && t->no_verify; }
int vb_tls_sent_cert(const vb_tls *t) { return t && t->sent_cert; }

void vb_tls_free(vb_tls *t)
{
    if (!t)
        return;
    if (t->ssl) {
        /* one close_notify if the socket takes it now; never wait */
        if (SSL_is_init_finished(t->ssl))
            SSL_shutdown(t->ssl);
        ERR_clear_error();
        SSL_free(t->ssl);
    }
    free(t);
}

int vb_tls_dn_allowed(const char *dn, char *const *patterns, size_t n)
{
    for (size_t i = 0; dn && i < n; i++)
        if (fnmatch(patterns[i], dn, 0) == 0)
            return 1;
    return 0;
}
