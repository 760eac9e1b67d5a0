/* Client side of vbhostd: blocking transport, auth negotiation, calls. */
#include "vb_remote.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_bodies.h"
#include "vb_calls.h"
#include "vb_credwire.h"
#include "vb_log.h"
#include "vb_msgin.h"
#include "vb_login_gate.h"
#include "vb_net.h"
#include "vb_sasl.h"
#include "vb_ssh.h"
#include "vb_tls.h"
#include "vb_tls_cbind.h"
#include "vb_tls_resume.h"
#include "vb_token.h"

#define READ_CHUNK 16384

/* The unix server's owner (SO_PEERCRED) against the expected one: the uid
 * the URI's server_uid= names (a number or a user name), else root or the
 * client's own uid. */
enum {
    VB_REMOTE_OWNER_NOT_UNIX,     /* tcp or ssh: not checked this way */
    VB_REMOTE_OWNER_VERIFIED,     /* the expected owner listens */
    VB_REMOTE_OWNER_UNEXPECTED,   /* someone else: no token, no PLAIN/LOGIN */
};

struct vb_remote {
    int fd;
    uint32_t conn_id;               /* header conn_id of the next calls (sharing) */
    uint32_t host_version;
    int timeout_ms;                 /* the next read's wait (the reader's, see read_one) */
    int reply_timeout_ms;           /* a call's wait for its reply or a message about it */
    vb_msgin in;                    /* plaintext in, messages out (proto/vb_msgin.h) */
    vb_sasl *sasl;
    int layer;                      /* the SASL security layer is active */
    char auth_type[32];
    char server_id[72];
    int have_server_id;
    char *service;                  /* "vbhostd on HOST" for prompts */
    vb_cred_source relay;           /* answers the nested CRED_FILLs of vb_remote_call's calls */
    int have_relay;
    vb_cred_target target;          /* this login: vbhostd at host:port as user (SASL prompts) */
    char *host;                     /* SASL server FQDN */
    vb_ssh *ssh;                    /* the SSH tunnel behind fd (ssh transport only) */
    vb_tls *tls;                    /* the TLS session over fd (tls transport only) */
    int multiplexes;                /* the server named the "conn_id" feature */
    int concurrent;                 /* ... and "concurrent_calls": driver calls overlap */
    int token_bind;                 /* the server named "token_bind": bound proofs */
    int tls_cbind;                  /* ... and "tls_cbind": on TLS, bound to the connection */
    char endpoint[VB_REMOTE_ENDPOINT_MAX + 1];     /* as dialled (canonical, see .h) */
    char bound_endpoint[VB_TOKEN_ENDPOINT_MAX + 1]; /* what the token proof covers */
    int owner;                      /* VB_REMOTE_OWNER_*: the unix server's uid check */
    uid_t server_uid;               /* SO_PEERCRED of a unix server */
    unsigned pings_unanswered;      /* keepalive PINGs sent since the server last said anything */
    int vouched;                    /* authenticated (sasl, token, peer): questions may relay */
    vb_calls calls;                 /* calls in flight, and whether the transport died */
    pthread_mutex_t send_lock;      /* one frame at a time onto the transport; and the
                                     * security layer's codec, one thread at a time */
    pthread_mutex_t driver_lock;    /* driver calls, to a server without "concurrent_calls" */
};

/* ---- transport ----------------------------------------------------------- */

static int send_frame(vb_remote *r, uint8_t *frame, size_t len, vb_error *err)
{
    uint8_t *wire = frame;
    size_t wire_len = len;
    if (r->layer && vb_sasl_encode(r->sasl, frame, len, &wire, &wire_len, err) < 0) {
        vb_frame_free(frame, len);
        return -1;
    }
    int rc = r->tls ? vb_tls_write_all(r->tls, wire, wire_len, r->timeout_ms, err)
                    : vb_net_write_all(r->fd, wire, wire_len, err);
    if (wire != frame)
        vb_frame_free(wire, wire_len);
    vb_frame_free(frame, len);
    return rc;
}

/* Up to cap bytes from the transport, waiting at most timeout_ms: through
 * the TLS session when there is one (which may hold bytes poll cannot see). */
static int transport_read(vb_remote *r, uint8_t *buf, size_t cap, size_t *got, vb_error *err)
{
    if (r->tls)
        return vb_tls_read(r->tls, buf, cap, r->timeout_ms, got, err);
    struct pollfd p = { .fd = r->fd, .events = POLLIN };
    int rc;
    do {
        rc = poll(&p, 1, r->timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_RPC,
                            "no answer from the server within %d ms", r->timeout_ms);
    ssize_t n = recv(r->fd, buf, cap, 0);
    if (n <= 0)
        return vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_RPC,
                            "the server closed the connection%s%s", n < 0 ? ": " : "",
                            n < 0 ? strerror(errno) : "");
    *got = (size_t)n;
    return 0;
}

/* The engine's fill: read what the transport has and pass it through the
 * security layer into the input stage. */
static int fill_plain(void *ctx, vb_msgin *in, vb_error *err)
{
    vb_remote *r = ctx;
    uint8_t buf[READ_CHUNK];
    size_t n;
    if (transport_read(r, buf, sizeof buf, &n, err) < 0)
        return -1;
    uint8_t *plain = buf;
    size_t plain_len = n;
    if (r->layer && vb_sasl_decode(r->sasl, buf, n, &plain, &plain_len, err) < 0)
        return -1;
    int rc = vb_msgin_push(in, plain, plain_len, err);
    if (plain != buf)
        vb_frame_free(plain, plain_len);
    explicit_bzero(buf, n);
    return rc;
}

static int read_msg(vb_remote *r, vb_msg *msg, vb_error *err)
{
    if (vb_msgin_read(&r->in, fill_plain, r, msg, err) < 0)
        return -1;
    r->pings_unanswered = 0; /* the server is alive */
    return 0;
}

/* ---- calls: several in flight, each matched to its reply ------------------
 *
 * The matching is proto/vb_calls.h's (leader/follower, no thread of its
 * own); this layer reads and writes, and applies the relay rule to what the
 * server asks. Sends are whole frames under send_lock, so frames of several
 * callers never interleave. */

/* What one call carries besides its header: who answers the server's
 * questions about it, and the last answer it gave (for the verdict that
 * follows during the same call). */
typedef struct call_side {
    const vb_cred_source *relay;    /* NULL: nobody (questions fail with CRED_REQUIRED) */
    vb_cred_request last_fill;
    uint64_t last_fill_id;          /* the server's id of that question */
    int have_last_fill_id;          /* it sent one (a server from before ids did not) */
} call_side;

static int send_locked(vb_remote *r, uint8_t *frame, size_t len, vb_error *err)
{
    pthread_mutex_lock(&r->send_lock);
    int rc = send_frame(r, frame, len, err);
    pthread_mutex_unlock(&r->send_lock);
    return rc;
}

/* This hop as the process holding r verified it: the endpoint it dialled
 * (r->service), the server id the server gave and how it authenticated. */
static void verified_hop(const vb_remote *r, char *buf, size_t len)
{
    snprintf(buf, len, "%s (server %.16s, %s)", r->service,
             r->have_server_id ? r->server_id : "without id", r->auth_type);
}

/* The CRED_FILL body carries the question id (5th field) from a server
 * that has them. */
static int msg_has_question_id(const vb_msg *msg)
{
    return msg->body && msg->body->type == MSGPACK_OBJECT_ARRAY && msg->body->via.array.size >= 5;
}

/* The server relays a nested login's question (its driver needs a XenAPI
 * password, say): qualify it with this hop and ask the source of the call
 * it belongs to. */
static int relay_fill(vb_remote *r, call_side *side, const vb_msg *msg, vb_cred_request *req,
                      vb_error *err)
{
    if (vb_credwire_decode_request(msg->body, req, err) < 0)
        return -1;
    if (!side->relay || !side->relay->fn)
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_CLIENT,
                            "credentials required for %s, but nothing can ask for them",
                            req->service ? req->service : "a nested login");
    /* nothing the server says about the question is verified here; this
     * hop is: the endpoint we dialled, the server id and how it authenticated */
    char hop[1400];
    verified_hop(r, hop, sizeof hop);
    req->nverified = 0;
    if (vb_cred_request_qualify(req, hop) < 0)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    req->nverified = 1;
    uint64_t wire_id = req->id;
    int have_id = msg_has_question_id(msg);
    vb_error_clear(err);
    if (side->relay->fn(req, side->relay->opaque, err) < 0) {
        if (err && err->code == VB_ERR_OK)
            vb_error_set(err, VB_ERR_AUTH_CANCELLED, VB_DOM_CLIENT, "cancelled");
        return -1;
    }
    vb_cred_request_clear(&side->last_fill);
    vb_cred_request_copy(&side->last_fill, req);
    side->last_fill_id = wire_id;
    side->have_last_fill_id = have_id;
    return 0;
}

