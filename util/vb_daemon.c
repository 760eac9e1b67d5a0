#include "vb_daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vb_log.h"
#include "vb_msg.h"

void vb_daemon_protect_memory(void)
{
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static void (*reload_fn)(void *);
static void *reload_data;

void vb_daemon_on_reload(void (*fn)(void *data), void *data)
{
    reload_fn = fn;
    reload_data = data;
}

static void on_signal(vb_loop *loop, int fd, unsigned events, void *data)
{
    (void)events;
    (void)data;
    struct signalfd_siginfo si = { 0 };
    if (read(fd, &si, sizeof si) != (ssize_t)sizeof si)
        return;
    if (si.ssi_signo == SIGHUP) {
        if (reload_fn)
            reload_fn(reload_data);
        else
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

/* ---- detaching ------------------------------------------------------------ */

/* The parent's side: wait for the child's one report ("0" ready, or "1"
 * and the reason) and exit with it. */
_Noreturn static void wait_for_child_report(pid_t child, int fd)
{
    char report[1024];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof report - 1 &&
           ((n = read(fd, report + got, sizeof report - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
        got += n > 0 ? (size_t)n : 0;
    report[got] = '\0';
    if (got > 0 && report[0] == '0')
        _exit(0);
    if (got > 1 && report[0] == '1') {
        fprintf(stderr, "%s\n", report + 1);
        _exit(1);
    }
    /* no report: the child died during start; say how */
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        fprintf(stderr, "the daemon was killed by signal %d while starting\n", WTERMSIG(status));
    else
        fprintf(stderr, "the daemon exited with status %d while starting\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    _exit(1);
}

int vb_daemon_detach(vb_daemon_start *start, vb_error *err)
{
    int p[2];
    start->report_fd = -1;
    if (pipe2(p, O_CLOEXEC) < 0)
        return vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot detach: pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot detach: fork");
    }
    if (pid > 0) {
        close(p[1]);
        wait_for_child_report(pid, p[0]);
    }
    close(p[0]);
    start->report_fd = p[1];
    if (setsid() < 0) {
        int saved = errno;
        vb_daemon_failed(start, "cannot detach: setsid failed");
        return vb_error_set_errno(err, saved, VB_DOM_DAEMON, "cannot detach: setsid");
    }
    return 0;
}

static void report(vb_daemon_start *start, const char *text)
{
    if (start->report_fd < 0)
        return;
    size_t len = strlen(text), off = 0;
    ssize_t n;
    while (off < len && ((n = write(start->report_fd, text + off, len - off)) > 0 ||
                         (n < 0 && errno == EINTR)))
        off += n > 0 ? (size_t)n : 0;
    close(start->report_fd);
    start->report_fd = -1;
}

void vb_daemon_started(vb_daemon_start *start)
{
    if (start->report_fd < 0)
        return;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        /* the terminal it started from is not a log: a log file stays */
        if (!vb_log_file_path())
            dup2(null, STDERR_FILENO);
        close(null);
    }
    report(start, "0");
}

void vb_daemon_failed(vb_daemon_start *start, const char *why)
{
    char text[1024];
    snprintf(text, sizeof text, "1%s", why);
    report(start, text);
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
