/* The xenapi driver against the XenAPI simulator (tests/peers/xenapi_sim.py):
 * login and listing, power operations and their XenAPI errors, the credential
 * source's story (one request, retry flag, reject then approve, three
 * strikes), pool members (HOST_IS_SLAVE), sessions that expire or are
 * destroyed, logout, HTTPS with a CA made here, a host that dies mid-call,
 * and no secret in any log or error. Every simulator is started here and
 * stopped by pid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vb_cred.h"
#include "vb_driver.h"
#include "vb_testsupport.h"
#include "vb_xenapi.h"

#define SIM_SCRIPT VB_SRC_DIR "/tests/peers/xenapi_sim.py"
#define START_TIMEOUT_MS 15000
#define ROOT_PW "xen-pw-7f3a"
#define ALICE_PW "p<&>\"' \xc3\xa9:x" /* every character XML must escape, and a ':' */
#define WRONG1 "wrong-one-91c2"
#define WRONG2 "wrong-two-5d7e"
#define WRONG3 "wrong-three-e04b"

static const vb_driver *drv;
static char *shared_dir;
static char users_path[300], cert_path[300], key_path[300];

/* ---- the simulator ------------------------------------------------------- */

typedef struct sim {
    char *dir;
    char out[300];    /* its stdout+stderr ("listening on ...") */
    char log[300];    /* --log: method names */
    char counts[300]; /* --count-logins */
    char addr[32];
    int port;
    pid_t pid;
} sim;

static const char *python(void)
{
    /* the distribution's interpreter starts in a fraction of a wrapper's time */
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

typedef struct file_has {
    const char *path;
    const char *needle;
    int times;
} file_has;

static int file_has_cond(void *arg)
{
    const file_has *f = arg;
    return vb_ts_count_in_file(f->path, f->needle) >= f->times;
}

static int wait_file_has(const char *path, const char *needle, int times, int timeout_ms)
{
    file_has f = { path, needle, times };
    return vb_ts_wait_until(file_has_cond, &f, timeout_ms);
}

/* Start a simulator on addr:port (0 = any); extra: more options, NULL-ended. */
static int sim_start_at(sim *s, const char *addr, int port, const char *const extra[])
{
    memset(s, 0, sizeof *s);
    s->dir = vb_ts_tmpdir("xsim");
    snprintf(s->out, sizeof s->out, "%s/out", s->dir);
    snprintf(s->log, sizeof s->log, "%s/calls.log", s->dir);
    snprintf(s->counts, sizeof s->counts, "%s/logins", s->dir);
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    char listen[64];
    snprintf(listen, sizeof listen, "%s:%d", addr, port);
    const char *argv[32] = { python(), "-I", "-S", SIM_SCRIPT, "--listen", listen, "--users",
                             users_path, "--log", s->log, "--count-logins", s->counts };
    size_t n = 12;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    s->pid = vb_ts_spawn((char *const *)argv, NULL, s->out);
    if (s->pid <= 0 || wait_file_has(s->out, "listening on ", 1, START_TIMEOUT_MS) < 0) {
        char *out = vb_ts_read_file(s->out, NULL);
        print_error("simulator did not start: %s\n", out ? out : "(no output)");
        free(out);
        return -1;
    }
    char *out = vb_ts_read_file(s->out, NULL);
    const char *colon = out ? strrchr(strstr(out, "listening on "), ':') : NULL;
    s->port = colon ? atoi(colon + 1) : 0;
    free(out);
    return s->port > 0 ? 0 : -1;
}

static void sim_start(sim *s, const char *const extra[])
{
    assert_int_equal(sim_start_at(s, "127.0.0.1", 0, extra), 0);
}

static void sim_stop(sim *s)
{
    if (s->pid > 0)
        assert_int_equal(vb_ts_stop(s->pid, 5000), 0); /* SIGTERM: a clean exit */
    s->pid = 0;
}

/* "ok=N failed=M slave=K" from --count-logins */
static void sim_counts(const sim *s, int *ok, int *failed, int *slave)
{
    char *text = vb_ts_read_file(s->counts, NULL);
    assert_non_null(text);
    assert_int_equal(sscanf(text, "ok=%d failed=%d slave=%d", ok, failed, slave), 3);
    free(text);
}

static int sim_logins(const sim *s)
{
    int ok, failed, slave;
    sim_counts(s, &ok, &failed, &slave);
    return ok;
}

/* Neither a password nor a session ref ever reaches the host's log. */
static void assert_sim_log_clean(const sim *s)
{
    static const char *const secrets[] = { ROOT_PW, "p<&>", WRONG1, WRONG2, WRONG3,
                                           "OpaqueRef:" };
    const char *files[] = { s->log, s->out };
    for (size_t f = 0; f < 2; f++)
        for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
            assert_int_equal(vb_ts_count_in_file(files[f], secrets[i]), 0);
}

/* ---- a scripted person behind the credential source ---------------------- */

#define MAX_CALLS 16

typedef struct person {
    const char *user;            /* AUTHNAME answer; NULL leaves the default */
    const char *passwords[4];    /* per call; the last one given repeats */
    int cancel;
    int calls;
    int retry[MAX_CALLS];
    size_t nitems[MAX_CALLS];
    int types[MAX_CALLS][2];
    char service[MAX_CALLS][128];
    char defuser[MAX_CALLS][64];
    int approves, rejects;
    char approved[MAX_CALLS][64], rejected[MAX_CALLS][64];
} person;

static const char *item_result(const vb_cred_request *req, int type)
{
    for (size_t i = 0; i < req->nitems; i++)
        if (req->items[i].type == type)
            return req->items[i].result;
    return NULL;
}

static int person_fill(vb_cred_request *req, void *opaque, vb_error *err)
{
    person *p = opaque;
    int k = p->calls++;
    if (k >= MAX_CALLS)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_CLIENT, "too many prompts");
    p->retry[k] = req->retry;
    p->nitems[k] = req->nitems;
    snprintf(p->service[k], sizeof p->service[k], "%s", req->service ? req->service : "");
    if (p->cancel)
        return vb_error_set(err, VB_ERR_AUTH_CANCELLED, VB_DOM_CLIENT, "the person said no");
    size_t npw = 0;
    while (npw < 4 && p->passwords[npw])
        npw++;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        if (i < 2)
            p->types[k][i] = it->type;
        if (it->type == VB_CRED_AUTHNAME) {
            snprintf(p->defuser[k], sizeof p->defuser[k], "%s",
                     it->defresult ? it->defresult : "(none)");
            if (p->user)
                vb_cred_item_set_result(it, p->user, strlen(p->user));
        } else if (it->type == VB_CRED_PASSPHRASE && npw > 0) {
            const char *pw = p->passwords[(size_t)k < npw ? (size_t)k : npw - 1];
            vb_cred_item_set_result(it, pw, strlen(pw));
        }
    }
    return 0;
}

