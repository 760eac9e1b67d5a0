/*
 * fuzz_sasl_client — the client's negotiation (hvdrivers/vb_remote_auth.c:
 * AUTH_LIST, the priority list, SASL INIT/START/STEP with a real Cyrus SASL
 * client, retries, unsolicited pings and credential callbacks) against a
 * scripted, possibly malicious server. vb_remote_connect_fd runs on one end
 * of a socketpair (or of a loopback TCP connection); a peer thread answers
 * on the other end from the script (fuzz_sasl_env.h has the setup).
 *
 * Input: byte 0 the client's side —
 *   bits 0-2  the URI's auth=: (none: the default list), sasl, sasl.PLAIN,
 *             sasl.SCRAM-SHA-256, sasl.DIGEST-MD5, peer, sasl.GSSAPI,
 *             sasl.CRAM-MD5
 *   bits 3-5  what the credential callback answers (fz_creds)
 *   bit 6     TCP on 127.0.0.1 (the client then demands SSF 56), else unix
 *   bit 7     the callback cancels (even bits 3-5) or leaves items empty
 * then the server's ops, each run while the client waits for a reply (the
 * peer reads the client's next CALL when the last one was answered),
 * op byte % 10:
 *   0 answer as vbhostd would, with a real Cyrus SASL server and the sasldb;
 *     a flags byte (bit 0 flips "complete") and a mutation (fz_mutate)
 *   1 [complete, data]: a byte, a length and the data
 *   2 [str]: a length and the text (a mechanism list)
 *   3 [[types], id]: a count, type bytes (table below), a length and the id
 *   4 an ERROR reply: code, domain, a length and the message
 *   5 any header (type, status, serial offset) with a raw msgpack body
 *   6 something unasked: PING as CALL or EVENT, a CRED_FILL callback (a
 *     template, or a raw body), CRED_APPROVE/REJECT, another callback
 *   7 raw bytes on the wire       8 hang up       9 an empty [] reply
 * The peer runs the client's frame reader on its own output, so it knows
 * when the client's wait ends (a REPLY with the serial, or an ERROR with
 * serial 0) and when the client's stream is broken; the script's end, a
 * hang-up or a broken stream become EOF. Nothing waits on time.
 *
 * Must hold (else abort): success as "sasl" only if the reply that ended
 * the exchange said complete; success through SCRAM or DIGEST-MD5 (which
 * authenticate the server) only if the peer's real Cyrus server completed
 * and the callback gave the right password; on TCP, SSF >= 56; a failure is
 * a vb_error with a code and a message, and the password the callback gave
 * is not in it (unless the server itself sent it); every frame the client
 * sends is well-formed; no leak, no hang (libFuzzer's -timeout).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_msg.h"
#include "vb_remote.h"
#include "vb_uri.h"

#include "fuzz_sasl_env.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sc_auths[] = {
    NULL, "sasl", "sasl.PLAIN", "sasl.SCRAM-SHA-256", "sasl.DIGEST-MD5", "peer", "sasl.GSSAPI",
    "sasl.CRAM-MD5",
};
static const char *const sc_types[] = { "sasl", "none", "peer", "token", "SASL", "sasl.PLAIN", "" };
#define SC_NTYPES (sizeof sc_types / sizeof sc_types[0])
#define SC_SERVER_ID "0123456789abcdef0123456789abcdef"

/* ---- the peer --------------------------------------------------------------- */

typedef struct sc_peer {
    fz_in in;
    int fd;
    unsigned min_ssf;
    const char *sasl_host;         /* the name the client uses for SASL */
    uint8_t *inbuf;                /* bytes from the client not yet cut */
    size_t inlen, inoff;
    vb_frame_reader crd;           /* cuts the client's frames */
    vb_frame_reader sim;           /* the client's reader, run on our output */
    int waiting;                   /* the client waits for the reply to wait_serial */
    uint32_t wait_serial, wait_proc;
    vb_msg call;                   /* that CALL */
    int have_call;
    int doomed;                    /* the client's stream is broken: it will give up */
    int gone;                      /* the client hung up, or we did */
    int shut;
    /* the outcome the client's result is judged by */
    uint32_t last_proc;            /* procedure of the last reply the client took */
    int last_complete;             /* ... a START/STEP reply that said complete */
    vb_sasl *srv;                  /* the real server of op 0 */
    int real_complete;             /* it completed in the current attempt */
    const char *password;          /* what the callback gives ("" none) */
    int sent_password;
} sc_peer;

