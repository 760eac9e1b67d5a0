/*
 * vbh.h — vbhostd internals: config, server, clients, dispatch.
 *
 * Request path (one screen): a listener accepts → the client is counted
 * (anonymous or not) → vb_stream cuts and decodes frames → vbh_dispatch
 * looks the procedure up in the HOST table → the gate answers AUTH_REQUIRED
 * for needs-auth procedures until the client authenticated → the handler
 * fills the reply body → the reply is queued (delayed after a failed login).
 */
#ifndef VBH_H
#define VBH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pthread.h>

#include "vb_accept.h"
#include "vb_cred.h"
#include "vb_driver.h"
#include "vb_loop.h"
#include "vb_msg.h"
#include "vb_offloop.h"
#include "vb_sasl.h"
#include "vb_store.h"
#include "vb_stream.h"
#include "vb_tls.h"
#include "vb_token.h"
#include "vb_worker.h"

enum vbh_auth_type { VBH_AUTH_NONE, VBH_AUTH_SASL, VBH_AUTH_PEER, VBH_AUTH_TOKEN, VBH_AUTH_POLKIT };
#define VBH_AUTH_LAST VBH_AUTH_POLKIT
#define VBH_MAX_AUTH_TYPES 5
#define VBH_MAX_PEER_UIDS 32
#define VBH_MAX_TOKEN_ENDPOINTS 16

typedef struct vbh_auth_list {
    int types[VBH_MAX_AUTH_TYPES];
    size_t n;
} vbh_auth_list;

/* One entry of an allow-list: a next hop ("tcp"/"ssh" host and port, or
 * "unix" and a socket path in host) or a XenAPI endpoint ("xenapi" host and
 * port). Hosts compare as written (case-insensitively), never resolved. */
typedef struct vbh_endpoint {
    char transport[8];
    char *host;
    int port;
} vbh_endpoint;
#define VBH_MAX_ALLOWED 256

typedef struct vbh_config {
    char *listen_unix;
    unsigned listen_unix_mode;
    char *listen_tcp;
    char *listen_tls;                /* "HOST:PORT": TLS from the first byte (vb_tls.h) */
    vbh_auth_list auth_unix;
    vbh_auth_list auth_tcp;
    vbh_auth_list auth_tls;
    char *cert_file, *key_file, *ca_file; /* the TLS listener's (system paths by default) */
    char *crl_file;                  /* NULL: none (the default one only when it exists) */
    int tls_client_cert;             /* enum vb_tls_client_cert: required / optional / none */
    int tls_client_cert_set;         /* ... given in the file */
    int tls_allowed_dn_set;          /* the key is present: a certificate whose subject matches */
    char **tls_allowed_dn;           /* ... one of these fnmatch patterns is required */
    size_t ntls_allowed_dn;
    char *next_hop_pkipath;          /* this vbhostd's own client files for a next hop over TLS */
    int tls_require_cbind;           /* logins on TLS only channel-bound (vbh_cbind.c) */
    char *sasl_app;
    char *sasl_conf_dir;
    char *sasl_hostname;
    char *sasl_realm;
    int sasl_allowed_set;            /* the key is present: an empty list admits nobody */
    char **sasl_allowed_usernames;
    size_t nsasl_allowed_usernames;
    uid_t peer_allowed_uids[VBH_MAX_PEER_UIDS];
    size_t npeer_allowed_uids;
    unsigned tcp_min_ssf;
    int sasl_digest_3des;            /* offer DIGEST-MD5's 3DES layer to clients (AUTH_LIST) */
    char *state_dir;
    unsigned max_clients;
    unsigned max_anonymous_clients;
    unsigned max_anonymous_per_peer; /* ... of them from one address, IPv6 /64 or uid */
    unsigned first_frame_timeout_s;  /* an unauthenticated connection's first frame comes this soon */
    unsigned max_output_preauth;     /* bytes queued for a client before its calls wait: before login */
    unsigned max_output;             /* ... and after */
    unsigned output_timeout_s;       /* drop a client whose full queue has not moved this long */
    unsigned auth_attempts_per_connection;
    unsigned auth_timeout_s;
    /* failed logins (vbh_failures.h): per account, per source, in total */
    unsigned auth_failure_max_delay_s;   /* the largest step of the growing delay */
    unsigned auth_failure_forget_s;      /* a key's failures are forgotten after this */
    unsigned auth_failure_table_size;    /* entries per table (accounts; sources) */
    unsigned auth_failures_per_second;   /* the ceiling (0: none) */
    unsigned auth_failure_ipv4_prefix;   /* IPv4 sources counted per this prefix */
    unsigned auth_failure_ipv6_prefix;   /* IPv6 sources counted per this prefix */
    unsigned frame_timeout_s;        /* a frame must arrive whole this long after its first byte */
    unsigned keepalive_timeout_s;    /* a client that pings and then goes silent this long is gone */
    size_t max_frame;                /* after authentication */
    char *default_uri;
    char *test_host_dir;             /* test:///PATH files allowed only below this dir */
    unsigned token_ttl_s;            /* lifetime of issued tokens (the client may ask for less) */
    char *token_endpoints[VBH_MAX_TOKEN_ENDPOINTS]; /* forwarders' endpoints a proof may name */
    size_t ntoken_endpoints;
    int log_level;
    char *log_file;                  /* where a detached daemon logs (else syslog) */
    int protocol_v1;                 /* test mode: behave as a HOST v1 server (no AUTH_*) */
    int allow_remote_uris;           /* OPEN may name another vbhostd (a longer chain) */
    vbh_endpoint *allowed_next_hops; /* ...but only one of these (empty: none) */
    size_t nallowed_next_hops;
    vbh_endpoint *allowed_xenapi;    /* XenAPI hosts a client's URI may name (empty: none) */
    size_t nallowed_xenapi;
    vbh_endpoint *allowed_libvirt;   /* libvirtd TCP endpoints a client's libvirt: URI may name */
    size_t nallowed_libvirt;
    unsigned relay_timeout_s;        /* a relayed credential request fails after this */
    unsigned xenapi_session_keep_s;  /* a closed XenAPI session is kept this long (0: never) */
    unsigned xenapi_sessions_max;    /* ... at most this many, over all clients */
    /* not from the file: listening sockets systemd passed (vbh_activation.c),
     * served instead of binding listen_unix / listen_tcp / listen_tls; -1: none */
    int passed_unix_fd;
    int passed_tcp_fd;
    int passed_tls_fd;
} vbh_config;

