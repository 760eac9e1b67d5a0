/*
 * fuzz_sasl_server — vbhostd's side of a login against a scripted client:
 * daemon/vbh_dispatch.c (the auth gate, the failure count, the delayed
 * AUTH_FAILED reply, the close after the last attempt) and
 * daemon/vbh_auth.c (AUTH_LIST, SASL INIT/START/STEP, PEER), reached
 * through the real vb_stream, frame reader and decoder on a socketpair,
 * with a real Cyrus SASL server and sasldb (fuzz_sasl_env.h).
 *
 * Input: byte 0 the server's configuration —
 *   bits 0-1  auth_attempts_per_connection - 1 (1..4)
 *   bit 2     the listener is TCP (else unix); bit 3 tcp_min_ssf 56 (else 0)
 *   bits 4-5  sasl_allowed_username_list: none, ["alice"], ["b*"], [] (nobody)
 *   bit 6     the listener also offers "peer"
 * then one op per CALL, sent only after the previous one was answered
 * (a well-behaved client), op byte % 8:
 *   0 AUTH_LIST           1 AUTH_SASL_INIT
 *   2 SASL_START [mech, data]: a mech byte (table below; bit 7 sends nil
 *     data), then a length and the data
 *   3 SASL_STEP [data]: a length and the data
 *   4 SASL_START from a real Cyrus client: mech, credential (fz_creds), a
 *     mutation of its output (fz_mutate)
 *   5 SASL_STEP from that client, fed the server's last data; a mutation
 *   6 any procedure (table below) with a raw body: a length and msgpack bytes
 *   7 any procedure with an empty body
 * The real client makes SCRAM and DIGEST-MD5 logins possible at all: their
 * nonces are random, so no recorded exchange can be replayed.
 *
 * Must hold (else abort): every CALL gets exactly one REPLY, well-formed,
 * with its serial and procedure, or the server closes — and it closes only
 * after a malformed body or after the last allowed AUTH_FAILED, whose text
 * then says so; AUTH_FAILED never says more than "authentication failed"
 * (unknown user and wrong password look alike); "complete" only when the
 * script carried the right password of the user the server now names, a
 * user the allow list admits, with a security layer when the listener
 * demands one; never authenticated after a failure reply. ASan/LSan catch
 * the rest.
 *
 * The target builds what vbh_server.c's accept would (a client on a
 * listener, its stream) and stands in for its close callback; it clears the
 * failure table before each message, so the growing delay (a
 * matter of time, not of the protocol) stays at its first step: 0 ms.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_net.h"
#include "vbh.h"
#include "vbh_failures.h"

#include "fuzz_sasl_env.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SS_WATCHDOG_MS 5000   /* a CALL left unanswered this long is a bug */

static const char *const ss_start_mechs[] = {
    "SCRAM-SHA-256", "DIGEST-MD5", "PLAIN", "plain", "CRAM-MD5", "LOGIN", "GSSAPI",
    "ANONYMOUS", "", NULL, "EXTERNAL", "SCRAM-SHA-1",
    "0123456789012345678901234567890123456789012345678901234567890123", /* 64: the limit */
    "01234567890123456789012345678901234567890123456789012345678901234", /* 65 */
};
#define SS_NSTART_MECHS (sizeof ss_start_mechs / sizeof ss_start_mechs[0])

static const uint32_t ss_procs[] = {
    VB_HOST_PROC_AUTH_LIST, VB_HOST_PROC_AUTH_SASL_INIT, VB_HOST_PROC_AUTH_SASL_START,
    VB_HOST_PROC_AUTH_SASL_STEP, VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, VB_HOST_PROC_AUTH_TOKEN_PROVE,
    VB_HOST_PROC_AUTH_PEER, VB_HOST_PROC_OPEN, VB_HOST_PROC_TOKEN_ISSUE, VB_HOST_PROC_CRED_FILL,
    0, 99,
};
#define SS_NPROCS (sizeof ss_procs / sizeof ss_procs[0])

