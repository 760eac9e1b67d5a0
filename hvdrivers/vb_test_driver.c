/*
 * vb_test_driver.c — the "test" driver: an in-memory host, as libvirt's
 * test:///default.
 *
 * test:///default is one host per process, shared by every connection, so a
 * domain started on one connection is running on all of them. As in
 * libvirt, it is reset to its initial domains when the first connection
 * opens after all were closed. test:///ABSOLUTE/PATH loads a host from a
 * vb_conf file; such a host belongs to its connection alone.
 *
 * Each host has a mutex because the daemons may call drivers from worker
 * threads. The open flags (read-only) and the credential source are not
 * used: the daemon enforces read-only, and a test host needs no login.
 */
#include "vb_driver.h"
#include "vb_conf.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_MAX_VCPUS 4096

typedef struct test_host {
    pthread_mutex_t lock; /* guards doms[].state/id and next_id */
    char hostname[VB_DOMAIN_NAME_MAX];
    vb_domain_info *doms;
    size_t ndoms;
    int32_t next_id; /* ids only grow, as on a real hypervisor */
} test_host;

typedef struct test_conn {
    test_host *host;
    int shared; /* host is the process-wide default host */
} test_conn;

/* ---- the default host ---------------------------------------------------- */

/* "test" is libvirt's test:///default domain, UUID included. */
static const vb_domain_info default_domains[] = {
    { 1, "test", "6695eb01-f6a4-8304-79aa-97f2502e193f", VB_DOMAIN_RUNNING, 8388608, 2 },
    { 2, "web", "1ffdac43-71e0-5d8c-8e0d-d615729e881e", VB_DOMAIN_RUNNING, 2097152, 2 },
    { -1, "db", "a5e63f4d-8b05-540a-88e3-a4d3d3761220", VB_DOMAIN_SHUTOFF, 4194304, 4 },
};

#define NDEFAULT (sizeof default_domains / sizeof default_domains[0])

static vb_domain_info default_live[NDEFAULT];

static test_host default_host = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .hostname = "test-host",
    .doms = default_live,
    .ndoms = NDEFAULT,
};

static unsigned default_refs; /* open connections to default_host; under its lock */

static test_host *default_host_ref(void)
{
    pthread_mutex_lock(&default_host.lock);
    if (default_refs++ == 0) {
        memcpy(default_live, default_domains, sizeof default_live);
        default_host.next_id = 3;
    }
    pthread_mutex_unlock(&default_host.lock);
    return &default_host;
}

static void default_host_unref(void)
{
    pthread_mutex_lock(&default_host.lock);
    default_refs--;
    pthread_mutex_unlock(&default_host.lock);
}

/* ---- file-backed hosts --------------------------------------------------- */

/* RFC 4122 version-5 UUID of name in a namespace of our own, so the same
 * name always gets the same UUID (tests and users can rely on it). */
static const unsigned char uuid_namespace[16] = {
    0xb7, 0xa1, 0xc3, 0xd2, 0x5e, 0x4f, 0x4a, 0x8b,
    0x9c, 0x0d, 0x1e, 0x2f, 0x3a, 0x4b, 0x5c, 0x6d,
};

static int uuid_from_name(const char *name, char out[VB_UUID_STRING_LEN], vb_error *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(ctx, uuid_namespace, sizeof uuid_namespace) &&
             EVP_DigestUpdate(ctx, name, strlen(name)) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen < 16)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_DRIVER, "cannot hash domain name");
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    snprintf(out, VB_UUID_STRING_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", md[0],
             md[1], md[2], md[3], md[4], md[5], md[6], md[7], md[8], md[9], md[10], md[11],
             md[12], md[13], md[14], md[15]);
    return 0;
}

/* Decimal digits only, no sign, 1..max. */
static int parse_count(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -1;
    }
    if (v == 0)
        return -1;
    *out = v;
    return 0;
}

/* Split "name:state:memory_kib:vcpus" from the right, so a name may hold ':'.
 * spec is modified in place; fields[0] is the name. */
static int split_spec(char *spec, char *fields[4])
{
    fields[0] = spec;
    for (int i = 3; i > 0; i--) {
        char *colon = strrchr(spec, ':');
        if (!colon)
            return -1;
        *colon = '\0';
        fields[i] = colon + 1;
    }
    return 0;
}

static int spec_error(vb_error *err, const char *where, const char *spec, const char *what)
{
    return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                        "%s: domain \"%.64s\": %s (expected \"name:running|shutoff:memory_kib:vcpus\")",
                        where, spec, what);
}

