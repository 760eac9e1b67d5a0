/* The SSH transport of the remote driver: the libssh2 session and a
 * direct-streamlocal@openssh.com channel bridged to a local socketpair by a
 * pump thread. The host key check is in vb_ssh_knownhosts.c, user
 * authentication in vb_ssh_auth.c. */
#include "vb_ssh_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_buf.h"
#include "vb_net.h"
#include "vb_paths.h"
#include "vb_remote.h"

#define PUMP_BUF 32768
#define SETUP_TIMEOUT_MS 30000
#define CLOSE_TIMEOUT_MS 2000
#define KEEPALIVE_S 30
#define STREAMLOCAL "direct-streamlocal@openssh.com"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void global_init(void)
{
    init_rc = libssh2_init(0);
}

const char *vb_ssh_last_error(LIBSSH2_SESSION *sess)
{
    char *msg = NULL;
    if (!sess)
        return "no session";
    libssh2_session_last_error(sess, &msg, NULL, 0);
    return msg && *msg ? msg : "unknown error";
}

/* ssh's own files (~/.ssh/...), in the home vb_paths.h defines */
char *vb_ssh_home_path(const char *rel)
{
    char *home = vb_path_home(), *out = NULL;
    if (home && asprintf(&out, "%s/%s", home, rel) < 0)
        out = NULL;
    free(home);
    return out;
}

/* A question of kind VB_CRED_KIND_SSH_* about this SSH login. */
int vb_ssh_new_request(ssh_ctx *c, vb_cred_request *req, const char *kind, const char *service,
                       int retry, vb_error *err)
{
    memset(req, 0, sizeof *req);
    req->service = strdup(service ? service : c->service);
    req->retry = retry;
    if (!req->service ||
        vb_cred_request_set_target(req, kind, "ssh", c->host, (unsigned)c->port,
                                   c->user[0] ? c->user : NULL) < 0)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    return 0;
}

/* ---- the tunnel ----------------------------------------------------------- */

static int open_channel(ssh_ctx *c, vb_error *err)
{
    const char *path = vb_uri_param_get(c->uri, "socket");
    if (!path || !*path)
        path = VB_REMOTE_DEFAULT_SOCKET;
    size_t plen = strlen(path);
    if (plen > 4096)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SSH, "socket path too long");
    /* string socket path, string reserved (""), uint32 reserved (0) */
    size_t mlen = 4 + plen + 4 + 4;
    unsigned char *msg = calloc(1, mlen);
    if (!msg)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    msg[0] = (unsigned char)(plen >> 24);
    msg[1] = (unsigned char)(plen >> 16);
    msg[2] = (unsigned char)(plen >> 8);
    msg[3] = (unsigned char)plen;
    memcpy(msg + 4, path, plen);
    c->s->channel = libssh2_channel_open_ex(c->s->session, STREAMLOCAL, sizeof STREAMLOCAL - 1,
                                            LIBSSH2_CHANNEL_WINDOW_DEFAULT,
                                            LIBSSH2_CHANNEL_PACKET_DEFAULT, (const char *)msg,
                                            (unsigned)mlen);
    free(msg);
    if (!c->s->channel)
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SSH,
                            "%s@%s cannot reach %s: %s (is vbhostd running there, may %s use "
                            "its socket, and does sshd allow AllowStreamLocalForwarding?)",
                            c->user, c->hostpat, path, vb_ssh_last_error(c->s->session), c->user);
    return 0;
}

