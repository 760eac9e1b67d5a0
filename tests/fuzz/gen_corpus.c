/*
 * gen_corpus.c — writes the fuzz seed corpora (tests/fuzz/corpus/TARGET/).
 *
 *   make fuzz-corpus        (runs: gen_corpus SRC_DIR OUT_DIR)
 *
 * Frames are made with the project's own encoder, one seed per procedure
 * and direction the protocol documents (docs/protocol.md), plus the hostile
 * payloads of tests/unit/test_proto.c. URIs, configs and auth.conf seeds
 * are the examples of the unit tests and etc/. The output is committed, so
 * a fuzz run and the `make check` replay never need this program; run it
 * again after a protocol change and commit what changes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vb_msg.h"

static const char *out_dir;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("gen_corpus: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        die("mkdir %s: %s", path, strerror(errno));
}

static void write_seed(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    make_dir(path);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die("writing %s failed", path);
}

static void write_text(const char *target, const char *name, const char *text)
{
    write_seed(target, name, text, strlen(text));
}

/* ---- frames ----------------------------------------------------------------
 * A frame seed is two control bytes then a byte stream (fuzz_frame.c):
 * byte 0 the limit mode, byte 1 the chunking. */

enum { PRE = 0, POST = 1, LOGIN = 2, SMALL256 = 3 };
enum { WHOLE = 16, BYTEWISE = 0, SMALLCHUNKS = 3 };

typedef struct stream {
    uint8_t *data;
    size_t len;
} stream;

static void stream_add(stream *s, const void *p, size_t len)
{
    s->data = realloc(s->data, s->len + len);
    if (!s->data)
        die("out of memory");
    memcpy(s->data + s->len, p, len);
    s->len += len;
}

static void stream_write(stream *s, const char *name, uint8_t mode, uint8_t chunking)
{
    uint8_t *buf = malloc(s->len + 2);
    if (!buf)
        die("out of memory");
    buf[0] = mode;
    buf[1] = chunking;
    memcpy(buf + 2, s->data, s->len);
    write_seed("frame", name, buf, s->len + 2);
    free(buf);
    free(s->data);
    s->data = NULL;
    s->len = 0;
}

/* Encode one message: header from the arguments, body from fill(). */
static void add_msg(stream *s, uint32_t program, uint32_t type, uint32_t serial, uint32_t proc,
                    uint32_t status, uint32_t conn_id, void (*fill)(vb_enc *))
{
    vb_msg_header hdr = { program, vb_proto_program_version(program), type, serial, proc,
                          status, conn_id };
    vb_enc enc;
    vb_error err;
    uint8_t *frame;
    size_t len;
    vb_enc_begin(&enc, &hdr);
    fill(&enc);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_ABSOLUTE, &frame, &len, &err) < 0)
        die("encoding: %s", err.message);
    stream_add(s, frame, len);
    vb_frame_free(frame, len);
}

static void one_msg(const char *name, uint8_t mode, uint8_t chunking, uint32_t program,
                    uint32_t type, uint32_t serial, uint32_t proc, uint32_t status,
                    void (*fill)(vb_enc *))
{
    stream s = { 0 };
    add_msg(&s, program, type, serial, proc, status, 0, fill);
    stream_write(&s, name, mode, chunking);
}

/* A frame around a raw payload (the length prefix tells the truth). */
static void add_raw(stream *s, const uint8_t *payload, size_t len)
{
    uint8_t prefix[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                          (uint8_t)len };
    stream_add(s, prefix, 4);
    stream_add(s, payload, len);
}

static void raw_seed(const char *name, const uint8_t *payload, size_t len)
{
    stream s = { 0 };
    add_raw(&s, payload, len);
    stream_write(&s, name, PRE, SMALLCHUNKS);
}

/* Bodies, as docs/protocol.md section 9 gives them. */
static void b_empty(vb_enc *e) { vb_enc_array(e, 0); }

static void b_auth_list_reply(vb_enc *e)
{
    vb_enc_array(e, 2);
    vb_enc_array(e, 3);
    vb_enc_str(e, "sasl");
    vb_enc_str(e, "peer");
    vb_enc_str(e, "token");
    vb_enc_str(e, "818a5fdac4a37fccc10c8c0d390b8325");
}

static void b_mechlist(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_str(e, "SCRAM-SHA-256 DIGEST-MD5 GSSAPI");
}

static void b_sasl_start(vb_enc *e)
{
    static const char first[] = "n,,n=alice,r=rOprNGfwEbeRWgbNEkqO";
    vb_enc_array(e, 2);
    vb_enc_str(e, "SCRAM-SHA-256");
    vb_enc_bin(e, first, sizeof first - 1);
}

static void b_sasl_reply_more(vb_enc *e)
{
    static const char chal[] = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                               "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    vb_enc_array(e, 2);
    vb_enc_bool(e, 0);
    vb_enc_bin(e, chal, sizeof chal - 1);
}

static void b_sasl_step(vb_enc *e)
{
    static const char resp[] = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                               "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    vb_enc_array(e, 1);
    vb_enc_bin(e, resp, sizeof resp - 1);
}

static void b_sasl_reply_done(vb_enc *e)
{
    vb_enc_array(e, 2);
    vb_enc_bool(e, 1);
    vb_enc_nil(e);
}