static void person_approve(void *opaque, const vb_cred_request *req)
{
    person *p = opaque;
    const char *pw = item_result(req, VB_CRED_PASSPHRASE);
    if (p->approves < MAX_CALLS)
        snprintf(p->approved[p->approves], sizeof p->approved[0], "%s", pw ? pw : "");
    p->approves++;
}

static void person_reject(void *opaque, const vb_cred_request *req)
{
    person *p = opaque;
    const char *pw = item_result(req, VB_CRED_PASSPHRASE);
    if (p->rejects < MAX_CALLS)
        snprintf(p->rejected[p->rejects], sizeof p->rejected[0], "%s", pw ? pw : "");
    p->rejects++;
}

static vb_cred_source source_of(person *p)
{
    vb_cred_source src;
    memset(&src, 0, sizeof src);
    src.fn = person_fill;
    src.opaque = p;
    src.approve = person_approve;
    src.reject = person_reject;
    return src;
}

/* ---- driver helpers ------------------------------------------------------ */

/* No message may carry a secret. */
static void assert_message_clean(const char *message)
{
    static const char *const secrets[] = { ROOT_PW, "p<&>", WRONG1, WRONG2, WRONG3,
                                           "OpaqueRef:" };
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (strstr(message, secrets[i])) {
            print_error("secret in message: %s\n", message);
            fail();
        }
}

static int open_flags(const char *uri_text, unsigned flags, vb_cred_source *src, void **conn,
                      vb_error *err)
{
    vb_uri uri;
    vb_error_clear(err);
    *conn = NULL;
    if (vb_uri_parse(uri_text, &uri, err) < 0)
        return -1;
    int rc = drv->open(&uri, flags, src, conn, err);
    vb_uri_clear(&uri);
    if (rc < 0)
        assert_message_clean(err->message);
    return rc;
}

static int open_with(const char *uri_text, vb_cred_source *src, void **conn, vb_error *err)
{
    return open_flags(uri_text, 0, src, conn, err);
}

static void *open_ok(const char *uri_text, person *p)
{
    vb_cred_source src = source_of(p);
    void *conn = NULL;
    vb_error err;
    int rc = open_with(uri_text, &src, &conn, &err);
    if (rc != 0)
        print_error("open %s: %s\n", uri_text, err.message);
    assert_int_equal(rc, 0);
    assert_non_null(conn);
    return conn;
}

static char *http_uri(const sim *s, const char *user)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "xenapi://%s%s%s:%d/?transport=http", user ? user : "",
             user ? "@" : "", s->addr, s->port);
    return buf;
}

static void expect_error(int rc, const vb_error *err, int code, const char *message)
{
    assert_int_equal(rc, -1);
    if (err->code != code || !strstr(err->message, message))
        print_error("expected code %d with '%s', got %d: %s\n", code, message, err->code,
                    err->message);
    assert_int_equal(err->code, code);
    assert_non_null(strstr(err->message, message));
    assert_message_clean(err->message);
}

static vb_domain_info *list_ok(void *conn, size_t *n)
{
    vb_domain_info *doms = NULL;
    vb_error err;
    int rc = drv->list_domains(conn, &doms, n, &err);
    if (rc != 0)
        print_error("list: %s\n", err.message);
    assert_int_equal(rc, 0);
    return doms;
}

