/* Real libvirt hosts through the broker (issue 19): a real libvirtd (Debian's
 * /usr/sbin/libvirtd, the test driver built into it, nothing else loaded)
 * started here as the unprivileged user nobody, with its own config, SASL
 * DIGEST-MD5 against a private sasldb, TCP on 127.0.0.1 only; stopped by
 * pid. The broker opens libvirt:test+tcp://127.0.0.1:PORT/default through
 * libvirt's own client library.
 *
 * Each case uses its own spelling of the URI (a user name in it: libvirt's
 * SASL login ignores it, the broker's sharing key does not), so the cases
 * do not share connections or held answers. Needs root (setpriv to nobody)
 * and libvirtd; skipped without them, saying why. */
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
#include <unistd.h>

#include "vb_testsupport.h"
#include "vbroker.h"

#define LIBVIRTD "/usr/sbin/libvirtd"
#define SETPRIV "/usr/bin/setpriv"
#define RUN_AS "nobody"
#define PASSWORD "lv-Pw-93e1-alice"
#define WRONG "lv-wrong-5b20"
#define CONCURRENT 48
#define DISTINCT 48 /* concurrent logins of different URIs: SASL in parallel */
#define ROUNDS 5

static char *dir;
static char why_skip[300];
static vb_ts_broker broker;
static vb_ts_hostd hostd; /* a hop whose operator allows both libvirtds */

/* ---- libvirtd ------------------------------------------------------------- */

/* One libvirtd: DIR/NAME/{home,xdg,config,cache,run,empty}, auth_tcp AUTH,
 * the shared sasldb DIR/sasl. */
typedef struct lvd {
    char base[300], conf[400], log[400];
    const char *auth;
    int port;
    pid_t pid;
} lvd;

static lvd lv;      /* SASL DIGEST-MD5: the host of every case */
static lvd lv_none; /* auth_tcp "none": lets anyone in without asking */
static int port;    /* lv.port */

static int chown_nobody(const char *path)
{
    char *argv[] = { "chown", "-R", RUN_AS ":", (char *)path, NULL };
    return vb_ts_run(argv, NULL, NULL, NULL, 10000) == 0 ? 0 : -1;
}

/* Start it (again) on the same port, config and sasldb. */
static int libvirtd_start(lvd *d)
{
    char env_home[400], env_xdg[400], env_cfg[400], env_cache[400], env_sasl[400], env_drv[400],
        pidfile[400];
    snprintf(env_home, sizeof env_home, "HOME=%s/home", d->base);
    snprintf(env_xdg, sizeof env_xdg, "XDG_RUNTIME_DIR=%s/xdg", d->base);
    snprintf(env_cfg, sizeof env_cfg, "XDG_CONFIG_HOME=%s/config", d->base);
    snprintf(env_cache, sizeof env_cache, "XDG_CACHE_HOME=%s/cache", d->base);
    snprintf(env_sasl, sizeof env_sasl, "SASL_CONF_PATH=%s/sasl", dir);
    /* an empty driver dir: no qemu driver loads; the test driver is built in */
    snprintf(env_drv, sizeof env_drv, "LIBVIRT_DRIVER_DIR=%s/empty", d->base);
    snprintf(pidfile, sizeof pidfile, "%s/run/libvirtd.pid", d->base);
    /* env -i and setpriv exec: the pid is libvirtd's own */
    char *argv[] = { "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", env_home,
                     env_xdg, env_cfg, env_cache, env_sasl, env_drv, SETPRIV,
                     "--reuid=" RUN_AS, "--regid=nogroup", "--clear-groups", LIBVIRTD, "-l",
                     "-f", d->conf, "-p", pidfile, NULL };
    d->pid = vb_ts_spawn(argv, NULL, d->log);
    if (d->pid <= 0 || vb_ts_wait_tcp("127.0.0.1", d->port, vb_ts_scaled_ms(20000)) < 0) {
        char *log = vb_ts_read_file(d->log, NULL);
        snprintf(why_skip, sizeof why_skip, "libvirtd did not listen on 127.0.0.1:%d: %.200s",
                 d->port, log ? log : "(no log)");
        free(log);
        return -1;
    }
    return 0;
}