static void b_token_challenge(vb_enc *e)
{
    static const uint8_t nonce[32] = { 0x5a, 0x01, 0xff, 0x00, 0x7e };
    vb_enc_array(e, 2);
    vb_enc_str(e, "2f1c9e0b6d7a4c3b");
    vb_enc_bin(e, nonce, sizeof nonce);
}

static void b_token_challenge_reply(vb_enc *e)
{
    static const uint8_t nonce[32] = { 0x11, 0x22 }, proof[32] = { 0xde, 0xad, 0xbe, 0xef };
    vb_enc_array(e, 2);
    vb_enc_bin(e, nonce, sizeof nonce);
    vb_enc_bin(e, proof, sizeof proof);
}

static void b_token_prove(vb_enc *e)
{
    static const uint8_t proof[32] = { 0xca, 0xfe };
    vb_enc_array(e, 1);
    vb_enc_bin(e, proof, sizeof proof);
}

static void b_identity(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_str(e, "alice@EXAMPLE.ORG");
}

static void b_host_open(vb_enc *e)
{
    vb_enc_array(e, 2);
    vb_enc_str(e, "test:///default");
    vb_enc_u64(e, 0);
}

static void b_hostname(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_str(e, "host1.example.org");
}

static void add_domain(vb_enc *e, int64_t id, const char *name, const char *uuid,
                       uint64_t state, uint64_t mem, uint64_t vcpus)
{
    vb_enc_array(e, 6);
    vb_enc_i64(e, id);
    vb_enc_str(e, name);
    vb_enc_str(e, uuid);
    vb_enc_u64(e, state);
    vb_enc_u64(e, mem);
    vb_enc_u64(e, vcpus);
}

static void b_domains(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_array(e, 3);
    add_domain(e, 1, "test", "6695eb01-f6a4-8304-79aa-97f2502e193f", 1, 8388608, 2);
    add_domain(e, 2, "web", "1ffdac43-71e0-5d8c-8e0d-d615729e881e", 1, 2097152, 2);
    add_domain(e, -1, "db", "a5e63f4d-8b05-540a-88e3-a4d3d3761220", 5, 4194304, 4);
}

/* Large enough to need the post-auth limit (over 64 KiB), small enough for
 * the fuzzer's -max_len. */
static void b_many_domains(vb_enc *e)
{
    char name[32];
    vb_enc_array(e, 1);
    vb_enc_array(e, 1170);
    for (int i = 0; i < 1170; i++) {
        snprintf(name, sizeof name, "vm-%04d", i);
        add_domain(e, i, name, "1ffdac43-71e0-5d8c-8e0d-d615729e881e", 1, 1048576, 1);
    }
}

static void b_domain_name(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_str(e, "web");
}

static void b_token_issue(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_u64(e, 86400);
}

static void b_token_issue_reply(vb_enc *e)
{
    static const uint8_t secret[32] = { 0x42, 0x42, 0x42 };
    vb_enc_array(e, 4);
    vb_enc_str(e, "2f1c9e0b6d7a4c3b");
    vb_enc_bin(e, secret, sizeof secret);
    vb_enc_u64(e, 1767225600);
    vb_enc_str(e, "alice@EXAMPLE.ORG");
}

static void b_token_revoke_reply(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_bool(e, 1);
}

static void add_cred_items(vb_enc *e)
{
    vb_enc_array(e, 3);
    vb_enc_array(e, 4);
    vb_enc_u64(e, 2);
    vb_enc_str(e, "Login:");
    vb_enc_nil(e);
    vb_enc_str(e, "alice");
    vb_enc_array(e, 4);
    vb_enc_u64(e, 5);
    vb_enc_str(e, "Password:");
    vb_enc_str(e, "SCRAM-SHA-256 login to vbhostd at 127.0.0.1:16509");
    vb_enc_nil(e);
    vb_enc_array(e, 4);
    vb_enc_u64(e, 8);
    vb_enc_str(e, "Realm:");
    vb_enc_nil(e);
    vb_enc_str(e, "EXAMPLE.ORG");
}

static void b_cred_request(vb_enc *e)
{
    vb_enc_array(e, 4);
    vb_enc_str(e, "vbhostd@127.0.0.1:16509");
    vb_enc_array(e, 2);
    vb_enc_str(e, "vbhostd@gw.example.org");
    vb_enc_str(e, "vbhostd@127.0.0.1:16509");
    vb_enc_bool(e, 0);
    add_cred_items(e);
}

static void b_cred_reply(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_array(e, 3);
    vb_enc_bin(e, "alice", 5);
    vb_enc_bin(e, "s3cret-pw", 9);
    vb_enc_nil(e);
}

static void b_service(vb_enc *e)
{
    vb_enc_array(e, 1);
    vb_enc_str(e, "vbhostd@127.0.0.1:16509");
}

static void b_broker_open(vb_enc *e)
{
    vb_enc_array(e, 5);
    vb_enc_str(e, "test+tcp://alice@127.0.0.1:16509/default?auth=sasl.SCRAM-SHA-256");
    vb_enc_u64(e, 1);
    vb_enc_array(e, 3);
    vb_enc_u64(e, 2);
    vb_enc_u64(e, 5);
    vb_enc_u64(e, 8);
    vb_enc_array(e, 2);
    vb_enc_str(e, "token");
    vb_enc_str(e, "sasl");
    vb_enc_bool(e, 1);
}