static const vb_domain_info *find(const vb_domain_info *doms, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(doms[i].name, name) == 0)
            return &doms[i];
    return NULL;
}

static vb_domain_info lookup(void *conn, const char *name)
{
    size_t n = 0;
    vb_domain_info *doms = list_ok(conn, &n);
    const vb_domain_info *d = find(doms, n, name);
    assert_non_null(d);
    vb_domain_info copy = *d;
    free(doms);
    return copy;
}

/* ---- fixtures ------------------------------------------------------------ */

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(ROOT_PW);
    vb_ts_note_secret(ALICE_PW);
    drv = vb_driver_lookup("xenapi", NULL);
    if (!drv)
        return -1;
    /* the simulators live on loopback: no proxy may stand in between */
    static const char *const proxies[] = { "http_proxy", "https_proxy", "HTTP_PROXY",
                                           "HTTPS_PROXY", "all_proxy", "ALL_PROXY" };
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    setenv("no_proxy", "*", 1);
    shared_dir = vb_ts_tmpdir("xenapi");
    snprintf(users_path, sizeof users_path, "%s/users", shared_dir);
    if (vb_ts_write_file(users_path, "root:" ROOT_PW "\nalice:" ALICE_PW "\n", 0600) < 0)
        return -1;
    /* a self-signed certificate is how a XenAPI host ships: it is its own CA */
    snprintf(cert_path, sizeof cert_path, "%s/cert.pem", shared_dir);
    snprintf(key_path, sizeof key_path, "%s/key.pem", shared_dir);
    char *argv[] = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                     "/CN=xenhost1.lab", "-addext",
                     "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost", "-keyout",
                     key_path, "-out", cert_path, NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, NULL, NULL, &out, 30000);
    if (rc != 0)
        print_error("openssl req failed (%d): %s\n", rc, out ? out : "");
    free(out);
    return rc == 0 ? 0 : -1;
}

/* ---- tests --------------------------------------------------------------- */

static void test_lookup(void **state)
{
    (void)state;
    vb_error err;
    assert_ptr_equal(vb_driver_lookup("xenapi", &err), &vb_xenapi_driver);
    assert_string_equal(vb_xenapi_driver.name, "xenapi");
}

static void test_login_and_list(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, NULL);
    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(http_uri(&s, "root"), &p);

    /* one request with both items, for this host and port, first try */
    char service[128];
    snprintf(service, sizeof service, "xenapi://127.0.0.1:%d/", s.port);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.nitems[0], 2);
    assert_int_equal(p.types[0][0], VB_CRED_AUTHNAME);
    assert_int_equal(p.types[0][1], VB_CRED_PASSPHRASE);
    assert_string_equal(p.defuser[0], "root");
    assert_string_equal(p.service[0], service);
    assert_int_equal(p.retry[0], 0);
    assert_int_equal(p.approves, 1);
    assert_string_equal(p.approved[0], ROOT_PW);
    assert_int_equal(p.rejects, 0);

    size_t n = 0;
    vb_domain_info *doms = list_ok(conn, &n);
    /* no control domain, template or snapshot; sorted by name */
    assert_int_equal(n, 5);
    assert_string_equal(doms[0].name, "R&D <lab> \"one\"");
    assert_string_equal(doms[1].name, "archive");
    assert_string_equal(doms[2].name, "batch");
    assert_string_equal(doms[3].name, "db");
    assert_string_equal(doms[4].name, "web");
    const vb_domain_info *web = &doms[4], *db = &doms[3], *batch = &doms[2], *arch = &doms[1];
    assert_int_equal(web->state, VB_DOMAIN_RUNNING);
    assert_int_equal(web->id, 1);
    assert_int_equal(web->memory_kib, 2048 * 1024);
    assert_int_equal(web->vcpus, 2);
    assert_int_equal(strlen(web->uuid), 36);
    assert_int_equal(db->state, VB_DOMAIN_SHUTOFF);
    assert_int_equal(db->id, -1);
    assert_int_equal(db->memory_kib, 4096 * 1024);
    assert_int_equal(db->vcpus, 4);
    assert_int_equal(batch->state, VB_DOMAIN_PAUSED);
    assert_int_equal(batch->id, 2);
    assert_int_equal(arch->state, VB_DOMAIN_PMSUSPENDED);
    assert_int_equal(arch->id, -1);
    free(doms);

    vb_conn_info info;
    vb_driver_describe(drv, conn, &info);
    assert_string_equal(info.auth_type, "password");

    drv->close(conn);
    /* the login said who is calling, with the API version XenAPI expects */
    assert_int_equal(vb_ts_count_in_file(s.log, "session.login_with_password user=root "
                                          "originator=vbroker/"),
                     1);
    assert_sim_log_clean(&s);
    sim_stop(&s);
}

