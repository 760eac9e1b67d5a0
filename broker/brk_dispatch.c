/* The BROKER program on the loop thread: decode, answer STATUS here, hand
 * driver calls to the session's worker, deliver callback answers. */
#include "brk.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vb_libvirt.h"
#include "vb_log.h"

#define URI_MAX 4096

static void send_error(brk_session *s, const vb_msg_header *req, const vb_error *e)
{
    vb_msg_header hdr = *req;
    /* the replier's version of a program it serves; of another, the caller's */
    if (req->program == VB_PROG_BROKER || req->program == VB_PROG_KEEPALIVE)
        hdr.version = vb_proto_program_version(req->program);
    uint8_t *frame;
    size_t len;
    if (vb_enc_error_reply(&hdr, vb_msg_answer_type(req->type), e, &frame, &len, NULL) == 0)
        vb_stream_send(s->stream, frame, len);
}

static vb_msg_header reply_header(const vb_msg_header *req)
{
    vb_msg_header hdr = *req;
    hdr.type = VB_MSG_REPLY;
    hdr.version = VB_PROG_BROKER_VERSION;
    hdr.status = VB_STATUS_OK;
    return hdr;
}

static void send_empty_reply(brk_session *s, const vb_msg_header *req)
{
    vb_msg_header hdr = reply_header(req);
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_error err;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 0);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, &err) == 0)
        vb_stream_send(s->stream, frame, len);
    else
        send_error(s, req, &err);
}

static void encode_upstream(vb_enc *enc, brk_session *s)
{
    pthread_mutex_lock(&s->mutex);
    vb_enc_array(enc, 5);
    vb_enc_str(enc, s->uri);
    vb_enc_str(enc, s->info.auth_type);
    vb_enc_str(enc, s->info.sasl_mech[0] ? s->info.sasl_mech : NULL);
    vb_enc_u64(enc, s->info.ssf);
    vb_enc_str(enc, s->info.server_id[0] ? s->info.server_id : NULL);
    pthread_mutex_unlock(&s->mutex);
}

static int session_is_open(brk_session *s)
{
    pthread_mutex_lock(&s->mutex);
    int open = s->drv_conn != NULL && s->uri != NULL;
    pthread_mutex_unlock(&s->mutex);
    return open;
}

/* The 6th STATUS field: the remote driver's shared transports, each
 * [endpoint, server_id, auth_type, opens, idle_ms] (what a logout closes). */
static void encode_host_connections(vb_enc *enc)
{
    enum { MAX_SHOWN = 256 };
    vb_transport_info *t = calloc(MAX_SHOWN, sizeof *t);
    size_t n = t ? vb_remote_driver_list(t, MAX_SHOWN) : 0;
    if (t)
        n += vb_libvirt_driver_list(t + n, MAX_SHOWN - n);
    vb_enc_array(enc, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        vb_enc_array(enc, 5);
        vb_enc_str(enc, t[i].endpoint);
        vb_enc_str(enc, t[i].server_id);
        vb_enc_str(enc, t[i].auth_type);
        vb_enc_u64(enc, t[i].opens);
        vb_enc_u64(enc, t[i].idle_ms);
    }
    free(t);
}

/* STATUS: what the loop owns (the sessions) is encoded here; the logins
 * (cache.db, which another process may hold locked) and the host
 * connections (their registry lock, held across a keepalive ping) are added
 * on the store lane, and the reply goes out when that is done. The client
 * is not read meanwhile, so its replies stay in order. */
typedef struct status_job {
    brk_session *s;              /* a reference, dropped in status_done */
    vb_msg_header req;
    vb_enc enc;                  /* the reply, begun on the loop */
    uint8_t *frame;              /* ... finished on the lane (or an ERROR reply) */
    size_t len;
} status_job;