static void b_broker_login(vb_enc *e)
{
    vb_enc_array(e, 6);
    vb_enc_str(e, "xenapi+ssh://alice@gw/?name=xenapi://root@xen1/");
    vb_enc_u64(e, 0);
    vb_enc_array(e, 0);
    vb_enc_array(e, 0);
    vb_enc_bool(e, 0);
    vb_enc_u64(e, 3600);
}

static void b_status_reply(vb_enc *e)
{
    vb_enc_array(e, 4);
    vb_enc_i64(e, 4242);
    vb_enc_u64(e, 3600);
    vb_enc_u64(e, 2);
    vb_enc_array(e, 2);
    vb_enc_array(e, 5);
    vb_enc_str(e, "test+tcp://127.0.0.1:16509/default");
    vb_enc_str(e, "sasl");
    vb_enc_str(e, "DIGEST-MD5");
    vb_enc_u64(e, 56);
    vb_enc_str(e, "818a5fdac4a37fccc10c8c0d390b8325");
    vb_enc_array(e, 5);
    vb_enc_str(e, "test+unix:///default");
    vb_enc_str(e, "peer");
    vb_enc_nil(e);
    vb_enc_u64(e, 0);
    vb_enc_nil(e);
}

static void b_error(vb_enc *e)
{
    vb_enc_array(e, 3);
    vb_enc_u64(e, VB_ERR_TOO_MANY_CLIENTS);
    vb_enc_u64(e, VB_DOM_DAEMON);
    vb_enc_str(e, "too many unauthenticated clients on this server; try again later");
}

static void b_error_auth_required(vb_enc *e)
{
    vb_enc_array(e, 3);
    vb_enc_u64(e, VB_ERR_AUTH_REQUIRED);
    vb_enc_u64(e, VB_DOM_AUTH);
    vb_enc_str(e, "authentication required: this server accepts sasl; OPEN needs an "
                  "authenticated connection (upgrade the client, or use a URI with auth=sasl)");
}

/* Every msgpack type the protocol allows, at the edges of their encodings. */
static void b_every_type(vb_enc *e)
{
    vb_enc_array(e, 16);
    vb_enc_u64(e, 0);
    vb_enc_u64(e, 127);
    vb_enc_u64(e, UINT32_MAX);
    vb_enc_u64(e, UINT64_MAX);
    vb_enc_i64(e, -1);
    vb_enc_i64(e, INT64_MIN);
    vb_enc_bool(e, 1);
    vb_enc_nil(e);
    vb_enc_str(e, "");
    vb_enc_strn(e, "nul\0inside", 10);
    vb_enc_bin(e, "", 0);
    msgpack_pack_double(&e->pk, 1.5);
    msgpack_pack_float(&e->pk, -0.25f);
    msgpack_pack_map(&e->pk, 1);
    vb_enc_str(e, "key");
    vb_enc_u64(e, 1);
    vb_enc_array(e, 1);
    vb_enc_array(e, 1);
    vb_enc_array(e, 0);
    char big[300];
    memset(big, 's', sizeof big);
    vb_enc_strn(e, big, sizeof big);
}

static void b_pad_300(vb_enc *e)
{
    char pad[300];
    memset(pad, 'p', sizeof pad);
    vb_enc_array(e, 1);
    vb_enc_strn(e, pad, sizeof pad);
}