static int again(ssize_t n)
{
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

static void *pump(void *arg)
{
    vb_ssh *s = arg;
    /* the channel's plaintext both ways (vbhostd's frames: passwords in
     * CRED_FILL answers): buffers that are wiped once sent and when freed */
    vb_buf to_local = VB_BUF_INIT, to_chan = VB_BUF_INIT;
    int local_eof = 0;
    if (vb_buf_reserve(&to_local, PUMP_BUF) < 0 || vb_buf_reserve(&to_chan, PUMP_BUF) < 0)
        goto done;
    for (;;) {
        int progress = 0;
        if (vb_buf_len(&to_local) == 0) {
            ssize_t n = libssh2_channel_read(s->channel, (char *)vb_buf_space(&to_local), PUMP_BUF);
            if (n > 0) {
                vb_buf_added(&to_local, (size_t)n), progress = 1;
            } else if (n == LIBSSH2_ERROR_EAGAIN) {
                /* nothing yet */
            } else if (n < 0 || libssh2_channel_eof(s->channel)) {
                break; /* the session died, or vbhostd closed: the client sees EOF */
            }
        }
        if (vb_buf_len(&to_local)) {
            ssize_t w = send(s->local, vb_buf_data(&to_local), vb_buf_len(&to_local),
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                vb_buf_consume(&to_local, (size_t)w), progress = 1;
            } else if (!again(w)) {
                break; /* the client went away */
            }
        }
        if (vb_buf_len(&to_chan) == 0 && !local_eof) {
            ssize_t r = recv(s->local, vb_buf_space(&to_chan), PUMP_BUF, MSG_DONTWAIT);
            if (r > 0)
                vb_buf_added(&to_chan, (size_t)r), progress = 1;
            else if (r == 0 || !again(r))
                local_eof = 1;
        }
        if (vb_buf_len(&to_chan)) {
            ssize_t w = libssh2_channel_write(s->channel, (const char *)vb_buf_data(&to_chan),
                                              vb_buf_len(&to_chan));
            if (w > 0) {
                vb_buf_consume(&to_chan, (size_t)w), progress = 1;
            } else if (w != LIBSSH2_ERROR_EAGAIN) {
                break;
            }
        }
        if (local_eof && vb_buf_len(&to_chan) == 0)
            break; /* the client closed its end: we are done */
        if (progress)
            continue;
        int next = 0;
        if (libssh2_keepalive_send(s->session, &next) < 0)
            next = 0;
        int dirs = libssh2_session_block_directions(s->session);
        struct pollfd p[3] = {
            { .fd = s->stop[0], .events = POLLIN },
            { .fd = s->sock, .events = 0 },
            { .fd = s->local, .events = 0 },
        };
        if (vb_buf_len(&to_local) == 0 || (dirs & LIBSSH2_SESSION_BLOCK_INBOUND))
            p[1].events |= POLLIN;
        if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
            p[1].events |= POLLOUT;
        if (vb_buf_len(&to_chan) == 0 && !local_eof)
            p[2].events |= POLLIN;
        if (vb_buf_len(&to_local))
            p[2].events |= POLLOUT;
        int rc = poll(p, 3, next > 0 ? next * 1000 : -1);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && p[0].revents)
            break;
    }
done:
    vb_buf_free(&to_local);
    vb_buf_free(&to_chan);
    shutdown(s->local, SHUT_RDWR); /* the client's next read sees end of file */
    return NULL;
}

/* ---- connect / close ------------------------------------------------------ */

