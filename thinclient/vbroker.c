/* libvbroker: talk to the user's broker. Connect (or autostart), forward
 * calls, answer the broker's credential requests with the app's callback.
 * Nothing else: no drivers, no SASL, no SSH. */
#include <limits.h>

#include "vb_bodies.h"
#include "vb_calls.h"
#include "vb_credwire.h"
#include "vb_error.h"
#include "vb_msg.h"
#include "vb_msgin.h"
#include "vb_paths.h"
#include "vb_sockdir.h"
#include "vbroker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef VB_BINDIR
#define VB_BINDIR "/usr/local/bin"
#endif

#define AUTOSTART_WAIT_MS 10000
#define REPLY_TIMEOUT_MS  (10 * 60 * 1000) /* the broker bounds prompts at 120 s */
#define READ_CHUNK 16384

_Static_assert((int)VBROKER_ERR_CRED_REQUIRED == (int)VB_ERR_CRED_REQUIRED, "public codes match the wire");
_Static_assert((int)VBROKER_ERR_NO_CONNECT == (int)VB_ERR_NO_CONNECT, "public codes match the wire");
_Static_assert((int)VBROKER_ERR_NO_DRIVER == (int)VB_ERR_NO_DRIVER, "public codes match the wire");

/* One connection to the broker, on the message engine (proto/): the input
 * stage cuts and decodes what the socket gives, the call table matches
 * replies to calls; this file reads, writes and answers the broker's
 * questions. */
struct vb_conn {
    int fd;
    vb_msgin in;
    vb_calls calls;
    int read_failed;               /* the last read lost the broker (not a refusal) */
    vb_auth auth;
};

/* ---- process-wide auth priority ------------------------------------------ */

static const char *const auth_names[] = { "none", "sasl", "peer", "token", "polkit" };
static int priority[8];
static size_t npriority;

int vb_set_auth_priority(const int *types, size_t n)
{
    if (n > sizeof priority / sizeof priority[0])
        return -1;
    for (size_t i = 0; i < n; i++)
        if (types[i] < VB_AUTH_NONE || types[i] > VB_AUTH_POLKIT)
            return -1;
    if (n)
        memcpy(priority, types, n * sizeof *types);
    npriority = n;
    return 0;
}

/* ---- the broker's socket --------------------------------------------------- */

#define LOCK_NAME "autostart.lock"

/* per thread: every call rewrites it (glibc's snprintf writes the NUL first),
 * and threads opening at once must not read each other's half-written path
 * ("" → directory ".") */
static _Thread_local char socket_path[108];

const char *vb_broker_socket_path(void)
{
    vb_path_broker_socket(socket_path, sizeof socket_path);
    return socket_path;
}

static int connect_socket(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sun.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* connect_socket, tried again twice (1 ms, then 4 ms later) when a live
 * listener refuses: under 4 threads opening in a loop, about 1 connect in
 * 30 000-100 000 to the broker's listening socket gets ECONNREFUSED on Linux
 * 6.18 (bench/README.md; not explained yet). A path with no listener still
 * fails within 5 ms. */
static int connect_socket_retrying(const char *path)
{
    int fd = connect_socket(path);
    for (int pause_us = 1000; fd < 0 && errno == ECONNREFUSED && pause_us <= 4000; pause_us *= 4) {
        struct timespec ts = { 0, pause_us * 1000L };
        nanosleep(&ts, NULL);
        fd = connect_socket(path);
    }
    return fd;
}

/* Whoever listens must be a process of ours: the socket's directory was
 * checked, but this is what stops a listener of another uid (a squatter's
 * fake broker) from getting even our first frame, let alone a password. */
static int check_peer(int fd, const char *path, vb_error *err)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return vb_error_set_errno(err, errno, VB_DOM_CLIENT, "cannot tell who listens on %s", path);
    if (cred.uid != geteuid())
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_CLIENT,
                            "refusing the broker at %s: it runs as uid %u, not as uid %u (you); "
                            "nothing was sent to it",
                            path, (unsigned)cred.uid, (unsigned)geteuid());
    return 0;
}

#define NOBODY_ANSWERS (-1) /* errno says why; autostart may help */
#define REFUSED (-2)        /* err says why; stop */

/* Connect to path's socket through the checked directory dir_fd, then check
 * the peer. */
static int connect_checked(int dir_fd, const char *path, vb_error *err)
{
    char entry[sizeof socket_path];
    vb_sockdir_entry_path(dir_fd, path, entry, sizeof entry);
    int fd = connect_socket_retrying(entry);
    if (fd < 0)
        return NOBODY_ANSWERS;
    if (check_peer(fd, path, err) < 0) {
        close(fd);
        return REFUSED;
    }
    return fd;
}

/* $VBROKERD, else the installed one, else the one next to this program (so
 * build/vbctl autostarts build/vbrokerd before anything is installed). */
static const char *broker_binary(void)
{
    static char beside[4096];
    const char *env = getenv("VBROKERD");
    if (env && *env)
        return env;
    if (access(VB_BINDIR "/vbrokerd", X_OK) == 0)
        return VB_BINDIR "/vbrokerd";
    ssize_t n = readlink("/proc/self/exe", beside, sizeof beside - 16);
    if (n > 0) {
        beside[n] = '\0';
        char *slash = strrchr(beside, '/');
        if (slash) {
            strcpy(slash + 1, "vbrokerd");
            if (access(beside, X_OK) == 0)
                return beside;
        }
    }
    return VB_BINDIR "/vbrokerd";
}

