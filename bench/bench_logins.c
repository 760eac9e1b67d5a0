/*
 * bench_logins — full DIGEST-MD5 logins over TCP against a real vbhostd:
 * what its memory does after many, and how many it takes at once.
 *
 *   bench_logins [N] [K]   N sequential logins per layer (default 2000),
 *                          then K at once, 8 rounds (default 16)
 *
 * This process is the client (the remote driver, as in vbrokerd). Two
 * vbhostd run side by side, one offering DIGEST-MD5's 3DES layer (the
 * default, sasl_digest_3des = 1) and one not (0: the client takes RC4, as
 * before it); their rounds alternate. Printed per layer: ms per login (both
 * ends), vbhostd's VmRSS before and after and the growth per login, and its
 * CPU per login (/proc/PID/stat). The concurrent rows: wall time for K
 * logins started together, and vbhostd's CPU over it (with SASL steps off
 * its event loop, more than one core can run them).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vb_remote.h"
#include "vb_testsupport.h"
#include "vb_uri.h"

#define REALM "BENCH.TEST"
#define PASSWORD "logins-Pw-9"

static const int cred_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE, VB_CRED_REALM };

static int answer(vb_cred_request *req, void *opaque, vb_error *err)
{
    (void)opaque;
    (void)err;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        const char *v = it->type == VB_CRED_PASSPHRASE ? PASSWORD
                        : it->type == VB_CRED_AUTHNAME ? "alice"
                                                       : NULL;
        if (v)
            vb_cred_item_set_result(it, v, strlen(v));
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* utime + stime of pid, ms */
static double cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1e3 / (double)sysconf(_SC_CLK_TCK);
}

typedef struct side {
    const char *label;
    vb_ts_hostd h;
    char uri[300];
    unsigned ssf;
} side;

/* One login and logout; the layer's ssf, or -1. */
static int login(side *s)
{
    vb_uri uri;
    vb_error err;
    vb_remote *r = NULL;
    if (vb_uri_parse(s->uri, &uri, &err) < 0)
        return -1;
    vb_remote_opts opts = { .creds = { .fn = answer, .types = cred_types, .ntypes = 3 },
                            .timeout_ms = 60000 };
    int rc = vb_remote_connect(&uri, &opts, &r, &err);
    vb_uri_clear(&uri);
    if (rc < 0) {
        fprintf(stderr, "bench_logins: %s: %s\n", s->label, err.message);
        return -1;
    }
    int ssf = (int)vb_remote_ssf(r);
    vb_remote_free(r);
    return ssf;
}

static void *login_thread(void *arg)
{
    return login(arg) < 0 ? (void *)1 : NULL;
}

/* K logins started at once: wall ms, or -1 */
static double concurrent(side *s, int k)
{
    pthread_t th[256];
    double t0 = now_ms();
    int failed = 0;
    for (int i = 0; i < k; i++)
        if (pthread_create(&th[i], NULL, login_thread, s) != 0)
            return -1;
    for (int i = 0; i < k; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        failed |= rv != NULL;
    }
    return failed ? -1 : now_ms() - t0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int k = argc > 2 ? atoi(argv[2]) : 16;
    if (n < 10)
        n = 10;
    if (k < 1 || k > 256)
        k = 16;
    char *dir = vb_ts_tmpdir("bench-logins");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    side sides[2] = { { .label = "3DES (sasl_digest_3des = 1)" },
                      { .label = "RC4  (sasl_digest_3des = 0)" } };
    /* many logins from one address at once: no eviction of the anonymous */
    const char *common = "auth_tcp = [\"sasl\"]\nmax_anonymous_per_peer = 1000\n"
                         "max_anonymous_clients = 1000\nlog_level = \"warn\"\n";
    if (!dir || vb_ts_hostd_sasl_setup(dir, REALM, "digest-md5", users, NULL) < 0 ||
        vb_ts_hostd_start_sasl(&sides[0].h, dir, "des", 1, REALM, "%ssasl_digest_3des = 1\n",
                               common) < 0 ||
        vb_ts_hostd_start_sasl(&sides[1].h, dir, "rc4", 1, REALM, "%ssasl_digest_3des = 0\n",
                               common) < 0) {
        fprintf(stderr, "bench_logins: cannot start vbhostd\n");
        vb_ts_cleanup();
        return 1;
    }
    for (int i = 0; i < 2; i++)
        snprintf(sides[i].uri, sizeof sides[i].uri,
                 "test+tcp://127.0.0.1:%d/default?auth=sasl.DIGEST-MD5", sides[i].h.port);
    printf("DIGEST-MD5 logins over TCP to vbhostd (this process is the client)\n\n");
    int failed = 0;
    long rss0[2], rss1[2];
    double ms[2] = { 0, 0 }, cpu[2] = { 0, 0 };
    for (int i = 0; i < 2; i++) {
        int ssf = login(&sides[i]); /* warm-up: plugins, first allocations */
        failed |= ssf < 0;
        sides[i].ssf = (unsigned)ssf;
        rss0[i] = vb_ts_rss_kib(sides[i].h.pid);
    }
    /* alternate in rounds of 100, so both see the same machine load */
    for (int done = 0; !failed && done < n; done += 100) {
        for (int i = 0; i < 2 && !failed; i++) {
            double c0 = cpu_ms(sides[i].h.pid), t0 = now_ms();
            for (int j = 0; j < 100 && done + j < n && !failed; j++)
                failed |= login(&sides[i]) < 0;
            ms[i] += now_ms() - t0;
            cpu[i] += cpu_ms(sides[i].h.pid) - c0;
        }
    }
    printf("%-30s %4s %9s %12s %12s %10s %11s\n", "layer", "ssf", "ms/login", "RSS before",
           "RSS after", "B/login", "CPU ms/login");
    for (int i = 0; i < 2 && !failed; i++) {
        rss1[i] = vb_ts_rss_kib(sides[i].h.pid);
        printf("%-30s %4u %9.3f %9ld KiB %9ld KiB %10.1f %11.3f\n", sides[i].label, sides[i].ssf,
               ms[i] / n, rss0[i], rss1[i], (double)(rss1[i] - rss0[i]) * 1024 / n, cpu[i] / n);
    }
    printf("(%d logins each; vbhostd's VmRSS)\n\n", n);
    printf("%d logins at once, 8 rounds each (alternating): wall ms, vbhostd CPU ms per round\n",
           k);
    double wall[2][8], c[2] = { 0, 0 };
    for (int round = 0; round < 8 && !failed; round++)
        for (int i = 0; i < 2 && !failed; i++) {
            double c0 = cpu_ms(sides[i].h.pid);
            wall[i][round] = concurrent(&sides[i], k);
            c[i] += cpu_ms(sides[i].h.pid) - c0;
            failed |= wall[i][round] < 0;
        }
    for (int i = 0; i < 2 && !failed; i++) {
        double *w = wall[i];
        for (int a = 0; a < 8; a++) /* median of 8 */
            for (int b = a + 1; b < 8; b++)
                if (w[b] < w[a]) {
                    double t = w[a];
                    w[a] = w[b];
                    w[b] = t;
                }
        printf("%-30s wall %8.1f ms median (min %.1f, max %.1f)  vbhostd CPU %7.1f ms\n",
               sides[i].label, (w[3] + w[4]) / 2, w[0], w[7], c[i] / 8);
    }
    for (int i = 0; i < 2; i++)
        vb_ts_stop(sides[i].h.pid, 5000);
    vb_ts_cleanup();
    return failed;
}
