#include "vb_worker.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

struct vb_worker {
    vb_worker_run_fn run;
    unsigned idle_ms;
    int domain;
    pthread_mutex_t mutex;      /* everything below; also the question's lock */
    pthread_cond_t cond;        /* a job came, the client left, an answer came */
    vb_worker_job *head, *tail;
    int has_thread;
    int closing;
    int refs;                   /* the loop's handle (until finish) + a running thread */
    vb_credwait ask;
};

vb_worker *vb_worker_new(vb_worker_run_fn run, unsigned idle_ms, vb_credwait_serials *serials,
                         int domain, vb_error *err)
{
    vb_worker *w = calloc(1, sizeof *w);
    if (!w) {
        vb_error_set(err, VB_ERR_NO_MEMORY, domain, "out of memory");
        return NULL;
    }
    w->run = run;
    w->idle_ms = idle_ms;
    w->domain = domain;
    w->refs = 1;
    pthread_mutex_init(&w->mutex, NULL);
    pthread_cond_init(&w->cond, NULL);
    vb_credwait_init(&w->ask, &w->mutex, &w->cond);
    if (serials)
        vb_credwait_share_serials(&w->ask, serials);
    return w;
}

static void worker_free(vb_worker *w)
{
    vb_credwait_clear(&w->ask);
    pthread_mutex_destroy(&w->mutex);
    pthread_cond_destroy(&w->cond);
    free(w);
}

struct timespec vb_worker_deadline(uint64_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t); /* the clock of a default condvar */
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* mutex held: the next job, or NULL when the thread should leave (the
 * client left and the queue is empty, or idle_ms passed without a job). */
static vb_worker_job *next_job(vb_worker *w)
{
    struct timespec until = vb_worker_deadline(w->idle_ms);
    while (!w->head && !w->closing) {
        int rc = w->idle_ms ? pthread_cond_timedwait(&w->cond, &w->mutex, &until)
                            : pthread_cond_wait(&w->cond, &w->mutex);
        if (rc == ETIMEDOUT && !w->head)
            return NULL;
    }
    vb_worker_job *job = w->head;
    if (job) {
        w->head = job->next;
        if (!w->head)
            w->tail = NULL;
        job->next = NULL;
    }
    return job;
}

/* ---- parked threads ------------------------------------------------------------
 * A thread whose worker's client left does not end at once: it parks here
 * for POOL_IDLE_MS, and the next worker that needs a thread takes it instead
 * of starting one. A warm open through the broker is a new session (a new
 * worker) and, in vbhostd, a new conn_id (another): starting a thread and
 * ending it (glibc gives its stack back with madvise, a TLB shootdown on
 * every core) was a large part of such an open. A thread whose worker went
 * idle (idle_ms without a job) still ends, so an idle connection costs no
 * thread, and a parked one ends after POOL_IDLE_MS too. */

#define POOL_IDLE_MS 2000
#define POOL_MAX 16             /* parked at once; more end at once */

/* Parked threads wait in slots that live as long as the process, so a
 * taker can wake one after letting go of the pool's lock (woken under it,
 * the thread would block on the lock at once: more futex calls per open);
 * a late wake-up finds the slot's next sleeper, which sees no worker and
 * sleeps again. */
typedef struct parked {
    pthread_cond_t cond;
    int used;                   /* a thread sleeps here */
    vb_worker *w;               /* set by whoever takes that thread */
} parked;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static parked pool[POOL_MAX] = {
#define SLOT { PTHREAD_COND_INITIALIZER, 0, NULL }
    SLOT, SLOT, SLOT, SLOT, SLOT, SLOT, SLOT, SLOT,
    SLOT, SLOT, SLOT, SLOT, SLOT, SLOT, SLOT, SLOT,
#undef SLOT
};
_Static_assert(POOL_MAX == 16, "one initialiser per slot");

