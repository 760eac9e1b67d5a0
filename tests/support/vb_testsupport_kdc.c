/* vb_testsupport: a real MIT KDC on 127.0.0.1 in a private dir.
 *
 * Every Kerberos tool runs with KRB5_CONFIG and KRB5_KDC_PROFILE pointing at
 * the files written here: the krb5-config package leaves an /etc/krb5.conf
 * that names internet KDCs, and /etc/krb5kdc/kdc.conf names /var/lib/krb5kdc.
 *
 * Two facts about the tools shape this file:
 *  - `kadmin.local` exits 0 even when a command fails ("Principal or policy
 *    already exists"), so its output is checked for each "created" line and
 *    the keytab is listed with `klist -k`.
 *  - readiness is "kinit works", not "the port accepts" (another process may
 *    own the port): kinit is tried once krb5kdc has logged "commencing
 *    operation". A krb5kdc whose port was taken between our probe and its
 *    bind exits 1 ("Address already in use"); it is restarted on a fresh port.
 */
#include "vb_testsupport_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define KRB5KDC        "/usr/sbin/krb5kdc"
#define KDB5_UTIL      "/usr/sbin/kdb5_util"
#define KADMIN_LOCAL   "/usr/sbin/kadmin.local"
#define KINIT          "/usr/bin/kinit"
#define KLIST          "/usr/bin/klist"

#define KDC_READY_MS        10000   /* krb5kdc start → first successful kinit */
#define KDC_START_ATTEMPTS  3       /* fresh port after a krb5kdc that died */
#define KDC_TOOL_MS         30000   /* kdb5_util / kadmin.local / kinit */
#define KDC_PROBE_MS        3000    /* one readiness kinit */
#define KDC_STOP_MS         3000
#define KDC_MASTER_PW       "vbts-master-key"
#define KDC_READY_PRINC     "vbts-ready"
#define KDC_READY_PW        "vbts-ready-pw"

/* A port free for both TCP and UDP on 127.0.0.1 (the KDC listens on both). */
static int free_tcp_udp_port(void)
{
    for (int i = 0; i < 32; i++) {
        int port = vb_ts_free_tcp_port();
        if (port < 0)
            return -1;
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return port;
    }
    fprintf(stderr, "vb_ts_kdc_start: no port free for both TCP and UDP\n");
    return -1;
}

/* The first port to try: VB_TS_KDC_PORT when set (to debug with a fixed
 * port, or to test the retry), else a free one. */
static int first_port(void)
{
    const char *env = getenv("VB_TS_KDC_PORT");
    if (env != NULL && *env != '\0') {
        char *end;
        long p = strtol(env, &end, 10);
        if (*end == '\0' && p > 0 && p < 65536)
            return (int)p;
        fprintf(stderr, "vb_ts_kdc_start: ignoring bad VB_TS_KDC_PORT=%s\n", env);
    }
    return free_tcp_udp_port();
}

/* krb5kdc logs this once its sockets are bound. */
static int kdc_log_says_up(const vb_ts_kdc *kdc)
{
    char *path = vb_ts_priv_fmt("%s/kdc.log", kdc->dir);
    FILE *f = fopen(path, "re");
    free(path);
    if (f == NULL)
        return 0;
    char line[512];
    int up = 0;
    while (!up && fgets(line, sizeof line, f) != NULL)
        up = strstr(line, "commencing operation") != NULL;
    fclose(f);
    return up;
}

char **vb_ts_kdc_env_list(const vb_ts_kdc *kdc)
{
    char **env = calloc(6, sizeof *env);
    if (env == NULL)
        abort();
    env[0] = vb_ts_priv_fmt("KRB5_CONFIG=%s", kdc->krb5_conf);
    env[1] = vb_ts_priv_fmt("KRB5_KDC_PROFILE=%s", kdc->kdc_conf);
    env[2] = vb_ts_priv_fmt("KRB5CCNAME=FILE:%s", kdc->ccache);
    env[3] = vb_ts_priv_fmt("KRB5RCACHEDIR=%s", kdc->rcache_dir);
    env[4] = vb_ts_priv_fmt("KRB5_KTNAME=FILE:%s", kdc->keytab);
    return env;
}

