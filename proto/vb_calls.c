/* Calls in flight on one transport, matched by serial (see vb_calls.h). */
#include "vb_calls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct vb_call_note {
    vb_msg msg;
    vb_call_note *next;
};

uint64_t vb_calls_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void vb_calls_init(vb_calls *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
}

void vb_calls_destroy(vb_calls *t)
{
    pthread_mutex_destroy(&t->lock);
}

/* Wake the first call that sleeps with nothing to take: it becomes the
 * reader (a call busy answering a question is not waiting: it is skipped,
 * so a person's slow answer never leaves the others unread). */
static void wake_next_reader(vb_calls *t)
{
    for (vb_call *c = t->head; c; c = c->next)
        if (c->waiting && !c->done && !c->inbox) {
            pthread_cond_signal(&c->cond);
            return;
        }
}

int vb_calls_start(vb_calls *t, vb_call *c, const vb_msg_header *hdr, void *owner, vb_error *err)
{
    memset(c, 0, sizeof *c);
    c->hdr = *hdr;
    c->owner = owner;
    c->inbox_tail = &c->inbox;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_lock(&t->lock);
    if (t->dead.code != VB_ERR_OK) {
        vb_error_copy(err, &t->dead);
        pthread_mutex_unlock(&t->lock);
        pthread_cond_destroy(&c->cond);
        return -1;
    }
    if (++t->last_serial == 0) /* 0 names no call (the server's refusal of the transport) */
        ++t->last_serial;
    c->hdr.serial = t->last_serial;
    c->next = t->head;
    t->head = c;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

static void clear_inbox(vb_call *c)
{
    while (c->inbox) {
        vb_call_note *n = c->inbox;
        c->inbox = n->next;
        vb_msg_clear(&n->msg);
        free(n);
    }
    c->inbox_tail = &c->inbox;
    c->ninbox = 0;
}

void vb_calls_end(vb_calls *t, vb_call *c)
{
    pthread_mutex_lock(&t->lock);
    for (vb_call **pp = &t->head; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&t->lock);
    clear_inbox(c);
    if (c->have_reply)
        vb_msg_clear(&c->reply);
    c->have_reply = 0;
    pthread_cond_destroy(&c->cond);
}

static struct timespec to_timespec(uint64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L };
    return ts;
}

