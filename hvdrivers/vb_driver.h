/*
 * vb_driver.h — the hypervisor driver vtable.
 *
 * Every driver (test, xenapi, remote) implements these calls; vbhostd and
 * vbrokerd pick one by URI and never look inside. Drivers report errors as
 * vb_error values and never print. Credentials a driver needs come from the
 * vb_cred_source it is given at open (may be NULL when none can be asked).
 */
#ifndef VB_DRIVER_H
#define VB_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "vb_error.h"
#include "vb_uri.h"
#include "vbroker_types.h"

/* VB_OPEN_READ_ONLY and VB_OPEN_NON_INTERACTIVE are libvbroker's public
 * flags (vbroker_types.h), the bits BROKER OPEN/LOGIN carry. NON_INTERACTIVE
 * is for the broker only (thin client → vbrokerd): nothing may be asked, by
 * any route (callback or the broker's pinentry); vbrokerd takes it off
 * before a driver sees the flags. */
enum vb_open_flags {
    /* The flags below never cross the wire (the remote driver sends only
     * VB_OPEN_WIRE_FLAGS to the next hop); vbhostd sets them on its opens.
     *
     * FROM_WIRE: the URI came from a client over the network, not from this
     * process's operator. The driver must use nothing of this process's own
     * identity for it: no peer or none login, no ssh-agent, no key file, no
     * known_hosts write, no SASL mechanism that logs in with this process's
     * own credentials (GSSAPI, EXTERNAL), no local file named by the URI, no
     * XenAPI pool redirect to an address nobody allowed. Its credentials come
     * only from the cred source (in vbhostd: relayed to the client). */
    VB_OPEN_FROM_WIRE = 1u << 29,
    /* PRIVATE: share nothing with opens of another credential source. The
     * remote driver shares a transport only among opens with the same
     * source (same fn and opaque: in vbhostd, one client connection) and
     * closes it with the last of them, so no login outlives its client. */
    VB_OPEN_PRIVATE = 1u << 30,
};
#define VB_OPEN_WIRE_FLAGS ((unsigned)VB_OPEN_READ_ONLY)

/* enum vb_domain_state_public (libvirt's virDomainState numbering): the
 * states libvbroker's API reports, defined there once (vbroker_types.h) */

#define VB_DOMAIN_NAME_MAX 256
#define VB_UUID_STRING_LEN 37 /* 36 chars + NUL */

typedef struct vb_domain_info {
    int32_t id;                      /* -1 when not running */
    char name[VB_DOMAIN_NAME_MAX];
    char uuid[VB_UUID_STRING_LEN];
    uint32_t state;                  /* enum vb_domain_state_public */
    uint64_t memory_kib;
    uint32_t vcpus;
} vb_domain_info;

const char *vb_domain_state_name(uint32_t state); /* "running", "shut off", ... */

struct vb_enc;
/* The DOMAINS reply body (proto/vb_protocol.h) of n domains, as vbhostd's
 * HOST and vbrokerd's BROKER LIST_DOMAINS send it. */
void vb_driver_encode_domains(struct vb_enc *enc, const vb_domain_info *doms, size_t n);

/* 0 when name can name a domain: 1..VB_DOMAIN_NAME_MAX-1 bytes, no control
 * characters. Otherwise -1 and err is VB_ERR_INVALID_ARG (the message never
 * echoes the control characters). Every driver checks names with this. */
int vb_domain_name_check(const char *name, vb_error *err);

struct vb_cred_source; /* util/vb_cred.h; may be NULL when nothing can be asked */

/* How a connection was made, for `vbctl status` and debug logs. */
typedef struct vb_conn_info {
    char auth_type[32];     /* "local", "sasl", "peer", "none", "none (v1 server)" */
    char sasl_mech[32];     /* "" unless sasl */
    unsigned ssf;           /* SASL security strength, 0 = no layer */
    char server_id[72];     /* the host's persistent id, "" when unknown */
} vb_conn_info;

typedef struct vb_driver {
    const char *name; /* matches vb_uri.driver, e.g. "test" */
    int (*open)(const vb_uri *uri, unsigned flags, struct vb_cred_source *creds,
                void **conn, vb_error *err);
    void (*close)(void *conn);
    int (*get_hostname)(void *conn, char **hostname, vb_error *err);
    /* *doms is malloc'd (free with free()), *n entries */
    int (*list_domains)(void *conn, vb_domain_info **doms, size_t *n, vb_error *err);
    int (*domain_start)(void *conn, const char *name, vb_error *err);
    int (*domain_shutdown)(void *conn, const char *name, vb_error *err);
    /* optional: describe the connection (NULL → "local") */
    void (*describe)(void *conn, vb_conn_info *info);
} vb_driver;

