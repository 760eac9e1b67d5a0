/*
 * vb_protocol.h — every number on the wire, in one place.
 *
 * Programs, procedures (one table per program: number, name, needs-auth,
 * max body size), message types, statuses, error codes and error domains.
 * The tables are X-macros so the numbers, the names and the dispatch
 * metadata can never drift apart. docs/protocol.md documents the same
 * tables for people writing other clients; keep the two in step.
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
/* "tls_cbind" = on a TLS connection the token proofs and SASL carry the
 * connection's tls-exporter channel binding (docs/protocol.md 9.3, 9.7a). */
#define VB_FEATURE_TLS_CBIND "tls_cbind"

/* ---- procedures --------------------------------------------------------
 * X(NAME, number, needs_auth, max_body_bytes)
 * needs_auth: the server answers AUTH_REQUIRED until the connection has
 *   authenticated. max_body_bytes: the largest encoded frame a peer may send
 *   unasked for this procedure (CALL, CALLBACK, EVENT); replies are bounded by
 *   the connection's frame limit only.
 */
#define VB_KEEPALIVE_PROCS(X)                       \
    X(PING,                 1, 0, 256)              \
    X(PONG,                 2, 0, 256)

#define VB_HOST_PROCS(X)                            \
    X(AUTH_LIST,            1, 0, 256)              \
    X(AUTH_SASL_INIT,       2, 0, 256)              \
    X(AUTH_SASL_START,      3, 0, 16384)            \
    X(AUTH_SASL_STEP,       4, 0, 16384)            \
    X(AUTH_TOKEN_CHALLENGE, 5, 0, 1024)             \
    X(AUTH_TOKEN_PROVE,     6, 0, 1024)             \
    X(AUTH_PEER,            7, 0, 256)              \
    X(AUTH_POLKIT,          8, 0, 256)              \
    X(OPEN,                10, 1, 8192)             \
    X(CLOSE,               11, 1, 256)              \
    X(GET_HOSTNAME,        12, 1, 256)              \
    X(LIST_DOMAINS,        13, 1, 256)              \
    X(DOMAIN_START,        14, 1, 1024)             \
    X(DOMAIN_SHUTDOWN,     15, 1, 1024)             \
    X(TOKEN_ISSUE,         20, 1, 256)              \
    X(TOKEN_REVOKE,        21, 1, 1024)             \
    X(CRED_FILL,           30, 0, 65536)            \
    X(CRED_APPROVE,        31, 0, 65536)            \
    X(CRED_REJECT,         32, 0, 65536)

#define VB_BROKER_PROCS(X)                          \
    X(OPEN,                 1, 0, 16384)            \
    X(CLOSE,                2, 0, 256)              \
    X(GET_HOSTNAME,         3, 0, 256)              \
    X(LIST_DOMAINS,         4, 0, 256)              \
    X(DOMAIN_START,         5, 0, 1024)             \
    X(DOMAIN_SHUTDOWN,      6, 0, 1024)             \
    X(STATUS,               7, 0, 256)              \
    X(LOGIN,                8, 0, 16384)            \
    X(LOGOUT,               9, 0, 16384)            \
    X(CRED_REQUEST,        20, 0, 65536)

enum vb_keepalive_proc {
#define VB_X(name, num, auth, max) VB_KEEPALIVE_PROC_##name = num,
    VB_KEEPALIVE_PROCS(VB_X)
#undef VB_X
};
enum vb_host_proc {
#define VB_X(name, num, auth, max) VB_HOST_PROC_##name = num,
    VB_HOST_PROCS(VB_X)
#undef VB_X
};
enum vb_broker_proc {
#define VB_X(name, num, auth, max) VB_BROKER_PROC_##name = num,
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
/* The broker's socket as client and broker both find it: $VBROKER_SOCKET, else
 * $XDG_RUNTIME_DIR/vbroker/sock (when absolute), else /tmp/vbroker-UID/sock.
 * Only a name: both sides check its directory with vb_sockdir_open
 * (vb_sockdir.h) before they use it. */
void vb_proto_broker_socket_path(char *buf, size_t len);

/* ---- table lookups ----------------------------------------------------- */
typedef struct vb_proc_info {
    uint32_t program;
    uint32_t number;
    const char *name;
    int needs_auth;
    uint32_t max_body;
} vb_proc_info;

/* The entry for (program, procedure), or NULL when this build does not know it. */
const vb_proc_info *vb_proto_proc_lookup(uint32_t program, uint32_t procedure);
/* 1 for the HOST driver calls during which the server's driver may log in
 * (OPEN, and the calls whose driver may have to log in again, e.g. after a
 * XenAPI session expired): the only calls during which the server may ask
 * its client a credential question (CRED_FILL; docs/protocol.md 9.12). */
int vb_proto_host_proc_may_log_in(uint32_t procedure);
/* Current version of a program, 0 when unknown. */
uint32_t vb_proto_program_version(uint32_t program);
const char *vb_proto_program_name(uint32_t program);
const char *vb_proto_error_code_name(int code);     /* "AUTH_REQUIRED" */
const char *vb_proto_error_code_text(int code);     /* "authentication required" */
const char *vb_proto_error_domain_name(int domain); /* "auth" */
const char *vb_proto_msg_type_name(uint32_t type);

#endif