static int parse_domain(const char *spec, const char *where, vb_domain_info *d, vb_error *err)
{
    char buf[VB_DOMAIN_NAME_MAX + 64];
    char *f[4];
    uint64_t mem, vcpus;
    if (strlen(spec) >= sizeof buf)
        return spec_error(err, where, spec, "too long");
    strcpy(buf, spec);
    if (split_spec(buf, f) < 0)
        return spec_error(err, where, spec, "needs four ':'-separated fields");
    vb_error why;
    if (vb_domain_name_check(f[0], &why) < 0)
        return spec_error(err, where, spec, why.message);
    memset(d, 0, sizeof *d);
    strcpy(d->name, f[0]);
    if (strcmp(f[1], "running") == 0)
        d->state = VB_DOMAIN_RUNNING;
    else if (strcmp(f[1], "shutoff") == 0)
        d->state = VB_DOMAIN_SHUTOFF;
    else
        return spec_error(err, where, spec, "state must be running or shutoff");
    if (parse_count(f[2], UINT64_C(1) << 40, &mem) < 0)
        return spec_error(err, where, spec, "memory_kib must be a positive number");
    if (parse_count(f[3], TEST_MAX_VCPUS, &vcpus) < 0)
        return spec_error(err, where, spec, "vcpus must be 1..4096");
    d->memory_kib = mem;
    d->vcpus = (uint32_t)vcpus;
    d->id = -1;
    return uuid_from_name(d->name, d->uuid, err);
}

/* "file:line" of the entry named key (the last one, as the getters use). */
static void entry_where(const vb_conf *conf, const char *key, char *buf, size_t size)
{
    int line = 0;
    for (size_t i = 0; i < conf->nentries; i++)
        if (strcmp(conf->entries[i].key, key) == 0)
            line = conf->entries[i].line;
    snprintf(buf, size, "%s:%d", conf->path, line);
}

/* 1..size-1 bytes, no control characters. */
static int printable_name(const char *s, size_t size)
{
    size_t len = strnlen(s, size);
    if (len == 0 || len == size)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int load_hostname(vb_conf *conf, test_host *h, vb_error *err)
{
    const char *name = NULL;
    int rc = vb_conf_get_string(conf, "hostname", &name, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: missing hostname = \"...\"", conf->path);
    if (!printable_name(name, sizeof h->hostname)) {
        char where[600];
        entry_where(conf, "hostname", where, sizeof where);
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: hostname must be 1..%zu bytes without control characters",
                            where, sizeof h->hostname - 1);
    }
    strcpy(h->hostname, name);
    return 0;
}

static vb_domain_info *find_domain(test_host *h, const char *name)
{
    for (size_t i = 0; i < h->ndoms; i++)
        if (strcmp(h->doms[i].name, name) == 0)
            return &h->doms[i];
    return NULL;
}

static int load_domains(vb_conf *conf, test_host *h, vb_error *err)
{
    char *const *specs = NULL;
    size_t n = 0;
    char where[600];
    if (vb_conf_get_list(conf, "domains", &specs, &n, err) < 0)
        return -1;
    entry_where(conf, "domains", where, sizeof where);
    h->doms = calloc(n ? n : 1, sizeof *h->doms);
    if (!h->doms)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
    h->next_id = 1;
    for (size_t i = 0; i < n; i++) {
        vb_domain_info d;
        if (parse_domain(specs[i], where, &d, err) < 0)
            return -1;
        if (find_domain(h, d.name))
            return spec_error(err, where, specs[i], "the name is used twice");
        /* Running domains get ids 1, 2, ... in file order. */
        if (d.state == VB_DOMAIN_RUNNING)
            d.id = h->next_id++;
        h->doms[h->ndoms++] = d;
    }
    return 0;
}

static int refuse_unknown_keys(const vb_conf *conf, vb_error *err)
{
    const vb_conf_entry *e = vb_conf_unknown_key(conf);
    if (!e)
        return 0;
    return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                        "%s:%d: unknown key '%s' (a test host file knows hostname, domains)",
                        conf->path, e->line, e->key);
}

static void host_free(test_host *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->lock);
    free(h->doms);
    free(h);
}

static int host_load(const char *path, test_host **out, vb_error *err)
{
    vb_conf conf;
    if (vb_conf_parse_file(path, &conf, err) < 0) {
        vb_error_prefix(err, "test driver: loading host file");
        return -1;
    }
    test_host *h = calloc(1, sizeof *h);
    if (!h) {
        vb_conf_clear(&conf);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
    }
    pthread_mutex_init(&h->lock, NULL);
    int rc = -1;
    if (load_hostname(&conf, h, err) == 0 && load_domains(&conf, h, err) == 0 &&
        refuse_unknown_keys(&conf, err) == 0)
        rc = 0;
    vb_conf_clear(&conf);
    if (rc < 0) {
        host_free(h);
        return -1;
    }
    *out = h;
    return 0;
}

/* ---- the vtable ---------------------------------------------------------- */