static void test_int_forms(void **state)
{
    (void)state;
    static const char *const forms[] = { "bare", "string", "int", "i4", "i8", "mixed" };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        const char *extra[] = { "--int-form", forms[i], NULL };
        sim s;
        sim_start(&s, extra);
        person p = { .passwords = { ROOT_PW } };
        void *conn = open_ok(http_uri(&s, "root"), &p);
        vb_domain_info web = lookup(conn, "web"), db = lookup(conn, "db");
        assert_int_equal(web.id, 1);
        assert_int_equal(web.memory_kib, 2048 * 1024);
        assert_int_equal(web.vcpus, 2);
        assert_int_equal(db.id, -1);
        assert_int_equal(db.vcpus, 4);
        char *host = NULL;
        vb_error err;
        assert_int_equal(drv->get_hostname(conn, &host, &err), 0);
        free(host);
        drv->close(conn);
        sim_stop(&s);
    }
}

static void test_hostname(void **state)
{
    (void)state;
    const char *extra[] = { "--hostname", "xen-a", NULL };
    sim s;
    sim_start(&s, extra);
    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(http_uri(&s, "root"), &p);
    char *host = NULL;
    vb_error err;
    assert_int_equal(drv->get_hostname(conn, &host, &err), 0);
    assert_string_equal(host, "xen-a.lab");
    free(host);
    drv->close(conn);
    assert_int_equal(vb_ts_count_in_file(s.log, "session.get_this_host user=root Success"), 1);
    assert_int_equal(vb_ts_count_in_file(s.log, "host.get_record user=root Success"), 1);
    sim_stop(&s);
}

static void test_start_shutdown(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, NULL);
    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(http_uri(&s, "root"), &p);
    vb_error err;

    assert_int_equal(drv->domain_start(conn, "db", &err), 0);
    vb_domain_info db = lookup(conn, "db");
    assert_int_equal(db.state, VB_DOMAIN_RUNNING);
    assert_int_equal(db.id, 3);
    expect_error(drv->domain_start(conn, "db", &err), &err, VB_ERR_OPERATION_INVALID,
                 "VM_BAD_POWER_STATE");
    assert_non_null(strstr(err.message, "cannot start domain 'db': it is running"));
    assert_int_equal(err.domain, VB_DOM_XENAPI);

    assert_int_equal(drv->domain_shutdown(conn, "db", &err), 0);
    db = lookup(conn, "db");
    assert_int_equal(db.state, VB_DOMAIN_SHUTOFF);
    assert_int_equal(db.id, -1);
    expect_error(drv->domain_shutdown(conn, "db", &err), &err, VB_ERR_OPERATION_INVALID,
                 "it is halted, and XenAPI needs it running (VM_BAD_POWER_STATE)");
    expect_error(drv->domain_shutdown(conn, "batch", &err), &err, VB_ERR_OPERATION_INVALID,
                 "it is paused");

    /* names travel escaped and come back unescaped */
    assert_int_equal(drv->domain_start(conn, "R&D <lab> \"one\"", &err), 0);
    assert_int_equal(lookup(conn, "R&D <lab> \"one\"").state, VB_DOMAIN_RUNNING);

    /* what list hides cannot be started either */
    expect_error(drv->domain_start(conn, "nosuch", &err), &err, VB_ERR_NO_DOMAIN,
                 "no domain named 'nosuch'");
    expect_error(drv->domain_start(conn, "Debian Bookworm 12", &err), &err, VB_ERR_NO_DOMAIN,
                 "no domain named");
    expect_error(drv->domain_start(conn, "web snapshot 1", &err), &err, VB_ERR_NO_DOMAIN,
                 "no domain named");
    expect_error(drv->domain_shutdown(conn, "Control domain on host: xenhost1", &err), &err,
                 VB_ERR_NO_DOMAIN, "no domain named");
    expect_error(drv->domain_start(conn, "bad\nname", &err), &err, VB_ERR_INVALID_ARG,
                 "control character");
    drv->close(conn);
    assert_int_equal(vb_ts_count_in_file(s.log, "VM.start user=root Failure VM_BAD_POWER_STATE "
                                          "halted running"),
                     1);
    assert_sim_log_clean(&s);
    sim_stop(&s);
}

static void test_wrong_then_right(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, NULL);
    person p = { .passwords = { WRONG1, ROOT_PW } };
    void *conn = open_ok(http_uri(&s, "root"), &p);
    assert_int_equal(p.calls, 2);
    assert_int_equal(p.retry[0], 0);
    assert_int_equal(p.retry[1], 1);
    assert_string_equal(p.service[1], p.service[0]);
    /* the source forgets exactly the failed answer and keeps the good one */
    assert_int_equal(p.rejects, 1);
    assert_string_equal(p.rejected[0], WRONG1);
    assert_int_equal(p.approves, 1);
    assert_string_equal(p.approved[0], ROOT_PW);
    int ok, failed, slave;
    sim_counts(&s, &ok, &failed, &slave);
    assert_int_equal(ok, 1);
    assert_int_equal(failed, 1);
    drv->close(conn);
    assert_sim_log_clean(&s);
    sim_stop(&s);
}