/* What the client's reader makes of frames we sent: it takes frames only
 * while it waits, in order; one that ends the wait is the reply. */
typedef struct sc_seen {
    vb_msg_header hdr;
    int complete;
    struct sc_seen *next;
} sc_seen;

static sc_seen *sc_queue_head, **sc_queue_tail = &sc_queue_head;

static void sc_take_reply(sc_peer *p, const sc_seen *s)
{
    p->waiting = 0;
    p->last_proc = p->wait_proc;
    p->last_complete = s->complete && s->hdr.status == VB_STATUS_OK &&
                       s->hdr.serial == p->wait_serial;
}

/* Let the (waiting) client consume what we queued. */
static void sc_client_reads(sc_peer *p)
{
    while (p->waiting && sc_queue_head) {
        sc_seen *s = sc_queue_head;
        sc_queue_head = s->next;
        if (!sc_queue_head)
            sc_queue_tail = &sc_queue_head;
        if (s->hdr.type == VB_MSG_REPLY &&
            (s->hdr.serial == p->wait_serial ||
             (s->hdr.serial == 0 && s->hdr.status == VB_STATUS_ERROR)))
            sc_take_reply(p, s);
        free(s);
    }
}

static void sc_queue_free(void)
{
    while (sc_queue_head) {
        sc_seen *s = sc_queue_head;
        sc_queue_head = s->next;
        free(s);
    }
    sc_queue_tail = &sc_queue_head;
}

/* [complete, ...] as sasl_exchange reads it. */
static int sc_says_complete(const vb_msg *m)
{
    vb_rd rd;
    int complete = 0;
    return vb_rd_init(&rd, m->body, NULL) == 0 && vb_rd_bool(&rd, &complete, NULL) == 0 &&
           complete;
}

static void sc_simulate(sc_peer *p, const uint8_t *buf, size_t n)
{
    size_t off = 0;
    while (off < n && !p->doomed) {
        size_t used;
        vb_error err;
        int st = vb_frame_reader_feed(&p->sim, buf + off, n - off, &used, &err);
        off += used;
        if (st == VB_FRAME_ERROR) {
            p->doomed = 1;
            break;
        }
        if (st != VB_FRAME_READY)
            continue;
        size_t len;
        uint8_t *payload = vb_frame_reader_take(&p->sim, &len);
        vb_msg m;
        if (vb_msg_decode(&m, payload, len, &err) < 0) {
            p->doomed = 1;
        } else {
            sc_seen *s = calloc(1, sizeof *s);
            FZ_CHECK(s != NULL);
            s->hdr = m.hdr;
            s->complete = sc_says_complete(&m);
            *sc_queue_tail = s;
            sc_queue_tail = &s->next;
        }
        vb_msg_clear(&m);
    }
    sc_client_reads(p);
}

static void sc_stash_input(sc_peer *p, const uint8_t *buf, size_t n)
{
    if (p->inoff == p->inlen)
        p->inoff = p->inlen = 0;
    uint8_t *nb = realloc(p->inbuf, p->inlen + n);
    FZ_CHECK(nb != NULL);
    p->inbuf = nb;
    memcpy(p->inbuf + p->inlen, buf, n);
    p->inlen += n;
}