static void answer_fill(vb_remote *r, call_side *side, const vb_msg *msg)
{
    vb_cred_request req;
    vb_error err;
    uint8_t *frame = NULL;
    size_t len = 0;
    memset(&req, 0, sizeof req);
    if (relay_fill(r, side, msg, &req, &err) == 0) {
        vb_msg_header hdr = msg->hdr;
        hdr.type = VB_MSG_CALLBACK_REPLY;
        vb_enc enc;
        vb_enc_begin(&enc, &hdr);
        vb_credwire_encode_answer(&enc, &req);
        vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, NULL);
    } else {
        vb_enc_error_reply(&msg->hdr, VB_MSG_CALLBACK_REPLY, &err, &frame, &len, NULL);
    }
    vb_cred_request_clear(&req);
    if (frame)
        send_locked(r, frame, len, NULL);
}

/* CRED_APPROVE / CRED_REJECT [service, id]: about the answer this call gave
 * last, matched by the question's id (a server from before ids sends only
 * the service: then by that). */
static void relay_verdict(vb_remote *r, call_side *side, const vb_msg *msg)
{
    vb_rd rd;
    char *service = NULL;
    uint64_t id = 0;
    if (vb_rd_init(&rd, msg->body, NULL) < 0 || vb_rd_strdup(&rd, 4096, &service, NULL) < 0 ||
        (vb_rd_has_more(&rd) && vb_rd_u64(&rd, &id, NULL) < 0) || !side->relay ||
        !side->last_fill.service) {
        free(service);
        return;
    }
    int match;
    if (side->have_last_fill_id) {
        match = id == side->last_fill_id;
    } else {
        char hop[1400];
        vb_cred_request probe = { 0 };
        probe.service = service;
        service = NULL;
        verified_hop(r, hop, sizeof hop);
        match = vb_cred_request_qualify(&probe, hop) == 0 &&
                strcmp(probe.service, side->last_fill.service) == 0;
        vb_cred_request_clear(&probe);
    }
    free(service);
    if (!match)
        return;
    int approve = msg->hdr.procedure == VB_HOST_PROC_CRED_APPROVE;
    void (*verdict)(void *, const vb_cred_request *) =
        approve ? side->relay->approve : side->relay->reject;
    if (verdict)
        verdict(side->relay->opaque, &side->last_fill);
    if (!approve)
        vb_cred_request_clear(&side->last_fill);
}

static void refuse_callback(vb_remote *r, const vb_msg *msg, const char *why)
{
    vb_error e;
    uint8_t *frame = NULL;
    size_t len = 0;
    vb_error_set(&e, VB_ERR_NO_SUPPORT, VB_DOM_CLIENT, "%s (callback %u)", why, msg->hdr.procedure);
    if (vb_enc_error_reply(&msg->hdr, VB_MSG_CALLBACK_REPLY, &e, &frame, &len, NULL) == 0)
        send_locked(r, frame, len, NULL);
}

static void send_pong(vb_remote *r, const vb_msg *ping)
{
    vb_msg_header hdr = ping->hdr;
    uint8_t *frame = NULL;
    size_t len = 0;
    hdr.procedure = VB_KEEPALIVE_PROC_PONG;
    hdr.type = VB_MSG_EVENT;
    vb_enc enc;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 0);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, NULL) == 0)
        send_locked(r, frame, len, NULL);
}

/* The rule for a server's credential question (docs/protocol.md 9.12,
 * docs/security.md 7): it is answered only while a driver call that may
 * log in runs (OPEN, and the calls whose driver may have to log in again),
 * for that call's conn_id, on a transport that authenticated. call is the
 * call running for the question's conn_id (NULL: none). 0 when the
 * question may be asked; else -1 with why not in `why`, for the log. */
static int fill_refused(const vb_remote *r, const vb_msg_header *call, const vb_msg_header *fill,
                        char *why, size_t len)
{
    const vb_proc_info *info = call ? vb_proto_proc_lookup(call->program, call->procedure) : NULL;
    if (!call)
        snprintf(why, len, "between calls of connection id %u", fill->conn_id);
    else if (call->program != VB_PROG_HOST || !vb_proto_host_proc_may_log_in(call->procedure))
        snprintf(why, len, "during %s", info ? info->name : "a call that does not log in");
    else if (!r->vouched)
        snprintf(why, len, "on a transport that did not authenticate (auth %s)", r->auth_type);
    else if (fill->conn_id != call->conn_id)
        snprintf(why, len, "for connection id %u during a call for connection id %u",
                 fill->conn_id, call->conn_id);
    else
        return 0;
    return -1;
}

/* The server broke the protocol: say so in the log, and drop the transport
 * (a server that breaks the rule is not talked to any more): every call on
 * it fails with e. */
static int drop_transport(vb_remote *r, const vb_error *e, vb_error *err)
{
    vb_log(VB_LOG_WARN, "%s", e->message);
    shutdown(r->fd, SHUT_RDWR);
    vb_calls_fail_all(&r->calls, e);
    vb_error_copy(err, e);
    return -1;
}

static int fill_violation(vb_remote *r, const char *why, vb_error *err)
{
    vb_error e;
    vb_error_set(&e, VB_ERR_PROTOCOL, VB_DOM_RPC,
                 "protocol violation: %s asked for credentials %s; refused, connection dropped",
                 r->service, why);
    return drop_transport(r, &e, err);
}

/* A question (CRED_FILL) or a verdict (CRED_APPROVE/REJECT) goes to the
 * call running for its conn_id, whose own thread answers it; one outside
 * the rule ends the transport (a verdict outside it is ignored). */
static int route_question(vb_remote *r, vb_msg *msg, vb_error *err)
{
    int fill = msg->hdr.type == VB_MSG_CALLBACK;
    uint32_t conn_id = msg->hdr.conn_id;
    vb_msg_header call;
    /* none for its conn_id: judged against another call in flight, if any
     * ("for connection id N during a call for connection id M") */
    int running = vb_calls_for_conn(&r->calls, conn_id, &call) || vb_calls_first(&r->calls, &call);
    char why[200] = "";
    int rc = 0;
    if (fill_refused(r, running ? &call : NULL, &msg->hdr, why, sizeof why) == 0)
        rc = vb_calls_post_to_call(&r->calls, call.serial, msg, err);
    if (rc == 1)
        return 0;
    vb_msg_clear(msg);
    if (rc < 0) {
        vb_error e;
        vb_error_copy(&e, err);
        return drop_transport(r, &e, err);
    }
    if (!fill)
        return 0;
    if (!why[0]) /* its call gave up meanwhile */
        snprintf(why, sizeof why, "between calls of connection id %u", conn_id);
    return fill_violation(r, why, err);
}

/* What the reader does with one message it read: a REPLY goes to its call,
 * a question to the call it belongs to; the transport's own business
 * (PING, a callback this client does not know) is answered here. -1 when
 * the transport was dropped. Takes msg. */
static int handle_incoming(vb_remote *r, vb_msg *msg, vb_error *err)
{
    const vb_msg_header *h = &msg->hdr;
    if (h->type == VB_MSG_REPLY) {
        vb_calls_post_reply(&r->calls, msg);
        return 0;
    }
    if (h->program == VB_PROG_HOST &&
        ((h->type == VB_MSG_CALLBACK && h->procedure == VB_HOST_PROC_CRED_FILL) ||
         (h->type == VB_MSG_EVENT && (h->procedure == VB_HOST_PROC_CRED_APPROVE ||
                                      h->procedure == VB_HOST_PROC_CRED_REJECT))))
        return route_question(r, msg, err);
    if (h->program == VB_PROG_KEEPALIVE && h->procedure == VB_KEEPALIVE_PROC_PING)
        send_pong(r, msg);
    else if (h->type == VB_MSG_CALLBACK)
        refuse_callback(r, msg, "this client does not answer this callback");
    vb_msg_clear(msg);
    return 0;
}

/* A security layer's codec (a Cyrus SASL connection, or an OpenSSL session:
 * neither is for two threads at once) is used under send_lock: on a layered
 * or TLS transport the reader reads and decodes under it, and waits in
 * slices of this long so that a sender waits no longer for it. */
#define LAYER_READ_SLICE_MS 20

/* As the reader: read one message (waiting until deadline_ms) and hand it
 * on. 0 (also: nothing yet, on a layered transport, before the deadline);
 * 1 when the deadline passed first; -1 when the transport failed (every
 * call on it has failed with the reason). */