void vb_ts_env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

void vb_ts_kdc_env(const vb_ts_kdc *kdc, int include_keytab)
{
    char *ccname = vb_ts_priv_fmt("FILE:%s", kdc->ccache);
    setenv("KRB5_CONFIG", kdc->krb5_conf, 1);
    setenv("KRB5_KDC_PROFILE", kdc->kdc_conf, 1);
    setenv("KRB5CCNAME", ccname, 1);
    setenv("KRB5RCACHEDIR", kdc->rcache_dir, 1);
    if (include_keytab) {
        char *ktname = vb_ts_priv_fmt("FILE:%s", kdc->keytab);
        setenv("KRB5_KTNAME", ktname, 1);
        free(ktname);
    } else {
        unsetenv("KRB5_KTNAME");
    }
    free(ccname);
}

/* Run a Kerberos tool with this KDC's environment. */
static int krb_run_ms(const vb_ts_kdc *kdc, char *const argv[], const char *stdin_text,
                      char **out, int timeout_ms)
{
    char **env = vb_ts_kdc_env_list(kdc);
    int rc = vb_ts_run(argv, env, stdin_text, out, timeout_ms);
    vb_ts_env_free(env);
    return rc;
}

static int krb_run(const vb_ts_kdc *kdc, char *const argv[], const char *stdin_text, char **out)
{
    return krb_run_ms(kdc, argv, stdin_text, out, KDC_TOOL_MS);
}

static int kinit_status(const vb_ts_kdc *kdc, const char *user, const char *password,
                        char **out, int timeout_ms)
{
    char *argv[] = { KINIT, (char *)user, NULL };
    char *pw = vb_ts_priv_fmt("%s\n", password);
    int rc = krb_run_ms(kdc, argv, pw, out, timeout_ms);
    explicit_bzero(pw, strlen(pw));
    free(pw);
    return rc;
}

int vb_ts_kinit(const vb_ts_kdc *kdc, const char *user, const char *password)
{
    char *out = NULL;
    int rc = kinit_status(kdc, user, password, &out, KDC_TOOL_MS);
    if (rc != 0)
        fprintf(stderr, "vb_ts_kinit: kinit %s failed (status %d): %s", user, rc, out ? out : "\n");
    free(out);
    return rc == 0 ? 0 : -1;
}

static void print_logs(const vb_ts_kdc *kdc)
{
    static const char *const names[] = { "krb5kdc.out", "kdc.log" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = vb_ts_priv_fmt("%s/%s", kdc->dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > 0) {
            char *text = vb_ts_read_file(path, NULL);
            fprintf(stderr, "---- %s ----\n%s---- end of %s ----\n", path, text ? text : "", names[i]);
            free(text);
        }
        free(path);
    }
}

