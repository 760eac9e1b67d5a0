#include "vb_accept.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "vb_log.h"
#include "vb_net.h"

#define ACCEPTS_PER_WAKEUP 64     /* so one busy listener cannot starve the loop */
#define RETRY_WITHOUT_FDS_MS 1000 /* a descriptor may free elsewhere (a driver's socket) */

struct vb_acceptor {
    vb_loop *loop;
    int fd;
    const char *what;
    vb_accept_fn fn;
    void *data;
    int starved;        /* out of descriptors: the listener is not watched */
    int warned;         /* said so in the log, and not yet that it accepts again */
    uint64_t retry_timer;
};

static void starve(vb_acceptor *a, int e);

static void on_accept(vb_loop *loop, int lfd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    vb_acceptor *a = data;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP && !a->starved; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            if (a->warned)
                vb_log(VB_LOG_INFO, "accepting on %s again", a->what);
            a->warned = 0;
            a->fn(fd, a->data);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            starve(a, errno);
        } else {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                vb_log(VB_LOG_WARN, "accept on %s: %s", a->what, strerror(errno));
            return;
        }
    }
}

static void resume(vb_acceptor *a)
{
    if (!a->starved)
        return;
    a->starved = 0;
    if (a->retry_timer)
        vb_loop_del_timer(a->loop, a->retry_timer);
    a->retry_timer = 0;
    vb_loop_set_events(a->loop, a->fd, VB_LOOP_READ);
}

static void retry(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    vb_acceptor *a = data;
    a->retry_timer = 0;
    resume(a); /* the listener fires at once if someone waits, and starves us again if need be */
}

static void starve(vb_acceptor *a, int e)
{
    a->starved = 1;
    vb_loop_set_events(a->loop, a->fd, 0);
    a->retry_timer = vb_loop_add_timer(a->loop, RETRY_WITHOUT_FDS_MS, retry, a);
    if (!a->warned)
        vb_log(VB_LOG_WARN, "accept on %s: %s; not accepting until a descriptor frees", a->what,
               strerror(e));
    a->warned = 1;
}

vb_acceptor *vb_acceptor_new(vb_loop *loop, int lfd, const char *what, vb_accept_fn fn,
                             void *data, vb_error *err)
{
    vb_acceptor *a = calloc(1, sizeof *a);
    if (!a) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SYSTEM, "out of memory");
        return NULL;
    }
    *a = (vb_acceptor){ loop, lfd, what, fn, data, 0, 0, 0 };
    vb_net_set_nonblock(lfd, 1);
    if (vb_loop_add_fd(loop, lfd, VB_LOOP_READ, on_accept, a, err) < 0) {
        free(a);
        return NULL;
    }
    return a;
}

void vb_acceptor_free(vb_acceptor *a)
{
    if (!a)
        return;
    if (a->retry_timer)
        vb_loop_del_timer(a->loop, a->retry_timer);
    vb_loop_del_fd(a->loop, a->fd);
    free(a);
}

void vb_acceptor_fd_freed(vb_acceptor *a)
{
    if (a)
        resume(a);
}

unsigned long vb_raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (unsigned long)rl.rlim_cur;
}
