/*
 * vb_protocol.h — every number on the wire, in one place.
 *
 * Programs, procedures (one table per program: number, name, needs-auth,
 * where it runs, first version, body shape, max body size), bodies, message
 * types, statuses, error codes and error domains. The tables are X-macros so
 * the numbers, the names and the dispatch metadata can never drift apart.
 * docs/protocol.md's tables are generated from this file
 * (docs/gen-tables.py; tests/unit/test_proctable.c checks they match).
 *
 * Nothing here opens a socket or makes a policy decision.
 */
#ifndef VB_PROTOCOL_H
#define VB_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/* ---- frame limits (checked before any allocation) ---------------------- */
#define VB_FRAME_PREFIX_LEN        4u
#define VB_FRAME_MAX_PREAUTH       (64u * 1024u)        /* before authentication */
#define VB_FRAME_MAX_POSTAUTH      (4u * 1024u * 1024u) /* after; configurable down */
#define VB_FRAME_MAX_ABSOLUTE      (16u * 1024u * 1024u)/* no configuration goes above */
#define VB_MSG_MAX_DEPTH           16u                  /* msgpack nesting, header array = 1 */
#define VB_SCREEN_VALUE_MAX        255u   /* BROKER OPEN screen fields (DISPLAY, tty, ...) */
#define VB_MSG_HEADER_FIELDS       8u                   /* 7 header fields + body */

/* ---- message types and statuses --------------------------------------- */
enum vb_msg_type {
    VB_MSG_CALL = 0,            /* request; the peer answers with a REPLY */
    VB_MSG_REPLY = 1,           /* answer to a CALL, same serial */
    VB_MSG_CALLBACK = 2,        /* server → client request during a CALL (credential relay) */
    VB_MSG_CALLBACK_REPLY = 3,  /* client's answer to a CALLBACK, same serial */
    VB_MSG_EVENT = 4,           /* one-way notification, no answer */
};
#define VB_MSG_TYPE_MAX VB_MSG_EVENT

enum vb_status {
    VB_STATUS_OK = 0,
    VB_STATUS_ERROR = 1,        /* body is [code, domain, message] */
};

/* ---- programs ---------------------------------------------------------- */
/* X(NAME, number, current version) */
#define VB_PROGRAMS(X)                  \
    X(KEEPALIVE, 1, 1)                  \
    X(HOST,      2, 2)                  \
    X(BROKER,    3, 1)

enum vb_program {
#define VB_X(name, num, ver) VB_PROG_##name = num,
    VB_PROGRAMS(VB_X)
#undef VB_X
};

enum vb_program_version {
#define VB_X(name, num, ver) VB_PROG_##name##_VERSION = ver,
    VB_PROGRAMS(VB_X)
#undef VB_X
};

/* Version 1 of the HOST program had no AUTH_* procedures (the compatibility
 * story of the 2007 design); version 2 adds them. */
#define VB_PROG_HOST_VERSION_NOAUTH 1
/* Features a vbhostd names in the 3rd field of its AUTH_LIST reply: "conn_id"
 * = several hypervisor connections on one transport (docs/protocol.md 2.1). */
#define VB_FEATURE_CONN_ID "conn_id"
/* "token_bind" = AUTH_TOKEN_CHALLENGE takes the endpoint the client dialled
 * and both token proofs are the bound (v2) ones; unbound proofs are refused
 * (docs/protocol.md "token binding"). */
#define VB_FEATURE_TOKEN_BIND "token_bind"
/* "concurrent_calls" = driver calls of different conn_ids on one transport
 * run at the same time: a client may send the next before the last one's
 * REPLY (docs/protocol.md 2.1); a server without it refuses that. */
#define VB_FEATURE_CONCURRENT "concurrent_calls"
/* "tls_cbind" = on a TLS connection the token proofs and SASL carry the
 * connection's tls-exporter channel binding (docs/protocol.md 9.3, 9.7a). */
#define VB_FEATURE_TLS_CBIND "tls_cbind"