static void test_three_wrong(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, NULL);
    person p = { .passwords = { WRONG1, WRONG2, WRONG3 } };
    vb_cred_source src = source_of(&p);
    void *conn = NULL;
    vb_error err;
    expect_error(open_with(http_uri(&s, "root"), &src, &conn, &err), &err, VB_ERR_AUTH_FAILED,
                 "SESSION_AUTHENTICATION_FAILED");
    assert_non_null(strstr(err.message, "as 'root' 3 times"));
    assert_int_equal(err.domain, VB_DOM_XENAPI);
    assert_null(conn);
    assert_int_equal(p.calls, 3);
    assert_int_equal(p.retry[0], 0);
    assert_int_equal(p.retry[1], 1);
    assert_int_equal(p.retry[2], 1);
    assert_int_equal(p.rejects, 3);
    assert_string_equal(p.rejected[0], WRONG1);
    assert_string_equal(p.rejected[1], WRONG2);
    assert_string_equal(p.rejected[2], WRONG3);
    assert_int_equal(p.approves, 0);
    int ok, failed, slave;
    sim_counts(&s, &ok, &failed, &slave);
    assert_int_equal(ok, 0);
    assert_int_equal(failed, 3);
    assert_sim_log_clean(&s);
    sim_stop(&s);
}

static void test_user_and_escaped_password(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, NULL);
    /* no user in the URI: the person names one; the password needs escaping */
    person p = { .user = "alice", .passwords = { ALICE_PW } };
    void *conn = open_ok(http_uri(&s, NULL), &p);
    assert_string_equal(p.defuser[0], "(none)");
    assert_int_equal(p.approves, 1);
    size_t n = 0;
    free(list_ok(conn, &n));
    assert_int_equal(n, 5);
    drv->close(conn);
    assert_int_equal(vb_ts_count_in_file(s.log, "user=alice originator="), 1);
    assert_sim_log_clean(&s);
    sim_stop(&s);
}

static void test_nobody_to_ask(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, NULL);
    char service[128];
    snprintf(service, sizeof service, "xenapi://127.0.0.1:%d/", s.port);
    void *conn = NULL;
    vb_error err;
    /* no source at all, or one that cannot ask: the error names the service */
    expect_error(open_with(http_uri(&s, "root"), NULL, &conn, &err), &err, VB_ERR_CRED_REQUIRED,
                 service);
    vb_cred_source mute;
    memset(&mute, 0, sizeof mute);
    expect_error(open_with(http_uri(&s, "root"), &mute, &conn, &err), &err,
                 VB_ERR_CRED_REQUIRED, service);
    /* the person cancels: their error comes back as it was */
    person p = { .cancel = 1 };
    vb_cred_source src = source_of(&p);
    expect_error(open_with(http_uri(&s, "root"), &src, &conn, &err), &err,
                 VB_ERR_AUTH_CANCELLED, "the person said no");
    assert_int_equal(p.approves + p.rejects, 0);
    /* an answer missing with no default */
    person q = { .passwords = { NULL } };
    src = source_of(&q);
    expect_error(open_with(http_uri(&s, NULL), &src, &conn, &err), &err, VB_ERR_CRED_REQUIRED,
                 "no authname given for");
    assert_int_equal(sim_logins(&s), 0);
    assert_int_equal(vb_ts_count_in_file(s.log, "login"), 0); /* nothing was sent */
    sim_stop(&s);
}

/* A pool: member on 127.0.0.2:P, master on 127.0.0.1:P (same scheme and port). */
static void start_pool(sim *master, sim *member)
{
    int started = -1;
    for (int attempt = 0; attempt < 5 && started < 0; attempt++) {
        sim_start(master, NULL);
        const char *extra[] = { "--slave-of", "127.0.0.1", NULL };
        started = sim_start_at(member, "127.0.0.2", master->port, extra);
        if (started < 0) { /* that port was taken on 127.0.0.2: try another pair */
            sim_stop(master);
            vb_ts_stop(member->pid, 1000);
        }
    }
    assert_int_equal(started, 0);
    assert_int_equal(member->port, master->port);
}

