/*
 * vb_remote_priv.h — private to the remote driver's client side, which is
 * split by job (issue 17 item 7):
 *   vb_remote.c       the connection: connect, login order, free, accessors;
 *   vb_remote_io.c    transports: unix / TCP / TLS / SSH byte layer, the SASL
 *                     security layer over it, frames in (proto/vb_msgin.h)
 *                     and out; where we are (endpoint, the unix server's owner);
 *   vb_remote_auth.c  auth negotiation: AUTH_LIST, SASL, token, peer/polkit/none;
 *   vb_remote_rpc.c   calls (proto/vb_calls.h: several in flight, matched by
 *                     serial), the relay of the server's questions, keepalive,
 *                     tokens and the driver calls.
 * Here: the handle, and what one part calls in another.
 */
#ifndef VB_REMOTE_PRIV_H
#define VB_REMOTE_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "vb_calls.h"
#include "vb_msgin.h"
#include "vb_remote.h"
#include "vb_sasl.h"
#include "vb_ssh.h"
#include "vb_tls.h"
#include "vb_token.h"

/* The unix server's owner (SO_PEERCRED) against the expected one: the uid
 * the URI's server_uid= names (a number or a user name), else root or the
 * client's own uid. */
enum {
    VB_REMOTE_OWNER_NOT_UNIX,     /* tcp or ssh: not checked this way */
    VB_REMOTE_OWNER_VERIFIED,     /* the expected owner listens */
    VB_REMOTE_OWNER_UNEXPECTED,   /* someone else: no token, no PLAIN/LOGIN */
};

struct vb_remote {
    int fd;
    uint32_t conn_id;               /* header conn_id of the next calls (sharing) */
    uint32_t host_version;
    int timeout_ms;                 /* the next read's wait (the reader's, see read_one) */
    int reply_timeout_ms;           /* a call's wait for its reply or a message about it */
    vb_msgin in;                    /* plaintext in, messages out (proto/vb_msgin.h) */
    vb_sasl *sasl;
    int layer;                      /* the SASL security layer is active */
    char auth_type[32];
    char server_id[72];
    int have_server_id;
    char *service;                  /* "vbhostd on HOST" for prompts */
    vb_cred_source relay;           /* answers the nested CRED_FILLs of vb_remote_call's calls */
    int have_relay;
    vb_cred_target target;          /* this login: vbhostd at host:port as user (SASL prompts) */
    char *host;                     /* SASL server FQDN */
    vb_ssh *ssh;                    /* the SSH tunnel behind fd (ssh transport only) */
    vb_tls *tls;                    /* the TLS session over fd (tls transport only) */
    int multiplexes;                /* the server named the "conn_id" feature */
    int concurrent;                 /* ... and "concurrent_calls": driver calls overlap */
    int token_bind;                 /* the server named "token_bind": bound proofs */
    int tls_cbind;                  /* ... and "tls_cbind": on TLS, bound to the connection */
    int digest_3des;                /* ... and "digest_3des": DIGEST-MD5 with 3DES, not RC4 */
    char endpoint[VB_REMOTE_ENDPOINT_MAX + 1];     /* as dialled (canonical, see .h) */
    char bound_endpoint[VB_TOKEN_ENDPOINT_MAX + 1]; /* what the token proof covers */
    int owner;                      /* VB_REMOTE_OWNER_*: the unix server's uid check */
    uid_t server_uid;               /* SO_PEERCRED of a unix server */
    unsigned pings_unanswered;      /* keepalive PINGs sent since the server last said anything */
    int vouched;                    /* authenticated (sasl, token, peer): questions may relay */
    vb_calls calls;                 /* calls in flight, and whether the transport died */
    pthread_mutex_t send_lock;      /* one frame at a time onto the transport; and the
                                     * security layer's codec, one thread at a time */
    pthread_cond_t sent;            /* a sender let go of send_lock (senders_waiting fell) */
    atomic_int senders_waiting;     /* threads about to send: a layered reader lets them first */
    pthread_mutex_t driver_lock;    /* driver calls, to a server without "concurrent_calls" */
};

/* ---- vb_remote_io.c --------------------------------------------------------- */

/* Send one whole frame (taken, wiped) under send_lock, through the security
 * layer when one is active. */
int vb_remote_send_locked(vb_remote *r, uint8_t *frame, size_t len, vb_error *err);
/* As the reader of a layered transport: take send_lock once no sender waits. */
void vb_remote_reader_lock(vb_remote *r);
/* Read one message, waiting at most r->timeout_ms for each read. */
int vb_remote_read_msg(vb_remote *r, vb_msg *msg, vb_error *err);
/* The transport the URI names, connected: its fd (an SSH tunnel's local
 * end, *ssh; a TLS session over it, *tls), or -1. */
int vb_remote_open_transport(const vb_uri *uri, const vb_remote_opts *opts, vb_ssh **ssh,
                             vb_tls **tls, vb_error *err);
int vb_remote_transport_is(const vb_uri *uri, const char *name);
/* The port a tcp, tls or ssh URI dials when it names none. */
int vb_remote_uri_port(const vb_uri *uri);
/* r->endpoint and r->bound_endpoint for the URI dialled. */
void vb_remote_describe_endpoint(vb_remote *r, const vb_uri *uri);
/* A unix server's owner against the expected one (r->owner). */
int vb_remote_check_owner(vb_remote *r, const vb_uri *uri, vb_error *err);

/* ---- vb_remote_auth.c ------------------------------------------------------- */

/* AUTH_LIST, then the first type of the priority list the server offers. */
int vb_remote_negotiate(vb_remote *r, const vb_uri *uri, const vb_remote_opts *opts,
                        vb_error *err);

#endif