typedef struct ss_run {
    fz_in in;
    vbh_config cfg;
    vbh_auth_list auth;
    vb_loop *loop;
    vbh_server srv;
    vbh_listener lis;
    vbh_client *c;
    int cfd;                      /* the scripted client's end */
    vb_frame_reader rd;
    uint32_t serial;
    int pending;                  /* a CALL awaits its reply */
    uint32_t pending_proc;
    int pending_may_close;        /* its body may not decode: closing is fair */
    int shut_wr;                  /* the script ended: we sent EOF */
    int stop;                     /* send nothing more (layer on, or attempts used up) */
    int server_closed;
    int closed_before_shutdown;
    unsigned failed;              /* AUTH_FAILED replies seen */
    int authenticated;            /* a START/STEP reply said complete */
    /* the SASL session as the script made it */
    char mech[80];                /* "" unknown (raw body) */
    int proved[FZ_NUSERS];        /* the right password of this user went out */
    vb_sasl *real;                /* the real client of ops 4/5 */
    fz_answer answer;
    uint8_t *last;                /* the server's last challenge */
    size_t last_len;
    uint64_t watchdog;
} ss_run;

static ss_run *ss_cur; /* the stream callbacks carry the client, not the run */

static void ss_session_reset(ss_run *r)
{
    memset(r->proved, 0, sizeof r->proved);
    r->mech[0] = '\0';
    vb_sasl_free(r->real);
    r->real = NULL;
    free(r->last);
    r->last = NULL;
    r->last_len = 0;
}

static void ss_note_data(ss_run *r, const uint8_t *p, size_t len)
{
    for (size_t u = 0; u < FZ_NUSERS; u++)
        if (fz_carries_password(p, len, u))
            r->proved[u] = 1;
}

/* ---- the server side, as vbh_server.c's accept builds it ------------------ */

static void ss_free_failures(vbh_server *srv)
{
    vbh_failures_free(srv->failures);
    srv->failures = NULL;
}

static void ss_on_msg(vb_stream *s, vb_msg *msg, void *data)
{
    (void)s;
    ss_free_failures(&ss_cur->srv);
    vbh_dispatch(data, msg);
}

/* What client_on_close does for a client that never had a worker. */
static void ss_on_close(vb_stream *s, const vb_error *why, void *data)
{
    (void)s;
    (void)why;
    vbh_client *c = data;
    ss_run *r = ss_cur;
    if (c->delay_timer)
        vb_loop_del_timer(r->loop, c->delay_timer);
    c->delay_timer = 0;
    vb_frame_free(c->delayed_frame, c->delayed_len);
    c->delayed_frame = NULL;
    vb_sasl_free(c->sasl);
    c->sasl = NULL;
    c->stream = NULL;
    r->server_closed = 1;
    r->closed_before_shutdown = !r->shut_wr;
    vb_loop_stop(r->loop);
}

static void ss_watchdog(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    ss_run *r = data;
    FZ_ABORT("no reply to procedure %u and no close within %d ms (failed %u)", r->pending_proc,
             SS_WATCHDOG_MS, r->failed);
}

static void ss_config(ss_run *r, uint8_t b)
{
    static char *allow_alice[] = { "alice" };
    static char *allow_b[] = { "b*" };
    memset(&r->cfg, 0, sizeof r->cfg);
    r->cfg.sasl_app = FZ_APP;
    r->cfg.sasl_hostname = FZ_HOST;
    r->cfg.sasl_realm = FZ_REALM;
    r->cfg.auth_attempts_per_connection = 1 + (b & 3);
    r->cfg.tcp_min_ssf = b & 8 ? 56 : 0;
    r->cfg.max_frame = VB_FRAME_MAX_POSTAUTH;
    r->cfg.max_clients = 4;
    r->cfg.max_anonymous_clients = 4;
    switch ((b >> 4) & 3) {
    case 1: r->cfg.sasl_allowed_set = 1, r->cfg.sasl_allowed_usernames = allow_alice,
            r->cfg.nsasl_allowed_usernames = 1; break;
    case 2: r->cfg.sasl_allowed_set = 1, r->cfg.sasl_allowed_usernames = allow_b,
            r->cfg.nsasl_allowed_usernames = 1; break;
    case 3: r->cfg.sasl_allowed_set = 1; break;
    default: break;
    }
    r->auth.types[r->auth.n++] = VBH_AUTH_SASL;
    if (b & 64)
        r->auth.types[r->auth.n++] = VBH_AUTH_PEER;
    r->lis.is_unix = !(b & 4);
    r->lis.auth = &r->auth;
    r->lis.fd = -1;
}