static void libvirtd_stop(lvd *d)
{
    if (d->pid > 0)
        vb_ts_stop(d->pid, 5000);
    d->pid = 0;
}

static int libvirtd_setup(lvd *d, const char *name, const char *auth)
{
    char path[400], conf[1200];
    d->auth = auth;
    d->port = vb_ts_free_tcp_port();
    snprintf(d->base, sizeof d->base, "%s/%s", dir, name);
    snprintf(d->conf, sizeof d->conf, "%s/libvirtd.conf", d->base);
    snprintf(d->log, sizeof d->log, "%s/%s.log", dir, name);
    static const char *const sub[] = { "", "/home", "/xdg", "/config", "/cache", "/run",
                                       "/empty" };
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        snprintf(path, sizeof path, "%s%s", d->base, sub[i]);
        if (mkdir(path, 0700) < 0)
            return -1;
    }
    snprintf(conf, sizeof conf,
             "listen_tls = 0\nlisten_tcp = 1\nlisten_addr = \"127.0.0.1\"\n"
             "tcp_port = \"%d\"\nauth_tcp = \"%s\"\nauth_unix_rw = \"%s\"\n"
             "unix_sock_dir = \"%s/run\"\nmax_anonymous_clients = 100\n"
             "max_client_requests = 20\nlog_level = 3\nlog_outputs = \"3:stderr\"\n",
             d->port, auth, auth, d->base);
    if (d->port <= 0 || vb_ts_write_file(d->conf, conf, 0644) < 0 || chown_nobody(d->base) < 0)
        return -1;
    return libvirtd_start(d);
}

static int setup_libvirtd(void)
{
    char host[256] = "", sasl[400];
    gethostname(host, sizeof host - 1);
    snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    /* realm: libvirtd's sasl_server_new passes none, so Cyrus uses this
     * host's name, the realm saslpasswd2 must file the user under */
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    /* nobody must reach its files: the temp dir is 0700 root otherwise */
    if (mkdir(sasl, 0700) < 0 ||
        vb_ts_sasl_setup(sasl, "libvirt", host, "digest-md5", users, NULL) < 0 ||
        chown_nobody(sasl) < 0 || chmod(dir, 0711) < 0 || libvirtd_setup(&lv, "lv", "sasl") < 0 ||
        libvirtd_setup(&lv_none, "lvnone", "none") < 0)
        return -1;
    port = lv.port;
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0 || access(LIBVIRTD, X_OK) != 0 || access(SETPRIV, X_OK) != 0) {
        snprintf(why_skip, sizeof why_skip,
                 "needs root and %s (make deps-test installs libvirt-daemon)", LIBVIRTD);
        return 0;
    }
    dir = vb_ts_tmpdir("libvirt");
    if (!dir || setup_libvirtd() < 0) {
        if (!why_skip[0])
            snprintf(why_skip, sizeof why_skip, "could not prepare libvirtd's files");
        fprintf(stderr, "test_libvirt: %s\n", why_skip);
        return -1; /* libvirtd is installed: not starting it is a failure */
    }
    if (vb_ts_hostd_start(&hostd, dir, "h", 0,
                          "allowed_libvirt_hosts = [\"127.0.0.1:%d\", \"127.0.0.1:%d\"]\n",
                          lv.port, lv_none.port) < 0 ||
        vb_ts_broker_start(&broker, dir, "b", NULL) < 0)
        return -1;
    vb_ts_broker_use(&broker);
    return 0;
}