static void gen_frames(void)
{
    const uint32_t K = VB_PROG_KEEPALIVE, H = VB_PROG_HOST, B = VB_PROG_BROKER;
    const uint32_t CALL = VB_MSG_CALL, REPLY = VB_MSG_REPLY, CB = VB_MSG_CALLBACK,
                   CBR = VB_MSG_CALLBACK_REPLY, EV = VB_MSG_EVENT;
    const uint32_t OK = VB_STATUS_OK, ERR = VB_STATUS_ERROR;

    one_msg("keepalive-ping-call", PRE, WHOLE, K, CALL, 1, VB_KEEPALIVE_PROC_PING, OK, b_empty);
    one_msg("keepalive-pong-reply", PRE, BYTEWISE, K, REPLY, 1, VB_KEEPALIVE_PROC_PONG, OK, b_empty);
    one_msg("keepalive-ping-event", POST, SMALLCHUNKS, K, EV, 0, VB_KEEPALIVE_PROC_PING, OK, b_empty);
    one_msg("host-auth-list-call", PRE, WHOLE, H, CALL, 1, VB_HOST_PROC_AUTH_LIST, OK, b_empty);
    one_msg("host-auth-list-reply", PRE, SMALLCHUNKS, H, REPLY, 1, VB_HOST_PROC_AUTH_LIST, OK,
            b_auth_list_reply);
    one_msg("host-sasl-init-reply", PRE, WHOLE, H, REPLY, 2, VB_HOST_PROC_AUTH_SASL_INIT, OK,
            b_mechlist);
    one_msg("host-sasl-start-call", PRE, 5, H, CALL, 3, VB_HOST_PROC_AUTH_SASL_START, OK,
            b_sasl_start);
    one_msg("host-sasl-start-reply", PRE, WHOLE, H, REPLY, 3, VB_HOST_PROC_AUTH_SASL_START, OK,
            b_sasl_reply_more);
    one_msg("host-sasl-step-call", PRE, 2, H, CALL, 4, VB_HOST_PROC_AUTH_SASL_STEP, OK,
            b_sasl_step);
    one_msg("host-sasl-step-reply", PRE, WHOLE, H, REPLY, 4, VB_HOST_PROC_AUTH_SASL_STEP, OK,
            b_sasl_reply_done);
    one_msg("host-token-challenge-call", PRE, WHOLE, H, CALL, 5,
            VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, OK, b_token_challenge);
    one_msg("host-token-challenge-reply", PRE, 4, H, REPLY, 5,
            VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, OK, b_token_challenge_reply);
    one_msg("host-token-prove-call", PRE, WHOLE, H, CALL, 6, VB_HOST_PROC_AUTH_TOKEN_PROVE, OK,
            b_token_prove);
    one_msg("host-auth-peer-reply", PRE, WHOLE, H, REPLY, 7, VB_HOST_PROC_AUTH_PEER, OK,
            b_identity);
    one_msg("host-open-call", POST, WHOLE, H, CALL, 10, VB_HOST_PROC_OPEN, OK, b_host_open);
    one_msg("host-get-hostname-reply", POST, 6, H, REPLY, 12, VB_HOST_PROC_GET_HOSTNAME, OK,
            b_hostname);
    one_msg("host-list-domains-reply", POST, WHOLE, H, REPLY, 13, VB_HOST_PROC_LIST_DOMAINS, OK,
            b_domains);
    one_msg("host-list-domains-reply-66k", POST, 12, H, REPLY, 13, VB_HOST_PROC_LIST_DOMAINS, OK,
            b_many_domains);
    one_msg("host-domain-start-call", POST, WHOLE, H, CALL, 14, VB_HOST_PROC_DOMAIN_START, OK,
            b_domain_name);
    one_msg("host-token-issue-call", POST, WHOLE, H, CALL, 20, VB_HOST_PROC_TOKEN_ISSUE, OK,
            b_token_issue);
    one_msg("host-token-issue-reply", POST, 3, H, REPLY, 20, VB_HOST_PROC_TOKEN_ISSUE, OK,
            b_token_issue_reply);
    one_msg("host-token-revoke-reply", POST, WHOLE, H, REPLY, 21, VB_HOST_PROC_TOKEN_REVOKE, OK,
            b_token_revoke_reply);
    one_msg("host-cred-fill-callback", POST, WHOLE, H, CB, 1, VB_HOST_PROC_CRED_FILL, OK,
            b_cred_request);
    one_msg("host-cred-fill-callback-reply", POST, 7, H, CBR, 1, VB_HOST_PROC_CRED_FILL, OK,
            b_cred_reply);
    one_msg("host-cred-approve-callback", POST, WHOLE, H, CB, 2, VB_HOST_PROC_CRED_APPROVE, OK,
            b_service);
    one_msg("host-error-too-many-clients", PRE, WHOLE, H, REPLY, 0, 0, ERR, b_error);
    one_msg("host-error-auth-required", PRE, 4, H, REPLY, 9, VB_HOST_PROC_OPEN, ERR,
            b_error_auth_required);
    one_msg("broker-open-call", PRE, WHOLE, B, CALL, 1, VB_BROKER_PROC_OPEN, OK, b_broker_open);
    one_msg("broker-login-call", PRE, 5, B, CALL, 2, VB_BROKER_PROC_LOGIN, OK, b_broker_login);
    one_msg("broker-status-reply", PRE, WHOLE, B, REPLY, 3, VB_BROKER_PROC_STATUS, OK,
            b_status_reply);
    one_msg("broker-cred-request-callback", PRE, WHOLE, B, CB, 1, VB_BROKER_PROC_CRED_REQUEST,
            OK, b_cred_request);
    one_msg("broker-cred-request-callback-reply", PRE, BYTEWISE, B, CBR, 1,
            VB_BROKER_PROC_CRED_REQUEST, OK, b_cred_reply);
    one_msg("broker-cred-request-cancelled", PRE, WHOLE, B, CBR, 1, VB_BROKER_PROC_CRED_REQUEST,
            ERR, b_error);
    one_msg("every-msgpack-type", POST, WHOLE, H, CALL, 99, 999, OK, b_every_type);
    one_msg("limit-256-refused", SMALL256, WHOLE, H, CALL, 1, VB_HOST_PROC_OPEN, OK, b_pad_300);
    one_msg("limit-1024-ok", SMALL256 | 2 << 2, WHOLE, H, CALL, 1, VB_HOST_PROC_GET_HOSTNAME, OK,
            b_pad_300);

    /* whole conversations: a login, then the limit grows */
    stream s = { 0 };
    add_msg(&s, H, CALL, 1, VB_HOST_PROC_AUTH_LIST, OK, 0, b_empty);
    add_msg(&s, H, CALL, 2, VB_HOST_PROC_AUTH_SASL_START, OK, 0, b_sasl_start);
    add_msg(&s, H, CALL, 3, VB_HOST_PROC_AUTH_SASL_STEP, OK, 0, b_sasl_step);
    add_msg(&s, H, CALL, 4, VB_HOST_PROC_OPEN, OK, 1, b_host_open);
    add_msg(&s, H, CALL, 5, VB_HOST_PROC_LIST_DOMAINS, OK, 1, b_empty);
    stream_write(&s, "conversation-client-login", PRE, 9);
    add_msg(&s, H, REPLY, 1, VB_HOST_PROC_AUTH_SASL_STEP, OK, 0, b_sasl_reply_done);
    add_msg(&s, H, REPLY, 2, VB_HOST_PROC_LIST_DOMAINS, OK, 0, b_many_domains);
    stream_write(&s, "conversation-login-then-66k", LOGIN, 10);
    add_msg(&s, B, CALL, 1, VB_BROKER_PROC_OPEN, OK, 0, b_broker_open);
    add_msg(&s, B, CB, 1, VB_BROKER_PROC_CRED_REQUEST, OK, 0, b_cred_request);
    add_msg(&s, B, CBR, 1, VB_BROKER_PROC_CRED_REQUEST, OK, 0, b_cred_reply);
    add_msg(&s, B, REPLY, 1, VB_BROKER_PROC_OPEN, OK, 0, b_empty);
    add_msg(&s, K, EV, 0, VB_KEEPALIVE_PROC_PING, OK, 0, b_empty);
    stream_write(&s, "conversation-broker-relay", PRE, 1);
    /* a frame whose last bytes never arrive */
    add_msg(&s, H, CALL, 1, VB_HOST_PROC_OPEN, OK, 0, b_host_open);
    s.len -= 3;
    stream_write(&s, "truncated-stream", PRE, BYTEWISE);

    /* hostile inputs of tests/unit/test_proto.c */
    static const uint8_t over_preauth[] = { 0x00, 0x01, 0x00, 0x01, 0x90 };
    static const uint8_t huge_len[] = { 0xff, 0xff, 0xff, 0xff, 0x90 };
    static const uint8_t zero_len[] = { 0x00, 0x00, 0x00, 0x00 };
    stream_add(&s, over_preauth, sizeof over_preauth);
    stream_write(&s, "hostile-length-over-preauth", PRE, WHOLE);
    stream_add(&s, huge_len, sizeof huge_len);
    stream_write(&s, "hostile-length-4g", POST, WHOLE);
    stream_add(&s, zero_len, sizeof zero_len);
    stream_write(&s, "hostile-length-zero", POST, BYTEWISE);

    static const uint8_t arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
    static const uint8_t map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00 };
    static const uint8_t inner[] = { 0x98, 0x02, 0x02, 0x00, 0x01, 0x0a, 0x00, 0x00,
                                     0xdd, 0x10, 0x00, 0x00, 0x00 };
    static const uint8_t str[] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a' };
    static const uint8_t bin[] = { 0xc5, 0x01, 0x00, 'x', 'y' };
    static const uint8_t owe[] = { 0x92, 0x9f, 0x9f, 0x00, 0x00 };
    static const uint8_t hdrcut[] = { 0xda, 0x00 };
    static const uint8_t never_used[] = { 0xc1 };
    static const uint8_t ext[] = { 0xd4, 0x01, 0x02 };
    static const uint8_t trailing[] = { 0x90, 0x00 };
    static const uint8_t not_array[] = { 0xa3, 'a', 'b', 'c' };
    static const uint8_t short_hdr[] = { 0x93, 0x01, 0x02, 0x03 };
    static const uint8_t neg_field[] = { 0x98, 0xff, 0x02, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x90 };
    static const uint8_t bad_type[] = { 0x98, 0x02, 0x02, 0x09, 0x01, 0x0a, 0x00, 0x00, 0x90 };
    static const uint8_t bad_status[] = { 0x98, 0x02, 0x02, 0x00, 0x01, 0x0a, 0x05, 0x00, 0x90 };
    raw_seed("hostile-array32-count", arr, sizeof arr);
    raw_seed("hostile-map32-count", map, sizeof map);
    raw_seed("hostile-body-count", inner, sizeof inner);
    raw_seed("hostile-str32-length", str, sizeof str);
    raw_seed("hostile-bin16-length", bin, sizeof bin);
    raw_seed("hostile-owed-values", owe, sizeof owe);
    raw_seed("hostile-truncated-header", hdrcut, sizeof hdrcut);
    raw_seed("hostile-type-c1", never_used, sizeof never_used);
    raw_seed("hostile-ext", ext, sizeof ext);
    raw_seed("hostile-trailing", trailing, sizeof trailing);
    raw_seed("hostile-not-array", not_array, sizeof not_array);
    raw_seed("hostile-short-header", short_hdr, sizeof short_hdr);
    raw_seed("hostile-negative-field", neg_field, sizeof neg_field);
    raw_seed("hostile-bad-type", bad_type, sizeof bad_type);
    raw_seed("hostile-bad-status", bad_status, sizeof bad_status);
    uint8_t deep[1024];
    memset(deep, 0x91, sizeof deep - 1);
    deep[sizeof deep - 1] = 0x00;
    raw_seed("hostile-deep-nesting", deep, sizeof deep);
    uint8_t at_limit[VB_MSG_MAX_DEPTH + 1];
    memset(at_limit, 0x91, VB_MSG_MAX_DEPTH);
    at_limit[VB_MSG_MAX_DEPTH] = 0x00;
    raw_seed("nesting-at-limit", at_limit, sizeof at_limit);
}

