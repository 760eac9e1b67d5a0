/*
 * vb_accept.h — a listening socket on the event loop that survives running
 * out of descriptors.
 *
 * accept(2) failing with EMFILE/ENFILE leaves the connection in the backlog,
 * so a level-triggered loop would be woken for it again at once and spin.
 * Instead the acceptor stops watching the listener until a descriptor frees
 * (the owner says so with vb_acceptor_fd_freed when it closes a client), and
 * tries again on a slow timer in case one frees elsewhere. The waiting
 * client stays in the backlog and is served then.
 */
#ifndef VB_ACCEPT_H
#define VB_ACCEPT_H

#include "vb_error.h"
#include "vb_loop.h"

typedef struct vb_acceptor vb_acceptor;
/* A new connection (non-blocking, close-on-exec); the callee owns fd. */
typedef void (*vb_accept_fn)(int fd, void *data);

/* Watch the listening socket lfd (made non-blocking; not owned). */
vb_acceptor *vb_acceptor_new(vb_loop *loop, int lfd, const char *what, vb_accept_fn fn,
                             void *data, vb_error *err);
/* Stop watching (lfd stays open). NULL is fine. */
void vb_acceptor_free(vb_acceptor *a);
/* A descriptor was closed: accept again if we had stopped for lack of one. */
void vb_acceptor_fd_freed(vb_acceptor *a);

/* Raise the soft RLIMIT_NOFILE to the hard limit (a daemon's clients are its
 * descriptors). Returns the soft limit now in force. */
unsigned long vb_raise_nofile_limit(void);

#endif
