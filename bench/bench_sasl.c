/*
 * bench_sasl — what one SASL login costs inside Cyrus, with no vbroker code
 * around it: client and server in one process, talking through memory.
 *
 * It separates the libraries' per-login cost from ours (issue 18, item 2):
 * the same login through vbrokerd and vbhostd costs the plugin's CPU twice
 * (the broker is the client, vbhostd the server) plus the transport. It also
 * counts the heap left behind per login (mallinfo2 before and after), which
 * is how the DIGEST-MD5 RC4 layer's leak in Debian's plugin shows up.
 *
 *   bench_sasl [N]   N logins per row (default 200; SCRAM rows N/10)
 *
 * Rows: DIGEST-MD5 without and with a security layer (RC4, what a TCP
 * listener with tcp_min_ssf > 0 negotiates), SCRAM-SHA-256 against a sasldb
 * holding the password (the server derives the keys on every login) and
 * against one holding only SCRAM verifiers (saslpasswd2 -n with
 * scram_secret_generate: the server only compares).
 */
#include <malloc.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vb_testsupport.h"
#include "vb_testsupport_saslcb.h"

#define APP "vbhostd"
#define REALM "BENCH.TEST"
#define USER "alice"
#define PASSWORD "bench-Pw-7"
/* Cyrus stores every callback as int (*)(void); through void (*)(void) the
 * cast says so on purpose (-Wcast-function-type). */
#define SASL_FN(f) ((int (*)(void))(void (*)(void))(f))

typedef struct row {
    const char *label, *mech;
    int layer;          /* ask for a security layer (min_ssf 56) */
    const char *db;     /* which sasldb the server reads */
    int n;
} row;

static int server_getopt(void *ctx, const char *plugin, const char *option, const char **result,
                         unsigned *len)
{
    (void)plugin;
    const char *value = NULL;
    if (strcmp(option, "sasldb_path") == 0)
        value = ctx;
    else if (strcmp(option, "pwcheck_method") == 0)
        value = "auxprop";
    else if (strcmp(option, "auxprop_plugin") == 0)
        value = "sasldb";
    if (!value)
        return SASL_FAIL;
    *result = value;
    if (len)
        *len = (unsigned)strlen(value);
    return SASL_OK;
}

/* the client's answers: USER, AUTHNAME and PASS (tests/support) */
static vb_ts_sasl_client_creds client;

static void set_props(sasl_conn_t *conn, int layer)
{
    sasl_security_properties_t p;
    memset(&p, 0, sizeof p);
    p.maxbufsize = 65536;
    p.min_ssf = layer ? 56 : 0;
    p.max_ssf = layer ? 256 : 0;
    sasl_setprop(conn, SASL_SEC_PROPS, &p);
}

