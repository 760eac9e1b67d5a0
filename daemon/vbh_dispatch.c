/* Dispatch: the HOST procedure table, the auth gate, replies, and the
 * delayed answers to login attempts. */
#include "vbh.h"

#include <stdio.h>
#include <string.h>

#include "vb_log.h"

/* Starts an ASYNC call off the loop (msg moved on success); its handler
 * prepares it or answers it later, as the begin function says. */
typedef int (*vbh_begin_fn)(vbh_client *c, vb_msg *msg, vbh_handler handler, vb_error *err);

static int begin_polkit(vbh_client *c, vb_msg *msg, vbh_handler handler, vb_error *err)
{
    (void)handler; /* vbh_auth_polkit_finish answers when polkitd has */
    return vbh_auth_polkit_begin(c, msg, err);
}

typedef struct vbh_route {
    vbh_handler handler;
    vbh_begin_fn begin; /* ASYNC procedures: starts the question; handler answers later */
} vbh_route;

/* The handler of every HOST procedure this server runs. Everything else about
 * a procedure (needs-auth, loop or worker, the version it came in, its body)
 * is a column of the protocol table (proto/vb_protocol.h), not code here: a
 * row that the server runs and that has no line below does not compile. */
#define VBH_HANDLER_AUTH_LIST            vbh_auth_list_handler
#define VBH_HANDLER_AUTH_SASL_INIT       vbh_auth_sasl_init
#define VBH_HANDLER_AUTH_SASL_START      vbh_auth_sasl_start
#define VBH_HANDLER_AUTH_SASL_STEP       vbh_auth_sasl_step
#define VBH_HANDLER_AUTH_TOKEN_CHALLENGE vbh_auth_token_challenge
#define VBH_HANDLER_AUTH_TOKEN_PROVE     vbh_auth_token_prove
#define VBH_HANDLER_AUTH_PEER            vbh_auth_peer
#define VBH_HANDLER_AUTH_POLKIT          vbh_auth_polkit_finish
#define VBH_BEGIN_AUTH_POLKIT            begin_polkit
#define VBH_BEGIN_AUTH_SASL_START        vbh_auth_sasl_begin
#define VBH_BEGIN_AUTH_SASL_STEP         vbh_auth_sasl_begin
#define VBH_BEGIN_AUTH_TOKEN_CHALLENGE   vbh_tokens_begin
#define VBH_BEGIN_AUTH_TOKEN_PROVE       vbh_tokens_begin
#define VBH_BEGIN_TOKEN_ISSUE            vbh_tokens_begin
#define VBH_BEGIN_TOKEN_REVOKE           vbh_tokens_begin
#define VBH_HANDLER_OPEN                 vbh_call_open
#define VBH_HANDLER_CLOSE                vbh_call_close
#define VBH_HANDLER_GET_HOSTNAME         vbh_call_get_hostname
#define VBH_HANDLER_LIST_DOMAINS         vbh_call_list_domains
#define VBH_HANDLER_DOMAIN_START         vbh_call_domain_start
#define VBH_HANDLER_DOMAIN_SHUTDOWN      vbh_call_domain_shutdown
#define VBH_HANDLER_TOKEN_ISSUE          vbh_token_issue
#define VBH_HANDLER_TOKEN_REVOKE         vbh_token_revoke

#define VBH_ROUTE_LOOP(name)   [VB_HOST_PROC_##name] = { VBH_HANDLER_##name, NULL },
#define VBH_ROUTE_WORKER(name) VBH_ROUTE_LOOP(name)
#define VBH_ROUTE_ASYNC(name)  [VB_HOST_PROC_##name] = { VBH_HANDLER_##name, VBH_BEGIN_##name },
#define VBH_ROUTE_PEER(name)   /* the server sends it; a client's CALL of it: NO_SUPPORT */

