/* vbhostd as a deputy: a URI that a client sends is not the operator's.
 *
 *   client (alice or carol, SASL) → vbhostd D (allow_remote_uris = 1) → next hops
 *
 * D may reach vbhostd I (SASL, bob), vbhostd P (peer only), an "ssh" port and
 * the XenAPI simulator, as its allow-lists say; nothing else. A client's URI
 * cannot make D log in as itself (auth=peer, its ssh keys and agent), make
 * it write files (known_hosts), or reach an endpoint the operator did not
 * list; and one client never rides another's login to a next hop. Ports
 * that must never be dialled are listening sockets of this test: a pending
 * connection on one is the proof that D dialled it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_driver.h"
#include "vb_remote.h"
#include "vb_testsupport.h"

#define REALM "LAB.TEST"
#define ALICE_PW "d3puty-Alice-pw"
#define CAROL_PW "d3puty-Carol-pw"
#define BOB_PW "d3puty-Inner-Bob"
#define XEN_PW "d3puty-Xen-root"

static char *dir;
static vb_ts_hostd d_hostd, i_hostd, p_hostd;
static vb_ts_kdc kdc; /* D holds a Kerberos ticket of its own; I accepts GSSAPI */
static int xen_port;
static int i_idle_sockets; /* I's sockets with no client: its listener */
static int ssh_fd = -1, ssh_port;         /* allowed as a next hop: D must not dial it here */
static int unlisted_fd = -1, unlisted_port; /* on no allow-list */

/* ---- fixtures ------------------------------------------------------------ */

static int start_hostd(vb_ts_hostd *h, const char *name, const char *extra)
{
    return vb_ts_hostd_start_sasl(h, dir, name, 0, REALM, "%s", extra);
}

/* A loopback listener nobody accepts on; *port gets its port. */
static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* 1 when somebody connected to the listener (a connection waits in its queue) */
static int dialled(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) > 0;
}

static int start_xensim(void)
{
    return vb_ts_xensim_start(dir, xen_port, "root:" XEN_PW "\n") > 0 ? 0 : -1;
}

static int socket_count(pid_t pid);

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(XEN_PW);
    dir = vb_ts_tmpdir("deputy");
    static const char *const users[] = { "alice:" ALICE_PW, "carol:" CAROL_PW, "bob:" BOB_PW, NULL };
    static const char *const kdc_users[] = { "deputy-svc:d3puty-Krb-pw", NULL };
    static const char *const services[] = { "vbhostd/localhost", NULL };
    if (!dir || vb_ts_kdc_start(&kdc, REALM, kdc_users, services) < 0)
        return -1;
    vb_ts_kdc_env(&kdc, 1); /* inherited by the daemons: D's ticket, I's keytab */
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256 gssapi", users, kdc.keytab) < 0)
        return -1;
    ssh_fd = listener(&ssh_port);
    unlisted_fd = listener(&unlisted_port);
    xen_port = vb_ts_free_tcp_port();
    if (ssh_fd < 0 || unlisted_fd < 0 || start_xensim() < 0)
        return -1;
    /* I: SASL only; P: peer only (it would admit D's uid) */
    if (start_hostd(&i_hostd, "inner",
                    "auth_unix = [\"sasl\"]\nsasl_hostname = \"localhost\"\n") < 0 ||
        start_hostd(&p_hostd, "peer", "auth_unix = [\"peer\"]\n") < 0)
        return -1;
    i_idle_sockets = socket_count(i_hostd.pid);
    char extra[2000];
    snprintf(extra, sizeof extra,
             "auth_unix = [\"sasl\"]\nallow_remote_uris = 1\n"
             "allowed_next_hops = [\"unix:%s\", \"unix:%s\", \"ssh://127.0.0.1:%d\"]\n"
             "allowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n",
             i_hostd.sock, p_hostd.sock, ssh_port, xen_port);
    return start_hostd(&d_hostd, "deputy", extra);
}

static int group_teardown(void **state)
{
    vb_ts_kdc_stop(&kdc);
    if (ssh_fd >= 0)
        close(ssh_fd);
    if (unlisted_fd >= 0)
        close(unlisted_fd);
    return vb_ts_group_teardown(state);
}

/* ---- a client of D: one person answering by who asks ----------------------- */

typedef struct person {
    const char *user, *password;   /* for D itself */
    int calls, inner_calls, xen_calls;
} person;

