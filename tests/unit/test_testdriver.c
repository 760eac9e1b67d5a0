/* The test driver: the default host's contents and sharing, start/shutdown
 * transitions and their errors, file-backed hosts and their errors, and the
 * driver table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vb_driver.h"

static const vb_driver *drv = &vb_test_driver;

static int open_uri(const char *text, unsigned flags, void **conn, vb_error *err)
{
    vb_uri uri;
    vb_error_clear(err);
    assert_int_equal(vb_uri_parse(text, &uri, err), 0);
    int rc = drv->open(&uri, flags, NULL, conn, err);
    vb_uri_clear(&uri);
    return rc;
}

static void *open_ok(const char *text)
{
    void *conn = NULL;
    vb_error err;
    int rc = open_uri(text, 0, &conn, &err);
    if (rc != 0)
        print_error("open %s: %s\n", text, err.message);
    assert_int_equal(rc, 0);
    assert_non_null(conn);
    return conn;
}

/* The domain called name, as list_domains reports it now. */
static vb_domain_info lookup(void *conn, const char *name)
{
    vb_domain_info *doms = NULL, found;
    size_t n = 0;
    vb_error err;
    assert_int_equal(drv->list_domains(conn, &doms, &n, &err), 0);
    memset(&found, 0, sizeof found);
    found.id = -2; /* "not found" marker the assertions below would catch */
    for (size_t i = 0; i < n; i++)
        if (strcmp(doms[i].name, name) == 0)
            found = doms[i];
    free(doms);
    assert_int_not_equal(found.id, -2);
    return found;
}

static void expect_error(int rc, const vb_error *err, int code, const char *message)
{
    assert_int_equal(rc, -1);
    assert_int_equal(err->code, code);
    if (!strstr(err->message, message))
        print_error("message lacks '%s': %s\n", message, err->message);
    assert_non_null(strstr(err->message, message));
}

/* ---- driver table and shared words --------------------------------------- */

static void test_lookup(void **state)
{
    (void)state;
    vb_error err;
    assert_ptr_equal(vb_driver_lookup("test", &err), &vb_test_driver);
    assert_string_equal(vb_test_driver.name, "test");

    vb_error_clear(&err);
    assert_null(vb_driver_lookup("esx", &err));
    assert_int_equal(err.code, VB_ERR_NO_DRIVER);
    assert_int_equal(err.domain, VB_DOM_DRIVER);
    assert_non_null(strstr(err.message, "'esx'"));
    assert_non_null(strstr(err.message, "drivers: test"));

    assert_null(vb_driver_lookup("TEST", &err));
    assert_null(vb_driver_lookup(NULL, &err));
    assert_int_equal(err.code, VB_ERR_NO_DRIVER);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(vb_domain_state_name(VB_DOMAIN_NOSTATE), "no state");
    assert_string_equal(vb_domain_state_name(VB_DOMAIN_RUNNING), "running");
    assert_string_equal(vb_domain_state_name(VB_DOMAIN_BLOCKED), "blocked");
    assert_string_equal(vb_domain_state_name(VB_DOMAIN_PAUSED), "paused");
    assert_string_equal(vb_domain_state_name(VB_DOMAIN_SHUTDOWN), "in shutdown");
    assert_string_equal(vb_domain_state_name(VB_DOMAIN_SHUTOFF), "shut off");
    assert_string_equal(vb_domain_state_name(VB_DOMAIN_CRASHED), "crashed");
    assert_string_equal(vb_domain_state_name(VB_DOMAIN_PMSUSPENDED), "pmsuspended");
    assert_string_equal(vb_domain_state_name(8), "unknown");
    assert_string_equal(vb_domain_state_name(UINT32_MAX), "unknown");
}

static void test_name_check(void **state)
{
    (void)state;
    vb_error err;
    char name[VB_DOMAIN_NAME_MAX + 1];
    assert_int_equal(vb_domain_name_check("web", &err), 0);
    assert_int_equal(vb_domain_name_check("a name with spaces: and \xc3\xa9", &err), 0);
    memset(name, 'x', VB_DOMAIN_NAME_MAX - 1);
    name[VB_DOMAIN_NAME_MAX - 1] = '\0';
    assert_int_equal(vb_domain_name_check(name, &err), 0); /* 255 bytes */
    name[VB_DOMAIN_NAME_MAX - 1] = 'x';
    name[VB_DOMAIN_NAME_MAX] = '\0';
    expect_error(vb_domain_name_check(name, &err), &err, VB_ERR_INVALID_ARG,
                 "longer than 255 bytes");
    expect_error(vb_domain_name_check("", &err), &err, VB_ERR_INVALID_ARG, "empty domain name");
    expect_error(vb_domain_name_check(NULL, &err), &err, VB_ERR_INVALID_ARG, "empty");
    expect_error(vb_domain_name_check("we\nb", &err), &err, VB_ERR_INVALID_ARG,
                 "control character at offset 2");
    expect_error(vb_domain_name_check("\x1b[2J", &err), &err, VB_ERR_INVALID_ARG,
                 "control character at offset 0");
    assert_null(strchr(err.message, '\x1b'));
}

