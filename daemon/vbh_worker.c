/* Driver calls off the event loop, and the credential relay.
 *
 * A driver may block: the xenapi driver talks HTTP to a host, and a nested
 * login waits for a person at the top of the chain. So OPEN and the host /
 * domain calls of a client run on that client's worker thread (created at
 * its first driver call), while the loop keeps serving everyone else. When a
 * driver needs credentials, the worker sends a CRED_FILL CALLBACK to the
 * client and waits for the CALLBACK_REPLY the loop hands over (or a
 * timeout, or the client leaving); approve/reject go out as EVENTs. A worker
 * never touches the socket: frames go back through the server's queue. */
#include "vbh.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vb_credwire.h"
#include "vb_log.h"


void vbh_client_unref(vbh_client *c)
{
    vbh_server *srv = c->srv;
    pthread_mutex_lock(&srv->lock);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&srv->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&c->wmutex);
    pthread_cond_destroy(&c->wcond);
    explicit_bzero(c, sizeof *c); /* token nonces, identity */
    free(c);
}

void vbh_client_ref(vbh_client *c)
{
    pthread_mutex_lock(&c->srv->lock);
    c->refs++;
    pthread_mutex_unlock(&c->srv->lock);
}

/* ---- frames back to the loop ----------------------------------------------- */

static void post(vbh_client *c, uint8_t *frame, size_t len, int job_done)
{
    vbh_client_ref(c); /* dropped in deliver, on the loop */
    vb_offloop_post(c->srv->done, c, frame, len, job_done);
}

static void deliver(void *target, uint8_t *frame, size_t len, int job_done)
{
    vbh_client *c = target;
    if (job_done) {
        c->busy = 0;
        /* the client waited on us: its keepalive silence starts now */
        c->last_rx_ms = vb_now_ms();
    }
    if (!c->gone && frame)
        vb_stream_send(c->stream, frame, len);
    else
        vb_frame_free(frame, len);
    vbh_client_unref(c);
}

int vbh_worker_start(vbh_server *srv, vb_error *err)
{
    pthread_mutex_init(&srv->lock, NULL);
    srv->done = vb_offloop_new(srv->loop, deliver, err);
    return srv->done ? 0 : -1;
}

/* ---- the relay: this client answers its drivers' questions -------------------- */

/* The rule (docs/protocol.md 9.12): a question goes to the client only
 * while its call that may log in runs on this worker (so for that call's
 * conn_id), and only to a client that authenticated: one that proved
 * nothing ("none") is never handed a question it could answer for
 * someone else, nor told what this host's drivers log in to. */
static int relay_allowed(const vbh_client *c, vb_error *err)
{
    if (!c->relay_window)
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_DAEMON,
                            "a credential question outside a call that may log in is not relayed");
    if (!c->authenticated || !c->auth_type || strcmp(c->auth_type, "none") == 0)
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_DAEMON,
                            "credentials required, and this client did not authenticate: "
                            "questions are relayed only to authenticated clients");
    return 0;
}

static int relay_fill(vb_cred_request *req, void *opaque, vb_error *err)
{
    vbh_client *c = opaque;
    if (relay_allowed(c, err) < 0) {
        vb_log(VB_LOG_WARN, "client %s: not relaying a credential request for %s: %s", c->peer,
               req->service ? req->service : "?", err ? err->message : "");
        return -1;
    }
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALLBACK, 0,
                          VB_HOST_PROC_CRED_FILL, VB_STATUS_OK, c->cur_conn_id };
    hdr.serial = vb_credwait_begin(&c->creds_wait, req);
    req->id = hdr.serial; /* the verdict names the question by it */
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_enc_begin(&enc, &hdr);
    vb_credwire_encode_request(&enc, req);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, err) < 0)
        return -1;
    post(c, frame, len, 0);
    vb_log(VB_LOG_INFO, "client %s: relaying a credential request for %s", c->peer,
           req->service ? req->service : "?");
    return vb_credwait_wait(&c->creds_wait, &c->closing, c->srv->cfg->relay_timeout_s, err);
}

/* approve/reject travel as EVENTs naming the question ([service, id]; the
 * service for clients from before ids); the client applies them to the
 * answer it gave (the values never come back over the wire). */