int vb_calls_wait(vb_calls *t, vb_call *c, uint64_t deadline_ms, vb_msg *msg)
{
    struct timespec until = to_timespec(deadline_ms);
    int rc = VB_CALL_TIMEOUT;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        /* a call that failed (timed out, transport gone) answers no more
         * questions: nobody waits for those answers (vb_calls_end drops them) */
        int failed = c->done && !c->have_reply;
        if (c->inbox && !failed) {
            vb_call_note *n = c->inbox;
            c->inbox = n->next;
            if (!c->inbox)
                c->inbox_tail = &c->inbox;
            c->ninbox--;
            *msg = n->msg;
            free(n);
            rc = VB_CALL_MESSAGE;
            break;
        }
        if (c->done) {
            rc = VB_CALL_DONE;
            break;
        }
        if (!t->leading) {
            t->leading = 1;
            rc = VB_CALL_LEAD;
            break;
        }
        c->waiting = 1;
        int w = pthread_cond_timedwait(&c->cond, &t->lock, &until);
        c->waiting = 0;
        if (w == ETIMEDOUT && !c->inbox && !c->done && t->leading)
            break;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int vb_calls_result(vb_calls *t, vb_call *c, vb_msg *reply, vb_error *err)
{
    pthread_mutex_lock(&t->lock);
    int have = c->have_reply;
    if (have) {
        *reply = c->reply;
        c->have_reply = 0;
    } else {
        vb_error_copy(err, &c->err);
    }
    pthread_mutex_unlock(&t->lock);
    if (!have)
        return -1;
    if (reply->hdr.status != VB_STATUS_ERROR)
        return 0;
    vb_reply_error(reply, err);
    vb_msg_clear(reply);
    return -1;
}

void vb_calls_fail(vb_calls *t, vb_call *c, const vb_error *why)
{
    pthread_mutex_lock(&t->lock);
    if (!c->done) {
        vb_error_copy(&c->err, why);
        c->done = 1;
    }
    pthread_mutex_unlock(&t->lock);
}

int vb_calls_try_lead(vb_calls *t)
{
    pthread_mutex_lock(&t->lock);
    int got = !t->leading;
    t->leading = 1;
    pthread_mutex_unlock(&t->lock);
    return got;
}

void vb_calls_unlead(vb_calls *t)
{
    pthread_mutex_lock(&t->lock);
    t->leading = 0;
    wake_next_reader(t);
    pthread_mutex_unlock(&t->lock);
}

int vb_calls_idle(vb_calls *t)
{
    pthread_mutex_lock(&t->lock);
    int idle = t->head == NULL;
    pthread_mutex_unlock(&t->lock);
    return idle;
}

static void fail_all_locked(vb_calls *t, const vb_error *why)
{
    if (t->dead.code == VB_ERR_OK) {
        vb_error_copy(&t->dead, why);
        if (t->dead.code == VB_ERR_OK) /* whatever the words, the transport is over */
            t->dead.code = VB_ERR_PEER_CLOSED;
    }
    for (vb_call *c = t->head; c; c = c->next) {
        if (!c->done) {
            vb_error_copy(&c->err, &t->dead);
            c->done = 1;
        }
        pthread_cond_signal(&c->cond);
    }
}

void vb_calls_fail_all(vb_calls *t, const vb_error *why)
{
    pthread_mutex_lock(&t->lock);
    fail_all_locked(t, why);
    pthread_mutex_unlock(&t->lock);
}

int vb_calls_dead(vb_calls *t, vb_error *why)
{
    pthread_mutex_lock(&t->lock);
    int dead = t->dead.code != VB_ERR_OK;
    if (dead)
        vb_error_copy(why, &t->dead);
    pthread_mutex_unlock(&t->lock);
    return dead;
}

int vb_calls_post_reply(vb_calls *t, vb_msg *msg)
{
    if (msg->hdr.serial == 0 && msg->hdr.status == VB_STATUS_ERROR) {
        vb_error refusal;
        vb_reply_error(msg, &refusal);
        vb_msg_clear(msg);
        vb_calls_fail_all(t, &refusal);
        return 1;
    }
    pthread_mutex_lock(&t->lock);
    vb_call *c = t->head;
    while (c && (c->hdr.serial != msg->hdr.serial || c->done))
        c = c->next;
    if (c) {
        c->reply = *msg;
        c->have_reply = c->done = 1;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&t->lock);
    if (!c)
        vb_msg_clear(msg);
    return c != NULL;
}

int vb_calls_for_conn(vb_calls *t, uint32_t conn_id, vb_msg_header *call)
{
    pthread_mutex_lock(&t->lock);
    vb_call *found = NULL; /* the oldest: a server runs one conn_id's calls in order */
    for (vb_call *c = t->head; c; c = c->next) /* newest first */
        if (c->hdr.conn_id == conn_id && !c->done)
            found = c;
    if (found)
        *call = found->hdr;
    pthread_mutex_unlock(&t->lock);
    return found != NULL;
}

int vb_calls_first(vb_calls *t, vb_msg_header *call)
{
    pthread_mutex_lock(&t->lock);
    vb_call *c = t->head;
    while (c && c->done)
        c = c->next;
    if (c)
        *call = c->hdr;
    pthread_mutex_unlock(&t->lock);
    return c != NULL;
}

int vb_calls_post_to_call(vb_calls *t, uint32_t call_serial, vb_msg *msg, vb_error *err)
{
    vb_call_note *n = malloc(sizeof *n);
    if (!n)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_RPC, "out of memory");
    pthread_mutex_lock(&t->lock);
    vb_call *c = t->head;
    while (c && (c->hdr.serial != call_serial || c->done))
        c = c->next;
    int rc = c ? 1 : 0;
    if (c && c->ninbox >= VB_CALL_INBOX_MAX)
        rc = vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_RPC,
                          "protocol violation: the server sent %u messages about one call "
                          "without waiting for an answer",
                          c->ninbox + 1);
    if (rc == 1) {
        n->msg = *msg;
        n->next = NULL;
        *c->inbox_tail = n;
        c->inbox_tail = &n->next;
        c->ninbox++;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&t->lock);
    if (rc != 1)
        free(n);
    return rc;
}

static void await_timed_out(vb_calls *t, vb_call *c, int timeout_ms, const vb_calls_io *io)
{
    vb_error e;
    vb_error_set(&e, VB_ERR_TIMEOUT, io->domain, "no answer from %s within %d ms", io->peer,
                 timeout_ms);
    vb_calls_fail(t, c, &e);
}

int vb_calls_await(vb_calls *t, vb_call *c, int timeout_ms, const vb_calls_io *io, void *ctx,
                   vb_msg *reply, vb_error *err)
{
    uint64_t deadline = vb_calls_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        vb_msg msg;
        vb_error e;
        switch (vb_calls_wait(t, c, deadline, &msg)) {
        case VB_CALL_DONE:
            return vb_calls_result(t, c, reply, err);
        case VB_CALL_MESSAGE:
            io->message(ctx, c, &msg);
            vb_msg_clear(&msg);
            /* the peer waited for our answer: the reply's time starts now */
            deadline = vb_calls_now_ms() + (uint64_t)timeout_ms;
            break;
        case VB_CALL_LEAD: {
            int rc = io->read_one(ctx, deadline, &e);
            vb_calls_unlead(t);
            if (rc > 0)
                await_timed_out(t, c, timeout_ms, io);
            break;
        }
        default: /* VB_CALL_TIMEOUT */
            await_timed_out(t, c, timeout_ms, io);
            break;
        }
    }
}