/* ---- URIs ----------------------------------------------------------------- */

static void gen_uris(void)
{
    static const struct { const char *name, *text; } uris[] = {
        { "test-default", "test:///default" },
        { "test-unix", "test+unix:///default" },
        { "test-tcp-port", "test+tcp://h:16509/default" },
        { "test-ssh-user", "test+ssh://alice@h/default" },
        { "xenapi-root", "xenapi://root@xen1/" },
        { "xenapi-query-no-path", "xenapi://10.0.0.5?no_verify=1" },
        { "nested-name", "xenapi+ssh://alice@h/?name=xenapi://xen1/" },
        { "nested-name-escaped-amp",
          "xenapi+tcp://h:16509/?name=xenapi://root@x/?no_verify=1%26auth=sasl&auth=token" },
        { "nested-name-ipv6", "xenapi+ssh://alice@h/?name=xenapi://root@[::1]:443/%3Fno_verify=1" },
        { "ipv6-port", "test+tcp://[::1]:16509/default" },
        { "ipv6-user", "xenapi://root@[2001:db8::5]/" },
        { "ipv6-zone", "test+tcp://[fe80::1%25eth0]:1/x" },
        { "ipv6-v4-mapped", "test+tcp://[::ffff:10.0.0.1]/x" },
        { "ipv6-unterminated", "test+tcp://[::1/default" },
        { "ipv6-text-after", "test+tcp://[::1]x/default" },
        { "percent-everywhere",
          "test+ssh://al%20ice@h%2Eexample/my%2Fdir/x%3Fy?keyfile=%2Fhome%2Fa%20b&k%5Fx=%41" },
        { "percent-utf8", "test:///%c3%a9t%c3%A9?v=a+b" },
        { "percent-bad", "test:///a%4" },
        { "percent-nul", "test:///def%00ault" },
        { "params-many", "test+ssh://a@h/default?auth=sasl.GSSAPI&known_hosts_verify=ignore"
                         "&auth=token&sshauth=agent,privkey&known_hosts=/x/y" },
        { "params-empty-pieces", "xenapi://xen%31?no_verify&&a=%2f" },
        { "param-empty-key", "test:///x?=v" },
        { "port-max", "test+tcp://h:65535/default" },
        { "port-zero", "test+tcp://h:0/default" },
        { "port-overflow", "test+tcp://h:99999999999999999999999/default" },
        { "port-no-host", "test+tcp://:16509/default" },
        { "user-password", "test+ssh://alice:s3cret@h/default" },
        { "user-dash", "test+ssh://%2Dl@h/default" },
        { "user-at-at", "test+ssh://a@b@h/default" },
        { "transport-unknown", "test+tls://h/default" },
        { "transport-double", "test+ssh+tcp://h/" },
        { "abs-path", "test:////abs/path" },
        { "tilde-space-path", "test:///%7Eme/x%20y.conf" },
        { "file-path", "test:///tmp/lab1.conf" },
        { "escape-sequence-host", "test+ssh://h%1B[2J/x" },
    };
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++)
        write_text("uri", uris[i].name, uris[i].text);

    /* 2 KiB of raw UTF-8 parses, but its canonical form (every byte %XX)
     * is over VB_URI_MAX_LEN: the one case the round trip leaves out */
    char long_path[8 + 2000 + 1] = "test:///";
    for (size_t i = 0; i < 1000; i++)
        memcpy(long_path + 8 + 2 * i, "\xc3\xa9", 2);
    long_path[sizeof long_path - 1] = '\0';
    write_text("uri", "long-utf8-path", long_path);
}