/* One read from the client into inbuf (blocking); 0 at EOF. */
static int sc_read_some(sc_peer *p)
{
    uint8_t buf[16384];
    ssize_t n;
    do {
        n = recv(p->fd, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) /* EOF, or a reset after the client closed */
        return 0;
    sc_stash_input(p, buf, (size_t)n);
    return 1;
}

/* Write all of buf, reading whatever the client sends meanwhile, so two
 * full socket buffers cannot deadlock us. */
static void sc_write(sc_peer *p, const uint8_t *buf, size_t n)
{
    if (p->gone || p->shut)
        return;
    if (memmem(buf, n, p->password, strlen(p->password)) && p->password[0])
        p->sent_password = 1;
    sc_simulate(p, buf, n);
    size_t off = 0;
    while (off < n) {
        struct pollfd pfd = { p->fd, POLLIN | POLLOUT, 0 };
        if (poll(&pfd, 1, -1) < 0 && errno == EINTR)
            continue;
        if (pfd.revents & POLLIN && !sc_read_some(p)) {
            p->gone = 1;
            return;
        }
        if (!(pfd.revents & POLLOUT))
            continue;
        ssize_t w = send(p->fd, buf + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w < 0) {
            p->gone = 1;
            return;
        }
        off += (size_t)w;
    }
}

static void sc_send_enc(sc_peer *p, vb_enc *enc)
{
    uint8_t *frame;
    size_t len;
    vb_error err;
    FZ_CHECK(vb_enc_finish(enc, VB_FRAME_MAX_ABSOLUTE, &frame, &len, &err) == 0);
    sc_write(p, frame, len);
    vb_frame_free(frame, len);
}

/* Begin the reply to the CALL the client waits for. */
static void sc_begin_reply(sc_peer *p, vb_enc *enc, uint32_t status)
{
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_REPLY, p->wait_serial,
                          p->wait_proc, status, 0 };
    vb_enc_begin(enc, &hdr);
}

static void sc_send_error(sc_peer *p, int code, int domain, const char *msg, size_t len)
{
    vb_enc enc;
    sc_begin_reply(p, &enc, VB_STATUS_ERROR);
    vb_enc_array(&enc, 3);
    vb_enc_u64(&enc, (uint64_t)code);
    vb_enc_u64(&enc, (uint64_t)domain);
    vb_enc_strn(&enc, msg, len);
    sc_send_enc(p, &enc);
}

static void sc_send_sasl(sc_peer *p, int complete, const uint8_t *data, size_t len)
{
    vb_enc enc;
    sc_begin_reply(p, &enc, VB_STATUS_OK);
    vb_enc_array(&enc, 2);
    vb_enc_bool(&enc, complete);
    vb_enc_bin(&enc, data ? data : (const uint8_t *)"", len);
    sc_send_enc(p, &enc);
}

/* ---- op 0: what vbhostd would answer -------------------------------------------- */

static void sc_real_init(sc_peer *p)
{
    vb_error err;
    char *mechlist = NULL;
    vb_sasl_free(p->srv);
    p->real_complete = 0;
    p->srv = vb_sasl_server_new(FZ_SERVICE, p->sasl_host, FZ_REALM, p->fd, p->min_ssf, &err);
    if (!p->srv || vb_sasl_server_mechlist(p->srv, &mechlist, &err) < 0) {
        sc_send_error(p, err.code, err.domain, err.message, strlen(err.message));
        return;
    }
    vb_enc enc;
    sc_begin_reply(p, &enc, VB_STATUS_OK);
    vb_enc_array(&enc, 1);
    vb_enc_str(&enc, mechlist);
    sc_send_enc(p, &enc);
    free(mechlist);
}

static void sc_real_step(sc_peer *p)
{
    uint8_t flags = fz_byte(&p->in);
    vb_rd rd;
    char *mech = NULL;
    const uint8_t *in = NULL, *out = NULL;
    size_t inlen = 0, outlen = 0;
    vb_error err;
    int start = p->wait_proc == VB_HOST_PROC_AUTH_SASL_START;
    /* the client's frames were checked when read: the body is well-formed */
    FZ_CHECK(vb_rd_init(&rd, p->call.body, &err) == 0);
    if (start)
        FZ_CHECK(vb_rd_strdup(&rd, 64, &mech, &err) == 0 && mech);
    FZ_CHECK(vb_rd_bin(&rd, &in, &inlen, &err) == 0);
    int progress;
    if (!p->srv || (!start && !vb_sasl_mech(p->srv))) /* as vbh_auth.c: no step before start */
        progress = vb_error_set(&err, VB_ERR_OPERATION_INVALID, VB_DOM_AUTH, "no SASL exchange");
    else if (start)
        progress = vb_sasl_server_start(p->srv, mech, in, inlen, &out, &outlen, NULL, &err);
    else
        progress = vb_sasl_server_step(p->srv, in, inlen, &out, &outlen, NULL, &err);
    free(mech);
    if (progress < 0) {
        vb_sasl_free(p->srv);
        p->srv = NULL;
        sc_send_error(p, err.code, err.domain, err.message, strlen(err.message));
        return;
    }
    p->real_complete |= progress == VB_SASL_COMPLETE;
    uint8_t *m;
    size_t mlen = fz_mutate(&p->in, out, outlen, &m);
    sc_send_sasl(p, (progress == VB_SASL_COMPLETE) ^ (flags & 1), m, mlen);
    free(m);
}