static void status_run(void *arg)
{
    status_job *job = arg;
    vb_error err;
    if (brk_encode_logins(job->s->srv, &job->enc, &err) < 0) {
        vb_enc_dispose(&job->enc);
        vb_log(VB_LOG_WARN, "status: %s", err.message);
        vb_enc_error_reply(&job->req, VB_MSG_REPLY, &err, &job->frame, &job->len, NULL);
        return;
    }
    encode_host_connections(&job->enc);
    if (vb_enc_finish(&job->enc, VB_FRAME_MAX_POSTAUTH, &job->frame, &job->len, &err) < 0)
        vb_enc_error_reply(&job->req, VB_MSG_REPLY, &err, &job->frame, &job->len, NULL);
}

static void status_done(void *arg)
{
    status_job *job = arg;
    brk_session *s = job->s;
    if (s->stream)
        vb_stream_pause(s->stream, 0);
    if (s->stream && job->frame)
        vb_stream_send(s->stream, job->frame, job->len);
    else
        vb_frame_free(job->frame, job->len);
    brk_session_unref(s);
    free(job);
}

static void answer_status(brk_session *s, const vb_msg *msg)
{
    brk_server *srv = s->srv;
    vb_msg_header hdr = reply_header(&msg->hdr);
    vb_error err;
    unsigned nopen = 0;
    status_job *job = calloc(1, sizeof *job);
    if (!job) {
        vb_error_set(&err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
        send_error(s, &msg->hdr, &err);
        return;
    }
    job->s = s;
    job->req = msg->hdr;
    for (brk_session *o = srv->sessions; o; o = o->next)
        nopen += session_is_open(o) ? 1u : 0u;
    vb_enc_begin(&job->enc, &hdr);
    vb_enc_array(&job->enc, 6);
    vb_enc_i64(&job->enc, (int64_t)getpid());
    vb_enc_u64(&job->enc, (vb_now_ms() - srv->started_ms) / 1000);
    vb_enc_u64(&job->enc, srv->nsessions);
    vb_enc_array(&job->enc, nopen);
    for (brk_session *o = srv->sessions; o; o = o->next)
        if (session_is_open(o))
            encode_upstream(&job->enc, o);
    brk_session_ref(s);
    if (vb_lane_submit(srv->store_lane, status_run, status_done, job, &err) < 0) {
        brk_session_unref(s);
        vb_enc_dispose(&job->enc);
        free(job);
        send_error(s, &msg->hdr, &err);
        return;
    }
    vb_stream_pause(s->stream, 1);
}

/* OPEN [uri, flags, cred_types[], auth_priority[], can_prompt, (auth_file), (screen)]
 * LOGIN [... can_prompt, ttl_s, (auth_file), (screen)]; the fields in
 * parentheses come from clients that send them, in this order */
static int read_open(brk_session *s, const vb_msg *msg, enum vb_body body, brk_job *job,
                     vb_error *err)
{
    vb_rd rd, types, prio;
    int can_prompt;
    if (vb_rd_init(&rd, msg->body, err) < 0 || vb_rd_strdup(&rd, URI_MAX, &job->uri, err) < 0 ||
        vb_rd_u32(&rd, &job->flags, err) < 0 || vb_rd_array(&rd, &types, err) < 0)
        return -1;
    s->ncred_types = 0;
    while (vb_rd_has_more(&types) && s->ncred_types < BRK_MAX_CRED_TYPES) {
        uint32_t t;
        if (vb_rd_u32(&types, &t, err) < 0)
            return -1;
        s->cred_types[s->ncred_types++] = (int)t;
    }
    if (vb_rd_array(&rd, &prio, err) < 0)
        return -1;
    for (size_t i = 0; i < s->npriority; i++)
        free(s->priority[i]);
    s->npriority = 0;
    while (vb_rd_has_more(&prio) && s->npriority < BRK_MAX_PRIORITY) {
        if (vb_rd_strdup(&prio, 64, &s->priority[s->npriority], err) < 0)
            return -1;
        if (!s->priority[s->npriority] || !*s->priority[s->npriority]) {
            free(s->priority[s->npriority]);
            s->priority[s->npriority] = NULL;
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_BROKER,
                                "an auth priority entry is empty");
        }
        s->npriority++;
    }
    if (vb_rd_bool(&rd, &can_prompt, err) < 0)
        return -1;
    s->can_prompt = can_prompt;
    if (body == VB_BODY_LOGIN && vb_rd_u64(&rd, &job->ttl_s, err) < 0)
        return -1;
    free(s->client_auth_file);
    s->client_auth_file = NULL;
    if (vb_rd_has_more(&rd) && vb_rd_strdup(&rd, URI_MAX, &s->client_auth_file, err) < 0)
        return -1;
    /* the flag is the broker's to obey, not a driver's to see */
    s->non_interactive = (job->flags & VB_OPEN_NON_INTERACTIVE) != 0;
    job->flags &= ~(uint32_t)VB_OPEN_NON_INTERACTIVE;
    brk_screen_clear(&s->screen);
    if (vb_rd_has_more(&rd) && brk_screen_read(&rd, &s->screen, err) < 0)
        return -1;
    if (!job->uri)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_BROKER, "OPEN needs a URI");
    return 0;
}