/* One whole login (and, with a layer, one message each way). 0 on success. */
static int login_once(const row *r)
{
    sasl_callback_t server_cbs[] = {
        { SASL_CB_GETOPT, SASL_FN(server_getopt), (void *)r->db },
        { SASL_CB_LIST_END, NULL, NULL },
    };
    sasl_conn_t *srv = NULL, *cli = NULL;
    int rc = SASL_FAIL;
    if (sasl_server_new(APP, "localhost", REALM, NULL, NULL, server_cbs, 0, &srv) != SASL_OK ||
        sasl_client_new(APP, "localhost", NULL, NULL, client.cbs, 0, &cli) != SASL_OK)
        goto out;
    set_props(srv, r->layer);
    set_props(cli, r->layer);
    const char *cout = NULL, *sout = NULL, *mech = NULL;
    unsigned coutlen = 0, soutlen = 0;
    rc = sasl_client_start(cli, r->mech, NULL, &cout, &coutlen, &mech);
    if (rc != SASL_OK && rc != SASL_CONTINUE)
        goto out;
    rc = sasl_server_start(srv, r->mech, cout, coutlen, &sout, &soutlen);
    while (rc == SASL_CONTINUE) {
        int crc = sasl_client_step(cli, sout, soutlen, NULL, &cout, &coutlen);
        if (crc != SASL_OK && crc != SASL_CONTINUE) {
            rc = crc;
            goto out;
        }
        rc = sasl_server_step(srv, cout, coutlen, &sout, &soutlen);
    }
    if (rc == SASL_OK && r->layer) {
        const char *enc = NULL, *dec = NULL;
        unsigned enclen = 0, declen = 0;
        if (sasl_encode(cli, "ping", 4, &enc, &enclen) != SASL_OK ||
            sasl_decode(srv, enc, enclen, &dec, &declen) != SASL_OK || declen != 4)
            rc = SASL_FAIL;
    }
out:
    if (rc != SASL_OK)
        fprintf(stderr, "bench_sasl: %s: %s\n", r->label,
                sasl_errdetail(srv ? srv : cli) ? sasl_errdetail(srv ? srv : cli) : "failed");
    sasl_dispose(&cli);
    sasl_dispose(&srv);
    return rc == SASL_OK ? 0 : -1;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int run_row(const row *r)
{
    if (login_once(r) < 0) /* warm-up: plugins and lazily built tables */
        return -1;
    size_t heap0 = mallinfo2().uordblks;
    double t0 = now_ms();
    for (int i = 0; i < r->n; i++)
        if (login_once(r) < 0)
            return -1;
    double ms = (now_ms() - t0) / r->n;
    long long heap = (long long)mallinfo2().uordblks - (long long)heap0;
    printf("%-58s %9.3f %12.1f %6d\n", r->label, ms, (double)heap / r->n, r->n);
    return 0;
}

/* A sasldb with SCRAM verifiers only: no password a server could read. */
static int scram_only_db(const char *dir, char *db, size_t len)
{
    char conf[400], env[400];
    snprintf(db, len, "%s/sasldb", dir);
    snprintf(conf, sizeof conf, "%s/" APP ".conf", dir);
    char text[600];
    snprintf(text, sizeof text,
             "mech_list: scram-sha-256\nscram_secret_generate: yes\nsasldb_path: %s\n", db);
    if (vb_ts_write_file(conf, text, 0600) < 0)
        return -1;
    snprintf(env, sizeof env, "SASL_CONF_PATH=%s", dir);
    char *argv[] = { "/usr/sbin/saslpasswd2", "-n", "-p", "-f", db, "-a", APP, "-u", REALM,
                     "-c", USER, NULL };
    char *envv[] = { env, NULL };
    return vb_ts_run(argv, envv, PASSWORD, NULL, 10000) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    if (n < 10)
        n = 10;
    char *dir = vb_ts_tmpdir("bench-sasl");
    char plain_dir[300], scram_dir[300], plain_db[400], scram_db[400];
    snprintf(plain_dir, sizeof plain_dir, "%s/plain", dir);
    snprintf(scram_dir, sizeof scram_dir, "%s/scram", dir);
    snprintf(plain_db, sizeof plain_db, "%s/sasldb", plain_dir);
    static const char *const users[] = { USER ":" PASSWORD, NULL };
    if (!dir || vb_ts_sasl_setup(plain_dir, APP, REALM, "digest-md5 scram-sha-256", users, NULL) < 0 ||
        vb_ts_run((char *[]){ "mkdir", "-m", "700", scram_dir, NULL }, NULL, NULL, NULL, 5000) ||
        scram_only_db(scram_dir, scram_db, sizeof scram_db) < 0) {
        fprintf(stderr, "bench_sasl: cannot set up the sasldbs\n");
        vb_ts_cleanup();
        return 1;
    }
    if (sasl_server_init(NULL, APP) != SASL_OK || sasl_client_init(NULL) != SASL_OK) {
        fprintf(stderr, "bench_sasl: cannot initialise Cyrus SASL\n");
        vb_ts_cleanup();
        return 1;
    }
    vb_ts_sasl_client_creds_init(&client, USER, PASSWORD);
    const row rows[] = {
        { "DIGEST-MD5, no security layer", "DIGEST-MD5", 0, plain_db, n },
        { "DIGEST-MD5, RC4 security layer (TCP, tcp_min_ssf > 0)", "DIGEST-MD5", 1, plain_db, n },
        { "SCRAM-SHA-256, sasldb holds the password", "SCRAM-SHA-256", 0, plain_db, n / 10 },
        { "SCRAM-SHA-256, sasldb holds SCRAM verifiers only", "SCRAM-SHA-256", 0, scram_db, n / 10 },
    };
    const char *impl = NULL, *version = NULL;
    sasl_version_info(&impl, &version, NULL, NULL, NULL, NULL);
    printf("one SASL login, client and server in one process (%s %s)\n\n", impl ? impl : "?",
           version ? version : "?");
    printf("%-58s %9s %12s %6s\n", "login", "ms/login", "heap B/login", "n");
    int failed = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        failed |= run_row(&rows[i]) < 0;
    sasl_done();
    vb_ts_sasl_client_creds_clear(&client);
    vb_ts_cleanup();
    return failed;
}