int vbh_config_load(const char *path, vbh_config *cfg, vb_error *err);
/* vbh_activation.c: take the sockets systemd passed (LISTEN_FDS, then unset)
 * into cfg->passed_*_fd. Each must be the configured listen_unix, listen_tcp
 * or listen_tls; one that is not refuses the start (VB_ERR_CONFIG naming it). */
int vbh_take_passed_sockets(vbh_config *cfg, const char *config_path, vb_error *err);
void vbh_config_clear(vbh_config *cfg);
const char *vbh_auth_type_name(int type);
/* "sasl, token" for messages */
void vbh_auth_list_format(const vbh_auth_list *list, char *buf, size_t len);
int vbh_auth_list_has(const vbh_auth_list *list, int type);
/* 1 when list has transport, host (as written, any case) and port. */
int vbh_endpoint_allowed(const vbh_endpoint *list, size_t n, const char *transport,
                         const char *host, int port);
/* When a listener takes SASL: refuse (VB_ERR_CONFIG naming the file and
 * the chmod to run) a sasldb that others may read or write. */
int vbh_check_sasldb(const vbh_config *cfg, vb_error *err);

typedef struct vbh_server vbh_server;

#define VBH_MAX_CONNS_PER_CLIENT 256
/* driver calls queued or running on one transport, over all its conn_ids;
 * one more is refused (OPERATION_INVALID) until a reply goes out */
#define VBH_MAX_CALLS_PER_CLIENT 512
#define VBH_WORKER_IDLE_MS 2000 /* a conn_id's worker thread leaves after this long idle */

typedef struct vbh_client vbh_client;

/* One conn_id of a transport: its hypervisor connection and the worker
 * that runs its calls in order (util/vb_worker.h). Made by the loop at the
 * id's OPEN; dropped by the loop once nothing is open under it and no call
 * is in flight, else with its client. */
typedef struct vbh_dconn {
    vbh_client *c;
    uint32_t conn_id;
    vb_worker *worker;
    unsigned pending;           /* calls submitted, replies not yet delivered (loop) */
    /* the worker's own while a call runs; the loop reads them only when
     * pending is 0 (no call runs) */
    const vb_driver *drv;
    void *conn;
    int read_only;
    int relay_window;           /* the running call may log in: questions may be relayed */
    char keep_owner[160];       /* "auth_type:identity": whose kept sessions an open may reuse */
    struct vbh_dconn *next;
} vbh_dconn;

typedef struct vbh_listener {
    vbh_server *srv;
    int fd;
    vb_acceptor *acceptor;
    int is_unix;
    int is_tls;                 /* TCP with TLS from the first byte */
    const vbh_auth_list *auth;
} vbh_listener;

