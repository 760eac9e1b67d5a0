/* Client side of vbhostd, transports: the byte layer (unix, TCP, TLS, SSH),
 * the SASL security layer over it, frames in and out; where we are. */
#include "vb_remote_priv.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_log.h"
#include "vb_net.h"
#include "vb_tls_resume.h"

#define READ_CHUNK 16384

/* ---- transport ----------------------------------------------------------- */

static int send_frame(vb_remote *r, uint8_t *frame, size_t len, vb_error *err)
{
    uint8_t *wire = frame;
    size_t wire_len = len;
    if (r->layer && vb_sasl_encode(r->sasl, frame, len, &wire, &wire_len, err) < 0) {
        vb_frame_free(frame, len);
        return -1;
    }
    /* not r->timeout_ms: that is the reader's slice (0-20 ms on a layered
     * transport), and a frame cut short by it would desynchronise the stream */
    int rc = r->tls ? vb_tls_write_all(r->tls, wire, wire_len, r->reply_timeout_ms, err)
                    : vb_net_write_all(r->fd, wire, wire_len, err);
    if (wire != frame)
        vb_frame_free(wire, wire_len);
    vb_frame_free(frame, len);
    return rc;
}

/* One whole frame onto the transport at a time, whichever thread sends. A
 * layered reader holds send_lock while it reads (20 ms slices) and would
 * take it again at once: senders_waiting makes it let the senders go first
 * (vb_remote_reader_lock). A send that failed may have put part of a frame
 * on the wire: nothing after it can be understood, so the transport is shut
 * down, and the reader fails every call on it. */
int vb_remote_send_locked(vb_remote *r, uint8_t *frame, size_t len, vb_error *err)
{
    atomic_fetch_add(&r->senders_waiting, 1);
    pthread_mutex_lock(&r->send_lock);
    int rc = send_frame(r, frame, len, err);
    if (rc < 0)
        shutdown(r->fd, SHUT_RDWR);
    atomic_fetch_sub(&r->senders_waiting, 1);
    pthread_cond_broadcast(&r->sent);
    pthread_mutex_unlock(&r->send_lock);
    return rc;
}

void vb_remote_reader_lock(vb_remote *r)
{
    pthread_mutex_lock(&r->send_lock);
    while (atomic_load(&r->senders_waiting) > 0)
        pthread_cond_wait(&r->sent, &r->send_lock);
}

/* Up to cap bytes from the transport, waiting at most timeout_ms: through
 * the TLS session when there is one (which may hold bytes poll cannot see). */
static int transport_read(vb_remote *r, uint8_t *buf, size_t cap, size_t *got, vb_error *err)
{
    if (r->tls)
        return vb_tls_read(r->tls, buf, cap, r->timeout_ms, got, err);
    struct pollfd p = { .fd = r->fd, .events = POLLIN };
    int rc;
    do {
        rc = poll(&p, 1, r->timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_RPC,
                            "no answer from the server within %d ms", r->timeout_ms);
    ssize_t n = recv(r->fd, buf, cap, 0);
    if (n <= 0)
        return vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_RPC,
                            "the server closed the connection%s%s", n < 0 ? ": " : "",
                            n < 0 ? strerror(errno) : "");
    *got = (size_t)n;
    return 0;
}

/* The engine's fill: read what the transport has and pass it through the
 * security layer into the input stage. */
static int fill_plain(void *ctx, vb_msgin *in, vb_error *err)
{
    vb_remote *r = ctx;
    uint8_t buf[READ_CHUNK];
    size_t n;
    if (transport_read(r, buf, sizeof buf, &n, err) < 0)
        return -1;
    uint8_t *plain = buf;
    size_t plain_len = n;
    if (r->layer && vb_sasl_decode(r->sasl, buf, n, &plain, &plain_len, err) < 0)
        return -1;
    int rc = vb_msgin_push(in, plain, plain_len, err);
    if (plain != buf)
        vb_frame_free(plain, plain_len);
    explicit_bzero(buf, n);
    return rc;
}

int vb_remote_read_msg(vb_remote *r, vb_msg *msg, vb_error *err)
{
    if (vb_msgin_read(&r->in, fill_plain, r, msg, err) < 0)
        return -1;
    r->pings_unanswered = 0; /* the server is alive */
    return 0;
}

/* ---- connect ------------------------------------------------------------- */