/* Wait for a worker to take this thread: that worker, or NULL (leave). */
static vb_worker *park(void)
{
    pthread_mutex_lock(&pool_lock);
    parked *p = NULL;
    for (size_t i = 0; i < POOL_MAX && !p; i++)
        if (!pool[i].used)
            p = &pool[i];
    vb_worker *w = NULL;
    if (p) {
        p->used = 1;
        p->w = NULL;
        struct timespec until = vb_worker_deadline(POOL_IDLE_MS);
        while (!p->w)
            if (pthread_cond_timedwait(&p->cond, &pool_lock, &until) == ETIMEDOUT && !p->w)
                break;
        w = p->w;
        p->w = NULL;
        p->used = 0;
    }
    pthread_mutex_unlock(&pool_lock);
    return w;
}

/* Hand w to a parked thread: 1, or 0 when none is parked. */
static int unpark(vb_worker *w)
{
    parked *p = NULL;
    pthread_mutex_lock(&pool_lock);
    for (size_t i = 0; i < POOL_MAX && !p; i++)
        if (pool[i].used && !pool[i].w)
            p = &pool[i];
    if (p)
        p->w = w;
    pthread_mutex_unlock(&pool_lock);
    if (p)
        pthread_cond_signal(&p->cond);
    return p != NULL;
}

/* Run w's jobs until it has none left: 1 when its client left (the thread
 * may serve another worker), 0 when it went idle. */
static int serve(vb_worker *w)
{
    pthread_mutex_lock(&w->mutex);
    vb_worker_job *job;
    while ((job = next_job(w)) != NULL) {
        pthread_mutex_unlock(&w->mutex);
        w->run(job);
        pthread_mutex_lock(&w->mutex);
    }
    /* under the mutex: a submit from now on starts another thread */
    w->has_thread = 0;
    int closing = w->closing;
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->mutex);
    if (last)
        worker_free(w);
    return closing;
}

static void *worker_main(void *arg)
{
    for (vb_worker *w = arg; w; )
        w = serve(w) ? park() : NULL;
    return NULL;
}

/* mutex held (w's; the pool's lock is taken inside it, never the other way) */
static int start_thread(vb_worker *w, vb_error *err)
{
    if (!unpark(w) && vb_offloop_start_worker(worker_main, w, w->domain, err) < 0)
        return -1;
    w->has_thread = 1;
    w->refs++;
    return 0;
}

/* mutex held; the caller wakes the thread (after unlocking) */
static int enqueue(vb_worker *w, vb_worker_job *job, vb_error *err)
{
    if (!w->has_thread && start_thread(w, err) < 0)
        return -1;
    job->next = NULL;
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    return 0;
}

/* The thread is woken once the mutex is free: woken under it, it would
 * block on the mutex at once and need another wake (three more futex calls
 * per job, at a few microseconds each). The loop's handle keeps w alive. */
int vb_worker_submit(vb_worker *w, vb_worker_job *job, vb_error *err)
{
    pthread_mutex_lock(&w->mutex);
    int rc = enqueue(w, job, err);
    pthread_mutex_unlock(&w->mutex);
    if (rc == 0)
        pthread_cond_broadcast(&w->cond);
    return rc;
}

int vb_worker_finish(vb_worker *w, vb_worker_job *close_job, vb_error *err)
{
    pthread_mutex_lock(&w->mutex);
    w->closing = 1;
    int rc = close_job ? enqueue(w, close_job, err) : 0;
    pthread_mutex_unlock(&w->mutex);
    /* an idle thread leaves; a question ends. Still our handle's reference:
     * the thread cannot free w before we let go of it below. */
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_lock(&w->mutex);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->mutex);
    if (last)
        worker_free(w);
    return rc;
}

int vb_worker_closing(vb_worker *w)
{
    pthread_mutex_lock(&w->mutex);
    int closing = w->closing;
    pthread_mutex_unlock(&w->mutex);
    return closing;
}

uint32_t vb_worker_ask_begin(vb_worker *w, vb_cred_request *req)
{
    return vb_credwait_begin(&w->ask, req);
}

int vb_worker_ask_wait(vb_worker *w, unsigned timeout_s, vb_error *err)
{
    return vb_credwait_wait(&w->ask, &w->closing, timeout_s, err);
}

int vb_worker_answer(vb_worker *w, const vb_msg *msg)
{
    return vb_credwait_answer(&w->ask, msg);
}