/* A peer group (vb_net_peer_group) holding anonymous slots (vbh_admit.c). */
typedef struct vbh_peer {
    char group[64];
    unsigned nanon;
    struct vbh_peer *next;
} vbh_peer;

/* At most this many threads run SASL steps (fewer on fewer cores). */
#define VBH_SASL_LANES_MAX 8

struct vbh_server {
    vbh_config *cfg;
    vb_loop *loop;
    char server_id[65];
    vbh_listener listeners[3];
    vb_tls_ctx *tls_ctx;             /* listen_tls's certificates and policy */
    size_t nlisteners;
    vbh_client *clients;
    unsigned nclients;
    unsigned nanonymous;
    struct vbh_failures *failures;   /* failed logins (vbh_failures.h); made at the first */
    vbh_client *anonymous;           /* the clients holding those slots (anon_next) */
    vbh_peer *peers;                 /* their groups, with counts */
    vb_store *tokens;                /* issued tokens (state_dir/tokens.db) */
    vb_lane *store_lane;             /* ... read and written there only, off the loop */
    /* SASL steps (ms of CPU each) run here, not on the loop: one lane per
     * core, a client's step on the next lane in turn (vbh_auth.c) */
    vb_lane *sasl_lanes[VBH_SASL_LANES_MAX];
    unsigned nsasl_lanes, next_sasl_lane;
    int recheck_running, recheck_again; /* the token sessions' re-check (loop thread) */
    /* driver calls run on per-client worker threads; finished frames come
     * back to the loop through this queue */
    vb_offloop *done;
    vb_offloop *polkit_done;         /* finished polkit checks (vbh_polkit.c) */
    unsigned npolkit_pending;        /* ... and those still asking (loop thread) */
    pthread_mutex_t lock;            /* client refcounts */
    uint64_t keepalive_timer;
    uint64_t token_check_timer;      /* re-checks the tokens of token sessions */
};

/* How often the running daemon re-reads the token of every token-logged-in
 * client, so `vbhostd --revoke-token` (another process) ends its sessions. */
#define VBH_TOKEN_RECHECK_MS 2000

struct vbh_client {
    vbh_server *srv;
    vbh_listener *lis;
    vb_stream *stream;
    char peer[96];
    char failure_source[96];    /* what its failed logins count against (vbh_failures) */
    uid_t uid;
    pid_t pid;                  /* SO_PEERCRED of a unix peer, 0 if unknown */
    uint64_t start_time;        /* ... and its start time, read at accept (polkit) */
    int peer_allowed;           /* a unix peer whose uid is on the allow list */
    int counted_anonymous;      /* holds one of the max_anonymous_clients slots */
    char peer_group[64];        /* what max_anonymous_per_peer counts: address, /64 or uid */
    vbh_peer *peer_rec;         /* its group's count, while counted_anonymous */
    vbh_client *anon_next, *anon_prev;
    int spoke;                  /* a whole frame has come from it */
    uint64_t first_frame_timer;
    int authenticated;
    char identity[128];
    const char *auth_type;
    vb_sasl *sasl;
    unsigned min_ssf;
    int enable_layer;           /* switch on the SASL layer after this reply */
    int layer_on;               /* ... switched on: the stream codes through c->sasl */
    unsigned failed_attempts;
    int auth_noted;             /* the login attempt just handled was noted: */
    uint64_t auth_answer_at;    /* its answer waits until then (vb_now_ms clock) */
    /* a token login between CHALLENGE and PROVE */
    char token_id[VB_TOKEN_ID_LEN + 1];
    uint8_t token_cnonce[VB_TOKEN_NONCE_LEN];
    uint8_t token_snonce[VB_TOKEN_NONCE_LEN];
    char token_endpoint[VB_TOKEN_ENDPOINT_MAX + 1]; /* the bound proof's endpoint */
    int token_pending;
    void *token_job;            /* the token call being prepared or answered (vbh_tokens.c) */
    int token_busy;             /* ... or waiting for tokens.db: the client is not read */
    void *sasl_job;             /* its SASL step, done off the loop, being answered (vbh_auth.c) */
    int sasl_busy;              /* ... or still running: the client is not read */
    char session_token[VB_TOKEN_ID_LEN + 1]; /* the token it logged in with, "" if none */
    int confidential;           /* unix socket, TLS, or a SASL security layer is on */
    unsigned tls_ssf;           /* the TLS cipher's bits once the handshake is done (0: no TLS) */
    char tls_dn[256];           /* the client certificate's subject, "" without one */
    uint64_t auth_timer;
    uint64_t auth_deadline_ms;  /* when auth_timer fires (vb_now_ms clock) */
    int polkit_read_only;       /* polkit granted monitor, not manage: read-only opens only */
    void *polkit_job;           /* the finished check being answered (loop thread) */
    uint64_t delay_timer;
    uint8_t *delayed_frame;
    size_t delayed_len;
    int close_after_delayed;
    int speaks_keepalive;       /* it sent a PING: silence from it means it is gone */
    uint64_t last_rx_ms;        /* when its last message arrived (loop clock) */
    /* hypervisor connections on this transport, one per conn_id (0 for a
     * plain client; a broker multiplexes several logins' opens over one),
     * each with its worker: calls of different ids run concurrently, calls
     * of one id in order (the list is the loop's) */
    vbh_dconn *dconns;
    unsigned ndconns;
    unsigned ncalls;            /* driver calls in flight, all ids (loop) */
    vb_credwait_serials serials; /* CRED_FILL serials, unique on the transport */
    vbh_client *next, *prev;