/* In the intermediate child: start the broker as a grandchild and report
 * through report_fd its pid, then, when exec fails, its errno (the pipe is
 * close-on-exec, so a successful exec ends the report). The broker's stderr
 * is stderr_fd, so a broker that refuses to start can say why. */
static void spawn_grandchild(const char *bin, const char *path, char *const envp[], int report_fd,
                             int stderr_fd)
{
    setsid();
    pid_t pid = fork();
    if (pid != 0) {
        if (write(report_fd, &pid, sizeof pid) != (ssize_t)sizeof pid)
            _exit(1);
        _exit(0);
    }
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
    }
    dup2(stderr_fd, STDERR_FILENO);
    char *const argv[] = { "vbrokerd", "--socket", (char *)path, NULL };
    execve(bin, argv, envp);
    int e = errno;
    if (write(report_fd, &e, sizeof e) != (ssize_t)sizeof e)
        _exit(127);
    _exit(127);
}

#define AUTOSTART_MARK "VBROKER_AUTOSTARTED=1"

/* Our environment plus the mark that tells vbrokerd it was autostarted (so
 * it logs to its file: its stderr is our pipe, read only until it answers).
 * Built before the fork: the child of a threaded program must not malloc. */
static char **broker_environment(void)
{
    extern char **environ;
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "VBROKER_AUTOSTARTED=", 20) != 0)
            envp[k++] = environ[i];
    envp[k] = (char *)AUTOSTART_MARK;
    return envp;
}

/* Start vbrokerd detached (double fork: it is nobody's child here); *pid
 * gets its pid so the wait can notice a broker that exits at once, and
 * stderr_fd its stderr (a pipe; the broker ignores SIGPIPE once it runs). */
static int spawn_broker(const char *path, pid_t *pid, int stderr_fd, vb_error *err)
{
    const char *bin = broker_binary();
    if (access(bin, X_OK) < 0)
        return vb_error_set_errno(err, errno, VB_DOM_CLIENT,
                                  "cannot start the broker %s; set VBROKERD to its path or "
                                  "start it by hand", bin);
    int report[2];
    char **envp = broker_environment();
    if (!envp)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    if (pipe2(report, O_CLOEXEC) < 0) {
        free(envp);
        return vb_error_set_errno(err, errno, VB_DOM_CLIENT, "cannot start the broker");
    }
    pid_t child = fork();
    if (child < 0) {
        close(report[0]);
        close(report[1]);
        free(envp);
        return vb_error_set_errno(err, errno, VB_DOM_CLIENT, "cannot start the broker");
    }
    if (child == 0) {
        close(report[0]);
        spawn_grandchild(bin, path, envp, report[1], stderr_fd);
    }
    free(envp);
    close(report[1]);
    int status, exec_errno = 0;
    waitpid(child, &status, 0);
    int got_pid = read(report[0], pid, sizeof *pid) == (ssize_t)sizeof *pid;
    int exec_failed = got_pid && read(report[0], &exec_errno, sizeof exec_errno) ==
                                     (ssize_t)sizeof exec_errno;
    close(report[0]);
    if (!got_pid)
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_CLIENT, "cannot start the broker %s", bin);
    if (exec_failed)
        return vb_error_set_errno(err, exec_errno, VB_DOM_CLIENT, "cannot run the broker %s", bin);
    return 0;
}

static void pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* The broker we spawned has exited: no such pid, or a zombie nobody reaped
 * yet (it is not our child; in a container pid 1 may never reap it). */