static void sc_op_real(sc_peer *p)
{
    switch (p->wait_proc) {
    case VB_HOST_PROC_AUTH_LIST: {
        vb_enc enc;
        sc_begin_reply(p, &enc, VB_STATUS_OK);
        vb_enc_array(&enc, 2);
        vb_enc_array(&enc, 1);
        vb_enc_str(&enc, "sasl");
        vb_enc_str(&enc, SC_SERVER_ID);
        sc_send_enc(p, &enc);
        break;
    }
    case VB_HOST_PROC_AUTH_SASL_INIT: sc_real_init(p); break;
    case VB_HOST_PROC_AUTH_SASL_START:
    case VB_HOST_PROC_AUTH_SASL_STEP: sc_real_step(p); break;
    default: sc_send_error(p, VB_ERR_NO_SUPPORT, VB_DOM_RPC, "not here", 8); break;
    }
}

/* ---- the literal ops ---------------------------------------------------------- */

static const uint8_t *sc_blob(sc_peer *p, size_t *len)
{
    *len = fz_len(&p->in);
    return fz_bytes(&p->in, len);
}

static void sc_op_authlist(sc_peer *p)
{
    unsigned n = fz_byte(&p->in) % 5;
    uint8_t t[4];
    for (unsigned i = 0; i < n; i++)
        t[i] = fz_byte(&p->in);
    size_t len;
    const uint8_t *id = sc_blob(p, &len);
    vb_enc enc;
    sc_begin_reply(p, &enc, VB_STATUS_OK);
    vb_enc_array(&enc, 2);
    vb_enc_array(&enc, n);
    for (unsigned i = 0; i < n; i++)
        vb_enc_str(&enc, sc_types[t[i] % SC_NTYPES]);
    vb_enc_strn(&enc, (const char *)id, len);
    sc_send_enc(p, &enc);
}

static void sc_op_raw_reply(sc_peer *p)
{
    uint8_t type = fz_byte(&p->in) % (VB_MSG_TYPE_MAX + 1);
    uint8_t status = fz_byte(&p->in) & 1;
    uint8_t delta = fz_byte(&p->in);
    size_t len;
    const uint8_t *body = sc_blob(p, &len);
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, type,
                          delta == 0xff ? 0 : p->wait_serial + delta, p->wait_proc, status, 0 };
    vb_enc enc;
    vb_enc_begin(&enc, &hdr);
    if (len)
        enc.pk.callback(enc.pk.data, (const char *)body, len);
    else
        vb_enc_nil(&enc);
    sc_send_enc(p, &enc);
}

/* docs/protocol.md's CRED_FILL callback: [service, hops, retry, items] */
static void sc_cred_fill_body(vb_enc *e)
{
    vb_enc_array(e, 4);
    vb_enc_str(e, "xenapi://root@xen1/");
    vb_enc_array(e, 1);
    vb_enc_str(e, "vbhostd@gw.example.org");
    vb_enc_bool(e, 0);
    vb_enc_array(e, 2);
    vb_enc_array(e, 4);
    vb_enc_u64(e, VB_CRED_AUTHNAME);
    vb_enc_str(e, "Login:");
    vb_enc_nil(e);
    vb_enc_str(e, "root");
    vb_enc_array(e, 4);
    vb_enc_u64(e, VB_CRED_PASSPHRASE);
    vb_enc_str(e, "Password:");
    vb_enc_nil(e);
    vb_enc_nil(e);
}