static void ss_start(ss_run *r, int sfd)
{
    vb_error err;
    r->loop = vb_loop_new(&err);
    FZ_CHECK(r->loop != NULL);
    r->srv.cfg = &r->cfg;
    r->srv.loop = r->loop;
    snprintf(r->srv.server_id, sizeof r->srv.server_id, "%s", "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz");
    r->lis.srv = &r->srv;
    vbh_client *c = r->c = calloc(1, sizeof *c);
    FZ_CHECK(c != NULL);
    c->srv = &r->srv;
    c->lis = &r->lis;
    c->refs = 1;
    snprintf(c->peer, sizeof c->peer, "fuzz-peer");
    snprintf(c->failure_source, sizeof c->failure_source, "fuzz-peer");
    c->uid = 4242;
    c->confidential = r->lis.is_unix;
    c->counted_anonymous = 1;
    r->srv.nanonymous = 1;
    r->srv.nclients = 1;
    c->stream = vb_stream_new(r->loop, sfd, VB_FRAME_MAX_PREAUTH, ss_on_msg, ss_on_close, c, &err);
    FZ_CHECK(c->stream != NULL);
    vb_frame_reader_init(&r->rd, VB_FRAME_MAX_POSTAUTH);
}

/* ---- the scripted client: building and sending CALLs ---------------------- */

typedef struct ss_call {
    uint32_t proc;
    vb_enc enc;
} ss_call;

static void ss_begin(ss_run *r, ss_call *call, uint32_t proc)
{
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, ++r->serial, proc,
                          VB_STATUS_OK, 0 };
    call->proc = proc;
    vb_enc_begin(&call->enc, &hdr);
}

static void ss_send(ss_run *r, ss_call *call)
{
    uint8_t *frame;
    size_t len;
    vb_error err;
    FZ_CHECK(vb_enc_finish(&call->enc, VB_FRAME_MAX_ABSOLUTE, &frame, &len, &err) == 0);
    /* blocking: a frame of at most a few KiB fits the socket buffer */
    int rc = vb_net_write_all(r->cfd, frame, len, &err);
    vb_frame_free(frame, len);
    if (rc < 0) { /* the server closed while we were writing: its close is judged later */
        r->stop = 1;
        return;
    }
    r->pending = 1;
    r->pending_proc = call->proc;
    /* a deadline per CALL, not a pause: the loop stays event-driven */
    vb_loop_del_timer(r->loop, r->watchdog);
    r->watchdog = vb_loop_add_timer(r->loop, SS_WATCHDOG_MS, ss_watchdog, r);
}

/* After authentication only the auth procedures (answered on the loop)
 * stay in reach: the rest would start a driver worker or need a token store. */
static int ss_allowed_now(const ss_run *r, uint32_t proc)
{
    return !r->c->authenticated || proc <= VB_HOST_PROC_AUTH_PEER || proc == 99 ||
           proc == VB_HOST_PROC_CRED_FILL;
}

static int ss_op_start_literal(ss_run *r, ss_call *call)
{
    uint8_t sel = fz_byte(&r->in);
    const char *mech = ss_start_mechs[(sel & 0x7f) % SS_NSTART_MECHS];
    size_t len = fz_len(&r->in);
    const uint8_t *p = fz_bytes(&r->in, &len);
    ss_begin(r, call, VB_HOST_PROC_AUTH_SASL_START);
    vb_enc_array(&call->enc, 2);
    vb_enc_str(&call->enc, mech);
    vb_enc_bin(&call->enc, sel & 0x80 ? NULL : p, len);
    snprintf(r->mech, sizeof r->mech, "%s", mech ? mech : "");
    ss_note_data(r, p, len);
    return 1;
}

static int ss_op_step_literal(ss_run *r, ss_call *call)
{
    size_t len = fz_len(&r->in);
    const uint8_t *p = fz_bytes(&r->in, &len);
    ss_begin(r, call, VB_HOST_PROC_AUTH_SASL_STEP);
    vb_enc_array(&call->enc, 1);
    vb_enc_bin(&call->enc, p, len);
    ss_note_data(r, p, len);
    return 1;
}

static void ss_send_real_output(ss_run *r, ss_call *call, uint32_t proc, const char *mech,
                                const uint8_t *out, size_t outlen)
{
    uint8_t *m;
    size_t mlen = fz_mutate(&r->in, out, outlen, &m);
    ss_begin(r, call, proc);
    vb_enc_array(&call->enc, proc == VB_HOST_PROC_AUTH_SASL_START ? 2 : 1);
    if (proc == VB_HOST_PROC_AUTH_SASL_START)
        vb_enc_str(&call->enc, mech);
    vb_enc_bin(&call->enc, m, mlen);
    free(m);
}