static int person_cb(vb_cred_request *req, void *opaque, vb_error *err)
{
    (void)err;
    person *p = opaque;
    const char *service = req->service ? req->service : "";
    int inner = strstr(service, i_hostd.sock) != NULL;
    int xen = strstr(service, "xenapi://") != NULL;
    p->calls++;
    p->inner_calls += inner;
    p->xen_calls += xen;
    const char *user = inner ? "bob" : xen ? "root" : p->user;
    const char *pw = inner ? BOB_PW : xen ? XEN_PW : p->password;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        const char *v = it->type == VB_CRED_AUTHNAME || it->type == VB_CRED_USERNAME ? user
                        : it->type == VB_CRED_PASSPHRASE                            ? pw
                                                                                    : NULL;
        if (v)
            vb_cred_item_set_result(it, v, strlen(v));
    }
    return 0;
}

static const int cred_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE, VB_CRED_REALM };

/* Log in to D as p; its later nested questions come to person_cb too. */
static vb_remote *client_of_d(person *p)
{
    char text[400];
    snprintf(text, sizeof text, "test+unix:///default?socket=%s&auth=sasl.SCRAM-SHA-256",
             d_hostd.sock);
    vb_uri uri;
    vb_error err;
    vb_remote *r = NULL;
    if (vb_uri_parse(text, &uri, &err) < 0)
        fail_msg("%s: %s", text, err.message);
    vb_remote_opts opts = { .creds = { .fn = person_cb, .opaque = p, .types = cred_types,
                                       .ntypes = 3 },
                            .timeout_ms = vb_ts_scaled_ms(30000) };
    if (vb_remote_connect(&uri, &opts, &r, &err) < 0)
        fail_msg("log in to D: %s", err.message);
    vb_uri_clear(&uri);
    return r;
}

/* OPEN uri on D as alice; -1 with err on refusal. */
static int open_via_d(const char *uri, person *p, vb_error *err)
{
    vb_remote *r = client_of_d(p);
    int rc = vb_remote_open(r, uri, 0, err);
    vb_remote_free(r);
    return rc;
}

/* OPEN the URI (printf-style) on D: refused, the error naming names. */
static void assert_refused(const char *names, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void assert_refused(const char *names, const char *fmt, ...)
{
    char uri[800];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(uri, sizeof uri, fmt, ap);
    va_end(ap);
    person alice = { "alice", ALICE_PW, 0, 0, 0 };
    vb_error err;
    if (open_via_d(uri, &alice, &err) == 0)
        fail_msg("D opened %s for a client", uri);
    if (!strstr(err.message, names))
        fail_msg("refusing %s, D did not name '%s': %s", uri, names, err.message);
    assert_int_equal(err.code, VB_ERR_OPERATION_INVALID);
    assert_int_equal(alice.calls, 1); /* only D's own login: nothing was relayed */
}

static char *nested_uri(const vb_ts_hostd *h, const char *params)
{
    static char buf[600];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s%s%s", h->sock, params ? "&" : "",
             params ? params : "");
    return buf;
}