static int read_one(vb_remote *r, uint64_t deadline_ms, vb_error *err)
{
    uint64_t now = vb_calls_now_ms();
    int wait = deadline_ms > now ? (int)(deadline_ms - now) : 0;
    int layered = r->layer || r->tls;
    if (layered) {
        wait = wait < LAYER_READ_SLICE_MS ? wait : LAYER_READ_SLICE_MS;
        pthread_mutex_lock(&r->send_lock);
    }
    r->timeout_ms = wait;
    vb_msg msg;
    int rc = read_msg(r, &msg, err);
    if (layered)
        pthread_mutex_unlock(&r->send_lock);
    if (rc < 0) {
        if (err->code == VB_ERR_TIMEOUT)
            return vb_calls_now_ms() >= deadline_ms ? 1 : 0;
        vb_calls_fail_all(&r->calls, err);
        return -1;
    }
    return handle_incoming(r, &msg, err);
}

/* As the reader, without waiting: take in everything the server sent that
 * nobody has read yet. 0, or -1 when the transport failed. */
static int drain_as_reader(vb_remote *r, vb_error *err)
{
    for (;;) {
        int rc = read_one(r, 0, err);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
    }
}

/* What the server sent since this connection's last call was sent between
 * its calls: a question among it must not pass for one asked during the
 * next call, so it is read first. When another call is being read for,
 * its reader takes everything in as it arrives (docs/security.md 7 says
 * how far that goes). */
static int drain_pending(vb_remote *r, vb_error *err)
{
    if (!vb_calls_try_lead(&r->calls))
        return 0;
    vb_error e;
    drain_as_reader(r, &e);
    vb_calls_unlead(&r->calls);
    return vb_calls_dead(&r->calls, err) ? -1 : 0;
}

/* The engine's hooks (proto/vb_calls.h vb_calls_await): this transport's
 * reader, and the answer to a question about one call, in that call's thread. */
static int io_read_one(void *ctx, uint64_t deadline_ms, vb_error *err)
{
    return read_one(ctx, deadline_ms, err);
}

static void io_message(void *ctx, vb_call *c, const vb_msg *msg)
{
    call_side *side = c->owner;
    if (msg->hdr.type == VB_MSG_CALLBACK)
        answer_fill(ctx, side, msg);
    else
        relay_verdict(ctx, side, msg);
}

static const vb_calls_io remote_io = { io_read_one, io_message, "the server", VB_DOM_RPC };

/* A server from before "concurrent_calls" refuses a second driver call on a
 * transport while one runs (OPERATION_INVALID): to it, they go one at a time. */
static int serialised(const vb_remote *r, uint32_t program, uint32_t procedure)
{
    return !r->concurrent && program == VB_PROG_HOST && procedure >= VB_HOST_PROC_OPEN &&
           procedure <= VB_HOST_PROC_DOMAIN_SHUTDOWN;
}

static int send_call(vb_remote *r, const vb_msg_header *hdr, vb_remote_args_fn args_fn,
                     const void *arg, vb_error *err)
{
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    if (!args_fn) { /* the procedure's body column says how its call is packed */
        const vb_proc_info *info = vb_proto_proc_lookup(hdr->program, hdr->procedure);
        args_fn = info ? vb_body_call_packer(info->body) : NULL;
    }
    vb_enc_begin(&enc, hdr);
    if (args_fn)
        args_fn(&enc, arg);
    else
        vb_enc_array(&enc, 0);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH * 4, &frame, &len, err) < 0)
        return -1;
    return send_locked(r, frame, len, err);
}

static int call_on(vb_remote *r, uint32_t conn_id, const vb_cred_source *relay, uint32_t program,
                   uint32_t procedure, vb_remote_args_fn args_fn, const void *arg, vb_msg *reply,
                   vb_error *err)
{
    int one_at_a_time = serialised(r, program, procedure);
    if (one_at_a_time)
        pthread_mutex_lock(&r->driver_lock);
    call_side side = { relay, { 0 }, 0, 0 };
    uint32_t version = program == VB_PROG_HOST ? r->host_version : vb_proto_program_version(program);
    vb_msg_header hdr = { program, version, VB_MSG_CALL, 0, procedure, VB_STATUS_OK, conn_id };
    vb_call c;
    int rc = drain_pending(r, err);
    if (rc == 0)
        rc = vb_calls_start(&r->calls, &c, &hdr, &side, err);
    if (rc == 0) {
        if (send_call(r, &c.hdr, args_fn, arg, err) < 0)
            rc = -1;
        else
            rc = vb_calls_await(&r->calls, &c, r->reply_timeout_ms, &remote_io, r, reply, err);
        vb_calls_end(&r->calls, &c);
    }
    vb_cred_request_clear(&side.last_fill);
    if (one_at_a_time)
        pthread_mutex_unlock(&r->driver_lock);
    return rc;
}

int vb_remote_call(vb_remote *r, uint32_t program, uint32_t procedure, vb_remote_args_fn args_fn,
                   const void *arg, vb_msg *reply, vb_error *err)
{
    return call_on(r, r->conn_id, r->have_relay ? &r->relay : NULL, program, procedure, args_fn,
                   arg, reply, err);
}

int vb_remote_chan_call(const vb_remote_chan *ch, uint32_t program, uint32_t procedure,
                        vb_remote_args_fn args_fn, const void *arg, vb_msg *reply, vb_error *err)
{
    return call_on(ch->remote, ch->conn_id, ch->relay, program, procedure, args_fn, arg, reply,
                   err);
}

/* ---- keepalive ----------------------------------------------------------- */

static int send_ping(vb_remote *r, vb_error *err)
{
    vb_msg_header hdr = { VB_PROG_KEEPALIVE, VB_PROG_KEEPALIVE_VERSION, VB_MSG_EVENT, 0,
                          VB_KEEPALIVE_PROC_PING, VB_STATUS_OK, 0 };
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 0);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, err) < 0)
        return -1;
    return send_locked(r, frame, len, err);
}

int vb_remote_keepalive(vb_remote *r, unsigned max_unanswered, vb_error *err)
{
    if (vb_calls_dead(&r->calls, err))
        return -1;
    /* calls in flight: someone reads for them, and their own timeouts say
     * whether the server still answers */
    if (!vb_calls_idle(&r->calls) || !vb_calls_try_lead(&r->calls))
        return 0;
    int rc = drain_as_reader(r, err);
    if (rc == 0 && r->pings_unanswered >= max_unanswered)
        rc = vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_RPC,
                          "the server stopped answering: nothing heard after %u keepalive pings",
                          r->pings_unanswered);
    if (rc == 0)
        rc = send_ping(r, err);
    if (rc == 0)
        r->pings_unanswered++;
    vb_calls_unlead(&r->calls);
    if (rc < 0) {
        vb_error dead;
        vb_error_copy(&dead, err);
        dead.code = VB_ERR_PEER_CLOSED; /* whatever failed, the transport is over */
        vb_calls_fail_all(&r->calls, &dead);
        vb_calls_dead(&r->calls, err);
        return -1;
    }
    return 0;
}

/* ---- auth negotiation ---------------------------------------------------- */

static const char *const default_priority[] = { "token", "sasl", "polkit", "peer", "none" };
#define DEFAULT_PRIORITY_N (sizeof default_priority / sizeof default_priority[0])

typedef struct offer {
    char types[VB_REMOTE_MAX_PRIORITY][16];
    size_t n;
} offer;

static int offered(const offer *o, const char *type)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->types[i], type) == 0)
            return 1;
    return 0;
}

/* AUTH_LIST's optional 3rd field, the server's features; a server from
 * before it sends none, and unknown names are for later clients. */
static void read_features(vb_remote *r, vb_rd *rd)
{
    vb_rd list;
    vb_error ignored;
    if (vb_rd_array(rd, &list, &ignored) < 0)
        return;
    while (vb_rd_has_more(&list)) {
        const char *f;
        size_t flen;
        if (vb_rd_str(&list, &f, &flen, &ignored) < 0 || !f)
            return;
        if (flen == strlen(VB_FEATURE_CONN_ID) && memcmp(f, VB_FEATURE_CONN_ID, flen) == 0)
            r->multiplexes = 1;
        if (flen == strlen(VB_FEATURE_TOKEN_BIND) && memcmp(f, VB_FEATURE_TOKEN_BIND, flen) == 0)
            r->token_bind = 1;
        if (flen == strlen(VB_FEATURE_CONCURRENT) && memcmp(f, VB_FEATURE_CONCURRENT, flen) == 0)
            r->concurrent = 1;
        if (flen == strlen(VB_FEATURE_TLS_CBIND) && memcmp(f, VB_FEATURE_TLS_CBIND, flen) == 0)
            r->tls_cbind = 1;
    }
}