static const vbh_route host_routes[] = {
#define VB_X(name, num, auth, runs, login, since, body, max) VBH_ROUTE_##runs(name)
    VB_HOST_PROCS(VB_X)
#undef VB_X
};

static uint32_t server_version(const vbh_client *c);

/* The route and table entry for msg, or NULL when this server does not run
 * it: another program, a procedure it does not know, one the client runs,
 * or (a v1 server, which predates authentication) one that came later. */
static const vbh_route *find_route(const vbh_client *c, const vb_msg *msg,
                                   const vb_proc_info **info)
{
    uint32_t proc = msg->hdr.procedure;
    if (msg->hdr.program != VB_PROG_HOST)
        return NULL;
    *info = vb_proto_proc_lookup_version(VB_PROG_HOST, server_version(c), proc);
    if (!*info || proc >= sizeof host_routes / sizeof host_routes[0] || !host_routes[proc].handler)
        return NULL;
    return &host_routes[proc];
}

static uint32_t server_version(const vbh_client *c)
{
    return c->srv->cfg->protocol_v1 ? VB_PROG_HOST_VERSION_NOAUTH : VB_PROG_HOST_VERSION;
}

static void send_frame(vbh_client *c, uint8_t *frame, size_t len)
{
    vb_stream_send(c->stream, frame, len);
    if (c->enable_layer) {
        /* the reply that completed SASL went out in the clear; all later
         * traffic goes through the negotiated security layer */
        vb_stream_set_sasl(c->stream, c->sasl);
        c->enable_layer = 0;
        c->layer_on = 1;
        c->confidential = 1;
    }
}

/* The replier's version of a program it serves (HOST, KEEPALIVE); of one
 * it does not serve it has none, and repeats the caller's. */
static uint32_t answer_version(const vbh_client *c, const vb_msg_header *req)
{
    if (req->program == VB_PROG_HOST)
        return server_version(c);
    return req->program == VB_PROG_KEEPALIVE ? VB_PROG_KEEPALIVE_VERSION : req->version;
}

static void send_error(vbh_client *c, const vb_msg_header *req, const vb_error *e)
{
    vb_msg_header hdr = *req;
    hdr.version = answer_version(c, req);
    uint8_t *frame;
    size_t len;
    vb_error err;
    if (vb_enc_error_reply(&hdr, vb_msg_answer_type(req->type), e, &frame, &len, &err) == 0)
        send_frame(c, frame, len);
}

static void delayed_reply(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    vbh_client *c = data;
    c->delay_timer = 0;
    send_frame(c, c->delayed_frame, c->delayed_len);
    c->delayed_frame = NULL;
    c->delayed_len = 0;
    if (c->close_after_delayed)
        vb_stream_close_after_flush(c->stream);
    else
        vb_stream_pause(c->stream, 0);
}

/* Send frame after delay ms, without reading more from this client
 * meanwhile and without blocking anyone else; close afterwards if asked. */
static void send_later(vbh_client *c, uint8_t *frame, size_t len, uint64_t delay, int close_after)
{
    c->delayed_frame = frame;
    c->delayed_len = len;
    c->close_after_delayed = close_after;
    vb_stream_pause(c->stream, 1);
    c->delay_timer = vb_loop_add_timer(c->srv->loop, delay, delayed_reply, c);
}

/* A failed login: answered after delay (vbh_auth_answer_delay: it grows
 * with the account's, the peer's and everyone's recent failures); close
 * once the attempts are used up. */
static void auth_failed(vbh_client *c, const vb_msg_header *req, const vb_error *e, uint64_t delay)
{
    c->failed_attempts++;
    int last = c->failed_attempts >= c->srv->cfg->auth_attempts_per_connection;
    vb_error reply_err;
    vb_error_copy(&reply_err, e);
    if (last)
        vb_error_set(&reply_err, e->code, e->domain,
                     "%s (%u failed attempts; the server closes this connection)", e->message,
                     c->failed_attempts);
    vb_msg_header hdr = *req;
    hdr.version = server_version(c);
    uint8_t *frame;
    size_t len;
    if (vb_enc_error_reply(&hdr, VB_MSG_REPLY, &reply_err, &frame, &len, NULL) == 0)
        send_later(c, frame, len, delay, last);
}