static void sc_op_unsolicited(sc_peer *p)
{
    uint8_t kind = fz_byte(&p->in) % 6;
    static const struct { uint32_t prog, type, proc; } h[] = {
        { VB_PROG_KEEPALIVE, VB_MSG_CALL, VB_KEEPALIVE_PROC_PING },
        { VB_PROG_KEEPALIVE, VB_MSG_EVENT, VB_KEEPALIVE_PROC_PING },
        { VB_PROG_HOST, VB_MSG_CALLBACK, VB_HOST_PROC_CRED_FILL },
        { VB_PROG_HOST, VB_MSG_EVENT, VB_HOST_PROC_CRED_APPROVE },
        { VB_PROG_HOST, VB_MSG_CALLBACK, VB_HOST_PROC_OPEN },
        { VB_PROG_HOST, VB_MSG_CALLBACK, VB_HOST_PROC_CRED_FILL },
    };
    vb_msg_header hdr = { h[kind].prog, vb_proto_program_version(h[kind].prog), h[kind].type,
                          1000 + fz_byte(&p->in), h[kind].proc, VB_STATUS_OK, 0 };
    if (kind == 3 && fz_byte(&p->in) & 1)
        hdr.procedure = VB_HOST_PROC_CRED_REJECT;
    vb_enc enc;
    vb_enc_begin(&enc, &hdr);
    if (kind == 2) {
        sc_cred_fill_body(&enc);
    } else if (kind == 3) {
        vb_enc_array(&enc, 1);
        vb_enc_str(&enc, "xenapi://root@xen1/");
    } else if (kind == 5) {
        size_t len;
        const uint8_t *body = sc_blob(p, &len);
        if (len)
            enc.pk.callback(enc.pk.data, (const char *)body, len);
        else
            vb_enc_nil(&enc);
    } else {
        vb_enc_array(&enc, 0);
    }
    sc_send_enc(p, &enc);
}

static void sc_hang_up(sc_peer *p)
{
    if (!p->shut)
        shutdown(p->fd, SHUT_WR);
    p->shut = 1;
}

static void sc_op(sc_peer *p)
{
    size_t len;
    const uint8_t *b;
    vb_enc enc;
    switch (fz_byte(&p->in) % 10) {
    case 0: sc_op_real(p); break;
    case 1: {
        uint8_t c = fz_byte(&p->in);
        b = sc_blob(p, &len);
        sc_send_sasl(p, c & 1, b, len);
        break;
    }
    case 2:
        b = sc_blob(p, &len);
        sc_begin_reply(p, &enc, VB_STATUS_OK);
        vb_enc_array(&enc, 1);
        vb_enc_strn(&enc, (const char *)b, len);
        sc_send_enc(p, &enc);
        break;
    case 3: sc_op_authlist(p); break;
    case 4: {
        int code = fz_byte(&p->in) % (VB_ERR_TOKEN_REFUSED + 1);
        int domain = fz_byte(&p->in) % (VB_DOM_CLIENT + 1);
        b = sc_blob(p, &len);
        sc_send_error(p, code, domain, (const char *)b, len);
        break;
    }
    case 5: sc_op_raw_reply(p); break;
    case 6: sc_op_unsolicited(p); break;
    case 7: b = sc_blob(p, &len); sc_write(p, b, len); break;
    case 8: sc_hang_up(p); break;
    default:
        sc_begin_reply(p, &enc, VB_STATUS_OK);
        vb_enc_array(&enc, 0);
        sc_send_enc(p, &enc);
        break;
    }
}

/* ---- what the client sends ------------------------------------------------------ */

/* The client's next frame (checked); 0 at EOF. */
static int sc_next_frame(sc_peer *p, vb_msg *m)
{
    for (;;) {
        while (p->inoff < p->inlen) {
            size_t used;
            vb_error err;
            int st = vb_frame_reader_feed(&p->crd, p->inbuf + p->inoff, p->inlen - p->inoff,
                                          &used, &err);
            p->inoff += used;
            FZ_CHECK(st != VB_FRAME_ERROR); /* the client's frames are well-formed */
            if (st == VB_FRAME_READY) {
                size_t len;
                uint8_t *payload = vb_frame_reader_take(&p->crd, &len);
                FZ_CHECK(vb_msg_decode(m, payload, len, &err) == 0);
                return 1;
            }
        }
        if (!sc_read_some(p))
            return 0;
    }
}

