/*
 * vbroker.h — libvbroker, the thin client library of vbroker.
 *
 * An application links this library to reach virtualization hosts through
 * the user's broker (vbrokerd): it forwards a URI to the broker over a unix
 * socket, and answers the broker's credential requests through ONE callback
 * that receives every item a login needs at once (so a GUI can draw a single
 * form). The library holds no driver, SASL or SSH code; the broker does the
 * logins and caches what it may, so the person logs in once per session.
 *
 *   vb_conn *c = vb_open_auth("test+tcp://host/default", vb_auth_default, 0, &err);
 *   vb_list_domains(c, &doms, &n, &err);
 *   vb_close(c);
 *
 * Every function reports failure as -1 (or NULL) and fills a vb_error when
 * one is given: code, domain and a message that says what to do next. The
 * library never prints (except the default terminal callback, which prompts
 * on the terminal because that is its job) and never exits.
 *
 * Thread safety: a vb_conn is used by one thread at a time; different
 * connections may be used from different threads. vb_set_auth_priority is
 * process-wide: call it before opening connections.
 */
#ifndef VBROKER_H
#define VBROKER_H

#include <stddef.h>
#include <stdint.h>

/* vb_error, VB_CRED_*, VB_OPEN_*, VB_DOMAIN_*: shared with vbroker's own
 * code, so this header composes with its internal ones */
#include "vbroker_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VBROKER_VERSION "0.1.0"

/* ---- errors --------------------------------------------------------------
 * vb_error (vbroker_types.h) carries a code and a domain: the numbers
 * documented in docs/protocol.md, named here. */

enum vbroker_error_code {
    VBROKER_ERR_OK = 0,
    VBROKER_ERR_INTERNAL = 1,
    VBROKER_ERR_NO_MEMORY = 2,
    VBROKER_ERR_SYSTEM = 3,
    VBROKER_ERR_PROTOCOL = 4,
    VBROKER_ERR_TOO_LARGE = 5,        /* a message over the frame limit */
    VBROKER_ERR_NO_SUPPORT = 6,
    VBROKER_ERR_AUTH_REQUIRED = 7,
    VBROKER_ERR_AUTH_FAILED = 8,
    VBROKER_ERR_AUTH_CANCELLED = 9,
    VBROKER_ERR_AUTH_UNAVAILABLE = 10,
    VBROKER_ERR_CRED_REQUIRED = 11,   /* credentials needed, nothing could ask */
    VBROKER_ERR_INVALID_ARG = 12,
    VBROKER_ERR_NO_CONNECT = 13,      /* host or broker unreachable */
    VBROKER_ERR_NOT_OPEN = 14,
    VBROKER_ERR_NO_DOMAIN = 15,
    VBROKER_ERR_OPERATION_INVALID = 16,
    VBROKER_ERR_READ_ONLY = 17,
    VBROKER_ERR_TIMEOUT = 18,
    VBROKER_ERR_CONFIG = 19,           /* a configuration file is wrong */
    VBROKER_ERR_RATE_LIMITED = 20,     /* too many failed logins: wait */
    VBROKER_ERR_TOO_MANY_CLIENTS = 21,
    VBROKER_ERR_PEER_CLOSED = 22,
    VBROKER_ERR_NO_DRIVER = 23,
    VBROKER_ERR_HOST_KEY = 24,         /* an SSH host key did not verify */
    VBROKER_ERR_STORE = 25,            /* the broker's login cache failed */
    VBROKER_ERR_REMOTE = 26,           /* the host reported an error (e.g. XenAPI) */
    VBROKER_ERR_TOKEN_REFUSED = 27,
};

/* Which layer failed (vb_error.domain). */
enum vbroker_error_domain {
    VBROKER_DOM_NONE = 0,
    VBROKER_DOM_PROTO = 1,
    VBROKER_DOM_RPC = 2,
    VBROKER_DOM_AUTH = 3,
    VBROKER_DOM_SASL = 4,
    VBROKER_DOM_DRIVER = 5,
    VBROKER_DOM_BROKER = 6,
    VBROKER_DOM_DAEMON = 7,            /* a vbhostd */
    VBROKER_DOM_SSH = 8,
    VBROKER_DOM_XENAPI = 9,
    VBROKER_DOM_STORE = 10,
    VBROKER_DOM_CONFIG = 11,
    VBROKER_DOM_SYSTEM = 12,
    VBROKER_DOM_CLIENT = 13,           /* this library itself (e.g. the broker unreachable) */
};

/* ---- credentials (VB_CRED_*: vbroker_types.h) --------------------------- */

/* One item of a request. The callback sets result (malloc'd; the library
 * wipes and frees it) and resultlen, or leaves result NULL to use defresult. */
typedef struct vb_credential {
    int type;                 /* enum vb_cred_type_public */
    const char *prompt;       /* for a person, e.g. "Password for alice" */
    const char *challenge;    /* extra detail, may be NULL */
    const char *defresult;    /* default answer, may be NULL */
    char *result;
    unsigned int resultlen;
} vb_credential;