/* ---- the default host ------------------------------------------------------ */

static void test_default_host_contents(void **state)
{
    (void)state;
    void *conn = open_ok("test:///default");
    vb_error err;
    char *hostname = NULL;
    assert_int_equal(drv->get_hostname(conn, &hostname, &err), 0);
    assert_string_equal(hostname, "test-host");
    free(hostname);

    vb_domain_info *doms = NULL;
    size_t n = 0;
    assert_int_equal(drv->list_domains(conn, &doms, &n, &err), 0);
    assert_int_equal(n, 3);
    /* libvirt's own test:///default domain, UUID included. */
    assert_int_equal(doms[0].id, 1);
    assert_string_equal(doms[0].name, "test");
    assert_string_equal(doms[0].uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f");
    assert_int_equal(doms[0].state, VB_DOMAIN_RUNNING);
    assert_int_equal(doms[0].memory_kib, 8388608);
    assert_int_equal(doms[0].vcpus, 2);

    assert_int_equal(doms[1].id, 2);
    assert_string_equal(doms[1].name, "web");
    assert_string_equal(doms[1].uuid, "1ffdac43-71e0-5d8c-8e0d-d615729e881e");
    assert_int_equal(doms[1].state, VB_DOMAIN_RUNNING);
    assert_int_equal(doms[1].memory_kib, 2097152);
    assert_int_equal(doms[1].vcpus, 2);

    assert_int_equal(doms[2].id, -1);
    assert_string_equal(doms[2].name, "db");
    assert_string_equal(doms[2].uuid, "a5e63f4d-8b05-540a-88e3-a4d3d3761220");
    assert_int_equal(doms[2].state, VB_DOMAIN_SHUTOFF);
    assert_int_equal(doms[2].memory_kib, 4194304);
    assert_int_equal(doms[2].vcpus, 4);

    /* The caller owns the copy: changing it changes nothing on the host. */
    doms[2].state = VB_DOMAIN_RUNNING;
    free(doms);
    assert_int_equal(lookup(conn, "db").state, VB_DOMAIN_SHUTOFF);
    drv->close(conn);
}

static void test_start_shutdown(void **state)
{
    (void)state;
    void *conn = open_ok("test:///default");
    vb_error err;

    assert_int_equal(drv->domain_start(conn, "db", &err), 0);
    vb_domain_info d = lookup(conn, "db");
    assert_int_equal(d.state, VB_DOMAIN_RUNNING);
    assert_int_equal(d.id, 3);
    expect_error(drv->domain_start(conn, "db", &err), &err, VB_ERR_OPERATION_INVALID,
                 "domain 'db' is already running");
    assert_int_equal(err.domain, VB_DOM_DRIVER);

    assert_int_equal(drv->domain_shutdown(conn, "web", &err), 0);
    d = lookup(conn, "web");
    assert_int_equal(d.state, VB_DOMAIN_SHUTOFF);
    assert_int_equal(d.id, -1);
    expect_error(drv->domain_shutdown(conn, "web", &err), &err, VB_ERR_OPERATION_INVALID,
                 "domain 'web' is not running");

    /* Ids are never reused while the host lives: web comes back as 4, not 2. */
    assert_int_equal(drv->domain_start(conn, "web", &err), 0);
    assert_int_equal(lookup(conn, "web").id, 4);
    assert_int_equal(lookup(conn, "test").id, 1);

    expect_error(drv->domain_start(conn, "nope", &err), &err, VB_ERR_NO_DOMAIN,
                 "no domain named 'nope'");
    expect_error(drv->domain_shutdown(conn, "nope", &err), &err, VB_ERR_NO_DOMAIN,
                 "no domain named 'nope'");
    expect_error(drv->domain_start(conn, "", &err), &err, VB_ERR_INVALID_ARG, "empty");
    expect_error(drv->domain_shutdown(conn, "d\tb", &err), &err, VB_ERR_INVALID_ARG,
                 "control character");
    /* A failed call changed nothing. */
    assert_int_equal(lookup(conn, "db").id, 3);
    drv->close(conn);
}

static void test_default_host_is_shared(void **state)
{
    (void)state;
    void *a = open_ok("test:///default");
    void *b = open_ok("test:///default?ignored=param");
    vb_error err;

    assert_int_equal(drv->domain_start(a, "db", &err), 0);
    assert_int_equal(lookup(b, "db").state, VB_DOMAIN_RUNNING);
    assert_int_equal(lookup(b, "db").id, 3);
    expect_error(drv->domain_start(b, "db", &err), &err, VB_ERR_OPERATION_INVALID,
                 "already running");
    assert_int_equal(drv->domain_shutdown(b, "test", &err), 0);
    assert_int_equal(lookup(a, "test").state, VB_DOMAIN_SHUTOFF);

    /* Closing one connection keeps the state for the other... */
    drv->close(a);
    assert_int_equal(lookup(b, "db").state, VB_DOMAIN_RUNNING);
    void *c = open_ok("test:///default");
    assert_int_equal(lookup(c, "db").state, VB_DOMAIN_RUNNING);
    drv->close(c);
    drv->close(b);

    /* ...and, as libvirt, the host starts fresh after the last one closed. */
    void *d = open_ok("test:///default");
    assert_int_equal(lookup(d, "db").state, VB_DOMAIN_SHUTOFF);
    assert_int_equal(lookup(d, "test").state, VB_DOMAIN_RUNNING);
    assert_int_equal(drv->domain_start(d, "db", &err), 0);
    assert_int_equal(lookup(d, "db").id, 3);
    drv->close(d);
}

static void test_read_only_not_enforced(void **state)
{
    (void)state;
    /* The daemon enforces read-only; the driver must not second-guess it. */
    void *conn = NULL;
    vb_error err;
    assert_int_equal(open_uri("test:///default", VB_OPEN_READ_ONLY, &conn, &err), 0);
    assert_int_equal(drv->domain_start(conn, "db", &err), 0);
    drv->close(conn);
}

enum { THREADS = 4, ROUNDS = 2000 };

typedef struct worker {
    int starts, shutdowns;
} worker;

/* Each thread toggles "db" on its own connection; the lock keeps every
 * transition whole, so successful starts and shutdowns alternate. */
static void *toggle(void *arg)
{
    worker *w = arg;
    void *conn = NULL;
    vb_error err;
    vb_uri uri;
    if (vb_uri_parse("test:///default", &uri, &err) < 0)
        return NULL;
    int rc = drv->open(&uri, 0, NULL, &conn, &err);
    vb_uri_clear(&uri);
    if (rc < 0)
        return NULL;
    for (int i = 0; i < ROUNDS; i++) {
        if (drv->domain_start(conn, "db", &err) == 0)
            w->starts++;
        if (drv->domain_shutdown(conn, "db", &err) == 0)
            w->shutdowns++;
    }
    drv->close(conn);
    return w;
}

static void test_default_host_threads(void **state)
{
    (void)state;
    /* Hold a connection so the host is not reset while threads come and go. */
    void *keep = open_ok("test:///default");
    pthread_t t[THREADS];
    worker w[THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, toggle, &w[i]), 0);
    int starts = 0, shutdowns = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ret = NULL;
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_ptr_equal(ret, &w[i]);
        starts += w[i].starts;
        shutdowns += w[i].shutdowns;
    }
    vb_domain_info db = lookup(keep, "db");
    assert_true(starts >= ROUNDS);
    assert_int_equal(starts - shutdowns, db.state == VB_DOMAIN_RUNNING ? 1 : 0);
    /* Every start took a fresh id: ids 1 and 2 were taken at open. */
    if (db.state == VB_DOMAIN_RUNNING)
        assert_int_equal(db.id, 2 + starts);
    drv->close(keep);
}