static int process_gone(pid_t pid)
{
    if (kill(pid, 0) < 0)
        return errno == ESRCH;
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
        return 0;
    stat[n] = '\0';
    const char *paren = strrchr(stat, ')'); /* "PID (COMM) STATE ..." */
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* The first line a broker that exited wrote to stderr ("" when none):
 * startup refusals name only paths, options and uids, never a secret. */
static void first_line(int fd, char *buf, size_t len)
{
    ssize_t n = read(fd, buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

/* Wait for the broker we spawned (pid) to accept connections; give up at
 * once when it is gone (it refused to start: a bad directory, say), after
 * AUTOSTART_WAIT_MS otherwise. */
static int wait_for_broker(int dir_fd, const char *path, pid_t pid, int stderr_fd, vb_error *err)
{
    const char *bin = broker_binary();
    for (int waited = 0; waited < AUTOSTART_WAIT_MS; waited += 5) {
        int fd = connect_checked(dir_fd, path, err);
        if (fd != NOBODY_ANSWERS)
            return fd;
        if (process_gone(pid)) {
            fd = connect_checked(dir_fd, path, err); /* a broker racing us may have won */
            if (fd != NOBODY_ANSWERS)
                return fd;
            char why[300];
            first_line(stderr_fd, why, sizeof why);
            return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_CLIENT,
                                "the broker (%s --socket %s) exited at once%s%s", bin, path,
                                why[0] ? ": " : "; run it by hand to see why", why);
        }
        pause_ms(5);
    }
    return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_CLIENT,
                        "cannot start the broker (%s --socket %s): it did not answer within %d s; "
                        "set VBROKERD to its path or start it by hand",
                        bin, path, AUTOSTART_WAIT_MS / 1000);
}

/* The lock, inside the checked directory and never through a link. */
static int open_lock(int dir_fd, const char *path, vb_error *err)
{
    int fd = openat(dir_fd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    int e = errno;
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    const char *dir = slash ? path : ".";
    if (e == ELOOP)
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_CLIENT,
                            "refusing %.*s/" LOCK_NAME ": it is a symbolic link, and the lock is "
                            "never opened through one (remove it)",
                            dirlen, dir);
    return vb_error_set_errno(err, e, VB_DOM_CLIENT, "cannot open %.*s/" LOCK_NAME, dirlen, dir);
}

/* Spawn a broker and wait for it, its stderr on a pipe for the reason it
 * may give for not starting. */
static int start_and_wait(int dir_fd, const char *path, vb_error *err)
{
    int errpipe[2];
    pid_t pid;
    if (pipe2(errpipe, O_CLOEXEC) < 0)
        return vb_error_set_errno(err, errno, VB_DOM_CLIENT, "cannot start the broker");
    fcntl(errpipe[0], F_SETFL, O_NONBLOCK); /* ours only: the broker's stderr stays blocking */
    int spawned = spawn_broker(path, &pid, errpipe[1], err) == 0;
    close(errpipe[1]);
    int fd = spawned ? wait_for_broker(dir_fd, path, pid, errpipe[0], err) : -1;
    close(errpipe[0]);
    return fd;
}

/* check the directory (creating it) → lock → connect again → spawn → wait
 * (as gpg-agent does), so two clients racing to autostart get one broker. */
static int autostart(const char *path, vb_error *err)
{
    int dir_fd = vb_sockdir_open(path, geteuid(), 1, VB_DOM_CLIENT, err);
    if (dir_fd < 0)
        return -1;
    int lfd = open_lock(dir_fd, path, err);
    if (lfd < 0) {
        close(dir_fd);
        return -1;
    }
    flock(lfd, LOCK_EX);
    int fd = connect_checked(dir_fd, path, err);
    if (fd == NOBODY_ANSWERS)
        fd = start_and_wait(dir_fd, path, err);
    flock(lfd, LOCK_UN);
    close(lfd);
    close(dir_fd);
    return fd < 0 ? -1 : fd;
}

/* ---- the checked directory, kept between opens ---------------------------------
 * A long-lived program opens again and again. Walking the socket's directory
 * and every one above it (vb_sockdir_open) is about twenty system calls, a
 * good part of a warm open, so the descriptor of the last checked directory
 * is kept (one per process). It pins the directory that was checked, as it
 * does during one open: a name changed above it later cannot redirect a
 * connect made through it (vb_sockdir_entry_path). Each use checks again
 * what can change on the directory itself (fstat: a directory, ours, closed
 * to group and others, not removed); a program that closed our descriptor
 * and got the number back for something else is caught by device and inode,
 * and another socket path is walked anew. */
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static int kept_fd = -1;
static char kept_path[sizeof socket_path];
static dev_t kept_dev;
static ino_t kept_ino;

/* kept_lock held: kept_fd is still the private directory we checked */
static int kept_still_ours(uid_t uid)
{
    struct stat st;
    return kept_fd >= 0 && fstat(kept_fd, &st) == 0 && S_ISDIR(st.st_mode) &&
           st.st_dev == kept_dev && st.st_ino == kept_ino && st.st_uid == uid &&
           (st.st_mode & 077) == 0 && st.st_nlink > 0;
}

/* A descriptor (the caller's to close) of path's directory as checked
 * before, or -1: walk it. */
static int kept_dir(const char *path, uid_t uid)
{
    int fd = -1;
    pthread_mutex_lock(&kept_lock);
    if (strcmp(kept_path, path) == 0 && kept_still_ours(uid))
        fd = fcntl(kept_fd, F_DUPFD_CLOEXEC, 0);
    pthread_mutex_unlock(&kept_lock);
    return fd;
}

/* dir_fd was just checked for path: keep a copy of it. */
static void keep_dir(int dir_fd, const char *path, uid_t uid)
{
    struct stat st;
    if (fstat(dir_fd, &st) < 0)
        return;
    int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return;
    pthread_mutex_lock(&kept_lock);
    int old = kept_still_ours(uid) ? kept_fd : -1; /* never a number the program reused */
    kept_fd = fd;
    kept_dev = st.st_dev;
    kept_ino = st.st_ino;
    snprintf(kept_path, sizeof kept_path, "%s", path);
    pthread_mutex_unlock(&kept_lock);
    if (old >= 0)
        close(old);
}

/* Nothing goes to a broker before its directory and its uid are checked: a
 * directory that is not ours stops us here, with no connect and no autostart. */
static int connect_broker(int allow_autostart, vb_error *err)
{
    const char *path = vb_broker_socket_path(); /* this thread's buffer */
    uid_t me = geteuid();
    int dir_fd = kept_dir(path, me);
    if (dir_fd >= 0) {
        int fd = connect_checked(dir_fd, path, err);
        close(dir_fd);
        if (fd != NOBODY_ANSWERS)
            return fd < 0 ? -1 : fd;
        /* nobody answers there now: check the path anew (autostart may follow) */
    }
    dir_fd = vb_sockdir_open(path, me, 0, VB_DOM_CLIENT, err);
    if (dir_fd < 0 && errno != ENOENT)
        return -1;
    if (dir_fd >= 0)
        keep_dir(dir_fd, path, me);
    int fd = dir_fd >= 0 ? connect_checked(dir_fd, path, err) : NOBODY_ANSWERS;
    int why = dir_fd >= 0 ? errno : ENOENT;
    if (dir_fd >= 0)
        close(dir_fd);
    if (fd != NOBODY_ANSWERS)
        return fd < 0 ? -1 : fd;
    const char *no = getenv("VBROKER_NO_AUTOSTART");
    if (!allow_autostart || (no && strcmp(no, "1") == 0))
        return vb_error_set(err, VB_ERR_NO_CONNECT, VB_DOM_CLIENT,
                            "cannot reach the broker at %s: %s%s", path, strerror(why),
                            allow_autostart ? " (autostart is off: VBROKER_NO_AUTOSTART=1)" : "");
    return autostart(path, err);
}

/* ---- frames ------------------------------------------------------------------ */

static int send_frame(vb_conn *c, uint8_t *frame, size_t len, vb_error *err)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, frame + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vb_frame_free(frame, len);
            return vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_CLIENT,
                                "lost the connection to the broker: %s", strerror(errno));
        }
        off += (size_t)n;
    }
    vb_frame_free(frame, len);
    return 0;
}

