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
/* SIGTERM and SIGINT stop the loop, SIGHUP is logged and ignored, SIGPIPE
 * is ignored. Call before creating threads (they inherit the mask). */
int vb_daemon_watch_signals(vb_loop *loop, vb_error *err);
/* Send one unsolicited ERROR reply (serial 0) saying why, best effort, and
 * close fd. */
void vb_daemon_refuse(int fd, uint32_t program, uint32_t version, int code, int domain,
                      const char *message);

#endif