/* What is asking, and why. */
/* Every text here came from a host in the chain and reaches the callback
 * escaped (controls, bidi overrides, line breaks and separators as \xnn /
 * \uxxxx). Only the prompt of the broker's own SSH host key question (kind
 * "ssh-hostkey", nhops == 0) keeps its line breaks ('\n' and nothing else). */
typedef struct vb_auth_request {
    const char *service;      /* e.g. "vbhostd on host1" */
    const char *const *hops;  /* the chain that relays the request, outermost first (at
                                 most 8: a question with more never reaches the callback) */
    size_t nhops;
    int retry;                /* the previous answer to this service failed */
    /* what the question is for (NULL / 0 when a broker from before these
     * fields does not say): "vbhostd", "xenapi", "ssh-password",
     * "ssh-passphrase", "ssh-hostkey" or "libvirt", and where that login goes */
    const char *kind;
    const char *target_host;
    unsigned int target_port;
    const char *target_user;
    /* hops[0 .. nverified) the broker verified itself (the endpoint it
     * dialled, the server that authenticated); the hops after them, kind
     * and target are only as reported by hops[nverified - 1]. A question
     * with nhops == 0 is the broker's own login. */
    size_t nverified;
} vb_auth_request;

/* Fill every item (one call per request) and return 0; return -1 to cancel
 * the login. Called on the thread that called vb_open_auth. */
typedef int (*vb_auth_callback)(const vb_auth_request *req, vb_credential *creds,
                                unsigned int ncreds, void *cbdata);

typedef struct vb_auth {
    const int *credtypes;     /* the types cb can answer; others disable mechanisms needing them */
    unsigned int ncredtypes;
    vb_auth_callback cb;      /* NULL: the program cannot ask. The broker then asks by
                                 itself through a pinentry on the display or terminal
                                 this process has (DISPLAY, WAYLAND_DISPLAY, the
                                 terminal on stdin), one question at a time; with none
                                 of them, or with VB_OPEN_NON_INTERACTIVE, a login that
                                 needs input fails with VBROKER_ERR_CRED_REQUIRED */
    void *cbdata;
} vb_auth;

/* A ready callback for terminal programs: echoes names, hides passphrases
 * (termios), reads lines from stdin when stdin is not a terminal. Like
 * libvirt's, it does not offer USERNAME, so a password login asks exactly
 * for the auth name and then the password. An empty secret without a
 * default is not sent: it asks again (three empty answers cancel). */
extern const vb_auth *vb_auth_default;

/* ---- auth type priority (the 2007 design's static list) ------------------ */
enum vb_auth_type {
    VB_AUTH_NONE = 0,
    VB_AUTH_SASL = 1,
    VB_AUTH_PEER = 2,
    VB_AUTH_TOKEN = 3,
    VB_AUTH_POLKIT = 4,   /* a local vbhostd asks polkitd about this process */
};
/* Process-wide order in which auth types are tried, strongest first; the
 * URI's auth= overrides it for one connection. n = 0 restores the default
 * (token, sasl, polkit, peer, none). Returns -1 on an unknown type. */
int vb_set_auth_priority(const int *types, size_t n);

/* ---- connections ---------------------------------------------------------- */
/* flags: VB_OPEN_READ_ONLY, VB_OPEN_NON_INTERACTIVE (vbroker_types.h) */
typedef struct vb_conn vb_conn;

/* Open a connection through the broker (started on demand unless
 * VBROKER_NO_AUTOSTART=1). auth may be NULL (no prompts). */
vb_conn *vb_open_auth(const char *uri, const vb_auth *auth, unsigned int flags, vb_error *err);
/* Close and free. Returns -1 when the broker reported an error closing. */
int vb_close(vb_conn *conn);

/* ---- host and domain calls ------------------------------------------------ */
/* states: VB_DOMAIN_* (vbroker_types.h) */
typedef struct vb_domain {
    int32_t id;               /* -1 when not running */
    char *name;
    char *uuid;
    unsigned int state;       /* enum vb_domain_state_public */
    uint64_t memory_kib;
    unsigned int vcpus;
} vb_domain;

/* *hostname is malloc'd: free() it. */
int vb_get_hostname(vb_conn *conn, char **hostname, vb_error *err);
/* *domains is an array of *n entries: release with vb_domains_free. */
int vb_list_domains(vb_conn *conn, vb_domain **domains, size_t *n, vb_error *err);
void vb_domains_free(vb_domain *domains, size_t n);
int vb_domain_start(vb_conn *conn, const char *name, vb_error *err);
int vb_domain_shutdown(vb_conn *conn, const char *name, vb_error *err);
const char *vb_domain_state_string(unsigned int state);

