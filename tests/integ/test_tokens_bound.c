/* Tokens bound to where they were obtained (issue 13, items 3 and 4), tried
 * as an attacker would, against a real vbhostd and a real vbrokerd:
 *
 *  (a) a forwarding impostor at another unix socket claims the real server's
 *      id, relays the broker's token challenge and proof to the real server
 *      and tries to shut a domain down with the resulting login;
 *  (b) an impostor claiming the real server's id answers TOKEN_REFUSED: the
 *      broker's cached login must survive it (cache.db is read) and the next
 *      real open still logs in with the token, silently;
 *  (c) a token obtained by uid A over unix, presented by uid B;
 *  (d) a unix socket owned by an unexpected uid: no token offered, no
 *      cleartext SASL mechanism.
 *
 * Plus the server's endpoint check on the wire, and the compatibility rows of
 * docs/protocol.md §7 (an old client's unbound challenge, an old server).
 *
 * Impostors are threads of this process speaking the real framing. Uid B is
 * a uid with no passwd entry: as root we take it with seteuid() around the
 * connect() or listen() whose SO_PEERCRED the other side reads, so no user
 * is created. Daemons are started here and stopped by pid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "vb_msg.h"
#include "vb_net.h"
#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vb_testsupport_wire.h"
#include "vb_token.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "b0und-T0ken-Pw"
#define START_MS 10000

static char *dir;
static char host_sock[400], host_conf[400], host_log[400];
static char brk_sock[400], brk_log[400], brk_state[400];
static pid_t host_pid, brk_pid;
static int host_port; /* its TCP listener (tokens allowed: tcp_min_ssf = 0) */
static char real_id[80];
static uid_t other_uid; /* uid B: no passwd entry, owns nothing */

/* ---- daemons ------------------------------------------------------------- */

static int start_hostd(void)
{
    char text[2000], sasl[400];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    snprintf(host_sock, sizeof host_sock, "%s/real/sock", dir);
    snprintf(host_log, sizeof host_log, "%s/vbhostd.log", dir);
    snprintf(host_conf, sizeof host_conf, "%s/vbhostd.conf", dir);
    /* the socket is open to every local user: uid B may try what it wants */
    host_port = vb_ts_free_tcp_port();
    snprintf(text, sizeof text,
             "listen_unix = \"%s\"\nlisten_unix_mode = \"0666\"\nstate_dir = \"%s/state\"\n"
             "auth_unix = [\"token\", \"sasl\"]\nsasl_conf_dir = \"%s\"\n"
             "listen_tcp = \"127.0.0.1:%d\"\nauth_tcp = [\"token\", \"sasl\"]\ntcp_min_ssf = 0\n"
             "sasl_hostname = \"localhost\"\n"
             "sasl_realm = \"" REALM "\"\nlog_level = \"debug\"\n",
             host_sock, dir, sasl, host_port);
    if (vb_ts_write_file(host_conf, text, 0600) < 0)
        return -1;
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", host_conf, "--foreground", NULL };
    host_pid = vb_ts_spawn_daemon(argv, host_log);
    return host_pid > 0 && vb_ts_wait_unix_socket(host_sock, vb_ts_scaled_ms(START_MS)) == 0 &&
                   vb_ts_wait_tcp("127.0.0.1", host_port, vb_ts_scaled_ms(START_MS)) == 0
               ? 0
               : -1;
}

static int start_broker(void)
{
    snprintf(brk_sock, sizeof brk_sock, "%s/brk-run/sock", dir);
    snprintf(brk_log, sizeof brk_log, "%s/vbrokerd.log", dir);
    snprintf(brk_state, sizeof brk_state, "%s/brk-state", dir);
    /* no password kept, no idle host connection: every open logs in again */
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", brk_sock, "--state-dir", brk_state,
                     "--secret-ttl", "0", "--upstream-idle", "0", "--log-level", "debug", NULL };
    brk_pid = vb_ts_spawn_daemon(argv, brk_log);
    return brk_pid > 0 && vb_ts_wait_unix_socket(brk_sock, vb_ts_scaled_ms(START_MS)) == 0 ? 0 : -1;
}

static uid_t unused_uid(void)
{
    for (uid_t u = 54321; u < 64000; u++)
        if (!getpwuid(u))
            return u;
    return 0;
}

/* ---- framing ------------------------------------------------------------- */

/* send a frame made for us, and free it */
static int send_frame(int fd, uint8_t *frame, size_t len)
{
    int rc = vb_ts_send_all(fd, frame, len);
    vb_frame_free(frame, len);
    return rc;
}

static int call(vb_ts_wire *c, uint32_t serial, uint32_t proc, vb_ts_body_fn body, const void *arg,
                vb_msg *reply)
{
    vb_msg_header h = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, serial, proc,
                        VB_STATUS_OK, 0 };
    return vb_ts_wire_call(c, &h, body, arg, vb_ts_scaled_ms(5000), reply) == 1 ? 0 : -1;
}