/* The port a tcp, tls or ssh URI dials when it names none. */
int vb_remote_uri_port(const vb_uri *uri)
{
    if (uri->port)
        return uri->port;
    if (vb_remote_transport_is(uri, "ssh"))
        return VB_SSH_DEFAULT_PORT;
    return vb_remote_transport_is(uri, "tls") ? VB_TLS_DEFAULT_PORT : VB_REMOTE_DEFAULT_PORT;
}

/* TLS over the connected fd: the server's certificate verified against the
 * CA and the host name, unless no_verify=1 (said loudly, every time). */
static int open_tls(const vb_uri *uri, int fd, vb_tls **tls, vb_error *err)
{
    const char *nv = vb_uri_param_get(uri, "no_verify");
    if (nv && strcmp(nv, "0") != 0 && strcmp(nv, "1") != 0) {
        close(fd);
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT,
                            "no_verify=%.16s: use no_verify=1 (or leave it out)", nv);
    }
    int no_verify = nv && strcmp(nv, "1") == 0;
    if (vb_tls_client_connect(fd, uri->host, vb_remote_uri_port(uri),
                              vb_uri_param_get(uri, "pkipath"),
                              no_verify, 10000, tls, err) < 0) {
        close(fd);
        return -1;
    }
    vb_log(VB_LOG_DEBUG, "%s to vbhostd at %s:%d: %s", vb_tls_version(*tls), uri->host,
           vb_remote_uri_port(uri),
           vb_tls_resumed(vb_tls_ssl(*tls)) ? "TLS session resumed" : "full handshake");
    if (no_verify)
        vb_log(VB_LOG_WARN, "TLS to vbhostd at %s:%d: the server's certificate is NOT verified "
                            "(no_verify=1 in the URI): whoever sits in between can read and "
                            "change this connection",
               uri->host, vb_remote_uri_port(uri));
    return fd;
}

int vb_remote_open_transport(const vb_uri *uri, const vb_remote_opts *opts, vb_ssh **ssh,
                          vb_tls **tls, vb_error *err)
{
    if (uri->transport && strcmp(uri->transport, "ssh") == 0) {
        /* fd is one end of a socketpair; vb_ssh pumps the other through the channel */
        int fd;
        return vb_ssh_connect(uri, &opts->creds, opts->flags, &fd, ssh, err) < 0 ? -1 : fd;
    }
    if (!uri->transport || strcmp(uri->transport, "unix") == 0) {
        const char *path = vb_uri_param_get(uri, "socket");
        return vb_net_connect_unix(path ? path : VB_REMOTE_DEFAULT_SOCKET, err);
    }
    if (strcmp(uri->transport, "tcp") == 0 || strcmp(uri->transport, "tls") == 0) {
        if (!uri->host || !*uri->host)
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT,
                                "a %s URI needs a host: DRIVER+%s://HOST[:PORT]/PATH",
                                uri->transport, uri->transport);
        int fd = vb_net_connect_tcp(uri->host, vb_remote_uri_port(uri), 10000, err);
        if (fd < 0 || strcmp(uri->transport, "tls") != 0)
            return fd;
        return open_tls(uri, fd, tls, err);
    }
    return vb_error_set(err, VB_ERR_NO_SUPPORT, VB_DOM_CLIENT,
                        "transport '%s' is not supported by this client", uri->transport);
}

/* What asks, for a person and as the secret cache's key: one name per
 * endpoint and user ("vbhostd on alice@h:16509", "vbhostd on unix:/run/x"). */
char *vb_remote_service_name(const vb_uri *uri)
{
    char buf[1200];
    const char *sock = vb_uri_param_get(uri, "socket");
    if (!uri->transport || strcmp(uri->transport, "unix") == 0)
        snprintf(buf, sizeof buf, "vbhostd on unix:%s", sock ? sock : VB_REMOTE_DEFAULT_SOCKET);
    else
        snprintf(buf, sizeof buf, "vbhostd on %s%s%s:%d", uri->user ? uri->user : "",
                 uri->user ? "@" : "", uri->host ? uri->host : "", vb_remote_uri_port(uri));
    return strdup(buf);
}

/* ---- where we are: the endpoint, and who listens there ---------------------- */

