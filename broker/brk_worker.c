/* Per-session worker threads: driver calls, and the broker's credential
 * source (auth.conf → the app's callback through the thin client → a clear
 * "credentials required" error when the app cannot prompt). */
#include "brk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_bodies.h"
#include "vb_credwire.h"
#include "vb_log.h"


void brk_job_free(brk_job *job)
{
    if (!job)
        return;
    free(job->uri);
    free(job->name);
    free(job);
}

/* ---- replies --------------------------------------------------------------- */

void brk_post_reply(brk_session *s, const brk_job *job, int rc, brk_body_fn body, const void *arg,
                    const vb_error *failure)
{
    uint8_t *frame = NULL;
    size_t len = 0;
    vb_error err;
    if (rc == 0) {
        vb_msg_header hdr = job->hdr;
        hdr.type = VB_MSG_REPLY;
        hdr.version = VB_PROG_BROKER_VERSION;
        vb_enc enc;
        vb_enc_begin(&enc, &hdr);
        if (body)
            body(&enc, arg);
        else
            vb_enc_array(&enc, 0);
        if (vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, &err) < 0)
            rc = -1, failure = &err;
    }
    if (rc < 0)
        vb_enc_error_reply(&job->hdr, VB_MSG_REPLY, failure, &frame, &len, NULL);
    brk_post(s, frame, len, 1);
}

typedef struct domain_list {
    const vb_domain_info *doms;
    size_t n;
} domain_list;

static void body_domains(vb_enc *enc, const void *arg)
{
    const domain_list *l = arg;
    vb_driver_encode_domains(enc, l->doms, l->n);
}

/* ---- the credential source ---------------------------------------------------- */

/* Post the CRED_REQUEST callback and wait for the loop to deliver the answer. */
int brk_ask_client(brk_session *s, vb_cred_request *req, vb_error *err)
{
    vb_msg_header hdr = { VB_PROG_BROKER, VB_PROG_BROKER_VERSION, VB_MSG_CALLBACK, 0,
                          VB_BROKER_PROC_CRED_REQUEST, VB_STATUS_OK, 0 };
    /* the app sees the question with every text a hop supplied escaped
     * (bidi overrides, separators, controls: docs/security.md 6); the
     * answers come back into req itself, item by item */
    vb_cred_request shown;
    if (vb_cred_request_copy(&shown, req) < 0 || vb_cred_request_escape(&shown) < 0)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
    hdr.serial = vb_worker_ask_begin(s->worker, req);
    shown.id = hdr.serial;
    uint8_t *frame;
    size_t len;
    int rc = vb_credwire_request_frame(&hdr, &shown, &frame, &len, err);
    vb_cred_request_clear(&shown);
    if (rc < 0)
        return -1;
    brk_post(s, frame, len, 0);
    return vb_worker_ask_wait(s->worker, s->srv->cfg->prompt_timeout_s, err);
}

/* Loop thread: the client answered (or refused) a CRED_REQUEST. */
void brk_worker_cred_reply(brk_session *s, const vb_msg *msg)
{
    if (vb_worker_answer(s->worker, msg) < 0)
        vb_log(VB_LOG_DEBUG, "client %s answered a credential request nobody asked; ignored",
               s->peer);
}

/* ---- driver calls ---------------------------------------------------------------- */

static int job_open(brk_session *s, const brk_job *job, vb_error *err)
{
    if (s->drv_conn)
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_BROKER,
                            "this connection is already open");
    vb_uri uri;
    memset(&uri, 0, sizeof uri);
    if (vb_uri_parse(job->uri, &uri, err) < 0)
        return -1;
    free(s->cred_uri);
    s->cred_uri = strdup(job->uri);
    int types[BRK_MAX_CRED_TYPES + 3];
    vb_cred_source src;
    brk_creds_source(s, &src, types, sizeof types / sizeof types[0], 1);
    void *conn = NULL;
    const vb_driver *drv = vb_driver_for_uri(&uri, err);
    int rc = drv ? drv->open(&uri, job->flags, &src, &conn, err) : -1;
    vb_uri_clear(&uri);
    pthread_mutex_lock(&s->mutex);
    if (rc == 0) {
        free(s->uri);
        s->uri = strdup(job->uri);
        s->drv = drv;
        s->drv_conn = conn;
        s->read_only = (job->flags & VB_OPEN_READ_ONLY) != 0;
        vb_driver_describe(drv, conn, &s->info);
    }
    pthread_mutex_unlock(&s->mutex);
    if (rc == 0)
        vb_log(VB_LOG_INFO, "client %s opened %s (auth %s%s%s)", s->peer, job->uri,
               s->info.auth_type, s->info.sasl_mech[0] ? " " : "", s->info.sasl_mech);
    return rc;
}

static void close_driver(brk_session *s)
{
    pthread_mutex_lock(&s->mutex);
    const vb_driver *drv = s->drv;
    void *conn = s->drv_conn;
    s->drv = NULL;
    s->drv_conn = NULL;
    free(s->uri);
    s->uri = NULL;
    pthread_mutex_unlock(&s->mutex);
    if (drv && conn)
        drv->close(conn);
}

static int need_open(brk_session *s, vb_error *err)
{
    if (!s->drv_conn)
        return vb_error_set(err, VB_ERR_NOT_OPEN, VB_DOM_BROKER,
                            "no connection is open: call vb_open_auth first");
    return 0;
}

static void run_open(brk_session *s, const brk_job *job)
{
    vb_error err;
    vb_error_clear(&err);
    brk_post_reply(s, job, job_open(s, job, &err), NULL, NULL, &err);
}