/* ---- configs -------------------------------------------------------------- */

static void copy_file(const char *src_dir, const char *rel, const char *target, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", src_dir, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot read %s: %s", path, strerror(errno));
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_seed(target, name, buf, n);
}

static void gen_confs(const char *src_dir)
{
    static const struct { const char *name, *text; } confs[] = {
        { "basic", "# vbhostd.conf\n\nlisten_addr = \"0.0.0.0\"\n   tcp_port=16509\n"
                   "min_ssf = -1   # comment after a value\nempty = \"\"\n"
                   "\t# indented comment\nauth_tcp = [\"sasl\", \"token\"]\n" },
        { "escapes", "msg = \"say \\\"hi\\\" \\\\ back # not a comment\"\n"
                     "path = \"C:\\\\dir\\\\\"\n" },
        { "ints", "zero = 0\nmax = 9223372036854775807\nmin = -9223372036854775808\nlead = 007\n" },
        { "int-overflow", "big = 9223372036854775808\n" },
        { "lists-multiline", "users = [\n    \"alice\",   # the admin\n\n    \"bob\" ,\n"
                             "    # commented out: \"carol\",\n    \"dave\",\n]\n"
                             "none = []\nnone2 = [\n  # still nothing\n]\none = [\"x\"]\n"
                             "after = 1\n" },
        { "list-unterminated", "a = [\n\"x\",\n\"y\"\n" },
        { "crlf", "listen_tcp = \"[::1]:16509\"\r\nmax_clients = 5000\r\n"
                  "auth_tcp = [\"sasl\",\r\n \"none\"]\r\n" },
        { "repeated-key", "log_level = \"info\"\nlog_level = \"debug\"\nlog_level = 3\n" },
        { "bad-escape", "a = 1\nmsg = \"bad \\n escape\"\n" },
        { "no-newline-at-end", "auth_timeout = 30" },
        { "empty", "" },
    };
    for (size_t i = 0; i < sizeof confs / sizeof confs[0]; i++)
        write_text("conf", confs[i].name, confs[i].text);
    copy_file(src_dir, "etc/vbhostd.conf", "conf", "etc-vbhostd.conf");
}