static int read_auth_list(vb_remote *r, offer *o, vb_error *err)
{
    vb_msg reply;
    if (vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_AUTH_LIST, NULL, NULL, &reply, err) < 0)
        return -1;
    vb_rd rd, list;
    const char *id;
    size_t idlen;
    int rc = vb_rd_init(&rd, reply.body, err) < 0 || vb_rd_array(&rd, &list, err) < 0 ? -1 : 0;
    o->n = 0;
    while (rc == 0 && vb_rd_has_more(&list) && o->n < VB_REMOTE_MAX_PRIORITY) {
        const char *t;
        size_t tlen;
        if (vb_rd_str(&list, &t, &tlen, err) < 0 || !t || tlen >= sizeof o->types[0]) {
            rc = -1;
            break;
        }
        memcpy(o->types[o->n], t, tlen);
        o->types[o->n++][tlen] = '\0';
    }
    if (rc == 0 && vb_rd_str(&rd, &id, &idlen, err) == 0 && id && idlen < sizeof r->server_id) {
        memcpy(r->server_id, id, idlen);
        r->server_id[idlen] = '\0';
        r->have_server_id = 1;
    }
    if (rc == 0 && vb_rd_has_more(&rd))
        read_features(r, &rd);
    vb_msg_clear(&reply);
    return rc;
}

typedef struct sasl_args {
    const char *mech;
    const uint8_t *data;
    size_t len;
} sasl_args;

static void pack_sasl_start(vb_enc *enc, const void *arg)
{
    const sasl_args *a = arg;
    vb_enc_array(enc, 2);
    vb_enc_str(enc, a->mech);
    vb_enc_bin(enc, a->data ? a->data : (const uint8_t *)"", a->len);
}

static void pack_sasl_step(vb_enc *enc, const void *arg)
{
    const sasl_args *a = arg;
    vb_enc_array(enc, 1);
    vb_enc_bin(enc, a->data ? a->data : (const uint8_t *)"", a->len);
}

/* Send one START/STEP and read [complete, data]. */
static int sasl_exchange(vb_remote *r, uint32_t proc, const sasl_args *a, int *server_done,
                         vb_msg *reply, const uint8_t **data, size_t *len, vb_error *err)
{
    vb_remote_args_fn fn = proc == VB_HOST_PROC_AUTH_SASL_START ? pack_sasl_start : pack_sasl_step;
    if (vb_remote_call(r, VB_PROG_HOST, proc, fn, a, reply, err) < 0)
        return -1;
    vb_rd rd;
    if (vb_rd_init(&rd, reply->body, err) < 0 || vb_rd_bool(&rd, server_done, err) < 0 ||
        vb_rd_bin(&rd, data, len, err) < 0) {
        vb_msg_clear(reply);
        return -1;
    }
    return 0;
}

/* Mechanisms that hand the password itself to the server. */
static int sends_cleartext(const char *mech)
{
    return strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0;
}

/* Mechanisms in which the server proves it knows the secret too. */
static int proves_server(const char *mech)
{
    return mech && (strncasecmp(mech, "SCRAM-", 6) == 0 || strcasecmp(mech, "DIGEST-MD5") == 0 ||
                    strcasecmp(mech, "GSSAPI") == 0 || strncasecmp(mech, "GS2-", 4) == 0);
}

/* A unix socket of an unexpected owner may be anyone's: whatever else we
 * try there, no mechanism gives it the password in clear (edits mechlist
 * in place). */
static int drop_cleartext_mechs(vb_remote *r, const char *want, char *mechlist, vb_error *err)
{
    if (want && sends_cleartext(want))
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "not sending a password in clear (%s) to %s: the socket belongs to "
                            "uid %u, not to the expected owner (server_uid= in the URI names it)",
                            want, r->endpoint, (unsigned)r->server_uid);
    char *out = mechlist, *save = NULL;
    size_t n = strlen(mechlist);
    char *copy = malloc(n + 1);
    if (!copy)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_AUTH, "out of memory");
    memcpy(copy, mechlist, n + 1);
    *out = '\0';
    for (char *m = strtok_r(copy, ", ", &save); m; m = strtok_r(NULL, ", ", &save))
        if (!sends_cleartext(m))
            out += sprintf(out, "%s%s", out == mechlist ? "" : " ", m); /* never longer */
    free(copy);
    if (!*mechlist)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "%s offers only SASL mechanisms that send the password in clear, and "
                            "its socket belongs to uid %u, not to the expected owner; not logging "
                            "in there (server_uid= in the URI names the owner)",
                            r->endpoint, (unsigned)r->server_uid);
    return 0;
}

static int sasl_mechlist(vb_remote *r, const char *want, char **mechlist, vb_error *err)
{
    vb_msg reply;
    if (vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_AUTH_SASL_INIT, NULL, NULL, &reply, err) < 0)
        return -1;
    vb_rd rd;
    int rc = vb_rd_init(&rd, reply.body, err) < 0 ||
                     vb_rd_strdup(&rd, VB_SASL_MAX_MECHLIST, mechlist, err) < 0
                 ? -1
                 : 0;
    vb_msg_clear(&reply);
    if (rc == 0 && r->owner == VB_REMOTE_OWNER_UNEXPECTED)
        rc = drop_cleartext_mechs(r, want, *mechlist, err);
    if (rc < 0) {
        free(*mechlist);
        *mechlist = NULL;
    }
    if (rc < 0 || !want)
        return rc;
    /* auth=sasl.MECH: only that mechanism, and only if the server offers it */
    char *copy = strdup(*mechlist), *save = NULL;
    int found = 0;
    for (char *m = strtok_r(copy, ", ", &save); m && !found; m = strtok_r(NULL, ", ", &save))
        found = strcasecmp(m, want) == 0;
    rc = found ? 0
               : vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                              "the server does not offer SASL mechanism %s (it offers: %s)", want,
                              *mechlist);
    free(copy);
    free(*mechlist);
    *mechlist = rc == 0 ? strdup(want) : NULL;
    return rc;
}

/* A client's URI must not make this process log in with its own ticket or
 * transport identity: strip those mechanisms from the server's list. */
static void drop_own_identity_mechs(char *mechlist)
{
    char *out = mechlist, *save = NULL;
    char *copy = mechlist ? strdup(mechlist) : NULL;
    if (!copy) {
        if (mechlist)
            mechlist[0] = '\0'; /* out of memory: offer nothing rather than everything */
        return;
    }
    for (char *m = strtok_r(copy, ", ", &save); m; m = strtok_r(NULL, ", ", &save)) {
        if (vb_driver_sasl_mech_is_own_identity(m))
            continue;
        size_t n = strlen(m);
        if (out != mechlist)
            *out++ = ' ';
        memmove(out, m, n);
        out += n;
    }
    *out = '\0';
    free(copy);
}

/* On TLS the SASL session is bound to the connection: only -PLUS mechanisms,
 * which a man in the middle cannot relay (docs/protocol.md 9.7a). */
static int sasl_bind_tls(vb_remote *r, vb_error *err)
{
    uint8_t cb[VB_TLS_CBIND_LEN];
    int rc = vb_tls_channel_binding(r->tls, cb, err) < 0
                 ? -1
                 : vb_sasl_set_channel_binding(r->sasl, VB_TLS_CBIND_TYPE, cb, sizeof cb, err);
    explicit_bzero(cb, sizeof cb);
    return rc;
}