/* The engine's fill: what the socket has, within the caller's wait. */
typedef struct fill_ctx {
    vb_conn *c;
    int wait_ms;
} fill_ctx;

static int read_more(void *ctx, vb_msgin *in, vb_error *err)
{
    fill_ctx *f = ctx;
    struct pollfd p = { .fd = f->c->fd, .events = POLLIN };
    int rc;
    do {
        rc = poll(&p, 1, f->wait_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_CLIENT, "the broker did not answer");
    uint8_t buf[READ_CHUNK];
    ssize_t n = recv(f->c->fd, buf, sizeof buf, 0);
    if (n <= 0)
        return vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_CLIENT,
                            "the broker closed the connection (is vbrokerd still running?)");
    rc = vb_msgin_push(in, buf, (size_t)n, err);
    explicit_bzero(buf, (size_t)n);
    return rc;
}

/* ---- credential requests from the broker -------------------------------------- */

static void reply_error(vb_conn *c, const vb_msg_header *req_hdr, int code, const char *text)
{
    vb_error e;
    uint8_t *frame;
    size_t len;
    vb_error_set(&e, code, VB_DOM_CLIENT, "%s", text);
    if (vb_enc_error_reply(req_hdr, VB_MSG_CALLBACK_REPLY, &e, &frame, &len, NULL) == 0)
        send_frame(c, frame, len, NULL);
}

/* Ask the app once, with every item of r (decoded by proto/vb_credwire.c,
 * the daemons' codec: the same limits, the same refusals); its results move
 * into r, which wipes them. */
static int ask_app(vb_conn *c, vb_cred_request *r)
{
    vb_credential creds[VB_CRED_MAX_ITEMS];
    memset(creds, 0, sizeof creds);
    for (size_t i = 0; i < r->nitems; i++)
        creds[i] = (vb_credential){ r->items[i].type, r->items[i].prompt ? r->items[i].prompt : "",
                                    r->items[i].challenge, r->items[i].defresult, NULL, 0 };
    vb_auth_request req = { r->service ? r->service : "an unnamed service",
                            (const char *const *)r->hops, r->nhops, r->retry, r->kind,
                            r->target.host, r->target.port, r->target.user, r->nverified };
    int rc = c->auth.cb(&req, creds, (unsigned)r->nitems, c->auth.cbdata);
    for (size_t i = 0; i < r->nitems; i++) {
        r->items[i].result = creds[i].result; /* malloc'd by the app: r wipes and frees it */
        r->items[i].resultlen = creds[i].result ? creds[i].resultlen : 0;
    }
    return rc;
}

/* The broker needs credentials: ask the app once, with every item. */
static void answer_callback(vb_conn *c, const vb_msg *msg)
{
    if (msg->hdr.procedure != VB_BROKER_PROC_CRED_REQUEST) {
        reply_error(c, &msg->hdr, VB_ERR_NO_SUPPORT, "unknown callback");
        return;
    }
    vb_cred_request r;
    vb_error err;
    uint8_t *frame;
    size_t len;
    if (vb_credwire_decode_request(msg->body, &r, &err) < 0)
        reply_error(c, &msg->hdr, VB_ERR_PROTOCOL, err.message);
    else if (!c->auth.cb)
        reply_error(c, &msg->hdr, VB_ERR_CRED_REQUIRED, "this application cannot answer prompts");
    else if (ask_app(c, &r) < 0)
        reply_error(c, &msg->hdr, VB_ERR_AUTH_CANCELLED, "cancelled by the user");
    else if (vb_credwire_answer_frame(&msg->hdr, &r, &frame, &len, NULL) == 0)
        send_frame(c, frame, len, NULL); /* the results, one per item (nil: the default) */
    vb_cred_request_clear(&r);
}

/* ---- calls -------------------------------------------------------------------- */