static void sc_check_call(const vb_msg *m)
{
    vb_rd rd;
    vb_error err;
    FZ_CHECK(m->hdr.program == VB_PROG_HOST && m->hdr.status == VB_STATUS_OK);
    FZ_CHECK(vb_rd_init(&rd, m->body, &err) == 0);
    if (m->hdr.procedure == VB_HOST_PROC_AUTH_SASL_START) {
        char *mech = NULL;
        const uint8_t *b;
        size_t len;
        FZ_CHECK(vb_rd_strdup(&rd, 64, &mech, &err) == 0 && mech && *mech);
        FZ_CHECK(vb_rd_bin(&rd, &b, &len, &err) == 0 && len <= VB_SASL_MAX_DATA);
        free(mech);
    } else if (m->hdr.procedure == VB_HOST_PROC_AUTH_SASL_STEP) {
        const uint8_t *b;
        size_t len;
        FZ_CHECK(vb_rd_bin(&rd, &b, &len, &err) == 0 && len <= VB_SASL_MAX_DATA);
    }
}

static void *sc_peer_main(void *arg)
{
    sc_peer *p = arg;
    while (!p->gone) {
        if (!p->waiting) {
            vb_msg m;
            if (!sc_next_frame(p, &m))
                break;
            if (m.hdr.type != VB_MSG_CALL) { /* a PONG or a callback's answer */
                vb_msg_clear(&m);
                continue;
            }
            sc_check_call(&m);
            FZ_CHECK(!p->shut); /* the client saw our EOF and still called */
            if (p->have_call)
                vb_msg_clear(&p->call);
            p->call = m;
            p->have_call = 1;
            p->waiting = 1;
            p->wait_serial = m.hdr.serial;
            p->wait_proc = m.hdr.procedure;
            sc_client_reads(p); /* frames we sent early may answer it */
            continue;
        }
        if (p->doomed || p->shut || fz_done(&p->in)) {
            sc_hang_up(p);
            while (sc_read_some(p)) /* until the client closes */
                p->inoff = p->inlen;
            break;
        }
        sc_op(p);
    }
    return NULL;
}

/* ---- the client ------------------------------------------------------------------ */

static int sc_listen_fd = -1;
static struct sockaddr_in sc_listen_addr;
static pthread_once_t sc_listen_once = PTHREAD_ONCE_INIT;

static void sc_listen(void)
{
    socklen_t alen = sizeof sc_listen_addr;
    sc_listen_addr.sin_family = AF_INET;
    sc_listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sc_listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FZ_CHECK(sc_listen_fd >= 0);
    FZ_CHECK(bind(sc_listen_fd, (struct sockaddr *)&sc_listen_addr, sizeof sc_listen_addr) == 0);
    FZ_CHECK(listen(sc_listen_fd, 16) == 0);
    FZ_CHECK(getsockname(sc_listen_fd, (struct sockaddr *)&sc_listen_addr, &alen) == 0);
}

/* A connected pair: unix, or loopback TCP (the client's end resets on
 * close, so thousands of runs leave no TIME_WAIT behind). */