static void gate_refuse(vbh_client *c, const vb_msg *msg, const vb_proc_info *info)
{
    char types[64];
    vbh_auth_list_format(c->lis->auth, types, sizeof types);
    vb_error e;
    vb_error_set(&e, VB_ERR_AUTH_REQUIRED, VB_DOM_AUTH,
                 "authentication required: this server accepts %s; %s needs an authenticated "
                 "connection (upgrade the client, or use a URI with auth=%s)",
                 types, info->name, vbh_auth_type_name(c->lis->auth->types[0]));
    vb_log(VB_LOG_INFO, "client %s called %s before authenticating (protocol v%u)", c->peer,
           info->name, msg->hdr.version);
    send_error(c, &msg->hdr, &e);
}

static void answer_ping(vbh_client *c, const vb_msg *msg)
{
    c->speaks_keepalive = 1;
    vb_log(VB_LOG_DEBUG, "client %s: keepalive ping", c->peer);
    uint8_t *frame;
    size_t len;
    if (vb_enc_pong(&msg->hdr, &frame, &len, NULL) == 0)
        send_frame(c, frame, len);
}

/* Run handler for msg into an encoded REPLY frame: 0, or -1 with err (a
 * failed handler, unreadable arguments, or a reply over the limit). */
static int run_into_frame(vbh_client *c, const vb_msg *msg, vbh_handler handler, uint8_t **frame,
                          size_t *len, vb_error *err)
{
    vb_rd args;
    vb_enc enc;
    vb_msg_header hdr = msg->hdr;
    hdr.type = VB_MSG_REPLY;
    hdr.version = server_version(c);
    vb_error_clear(err);
    vb_enc_begin(&enc, &hdr);
    *frame = NULL;
    if (vb_rd_init(&args, msg->body, err) < 0 || handler(c, &args, &enc, err) < 0) {
        vb_enc_dispose(&enc);
        return -1;
    }
    size_t limit = c->authenticated ? c->srv->cfg->max_frame : VB_FRAME_MAX_PREAUTH;
    return vb_enc_finish(&enc, limit, frame, len, err);
}

void vbh_build_reply(vbh_client *c, const vb_msg *msg, vbh_handler handler, uint8_t **frame,
                     size_t *len)
{
    vb_error err;
    if (run_into_frame(c, msg, handler, frame, len, &err) < 0) {
        vb_msg_header hdr = msg->hdr;
        hdr.version = server_version(c);
        vb_enc_error_reply(&hdr, VB_MSG_REPLY, &err, frame, len, NULL);
    }
}

/* Auth procedures run on the loop (their answers are delayed there: a
 * failure, and beyond the failure ceiling a success too). */
static void answer_auth(vbh_client *c, const vb_msg *msg, int rc, uint8_t *frame, size_t len,
                        const vb_error *e)
{
    vb_error err;
    vb_error_copy(&err, e);
    uint64_t delay = vbh_auth_answer_delay(c, rc < 0 && err.code == VB_ERR_AUTH_FAILED);
    if (rc < 0) {
        c->enable_layer = 0; /* no reply went out that could switch it on */
        if (err.code == VB_ERR_AUTH_FAILED)
            auth_failed(c, &msg->hdr, &err, delay);
        else
            send_error(c, &msg->hdr, &err);
    } else if (delay) {
        send_later(c, frame, len, delay, 0);
    } else {
        send_frame(c, frame, len);
    }
}

static void run_handler(vbh_client *c, const vb_msg *msg, vbh_handler handler)
{
    vb_error err;
    uint8_t *frame;
    size_t len;
    int rc = run_into_frame(c, msg, handler, &frame, &len, &err);
    answer_auth(c, msg, rc, frame, len, &err);
}