typedef void (*args_fn)(vb_enc *enc, const void *arg);

/* The engine's hooks (proto/vb_calls.h vb_calls_await). As the reader: one
 * message from the broker, to the table: a REPLY to its call (serial 0
 * with ERROR: the broker refused this connection, every call fails with
 * its words), a CALLBACK to the call it interrupts; anything else is not
 * ours. */
static int io_read_one(void *ctx, uint64_t deadline_ms, vb_error *err)
{
    vb_conn *c = ctx;
    uint64_t now = vb_calls_now_ms();
    fill_ctx f = { c, deadline_ms > now ? (int)(deadline_ms - now) : 0 };
    vb_msg msg;
    if (vb_msgin_read(&c->in, read_more, &f, &msg, err) < 0) {
        if (err->code == VB_ERR_TIMEOUT)
            return 1;
        c->read_failed = 1;
        vb_calls_fail_all(&c->calls, err);
        return -1;
    }
    vb_msg_header call;
    if (msg.hdr.type == VB_MSG_REPLY)
        vb_calls_post_reply(&c->calls, &msg);
    else if (msg.hdr.type != VB_MSG_CALLBACK || !vb_calls_first(&c->calls, &call) ||
             vb_calls_post_to_call(&c->calls, call.serial, &msg, err) != 1)
        vb_msg_clear(&msg);
    return 0;
}

static void io_message(void *ctx, vb_call *call, const vb_msg *msg)
{
    (void)call;
    answer_callback(ctx, msg);
}

static const vb_calls_io broker_io = { io_read_one, io_message, "the broker", VB_DOM_CLIENT };

static int send_call(vb_conn *c, const vb_msg_header *hdr, args_fn fn, const void *arg,
                     vb_error *err)
{
    uint8_t *frame;
    size_t len;
    if (vb_body_call_frame(hdr, fn, arg, VB_FRAME_MAX_PREAUTH, &frame, &len, err) < 0)
        return -2;
    return send_frame(c, frame, len, err);
}

static int call(vb_conn *c, uint32_t proc, args_fn fn, const void *arg, vb_msg *reply, vb_error *err)
{
    vb_msg_header hdr = { VB_PROG_BROKER, VB_PROG_BROKER_VERSION, VB_MSG_CALL, 0, proc,
                          VB_STATUS_OK, 0 };
    vb_call cl;
    if (vb_calls_start(&c->calls, &cl, &hdr, c, err) < 0)
        return -1;
    /* If the broker refused us it has already written why and hung up: a
     * failed send still reads that answer instead of "broken pipe". */
    vb_error send_err;
    int sent = send_call(c, &cl.hdr, fn, arg, &send_err);
    int rc = -1;
    if (sent == -2) {
        vb_error_copy(err, &send_err);
    } else {
        c->read_failed = 0;
        rc = vb_calls_await(&c->calls, &cl, REPLY_TIMEOUT_MS, &broker_io, c, reply, err);
        if (rc < 0 && sent < 0 && c->read_failed)
            vb_error_copy(err, &send_err);
    }
    vb_calls_end(&c->calls, &cl);
    return rc;
}

static int call_noreply(vb_conn *c, uint32_t proc, args_fn fn, const void *arg, vb_error *err)
{
    vb_msg reply;
    if (call(c, proc, fn, arg, &reply, err) < 0)
        return -1;
    vb_msg_clear(&reply);
    return 0;
}

static vb_conn *conn_new(int allow_autostart, vb_error *err)
{
    int fd = connect_broker(allow_autostart, err);
    if (fd < 0)
        return NULL;
    vb_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
        return NULL;
    }
    c->fd = fd;
    vb_msgin_init(&c->in, VB_FRAME_MAX_POSTAUTH);
    vb_calls_init(&c->calls);
    return c;
}

static void conn_free(vb_conn *c)
{
    close(c->fd);
    vb_msgin_clear(&c->in);
    vb_calls_destroy(&c->calls);
    free(c);
}

typedef struct open_args {
    const char *uri;
    unsigned flags;
    const vb_auth *auth;
    int with_ttl;             /* LOGIN appends [ttl_s] */
    uint64_t ttl_s;
} open_args;

/* VBROKER_NON_INTERACTIVE=1: this process never has anything asked, by any
 * route (its callback, or the broker's own pinentry), whatever flags it passes. */
static int forced_non_interactive(void)
{
    const char *v = getenv("VBROKER_NON_INTERACTIVE");
    return v && *v && strcmp(v, "0") != 0;
}

/* What the broker may use to ask by itself (its pinentry) for a program
 * without a callback: this process's display, Wayland display, terminal (the
 * one stdin is) and terminal type. Values that are not plain printable text
 * are left out, as the broker would refuse them. */
static const char *screen_value(const char *v)
{
    if (!v || !*v || strlen(v) > VB_SCREEN_VALUE_MAX)
        return NULL;
    for (const char *p = v; *p; p++)
        if (*p <= ' ' || *p > '~')
            return NULL;
    return v;
}

