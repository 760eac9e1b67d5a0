/* Client side of vbhostd, calls: several in flight on one transport, the
 * relay of the server's questions, keepalive, tokens, the driver calls. */
#include "vb_remote_priv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_bodies.h"
#include "vb_credwire.h"
#include "vb_log.h"

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
    if (req->nhops >= VB_CRED_MAX_HOPS)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_CLIENT,
                            "a question relayed through %d hosts already: this hop would be "
                            "one too many (the limit is %d)",
                            VB_CRED_MAX_HOPS, VB_CRED_MAX_HOPS);
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
    if (relay_fill(r, side, msg, &req, &err) == 0)
        vb_credwire_answer_frame(&msg->hdr, &req, &frame, &len, NULL);
    else
        vb_enc_error_reply(&msg->hdr, VB_MSG_CALLBACK_REPLY, &err, &frame, &len, NULL);
    vb_cred_request_clear(&req);
    if (frame)
        vb_remote_send_locked(r, frame, len, NULL);
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
        vb_remote_send_locked(r, frame, len, NULL);
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
        vb_remote_send_locked(r, frame, len, NULL);
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
        vb_remote_reader_lock(r);
    }
    r->timeout_ms = wait;
    vb_msg msg;
    int rc = vb_remote_read_msg(r, &msg, err);
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
    uint8_t *frame;
    size_t len;
    if (vb_body_call_frame(hdr, args_fn, arg, VB_FRAME_MAX_PREAUTH * 4, &frame, &len, err) < 0)
        return -1;
    return vb_remote_send_locked(r, frame, len, err);
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
    return vb_remote_send_locked(r, frame, len, err);
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
