/*
 * vb_worker.h — one hypervisor connection's worker, for vbrokerd and vbhostd.
 *
 * Drivers block (a remote login, an HTTP call, a person typing a password),
 * and the event loop must not. So the calls of one hypervisor connection
 * (a broker session; one conn_id of a vbhostd transport) run on a worker of
 * their own: a queue, served in order by a thread that is started at the
 * first job and leaves after idle_ms without one, so an idle connection
 * costs no thread. Two workers never wait for each other: a call blocked on
 * a prompt stalls only its own connection's later calls.
 *
 * What the daemon supplies: how to run one job (each job holds a reference
 * on the session or client it works for). What a worker guarantees:
 *   - order: the jobs of one worker run one at a time, in submission order;
 *   - shutdown: vb_worker_finish (the client left) ends any credential wait
 *     at once (PEER_CLOSED), lets the jobs already queued run, runs the
 *     close job given to it last (closing the driver is a job like any
 *     other, started on a thread like any other), then the thread leaves;
 *   - a question per worker: the credential request it waits for
 *     (vb_credwait), answered by the loop through vb_worker_answer.
 *
 * A worker never touches a socket (frames go back through vb_offloop), and
 * the loop thread never runs a job. submit, finish and answer are the
 * loop's; everything else is the worker thread's.
 */
#ifndef VB_WORKER_H
#define VB_WORKER_H

#include <stdint.h>
#include <time.h>

#include "vb_offloop.h"

/* Embedded in the daemon's job struct (its first member, or found back with
 * offsetof); the worker links jobs through it, allocating nothing. */
typedef struct vb_worker_job {
    struct vb_worker_job *next;
} vb_worker_job;

/* Runs one job on the worker thread; the job is the daemon's to free. A job
 * keeps what it works on alive itself (the daemons take a reference on
 * their session or client for each job): the worker knows nothing else. */
typedef void (*vb_worker_run_fn)(vb_worker_job *job);

typedef struct vb_worker vb_worker;

/* A worker with no thread yet. idle_ms: its thread leaves after this long
 * without a job (0: stays until finish). serials (may be NULL): a counter
 * shared by the workers of one transport, so the CALLBACK serials of their
 * questions never collide. domain names the daemon in errors. */
vb_worker *vb_worker_new(vb_worker_run_fn run, unsigned idle_ms, vb_credwait_serials *serials,
                         int domain, vb_error *err);
/* Queue job, starting a thread if none runs: 0, or -1 (no thread could be
 * started; the job is not queued and stays the caller's). */
int vb_worker_submit(vb_worker *w, vb_worker_job *job, vb_error *err);
/* The client left: no more submits. Waits end, the queued jobs run, then
 * close_job (may be NULL: nothing to close), then the thread leaves and the
 * worker is freed. The caller's handle is gone after this call; -1 (err
 * set) only when close_job could not be started (it stays the caller's). */
int vb_worker_finish(vb_worker *w, vb_worker_job *close_job, vb_error *err);
/* Worker thread: 1 once finish was called (the client left). */
int vb_worker_closing(vb_worker *w);

/* A credential question from the running job: begin before sending its
 * CALLBACK (returns the serial to send), then wait until the loop delivers
 * the answer, timeout_s passes or the client leaves. */
uint32_t vb_worker_ask_begin(vb_worker *w, vb_cred_request *req);
int vb_worker_ask_wait(vb_worker *w, unsigned timeout_s, vb_error *err);
/* ms from now on the clock of a default condition variable, for a worker's
 * own pthread_cond_timedwait. */
struct timespec vb_worker_deadline(uint64_t ms);

/* Loop: a CALLBACK_REPLY for this worker; -1 when it answers no question
 * this worker waits for (another serial, or none pending): ignored. */
int vb_worker_answer(vb_worker *w, const vb_msg *msg);

#endif
