/* bench_libvirt — the libvirt side of `make bench-peer` (libvirt's public API,
 * linked with -lvirt; built only by bench-peer). bench_e2e runs it between its
 * own rounds so machine drift hits both.
 *
 *   bench_libvirt open URI USER PASSWORD     one virConnectOpenAuth + close;
 *                                            prints the in-process ns
 *   bench_libvirt steady URI USER PASSWORD N  in this one process: one untimed
 *                                            open+close, then N timed ones;
 *                                            prints "open NS NS ..." (the
 *                                            steady state of a long-lived app)
 *   bench_libvirt rtt URI USER PASSWORD N    open, N x virConnectGetHostname;
 *                                            prints "hostname NS NS ..."
 *   bench_libvirt conc URI USER PASSWORD N   N threads open at once; prints
 *                                            "WALL_NS FAILURES"
 *   bench_libvirt idle URI USER PASSWORD N   holds 1 connection and prints
 *                                            "base"; after a line on stdin opens
 *                                            N more one by one, prints "open NS
 *                                            NS ..." and "held OK FAILED", and
 *                                            holds them all until stdin's EOF
 *   bench_libvirt sustain URI USER PASSWORD THREADS SECONDS
 *                                            THREADS threads loop open+close
 *                                            for SECONDS; prints "OPENS FAILED
 *                                            ELAPSED_NS"
 *
 * Real pthread mutexes go into Cyrus SASL first (sasl_set_mutex): without
 * them concurrent DIGEST-MD5 logins crash the stock client (PEERS.md). */
#include <errno.h>
#include <pthread.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static const char *user, *password;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int auth_cb(virConnectCredentialPtr cred, unsigned int ncred, void *data)
{
    (void)data;
    for (unsigned i = 0; i < ncred; i++) {
        const char *v = cred[i].type == VIR_CRED_AUTHNAME     ? user
                        : cred[i].type == VIR_CRED_PASSPHRASE ? password
                                                              : NULL;
        if (!v) {
            if (!cred[i].defresult)
                return -1;
            v = cred[i].defresult;
        }
        cred[i].result = strdup(v);
        cred[i].resultlen = (unsigned)strlen(v);
    }
    return 0;
}

static int cred_types[] = { VIR_CRED_AUTHNAME, VIR_CRED_PASSPHRASE };
static virConnectAuth auth = { cred_types, 2, auth_cb, NULL };

static void *m_alloc(void) {
    pthread_mutex_t *m = malloc(sizeof *m);
    if (m)
        pthread_mutex_init(m, NULL);
    return m;
}
static int m_lock(void *m) { return pthread_mutex_lock(m); }
static int m_unlock(void *m) { return pthread_mutex_unlock(m); }
static void m_free(void *m) { pthread_mutex_destroy(m); free(m); }

static void quiet(void *data, virErrorPtr err) { (void)data; (void)err; }

typedef struct conc {
    const char *uri;
    pthread_barrier_t start, opened;
    long long *done;
    int failures;
    pthread_mutex_t lock;
} conc;
typedef struct conc_arg { conc *c; int idx; } conc_arg;

static void *conc_thread(void *p)
{
    conc_arg *a = p;
    conc *c = a->c;
    pthread_barrier_wait(&c->start);
    virConnectPtr conn = virConnectOpenAuth(c->uri, &auth, 0);
    c->done[a->idx] = now_ns();
    if (!conn) {
        pthread_mutex_lock(&c->lock);
        if (!c->failures++) {
            virErrorPtr e = virGetLastError();
            fprintf(stderr, "bench_libvirt: %s\n", e && e->message ? e->message : "open failed");
        }
        pthread_mutex_unlock(&c->lock);
    }
    pthread_barrier_wait(&c->opened);
    if (conn)
        virConnectClose(conn);
    return NULL;
}

static void report_error(const char *what, const char *uri)
{
    virErrorPtr e = virGetLastError();
    fprintf(stderr, "bench_libvirt: %s %s: %s\n", what, uri, e && e->message ? e->message : "?");
}

