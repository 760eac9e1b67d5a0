/* bench_e2e — vbroker end to end, through the public API (vbroker.h).
 *
 * Starts its own daemons in a temp dir, all on 127.0.0.1, and stops them by
 * pid at the end (tests/support/vb_testsupport):
 *   vbhostd "sasl"  TCP: SASL DIGEST-MD5 (security layer, ssf 56+); unix:
 *                   token + SASL SCRAM-SHA-256
 *   vbhostd "none"  TCP and unix without authentication
 *   vbrokerd cold   --secret-ttl 0 --upstream-idle 0: nothing is cached, every
 *                   open is a full login
 *   vbrokerd token  --secret-ttl 0 --upstream-idle 0, with a login token in its
 *                   cache (vb_login, then the broker is restarted)
 *   vbrokerd warm   defaults: a live shared transport serves every open
 *   xenapi_sim.py   a XenAPI host (tests/peers, python3) behind vbhostd "sasl":
 *                   the nested chain app → broker → vbhostd → XenAPI, whose
 *                   XenAPI login vbhostd relays back up to the app (CRED_FILL)
 * and measures cold / warm opens in the steady state of a long-lived process
 * (this binary re-executed with --child-loop: many opens in one process; the
 * headline) and as a script sees them (--child-open: a new process each), RPC
 * round trips, concurrency, idle clients and a sustained open rate. One table
 * on stdout, JSON and an SVG bar chart.
 *
 *   bench_e2e [--json PATH] [--svg PATH]
 *
 * Environment (all optional):
 *   BENCH_ROUNDS=20           rounds of each open figure
 *   BENCH_RPC_CALLS=2000      calls per RPC figure
 *   BENCH_CONC_ROUNDS=5       rounds of the concurrency figures
 *   BENCH_IDLE_CLIENTS=1000   idle clients held on one broker
 *   BENCH_SUSTAIN_SECONDS=5   length of each sustained-rate run (the issue asks 30)
 *   BENCH_SUSTAIN_THREADS=4   clients opening in a loop during it
 *   BENCH_STEADY_ROUNDS=3     rounds of each steady-state row: one long-lived
 *   BENCH_STEADY_OPENS=100    process doing this many opens (vbroker's and
 *                             libvirt's, alternately)
 *   BENCH_PEER=PATH           the libvirt helper (bench/peer/bench_libvirt), plus
 *   BENCH_PEER_URI, BENCH_PEER_URI_NONE, BENCH_PEER_USER, BENCH_PEER_PASSWORD:
 *                             run libvirt rounds alternately with vbroker rounds
 *                             for the comparable figures (make bench-peer)
 *   BENCH_PEER_URI_UNIX, BENCH_PEER_URI_NONE_UNIX: libvirtd's unix sockets
 *                             (SASL DIGEST-MD5, no auth), for the unix rows
 *   BENCH_PEER_IDLE_PID       pid of the libvirtd behind BENCH_PEER_URI_NONE(_UNIX):
 *                             its RSS for the idle-client figures
 *   BENCH_XENAPI_SIM=PATH     the XenAPI simulator (default: VB_SRC_DIR/tests/
 *                             peers/xenapi_sim.py); the nested rows need python3
 *   BENCH_BUILD=DIR           where vbhostd, vbrokerd and bench/direct_rtt are
 *                             (default: the directory of this binary's parent)
 *   BENCH_TLS_PKI=DIR         a CA and certificates in libvirt's names (cacert.pem,
 *                             servercert.pem, serverkey.pem, clientcert.pem,
 *                             clientkey.pem; bench/peer.sh makes them): adds
 *                             vbhostd "tls" (TLS listener, token + SCRAM) and the
 *                             TLS rows; BENCH_PEER_URI_TLS: libvirtd's TLS + SCRAM
 *                             URI for their libvirt column
 *   BENCH_ONLY=tls            only the TLS rows (with BENCH_TLS_PKI)
 *   BENCH_ONLY=conc           only the 16/256 concurrent open rows, and the
 *                             steady cold DIGEST-MD5 row
 *   BENCH_HOSTD_CONF=TEXT     lines added to every vbhostd's config
 *                             ("sasl_digest_3des = 0": logins with RC4)
 *   BENCH_ONLY=warm           only the warm rows (cached token, shared transport),
 *                             the RPC rows and the idle clients
 *   BENCH_ONLY=steady         only the steady-state rows (with BENCH_ROUNDS
 *                             script rounds of the token and shared rows)
 *   BENCH_PERF=DIR            perf record (DWARF call graphs) of the daemons and
 *                             of the app's process during each steady row's
 *                             vbroker rounds, into DIR/KEY.daemons.data and
 *                             DIR/KEY.appN.data (bench/flame.sh folds them)
 *   BENCH_ONLY=nested         only the warm shared-transport and nested rows
 *   BENCH_XEN_KEEP=S          vbhostd's xenapi_session_keep (default: its
 *                             own, 300 s; 0: a XenAPI login and logout per
 *                             open, as before issue 18 item 4)
 * Numbers are printed, never asserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "vb_testsupport.h"
#include "vbroker.h"

#define REALM "BENCH.TEST"
#define USER "alice"
#define PASSWORD "bench-Pw-7"
#define XEN_USER "root" /* the XenAPI simulator's account */
#define XEN_PASSWORD "xen-Root-pw-9"
#define START_MS 15000

#ifndef VB_SRC_DIR /* mk/bench.mk passes the source tree */
#define VB_SRC_DIR "."
#endif

/* ---- time, samples ---------------------------------------------------------- */

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

static void add(samples *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v)
            abort();
    }
    s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct summary {
    double med, min, max;
    size_t n;
} summary;

static summary summarize(const samples *s)
{
    summary r = { NAN, NAN, NAN, s->n };
    if (!s->n)
        return r;
    double *c = malloc(s->n * sizeof *c);
    if (!c)
        abort();
    memcpy(c, s->v, s->n * sizeof *c);
    qsort(c, s->n, sizeof *c, cmp_double);
    r.min = c[0];
    r.max = c[s->n - 1];
    r.med = s->n % 2 ? c[s->n / 2] : (c[s->n / 2 - 1] + c[s->n / 2]) / 2;
    free(c);
    return r;
}

/* ---- metrics ------------------------------------------------------------------ */

typedef struct metric {
    const char *key, *label, *unit; /* unit: "us", "ms", "KiB", "opens/s", "count" */
    samples vb, peer;               /* peer: libvirt, only under BENCH_PEER */
    char note[700];
    int lower_is_better;
    int failed;                     /* operations that failed: then no ratio is shown */
} metric;

/* A figure with failed operations compares fast failures, not opens. */
static int has_ratio(const metric *m)
{
    return m->peer.n && !m->failed;
}

#define MAX_METRICS 48
static metric metrics[MAX_METRICS];
static size_t nmetrics;

static metric *M(const char *key, const char *label, const char *unit)
{
    for (size_t i = 0; i < nmetrics; i++)
        if (strcmp(metrics[i].key, key) == 0)
            return &metrics[i];
    if (nmetrics == MAX_METRICS)
        abort();
    metric *m = &metrics[nmetrics++];
    m->key = key;
    m->label = label;
    m->unit = unit;
    m->lower_is_better = strcmp(unit, "opens/s") != 0;
    return m;
}

static void note(metric *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(metric *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t len = strlen(m->note);
    vsnprintf(m->note + len, sizeof m->note - len, fmt, ap);
    va_end(ap);
}

/* ---- configuration ---------------------------------------------------------------- */

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    int x = atoi(v);
    return x > 0 ? x : def;
}

static int rounds, rpc_calls, conc_rounds, idle_clients, sustain_s, sustain_threads;
static char build_dir[PATH_MAX], self_exe[PATH_MAX];
static const char *peer_bin, *peer_uri, *peer_uri_none, *peer_user, *peer_pw;
static const char *peer_uri_unix, *peer_uri_none_unix; /* NULL: rows stay without libvirt */
static pid_t peer_idle_pid;

/* ---- daemons ------------------------------------------------------------------------ */

static char *dir;

typedef struct hostd {
    char sock[300], conf[300], log[300];
    int port;
    pid_t pid;
} hostd;

typedef struct broker {
    char name[16], sock[300], log[300], state[300];
    const char *extra[8];
    char *env[2]; /* for vb_ts_spawn's env_extra (VB_TLS_NO_RESUME=1) */
    pid_t pid;
} broker;

static hostd hsasl, hnone, htls;
/* the XenAPI simulator's port, chosen before vbhostd starts: its
 * allowed_xenapi_hosts names it */
static int xen_port;
static broker bcold, btoken, bwarm, btls, btls_full;
static const char *tls_pki, *peer_uri_tls; /* BENCH_TLS_PKI, BENCH_PEER_URI_TLS */
static char xen_keep[64];                   /* "xenapi_session_keep = S\n" or "" */
static const char *xen_keep_s = "300 (default)";

/* auth_net is for its TCP listener, or with tls (vbhostd "tls") for a TLS
 * listener with BENCH_TLS_PKI's certificates */
static int start_hostd(hostd *h, const char *name, const char *auth_unix, const char *auth_net,
                       int tls)
{
    char text[3000], net[1600];
    snprintf(h->sock, sizeof h->sock, "%s/%s.sock", dir, name);
    snprintf(h->log, sizeof h->log, "%s/%s.log", dir, name);
    snprintf(h->conf, sizeof h->conf, "%s/%s.conf", dir, name);
    for (int attempt = 0; attempt < 5; attempt++) {
        h->port = vb_ts_free_tcp_port();
        if (tls)
            snprintf(net, sizeof net,
                     "listen_tls = \"127.0.0.1:%d\"\nauth_tls = %s\n"
                     "cert_file = \"%s/servercert.pem\"\nkey_file = \"%s/serverkey.pem\"\n"
                     "ca_file = \"%s/cacert.pem\"\n",
                     h->port, auth_net, tls_pki, tls_pki, tls_pki);
        else
            snprintf(net, sizeof net, "listen_tcp = \"127.0.0.1:%d\"\nauth_tcp = %s\n", h->port,
                     auth_net);
        snprintf(text, sizeof text,
                 "listen_unix = \"%s\"\n%sstate_dir = \"%s/%s-state\"\n"
                 "auth_unix = %s\nsasl_conf_dir = \"%s/sasl\"\n"
                 "sasl_realm = \"" REALM "\"\nmax_anonymous_clients = 2000\nmax_clients = 10000\n"
                 "log_level = \"warn\"\nallowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n%s%s\n",
                 h->sock, net, dir, name, auth_unix, dir, xen_port, xen_keep,
                 getenv("BENCH_HOSTD_CONF") ? getenv("BENCH_HOSTD_CONF") : "");
        vb_ts_write_file(h->conf, text, 0600);
        char bin[PATH_MAX + 16];
        snprintf(bin, sizeof bin, "%s/vbhostd", build_dir);
        char *argv[] = { bin, "-f", h->conf, "--foreground", NULL };
        h->pid = vb_ts_spawn(argv, NULL, h->log);
        if (h->pid > 0 && vb_ts_wait_unix_socket(h->sock, START_MS) == 0 &&
            vb_ts_wait_tcp("127.0.0.1", h->port, START_MS) == 0)
            return 0;
        if (h->pid > 0)
            vb_ts_stop(h->pid, 2000);
    }
    fprintf(stderr, "bench_e2e: vbhostd %s did not start; see %s\n", name, h->log);
    return -1;
}