#define TEST_URI_SHAPE "test:///default or test:///ABSOLUTE/PATH"

static int check_uri(const vb_uri *uri, vb_error *err)
{
    if (!uri || !uri->path)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                            "test driver: no URI (expected " TEST_URI_SHAPE ")");
    if (uri->transport)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                            "test driver: '+%s' is for the remote driver; the test driver "
                            "opens only local URIs (" TEST_URI_SHAPE ")",
                            uri->transport);
    if (uri->host && uri->host[0])
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                            "test driver: host '%.64s' given, but the test host is local "
                            "(expected " TEST_URI_SHAPE ")",
                            uri->host);
    if (uri->path[0] == '\0')
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                            "test driver: no path (expected " TEST_URI_SHAPE ")");
    return 0;
}

static int test_open(const vb_uri *uri, unsigned flags, struct vb_cred_source *creds,
                     void **conn, vb_error *err)
{
    (void)flags;
    (void)creds;
    if (check_uri(uri, err) < 0)
        return -1;
    test_conn *c = calloc(1, sizeof *c);
    if (!c)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
    if (strcmp(uri->path, "default") == 0) {
        c->host = default_host_ref();
        c->shared = 1;
    } else {
        /* The URI path has no leading '/': test:///srv/x.conf → "srv/x.conf". */
        char *path = NULL;
        if (asprintf(&path, "/%s", uri->path) < 0) {
            free(c);
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
        }
        int rc = host_load(path, &c->host, err);
        free(path);
        if (rc < 0) {
            free(c);
            return -1;
        }
    }
    *conn = c;
    return 0;
}

static void test_close(void *conn)
{
    test_conn *c = conn;
    if (!c)
        return;
    if (c->shared)
        default_host_unref();
    else
        host_free(c->host);
    free(c);
}

static test_host *conn_host(void *conn, vb_error *err)
{
    test_conn *c = conn;
    if (!c || !c->host) {
        vb_error_set(err, VB_ERR_NOT_OPEN, VB_DOM_DRIVER, "test driver: connection not open");
        return NULL;
    }
    return c->host;
}

static int test_get_hostname(void *conn, char **hostname, vb_error *err)
{
    test_host *h = conn_host(conn, err);
    if (!h)
        return -1;
    /* hostname never changes after open: no lock needed. */
    *hostname = strdup(h->hostname);
    if (!*hostname)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
    return 0;
}

static int test_list_domains(void *conn, vb_domain_info **doms, size_t *n, vb_error *err)
{
    test_host *h = conn_host(conn, err);
    if (!h)
        return -1;
    int rc = 0;
    pthread_mutex_lock(&h->lock);
    *doms = NULL;
    *n = 0;
    if (h->ndoms > 0) {
        *doms = malloc(h->ndoms * sizeof **doms);
        if (*doms) {
            memcpy(*doms, h->doms, h->ndoms * sizeof **doms);
            *n = h->ndoms;
        } else {
            rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
        }
    }
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* Both transitions share the checks: a valid name, an existing domain, the
 * right current state. Called with the host locked. */
static int transition(test_host *h, const char *name, int start, vb_error *err)
{
    vb_domain_info *d = find_domain(h, name);
    if (!d)
        return vb_error_set(err, VB_ERR_NO_DOMAIN, VB_DOM_DRIVER, "no domain named '%s'", name);
    if (start && d->state != VB_DOMAIN_SHUTOFF)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DRIVER,
                            d->state == VB_DOMAIN_RUNNING ? "domain '%s' is already running"
                                                          : "domain '%s' is not shut off",
                            name);
    if (!start && d->state != VB_DOMAIN_RUNNING)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DRIVER,
                            "domain '%s' is not running", name);
    d->state = start ? VB_DOMAIN_RUNNING : VB_DOMAIN_SHUTOFF;
    d->id = start ? h->next_id++ : -1;
    return 0;
}

static int change_state(void *conn, const char *name, int start, vb_error *err)
{
    test_host *h = conn_host(conn, err);
    if (!h || vb_domain_name_check(name, err) < 0)
        return -1;
    pthread_mutex_lock(&h->lock);
    int rc = transition(h, name, start, err);
    pthread_mutex_unlock(&h->lock);
    return rc;
}

static int test_domain_start(void *conn, const char *name, vb_error *err)
{
    return change_state(conn, name, 1, err);
}

static int test_domain_shutdown(void *conn, const char *name, vb_error *err)
{
    return change_state(conn, name, 0, err);
}

const vb_driver vb_test_driver = {
    .name = "test",
    .open = test_open,
    .close = test_close,
    .get_hostname = test_get_hostname,
    .list_domains = test_list_domains,
    .domain_start = test_domain_start,
    .domain_shutdown = test_domain_shutdown,
};