/* One complete SASL login attempt. */
static int sasl_attempt(vb_remote *r, const char *want_mech, const vb_remote_opts *opts, int retry,
                        vb_error *err)
{
    char *mechlist = NULL;
    if (sasl_mechlist(r, want_mech, &mechlist, err) < 0)
        return -1;
    if (opts->flags & VB_OPEN_FROM_WIRE)
        drop_own_identity_mechs(mechlist);
    vb_sasl_free(r->sasl);
    unsigned min_ssf = vb_net_is_unix(r->fd) ? 0 : 56;
    r->sasl = vb_sasl_client_new("vbhostd", r->host, r->fd, min_ssf, opts->creds.types,
                                 opts->creds.ntypes, err);
    if (r->sasl && r->tls) /* TLS is the security layer: SCRAM needs no SASL one on top */
        vb_sasl_set_external_ssf(r->sasl, vb_tls_ssf(r->tls));
    if (r->sasl && r->tls && sasl_bind_tls(r, err) < 0) {
        free(mechlist);
        return -1;
    }
    vb_sasl_prompter prompter = { opts->creds.fn, opts->creds.opaque, r->service, retry,
                                  &r->target };
    sasl_args a = { NULL, NULL, 0 };
    int client = r->sasl ? vb_sasl_client_start(r->sasl, mechlist, &prompter, &a.mech, &a.data,
                                                &a.len, err)
                         : -1;
    free(mechlist);
    if (client < 0)
        return -1;
    uint32_t proc = VB_HOST_PROC_AUTH_SASL_START;
    for (;;) {
        int server_done;
        vb_msg reply;
        const uint8_t *data;
        size_t len;
        if (sasl_exchange(r, proc, &a, &server_done, &reply, &data, &len, err) < 0)
            return -1;
        proc = VB_HOST_PROC_AUTH_SASL_STEP;
        /* cyrus must see the server's final data unless it already finished */
        if (client != VB_SASL_COMPLETE && (len > 0 || !server_done))
            client = vb_sasl_client_step(r->sasl, data, len, &prompter, &a.data, &a.len, err);
        else
            a.data = NULL, a.len = 0;
        vb_msg_clear(&reply);
        if (client < 0)
            return -1;
        if (server_done) {
            if (client != VB_SASL_COMPLETE)
                return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SASL,
                                    "the server finished SASL before this client did");
            break;
        }
    }
    snprintf(r->auth_type, sizeof r->auth_type, "sasl");
    r->layer = vb_sasl_ssf(r->sasl) > 0;
    return 0;
}

/* Tell the credential source whether the answers it gave worked. */
static void report_answers(vb_remote *r, const vb_remote_opts *opts, int worked)
{
    const vb_cred_request *last = r->sasl ? vb_sasl_last_request(r->sasl) : NULL;
    if (!last)
        return;
    if (worked && opts->creds.approve)
        opts->creds.approve(opts->creds.opaque, last);
    else if (!worked && opts->creds.reject)
        opts->creds.reject(opts->creds.opaque, last);
}

static int auth_sasl(vb_remote *r, const char *mech, const vb_remote_opts *opts, vb_error *err)
{
    for (int attempt = 0; attempt < VB_REMOTE_AUTH_TRIES; attempt++) {
        if (sasl_attempt(r, mech, opts, attempt > 0, err) == 0) {
            report_answers(r, opts, 1);
            return 0;
        }
        if (err && err->code != VB_ERR_AUTH_FAILED)
            return -1;
        report_answers(r, opts, 0);
    }
    return -1;
}

typedef struct token_challenge {
    const char *id;
    const uint8_t *cnonce;
    const vb_token_binding *bind;   /* NULL: an old server, the unbound v1 proof */
} token_challenge;

static void pack_token_challenge(vb_enc *enc, const void *arg)
{
    const token_challenge *t = arg;
    vb_enc_array(enc, t->bind ? 3 : 2);
    vb_enc_str(enc, t->id);
    vb_enc_bin(enc, t->cnonce, VB_TOKEN_NONCE_LEN);
    if (t->bind)
        vb_enc_str(enc, t->bind->endpoint);
}

static int make_proof(enum vb_token_role role, const uint8_t *secret, const char *id,
                      const vb_token_binding *bind, const uint8_t *cnonce, const uint8_t *snonce,
                      uint8_t *proof, vb_error *err)
{
    return bind ? vb_token_proof_bound(role, secret, VB_TOKEN_SECRET_LEN, id, bind, cnonce, snonce,
                                       proof, err)
                : vb_token_proof(role, secret, VB_TOKEN_SECRET_LEN, id, cnonce, snonce, proof, err);
}

static void pack_proof(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 1);
    vb_enc_bin(enc, arg, VB_TOKEN_PROOF_LEN);
}

/* CHALLENGE: send our nonce, check the server's proof before proving ours. */
static int token_challenge_round(vb_remote *r, const char *id, const uint8_t *secret,
                                 const vb_token_binding *bind, const uint8_t *cnonce,
                                 uint8_t *snonce, vb_error *err)
{
    token_challenge tc = { id, cnonce, bind };
    vb_msg reply;
    vb_rd rd;
    const uint8_t *sn, *sproof;
    size_t snlen, splen;
    uint8_t want[VB_TOKEN_PROOF_LEN];
    if (vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, pack_token_challenge, &tc,
                       &reply, err) < 0)
        return -1;
    int rc = vb_rd_init(&rd, reply.body, err) < 0 || vb_rd_bin(&rd, &sn, &snlen, err) < 0 ||
                     vb_rd_bin(&rd, &sproof, &splen, err) < 0
                 ? -1
                 : 0;
    if (rc == 0 && (snlen != VB_TOKEN_NONCE_LEN || splen != VB_TOKEN_PROOF_LEN))
        rc = vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_AUTH, "malformed token challenge reply");
    if (rc == 0) {
        memcpy(snonce, sn, VB_TOKEN_NONCE_LEN);
        rc = make_proof(VB_TOKEN_SERVER, secret, id, bind, cnonce, snonce, want, err);
    }
    if (rc == 0 && !vb_token_proof_equal(want, sproof))
        rc = vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH,
                          "the server could not prove it knows this login's token; refusing to "
                          "continue (is it the server you logged in to?%s)",
                          r->tls ? " Over TLS this also means something in between terminated the "
                                   "TLS connection: a man in the middle with a certificate your CA "
                                   "trusts"
                                 : "");
    vb_msg_clear(&reply);
    return rc;
}

/* 1: logged in with the token; 0: no usable token here (fall through to
 * the next type); -1: hard error. A token is shown only to a server at the
 * endpoint it was obtained at, never to a unix socket of an unexpected
 * owner; the proof is bound to the server id and endpoint when the server
 * can check them. A refusal puts the token's id in refused (see negotiate:
 * it is reported only once the server proved who it is). */
static int auth_token(vb_remote *r, const vb_uri *uri, const vb_remote_opts *opts,
                      char refused[VB_TOKEN_ID_LEN + 1], vb_error *err)
{
    char id[VB_TOKEN_ID_LEN + 1];
    uint8_t secret[VB_TOKEN_SECRET_LEN], cnonce[VB_TOKEN_NONCE_LEN], snonce[VB_TOKEN_NONCE_LEN];
    uint8_t proof[VB_TOKEN_PROOF_LEN];
    const vb_cred_source *src = &opts->creds;
    uint8_t cb[VB_TLS_CBIND_LEN];
    vb_error no_cb;
    /* on TLS only a proof bound to this connection: one a server without
     * "tls_cbind" would check (or one without a channel binding) could be
     * relayed by a man in the middle */
    int tls_ok = !r->tls || (r->token_bind && r->tls_cbind &&
                             vb_tls_channel_binding(r->tls, cb, &no_cb) == 0);
    vb_token_binding bind = { r->server_id, r->bound_endpoint, r->tls ? cb : NULL,
                              r->tls ? sizeof cb : 0 };
    const vb_token_binding *b = r->token_bind ? &bind : NULL;
    if (!src->token_lookup || !r->have_server_id || r->owner == VB_REMOTE_OWNER_UNEXPECTED ||
        !tls_ok || !r->endpoint[0] || (b && !r->bound_endpoint[0]) ||
        src->token_lookup(src->opaque, r->server_id, r->endpoint, uri->user, id, sizeof id, secret,
                          sizeof secret) != 1) {
        explicit_bzero(secret, sizeof secret);
        explicit_bzero(cb, sizeof cb);
        return 0;
    }
    int rc = vb_token_nonce(cnonce, err) < 0 ||
                     token_challenge_round(r, id, secret, b, cnonce, snonce, err) < 0 ||
                     make_proof(VB_TOKEN_CLIENT, secret, id, b, cnonce, snonce, proof, err) < 0
                 ? -1
                 : 0;
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(cb, sizeof cb);
    vb_msg reply;
    if (rc == 0)
        rc = vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_AUTH_TOKEN_PROVE, pack_proof, proof,
                            &reply, err);
    if (rc == 0) {
        vb_msg_clear(&reply);
        snprintf(r->auth_type, sizeof r->auth_type, "token");
        return 1;
    }
    if (err && err->code == VB_ERR_TOKEN_REFUSED) {
        memcpy(refused, id, sizeof id);
        return 0;
    }
    if (err && err->code == VB_ERR_AUTH_UNAVAILABLE)
        return 0; /* not on this transport: merely unavailable */
    return -1;
}

/* Whether the transport itself vouches for the server: a unix socket of the
 * expected owner (the kernel says who listens), or an SSH tunnel whose host
 * key was checked. */
static int transport_proves_server(const vb_remote *r, const vb_uri *uri)
{
    if (r->owner == VB_REMOTE_OWNER_VERIFIED || (r->tls && !vb_tls_unverified(r->tls)))
        return 1;
    const char *verify = vb_uri_param_get(uri, "known_hosts_verify");
    return uri->transport && strcmp(uri->transport, "ssh") == 0 &&
           !(verify && strcmp(verify, "ignore") == 0);
}

