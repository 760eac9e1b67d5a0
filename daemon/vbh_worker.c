/* Driver calls off the event loop, and the credential relay.
 *
 * A driver may block: the xenapi driver talks HTTP to a host, and a nested
 * login waits for a person at the top of the chain. So OPEN and the host /
 * domain calls run on a worker (util/vb_worker.h) per conn_id of the
 * transport: calls of one conn_id in order, calls of different conn_ids at
 * the same time (a broker multiplexes several programs' opens over one
 * transport, and one program's pending prompt must not stall another's
 * calls), while the loop keeps serving everyone. When a driver needs
 * credentials, its worker sends a CRED_FILL CALLBACK for its own conn_id and
 * waits for the CALLBACK_REPLY the loop hands over (matched by conn_id and
 * serial), or a timeout, or the client leaving; approve/reject go out as
 * EVENTs. A worker never touches the socket: frames go back through the
 * server's queue. */
#include "vbh.h"

#include <stdlib.h>
#include <string.h>

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
    /* no thread runs for it and no frame of its conn_ids is queued: each
     * held a reference */
    while (c->dconns) {
        vbh_dconn *d = c->dconns;
        c->dconns = d->next;
        free(d);
    }
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

static void post(vbh_dconn *d, uint8_t *frame, size_t len, int job_done)
{
    vbh_client_ref(d->c); /* dropped in deliver, on the loop; it keeps d too */
    vb_offloop_post(d->c->srv->done, d, frame, len, job_done);
}

static void drop_dconn(vbh_client *c, vbh_dconn *d);

static void deliver(void *target, uint8_t *frame, size_t len, int job_done)
{
    vbh_dconn *d = target;
    vbh_client *c = d->c;
    if (job_done && !c->gone) {
        c->ncalls--;
        /* the client waited on us: its keepalive silence starts now */
        c->last_rx_ms = vb_now_ms();
        if (--d->pending == 0 && !d->conn)
            drop_dconn(c, d); /* nothing open, nothing in flight: the id is free */
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
 * while its call that may log in runs on this conn_id's worker (so for that
 * call's conn_id: each id has its own window, and its question carries its
 * id), and only to a client that authenticated: one that proved nothing
 * ("none") is never handed a question it could answer for someone else,
 * nor told what this host's drivers log in to. */
static int relay_allowed(const vbh_dconn *d, vb_error *err)
{
    const vbh_client *c = d->c;
    if (!d->relay_window)
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
    vbh_dconn *d = opaque;
    vbh_client *c = d->c;
    if (relay_allowed(d, err) < 0) {
        vb_log(VB_LOG_WARN, "client %s: not relaying a credential request for %s: %s", c->peer,
               req->service ? req->service : "?", err ? err->message : "");
        return -1;
    }
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALLBACK, 0,
                          VB_HOST_PROC_CRED_FILL, VB_STATUS_OK, d->conn_id };
    hdr.serial = vb_worker_ask_begin(d->worker, req);
    req->id = hdr.serial; /* the verdict names the question by it */
    uint8_t *frame;
    size_t len;
    if (vb_credwire_request_frame(&hdr, req, &frame, &len, err) < 0)
        return -1;
    post(d, frame, len, 0);
    vb_log(VB_LOG_INFO, "client %s: relaying a credential request for %s (connection %u)",
           c->peer, req->service ? req->service : "?", d->conn_id);
    return vb_worker_ask_wait(d->worker, c->srv->cfg->relay_timeout_s, err);
}

/* approve/reject travel as EVENTs naming the question ([service, id]; the
 * service for clients from before ids); the client applies them to the
 * answer it gave (the values never come back over the wire). */
static void relay_verdict(vbh_dconn *d, uint32_t proc, const vb_cred_request *req)
{
    if (relay_allowed(d, NULL) < 0)
        return;
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_EVENT, 0, proc, VB_STATUS_OK,
                          d->conn_id };
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_enc_begin(&enc, &hdr);
    vb_enc_array(&enc, 2);
    vb_enc_str(&enc, req->service);
    vb_enc_u64(&enc, req->id);
    if (vb_enc_finish(&enc, VB_FRAME_MAX_PREAUTH, &frame, &len, NULL) == 0)
        post(d, frame, len, 0);
}