static int ss_op_real_start(ss_run *r, ss_call *call)
{
    const char *want = fz_mechs[fz_byte(&r->in) % FZ_NMECHS];
    r->answer.cred = &fz_creds[fz_byte(&r->in) % FZ_NCREDS];
    r->answer.mode = 0;
    vb_error err;
    vb_sasl_free(r->real);
    r->real = vb_sasl_client_new(FZ_SERVICE, FZ_HOST, r->cfd, 0, fz_cred_types, FZ_NCRED_TYPES,
                                 &err);
    FZ_CHECK(r->real != NULL);
    vb_sasl_prompter pr = { fz_cred_fn, &r->answer, "fuzz", 0, NULL };
    const char *mech = NULL;
    const uint8_t *out = NULL;
    size_t outlen = 0;
    if (vb_sasl_client_start(r->real, want, &pr, &mech, &out, &outlen, &err) < 0) {
        /* as vb_remote does: a session whose start failed is never stepped
         * (cyrus's SCRAM client would dereference NULL) */
        vb_sasl_free(r->real);
        r->real = NULL;
        fz_byte(&r->in); /* the mutation byte, unused */
        return 0;
    }
    snprintf(r->mech, sizeof r->mech, "%s", mech ? mech : want);
    if (r->answer.cred->proves >= 0)
        r->proved[r->answer.cred->proves] = 1;
    ss_send_real_output(r, call, VB_HOST_PROC_AUTH_SASL_START, r->mech, out, outlen);
    return 1;
}

static int ss_op_real_step(ss_run *r, ss_call *call)
{
    vb_error err;
    const uint8_t *out = NULL;
    size_t outlen = 0;
    vb_sasl_prompter pr = { fz_cred_fn, &r->answer, "fuzz", 0, NULL };
    if (!r->real || vb_sasl_client_step(r->real, r->last, r->last_len, &pr, &out, &outlen,
                                        &err) < 0) {
        fz_byte(&r->in);
        return 0;
    }
    ss_send_real_output(r, call, VB_HOST_PROC_AUTH_SASL_STEP, NULL, out, outlen);
    return 1;
}

/* A raw body after a valid header: msgpack-c's packer writes it as is. */
static int ss_op_raw(ss_run *r, ss_call *call)
{
    uint32_t proc = ss_procs[fz_byte(&r->in) % SS_NPROCS];
    size_t len = fz_len(&r->in);
    const uint8_t *p = fz_bytes(&r->in, &len);
    if (!ss_allowed_now(r, proc))
        return 0;
    ss_begin(r, call, proc);
    if (len)
        call->enc.pk.callback(call->enc.pk.data, (const char *)p, len);
    else
        vb_enc_nil(&call->enc);
    if (proc == VB_HOST_PROC_AUTH_SASL_START)
        r->mech[0] = '\0'; /* which mechanism: the server knows, we do not */
    ss_note_data(r, p, len);
    r->pending_may_close = 1;
    return 1;
}

static int ss_op_empty(ss_run *r, ss_call *call)
{
    uint32_t proc = ss_procs[fz_byte(&r->in) % SS_NPROCS];
    if (!ss_allowed_now(r, proc))
        return 0;
    ss_begin(r, call, proc);
    vb_enc_array(&call->enc, 0);
    if (proc == VB_HOST_PROC_AUTH_SASL_INIT)
        ss_session_reset(r);
    return 1;
}

/* Build the next CALL from the script; 0 for an op that made none. */
static int ss_next_call(ss_run *r, ss_call *call)
{
    r->pending_may_close = 0;
    switch (fz_byte(&r->in) % 8) {
    case 0: ss_begin(r, call, VB_HOST_PROC_AUTH_LIST); vb_enc_array(&call->enc, 0); return 1;
    case 1:
        ss_session_reset(r);
        ss_begin(r, call, VB_HOST_PROC_AUTH_SASL_INIT);
        vb_enc_array(&call->enc, 0);
        return 1;
    case 2: return ss_op_start_literal(r, call);
    case 3: return ss_op_step_literal(r, call);
    case 4: return ss_op_real_start(r, call);
    case 5: return ss_op_real_step(r, call);
    case 6: return ss_op_raw(r, call);
    default: return ss_op_empty(r, call);
    }
}

static void ss_send_next(ss_run *r)
{
    if (r->failed >= r->cfg.auth_attempts_per_connection)
        return; /* the server must close now; sending more would hide it */
    while (!r->stop && !fz_done(&r->in)) {
        ss_call call;
        if (ss_next_call(r, &call)) {
            ss_send(r, &call);
            return;
        }
    }
    if (!r->shut_wr) {
        r->shut_wr = 1;
        shutdown(r->cfd, SHUT_WR);
    }
}