/* ---- file-backed hosts ------------------------------------------------------ */

typedef struct tmpfile_ {
    char path[64];
    char uri[80];
} tmpfile_;

static void write_host(tmpfile_ *f, const char *text)
{
    strcpy(f->path, "/tmp/vb-test-host-XXXXXX");
    int fd = mkstemp(f->path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    /* mkstemp names are [A-Za-z0-9/-]: no URI encoding needed. */
    snprintf(f->uri, sizeof f->uri, "test://%s", f->path);
}

static void remove_host(tmpfile_ *f)
{
    assert_int_equal(unlink(f->path), 0);
}

static const char lab1[] = "# a small lab\n"
                           "hostname = \"lab1\"\n"
                           "domains = [\"alpha:running:1048576:1\",\n"
                           "           \"beta:shutoff:2097152:2\",\n"
                           "           \"gamma:running:524288:8\",\n"
                           "           \"with:colon:running:1:1\"]\n";

static void test_file_host(void **state)
{
    (void)state;
    tmpfile_ f;
    write_host(&f, lab1);
    void *conn = open_ok(f.uri);
    vb_error err;

    char *hostname = NULL;
    assert_int_equal(drv->get_hostname(conn, &hostname, &err), 0);
    assert_string_equal(hostname, "lab1");
    free(hostname);

    vb_domain_info *doms = NULL;
    size_t n = 0;
    assert_int_equal(drv->list_domains(conn, &doms, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_string_equal(doms[0].name, "alpha");
    assert_int_equal(doms[0].state, VB_DOMAIN_RUNNING);
    assert_int_equal(doms[0].id, 1);
    assert_int_equal(doms[0].memory_kib, 1048576);
    assert_int_equal(doms[0].vcpus, 1);
    /* RFC 4122 v5 UUIDs: python3 -c 'import uuid; print(uuid.uuid5(
     * uuid.UUID("b7a1c3d2-5e4f-4a8b-9c0d-1e2f3a4b5c6d"), "alpha"))' */
    assert_string_equal(doms[0].uuid, "1a56a478-46d8-5ae9-8238-b9a47430bb77");
    assert_string_equal(doms[1].name, "beta");
    assert_int_equal(doms[1].state, VB_DOMAIN_SHUTOFF);
    assert_int_equal(doms[1].id, -1);
    assert_int_equal(doms[1].memory_kib, 2097152);
    assert_int_equal(doms[1].vcpus, 2);
    assert_string_equal(doms[1].uuid, "3ae183df-bf43-5216-876e-0cabceb7932d");
    /* Running domains are numbered in file order, skipping shut-off ones. */
    assert_string_equal(doms[2].name, "gamma");
    assert_int_equal(doms[2].id, 2);
    /* Fields split from the right, so a name may hold ':'. */
    assert_string_equal(doms[3].name, "with:colon");
    assert_int_equal(doms[3].id, 3);
    free(doms);

    assert_int_equal(drv->domain_start(conn, "beta", &err), 0);
    assert_int_equal(lookup(conn, "beta").id, 4);
    expect_error(drv->domain_start(conn, "alpha", &err), &err, VB_ERR_OPERATION_INVALID,
                 "domain 'alpha' is already running");
    assert_int_equal(drv->domain_shutdown(conn, "alpha", &err), 0);
    expect_error(drv->domain_shutdown(conn, "alpha", &err), &err, VB_ERR_OPERATION_INVALID,
                 "domain 'alpha' is not running");
    expect_error(drv->domain_start(conn, "test", &err), &err, VB_ERR_NO_DOMAIN,
                 "no domain named 'test'");

    /* A second open of the same file gets its own, fresh host. */
    void *other = open_ok(f.uri);
    assert_int_equal(lookup(other, "beta").state, VB_DOMAIN_SHUTOFF);
    assert_int_equal(lookup(other, "alpha").state, VB_DOMAIN_RUNNING);
    drv->close(other);
    assert_int_equal(lookup(conn, "beta").state, VB_DOMAIN_RUNNING);

    /* The default host never sees the file host's domains. */
    void *def = open_ok("test:///default");
    expect_error(drv->domain_start(def, "beta", &err), &err, VB_ERR_NO_DOMAIN,
                 "no domain named 'beta'");
    drv->close(def);

    drv->close(conn);
    remove_host(&f);
}

static void test_file_host_without_domains(void **state)
{
    (void)state;
    tmpfile_ f;
    write_host(&f, "hostname = \"empty\"\n");
    void *conn = open_ok(f.uri);
    vb_domain_info *doms = (vb_domain_info *)1;
    size_t n = 99;
    vb_error err;
    assert_int_equal(drv->list_domains(conn, &doms, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(doms);
    drv->close(conn);
    remove_host(&f);
}

/* The file fails to open with code, and the message contains fragment
 * (with "FILE" replaced by the temp file's path). */
static void bad_file(const char *text, int code, const char *fragment)
{
    tmpfile_ f;
    write_host(&f, text);
    void *conn = NULL;
    vb_error err;
    char expect[256];
    const char *mark = strstr(fragment, "FILE");
    if (mark)
        snprintf(expect, sizeof expect, "%.*s%s%s", (int)(mark - fragment), fragment, f.path,
                 mark + 4);
    else
        snprintf(expect, sizeof expect, "%s", fragment);
    expect_error(open_uri(f.uri, 0, &conn, &err), &err, code, expect);
    assert_null(conn);
    remove_host(&f);
}

static void test_bad_files(void **state)
{
    (void)state;
    bad_file("hostname = lab1\n", VB_ERR_CONFIG, "FILE:1: expected a value");
    bad_file("domains = []\n", VB_ERR_CONFIG, "FILE: missing hostname");
    bad_file("hostname = 5\n", VB_ERR_CONFIG, "FILE:1: 'hostname' must be a \"string\"");
    bad_file("hostname = \"\"\n", VB_ERR_CONFIG, "FILE:1: hostname must be 1..255 bytes");
    bad_file("hostname = \"h\"\ndomains = \"alpha\"\n", VB_ERR_CONFIG,
             "FILE:2: 'domains' must be a [list]");
    bad_file("hostname = \"h\"\nmemory = 5\n", VB_ERR_CONFIG,
             "FILE:2: unknown key 'memory'");
    bad_file("hostname = \"h\"\n\ndomains = [\"alpha:running:1024\"]\n", VB_ERR_CONFIG,
             "FILE:3: domain \"alpha:running:1024\": needs four ':'-separated fields");
    bad_file("hostname = \"h\"\ndomains = [\"alpha:paused:1024:1\"]\n", VB_ERR_CONFIG,
             "state must be running or shutoff");
    bad_file("hostname = \"h\"\ndomains = [\"alpha:running:0:1\"]\n", VB_ERR_CONFIG,
             "memory_kib must be a positive number");
    bad_file("hostname = \"h\"\ndomains = [\"alpha:running:-5:1\"]\n", VB_ERR_CONFIG,
             "memory_kib must be a positive number");
    bad_file("hostname = \"h\"\ndomains = [\"alpha:running:1024:4097\"]\n", VB_ERR_CONFIG,
             "vcpus must be 1..4096");
    bad_file("hostname = \"h\"\ndomains = [\"alpha:running:1024:\"]\n", VB_ERR_CONFIG,
             "vcpus must be 1..4096");
    bad_file("hostname = \"h\"\ndomains = [\":running:1024:1\"]\n", VB_ERR_CONFIG,
             "empty domain name");
    bad_file("hostname = \"h\"\ndomains = [\"a:running:1:1\", \"a:shutoff:1:1\"]\n",
             VB_ERR_CONFIG, "\"a:shutoff:1:1\": the name is used twice");
}

static void test_bad_uris(void **state)
{
    (void)state;
    void *conn = NULL;
    vb_error err;
    expect_error(open_uri("test:///nonexistent-vb-host", 0, &conn, &err), &err,
                 VB_ERR_SYSTEM, "'/nonexistent-vb-host': No such file or directory");
    assert_non_null(strstr(err.message, "test driver"));
    expect_error(open_uri("test:///tmp", 0, &conn, &err), &err, VB_ERR_CONFIG,
                 "not a regular file");
    expect_error(open_uri("test:///", 0, &conn, &err), &err, VB_ERR_INVALID_ARG,
                 "no path (expected test:///default or test:///ABSOLUTE/PATH)");
    expect_error(open_uri("test://somehost/default", 0, &conn, &err), &err,
                 VB_ERR_INVALID_ARG, "host 'somehost'");
    expect_error(open_uri("test+ssh://h/default", 0, &conn, &err), &err, VB_ERR_INVALID_ARG,
                 "'+ssh' is for the remote driver");
    /* "default" must match exactly. */
    expect_error(open_uri("test:///Default", 0, &conn, &err), &err, VB_ERR_SYSTEM,
                 "'/Default'");
    assert_null(conn);

    expect_error(drv->open(NULL, 0, NULL, &conn, &err), &err, VB_ERR_INVALID_ARG, "no URI");
    char *h = NULL;
    expect_error(drv->get_hostname(NULL, &h, &err), &err, VB_ERR_NOT_OPEN, "not open");
    drv->close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_name_check),
        cmocka_unit_test(test_default_host_contents),
        cmocka_unit_test(test_start_shutdown),
        cmocka_unit_test(test_default_host_is_shared),
        cmocka_unit_test(test_read_only_not_enforced),
        cmocka_unit_test(test_default_host_threads),
        cmocka_unit_test(test_file_host),
        cmocka_unit_test(test_file_host_without_domains),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_bad_uris),
    };
    return cmocka_run_group_tests_name("testdriver", tests, NULL, NULL);
}
