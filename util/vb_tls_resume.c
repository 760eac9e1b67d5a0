/* TLS session resumption (vb_tls_resume.h): a small in-memory table of
 * client sessions, and the server's ticket settings. */
#include "vb_tls_resume.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slot {
    char *key;
    SSL_SESSION *sess;
    uint64_t stamp; /* for "the oldest goes first" */
} slot;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static slot table[VB_TLS_RESUME_MAX];
static uint64_t clock_stamp;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;
static int key_index = -1;

/* the key string hangs on the SSL session and goes with it */
static void key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void make_index(void)
{
    key_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, key_free);
}

static slot *find(const char *key)
{
    for (size_t i = 0; i < VB_TLS_RESUME_MAX; i++)
        if (table[i].key && strcmp(table[i].key, key) == 0)
            return &table[i];
    return NULL;
}

static void clear_slot(slot *s)
{
    free(s->key);
    SSL_SESSION_free(s->sess); /* OpenSSL wipes the session's secrets */
    memset(s, 0, sizeof *s);
}

/* A free slot, else the oldest one emptied. */
static slot *room(void)
{
    slot *oldest = &table[0];
    for (size_t i = 0; i < VB_TLS_RESUME_MAX; i++) {
        if (!table[i].key)
            return &table[i];
        if (table[i].stamp < oldest->stamp)
            oldest = &table[i];
    }
    clear_slot(oldest);
    return oldest;
}

/* The certificate a session's first handshake verified, verified again now
 * against store (the CA and the CRL as they are now) the way OpenSSL's
 * handshake does it (purpose "ssl_client" / "ssl_server", the session's
 * parameters: the host name for a client): 1 when it passes. Only the
 * certificate travels with a session, not the chain the peer sent: a
 * certificate below an intermediate CA fails here, and its holder makes a
 * full handshake (slower, not less safe). */
static int still_valid(X509_STORE *store, X509 *cert, const X509_VERIFY_PARAM *param,
                       const char *purpose)
{
    X509_STORE_CTX *x = X509_STORE_CTX_new();
    int ok = x && store && X509_STORE_CTX_init(x, store, cert, NULL) == 1 &&
             X509_STORE_CTX_set_default(x, purpose) == 1 &&
             X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(x), param) == 1 &&
             X509_verify_cert(x) == 1;
    X509_STORE_CTX_free(x);
    ERR_clear_error();
    return ok;
}

static int expired(const SSL_SESSION *sess)
{
    time_t now = time(NULL);
    return !SSL_SESSION_is_resumable(sess) ||
           (time_t)(SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess)) <= now;
}

/* OpenSSL hands over each session (ticket) the server sends: the newest
 * replaces what was kept for the key. 1: we keep the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    const char *key = SSL_get_ex_data(ssl, key_index);
    if (!key || !SSL_SESSION_is_resumable(sess))
        return 0;
    pthread_mutex_lock(&lock);
    slot *s = find(key);
    if (s) {
        SSL_SESSION_free(s->sess);
    } else {
        s = room();
        s->key = strdup(key);
    }
    int kept = s->key != NULL;
    if (kept) {
        s->sess = sess;
        s->stamp = ++clock_stamp;
    }
    pthread_mutex_unlock(&lock);
    return kept;
}

void vb_tls_resume_client(void *ssl_ctx, void *ssl, const char *key)
{
    /* a diagnostic, for measuring what resumption saves (bench/README.md) */
    if (getenv("VB_TLS_NO_RESUME"))
        return;
    pthread_once(&index_once, make_index);
    char *copy = key && strlen(key) < VB_TLS_RESUME_KEY_MAX ? strdup(key) : NULL;
    if (key_index < 0 || !copy || !SSL_set_ex_data(ssl, key_index, copy)) {
        free(copy);
        return; /* a full handshake every time: slower, not less safe */
    }
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_CLIENT |
                                                SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ssl_ctx, on_new_session);
    pthread_mutex_lock(&lock);
    slot *s = find(key);
    SSL_SESSION *sess = NULL;
    if (s) {
        /* taken out: a ticket is offered once; this connection brings new ones */
        sess = s->sess;
        s->sess = NULL;
        clear_slot(s);
    }
    pthread_mutex_unlock(&lock);
    /* offered only while the server's certificate still passes this
     * connection's checks: a CRL (or CA) changed since revokes it here too */
    X509 *peer = sess ? SSL_SESSION_get0_peer(sess) : NULL;
    if (sess && !expired(sess) &&
        (SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE ||
         (peer && still_valid(SSL_CTX_get_cert_store(ssl_ctx), peer, SSL_get0_param(ssl),
                              "ssl_server"))))
        SSL_set_session(ssl, sess); /* the session keeps its own reference */
    SSL_SESSION_free(sess);
}

/* A ticket the server decrypted resumes only if the client certificate in
 * it (when there is one) passes verification against the store as it is
 * now (vb_tls_server_reload_crl may have put a newer CRL there). Else the
 * ticket is ignored: the client makes a full handshake, which verifies its
 * certificate and refuses it in words. */
static SSL_TICKET_RETURN on_ticket(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                   size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)keyname, (void)keyname_len, (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        break;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
        return SSL_TICKET_RETURN_ABORT;
    }
    X509 *peer = SSL_SESSION_get0_peer(sess);
    if (peer && !still_valid(SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)), peer,
                             SSL_get0_param(ssl), "ssl_client"))
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW
                                              : SSL_TICKET_RETURN_USE;
}

void vb_tls_resume_server(void *ssl_ctx)
{
    /* stateless tickets, no table of sessions in the daemon: the key
     * OpenSSL drew for this context encrypts them and lives as long as the
     * context */
    SSL_CTX_set_timeout(ssl_ctx, VB_TLS_TICKET_LIFETIME_S);
    SSL_CTX_clear_options(ssl_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_SERVER |
                                                SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_session_ticket_cb(ssl_ctx, NULL, on_ticket, NULL);
}

int vb_tls_resumed(void *ssl)
{
    return ssl && SSL_session_reused(ssl);
}

size_t vb_tls_resume_count(void)
{
    size_t n = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < VB_TLS_RESUME_MAX; i++)
        n += table[i].key != NULL;
    pthread_mutex_unlock(&lock);
    return n;
}

void vb_tls_resume_forget_all(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < VB_TLS_RESUME_MAX; i++)
        if (table[i].key)
            clear_slot(&table[i]);
    pthread_mutex_unlock(&lock);
}
