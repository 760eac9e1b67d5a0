/* Throwaway X.509 material for the TLS tests, made with libcrypto: a CA,
 * certificates it issues (any validity window, any names: expired ones
 * included, which the openssl CLI of Debian 12 cannot make without a CA
 * database) and CRLs. Keys are P-256: fast to make. */
#include "vb_testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return k;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *c = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return c;
}

static int write_pem(const char *path, int (*fn)(FILE *, void *), void *obj, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    chmod(path, mode);
    int ok = fn(f, obj);
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int put_key(FILE *f, void *k)
{
    return PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
}
static int put_cert(FILE *f, void *c) { return PEM_write_X509(f, c); }
static int put_crl(FILE *f, void *c) { return PEM_write_X509_CRL(f, c); }

/* "/C=GB/O=Lab/CN=name" */
static X509_NAME *parse_subject(const char *text)
{
    X509_NAME *n = X509_NAME_new();
    char *copy = strdup(text), *save = NULL;
    for (char *part = strtok_r(copy, "/", &save); n && part; part = strtok_r(NULL, "/", &save)) {
        char *eq = strchr(part, '=');
        if (!eq || !X509_NAME_add_entry_by_txt(n, (*eq = '\0', part), MBSTRING_UTF8,
                                               (unsigned char *)eq + 1, -1, -1, 0)) {
            X509_NAME_free(n);
            n = NULL;
        }
    }
    free(copy);
    return n;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* One certificate: self-signed when ca is NULL (then a CA). */
static int make_cert(const char *dir, const char *name, const vb_ts_pki *ca, const char *subject,
                     const char *san, long not_before_s, long not_after_s, long serial,
                     vb_ts_pki *out)
{
    snprintf(out->cert, sizeof out->cert, "%s/%s-cert.pem", dir, name);
    snprintf(out->key, sizeof out->key, "%s/%s-key.pem", dir, name);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    EVP_PKEY *ca_key = ca ? read_key(ca->key) : NULL;
    X509 *ca_cert = ca ? read_cert(ca->cert) : NULL;
    X509 *cert = X509_new();
    X509_NAME *subj = parse_subject(subject);
    int rc = -1;
    if (!key || !cert || !subj || (ca && (!ca_key || !ca_cert)))
        goto out;
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), not_before_s);
    X509_gmtime_adj(X509_getm_notAfter(cert), not_after_s);
    X509_set_subject_name(cert, subj);
    X509_set_issuer_name(cert, ca ? X509_get_subject_name(ca_cert) : subj);
    X509_set_pubkey(cert, key);
    X509 *issuer = ca ? ca_cert : cert;
    if (add_ext(cert, issuer, NID_basic_constraints, ca ? "critical,CA:FALSE" : "critical,CA:TRUE") < 0 ||
        add_ext(cert, issuer, NID_key_usage,
                ca ? "critical,digitalSignature,keyEncipherment" : "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(cert, issuer, NID_subject_key_identifier, "hash") < 0 ||
        (ca && add_ext(cert, issuer, NID_authority_key_identifier, "keyid") < 0) ||
        (ca && add_ext(cert, issuer, NID_ext_key_usage, "serverAuth,clientAuth") < 0) ||
        (san && add_ext(cert, issuer, NID_subject_alt_name, san) < 0) ||
        !X509_sign(cert, ca ? ca_key : key, EVP_sha256()))
        goto out;
    if (write_pem(out->key, put_key, key, 0600) == 0 && write_pem(out->cert, put_cert, cert, 0644) == 0)
        rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "vb_ts_pki: cannot make %s/%s\n", dir, name);
    X509_NAME_free(subj);
    X509_free(cert);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

int vb_ts_pki_ca(const char *dir, const char *name, const char *subject, vb_ts_pki *out)
{
    return make_cert(dir, name, NULL, subject, NULL, -3600, 30L * 86400, 1, out);
}

int vb_ts_pki_issue(const char *dir, const char *name, const vb_ts_pki *ca, const char *subject,
                    const char *san, long not_before_s, long not_after_s, long serial,
                    vb_ts_pki *out)
{
    return make_cert(dir, name, ca, subject, san, not_before_s, not_after_s, serial, out);
}

int vb_ts_pki_crl(const char *path, const vb_ts_pki *ca, const long *serials, size_t n)
{
    EVP_PKEY *ca_key = read_key(ca->key);
    X509 *ca_cert = read_cert(ca->cert);
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = X509_gmtime_adj(NULL, -60), *next = X509_gmtime_adj(NULL, 86400);
    int rc = -1;
    if (!ca_key || !ca_cert || !crl || !now || !next)
        goto out;
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert));
    X509_CRL_set1_lastUpdate(crl, now);
    X509_CRL_set1_nextUpdate(crl, next);
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        ASN1_INTEGER_set(sn, serials[i]);
        X509_REVOKED_set_serialNumber(r, sn);
        X509_REVOKED_set_revocationDate(r, now);
        X509_CRL_add0_revoked(crl, r);
        ASN1_INTEGER_free(sn);
    }
    X509_CRL_sort(crl);
    if (X509_CRL_sign(crl, ca_key, EVP_sha256()) && write_pem(path, put_crl, crl, 0644) == 0)
        rc = 0;
out:
    if (rc < 0)
        fprintf(stderr, "vb_ts_pki: cannot make the CRL %s\n", path);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    return rc;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
    size_t len;
    char *text = vb_ts_read_file(from, &len);
    int rc = text ? vb_ts_write_file(to, text, mode) : -1;
    free(text);
    return rc;
}

int vb_ts_pki_dir(char *out, const char *dir, const char *name, const vb_ts_pki *ca,
                  const vb_ts_pki *id)
{
    char path[500];
    snprintf(out, 400, "%s/%s", dir, name);
    if (mkdir(out, 0700) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/cacert.pem", out);
    if (copy_file(ca->cert, path, 0644) < 0)
        return -1;
    if (!id)
        return 0;
    snprintf(path, sizeof path, "%s/clientcert.pem", out);
    if (copy_file(id->cert, path, 0644) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/clientkey.pem", out);
    return copy_file(id->key, path, 0600);
}