static int start_broker(broker *b)
{
    snprintf(b->sock, sizeof b->sock, "%s/%s-run/sock", dir, b->name);
    snprintf(b->log, sizeof b->log, "%s/%s.log", dir, b->name);
    snprintf(b->state, sizeof b->state, "%s/%s-state", dir, b->name);
    char bin[PATH_MAX + 16];
    snprintf(bin, sizeof bin, "%s/vbrokerd", build_dir);
    char *argv[20] = { bin, "--socket", b->sock, "--state-dir", b->state, "--log-level", "warn" };
    int k = 7;
    for (int i = 0; b->extra[i] && k < 18; i++)
        argv[k++] = (char *)b->extra[i];
    argv[k] = NULL;
    b->pid = vb_ts_spawn(argv, b->env[0] ? b->env : NULL, b->log);
    if (b->pid <= 0 || vb_ts_wait_unix_socket(b->sock, START_MS) < 0) {
        fprintf(stderr, "bench_e2e: vbrokerd %s did not start; see %s\n", b->name, b->log);
        return -1;
    }
    return 0;
}

static void stop_broker(broker *b)
{
    if (b->pid > 0)
        vb_ts_stop(b->pid, 3000);
    b->pid = 0;
}

static const broker *cur_broker; /* the last use_broker's: BENCH_PERF records it */

static void use_broker(const broker *b)
{
    setenv("VBROKER_SOCKET", b->sock, 1);
    cur_broker = b;
}

/* ---- profiles (BENCH_PERF=DIR) ------------------------------------------------------ */

static const char *perf_dir; /* BENCH_PERF: record the steady rows with perf */

/* perf record (DWARF call graphs: the build has no frame pointers) of the
 * broker in use and both vbhostd into perf_dir/KEY.daemons.data while a
 * steady row's vbroker rounds run; the app's own process is recorded by
 * running it under perf (perf_wrap). Returns perf's pid, or 0. */
static pid_t perf_start(const char *key)
{
    if (!perf_dir || !cur_broker)
        return 0;
    char out[PATH_MAX], pids[64], log[PATH_MAX];
    snprintf(out, sizeof out, "%s/%s.daemons.data", perf_dir, key);
    snprintf(log, sizeof log, "%s/%s.daemons.log", perf_dir, key);
    snprintf(pids, sizeof pids, "%d,%d,%d", (int)cur_broker->pid, (int)hsasl.pid, (int)hnone.pid);
    unlink(out);
    char *argv[] = { "perf", "record", "-q", "-F", "2999", "--call-graph", "dwarf,16384",
                     "-o", out, "-p", pids, NULL };
    pid_t pid = vb_ts_spawn(argv, NULL, log);
    /* perf writes its header once it has attached */
    if (pid > 0 && vb_ts_wait_file(out, 10000) < 0) {
        vb_ts_stop(pid, 3000);
        return 0;
    }
    return pid;
}

static void perf_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGINT); /* perf writes its data on SIGINT */
    if (vb_ts_wait_pid_exit(pid, 30000, NULL) < 0)
        vb_ts_stop(pid, 3000);
}

/* ---- the app side ------------------------------------------------------------------- */

/* Answers by who asks, as an app with a login form does: the XenAPI host
 * (its question relayed by vbhostd) wants root, vbhostd's SASL wants alice. */
static int form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    (void)data;
    int xen = req->service && strstr(req->service, "xenapi://") != NULL;
    for (unsigned i = 0; i < n; i++) {
        const char *v = creds[i].type == VB_CRED_AUTHNAME     ? (xen ? XEN_USER : USER)
                        : creds[i].type == VB_CRED_PASSPHRASE ? (xen ? XEN_PASSWORD : PASSWORD)
                                                              : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

static const int form_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };
static const vb_auth form_auth = { form_types, 2, form_cb, NULL };

static char uri_digest[400], uri_scram[600], uri_none_tcp[400], uri_none_unix[600],
    uri_token[600], uri_xen[600], uri_tls_scram[1400], uri_tls_token[1400];

/* --child-open URI CREDS: one open + close in this fresh process; prints
 * "OPEN_CLOSE_NS MAIN_TO_END_NS". CREDS 1: answer prompts; 0: never prompt. */
static int child_open(const char *uri, int creds, long long t_main)
{
    vb_error err = { 0 };
    long long t0 = now_ns();
    vb_conn *c = vb_open_auth(uri, creds ? &form_auth : NULL, 0, &err);
    if (!c) {
        fprintf(stderr, "bench_e2e child: open %s: %s\n", uri, err.message);
        return 1;
    }
    vb_close(c);
    long long t1 = now_ns();
    printf("%lld %lld\n", t1 - t0, t1 - t_main);
    return 0;
}

/* --child-loop URI CREDS N: the steady state of a long-lived application in
 * this one process: one untimed open+close (the broker connection code's
 * first use, page faults), then N timed ones; prints "open NS NS ...". */
static int child_loop(const char *uri, int creds, int n)
{
    vb_error err = { 0 };
    long long *ns = calloc((size_t)n, sizeof *ns);
    if (!ns)
        return 1;
    for (int i = -1; i < n; i++) {
        long long t0 = now_ns();
        vb_conn *c = vb_open_auth(uri, creds ? &form_auth : NULL, 0, &err);
        if (!c) {
            fprintf(stderr, "bench_e2e loop: open %s: %s\n", uri, err.message);
            free(ns);
            return 1;
        }
        vb_close(c);
        if (i >= 0)
            ns[i] = now_ns() - t0;
    }
    fputs("open", stdout);
    for (int i = 0; i < n; i++)
        printf(" %lld", ns[i]);
    fputs("\n", stdout);
    free(ns);
    return 0;
}

