/* Event loop: epoll for descriptors, a sorted list for one-shot timers.
 * Watches removed while events are being dispatched are only marked dead and
 * freed after the batch, so a handler may close any connection. */
#include "vb_loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS_PER_WAIT 64

typedef struct watch {
    int fd;
    unsigned events;
    vb_loop_io_fn fn;
    void *data;
    int dead;
    struct watch *next; /* all watches, for lookup by fd and deferred frees */
} watch;

typedef struct timer {
    uint64_t id;
    uint64_t due_ms;
    vb_loop_timer_fn fn;
    void *data;
    struct timer *next; /* sorted by due_ms */
} timer;

struct vb_loop {
    int epfd;
    int stopping;
    watch *watches;
    timer *timers;
    uint64_t next_timer_id;
};

uint64_t vb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

vb_loop *vb_loop_new(vb_error *err)
{
    vb_loop *loop = calloc(1, sizeof *loop);
    if (!loop) {
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SYSTEM, "out of memory");
        return NULL;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        vb_error_set_errno(err, errno, VB_DOM_SYSTEM, "epoll_create1");
        free(loop);
        return NULL;
    }
    return loop;
}

static void free_dead_watches(vb_loop *loop)
{
    watch **pp = &loop->watches;
    while (*pp) {
        watch *w = *pp;
        if (w->dead) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

void vb_loop_free(vb_loop *loop)
{
    if (!loop)
        return;
    for (watch *w = loop->watches; w; w = w->next)
        w->dead = 1;
    free_dead_watches(loop);
    while (loop->timers) {
        timer *t = loop->timers;
        loop->timers = t->next;
        free(t);
    }
    close(loop->epfd);
    free(loop);
}

static watch *find_watch(vb_loop *loop, int fd)
{
    for (watch *w = loop->watches; w; w = w->next)
        if (w->fd == fd && !w->dead)
            return w;
    return NULL;
}

static uint32_t epoll_mask(unsigned events)
{
    return (events & VB_LOOP_READ ? EPOLLIN : 0u) | (events & VB_LOOP_WRITE ? EPOLLOUT : 0u);
}

int vb_loop_add_fd(vb_loop *loop, int fd, unsigned events, vb_loop_io_fn fn, void *data,
                   vb_error *err)
{
    watch *w = calloc(1, sizeof *w);
    if (!w)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SYSTEM, "out of memory");
    w->fd = fd;
    w->events = events;
    w->fn = fn;
    w->data = data;
    struct epoll_event ev = { .events = epoll_mask(events), .data.ptr = w };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        free(w);
        return vb_error_set_errno(err, e, VB_DOM_SYSTEM, "epoll_ctl(ADD, %d)", fd);
    }
    w->next = loop->watches;
    loop->watches = w;
    return 0;
}

int vb_loop_set_events(vb_loop *loop, int fd, unsigned events)
{
    watch *w = find_watch(loop, fd);
    if (!w)
        return -1;
    if (w->events == events)
        return 0;
    struct epoll_event ev = { .events = epoll_mask(events), .data.ptr = w };
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    w->events = events;
    return 0;
}

void vb_loop_del_fd(vb_loop *loop, int fd)
{
    watch *w = find_watch(loop, fd);
    if (!w)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->dead = 1; /* freed after the current batch of events */
}

uint64_t vb_loop_add_timer(vb_loop *loop, uint64_t delay_ms, vb_loop_timer_fn fn, void *data)
{
    timer *t = calloc(1, sizeof *t);
    if (!t)
        return 0;
    t->id = ++loop->next_timer_id;
    t->due_ms = vb_now_ms() + delay_ms;
    t->fn = fn;
    t->data = data;
    timer **pp = &loop->timers;
    while (*pp && (*pp)->due_ms <= t->due_ms)
        pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
    return t->id;
}

void vb_loop_del_timer(vb_loop *loop, uint64_t timer_id)
{
    for (timer **pp = &loop->timers; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == timer_id) {
            timer *t = *pp;
            *pp = t->next;
            free(t);
            return;
        }
    }
}

static int next_timeout_ms(const vb_loop *loop)
{
    if (!loop->timers)
        return -1;
    uint64_t now = vb_now_ms();
    if (loop->timers->due_ms <= now)
        return 0;
    uint64_t wait = loop->timers->due_ms - now;
    return wait > 60000 ? 60000 : (int)wait;
}

static void run_due_timers(vb_loop *loop)
{
    uint64_t now = vb_now_ms();
    /* Only timers due now; ones added by handlers wait for the next turn. */
    while (loop->timers && loop->timers->due_ms <= now && !loop->stopping) {
        timer *t = loop->timers;
        loop->timers = t->next;
        vb_loop_timer_fn fn = t->fn;
        void *data = t->data;
        uint64_t id = t->id;
        free(t);
        fn(loop, id, data);
    }
}

int vb_loop_run(vb_loop *loop)
{
    struct epoll_event events[MAX_EVENTS_PER_WAIT];
    loop->stopping = 0;
    while (!loop->stopping) {
        int n = epoll_wait(loop->epfd, events, MAX_EVENTS_PER_WAIT, next_timeout_ms(loop));
        if (n < 0 && errno != EINTR)
            return -1;
        for (int i = 0; i < n && !loop->stopping; i++) {
            watch *w = events[i].data.ptr;
            if (w->dead)
                continue;
            unsigned got = 0;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
                got |= VB_LOOP_READ;
            if (events[i].events & EPOLLOUT)
                got |= VB_LOOP_WRITE;
            w->fn(loop, w->fd, got, w->data);
        }
        free_dead_watches(loop);
        run_due_timers(loop);
    }
    return 0;
}

void vb_loop_stop(vb_loop *loop)
{
    loop->stopping = 1;
}
