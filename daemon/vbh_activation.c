/* systemd socket activation: the listening sockets systemd passed
 * (LISTEN_FDS) matched to the listeners of the configuration.
 *
 * Each passed socket must be one of the configured listeners: the unix socket
 * at listen_unix, or a TCP socket bound to exactly listen_tcp's (or
 * listen_tls's) address and port. The matched listener then serves the passed socket with its own auth
 * list and limits. A passed socket that matches none refuses the start: an
 * operator's .socket unit that disagrees with vbhostd.conf must never open a
 * listener the configuration does not name (and whose auth list nobody chose),
 * nor a unix socket wider open than listen_unix_mode. */
#include "vbh.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "vb_net.h"

/* fd is a listening TCP socket bound to exactly the address and port that
 * vb_net_listen_tcp would bind for hostport (same resolution: the first
 * passive address). */
static int matches_tcp(int fd, const char *hostport)
{
    struct sockaddr_storage want;
    socklen_t want_len;
    vb_error ignored;
    if (vb_net_resolve_listen(hostport, &want, &want_len, &ignored) < 0)
        return 0;
    int port = want.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&want)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&want)->sin_port);
    if (sd_is_socket_inet(fd, want.ss_family, SOCK_STREAM, 1, (uint16_t)port) <= 0)
        return 0;
    struct sockaddr_storage got;
    socklen_t got_len = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &got_len) < 0 || got.ss_family != want.ss_family)
        return 0;
    if (got.ss_family == AF_INET)
        return memcmp(&((struct sockaddr_in *)&got)->sin_addr,
                      &((struct sockaddr_in *)&want)->sin_addr, sizeof(struct in_addr)) == 0;
    return memcmp(&((struct sockaddr_in6 *)&got)->sin6_addr,
                  &((struct sockaddr_in6 *)&want)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* "unix socket /run/x", "tcp 0.0.0.0:16509", ... for the refusal. */
static void describe(int fd, char *buf, size_t len)
{
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    int type = 0, listening = 0;
    socklen_t tlen = sizeof type, llen = sizeof listening;
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &llen) < 0) {
        snprintf(buf, len, "fd %d (not a socket)", fd);
        return;
    }
    const char *kind = type != SOCK_STREAM ? " (not a stream socket)"
                       : !listening        ? " (not listening)"
                                           : "";
    if (sa.ss_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)&sa;
        size_t plen = salen > offsetof(struct sockaddr_un, sun_path)
                          ? salen - offsetof(struct sockaddr_un, sun_path) : 0;
        if (plen == 0 || sun->sun_path[0] == '\0')
            snprintf(buf, len, "an unnamed or abstract unix socket%s", kind);
        else
            snprintf(buf, len, "unix socket %.*s%s", (int)strnlen(sun->sun_path, plen),
                     sun->sun_path, kind);
        return;
    }
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if ((sa.ss_family == AF_INET || sa.ss_family == AF_INET6) &&
        getnameinfo((struct sockaddr *)&sa, salen, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        snprintf(buf, len, sa.ss_family == AF_INET6 ? "tcp [%s]:%s%s" : "tcp %s:%s%s", host, port,
                 kind);
        return;
    }
    snprintf(buf, len, "a socket of address family %d%s", (int)sa.ss_family, kind);
}

/* The passed unix socket file may be no wider open than listen_unix_mode
 * says (SocketMode= in the .socket unit decides it, not vbhostd). */
static int check_unix_mode(const vbh_config *cfg, const char *config_path, vb_error *err)
{
    struct stat st;
    if (stat(cfg->listen_unix, &st) < 0)
        return vb_error_set_errno(err, errno, VB_DOM_CONFIG, "systemd passed %s", cfg->listen_unix);
    unsigned mode = st.st_mode & 0777;
    if (mode & ~cfg->listen_unix_mode)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "systemd passed unix socket %s with mode %04o, wider than "
                            "listen_unix_mode %04o in %s; make SocketMode= in the .socket unit "
                            "and listen_unix_mode agree",
                            cfg->listen_unix, mode, cfg->listen_unix_mode, config_path);
    return 0;
}

int vbh_take_passed_sockets(vbh_config *cfg, const char *config_path, vb_error *err)
{
    cfg->passed_unix_fd = cfg->passed_tcp_fd = cfg->passed_tls_fd = -1;
    char **names = NULL;
    /* 1: unset LISTEN_* so that nothing vbhostd starts takes them */
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0)
        return vb_error_set_errno(err, -n, VB_DOM_DAEMON, "systemd socket activation (LISTEN_FDS)");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (cfg->listen_unix && cfg->passed_unix_fd < 0 &&
            sd_is_socket_unix(fd, SOCK_STREAM, 1, cfg->listen_unix, 0) > 0) {
            cfg->passed_unix_fd = fd;
        } else if (cfg->listen_tcp && cfg->passed_tcp_fd < 0 && matches_tcp(fd, cfg->listen_tcp)) {
            cfg->passed_tcp_fd = fd;
        } else if (cfg->listen_tls && cfg->passed_tls_fd < 0 && matches_tcp(fd, cfg->listen_tls)) {
            cfg->passed_tls_fd = fd; /* TLS begins on each accepted connection, as on our own */
        } else {
            char what[400];
            describe(fd, what, sizeof what);
            rc = vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                              "systemd passed %s (\"%s\") but %s configures no such listener "
                              "(listen_unix %s, listen_tcp %s, listen_tls %s); make the .socket "
                              "unit's ListenStream= and the configuration agree",
                              what, names && names[i] ? names[i] : "unnamed", config_path,
                              cfg->listen_unix ? cfg->listen_unix : "unset",
                              cfg->listen_tcp ? cfg->listen_tcp : "unset",
                              cfg->listen_tls ? cfg->listen_tls : "unset");
        }
    }
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    if (rc == 0 && cfg->passed_unix_fd >= 0)
        rc = check_unix_mode(cfg, config_path, err);
    if (rc < 0) { /* the daemon does not start: it serves none of them */
        for (int i = 0; i < n; i++)
            close(SD_LISTEN_FDS_START + i);
        cfg->passed_unix_fd = cfg->passed_tcp_fd = cfg->passed_tls_fd = -1;
    }
    return rc;
}