static void relay_verdict(vbh_client *c, uint32_t proc, const vb_cred_request *req)
{
    if (relay_allowed(c, NULL) < 0)
        return;
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_EVENT, 0, proc, VB_STATUS_OK,
                          c->cur_conn_id };
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 2);
    vb_enc_str(&enc, req->service);
    vb_enc_u64(&enc, req->id);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, NULL) == 0)
        post(c, frame, len, 0);
}

static void relay_approve(void *opaque, const vb_cred_request *req)
{
    relay_verdict(opaque, VB_HOST_PROC_CRED_APPROVE, req);
}

static void relay_reject(void *opaque, const vb_cred_request *req)
{
    relay_verdict(opaque, VB_HOST_PROC_CRED_REJECT, req);
}

void vbh_relay_source(vbh_client *c, vb_cred_source *src)
{
    /* what a person at the top can answer; not USERNAME (the SASL
     * authorization id), as libvirt's default: a password login through the
     * chain asks exactly for the auth name and the password */
    static const int every_type[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE, VB_CRED_ECHOPROMPT,
                                      VB_CRED_NOECHOPROMPT, VB_CRED_REALM };
    memset(src, 0, sizeof *src);
    src->fn = relay_fill;
    src->opaque = c;
    src->types = every_type;
    src->ntypes = sizeof every_type / sizeof every_type[0];
    src->approve = relay_approve;
    src->reject = relay_reject;
}

/* Loop thread: the client answered a CRED_FILL. */
void vbh_worker_cred_reply(vbh_client *c, const vb_msg *msg)
{
    if (msg->hdr.procedure != VB_HOST_PROC_CRED_FILL || vb_credwait_answer(&c->creds_wait, msg) < 0)
        vb_log(VB_LOG_DEBUG, "client %s answered a credential request nobody asked; ignored",
               c->peer);
}

/* ---- the worker thread -------------------------------------------------------------- */

typedef struct vbh_job {
    vb_msg msg;
    vbh_handler handler;
} vbh_job;

static void *worker_main(void *arg)
{
    vbh_client *c = arg;
    pthread_mutex_lock(&c->wmutex);
    for (;;) {
        while (!c->job && !c->closing)
            pthread_cond_wait(&c->wcond, &c->wmutex);
        vbh_job *job = (vbh_job *)c->job;
        c->job = NULL;
        if (!job)
            break;
        pthread_mutex_unlock(&c->wmutex);
        uint8_t *frame;
        size_t len;
        c->cur_conn_id = job->msg.hdr.conn_id; /* the worker's own: the loop never reads it */
        c->relay_window = job->msg.hdr.program == VB_PROG_HOST &&
                          vb_proto_host_proc_may_log_in(job->msg.hdr.procedure);
        vbh_build_reply(c, &job->msg, job->handler, &frame, &len);
        c->relay_window = 0;
        if (frame)
            post(c, frame, len, 1);
        vb_msg_clear(&job->msg);
        free(job);
        pthread_mutex_lock(&c->wmutex);
    }
    pthread_mutex_unlock(&c->wmutex);
    vbh_client_close_driver(c);
    vbh_client_unref(c);
    return NULL;
}

int vbh_worker_submit(vbh_client *c, vb_msg *msg, vbh_handler handler, vb_error *err)
{
    if (c->busy)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                            "a call is already running on this connection; wait for its reply");
    vbh_job *job = calloc(1, sizeof *job);
    if (!job)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
    pthread_mutex_lock(&c->wmutex);
    if (!c->has_worker) {
        vbh_client_ref(c); /* the worker's; it drops it when it exits */
        if (vb_offloop_start_worker(worker_main, c, VB_DOM_DAEMON, err) < 0) {
            pthread_mutex_unlock(&c->wmutex);
            vbh_client_unref(c);
            free(job);
            return -1;
        }
        c->has_worker = 1;
    }
    job->msg = *msg; /* moved: the caller must not clear it */
    memset(msg, 0, sizeof *msg);
    job->handler = handler;
    c->job = (vb_msg *)job;
    c->busy = 1;
    pthread_cond_broadcast(&c->wcond);
    pthread_mutex_unlock(&c->wmutex);
    return 0;
}

void vbh_worker_cancel(vbh_client *c)
{
    pthread_mutex_lock(&c->wmutex);
    c->closing = 1;
    pthread_cond_broadcast(&c->wcond);
    pthread_mutex_unlock(&c->wmutex);
}