    int refs;                   /* loop + worker threads + queued frames; under srv->lock */
    int gone;                   /* the connection closed (loop thread) */
};

int vbh_server_start(vbh_server *srv, vbh_config *cfg, vb_loop *loop, vb_error *err);
int vbh_open_token_store(const vbh_config *cfg, vb_store **out, vb_error *err);
void vbh_server_stop(vbh_server *srv);
/* SIGHUP: listen_tls's crl_file read again (the handshakes from now on,
 * resumed ones too, are checked against it); logs what it did. */
void vbh_server_reload_tls(vbh_server *srv);

/* vbh_admit.c: the anonymous slots (max_anonymous_clients, _per_peer) */
/* Take (anonymous) or give back (not) c's slot. */
void vbh_admit_set_anonymous(vbh_client *c, int anonymous);
/* Make room for an unauthenticated connection from group, evicting the most
 * idle unauthenticated connection of that group or of a bigger one if need
 * be: 0, or -1 when nobody may be evicted for it (then refuse it). */
int vbh_admit_anonymous(vbh_server *srv, const char *group, const char *peer);

/* dispatch.c */
void vbh_dispatch(vbh_client *c, vb_msg *msg);
/* Run handler for msg and encode its REPLY (or ERROR) frame; *frame NULL on
 * failure to encode anything. Used on the loop and on workers. */
