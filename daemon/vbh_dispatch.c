/* Dispatch: the HOST procedure table, the auth gate, replies, and the
 * delayed answers to login attempts. */
#include "vbh.h"

#include <stdio.h>
#include <string.h>

#include "vb_log.h"

typedef struct vbh_route {
    uint32_t procedure;
    vbh_handler handler;
} vbh_route;

/* needs-auth comes from the protocol table (proto/vb_protocol.h), not from
 * the handlers: the gate is a column, not an `if` in each handler. */
static const vbh_route host_routes[] = {
    { VB_HOST_PROC_AUTH_LIST, vbh_auth_list_handler },
    { VB_HOST_PROC_AUTH_SASL_INIT, vbh_auth_sasl_init },
    { VB_HOST_PROC_AUTH_SASL_START, vbh_auth_sasl_start },
    { VB_HOST_PROC_AUTH_SASL_STEP, vbh_auth_sasl_step },
    { VB_HOST_PROC_AUTH_PEER, vbh_auth_peer },
    { VB_HOST_PROC_AUTH_POLKIT, vbh_auth_polkit_finish }, /* after vbh_auth_polkit_begin */
    { VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, vbh_auth_token_challenge },
    { VB_HOST_PROC_AUTH_TOKEN_PROVE, vbh_auth_token_prove },
    { VB_HOST_PROC_TOKEN_ISSUE, vbh_token_issue },
    { VB_HOST_PROC_TOKEN_REVOKE, vbh_token_revoke },
    { VB_HOST_PROC_OPEN, vbh_call_open },
    { VB_HOST_PROC_CLOSE, vbh_call_close },
    { VB_HOST_PROC_GET_HOSTNAME, vbh_call_get_hostname },
    { VB_HOST_PROC_LIST_DOMAINS, vbh_call_list_domains },
    { VB_HOST_PROC_DOMAIN_START, vbh_call_domain_start },
    { VB_HOST_PROC_DOMAIN_SHUTDOWN, vbh_call_domain_shutdown },
};

static int is_auth_proc(uint32_t procedure)
{
    return procedure >= VB_HOST_PROC_AUTH_LIST && procedure <= VB_HOST_PROC_AUTH_POLKIT;
}

/* what a HOST v1 server did not have */
static int is_v2_proc(uint32_t procedure)
{
    return is_auth_proc(procedure) || procedure == VB_HOST_PROC_TOKEN_ISSUE ||
           procedure == VB_HOST_PROC_TOKEN_REVOKE;
}

static vbh_handler find_handler(const vbh_client *c, const vb_msg *msg)
{
    if (msg->hdr.program != VB_PROG_HOST)
        return NULL;
    /* A v1 server predates authentication: AUTH_* are unknown to it. */
    if (c->srv->cfg->protocol_v1 && is_v2_proc(msg->hdr.procedure))
        return NULL;
    for (size_t i = 0; i < sizeof host_routes / sizeof host_routes[0]; i++)
        if (host_routes[i].procedure == msg->hdr.procedure)
            return host_routes[i].handler;
    return NULL;
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
        c->confidential = 1;
    }
}

static void send_error(vbh_client *c, const vb_msg_header *req, const vb_error *e)
{
    vb_msg_header hdr = *req;
    hdr.version = req->program == VB_PROG_HOST ? server_version(c) : req->version;
    uint8_t *frame;
    size_t len;
    vb_error err;
    if (vb_enc_error_reply(&hdr, VB_MSG_REPLY, e, &frame, &len, &err) == 0)
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

static void handle_keepalive(vbh_client *c, const vb_msg *msg)
{
    if (msg->hdr.procedure != VB_KEEPALIVE_PROC_PING)
        return;
    c->speaks_keepalive = 1;
    vb_log(VB_LOG_DEBUG, "client %s: keepalive ping", c->peer);
    vb_msg_header hdr = msg->hdr;
    hdr.procedure = VB_KEEPALIVE_PROC_PONG;
    hdr.type = msg->hdr.type == VB_MSG_CALL ? VB_MSG_REPLY : VB_MSG_EVENT;
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 0);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, NULL) == 0)
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
    run_handler(c, msg, handler);
}

static int is_driver_proc(uint32_t procedure)
{
    return procedure >= VB_HOST_PROC_OPEN && procedure <= VB_HOST_PROC_DOMAIN_SHUTDOWN;
}

/* the calls that read or write tokens.db (vbh_tokens.c: off the loop) */
static int is_token_store_proc(uint32_t procedure)
{
    return procedure == VB_HOST_PROC_AUTH_TOKEN_CHALLENGE ||
           procedure == VB_HOST_PROC_AUTH_TOKEN_PROVE || procedure == VB_HOST_PROC_TOKEN_ISSUE ||
           procedure == VB_HOST_PROC_TOKEN_REVOKE;
}

/* Driver calls may block (HTTP to a XenAPI host, a nested prompt): hand
 * them to the client's worker; polkit checks and tokens.db are asked off the
 * loop and answered later; the rest is answered here. */
static void route(vbh_client *c, vb_msg *msg, vbh_handler handler)
{
    vb_error err;
    vb_msg_header hdr = msg->hdr; /* msg is moved when a call is begun */
    int polkit = hdr.procedure == VB_HOST_PROC_AUTH_POLKIT; /* polkitd answers over D-Bus */
    int store = is_token_store_proc(hdr.procedure); /* a disk write may wait on a lock */
    if (polkit || store) {
        int rc = polkit ? vbh_auth_polkit_begin(c, msg, &err)
                        : vbh_tokens_begin(c, msg, handler, &err);
        if (rc < 0) {
            vb_msg m = { .hdr = hdr };
            answer_auth(c, &m, -1, NULL, 0, &err);
        }
    } else if (!is_driver_proc(msg->hdr.procedure)) {
        run_handler(c, msg, handler);
    } else if (vbh_worker_submit(c, msg, handler, &err) < 0) {
        send_error(c, &msg->hdr, &err);
    }
}

void vbh_dispatch(vbh_client *c, vb_msg *msg)
{
    vb_error err;
    if (msg->hdr.type == VB_MSG_CALLBACK_REPLY && msg->hdr.program == VB_PROG_HOST) {
        vbh_worker_cred_reply(c, msg);
    } else if (msg->hdr.type != VB_MSG_CALL && msg->hdr.type != VB_MSG_EVENT) {
        vb_log(VB_LOG_DEBUG, "client %s sent an unexpected %s; ignored", c->peer,
               vb_proto_msg_type_name(msg->hdr.type));
    } else if (msg->hdr.program == VB_PROG_KEEPALIVE) {
        handle_keepalive(c, msg);
    } else if (msg->hdr.type == VB_MSG_EVENT) {
        /* no HOST events flow client → server */
    } else if (vb_msg_check_proc_size(msg, &err) < 0) {
        send_error(c, &msg->hdr, &err);
    } else {
        const vb_proc_info *info = vb_proto_proc_lookup(msg->hdr.program, msg->hdr.procedure);
        vbh_handler handler = find_handler(c, msg);
        if (!handler || !info) {
            vb_error_set(&err, VB_ERR_NO_SUPPORT, VB_DOM_RPC,
                         "procedure %u of program %u is not supported by this server "
                         "(vbhostd, HOST protocol v%u)",
                         msg->hdr.procedure, msg->hdr.program, server_version(c));
            send_error(c, &msg->hdr, &err);
        } else if (info->needs_auth && !c->authenticated) {
            gate_refuse(c, msg, info);
        } else {
            route(c, msg, handler);
        }
    }
    vb_msg_clear(msg);
}