static void sc_pair(int tcp, int sv[2])
{
    if (!tcp) {
        FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        return;
    }
    pthread_once(&sc_listen_once, sc_listen);
    sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FZ_CHECK(sv[0] >= 0);
    struct linger lg = { 1, 0 };
    FZ_CHECK(setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    FZ_CHECK(connect(sv[0], (struct sockaddr *)&sc_listen_addr, sizeof sc_listen_addr) == 0);
    sv[1] = accept4(sc_listen_fd, NULL, NULL, SOCK_CLOEXEC);
    FZ_CHECK(sv[1] >= 0);
}

static int sc_is_mutual(const char *mech)
{
    return mech && (strncasecmp(mech, "SCRAM-", 6) == 0 || strcasecmp(mech, "DIGEST-MD5") == 0);
}

/* What the client said, kept past vb_remote_free (which ends the peer). */
typedef struct sc_result {
    int rc;
    vb_error err;
    char type[32];
    char mech[64];
    int have_mech;
    unsigned ssf;
} sc_result;

static void sc_judge(const sc_peer *p, const fz_answer *a, const char *auth, int tcp,
                     const sc_result *res)
{
    const vb_error *err = &res->err;
    if (getenv("FUZZ_SASL_TRACE")) /* what a seed does, for writing seeds */
        fprintf(stderr, "fuzz_sasl_client: rc %d type '%s' mech '%s' ssf %u: %s\n", res->rc,
                res->type, res->mech, res->ssf, err->message);
    if (res->rc < 0) {
        FZ_CHECK(err->code != VB_ERR_OK && err->message[0] != '\0');
        FZ_CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
        if (p->password[0] && !p->sent_password && strstr(err->message, p->password))
            FZ_ABORT("the password is in the error: %s", err->message);
        return;
    }
    const char *type = res->type;
    /* auth=sasl...: nothing else will do, not even a "v1 server" that
     * knows no AUTH_LIST (docs/protocol.md: the URI's demand wins) */
    if (auth && strncmp(auth, "sasl", 4) == 0)
        FZ_CHECK(strcmp(type, "sasl") == 0);
    if (strcmp(type, "sasl") != 0)
        return;
    FZ_CHECK(p->last_complete && (p->last_proc == VB_HOST_PROC_AUTH_SASL_START ||
                                  p->last_proc == VB_HOST_PROC_AUTH_SASL_STEP));
    FZ_CHECK(res->have_mech);
    if (sc_is_mutual(res->mech) && !(p->real_complete && a->mode == 0 && a->cred->proves >= 0))
        FZ_ABORT("%s login accepted from a server that could not know the password", res->mech);
    if (tcp)
        FZ_CHECK(res->ssf >= 56);
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
    uint8_t cfg = data[0];
    const char *auth = sc_auths[cfg & 7];
    int tcp = (cfg >> 6) & 1;
    fz_answer answer = { &fz_creds[(cfg >> 3) & 7], 0, 0 };
    if (cfg & 0x80)
        answer.mode = (cfg >> 3) & 1 ? 2 : 1;

    char text[256];
    snprintf(text, sizeof text, "%s%s%s",
             tcp ? "test+tcp://" FZ_HOST "/default" : "test+unix:///default?socket=/nonexistent",
             auth ? (tcp ? "?auth=" : "&auth=") : "", auth ? auth : "");
    vb_uri uri;
    vb_error err;
    FZ_CHECK(vb_uri_parse(text, &uri, &err) == 0);

    int sv[2];
    sc_pair(tcp, sv);
    sc_peer peer;
    memset(&peer, 0, sizeof peer);
    peer.in.p = data + 1;
    peer.in.n = size - 1;
    peer.fd = sv[1];
    peer.min_ssf = tcp ? 56 : 0;
    peer.sasl_host = tcp ? FZ_HOST : "localhost";
    peer.password = answer.mode == 0 ? answer.cred->password : "";
    vb_frame_reader_init(&peer.crd, VB_FRAME_MAX_POSTAUTH);
    vb_frame_reader_init(&peer.sim, VB_FRAME_MAX_POSTAUTH);
    pthread_t th;
    FZ_CHECK(pthread_create(&th, NULL, sc_peer_main, &peer) == 0);

    vb_remote_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.creds.fn = fz_cred_fn;
    opts.creds.opaque = &answer;
    opts.creds.types = fz_cred_types;
    opts.creds.ntypes = FZ_NCRED_TYPES;
    opts.timeout_ms = 30000; /* never reached: the peer answers or hangs up */
    vb_remote *r = NULL;
    sc_result res;
    memset(&res, 0, sizeof res);
    res.rc = vb_remote_connect_fd(sv[0], &uri, &opts, &r, &res.err);
    FZ_CHECK((res.rc == 0) == (r != NULL));
    if (r) {
        snprintf(res.type, sizeof res.type, "%s", vb_remote_auth_type(r));
        const char *mech = vb_remote_sasl_mech(r);
        res.have_mech = mech != NULL;
        snprintf(res.mech, sizeof res.mech, "%s", mech ? mech : "");
        res.ssf = vb_remote_ssf(r);
    }
    vb_remote_free(r); /* the peer sees EOF and ends */
    FZ_CHECK(pthread_join(th, NULL) == 0);
    sc_judge(&peer, &answer, auth, tcp, &res);

    close(peer.fd);
    if (peer.have_call)
        vb_msg_clear(&peer.call);
    vb_sasl_free(peer.srv);
    vb_frame_reader_clear(&peer.crd);
    vb_frame_reader_clear(&peer.sim);
    free(peer.inbuf);
    sc_queue_free();
    vb_uri_clear(&uri);
    return 0;
}