/* ---- procedures --------------------------------------------------------
 * One table per program; everything about a procedure that is not its
 * handler's code is a column here. Dispatch (daemon/vbh_dispatch.c,
 * broker/brk_dispatch.c), the client stubs, the broker's forwarding and the
 * tables of docs/protocol.md (docs/gen-tables.py) are derived from it.
 *
 * X(NAME, number, needs_auth, runs, logs_in, since, body, max_body_bytes)
 * needs_auth: the server answers AUTH_REQUIRED until the connection has
 *   authenticated.
 * runs: where the server runs it (enum vb_proc_runs): LOOP on the event
 *   loop, ASYNC asked off the loop and answered on it later, WORKER on the
 *   connection's worker thread (may block: a driver call), PEER the server
 *   sends it and its client handles it (CALLBACK, EVENT).
 * logs_in: 1 when the driver may log in during the call (OPEN, and the calls
 *   whose driver may have to log in again): the only calls during which the
 *   server may ask a credential question (HOST: the relay rule,
 *   docs/protocol.md 9.12).
 * since: the first version of the program that has it.
 * body: the body shape (VB_BODIES below): the call's and the reply's codec.
 *   Procedures of different programs that carry the same message name the
 *   same body (HOST CRED_FILL and BROKER CRED_REQUEST).
 * max_body_bytes: the largest encoded frame a peer may send unasked for this
 *   procedure (CALL, CALLBACK, EVENT); replies are bounded by the
 *   connection's frame limit only.
 */
#define VB_KEEPALIVE_PROCS(X)                                                   \
    X(PING,                 1, 0, LOOP,   0, 1, EMPTY,           256)           \
    X(PONG,                 2, 0, LOOP,   0, 1, EMPTY,           256)

#define VB_HOST_PROCS(X)                                                        \
    X(AUTH_LIST,            1, 0, LOOP,   0, 2, AUTH_LIST,       256)           \
    X(AUTH_SASL_INIT,       2, 0, LOOP,   0, 2, SASL_INIT,       256)           \
    X(AUTH_SASL_START,      3, 0, LOOP,   0, 2, SASL_START,      16384)         \
    X(AUTH_SASL_STEP,       4, 0, LOOP,   0, 2, SASL_STEP,       16384)         \
    X(AUTH_TOKEN_CHALLENGE, 5, 0, ASYNC,  0, 2, TOKEN_CHALLENGE, 1024)          \
    X(AUTH_TOKEN_PROVE,     6, 0, ASYNC,  0, 2, TOKEN_PROVE,     1024)          \
    X(AUTH_PEER,            7, 0, LOOP,   0, 2, AUTH_PEER,       256)           \
    X(AUTH_POLKIT,          8, 0, ASYNC,  0, 2, AUTH_POLKIT,     256)           \
    X(OPEN,                10, 1, WORKER, 1, 1, HOST_OPEN,       8192)          \
    X(CLOSE,               11, 1, WORKER, 0, 1, EMPTY,           256)           \
    X(GET_HOSTNAME,        12, 1, WORKER, 1, 1, HOSTNAME,        256)           \
    X(LIST_DOMAINS,        13, 1, WORKER, 1, 1, DOMAINS,         256)           \
    X(DOMAIN_START,        14, 1, WORKER, 1, 1, NAME,            1024)          \
    X(DOMAIN_SHUTDOWN,     15, 1, WORKER, 1, 1, NAME,            1024)          \
    X(TOKEN_ISSUE,         20, 1, ASYNC,  0, 2, TOKEN_ISSUE,     256)           \
    X(TOKEN_REVOKE,        21, 1, ASYNC,  0, 2, TOKEN_REVOKE,    1024)          \
    X(CRED_FILL,           30, 0, PEER,   0, 2, CRED_QUESTION,   65536)         \
    X(CRED_APPROVE,        31, 0, PEER,   0, 2, CRED_VERDICT,    65536)         \
    X(CRED_REJECT,         32, 0, PEER,   0, 2, CRED_VERDICT,    65536)

#define VB_BROKER_PROCS(X)                                                      \
    X(OPEN,                 1, 0, WORKER, 1, 1, BROKER_OPEN,     16384)         \
    X(CLOSE,                2, 0, WORKER, 0, 1, EMPTY,           256)           \
    X(GET_HOSTNAME,         3, 0, WORKER, 1, 1, HOSTNAME,        256)           \
    X(LIST_DOMAINS,         4, 0, WORKER, 1, 1, DOMAINS,         256)           \
    X(DOMAIN_START,         5, 0, WORKER, 1, 1, NAME,            1024)          \
    X(DOMAIN_SHUTDOWN,      6, 0, WORKER, 1, 1, NAME,            1024)          \
    X(STATUS,               7, 0, LOOP,   0, 1, STATUS,          256)           \
    X(LOGIN,                8, 0, WORKER, 1, 1, LOGIN,           16384)         \
    X(LOGOUT,               9, 0, WORKER, 0, 1, LOGOUT,          16384)         \
    X(CRED_REQUEST,        20, 0, PEER,   0, 1, CRED_QUESTION,   65536)

