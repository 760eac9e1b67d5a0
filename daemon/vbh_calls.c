/* The driver procedures: OPEN, CLOSE and the host/domain calls. */
#include "vbh.h"

#include <stdlib.h>
#include <string.h>

#include "vb_bodies.h"
#include "vb_libvirt.h"
#include "vb_log.h"
#include "vb_remote.h"
#include "vb_ssh.h"
#include "vb_xenapi.h"

#define NAME_MAX_LEN 4096

void vbh_dconn_close_driver(vbh_dconn *d)
{
    if (d->conn)
        d->drv->close(d->conn);
    d->drv = NULL;
    d->conn = NULL;
}

/* The hypervisor connection the current call's conn_id names (the handlers
 * of driver calls run on that conn_id's worker). */
static vbh_dconn *need_open(vbh_client *c, vb_error *err)
{
    (void)c;
    vbh_dconn *d = vbh_worker_dconn();
    if (!d || !d->conn) {
        vbh_not_open(d ? d->conn_id : 0, err);
        return NULL;
    }
    return d;
}

int vbh_not_open(uint32_t conn_id, vb_error *err)
{
    return vb_error_set(err, VB_ERR_NOT_OPEN, VB_DOM_DAEMON,
                        "no hypervisor connection is open%s: call OPEN first",
                        conn_id ? " with this connection id" : "");
}

static vbh_dconn *need_writable(vbh_client *c, vb_error *err)
{
    vbh_dconn *d = need_open(c, err);
    if (d && d->read_only) {
        vb_error_set(err, VB_ERR_READ_ONLY, VB_DOM_DAEMON, "this connection was opened read-only");
        return NULL;
    }
    return d;
}

static void empty_reply(vb_enc *reply)
{
    vb_enc_array(reply, 0);
}

/* The test driver reads test:///PATH files with the daemon's privileges:
 * only below test_host_dir, never anywhere a client names. */
static int check_local_uri(const vbh_config *cfg, const vb_uri *uri, vb_error *err)
{
    if (strcmp(uri->driver, "test") != 0 || !uri->path || strcmp(uri->path, "default") == 0)
        return 0;
    size_t dlen = cfg->test_host_dir ? strlen(cfg->test_host_dir) : 0;
    const char *path = uri->path[0] == '/' ? uri->path : NULL;
    char want[4200];
    if (!path) {
        snprintf(want, sizeof want, "/%s", uri->path);
        path = want;
    }
    if (dlen && strncmp(path, cfg->test_host_dir, dlen) == 0 && path[dlen] == '/' &&
        !strstr(path, "/../"))
        return 0;
    return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                        "this server only opens test:///default%s%s",
                        dlen ? " and test host files below " : "",
                        dlen ? cfg->test_host_dir : "");
}

/* The endpoint a remote URI dials: tcp and ssh by host and port, unix by
 * socket path (socket= or the default). */
static int next_hop_allowed(const vbh_config *cfg, const vb_uri *uri, vb_error *err)
{
    const char *t = uri->transport;
    const char *host = uri->host;
    int port = uri->port;
    if (strcmp(t, "unix") == 0) {
        host = vb_uri_param_get(uri, "socket");
        host = host ? host : VB_REMOTE_DEFAULT_SOCKET;
        port = 0;
    } else if (!port) {
        port = strcmp(t, "ssh") == 0   ? VB_SSH_DEFAULT_PORT
               : strcmp(t, "tls") == 0 ? VB_TLS_DEFAULT_PORT
                                       : VB_REMOTE_DEFAULT_PORT;
    }
    if (vbh_endpoint_allowed(cfg->allowed_next_hops, cfg->nallowed_next_hops, t, host, port))
        return 0;
    if (port)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                            "this server may not reach %.16s://%.255s:%d: the operator lists the "
                            "next hops it may reach in allowed_next_hops (vbhostd.conf)",
                            t, host ? host : "", port);
    return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                        "this server may not reach the unix socket %.255s (socket=): the "
                        "operator lists the next hops it may reach in allowed_next_hops "
                        "(vbhostd.conf)", host);
}

static int xenapi_allowed(const vbh_config *cfg, const vb_uri *uri, vb_error *err)
{
    int port = vb_xenapi_uri_port(uri);
    if (!port || vbh_endpoint_allowed(cfg->allowed_xenapi, cfg->nallowed_xenapi, "xenapi",
                                      uri->host, port))
        return 0; /* a malformed URI: the driver says what is wrong with it */
    return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                        "this server may not reach the XenAPI host %.255s:%d: the operator lists "
                        "the XenAPI hosts it may reach in allowed_xenapi_hosts (vbhostd.conf)",
                        uri->host ? uri->host : "", port);
}

/* libvirt:DRIVER+tcp://HOST[:PORT]/PATH only, to an allowed endpoint (the
 * driver refuses the rest of what would act as this daemon) */
static int libvirt_allowed(const vbh_config *cfg, const vb_uri *uri, vb_error *err)
{
    char host[256];
    int port;
    if (vb_libvirt_wire_endpoint(uri->path, host, sizeof host, &port, err) < 0)
        return -1;
    if (vbh_endpoint_allowed(cfg->allowed_libvirt, cfg->nallowed_libvirt, "libvirt", host, port))
        return 0;
    return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                        "this server may not reach the libvirt host %.255s:%d: the operator lists "
                        "the libvirtd endpoints it may reach in allowed_libvirt_hosts "
                        "(vbhostd.conf)",
                        host, port);
}

/* A URI a client sent is not the operator's: nothing of the daemon's own
 * identity (the driver check), and only endpoints the operator allowed,
 * judged before any connection is made. */
