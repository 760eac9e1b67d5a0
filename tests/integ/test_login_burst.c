/* A burst of cold opens through one broker to one vbhostd (issue 18, item 5).
 *
 * Sixteen programs of one user start at once and open the same host; the
 * broker has nothing cached, so each is a full SASL login. vbhostd admits
 * at most max_anonymous_per_peer (default 5) unauthenticated connections
 * from one address and evicts the idlest for a newer one; the broker is that
 * one address for all of them. Before the login gate, about half of such a
 * burst failed with "too many unauthenticated clients". vbhostd runs with
 * its default limits here, as a user's does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "burst-Pw-18"
#define BURST 16

static char *dir;
static vb_ts_hostd hostd;
static vb_ts_broker broker;
static char uri_tcp[300];

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("burst");
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    static const char *const cold[] = { "--secret-ttl", "0", "--upstream-idle", "0", NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "digest-md5", users, NULL) < 0 ||
        vb_ts_hostd_start_sasl(&hostd, dir, "h", 1, REALM, "auth_tcp = [\"sasl\"]\n") < 0 ||
        vb_ts_broker_start(&broker, dir, "b", cold) < 0)
        return -1;
    vb_ts_broker_use(&broker);
    snprintf(uri_tcp, sizeof uri_tcp, "test+tcp://127.0.0.1:%d/default?auth=sasl.DIGEST-MD5",
             hostd.port);
    return 0;
}

static int group_teardown(void **state)
{
    return vb_ts_group_teardown(state);
}

typedef struct burst {
    pthread_barrier_t go;
    pthread_mutex_t lock;
    int opened, failed;
    char first_error[512];
} burst;

static void *open_one(void *arg)
{
    burst *b = arg;
    vb_ts_form form = { "alice", PASSWORD, 0 };
    vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &form };
    vb_error err = { 0 };
    pthread_barrier_wait(&b->go);
    vb_conn *c = vb_open_auth(uri_tcp, &auth, 0, &err);
    pthread_mutex_lock(&b->lock);
    if (c) {
        b->opened++;
    } else if (b->failed++ == 0) {
        snprintf(b->first_error, sizeof b->first_error, "%s", err.message);
    }
    pthread_mutex_unlock(&b->lock);
    if (c)
        vb_close(c);
    return NULL;
}

static void burst_of_cold_opens_all_succeed(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        burst b = { .opened = 0 };
        pthread_barrier_init(&b.go, NULL, BURST);
        pthread_mutex_init(&b.lock, NULL);
        pthread_t th[BURST];
        for (int i = 0; i < BURST; i++)
            assert_int_equal(pthread_create(&th[i], NULL, open_one, &b), 0);
        for (int i = 0; i < BURST; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&b.go);
        pthread_mutex_destroy(&b.lock);
        if (b.failed)
            fprintf(stderr, "round %d: %d of %d opens failed; first: %s\n", round, b.failed,
                    BURST, b.first_error);
        assert_int_equal(b.failed, 0);
        assert_int_equal(b.opened, BURST);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_of_cold_opens_all_succeed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