/* Erase only on proof: the token refused is forgotten only when the server
 * that refused it has proven who it is (by its transport, or by the login
 * that followed on this connection with a mechanism that authenticates the
 * server). Until then it is merely suspect: not offered again on this
 * connection, kept for the next one. */
static void settle_refusal(vb_remote *r, const vb_uri *uri, const vb_remote_opts *opts,
                           char refused[VB_TOKEN_ID_LEN + 1])
{
    if (!refused[0])
        return;
    int proven = transport_proves_server(r, uri) ||
                 (strcmp(r->auth_type, "sasl") == 0 && proves_server(vb_remote_sasl_mech(r)));
    if (proven && opts->creds.token_rejected)
        opts->creds.token_rejected(opts->creds.opaque, r->server_id, r->endpoint, refused);
    refused[0] = '\0';
}

/* peer (AUTH_PEER) and polkit (AUTH_POLKIT): the server judges this
 * process by what the kernel tells it; nothing is sent */
static int auth_local(vb_remote *r, uint32_t procedure, const char *type, vb_error *err)
{
    vb_msg reply;
    if (vb_remote_call(r, VB_PROG_HOST, procedure, NULL, NULL, &reply, err) < 0)
        return -1;
    vb_msg_clear(&reply);
    snprintf(r->auth_type, sizeof r->auth_type, "%s", type);
    return 0;
}

/* auth=sasl.SCRAM-SHA-256 → type "sasl", mech "SCRAM-SHA-256" */
static void split_auth(const char *spec, char *type, size_t tlen, const char **mech)
{
    const char *dot = strchr(spec, '.');
    size_t n = dot ? (size_t)(dot - spec) : strlen(spec);
    if (n >= tlen)
        n = tlen - 1;
    memcpy(type, spec, n);
    type[n] = '\0';
    *mech = dot ? dot + 1 : NULL;
}

static int negotiate(vb_remote *r, const vb_uri *uri, const vb_remote_opts *opts, vb_error *err)
{
    offer o;
    if (r->host_version == VB_PROG_HOST_VERSION_NOAUTH) {
        snprintf(r->auth_type, sizeof r->auth_type, "none (v1 client)");
        return 0;
    }
    const char *uri_auth = vb_uri_param_get(uri, "auth");
    if (read_auth_list(r, &o, err) < 0) {
        if (!err || err->code != VB_ERR_NO_SUPPORT)
            return -1;
        /* a server from before authentication: fine, unless this URI demands
         * an authentication (else anyone in the middle could strip it by
         * answering like an old server) */
        if (uri_auth && strncmp(uri_auth, "none", 4) != 0)
            return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                                "the server does not negotiate authentication (a server from "
                                "before it, or something in between posing as one), but this "
                                "URI requires auth=%s; not connecting without it",
                                uri_auth);
        snprintf(r->auth_type, sizeof r->auth_type, "none (v1 server)");
        return 0;
    }
    const char *const *prio = opts->creds.nauth_priority ? opts->creds.auth_priority
                                                         : default_priority;
    size_t nprio = opts->creds.nauth_priority ? opts->creds.nauth_priority : DEFAULT_PRIORITY_N;
    if (uri_auth) {
        prio = &uri_auth;
        nprio = 1;
    }
    char refused[VB_TOKEN_ID_LEN + 1] = "";
    for (size_t i = 0; i < nprio; i++) {
        char type[16];
        const char *mech;
        int rc = 1;
        split_auth(prio[i], type, sizeof type, &mech);
        if (!offered(&o, type))
            continue;
        if (strcmp(type, "none") == 0) {
            snprintf(r->auth_type, sizeof r->auth_type, "none");
            rc = 0;
        } else if (strcmp(type, "sasl") == 0) {
            rc = auth_sasl(r, mech, opts, err);
        } else if (strcmp(type, "peer") == 0) {
            rc = auth_local(r, VB_HOST_PROC_AUTH_PEER, "peer", err);
        } else if (strcmp(type, "polkit") == 0) {
            rc = auth_local(r, VB_HOST_PROC_AUTH_POLKIT, "polkit", err);
        } else if (strcmp(type, "token") == 0 && !refused[0]) {
            rc = auth_token(r, uri, opts, refused, err);
            rc = rc > 0 ? 0 : rc < 0 ? -1 : 1; /* 1: no usable token, try the next type */
        }
        if (rc <= 0) {
            /* an authenticated transport whose server is who it should be: its
             * questions may be relayed (a unix socket of an unexpected owner
             * proves nothing, whatever login it accepted) */
            r->vouched = rc == 0 && strcmp(type, "none") != 0 &&
                         r->owner != VB_REMOTE_OWNER_UNEXPECTED;
            settle_refusal(r, uri, opts, refused);
            return rc;
        }
    }
    settle_refusal(r, uri, opts, refused);
    char have[128] = "";
    for (size_t i = 0; i < o.n; i++)
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", o.types[i]);
    return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                        "no usable authentication type: the server accepts %s; this client "
                        "tried %s", have, uri_auth ? uri_auth : "its priority list");
}

/* ---- connect ------------------------------------------------------------- */

static int transport_is(const vb_uri *uri, const char *name);

/* The port a tcp, tls or ssh URI dials when it names none. */
static int uri_port(const vb_uri *uri)
{
    if (uri->port)
        return uri->port;
    if (transport_is(uri, "ssh"))
        return VB_SSH_DEFAULT_PORT;
    return transport_is(uri, "tls") ? VB_TLS_DEFAULT_PORT : VB_REMOTE_DEFAULT_PORT;
}

/* TLS over the connected fd: the server's certificate verified against the
 * CA and the host name, unless no_verify=1 (said loudly, every time). */
static int open_tls(const vb_uri *uri, int fd, vb_tls **tls, vb_error *err)
{
    const char *nv = vb_uri_param_get(uri, "no_verify");
    if (nv && strcmp(nv, "0") != 0 && strcmp(nv, "1") != 0) {
        close(fd);
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT,
                            "no_verify=%.16s: use no_verify=1 (or leave it out)", nv);
    }
    int no_verify = nv && strcmp(nv, "1") == 0;
    if (vb_tls_client_connect(fd, uri->host, uri_port(uri), vb_uri_param_get(uri, "pkipath"),
                              no_verify, 10000, tls, err) < 0) {
        close(fd);
        return -1;
    }
    vb_log(VB_LOG_DEBUG, "%s to vbhostd at %s:%d: %s", vb_tls_version(*tls), uri->host,
           uri_port(uri),
           vb_tls_resumed(vb_tls_ssl(*tls)) ? "TLS session resumed" : "full handshake");
    if (no_verify)
        vb_log(VB_LOG_WARN, "TLS to vbhostd at %s:%d: the server's certificate is NOT verified "
                            "(no_verify=1 in the URI): whoever sits in between can read and "
                            "change this connection",
               uri->host, uri_port(uri));
    return fd;
}

static int open_transport(const vb_uri *uri, const vb_remote_opts *opts, vb_ssh **ssh,
                          vb_tls **tls, vb_error *err)
{
    if (uri->transport && strcmp(uri->transport, "ssh") == 0) {
        /* fd is one end of a socketpair; vb_ssh pumps the other through the channel */
        int fd;
        return vb_ssh_connect(uri, &opts->creds, opts->flags, &fd, ssh, err) < 0 ? -1 : fd;
    }
    if (!uri->transport || strcmp(uri->transport, "unix") == 0) {
        const char *path = vb_uri_param_get(uri, "socket");
        return vb_net_connect_unix(path ? path : VB_REMOTE_DEFAULT_SOCKET, err);
    }
    if (strcmp(uri->transport, "tcp") == 0 || strcmp(uri->transport, "tls") == 0) {
        if (!uri->host || !*uri->host)
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT,
                                "a %s URI needs a host: DRIVER+%s://HOST[:PORT]/PATH",
                                uri->transport, uri->transport);
        int fd = vb_net_connect_tcp(uri->host, uri_port(uri), 10000, err);
        if (fd < 0 || strcmp(uri->transport, "tls") != 0)
            return fd;
        return open_tls(uri, fd, tls, err);
    }
    return vb_error_set(err, VB_ERR_NO_SUPPORT, VB_DOM_CLIENT,
                        "transport '%s' is not supported by this client", uri->transport);
}

/* What asks, for a person and as the secret cache's key: one name per
 * endpoint and user ("vbhostd on alice@h:16509", "vbhostd on unix:/run/x"). */