/* Run argv (stdout captured) and wait. *wall_ns: fork → reaped. 0 on exit 0. */
static int run_capture(char *const argv[], char *out, size_t outlen, long long *wall_ns)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(p[1], 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t r;
    while ((r = read(p[0], out + got, outlen - 1 - got)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            got += (size_t)r;
    out[got] = 0;
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (wall_ns)
        *wall_ns = now_ns() - t0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* A vbroker open in a new process: process wall and in-process open+close. */
static int vb_open_round(const char *uri, int creds, metric *proc, metric *inproc)
{
    char out[256];
    long long wall;
    char *argv[] = { self_exe, "--child-open", (char *)uri, creds ? "1" : "0", NULL };
    if (run_capture(argv, out, sizeof out, &wall) < 0)
        return -1;
    long long oc = 0, total = 0;
    if (sscanf(out, "%lld %lld", &oc, &total) != 2)
        return -1;
    add(&proc->vb, wall / 1e3);
    if (inproc)
        add(&inproc->vb, oc / 1e3);
    return 0;
}

/* The libvirt helper: bench_libvirt open URI USER PW → "OPEN_CLOSE_NS". */
static int peer_open_round(const char *uri, metric *proc, metric *inproc)
{
    char out[256];
    long long wall;
    char *argv[] = { (char *)peer_bin, "open", (char *)uri, (char *)peer_user, (char *)peer_pw,
                     NULL };
    if (run_capture(argv, out, sizeof out, &wall) < 0)
        return -1;
    long long oc = 0;
    if (sscanf(out, "%lld", &oc) != 1)
        return -1;
    add(&proc->peer, wall / 1e3);
    if (inproc)
        add(&inproc->peer, oc / 1e3);
    return 0;
}

/* ---- steady state: many opens in one long-lived process ---------------------------------- */

static int failures_cold, failures_peer;
static int steady_rounds, steady_opens;
static void parse_samples(const char *text, const char *tag, samples *s);

/* The steady-state rows, registered first so they head the table. The
 * libvirt column is always libvirt's own steady state: a full login per open
 * (libvirt keeps nothing between opens), in one long-lived process too; the
 * label names what each side does. */
static void steady_metrics(void)
{
    M("steady_cold_digest_tcp", "steady: cold open, DIGEST-MD5 TCP", "us");
    M("steady_cold_scram_unix", "steady: cold open, SCRAM-SHA-256 unix", "us");
    M("steady_cold_none_tcp", "steady: cold open, no auth TCP", "us");
    M("steady_cold_none_unix", "steady: cold open, no auth unix", "us");
    M("steady_warm_token_unix", peer_bin ? "steady: warm, cached token unix / libvirt login unix"
                                         : "steady: warm, cached token unix", "us");
    M("steady_warm_shared_tcp", peer_bin ? "steady: warm, shared transport / libvirt login TCP"
                                         : "steady: warm, shared transport", "us");
    M("steady_nested_warm", "steady: nested warm open, vbhostd->XenAPI", "us");
    if (peer_bin) {
        note(M("steady_warm_token_unix", "", "us"),
             "libvirt column: libvirt's steady-state open of a unix URI, a full DIGEST-MD5 login "
             "(libvirt has no warm path); ");
        note(M("steady_warm_shared_tcp", "", "us"),
             "libvirt column: libvirt's steady-state open of the same kind of URI, a full "
             "DIGEST-MD5 login over TCP (libvirt has no warm path); ");
    }
}

/* One long-lived process (ours: this binary with --child-loop; libvirt's:
 * bench_libvirt steady) doing steady_opens timed opens; its samples go to *s. */
static int steady_process(char *const argv[], samples *s)
{
    size_t len = (size_t)steady_opens * 24 + 256;
    char *out = malloc(len);
    if (!out)
        return -1;
    int rc = run_capture(argv, out, len, NULL);
    size_t before = s->n;
    if (rc == 0)
        parse_samples(out, "open", s);
    free(out);
    return rc == 0 && s->n == before + (size_t)steady_opens ? 0 : -1;
}

static void append_median(char *buf, size_t len, const samples *s)
{
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s%.0f", used ? "/" : "", summarize(s).med);
}

/* steady_rounds rounds, libvirt's process right before ours in each, so
 * drift of the machine hits both; per-round medians go to the notes. */
static void bench_steady(const char *key, const char *uri, int creds, const char *lv_uri)
{
    metric *m = M(key, "", "us");
    char n_arg[16], c_arg[4];
    snprintf(n_arg, sizeof n_arg, "%d", steady_opens);
    snprintf(c_arg, sizeof c_arg, "%d", creds ? 1 : 0);
    char *vb_argv[] = { self_exe, "--child-loop", (char *)uri, c_arg, n_arg, NULL };
    char *lv_argv[] = { (char *)peer_bin, "steady", (char *)lv_uri, (char *)peer_user,
                        (char *)peer_pw, n_arg, NULL };
    char client_out[PATH_MAX];
    char *perf_argv[16] = { "/usr/bin/perf", "record", "-q", "-F", "2999", "--call-graph", "dwarf,16384",
                            "-o", client_out, "--" };
    if (perf_dir) { /* the app's process too, each round into its own file */
        for (int i = 0; vb_argv[i]; i++)
            perf_argv[10 + i] = vb_argv[i];
    }
    pid_t perf = perf_start(key);
    char vb_meds[200] = "", lv_meds[200] = "";
    int vb_fail = 0, lv_fail = 0;
    for (int r = 0; r < steady_rounds; r++) {
        samples s = { 0 };
        if (peer_bin && lv_uri) {
            if (steady_process(lv_argv, &s) == 0) {
                append_median(lv_meds, sizeof lv_meds, &s);
                for (size_t i = 0; i < s.n; i++)
                    add(&m->peer, s.v[i]);
            } else {
                lv_fail++;
            }
            s.n = 0;
        }
        snprintf(client_out, sizeof client_out, "%s/%s.app%d.data", perf_dir ? perf_dir : "", key, r);
        if (steady_process(perf_dir ? perf_argv : vb_argv, &s) == 0) {
            append_median(vb_meds, sizeof vb_meds, &s);
            for (size_t i = 0; i < s.n; i++)
                add(&m->vb, s.v[i]);
        } else {
            vb_fail++;
        }
        free(s.v);
    }
    perf_stop(perf);
    failures_peer += lv_fail;
    note(m, "%d rounds x %d open+close in one process each (one untimed open first); "
            "per-round medians (us): vbroker %s",
         steady_rounds, steady_opens, vb_meds[0] ? vb_meds : "-");
    if (peer_bin && lv_uri)
        note(m, ", libvirt %s", lv_meds[0] ? lv_meds : "-");
    if (vb_fail || lv_fail)
        note(m, "; FAILED rounds: vbroker %d, libvirt %d", vb_fail, lv_fail);
}

/* ---- cold and warm opens (the script's view: a new process each) ---------------------- */

static void bench_cold(void)
{
    use_broker(&bcold);
    metric *dp = M("cold_digest_tcp_process", "script: cold open, DIGEST-MD5 TCP (new process, wall)", "us");
    metric *di = M("cold_digest_tcp", "script: cold open, DIGEST-MD5 TCP (its first open+close)", "us");
    metric *sp = M("cold_scram_unix_process", "script: cold open, SCRAM-SHA-256 unix (new process, wall)", "us");
    metric *si = M("cold_scram_unix", "script: cold open, SCRAM-SHA-256 unix (its first open+close)", "us");
    metric *np = M("cold_none_tcp_process", "script: cold open, no auth TCP (new process, wall)", "us");
    metric *ni = M("cold_none_tcp", "script: cold open, no auth TCP (its first open+close)", "us");
    metric *up = M("cold_none_unix_process", "script: cold open, no auth unix (new process, wall)", "us");
    metric *ui = M("cold_none_unix", "script: cold open, no auth unix (its first open+close)", "us");
    /* one warm-up of each path (page cache, first sasl plugin load in the broker) */
    vb_open_round(uri_digest, 1, &(metric){ 0 }, NULL);
    vb_open_round(uri_none_tcp, 0, &(metric){ 0 }, NULL);
    for (int r = 0; r < rounds; r++) {
        if (peer_bin && peer_open_round(peer_uri, dp, di) < 0)
            failures_peer++;
        failures_cold += vb_open_round(uri_digest, 1, dp, di) < 0;
        if (peer_bin && peer_uri_none && peer_open_round(peer_uri_none, np, ni) < 0)
            failures_peer++;
        failures_cold += vb_open_round(uri_none_tcp, 0, np, ni) < 0;
        failures_cold += vb_open_round(uri_scram, 1, sp, si) < 0;
        if (peer_bin && peer_uri_none_unix && peer_open_round(peer_uri_none_unix, up, ui) < 0)
            failures_peer++;
        failures_cold += vb_open_round(uri_none_unix, 0, up, ui) < 0;
    }
    note(dp, "vbrokerd --secret-ttl 0 --upstream-idle 0: a full SASL login every time");
    if (peer_bin)
        note(sp, "no libvirt column: libvirt's SASL here is DIGEST-MD5 (its unix figure is in "
                 "the cached-token rows)");
}

/* vb_login to uri through b, then restart b: its opens use the token from
 * cache.db, not anything the login left in its memory (a TLS session). */
static int login_and_restart(broker *b, const char *uri)
{
    use_broker(b);
    char *identity = NULL;
    int64_t expires = 0;
    vb_error err = { 0 };
    if (vb_login(uri, &form_auth, 0, &identity, &expires, &err) < 0) {
        fprintf(stderr, "bench_e2e: vb_login %s: %s\n", uri, err.message);
        return -1;
    }
    free(identity);
    stop_broker(b);
    return start_broker(b);
}

static int bench_token(void)
{
    if (login_and_restart(&btoken, uri_token) < 0)
        return -1;
    metric *tp = M("warm_token_unix_process",
                   peer_bin ? "script: warm, cached token unix / libvirt login (new process, wall)"
                            : "script: warm, cached token unix (new process, wall)", "us");
    metric *ti = M("warm_token_unix",
                   peer_bin ? "script: warm, cached token unix / libvirt login (its first open+close)"
                            : "script: warm, cached token unix (its first open+close)", "us");
    int fails = 0;
    const char *lv = peer_uri_unix ? peer_uri_unix : peer_uri;
    vb_open_round(uri_token, 0, &(metric){ 0 }, NULL);
    for (int r = 0; r < rounds; r++) {
        if (peer_bin && peer_open_round(lv, tp, ti) < 0)
            failures_peer++;
        fails += vb_open_round(uri_token, 0, tp, ti) < 0;
    }
    bench_steady("steady_warm_token_unix", uri_token, 0, lv);
    note(tp, "token from vb_login; broker restarted; no prompt callback%s",
         fails ? " (SOME FAILED)" : "");
    if (peer_bin)
        note(tp, "; libvirt column: a new libvirt process's first open (full DIGEST-MD5 login, %s, "
                 "Cyrus loading its plugins): libvirt caches nothing, so vb/libvirt = warm vbroker / cold libvirt (target <= 0.1)",
             peer_uri_unix ? "unix" : "TCP");
    return 0;
}

/* TLS (issue 16): a cold open with SCRAM-SHA-256-PLUS, and warm opens with
 * the token from cache.db on a new TLS connection each, resumed (btls) and
 * with a full handshake (btls_full: VB_TLS_NO_RESUME=1); libvirt's column is
 * its TLS + SCRAM-SHA-256 open, its only kind. */
static int bench_tls(void)
{
    M("steady_tls_cold_scram", peer_uri_tls ? "steady: cold open, TLS+SCRAM-PLUS / libvirt TLS+SCRAM"
                                            : "steady: cold open, TLS+SCRAM-SHA-256-PLUS", "us");
    M("steady_tls_warm_token", peer_uri_tls ? "steady: warm, token TLS resumed / libvirt TLS+SCRAM"
                                            : "steady: warm, cached token TLS (resumed)", "us");
    M("steady_tls_warm_token_full", "steady: warm, cached token TLS (full handshake)", "us");
    use_broker(&bcold);
    bench_steady("steady_tls_cold_scram", uri_tls_scram, 1, peer_uri_tls);
    note(M("steady_tls_cold_scram", "", "us"),
         "; cold broker: a new TLS connection (full handshake, client certificate) and a "
         "SCRAM-SHA-256-PLUS login each open");
    if (login_and_restart(&btls, uri_tls_token) < 0 ||
        login_and_restart(&btls_full, uri_tls_token) < 0)
        return -1;
    use_broker(&btls);
    bench_steady("steady_tls_warm_token", uri_tls_token, 0, peer_uri_tls);
    note(M("steady_tls_warm_token", "", "us"),
         "; token from vb_login, broker restarted, --upstream-idle 0: each open a new TLS "
         "connection resuming the last (TLS 1.3 ticket) and a token login bound to it");
    use_broker(&btls_full);
    bench_steady("steady_tls_warm_token_full", uri_tls_token, 0, NULL);
    note(M("steady_tls_warm_token_full", "", "us"),
         "; the same with VB_TLS_NO_RESUME=1 in the broker: a full handshake each open");
    return 0;
}

static int tls_setup(void)
{
    /* a TLS listener with tokens and SCRAM (its -PLUS variant) */
    if (start_hostd(&htls, "htls", "[\"sasl\"]", "[\"token\", \"sasl\"]", 1) < 0)
        return -1;
    snprintf(uri_tls_scram, sizeof uri_tls_scram,
             "test+tls://127.0.0.1:%d/default?pkipath=%s&auth=sasl", htls.port, tls_pki);
    snprintf(uri_tls_token, sizeof uri_tls_token, "test+tls://127.0.0.1:%d/default?pkipath=%s",
             htls.port, tls_pki);
    static char no_resume[] = "VB_TLS_NO_RESUME=1";
    snprintf(btls.name, sizeof btls.name, "btls");
    snprintf(btls_full.name, sizeof btls_full.name, "btlsfull");
    const char *flags[] = { "--secret-ttl", "0", "--upstream-idle", "0", NULL };
    memcpy(btls.extra, flags, sizeof flags);
    memcpy(btls_full.extra, flags, sizeof flags);
    btls_full.env[0] = no_resume;
    return start_broker(&btls) < 0 || start_broker(&btls_full) < 0 ? -1 : 0;
}

/* Warm: the same URI as a connection the harness holds in bwarm, opened in
 * new processes without a callback: the broker serves it on that transport. */
static void bench_warm_shared(void)
{
    use_broker(&bwarm);
    metric *wp = M("warm_shared_tcp_process",
                   peer_bin ? "script: warm, shared transport / libvirt login (new process, wall)"
                            : "script: warm, shared transport (new process, wall)", "us");
    metric *wi = M("warm_shared_tcp",
                   peer_bin ? "script: warm, shared transport / libvirt login (its first open+close)"
                            : "script: warm, shared transport (its first open+close)", "us");
    vb_open_round(uri_digest, 0, &(metric){ 0 }, NULL);
    int wf = 0;
    for (int r = 0; r < rounds; r++) {
        if (peer_bin && peer_open_round(peer_uri, wp, wi) < 0)
            failures_peer++;
        wf += vb_open_round(uri_digest, 0, wp, wi) < 0;
    }
    bench_steady("steady_warm_shared_tcp", uri_digest, 0, peer_uri);
    note(wp, "DIGEST-MD5 TCP URI, no prompt callback: served by the transport another client holds%s",
         wf ? " (SOME FAILED)" : "");
    if (peer_bin)
        note(wp, "; libvirt column: a new libvirt process's first open of the same URI kind "
                 "(DIGEST-MD5 TCP, full login, Cyrus loading its plugins): libvirt caches nothing, so vb/libvirt = warm vbroker / cold libvirt "
                 "(target <= 0.1)");
}

/* ---- the nested chain: app → broker → vbhostd → XenAPI simulator ------------------ */

static pid_t xensim_pid;
static char xen_logins[300];

/* The simulator is started once for all rounds (Python's start-up is slow);
 * uri_xen names it behind vbhostd "sasl" over TCP (DIGEST-MD5), as
 * tests/integ/test_relay.c does: vbhostd runs the xenapi driver itself. */
static int start_xensim(void)
{
    char users[300], log[300], listen[64], sim[PATH_MAX];
    const char *env = getenv("BENCH_XENAPI_SIM");
    snprintf(sim, sizeof sim, "%s", env && *env ? env : VB_SRC_DIR "/tests/peers/xenapi_sim.py");
    snprintf(users, sizeof users, "%s/xen-users", dir);
    snprintf(log, sizeof log, "%s/xen.log", dir);
    snprintf(xen_logins, sizeof xen_logins, "%s/xen-logins", dir);
    vb_ts_write_file(users, XEN_USER ":" XEN_PASSWORD "\n", 0600);
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = xen_port;
        snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
        char *argv[] = { "python3", "-I", "-S", sim, "--listen", listen, "--users", users, "--count-logins", xen_logins, NULL };
        xensim_pid = vb_ts_spawn(argv, NULL, log);
        if (xensim_pid > 0 && vb_ts_wait_tcp("127.0.0.1", port, START_MS) == 0) {
            snprintf(uri_xen, sizeof uri_xen,
                     "xenapi+tcp://127.0.0.1:%d/?auth=sasl.DIGEST-MD5&name=xenapi%%3A%%2F%%2F" XEN_USER
                     "%%40127.0.0.1%%3A%d%%2F%%3Ftransport%%3Dhttp",
                     hsasl.port, port);
            return 0;
        }
        if (xensim_pid > 0)
            vb_ts_stop(xensim_pid, 2000);
        xensim_pid = 0;
    }
    fprintf(stderr, "bench_e2e: the XenAPI simulator did not start; see %s\n", log);
    return -1;
}

/* Successful XenAPI logins so far ("ok=N failed=M slave=K"), -1 if unknown. */
static long xen_logins_ok(void)
{
    char *text = vb_ts_read_file(xen_logins, NULL);
    long ok = -1;
    if (!text || sscanf(text, "ok=%ld", &ok) != 1)
        ok = -1;
    free(text);
    return ok;
}

/* First open: cold broker, so a new transport with a DIGEST-MD5 login to
 * vbhostd, then vbhostd's XenAPI login whose question is relayed up; the
 * app's callback answers both. */
static void nested_first(metric *proc, metric *inproc)
{
    use_broker(&bcold);
    vb_open_round(uri_xen, 1, &(metric){ 0 }, NULL); /* vbhostd's first libcurl/libxml2 use */
    long before = xen_logins_ok();
    int fails = 0;
    for (int r = 0; r < rounds; r++)
        fails += vb_open_round(uri_xen, 1, proc, inproc) < 0;
    note(proc, "cold broker: DIGEST-MD5 login to vbhostd + XenAPI login relayed up (CRED_FILL), "
               "both answered by the app's callback; simulator: %ld logins for %d opens%s",
         xen_logins_ok() - before, rounds, fails ? " (SOME FAILED)" : "");
}

/* Warm open: after one open with the callback, new processes open without
 * one: the broker answers everything (live transport to vbhostd, the XenAPI
 * password from its secret cache). vbhostd still logs in to XenAPI. */
static void nested_warm(metric *proc, metric *inproc)
{
    use_broker(&bwarm);
    vb_error err = { 0 };
    vb_conn *c = vb_open_auth(uri_xen, &form_auth, 0, &err);
    if (!c) {
        note(proc, "priming open failed: %s", err.message);
        return;
    }
    vb_close(c);
    vb_open_round(uri_xen, 0, &(metric){ 0 }, NULL);
    long before = xen_logins_ok();
    int fails = 0;
    for (int r = 0; r < rounds; r++)
        fails += vb_open_round(uri_xen, 0, proc, inproc) < 0;
    note(proc, "default broker, no prompt callback: vbhostd reached on the transport the harness "
               "holds, the relayed XenAPI question answered from the broker's secret cache; "
               "simulator: %ld logins for %d opens%s",
         xen_logins_ok() - before, rounds, fails ? " (SOME FAILED: something asked)" : "");
}

/* Steady state of the nested warm open against the plain warm open (the
 * shared-transport URI), their processes alternating in each round so the
 * machine's drift hits both; the nested samples go to steady_nested_warm,
 * the ratio of the per-round medians to its note. */
static void nested_steady(void)
{
    metric *m = M("steady_nested_warm", "", "us");
    char n_arg[16];
    snprintf(n_arg, sizeof n_arg, "%d", steady_opens);
    char *plain_argv[] = { self_exe, "--child-loop", uri_digest, "0", n_arg, NULL };
    char *nested_argv[] = { self_exe, "--child-loop", uri_xen, "0", n_arg, NULL };
    char meds[200] = "", ratios[200] = "";
    int fails = 0;
    long before = xen_logins_ok();
    for (int r = 0; r < steady_rounds; r++) {
        samples plain = { 0 }, nested = { 0 };
        if (steady_process(plain_argv, &plain) < 0 || steady_process(nested_argv, &nested) < 0) {
            fails++;
        } else {
            double pm = summarize(&plain).med, nm = summarize(&nested).med;
            size_t used = strlen(meds);
            snprintf(meds + used, sizeof meds - used, "%s%.0f/%.0f", used ? ", " : "", nm, pm);
            used = strlen(ratios);
            snprintf(ratios + used, sizeof ratios - used, "%s%.2f", used ? "/" : "", nm / pm);
            for (size_t i = 0; i < nested.n; i++)
                add(&m->vb, nested.v[i]);
        }
        free(plain.v);
        free(nested.v);
    }
    note(m, "%d rounds x %d open+close in one process, alternating with the plain warm open "
            "(shared transport) in each round; per-round medians nested/plain (us): %s; "
            "ratio %s (target <= 1.5); simulator: %ld logins for %d nested opens "
            "(xenapi_session_keep %s)%s",
         steady_rounds, steady_opens, meds[0] ? meds : "-", ratios[0] ? ratios : "-",
         xen_logins_ok() - before, steady_rounds * (steady_opens + 1),
         xen_keep_s, fails ? "; FAILED rounds" : "");
    if (fails)
        m->failed = fails;
}

static void bench_nested(void)
{
    if (start_xensim() < 0)
        return;
    metric *fp = M("nested_first_process", "script: nested first open, vbhostd->XenAPI (new process, wall)", "us");
    metric *fi = M("nested_first", "script: nested first open, vbhostd->XenAPI (its first open+close)", "us");
    metric *wp = M("nested_warm_process", "script: nested warm open, vbhostd->XenAPI (new process, wall)", "us");
    metric *wi = M("nested_warm", "script: nested warm open, vbhostd->XenAPI (its first open+close)", "us");
    nested_first(fp, fi);
    nested_warm(wp, wi); /* primes the broker's secret cache for nested_steady */
    nested_steady();
    note(fp, "; the simulator runs with TCP_NODELAY (else +40 ms per close: its logout reply "
             "waits for a delayed ACK)");
    if (peer_bin)
        note(fi, "no libvirt column: libvirt 9.0 has no XenAPI driver");
}

/* ---- RPC round trips -------------------------------------------------------------------- */

static vb_conn *holder; /* keeps bwarm's shared transport to hsasl alive */

static void rpc_through_broker(vb_conn *c, int n, metric *mh, metric *ml)
{
    vb_error err;
    for (int i = 0; i < n; i++) {
        char *h = NULL;
        long long t0 = now_ns();
        if (vb_get_hostname(c, &h, &err) < 0) {
            fprintf(stderr, "bench_e2e: hostname: %s\n", err.message);
            return;
        }
        add(&mh->vb, (now_ns() - t0) / 1e3);
        free(h);
    }
    for (int i = 0; ml && i < n; i++) {
        vb_domain *d = NULL;
        size_t nd = 0;
        long long t0 = now_ns();
        if (vb_list_domains(c, &d, &nd, &err) < 0) {
            fprintf(stderr, "bench_e2e: list: %s\n", err.message);
            return;
        }
        add(&ml->vb, (now_ns() - t0) / 1e3);
        vb_domains_free(d, nd);
    }
}

static void parse_samples(const char *text, const char *tag, samples *s)
{
    size_t tl = strlen(tag);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, tag, tl) == 0 && line[tl] == ' ') {
            const char *p = line + tl;
            char *end;
            for (;;) {
                long long v = strtoll(p, &end, 10);
                if (end == p)
                    break;
                add(s, v / 1e3);
                p = end;
                if (*p == '\n' || !*p)
                    break;
            }
        }
    }
}

