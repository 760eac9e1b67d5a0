/*
 * vb_net.h — socket plumbing shared by vbhostd, vbrokerd and their clients:
 * listen and connect on unix and TCP sockets, non-blocking mode, peer
 * credentials. No protocol and no policy here.
 */
#ifndef VB_NET_H
#define VB_NET_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "vb_error.h"

/* Listen on a unix socket with the given mode. A stale socket file (nothing
 * answers a connect) is removed first; a live one is an error. */
int vb_net_listen_unix(const char *path, unsigned mode, vb_error *err);
/* Listen on "HOST:PORT" ("127.0.0.1:16509", "[::1]:16509"). */
int vb_net_listen_tcp(const char *hostport, vb_error *err);
/* The address vb_net_listen_tcp binds for "HOST:PORT" (the first passive
 * address getaddrinfo gives), for comparing with a socket made elsewhere. */
int vb_net_resolve_listen(const char *hostport, struct sockaddr_storage *addr, socklen_t *len,
                          vb_error *err);
/* Blocking connects (with a timeout for TCP); the fd is close-on-exec. */
int vb_net_connect_unix(const char *path, vb_error *err);
int vb_net_connect_tcp(const char *host, int port, int timeout_ms, vb_error *err);
int vb_net_set_nonblock(int fd, int on);
/* TCP_NODELAY on a connected TCP socket (a no-op error on other sockets). */
void vb_net_set_nodelay(int fd);
/* SO_PEERCRED of a unix socket. */
int vb_net_peercred(int fd, uid_t *uid, gid_t *gid, pid_t *pid);
/* True when fd is an AF_UNIX socket. */
int vb_net_is_unix(int fd);
/* "ip;port" strings as cyrus-sasl wants them (empty for unix sockets). */
int vb_net_sasl_addr(int fd, int remote, char *buf, size_t len);
/* "tcp:ADDR:PORT" (numeric, "[v6]" in brackets) of fd's local end, or of
 * its peer when remote: the TCP endpoint a token proof is bound to. */
int vb_net_tcp_endpoint(int fd, int remote, char *buf, size_t len);
/* A printable peer description for logs: "127.0.0.1:5555" or "unix uid 1000". */
void vb_net_peer_string(int fd, char *buf, size_t len);
/* The group an address counts in: IPv4 (and IPv4-mapped IPv6, an IPv4 peer
 * on a dual-stack socket) masked to v4_prefix bits, IPv6 to v6_prefix bits,
 * as "ADDR/BITS". 0, or -1 for another family. */
int vb_net_addr_group(const struct sockaddr *sa, socklen_t salen, unsigned v4_prefix,
                      unsigned v6_prefix, char *out, size_t outlen);
/* The group a peer's pre-login limits count against: "uid N" on a unix
 * socket, the address for IPv4 ("127.0.0.1/32"), the /64 for IPv6
 * ("2001:db8:1:2::/64": one host usually holds a whole /64, so per-address
 * counts would be no limit there). */
void vb_net_peer_group(int fd, char *buf, size_t len);
/* Write all of buf to a blocking fd (retries EINTR / short writes). */
int vb_net_write_all(int fd, const void *buf, size_t len, vb_error *err);

#endif