static int check_wire_uri(const vbh_config *cfg, const vb_uri *uri, vb_error *err)
{
    if (vb_driver_check_wire_uri(uri, err) < 0)
        return -1;
    if (vb_uri_is_remote(uri))
        return next_hop_allowed(cfg, uri, err);
    if (strcmp(uri->driver, "xenapi") == 0)
        return xenapi_allowed(cfg, uri, err);
    if (vb_uri_is_libvirt(uri))
        return libvirt_allowed(cfg, uri, err);
    return 0;
}

int vbh_call_open(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    char *name = NULL;
    uint32_t flags = 0;
    if (vb_rd_strdup(args, NAME_MAX_LEN, &name, err) < 0 || vb_rd_u32(args, &flags, err) < 0) {
        free(name);
        return -1;
    }
    if (c->polkit_read_only && !(flags & VB_OPEN_READ_ONLY)) {
        free(name);
        return vb_error_set(err, VB_ERR_READ_ONLY, VB_DOM_DAEMON,
                            "polkit grants you " VBH_POLKIT_ACTION_MONITOR " but not "
                            VBH_POLKIT_ACTION_MANAGE ": open read-only, or ask an administrator "
                            "for a polkit rule granting " VBH_POLKIT_ACTION_MANAGE);
    }
    vbh_dconn *d = vbh_worker_dconn(); /* the conn_id's own (the limit: vbh_worker.c) */
    if (!d) {
        free(name);
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_DAEMON, "OPEN ran off its worker");
    }
    if (d->conn) {
        free(name);
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                            "a hypervisor connection is already open with this id");
    }
    /* the operator's default_uri is trusted; whatever the client names is not */
    int from_wire = name && *name;
    const char *uri_text = from_wire ? name : c->srv->cfg->default_uri;
    vb_uri uri;
    memset(&uri, 0, sizeof uri);
    int rc = vb_uri_parse(uri_text, &uri, err);
    if (rc == 0 && vb_uri_is_remote(&uri) && !c->srv->cfg->allow_remote_uris)
        rc = vb_error_set(err, VB_ERR_NO_DRIVER, VB_DOM_DAEMON,
                          "'%s' names a remote transport; this server opens local URIs only "
                          "(allow_remote_uris = 1 and allowed_next_hops make it a hop in a "
                          "longer chain)",
                          uri_text);
    if (rc == 0 && from_wire)
        rc = check_wire_uri(c->srv->cfg, &uri, err);
    if (rc == 0)
        rc = check_local_uri(c->srv->cfg, &uri, err);
    if (rc < 0 && from_wire && err && err->code == VB_ERR_OPERATION_INVALID)
        vb_log(VB_LOG_WARN, "client %s (%s): OPEN refused: %s", c->peer, c->identity, err->message);
    /* no login of this open is shared with another client, and a client's
     * URI uses nothing of this daemon's own identity */
    unsigned open_flags = (flags & VB_OPEN_WIRE_FLAGS) | VB_OPEN_PRIVATE |
                          (from_wire ? VB_OPEN_FROM_WIRE : 0);
    const vb_driver *drv = rc == 0 ? vb_driver_for_uri(&uri, err) : NULL;
    vb_cred_source relay;
    vbh_relay_source(d, &relay); /* a driver's questions go to this client, for this id */
    void *conn = NULL;
    if (drv)
        rc = drv->open(&uri, open_flags, &relay, &conn, err);
    else
        rc = -1;
    if (rc == 0) {
        d->drv = drv;
        d->conn = conn;
        d->read_only = (flags & VB_OPEN_READ_ONLY) != 0;
        vb_log(VB_LOG_INFO, "client %s (%s) opened %s%s (connection %u)", c->peer, c->identity,
               uri_text, d->read_only ? " read-only" : "", d->conn_id);
        empty_reply(reply);
    }
    vb_uri_clear(&uri);
    free(name);
    return rc;
}

int vbh_call_close(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    vbh_dconn *d = need_open(c, err);
    if (!d)
        return -1;
    vbh_dconn_close_driver(d);
    vb_log(VB_LOG_INFO, "client %s (%s) closed connection %u", c->peer, c->identity, d->conn_id);
    empty_reply(reply);
    return 0;
}

int vbh_call_get_hostname(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    char *hostname = NULL;
    vbh_dconn *d = need_open(c, err);
    if (!d || d->drv->get_hostname(d->conn, &hostname, err) < 0)
        return -1;
    vb_body_pack_str(reply, hostname);
    free(hostname);
    return 0;
}

int vbh_call_list_domains(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    vb_domain_info *doms = NULL;
    size_t n = 0;
    vbh_dconn *d = need_open(c, err);
    if (!d || d->drv->list_domains(d->conn, &doms, &n, err) < 0)
        return -1;
    vb_driver_encode_domains(reply, doms, n);
    free(doms);
    return 0;
}

typedef int (*domain_op)(void *conn, const char *name, vb_error *err);

static int domain_call(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err, int start)
{
    char *name = NULL;
    /* the body before the state (docs/protocol.md §5.7), as vbrokerd does */
    if (vb_rd_strdup(args, VB_DOMAIN_NAME_MAX, &name, err) < 0)
        return -1;
    if (!name)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DAEMON, "no domain name given");
    vbh_dconn *d = need_writable(c, err);
    if (!d)
        return free(name), -1;
    domain_op op = start ? d->drv->domain_start : d->drv->domain_shutdown;
    int rc = op(d->conn, name, err);
    if (rc == 0) {
        vb_log(VB_LOG_INFO, "client %s (%s): %s %s", c->peer, c->identity,
               start ? "started" : "shut down", name);
        empty_reply(reply);
    }
    free(name);
    return rc;
}

int vbh_call_domain_start(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    return domain_call(c, args, reply, err, 1);
}

int vbh_call_domain_shutdown(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    return domain_call(c, args, reply, err, 0);
}