/* Ping-pong of req/rep bytes between two processes over a unix or TCP socket. */
#define FLOOR_REQ 64
#define FLOOR_REP 96

static int full_io(int fd, void *buf, size_t len, int do_write)
{
    size_t off = 0;
    while (off < len) {
        ssize_t r = do_write ? write(fd, (char *)buf + off, len - off) : read(fd, (char *)buf + off, len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

static void floor_pingpong(int tcp, int n, metric *m)
{
    int fds[2] = { -1, -1 };
    if (!tcp) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
            return;
    } else {
        int ls = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t al = sizeof a;
        if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0 ||
            getsockname(ls, (struct sockaddr *)&a, &al) < 0)
            return;
        fds[0] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fds[0], (struct sockaddr *)&a, sizeof a) < 0)
            return;
        fds[1] = accept(ls, NULL, NULL);
        close(ls);
        int one = 1;
        setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    pid_t pid = fork();
    if (pid == 0) {
        char buf[FLOOR_REP] = { 0 };
        close(fds[0]);
        while (full_io(fds[1], buf, FLOOR_REQ, 0) == 0 && full_io(fds[1], buf, FLOOR_REP, 1) == 0)
            ;
        _exit(0);
    }
    close(fds[1]);
    char buf[FLOOR_REP] = { 0 };
    for (int i = 0; i < n + 100; i++) {
        long long t0 = now_ns();
        if (full_io(fds[0], buf, FLOOR_REQ, 1) < 0 || full_io(fds[0], buf, FLOOR_REP, 0) < 0)
            break;
        if (i >= 100) /* warm-up */
            add(&m->vb, (now_ns() - t0) / 1e3);
    }
    close(fds[0]);
    waitpid(pid, NULL, 0);
    note(m, "%d-byte request, %d-byte reply, TCP_NODELAY; the broker path crosses two such hops",
         FLOOR_REQ, FLOOR_REP);
}

