/*
 * vb_calls.h — calls in flight on one transport, matched to their replies
 * by serial: the first piece of the one message engine (issue 17 item 2).
 *
 * Several threads may each have a call outstanding on one transport; each
 * waits only for what is its own: its REPLY (by serial) and the server's
 * CALLBACKs and EVENTs about its call (by conn_id, which one call at a time
 * uses). A dead transport fails every call with the reason.
 *
 * Nobody owns a reader thread. The table is read by leader/follower: at
 * most one caller at a time reads the transport (the leader); every other
 * caller sleeps on the condition variable of its own call. The leader reads
 * one message, hands it to the table (vb_calls_post_reply,
 * vb_calls_post_to_conn) and gives the lead back (vb_calls_unlead); the
 * first caller still waiting for something takes it over. So a lone caller
 * reads its own reply exactly as a blocking client always did, no thread is
 * added per transport, and whatever may block (a credential question may
 * wait for a person for minutes) runs in the thread whose call it belongs
 * to, which does not hold the lead while it does.
 *
 * The table does no I/O and knows no procedure: the transport's owner reads
 * and writes, and decides which server-initiated messages a call may get
 * (hvdrivers/vb_remote_rpc.c: the relay rule of docs/protocol.md 9.12).
 */
#ifndef VB_CALLS_H
#define VB_CALLS_H

#include <pthread.h>
#include <stdint.h>

#include "vb_error.h"
#include "vb_msg.h"

/* Messages routed to one call, not yet taken by it: a server that queues
 * more than this for one call without waiting for an answer is broken. */
#define VB_CALL_INBOX_MAX 16

typedef struct vb_call_note vb_call_note; /* a queued message (vb_calls.c) */

typedef struct vb_call {
    vb_msg_header hdr;          /* as sent: serial, program, procedure, conn_id */
    void *owner;                /* the caller's own state (who answers its questions) */
    /* the rest belongs to the table */
    pthread_cond_t cond;
    int waiting;                /* asleep in vb_calls_wait */
    int done;                   /* reply or err is final */
    vb_msg reply;
    int have_reply;
    vb_error err;
    vb_call_note *inbox, **inbox_tail;
    unsigned ninbox;
    struct vb_call *next;
} vb_call;

typedef struct vb_calls {
    pthread_mutex_t lock;
    vb_call *head;
    uint32_t last_serial;
    int leading;                /* someone reads the transport */
    vb_error dead;              /* code != OK: the transport is over */
} vb_calls;

void vb_calls_init(vb_calls *t);
/* Only once no call is registered. */
void vb_calls_destroy(vb_calls *t);

/* Register a call before sending it: hdr gets the next serial (never 0).
 * -1 with the transport's error when it is dead. */
int vb_calls_start(vb_calls *t, vb_call *c, const vb_msg_header *hdr, void *owner, vb_error *err);
/* Unregister (done or given up): what is still queued for it is wiped. A
 * reply that arrives later for its serial is dropped. */
void vb_calls_end(vb_calls *t, vb_call *c);

enum vb_call_wait {
    VB_CALL_DONE,       /* final: vb_calls_result */
    VB_CALL_MESSAGE,    /* a message for this call: in *msg, the caller clears it */
    VB_CALL_LEAD,       /* nobody reads: the caller now does, and unleads after */
    VB_CALL_TIMEOUT,    /* deadline_ms (CLOCK_MONOTONIC) passed first */
};
/* Wait for what this call needs next. Messages come before the final
 * result (they preceded the REPLY on the wire); a call that failed (timed
 * out, transport gone) gets its result at once, and its queued messages
 * are dropped unseen (vb_calls_end). */
int vb_calls_wait(vb_calls *t, vb_call *c, uint64_t deadline_ms, vb_msg *msg);
/* The call's outcome: 0 with *reply (a REPLY with status OK; the caller
 * clears it), or -1 with err (an ERROR reply normalised, a local failure). */
int vb_calls_result(vb_calls *t, vb_call *c, vb_msg *reply, vb_error *err);
/* Finish a call from its own thread (it timed out, its send failed). */
void vb_calls_fail(vb_calls *t, vb_call *c, const vb_error *why);

/* Take the lead without waiting (keepalive, draining): 1 when taken. */
int vb_calls_try_lead(vb_calls *t);
/* Give the lead back; the first call still waiting takes it over. */
void vb_calls_unlead(vb_calls *t);
/* 1 when no call is registered. */
int vb_calls_idle(vb_calls *t);

/* The leader's deliveries. A REPLY: to the call with its serial (1), or
 * dropped when none waits for it (0: a call that gave up); serial 0 with
 * status ERROR is the server refusing the transport itself: every call
 * fails with its words (vb_calls_fail_all). msg is taken in every case. */
int vb_calls_post_reply(vb_calls *t, vb_msg *msg);
/* The header of the call running for conn_id (1; the oldest, when several
 * are in flight: the server runs one conn_id's calls in order), or 0. */
int vb_calls_for_conn(vb_calls *t, uint32_t conn_id, vb_msg_header *call);
/* The header of some call in flight (1), or 0 when none is. */
int vb_calls_first(vb_calls *t, vb_msg_header *call);
/* Queue msg for the call with call_serial: 1 (msg taken), 0 when that call
 * is gone (msg left with the caller), -1 when its inbox is full (msg left;
 * err says so: the transport should be dropped). */
int vb_calls_post_to_call(vb_calls *t, uint32_t call_serial, vb_msg *msg, vb_error *err);
/* The transport is over: every call fails with why, so does every later
 * vb_calls_start. The first reason stays. */
void vb_calls_fail_all(vb_calls *t, const vb_error *why);
/* The reason, when the transport is over: 1 and *why; else 0. */
int vb_calls_dead(vb_calls *t, vb_error *why);

/* ---- the call loop every client runs ----------------------------------
 * What a client's transport provides for vb_calls_await: the table does
 * no I/O, these do. */
typedef struct vb_calls_io {
    /* As the leader: read one message, waiting until deadline_ms, and hand
     * it to the table (vb_calls_post_reply, vb_calls_post_to_call) or deal
     * with it. 0; 1 when the deadline passed first; -1 when the transport
     * failed (after vb_calls_fail_all). */
    int (*read_one)(void *ctx, uint64_t deadline_ms, vb_error *err);
    /* A message the reader posted to call c (a question, a verdict):
     * answer it in c's own thread. The caller clears msg after. */
    void (*message)(void *ctx, vb_call *c, const vb_msg *msg);
    const char *peer;       /* who did not answer, for the timeout: "the server" */
    int domain;             /* of that timeout error */
} vb_calls_io;

/* Wait for c's outcome (vb_calls_result's), reading for every call on the
 * transport while nobody else does and answering c's own messages in this
 * thread (never as the reader: a person's slow answer stalls no other
 * call). A call with no reply or message for timeout_ms fails with TIMEOUT;
 * the time starts again after each message answered (the peer waited). */
int vb_calls_await(vb_calls *t, vb_call *c, int timeout_ms, const vb_calls_io *io, void *ctx,
                   vb_msg *reply, vb_error *err);

/* CLOCK_MONOTONIC in milliseconds (the deadlines above). */
uint64_t vb_calls_now_ms(void);

#endif
