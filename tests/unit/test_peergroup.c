/* vb_net_peer_group: what vbhostd's per-peer limits count against. Real
 * sockets on loopback (IPv4, IPv6 when the host has ::1, IPv4-mapped on a
 * dual-stack listener) and a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_net.h"

/* Connect from src to a fresh listener bound to dst (family of dst); the
 * group of the accepted end, in out. 0, or -1 when the family is missing. */
static int group_of_connection(int family, const char *listen_on, const char *connect_to,
                               char *out, size_t len)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, listen_on, &a->sin_addr);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, listen_on, &a->sin6_addr);
        sl = sizeof *a;
    }
    int lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0) {
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    int port = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                 : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    vb_error err;
    int cfd = vb_net_connect_tcp(connect_to, port, 2000, &err);
    int afd = cfd >= 0 ? accept(lfd, NULL, NULL) : -1;
    if (afd >= 0)
        vb_net_peer_group(afd, out, len);
    if (afd >= 0)
        close(afd);
    if (cfd >= 0)
        close(cfd);
    close(lfd);
    return afd >= 0 ? 0 : -1;
}

static void test_ipv4_is_the_address(void **state)
{
    (void)state;
    char g[64];
    assert_int_equal(group_of_connection(AF_INET, "127.0.0.1", "127.0.0.1", g, sizeof g), 0);
    assert_string_equal(g, "127.0.0.1/32");
}

static void test_ipv6_is_the_slash_64(void **state)
{
    (void)state;
    char g[64];
    if (group_of_connection(AF_INET6, "::1", "::1", g, sizeof g) < 0)
        skip(); /* no IPv6 loopback here */
    assert_string_equal(g, "::/64");
}

static void test_ipv4_mapped_is_ipv4(void **state)
{
    (void)state;
    char g[64];
    if (group_of_connection(AF_INET6, "::", "127.0.0.1", g, sizeof g) < 0)
        skip();
    assert_string_equal(g, "127.0.0.1/32");
}

static void test_unix_is_the_uid(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char g[64], want[64];
    vb_net_peer_group(sv[0], g, sizeof g);
    snprintf(want, sizeof want, "uid %u", (unsigned)getuid());
    assert_string_equal(g, want);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_is_the_address),
        cmocka_unit_test(test_ipv6_is_the_slash_64),
        cmocka_unit_test(test_ipv4_mapped_is_ipv4),
        cmocka_unit_test(test_unix_is_the_uid),
    };
    return cmocka_run_group_tests_name("peergroup", tests, NULL, NULL);
}