static void bench_rpc(void)
{
    use_broker(&bwarm);
    metric *bh = M("rpc_hostname_broker", "RPC hostname via broker (DIGEST-MD5 TCP upstream)", "us");
    metric *bl = M("rpc_list_broker", "RPC list (3 domains) via broker", "us");
    metric *nh = M("rpc_hostname_broker_none_unix", "RPC hostname via broker (no-auth unix upstream)", "us");
    metric *dh = M("rpc_hostname_direct", "RPC hostname direct to vbhostd (DIGEST-MD5 TCP)", "us");
    metric *dl = M("rpc_list_direct", "RPC list direct to vbhostd (DIGEST-MD5 TCP)", "us");
    metric *fu = M("floor_unix_pingpong", "floor: unix socket ping-pong", "us");
    metric *ft = M("floor_tcp_pingpong", "floor: TCP loopback ping-pong", "us");
    metric *dopen = M("direct_open_digest_tcp", "direct open to vbhostd, no broker (DIGEST-MD5 TCP)", "us");

    /* through the broker, alternating with the libvirt peer's rounds */
    int per_round = rpc_calls / 10 > 0 ? rpc_calls / 10 : 1;
    rpc_through_broker(holder, 100, &(metric){ 0 }, NULL); /* warm-up */
    for (int r = 0; r < 10; r++) {
        if (peer_bin) {
            char out[65536], n[16];
            snprintf(n, sizeof n, "%d", per_round);
            char *argv[] = { (char *)peer_bin, "rtt", (char *)peer_uri, (char *)peer_user,
                             (char *)peer_pw, n, NULL };
            if (run_capture(argv, out, sizeof out, NULL) == 0)
                parse_samples(out, "hostname", &bh->peer);
            else
                failures_peer++;
        }
        rpc_through_broker(holder, per_round, bh, bl);
    }
    vb_error err = { 0 };
    vb_conn *c = vb_open_auth(uri_none_unix, NULL, 0, &err);
    if (c) {
        rpc_through_broker(c, 100, &(metric){ 0 }, NULL);
        rpc_through_broker(c, rpc_calls, nh, NULL);
        vb_close(c);
    }

    char bin[PATH_MAX + 32], n[16], out[1 << 20];
    snprintf(bin, sizeof bin, "%s/bench/direct_rtt", build_dir);
    snprintf(n, sizeof n, "%d", rpc_calls);
    char *argv[] = { bin, uri_digest, USER, PASSWORD, n, NULL };
    static char big[4 << 20];
    (void)out;
    if (run_capture(argv, big, sizeof big, NULL) == 0) {
        parse_samples(big, "open", &dopen->vb);
        parse_samples(big, "hostname", &dh->vb);
        parse_samples(big, "list", &dl->vb);
    } else {
        note(dh, "direct_rtt failed (is %s built?)", bin);
    }
    note(dopen, "one sample per run: hvdrivers' own client in a fresh process");
    floor_pingpong(0, rpc_calls, fu);
    floor_pingpong(1, rpc_calls, ft);
}

/* ---- concurrency ------------------------------------------------------------------------- */

typedef struct conc {
    pthread_barrier_t start, opened;
    const char *uri;
    int creds;
    long long t0;
    long long *done;
    int failures;
    pthread_mutex_t lock;
    char first_error[600];
} conc;

typedef struct conc_arg {
    conc *c;
    int idx;
} conc_arg;

static void *conc_thread(void *p)
{
    conc_arg *a = p;
    conc *c = a->c;
    vb_error err = { 0 };
    pthread_barrier_wait(&c->start);
    vb_conn *conn = vb_open_auth(c->uri, c->creds ? &form_auth : NULL, 0, &err);
    c->done[a->idx] = now_ns();
    if (!conn) {
        pthread_mutex_lock(&c->lock);
        if (!c->failures++)
            snprintf(c->first_error, sizeof c->first_error, "%s", err.message);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_barrier_wait(&c->opened); /* all N are open at once */
    if (conn)
        vb_close(conn);
    return NULL;
}

/* N threads open at once; wall = barrier release → last open returned. */
static int conc_round(const char *uri, int creds, int n, double *wall_ms, char *errbuf, size_t errlen)
{
    conc c = { .uri = uri, .creds = creds };
    pthread_barrier_init(&c.start, NULL, (unsigned)n + 1);
    pthread_barrier_init(&c.opened, NULL, (unsigned)n);
    pthread_mutex_init(&c.lock, NULL);
    c.done = calloc((size_t)n, sizeof *c.done);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    conc_arg *args = calloc((size_t)n, sizeof *args);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int started = 0;
    for (int i = 0; i < n; i++) {
        args[i] = (conc_arg){ &c, i };
        if (pthread_create(&th[i], &attr, conc_thread, &args[i]) != 0)
            abort();
        started++;
    }
    long long t0 = now_ns();
    pthread_barrier_wait(&c.start);
    t0 = now_ns();
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    long long last = t0;
    for (int i = 0; i < n; i++)
        if (c.done[i] > last)
            last = c.done[i];
    *wall_ms = (last - t0) / 1e6;
    int f = c.failures;
    if (f && errbuf)
        snprintf(errbuf, errlen, "%s", c.first_error);
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&c.start);
    pthread_barrier_destroy(&c.opened);
    pthread_mutex_destroy(&c.lock);
    free(c.done);
    free(th);
    free(args);
    return f;
}

static void bench_conc_one(const broker *b, const char *uri, int creds, int n, const char *key,
                           const char *label, int nrounds, int with_peer)
{
    use_broker(b);
    metric *m = M(key, label, "ms");
    int fails = 0, vb_rounds = 0;
    char first[600] = "";
    for (int r = 0; r < nrounds; r++) {
        if (with_peer && peer_bin) {
            char out[256], ns[16];
            snprintf(ns, sizeof ns, "%d", n);
            char *argv[] = { (char *)peer_bin, "conc", (char *)peer_uri, (char *)peer_user,
                             (char *)peer_pw, ns, NULL };
            long long wall = 0;
            int pf = 0;
            if (run_capture(argv, out, sizeof out, NULL) == 0 &&
                sscanf(out, "%lld %d", &wall, &pf) == 2) {
                add(&m->peer, wall / 1e6);
                if (pf) {
                    m->failed += pf;
                    note(m, "[libvirt round %d: %d failed] ", r, pf);
                }
            } else {
                failures_peer++;
            }
        }
        double wall;
        char e[600] = "";
        int f = conc_round(uri, creds, n, &wall, e, sizeof e);
        if (f && !fails)
            snprintf(first, sizeof first, "%s", e);
        fails += f;
        vb_rounds++;
        add(&m->vb, wall);
    }
    m->failed += fails;
    note(m, "%d clients x %d rounds, %d failed opens%s%s", n, vb_rounds, fails,
         fails ? ": " : "", first);
}

/* ---- idle clients and sustained rate ----------------------------------------------------------- */

/* A helper talked to over pipes: its stdin (we write) and stdout (we read). */
typedef struct peer_proc {
    pid_t pid;
    int in, out;
    char buf[1 << 17];
    size_t len;
} peer_proc;

static int peer_start(peer_proc *p, char *const argv[])
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    p->len = 0;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    p->out = out[0];
    if (p->pid < 0) {
        close(p->in);
        close(p->out);
        return -1;
    }
    return 0;
}

/* The complete line of p->buf that starts with tag, or NULL. */
static const char *find_line(const peer_proc *p, const char *tag)
{
    size_t tl = strlen(tag);
    for (size_t i = 0; i < p->len;) {
        const char *nl = memchr(p->buf + i, '\n', p->len - i);
        if (!nl)
            return NULL;
        if ((size_t)(nl - (p->buf + i)) >= tl && memcmp(p->buf + i, tag, tl) == 0)
            return p->buf + i;
        i = (size_t)(nl - p->buf) + 1;
    }
    return NULL;
}

/* Read the helper's stdout until a line starting with tag has arrived, for
 * at most timeout_ms. NULL on timeout, EOF or a full buffer. */
