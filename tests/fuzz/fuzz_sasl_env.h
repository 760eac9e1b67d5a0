/*
 * fuzz_sasl_env.h — what fuzz_sasl_server and fuzz_sasl_client share: one
 * real Cyrus SASL setup per process and the script reader.
 *
 * The setup is made once (the first input, or LLVMFuzzerInitialize): a
 * private 0700 temp dir with its own APP.conf and sasldb (written by
 * saslpasswd2 through tests/support's vb_ts_sasl_setup, removed at exit),
 * offering SCRAM-SHA-256, DIGEST-MD5 and PLAIN for two users. Kerberos is
 * pointed at nothing, so a GSSAPI attempt fails at once instead of looking
 * for a KDC. Both targets may live in one process (the `make check`
 * replay), so everything here is guarded and initialised once.
 */
#ifndef FUZZ_SASL_ENV_H
#define FUZZ_SASL_ENV_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_cred.h"
#include "vb_log.h"
#include "vb_sasl.h"
#include "vb_testsupport.h"

#define FZ_APP      "vbhostd"   /* also the service name: DIGEST-MD5 checks it */
#define FZ_SERVICE  "vbhostd"
#define FZ_REALM    "FUZZ.TEST"
#define FZ_HOST     "fuzz.example"
#define FZ_MECHS    "SCRAM-SHA-256 DIGEST-MD5 PLAIN"
#define FZ_ABORT(...) (fprintf(stderr, "fuzz_sasl: " __VA_ARGS__), fputc('\n', stderr), abort())
/* each target uses only some of these helpers */
#define FZ_FN static __attribute__((unused))
#define FZ_CHECK(cond) ((cond) ? (void)0 : FZ_ABORT("invariant broken at %s:%d: %s", \
                                                     __FILE__, __LINE__, #cond))

/* The users of the sasldb. Passwords are long and odd enough that no
 * mutation stumbles on one by chance. */
typedef struct fz_user {
    const char *name, *password;
} fz_user;
static const fz_user fz_users[] = {
    { "alice", "Wond3rland-q7Z!x" },
    { "bob", "b0b-s3cret-Kp2#v" },
};
#define FZ_NUSERS (sizeof fz_users / sizeof fz_users[0])

/* What a credential callback can answer: authname, authzid (NULL: none),
 * password, and the sasldb user whose right password it is (-1: none). */
typedef struct fz_cred {
    const char *authname, *authzid, *password;
    int proves;
} fz_cred;
static const fz_cred fz_creds[] = {
    { "alice", NULL, "Wond3rland-q7Z!x", 0 },
    { "alice", NULL, "wrong-password", -1 },
    { "bob", NULL, "b0b-s3cret-Kp2#v", 1 },
    { "mallory", NULL, "Wond3rland-q7Z!x", -1 },
    { "alice", "bob", "Wond3rland-q7Z!x", 0 },   /* acting as someone else */
    { "alice@" FZ_REALM, NULL, "Wond3rland-q7Z!x", 0 },
    { "alice", NULL, "", -1 },
    { "", NULL, "", -1 },
};
#define FZ_NCREDS (sizeof fz_creds / sizeof fz_creds[0])

static const char *const fz_mechs[] = { "SCRAM-SHA-256", "DIGEST-MD5", "PLAIN" };
#define FZ_NMECHS (sizeof fz_mechs / sizeof fz_mechs[0])

/* Leaks inside Cyrus's DIGEST-MD5 plugin (2.1.28, OpenSSL 3) are not ours
 * to report: it never frees the cipher contexts of its security layer
 * (libcrypto has no frame pointers, so LSan's stacks of those stop inside
 * libcrypto — none of our modules these targets reach calls libcrypto),
 * and its client keeps 528 bytes of a challenge it rejected past
 * sasl_dispose. Every other leak still fails the run. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libcrypto.so\nleak:libdigestmd5.so\n";
}

static char fz_conf_dir[4096];
static pthread_once_t fz_once = PTHREAD_ONCE_INIT;

FZ_FN void fz_setup(void)
{
    vb_error err;
    /* no krb5.conf, no credential cache: GSSAPI/GS2 fail without the network */
    setenv("KRB5_CONFIG", "/dev/null", 1);
    setenv("KRB5CCNAME", "FILE:/dev/null/none", 1);
    vb_log_init("fuzz", -1); /* the daemon's log lines would drown the fuzzer's */
    const char *dir = vb_ts_tmpdir("fuzzsasl");
    static const char *const users[] = { "alice:Wond3rland-q7Z!x", "bob:b0b-s3cret-Kp2#v", NULL };
    if (!dir || vb_ts_sasl_setup(dir, FZ_APP, FZ_REALM, FZ_MECHS, users, NULL) < 0)
        FZ_ABORT("cannot create the sasldb (is sasl2-bin installed?)");
    snprintf(fz_conf_dir, sizeof fz_conf_dir, "%s", dir);
    /* SCRAM's default 4096 PBKDF2 rounds, computed by both ends on every
     * login, would cost ~300 ms an input; the protocol is the same with 16 */
    char conf[4200];
    snprintf(conf, sizeof conf, "%s/%s.conf", dir, FZ_APP);
    FILE *f = fopen(conf, "a");
    if (!f || fputs("scram_iteration_counter: 16\n", f) < 0 || fclose(f) != 0)
        FZ_ABORT("cannot append to %s", conf);
    /* pinned plugins keep their init-time allocations reachable for LSan */
    vb_ts_sasl_pin_plugins();
    if (vb_sasl_server_init(FZ_APP, fz_conf_dir, &err) < 0 || vb_sasl_client_init(&err) < 0)
        FZ_ABORT("%s", err.message);
}