static int group_teardown(void **state)
{
    /* both daemons ran libvirt's client (vbhostd for its clients): a clean
     * exit, and under SAN=1 no leak or error report in their logs */
    int bad = 0;
    if (hostd.pid > 0)
        bad |= vb_ts_check_exit("vbhostd", vb_ts_stop(hostd.pid, 5000), hostd.log) < 0;
    if (broker.pid > 0)
        bad |= vb_ts_check_exit("vbrokerd", vb_ts_stop(broker.pid, 5000), broker.log) < 0;
    libvirtd_stop(&lv);
    libvirtd_stop(&lv_none);
    if (bad) {
        vb_ts_group_teardown(state);
        return -1;
    }
    return vb_ts_group_teardown(state);
}

#define NEED_LIBVIRTD()                                                                            \
    do {                                                                                           \
        if (!dir) {                                                                                \
            fprintf(stderr, "skipped: %s\n", why_skip);                                            \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- the app's side -------------------------------------------------------- */

typedef struct person {
    const char *password;
    pthread_mutex_t lock;
    int calls;
    int retries;
    size_t nhops;
    char kind[32], host[64], service[400];
} person;

static const int person_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

static int person_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    person *p = data;
    pthread_mutex_lock(&p->lock);
    p->calls++;
    p->retries += req->retry != 0;
    p->nhops = req->nhops;
    snprintf(p->kind, sizeof p->kind, "%s", req->kind ? req->kind : "");
    snprintf(p->host, sizeof p->host, "%s", req->target_host ? req->target_host : "");
    snprintf(p->service, sizeof p->service, "%s", req->service ? req->service : "");
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < n; i++) {
        const char *v = creds[i].type == VB_CRED_AUTHNAME     ? "alice"
                        : creds[i].type == VB_CRED_PASSPHRASE ? p->password
                                                              : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

static void person_init(person *p, const char *password)
{
    memset(p, 0, sizeof *p);
    p->password = password;
    pthread_mutex_init(&p->lock, NULL);
}

/* libvirt:test+tcp://USER@127.0.0.1:PORT/default */
static const char *uri_for(const char *user, char *buf, size_t len)
{
    snprintf(buf, len, "libvirt:test+tcp://%s@127.0.0.1:%d/default", user, port);
    return buf;
}

static vb_conn *open_as(const char *uri, person *p, vb_error *err)
{
    vb_auth auth = { person_types, 2, person_cb, p };
    return vb_open_auth(uri, p ? &auth : NULL, 0, err);
}

static int vbctl(char *const argv[], char **out)
{
    return vb_ts_broker_run(&broker, argv, NULL, out, 60000);
}

static int script_list(const char *uri, char **out)
{
    char *argv[] = { VB_BUILD_DIR "/vbctl", "--non-interactive", "-c", (char *)uri, "list", NULL };
    return vbctl(argv, out);
}

/* the test driver's one domain, "test", running */
static void assert_lists_test(vb_conn *c)
{
    vb_domain *doms = NULL;
    size_t n = 0;
    vb_error err;
    if (vb_list_domains(c, &doms, &n, &err) < 0)
        fail_msg("list: %s", err.message);
    assert_int_equal(n, 1);
    assert_string_equal(doms[0].name, "test");
    assert_int_equal(doms[0].state, VB_DOMAIN_RUNNING);
    vb_domains_free(doms, n);
}

static int host_conns_named(const char *uri)
{
    vb_broker_status st;
    vb_error err;
    if (vb_broker_get_status(&st, &err) < 0)
        fail_msg("status: %s", err.message);
    int n = 0;
    for (size_t i = 0; i < st.nhosts; i++)
        n += strcmp(st.hosts[i].endpoint, uri) == 0;
    vb_broker_status_clear(&st);
    return n;
}

/* uri for user, and its first open, asking p once */
static vb_conn *first_open(const char *user, char *uri, size_t len, person *p)
{
    uri_for(user, uri, len);
    person_init(p, PASSWORD);
    vb_error err;
    vb_conn *c = open_as(uri, p, &err);
    if (!c)
        fail_msg("open %s: %s", uri, err.message);
    assert_int_equal(p->calls, 1);
    return c;
}

/* ---- cases ------------------------------------------------------------------- */

static void test_first_open_asks_once_script_asks_nothing(void **state)
{
    (void)state;
    NEED_LIBVIRTD();
    char uri[200];
    person p;
    vb_error err;
    vb_conn *c = first_open("first", uri, sizeof uri, &p);
    /* the question says what it is for: a libvirt login on that host */
    assert_string_equal(p.kind, "libvirt");
    assert_string_equal(p.host, "127.0.0.1");
    assert_string_equal(p.service, uri);
    assert_lists_test(c);
    char *host = NULL;
    assert_int_equal(vb_get_hostname(c, &host, &err), 0);
    assert_true(host && *host);
    free(host);
    /* the broker holds the connection: status lists it, once */
    assert_int_equal(host_conns_named(uri), 1);
    /* a script while the app is connected, and after it left */
    char *out = NULL;
    assert_int_equal(script_list(uri, &out), 0);
    assert_non_null(strstr(out, "test"));
    free(out);
    vb_close(c);
    assert_int_equal(script_list(uri, NULL), 0);
    /* another app with a callback is not asked either */
    person q;
    person_init(&q, PASSWORD);
    c = open_as(uri, &q, &err);
    assert_non_null(c);
    assert_int_equal(q.calls, 0);
    vb_close(c);
    assert_int_equal(host_conns_named(uri), 1);
}

static void test_three_wrong_passwords(void **state)
{
    (void)state;
    NEED_LIBVIRTD();
    char uri[200];
    uri_for("wrong", uri, sizeof uri);
    person p;
    person_init(&p, WRONG);
    vb_error err;
    vb_conn *c = open_as(uri, &p, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_AUTH_FAILED);
    assert_non_null(strstr(err.message, "refused the login as 'alice' 3 times"));
    assert_null(strstr(err.message, WRONG));
    assert_int_equal(p.calls, 3);
    assert_int_equal(p.retries, 2); /* the 2nd and 3rd question say it is a retry */
    assert_int_equal(host_conns_named(uri), 0);
    /* nothing wrong was kept: a script is not answered from a refused password */
    assert_int_equal(script_list(uri, NULL), 77);
}

static void test_libvirtd_restart_logs_in_again_without_asking(void **state)
{
    (void)state;
    NEED_LIBVIRTD();
    char uri[200];
    person p;
    vb_error err;
    vb_conn *held = first_open("restart", uri, sizeof uri, &p);
    libvirtd_stop(&lv);
    assert_int_equal(libvirtd_start(&lv), 0);
    /* at once, before the broker may have noticed: a script run works on
     * the held answer, and so does the connection the app kept open */
    char *out = NULL;
    int rc = script_list(uri, &out);
    if (rc != 0)
        fail_msg("script after the restart: exit %d: %s", rc, out ? out : "");
    free(out);
    assert_lists_test(held);
    char *host = NULL;
    assert_int_equal(vb_get_hostname(held, &host, &err), 0);
    free(host);
    assert_int_equal(p.calls, 1);
    vb_close(held);
}

static void test_logout_then_script_exits_77(void **state)
{
    (void)state;
    NEED_LIBVIRTD();
    char uri[200];
    person p;
    vb_error err;
    vb_close(first_open("logout", uri, sizeof uri, &p));
    assert_int_equal(script_list(uri, NULL), 0);
    char *argv[] = { VB_BUILD_DIR "/vbctl", "logout", uri, NULL };
    char *out = NULL;
    assert_int_equal(vbctl(argv, &out), 0);
    assert_non_null(strstr(out, "1 connection closed, 1 answer forgotten"));
    free(out);
    assert_int_equal(host_conns_named(uri), 0);
    out = NULL;
    assert_int_equal(script_list(uri, &out), 77);
    assert_non_null(strstr(out, "needs a login and --non-interactive forbids asking"));
    assert_null(strstr(out, "vbctl login")); /* libvirtd issues no tokens */
    free(out);
    /* an app is asked again */
    vb_conn *c = open_as(uri, &p, &err);
    assert_non_null(c);
    assert_int_equal(p.calls, 2);
    vb_close(c);
}

/* ---- through vbhostd (libvirt: in a client's URI) ------------------------------ */

/* vbhostd's unix socket, name= the libvirt URI (percent-encoded) */
static const char *chain_uri(const char *inner, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "test+unix:///default?socket=%s&name=", hostd.sock);
    for (const char *p = inner; *p && n + 4 < len; p++)
        n += (size_t)snprintf(buf + n, len - n,
                              strchr("-._~", *p) || (*p >= '0' && *p <= '9') ||
                                      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                                  ? "%c"
                                  : "%%%02X",
                              (unsigned char)*p);
    return buf;
}

static void test_chain_asks_once_through_vbhostd(void **state)
{
    (void)state;
    NEED_LIBVIRTD();
    char inner[200], uri[800];
    snprintf(inner, sizeof inner, "libvirt:test+tcp://127.0.0.1:%d/default", lv.port);
    chain_uri(inner, uri, sizeof uri);
    person p;
    person_init(&p, PASSWORD);
    vb_error err;
    vb_conn *c = open_as(uri, &p, &err);
    if (!c)
        fail_msg("open %s: %s", uri, err.message);
    /* vbhostd's libvirt login asked the person at the top, naming the hop */
    assert_int_equal(p.calls, 1);
    assert_string_equal(p.kind, "libvirt");
    assert_int_equal(p.nhops, 1);
    assert_non_null(strstr(p.service, inner));
    assert_lists_test(c);
    vb_close(c);
    /* vbhostd logs in again for the next open (its logins are its
     * client's); the broker answers the relayed question from its memory */
    person q;
    person_init(&q, PASSWORD);
    c = open_as(uri, &q, &err);
    if (!c)
        fail_msg("second open: %s", err.message);
    assert_int_equal(q.calls, 0);
    vb_close(c);
    assert_int_equal(script_list(uri, NULL), 0);
}

/* What a client of vbhostd must not get: a libvirtd the operator did not
 * list, a libvirt URI with parameters (authfile=, socket=, ...), a transport
 * that would use the daemon's own identity, or a libvirtd that lets the
 * daemon in without asking. None of them asks the person anything. */
static void test_chain_refuses_what_would_act_as_vbhostd(void **state)
{
    (void)state;
    NEED_LIBVIRTD();
    char allowed[64];
    snprintf(allowed, sizeof allowed, "test+tcp://127.0.0.1:%d/default", lv.port);
    struct {
        char inner[400];
        const char *says;
    } cases[5];
    snprintf(cases[0].inner, sizeof cases[0].inner, "libvirt:test+tcp://127.0.0.2:%d/default",
             lv.port);
    cases[0].says = "allowed_libvirt_hosts";
    snprintf(cases[1].inner, sizeof cases[1].inner, "libvirt:%s?authfile=/etc/shadow", allowed);
    cases[1].says = "no parameters";
    snprintf(cases[2].inner, sizeof cases[2].inner, "libvirt:test:///default");
    cases[2].says = "+tcp://";
    snprintf(cases[3].inner, sizeof cases[3].inner,
             "libvirt:test+unix:///default?socket=%s/run/libvirt-sock", lv.base);
    cases[3].says = "+tcp://";
    snprintf(cases[4].inner, sizeof cases[4].inner, "libvirt:test+tcp://127.0.0.1:%d/default",
             lv_none.port);
    cases[4].says = "without asking";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char uri[1600];
        chain_uri(cases[i].inner, uri, sizeof uri);
        person p;
        person_init(&p, PASSWORD);
        vb_error err;
        vb_conn *c = open_as(uri, &p, &err);
        if (c || !strstr(err.message, cases[i].says))
            fail_msg("%s: %s", cases[i].inner, c ? "opened" : err.message);
        assert_int_equal(p.calls, 0);
    }
}