static int read_name(brk_session *s, const vb_msg *msg, enum vb_body body, brk_job *job,
                     vb_error *err)
{
    (void)s;
    (void)body;
    vb_rd rd;
    if (vb_rd_init(&rd, msg->body, err) < 0 ||
        vb_rd_strdup(&rd, VB_DOMAIN_NAME_MAX, &job->name, err) < 0)
        return -1;
    if (!job->name)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_BROKER, "no domain name given");
    return 0;
}

/* LOGOUT [uri | nil] */
static int read_logout(brk_session *s, const vb_msg *msg, enum vb_body body, brk_job *job,
                       vb_error *err)
{
    (void)s;
    (void)body;
    vb_rd rd;
    return vb_rd_init(&rd, msg->body, err) < 0 || vb_rd_strdup(&rd, URI_MAX, &job->uri, err) < 0
               ? -1
               : 0;
}

/* The call body's decoder, by the body column of the table; bodies
 * without one ([]) carry nothing the job reads. */
typedef int (*brk_reader)(brk_session *s, const vb_msg *msg, enum vb_body body, brk_job *job,
                          vb_error *err);
static const brk_reader body_readers[VB_BODY_COUNT] = {
    [VB_BODY_BROKER_OPEN] = read_open,
    [VB_BODY_LOGIN] = read_open,
    [VB_BODY_LOGOUT] = read_logout,
    [VB_BODY_NAME] = read_name,
};

