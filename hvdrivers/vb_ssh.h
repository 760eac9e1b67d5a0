/*
 * vb_ssh.h — the SSH transport of the remote driver (libssh2).
 *
 *   DRIVER+ssh://[user@]host[:port]/PATH?socket=/run/vbhostd/sock
 *
 * vb_ssh_connect: TCP connect (default port 22), SSH handshake, host key
 * check against known_hosts, user authentication, then a
 * direct-streamlocal@openssh.com channel to vbhostd's unix socket on the
 * remote host. The channel is bridged to a local socketpair: *fd_out is an
 * ordinary blocking stream socket that the caller uses exactly like a
 * connection to a unix socket. A pump thread owned by the vb_ssh handle
 * copies bytes both ways; after connect only that thread touches the libssh2
 * session. When the SSH connection dies the far end of *fd_out is closed, so
 * the caller's next read sees end of file.
 *
 * URI params:
 *   sshauth=            ordered subset of agent,privkey,password,keyboard-interactive
 *                       (default: all four in that order); methods the server does
 *                       not offer are skipped
 *   keyfile=            private key (default ~/.ssh/id_ed25519, then ~/.ssh/id_ecdsa)
 *   known_hosts=        file to check and to append to (default
 *                       $XDG_CONFIG_HOME/vbroker/known_hosts); ~/.ssh/known_hosts is
 *                       read too
 *   known_hosts_verify= normal (ask about unknown keys), auto (add them silently),
 *                       ignore (no check; logged as a warning)
 *   socket=             vbhostd's unix socket on the remote host
 *
 * With VB_OPEN_FROM_WIRE in flags (vb_driver.h: a client's URI, opened by
 * vbhostd) the connection uses nothing of this process's own: the check of
 * vb_driver_check_wire_uri first, then sshauth defaults to
 * password,keyboard-interactive, and a host key must already be in the
 * operator's known_hosts files (unknown keys are refused, never asked about
 * or written).
 *
 * Every question goes through creds (one request per prompt round). Errors
 * are VB_DOM_SSH: HOST_KEY, AUTH_FAILED, NO_CONNECT, ... Never a secret in a
 * message.
 */
#ifndef VB_SSH_H
#define VB_SSH_H

#include "vb_cred.h"
#include "vb_error.h"
#include "vb_uri.h"

#define VB_SSH_DEFAULT_PORT 22
#define VB_SSH_AUTH_TRIES 3

typedef struct vb_ssh vb_ssh;

/* On success *fd_out is the caller's end of the bridge (the caller closes
 * it, before or after vb_ssh_close) and *out the handle. */
int vb_ssh_connect(const vb_uri *uri, const vb_cred_source *creds, unsigned flags, int *fd_out,
                   vb_ssh **out, vb_error *err);
/* Stop the pump, close the channel and the session, free everything. NULL ok. */
void vb_ssh_close(vb_ssh *s);

#endif