void vbh_dispatch_resume(vbh_client *c, const vb_msg *msg, vbh_handler handler)
{
    c->last_rx_ms = vb_now_ms(); /* it waited on us: its keepalive silence starts now */
    vb_stream_pause(c->stream, 0); /* and it is read again */
    run_handler(c, msg, handler);
}

/* Where the table says it runs: driver calls may block (HTTP to a XenAPI
 * host, a nested prompt) and go to the client's worker; an ASYNC one (a
 * polkit check over D-Bus, a tokens.db read or write that may wait on a
 * lock, a SASL step's milliseconds of CPU) starts here, runs off the loop
 * and is answered later; the rest is answered here. */
static void route(vbh_client *c, vb_msg *msg, const vb_proc_info *info, const vbh_route *r)
{
    vb_error err;
    vb_msg_header hdr = msg->hdr; /* msg is moved when a call is begun */
    if (info->runs == VB_RUN_ASYNC) {
        if (r->begin(c, msg, r->handler, &err) < 0) {
            vb_msg m = { .hdr = hdr };
            answer_auth(c, &m, -1, NULL, 0, &err);
        }
    } else if (info->runs != VB_RUN_WORKER || !vbh_worker_takes(c, msg)) {
        run_handler(c, msg, r->handler);
    } else if (vbh_worker_submit(c, msg, r->handler, &err) < 0) {
        send_error(c, &msg->hdr, &err);
    }
}

/* A CALL after intake, in the order of docs/protocol.md §5.7: program and
 * procedure (NO_SUPPORT), its size (TOO_LARGE), the gate (AUTH_REQUIRED);
 * then route: one driver call at a time (OPERATION_INVALID), and in the
 * handler the body (PROTOCOL) before any state (NOT_OPEN, READ_ONLY). */
static void dispatch_call(vbh_client *c, vb_msg *msg)
{
    vb_error err;
    const vb_proc_info *info = NULL;
    const vbh_route *r = find_route(c, msg, &info);
    if (!r) {
        vb_error_set(&err, VB_ERR_NO_SUPPORT, VB_DOM_RPC,
                     "procedure %u of program %u is not supported by this server "
                     "(vbhostd, HOST protocol v%u)",
                     msg->hdr.procedure, msg->hdr.program, server_version(c));
        send_error(c, &msg->hdr, &err);
    } else if (vb_msg_check_proc_size(msg, &err) < 0) {
        send_error(c, &msg->hdr, &err);
    } else if (info->needs_auth && !c->authenticated) {
        gate_refuse(c, msg, info);
    } else {
        route(c, msg, info, r);
    }
}

void vbh_dispatch(vbh_client *c, vb_msg *msg)
{
    vb_error err;
    switch (vb_msg_server_intake(msg, &err)) {
    case VB_INTAKE_CALL:
        dispatch_call(c, msg);
        break;
    case VB_INTAKE_CALLBACK_REPLY:
        if (msg->hdr.program == VB_PROG_HOST)
            vbh_worker_cred_reply(c, msg);
        break;
    case VB_INTAKE_PING:
        answer_ping(c, msg);
        break;
    case VB_INTAKE_IGNORE: /* no HOST events flow client → server */
        vb_log(VB_LOG_DEBUG, "client %s sent an unexpected %s; ignored", c->peer,
               vb_proto_msg_type_name(msg->hdr.type));
        break;
    case VB_INTAKE_REFUSE:
        send_error(c, &msg->hdr, &err);
        break;
    case VB_INTAKE_REFUSE_CLOSE:
        vb_log(VB_LOG_INFO, "client %s: %s", c->peer, err.message);
        send_error(c, &msg->hdr, &err);
        vb_stream_close_after_flush(c->stream);
        break;
    }
    vb_msg_clear(msg);
}