static void pack_screen(vb_enc *enc)
{
    char tty[256];
    int have_tty = isatty(0) && ttyname_r(0, tty, sizeof tty) == 0;
    vb_enc_array(enc, 4);
    vb_enc_str(enc, screen_value(getenv("DISPLAY")));
    vb_enc_str(enc, screen_value(getenv("WAYLAND_DISPLAY")));
    vb_enc_str(enc, have_tty ? screen_value(tty) : NULL);
    vb_enc_str(enc, have_tty ? screen_value(getenv("TERM")) : NULL);
}

/* OPEN / LOGIN [uri, flags, cred_types, auth_priority, can_prompt, (LOGIN:
 * ttl_s), screen]; the screen goes only with no callback, and never for a
 * non-interactive open (docs/protocol.md 9.11). */
static void pack_open(vb_enc *enc, const void *arg)
{
    const open_args *a = arg;
    int has_cb = a->auth && a->auth->cb;
    unsigned ntypes = has_cb ? a->auth->ncredtypes : 0;
    unsigned flags = a->flags;
    if (forced_non_interactive())
        flags |= VB_OPEN_NON_INTERACTIVE;
    int non_interactive = (flags & VB_OPEN_NON_INTERACTIVE) != 0;
    int with_screen = !has_cb && !non_interactive;
    /* our VBROKER_AUTH_FILE, so a broker that reads another file can say so
     * (the broker never reads it; earlier brokers ignore the extra fields) */
    const char *auth_file = secure_getenv("VBROKER_AUTH_FILE");
    vb_enc_array(enc, (a->with_ttl ? 7u : 6u) + (with_screen ? 1u : 0u));
    vb_enc_str(enc, a->uri);
    vb_enc_u64(enc, flags);
    vb_enc_array(enc, ntypes);
    for (unsigned i = 0; i < ntypes; i++)
        vb_enc_u64(enc, (uint64_t)a->auth->credtypes[i]);
    vb_enc_array(enc, (uint32_t)npriority);
    for (size_t i = 0; i < npriority; i++)
        vb_enc_str(enc, auth_names[priority[i]]);
    vb_enc_bool(enc, has_cb && !non_interactive);
    if (a->with_ttl)
        vb_enc_u64(enc, a->ttl_s);
    vb_enc_str(enc, auth_file && *auth_file ? auth_file : NULL);
    if (with_screen)
        pack_screen(enc);
}

vb_conn *vb_open_auth(const char *uri, const vb_auth *auth, unsigned int flags, vb_error *err)
{
    if (!uri || !*uri) {
        vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT, "no URI given");
        return NULL;
    }
    vb_conn *c = conn_new(1, err);
    if (!c)
        return NULL;
    if (auth)
        c->auth = *auth;
    open_args a = { uri, flags, auth, 0, 0 };
    if (call_noreply(c, VB_BROKER_PROC_OPEN, pack_open, &a, err) < 0) {
        conn_free(c);
        return NULL;
    }
    return c;
}

int vb_close(vb_conn *conn)
{
    if (!conn)
        return 0;
    int rc = call_noreply(conn, VB_BROKER_PROC_CLOSE, NULL, NULL, NULL);
    conn_free(conn);
    return rc;
}

int vb_domain_start(vb_conn *conn, const char *name, vb_error *err)
{
    return call_noreply(conn, VB_BROKER_PROC_DOMAIN_START, NULL, name, err);
}

int vb_domain_shutdown(vb_conn *conn, const char *name, vb_error *err)
{
    return call_noreply(conn, VB_BROKER_PROC_DOMAIN_SHUTDOWN, NULL, name, err);
}

int vb_get_hostname(vb_conn *conn, char **hostname, vb_error *err)
{
    vb_msg reply;
    if (call(conn, VB_BROKER_PROC_GET_HOSTNAME, NULL, NULL, &reply, err) < 0)
        return -1;
    int rc = vb_body_read_str(reply.body, 1024, hostname, err);
    vb_msg_clear(&reply);
    return rc;
}

static int read_domain(vb_rd *list, vb_domain *d, vb_error *err)
{
    vb_wire_domain w;
    if (vb_body_read_domain(list, &w, err) < 0)
        return -1;
    d->name = strndup(w.name, w.name_len);
    d->uuid = w.uuid ? strndup(w.uuid, w.uuid_len) : NULL;
    if (!d->name || (w.uuid && !d->uuid))
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    d->id = (int32_t)w.id;
    d->state = w.state;
    d->memory_kib = w.memory_kib;
    d->vcpus = w.vcpus;
    return 0;
}

void vb_domains_free(vb_domain *domains, size_t n)
{
    for (size_t i = 0; domains && i < n; i++) {
        free(domains[i].name);
        free(domains[i].uuid);
    }
    free(domains);
}

int vb_list_domains(vb_conn *conn, vb_domain **domains, size_t *n, vb_error *err)
{
    vb_msg reply;
    vb_rd list;
    *domains = NULL;
    *n = 0;
    if (call(conn, VB_BROKER_PROC_LIST_DOMAINS, NULL, NULL, &reply, err) < 0)
        return -1;
    int rc = vb_body_read_domain_list(reply.body, &list, err);
    if (rc == 0 && list.count && !(*domains = calloc(list.count, sizeof **domains)))
        rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    while (rc == 0 && vb_rd_has_more(&list)) {
        rc = read_domain(&list, &(*domains)[*n], err);
        (*n)++;
    }
    if (rc < 0) {
        vb_domains_free(*domains, *n);
        *domains = NULL;
        *n = 0;
    }
    vb_msg_clear(&reply);
    return rc;
}

