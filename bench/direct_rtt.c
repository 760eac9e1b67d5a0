/* direct_rtt — a helper of bench_e2e: a client of vbhostd WITHOUT the broker
 * (the project's own remote client, hvdrivers/vb_remote.h), so the harness can
 * tell the broker hop apart from the host daemon.
 *
 *   direct_rtt URI USER PASSWORD N
 *
 * Connects (full login per the URI's auth=), opens, then N × GET_HOSTNAME and
 * N × LIST_DOMAINS, and prints three lines of nanoseconds:
 *   open NS
 *   hostname NS NS ...
 *   list NS NS ...
 * Exit 0, or 1 with a message on stderr. Not run by bench/run.sh on its own
 * (its name does not start with bench_). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vb_remote.h"

typedef struct answers {
    const char *user, *password;
} answers;

static int answer_cb(vb_cred_request *req, void *opaque, vb_error *err)
{
    (void)err;
    const answers *a = opaque;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        const char *v = it->type == VB_CRED_AUTHNAME || it->type == VB_CRED_USERNAME ? a->user
                        : it->type == VB_CRED_PASSPHRASE                          ? a->password
                                                                                  : NULL;
        if (v)
            vb_cred_item_set_result(it, v, strlen(v));
    }
    return 0;
}

static const int cred_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: direct_rtt URI USER PASSWORD N\n");
        return 2;
    }
    int n = atoi(argv[4]);
    if (n < 1)
        n = 1;
    answers a = { argv[2], argv[3] };
    vb_error err = { 0 };
    vb_uri uri;
    if (vb_uri_parse(argv[1], &uri, &err) < 0) {
        fprintf(stderr, "direct_rtt: %s\n", err.message);
        return 1;
    }
    vb_remote_opts opts = { .creds = { .fn = answer_cb, .opaque = &a, .types = cred_types,
                                       .ntypes = 2 },
                            .timeout_ms = 30000 };
    vb_remote *r = NULL;
    long long t0 = now_ns();
    if (vb_remote_connect(&uri, &opts, &r, &err) < 0 || vb_remote_open(r, NULL, 0, &err) < 0) {
        fprintf(stderr, "direct_rtt: connect/open %s: %s\n", argv[1], err.message);
        vb_uri_clear(&uri);
        vb_remote_free(r);
        return 1;
    }
    long long t1 = now_ns();
    vb_uri_clear(&uri);
    printf("open %lld\n", t1 - t0);

    long long *hs = calloc((size_t)n, sizeof *hs), *ls = calloc((size_t)n, sizeof *ls);
    if (!hs || !ls)
        return 1;
    for (int i = 0; i < n; i++) {
        char *h = NULL;
        long long s = now_ns();
        if (vb_remote_get_hostname(r, &h, &err) < 0) {
            fprintf(stderr, "direct_rtt: hostname: %s\n", err.message);
            return 1;
        }
        hs[i] = now_ns() - s;
        free(h);
    }
    for (int i = 0; i < n; i++) {
        vb_domain_info *d = NULL;
        size_t nd = 0;
        long long s = now_ns();
        if (vb_remote_list_domains(r, &d, &nd, &err) < 0) {
            fprintf(stderr, "direct_rtt: list: %s\n", err.message);
            return 1;
        }
        ls[i] = now_ns() - s;
        free(d);
    }
    fputs("hostname", stdout);
    for (int i = 0; i < n; i++)
        printf(" %lld", hs[i]);
    fputs("\nlist", stdout);
    for (int i = 0; i < n; i++)
        printf(" %lld", ls[i]);
    fputs("\n", stdout);
    vb_remote_close_driver(r, NULL);
    vb_remote_free(r);
    free(hs);
    free(ls);
    return 0;
}