/* ---- the broker itself ---------------------------------------------------- */
typedef struct vb_upstream_info {
    char *uri;                /* what was opened */
    char *auth_type;          /* "sasl", "token", "peer", "none", "local" */
    char *sasl_mech;          /* NULL unless sasl */
    unsigned int ssf;         /* SASL security strength (0 = no layer) */
    char *server_id;          /* the host's persistent id, NULL when unknown */
} vb_upstream_info;

/* A logged-in connection from the broker to a host, shared by the opens of
 * that host while it lives (a logout closes it). */
typedef struct vb_host_conn_info {
    char *endpoint;           /* as dialled, e.g. "unix:/run/vbhostd.sock", "tcp:h:16509" */
    char *server_id;          /* the host's persistent id ("" when unknown) */
    char *auth_type;          /* how it logged in: "token", "sasl", "peer", "none" */
    unsigned int opens;       /* opens using it now */
    uint64_t idle_ms;         /* unused this long (0 while in use); closes at --upstream-idle */
} vb_host_conn_info;

/* A login the broker keeps (a token from `vbctl login`); never a secret. */
typedef struct vb_cached_login_info {
    char *server_id;          /* the host's persistent id: a token is only shown to it */
    char *identity;           /* as the host knows the login, e.g. "alice@LAB.TEST" */
    char *uri;                /* the URI the login was made with */
    char *auth_type;          /* how that login authenticated: "sasl", "peer" */
    int64_t created;          /* unix time */
    int64_t expires;          /* unix time */
} vb_cached_login_info;

typedef struct vb_broker_status {
    int64_t pid;
    uint64_t uptime_s;
    unsigned int clients;             /* connected thin clients */
    vb_upstream_info *upstreams;      /* open connections to hosts */
    size_t nupstreams;
    vb_cached_login_info *logins;     /* cached logins (tokens), from the broker's cache */
    size_t nlogins;
    vb_host_conn_info *hosts;         /* the broker's logged-in connections to hosts, */
    size_t nhosts;                    /* shared by opens; none from an older broker */
} vb_broker_status;

/* Ask the broker about itself (never autostarts it). */
int vb_broker_get_status(vb_broker_status *status, vb_error *err);
void vb_broker_status_clear(vb_broker_status *status);
/* ---- log in once, log out ------------------------------------------------ */

/* Authenticate to the host of a remote URI now (asking through auth as
 * vb_open_auth does, never using a cached token) and keep a login token in
 * the broker's cache, so later opens of that host by any program of this user
 * need no prompt until it expires. ttl_s = 0: the host's default (8 h); a host
 * may give less. *identity (malloc'd, may be NULL) and *expires describe it. */
int vb_login(const char *uri, const vb_auth *auth, uint64_t ttl_s, char **identity,
             int64_t *expires, vb_error *err);

/* What the broker keeps for one hop of a login's chain. */
typedef struct vb_login_hop {
    char *hop;                /* who: "vbhostd on unix:/run/a.sock", or a relayed question's
                                 chain "vbhostd on … (server …, token) → xenapi://x:443/" */
    char *kept;               /* what is kept for it, in plain words (never a secret) */
    int64_t until;            /* unix time it lasts at most; 0: nothing kept, so a
                                 non-interactive open will need it again */
} vb_login_hop;

typedef struct vb_login_info {
    char *identity;           /* the first hop's login, as vb_login's */
    int64_t expires;
    vb_login_hop *hops;       /* a nested URI's chain, first hop first; none for */
    size_t nhops;             /* a plain URI (or from an older broker) */
} vb_login_info;

/* vb_login, along a nested URI's whole chain (a XenAPI host behind vbhostd,
 * or behind two): the first hop's own cached login (made at the same
 * endpoint) is used as it is when the broker has one (else a new one is made and kept as vb_login does), then the
 * chain is opened once as a later vb_open_auth will, asking every question
 * beyond the first hop now; the answers that worked are kept in the broker's
 * memory (a XenAPI host or an inner vbhostd has no token to keep). info
 * says what is kept for each hop, and for how long. Clear it with
 * vb_login_info_clear. */
int vb_login_chain(const char *uri, const vb_auth *auth, uint64_t ttl_s, vb_login_info *info,
                   vb_error *err);
void vb_login_info_clear(vb_login_info *info);

typedef struct vb_logout_result {
    char *uri;                /* the login's URI */
    char *identity;
    int revoked;              /* the host confirmed the token is revoked */
    char *note;               /* e.g. "host unreachable: erased locally only" */
} vb_logout_result;

/* Forget the cached login(s) for uri (NULL: every login): revoke each token on
 * its host when the host can be reached, and erase it locally in any case.
 * *results lists what happened (n = 0 when nothing was cached). */
int vb_logout(const char *uri, vb_logout_result **results, size_t *n, vb_error *err);
void vb_logout_results_free(vb_logout_result *results, size_t n);

/* The socket path this process would use (the calling thread's copy, valid
 * until its next call). */
const char *vb_broker_socket_path(void);

#ifdef __cplusplus
}
#endif

#endif
