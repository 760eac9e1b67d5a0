#include "vb_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fill_sun(struct sockaddr_un *sun, const char *path, vb_error *err)
{
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun->sun_path)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SYSTEM,
                            "unix socket path too long (max %zu bytes): %s",
                            sizeof sun->sun_path - 1, path);
    strcpy(sun->sun_path, path);
    return 0;
}

int vb_net_connect_unix(const char *path, vb_error *err)
{
    struct sockaddr_un sun;
    if (fill_sun(&sun, path, err) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_SYSTEM, "socket");
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int e = errno;
        close(fd);
        vb_error_set_errno(err, e, VB_DOM_SYSTEM, "cannot connect to %s", path);
        if (err)
            err->code = VB_ERR_NO_CONNECT;
        return -1;
    }
    return fd;
}

/* Probe before unlink: never remove the socket of a live server. */
static int remove_stale_socket(const char *path, vb_error *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_SYSTEM,
                            "%s exists and is not a socket; refusing to replace it", path);
    int fd = vb_net_connect_unix(path, NULL);
    if (fd >= 0) {
        close(fd);
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_SYSTEM,
                            "%s is in use by a running server", path);
    }
    unlink(path);
    return 0;
}

int vb_net_listen_unix(const char *path, unsigned mode, vb_error *err)
{
    struct sockaddr_un sun;
    if (fill_sun(&sun, path, err) < 0 || remove_stale_socket(path, err) < 0)
        return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_SYSTEM, "socket");
    /* Create the socket file with no access, then open it up to mode, so
     * there is no window where it is wider than asked. */
    mode_t old = umask(0777);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    int e = errno;
    umask(old);
    if (rc < 0 || chmod(path, mode) < 0 || listen(fd, 512) < 0) {
        if (rc == 0)
            e = errno;
        close(fd);
        return vb_error_set_errno(err, e, VB_DOM_SYSTEM, "cannot listen on %s", path);
    }
    return fd;
}

/* Split "host:port" / "[v6]:port". */
static int split_hostport(const char *hostport, char *host, size_t hostlen, char *port,
                          size_t portlen, vb_error *err)
{
    const char *colon;
    const char *hstart = hostport;
    size_t hlen;
    if (hostport[0] == '[') {
        const char *close_br = strchr(hostport, ']');
        if (!close_br || close_br[1] != ':')
            goto bad;
        hstart = hostport + 1;
        hlen = (size_t)(close_br - hstart);
        colon = close_br + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon)
            goto bad;
        hlen = (size_t)(colon - hostport);
    }
    if (hlen == 0 || hlen >= hostlen || strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen)
        goto bad;
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    strcpy(port, colon + 1);
    return 0;
bad:
    return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                        "'%s' is not HOST:PORT (e.g. 127.0.0.1:16509 or [::1]:16509)", hostport);
}

int vb_net_resolve_listen(const char *hostport, struct sockaddr_storage *addr, socklen_t *len,
                          vb_error *err)
{
    char host[256], port[16];
    if (split_hostport(hostport, host, sizeof host, port, sizeof port, err) < 0)
        return -1;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "cannot resolve %s: %s",
                            hostport, gai_strerror(gai));
    memset(addr, 0, sizeof *addr);
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int vb_net_listen_tcp(const char *hostport, vb_error *err)
{
    struct sockaddr_storage addr;
    socklen_t addrlen;
    if (vb_net_resolve_listen(hostport, &addr, &addrlen, err) < 0)
        return -1;
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&addr, addrlen) < 0 || listen(fd, 512) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return vb_error_set_errno(err, e, VB_DOM_SYSTEM, "cannot listen on %s", hostport);
    }
    return fd;
}

static int wait_connected(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int rc;
    do {
        rc = poll(&p, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return ETIMEDOUT;
    if (rc < 0)
        return errno;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    return soerr;
}

int vb_net_connect_tcp(const char *host, int port, int timeout_ms, vb_error *err)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0)
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SYSTEM, "cannot resolve host '%s': %s",
                            host, gai_strerror(gai));
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        last = rc == 0 ? 0 : errno == EINPROGRESS ? wait_connected(fd, timeout_ms) : errno;
        if (last == 0) {
            vb_net_set_nodelay(fd);
            vb_net_set_nonblock(fd, 0);
            freeaddrinfo(res);
            return fd;
        }
        close(fd);
    }
    freeaddrinfo(res);
    vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_SYSTEM, "cannot connect to %s port %d: %s", host,
                 port, strerror(last));
    return -1;
}

/* Frames are written whole: Nagle would only hold the second of two small
 * back-to-back frames (a callback, then a reply) for the peer's delayed ACK,
 * about 40 ms. */
void vb_net_set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int vb_net_set_nonblock(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -1;
    int want = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return want == flags ? 0 : fcntl(fd, F_SETFL, want); /* accept4 may have set it */
}