/* Read stdin until a newline (go = 1) or EOF (go = 0); the harness's only
 * way to say "now" and "done" without signals. */
static void wait_stdin(int want_newline)
{
    char ch;
    ssize_t r;
    while ((r = read(0, &ch, 1)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0 && want_newline && ch == '\n')
            return;
}

/* idle: libvirtd's memory per held client. The base connection is open
 * before the harness reads libvirtd's RSS, so the first client's one-time
 * costs (worker threads, the test driver's default connection) are outside
 * the difference. */
static int run_idle(const char *uri, int n)
{
    struct rlimit rl; /* ~3 fds per libvirt connection (socket + wakeup pipe) */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    virInitialize();
    virConnectPtr base = virConnectOpenAuth(uri, &auth, 0);
    if (!base) {
        report_error("open", uri);
        return 1;
    }
    printf("base\n");
    fflush(stdout);
    wait_stdin(1);
    virConnectPtr *held = calloc((size_t)n, sizeof *held);
    long long *ns = calloc((size_t)n, sizeof *ns);
    if (!held || !ns)
        return 1;
    int ok = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        long long t0 = now_ns();
        held[i] = virConnectOpenAuth(uri, &auth, 0);
        ns[i] = now_ns() - t0;
        if (held[i])
            ok++;
        else if (!failed++)
            report_error("idle open", uri);
    }
    fputs("open", stdout);
    for (int i = 0; i < n; i++)
        if (held[i])
            printf(" %lld", ns[i]);
    printf("\nheld %d %d\n", ok, failed);
    fflush(stdout);
    wait_stdin(0);
    for (int i = 0; i < n; i++)
        if (held[i])
            virConnectClose(held[i]);
    virConnectClose(base);
    free(held);
    free(ns);
    return 0;
}

/* steady: what an application that opens again and again pays per open, once
 * Cyrus has loaded its plugins and libvirt has set itself up (the first,
 * untimed open). libvirt keeps nothing between opens: each is a new
 * connection with a full login. */
static int run_steady(const char *uri, int n)
{
    virInitialize();
    virConnectPtr c = virConnectOpenAuth(uri, &auth, 0);
    if (!c) {
        report_error("steady warm-up open", uri);
        return 1;
    }
    virConnectClose(c);
    long long *ns = calloc((size_t)n, sizeof *ns);
    if (!ns)
        return 1;
    for (int i = 0; i < n; i++) {
        long long t0 = now_ns();
        c = virConnectOpenAuth(uri, &auth, 0);
        if (!c) {
            report_error("steady open", uri);
            free(ns);
            return 1;
        }
        virConnectClose(c);
        ns[i] = now_ns() - t0;
    }
    fputs("open", stdout);
    for (int i = 0; i < n; i++)
        printf(" %lld", ns[i]);
    fputs("\n", stdout);
    free(ns);
    return 0;
}

typedef struct sustain {
    const char *uri;
    long long until;
    long opens, failures;
    pthread_mutex_t lock;
} sustain;