/* ---- checking replies ------------------------------------------------------ */

static void ss_check_error(ss_run *r, const vb_msg *msg)
{
    vb_error remote, err;
    FZ_CHECK(vb_msg_error_body(msg, &remote, &err) == 0);
    FZ_CHECK(remote.code != VB_ERR_OK && remote.message[0] != '\0');
    if (remote.code == VB_ERR_AUTH_FAILED) {
        r->failed++;
        char last[200];
        snprintf(last, sizeof last,
                 "authentication failed (%u failed attempts; the server closes this connection)",
                 r->failed);
        if (r->failed >= r->cfg.auth_attempts_per_connection)
            FZ_CHECK(strcmp(remote.message, last) == 0);
        else
            FZ_CHECK(strcmp(remote.message, "authentication failed") == 0);
        FZ_CHECK(!r->c->authenticated);
        ss_session_reset(r);
    }
    for (size_t u = 0; u < FZ_NUSERS; u++) /* a secret never comes back */
        FZ_CHECK(!strstr(remote.message, fz_users[u].password));
}

/* The user part of the name the server gives the login. */
static int ss_identity_is(const char *identity, const char *user)
{
    size_t n = strlen(user);
    return strncmp(identity, user, n) == 0 &&
           (identity[n] == '\0' || strcmp(identity + n, "@" FZ_REALM) == 0);
}

static void ss_check_success(ss_run *r)
{
    vbh_client *c = r->c;
    FZ_CHECK(c->authenticated && strcmp(c->auth_type, "sasl") == 0);
    int proved = 0;
    for (size_t u = 0; u < FZ_NUSERS; u++)
        proved |= r->proved[u] && ss_identity_is(c->identity, fz_users[u].name);
    if (!proved)
        FZ_ABORT("authenticated as '%s' (mech '%s') without that user's password", c->identity,
                 r->mech);
    if (r->mech[0]) {
        int known = 0;
        for (size_t i = 0; i < FZ_NMECHS; i++)
            known |= strcasecmp(r->mech, fz_mechs[i]) == 0;
        FZ_CHECK(known);
    }
    if (r->cfg.sasl_allowed_set) {
        int allowed = 0;
        for (size_t i = 0; i < r->cfg.nsasl_allowed_usernames; i++)
            allowed |= fnmatch(r->cfg.sasl_allowed_usernames[i], c->identity, 0) == 0;
        FZ_CHECK(allowed);
    }
    unsigned ssf = c->sasl ? vb_sasl_ssf(c->sasl) : 0;
    FZ_CHECK(ssf >= c->min_ssf);
    r->authenticated = 1;
    if (ssf > 0)
        r->stop = 1; /* the layer is on: the script's plain frames would be garbage */
}

static void ss_check_ok(ss_run *r, const vb_msg *msg)
{
    vb_rd rd, sub;
    vb_error err;
    const char *s;
    const uint8_t *b;
    size_t len;
    int complete;
    FZ_CHECK(vb_rd_init(&rd, msg->body, &err) == 0);
    switch (r->pending_proc) {
    case VB_HOST_PROC_AUTH_LIST:
        FZ_CHECK(vb_rd_array(&rd, &sub, &err) == 0 && sub.count >= 1);
        while (vb_rd_has_more(&sub))
            FZ_CHECK(vb_rd_str(&sub, &s, &len, &err) == 0 && s);
        FZ_CHECK(vb_rd_str(&rd, &s, &len, &err) == 0 && s && len == 32);
        break;
    case VB_HOST_PROC_AUTH_SASL_INIT:
        FZ_CHECK(vb_rd_str(&rd, &s, &len, &err) == 0 && s && len > 0);
        FZ_CHECK(!memmem(s, len, "GSSAPI", 6) && !memmem(s, len, "ANONYMOUS", 9));
        if (r->c->min_ssf > 0) /* only a mechanism with a layer can reach 56 */
            FZ_CHECK(!memmem(s, len, "PLAIN", 5) && !memmem(s, len, "SCRAM", 5));
        break;
    case VB_HOST_PROC_AUTH_SASL_START:
    case VB_HOST_PROC_AUTH_SASL_STEP:
        FZ_CHECK(vb_rd_bool(&rd, &complete, &err) == 0);
        FZ_CHECK(vb_rd_bin(&rd, &b, &len, &err) == 0 && b);
        if (complete) {
            ss_check_success(r);
        } else {
            FZ_CHECK(!r->c->authenticated);
            free(r->last);
            r->last = malloc(len + 1);
            FZ_CHECK(r->last != NULL);
            memcpy(r->last, b, len);
            r->last_len = len;
        }
        break;
    case VB_HOST_PROC_AUTH_PEER:
        FZ_ABORT("peer authentication succeeded for a client that is not allowed");
    default:
        FZ_ABORT("procedure %u answered OK", r->pending_proc);
    }
}