/* ---- many at once ------------------------------------------------------------ */

typedef struct opener {
    pthread_barrier_t *go;
    const char *uri;
    person *p;
    int ok;
    char why[VB_ERROR_MESSAGE_MAX];
} opener;

static void *open_thread(void *arg)
{
    opener *o = arg;
    vb_error err;
    pthread_barrier_wait(o->go);
    vb_conn *c = open_as(o->uri, o->p, &err);
    char *host = NULL;
    if (c && vb_get_hostname(c, &host, &err) == 0)
        o->ok = 1;
    else
        snprintf(o->why, sizeof o->why, "%s", err.message);
    free(host);
    if (c)
        vb_close(c);
    return NULL;
}

/* n threads released at once, opener i on uris[i % nuris]; 0 when all worked */
static int open_many(const char *const *uris, size_t nuris, size_t n, person *p)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)n);
    opener *o = calloc(n, sizeof *o);
    pthread_t *t = calloc(n, sizeof *t);
    assert_non_null(o);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        o[i] = (opener){ &go, uris[i % nuris], p, 0, "" };
        assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        if (!o[i].ok && failed++ == 0)
            fprintf(stderr, "open %zu of %s failed: %s\n", i, o[i].uri, o[i].why);
    }
    pthread_barrier_destroy(&go);
    free(o);
    free(t);
    return failed;
}

