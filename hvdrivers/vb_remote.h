/*
 * vb_remote.h — the client side of vbhostd: transports, auth negotiation,
 * calls. Blocking (callers that must not block run it on a worker thread);
 * after connect, several threads may call at once through channels
 * (vb_remote_chan), each waiting only for its own reply.
 *
 * Negotiation follows the 2007 design: AUTH_LIST first; a server that
 * answers NO_SUPPORT predates authentication (HOST v1), so go straight to
 * OPEN. Otherwise take the first type in the priority list that the server
 * offers; SASL interactions become one credential request per round; a
 * wrong password re-prompts (retry flag set) up to VB_REMOTE_AUTH_TRIES.
 */
#ifndef VB_REMOTE_H
#define VB_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "vb_cred.h"
#include "vb_driver.h"
#include "vb_msg.h"
#include "vb_tls.h"
#include "vb_uri.h"

#define VB_REMOTE_AUTH_TRIES 3
#define VB_REMOTE_DEFAULT_PORT 16509
#define VB_REMOTE_DEFAULT_SOCKET "/run/vbhostd/sock"
#define VB_REMOTE_MAX_PRIORITY 8
#define VB_REMOTE_ENDPOINT_MAX 1100

typedef struct vb_remote vb_remote;

typedef struct vb_remote_opts {
    /* how questions reach a person or a script, and the auth types to try
     * (NULL/0 priority = the built-in default; the URI's auth= overrides) */
    vb_cred_source creds;
    uint32_t host_version;        /* 0 = current; 1 = speak as a v1 client (tests) */
    int timeout_ms;               /* per reply; 0 = 60 s */
    /* VB_OPEN_FROM_WIRE: the URI is a client's, not this process's operator's:
     * no SASL mechanism that uses this process's own credentials (GSSAPI,
     * EXTERNAL), and the ssh transport uses none of its keys (vb_ssh.h).
     * (The remote driver also keeps peer and none out of the priority.) */
    unsigned flags;
} vb_remote_opts;

/* Connect per the URI's transport (unix: ?socket=, tcp: host[:port]) and
 * authenticate. */
int vb_remote_connect(const vb_uri *uri, const vb_remote_opts *opts, vb_remote **out, vb_error *err);
/* The same over a transport the caller connected (vb_remote_connect's own
 * path, and the fuzz target's scripted server): fd is taken, closed on
 * failure too; uri still names the SASL host, the prompts' service and auth=. */
int vb_remote_connect_fd(int fd, const vb_uri *uri, const vb_remote_opts *opts, vb_remote **out,
                         vb_error *err);
void vb_remote_free(vb_remote *r);

/* After connect: what was negotiated. */
const char *vb_remote_auth_type(const vb_remote *r);  /* "sasl", "peer", "none", "none (v1 server)" */
const char *vb_remote_sasl_mech(const vb_remote *r);  /* NULL unless sasl */
unsigned vb_remote_ssf(const vb_remote *r);
const char *vb_remote_server_id(const vb_remote *r);  /* NULL for a v1 server */
int vb_remote_fd(const vb_remote *r);
/* The TLS session of a +tls connection (NULL on other transports): its
 * exporter (vb_tls_exporter) for channel binding, its SSL * (vb_tls_ssl). */
vb_tls *vb_remote_tls(const vb_remote *r);
/* 1 when the server said (AUTH_LIST) it keeps several hypervisor connections
 * on one transport, one per conn_id; 0 for a server from before that, which
 * a client must give one transport per connection. */
int vb_remote_multiplexes(const vb_remote *r);
/* Where this connection went, canonical (docs/protocol.md "token binding"):
 * "unix:PATH", "tcp:HOST:PORT" or "tls:HOST:PORT" (host in lower case, an IPv6 literal in
 * brackets, the port spelled out), "ssh:HOST:PORT/PATH" (PATH the remote
 * socket). Cached logins are keyed by it. "" when too long to name. */
const char *vb_remote_endpoint(const vb_remote *r);
/* The service a login to uri asks for ("vbhostd on HOST:PORT"), which
 * begins the key of every question asked through it; malloc'd, NULL when
 * out of memory. */