static const char *socket_path(const vb_uri *uri)
{
    const char *path = vb_uri_param_get(uri, "socket");
    return path && *path ? path : VB_REMOTE_DEFAULT_SOCKET;
}

int vb_remote_transport_is(const vb_uri *uri, const char *name)
{
    if (!uri->transport)
        return strcmp(name, "unix") == 0;
    return strcmp(uri->transport, name) == 0;
}

/* Host names compare without case; an IPv6 literal goes in brackets. */
static void canonical_host(char *dst, size_t cap, const char *host)
{
    int v6 = host && strchr(host, ':') && host[0] != '[';
    size_t n = 0;
    if (v6 && n + 1 < cap)
        dst[n++] = '[';
    for (const char *p = host ? host : ""; *p && n + 2 < cap; p++)
        dst[n++] = (char)tolower((unsigned char)*p);
    if (v6 && n + 1 < cap)
        dst[n++] = ']';
    dst[n] = '\0';
}

/* The canonical endpoint (vb_remote.h), and the form a token proof is bound
 * to: the same, except on TCP, where it is the numeric address the
 * connection reached (what the server sees as its own end). */
void vb_remote_describe_endpoint(vb_remote *r, const vb_uri *uri)
{
    char host[300];
    int n;
    canonical_host(host, sizeof host, uri->host);
    if (vb_remote_transport_is(uri, "ssh"))
        n = snprintf(r->endpoint, sizeof r->endpoint, "ssh:%s:%d%s", host,
                     uri->port ? uri->port : 22, socket_path(uri));
    else if (vb_remote_transport_is(uri, "tcp") || vb_remote_transport_is(uri, "tls"))
        n = snprintf(r->endpoint, sizeof r->endpoint, "%s:%s:%d", uri->transport, host,
                     vb_remote_uri_port(uri));
    else
        n = snprintf(r->endpoint, sizeof r->endpoint, "unix:%s", socket_path(uri));
    if (n < 0 || (size_t)n >= sizeof r->endpoint)
        r->endpoint[0] = '\0'; /* too long to name: no token is used here */
    r->bound_endpoint[0] = '\0';
    if (vb_remote_transport_is(uri, "tcp") || vb_remote_transport_is(uri, "tls")) {
        if (vb_net_tcp_endpoint(r->fd, 1, r->bound_endpoint, sizeof r->bound_endpoint) == 0 &&
            vb_remote_transport_is(uri, "tls"))
            memcpy(r->bound_endpoint, "tls", 3); /* "tcp:ADDR:PORT" → "tls:ADDR:PORT" */
    } else if (strlen(r->endpoint) < sizeof r->bound_endpoint)
        memcpy(r->bound_endpoint, r->endpoint, strlen(r->endpoint) + 1);
}

/* server_uid=: a number or a user name. */
static int parse_uid(const char *text, uid_t *uid)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (*text && !*end && errno == 0 && v < (unsigned long)(uid_t)-1) {
        *uid = (uid_t)v;
        return 0;
    }
    struct passwd pw, *found = NULL;
    char buf[4096];
    if (getpwnam_r(text, &pw, buf, sizeof buf, &found) != 0 || !found)
        return -1;
    *uid = found->pw_uid;
    return 0;
}

/* Who listens on a unix socket (SO_PEERCRED), against who should: the uid
 * server_uid= names, else root or ourselves. An unexpected owner is not
 * refused outright (it may still prove itself with SCRAM, say), but it is
 * shown no token and no cleartext password. */
int vb_remote_check_owner(vb_remote *r, const vb_uri *uri, vb_error *err)
{
    r->owner = VB_REMOTE_OWNER_NOT_UNIX;
    if (!vb_remote_transport_is(uri, "unix"))
        return 0;
    const char *want = vb_uri_param_get(uri, "server_uid");
    uid_t expected = 0;
    if (want && parse_uid(want, &expected) < 0)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT,
                            "server_uid=%s is neither a uid nor a known user name", want);
    if (vb_net_peercred(r->fd, &r->server_uid, NULL, NULL) < 0) {
        r->owner = VB_REMOTE_OWNER_UNEXPECTED;
        return 0;
    }
    int ok = want ? r->server_uid == expected : r->server_uid == 0 || r->server_uid == geteuid();
    r->owner = ok ? VB_REMOTE_OWNER_VERIFIED : VB_REMOTE_OWNER_UNEXPECTED;
    return 0;
}