static char *service_name(const vb_uri *uri)
{
    char buf[1200];
    const char *sock = vb_uri_param_get(uri, "socket");
    if (!uri->transport || strcmp(uri->transport, "unix") == 0)
        snprintf(buf, sizeof buf, "vbhostd on unix:%s", sock ? sock : VB_REMOTE_DEFAULT_SOCKET);
    else
        snprintf(buf, sizeof buf, "vbhostd on %s%s%s:%d", uri->user ? uri->user : "",
                 uri->user ? "@" : "", uri->host ? uri->host : "", uri_port(uri));
    return strdup(buf);
}

/* ---- where we are: the endpoint, and who listens there ---------------------- */

static const char *socket_path(const vb_uri *uri)
{
    const char *path = vb_uri_param_get(uri, "socket");
    return path && *path ? path : VB_REMOTE_DEFAULT_SOCKET;
}

static int transport_is(const vb_uri *uri, const char *name)
{
    if (!uri->transport)
        return strcmp(name, "unix") == 0;
    return strcmp(uri->transport, name) == 0;
}

/* Host names compare without case; an IPv6 literal goes in brackets. */
static void canonical_host(char *dst, size_t cap, const char *host)
{
    int v6 = host && strchr(host, ':') && host[0] != '[';
    size_t n = 0;
    if (v6 && n + 1 < cap)
        dst[n++] = '[';
    for (const char *p = host ? host : ""; *p && n + 2 < cap; p++)
        dst[n++] = (char)tolower((unsigned char)*p);
    if (v6 && n + 1 < cap)
        dst[n++] = ']';
    dst[n] = '\0';
}

/* The canonical endpoint (vb_remote.h), and the form a token proof is bound
 * to: the same, except on TCP, where it is the numeric address the
 * connection reached (what the server sees as its own end). */
static void describe_endpoint(vb_remote *r, const vb_uri *uri)
{
    char host[300];
    int n;
    canonical_host(host, sizeof host, uri->host);
    if (transport_is(uri, "ssh"))
        n = snprintf(r->endpoint, sizeof r->endpoint, "ssh:%s:%d%s", host,
                     uri->port ? uri->port : 22, socket_path(uri));
    else if (transport_is(uri, "tcp") || transport_is(uri, "tls"))
        n = snprintf(r->endpoint, sizeof r->endpoint, "%s:%s:%d", uri->transport, host,
                     uri_port(uri));
    else
        n = snprintf(r->endpoint, sizeof r->endpoint, "unix:%s", socket_path(uri));
    if (n < 0 || (size_t)n >= sizeof r->endpoint)
        r->endpoint[0] = '\0'; /* too long to name: no token is used here */
    r->bound_endpoint[0] = '\0';
    if (transport_is(uri, "tcp") || transport_is(uri, "tls")) {
        if (vb_net_tcp_endpoint(r->fd, 1, r->bound_endpoint, sizeof r->bound_endpoint) == 0 &&
            transport_is(uri, "tls"))
            memcpy(r->bound_endpoint, "tls", 3); /* "tcp:ADDR:PORT" → "tls:ADDR:PORT" */
    } else if (strlen(r->endpoint) < sizeof r->bound_endpoint)
        memcpy(r->bound_endpoint, r->endpoint, strlen(r->endpoint) + 1);
}

/* server_uid=: a number or a user name. */
static int parse_uid(const char *text, uid_t *uid)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (*text && !*end && errno == 0 && v < (unsigned long)(uid_t)-1) {
        *uid = (uid_t)v;
        return 0;
    }
    struct passwd pw, *found = NULL;
    char buf[4096];
    if (getpwnam_r(text, &pw, buf, sizeof buf, &found) != 0 || !found)
        return -1;
    *uid = found->pw_uid;
    return 0;
}

/* Who listens on a unix socket (SO_PEERCRED), against who should: the uid
 * server_uid= names, else root or ourselves. An unexpected owner is not
 * refused outright (it may still prove itself with SCRAM, say), but it is
 * shown no token and no cleartext password. */
static int check_owner(vb_remote *r, const vb_uri *uri, vb_error *err)
{
    r->owner = VB_REMOTE_OWNER_NOT_UNIX;
    if (!transport_is(uri, "unix"))
        return 0;
    const char *want = vb_uri_param_get(uri, "server_uid");
    uid_t expected = 0;
    if (want && parse_uid(want, &expected) < 0)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT,
                            "server_uid=%s is neither a uid nor a known user name", want);
    if (vb_net_peercred(r->fd, &r->server_uid, NULL, NULL) < 0) {
        r->owner = VB_REMOTE_OWNER_UNEXPECTED;
        return 0;
    }
    int ok = want ? r->server_uid == expected : r->server_uid == 0 || r->server_uid == geteuid();
    r->owner = ok ? VB_REMOTE_OWNER_VERIFIED : VB_REMOTE_OWNER_UNEXPECTED;
    return 0;
}

/* fd (and tls over it, or NULL) are taken, and freed on failure too. */
static int connect_over(int fd, vb_tls *tls, const vb_uri *uri, const vb_remote_opts *opts,
                        vb_remote **out, vb_error *err)
{
    static const vb_remote_opts no_opts;
    if (!opts)
        opts = &no_opts;
    *out = NULL;
    if (vb_sasl_client_init(err) < 0) {
        vb_tls_free(tls);
        close(fd);
        return -1;
    }
    vb_remote *r = calloc(1, sizeof *r);
    if (!r) {
        vb_tls_free(tls);
        close(fd);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    }
    r->fd = fd;
    r->tls = tls;
    r->host_version = opts->host_version ? opts->host_version : VB_PROG_HOST_VERSION;
    r->reply_timeout_ms = opts->timeout_ms ? opts->timeout_ms : 60000;
    r->timeout_ms = r->reply_timeout_ms;
    vb_calls_init(&r->calls);
    pthread_mutex_init(&r->send_lock, NULL);
    pthread_mutex_init(&r->driver_lock, NULL);
    vb_msgin_init(&r->in, VB_FRAME_MAX_POSTAUTH);
    r->host = strdup(uri->host && *uri->host ? uri->host : "localhost");
    r->service = service_name(uri);
    int net = transport_is(uri, "tcp") || transport_is(uri, "tls");
    r->target = (vb_cred_target){ strdup("vbhostd"), strdup(r->host ? r->host : "localhost"),
                                  net ? (unsigned)uri_port(uri) : 0,
                                  uri->user ? strdup(uri->user) : NULL };
    vb_remote_set_relay(r, &opts->creds);
    describe_endpoint(r, uri);
    if (!r->service || !r->target.scheme || !r->target.host || check_owner(r, uri, err) < 0 ||
        negotiate(r, uri, opts, err) < 0) {
        vb_remote_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int vb_remote_connect_fd(int fd, const vb_uri *uri, const vb_remote_opts *opts, vb_remote **out,
                         vb_error *err)
{
    return connect_over(fd, NULL, uri, opts, out, err);
}

static int connect_and_login(const vb_uri *uri, const vb_remote_opts *opts, vb_remote **out,
                             vb_error *err)
{
    vb_ssh *ssh = NULL;
    vb_tls *tls = NULL;
    int fd = open_transport(uri, opts, &ssh, &tls, err);
    if (fd < 0) {
        /* "cannot connect to h port p" alone does not say which hop of a
         * chain is down: this one, a vbhostd (or the sshd before it) */
        if (err && err->code == VB_ERR_NO_CONNECT && err->domain == VB_DOM_SYSTEM)
            vb_error_prefix(err, "%s", uri->transport && strcmp(uri->transport, "ssh") == 0
                                           ? "the ssh server on the way to vbhostd"
                                           : "vbhostd");
        return -1;
    }
    /* the tunnel outlives negotiation; the connection owns it from here on
     * (vb_remote_free closes the fd before the tunnel, as it always did) */
    if (connect_over(fd, tls, uri, opts, out, err) < 0) {
        vb_ssh_close(ssh);
        return -1;
    }
    (*out)->ssh = ssh;
    return 0;
}

int vb_remote_connect(const vb_uri *uri, const vb_remote_opts *opts, vb_remote **out, vb_error *err)
{
    static const vb_remote_opts no_opts;
    *out = NULL;
    /* held from the dial until the login is over: see vb_login_gate.h */
    vb_login_slot *slot = vb_login_gate_enter(uri);
    int rc = connect_and_login(uri, opts ? opts : &no_opts, out, err);
    vb_login_gate_leave(slot);
    return rc;
}

void vb_remote_free(vb_remote *r)
{
    if (!r)
        return;
    vb_tls_free(r->tls); /* its close_notify goes out before the socket closes */
    if (r->fd >= 0)
        close(r->fd);
    vb_ssh_close(r->ssh);
    vb_sasl_free(r->sasl);
    vb_calls_destroy(&r->calls);
    pthread_mutex_destroy(&r->send_lock);
    pthread_mutex_destroy(&r->driver_lock);
    vb_msgin_clear(&r->in);
    free(r->service);
    free(r->host);
    free(r->target.scheme);
    free(r->target.host);
    free(r->target.user);
    free(r);
}

const char *vb_remote_auth_type(const vb_remote *r) { return r->auth_type; }
const char *vb_remote_sasl_mech(const vb_remote *r) { return r->sasl ? vb_sasl_mech(r->sasl) : NULL; }
unsigned vb_remote_ssf(const vb_remote *r) { return r->sasl ? vb_sasl_ssf(r->sasl) : 0; }
const char *vb_remote_server_id(const vb_remote *r) { return r->have_server_id ? r->server_id : NULL; }
int vb_remote_fd(const vb_remote *r) { return r->fd; }
vb_tls *vb_remote_tls(const vb_remote *r) { return r->tls; }
int vb_remote_multiplexes(const vb_remote *r) { return r->multiplexes; }
int vb_remote_concurrent(const vb_remote *r) { return r->multiplexes && r->concurrent; }
const char *vb_remote_endpoint(const vb_remote *r) { return r->endpoint; }
char *vb_remote_service_name(const vb_uri *uri) { return service_name(uri); }
void vb_remote_set_conn(vb_remote *r, uint32_t conn_id) { r->conn_id = conn_id; }

void vb_remote_set_relay(vb_remote *r, const vb_cred_source *creds)
{
    r->have_relay = creds != NULL;
    if (creds)
        r->relay = *creds;
}

/* ---- tokens ------------------------------------------------------------------ */

int vb_remote_issue_token(vb_remote *r, uint64_t ttl_s, vb_remote_token *out, vb_error *err)
{
    vb_msg reply;
    vb_rd rd;
    const char *id, *ident;
    const uint8_t *secret;
    size_t idlen, slen, identlen;
    memset(out, 0, sizeof *out);
    if (vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_TOKEN_ISSUE, NULL, &ttl_s, &reply, err) < 0)
        return -1;
    int rc = vb_rd_init(&rd, reply.body, err) < 0 || vb_rd_str(&rd, &id, &idlen, err) < 0 ||
                     vb_rd_bin(&rd, &secret, &slen, err) < 0 ||
                     vb_rd_i64(&rd, &out->expires, err) < 0 ||
                     vb_rd_str(&rd, &ident, &identlen, err) < 0
                 ? -1
                 : 0;
    if (rc == 0 && (!vb_token_id_valid(id, idlen) || slen != VB_TOKEN_SECRET_LEN || !ident ||
                    identlen >= sizeof out->identity))
        rc = vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_AUTH, "malformed TOKEN_ISSUE reply");
    if (rc == 0) {
        memcpy(out->id, id, idlen);
        memcpy(out->secret, secret, slen);
        memcpy(out->identity, ident, identlen);
    }
    vb_msg_clear(&reply); /* wipes the frame that carried the secret */
    return rc;
}

