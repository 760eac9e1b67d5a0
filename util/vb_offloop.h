/*
 * vb_offloop.h — work done off the event loop, in vbrokerd and vbhostd.
 *
 * Drivers block (a remote login, an HTTP call, a person typing a password),
 * so both daemons run driver calls on per-connection worker threads while
 * one loop owns every socket. Two pieces connect the two sides:
 *
 *   vb_offloop   frames finished on a worker, handed to the loop thread
 *                (an eventfd wakes it) and delivered in order;
 *   vb_credwait  a credential request a worker sent as a CALLBACK and waits
 *                for: the loop delivers the CALLBACK_REPLY, or the wait ends
 *                on a timeout or because the client left;
 *   vb_lane      one thread that runs the daemon's own blocking chores (a
 *                sqlite read or write, closing host connections) one after
 *                another, in the order given, each finished on the loop.
 *
 * Workers never touch a socket.
 */
#ifndef VB_OFFLOOP_H
#define VB_OFFLOOP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vb_cred.h"
#include "vb_loop.h"
#include "vb_msg.h"

typedef struct vb_offloop vb_offloop;
/* Called on the loop thread for each posted frame (frame may be NULL); it
 * owns the frame and must drop the reference the poster took on target. */
typedef void (*vb_offloop_deliver_fn)(void *target, uint8_t *frame, size_t len, int job_done);

vb_offloop *vb_offloop_new(vb_loop *loop, vb_offloop_deliver_fn deliver, vb_error *err);
/* Any thread; the caller has taken a reference on target for the delivery. */
void vb_offloop_post(vb_offloop *q, void *target, uint8_t *frame, size_t len, int job_done);

/* Start a detached worker thread with a small stack (workers only run a
 * driver call at a time); errors name who failed. */
int vb_offloop_start_worker(void *(*fn)(void *), void *arg, int domain, vb_error *err);

/* A CALLBACK serial counter the credwaits of one transport share (vbhostd:
 * one per conn_id), so two questions in flight never carry the same serial. */
typedef struct vb_credwait_serials {
    _Atomic uint32_t last;
} vb_credwait_serials;

/* Loop thread, at shutdown: deliver what is still queued (here, now), stop
 * watching the eventfd and free q. No thread may post to q any more. */
void vb_offloop_free(vb_offloop *q, vb_loop *loop);

/* A lane: the loop hands it a task; the lane's thread runs run(task), then
 * done(task) runs on the loop thread. Tasks run one at a time in the order
 * submitted, and their dones come in that order too: work on one resource
 * that serialises anyway (a sqlite store: one connection, one mutex) keeps
 * the order it was asked in (a revoke queued before a token lookup is seen
 * by it), and costs one thread, started at the first task. A task that
 * blocks (a sqlite write lock held by another process, a host that does not
 * answer its close) delays the tasks behind it, never the loop. */
typedef struct vb_lane vb_lane;
typedef void (*vb_lane_fn)(void *task);
vb_lane *vb_lane_new(vb_loop *loop, int domain, vb_error *err);
/* Loop thread. done may be NULL (nothing to finish on the loop). 0, or -1
 * with err (out of memory, no thread, the lane is being freed): then
 * nothing runs and task is still the caller's. */
int vb_lane_submit(vb_lane *l, vb_lane_fn run, vb_lane_fn done, void *task, vb_error *err);
/* Loop thread, at shutdown (NULL is a no-op): the tasks already submitted
 * still run (a revoke that was asked for happens), the lane's thread is
 * joined, then their dones run here; the lane is freed. */
void vb_lane_free(vb_lane *l, vb_loop *loop);

typedef struct vb_credwait {
    pthread_mutex_t *mutex;     /* the owning connection's lock and condition */
    pthread_cond_t *cond;
    uint32_t next_serial;
    vb_credwait_serials *shared; /* when set, serials come from it instead */
    uint32_t serial;            /* of the request in flight */
    int waiting, done;
    vb_cred_request *req;       /* answers are written into it */
    int refused;                /* the answer was an error ... */
    vb_error *refusal;          /* ... this one, allocated only then (NULL: no memory
                                 * to keep it); freed by begin, wait and clear */
} vb_credwait;

void vb_credwait_init(vb_credwait *w, pthread_mutex_t *mutex, pthread_cond_t *cond);
/* Draw serials from shared (set before the first begin). */
void vb_credwait_share_serials(vb_credwait *w, vb_credwait_serials *shared);
/* Worker: register req before sending its CALLBACK; returns the serial. */
uint32_t vb_credwait_begin(vb_credwait *w, vb_cred_request *req);
/* Worker: wait for the answer until timeout_s, or until *closing (read under
 * the mutex) says the client left. */
int vb_credwait_wait(vb_credwait *w, const int *closing, unsigned timeout_s, vb_error *err);
/* Loop: a CALLBACK_REPLY arrived; -1 when nobody is waiting for it (ignored). */
int vb_credwait_answer(vb_credwait *w, const vb_msg *msg);
/* Its owner's teardown: frees a refusal no wait collected. */
void vb_credwait_clear(vb_credwait *w);

#endif
