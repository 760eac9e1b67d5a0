#include "vb_daemon.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vb_log.h"
#include "vb_msg.h"

void vb_daemon_protect_memory(void)
{
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static void on_signal(vb_loop *loop, int fd, unsigned events, void *data)
{
    (void)events;
    (void)data;
    struct signalfd_siginfo si = { 0 };
    if (read(fd, &si, sizeof si) != (ssize_t)sizeof si)
        return;
    if (si.ssi_signo == SIGHUP) {
        vb_log(VB_LOG_INFO, "SIGHUP: configuration reload is not supported; restart instead");
        return;
    }
    vb_log(VB_LOG_INFO, "signal %u: shutting down", si.ssi_signo);
    vb_loop_stop(loop);
}

int vb_daemon_watch_signals(vb_loop *loop, vb_error *err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_SYSTEM, "signalfd");
    return vb_loop_add_fd(loop, fd, VB_LOOP_READ, on_signal, NULL, err);
}

void vb_daemon_refuse(int fd, uint32_t program, uint32_t version, int code, int domain,
                      const char *message)
{
    vb_msg_header hdr = { program, version, VB_MSG_REPLY, 0, 0, VB_STATUS_ERROR, 0 };
    vb_error e;
    vb_error_set(&e, code, domain, "%s", message);
    uint8_t *frame;
    size_t len;
    if (vb_enc_error_reply(&hdr, VB_MSG_REPLY, &e, &frame, &len, NULL) == 0) {
        ssize_t n = send(fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
        vb_frame_free(frame, len);
    }
    close(fd);
}