static int write_configs(const vb_ts_kdc *kdc)
{
    const char *d = kdc->dir, *r = kdc->realm;
    int p = kdc->port;
    char *krb5 = vb_ts_priv_fmt(
        "# written by vb_testsupport; never /etc/krb5.conf\n"
        "[libdefaults]\n"
        "    default_realm = %s\n"
        "    dns_lookup_realm = false\n"
        "    dns_lookup_kdc = false\n"
        "    rdns = false\n"
        "    dns_canonicalize_hostname = false\n"
        "    default_ccache_name = FILE:%s\n"
        "[realms]\n"
        "    %s = {\n"
        "        kdc = 127.0.0.1:%d\n"
        "    }\n"
        "[domain_realm]\n"
        "    localhost = %s\n"
        "    .localhost = %s\n"
        "    127.0.0.1 = %s\n",
        r, kdc->ccache, r, p, r, r, r);
    char *kdcconf = vb_ts_priv_fmt(
        "# written by vb_testsupport\n"
        "[kdcdefaults]\n"
        "    kdc_listen = 127.0.0.1:%d\n"
        "    kdc_tcp_listen = 127.0.0.1:%d\n"
        "[realms]\n"
        "    %s = {\n"
        "        database_name = %s/principal\n"
        "        acl_file = %s/kadm5.acl\n"
        "        key_stash_file = %s/stash\n"
        "        kdc_listen = 127.0.0.1:%d\n"
        "        kdc_tcp_listen = 127.0.0.1:%d\n"
        "    }\n"
        "[logging]\n"
        "    kdc = FILE:%s/kdc.log\n"
        "    admin_server = FILE:%s/kadmin.log\n"
        "    default = FILE:%s/krb5.log\n",
        p, p, r, d, d, d, p, p, d, d, d);
    char *acl = vb_ts_priv_fmt("*/admin@%s *\n", r);
    char *acl_path = vb_ts_priv_fmt("%s/kadm5.acl", d);
    int rc = vb_ts_write_file(kdc->krb5_conf, krb5, 0600);
    if (rc == 0)
        rc = vb_ts_write_file(kdc->kdc_conf, kdcconf, 0600);
    if (rc == 0)
        rc = vb_ts_write_file(acl_path, acl, 0600);
    free(acl_path);
    free(acl);
    free(kdcconf);
    free(krb5);
    return rc;
}

/* "name:password" → malloc'd name and password, checked for what a quoted
 * kadmin argument can carry. */
static int split_user(const char *entry, char **name, char **pw)
{
    const char *colon = entry ? strchr(entry, ':') : NULL;
    *name = *pw = NULL;
    if (colon == NULL) {
        fprintf(stderr, "vb_ts_kdc_start: user entry must be \"name:password\": %s\n",
                entry ? entry : "(null)");
        return -1;
    }
    *name = vb_ts_priv_fmt("%.*s", (int)(colon - entry), entry);
    *pw = vb_ts_priv_fmt("%s", colon + 1);
    if (!vb_ts_priv_chars_ok(*name, "._-/@") || **pw == '\0' || strpbrk(*pw, "\"\\\r\n") != NULL) {
        fprintf(stderr, "vb_ts_kdc_start: bad user entry for %s (name: [A-Za-z0-9._-/@]; "
                        "password: non-empty, no '\"', '\\' or newline)\n", *name);
        free(*name);
        free(*pw);
        *name = *pw = NULL;
        return -1;
    }
    return 0;
}

static char *full_name(const vb_ts_kdc *kdc, const char *name)
{
    return strchr(name, '@') ? vb_ts_priv_fmt("%s", name) : vb_ts_priv_fmt("%s@%s", name, kdc->realm);
}