/* ---- bodies --------------------------------------------------------------
 * X(NAME, call or callback body, its answer's body), in docs/protocol.md's
 * notation (9.1); "-" when there is no answer (an EVENT). Section 9 of
 * docs/protocol.md says what each field means. */
#define VB_BODIES(X)                                                            \
    X(EMPTY,           "[]", "[]")                                              \
    X(NAME,            "[name str]", "[]")                                      \
    X(HOSTNAME,        "[]", "[hostname str]")                                  \
    X(DOMAINS,         "[]",                                                    \
      "[domains [[id int, name str, uuid str|nil, state uint, memory_kib uint, vcpus uint], …]]") \
    X(AUTH_LIST,       "[]", "[types [str…], server_id str, features [str…]]")  \
    X(SASL_INIT,       "[]", "[mechlist str]")                                  \
    X(SASL_START,      "[mech str, data bin]", "[complete bool, data bin]")     \
    X(SASL_STEP,       "[data bin]", "[complete bool, data bin]")               \
    X(TOKEN_CHALLENGE, "[id str, client_nonce bin, endpoint str]",              \
      "[server_nonce bin, server_proof bin]")                                   \
    X(TOKEN_PROVE,     "[client_proof bin]", "[identity str]")                  \
    X(AUTH_PEER,       "[]", "[identity str]")                                  \
    X(AUTH_POLKIT,     "[]", "[identity str, access str]")                      \
    X(HOST_OPEN,       "[name str, flags uint]", "[]")                          \
    X(TOKEN_ISSUE,     "[ttl_s uint]", "[id str, secret bin, expires int, identity str]") \
    X(TOKEN_REVOKE,    "[id str]", "[revoked bool]")                            \
    X(CRED_QUESTION,   "[service str, hops [str…], retry bool, items [[type uint, prompt str|nil, " \
                       "challenge str|nil, defresult str|nil], …], id uint, kind str|nil, " \
                       "target [scheme str, host str, port uint, user str|nil]|nil, nverified uint]", \
                       "[results [bin|nil, …]]")                              \
    X(CRED_VERDICT,    "[service str, id uint]", "-")                           \
    X(BROKER_OPEN,     "[uri str, flags uint, cred_types [uint…], auth_priority [str…], " \
                       "can_prompt bool, auth_file str|nil, screen?]", "[]")  \
    X(STATUS,          "[]", "[pid int, uptime_s uint, clients uint, upstreams [[uri str, " \
                       "auth_type str, sasl_mech str|nil, ssf uint, server_id str|nil], …], " \
                       "logins [[server_id str, identity str, uri str, auth_type str, created int, " \
                       "expires int], …], hosts [[endpoint str, server_id str, auth_type str, " \
                       "opens uint, idle_ms uint], …]]")                        \
    X(LOGIN,           "[uri str, flags uint, cred_types [uint…], auth_priority [str…], " \
                       "can_prompt bool, ttl_s uint, auth_file str|nil, screen?]", \
                       "[identity str, expires int, hops [[hop str, kept str, until int], …]]") \
    X(LOGOUT,          "[uri str|nil]", "[[[uri str, identity str, revoked bool, note str], …]]")

enum vb_body {
#define VB_X(name, call, reply) VB_BODY_##name,
    VB_BODIES(VB_X)
#undef VB_X
    VB_BODY_COUNT
};

enum vb_proc_runs {
    VB_RUN_LOOP,    /* on the event loop */
    VB_RUN_ASYNC,   /* asked off the loop (polkitd over D-Bus, tokens.db on a lane), answered on it */
    VB_RUN_WORKER,  /* on the connection's worker thread: may block */
    VB_RUN_PEER,    /* sent by the server, handled by its client */
};

enum vb_keepalive_proc {
#define VB_X(name, num, auth, runs, login, since, body, max) VB_KEEPALIVE_PROC_##name = num,
    VB_KEEPALIVE_PROCS(VB_X)
#undef VB_X
};
enum vb_host_proc {
#define VB_X(name, num, auth, runs, login, since, body, max) VB_HOST_PROC_##name = num,
    VB_HOST_PROCS(VB_X)
#undef VB_X
};
enum vb_broker_proc {
#define VB_X(name, num, auth, runs, login, since, body, max) VB_BROKER_PROC_##name = num,
    VB_BROKER_PROCS(VB_X)
#undef VB_X
};