static const char *peer_wait_line(peer_proc *p, const char *tag, int timeout_ms)
{
    long long deadline = now_ns() + (long long)timeout_ms * 1000000LL;
    const char *line;
    while (!(line = find_line(p, tag))) {
        long long left_ms = (deadline - now_ns()) / 1000000LL;
        if (left_ms <= 0 || p->len >= sizeof p->buf - 1)
            return NULL;
        struct pollfd pfd = { .fd = p->out, .events = POLLIN };
        int r = poll(&pfd, 1, (int)left_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue; /* the deadline check above ends it */
        ssize_t got = read(p->out, p->buf + p->len, sizeof p->buf - 1 - p->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return NULL;
        p->len += (size_t)got;
        p->buf[p->len] = 0;
    }
    return line;
}

/* Read fd to EOF, discarding, for at most timeout_ms: 0 at EOF, -1 past it. */
static int drain_until_eof(int fd, int timeout_ms)
{
    long long deadline = now_ns() + (long long)timeout_ms * 1000000LL;
    char sink[4096];
    for (;;) {
        long long left_ms = (deadline - now_ns()) / 1000000LL;
        if (left_ms <= 0)
            return -1;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = poll(&pfd, 1, (int)left_ms);
        if (r <= 0)
            continue; /* EINTR or the deadline, checked above */
        ssize_t got = read(fd, sink, sizeof sink);
        if (got == 0)
            return 0;
        if (got < 0 && errno != EINTR)
            return 0; /* nothing more will come */
    }
}

/* Close its stdin (the helper's cue to finish), wait for it to close its
 * stdout, SIGKILL it by pid if that takes longer than timeout_ms, reap it. */
static void peer_finish(peer_proc *p, int timeout_ms)
{
    close(p->in);
    if (drain_until_eof(p->out, timeout_ms) < 0)
        kill(p->pid, SIGKILL);
    close(p->out);
    while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* libvirt's idle figure, before vbroker's: bench_libvirt holds one client,
 * libvirtd's RSS is read, then idle_clients more are opened and held, RSS
 * read again. The same figures as vbroker's broker (per client, growth,
 * sequential open); libvirtd is libvirt's process that holds per-client
 * state, as the broker is vbroker's. */
static void peer_idle(metric *per, metric *tot, metric *each)
{
    const char *uri = peer_uri_none_unix ? peer_uri_none_unix : peer_uri_none;
    if (!peer_bin || !uri || peer_idle_pid <= 0)
        return;
    char n[16];
    snprintf(n, sizeof n, "%d", idle_clients);
    char *argv[] = { (char *)peer_bin, "idle", (char *)uri, (char *)peer_user, (char *)peer_pw, n,
                     NULL };
    static peer_proc p;
    if (peer_start(&p, argv) < 0) {
        failures_peer++;
        return;
    }
    long before = -1, after = -1;
    int ok = 0, failed = 0;
    const char *held = NULL;
    if (peer_wait_line(&p, "base", START_MS)) {
        before = vb_ts_rss_kib(peer_idle_pid);
        if (write(p.in, "go\n", 3) == 3)
            held = peer_wait_line(&p, "held ", 300000);
    }
    if (held && sscanf(held, "held %d %d", &ok, &failed) == 2) {
        after = vb_ts_rss_kib(peer_idle_pid);
        parse_samples(p.buf, "open", &each->peer);
    }
    peer_finish(&p, 30000);
    if (!held || ok <= 0 || before < 0 || after < 0) {
        failures_peer++;
        note(tot, "[libvirt idle run failed] ");
        return;
    }
    add(&per->peer, (double)(after - before) / ok);
    add(&tot->peer, (double)(after - before));
    note(tot, "[libvirt: %d of %d held on one libvirtd (%s, no auth), its RSS %ld -> %ld KiB"
              "%s] ",
         ok, idle_clients, peer_uri_none_unix ? "unix" : "TCP", before, after,
         failed ? "; some failed" : "");
}

typedef struct threads_at_most {
    pid_t pid;
    int most;
} threads_at_most;

static int has_threads_at_most(void *arg)
{
    const threads_at_most *t = arg;
    int n = vb_ts_thread_count(t->pid);
    return n >= 0 && n <= t->most;
}

/* A fresh default broker. First: how many opens of ONE URI a shared transport
 * takes (vbhostd caps hypervisor connections per transport). Then idle_clients
 * clients held open at once, spread over several transports to the no-auth
 * vbhostd (the same socket reached by different spellings of its path, which
 * are different sharing keys), at most 200 per transport. */
static void bench_idle(void)
{
    static broker bidle;
    snprintf(bidle.name, sizeof bidle.name, "bidle");
    if (start_broker(&bidle) < 0)
        return;
    use_broker(&bidle);
    metric *cap = M("idle_one_uri_max", "opens of one URI held at once (one shared transport)", "count");
    metric *m = M("idle_rss_per_client", "idle clients: broker RSS per client", "KiB");
    metric *tot = M("idle_rss_total", "idle clients: broker RSS growth", "KiB");
    metric *ht = M("idle_hostd_rss_per_client", "idle clients: vbhostd RSS per client", "KiB");
    metric *ot = M("idle_open_each", "idle clients: sequential open (shared transports)", "us");
    vb_conn **cs = calloc((size_t)idle_clients, sizeof *cs);
    int held = 0;
    char first[600] = "";
    for (int i = 0; i < idle_clients; i++) {
        vb_error err = { 0 };
        if (!(cs[i] = vb_open_auth(uri_none_unix, NULL, 0, &err))) {
            snprintf(first, sizeof first, "%s", err.message);
            break;
        }
        held++;
    }
    add(&cap->vb, held);
    note(cap, "%d of %d opened%s%s", held, idle_clients, first[0] ? "; then: " : "", first);
    for (int i = 0; i < idle_clients; i++)
        if (cs[i])
            vb_close(cs[i]);
    memset(cs, 0, (size_t)idle_clients * sizeof *cs);
    stop_broker(&bidle);
    if (start_broker(&bidle) < 0)
        return;

    peer_idle(m, tot, ot);

    char uris[8][800];
    int nvariants = (idle_clients + 199) / 200;
    if (nvariants > 8)
        nvariants = 8;
    for (int v = 0; v < nvariants; v++) {
        char path[700] = "";
        size_t off = (size_t)snprintf(path, sizeof path, "%s", dir);
        for (int k = 0; k < v; k++)
            off += (size_t)snprintf(path + off, sizeof path - off, "/.");
        snprintf(path + off, sizeof path - off, "/hnone.sock");
        snprintf(uris[v], sizeof uris[v], "test+unix:///default?socket=%s&auth=none", path);
    }
    /* one client per transport first, so the baseline holds the transports */
    vb_error err0;
    vb_conn *base[8] = { 0 };
    for (int v = 0; v < nvariants; v++)
        base[v] = vb_open_auth(uris[v], NULL, 0, &err0);
    long before = vb_ts_rss_kib(bidle.pid), hbefore = vb_ts_rss_kib(hnone.pid);
    int threads_before = vb_ts_thread_count(bidle.pid);
    int opened = 0;
    first[0] = 0;
    for (int i = 0; i < idle_clients; i++) {
        vb_error err = { 0 };
        long long t0 = now_ns();
        cs[i] = vb_open_auth(uris[(i / 200) % nvariants], NULL, 0, &err);
        if (cs[i]) {
            add(&ot->vb, (now_ns() - t0) / 1e3);
            opened++;
        } else if (!first[0]) {
            snprintf(first, sizeof first, "%s", err.message);
        }
    }
    /* idle means idle: the broker's per-session workers leave after 2 s
     * without work (BRK_WORKER_IDLE_MS); measure once they have */
    int threads_busy = vb_ts_thread_count(bidle.pid);
    threads_at_most tam = { bidle.pid, threads_before + 2 };
    int settled = vb_ts_wait_until(has_threads_at_most, &tam, 15000) == 0;
    long after = vb_ts_rss_kib(bidle.pid), hafter = vb_ts_rss_kib(hnone.pid);
    note(m, "broker threads: %d before, %d right after the opens, %d when measured%s",
         threads_before, threads_busy, vb_ts_thread_count(bidle.pid),
         settled ? "" : " (workers still running after 15 s)");
    vb_broker_status st;
    vb_error err;
    unsigned clients = 0;
    size_t ups = 0;
    if (vb_broker_get_status(&st, &err) == 0) {
        clients = st.clients;
        ups = st.nupstreams;
        vb_broker_status_clear(&st);
    }
    if (opened > 0) {
        add(&m->vb, (double)(after - before) / opened);
        add(&tot->vb, (double)(after - before));
        add(&ht->vb, (double)(hafter - hbefore) / opened);
    }
    note(tot, "%d of %d opened over %d transports (no-auth unix), broker reports %u clients, %zu "
              "upstreams; RSS %ld -> %ld KiB%s%s",
         opened, idle_clients, nvariants, clients, ups, before, after, first[0] ? "; first error: " : "",
         first);
    note(ht, "each open is a hypervisor connection (conn_id) on a shared transport; RSS %ld -> %ld KiB",
         hbefore, hafter);
    for (int i = 0; i < idle_clients; i++)
        if (cs[i])
            vb_close(cs[i]);
    for (int v = 0; v < nvariants; v++)
        if (base[v])
            vb_close(base[v]);
    free(cs);
    stop_broker(&bidle);
}

typedef struct sustain {
    const char *uri;
    long long until;
    long opens, failures;
    pthread_mutex_t lock;
    char first_error[600];
} sustain;

static void *sustain_thread(void *p)
{
    sustain *s = p;
    long ok = 0, bad = 0;
    while (now_ns() < s->until) {
        vb_error err;
        vb_conn *c = vb_open_auth(s->uri, &form_auth, 0, &err);
        if (c) {
            vb_close(c);
            ok++;
        } else {
            if (!bad++) {
                pthread_mutex_lock(&s->lock);
                if (!s->first_error[0])
                    snprintf(s->first_error, sizeof s->first_error, "%s", err.message);
                pthread_mutex_unlock(&s->lock);
            }
        }
    }
    pthread_mutex_lock(&s->lock);
    s->opens += ok;
    s->failures += bad;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* libvirt's run of the same length and thread count, before vbroker's: a
 * full DIGEST-MD5 login per open (libvirt keeps nothing between opens). */
static void peer_sustain(metric *m)
{
    if (!peer_bin)
        return;
    char th[16], secs[16], out[256];
    snprintf(th, sizeof th, "%d", sustain_threads > 64 ? 64 : sustain_threads);
    snprintf(secs, sizeof secs, "%d", sustain_s);
    char *argv[] = { (char *)peer_bin, "sustain", (char *)peer_uri, (char *)peer_user,
                     (char *)peer_pw, th, secs, NULL };
    long opens = 0, failed = 0;
    long long ns = 0;
    if (run_capture(argv, out, sizeof out, NULL) < 0 ||
        sscanf(out, "%ld %ld %lld", &opens, &failed, &ns) != 3 || ns <= 0) {
        failures_peer++;
        return;
    }
    add(&m->peer, opens / (ns / 1e9));
    note(m, "[libvirt: %ld opens, %ld failed, DIGEST-MD5 TCP, a full login each] ", opens, failed);
}

static void bench_sustain(const broker *b, const char *key, const char *label)
{
    use_broker(b);
    metric *m = M(key, label, "opens/s");
    peer_sustain(m);
    sustain s = { .uri = uri_digest };
    pthread_mutex_init(&s.lock, NULL);
    long long t0 = now_ns();
    s.until = t0 + (long long)sustain_s * 1000000000LL;
    pthread_t th[64];
    int n = sustain_threads > 64 ? 64 : sustain_threads;
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, sustain_thread, &s);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    double secs = (now_ns() - t0) / 1e9;
    add(&m->vb, s.opens / secs);
    note(m, "%d clients looping open+close for %.1f s: %ld opens, %ld failed%s%s", n, secs, s.opens,
         s.failures, s.first_error[0] ? ": " : "", s.first_error);
    pthread_mutex_destroy(&s.lock);
}

/* ---- output ------------------------------------------------------------------------------------- */

static char cpu_model[256] = "unknown", kernel[256] = "unknown";
static long ncpu;

static void machine(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ')
                    p++;
                p[strcspn(p, "\n")] = 0;
                snprintf(cpu_model, sizeof cpu_model, "%s", p);
            }
            break;
        }
    }
    if (f)
        fclose(f);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(kernel, sizeof kernel, "%s %s %s", u.sysname, u.release, u.machine);
    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
}

