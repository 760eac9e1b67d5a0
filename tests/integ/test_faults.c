/* kill -9 at every step of a login.
 *
 *   client (a forked copy of this test, libvbroker) → vbrokerd → relay → vbhostd
 *
 * The relay is a thread of this test between the broker and vbhostd's unix
 * socket. It forwards bytes as they come and reads the frame headers as they
 * pass, so it can stop the conversation at an exact point (right after the
 * AUTH_LIST reply, right after the OPEN call, ...) while the test kills the
 * daemon, the broker or the client. Then it lets the conversation go on, and
 * the test measures how long the survivors take to notice, checks they are
 * healthy, checks the sqlite files of the dead with PRAGMA integrity_check,
 * and makes sure no half-written token is ever used.
 *
 * Steps: the connection (before the first frame), after the AUTH_LIST reply,
 * after the AUTH_SASL_START reply, mid-prompt (the app's callback entered and
 * blocked), after the TOKEN_ISSUE call and after its reply during vb_login,
 * and during OPEN (the call sent, its reply held). Each step × each victim is
 * one test.
 *
 * VB_TEST_SLOWDOWN=N stretches the deadlines (valgrind); VB_TEST_DAEMON_WRAPPER
 * puts a command (valgrind ...) in front of the daemons this file starts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vb_msg.h"
#include "vb_net.h"
#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "f4ult-Pw-21"
#define START_MS 10000
#define BOUND_MS 5000 /* nobody may take longer than this to notice a death */

/* ---- time ------------------------------------------------------------------ */

/* ---- the relay ------------------------------------------------------------- */

enum { TO_SERVER = 0, TO_CLIENT = 1 };

typedef struct rule {
    int armed;
    int at_accept;       /* stop as soon as a connection is made, before any byte */
    int dir;             /* else: stop right after forwarding a frame going dir ... */
    uint32_t type, proc; /* ... of this type and HOST procedure */
    pid_t kill_pid;      /* and there, kill -9 this process (0: leave it to the test) */
    int kill_delay_us;   /* that long after the frame went out */
} rule;

typedef struct relay {
    char path[400];      /* where the broker connects */
    char upstream[400];  /* vbhostd's socket */
    int lfd;
    int stop_pipe[2];
    pthread_t acceptor;
    pthread_t pumps[256];
    int npumps;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rule rule;
    int paused, resume, stop;
    pid_t killed;             /* what the relay killed at the last stop */
    int watched_conn;         /* id of the connection the rule stopped, 0 none */
    int watched_ended;        /* it ended */
    int watched_end_side;     /* which side closed first: TO_SERVER = the broker's side */
    int64_t watched_end_ms;
    int next_conn;
} relay;

typedef struct pump {
    relay *r;
    int id;
    int fd[2];                /* [TO_SERVER] = upstream (vbhostd), [TO_CLIENT] = the broker */
} pump;

