/*
 * vb_login_gate.h — at most N logins in progress to one server, per process.
 *
 * A server counts the connections that have not authenticated yet (vbhostd:
 * max_anonymous_per_peer, default 5; sshd: MaxStartups) and drops or evicts
 * the surplus. One broker speaks for all of a user's programs from one
 * address, so a burst of cold opens to one host (16 programs starting at
 * once) would trip that limit and fail opens that a short wait would have
 * let through. The gate makes the surplus wait for a slot instead.
 *
 * The wait is bounded (a slot may be held by a login waiting for a person):
 * after wait_ms the login goes ahead anyway and the server decides, as it
 * would without the gate. So the gate only ever turns a refusal into a
 * short wait; it never blocks an open for longer than wait_ms.
 */
#ifndef VB_LOGIN_GATE_H
#define VB_LOGIN_GATE_H

#include "vb_uri.h"

#define VB_LOGIN_GATE_DEFAULT_LIMIT 4      /* below vbhostd's max_anonymous_per_peer (5) */
#define VB_LOGIN_GATE_DEFAULT_WAIT_MS 10000

typedef struct vb_login_slot vb_login_slot;

/* Process-wide; limit 0 turns the gate off. Call before the first login. */
void vb_login_gate_configure(unsigned limit, unsigned wait_ms);
/* Wait (at most wait_ms) for one of the limit slots of the server uri names.
 * Never fails: NULL when the gate is off, out of memory, or the wait ran
 * out (the login goes ahead ungated). */
vb_login_slot *vb_login_gate_enter(const vb_uri *uri);
void vb_login_gate_leave(vb_login_slot *slot);
/* Logins to the server of uri holding a slot now (for tests and status). */
unsigned vb_login_gate_in_progress(const vb_uri *uri);

#endif