static int send_error(int fd, const vb_msg_header *req, int code, const char *text)
{
    vb_error e;
    uint8_t *frame;
    size_t len;
    vb_error_set(&e, code, VB_DOM_AUTH, "%s", text);
    if (vb_enc_error_reply(req, VB_MSG_REPLY, &e, &frame, &len, NULL) < 0)
        return -1;
    return send_frame(fd, frame, len);
}

/* the error code of an ERROR reply */
static int reply_code(const vb_msg *m)
{
    vb_error e;
    if (m->hdr.status != VB_STATUS_ERROR || vb_msg_error_body(m, &e, NULL) < 0)
        return 0;
    return e.code;
}

static int connect_unix_as(const char *path, uid_t euid)
{
    vb_error err;
    /* SO_PEERCRED records the effective uid at connect() */
    if (euid && seteuid(euid) < 0)
        return -1;
    int fd = vb_net_connect_unix(path, &err);
    if (euid && seteuid(0) < 0)
        abort();
    return fd;
}

/* ---- the broker side: libvbroker ----------------------------------------- */

/* the person at the app types alice's password */
typedef vb_ts_form form;
#define FORM_INIT { "alice", PASSWORD, 0 }

static char *unix_uri(const char *sock, const char *more)
{
    static char buf[4][600];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 600, "test+unix:///default?socket=%s%s", sock, more ? more : "");
    return b;
}

static vb_conn *open_uri(const char *uri, form *f, vb_error *err)
{
    vb_auth auth = { vb_ts_form_types, 2, f ? vb_ts_form_cb : NULL, f };
    return vb_open_auth(uri, &auth, 0, err);
}

static int run_sqlite(const char *sql, char **out)
{
    char db[500];
    snprintf(db, sizeof db, "%s/cache.db", brk_state);
    char *argv[] = { "sqlite3", db, (char *)sql, NULL };
    char *o = NULL;
    int rc = vb_ts_run(argv, NULL, NULL, &o, 10000);
    if (out)
        *out = o;
    else
        free(o);
    return rc;
}

/* The token id of the broker's cached login for the real server, read from
 * cache.db itself ("" when there is none). */
static void cached_token_id(char id[40])
{
    char sql[300], *out = NULL;
    snprintf(sql, sizeof sql, "SELECT token_id FROM logins WHERE server_id = '%s';", real_id);
    id[0] = '\0';
    assert_int_equal(run_sqlite(sql, &out), 0);
    if (out && strlen(out) >= 32)
        snprintf(id, 40, "%.32s", out);
    free(out);
}

/* Say the cached login was obtained at endpoint (as if it had been): a
 * test of what the broker offers there, or of what the other checks do when
 * it does offer the token. Best effort: a build without the column (main
 * before the binding) offers the token by server id alone anyway. */
static void set_login_endpoint(const char *endpoint)
{
    char sql[900];
    snprintf(sql, sizeof sql, "UPDATE logins SET endpoint = '%s' WHERE server_id = '%s';", endpoint,
             real_id);
    if (run_sqlite(sql, NULL) != 0)
        print_message("cache.db has no endpoint column\n");
}

static void restore_login_endpoint(void)
{
    char ep[420];
    snprintf(ep, sizeof ep, "unix:%s", host_sock);
    set_login_endpoint(ep);
}

/* The state of domain name, as conn sees it (-1: not listed). */
static int domain_state(vb_conn *conn, const char *name)
{
    vb_domain *doms;
    size_t n;
    vb_error err;
    if (vb_list_domains(conn, &doms, &n, &err) < 0)
        fail_msg("list domains: %s", err.message);
    int state = -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(doms[i].name, name) == 0)
            state = (int)doms[i].state;
    vb_domains_free(doms, n);
    return state;
}

/* ---- impostors ----------------------------------------------------------- */

enum imp_mode {
    IMP_SCRIPT,   /* answer AUTH_* itself: TOKEN_REFUSED, SASL fails */
    IMP_FORWARD,  /* relay every frame to the real server, then use its login */
};

typedef struct impostor {
    enum imp_mode mode;
    const char *types[3];        /* AUTH_LIST auth types (SCRIPT) */
    size_t ntypes;
    const char *mechlist;        /* AUTH_SASL_INIT answer (SCRIPT) */
    int challenge_error;         /* its answer to a token challenge (0: TOKEN_REFUSED) */
    int old_server;              /* announce no "token_bind" */
    int rewrite_endpoint;        /* FORWARD: claim the real endpoint in the challenge */
    int lfd;
    atomic_int stop;
    pthread_t thread;
    char path[300];
    /* what it saw and achieved (read after the thread ended) */
    int connections, challenges, challenge_fields, proves, cleartext_starts, sasl_starts, got_password;
    int upstream_logged_in, hijacked;
} impostor;

