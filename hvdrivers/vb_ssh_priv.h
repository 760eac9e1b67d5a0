/*
 * vb_ssh_priv.h — private to the SSH transport, which is split by job:
 * vb_ssh.c (session, tunnel channel and pump, connect/close),
 * vb_ssh_knownhosts.c (the host key against known_hosts) and vb_ssh_auth.c
 * (user authentication). Here: the handle, the state the connect steps
 * share, and the helpers more than one of them uses.
 */
#ifndef VB_SSH_PRIV_H
#define VB_SSH_PRIV_H

#include <libssh2.h>
#include <pthread.h>

#include "vb_driver.h"
#include "vb_ssh.h"

struct vb_ssh {
    int sock;                   /* TCP to sshd */
    LIBSSH2_SESSION *session;
    LIBSSH2_CHANNEL *channel;
    int local;                  /* the pump's end of the socketpair */
    int stop[2];                /* a byte (or a close) on stop[1] ends the pump */
    pthread_t thread;
    int thread_started;
};

/* Everything the connect steps share. */
typedef struct ssh_ctx {
    const vb_uri *uri;
    const vb_cred_source *creds;
    vb_ssh *s;
    const char *host;
    int port;
    char user[256];
    char service[700];          /* "ssh://user@host:port": what asks, and the cache key */
    char hostpat[300];          /* "host" or "[host]:port", as known_hosts writes it */
    /* keyboard-interactive rounds: the callback cannot return an error */
    int kbd_retry;
    int kbd_round;
    int kbd_failed;
    vb_error kbd_err;
    vb_cred_request kbd_last;   /* the last round answered, for approve/reject */
    int wire;                   /* a client's URI (VB_OPEN_FROM_WIRE): none of our own keys */
} ssh_ctx;

/* libssh2's last error text for sess (never a secret: it names no input) */
const char *vb_ssh_last_error(LIBSSH2_SESSION *sess);
/* ssh's own files (~/.ssh/REL), in the home vb_paths.h defines; malloc'd or NULL */
char *vb_ssh_home_path(const char *rel);

/* A question of kind VB_CRED_KIND_SSH_* about this login (service NULL:
 * c->service), asked with vb_driver_ask(c->creds, ..., SSH_LOGIN, ...) and
 * judged with vb_driver_verdict (vb_driver.h). */
#define SSH_LOGIN "an SSH login"
int vb_ssh_new_request(ssh_ctx *c, vb_cred_request *req, const char *kind, const char *service,
                       int retry, vb_error *err);

/* vb_ssh_knownhosts.c: 0 when the server's host key is known (or accepted
 * and recorded, as known_hosts_verify= says), else -1 with err. */
int vb_ssh_check_host_key(ssh_ctx *c, vb_error *err);

/* vb_ssh_auth.c: 0 once c->user is authenticated by one of the methods of
 * sshauth= the server offers, else -1 with err. */
int vb_ssh_authenticate(ssh_ctx *c, vb_error *err);

#endif