static void test_host_is_slave(void **state)
{
    (void)state;
    sim master, member;
    start_pool(&master, &member);

    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(http_uri(&member, "root"), &p);
    /* asked once, for the member the URI names; the same answers went on */
    assert_int_equal(p.calls, 1);
    char service[128];
    snprintf(service, sizeof service, "xenapi://127.0.0.2:%d/", member.port);
    assert_string_equal(p.service[0], service);
    assert_int_equal(p.approves, 1);
    int ok, failed, slave;
    sim_counts(&member, &ok, &failed, &slave);
    assert_int_equal(slave, 1);
    assert_int_equal(ok + failed, 0);
    assert_int_equal(sim_logins(&master), 1);

    size_t n = 0;
    free(list_ok(conn, &n));
    assert_int_equal(n, 5);
    drv->close(conn);
    /* every call after the login went to the master */
    assert_int_equal(vb_ts_count_in_file(master.log, "VM.get_all_records user=root Success"), 1);
    assert_int_equal(vb_ts_count_in_file(master.log, "session.logout user=root Success"), 1);
    assert_int_equal(vb_ts_count_in_file(member.log, "VM."), 0);
    assert_sim_log_clean(&master);
    assert_sim_log_clean(&member);
    sim_stop(&member);
    sim_stop(&master);

    /* a member whose "master" is a member too: followed once, then an error */
    const char *loop[] = { "--slave-of", "127.0.0.1", NULL };
    sim a;
    sim_start(&a, loop);
    person q = { .passwords = { ROOT_PW } };
    vb_cred_source src = source_of(&q);
    void *c2 = NULL;
    vb_error err;
    expect_error(open_with(http_uri(&a, "root"), &src, &c2, &err), &err, VB_ERR_REMOTE,
                 "HOST_IS_SLAVE [127.0.0.1]");
    sim_counts(&a, &ok, &failed, &slave);
    assert_int_equal(slave, 2);
    assert_int_equal(q.approves + q.rejects, 0);
    sim_stop(&a);
}

/* A URI from vbhostd's client (VB_OPEN_FROM_WIRE) reaches only the host the
 * operator allowed: a member's HOST_IS_SLAVE is not followed to its master
 * (another address), and the URI may not name a local cafile. */
static void test_wire_uri_follows_no_pool_redirect(void **state)
{
    (void)state;
    sim master, member;
    start_pool(&master, &member);
    person p = { .passwords = { ROOT_PW } };
    vb_cred_source src = source_of(&p);
    void *conn = NULL;
    vb_error err;
    assert_int_equal(open_flags(http_uri(&member, "root"), VB_OPEN_FROM_WIRE, &src, &conn, &err), -1);
    assert_int_equal(err.code, VB_ERR_OPERATION_INVALID);
    assert_non_null(strstr(err.message, "master is 127.0.0.1"));
    assert_int_equal(sim_logins(&master), 0); /* never dialled */
    char uri[300];
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?transport=http&cafile=/etc/shadow",
             master.port);
    assert_int_equal(open_flags(uri, VB_OPEN_FROM_WIRE, &src, &conn, &err), -1);
    assert_non_null(strstr(err.message, "cafile"));
    assert_int_equal(sim_logins(&master), 0);
    sim_stop(&member);
    sim_stop(&master);
}
static void test_session_expiry(void **state)
{
    (void)state;
    const char *extra[] = { "--idle-expiry", "1", NULL };
    sim s;
    sim_start(&s, extra);
    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(http_uri(&s, "root"), &p);
    size_t n = 0;
    free(list_ok(conn, &n));

    /* the host destroys the idle session; the next call logs in again
     * through the source (which a cache would answer) and goes on */
    assert_int_equal(wait_file_has(s.log, "session expired user=root", 1, 15000), 0);
    free(list_ok(conn, &n));
    assert_int_equal(n, 5);
    assert_int_equal(p.calls, 2);
    assert_int_equal(p.retry[1], 0);
    assert_int_equal(p.approves, 2);
    assert_int_equal(sim_logins(&s), 2);
    assert_int_equal(vb_ts_count_in_file(s.log, "VM.get_all_records user=- Failure SESSION_INVALID"),
                     1);

    /* get_this_host passes the session twice: both must be the new one */
    assert_int_equal(wait_file_has(s.log, "session expired user=root", 2, 15000), 0);
    char *host = NULL;
    vb_error err;
    assert_int_equal(drv->get_hostname(conn, &host, &err), 0);
    assert_string_equal(host, "xenhost1.lab");
    free(host);
    assert_int_equal(p.calls, 3);

    /* this time the new login fails: the call says why; the next call tries again */
    assert_int_equal(wait_file_has(s.log, "session expired user=root", 3, 15000), 0);
    p.passwords[0] = WRONG1;
    vb_domain_info *doms = NULL;
    expect_error(drv->list_domains(conn, &doms, &n, &err), &err, VB_ERR_AUTH_FAILED,
                 "the XenAPI session ended and logging in again failed");
    assert_int_equal(p.calls, 6);
    assert_int_equal(p.rejects, 3);
    p.passwords[0] = ROOT_PW;
    free(list_ok(conn, &n));
    assert_int_equal(p.calls, 7);
    assert_int_equal(p.approves, 4);
    drv->close(conn);
    assert_sim_log_clean(&s);
    sim_stop(&s);
}

static void test_max_sessions(void **state)
{
    (void)state;
    /* a host keeps few sessions per user and destroys the oldest */
    const char *extra[] = { "--max-sessions", "2", NULL };
    sim s;
    sim_start(&s, extra);
    person p1 = { .passwords = { ROOT_PW } }, p2 = p1, p3 = p1;
    void *c1 = open_ok(http_uri(&s, "root"), &p1);
    void *c2 = open_ok(http_uri(&s, "root"), &p2);
    void *c3 = open_ok(http_uri(&s, "root"), &p3);
    assert_int_equal(vb_ts_count_in_file(s.log, "session destroyed (max-sessions) user=root"), 1);
    size_t n = 0;
    free(list_ok(c1, &n)); /* c1's session was the oldest: it logs in again */
    assert_int_equal(p1.calls, 2);
    free(list_ok(c3, &n));
    assert_int_equal(p3.calls, 1);
    drv->close(c1);
    drv->close(c2);
    drv->close(c3);
    sim_stop(&s);
}