static void pack_auth_list(vb_enc *enc, const void *arg)
{
    const impostor *imp = arg;
    vb_enc_array(enc, 3);
    vb_enc_array(enc, (uint32_t)imp->ntypes);
    for (size_t i = 0; i < imp->ntypes; i++)
        vb_enc_str(enc, imp->types[i]);
    vb_enc_str(enc, real_id); /* "I am the real server" */
    vb_enc_array(enc, imp->old_server ? 1 : 2);
    vb_enc_str(enc, "conn_id");
    if (!imp->old_server)
        vb_enc_str(enc, "token_bind");
}

static void pack_one_str(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 1);
    vb_enc_str(enc, arg);
}

static void note_sasl_start(impostor *imp, const vb_msg *m)
{
    vb_rd rd;
    const char *mech;
    size_t len;
    imp->sasl_starts++;
    if (vb_rd_init(&rd, m->body, NULL) == 0 && vb_rd_str(&rd, &mech, &len, NULL) == 0 && mech &&
        ((len == 5 && strncasecmp(mech, "PLAIN", 5) == 0) ||
         (len == 5 && strncasecmp(mech, "LOGIN", 5) == 0)))
        imp->cleartext_starts++;
    if (memmem(m->payload, m->payload_len, PASSWORD, strlen(PASSWORD)))
        imp->got_password++;
}

/* One connection of a scripted impostor, until the client leaves. */
static void serve_script(impostor *imp, int fd)
{
    vb_ts_wire c;
    vb_ts_wire_adopt(&c, fd);
    vb_msg m;
    while (!imp->stop) {
        int rc = vb_ts_wire_read(&c, 200, &m);
        if (rc == -2)
            continue; /* nothing yet: look at stop again */
        if (rc != 1)
            break;
        vb_msg_header h = m.hdr;
        h.type = VB_MSG_REPLY;
        if (m.hdr.procedure == VB_HOST_PROC_AUTH_LIST) {
            vb_ts_send_msg(fd, &h, pack_auth_list, imp);
        } else if (m.hdr.procedure == VB_HOST_PROC_AUTH_SASL_INIT) {
            vb_ts_send_msg(fd, &h, pack_one_str, imp->mechlist);
        } else if (m.hdr.procedure == VB_HOST_PROC_AUTH_SASL_START) {
            note_sasl_start(imp, &m);
            send_error(fd, &m.hdr, VB_ERR_AUTH_FAILED, "authentication failed");
        } else if (m.hdr.procedure == VB_HOST_PROC_AUTH_TOKEN_CHALLENGE) {
            imp->challenges++;
            imp->challenge_fields = m.body ? (int)m.body->via.array.size : -1;
            send_error(fd, &m.hdr, imp->challenge_error ? imp->challenge_error : VB_ERR_TOKEN_REFUSED,
                       "token not accepted");
        } else if (m.hdr.type == VB_MSG_CALL) {
            send_error(fd, &m.hdr, VB_ERR_AUTH_REQUIRED, "authentication required");
        }
        vb_msg_clear(&m);
    }
    vb_ts_wire_close(&c);
}

typedef struct rewrite {
    const vb_msg *m;
} rewrite;

/* The broker's challenge with the real server's endpoint in place of ours,
 * so the real server takes it for a challenge made at its own socket. */
static void pack_rewritten_challenge(vb_enc *enc, const void *arg)
{
    const vb_msg *m = arg;
    vb_rd rd;
    const char *id;
    const uint8_t *cn;
    size_t idlen, cnlen;
    char ep[500];
    snprintf(ep, sizeof ep, "unix:%s", host_sock);
    if (vb_rd_init(&rd, m->body, NULL) < 0 || vb_rd_str(&rd, &id, &idlen, NULL) < 0 ||
        vb_rd_bin(&rd, &cn, &cnlen, NULL) < 0) {
        vb_enc_array(enc, 0);
        return;
    }
    vb_enc_array(enc, 3);
    vb_enc_strn(enc, id, idlen);
    vb_enc_bin(enc, cn, cnlen);
    vb_enc_str(enc, ep);
}

/* The frame exactly as it came: the length prefix, then the payload. */
static void forward(int fd, const vb_msg *m)
{
    size_t len = m->payload_len;
    uint8_t *frame = malloc(len + 4);
    if (!frame)
        return;
    frame[0] = (uint8_t)(len >> 24);
    frame[1] = (uint8_t)(len >> 16);
    frame[2] = (uint8_t)(len >> 8);
    frame[3] = (uint8_t)len;
    memcpy(frame + 4, m->payload, len);
    send_frame(fd, frame, len + 4);
}