static void ss_reply(ss_run *r, vb_msg *msg)
{
    FZ_CHECK(r->pending); /* no reply without a CALL, and only one */
    FZ_CHECK(msg->hdr.program == VB_PROG_HOST && msg->hdr.version == VB_PROG_HOST_VERSION &&
             msg->hdr.type == VB_MSG_REPLY && msg->hdr.serial == r->serial &&
             msg->hdr.procedure == r->pending_proc && msg->hdr.conn_id == 0);
    r->pending = 0;
    if (msg->hdr.status == VB_STATUS_ERROR)
        ss_check_error(r, msg);
    else
        ss_check_ok(r, msg);
}

/* Cut and check every reply in buf. */
static void ss_consume(ss_run *r, const uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t used;
        vb_error err;
        int st = vb_frame_reader_feed(&r->rd, buf + off, n - off, &used, &err);
        off += used;
        FZ_CHECK(st != VB_FRAME_ERROR);
        if (st != VB_FRAME_READY)
            continue;
        size_t len;
        uint8_t *payload = vb_frame_reader_take(&r->rd, &len);
        vb_msg msg;
        FZ_CHECK(vb_msg_decode(&msg, payload, len, &err) == 0);
        ss_reply(r, &msg);
        vb_msg_clear(&msg);
    }
}

static void ss_on_readable(vb_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    ss_run *r = data;
    uint8_t buf[16384];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0)
        return; /* EOF: the close callback says the rest */
    ss_consume(r, buf, (size_t)n);
    if (!r->pending)
        ss_send_next(r);
}

/* After the server's stream is gone: what it sent last is still buffered. */
static void ss_drain(ss_run *r)
{
    uint8_t buf[16384];
    ssize_t n;
    while ((n = recv(r->cfd, buf, sizeof buf, 0)) > 0)
        ss_consume(r, buf, (size_t)n);
    FZ_CHECK(!vb_frame_reader_partial(&r->rd)); /* no torn reply */
}

static void ss_finish(ss_run *r)
{
    if (getenv("FUZZ_SASL_TRACE")) /* what a seed does, for writing seeds */
        fprintf(stderr, "fuzz_sasl_server: authenticated %d as '%s', %u failed, closed by %s\n",
                r->authenticated, r->c->identity, r->failed,
                r->closed_before_shutdown ? "server" : "client");
    if (r->closed_before_shutdown) /* the server hung up on its own: only for a reason */
        FZ_CHECK(r->failed >= r->cfg.auth_attempts_per_connection ||
                 (r->pending && r->pending_may_close) || r->stop);
    if (r->failed >= r->cfg.auth_attempts_per_connection)
        FZ_CHECK(r->closed_before_shutdown && !r->authenticated);
    else if (!r->closed_before_shutdown) /* we hung up first: every CALL was answered */
        FZ_CHECK(!r->pending);
}

static void ss_cleanup(ss_run *r)
{
    vb_loop_del_fd(r->loop, r->cfd);
    close(r->cfd);
    vb_loop_free(r->loop);
    ss_session_reset(r);
    vb_frame_reader_clear(&r->rd);
    ss_free_failures(&r->srv);
    free(r->c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_env_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fz_env_init();
    ss_run run;
    ss_run *r = &run;
    memset(r, 0, sizeof *r);
    r->in.p = data + 1;
    r->in.n = size - 1;
    ss_config(r, data[0]);
    int sv[2];
    FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    ss_cur = r;
    r->cfd = sv[0];
    ss_start(r, sv[1]);
    vb_error err;
    FZ_CHECK(vb_loop_add_fd(r->loop, r->cfd, VB_LOOP_READ, ss_on_readable, r, &err) == 0);
    ss_send_next(r);
    FZ_CHECK(vb_loop_run(r->loop) == 0);
    FZ_CHECK(r->server_closed);
    ss_drain(r);
    ss_finish(r);
    ss_cleanup(r);
    ss_cur = NULL;
    return 0;
}