static const char *fmt_num(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "-");
    else if (v >= 100000)
        snprintf(buf, len, "%.0f", v);
    else if (v >= 100)
        snprintf(buf, len, "%.1f", v);
    else
        snprintf(buf, len, "%.2f", v);
    return buf;
}

static void print_table(void)
{
    printf("\nmachine: %ld CPUs, %s, %s\n", ncpu, cpu_model, kernel);
    printf("rounds %d, rpc calls %d, concurrency rounds %d, idle clients %d, sustain %d s x %d threads\n\n",
           rounds, rpc_calls, conc_rounds, idle_clients, sustain_s, sustain_threads);
    printf("steady state: %d rounds x %d opens in one process each\n\n", steady_rounds, steady_opens);
    int peer = peer_bin != NULL, w = 6;
    for (size_t i = 0; i < nmetrics; i++)
        if ((int)strlen(metrics[i].label) > w)
            w = (int)strlen(metrics[i].label);
    printf("%-*s %-7s %10s %10s %10s %5s", w, "figure", "unit", "median", "min", "max", "n");
    if (peer)
        printf(" %10s %10s %10s", "libvirt", "(min)", "vb/libvirt");
    printf("\n");
    for (size_t i = 0; i < nmetrics; i++) {
        metric *m = &metrics[i];
        summary s = summarize(&m->vb);
        char a[32], b[32], c[32];
        printf("%-*s %-7s %10s %10s %10s %5zu", w, m->label, m->unit, fmt_num(s.med, a, sizeof a),
               fmt_num(s.min, b, sizeof b), fmt_num(s.max, c, sizeof c), s.n);
        if (peer && m->peer.n) {
            summary p = summarize(&m->peer);
            printf(" %10s %10s", fmt_num(p.med, a, sizeof a), fmt_num(p.min, b, sizeof b));
            if (has_ratio(m))
                printf(" %10.2f", s.med / p.med);
            else
                printf(" %10s", "failures");
        }
        printf("\n");
    }
    printf("\nnotes:\n");
    for (size_t i = 0; i < nmetrics; i++)
        if (metrics[i].note[0])
            printf("  %s: %s\n", metrics[i].key, metrics[i].note);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fputs("null", f);
    else
        fprintf(f, "%.3f", v);
}

static void json_summary(FILE *f, const samples *sm)
{
    summary s = summarize(sm);
    fputs("{\"median\": ", f);
    json_num(f, s.med);
    fputs(", \"min\": ", f);
    json_num(f, s.min);
    fputs(", \"max\": ", f);
    json_num(f, s.max);
    fprintf(f, ", \"n\": %zu}", s.n);
}

static int write_json(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    time_t t = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    fprintf(f, "{\n  \"benchmark\": \"bench_e2e\",\n  \"version\": \"%s\",\n  \"when\": \"%s\",\n",
            VBROKER_VERSION, when);
    fputs("  \"machine\": {\"nproc\": ", f);
    fprintf(f, "%ld, \"cpu\": ", ncpu);
    json_str(f, cpu_model);
    fputs(", \"kernel\": ", f);
    json_str(f, kernel);
    fprintf(f, "},\n  \"config\": {\"rounds\": %d, \"rpc_calls\": %d, \"conc_rounds\": %d, "
               "\"idle_clients\": %d, \"sustain_seconds\": %d, \"sustain_threads\": %d, "
               "\"steady_rounds\": %d, \"steady_opens\": %d, "
               "\"peer\": %s},\n  \"metrics\": [\n",
            rounds, rpc_calls, conc_rounds, idle_clients, sustain_s, sustain_threads,
            steady_rounds, steady_opens, peer_bin ? "\"libvirt\"" : "null");
    for (size_t i = 0; i < nmetrics; i++) {
        metric *m = &metrics[i];
        fputs("    {\"key\": ", f);
        json_str(f, m->key);
        fputs(", \"label\": ", f);
        json_str(f, m->label);
        fputs(", \"unit\": ", f);
        json_str(f, m->unit);
        fputs(", \"vbroker\": ", f);
        json_summary(f, &m->vb);
        if (m->peer.n) {
            fputs(", \"libvirt\": ", f);
            json_summary(f, &m->peer);
            fputs(", \"ratio_vbroker_over_libvirt\": ", f);
            json_num(f, has_ratio(m) ? summarize(&m->vb).med / summarize(&m->peer).med : NAN);
        }
        fprintf(f, ", \"failed\": %d, \"note\": ", m->failed);
        json_str(f, m->note);
        fprintf(f, "}%s\n", i + 1 < nmetrics ? "," : "");
    }
    fputs("  ]\n}\n", f);
    return fclose(f);
}

static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

/* Horizontal bars of the latency medians (µs, log scale), vbroker and libvirt. */
static int write_svg(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    const int left = 450, width = 460, bar = 12;
    int rows = 0;
    double lo = 1e300, hi = 0;
    for (size_t i = 0; i < nmetrics; i++) {
        metric *m = &metrics[i];
        if (strcmp(m->unit, "us") && strcmp(m->unit, "ms"))
            continue;
        double k = strcmp(m->unit, "ms") ? 1 : 1000;
        summary s = summarize(&m->vb), p = summarize(&m->peer);
        if (s.n && s.med > 0) {
            lo = fmin(lo, s.med * k);
            hi = fmax(hi, s.med * k);
        }
        if (p.n && p.med > 0) {
            lo = fmin(lo, p.med * k);
            hi = fmax(hi, p.med * k);
        }
        rows++;
    }
    if (!rows || hi <= 0) {
        fclose(f);
        return 0;
    }
    double l0 = floor(log10(lo)), l1 = ceil(log10(hi));
    if (l1 <= l0)
        l1 = l0 + 1;
    int rowh = peer_bin ? 2 * bar + 8 : bar + 8;
    int height = 70 + rows * rowh + 40;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n",
            left + width + 90, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">vbroker%s: medians "
               "(microseconds, log scale; shorter is faster)</text>\n",
            peer_bin ? " vs libvirt" : "");
    fprintf(f, "<text x=\"10\" y=\"38\" fill=\"#555\">");
    svg_text(f, cpu_model);
    fprintf(f, ", %ld CPUs, %s</text>\n", ncpu, kernel);
    fprintf(f, "<rect x=\"%d\" y=\"46\" width=\"10\" height=\"10\" fill=\"#3366cc\"/><text x=\"%d\" y=\"55\">vbroker</text>\n",
            left, left + 14);
    if (peer_bin)
        fprintf(f, "<rect x=\"%d\" y=\"46\" width=\"10\" height=\"10\" fill=\"#ee7722\"/><text x=\"%d\" y=\"55\">libvirt 9.0</text>\n",
                left + 80, left + 94);
    int y0 = 70;
    for (double d = l0; d <= l1; d++) {
        int x = left + (int)((d - l0) / (l1 - l0) * width);
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, y0 - 4, x,
                y0 + rows * rowh);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">%g</text>\n", x,
                y0 + rows * rowh + 14, pow(10, d));
    }
    int y = y0;
    for (size_t i = 0; i < nmetrics; i++) {
        metric *m = &metrics[i];
        if (strcmp(m->unit, "us") && strcmp(m->unit, "ms"))
            continue;
        double k = strcmp(m->unit, "ms") ? 1 : 1000;
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, y + bar - 2);
        svg_text(f, m->label);
        fputs("</text>\n", f);
        const samples *set[2] = { &m->vb, &m->peer };
        const char *color[2] = { "#3366cc", "#ee7722" };
        for (int j = 0; j < (peer_bin ? 2 : 1); j++) {
            summary s = summarize(set[j]);
            if (s.n && s.med > 0) {
                double v = s.med * k;
                int w = (int)((log10(v) - l0) / (l1 - l0) * width);
                if (w < 1)
                    w = 1;
                fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>", left,
                        y + j * bar, w, bar - 1, color[j]);
                fprintf(f, "<text x=\"%d\" y=\"%d\">%.0f</text>\n", left + w + 4, y + j * bar + bar - 2,
                        v);
            }
        }
        y += rowh;
    }
    fputs("</svg>\n", f);
    return fclose(f);
}

/* ---- main ---------------------------------------------------------------------------------------- */

/* The concurrency rows: cold (a full DIGEST-MD5 login each, cold broker)
 * and warm (the shared transport of the warm broker's holder). */
static void bench_conc_rows(void)
{
    fprintf(stderr, "bench_e2e: concurrency...\n");
    bench_conc_one(&bcold, uri_digest, 1, 16, "conc16_cold_digest",
                   "16 concurrent cold opens, DIGEST-MD5 TCP (wall)", conc_rounds, 1);
    bench_conc_one(&bcold, uri_digest, 1, 256, "conc256_cold_digest",
                   "256 concurrent cold opens, DIGEST-MD5 TCP (wall)", conc_rounds > 3 ? 3 : conc_rounds, 1);
    bench_conc_one(&bwarm, uri_digest, 1, 16, "conc16_shared", "16 concurrent warm opens, shared transport (wall)",
                   conc_rounds, 0);
    bench_conc_one(&bwarm, uri_digest, 1, 256, "conc256_shared",
                   "256 concurrent warm opens, shared transport (wall)", conc_rounds > 3 ? 3 : conc_rounds, 0);
}

