/*
 * vb_tls_resume.h — TLS session resumption for the +tls transport.
 *
 * Client: the process keeps, in memory only, the newest TLS session (a TLS
 * 1.3 ticket) per key, and offers it at the next connection with the same
 * key, so a warm open skips the certificate exchange and its signatures.
 * The key is everything the first connection's checks depended on (host,
 * port, the files it trusted and showed, no_verify): a session made under
 * one trust setting is never offered under another. A session is taken out
 * when offered (a ticket is used once) and replaced by the tickets the
 * server sends on that connection. At most VB_TLS_RESUME_MAX keys; the
 * oldest goes first. Nothing is written to disk: a new process (a broker
 * restart) starts with a full handshake. VB_TLS_NO_RESUME set in the
 * environment turns it off (to measure what it saves).
 *
 * Server: tickets with a key OpenSSL draws when the listener's context is
 * made (it lives as long as the daemon, never on disk), valid
 * VB_TLS_TICKET_LIFETIME_S.
 *
 * Channel binding stays per connection: the tls-exporter value of a
 * resumed connection differs from the first one's (tests/integ/test_tls_bind.c).
 */
#ifndef VB_TLS_RESUME_H
#define VB_TLS_RESUME_H

#include <stddef.h>

#define VB_TLS_RESUME_MAX 256           /* client: keys remembered */
#define VB_TLS_TICKET_LIFETIME_S 3600   /* server: how long a ticket resumes */
#define VB_TLS_RESUME_KEY_MAX 4200

/* Client: ctx is the session's SSL_CTX and ssl the session, before its
 * handshake (both as void *: OpenSSL types stay out of callers' headers).
 * Offers the session remembered for key, and remembers the ones the server
 * sends on this connection under key. */
void vb_tls_resume_client(void *ssl_ctx, void *ssl, const char *key);
/* Server: issue tickets with a lifetime of VB_TLS_TICKET_LIFETIME_S. */
void vb_tls_resume_server(void *ssl_ctx);
/* 1 when the session's handshake resumed an earlier one. */
int vb_tls_resumed(void *ssl);
/* Client: how many keys are remembered (tests); forget all (tests, exit). */
size_t vb_tls_resume_count(void);
void vb_tls_resume_forget_all(void);

#endif