static void *sustain_thread(void *p)
{
    sustain *s = p;
    long ok = 0, bad = 0;
    while (now_ns() < s->until) {
        virConnectPtr c = virConnectOpenAuth(s->uri, &auth, 0);
        if (c) {
            virConnectClose(c);
            ok++;
        } else if (!bad++) {
            report_error("sustain open", s->uri);
        }
    }
    pthread_mutex_lock(&s->lock);
    s->opens += ok;
    s->failures += bad;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* sustain: a full login per open (libvirt keeps nothing between opens). */
static int run_sustain(const char *uri, int threads, int seconds)
{
    sustain s = { .uri = uri };
    pthread_mutex_init(&s.lock, NULL);
    pthread_t th[64];
    if (threads > 64)
        threads = 64;
    virInitialize();
    long long t0 = now_ns();
    s.until = t0 + (long long)seconds * 1000000000LL;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&th[i], NULL, sustain_thread, &s) != 0)
            return 1;
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    printf("%ld %ld %lld\n", s.opens, s.failures, now_ns() - t0);
    pthread_mutex_destroy(&s.lock);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_libvirt open|steady|rtt|conc|idle URI USER PASSWORD [N]\n"
                        "       bench_libvirt sustain URI USER PASSWORD THREADS SECONDS\n");
        return 2;
    }
    const char *mode = argv[1], *uri = argv[2];
    user = argv[3];
    password = argv[4];
    int n = argc > 5 ? atoi(argv[5]) : 1;
    if (n < 1)
        n = 1;
    sasl_set_mutex(m_alloc, m_lock, m_unlock, m_free);
    virSetErrorFunc(NULL, quiet);

    if (strcmp(mode, "open") == 0) {
        /* libvirt's one-time init outside the clock (as vbroker has none in
         * the client); SASL's plugin loading stays inside: it is part of
         * libvirt's first login in a process */
        virInitialize();
        long long t0 = now_ns();
        virConnectPtr c = virConnectOpenAuth(uri, &auth, 0);
        if (!c) {
            virErrorPtr e = virGetLastError();
            fprintf(stderr, "bench_libvirt: open %s: %s\n", uri, e && e->message ? e->message : "?");
            return 1;
        }
        virConnectClose(c);
        printf("%lld\n", now_ns() - t0);
        return 0;
    }
    if (strcmp(mode, "rtt") == 0) {
        virConnectPtr c = virConnectOpenAuth(uri, &auth, 0);
        if (!c) {
            virErrorPtr e = virGetLastError();
            fprintf(stderr, "bench_libvirt: open %s: %s\n", uri, e && e->message ? e->message : "?");
            return 1;
        }
        for (int i = 0; i < 20; i++) /* warm-up */
            free(virConnectGetHostname(c));
        long long *s = calloc((size_t)n, sizeof *s);
        for (int i = 0; i < n; i++) {
            long long t0 = now_ns();
            char *h = virConnectGetHostname(c);
            s[i] = now_ns() - t0;
            if (!h)
                return 1;
            free(h);
        }
        fputs("hostname", stdout);
        for (int i = 0; i < n; i++)
            printf(" %lld", s[i]);
        fputs("\n", stdout);
        virConnectClose(c);
        free(s);
        return 0;
    }
    if (strcmp(mode, "idle") == 0)
        return run_idle(uri, n);
    if (strcmp(mode, "steady") == 0)
        return run_steady(uri, n);
    if (strcmp(mode, "sustain") == 0)
        return run_sustain(uri, n, argc > 6 && atoi(argv[6]) > 0 ? atoi(argv[6]) : 5);
    if (strcmp(mode, "conc") == 0) {
        conc c = { .uri = uri };
        pthread_barrier_init(&c.start, NULL, (unsigned)n + 1);
        pthread_barrier_init(&c.opened, NULL, (unsigned)n);
        pthread_mutex_init(&c.lock, NULL);
        c.done = calloc((size_t)n, sizeof *c.done);
        pthread_t *th = calloc((size_t)n, sizeof *th);
        conc_arg *args = calloc((size_t)n, sizeof *args);
        /* libvirt initialises itself once per process: do it before the clock */
        virInitialize();
        for (int i = 0; i < n; i++) {
            args[i] = (conc_arg){ &c, i };
            if (pthread_create(&th[i], NULL, conc_thread, &args[i]) != 0)
                return 1;
        }
        pthread_barrier_wait(&c.start);
        long long t0 = now_ns(), last = t0;
        for (int i = 0; i < n; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < n; i++)
            if (c.done[i] > last)
                last = c.done[i];
        printf("%lld %d\n", last - t0, c.failures);
        return 0;
    }
    fprintf(stderr, "bench_libvirt: unknown mode %s\n", mode);
    return 2;
}