int main(int argc, char **argv)
{
    long long t_main = now_ns();
    if (argc == 4 && strcmp(argv[1], "--child-open") == 0)
        return child_open(argv[2], atoi(argv[3]), t_main);
    if (argc == 5 && strcmp(argv[1], "--child-loop") == 0)
        return child_loop(argv[2], atoi(argv[3]), atoi(argv[4]) > 0 ? atoi(argv[4]) : 1);

    const char *json_path = "bench/results/latest.json", *svg_path = "bench/results/latest.svg";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
            json_path = argv[++i];
        else if (strcmp(argv[i], "--svg") == 0 && i + 1 < argc)
            svg_path = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--json PATH] [--svg PATH]\n", argv[0]);
            return 2;
        }
    }
    rounds = env_int("BENCH_ROUNDS", 20);
    rpc_calls = env_int("BENCH_RPC_CALLS", 2000);
    conc_rounds = env_int("BENCH_CONC_ROUNDS", 5);
    idle_clients = env_int("BENCH_IDLE_CLIENTS", 1000);
    sustain_s = env_int("BENCH_SUSTAIN_SECONDS", 5);
    sustain_threads = env_int("BENCH_SUSTAIN_THREADS", 4);
    steady_rounds = env_int("BENCH_STEADY_ROUNDS", 3);
    steady_opens = env_int("BENCH_STEADY_OPENS", 100);
    peer_bin = getenv("BENCH_PEER");
    if (peer_bin && !*peer_bin)
        peer_bin = NULL;
    peer_uri = getenv("BENCH_PEER_URI");
    peer_uri_none = getenv("BENCH_PEER_URI_NONE");
    peer_user = getenv("BENCH_PEER_USER") ? getenv("BENCH_PEER_USER") : USER;
    peer_pw = getenv("BENCH_PEER_PASSWORD") ? getenv("BENCH_PEER_PASSWORD") : PASSWORD;
    if (peer_bin && !peer_uri) {
        fprintf(stderr, "bench_e2e: BENCH_PEER needs BENCH_PEER_URI\n");
        return 2;
    }
    if (peer_uri_none && !*peer_uri_none)
        peer_uri_none = NULL;
    peer_uri_unix = getenv("BENCH_PEER_URI_UNIX");
    if (peer_uri_unix && !*peer_uri_unix)
        peer_uri_unix = NULL;
    peer_uri_none_unix = getenv("BENCH_PEER_URI_NONE_UNIX");
    if (peer_uri_none_unix && !*peer_uri_none_unix)
        peer_uri_none_unix = NULL;
    peer_idle_pid = (pid_t)env_int("BENCH_PEER_IDLE_PID", 0);
    tls_pki = getenv("BENCH_TLS_PKI");
    if (tls_pki && !*tls_pki)
        tls_pki = NULL;
    peer_uri_tls = peer_bin ? getenv("BENCH_PEER_URI_TLS") : NULL;
    if (peer_uri_tls && !*peer_uri_tls)
        peer_uri_tls = NULL;
    const char *only = getenv("BENCH_ONLY");
    int only_tls = only && strcmp(only, "tls") == 0;
    int only_conc = only && strcmp(only, "conc") == 0;
    int only_warm = only && strcmp(only, "warm") == 0;
    int only_steady = only && strcmp(only, "steady") == 0;
    perf_dir = getenv("BENCH_PERF");
    if (perf_dir && !*perf_dir)
        perf_dir = NULL;
    int only_nested = only && strcmp(only, "nested") == 0;
    const char *keep = getenv("BENCH_XEN_KEEP");
    if (keep && *keep) {
        snprintf(xen_keep, sizeof xen_keep, "xenapi_session_keep = %d\n", atoi(keep));
        xen_keep_s = keep;
    }
    if (only_tls && !tls_pki) {
        fprintf(stderr, "bench_e2e: BENCH_ONLY=tls needs BENCH_TLS_PKI\n");
        return 2;
    }

    ssize_t l = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (l <= 0)
        return 1;
    self_exe[l] = 0;
    if (getenv("BENCH_BUILD")) {
        snprintf(build_dir, sizeof build_dir, "%s", getenv("BENCH_BUILD"));
    } else { /* BUILD/bench/bench_e2e → BUILD */
        snprintf(build_dir, sizeof build_dir, "%s", self_exe);
        for (int k = 0; k < 2; k++) {
            char *slash = strrchr(build_dir, '/');
            if (slash)
                *slash = 0;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    machine();

    dir = vb_ts_tmpdir("bench");
    if (!dir)
        return 1;
    char sasl[400];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    mkdir(sasl, 0700);
    static const char *const users[] = { USER ":" PASSWORD, NULL };
    if (vb_ts_sasl_setup(sasl, "vbhostd", REALM, "digest-md5 scram-sha-256", users, NULL) < 0)
        return 1;
    xen_port = vb_ts_free_tcp_port();
    if (start_hostd(&hsasl, "hsasl", "[\"token\", \"sasl\"]", "[\"sasl\"]", 0) < 0 ||
        start_hostd(&hnone, "hnone", "[\"none\"]", "[\"none\"]", 0) < 0)
        return 1;
    snprintf(uri_digest, sizeof uri_digest, "test+tcp://127.0.0.1:%d/default?auth=sasl.DIGEST-MD5",
             hsasl.port);
    snprintf(uri_scram, sizeof uri_scram, "test+unix:///default?socket=%s&auth=sasl.SCRAM-SHA-256",
             hsasl.sock);
    snprintf(uri_token, sizeof uri_token, "test+unix:///default?socket=%s", hsasl.sock);
    snprintf(uri_none_tcp, sizeof uri_none_tcp, "test+tcp://127.0.0.1:%d/default?auth=none",
             hnone.port);
    snprintf(uri_none_unix, sizeof uri_none_unix, "test+unix:///default?socket=%s&auth=none",
             hnone.sock);

    snprintf(bcold.name, sizeof bcold.name, "bcold");
    memcpy(bcold.extra, (const char *[]){ "--secret-ttl", "0", "--upstream-idle", "0", NULL },
           5 * sizeof(char *));
    snprintf(btoken.name, sizeof btoken.name, "btoken");
    memcpy(btoken.extra, (const char *[]){ "--secret-ttl", "0", "--upstream-idle", "0", NULL },
           5 * sizeof(char *));
    snprintf(bwarm.name, sizeof bwarm.name, "bwarm");
    if (start_broker(&bcold) < 0 || start_broker(&btoken) < 0 || start_broker(&bwarm) < 0)
        return 1;
    setenv("VBROKER_NO_AUTOSTART", "1", 1);

    fprintf(stderr, "bench_e2e: daemons up in %s (vbhostd sasl :%d, none :%d)%s\n", dir,
            hsasl.port, hnone.port, peer_bin ? "; alternating with libvirt rounds" : "");

    if (tls_pki && tls_setup() < 0)
        return 1;
    if (only_tls) {
        fprintf(stderr, "bench_e2e: TLS rows only (%d x %d opens each)...\n", steady_rounds,
                steady_opens);
        if (bench_tls() < 0)
            fprintf(stderr, "bench_e2e: TLS token figures skipped\n");
        goto report;
    }
    if (only_conc) {
        use_broker(&bwarm);
        vb_error cerr = { 0 };
        if (!(holder = vb_open_auth(uri_digest, &form_auth, 0, &cerr))) {
            fprintf(stderr, "bench_e2e: open %s via the warm broker: %s\n", uri_digest,
                    cerr.message);
            return 1;
        }
        bench_conc_rows();
        vb_close(holder);
        M("steady_cold_digest_tcp", "steady: cold open, DIGEST-MD5 TCP", "us");
        use_broker(&bcold); /* as in the full run: a full login each open */
        bench_steady("steady_cold_digest_tcp", uri_digest, 1, peer_uri);
        goto report;
    }
    steady_metrics();
    if (only_nested)
        goto shared;
    if (only_warm)
        goto warm;
    if (!only_steady) {
        fprintf(stderr, "bench_e2e: cold opens...\n");
        bench_cold();
    }
    use_broker(&bcold);
    fprintf(stderr, "bench_e2e: steady state, cold opens (%d x %d each)...\n", steady_rounds,
            steady_opens);
    bench_steady("steady_cold_digest_tcp", uri_digest, 1, peer_uri);
    bench_steady("steady_cold_scram_unix", uri_scram, 1, NULL);
    bench_steady("steady_cold_none_tcp", uri_none_tcp, 0, peer_uri_none);
    bench_steady("steady_cold_none_unix", uri_none_unix, 0, peer_uri_none_unix);
warm:
    fprintf(stderr, "bench_e2e: token opens...\n");
    if (bench_token() < 0)
        fprintf(stderr, "bench_e2e: token figures skipped\n");

shared:; /* a live shared transport in bwarm */
    use_broker(&bwarm);
    vb_error err = { 0 };
    holder = vb_open_auth(uri_digest, &form_auth, 0, &err);
    if (!holder) {
        fprintf(stderr, "bench_e2e: open %s via the warm broker: %s\n", uri_digest, err.message);
        return 1;
    }
    fprintf(stderr, "bench_e2e: warm opens...\n");
    bench_warm_shared();
    if (only_steady) {
        vb_close(holder);
        goto report;
    }
    if (!only_warm) {
        fprintf(stderr, "bench_e2e: nested chain to the XenAPI simulator...\n");
        bench_nested();
    }
    if (only_nested) {
        vb_close(holder);
        goto report;
    }

    fprintf(stderr, "bench_e2e: RPC round trips...\n");
    bench_rpc();
    if (only_warm) {
        fprintf(stderr, "bench_e2e: %d idle clients...\n", idle_clients);
        bench_idle();
        vb_close(holder);
        goto report;
    }

    bench_conc_rows();

    fprintf(stderr, "bench_e2e: %d idle clients...\n", idle_clients);
    bench_idle();

    fprintf(stderr, "bench_e2e: sustained opens (%d s each)...\n", sustain_s);
    bench_sustain(&bwarm, "sustain_shared", "sustained opens/s, shared transport");
    bench_sustain(&bcold, "sustain_cold", "sustained opens/s, full DIGEST-MD5 login each");
    vb_close(holder);
    if (tls_pki) {
        fprintf(stderr, "bench_e2e: TLS rows...\n");
        if (bench_tls() < 0)
            fprintf(stderr, "bench_e2e: TLS token figures skipped\n");
    }

report:
    if (failures_cold)
        note(M("cold_digest_tcp_process", "", "us"), "; %d cold opens FAILED", failures_cold);
    if (failures_peer)
        note(M("cold_digest_tcp_process", "", "us"), "; %d libvirt runs FAILED", failures_peer);

    print_table();
    if (write_json(json_path) != 0)
        fprintf(stderr, "bench_e2e: cannot write %s: %s\n", json_path, strerror(errno));
    else
        printf("\njson: %s\n", json_path);
    if (write_svg(svg_path) != 0)
        fprintf(stderr, "bench_e2e: cannot write %s: %s\n", svg_path, strerror(errno));
    else
        printf("svg:  %s\n", svg_path);
    fflush(stdout);
    stop_broker(&bcold);
    stop_broker(&btoken);
    stop_broker(&bwarm);
    stop_broker(&btls);
    stop_broker(&btls_full);
    if (htls.pid > 0)
        vb_ts_stop(htls.pid, 3000);
    vb_ts_stop(hsasl.pid, 3000);
    vb_ts_stop(hnone.pid, 3000);
    if (xensim_pid > 0)
        vb_ts_stop(xensim_pid, 3000);
    vb_ts_cleanup();
    return 0;
}