int vb_ssh_connect(const vb_uri *uri, const vb_cred_source *creds, unsigned flags, int *fd_out,
                   vb_ssh **out, vb_error *err)
{
    *fd_out = -1;
    *out = NULL;
    if ((flags & VB_OPEN_FROM_WIRE) && vb_driver_check_wire_uri(uri, err) < 0)
        return -1;
    if (!uri->host || !*uri->host)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SSH,
                            "an ssh URI needs a host: DRIVER+ssh://[USER@]HOST[:PORT]/PATH");
    pthread_once(&init_once, global_init);
    if (init_rc != 0)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_SSH, "libssh2_init failed (%d)", init_rc);
    ssh_ctx c;
    memset(&c, 0, sizeof c);
    c.uri = uri;
    c.creds = creds;
    c.wire = (flags & VB_OPEN_FROM_WIRE) != 0;
    c.host = uri->host;
    c.port = uri->port ? uri->port : VB_SSH_DEFAULT_PORT;
    if (uri->user && *uri->user) {
        snprintf(c.user, sizeof c.user, "%s", uri->user);
    } else {
        char pwbuf[4096];
        struct passwd pw, *pwp = NULL;
        if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &pwp) != 0 || !pwp)
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SSH,
                                "no user in the URI and no name for uid %u", (unsigned)geteuid());
        snprintf(c.user, sizeof c.user, "%s", pwp->pw_name);
    }
    int v6 = strchr(c.host, ':') != NULL;
    if (c.port == VB_SSH_DEFAULT_PORT)
        snprintf(c.hostpat, sizeof c.hostpat, "%s", c.host);
    else
        snprintf(c.hostpat, sizeof c.hostpat, "[%s]:%d", c.host, c.port);
    snprintf(c.service, sizeof c.service, "ssh://%s@%s%s%s:%d", c.user, v6 ? "[" : "", c.host,
             v6 ? "]" : "", c.port);

    vb_ssh *s = calloc(1, sizeof *s);
    if (!s)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
    s->sock = s->local = s->stop[0] = s->stop[1] = -1;
    c.s = s;
    int pair[2] = { -1, -1 };
    s->sock = vb_net_connect_tcp(c.host, c.port, 10000, err);
    if (s->sock < 0)
        goto fail;
    s->session = libssh2_session_init_ex(NULL, NULL, NULL, &c);
    if (!s->session) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SSH, "out of memory");
        goto fail;
    }
    libssh2_session_set_blocking(s->session, 1);
    libssh2_session_set_timeout(s->session, SETUP_TIMEOUT_MS);
    if (libssh2_session_handshake(s->session, s->sock) != 0) {
        vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SSH, "SSH handshake with %s failed: %s",
                     c.hostpat, vb_ssh_last_error(s->session));
        goto fail;
    }
    if (vb_ssh_check_host_key(&c, err) < 0 || vb_ssh_authenticate(&c, err) < 0 || open_channel(&c, err) < 0)
        goto fail;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        vb_error_set_errno(err, errno, VB_DOM_SSH, "socketpair");
        goto fail;
    }
    s->local = pair[1];
    if (pipe2(s->stop, O_CLOEXEC | O_NONBLOCK) < 0) {
        vb_error_set_errno(err, errno, VB_DOM_SSH, "pipe");
        goto fail;
    }
    vb_net_set_nonblock(s->local, 1);
    *libssh2_session_abstract(s->session) = NULL; /* c lives on this stack only */
    libssh2_session_set_blocking(s->session, 0);
    libssh2_keepalive_config(s->session, 1, KEEPALIVE_S);
    if (pthread_create(&s->thread, NULL, pump, s) != 0) {
        vb_error_set(err, VB_ERR_SYSTEM, VB_DOM_SSH, "cannot start the SSH pump thread");
        goto fail;
    }
    s->thread_started = 1;
    *fd_out = pair[0];
    *out = s;
    return 0;
fail:
    if (pair[0] >= 0)
        close(pair[0]);
    if (s->session)
        *libssh2_session_abstract(s->session) = NULL;
    vb_cred_request_clear(&c.kbd_last);
    vb_ssh_close(s);
    return -1;
}

void vb_ssh_close(vb_ssh *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        char b = 1;
        if (write(s->stop[1], &b, 1) < 0) {
            /* full pipe: the pump is already told */
        }
        pthread_join(s->thread, NULL);
    }
    if (s->session) {
        libssh2_session_set_timeout(s->session, CLOSE_TIMEOUT_MS);
        libssh2_session_set_blocking(s->session, 1);
        /* A host that leaves the channel's close unanswered past the timeout
         * is waited for no longer: with the socket shut, libssh2 frees the
         * channel and the session without asking it (a free that times out
         * keeps them, a leak per silent host). */
        if (s->channel && libssh2_channel_free(s->channel) != 0 && s->sock >= 0)
            shutdown(s->sock, SHUT_RDWR);
        libssh2_session_disconnect(s->session, "closed by vbroker");
        if (libssh2_session_free(s->session) != 0 && s->sock >= 0) {
            shutdown(s->sock, SHUT_RDWR);
            libssh2_session_free(s->session);
        }
    }
    if (s->sock >= 0)
        close(s->sock);
    if (s->local >= 0)
        close(s->local);
    if (s->stop[0] >= 0)
        close(s->stop[0]);
    if (s->stop[1] >= 0)
        close(s->stop[1]);
    free(s);
}
