/* Client side of vbhostd, the connection: connect, log in, free. The jobs
 * are split (vb_remote_priv.h): transports in vb_remote_io.c, auth
 * negotiation in vb_remote_auth.c, calls in vb_remote_rpc.c. */
#include "vb_remote_priv.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_login_gate.h"

/* fd (and tls over it, or NULL) are taken, and freed on failure too. */
static int connect_over(int fd, vb_tls *tls, const vb_uri *uri, const vb_remote_opts *opts,
                        vb_remote **out, vb_error *err)
{
    static const vb_remote_opts no_opts;
    if (!opts)
        opts = &no_opts;
    *out = NULL;
    if (vb_sasl_client_init(err) < 0) {
        vb_tls_free(tls);
        close(fd);
        return -1;
    }
    vb_remote *r = calloc(1, sizeof *r);
    if (!r) {
        vb_tls_free(tls);
        close(fd);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    }
    r->fd = fd;
    r->tls = tls;
    r->host_version = opts->host_version ? opts->host_version : VB_PROG_HOST_VERSION;
    r->reply_timeout_ms = opts->timeout_ms ? opts->timeout_ms : 60000;
    r->timeout_ms = r->reply_timeout_ms;
    vb_calls_init(&r->calls);
    pthread_mutex_init(&r->send_lock, NULL);
    pthread_cond_init(&r->sent, NULL);
    pthread_mutex_init(&r->driver_lock, NULL);
    vb_msgin_init(&r->in, VB_FRAME_MAX_POSTAUTH);
    r->host = strdup(uri->host && *uri->host ? uri->host : "localhost");
    r->service = vb_remote_service_name(uri);
    int net = vb_remote_transport_is(uri, "tcp") || vb_remote_transport_is(uri, "tls");
    r->target = (vb_cred_target){ strdup("vbhostd"), strdup(r->host ? r->host : "localhost"),
                                  net ? (unsigned)vb_remote_uri_port(uri) : 0,
                                  uri->user ? strdup(uri->user) : NULL };
    vb_remote_set_relay(r, &opts->creds);
    vb_remote_describe_endpoint(r, uri);
    if (!r->service || !r->target.scheme || !r->target.host ||
        vb_remote_check_owner(r, uri, err) < 0 ||
        vb_remote_negotiate(r, uri, opts, err) < 0) {
        vb_remote_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int vb_remote_connect_fd(int fd, const vb_uri *uri, const vb_remote_opts *opts, vb_remote **out,
                         vb_error *err)
{
    return connect_over(fd, NULL, uri, opts, out, err);
}

static int connect_and_login(const vb_uri *uri, const vb_remote_opts *opts, vb_remote **out,
                             vb_error *err)
{
    vb_ssh *ssh = NULL;
    vb_tls *tls = NULL;
    int fd = vb_remote_open_transport(uri, opts, &ssh, &tls, err);
    if (fd < 0) {
        /* "cannot connect to h port p" alone does not say which hop of a
         * chain is down: this one, a vbhostd (or the sshd before it) */
        if (err && err->code == VB_ERR_NO_CONNECT && err->domain == VB_DOM_SYSTEM)
            vb_error_prefix(err, "%s", uri->transport && strcmp(uri->transport, "ssh") == 0
                                           ? "the ssh server on the way to vbhostd"
                                           : "vbhostd");
        return -1;
    }
    /* the tunnel outlives negotiation; the connection owns it from here on
     * (vb_remote_free closes the fd before the tunnel, as it always did) */
    if (connect_over(fd, tls, uri, opts, out, err) < 0) {
        vb_ssh_close(ssh);
        return -1;
    }
    (*out)->ssh = ssh;
    return 0;
}

int vb_remote_connect(const vb_uri *uri, const vb_remote_opts *opts, vb_remote **out, vb_error *err)
{
    static const vb_remote_opts no_opts;
    *out = NULL;
    /* held from the dial until the login is over: see vb_login_gate.h */
    vb_login_slot *slot = vb_login_gate_enter(uri);
    int rc = connect_and_login(uri, opts ? opts : &no_opts, out, err);
    vb_login_gate_leave(slot);
    return rc;
}

void vb_remote_free(vb_remote *r)
{
    if (!r)
        return;
    vb_tls_free(r->tls); /* its close_notify goes out before the socket closes */
    if (r->fd >= 0)
        close(r->fd);
    vb_ssh_close(r->ssh);
    vb_sasl_free(r->sasl);
    vb_calls_destroy(&r->calls);
    pthread_mutex_destroy(&r->send_lock);
    pthread_cond_destroy(&r->sent);
    pthread_mutex_destroy(&r->driver_lock);
    vb_msgin_clear(&r->in);
    free(r->service);
    free(r->host);
    free(r->target.scheme);
    free(r->target.host);
    free(r->target.user);
    free(r);
}

const char *vb_remote_auth_type(const vb_remote *r) { return r->auth_type; }
const char *vb_remote_sasl_mech(const vb_remote *r) { return r->sasl ? vb_sasl_mech(r->sasl) : NULL; }
unsigned vb_remote_ssf(const vb_remote *r) { return r->sasl ? vb_sasl_ssf(r->sasl) : 0; }
const char *vb_remote_server_id(const vb_remote *r) { return r->have_server_id ? r->server_id : NULL; }
int vb_remote_fd(const vb_remote *r) { return r->fd; }
vb_tls *vb_remote_tls(const vb_remote *r) { return r->tls; }
int vb_remote_multiplexes(const vb_remote *r) { return r->multiplexes; }
int vb_remote_concurrent(const vb_remote *r) { return r->multiplexes && r->concurrent; }
const char *vb_remote_endpoint(const vb_remote *r) { return r->endpoint; }
void vb_remote_set_conn(vb_remote *r, uint32_t conn_id) { r->conn_id = conn_id; }

void vb_remote_set_relay(vb_remote *r, const vb_cred_source *creds)
{
    r->have_relay = creds != NULL;
    if (creds)
        r->relay = *creds;
}
