#include "vb_offloop.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vb_credwire.h"

typedef struct posted {
    void *target;
    uint8_t *frame;
    size_t len;
    int job_done;
    struct posted *next;
} posted;

struct vb_offloop {
    int wake_fd;
    pthread_mutex_t lock;
    posted *head, *tail;
    vb_offloop_deliver_fn deliver;
};

static void deliver_all(vb_offloop *q)
{
    pthread_mutex_lock(&q->lock);
    posted *list = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->lock);
    while (list) {
        posted *p = list;
        list = p->next;
        q->deliver(p->target, p->frame, p->len, p->job_done);
        free(p);
    }
}

static void on_wake(vb_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    uint64_t count;
    ssize_t n = read(fd, &count, sizeof count);
    (void)n;
    deliver_all(data);
}

void vb_offloop_free(vb_offloop *q, vb_loop *loop)
{
    if (!q)
        return;
    deliver_all(q);
    vb_loop_del_fd(loop, q->wake_fd);
    close(q->wake_fd);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

vb_offloop *vb_offloop_new(vb_loop *loop, vb_offloop_deliver_fn deliver, vb_error *err)
{
    vb_offloop *q = calloc(1, sizeof *q);
    if (!q) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SYSTEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&q->lock, NULL);
    q->deliver = deliver;
    q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->wake_fd < 0 || vb_loop_add_fd(loop, q->wake_fd, VB_LOOP_READ, on_wake, q, err) < 0) {
        if (q->wake_fd < 0)
            vb_error_set_errno(err, errno, VB_DOM_SYSTEM, "eventfd");
        else
            close(q->wake_fd);
        free(q);
        return NULL;
    }
    return q;
}

void vb_offloop_post(vb_offloop *q, void *target, uint8_t *frame, size_t len, int job_done)
{
    posted *p = calloc(1, sizeof *p);
    if (!p) {
        /* out of memory: the frame is lost and the target's reference with
         * it (it leaks rather than be released on the wrong thread) */
        vb_frame_free(frame, len);
        return;
    }
    p->target = target;
    p->frame = frame;
    p->len = len;
    p->job_done = job_done;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    pthread_mutex_unlock(&q->lock);
    uint64_t one = 1;
    ssize_t n = write(q->wake_fd, &one, sizeof one);
    (void)n;
}

#define WORKER_STACK_BYTES (512u * 1024u)

static int start_thread(pthread_t *thread, int detached, void *(*fn)(void *), void *arg,
                        int domain, vb_error *err)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (detached)
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
    int rc = pthread_create(thread, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return vb_error_set(err, VB_ERR_SYSTEM, domain, "cannot start a worker: %s", strerror(rc));
    return 0;
}

int vb_offloop_start_worker(void *(*fn)(void *), void *arg, int domain, vb_error *err)
{
    pthread_t thread;
    return start_thread(&thread, 1, fn, arg, domain, err);
}

/* ---- lanes ------------------------------------------------------------------ */

typedef struct lane_task {
    vb_lane_fn run, done;
    void *task;
    struct lane_task *next;
} lane_task;

struct vb_lane {
    vb_offloop *finished;       /* ran tasks, back to the loop in order */
    int domain;                 /* for error messages */
    pthread_mutex_t lock;       /* the queue and the flags below */
    pthread_cond_t cond;
    lane_task *head, *tail;
    int stopping, has_thread;
    pthread_t thread;
};

static void lane_deliver(void *target, uint8_t *frame, size_t len, int job_done)
{
    (void)frame;
    (void)len;
    (void)job_done;
    lane_task *t = target;
    if (t->done)
        t->done(t->task);
    free(t);
}