FZ_FN void fz_env_init(void)
{
    pthread_once(&fz_once, fz_setup);
}

/* ---- the script: a cursor over the fuzz input ----------------------------- */

typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

/* The next byte, or 0 once the input is used up (fz_done tells). */
FZ_FN uint8_t fz_byte(fz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

FZ_FN int fz_done(const fz_in *in)
{
    return in->n == 0;
}

/* A length: one byte below 0xf0, else 0xf0-0xff and one more byte give up
 * to 4095 + 240; the caller bounds it by what is left. */
FZ_FN size_t fz_len(fz_in *in)
{
    size_t b = fz_byte(in);
    if (b < 0xf0)
        return b;
    return 0xf0 + ((b & 0x0f) << 8 | fz_byte(in));
}

/* len bytes (fewer if the input ends), as a view into the input. */
FZ_FN const uint8_t *fz_bytes(fz_in *in, size_t *len)
{
    const uint8_t *p = in->p;
    if (*len > in->n)
        *len = in->n;
    in->p += *len;
    in->n -= *len;
    return p;
}

/* ---- mutations of a real peer's output ------------------------------------ */

/* Byte m picks (0 keeps the data): 1 flip one bit, 2 cut, 3 append a byte,
 * 0 mod 4 empty it; the following byte gives where/what. Returns a malloc'd
 * copy in *out (NULL when the result is empty). */
FZ_FN size_t fz_mutate(fz_in *in, const uint8_t *data, size_t len, uint8_t **out)
{
    uint8_t m = fz_byte(in);
    uint8_t arg = m ? fz_byte(in) : 0;
    size_t n = len;
    if (m && m % 4 == 0)
        n = 0;
    else if (m % 4 == 2)
        n = len ? arg % (len + 1) : 0;
    *out = malloc(n + 2);
    FZ_CHECK(*out != NULL);
    if (n)
        memcpy(*out, data, n);
    if (m % 4 == 1 && n)
        (*out)[arg % n] ^= (uint8_t)(1u << (m >> 5));
    if (m % 4 == 3)
        (*out)[n++] = arg;
    return n;
}

/* ---- a credential callback with one fz_cred ------------------------------ */

typedef struct fz_answer {
    const fz_cred *cred;
    int mode;        /* 0 answer, 1 cancel, 2 answer nothing */
    unsigned asked;
} fz_answer;

FZ_FN int fz_cred_fn(vb_cred_request *req, void *opaque, vb_error *err)
{
    fz_answer *a = opaque;
    a->asked++;
    if (a->mode == 1)
        return vb_error_set(err, VB_ERR_AUTH_CANCELLED, VB_DOM_AUTH, "cancelled by the fuzzer");
    if (a->mode == 2)
        return 0;
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        const char *v = NULL;
        switch (it->type) {
        case VB_CRED_AUTHNAME: v = a->cred->authname; break;
        case VB_CRED_USERNAME: v = a->cred->authzid ? a->cred->authzid : ""; break;
        case VB_CRED_PASSPHRASE:
        case VB_CRED_NOECHOPROMPT: v = a->cred->password; break;
        case VB_CRED_REALM: v = FZ_REALM; break;
        default: v = it->defresult ? it->defresult : ""; break;
        }
        if (vb_cred_item_set_result(it, v, strlen(v)) < 0)
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_AUTH, "out of memory");
    }
    return 0;
}

static const int fz_cred_types[] = { VB_CRED_AUTHNAME, VB_CRED_USERNAME, VB_CRED_PASSPHRASE,
                                     VB_CRED_REALM, VB_CRED_ECHOPROMPT, VB_CRED_NOECHOPROMPT };
#define FZ_NCRED_TYPES (sizeof fz_cred_types / sizeof fz_cred_types[0])

/* 1 when the bytes hold the name and the right password of a sasldb user
 * (what a PLAIN message needs to prove it) — an over-approximation on
 * purpose: "the script carried the password". */
FZ_FN int fz_carries_password(const uint8_t *p, size_t len, size_t user)
{
    const fz_user *u = &fz_users[user];
    return len && memmem(p, len, u->name, strlen(u->name)) &&
           memmem(p, len, u->password, strlen(u->password));
}

#endif