int vb_remote_revoke_token(vb_remote *r, const char *id, int *revoked, vb_error *err)
{
    vb_msg reply;
    vb_rd rd;
    *revoked = 0;
    if (vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_TOKEN_REVOKE, NULL, id, &reply, err) < 0)
        return -1;
    int rc = vb_rd_init(&rd, reply.body, err) < 0 || vb_rd_bool(&rd, revoked, err) < 0 ? -1 : 0;
    vb_msg_clear(&reply);
    return rc;
}

/* ---- driver calls -------------------------------------------------------- */

/* The connection's own channel: vb_remote_set_conn's id, vb_remote_set_relay's source. */
static vb_remote_chan own_chan(vb_remote *r)
{
    vb_remote_chan ch = { r, r->conn_id, r->have_relay ? &r->relay : NULL };
    return ch;
}

/* The stubs name their procedure; its body column picks the packer
 * (vb_body_call_packer) and the reply's decoder is the body's. */
static int simple_call(const vb_remote_chan *ch, uint32_t proc, const void *arg, vb_error *err)
{
    vb_msg reply;
    if (vb_remote_chan_call(ch, VB_PROG_HOST, proc, NULL, arg, &reply, err) < 0)
        return -1;
    vb_msg_clear(&reply);
    return 0;
}

int vb_remote_chan_open(const vb_remote_chan *ch, const char *name, unsigned flags, vb_error *err)
{
    vb_body_open a = { name, flags };
    return simple_call(ch, VB_HOST_PROC_OPEN, &a, err);
}

int vb_remote_chan_close(const vb_remote_chan *ch, vb_error *err)
{
    return simple_call(ch, VB_HOST_PROC_CLOSE, NULL, err);
}

int vb_remote_chan_domain_start(const vb_remote_chan *ch, const char *name, vb_error *err)
{
    return simple_call(ch, VB_HOST_PROC_DOMAIN_START, name, err);
}

int vb_remote_chan_domain_shutdown(const vb_remote_chan *ch, const char *name, vb_error *err)
{
    return simple_call(ch, VB_HOST_PROC_DOMAIN_SHUTDOWN, name, err);
}

int vb_remote_chan_get_hostname(const vb_remote_chan *ch, char **hostname, vb_error *err)
{
    vb_msg reply;
    if (vb_remote_chan_call(ch, VB_PROG_HOST, VB_HOST_PROC_GET_HOSTNAME, NULL, NULL, &reply, err) < 0)
        return -1;
    int rc = vb_body_read_str(reply.body, 1024, hostname, err);
    vb_msg_clear(&reply);
    return rc;
}

static int read_domain(vb_rd *list, vb_domain_info *d, vb_error *err)
{
    vb_wire_domain w;
    if (vb_body_read_domain(list, &w, err) < 0)
        return -1;
    if (w.name_len >= sizeof d->name || (w.uuid && w.uuid_len >= sizeof d->uuid))
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_PROTO, "domain record fields too long");
    memset(d, 0, sizeof *d);
    d->id = (int32_t)w.id;
    memcpy(d->name, w.name, w.name_len);
    if (w.uuid)
        memcpy(d->uuid, w.uuid, w.uuid_len);
    d->state = w.state;
    d->memory_kib = w.memory_kib;
    d->vcpus = w.vcpus;
    return 0;
}

int vb_remote_chan_list_domains(const vb_remote_chan *ch, vb_domain_info **doms, size_t *n,
                                vb_error *err)
{
    vb_msg reply;
    vb_rd list;
    *doms = NULL;
    *n = 0;
    if (vb_remote_chan_call(ch, VB_PROG_HOST, VB_HOST_PROC_LIST_DOMAINS, NULL, NULL, &reply, err) < 0)
        return -1;
    int rc = vb_body_read_domain_list(reply.body, &list, err);
    if (rc == 0 && list.count > 0 && !(*doms = calloc(list.count, sizeof **doms)))
        rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    while (rc == 0 && vb_rd_has_more(&list)) {
        if (read_domain(&list, &(*doms)[*n], err) < 0)
            rc = -1;
        else
            (*n)++;
    }
    if (rc < 0) {
        free(*doms);
        *doms = NULL;
        *n = 0;
    }
    vb_msg_clear(&reply);
    return rc;
}

/* The same on the connection's own channel (one caller at a time). */
int vb_remote_open(vb_remote *r, const char *name, unsigned flags, vb_error *err)
{
    vb_remote_chan ch = own_chan(r);
    return vb_remote_chan_open(&ch, name, flags, err);
}

int vb_remote_close_driver(vb_remote *r, vb_error *err)
{
    vb_remote_chan ch = own_chan(r);
    return vb_remote_chan_close(&ch, err);
}

int vb_remote_get_hostname(vb_remote *r, char **hostname, vb_error *err)
{
    vb_remote_chan ch = own_chan(r);
    return vb_remote_chan_get_hostname(&ch, hostname, err);
}

int vb_remote_list_domains(vb_remote *r, vb_domain_info **doms, size_t *n, vb_error *err)
{
    vb_remote_chan ch = own_chan(r);
    return vb_remote_chan_list_domains(&ch, doms, n, err);
}

int vb_remote_domain_start(vb_remote *r, const char *name, vb_error *err)
{
    vb_remote_chan ch = own_chan(r);
    return vb_remote_chan_domain_start(&ch, name, err);
}

int vb_remote_domain_shutdown(vb_remote *r, const char *name, vb_error *err)
{
    vb_remote_chan ch = own_chan(r);
    return vb_remote_chan_domain_shutdown(&ch, name, err);
}