/* Logged in upstream with the victim's token: shut a domain down with it. */
static void pack_open(vb_enc *enc, const void *arg)
{
    (void)arg;
    vb_enc_array(enc, 2);
    vb_enc_str(enc, "test:///default");
    vb_enc_u64(enc, 0);
}

static void hijack(impostor *imp, vb_ts_wire *up)
{
    vb_msg m;
    if (call(up, 9001, VB_HOST_PROC_OPEN, pack_open, NULL, &m) < 0)
        return;
    vb_msg_clear(&m);
    if (call(up, 9002, VB_HOST_PROC_DOMAIN_SHUTDOWN, pack_one_str, "web", &m) < 0)
        return;
    imp->hijacked = m.hdr.status == VB_STATUS_OK;
    vb_msg_clear(&m);
}

/* One connection of a forwarding impostor: a relay to the real server. */
static void serve_forward(impostor *imp, int fd)
{
    vb_ts_wire down, up;
    vb_ts_wire_adopt(&down, fd);
    vb_ts_wire_adopt(&up, connect_unix_as(host_sock, 0));
    uint32_t prove_serial = 0;
    while (!imp->stop && up.fd >= 0) {
        struct pollfd p[2] = { { .fd = down.fd, .events = POLLIN }, { .fd = up.fd, .events = POLLIN } };
        int has_buffered = down.off < down.have || up.off < up.have;
        if (!has_buffered && poll(p, 2, 200) <= 0)
            continue;
        vb_msg m;
        if (down.off < down.have || (p[0].revents & (POLLIN | POLLHUP))) {
            if (vb_ts_wire_read(&down, vb_ts_scaled_ms(2000), &m) != 1)
                break;
            if (m.hdr.procedure == VB_HOST_PROC_AUTH_TOKEN_CHALLENGE) {
                imp->challenges++;
                if (imp->rewrite_endpoint) {
                    vb_ts_send_msg(up.fd, &m.hdr, pack_rewritten_challenge, &m);
                    vb_msg_clear(&m);
                    continue;
                }
            }
            if (m.hdr.procedure == VB_HOST_PROC_AUTH_TOKEN_PROVE) {
                imp->proves++;
                prove_serial = m.hdr.serial;
            }
            forward(up.fd, &m);
            vb_msg_clear(&m);
        } else {
            if (vb_ts_wire_read(&up, vb_ts_scaled_ms(2000), &m) != 1)
                break;
            int logged_in = prove_serial && m.hdr.serial == prove_serial &&
                            m.hdr.type == VB_MSG_REPLY && m.hdr.status == VB_STATUS_OK;
            forward(down.fd, &m);
            vb_msg_clear(&m);
            if (logged_in) {
                imp->upstream_logged_in = 1;
                hijack(imp, &up);
                break;
            }
        }
    }
    vb_ts_wire_close(&up);
    vb_ts_wire_close(&down);
}