static void run_close(brk_session *s, const brk_job *job)
{
    close_driver(s);
    if (!job->answered)
        brk_post_reply(s, job, 0, NULL, NULL, NULL);
}

static void run_get_hostname(brk_session *s, const brk_job *job)
{
    vb_error err;
    char *host = NULL;
    int rc = need_open(s, &err) < 0 ? -1 : s->drv->get_hostname(s->drv_conn, &host, &err);
    brk_post_reply(s, job, rc, vb_body_pack_str, host, &err);
    free(host);
}

static void run_list_domains(brk_session *s, const brk_job *job)
{
    vb_error err;
    domain_list l = { NULL, 0 };
    vb_domain_info *doms = NULL;
    int rc = need_open(s, &err) < 0 ? -1 : s->drv->list_domains(s->drv_conn, &doms, &l.n, &err);
    l.doms = doms;
    brk_post_reply(s, job, rc, body_domains, &l, &err);
    free(doms);
}

static void run_domain_op(brk_session *s, const brk_job *job, int start)
{
    vb_error err;
    int rc = need_open(s, &err);
    if (rc == 0 && s->read_only) /* local drivers leave this to their host */
        rc = vb_error_set(&err, VB_ERR_READ_ONLY, VB_DOM_BROKER,
                          "this connection was opened read-only");
    if (rc == 0)
        rc = start ? s->drv->domain_start(s->drv_conn, job->name, &err)
                   : s->drv->domain_shutdown(s->drv_conn, job->name, &err);
    brk_post_reply(s, job, rc, NULL, NULL, &err);
}

static void run_domain_start(brk_session *s, const brk_job *job)
{
    run_domain_op(s, job, 1);
}

static void run_domain_shutdown(brk_session *s, const brk_job *job)
{
    run_domain_op(s, job, 0);
}

/* The job of every BROKER procedure that runs on the worker (the runs column
 * of proto/vb_protocol.h): a WORKER row without a line here does not compile.
 * The driver calls forward to the session's driver, the remote driver to the
 * HOST procedure with the same body. */
#define BRK_JOB_OPEN            run_open
#define BRK_JOB_CLOSE           run_close
#define BRK_JOB_GET_HOSTNAME    run_get_hostname
#define BRK_JOB_LIST_DOMAINS    run_list_domains
#define BRK_JOB_DOMAIN_START    run_domain_start
#define BRK_JOB_DOMAIN_SHUTDOWN run_domain_shutdown
#define BRK_JOB_LOGIN           brk_job_login
#define BRK_JOB_LOGOUT          brk_job_logout

typedef void (*brk_job_fn)(brk_session *s, const brk_job *job);
#define BRK_JOB_ROW_WORKER(name) [VB_BROKER_PROC_##name] = BRK_JOB_##name,
#define BRK_JOB_ROW_LOOP(name)
#define BRK_JOB_ROW_ASYNC(name)
#define BRK_JOB_ROW_PEER(name)
static const brk_job_fn broker_jobs[] = {
#define VB_X(name, num, auth, runs, login, since, body, max) BRK_JOB_ROW_##runs(name)
    VB_BROKER_PROCS(VB_X)
#undef VB_X
};

/* brk_dispatch submits only WORKER procedures, so there is a job for each */
static void run_call(brk_session *s, const brk_job *job)
{
    uint32_t proc = job->hdr.procedure;
    if (proc < sizeof broker_jobs / sizeof broker_jobs[0] && broker_jobs[proc])
        broker_jobs[proc](s, job);
}

/* ---- the session's worker (util/vb_worker.h) ------------------------------------ */

static void run_job(vb_worker_job *link)
{
    brk_job *job = (brk_job *)link;
    brk_session *s = job->s;
    if (job->close)
        close_driver(s);
    else
        run_call(s, job);
    brk_job_free(job);
    brk_session_unref(s);
}

int brk_worker_new(brk_session *s, vb_error *err)
{
    s->worker = vb_worker_new(run_job, BRK_WORKER_IDLE_MS, NULL, VB_DOM_BROKER, err);
    return s->worker ? 0 : -1;
}

/* The job's reference on s keeps the session alive until its job is done. */
static int queue_job(brk_session *s, brk_job *job, int last, vb_error *err)
{
    job->s = s;
    brk_session_ref(s);
    int rc = last ? vb_worker_finish(s->worker, &job->link, err)
                  : vb_worker_submit(s->worker, &job->link, err);
    if (rc < 0)
        brk_session_unref(s);
    return rc;
}

int brk_worker_submit(brk_session *s, brk_job *job, vb_error *err)
{
    return queue_job(s, job, 0, err);
}

int brk_session_left(brk_session *s)
{
    return vb_worker_closing(s->worker);
}

/* Closing a host connection blocks (a logout, a thread join): it is the
 * worker's last job. Nothing to close needs no job, and no thread: no call
 * is queued or running (busy) and none left a driver open. */
void brk_worker_cancel(brk_session *s)
{
    vb_error err;
    pthread_mutex_lock(&s->mutex);
    int need_close = s->busy || s->drv_conn != NULL;
    pthread_mutex_unlock(&s->mutex);
    if (!need_close) {
        vb_worker_finish(s->worker, NULL, NULL);
        return;
    }
    brk_job *close = calloc(1, sizeof *close);
    if (!close) {
        vb_error_set(&err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
        vb_worker_finish(s->worker, NULL, NULL);
    } else {
        close->close = 1;
        if (queue_job(s, close, 1, &err) == 0)
            return;
        free(close);
    }
    vb_log(VB_LOG_ERROR, "client %s: %s; its host connection stays open", s->peer, err.message);
}