/* ---- error domains: which layer produced an error ---------------------- */
#define VB_ERROR_DOMAINS(X)     \
    X(NONE,      0, "none")     \
    X(PROTO,     1, "proto")    \
    X(RPC,       2, "rpc")      \
    X(AUTH,      3, "auth")     \
    X(SASL,      4, "sasl")     \
    X(DRIVER,    5, "driver")   \
    X(BROKER,    6, "broker")   \
    X(DAEMON,    7, "daemon")   \
    X(SSH,       8, "ssh")      \
    X(XENAPI,    9, "xenapi")   \
    X(STORE,    10, "store")    \
    X(CONFIG,   11, "config")   \
    X(SYSTEM,   12, "system")   \
    X(CLIENT,   13, "client")

enum vb_error_domain {
#define VB_X(name, num, str) VB_DOM_##name = num,
    VB_ERROR_DOMAINS(VB_X)
#undef VB_X
};

/* ---- error codes: what went wrong -------------------------------------- */
#define VB_ERROR_CODES(X)                                                   \
    X(OK,                 0, "success")                                     \
    X(INTERNAL,           1, "internal error")                              \
    X(NO_MEMORY,          2, "out of memory")                               \
    X(SYSTEM,             3, "system call failed")                          \
    X(PROTOCOL,           4, "malformed message")                           \
    X(TOO_LARGE,          5, "message too large")                           \
    X(NO_SUPPORT,         6, "procedure not supported by this peer")        \
    X(AUTH_REQUIRED,      7, "authentication required")                     \
    X(AUTH_FAILED,        8, "authentication failed")                       \
    X(AUTH_CANCELLED,     9, "authentication cancelled")                    \
    X(AUTH_UNAVAILABLE,  10, "no usable authentication type")               \
    X(CRED_REQUIRED,     11, "credentials required")                        \
    X(INVALID_ARG,       12, "invalid argument")                            \
    X(NO_CONNECT,        13, "cannot connect")                              \
    X(NOT_OPEN,          14, "connection not open")                         \
    X(NO_DOMAIN,         15, "no such domain")                              \
    X(OPERATION_INVALID, 16, "operation invalid in this state")             \
    X(READ_ONLY,         17, "connection is read-only")                     \
    X(TIMEOUT,           18, "timed out")                                   \
    X(CONFIG,            19, "configuration error")                         \
    X(RATE_LIMITED,      20, "too many attempts")                           \
    X(TOO_MANY_CLIENTS,  21, "too many clients")                            \
    X(PEER_CLOSED,       22, "peer closed the connection")                  \
    X(NO_DRIVER,         23, "no driver for this URI")                      \
    X(HOST_KEY,          24, "host key verification failed")                \
    X(STORE,             25, "credential store error")                      \
    X(REMOTE,            26, "error from the remote host")                 \
    X(TOKEN_REFUSED,     27, "token not accepted")

enum vb_error_code {
#define VB_X(name, num, str) VB_ERR_##name = num,
    VB_ERROR_CODES(VB_X)
#undef VB_X
};

/* ---- where the BROKER program is spoken ---------------------------------- */
/* vb_path_broker_socket (vb_paths.h), with every other per-user path */

/* ---- table lookups ----------------------------------------------------- */
typedef struct vb_proc_info {
    uint32_t program;
    uint32_t number;
    const char *name;
    int needs_auth;
    enum vb_proc_runs runs;
    int logs_in;
    uint32_t since;         /* first program version that has it */
    enum vb_body body;
    uint32_t max_body;
} vb_proc_info;

/* The entry for (program, procedure), or NULL when this build does not know it. */
const vb_proc_info *vb_proto_proc_lookup(uint32_t program, uint32_t procedure);
/* The entry for (program, procedure) as a server speaking `version` of the
 * program knows it: NULL also when the procedure came in a later version. */
const vb_proc_info *vb_proto_proc_lookup_version(uint32_t program, uint32_t version,
                                                 uint32_t procedure);
/* 1 for the HOST driver calls during which the server's driver may log in
 * (the logs_in column): the only calls during which the server may ask its
 * client a credential question (CRED_FILL; docs/protocol.md 9.12). */
int vb_proto_host_proc_may_log_in(uint32_t procedure);
/* "CRED_QUESTION"; "UNKNOWN" out of range */
const char *vb_proto_body_name(enum vb_body body);
/* Current version of a program, 0 when unknown. */
uint32_t vb_proto_program_version(uint32_t program);
const char *vb_proto_program_name(uint32_t program);
const char *vb_proto_error_code_name(int code);     /* "AUTH_REQUIRED" */
const char *vb_proto_error_code_text(int code);     /* "authentication required" */
const char *vb_proto_error_domain_name(int domain); /* "auth" */
const char *vb_proto_msg_type_name(uint32_t type);

#endif
