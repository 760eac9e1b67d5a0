/*
 * vb_daemon.h — what vbhostd and vbrokerd do alike as processes: keep
 * secrets out of core dumps and away from ptrace, stop cleanly on signals,
 * and turn away a connection with one clear error frame.
 */
#ifndef VB_DAEMON_H
#define VB_DAEMON_H

#include <stdint.h>

#include "vb_error.h"
#include "vb_loop.h"

/* No core dumps, no ptrace attach by same-uid processes (PR_SET_DUMPABLE 0). */
void vb_daemon_protect_memory(void);
/* SIGTERM and SIGINT stop the loop, SIGHUP runs the reload hook, SIGPIPE
 * is ignored. Call before creating threads (they inherit the mask). */
int vb_daemon_watch_signals(vb_loop *loop, vb_error *err);
/* Detaching as a service does it: fork before anything is opened (an epoll
 * set, a signalfd, a sqlite handle belong to the process that made them, so
 * none may cross the fork), start a new session, and keep the parent waiting
 * until the child reports. The parent never returns from vb_daemon_detach:
 * it exits 0 once the child calls vb_daemon_started (so a service manager's
 * Type=forking, or a script, knows the daemon is ready when the command
 * returns), or prints the child's reason and exits 1 when it calls
 * vb_daemon_failed or dies during start. The child returns 0. */
typedef struct vb_daemon_start {
    int report_fd; /* to the waiting parent; -1 once reported or in the foreground */
} vb_daemon_start;
int vb_daemon_detach(vb_daemon_start *start, vb_error *err);
/* Ready: the parent exits 0; stdin and stdout go to /dev/null, and stderr
 * too unless it is a log file (vb_log_to_file). */
void vb_daemon_started(vb_daemon_start *start);
/* Start failed: the parent prints why and exits 1. */
void vb_daemon_failed(vb_daemon_start *start, const char *why);
/* What SIGHUP does (vbhostd: re-read what it safely can); without one it is
 * logged and ignored. */
void vb_daemon_on_reload(void (*fn)(void *data), void *data);
/* Send one unsolicited ERROR reply (serial 0) saying why, best effort, and
 * close fd. */
void vb_daemon_refuse(int fd, uint32_t program, uint32_t version, int code, int domain,
                      const char *message);

#endif