static void test_logout_on_close(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, NULL);
    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(http_uri(&s, "root"), &p);
    assert_int_equal(vb_ts_count_in_file(s.log, "session.logout"), 0);
    drv->close(conn);
    assert_int_equal(vb_ts_count_in_file(s.log, "session.logout user=root Success"), 1);
    drv->close(NULL);
    sim_stop(&s);
}

static void test_https(void **state)
{
    (void)state;
    const char *extra[] = { "--tls", cert_path, key_path, NULL };
    sim s;
    sim_start(&s, extra);
    char uri[512];
    vb_error err;
    void *conn = NULL;

    /* with the CA: works, default port aside */
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?cafile=%s", s.port, cert_path);
    person p = { .passwords = { ROOT_PW } };
    conn = open_ok(uri, &p);
    size_t n = 0;
    free(list_ok(conn, &n));
    assert_int_equal(n, 5);
    drv->close(conn);

    /* without it: refused, saying what to do */
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/", s.port);
    person q = { .passwords = { ROOT_PW } };
    vb_cred_source src = source_of(&q);
    expect_error(open_with(uri, &src, &conn, &err), &err, VB_ERR_NO_CONNECT, "not trusted");
    assert_non_null(strstr(err.message, "cafile="));
    assert_int_equal(q.calls, 0); /* an untrusted host is not sent a password, nor asked one */
    assert_int_equal(q.approves + q.rejects, 0);

    /* no_verify=1 for a test host */
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?no_verify=1", s.port);
    person r = { .passwords = { ROOT_PW } };
    conn = open_ok(uri, &r);
    drv->close(conn);

    /* the certificate names 127.0.0.1, not 127.0.0.3 */
    sim_stop(&s);
    sim t;
    assert_int_equal(sim_start_at(&t, "127.0.0.3", 0, extra), 0);
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.3:%d/?cafile=%s", t.port, cert_path);
    person u = { .passwords = { ROOT_PW } };
    src = source_of(&u);
    expect_error(open_with(uri, &src, &conn, &err), &err, VB_ERR_NO_CONNECT, "not trusted");

    /* plain HTTP to an HTTPS port */
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.3:%d/?transport=http", t.port);
    expect_error(open_with(uri, &src, &conn, &err), &err, VB_ERR_NO_CONNECT,
                 "drop transport=http");
    assert_int_equal(u.calls, 0);
    assert_int_equal(sim_logins(&t), 0);
    sim_stop(&t);
}

static void test_unreachable(void **state)
{
    (void)state;
    int port = vb_ts_free_tcp_port();
    char uri[128];
    snprintf(uri, sizeof uri, "xenapi://root@127.0.0.1:%d/?transport=http", port);
    person p = { .passwords = { ROOT_PW } };
    vb_cred_source src = source_of(&p);
    void *conn = NULL;
    vb_error err;
    char where[64];
    snprintf(where, sizeof where, "cannot reach XenAPI host 127.0.0.1:%d", port);
    expect_error(open_with(uri, &src, &conn, &err), &err, VB_ERR_NO_CONNECT, where);
    /* the host was tried before the person: nobody was asked for a password
     * a dead host could not check */
    assert_int_equal(p.calls, 0);
    assert_int_equal(p.approves + p.rejects, 0);
}

static void test_killed_between_calls(void **state)
{
    (void)state;
    sim s;
    sim_start(&s, NULL);
    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(http_uri(&s, "root"), &p);
    size_t n = 0;
    free(list_ok(conn, &n));
    sim_stop(&s);
    vb_domain_info *doms = NULL;
    vb_error err;
    expect_error(drv->list_domains(conn, &doms, &n, &err), &err, VB_ERR_NO_CONNECT,
                 "XenAPI host 127.0.0.1:");
    expect_error(drv->domain_start(conn, "db", &err), &err, VB_ERR_NO_CONNECT, "XenAPI host");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    drv->close(conn); /* the logout fails quickly and quietly */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    assert_int_equal(p.calls, 1);
}

typedef struct bg_call {
    const char *uri; /* open this, or … */
    void *conn;      /* … list on this */
    int rc;
    vb_error err;
} bg_call;

static void *call_in_background(void *arg)
{
    bg_call *b = arg;
    if (b->uri) {
        person p = { .passwords = { ROOT_PW } };
        vb_cred_source src = source_of(&p);
        b->rc = open_with(b->uri, &src, &b->conn, &b->err);
        return NULL;
    }
    vb_domain_info *doms = NULL;
    size_t n = 0;
    b->rc = drv->list_domains(b->conn, &doms, &n, &b->err);
    free(doms);
    return NULL;
}