typedef int (*vbh_handler_fn)(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
void vbh_client_mark_authenticated(vbh_client *c, const char *auth_type, const char *identity);

/* Handlers fill the reply body (exactly one value) or fail with err. */
typedef vbh_handler_fn vbh_handler;
void vbh_build_reply(vbh_client *c, const vb_msg *msg, vbh_handler handler, uint8_t **frame,
                     size_t *len);

/* auth.c */
/* Before an auth call of type: AUTH_UNAVAILABLE when the listener does not
 * accept type, OPERATION_INVALID when the connection already logged in
 * (unless the listener accepts "none"). 0 or -1. */
int vbh_auth_require_type(vbh_client *c, int type, vb_error *err);
int vbh_auth_list_handler(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_sasl_init(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_sasl_start(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_sasl_step(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* AUTH_SASL_START and _STEP are ASYNC: the checks and arguments here, the
 * Cyrus step on a SASL lane, the answer (finish: the two handlers above)
 * through vbh_dispatch_resume. */
int vbh_auth_sasl_begin(vbh_client *c, vb_msg *msg, vbh_handler finish, vb_error *err);
/* The SASL lanes (server start and stop). */
int vbh_auth_lanes_start(vbh_server *srv, vb_error *err);
void vbh_auth_lanes_stop(vbh_server *srv);
int vbh_auth_peer(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* The token calls touch tokens.db, which is done off the loop: their
 * handlers only prepare the job (reply unused) and must be run through
 * vbh_tokens_begin; the answer comes later, through vbh_dispatch_resume. */
int vbh_auth_token_challenge(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_token_prove(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_token_issue(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* Prepare msg's token call with its handler and send its store work to the
 * store lane (msg moved on success; the client is not read until the
 * answer): 0, or -1 with err (answer it now). */
int vbh_tokens_begin(vbh_client *c, vb_msg *msg, vbh_handler prepare, vb_error *err);
/* The listener offers tokens and tokens are allowed on its transport. */
int vbh_tokens_usable_on(const vbh_listener *lis, const vbh_config *cfg);
int vbh_token_revoke(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* Disconnect every client but except that logged in with token id. */
unsigned vbh_end_token_sessions(vbh_server *srv, const char *id, const vbh_client *except);
/* Disconnect the clients whose token is revoked or gone from tokens.db:
 * one indexed read per token on the store lane, the disconnects on the
 * loop once it is done (a re-check asked for meanwhile runs after it). */
void vbh_recheck_token_sessions(vbh_server *srv);
/* vbhostd --list-tokens / --revoke-token ID (prints; returns an exit status) */
int vbh_admin_tokens(vbh_config *cfg, const char *revoke_id);

/* vbh_cbind.c: channel binding on TLS (tls_require_cbind). */
/* 1 when c's logins must be channel-bound (a TLS listener, the setting on). */
int vbh_cbind_required(const vbh_client *c);
/* 1 when c is a TLS connection without a channel binding (why says so). */
int vbh_cbind_missing(const vbh_client *c, vb_error *why);
/* After the handshake: -1 (why filled for the client) when the setting
 * requires a binding that this connection cannot have and a login is due. */
int vbh_cbind_admit(const vbh_client *c, char *why, size_t len);
/* AUTH_SASL_INIT: *mechlist (malloc'd) cut to its -PLUS names when the
 * setting requires them; AUTH_UNAVAILABLE when none is left. */
int vbh_cbind_filter_mechs(const vbh_client *c, char **mechlist, vb_error *err);
/* AUTH_SASL_START: AUTH_UNAVAILABLE for a mechanism without -PLUS there. */
int vbh_cbind_check_mech(const vbh_client *c, const char *mech, vb_error *err);

/* After an auth handler ran: how long its answer must wait (ms). failed: it
 * failed with AUTH_FAILED (a failure the handler did not note is noted
 * here, for the peer alone). Consumes the handler's note. */
uint64_t vbh_auth_answer_delay(vbh_client *c, int failed);

/* vbh_worker.c */
int vbh_worker_start(vbh_server *srv, vb_error *err);
/* Run a driver call on the worker of its conn_id (the msg is moved). */
int vbh_worker_submit(vbh_client *c, vb_msg *msg, vbh_handler handler, vb_error *err);
/* Loop: the driver call msg goes to vbh_worker_submit (an OPEN, a call on a
 * conn_id with something open or in flight, or one over the calls limit,
 * which submit refuses); else it has nothing to wait for and its handler
 * answers on the loop (the body first, then NOT_OPEN: docs/protocol.md §5.7). */
int vbh_worker_takes(vbh_client *c, const vb_msg *msg);
void vbh_worker_cred_reply(vbh_client *c, const vb_msg *msg);
/* The client left: every conn_id's worker ends, closing its hypervisor
 * connection as its last job (loop thread). */
void vbh_worker_cancel(vbh_client *c);
/* Worker thread: the conn_id whose call this thread runs. */
vbh_dconn *vbh_worker_dconn(void);
void vbh_client_ref(vbh_client *c);
void vbh_client_unref(vbh_client *c);
/* The credential source d's drivers get: relays to d's client as CALLBACKs
 * for d's conn_id. */
void vbh_relay_source(vbh_dconn *d, vb_cred_source *src);

/* vbh_polkit.c: AUTH_POLKIT asks polkitd off the loop (vb_polkit.h) */
#define VBH_POLKIT_ACTION_MANAGE "org.vbroker.vbhostd.manage"
#define VBH_POLKIT_ACTION_MONITOR "org.vbroker.vbhostd.monitor"
int vbh_polkit_start(vbh_server *srv, vb_error *err);
/* Start the check for msg (moved on success; the answer comes later, through
 * vbh_dispatch_resume, and the client is not read meanwhile): 0, or -1 with
 * err (answer it now). */
int vbh_auth_polkit_begin(vbh_client *c, vb_msg *msg, vb_error *err);
/* The handler that answers a finished check (c->polkit_job). */
int vbh_auth_polkit_finish(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* dispatch.c: answer a deferred auth call with handler, as if it ran now;
 * the client, paused while it waited, is read again. */
void vbh_dispatch_resume(vbh_client *c, const vb_msg *msg, vbh_handler handler);

/* calls.c */
int vbh_call_open(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_close(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_get_hostname(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_list_domains(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_domain_start(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_domain_shutdown(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* NOT_OPEN for a call on conn_id: -1. */
int vbh_not_open(uint32_t conn_id, vb_error *err);
/* Close d's hypervisor connection, if one is open (its worker). */
void vbh_dconn_close_driver(vbh_dconn *d);

#endif
