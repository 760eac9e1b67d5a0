/*
 * vb_loop.h — a tiny single-threaded event loop (epoll + one-shot timers),
 * in the spirit of Redis's ae.c. vbhostd and vbrokerd run every client on
 * one loop, so every handler must be short and never block: a slow peer or
 * a pending prompt must not stall anyone else.
 */
#ifndef VB_LOOP_H
#define VB_LOOP_H

#include <stdint.h>

#include "vb_error.h"

enum { VB_LOOP_READ = 1u << 0, VB_LOOP_WRITE = 1u << 1 };

typedef struct vb_loop vb_loop;
typedef void (*vb_loop_io_fn)(vb_loop *loop, int fd, unsigned events, void *data);
typedef void (*vb_loop_timer_fn)(vb_loop *loop, uint64_t timer_id, void *data);

vb_loop *vb_loop_new(vb_error *err);
void vb_loop_free(vb_loop *loop);
/* Watch fd for events (a mask of VB_LOOP_READ/WRITE). One watch per fd. */
int vb_loop_add_fd(vb_loop *loop, int fd, unsigned events, vb_loop_io_fn fn, void *data,
                   vb_error *err);
int vb_loop_set_events(vb_loop *loop, int fd, unsigned events);
/* Stop watching fd; safe from inside any handler (even fd's own). */
void vb_loop_del_fd(vb_loop *loop, int fd);
/* One-shot timer after delay_ms; returns an id > 0, 0 on out of memory. */
uint64_t vb_loop_add_timer(vb_loop *loop, uint64_t delay_ms, vb_loop_timer_fn fn, void *data);
void vb_loop_del_timer(vb_loop *loop, uint64_t timer_id);
/* Run until vb_loop_stop. Returns 0, or -1 if epoll itself failed. */
int vb_loop_run(vb_loop *loop);
void vb_loop_stop(vb_loop *loop);
/* Monotonic milliseconds. */
uint64_t vb_now_ms(void);

#endif
