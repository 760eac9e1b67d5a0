/* A shared host connection does not share its stalls (issue 17 item 4).
 *
 *   app A ─┐                         ┌─ OPEN xenapi (name=): XenAPI login, A's prompt
 *          ├─ libvbroker ─ vbrokerd ─┤  one transport to vbhostd (peer)
 *   app B ─┘                         └─ OPEN test:///default
 *
 * Two programs of one user open the same host through the same broker: A a
 * XenAPI host behind vbhostd (the simulator), whose login asks A's person;
 * B the host's test driver. A's person takes 5 s to answer (the callback
 * blocks until the test releases it, or 5 s pass); meanwhile B's open, list
 * and list must complete in well under a second, on the same transport as
 * A's OPEN (one login, two hypervisor connections), and A's login must still
 * succeed afterwards. With the remote driver holding its upstream's lock
 * across OPEN, B waited for A's person (5 s). Processes are stopped by pid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vb_calls.h"
#include "vb_testsupport.h"
#include "vb_testsupport_form.h"
#include "vbroker.h"

#define XEN_PASSWORD "xen-Stall-pw-41"
#define SASL_PASSWORD "sasl-Stall-pw-17"
#define REALM "STALL.TEST"
#define PROMPT_HOLD_MS 5000

static char *dir;
static vb_ts_hostd hostd, hostd_tls;
static char pki[400]; /* the client's pkipath: the test CA */
static vb_ts_broker broker;
static int xen_port;

/* A second vbhostd on a TLS listener (SCRAM-SHA-256-PLUS over TLS: no SASL
 * layer, the OpenSSL session is the one codec), with a throwaway CA. */
static int start_tls_hostd(const char *sasl)
{
    vb_ts_pki ca, server;
    if (vb_ts_pki_ca(dir, "ca", "/O=vbroker tests/CN=stall CA", &ca) < 0 ||
        vb_ts_pki_issue(dir, "server", &ca, "/O=vbroker tests/CN=vbhostd", "IP:127.0.0.1", -3600,
                        86400, 2, &server) < 0 ||
        vb_ts_pki_dir(pki, dir, "client-pki", &ca, NULL) < 0)
        return -1;
    return vb_ts_hostd_start_tls(&hostd_tls, dir, "ht",
                                 "auth_tls = [\"sasl\"]\ncert_file = \"%s\"\nkey_file = \"%s\"\n"
                                 "ca_file = \"%s\"\nsasl_conf_dir = \"%s\"\n"
                                 "sasl_realm = \"" REALM "\"\nallowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n",
                                 server.cert, server.key, ca.cert, sasl, xen_port);
}

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(XEN_PASSWORD);
    vb_ts_note_secret(SASL_PASSWORD);
    dir = vb_ts_tmpdir("stall");
    xen_port = vb_ts_free_tcp_port();
    char sasl[300];
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    static const char *const users[] = { "alice:" SASL_PASSWORD, NULL };
    /* peer on the unix socket; on TCP, SASL DIGEST-MD5 with a security layer;
     * on TLS, SCRAM-SHA-256-PLUS */
    if (!dir || mkdir(sasl, 0700) < 0 ||
        vb_ts_sasl_setup(sasl, "vbhostd", REALM, "digest-md5 scram-sha-256", users, NULL) < 0 ||
        vb_ts_xensim_start(dir, xen_port, "root:" XEN_PASSWORD "\n") < 0 ||
        vb_ts_hostd_start(&hostd, dir, "h", 1,
                          "auth_unix = [\"peer\"]\nauth_tcp = [\"sasl\"]\n"
                          "sasl_conf_dir = \"%s\"\nsasl_realm = \"" REALM "\"\n"
                          "allowed_xenapi_hosts = [\"127.0.0.1:%d\"]\n",
                          sasl, xen_port) < 0 ||
        start_tls_hostd(sasl) < 0 ||
        vb_ts_broker_start(&broker, dir, "broker", NULL) < 0)
        return -1;
    vb_ts_broker_use(&broker);
    return 0;
}

/* A's person: says it was asked, then answers only once the test lets it
 * (after B is done) or PROMPT_HOLD_MS have passed. */
typedef struct person {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int asked, released, answered;
    int open_rc;
    vb_error err;
    vb_ts_form form;   /* what the person types for XenAPI, once it does */
    const char *uri;   /* what A opens */
} person;

static int slow_person_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    person *p = data;
    if (!req->kind || strcmp(req->kind, "xenapi") != 0) { /* vbhostd's own login: at once */
        vb_ts_form login = { "alice", SASL_PASSWORD, 0 };
        return vb_ts_form_cb(req, creds, n, &login);
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += PROMPT_HOLD_MS / 1000;
    pthread_mutex_lock(&p->lock);
    p->asked++;
    pthread_cond_broadcast(&p->cond);
    while (!p->released && pthread_cond_timedwait(&p->cond, &p->lock, &until) == 0)
        ;
    p->answered++;
    pthread_mutex_unlock(&p->lock);
    return vb_ts_form_cb(req, creds, n, &p->form);
}

/* client A: the XenAPI host behind vbhostd, over the unix socket */
static void *client_a(void *arg)
{
    person *p = arg;
    vb_auth auth = { vb_ts_form_types, 2, slow_person_cb, p };
    vb_conn *c = vb_open_auth(p->uri, &auth, 0, &p->err);
    p->open_rc = c ? 0 : -1;
    if (c)
        vb_close(c);
    return NULL;
}

static int was_asked(void *arg)
{
    person *p = arg;
    pthread_mutex_lock(&p->lock);
    int asked = p->asked > 0;
    pthread_mutex_unlock(&p->lock);
    return asked;
}