/* Create the database and principals; export the service keys. */
static int create_realm(vb_ts_kdc *kdc, const char *const users[], const char *const svcs[])
{
    char *out = NULL;
    char *create[] = { KDB5_UTIL, "create", "-s", "-r", kdc->realm, "-P", KDC_MASTER_PW, NULL };
    int rc = krb_run(kdc, create, NULL, &out);
    if (rc != 0) {
        fprintf(stderr, "vb_ts_kdc_start: kdb5_util create failed (status %d): %s\n", rc, out ? out : "");
        free(out);
        return -1;
    }
    free(out);
    out = NULL;

    /* One kadmin.local for every command: it reads them from stdin. */
    char *cmds = NULL, **expect = NULL;
    size_t cmds_len = 0, nexpect = 0;
    FILE *f = open_memstream(&cmds, &cmds_len);
    if (f == NULL)
        abort();
    size_t nusers = 0, nsvcs = 0;
    while (users && users[nusers])
        nusers++;
    while (svcs && svcs[nsvcs])
        nsvcs++;
    expect = calloc(nusers + nsvcs + 1, sizeof *expect);
    if (expect == NULL)
        abort();
    rc = 0;
    for (size_t i = 0; i < nusers && rc == 0; i++) {
        char *name, *pw;
        rc = split_user(users[i], &name, &pw);
        if (rc == 0) {
            fprintf(f, "addprinc -pw \"%s\" %s\n", vb_ts_note_secret(pw), name);
            expect[nexpect++] = full_name(kdc, name);
            explicit_bzero(pw, strlen(pw));
            free(pw);
            free(name);
        }
    }
    if (nusers == 0) {
        fprintf(f, "addprinc -pw \"%s\" %s\n", KDC_READY_PW, KDC_READY_PRINC);
        expect[nexpect++] = full_name(kdc, KDC_READY_PRINC);
    }
    for (size_t i = 0; i < nsvcs && rc == 0; i++) {
        if (!vb_ts_priv_chars_ok(svcs[i], "._-/@")) {
            fprintf(stderr, "vb_ts_kdc_start: bad service principal name: %s\n", svcs[i]);
            rc = -1;
            break;
        }
        fprintf(f, "addprinc -randkey %s\nktadd -k \"%s\" %s\n", svcs[i], kdc->keytab, svcs[i]);
        expect[nexpect++] = full_name(kdc, svcs[i]);
    }
    fclose(f);

    if (rc == 0) {
        char *kadmin[] = { KADMIN_LOCAL, "-r", kdc->realm, NULL };
        int st = krb_run(kdc, kadmin, cmds, &out);
        for (size_t i = 0; i < nexpect && st == 0; i++) {
            char *line = vb_ts_priv_fmt("Principal \"%s\" created.", expect[i]);
            if (out == NULL || strstr(out, line) == NULL)
                st = -2;
            free(line);
        }
        if (st != 0) {
            fprintf(stderr, "vb_ts_kdc_start: kadmin.local did not create every principal "
                            "(status %d):\n%s\n", st, out ? out : "");
            rc = -1;
        }
    }
    explicit_bzero(cmds, cmds_len);
    free(cmds);
    free(out);
    out = NULL;

    if (rc == 0 && nsvcs > 0) {
        char *klist[] = { KLIST, "-k", kdc->keytab, NULL };
        int st = krb_run(kdc, klist, NULL, &out);
        for (size_t i = nexpect - nsvcs; i < nexpect && st == 0; i++)
            if (out == NULL || strstr(out, expect[i]) == NULL)
                st = -2;
        if (st != 0) {
            fprintf(stderr, "vb_ts_kdc_start: keytab %s lacks a service key (status %d):\n%s\n",
                    kdc->keytab, st, out ? out : "");
            rc = -1;
        }
        free(out);
    }
    for (size_t i = 0; i < nexpect; i++)
        free(expect[i]);
    free(expect);
    return rc;
}

struct ready {
    const vb_ts_kdc *kdc;
    const char *user, *pw;
    int died;
};

static int cond_ready(void *arg)
{
    struct ready *r = arg;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)r->kdc->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        si.si_pid == r->kdc->pid) {
        r->died = 1;
        return 1;
    }
    if (!kdc_log_says_up(r->kdc))
        return 0;
    return kinit_status(r->kdc, r->user, r->pw, NULL, KDC_PROBE_MS) == 0;
}

/* Start krb5kdc and wait for a working kinit: 0 ready, 1 krb5kdc died
 * (retry on a fresh port), -1 give up. */
static int start_kdc_once(vb_ts_kdc *kdc, const char *user, const char *pw)
{
    char *pidfile = vb_ts_priv_fmt("%s/krb5kdc.pid", kdc->dir);
    char *log = vb_ts_priv_fmt("%s/krb5kdc.out", kdc->dir);
    /* -n: stay in the foreground, so the pid we hold is the KDC itself. */
    char *argv[] = { KRB5KDC, "-n", "-r", kdc->realm, "-P", pidfile, NULL };
    /* A fresh log: readiness looks for this attempt's "commencing operation". */
    char *kdclog = vb_ts_priv_fmt("%s/kdc.log", kdc->dir);
    unlink(kdclog);
    free(kdclog);
    char **env = vb_ts_kdc_env_list(kdc);
    kdc->pid = vb_ts_spawn(argv, env, log);
    vb_ts_env_free(env);
    free(log);
    free(pidfile);
    if (kdc->pid < 0) {
        kdc->pid = 0;
        return -1;
    }

    struct ready r = { kdc, user, pw, 0 };
    int rc = vb_ts_wait_until_quiet(cond_ready, &r, KDC_READY_MS);
    if (rc == 0 && !r.died)
        return 0;
    if (r.died) {
        int st = -1;
        vb_ts_wait_pid_exit(kdc->pid, KDC_STOP_MS, &st);
        fprintf(stderr, "vb_ts_kdc_start: krb5kdc exited (status %d) on port %d\n", st, kdc->port);
        kdc->pid = 0;
        print_logs(kdc);
        return 1;
    }
    fprintf(stderr, "vb_ts_kdc_start: kinit %s still fails after %d ms\n", user, KDC_READY_MS);
    vb_ts_kinit(kdc, user, pw);   /* prints kinit's own message */
    print_logs(kdc);
    return -1;
}