static void gen_authconfs(void)
{
    static const struct { const char *name, *text; } acs[] = {
        { "libvirt-example", "[credentials-test]\nauthname=fred\npassword=123456\n\n"
                             "[credentials-prod]\nauthname=bar\npassword=letmein\n\n"
                             "[auth-vbhostd-example.com]\ncredentials=test\n\n"
                             "[auth-vbhostd-default]\ncredentials=prod\n" },
        { "libvirt-alias", "[credentials-test]\nauthname=fred\npassword=s3cret\n"
                           "[auth-libvirt-default]\ncredentials=test\n" },
        { "host-beats-default", "[credentials-d]\nauthname=d\n[credentials-l1]\nauthname=l1\n"
                                "[credentials-v2]\nauthname=v2\n[credentials-l2]\nauthname=l2\n"
                                "[auth-libvirt-h2]\ncredentials=l2\n"
                                "[auth-vbhostd-default]\ncredentials=d\n"
                                "[auth-libvirt-h1]\ncredentials=l1\n"
                                "[auth-vbhostd-h2]\ncredentials=v2\n" },
        { "every-key", "# every key a credentials group takes\n; a comment too\n"
                       "[credentials-all]\n  authname = alice \nusername=admin\n"
                       "password = pass # word\nrealm=EXAMPLE.ORG\r\n"
                       "[auth-ssh-::1]\ncredentials = all\n"
                       "[auth-xenapi-xen-1.lab]\ncredentials=all\n"
                       "[auth-vbhostd-localhost]\ncredentials=all\n" },
        { "no-password", "[credentials-l]\nauthname=local\n[auth-ssh-localhost]\ncredentials=l\n" },
        { "stray-line", "[credentials-test]\nauthname=fred\nhunter2\n" },
        { "unknown-key", "[credentials-test]\nauthname=fred\npasswd=x\n" },
        { "dangling-credentials", "[credentials-test]\npassword=x\n[auth-vbhostd-default]\n"
                                  "credentials=tset\n" },
        { "duplicate-group", "[credentials-test]\npassword=x\n[auth-ssh-default]\n"
                             "credentials=test\n[credentials-test]\nauthname=x\n" },
        { "auth-without-credentials", "[credentials-test]\npassword=x\n[auth-ssh-h]\n" },
        { "key-twice", "[credentials-test]\npassword=x\npassword=y\n" },
        { "bad-groups", "[credential-test]\n[credentials-]\n[auth-vbhostd]\n[auth--h]\n" },
        { "unterminated-header", "[credentials-test\npassword=x\n" },
        { "empty-key", "[credentials-test]\n=x\n" },
        { "nul-byte", "[credentials-test]\nauthname=fred\npassword=x\0y\n" },
    };
    for (size_t i = 0; i < sizeof acs / sizeof acs[0]; i++) {
        const char *t = acs[i].text;
        /* "nul-byte" holds a NUL: its length is up to the final newline */
        size_t len = strlen(t);
        if (strcmp(acs[i].name, "nul-byte") == 0)
            len += 1 + strlen(t + len + 1);
        write_seed("authconf", acs[i].name, t, len);
    }
}


/* ---- SASL scripts -----------------------------------------------------------
 * Not frames: the SASL targets build their frames with the encoder from a
 * compact script (fuzz_sasl_server.c / fuzz_sasl_client.c give the format).
 * A recorded SCRAM or DIGEST-MD5 exchange cannot be replayed (both sides'
 * nonces are random), so these seeds drive a live Cyrus peer inside the
 * target (op 4/5 of the server target, op 0 of the client target) for the
 * successful logins; PLAIN is deterministic and is also written literally. */

#define PW_ALICE "Wond3rland-q7Z!x"

static void script(const char *target, const char *name, const uint8_t *ops, size_t n)
{
    write_seed(target, name, ops, n);
}

/* server: byte 0 config, then ops (fuzz_sasl_server.c) */
static void plain_start(uint8_t *buf, size_t *n, const char *authz, const char *user,
                        const char *pw)
{
    size_t len = strlen(authz) + 1 + strlen(user) + 1 + strlen(pw);
    buf[(*n)++] = 2;   /* SASL_START literal */
    buf[(*n)++] = 2;   /* "PLAIN" */
    buf[(*n)++] = (uint8_t)len;
    *n += (size_t)sprintf((char *)buf + *n, "%s%c%s%c%s", authz, 0, user, 0, pw);
}