/* The driver for a local (transport-less) URI, or NULL with err set to
 * VB_ERR_NO_DRIVER naming the drivers this build has. */
const vb_driver *vb_driver_lookup(const char *name, vb_error *err);

extern const vb_driver vb_test_driver;
/* The client side of vbhostd (hvdrivers/vb_remote.h) as a driver. */
extern const vb_driver vb_remote_driver;

/* Connection sharing in the remote driver: close transports idle this long
 * (default 300 s; 0 closes them as soon as nobody uses them), reap idle ones
 * now, and counters for status and tests. */
void vb_remote_driver_set_idle(uint64_t ms);
void vb_remote_driver_reap(void);
/* Keepalive for the shared transports (call every interval_ms); returns how
 * many were found dead (see vb_remote_keepalive). */
unsigned vb_remote_driver_keepalive(uint64_t interval_ms, unsigned count);
size_t vb_remote_driver_upstreams(void);
/* Logout: close the upstreams to endpoint (NULL: all) of server_id (NULL:
 * any); returns how many. */
unsigned vb_remote_driver_close_endpoint(const char *endpoint, const char *server_id);
/* One open upstream, for status. */
typedef struct vb_transport_info {
    char endpoint[1104];
    char server_id[72];
    char auth_type[32];
    unsigned opens;     /* opens using it now */
    uint64_t idle_ms;   /* since its last open closed; 0 while in use */
} vb_transport_info;
size_t vb_remote_driver_list(vb_transport_info *out, size_t max);
unsigned vb_remote_driver_logins(void);

/* 0 when a URI that arrived over the wire (VB_OPEN_FROM_WIRE) asks for
 * nothing of the opening process's own identity; else -1 with err
 * (OPERATION_INVALID) naming the refused parameter: auth=peer|none (but
 * over ssh), auth=sasl.GSSAPI|EXTERNAL, keyfile=, known_hosts=,
 * known_hosts_verify=auto|ignore, sshauth= with agent or privkey, cafile=,
 * no_verify=1, authfile=. Endpoints (host, port, socket=) are the caller's
 * allow-list's business, not this check's. */
int vb_driver_check_wire_uri(const vb_uri *uri, vb_error *err);
/* 1 when a SASL mechanism would log in with this process's own credentials
 * (a Kerberos ticket or keytab, the transport's identity): GSSAPI, GS2-*,
 * EXTERNAL. Never offered for a wire URI. */
int vb_driver_sasl_mech_is_own_identity(const char *mech);
/* 1 when an auth= spec would log in as this process over transport: peer
 * and none (with any ".suffix", any case) except at the end of an ssh tunnel
 * (where the peer is the ssh user the client logged in as), and
 * sasl.GSSAPI and the like everywhere. */
int vb_driver_auth_is_own_identity(const char *spec, const char *transport);

/* 0 when every driver the URI names (its own, and those of URIs nested in
 * name=) is in this build and it carries only parameters that its driver
 * and transport read, each once; else -1 with err: NO_DRIVER naming the
 * drivers there are, or INVALID_ARG naming the parameter and the known
 * ones. Nothing is connected or asked: callers check before they log in. */
int vb_driver_check_uri(const vb_uri *uri, vb_error *err);
/* The driver for any URI: remote when it names a transport, else by name;
 * NULL with err when vb_driver_check_uri refuses the URI. */
const vb_driver *vb_driver_for_uri(const vb_uri *uri, vb_error *err);
/* Fill info with drv->describe, or "local" when the driver has none. */
void vb_driver_describe(const vb_driver *drv, void *conn, vb_conn_info *info);

/* ---- the credential source, as every driver asks it (vb_driver_cred.c) ---- */

struct vb_cred_request;
/* Ask creds the question req (its service names what is asked for; what
 * says which login, "a XenAPI login"): 0 with the answers in req, else -1
 * with err in domain: CRED_REQUIRED when there is no source or it has no
 * fn, the source's own error, or AUTH_CANCELLED when it gave none. */
int vb_driver_ask(const struct vb_cred_source *creds, struct vb_cred_request *req, int domain,
                  const char *what, vb_error *err);
/* Tell creds that req's answers worked (approve) or were refused (reject),
 * as git's credential helpers are told; nothing when creds or that callback
 * is NULL. */
void vb_driver_verdict(const struct vb_cred_source *creds, const struct vb_cred_request *req,
                       int worked);

#endif