static void test_concurrent_opens_one_broker(void **state)
{
    (void)state;
    NEED_LIBVIRTD();
    /* one URI: one login, every other open waits for it and shares it */
    char one[200];
    uri_for("many", one, sizeof one);
    const char *uris[DISTINCT];
    char bufs[DISTINCT][200];
    person p;
    person_init(&p, PASSWORD);
    const char *single[] = { one };
    assert_int_equal(open_many(single, 1, CONCURRENT, &p), 0);
    assert_int_equal(p.calls, 1);
    /* different URIs: that many SASL DIGEST-MD5 logins at once inside one
     * broker, with libvirt's client (which crashed without sasl_set_mutex),
     * each round on a fresh broker whose very first logins these are */
    for (int round = 0; round < ROUNDS; round++) {
        char name[24];
        snprintf(name, sizeof name, "fresh%d", round);
        vb_ts_broker fresh;
        assert_int_equal(vb_ts_broker_start(&fresh, dir, name, NULL), 0);
        vb_ts_broker_use(&fresh);
        for (size_t i = 0; i < DISTINCT; i++) {
            char user[32];
            snprintf(user, sizeof user, "r%du%zu", round, i);
            uris[i] = uri_for(user, bufs[i], sizeof bufs[i]);
        }
        person q;
        person_init(&q, PASSWORD);
        int failed = open_many(uris, DISTINCT, DISTINCT, &q);
        int status = vb_ts_stop(fresh.pid, 5000);
        vb_ts_broker_use(&broker);
        assert_int_equal(failed, 0);
        assert_int_equal(q.calls, DISTINCT);
        assert_int_equal(vb_ts_check_exit("vbrokerd", status, fresh.log), 0);
    }
    /* and the broker is still the same process */
    vb_broker_status st;
    vb_error err;
    assert_int_equal(vb_broker_get_status(&st, &err), 0);
    assert_int_equal(st.pid, broker.pid);
    vb_broker_status_clear(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_open_asks_once_script_asks_nothing),
        cmocka_unit_test(test_three_wrong_passwords),
        cmocka_unit_test(test_libvirtd_restart_logs_in_again_without_asking),
        cmocka_unit_test(test_logout_then_script_exits_77),
        cmocka_unit_test(test_concurrent_opens_one_broker),
        cmocka_unit_test(test_chain_asks_once_through_vbhostd),
        cmocka_unit_test(test_chain_refuses_what_would_act_as_vbhostd),
    };
    return cmocka_run_group_tests_name("libvirt", tests, group_setup, group_teardown);
}
