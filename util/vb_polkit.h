/*
 * vb_polkit.h — ask polkitd whether a local process may do an action.
 *
 * One blocking CheckAuthorization over the system D-Bus (sd-bus; the
 * address is $DBUS_SYSTEM_BUS_ADDRESS or the system default), for a
 * unix-process subject named by pid, process start time and uid, as
 * libvirt names a unix socket's peer: polkitd refuses a subject whose pid
 * now belongs to a process started at another time, so a pid reused after
 * the peer exited cannot pass as the peer.
 *
 * Every wait (connect, bus handshake, the call) ends at one deadline; run it
 * off the event loop. Never asks anyone anything: a rule that wants an
 * administrator's password answers VB_POLKIT_CHALLENGE. No logging here.
 */
#ifndef VB_POLKIT_H
#define VB_POLKIT_H

#include <stdint.h>
#include <sys/types.h>

#include "vb_error.h"

typedef struct vb_polkit_subject {
    pid_t pid;
    uint64_t start_time;   /* field 22 of /proc/PID/stat, as polkitd reads it */
    uid_t uid;             /* SO_PEERCRED's, not /proc's: the socket's word */
} vb_polkit_subject;

enum vb_polkit_verdict {
    VB_POLKIT_NO = 0,          /* the rules or the action's defaults say no */
    VB_POLKIT_YES = 1,
    VB_POLKIT_CHALLENGE = 2,   /* yes after authentication (auth_self / auth_admin) */
};

/* The start time of pid from /proc/PID/stat (clock ticks since boot). */
int vb_polkit_start_time(pid_t pid, uint64_t *out, vb_error *err);

/* Is subject authorised for action? 0 with *verdict, or -1 with err:
 * VB_ERR_AUTH_UNAVAILABLE when the bus or polkitd cannot be reached, the
 * action is not installed, or polkitd did not answer within timeout_ms
 * (the message says which and what to do). */
int vb_polkit_check(const vb_polkit_subject *subject, const char *action, unsigned timeout_ms,
                    int *verdict, vb_error *err);

#endif