int vb_net_peercred(int fd, uid_t *uid, gid_t *gid, pid_t *pid)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -1;
    if (uid)
        *uid = cred.uid;
    if (gid)
        *gid = cred.gid;
    if (pid)
        *pid = cred.pid;
    return 0;
}

int vb_net_is_unix(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    return ss.ss_family == AF_UNIX;
}

/* The numeric address and port of one end of a TCP connection (its peer
 * when remote). unmap: write an IPv4 address seen through a dual-stack
 * socket (::ffff:a.b.c.d) as IPv4. *v6: the address is IPv6. 0 or -1. */
static int numeric_end(int fd, int remote, int unmap, char host[NI_MAXHOST],
                       char serv[NI_MAXSERV], int *v6)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int rc = remote ? getpeername(fd, (struct sockaddr *)&ss, &sl)
                    : getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (rc < 0 || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        return -1;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
    if (unmap && ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = s6->sin6_port };
        memcpy(&v4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
        memcpy(&ss, &v4, sizeof v4);
        sl = sizeof v4;
    }
    *v6 = ss.ss_family == AF_INET6;
    return getnameinfo((struct sockaddr *)&ss, sl, host, NI_MAXHOST, serv, NI_MAXSERV,
                       NI_NUMERICHOST | NI_NUMERICSERV) == 0
               ? 0
               : -1;
}

int vb_net_sasl_addr(int fd, int remote, char *buf, size_t len)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    int v6;
    buf[0] = '\0';
    if (numeric_end(fd, remote, 0, host, serv, &v6) < 0)
        return -1;
    snprintf(buf, len, "%s;%s", host, serv);
    return 0;
}

void vb_net_peer_string(int fd, char *buf, size_t len)
{
    uid_t uid;
    pid_t pid;
    if (vb_net_is_unix(fd)) {
        if (vb_net_peercred(fd, &uid, NULL, &pid) == 0)
            snprintf(buf, len, "unix uid %u pid %d", (unsigned)uid, (int)pid);
        else
            snprintf(buf, len, "unix peer");
        return;
    }
    if (vb_net_sasl_addr(fd, 1, buf, len) == 0) {
        char *semi = strchr(buf, ';');
        if (semi)
            *semi = ':';
        return;
    }
    snprintf(buf, len, "unknown peer");
}

static void mask_bits(uint8_t *addr, size_t len, unsigned bits)
{
    for (size_t i = 0; i < len; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
        addr[i] &= (uint8_t)(0xff00u >> keep);
    }
}

int vb_net_addr_group(const struct sockaddr *sa, socklen_t salen, unsigned v4_prefix,
                      unsigned v6_prefix, char *out, size_t outlen)
{
    uint8_t addr[16];
    char text[INET6_ADDRSTRLEN];
    int family;
    unsigned bits;
    if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        family = AF_INET, bits = v4_prefix > 32 ? 32 : v4_prefix;
    } else if (sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            memcpy(addr, a6->s6_addr + 12, 4);
            family = AF_INET, bits = v4_prefix > 32 ? 32 : v4_prefix;
        } else {
            memcpy(addr, a6->s6_addr, 16);
            family = AF_INET6, bits = v6_prefix > 128 ? 128 : v6_prefix;
        }
    } else {
        return -1;
    }
    mask_bits(addr, family == AF_INET ? 4 : 16, bits);
    if (!inet_ntop(family, addr, text, sizeof text))
        return -1;
    snprintf(out, outlen, "%s/%u", text, bits);
    return 0;
}

void vb_net_peer_group(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    uid_t uid;
    snprintf(buf, len, "unknown");
    if (vb_net_is_unix(fd)) {
        if (vb_net_peercred(fd, &uid, NULL, NULL) == 0)
            snprintf(buf, len, "uid %u", (unsigned)uid);
        return;
    }
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        vb_net_addr_group((struct sockaddr *)&ss, sl, 32, 64, buf, len);
}

int vb_net_write_all(int fd, const void *buf, size_t len, vb_error *err)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL); /* no SIGPIPE inside an app */
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vb_error_set_errno(err, errno, VB_DOM_SYSTEM, "write");
            if (err)
                err->code = VB_ERR_PEER_CLOSED;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* "tcp:ADDR:PORT", as the token binding names one end of a TCP connection;
 * IPv4 seen through a dual-stack socket is written as IPv4, so the client
 * and the server spell the same end alike. */
int vb_net_tcp_endpoint(int fd, int remote, char *buf, size_t len)
{
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    int v6;
    buf[0] = '\0';
    if (numeric_end(fd, remote, 1, host, serv, &v6) < 0)
        return -1;
    int n = snprintf(buf, len, "tcp:%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", serv);
    return n > 0 && (size_t)n < len ? 0 : -1;
}