static void release(person *p)
{
    pthread_mutex_lock(&p->lock);
    p->released = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* The broker's connections to endpoint: how many, and the opens on the first. */
static size_t transports_to(const char *endpoint, unsigned *opens)
{
    vb_broker_status st;
    vb_error err;
    size_t n = 0;
    *opens = 0;
    if (vb_broker_get_status(&st, &err) < 0)
        fail_msg("status: %s", err.message);
    for (size_t i = 0; i < st.nhosts; i++)
        if (strcmp(st.hosts[i].endpoint, endpoint) == 0 && n++ == 0)
            *opens = st.hosts[i].opens;
    vb_broker_status_clear(&st);
    return n;
}

/* A's URI opens the XenAPI host behind hostd, B's the test driver of the
 * same hostd, the same way; endpoint is where both go. */
static void run_scenario(const char *a_uri, const char *b_uri, const char *endpoint)
{
    person p = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, -1, { 0 },
                 { "root", XEN_PASSWORD, 0 }, a_uri };
    pthread_t a;
    assert_int_equal(pthread_create(&a, NULL, client_a, &p), 0);
    /* A's OPEN is now waiting for A's person, on the broker's shared transport */
    if (vb_ts_wait_until(was_asked, &p, vb_ts_scaled_ms(15000)) < 0) {
        release(&p);
        pthread_join(a, NULL);
        fail_msg("A's person was never asked: %s", p.err.message);
    }
    uint64_t t0 = vb_calls_now_ms();
    vb_error err;
    vb_conn *b = vb_open_auth(b_uri, NULL, 0, &err);
    vb_domain *doms = NULL;
    size_t n = 0;
    int list_rc = b ? vb_list_domains(b, &doms, &n, &err) : -1;
    uint64_t took = vb_calls_now_ms() - t0;
    /* A and B on one transport (vbhostd says "concurrent_calls"): each its own
     * hypervisor connection, one login */
    unsigned opens = 0;
    size_t transports = b ? transports_to(endpoint, &opens) : 0;
    pthread_mutex_lock(&p.lock);
    int a_answered = p.answered;
    pthread_mutex_unlock(&p.lock);
    if (list_rc == 0)
        vb_domains_free(doms, n);
    if (b)
        vb_close(b);
    release(&p);
    pthread_join(a, NULL);
    print_message("B's open and list took %llu ms while A's prompt was pending\n",
                  (unsigned long long)took);
    if (!b || list_rc < 0)
        fail_msg("B: %s", err.message);
    assert_true(n > 0);
    /* B never waited for A's person */
    assert_int_equal(a_answered, 0);
    assert_true(took < (uint64_t)vb_ts_scaled_ms(1000));
    assert_int_equal(transports, 1);
    assert_int_equal(opens, 2);
    /* and A, answered late, still logged in */
    if (p.open_rc < 0)
        fail_msg("A: %s", p.err.message);
    assert_int_equal(p.asked, 1);
}

static void test_pending_prompt_stalls_only_its_own_client(void **state)
{
    (void)state;
    char a[800], b[400], endpoint[300];
    snprintf(a, sizeof a,
             "xenapi+unix:///?socket=%s&name=xenapi%%3A%%2F%%2Froot%%40127.0.0.1%%3A%d%%2F%%3F"
             "transport%%3Dhttp",
             hostd.sock, xen_port);
    snprintf(b, sizeof b, "test+unix:///default?socket=%s", hostd.sock);
    snprintf(endpoint, sizeof endpoint, "unix:%s", hostd.sock);
    run_scenario(a, b, endpoint);
}

/* The same over TCP with a SASL security layer on the shared transport: B's
 * calls are encoded while A's reader decodes (one codec, one thread at a time). */
static void test_pending_prompt_stalls_nobody_on_a_layered_transport(void **state)
{
    (void)state;
    char a[800], b[400], endpoint[300];
    snprintf(a, sizeof a,
             "xenapi+tcp://127.0.0.1:%d/?auth=sasl.DIGEST-MD5&name=xenapi%%3A%%2F%%2Froot%%40"
             "127.0.0.1%%3A%d%%2F%%3Ftransport%%3Dhttp",
             hostd.port, xen_port);
    snprintf(b, sizeof b, "test+tcp://127.0.0.1:%d/default?auth=sasl.DIGEST-MD5", hostd.port);
    snprintf(endpoint, sizeof endpoint, "tcp:127.0.0.1:%d", hostd.port);
    run_scenario(a, b, endpoint);
}

/* The same over TLS: B's calls are written while A's reader reads, and one
 * OpenSSL session is not for two threads at once either. */
static void test_pending_prompt_stalls_nobody_over_tls(void **state)
{
    (void)state;
    char a[1200], b[700], endpoint[300];
    snprintf(a, sizeof a,
             "xenapi+tls://127.0.0.1:%d/?auth=sasl.SCRAM-SHA-256-PLUS&pkipath=%s&name=xenapi%%3A%%2F%%2F"
             "root%%40127.0.0.1%%3A%d%%2F%%3Ftransport%%3Dhttp",
             hostd_tls.tls_port, pki, xen_port);
    snprintf(b, sizeof b, "test+tls://127.0.0.1:%d/default?auth=sasl.SCRAM-SHA-256-PLUS&pkipath=%s",
             hostd_tls.tls_port, pki);
    snprintf(endpoint, sizeof endpoint, "tls:127.0.0.1:%d", hostd_tls.tls_port);
    run_scenario(a, b, endpoint);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_prompt_stalls_only_its_own_client),
        cmocka_unit_test(test_pending_prompt_stalls_nobody_on_a_layered_transport),
        cmocka_unit_test(test_pending_prompt_stalls_nobody_over_tls),
    };
    return cmocka_run_group_tests_name("shared_stall", tests, group_setup, vb_ts_group_teardown);
}