static int write_all_fd(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void relay_pause_here(relay *r, int conn)
{
    pthread_mutex_lock(&r->mu);
    r->rule.armed = 0;
    pid_t victim = r->rule.kill_pid;
    int delay = r->rule.kill_delay_us;
    pthread_mutex_unlock(&r->mu);
    /* killed from here, the victim dies as close to the frame as it can */
    if (victim > 0) {
        if (delay)
            usleep((useconds_t)delay);
        kill(victim, SIGKILL);
    }
    pthread_mutex_lock(&r->mu);
    r->killed = victim;
    r->paused = 1;
    r->watched_conn = conn;
    r->watched_ended = 0;
    pthread_cond_broadcast(&r->cv);
    while (!r->resume && !r->stop)
        pthread_cond_wait(&r->cv, &r->mu);
    r->paused = 0;
    r->resume = 0;
    pthread_mutex_unlock(&r->mu);
}

/* does this complete frame (prefix included) end the step the rule names? */
static int rule_matches(relay *r, int dir, const uint8_t *frame, size_t len)
{
    pthread_mutex_lock(&r->mu);
    rule ru = r->rule;
    pthread_mutex_unlock(&r->mu);
    if (!ru.armed || ru.at_accept || ru.dir != dir || len <= 4)
        return 0;
    uint8_t *copy = malloc(len - 4);
    if (!copy)
        return 0;
    memcpy(copy, frame + 4, len - 4);
    vb_msg m;
    vb_error err;
    int match = 0;
    if (vb_msg_decode(&m, copy, len - 4, &err) == 0) {
        match = m.hdr.program == VB_PROG_HOST && m.hdr.type == ru.type &&
                m.hdr.procedure == ru.proc;
        vb_msg_clear(&m);
    }
    return match;
}

typedef struct dirstate {
    uint8_t *frame;           /* the current frame, as far as it has come */
    size_t have, len, cap;    /* len: prefix + payload once the prefix is in, else 0 */
} dirstate;

static void dir_add(dirstate *d, const uint8_t *p, size_t n)
{
    if (d->have + n > d->cap) {
        d->cap = (d->have + n) * 2;
        d->frame = realloc(d->frame, d->cap);
    }
    memcpy(d->frame + d->have, p, n);
    d->have += n;
}

static void *pump_main(void *arg)
{
    pump *pm = arg;
    relay *r = pm->r;
    dirstate ds[2];
    memset(ds, 0, sizeof ds);
    int end_side = -1;
    pthread_mutex_lock(&r->mu);
    int stop_now = r->rule.armed && r->rule.at_accept;
    pthread_mutex_unlock(&r->mu);
    if (stop_now)
        relay_pause_here(r, pm->id);
    uint8_t buf[65536];
    for (;;) {
        struct pollfd p[3] = { { .fd = pm->fd[TO_CLIENT], .events = POLLIN },
                               { .fd = pm->fd[TO_SERVER], .events = POLLIN },
                               { .fd = r->stop_pipe[0], .events = POLLIN } };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[2].revents)
            break;
        /* p[0]: from the broker, going to the server; p[1]: the other way */
        int dir = p[0].revents ? TO_SERVER : TO_CLIENT;
        int from = dir == TO_SERVER ? pm->fd[TO_CLIENT] : pm->fd[TO_SERVER];
        int to = dir == TO_SERVER ? pm->fd[TO_SERVER] : pm->fd[TO_CLIENT];
        ssize_t n = read(from, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            end_side = dir; /* TO_SERVER: the broker's side went away */
            break;
        }
        /* forward frame by frame, so a stop lands exactly after one */
        size_t i = 0;
        int failed = 0;
        dirstate *d = &ds[dir];
        while (i < (size_t)n && !failed) {
            size_t want = d->len ? d->len - d->have : 4 - d->have;
            size_t seg = (size_t)n - i < want ? (size_t)n - i : want;
            if (write_all_fd(to, buf + i, seg) < 0) {
                failed = 1;
                end_side = 1 - dir;
                break;
            }
            dir_add(d, buf + i, seg);
            i += seg;
            if (!d->len && d->have == 4)
                d->len = 4 + (((size_t)d->frame[0] << 24) | ((size_t)d->frame[1] << 16) |
                              ((size_t)d->frame[2] << 8) | d->frame[3]);
            if (d->len && d->have == d->len) {
                int match = rule_matches(r, dir, d->frame, d->len);
                d->have = d->len = 0;
                if (match)
                    relay_pause_here(r, pm->id);
            }
        }
        if (failed)
            break;
    }
    close(pm->fd[0]);
    close(pm->fd[1]);
    pthread_mutex_lock(&r->mu);
    if (r->watched_conn == pm->id) {
        r->watched_ended = 1;
        r->watched_end_side = end_side;
        r->watched_end_ms = vb_ts_now_ms();
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    free(ds[0].frame);
    free(ds[1].frame);
    free(pm);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    relay *r = arg;
    for (;;) {
        struct pollfd p[2] = { { .fd = r->lfd, .events = POLLIN },
                               { .fd = r->stop_pipe[0], .events = POLLIN } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        int c = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        vb_error err;
        int s = vb_net_connect_unix(r->upstream, &err);
        if (s < 0) {
            close(c); /* the daemon is down: the broker sees its connection refused-ish */
            continue;
        }
        pump *pm = calloc(1, sizeof *pm);
        pm->r = r;
        pm->fd[TO_SERVER] = s;
        pm->fd[TO_CLIENT] = c;
        pthread_mutex_lock(&r->mu);
        pm->id = ++r->next_conn;
        int slot = r->npumps < 256 ? r->npumps++ : -1;
        pthread_mutex_unlock(&r->mu);
        if (slot < 0 || pthread_create(&r->pumps[slot], NULL, pump_main, pm) != 0) {
            close(c);
            close(s);
            free(pm);
        }
    }
    return NULL;
}

static int relay_start(relay *r, const char *path, const char *upstream)
{
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    snprintf(r->upstream, sizeof r->upstream, "%s", upstream);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    vb_error err;
    r->lfd = vb_net_listen_unix(path, 0600, &err);
    if (r->lfd < 0 || pipe2(r->stop_pipe, O_CLOEXEC) < 0)
        return -1;
    return pthread_create(&r->acceptor, NULL, acceptor_main, r) == 0 ? 0 : -1;
}

static void relay_stop(relay *r)
{
    if (r->lfd <= 0)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    ssize_t n = write(r->stop_pipe[1], "x", 1);
    (void)n;
    pthread_join(r->acceptor, NULL);
    for (int i = 0; i < r->npumps; i++)
        pthread_join(r->pumps[i], NULL);
    close(r->lfd);
    r->lfd = 0;
    unlink(r->path);
}

static void relay_arm(relay *r, rule ru)
{
    pthread_mutex_lock(&r->mu);
    r->rule = ru;
    r->rule.armed = 1;
    r->watched_conn = 0;
    r->watched_ended = 0;
    r->resume = 0;
    r->killed = 0;
    pthread_mutex_unlock(&r->mu);
}

static pid_t relay_killed(relay *r)
{
    pthread_mutex_lock(&r->mu);
    pid_t k = r->killed;
    pthread_mutex_unlock(&r->mu);
    return k;
}

static void relay_set_victim(relay *r, pid_t pid, int delay_us)
{
    pthread_mutex_lock(&r->mu);
    r->rule.kill_pid = pid;
    r->rule.kill_delay_us = delay_us;
    pthread_mutex_unlock(&r->mu);
}

static void relay_disarm_and_resume(relay *r)
{
    pthread_mutex_lock(&r->mu);
    r->rule.armed = 0;
    if (r->paused)
        r->resume = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* follow the newest connection (the one a prompt is holding up) */
static void relay_watch_latest(relay *r)
{
    pthread_mutex_lock(&r->mu);
    r->watched_conn = r->next_conn;
    r->watched_ended = 0;
    pthread_mutex_unlock(&r->mu);
}

static int relay_is_paused(relay *r)
{
    pthread_mutex_lock(&r->mu);
    int p = r->paused;
    pthread_mutex_unlock(&r->mu);
    return p;
}

/* ms from now until the stopped connection ended (-1: not within timeout);
 * *side: which side closed it first */
static int64_t relay_wait_watched_end(relay *r, int timeout_ms, int *side)
{
    int64_t t0 = vb_ts_now_ms(), deadline = t0 + timeout_ms;
    pthread_mutex_lock(&r->mu);
    while (r->watched_conn && !r->watched_ended && vb_ts_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    int64_t took = r->watched_ended ? r->watched_end_ms - t0 : -1;
    if (side)
        *side = r->watched_end_side;
    pthread_mutex_unlock(&r->mu);
    return took < 0 && r->watched_ended ? 0 : took;
}

/* ---- daemons --------------------------------------------------------------- */

static char *dir;
static char hostd_conf[400], hostd_sock[400], hostd_log[400], hostd_state[400];
static char broker_sock[400], broker_log[400], broker_state[400], relay_sock[400];
static pid_t hostd_pid, broker_pid;
static relay rl;

static int start_hostd(void)
{
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", hostd_conf, "--foreground", NULL };
    hostd_pid = vb_ts_spawn_daemon(argv, hostd_log);
    return hostd_pid > 0 && vb_ts_wait_unix_socket(hostd_sock, vb_ts_scaled_ms(START_MS)) == 0 ? 0 : -1;
}

static int start_broker(void)
{
    /* no password kept in memory, no idle host connection kept: every open
     * logs in, through the relay, with a token when one is cached */
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", broker_sock, "--state-dir",
                     broker_state, "--secret-ttl", "0", "--upstream-idle", "0",
                     "--log-level", "debug", "--prompt-timeout", "30", NULL };
    broker_pid = vb_ts_spawn_daemon(argv, broker_log);
    return broker_pid > 0 && vb_ts_wait_unix_socket(broker_sock, vb_ts_scaled_ms(START_MS)) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    dir = vb_ts_tmpdir("faults");
    char sasl[400], text[2000];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    /* SCRAM only: no security layer, so the relay can read every frame */
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0)
        return -1;
    snprintf(hostd_sock, sizeof hostd_sock, "%s/hostd.sock", dir);
    snprintf(hostd_log, sizeof hostd_log, "%s/vbhostd.log", dir);
    snprintf(hostd_conf, sizeof hostd_conf, "%s/vbhostd.conf", dir);
    snprintf(hostd_state, sizeof hostd_state, "%s/hostd-state", dir);
    snprintf(text, sizeof text,
             "listen_unix = \"%s\"\nstate_dir = \"%s\"\nauth_unix = [\"token\", \"sasl\"]\n"
             "sasl_conf_dir = \"%s\"\nsasl_realm = \"" REALM "\"\nlog_level = \"debug\"\n"
             "max_anonymous_clients = 200\n"
             /* the relay is the endpoint the broker dials: ours, so tokens bound to it count */
             "token_endpoints = [\"unix:%s/relay.sock\"]\n",
             hostd_sock, hostd_state, sasl, dir);
    if (vb_ts_write_file(hostd_conf, text, 0600) < 0)
        return -1;
    snprintf(broker_sock, sizeof broker_sock, "%s/brk-run/sock", dir);
    snprintf(broker_log, sizeof broker_log, "%s/vbrokerd.log", dir);
    snprintf(broker_state, sizeof broker_state, "%s/brk-state", dir);
    snprintf(relay_sock, sizeof relay_sock, "%s/relay.sock", dir);
    if (start_hostd() < 0 || start_broker() < 0 || relay_start(&rl, relay_sock, hostd_sock) < 0)
        return -1;
    setenv("VBROKER_SOCKET", broker_sock, 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    return 0;
}

static int group_teardown(void **state)
{
    relay_stop(&rl);
    return vb_ts_group_teardown(state);
}

/* ---- helpers --------------------------------------------------------------- */

static const int form_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

static int form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    (void)req;
    (void)data;
    for (unsigned i = 0; i < n; i++) {
        const char *v = creds[i].type == VB_CRED_AUTHNAME     ? "alice"
                        : creds[i].type == VB_CRED_PASSPHRASE ? PASSWORD
                                                              : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

static char *relay_uri(void)
{
    static char buf[500];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s", relay_sock);
    return buf;
}

static char *direct_uri(void)
{
    static char buf[500];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s", hostd_sock);
    return buf;
}

static int open_list(const char *uri, int with_form, vb_error *err)
{
    vb_auth auth = { form_types, 2, with_form ? form_cb : NULL, NULL };
    return vb_ts_open_list(uri, &auth, NULL, err);
}

static int broker_status(unsigned *clients, int *logins)
{
    vb_broker_status st;
    vb_error err;
    if (vb_broker_get_status(&st, &err) < 0)
        return -1;
    if (clients)
        *clients = st.clients;
    if (logins)
        *logins = (int)st.nlogins;
    vb_broker_status_clear(&st);
    return 0;
}

/* A daemon stopped with SIGTERM must exit by itself with 0 (143: died of the
 * signal). Anything else (1: LeakSanitizer under SAN=1; 99: valgrind under
 * VB_TEST_DAEMON_WRAPPER) is reported with what its log says. 0 when clean. */
/* PRAGMA integrity_check with the sqlite3 CLI: "ok", or what it found */
static void assert_db_intact(const char *db)
{
    struct stat st;
    if (stat(db, &st) < 0)
        return; /* never created: nothing to check */
    char *argv[] = { "sqlite3", (char *)db, "PRAGMA integrity_check;", NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, NULL, NULL, &out, 10000);
    if (rc != 0 || !out || strcmp(out, "ok\n") != 0)
        fail_msg("%s: integrity_check exit %d: %s", db, rc, out ? out : "(no output)");
    free(out);
}

static char *cache_db(void)
{
    static char buf[500];
    snprintf(buf, sizeof buf, "%s/cache.db", broker_state);
    return buf;
}

static char *tokens_db(void)
{
    static char buf[500];
    snprintf(buf, sizeof buf, "%s/tokens.db", hostd_state);
    return buf;
}

/* ---- the client: a forked copy of this test using libvbroker -------------- */

enum { OP_OPEN, OP_LOGIN };

typedef struct result {
    int rc;
    int code;
    char message[512];
} result;

typedef struct client {
    pid_t pid;
    int prompted_fd; /* the callback writes one byte here when it is entered */
    int go_fd;       /* ... and, when told to block, waits for a byte here */
    int result_fd;   /* the child writes its result here */
} client;

typedef struct child_cb {
    int prompted_fd, go_fd, block;
} child_cb;

static int child_form(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    child_cb *cb = data;
    ssize_t w = write(cb->prompted_fd, "p", 1);
    (void)w;
    if (cb->block) {
        /* a person thinking; never forever (an orphan must not linger) */
        struct pollfd p = { .fd = cb->go_fd, .events = POLLIN };
        poll(&p, 1, 60000);
    }
    return form_cb(req, creds, n, NULL);
}

static void child_main(int op, int block, int prompted_fd, int go_fd, int result_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* a fork without exec holds copies of every fd of the test, the relay's
     * sockets included: a copy would keep a connection the relay closes open */
    for (int fd = 3; fd < 4096; fd++)
        if (fd != prompted_fd && fd != go_fd && fd != result_fd)
            close(fd);
    child_cb cb = { prompted_fd, go_fd, block };
    vb_auth auth = { form_types, 2, child_form, &cb };
    result res;
    memset(&res, 0, sizeof res);
    vb_error err;
    memset(&err, 0, sizeof err);
    if (op == OP_LOGIN) {
        res.rc = vb_login(relay_uri(), &auth, 0, NULL, NULL, &err);
    } else {
        vb_conn *c = vb_open_auth(relay_uri(), &auth, 0, &err);
        res.rc = c ? 0 : -1;
        if (c) {
            vb_domain *doms = NULL;
            size_t n = 0;
            res.rc = vb_list_domains(c, &doms, &n, &err);
            if (res.rc == 0)
                vb_domains_free(doms, n);
            vb_close(c);
        }
    }
    res.code = res.rc < 0 ? err.code : 0;
    snprintf(res.message, sizeof res.message, "%s", res.rc < 0 ? err.message : "");
    ssize_t w = write(result_fd, &res, sizeof res);
    (void)w;
    _exit(0);
}

static void client_start(client *c, int op, int block)
{
    int prompted[2], go[2], res[2];
    assert_int_equal(pipe2(prompted, O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    assert_int_equal(pipe2(res, O_CLOEXEC), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        close(prompted[0]);
        close(go[1]);
        close(res[0]);
        child_main(op, block, prompted[1], go[0], res[1]);
    }
    close(prompted[1]);
    close(go[0]);
    close(res[1]);
    c->prompted_fd = prompted[0];
    c->go_fd = go[1];
    c->result_fd = res[0];
}

static void client_release(client *c)
{
    if (c->go_fd >= 0) {
        ssize_t w = write(c->go_fd, "g", 1);
        (void)w;
    }
}

/* 1 with *res, 0 when the child ended without a result, -1 on timeout */
static int client_result(client *c, int timeout_ms, result *res)
{
    struct pollfd p = { .fd = c->result_fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    ssize_t n = read(c->result_fd, res, sizeof *res);
    return n == (ssize_t)sizeof *res ? 1 : 0;
}

static void client_finish(client *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        c->pid = 0;
    }
    if (c->prompted_fd >= 0)
        close(c->prompted_fd);
    if (c->go_fd >= 0)
        close(c->go_fd);
    if (c->result_fd >= 0)
        close(c->result_fd);
    c->prompted_fd = c->go_fd = c->result_fd = -1;
}

/* ---- scenarios ------------------------------------------------------------- */

typedef enum step {
    S_CONNECT,
    S_AUTH_LIST,
    S_SASL_START,
    S_PROMPT,
    S_TOKEN_ISSUE_CALL,
    S_TOKEN_ISSUE_REPLY,
    S_OPEN,
} step;

typedef enum victim { V_DAEMON, V_BROKER, V_CLIENT } victim;

static const char *const step_names[] = {
    "at connect (before any frame)", "after the AUTH_LIST reply", "after the AUTH_SASL_START reply",
    "mid-prompt (callback blocked)", "after the TOKEN_ISSUE call (vb_login)",
    "after the TOKEN_ISSUE reply (vb_login)", "during OPEN (call sent, reply held)",
};
static const char *const victim_names[] = { "vbhostd", "vbrokerd", "the client" };

typedef struct scenario {
    step step;
    victim victim;
    int delay_us; /* between reaching the step and the kill */
    int quiet;    /* no line of figures */
} scenario;

static rule rule_for(step s)
{
    rule r = { 0 };
    switch (s) {
    case S_CONNECT:
        r.at_accept = 1;
        break;
    case S_AUTH_LIST:
        r = (rule){ .armed = 1, .dir = TO_CLIENT, .type = VB_MSG_REPLY,
                    .proc = VB_HOST_PROC_AUTH_LIST };
        break;
    case S_SASL_START:
        r = (rule){ .armed = 1, .dir = TO_CLIENT, .type = VB_MSG_REPLY,
                    .proc = VB_HOST_PROC_AUTH_SASL_START };
        break;
    case S_TOKEN_ISSUE_CALL:
        r = (rule){ .armed = 1, .dir = TO_SERVER, .type = VB_MSG_CALL,
                    .proc = VB_HOST_PROC_TOKEN_ISSUE };
        break;
    case S_TOKEN_ISSUE_REPLY:
        r = (rule){ .armed = 1, .dir = TO_CLIENT, .type = VB_MSG_REPLY,
                    .proc = VB_HOST_PROC_TOKEN_ISSUE };
        break;
    case S_OPEN:
        r = (rule){ .armed = 1, .dir = TO_SERVER, .type = VB_MSG_CALL,
                    .proc = VB_HOST_PROC_OPEN };
        break;
    case S_PROMPT:
        break;
    }
    return r;
}

static int relay_paused_cond(void *arg)
{
    return relay_is_paused(arg);
}

/* our child has exited (a zombie still answers kill(pid, 0)) */
static int proc_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return si.si_pid == pid;
}

static int daemons_up(void)
{
    if (hostd_pid > 0 && proc_exited(hostd_pid)) {
        vb_ts_wait_pid_exit(hostd_pid, 1000, NULL);
        hostd_pid = 0;
    }
    if (hostd_pid <= 0 && start_hostd() < 0)
        return -1;
    if (broker_pid > 0 && proc_exited(broker_pid)) {
        vb_ts_wait_pid_exit(broker_pid, 1000, NULL);
        broker_pid = 0;
    }
    if (broker_pid <= 0 && start_broker() < 0)
        return -1;
    return 0;
}

static client cur_client = { 0, -1, -1, -1 };

/* whatever happened in the test: nothing paused, no child left, both daemons up */
static int scenario_teardown(void **state)
{
    (void)state;
    relay_disarm_and_resume(&rl);
    client_finish(&cur_client);
    return daemons_up();
}

typedef struct measure {
    const char *what;
    int64_t ms;
} measure;

static void test_kill(void **state)
{
    const scenario *sc = *state;
    const int is_login = sc->step == S_TOKEN_ISSUE_CALL || sc->step == S_TOKEN_ISSUE_REPLY;
    vb_error err;
    assert_int_equal(daemons_up(), 0);
    /* start clean: no cached login, so an open goes through SASL */
    vb_logout_result *lr;
    size_t nlr;
    assert_int_equal(vb_logout(NULL, &lr, &nlr, &err), 0);
    vb_logout_results_free(lr, nlr);
    int token_logins0 = vb_ts_count_in_file(hostd_log, "(token ");

    /* 1. run the client up to the step; at a frame step the relay kills the
     * victim itself the moment the frame has gone out (plus delay_us) */
    if (sc->step != S_PROMPT)
        relay_arm(&rl, rule_for(sc->step));
    client *c = &cur_client;
    client_start(c, is_login ? OP_LOGIN : OP_OPEN, sc->step == S_PROMPT);
    pid_t pid = sc->victim == V_DAEMON ? hostd_pid : sc->victim == V_BROKER ? broker_pid : c->pid;
    if (sc->step != S_PROMPT)
        relay_set_victim(&rl, pid, sc->delay_us);
    if (sc->step == S_PROMPT) {
        struct pollfd p = { .fd = c->prompted_fd, .events = POLLIN };
        if (poll(&p, 1, vb_ts_scaled_ms(10000)) != 1)
            fail_msg("the callback was never entered");
        relay_watch_latest(&rl);
    } else if (vb_ts_wait_until(relay_paused_cond, &rl, vb_ts_scaled_ms(10000)) < 0) {
        result res;
        if (client_result(c, 0, &res) == 1)
            fail_msg("the login finished without reaching the step (rc %d: %s)", res.rc,
                     res.message);
        fail_msg("the login never reached the step");
    }

    /* 2. kill -9 (mid-prompt, or if the relay stopped before it knew the
     * victim: now, from here) and reap */
    if (sc->step == S_PROMPT || relay_killed(&rl) != pid) {
        if (sc->delay_us)
            usleep((useconds_t)sc->delay_us);
        assert_int_equal(kill(pid, SIGKILL), 0);
    }
    if (sc->victim == V_CLIENT) {
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        c->pid = 0;
    } else {
        assert_int_equal(vb_ts_wait_pid_exit(pid, vb_ts_scaled_ms(5000), NULL), 0);
        if (sc->victim == V_DAEMON)
            hostd_pid = 0;
        else
            broker_pid = 0;
    }
    /* the sqlite files of the dead, now, before anyone reopens them */
    if (sc->victim == V_BROKER)
        assert_db_intact(cache_db());
    if (sc->victim == V_DAEMON)
        assert_db_intact(tokens_db());

    /* 3. let the conversation go on, and time the survivors */
    int64_t t0 = vb_ts_now_ms();
    relay_disarm_and_resume(&rl);
    client_release(c);
    measure m[3];
    int nm = 0;
    char outcome[600] = "";
    if (sc->victim != V_CLIENT) {
        result res;
        int got = client_result(c, vb_ts_scaled_ms(BOUND_MS), &res);
        m[nm++] = (measure){ "client returned", vb_ts_now_ms() - t0 };
        if (got < 0)
            fail_msg("the client still had no answer %d ms after %s died", vb_ts_scaled_ms(BOUND_MS),
                     victim_names[sc->victim]);
        assert_int_equal(got, 1);
        if (res.rc < 0) {
            snprintf(outcome, sizeof outcome, "client: error %d: %s", res.code, res.message);
            /* a clear error, not silence */
            assert_true(res.code != 0);
            assert_true(res.message[0] != '\0');
        } else {
            snprintf(outcome, sizeof outcome, "client: succeeded");
        }
    }
    if (sc->victim != V_BROKER) {
        /* the broker lets go of the client and of its host connection */
        int side = -1;
        int64_t up = relay_wait_watched_end(&rl, vb_ts_scaled_ms(BOUND_MS), &side);
        if (up < 0)
            fail_msg("the broker's connection to the host was still up %d ms later",
                     vb_ts_scaled_ms(BOUND_MS));
        m[nm++] = (measure){ side == TO_SERVER ? "broker closed its host connection"
                                               : "host connection closed by vbhostd",
                             vb_ts_now_ms() - t0 };
        /* (STATUS counts the connection that asks it) */
        unsigned clients = 2;
        int64_t deadline = vb_ts_now_ms() + vb_ts_scaled_ms(BOUND_MS);
        while (vb_ts_now_ms() < deadline && (broker_status(&clients, NULL) < 0 || clients > 1))
            poll(NULL, 0, 5);
        if (sc->victim == V_CLIENT) {
            if (clients > 1)
                fail_msg("the broker still counted %u other client(s) %d ms after the client "
                         "died",
                         clients - 1, vb_ts_scaled_ms(BOUND_MS));
            m[nm++] = (measure){ "broker dropped the dead client", vb_ts_now_ms() - t0 };
        }
    }
    if (sc->victim == V_BROKER) {
        /* vbhostd lets go of the dead broker's connection */
        int side = -1;
        int64_t up = relay_wait_watched_end(&rl, vb_ts_scaled_ms(BOUND_MS), &side);
        if (up < 0)
            fail_msg("vbhostd's connection from the dead broker was still up %d ms later",
                     vb_ts_scaled_ms(BOUND_MS));
        m[nm++] = (measure){ "the dead broker's host connection closed", vb_ts_now_ms() - t0 };
    }
    for (int i = 0; i < nm; i++) {
        if (m[i].ms > vb_ts_scaled_ms(BOUND_MS))
            fail_msg("%s took %lld ms", m[i].what, (long long)m[i].ms);
    }
    char line[900];
    int off = snprintf(line, sizeof line, "kill %s %s:", victim_names[sc->victim],
                       step_names[sc->step]);
    for (int i = 0; i < nm; i++)
        off += snprintf(line + off, sizeof line - (size_t)off, " %s in %lld ms;", m[i].what,
                        (long long)m[i].ms);
    if (!sc->quiet)
        print_message("%s %s\n", line, outcome);

    /* 4. the survivors are healthy; the dead come back */
    if (sc->victim != V_BROKER)
        assert_int_equal(kill(broker_pid, 0), 0);
    if (sc->victim != V_DAEMON)
        assert_int_equal(kill(hostd_pid, 0), 0);
    client_finish(c);
    assert_int_equal(daemons_up(), 0);
    if (open_list(direct_uri(), 1, &err) < 0)
        fail_msg("a normal open after the fault: %s", err.message);

    /* 5. no half-written token: the next open without a prompt either logs in
     * with a complete token, or finds none and asks (CRED_REQUIRED) */
    int logins = -1;
    assert_int_equal(broker_status(NULL, &logins), 0);
    if (!is_login)
        assert_int_equal(logins, 0);
    int rc = open_list(relay_uri(), 0, &err);
    if (rc == 0) {
        assert_int_equal(logins, 1);
        assert_true(vb_ts_count_in_file(hostd_log, "(token ") > token_logins0);
    } else if (err.code == VBROKER_ERR_CRED_REQUIRED) {
        int now_logins = -1;
        assert_int_equal(broker_status(NULL, &now_logins), 0);
        if (now_logins != 0)
            fail_msg("a cached login was not usable: %d login(s) cached, open: %s", now_logins,
                     err.message);
    } else {
        fail_msg("after the fault, an open with the cached state failed: %d %s", err.code,
                 err.message);
    }
}

/* kill the broker at random moments just after the TOKEN_ISSUE reply reached
 * it, while it writes the token to its cache: the cache stays intact, and
 * the token is either there and works, or is not there */
static void test_kill_broker_while_storing_token(void **state)
{
    (void)state;
    int present = 0, absent = 0, i;
    /* 32 delays natively (about 2 s); a slow build (SAN=1, valgrind) gets
     * the first few only, within the same kind of budget */
    int64_t budget_end = vb_ts_now_ms() + 6000;
    for (i = 0; i < 32 && (i < 4 || vb_ts_now_ms() < budget_end); i++) {
        scenario sc = { S_TOKEN_ISSUE_REPLY, V_BROKER, i * 75, 1 };
        const scenario *p = &sc;
        void *st = (void *)p;
        test_kill(&st);
        int logins = -1;
        assert_int_equal(broker_status(NULL, &logins), 0);
        if (logins)
            present++;
        else
            absent++;
        client_finish(&cur_client);
    }
    print_message("broker killed 0..%.2f ms after the TOKEN_ISSUE reply reached it: token "
                  "complete and used %d times, absent %d times\n",
                  (i - 1) * 0.075, present, absent);
}

static void test_caches_consistent_at_the_end(void **state)
{
    (void)state;
    assert_int_equal(daemons_up(), 0);
    int bad = vb_ts_check_exit("vbrokerd", vb_ts_stop(broker_pid, vb_ts_scaled_ms(5000)), broker_log) < 0;
    broker_pid = 0;
    assert_db_intact(cache_db());
    bad += vb_ts_check_exit("vbhostd", vb_ts_stop(hostd_pid, vb_ts_scaled_ms(5000)), hostd_log) < 0;
    hostd_pid = 0;
    assert_db_intact(tokens_db());
    assert_int_equal(daemons_up(), 0);
    vb_error err;
    if (open_list(direct_uri(), 1, &err) < 0)
        fail_msg("after a clean restart: %s", err.message);
    if (bad)
        fail_msg("%d daemon(s) did not exit cleanly on SIGTERM (see above)", bad);
}

#define N_STEPS 7
#define N_VICTIMS 3

int main(void)
{
    static scenario sc[N_STEPS * N_VICTIMS];
    static char names[N_STEPS * N_VICTIMS][120];
    struct CMUnitTest tests[N_STEPS * N_VICTIMS + 2];
    size_t n = 0;
    for (int s = 0; s < N_STEPS; s++)
        for (int v = 0; v < N_VICTIMS; v++) {
            sc[n] = (scenario){ (step)s, (victim)v, 0, 0 };
            snprintf(names[n], sizeof names[n], "kill -9 %s %s", victim_names[v], step_names[s]);
            tests[n] = (struct CMUnitTest){ names[n], test_kill, NULL, scenario_teardown, &sc[n] };
            n++;
        }
    tests[n++] = (struct CMUnitTest){ "kill -9 vbrokerd while it stores a token",
                                      test_kill_broker_while_storing_token, NULL, scenario_teardown,
                                      NULL };
    tests[n++] = (struct CMUnitTest){ "caches consistent at the end",
                                      test_caches_consistent_at_the_end, NULL, NULL, NULL };
    return _cmocka_run_group_tests("faults", tests, n, group_setup, group_teardown);
}
