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

#include "vb_cred.h"
#include "vb_driver.h"
#include "vb_loop.h"
#include "vb_msg.h"
#include "vb_offloop.h"
#include "vb_sasl.h"
#include "vb_store.h"
#include "vb_stream.h"
#include "vb_token.h"

enum vbh_auth_type { VBH_AUTH_NONE, VBH_AUTH_SASL, VBH_AUTH_PEER, VBH_AUTH_TOKEN };
#define VBH_MAX_AUTH_TYPES 4
#define VBH_MAX_PEER_UIDS 32

typedef struct vbh_auth_list {
    int types[VBH_MAX_AUTH_TYPES];
    size_t n;
} vbh_auth_list;

typedef struct vbh_config {
    char *listen_unix;
    unsigned listen_unix_mode;
    char *listen_tcp;
    vbh_auth_list auth_unix;
    vbh_auth_list auth_tcp;
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
    char *state_dir;
    unsigned max_clients;
    unsigned max_anonymous_clients;
    unsigned auth_attempts_per_connection;
    unsigned auth_timeout_s;
    unsigned frame_timeout_s;        /* a frame must arrive whole this long after its first byte */
    unsigned keepalive_timeout_s;    /* a client that pings and then goes silent this long is gone */
    size_t max_frame;                /* after authentication */
    char *default_uri;
    char *test_host_dir;             /* test:///PATH files allowed only below this dir */
    unsigned token_ttl_s;            /* lifetime of issued tokens (the client may ask for less) */
    int log_level;
    int protocol_v1;                 /* test mode: behave as a HOST v1 server (no AUTH_*) */
    int allow_remote_uris;           /* OPEN may name another vbhostd (a longer chain) */
    unsigned relay_timeout_s;        /* a relayed credential request fails after this */
} vbh_config;

int vbh_config_load(const char *path, vbh_config *cfg, vb_error *err);
void vbh_config_clear(vbh_config *cfg);
const char *vbh_auth_type_name(int type);
/* "sasl, token" for messages */
void vbh_auth_list_format(const vbh_auth_list *list, char *buf, size_t len);
int vbh_auth_list_has(const vbh_auth_list *list, int type);
/* When a listener takes SASL: refuse (VB_ERR_CONFIG naming the file and
 * the chmod to run) a sasldb that others may read or write. */
int vbh_check_sasldb(const vbh_config *cfg, vb_error *err);

typedef struct vbh_server vbh_server;

#define VBH_MAX_CONNS_PER_CLIENT 256

typedef struct vbh_dconn {
    uint32_t conn_id;
    const vb_driver *drv;
    void *conn;
    int read_only;
    struct vbh_dconn *next;
} vbh_dconn;
typedef struct vbh_client vbh_client;

typedef struct vbh_listener {
    vbh_server *srv;
    int fd;
    int is_unix;
    const vbh_auth_list *auth;
} vbh_listener;

/* Failed logins per peer, for the growing delay. */
typedef struct vbh_failure {
    char key[96];
    unsigned count;
    uint64_t last_ms;
    struct vbh_failure *next;
} vbh_failure;

struct vbh_server {
    vbh_config *cfg;
    vb_loop *loop;
    char server_id[65];
    vbh_listener listeners[2];
    size_t nlisteners;
    vbh_client *clients;
    unsigned nclients;
    unsigned nanonymous;
    vbh_failure *failures;
    vb_store *tokens;                /* issued tokens (state_dir/tokens.db) */
    /* driver calls run on per-client worker threads; finished frames come
     * back to the loop through this queue */
    vb_offloop *done;
    pthread_mutex_t lock;            /* client refcounts */
    uint64_t keepalive_timer;
};

struct vbh_client {
    vbh_server *srv;
    vbh_listener *lis;
    vb_stream *stream;
    char peer[96];
    char throttle_key[96];
    uid_t uid;
    int peer_allowed;           /* a unix peer whose uid is on the allow list */
    int counted_anonymous;
    int authenticated;
    char identity[128];
    const char *auth_type;
    vb_sasl *sasl;
    unsigned min_ssf;
    int enable_layer;           /* switch on the SASL layer after this reply */
    unsigned failed_attempts;
    /* a token login between CHALLENGE and PROVE */
    char token_id[VB_TOKEN_ID_LEN + 1];
    uint8_t token_cnonce[VB_TOKEN_NONCE_LEN];
    uint8_t token_snonce[VB_TOKEN_NONCE_LEN];
    int token_pending;
    int confidential;           /* unix socket, or a SASL security layer is on */
    uint64_t auth_timer;
    uint64_t delay_timer;
    uint8_t *delayed_frame;
    size_t delayed_len;
    int close_after_delayed;
    int speaks_keepalive;       /* it sent a PING: silence from it means it is gone */
    uint64_t last_rx_ms;        /* when its last message arrived (loop clock) */
    /* hypervisor connections on this transport, one per conn_id (0 for a
     * plain client; a broker multiplexes several logins' opens over one) */
    struct vbh_dconn *dconns;
    unsigned ndconns;
    uint32_t cur_conn_id;       /* conn_id of the message being handled */
    vbh_client *next, *prev;

    /* the worker that runs this client's driver calls */
    int refs;                   /* loop + worker + queued frames; under srv->lock */
    int gone;                   /* the connection closed (loop thread) */
    pthread_mutex_t wmutex;
    pthread_cond_t wcond;
    int has_worker, busy, closing;
    void *job;                  /* the call handed to the worker (vbh_worker.c) */
    vb_credwait creds_wait;     /* a relayed credential request in flight */
};

int vbh_server_start(vbh_server *srv, vbh_config *cfg, vb_loop *loop, vb_error *err);
int vbh_open_token_store(const vbh_config *cfg, vb_store **out, vb_error *err);
void vbh_server_stop(vbh_server *srv);

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
int vbh_auth_list_handler(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_sasl_init(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_sasl_start(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_sasl_step(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_peer(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_token_challenge(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_auth_token_prove(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_token_issue(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* The listener offers tokens and tokens are allowed on its transport. */
int vbh_tokens_usable_on(const vbh_listener *lis, const vbh_config *cfg);
int vbh_token_revoke(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* vbhostd --list-tokens / --revoke-token ID (prints; returns an exit status) */
int vbh_admin_tokens(vbh_config *cfg, const char *revoke_id);
/* The delay before answering a failed login from this client's peer (ms),
 * after recording the failure. */
uint64_t vbh_auth_record_failure(vbh_client *c);

/* vbh_worker.c */
int vbh_worker_start(vbh_server *srv, vb_error *err);
/* Run a driver call on the client's worker (the msg is moved). */
int vbh_worker_submit(vbh_client *c, vb_msg *msg, vbh_handler handler, vb_error *err);
void vbh_worker_cred_reply(vbh_client *c, const vb_msg *msg);
void vbh_worker_cancel(vbh_client *c);
void vbh_client_unref(vbh_client *c);
/* The credential source drivers get: relays to this client as CALLBACKs. */
void vbh_relay_source(vbh_client *c, vb_cred_source *src);

/* calls.c */
int vbh_call_open(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_close(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_get_hostname(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_list_domains(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_domain_start(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
int vbh_call_domain_shutdown(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err);
/* Close every hypervisor connection of this client (it left). */
void vbh_client_close_driver(vbh_client *c);

#endif