static void gen_sasl_server(void)
{
#define S(name, ...) do { static const uint8_t o[] = { __VA_ARGS__ }; \
                          script("sasl_server", name, o, sizeof o); } while (0)
    /* 0x02: 3 attempts, unix; 0x0e: 3 attempts, TCP with min SSF 56 */
    S("real-scram-alice", 0x02, 1, 4, 0, 0, 0, 5, 0);
    S("real-digest-alice", 0x02, 1, 4, 1, 0, 0, 5, 0);
    S("real-digest-tcp-ssf56", 0x0e, 1, 4, 1, 0, 0, 5, 0);
    S("real-plain-bob-allow-b", 0x22, 1, 4, 2, 2, 0);
    S("real-scram-alice-allow-b-refused", 0x22, 1, 4, 0, 0, 0, 5, 0);
    S("real-scram-wrong-x3-closes", 0x02, 1, 4, 0, 1, 0, 5, 0, 1, 4, 0, 1, 0, 5, 0, 1, 4, 0, 1, 0,
      5, 0);
    S("real-digest-unknown-user", 0x02, 1, 4, 1, 3, 0, 5, 0);
    S("real-plain-authzid-bob", 0x02, 1, 4, 2, 4, 0);
    S("real-scram-flipped-proof", 0x02, 1, 4, 0, 0, 0, 5, 1, 40);
    S("real-plain-tcp-ssf56-too-weak", 0x0e, 1, 4, 2, 0, 0);
    S("step-before-start", 0x02, 1, 3, 4, 'j', 'u', 'n', 'k');
    S("start-without-init", 0x02, 2, 0, 0);
    S("start-twice", 0x02, 1, 4, 0, 0, 0, 4, 1, 0, 0, 5, 0);
    S("init-after-success", 0x02, 1, 4, 2, 0, 0, 1, 0, 7, 6);
    S("unknown-mech-nil-data", 0x02, 1, 2, 0x84, 0);
    S("peer-refused-counts", 0x41, 7, 6, 7, 6);
    S("gate-open-before-auth", 0x02, 7, 7, 7, 11, 0);
    S("raw-start-body-ints", 0x02, 1, 6, 2, 3, 0x92, 0x01, 0x02);
    S("raw-step-bad-msgpack", 0x02, 1, 6, 3, 2, 0xc1, 0xc1);
#undef S
    uint8_t buf[256];
    size_t n = 0;
    buf[n++] = 0x02;
    buf[n++] = 1;
    plain_start(buf, &n, "", "alice", PW_ALICE);
    script("sasl_server", "literal-plain-alice", buf, n);
    n = 0;
    buf[n++] = 0x00; /* one attempt */
    buf[n++] = 1;
    plain_start(buf, &n, "", "alice", "wrong");
    buf[n++] = 0;    /* must not be answered: the server closes */
    script("sasl_server", "literal-plain-wrong-1-attempt", buf, n);
    n = 0;
    buf[n++] = 0x02;
    buf[n++] = 1;
    plain_start(buf, &n, "bob", "alice", PW_ALICE);
    script("sasl_server", "literal-plain-authzid-bob", buf, n);
}

/* client: byte 0 config, then the server's ops (fuzz_sasl_client.c) */
static void gen_sasl_client(void)
{
#define C(name, ...) do { static const uint8_t o[] = { __VA_ARGS__ }; \
                          script("sasl_client", name, o, sizeof o); } while (0)
    /* op 0 answers as vbhostd: AUTH_LIST, INIT, START, STEP (flags, mutation) */
    C("real-default-scram", 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    C("real-plain", 0x02, 0, 0, 0, 0, 0);
    C("real-digest", 0x04, 0, 0, 0, 0, 0, 0, 0, 0);
    C("real-digest-tcp", 0x44, 0, 0, 0, 0, 0, 0, 0, 0);
    C("real-scram-wrong-3-tries", 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      0, 0, 0, 0, 0);
    C("real-scram-complete-flipped", 0x03, 0, 0, 0, 0, 0, 0, 1, 0);
    C("real-scram-final-corrupt", 0x03, 0, 0, 0, 0, 0, 0, 0, 1, 9);
    C("real-digest-rspauth-dropped", 0x04, 0, 0, 0, 0, 0, 0, 0, 4, 0);
    C("fake-complete-plain", 0x02, 0, 0, 1, 1, 0);
    C("fake-complete-scram", 0x03, 0, 0, 0, 0, 0, 1, 1, 2, 'v', '=');
    C("fake-complete-digest-empty", 0x04, 0, 0, 0, 0, 0, 1, 1, 0);
    C("v1-server-no-support", 0x01, 4, 6, 2, 4, 'o', 'l', 'd', '!');
    C("offers-none", 0x00, 3, 1, 1, 0);
    C("offers-nothing", 0x01, 3, 0, 0);
    C("mechlist-gssapi-only", 0x01, 0, 2, 6, 'G', 'S', 'S', 'A', 'P', 'I');
    C("mechlist-garbage", 0x01, 0, 2, 5, ',', ' ', ',', 0xff, 'X');
    C("auth-failed-then-hangup", 0x01, 0, 0, 4, 8, 3, 6, 'n', 'o', 'p', 'e', '.', '.', 8);
    C("ping-and-callback-while-waiting", 0x01, 6, 0, 1, 6, 2, 2, 6, 3, 3, 1, 0, 0);
    C("wrong-serial-then-serial0-error", 0x01, 5, 1, 0, 5, 1, 0x90, 5, 1, 1, 0xff, 1, 0x93);
    C("raw-bytes-desync", 0x01, 7, 6, 0, 0, 0, 200, 1, 2);
    C("password-echoed-in-error", 0x02, 0, 0, 0, 0, 0, 4, 8, 3, 16,
      'W', 'o', 'n', 'd', '3', 'r', 'l', 'a', 'n', 'd', '-', 'q', '7', 'Z', '!', 'x');
    C("callback-cancels", 0x82, 0, 0, 0);
    C("peer-offered", 0x05, 3, 1, 2, 0, 9);
#undef C
}

int main(int argc, char **argv)
{
    if (argc != 3)
        die("usage: gen_corpus SRC_DIR OUT_DIR");
    out_dir = argv[2];
    make_dir(out_dir);
    gen_frames();
    gen_uris();
    gen_confs(argv[1]);
    gen_authconfs();
    gen_sasl_server();
    gen_sasl_client();
    return 0;
}