int vb_ts_kdc_start(vb_ts_kdc *kdc, const char *realm, const char *const users[],
                    const char *const service_principals[])
{
    memset(kdc, 0, sizeof *kdc);
    if (!vb_ts_priv_chars_ok(realm, ".-_")) {
        fprintf(stderr, "vb_ts_kdc_start: bad realm name %s\n", realm ? realm : "(null)");
        return -1;
    }
    const char *dir = vb_ts_tmpdir("kdc");
    if (dir == NULL)
        return -1;
    kdc->dir = vb_ts_priv_fmt("%s", dir);
    kdc->realm = vb_ts_priv_fmt("%s", realm);
    kdc->krb5_conf = vb_ts_priv_fmt("%s/krb5.conf", dir);
    kdc->kdc_conf = vb_ts_priv_fmt("%s/kdc.conf", dir);
    kdc->keytab = vb_ts_priv_fmt("%s/service.keytab", dir);
    kdc->ccache = vb_ts_priv_fmt("%s/ccache", dir);
    kdc->rcache_dir = vb_ts_priv_fmt("%s/rcache", dir);

    char *user = NULL, *pw = NULL;
    int rc = -1;
    if (mkdir(kdc->rcache_dir, 0700) != 0) {
        fprintf(stderr, "vb_ts_kdc_start: mkdir %s: %s\n", kdc->rcache_dir, strerror(errno));
        goto out;
    }
    if ((kdc->port = first_port()) < 0 || write_configs(kdc) != 0 ||
        create_realm(kdc, users, service_principals) != 0)
        goto out;

    if (users && users[0]) {
        if (split_user(users[0], &user, &pw) != 0)
            goto out;
    } else {
        user = vb_ts_priv_fmt("%s", KDC_READY_PRINC);
        pw = vb_ts_priv_fmt("%s", KDC_READY_PW);
    }
    for (int attempt = 0; attempt < KDC_START_ATTEMPTS; attempt++) {
        if (attempt > 0 && ((kdc->port = free_tcp_udp_port()) < 0 || write_configs(kdc) != 0))
            break;
        int st = start_kdc_once(kdc, user, pw);
        if (st == 0) {
            rc = 0;
            break;
        }
        if (st < 0)
            break;
    }
out:
    if (pw)
        explicit_bzero(pw, strlen(pw));
    free(pw);
    free(user);
    if (rc != 0) {
        fprintf(stderr, "vb_ts_kdc_start: could not start a KDC for %s in %s\n", realm, kdc->dir);
        vb_ts_kdc_stop(kdc);
    }
    return rc;
}

void vb_ts_kdc_stop(vb_ts_kdc *kdc)
{
    if (kdc == NULL)
        return;
    if (kdc->pid > 0)
        vb_ts_stop(kdc->pid, KDC_STOP_MS);
    if (kdc->dir)
        vb_ts_priv_rmtree_now(kdc->dir);
    free(kdc->dir);
    free(kdc->realm);
    free(kdc->krb5_conf);
    free(kdc->kdc_conf);
    free(kdc->keytab);
    free(kdc->ccache);
    free(kdc->rcache_dir);
    memset(kdc, 0, sizeof *kdc);
}