static void *lane_main(void *arg)
{
    vb_lane *l = arg;
    pthread_mutex_lock(&l->lock);
    for (;;) {
        while (!l->head && !l->stopping)
            pthread_cond_wait(&l->cond, &l->lock);
        lane_task *t = l->head;
        if (!t)
            break; /* stopping, and nothing left */
        l->head = t->next;
        if (!l->head)
            l->tail = NULL;
        pthread_mutex_unlock(&l->lock);
        t->run(t->task);
        vb_offloop_post(l->finished, t, NULL, 0, 1);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

vb_lane *vb_lane_new(vb_loop *loop, int domain, vb_error *err)
{
    vb_lane *l = calloc(1, sizeof *l);
    if (!l) {
        vb_error_set(err, VB_ERR_NO_MEMORY, domain, "out of memory");
        return NULL;
    }
    if (!(l->finished = vb_offloop_new(loop, lane_deliver, err))) {
        free(l);
        return NULL;
    }
    l->domain = domain;
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    return l;
}

int vb_lane_submit(vb_lane *l, vb_lane_fn run, vb_lane_fn done, void *task, vb_error *err)
{
    lane_task *t = calloc(1, sizeof *t);
    if (!t)
        return vb_error_set(err, VB_ERR_NO_MEMORY, l->domain, "out of memory");
    t->run = run;
    t->done = done;
    t->task = task;
    pthread_mutex_lock(&l->lock);
    if (l->stopping) { /* a done that asks for more while the lane is freed */
        pthread_mutex_unlock(&l->lock);
        free(t);
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, l->domain, "shutting down");
    }
    if (!l->has_thread) {
        if (start_thread(&l->thread, 0, lane_main, l, l->domain, err) < 0) {
            pthread_mutex_unlock(&l->lock);
            free(t);
            return -1;
        }
        l->has_thread = 1;
    }
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    return 0;
}

void vb_lane_free(vb_lane *l, vb_loop *loop)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    pthread_cond_signal(&l->cond);
    int joined = l->has_thread;
    pthread_mutex_unlock(&l->lock);
    if (joined)
        pthread_join(l->thread, NULL);
    vb_offloop_free(l->finished, loop);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    free(l);
}

void vb_credwait_init(vb_credwait *w, pthread_mutex_t *mutex, pthread_cond_t *cond)
{
    memset(w, 0, sizeof *w);
    w->mutex = mutex;
    w->cond = cond;
}

void vb_credwait_share_serials(vb_credwait *w, vb_credwait_serials *shared)
{
    w->shared = shared;
}

uint32_t vb_credwait_begin(vb_credwait *w, vb_cred_request *req)
{
    pthread_mutex_lock(w->mutex);
    w->serial = w->shared ? atomic_fetch_add(&w->shared->last, 1) + 1 : ++w->next_serial;
    w->req = req;
    w->done = 0;
    w->waiting = 1;
    vb_credwait_clear(w);
    uint32_t serial = w->serial;
    pthread_mutex_unlock(w->mutex);
    return serial;
}

int vb_credwait_wait(vb_credwait *w, const int *closing, unsigned timeout_s, vb_error *err)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_s;
    int rc = 0, result;
    const char *service = w->req && w->req->service ? w->req->service : "a login";
    pthread_mutex_lock(w->mutex);
    while (!w->done && !*closing && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(w->cond, w->mutex, &deadline);
    w->waiting = 0;
    w->req = NULL;
    if (w->done && !w->refused)
        result = 0;
    else if (w->done && w->refusal)
        result = -1, vb_error_copy(err, w->refusal);
    else if (w->done)
        result = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_RPC,
                              "out of memory keeping the client's refusal to give credentials for %s",
                              service);
    else if (*closing)
        result = vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_RPC,
                              "the client left while being asked for credentials for %s", service);
    else
        result = vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_RPC,
                              "no answer to the credential request for %s within %u s", service,
                              timeout_s);
    vb_credwait_clear(w);
    pthread_mutex_unlock(w->mutex);
    return result;
}

/* mutex held. Most clients answer: only a refusal costs its 520 bytes.
 * Out of memory, the waiter still hears that the client refused. */
static void keep_refusal(vb_credwait *w, const vb_error *why)
{
    w->refused = 1;
    w->refusal = malloc(sizeof *w->refusal);
    if (w->refusal)
        vb_error_copy(w->refusal, why);
}

int vb_credwait_answer(vb_credwait *w, const vb_msg *msg)
{
    pthread_mutex_lock(w->mutex);
    if (!w->waiting || w->done || msg->hdr.serial != w->serial) {
        pthread_mutex_unlock(w->mutex);
        return -1;
    }
    vb_error err;
    if (msg->hdr.status == VB_STATUS_ERROR) {
        vb_reply_error(msg, &err); /* code OK is PROTOCOL: never "answered" */
        keep_refusal(w, &err);
    } else if (vb_credwire_decode_answer(msg->body, w->req, &err) < 0) {
        keep_refusal(w, &err);
    }
    w->done = 1;
    pthread_cond_broadcast(w->cond);
    pthread_mutex_unlock(w->mutex);
    return 0;
}

/* mutex held, or the owner alone (teardown). */
void vb_credwait_clear(vb_credwait *w)
{
    free(w->refusal);
    w->refusal = NULL;
    w->refused = 0;
}