/* sockets a process holds open (its listener, its clients, its upstreams) */
static int socket_count(pid_t pid)
{
    char path[64], link[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        char fd_path[400];
        snprintf(fd_path, sizeof fd_path, "%s/%s", path, e->d_name);
        ssize_t len = readlink(fd_path, link, sizeof link - 1);
        n += len > 7 && strncmp(link, "socket:", 7) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

typedef struct sockets_at {
    pid_t pid;
    int want;
} sockets_at;

static int sockets_back(void *arg)
{
    sockets_at *s = arg;
    return socket_count(s->pid) == s->want;
}

/* ---- a client's URI cannot use D's own identity ------------------------------ */

static void test_wire_auth_peer_refused(void **state)
{
    (void)state;
    assert_refused("auth=peer", "%s", nested_uri(&p_hostd, "auth=peer"));
    assert_refused("auth=none", "%s", nested_uri(&p_hostd, "auth=none"));
    assert_refused("auth=peer.x", "%s", nested_uri(&p_hostd, "auth=peer.x")); /* still peer */
    assert_refused("auth=sasl.GSSAPI", "%s", nested_uri(&i_hostd, "auth=sasl.GSSAPI"));
    /* nor by default: P offers only peer, and a wire open never picks it */
    person alice = { "alice", ALICE_PW, 0, 0, 0 };
    vb_error err;
    assert_int_equal(open_via_d(nested_uri(&p_hostd, NULL), &alice, &err), -1);
    assert_int_equal(err.code, VB_ERR_AUTH_UNAVAILABLE);
    /* P never saw anyone log in as D's uid */
    assert_int_equal(vb_ts_count_in_file(p_hostd.log, "authenticated as"), 0);
}

/* the allowed "ssh" next hop, with room for one parameter */
#define SSH_URI "test+ssh://alice@127.0.0.1:%d/default?"

static void test_wire_known_hosts_auto_refused_and_no_file(void **state)
{
    (void)state;
    char kh_dir[400];
    snprintf(kh_dir, sizeof kh_dir, "%s/x", dir);
    assert_refused("known_hosts", SSH_URI "known_hosts=%s/y/z&known_hosts_verify=auto", ssh_port,
                   kh_dir);
    struct stat st;
    assert_int_equal(stat(kh_dir, &st), -1); /* no directory made, no file */
    assert_refused("known_hosts_verify=ignore", SSH_URI "known_hosts_verify=ignore", ssh_port);
    assert_false(dialled(ssh_fd));
}

static void test_wire_keyfile_and_agent_refused(void **state)
{
    (void)state;
    assert_refused("keyfile", SSH_URI "keyfile=%s/id_ed25519", ssh_port, dir);
    assert_refused("sshauth=agent", SSH_URI "sshauth=agent,password", ssh_port);
    assert_false(dialled(ssh_fd));
}

/* D has a Kerberos ticket and I offers GSSAPI: a client's plain auth=sasl
 * must not become a login with D's ticket; the client is asked instead */
static void test_wire_sasl_never_uses_daemon_ticket(void **state)
{
    (void)state;
    person alice = { "alice", ALICE_PW, 0, 0, 0 };
    vb_remote *r = client_of_d(&alice);
    vb_error err;
    if (vb_remote_open(r, nested_uri(&i_hostd, "auth=sasl"), 0, &err) < 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(alice.inner_calls, 1);
    vb_remote_free(r);
    assert_int_equal(vb_ts_count_in_file(i_hostd.log, "(sasl GSSAPI"), 0);
}

/* ---- only the endpoints the operator listed ------------------------------------ */

static void test_xenapi_not_allowed_never_dialled(void **state)
{
    (void)state;
    assert_refused("allowed_xenapi_hosts", "xenapi://root@127.0.0.1:%d/?transport=http",
                   unlisted_port);
    /* names are compared as written, not resolved: localhost is not 127.0.0.1 */
    assert_refused("allowed_xenapi_hosts", "xenapi://root@localhost:%d/?transport=http", xen_port);
    assert_false(dialled(unlisted_fd));
}

static void test_xenapi_allowed_works_and_keeps_tls_checks(void **state)
{
    (void)state;
    char uri[400];
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?transport=http", xen_port);
    person alice = { "alice", ALICE_PW, 0, 0, 0 };
    vb_remote *r = client_of_d(&alice);
    vb_error err;
    if (vb_remote_open(r, uri, 0, &err) < 0)
        fail_msg("open %s: %s", uri, err.message);
    assert_int_equal(alice.xen_calls, 1); /* asked of the client, relayed */
    vb_domain_info *doms = NULL;
    size_t n = 0;
    assert_int_equal(vb_remote_list_domains(r, &doms, &n, &err), 0);
    assert_true(n >= 1);
    free(doms);
    vb_remote_free(r);
    assert_refused("no_verify=1", "xenapi://root@127.0.0.1:%d/?no_verify=1", xen_port);
    assert_refused("cafile", "xenapi://root@127.0.0.1:%d/?cafile=/etc/shadow", xen_port);
}

static void test_next_hop_not_listed_never_dialled(void **state)
{
    (void)state;
    assert_refused("allowed_next_hops", "test+tcp://127.0.0.1:%d/default", unlisted_port);
    assert_refused("allowed_next_hops", "test+ssh://alice@127.0.0.1:%d/default", unlisted_port);
    assert_false(dialled(unlisted_fd));
    /* a socket path is an endpoint too: only the listed ones */
    assert_refused("socket=", "test+unix:///default?socket=%s/other.sock", dir);
}

/* ---- one client, one next-hop login ------------------------------------------------ */

static void test_second_client_logs_in_itself(void **state)
{
    (void)state;
    const char *uri = nested_uri(&i_hostd, "auth=sasl.SCRAM-SHA-256");
    int logins = vb_ts_count_in_file(i_hostd.log, "authenticated as 'bob");
    person alice = { "alice", ALICE_PW, 0, 0, 0 }, carol = { "carol", CAROL_PW, 0, 0, 0 };
    vb_remote *ra = client_of_d(&alice), *rc = client_of_d(&carol);
    vb_error err;
    if (vb_remote_open(ra, uri, 0, &err) < 0)
        fail_msg("alice: %s", err.message);
    assert_int_equal(alice.inner_calls, 1);
    /* alice's hop is up; carol opens the same URI and is asked herself */
    if (vb_remote_open(rc, uri, 0, &err) < 0)
        fail_msg("carol: %s", err.message);
    assert_int_equal(carol.inner_calls, 1);
    assert_int_equal(alice.inner_calls, 1);
    /* two logins at I: carol's hop is her own */
    assert_int_equal(vb_ts_count_in_file(i_hostd.log, "authenticated as 'bob"), logins + 2);
    char *host = NULL;
    assert_int_equal(vb_remote_get_hostname(rc, &host, &err), 0);
    free(host);
    vb_remote_free(ra);
    vb_remote_free(rc);
}

static void test_leaving_client_closes_its_hop(void **state)
{
    (void)state;
    int idle = i_idle_sockets;
    sockets_at before = { i_hostd.pid, idle };
    /* the earlier tests' clients left: their hops are gone too */
    if (vb_ts_wait_until(sockets_back, &before, vb_ts_scaled_ms(5000)) < 0)
        fail_msg("I holds %d sockets, %d with no client: D kept the hops of clients that left",
                 socket_count(i_hostd.pid), idle);
    person alice = { "alice", ALICE_PW, 0, 0, 0 };
    vb_remote *r = client_of_d(&alice);
    vb_error err;
    if (vb_remote_open(r, nested_uri(&i_hostd, "auth=sasl.SCRAM-SHA-256"), 0, &err) < 0)
        fail_msg("open: %s", err.message);
    assert_int_equal(socket_count(i_hostd.pid), idle + 1); /* D's hop, as I sees it */
    vb_remote_free(r); /* leaves without CLOSE */
    if (vb_ts_wait_until(sockets_back, &before, vb_ts_scaled_ms(5000)) < 0)
        fail_msg("I still holds %d sockets (%d before): D kept the hop of a client that left",
                 socket_count(i_hostd.pid), idle);
}

/* A malformed allow-list entry stops vbhostd at start, naming key and entry
 * (a typo must never widen or silently empty the list). */
static void test_bad_allow_list_entries_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "allowed_next_hops = [\"tcp://alice@h\"]",  "allowed_next_hops = [\"http://h\"]",
        "allowed_next_hops = [\"tcp://::1\"]",      "allowed_next_hops = [\"unix:relative\"]",
        "allowed_xenapi_hosts = [\"h:99999\"]",     "allowed_xenapi_hosts = [\"h/x\"]",
    };
    char path[300], conf[600];
    snprintf(path, sizeof path, "%s/bad.conf", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(conf, sizeof conf, "listen_unix = \"%s/bad.sock\"\n%s\n", dir, bad[i]);
        vb_ts_write_file(path, conf, 0600);
        char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", path, "--foreground", NULL };
        char *out = NULL;
        assert_int_equal(vb_ts_run(argv, NULL, NULL, &out, vb_ts_scaled_ms(10000)), 1);
        const char *quote = strchr(bad[i], '"');
        char entry[64];
        snprintf(entry, sizeof entry, "'%.*s'", (int)strcspn(quote + 1, "\""), quote + 1);
        if (!out || !strstr(out, entry) || !strstr(out, "allowed_"))
            fail_msg("%s: vbhostd said: %s", bad[i], out ? out : "(nothing)");
        free(out);
    }
}

/* Last: every daemon exits cleanly on SIGTERM (under SAN=1: no leak, no
 * memory error, in the allow-lists or the private hops either). */
static void test_daemons_exit_cleanly(void **state)
{
    (void)state;
    vb_ts_hostd *all[] = { &d_hostd, &i_hostd, &p_hostd };
    int bad = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        bad += vb_ts_check_exit("vbhostd", vb_ts_stop(all[i]->pid, vb_ts_scaled_ms(5000)),
                                all[i]->log) < 0;
        all[i]->pid = 0;
    }
    if (bad)
        fail_msg("%d vbhostd(s) did not exit cleanly on SIGTERM (see above)", bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_auth_peer_refused),
        cmocka_unit_test(test_wire_known_hosts_auto_refused_and_no_file),
        cmocka_unit_test(test_wire_keyfile_and_agent_refused),
        cmocka_unit_test(test_wire_sasl_never_uses_daemon_ticket),
        cmocka_unit_test(test_xenapi_not_allowed_never_dialled),
        cmocka_unit_test(test_xenapi_allowed_works_and_keeps_tls_checks),
        cmocka_unit_test(test_next_hop_not_listed_never_dialled),
        cmocka_unit_test(test_second_client_logs_in_itself),
        cmocka_unit_test(test_leaving_client_closes_its_hop),
        cmocka_unit_test(test_bad_allow_list_entries_refused),
        cmocka_unit_test(test_daemons_exit_cleanly),
    };
    return cmocka_run_group_tests_name("deputy", tests, group_setup, group_teardown);
}