char *vb_remote_service_name(const vb_uri *uri);
/* Address later calls to hypervisor connection conn_id on this transport
 * (0 = the default): several opens share one authenticated transport. */
void vb_remote_set_conn(vb_remote *r, uint32_t conn_id);
/* Who answers the server's nested credential callbacks (CRED_FILL) during
 * the next calls (NULL: nobody — they fail with CRED_REQUIRED). Copied. */
void vb_remote_set_relay(vb_remote *r, const vb_cred_source *creds);

/* Tokens (after a sasl or peer login on a confidential connection). */
typedef struct vb_remote_token {
    char id[33];
    uint8_t secret[32];       /* wipe after storing */
    int64_t expires;          /* unix time */
    char identity[256];       /* as the server knows the login */
} vb_remote_token;
int vb_remote_issue_token(vb_remote *r, uint64_t ttl_s, vb_remote_token *out, vb_error *err);
int vb_remote_revoke_token(vb_remote *r, const char *id, int *revoked, vb_error *err);

/* The driver calls, on the connection's own channel (vb_remote_set_conn,
 * vb_remote_set_relay): for one caller at a time. */
int vb_remote_open(vb_remote *r, const char *name, unsigned flags, vb_error *err);
int vb_remote_close_driver(vb_remote *r, vb_error *err);
int vb_remote_get_hostname(vb_remote *r, char **hostname, vb_error *err);
int vb_remote_list_domains(vb_remote *r, vb_domain_info **doms, size_t *n, vb_error *err);
int vb_remote_domain_start(vb_remote *r, const char *name, vb_error *err);
int vb_remote_domain_shutdown(vb_remote *r, const char *name, vb_error *err);

/* Several callers at once: a channel is one hypervisor connection on a
 * (shared) transport, its conn_id and who answers the nested questions of
 * its calls. Calls on different channels may run at the same time from
 * different threads, each waiting only for its own reply (the reply matching
 * is proto/vb_calls.h's); one channel takes one call at a time. A server
 * without the "concurrent_calls" feature gets driver calls one at a time
 * whatever the channel (it refuses more). */
typedef struct vb_remote_chan {
    vb_remote *remote;
    uint32_t conn_id;
    const vb_cred_source *relay;  /* NULL: nested questions fail with CRED_REQUIRED */
} vb_remote_chan;
int vb_remote_chan_open(const vb_remote_chan *ch, const char *name, unsigned flags, vb_error *err);
int vb_remote_chan_close(const vb_remote_chan *ch, vb_error *err);
int vb_remote_chan_get_hostname(const vb_remote_chan *ch, char **hostname, vb_error *err);
int vb_remote_chan_list_domains(const vb_remote_chan *ch, vb_domain_info **doms, size_t *n,
                                vb_error *err);
int vb_remote_chan_domain_start(const vb_remote_chan *ch, const char *name, vb_error *err);
int vb_remote_chan_domain_shutdown(const vb_remote_chan *ch, const char *name, vb_error *err);
/* 1 when the server runs driver calls of different conn_ids at the same time. */
int vb_remote_concurrent(const vb_remote *r);

/* Keepalive, for a transport nobody is calling on (a transport with calls in
 * flight is skipped: 0; their reads and timeouts watch it):
 * take in what the server sent meanwhile, then send a PING. After
 * max_unanswered PINGs with nothing heard from the server the transport is
 * declared dead: -1 now, and every later call fails at once with the same
 * error (PEER_CLOSED) instead of waiting for its timeout. */
int vb_remote_keepalive(vb_remote *r, unsigned max_unanswered, vb_error *err);

/* A raw call: args_fn packs exactly one body value. On success *reply holds
 * the REPLY (vb_msg_clear it); an ERROR reply becomes -1 with err set from
 * the server's [code, domain, message]. */
typedef void (*vb_remote_args_fn)(vb_enc *enc, const void *arg);
int vb_remote_call(vb_remote *r, uint32_t program, uint32_t procedure, vb_remote_args_fn args_fn,
                   const void *arg, vb_msg *reply, vb_error *err);
int vb_remote_chan_call(const vb_remote_chan *ch, uint32_t program, uint32_t procedure,
                        vb_remote_args_fn args_fn, const void *arg, vb_msg *reply, vb_error *err);

#endif