static void relay_approve(void *opaque, const vb_cred_request *req)
{
    relay_verdict(opaque, VB_HOST_PROC_CRED_APPROVE, req);
}

static void relay_reject(void *opaque, const vb_cred_request *req)
{
    relay_verdict(opaque, VB_HOST_PROC_CRED_REJECT, req);
}

void vbh_relay_source(vbh_dconn *d, vb_cred_source *src)
{
    /* what a person at the top can answer; not USERNAME (the SASL
     * authorization id), as libvirt's default: a password login through the
     * chain asks exactly for the auth name and the password */
    static const int every_type[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE, VB_CRED_ECHOPROMPT,
                                      VB_CRED_NOECHOPROMPT, VB_CRED_REALM };
    memset(src, 0, sizeof *src);
    src->fn = relay_fill;
    src->opaque = d;
    src->types = every_type;
    src->ntypes = sizeof every_type / sizeof every_type[0];
    src->approve = relay_approve;
    src->reject = relay_reject;
    /* the relay answers for this authenticated client only: a session
     * kept at its close is this identity's (and needs its password again) */
    const vbh_client *c = d->c;
    if (c->authenticated && c->auth_type && strcmp(c->auth_type, "none") != 0 &&
        snprintf(d->keep_owner, sizeof d->keep_owner, "%s:%s", c->auth_type, c->identity) <
            (int)sizeof d->keep_owner)
        src->keep_owner = d->keep_owner;
}

static vbh_dconn *find_dconn(vbh_client *c, uint32_t conn_id)
{
    for (vbh_dconn *d = c->dconns; d; d = d->next)
        if (d->conn_id == conn_id)
            return d;
    return NULL;
}

int vbh_worker_takes(vbh_client *c, const vb_msg *msg)
{
    return msg->hdr.procedure == VB_HOST_PROC_OPEN || c->ncalls >= VBH_MAX_CALLS_PER_CLIENT ||
           find_dconn(c, msg->hdr.conn_id) != NULL;
}

/* Loop thread: the client answered a CRED_FILL; only the worker of the
 * answer's conn_id may take it, and only for the serial it asked with. */
void vbh_worker_cred_reply(vbh_client *c, const vb_msg *msg)
{
    vbh_dconn *d = find_dconn(c, msg->hdr.conn_id);
    if (msg->hdr.procedure != VB_HOST_PROC_CRED_FILL || !d || vb_worker_answer(d->worker, msg) < 0)
        vb_log(VB_LOG_DEBUG, "client %s answered a credential request nobody asked (connection "
                             "%u); ignored",
               c->peer, msg->hdr.conn_id);
}

/* ---- the workers, one per conn_id ------------------------------------------------ */

typedef struct vbh_job {
    vb_worker_job link;         /* first: the worker's queue */
    vbh_dconn *d;
    vb_msg msg;
    vbh_handler handler;        /* NULL: the client left, close d's connection */
} vbh_job;

/* The conn_id whose call this thread runs, for the handlers (their
 * signature is the dispatch table's, the same for loop and worker calls):
 * a worker thread runs one conn_id's calls, one at a time. */
static _Thread_local vbh_dconn *running;

vbh_dconn *vbh_worker_dconn(void)
{
    return running;
}

static void run_call(vbh_dconn *d, vbh_job *job)
{
    uint8_t *frame;
    size_t len;
    running = d;
    d->relay_window = job->msg.hdr.program == VB_PROG_HOST &&
                      vb_proto_host_proc_may_log_in(job->msg.hdr.procedure);
    vbh_build_reply(d->c, &job->msg, job->handler, &frame, &len);
    d->relay_window = 0;
    running = NULL;
    vb_msg_clear(&job->msg);
    /* last: once the loop has this, it may drop d (no call in flight) */
    post(d, frame, len, 1);
}