static void *impostor_main(void *arg)
{
    impostor *imp = arg;
    while (!imp->stop) {
        struct pollfd p = { .fd = imp->lfd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(imp->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        imp->connections++;
        if (imp->mode == IMP_FORWARD)
            serve_forward(imp, fd);
        else
            serve_script(imp, fd);
    }
    return NULL;
}

/* path = DIR/name/sock, in a fresh directory anyone may enter */
static void impostor_path(const char *name, char *path, size_t len)
{
    char sub[400];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    mkdir(sub, 0755);
    snprintf(path, len, "%s/sock", sub);
}

/* Listen at path; the socket's owner (SO_PEERCRED, taken at listen()) is
 * owner. 0 or -1. */
static int impostor_listen_unix(impostor *imp, const char *path, uid_t owner)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(imp->path, sizeof imp->path, "%s", path);
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    unlink(path);
    imp->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (imp->lfd < 0 || bind(imp->lfd, (struct sockaddr *)&sun, sizeof sun) < 0)
        return -1;
    chmod(path, 0666);
    if (owner && seteuid(owner) < 0)
        return -1;
    int rc = listen(imp->lfd, 16);
    if (owner && seteuid(0) < 0)
        abort();
    return rc;
}

static int impostor_listen_tcp(impostor *imp, int port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    imp->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(imp->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (imp->lfd < 0 || bind(imp->lfd, (struct sockaddr *)&sin, sizeof sin) < 0)
        return -1;
    return listen(imp->lfd, 16);
}

static void impostor_start(impostor *imp)
{
    assert_int_equal(pthread_create(&imp->thread, NULL, impostor_main, imp), 0);
}

static void impostor_stop(impostor *imp)
{
    imp->stop = 1;
    pthread_join(imp->thread, NULL);
    close(imp->lfd);
    if (imp->path[0])
        unlink(imp->path);
}

/* ---- setup --------------------------------------------------------------- */

/* The real server's id, from its own AUTH_LIST. */
static int read_real_id(void)
{
    vb_ts_wire c;
    vb_msg m;
    vb_ts_wire_adopt(&c, connect_unix_as(host_sock, 0));
    if (call(&c, 1, VB_HOST_PROC_AUTH_LIST, NULL, NULL, &m) < 0) {
        vb_ts_wire_close(&c);
        return -1;
    }
    vb_rd rd;
    const char *id;
    size_t len;
    int rc = vb_rd_init(&rd, m.body, NULL) < 0 || vb_rd_skip(&rd, NULL) < 0 ||
                     vb_rd_str(&rd, &id, &len, NULL) < 0 || !id || len >= sizeof real_id
                 ? -1
                 : 0;
    if (rc == 0)
        snprintf(real_id, sizeof real_id, "%.*s", (int)len, id);
    vb_msg_clear(&m);
    vb_ts_wire_close(&c);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    dir = vb_ts_tmpdir("tokbound");
    vb_ts_note_secret(PASSWORD);
    char path[400];
    chmod(dir, 0711); /* uid B may reach the real socket below, nothing else */
    snprintf(path, sizeof path, "%s/real", dir);
    mkdir(path, 0755);
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256 digest-md5", users, NULL) < 0)
        return -1;
    if (start_hostd() < 0 || start_broker() < 0 || read_real_id() < 0)
        return -1;
    other_uid = unused_uid();
    setenv("VBROKER_SOCKET", brk_sock, 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    return 0;
}

/* Each test starts from the victim's login (a token for the real server,
 * obtained at its socket), whatever the test before did to it. */
static vb_conn *keep; /* the victim's own session, when a test holds one */

static int test_setup(void **state)
{
    (void)state;
    char id[40];
    cached_token_id(id);
    if (id[0])
        return 0;
    form f = FORM_INIT;
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    vb_error err;
    if (vb_login(unix_uri(host_sock, NULL), &auth, 0, NULL, NULL, &err) < 0) {
        print_message("login: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    if (keep)
        vb_close(keep);
    keep = NULL;
    restore_login_endpoint();
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

static void require_root(void)
{
    if (geteuid() != 0 || !other_uid) {
        print_message("needs root (seteuid to a second uid)\n");
        skip();
    }
}

/* ---- (a) a forwarding impostor --------------------------------------------- */

static void attack_by_relay(int rewrite_endpoint, int offer_here)
{
    char evil[420], token_before[40], token_after[40], name[40];
    snprintf(name, sizeof name, "evil%d%d", rewrite_endpoint, offer_here);
    impostor_path(name, evil, sizeof evil);
    cached_token_id(token_before);
    assert_true(token_before[0]);
    /* the victim's own session keeps the test host (and its state) alive */
    vb_error err;
    keep = open_uri(unix_uri(host_sock, NULL), NULL, &err);
    if (!keep)
        fail_msg("the victim's own open: %s", err.message);
    assert_int_equal(domain_state(keep, "web"), VB_DOMAIN_RUNNING);
    int refusals = vb_ts_count_in_file(host_log, "is not the one it connected to");

    impostor imp = { .mode = IMP_FORWARD, .rewrite_endpoint = rewrite_endpoint };
    assert_int_equal(impostor_listen_unix(&imp, evil, 0), 0); /* owned by root, as vbhostd */
    impostor_start(&imp);
    if (offer_here) {
        /* worst case: the broker holds the token for the impostor's endpoint
         * too (as if it had been obtained there); only the proof's binding
         * stands between the impostor and the victim's login now */
        char ep[430];
        snprintf(ep, sizeof ep, "unix:%s", evil);
        set_login_endpoint(ep);
    }
    vb_conn *c = open_uri(unix_uri(evil, NULL), NULL, &err);
    impostor_stop(&imp);
    print_message("relay (rewrite %d, offered %d): %s; %d challenge(s) relayed\n", rewrite_endpoint,
                  offer_here, c ? "opened" : err.message, imp.challenges);
    if (c)
        vb_close(c);
    assert_int_equal(imp.connections >= 1, 1);
    assert_false(imp.upstream_logged_in);
    assert_false(imp.hijacked);
    assert_null(c);
    /* the domain is as it was, seen by the victim's own session */
    assert_int_equal(domain_state(keep, "web"), VB_DOMAIN_RUNNING);
    vb_close(keep);
    keep = NULL;
    if (offer_here) {
        assert_true(imp.challenges >= 1); /* the token was offered to the relay */
        assert_int_equal(imp.proves, 0);  /* and the broker proved nothing */
        restore_login_endpoint();
    }
    if (offer_here && !rewrite_endpoint)
        /* the real server saw a proof bound to another endpoint and said so */
        assert_true(vb_ts_count_in_file(host_log, "is not the one it connected to") > refusals);
    /* and the victim's login is still there, still the same token */
    cached_token_id(token_after);
    assert_string_equal(token_after, token_before);
}

static void test_relay_from_another_socket_gets_nothing(void **state)
{
    (void)state;
    attack_by_relay(0, 0);
}

static void test_relayed_proof_refused_by_real_server(void **state)
{
    (void)state;
    attack_by_relay(0, 1);
}

static void test_relay_claiming_real_endpoint_fails_server_proof(void **state)
{
    (void)state;
    attack_by_relay(1, 1);
}

/* ---- (b) an impostor's TOKEN_REFUSED ------------------------------------------ */

/* After meeting the impostor, the real server still takes the token, with
 * nobody asked: the login was not erased. */
static void assert_token_still_used_silently(const char *token_before)
{
    char token_after[40];
    cached_token_id(token_after);
    assert_string_equal(token_after, token_before);
    int token_logins = vb_ts_count_in_file(host_log, "(token ");
    vb_error err;
    vb_conn *c = open_uri(unix_uri(host_sock, NULL), NULL, &err);
    if (!c)
        fail_msg("the real open after the impostor: %s", err.message);
    vb_close(c);
    assert_true(vb_ts_count_in_file(host_log, "(token ") > token_logins);
}

static void test_refusal_from_impostor_socket_erases_nothing(void **state)
{
    (void)state;
    char evil[420], token_before[40];
    impostor_path("refuser", evil, sizeof evil);
    cached_token_id(token_before);
    assert_true(token_before[0]);
    impostor imp = { .mode = IMP_SCRIPT, .types = { "token" }, .ntypes = 1, .mechlist = "" };
    assert_int_equal(impostor_listen_unix(&imp, evil, 0), 0);
    impostor_start(&imp);
    vb_error err;
    vb_conn *c = open_uri(unix_uri(evil, NULL), NULL, &err);
    impostor_stop(&imp);
    print_message("impostor refusing tokens: %s (%d challenge(s))\n", c ? "opened" : err.message,
                  imp.challenges);
    assert_null(c);
    assert_int_equal(imp.connections >= 1, 1);
    assert_token_still_used_silently(token_before);
}

/* The impostor sits where the token was obtained (a man in the middle on
 * plain TCP: the endpoint is right, but nothing proves the server): its
 * refusal marks the token suspect and erases nothing. */
static void test_refusal_from_unproven_server_at_the_endpoint_erases_nothing(void **state)
{
    (void)state;
    char token_before[40], ep[100];
    int port = vb_ts_free_tcp_port();
    cached_token_id(token_before);
    assert_true(token_before[0]);
    impostor imp = { .mode = IMP_SCRIPT, .types = { "token" }, .ntypes = 1, .mechlist = "" };
    assert_int_equal(impostor_listen_tcp(&imp, port), 0);
    impostor_start(&imp);
    /* as if the login had been made at tcp:127.0.0.1:PORT */
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", port);
    set_login_endpoint(ep);
    char uri[200];
    snprintf(uri, sizeof uri, "test+tcp://127.0.0.1:%d/default", port);
    vb_error err;
    vb_conn *c = open_uri(uri, NULL, &err);
    impostor_stop(&imp);
    print_message("unproven server refusing the token: %s\n", c ? "opened" : err.message);
    assert_null(c);
    assert_int_equal(imp.challenges, 1); /* it was offered, and refused it */
    restore_login_endpoint();
    assert_token_still_used_silently(token_before);
}

/* ---- a TCP login, end to end ------------------------------------------------- */

/* Obtained over TCP (DIGEST-MD5 with a security layer, so the secret may
 * cross), the token logs in again over TCP with a proof bound to the address
 * the connection reached; it is offered at that endpoint only. */
static void test_tcp_token_bound_to_its_address(void **state)
{
    (void)state;
    char login_uri[200], uri[200];
    snprintf(login_uri, sizeof login_uri, "test+tcp://localhost:%d/default?auth=sasl.DIGEST-MD5",
             host_port);
    snprintf(uri, sizeof uri, "test+tcp://localhost:%d/default", host_port);
    form f = FORM_INIT;
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
    vb_error err;
    if (vb_login(login_uri, &auth, 0, NULL, NULL, &err) < 0)
        fail_msg("login over TCP: %s", err.message);
    char *out = NULL, sql[300];
    snprintf(sql, sizeof sql, "SELECT endpoint FROM logins WHERE server_id = '%s';", real_id);
    assert_int_equal(run_sqlite(sql, &out), 0);
    char want[100];
    snprintf(want, sizeof want, "tcp:localhost:%d\n", host_port);
    assert_string_equal(out, want);
    free(out);
    int token_logins = vb_ts_count_in_file(host_log, "(token ");
    vb_conn *c = open_uri(uri, NULL, &err);
    if (!c)
        fail_msg("token login over TCP: %s", err.message);
    vb_close(c);
    assert_true(vb_ts_count_in_file(host_log, "(token ") > token_logins);
    /* the same host through its unix socket: another endpoint, no token offered */
    c = open_uri(unix_uri(host_sock, NULL), NULL, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    /* the unix login again, for the tests after this one */
    assert_int_equal(vb_login(unix_uri(host_sock, NULL), &auth, 0, NULL, NULL, &err), 0);
}

/* ---- compatibility ------------------------------------------------------------ */

/* A server from before the binding names no "token_bind": it gets the old
 * 2-field challenge (and the v1 proof), at the token's own endpoint only. */
static void test_old_server_gets_the_unbound_challenge(void **state)
{
    (void)state;
    char old[420], ep[430];
    impostor_path("old-server", old, sizeof old);
    snprintf(ep, sizeof ep, "unix:%s", old);
    set_login_endpoint(ep);
    impostor imp = { .mode = IMP_SCRIPT, .types = { "token" }, .ntypes = 1, .mechlist = "",
                     .old_server = 1, .challenge_error = VB_ERR_AUTH_UNAVAILABLE };
    assert_int_equal(impostor_listen_unix(&imp, old, 0), 0);
    impostor_start(&imp);
    vb_error err;
    vb_conn *c = open_uri(unix_uri(old, NULL), NULL, &err);
    impostor_stop(&imp);
    if (c)
        vb_close(c);
    assert_int_equal(imp.challenges, 1);
    assert_int_equal(imp.challenge_fields, 2);
}

/* ---- (c) a unix token is its uid's only --------------------------------------- */

/* Present token id over the real socket as euid, for endpoint: the
 * challenge's error code (0 when the server answered it with its proof). */
static int challenge_on(int fd, const char *id, const char *endpoint)
{
    vb_ts_wire c;
    vb_msg m;
    uint8_t cnonce[VB_TOKEN_NONCE_LEN];
    memset(cnonce, 0x5a, sizeof cnonce);
    vb_ts_token_challenge a = { id, cnonce, endpoint };
    assert_true(fd >= 0);
    vb_ts_wire_adopt(&c, fd);
    assert_int_equal(call(&c, 1, VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, vb_ts_pack_token_challenge, &a, &m), 0);
    int code = reply_code(&m);
    vb_msg_clear(&m);
    vb_ts_wire_close(&c);
    return code;
}

static int challenge_at(uid_t euid, const char *id, const char *endpoint)
{
    return challenge_on(connect_unix_as(host_sock, euid), id, endpoint);
}

static int challenge_as(uid_t euid, const char *id)
{
    char ep[420];
    snprintf(ep, sizeof ep, "unix:%s", host_sock);
    return challenge_at(euid, id, ep);
}

/* The server's side of the binding, on the wire: which endpoints its unix
 * listener takes a challenge for. */
static void test_server_checks_the_endpoint(void **state)
{
    (void)state;
    char id[40], ep[500];
    cached_token_id(id);
    assert_true(id[0]);
    /* its own socket, and an SSH tunnel ending at it (SSH vouched for the host) */
    snprintf(ep, sizeof ep, "unix:%s", host_sock);
    assert_int_equal(challenge_at(0, id, ep), 0);
    snprintf(ep, sizeof ep, "ssh:host.example:22%s", host_sock);
    assert_int_equal(challenge_at(0, id, ep), 0);
    /* another socket, a tunnel to another socket, a TCP address: relayed */
    snprintf(ep, sizeof ep, "unix:%s/evil/sock", dir);
    assert_int_equal(challenge_at(0, id, ep), VB_ERR_AUTH_FAILED);
    snprintf(ep, sizeof ep, "ssh:host.example:22%s/evil/sock", dir);
    assert_int_equal(challenge_at(0, id, ep), VB_ERR_AUTH_FAILED);
    assert_int_equal(challenge_at(0, id, "tcp:127.0.0.1:16509"), VB_ERR_AUTH_FAILED);
    /* an old client's unbound challenge: unavailable, so it falls back to SASL */
    assert_int_equal(challenge_at(0, id, NULL), VB_ERR_AUTH_UNAVAILABLE);
    /* on TCP: the address the connection reached passes the endpoint check, and
     * then the token, issued over the unix socket, is refused there; any other
     * address is a relay */
    vb_error err;
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", host_port);
    assert_int_equal(challenge_on(vb_net_connect_tcp("127.0.0.1", host_port, 5000, &err), id, ep),
                     VB_ERR_TOKEN_REFUSED);
    snprintf(ep, sizeof ep, "tcp:127.0.0.2:%d", host_port);
    assert_int_equal(challenge_on(vb_net_connect_tcp("127.0.0.1", host_port, 5000, &err), id, ep),
                     VB_ERR_AUTH_FAILED);
    snprintf(ep, sizeof ep, "unix:%s", host_sock);
    assert_int_equal(challenge_on(vb_net_connect_tcp("127.0.0.1", host_port, 5000, &err), id, ep),
                     VB_ERR_AUTH_FAILED);
}

static void test_unix_token_refused_to_another_uid(void **state)
{
    (void)state;
    require_root();
    char id[40];
    cached_token_id(id); /* obtained by uid 0 (this process, through its broker) */
    assert_true(id[0]);
    int refusals = vb_ts_count_in_file(host_log, "belongs to uid 0");
    /* uid B holds the token (a relay, a leaked cache.db): refused */
    assert_int_equal(challenge_as(other_uid, id), VB_ERR_TOKEN_REFUSED);
    assert_true(vb_ts_count_in_file(host_log, "belongs to uid 0") > refusals);
    /* and the uid that obtained it still gets the server's proof */
    assert_int_equal(challenge_as(0, id), 0);
}

/* ---- (d) a unix socket of an unexpected owner ------------------------------------ */

static void run_owner_impostor(const char *params, impostor *imp, form *f, vb_error *err)
{
    char evil[420];
    impostor_path("other-owner", evil, sizeof evil);
    assert_int_equal(impostor_listen_unix(imp, evil, other_uid), 0);
    impostor_start(imp);
    /* the real server's socket path would do as well; another one keeps the
     * real server running for the other tests */
    vb_conn *c = open_uri(unix_uri(evil, params), f, err);
    impostor_stop(imp);
    if (c)
        vb_close(c);
    assert_null(c);
}

static void test_unexpected_owner_gets_no_token_and_no_cleartext(void **state)
{
    (void)state;
    require_root();
    /* the token is offered at its endpoint only: make it this endpoint, so
     * the owner check is what must withhold it */
    char ep[430];
    snprintf(ep, sizeof ep, "unix:%s/other-owner/sock", dir);
    set_login_endpoint(ep);
    impostor imp = { .mode = IMP_SCRIPT, .types = { "token", "sasl" }, .ntypes = 2,
                     .mechlist = "PLAIN LOGIN SCRAM-SHA-256" };
    form f = FORM_INIT;
    vb_error err;
    run_owner_impostor(NULL, &imp, &f, &err);
    print_message("socket of uid %u: %s (%d SASL start(s), %d cleartext)\n", (unsigned)other_uid,
                  err.message, imp.sasl_starts, imp.cleartext_starts);
    assert_int_equal(imp.challenges, 0);
    assert_int_equal(imp.cleartext_starts, 0);
    assert_int_equal(imp.got_password, 0);

    /* only PLAIN on offer: nothing is sent at all, and the error says why */
    impostor plain = { .mode = IMP_SCRIPT, .types = { "sasl" }, .ntypes = 1, .mechlist = "PLAIN" };
    run_owner_impostor(NULL, &plain, &f, &err);
    print_message("PLAIN only: %s\n", err.message);
    assert_int_equal(plain.sasl_starts, 0);
    assert_int_equal(plain.got_password, 0);

    /* control: when the URI names that owner, the same socket is offered
     * the token (it says "unavailable", erasing nothing) and then PLAIN: it
     * was the owner check that withheld both */
    char params[64];
    snprintf(params, sizeof params, "&server_uid=%u", (unsigned)other_uid);
    impostor named = { .mode = IMP_SCRIPT, .types = { "token", "sasl" }, .ntypes = 2,
                       .mechlist = "PLAIN", .challenge_error = VB_ERR_AUTH_UNAVAILABLE };
    run_owner_impostor(params, &named, &f, &err);
    assert_int_equal(named.challenges, 1);
    assert_true(named.cleartext_starts >= 1);
    restore_login_endpoint();
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_relay_from_another_socket_gets_nothing),
        T(test_relayed_proof_refused_by_real_server),
        T(test_relay_claiming_real_endpoint_fails_server_proof),
        T(test_refusal_from_impostor_socket_erases_nothing),
        T(test_refusal_from_unproven_server_at_the_endpoint_erases_nothing),
        T(test_unix_token_refused_to_another_uid),
        T(test_server_checks_the_endpoint),
        T(test_old_server_gets_the_unbound_challenge),
        T(test_tcp_token_bound_to_its_address),
        T(test_unexpected_owner_gets_no_token_and_no_cleartext),
    };
    return cmocka_run_group_tests_name("tokens_bound", tests, group_setup, group_teardown);
}