const char *vb_domain_state_string(unsigned int state)
{
    static const char *const names[] = { "no state", "running",  "blocked", "paused",
                                         "in shutdown", "shut off", "crashed", "pmsuspended" };
    return state < sizeof names / sizeof names[0] ? names[state] : "unknown";
}

/* ---- login and logout -------------------------------------------------------------- */

static vb_conn *conn_with_auth(const vb_auth *auth, vb_error *err)
{
    vb_conn *c = conn_new(1, err);
    if (c && auth)
        c->auth = *auth;
    return c;
}

void vb_login_info_clear(vb_login_info *info)
{
    if (!info)
        return;
    free(info->identity);
    for (size_t i = 0; info->hops && i < info->nhops; i++) {
        free(info->hops[i].hop);
        free(info->hops[i].kept);
    }
    free(info->hops);
    memset(info, 0, sizeof *info);
}

/* LOGIN reply: [identity, expires, hops [[hop, kept, until], …]]; an older
 * broker sends only the first two */
static int read_login_reply(const vb_msg *reply, vb_login_info *info, vb_error *err)
{
    vb_rd rd, list, f;
    if (vb_rd_init(&rd, reply->body, err) < 0 || vb_rd_strdup(&rd, 1024, &info->identity, err) < 0 ||
        vb_rd_i64(&rd, &info->expires, err) < 0)
        return -1;
    if (!vb_rd_has_more(&rd))
        return 0;
    if (vb_rd_array(&rd, &list, err) < 0)
        return -1;
    if (list.count && !(info->hops = calloc(list.count, sizeof *info->hops)))
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    while (vb_rd_has_more(&list)) {
        vb_login_hop *h = &info->hops[info->nhops++];
        if (vb_rd_array(&list, &f, err) < 0 || vb_rd_strdup(&f, 4096, &h->hop, err) < 0 ||
            vb_rd_strdup(&f, 1024, &h->kept, err) < 0 || vb_rd_i64(&f, &h->until, err) < 0)
            return -1;
    }
    return 0;
}

int vb_login_chain(const char *uri, const vb_auth *auth, uint64_t ttl_s, vb_login_info *info,
                   vb_error *err)
{
    memset(info, 0, sizeof *info);
    if (!uri || !*uri)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CLIENT, "no URI given");
    vb_conn *c = conn_with_auth(auth, err);
    if (!c)
        return -1;
    open_args a = { uri, 0, auth, 1, ttl_s };
    vb_msg reply;
    int rc = call(c, VB_BROKER_PROC_LOGIN, pack_open, &a, &reply, err);
    if (rc == 0) {
        rc = read_login_reply(&reply, info, err);
        vb_msg_clear(&reply);
    }
    conn_free(c);
    if (rc < 0)
        vb_login_info_clear(info);
    return rc;
}

int vb_login(const char *uri, const vb_auth *auth, uint64_t ttl_s, char **identity,
             int64_t *expires, vb_error *err)
{
    if (identity)
        *identity = NULL;
    vb_login_info info;
    if (vb_login_chain(uri, auth, ttl_s, &info, err) < 0)
        return -1;
    if (identity) {
        *identity = info.identity;
        info.identity = NULL;
    }
    if (expires)
        *expires = info.expires;
    vb_login_info_clear(&info);
    return 0;
}

void vb_logout_results_free(vb_logout_result *results, size_t n)
{
    for (size_t i = 0; results && i < n; i++) {
        free(results[i].uri);
        free(results[i].identity);
        free(results[i].note);
    }
    free(results);
}

static int read_logout_result(vb_rd *list, vb_logout_result *r, vb_error *err)
{
    vb_rd f;
    return vb_rd_array(list, &f, err) < 0 || vb_rd_strdup(&f, 4096, &r->uri, err) < 0 ||
                   vb_rd_strdup(&f, 1024, &r->identity, err) < 0 ||
                   vb_rd_bool(&f, &r->revoked, err) < 0 || vb_rd_strdup(&f, 1024, &r->note, err) < 0
               ? -1
               : 0;
}