/* Start b in a thread, wait until the simulator sits in method, kill it. */
static void kill_during(sim *s, const char *method, bg_call *b)
{
    char stalled[128];
    snprintf(stalled, sizeof stalled, "%s stalled", method);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, call_in_background, b), 0);
    assert_int_equal(wait_file_has(s->log, stalled, 1, 10000), 0);
    sim_stop(s);
    pthread_join(th, NULL);
}

static void test_killed_mid_call(void **state)
{
    (void)state;
    /* during the login, on the connection the reachability probe opened:
     * libcurl may retry it on a fresh connection, which then finds nobody;
     * either way a clear error naming the XenAPI host */
    const char *in_login[] = { "--stall", "session.login_with_password", NULL };
    sim s;
    sim_start(&s, in_login);
    char where[64];
    snprintf(where, sizeof where, "XenAPI host 127.0.0.1:%d", s.port);
    bg_call b = { .uri = http_uri(&s, "root") };
    kill_during(&s, "session.login_with_password", &b);
    expect_error(b.rc, &b.err, VB_ERR_NO_CONNECT, where);
    assert_null(b.conn);

    /* during a call on a kept-alive connection: the same */
    const char *in_list[] = { "--stall", "VM.get_all_records", NULL };
    sim_start(&s, in_list);
    snprintf(where, sizeof where, "XenAPI host 127.0.0.1:%d", s.port);
    person p = { .passwords = { ROOT_PW } };
    bg_call c = { .conn = open_ok(http_uri(&s, "root"), &p) };
    kill_during(&s, "VM.get_all_records", &c);
    expect_error(c.rc, &c.err, VB_ERR_NO_CONNECT, where);
    drv->close(c.conn);
}

static void test_timeout(void **state)
{
    (void)state;
    const char *extra[] = { "--stall", "VM.get_all_records", NULL };
    sim s;
    sim_start(&s, extra);
    char uri[300];
    snprintf(uri, sizeof uri, "%s&timeout=1", http_uri(&s, "root"));
    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(uri, &p);
    vb_domain_info *doms = NULL;
    size_t n = 0;
    vb_error err;
    expect_error(drv->list_domains(conn, &doms, &n, &err), &err, VB_ERR_TIMEOUT,
                 "did not answer VM.get_all_records in time");
    drv->close(conn);
    sim_stop(&s);
}

static void test_oversized_answer(void **state)
{
    (void)state;
    const char *extra[] = { "--oversize", "VM.get_all_records", NULL };
    sim s;
    sim_start(&s, extra);
    person p = { .passwords = { ROOT_PW } };
    void *conn = open_ok(http_uri(&s, "root"), &p);
    vb_domain_info *doms = NULL;
    size_t n = 0;
    vb_error err;
    expect_error(drv->list_domains(conn, &doms, &n, &err), &err, VB_ERR_TOO_LARGE,
                 "to VM.get_all_records is over 16777216 bytes");
    /* the connection is still good for what fits */
    char *host = NULL;
    assert_int_equal(drv->get_hostname(conn, &host, &err), 0);
    free(host);
    drv->close(conn);
    sim_stop(&s);
}

static void test_bad_uris(void **state)
{
    (void)state;
    static const struct {
        const char *uri;
        const char *message;
    } cases[] = {
        { "xenapi+tcp://127.0.0.1/", "for the remote driver" },
        { "xenapi:///", "no host" },
        { "xenapi://127.0.0.1/extra", "no path" },
        { "xenapi://127.0.0.1/?transport=ftp", "transport= must be http or https" },
        { "xenapi://127.0.0.1/?no_verify=yes", "no_verify= must be 0 or 1" },
        { "xenapi://127.0.0.1/?timeout=0", "timeout= must be" },
        { "xenapi://127.0.0.1/?cafile=", "cafile= is empty" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        person p = { .passwords = { ROOT_PW } };
        vb_cred_source src = source_of(&p);
        void *conn = NULL;
        vb_error err;
        expect_error(open_with(cases[i].uri, &src, &conn, &err), &err, VB_ERR_INVALID_ARG,
                     cases[i].message);
        assert_int_equal(p.calls, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_login_and_list),
        cmocka_unit_test(test_int_forms),
        cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_start_shutdown),
        cmocka_unit_test(test_wrong_then_right),
        cmocka_unit_test(test_three_wrong),
        cmocka_unit_test(test_user_and_escaped_password),
        cmocka_unit_test(test_nobody_to_ask),
        cmocka_unit_test(test_host_is_slave),
        cmocka_unit_test(test_wire_uri_follows_no_pool_redirect),
        cmocka_unit_test(test_session_expiry),
        cmocka_unit_test(test_max_sessions),
        cmocka_unit_test(test_logout_on_close),
        cmocka_unit_test(test_https),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_killed_between_calls),
        cmocka_unit_test(test_killed_mid_call),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_oversized_answer),
        cmocka_unit_test(test_bad_uris),
    };
    return cmocka_run_group_tests_name("xenapi", tests, group_setup, vb_ts_group_teardown);
}