static void submit_call(brk_session *s, const vb_msg *msg, const vb_proc_info *info)
{
    vb_error err;
    brk_job *job = calloc(1, sizeof *job);
    if (!job) {
        vb_error_set(&err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
        send_error(s, &msg->hdr, &err);
        return;
    }
    job->hdr = msg->hdr;
    int rc = 0;
    if (s->busy)
        rc = vb_error_set(&err, VB_ERR_OPERATION_INVALID, VB_DOM_BROKER,
                          "a call is already running on this connection; wait for its reply");
    else if (body_readers[info->body])
        rc = body_readers[info->body](s, msg, info->body, job, &err);
    /* CLOSE always succeeds, so it is answered here and now; the worker
     * closes the driver after it, before any later call of this client
     * (its queue keeps the order: a call after CLOSE finds nothing open, as
     * before). Waiting for the host's answer to the close cost the app a
     * round trip over both hops and two thread hand-offs per vb_close.
     * Not with --upstream-idle 0: there the close ends the host connection,
     * and the promise is that the next open logs in anew; answered early,
     * an open right after vb_close could share the connection still being
     * closed. */
    int answer_now = rc == 0 && msg->hdr.procedure == VB_BROKER_PROC_CLOSE &&
                     s->srv->cfg->upstream_idle_ms > 0;
    job->answered = answer_now;
    if (rc == 0 && brk_worker_submit(s, job, &err) == 0) {
        if (answer_now)
            send_empty_reply(s, &msg->hdr);
        else
            s->busy = 1; /* the job's reply clears it */
        return;
    }
    brk_job_free(job);
    send_error(s, &msg->hdr, &err);
}

/* The BROKER procedures answered on the loop (the runs column of
 * proto/vb_protocol.h; a LOOP row without a line here does not compile);
 * WORKER ones go to the session's worker (brk_worker.c), PEER ones are the
 * broker's callbacks, which a client does not call. */
#define BRK_LOOP_STATUS answer_status

typedef void (*brk_loop_fn)(brk_session *s, const vb_msg *msg);
#define BRK_LOOP_ROW_LOOP(name) [VB_BROKER_PROC_##name] = BRK_LOOP_##name,
#define BRK_LOOP_ROW_ASYNC(name)
#define BRK_LOOP_ROW_WORKER(name)
#define BRK_LOOP_ROW_PEER(name)
static const brk_loop_fn broker_loop_procs[] = {
#define VB_X(name, num, auth, runs, login, since, body, max) BRK_LOOP_ROW_##runs(name)
    VB_BROKER_PROCS(VB_X)
#undef VB_X
};

/* A CALL after intake, in the order of docs/protocol.md §5.7: program and
 * procedure (NO_SUPPORT), its size (TOO_LARGE); no gate (the socket is the
 * owner's); then one call at a time (OPERATION_INVALID), the body
 * (PROTOCOL) and, on the worker, the state (NOT_OPEN). */
static void dispatch_call(brk_session *s, const vb_msg *msg)
{
    vb_error err;
    const vb_proc_info *info = msg->hdr.program == VB_PROG_BROKER
                                   ? vb_proto_proc_lookup(VB_PROG_BROKER, msg->hdr.procedure)
                                   : NULL;
    if (!info) {
        vb_error_set(&err, VB_ERR_NO_SUPPORT, VB_DOM_RPC,
                     "procedure %u of program %u is not supported by this broker (vbrokerd %s)",
                     msg->hdr.procedure, msg->hdr.program, VB_VERSION);
        send_error(s, &msg->hdr, &err);
    } else if (vb_msg_check_proc_size(msg, &err) < 0) {
        send_error(s, &msg->hdr, &err);
    } else if (info->runs == VB_RUN_LOOP) { /* every LOOP row has its entry */
        broker_loop_procs[msg->hdr.procedure](s, msg);
    } else if (info->runs == VB_RUN_WORKER) {
        submit_call(s, msg, info);
    } else { /* CRED_REQUEST: the broker's CALLBACK, never a client's CALL */
        vb_error_set(&err, VB_ERR_NO_SUPPORT, VB_DOM_RPC,
                     "procedure %u is not a CALL this broker answers (vbrokerd %s)",
                     msg->hdr.procedure, VB_VERSION);
        send_error(s, &msg->hdr, &err);
    }
}

void brk_dispatch(brk_session *s, vb_msg *msg)
{
    vb_error err;
    uint8_t *frame;
    size_t len;
    switch (vb_msg_server_intake(msg, &err)) {
    case VB_INTAKE_CALL:
        dispatch_call(s, msg);
        break;
    case VB_INTAKE_CALLBACK_REPLY:
        if (msg->hdr.program == VB_PROG_BROKER)
            brk_worker_cred_reply(s, msg);
        break;
    case VB_INTAKE_PING:
        if (vb_enc_pong(&msg->hdr, &frame, &len, NULL) == 0)
            vb_stream_send(s->stream, frame, len);
        break;
    case VB_INTAKE_IGNORE:
        vb_log(VB_LOG_DEBUG, "client %s sent an unexpected %s; ignored", s->peer,
               vb_proto_msg_type_name(msg->hdr.type));
        break;
    case VB_INTAKE_REFUSE:
        send_error(s, &msg->hdr, &err);
        break;
    case VB_INTAKE_REFUSE_CLOSE:
        vb_log(VB_LOG_INFO, "client %s: %s", s->peer, err.message);
        send_error(s, &msg->hdr, &err);
        vb_stream_close_after_flush(s->stream);
        break;
    }
    vb_msg_clear(msg);
}