static void run_job(vb_worker_job *link)
{
    vbh_job *job = (vbh_job *)link;
    vbh_client *c = job->d->c;
    if (job->handler)
        run_call(job->d, job);
    else
        vbh_dconn_close_driver(job->d);
    free(job);
    vbh_client_unref(c); /* the job's */
}

/* Hand job to d's worker, with a reference on the client for it (which
 * keeps d too); last: the client left, this is the worker's last job. */
static int queue_job(vbh_dconn *d, vbh_job *job, int last, vb_error *err)
{
    job->d = d;
    vbh_client_ref(d->c);
    int rc = last ? vb_worker_finish(d->worker, &job->link, err)
                  : vb_worker_submit(d->worker, &job->link, err);
    if (rc < 0)
        vbh_client_unref(d->c);
    return rc;
}

/* The worker of conn_id, made at the id's OPEN. */
static vbh_dconn *dconn_for(vbh_client *c, uint32_t conn_id, vb_error *err)
{
    vbh_dconn *d = find_dconn(c, conn_id);
    if (d)
        return d;
    if (c->ndconns >= VBH_MAX_CONNS_PER_CLIENT) {
        vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                     "too many hypervisor connections on this transport");
        return NULL;
    }
    d = calloc(1, sizeof *d);
    if (!d) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
        return NULL;
    }
    d->c = c;
    d->conn_id = conn_id;
    d->worker = vb_worker_new(run_job, VBH_WORKER_IDLE_MS, &c->serials, VB_DOM_DAEMON, err);
    if (!d->worker) {
        free(d);
        return NULL;
    }
    d->next = c->dconns;
    c->dconns = d;
    c->ndconns++;
    return d;
}

/* Loop: forget d (nothing open under it, nothing in flight). */
static void drop_dconn(vbh_client *c, vbh_dconn *d)
{
    for (vbh_dconn **pp = &c->dconns; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    c->ndconns--;
    vb_worker_finish(d->worker, NULL, NULL);
    free(d);
}

int vbh_worker_submit(vbh_client *c, vb_msg *msg, vbh_handler handler, vb_error *err)
{
    if (c->ncalls >= VBH_MAX_CALLS_PER_CLIENT)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                            "%u calls are already running or queued on this connection; wait "
                            "for their replies",
                            c->ncalls);
    /* dispatch answers a call on an id with nothing open itself
     * (vbh_worker_takes), so only OPEN creates an id here */
    vbh_dconn *d = dconn_for(c, msg->hdr.conn_id, err);
    if (!d)
        return -1;
    vbh_job *job = calloc(1, sizeof *job);
    if (job) {
        job->msg = *msg; /* moved: the caller must not clear it */
        job->handler = handler;
        if (queue_job(d, job, 0, err) == 0) {
            memset(msg, 0, sizeof *msg);
            d->pending++;
            c->ncalls++;
            return 0;
        }
        free(job); /* msg stays the caller's */
    } else {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
    }
    if (!d->pending && !d->conn)
        drop_dconn(c, d);
    return -1;
}

/* The client left: each conn_id's worker ends; one with a connection open,
 * or a call still in flight (which may open one), closes it as its last
 * job. The others go at once, with no thread started for them. */
void vbh_worker_cancel(vbh_client *c)
{
    for (vbh_dconn *d = c->dconns; d; d = d->next) {
        if (!d->pending && !d->conn) {
            vb_worker_finish(d->worker, NULL, NULL);
            continue;
        }
        vb_error err;
        vbh_job *close = calloc(1, sizeof *close);
        if (!close) {
            vb_error_set(&err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
            vb_worker_finish(d->worker, NULL, NULL);
        } else if (queue_job(d, close, 1, &err) == 0) {
            continue;
        } else {
            free(close);
        }
        vb_log(VB_LOG_ERROR, "client %s: %s; its hypervisor connection %u stays open", c->peer,
               err.message, d->conn_id);
    }
}