int vb_logout(const char *uri, vb_logout_result **results, size_t *n, vb_error *err)
{
    *results = NULL;
    *n = 0;
    vb_conn *c = conn_new(1, err);
    if (!c)
        return -1;
    vb_msg reply;
    vb_rd rd, list;
    int rc = call(c, VB_BROKER_PROC_LOGOUT, NULL, uri, &reply, err);
    if (rc == 0) {
        rc = vb_rd_init(&rd, reply.body, err) < 0 || vb_rd_array(&rd, &list, err) < 0 ? -1 : 0;
        if (rc == 0 && list.count && !(*results = calloc(list.count, sizeof **results)))
            rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
        while (rc == 0 && vb_rd_has_more(&list))
            rc = read_logout_result(&list, &(*results)[(*n)++], err);
        vb_msg_clear(&reply);
    }
    conn_free(c);
    if (rc < 0) {
        vb_logout_results_free(*results, *n);
        *results = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- broker status --------------------------------------------------------------- */

static int read_upstream(vb_rd *list, vb_upstream_info *u, vb_error *err)
{
    vb_rd f;
    uint32_t ssf;
    if (vb_rd_array(list, &f, err) < 0 || vb_rd_strdup(&f, 4096, &u->uri, err) < 0 ||
        vb_rd_strdup(&f, 64, &u->auth_type, err) < 0 ||
        vb_rd_strdup(&f, 64, &u->sasl_mech, err) < 0 || vb_rd_u32(&f, &ssf, err) < 0 ||
        vb_rd_strdup(&f, 128, &u->server_id, err) < 0)
        return -1;
    u->ssf = ssf;
    return 0;
}

static int read_login(vb_rd *list, vb_cached_login_info *l, vb_error *err)
{
    vb_rd f;
    return vb_rd_array(list, &f, err) < 0 || vb_rd_strdup(&f, 128, &l->server_id, err) < 0 ||
                   vb_rd_strdup(&f, 1024, &l->identity, err) < 0 ||
                   vb_rd_strdup(&f, 4096, &l->uri, err) < 0 ||
                   vb_rd_strdup(&f, 64, &l->auth_type, err) < 0 ||
                   vb_rd_i64(&f, &l->created, err) < 0 || vb_rd_i64(&f, &l->expires, err) < 0
               ? -1
               : 0;
}

static int read_host_conn(vb_rd *list, vb_host_conn_info *h, vb_error *err)
{
    vb_rd f;
    uint64_t opens;
    if (vb_rd_array(list, &f, err) < 0 || vb_rd_strdup(&f, 4096, &h->endpoint, err) < 0 ||
        vb_rd_strdup(&f, 128, &h->server_id, err) < 0 ||
        vb_rd_strdup(&f, 64, &h->auth_type, err) < 0 || vb_rd_u64(&f, &opens, err) < 0 ||
        vb_rd_u64(&f, &h->idle_ms, err) < 0)
        return -1;
    h->opens = opens > UINT_MAX ? UINT_MAX : (unsigned)opens;
    return 0;
}

/* The 6th field, from brokers that close host connections on logout. */
static int read_host_conns(vb_rd *rd, vb_broker_status *status, vb_error *err)
{
    vb_rd list;
    if (!vb_rd_has_more(rd))
        return 0;
    if (vb_rd_array(rd, &list, err) < 0)
        return -1;
    if (list.count && !(status->hosts = calloc(list.count, sizeof *status->hosts)))
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
    while (vb_rd_has_more(&list))
        if (read_host_conn(&list, &status->hosts[status->nhosts++], err) < 0)
            return -1;
    return 0;
}

void vb_broker_status_clear(vb_broker_status *status)
{
    for (size_t i = 0; status->hosts && i < status->nhosts; i++) {
        free(status->hosts[i].endpoint);
        free(status->hosts[i].server_id);
        free(status->hosts[i].auth_type);
    }
    free(status->hosts);
    for (size_t i = 0; status->logins && i < status->nlogins; i++) {
        vb_cached_login_info *l = &status->logins[i];
        free(l->server_id);
        free(l->identity);
        free(l->uri);
        free(l->auth_type);
    }
    free(status->logins);
    for (size_t i = 0; status->upstreams && i < status->nupstreams; i++) {
        vb_upstream_info *u = &status->upstreams[i];
        free(u->uri);
        free(u->auth_type);
        free(u->sasl_mech);
        free(u->server_id);
    }
    free(status->upstreams);
    memset(status, 0, sizeof *status);
}

int vb_broker_get_status(vb_broker_status *status, vb_error *err)
{
    memset(status, 0, sizeof *status);
    vb_conn *c = conn_new(0, err);
    if (!c)
        return -1;
    vb_msg reply;
    vb_rd rd, list;
    int64_t pid;
    uint64_t uptime;
    uint32_t clients;
    int rc = call(c, VB_BROKER_PROC_STATUS, NULL, NULL, &reply, err);
    if (rc == 0) {
        rc = vb_rd_init(&rd, reply.body, err) < 0 || vb_rd_i64(&rd, &pid, err) < 0 ||
                     vb_rd_u64(&rd, &uptime, err) < 0 || vb_rd_u32(&rd, &clients, err) < 0 ||
                     vb_rd_array(&rd, &list, err) < 0
                 ? -1
                 : 0;
        if (rc == 0 && list.count && !(status->upstreams = calloc(list.count, sizeof *status->upstreams)))
            rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
        while (rc == 0 && vb_rd_has_more(&list))
            rc = read_upstream(&list, &status->upstreams[status->nupstreams++], err);
        vb_rd logins;
        if (rc == 0 && vb_rd_has_more(&rd)) { /* brokers before the login cache send 4 fields */
            rc = vb_rd_array(&rd, &logins, err);
            if (rc == 0 && logins.count &&
                !(status->logins = calloc(logins.count, sizeof *status->logins)))
                rc = vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CLIENT, "out of memory");
            while (rc == 0 && vb_rd_has_more(&logins))
                rc = read_login(&logins, &status->logins[status->nlogins++], err);
            if (rc == 0)
                rc = read_host_conns(&rd, status, err);
        }
        if (rc == 0) {
            status->pid = pid;
            status->uptime_s = uptime;
            status->clients = clients;
        }
        vb_msg_clear(&reply);
    }
    conn_free(c);
    if (rc < 0)
        vb_broker_status_clear(status);
    return rc;
}
