/* vb_testsupport core: temp dirs, child processes, waiting with deadlines.
 *
 * Every child and temp dir is recorded in a small registry so that
 * vb_ts_cleanup() (atexit, or a cmocka group teardown) can undo a test that
 * failed half-way: cmocka's failed assertions longjmp out of the test body
 * and skip its own clean-up code.
 */
#include "vb_testsupport_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define VB_TS_MAX_PIDS      256
#define VB_TS_MAX_DIRS      256
#define VB_TS_POLL_STEP_MS  2     /* condition polling period */
#define VB_TS_CLEANUP_MS    3000  /* SIGTERM grace for leftovers at cleanup */
#define VB_TS_RUN_OUT_MAX   (64u << 20)

/* ---- small helpers ------------------------------------------------------ */

char *vb_ts_priv_fmt(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "vb_testsupport: out of memory\n");
        abort();
    }
    return s;
}

int64_t vb_ts_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vb_ts_priv_chars_ok(const char *s, const char *extra)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (extra == NULL || strchr(extra, c) == NULL))
            return 0;
    }
    return 1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Shell-style exit status from a waitpid() status. */
static int shell_status(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

/* ---- registry ----------------------------------------------------------- */

struct reg_pid {
    pid_t pid;
    char name[48];
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_pid reg_pids[VB_TS_MAX_PIDS];
static size_t reg_npids;
static char *reg_dirs[VB_TS_MAX_DIRS];
static size_t reg_ndirs;
static pid_t reg_owner;   /* process that registered: a forked copy must not clean up */

/* Call with reg_lock held. */
static void reg_first_use(void)
{
    if (reg_owner == 0) {
        reg_owner = getpid();
        atexit(vb_ts_cleanup);
    }
}

static int reg_add_pid(pid_t pid, const char *argv0)
{
    int rc = 0;
    pthread_mutex_lock(&reg_lock);
    reg_first_use();
    if (reg_npids == VB_TS_MAX_PIDS) {
        rc = -1;
    } else {
        const char *base = strrchr(argv0, '/');
        reg_pids[reg_npids].pid = pid;
        snprintf(reg_pids[reg_npids].name, sizeof reg_pids[0].name, "%s", base ? base + 1 : argv0);
        reg_npids++;
    }
    pthread_mutex_unlock(&reg_lock);
    if (rc != 0)
        fprintf(stderr, "vb_ts: more than %d live children; raise VB_TS_MAX_PIDS\n", VB_TS_MAX_PIDS);
    return rc;
}

static void reg_del_pid(pid_t pid)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < reg_npids; i++) {
        if (reg_pids[i].pid == pid) {
            reg_pids[i] = reg_pids[--reg_npids];
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

int vb_ts_pid_count(void)
{
    pthread_mutex_lock(&reg_lock);
    int n = (int)reg_npids;
    pthread_mutex_unlock(&reg_lock);
    return n;
}

static int keep_dirs(void)
{
    const char *k = getenv("VB_TS_KEEP");
    return k != NULL && *k != '\0' && strcmp(k, "0") != 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "vb_ts: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void rmtree(const char *dir)
{
    /* Only ever our own mkdtemp() dirs. */
    if (strncmp(dir, "/tmp/vbts-", 10) != 0 || strstr(dir, "..") != NULL) {
        fprintf(stderr, "vb_ts: refusing to remove %s\n", dir);
        return;
    }
    vb_ts_priv_collect_for_scan(dir);
    if (keep_dirs()) {
        fprintf(stderr, "vb_ts: VB_TS_KEEP set, keeping %s\n", dir);
        return;
    }
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "vb_ts: cannot walk %s: %s\n", dir, strerror(errno));
}

void vb_ts_priv_rmtree_now(const char *dir)
{
    char *own = NULL;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < reg_ndirs; i++) {
        if (strcmp(reg_dirs[i], dir) == 0) {
            own = reg_dirs[i];
            reg_dirs[i] = reg_dirs[--reg_ndirs];
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    rmtree(dir);
    free(own);
}

/* ---- temp dirs and files ------------------------------------------------ */

char *vb_ts_tmpdir(const char *tag)
{
    char clean[33];
    size_t n = 0;
    for (const char *p = tag ? tag : "tmp"; *p && n < sizeof clean - 1; p++)
        clean[n++] = vb_ts_priv_chars_ok((char[]){ *p, 0 }, "-_") ? *p : '_';
    clean[n] = '\0';

    char *path = vb_ts_priv_fmt("/tmp/vbts-%s-XXXXXX", n ? clean : "tmp");
    if (mkdtemp(path) == NULL) {
        fprintf(stderr, "vb_ts_tmpdir: mkdtemp %s: %s\n", path, strerror(errno));
        free(path);
        return NULL;
    }
    pthread_mutex_lock(&reg_lock);
    reg_first_use();
    int full = reg_ndirs == VB_TS_MAX_DIRS;
    if (!full)
        reg_dirs[reg_ndirs++] = path;
    pthread_mutex_unlock(&reg_lock);
    if (full) {
        fprintf(stderr, "vb_ts_tmpdir: more than %d temp dirs\n", VB_TS_MAX_DIRS);
        rmdir(path);
        free(path);
        return NULL;
    }
    return path;
}

int vb_ts_write_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "vb_ts_write_file: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(content), off = 0;
    while (off < len) {
        ssize_t w = write(fd, content + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "vb_ts_write_file: write %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    /* open() only applies mode to a new file, and through the umask. */
    if (fchmod(fd, mode) != 0 || close(fd) != 0) {
        fprintf(stderr, "vb_ts_write_file: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int vb_ts_file_mode(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? (int)(st.st_mode & 07777) : -1;
}

long vb_ts_file_size(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) ? (long)st.st_size : -1;
}

char *vb_ts_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        fprintf(stderr, "vb_ts_read_file: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        abort();
    for (;;) {
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (buf == NULL)
                abort();
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "vb_ts_read_file: read error on %s\n", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* A broker a test starts (spawned, or autostarted by libvbroker) never puts
 * a pinentry on the display or terminal the tests run from: unless the test,
 * or whoever runs it, names one (vbrokerd --pinentry wins over this). */
__attribute__((constructor)) static void vb_ts_no_pinentry(void)
{
    setenv("VBROKER_PINENTRY", "none", 0);
}

/* ---- spawning ----------------------------------------------------------- */

/* The child's environment: ours, minus keys overridden or removed by extra,
 * plus extra's "K=V" entries. Points into existing strings. */
static char **env_build(char *const extra[])
{
    size_t ne = 0, nx = 0;
    while (environ && environ[ne])
        ne++;
    while (extra && extra[nx])
        nx++;
    char **env = calloc(ne + nx + 1, sizeof *env);
    if (env == NULL)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        size_t klen = strcspn(environ[i], "=");
        int drop = 0;
        for (size_t j = 0; j < nx && !drop; j++) {
            size_t xlen = strcspn(extra[j], "=");
            drop = xlen == klen && strncmp(environ[i], extra[j], klen) == 0;
        }
        if (!drop)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < nx; j++)
        if (strchr(extra[j], '=') != NULL)
            env[k++] = extra[j];
    env[k] = NULL;
    return env;
}

/* Resolve argv0 against PATH in the parent: execvpe() is not async-signal-safe. */
static char *resolve_path(const char *argv0)
{
    if (strchr(argv0, '/') != NULL)
        return vb_ts_priv_fmt("%s", argv0);
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0')
        path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
    while (*path) {
        size_t len = strcspn(path, ":");
        char *cand = vb_ts_priv_fmt("%.*s/%s", (int)len, len ? path : ".", argv0);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        path += len;
        if (*path == ':')
            path++;
    }
    fprintf(stderr, "vb_ts: %s: command not found in PATH\n", argv0);
    return NULL;
}

/* fork + execve with the given stdin/stdout/stderr fds. Exec failure is
 * reported through a close-on-exec pipe, so -1 means "did not start". */
static pid_t spawn_fds(char *const argv[], char *const env_extra[], int in_fd, int out_fd, int err_fd)
{
    if (argv == NULL || argv[0] == NULL) {
        fprintf(stderr, "vb_ts_spawn: empty argv\n");
        return -1;
    }
    char *path = resolve_path(argv[0]);
    if (path == NULL)
        return -1;
    char **env = env_build(env_extra);
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        fprintf(stderr, "vb_ts_spawn: pipe: %s\n", strerror(errno));
        free(env);
        free(path);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: async-signal-safe calls only until execve. */
        int e;
        setsid();
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        static const int sigs[] = { SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT };
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            sigaction(sigs[i], &dfl, NULL);
        if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
            goto fail;
        /* No stray descriptors of the test (listening sockets...) in peers. */
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        execve(path, argv, env);
fail:
        e = errno;
        if (write(errpipe[1], &e, sizeof e) < 0) { /* nothing more to do */ }
        _exit(127);
    }
    int fork_errno = errno;
    close(errpipe[1]);
    free(env);
    if (pid < 0) {
        fprintf(stderr, "vb_ts_spawn: fork: %s\n", strerror(fork_errno));
        close(errpipe[0]);
        free(path);
        return -1;
    }
    int child_errno = 0;
    ssize_t r;
    do
        r = read(errpipe[0], &child_errno, sizeof child_errno);
    while (r < 0 && errno == EINTR);
    close(errpipe[0]);
    if (r > 0) {
        fprintf(stderr, "vb_ts_spawn: cannot execute %s: %s\n", path, strerror(child_errno));
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        free(path);
        return -1;
    }
    free(path);
    if (reg_add_pid(pid, argv[0]) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static int exited_unreaped(pid_t pid);

int vb_ts_adopt_orphans(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        fprintf(stderr, "vb_ts_adopt_orphans: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

int vb_ts_adopt(pid_t pid, const char *name)
{
    if (pid <= 0 || exited_unreaped(pid) < 0) {
        fprintf(stderr, "vb_ts_adopt: %d is not a child of this process\n", (int)pid);
        return -1;
    }
    return reg_add_pid(pid, name);
}

pid_t vb_ts_spawn(char *const argv[], char *const env_extra[], const char *log_path)
{
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)
                       : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (in < 0 || out < 0) {
        fprintf(stderr, "vb_ts_spawn: open %s: %s\n", log_path ? log_path : "/dev/null",
                strerror(errno));
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
        return -1;
    }
    pid_t pid = spawn_fds(argv, env_extra, in, out, out);
    close(in);
    close(out);
    return pid;
}

/* ---- stopping ----------------------------------------------------------- */

/* 1 when pid has exited, leaving it unreaped (a zombie keeps its pid and
 * process group id reserved, so signalling the group stays safe). */
static int exited_unreaped(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD ? -1 : 0;
    return si.si_pid == pid;
}

static int cond_exited(void *arg)
{
    return exited_unreaped(*(pid_t *)arg) != 0;
}

/* The leader has exited (or been SIGKILLed) but is not reaped yet: sweep its
 * group, then reap. Returns the shell-style status. */
static int sweep_and_reap(pid_t pid)
{
    int wstatus = 0;
    /* Only while pid is our unreaped child is -pid certainly its group. */
    if (exited_unreaped(pid) >= 0)
        kill(-pid, SIGKILL);
    while (waitpid(pid, &wstatus, 0) < 0) {
        if (errno != EINTR) {
            reg_del_pid(pid);
            return -1;
        }
    }
    reg_del_pid(pid);
    return shell_status(wstatus);
}

int vb_ts_stop(pid_t pid, int timeout_ms)
{
    if (pid <= 0 || exited_unreaped(pid) < 0) {
        fprintf(stderr, "vb_ts_stop: %d is not an unreaped child of this process\n", (int)pid);
        reg_del_pid(pid);
        return -1;
    }
    kill(pid, SIGTERM);
    if (vb_ts_wait_until_quiet(cond_exited, &pid, timeout_ms) != 0) {
        fprintf(stderr, "vb_ts_stop: pid %d ignored SIGTERM for %d ms, sending SIGKILL\n",
                (int)pid, timeout_ms);
        kill(pid, SIGKILL);
    }
    return sweep_and_reap(pid);
}

struct all_exited {
    pid_t *pids;
    size_t n;
};

static int cond_all_exited(void *arg)
{
    struct all_exited *a = arg;
    for (size_t i = 0; i < a->n; i++)
        if (exited_unreaped(a->pids[i]) == 0)
            return 0;
    return 1;
}

void vb_ts_cleanup(void)
{
    pid_t pids[VB_TS_MAX_PIDS];
    char *dirs[VB_TS_MAX_DIRS];
    size_t np, nd;

    pthread_mutex_lock(&reg_lock);
    if (reg_owner != getpid()) {   /* never used, or a forked copy of the test */
        pthread_mutex_unlock(&reg_lock);
        return;
    }
    np = reg_npids;
    for (size_t i = 0; i < np; i++) {
        pids[i] = reg_pids[i].pid;
        fprintf(stderr, "vb_ts_cleanup: stopping leftover pid %d (%s)\n",
                (int)reg_pids[i].pid, reg_pids[i].name);
    }
    nd = reg_ndirs;
    memcpy(dirs, reg_dirs, nd * sizeof dirs[0]);
    reg_ndirs = 0;
    pthread_mutex_unlock(&reg_lock);

    /* Everyone gets SIGTERM at once and shares one deadline. */
    for (size_t i = 0; i < np; i++)
        kill(pids[i], SIGTERM);
    struct all_exited all = { pids, np };
    if (np > 0 && vb_ts_wait_until_quiet(cond_all_exited, &all, VB_TS_CLEANUP_MS) != 0) {
        for (size_t i = 0; i < np; i++) {
            if (exited_unreaped(pids[i]) == 0) {
                fprintf(stderr, "vb_ts_cleanup: pid %d ignored SIGTERM, sending SIGKILL\n",
                        (int)pids[i]);
                kill(pids[i], SIGKILL);
            }
        }
    }
    for (size_t i = 0; i < np; i++) {
        if (exited_unreaped(pids[i]) < 0)   /* reaped elsewhere meanwhile */
            reg_del_pid(pids[i]);
        else
            sweep_and_reap(pids[i]);
    }

    for (size_t i = 0; i < nd; i++) {
        rmtree(dirs[i]);
        free(dirs[i]);
    }
}

int vb_ts_group_teardown(void **state)
{
    (void)state;
    vb_ts_cleanup();
    return 0;
}

/* ---- running to completion ---------------------------------------------- */

/* Kill a timed-out child and its group, reap it. */
static void run_kill(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    sweep_and_reap(pid);
}

int vb_ts_run(char *const argv[], char *const env_extra[], const char *stdin_text,
              char **output, int timeout_ms)
{
    int64_t deadline = vb_ts_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int outp[2] = { -1, -1 }, inp[2] = { -1, -1 };
    const char *name = argv && argv[0] ? argv[0] : "(null)";

    if (output)
        *output = NULL;
    if (pipe2(outp, O_CLOEXEC) != 0) {
        fprintf(stderr, "vb_ts_run: pipe: %s\n", strerror(errno));
        return -1;
    }
    /* stdin is a socket so a child that exits early gives us EPIPE from
     * send(MSG_NOSIGNAL) instead of a SIGPIPE that would kill the test. */
    if (stdin_text != NULL) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, inp) != 0) {
            fprintf(stderr, "vb_ts_run: socketpair: %s\n", strerror(errno));
            close(outp[0]);
            close(outp[1]);
            return -1;
        }
    } else {
        inp[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    pid_t pid = spawn_fds(argv, env_extra, inp[1], outp[1], outp[1]);
    close(outp[1]);
    close(inp[1]);
    if (pid < 0) {
        close(outp[0]);
        if (inp[0] >= 0)
            close(inp[0]);
        return -1;
    }

    size_t cap = 1024, len = 0, in_off = 0, in_len = stdin_text ? strlen(stdin_text) : 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        abort();
    int in_fd = inp[0], out_fd = outp[0], timed_out = 0;
    if (in_fd >= 0 && in_len == 0) {
        close(in_fd);
        in_fd = -1;
    }

    while (out_fd >= 0) {
        struct pollfd pfd[2];
        nfds_t n = 0;
        pfd[n++] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
        if (in_fd >= 0)
            pfd[n++] = (struct pollfd){ .fd = in_fd, .events = POLLOUT };
        int64_t left = deadline - vb_ts_now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        int pr = poll(pfd, n, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            fprintf(stderr, "vb_ts_run: poll: %s\n", strerror(errno));
            timed_out = 1;
            break;
        }
        if (n > 1 && pfd[1].revents) {
            ssize_t w = send(in_fd, stdin_text + in_off, in_len - in_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                in_off += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
                close(in_fd);   /* all sent, or the child stopped reading: EOF */
                in_fd = -1;
            }
        }
        if (pfd[0].revents) {
            if (cap - len < 512) {
                cap *= 2;
                buf = realloc(buf, cap);
                if (buf == NULL)
                    abort();
            }
            ssize_t r = read(out_fd, buf + len, cap - len - 1);
            if (r > 0 && len + (size_t)r <= VB_TS_RUN_OUT_MAX)
                len += (size_t)r;
            else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
                close(out_fd);
                out_fd = -1;
            }
        }
    }
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    buf[len] = '\0';

    int status = -1;
    if (!timed_out) {
        /* Output closed: normally the child has exited, but it may have closed
         * its stdout early. */
        int64_t left = deadline - vb_ts_now_ms();
        if (vb_ts_wait_until_quiet(cond_exited, &pid, left > 0 ? (int)left : 0) != 0)
            timed_out = 1;
        else
            status = sweep_and_reap(pid);
    }
    if (timed_out) {
        fprintf(stderr, "vb_ts_run: %s did not finish within %d ms, killed it; output so far:\n%s\n",
                name, timeout_ms, buf);
        run_kill(pid);
        status = -1;
    }
    if (output)
        *output = buf;
    else
        free(buf);
    return status;
}

/* ---- waiting ------------------------------------------------------------ */

int vb_ts_wait_until_quiet(int (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = vb_ts_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (cond(arg))
            return 0;
        int64_t left = deadline - vb_ts_now_ms();
        if (left <= 0)
            return cond(arg) ? 0 : -1;
        sleep_ms(left < VB_TS_POLL_STEP_MS ? (int)left : VB_TS_POLL_STEP_MS);
    }
}

int vb_ts_wait_until(int (*cond)(void *), void *arg, int timeout_ms)
{
    if (vb_ts_wait_until_quiet(cond, arg, timeout_ms) == 0)
        return 0;
    fprintf(stderr, "vb_ts_wait_until: condition still false after %d ms\n", timeout_ms);
    return -1;
}

static int cond_unix_socket(void *arg)
{
    const char *path = arg;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return 0;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

int vb_ts_wait_unix_socket(const char *path, int timeout_ms)
{
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "vb_ts_wait_unix_socket: path too long: %s\n", path);
        return -1;
    }
    if (vb_ts_wait_until_quiet(cond_unix_socket, (void *)path, timeout_ms) == 0)
        return 0;
    fprintf(stderr, "vb_ts_wait_unix_socket: nothing accepts on %s after %d ms\n", path, timeout_ms);
    return -1;
}

static int cond_tcp(void *arg)
{
    struct addrinfo *ai = arg;
    for (; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
        close(fd);
        if (ok)
            return 1;
    }
    return 0;
}

int vb_ts_wait_tcp(const char *host, int port, int timeout_ms)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, service, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "vb_ts_wait_tcp: %s: %s\n", host, gai_strerror(gai));
        return -1;
    }
    int rc = vb_ts_wait_until_quiet(cond_tcp, ai, timeout_ms);
    freeaddrinfo(ai);
    if (rc != 0)
        fprintf(stderr, "vb_ts_wait_tcp: nothing accepts on %s:%d after %d ms\n", host, port, timeout_ms);
    return rc;
}

static int cond_file(void *arg)
{
    struct stat st;
    return stat((const char *)arg, &st) == 0;
}

int vb_ts_wait_file(const char *path, int timeout_ms)
{
    if (vb_ts_wait_until_quiet(cond_file, (void *)path, timeout_ms) == 0)
        return 0;
    fprintf(stderr, "vb_ts_wait_file: %s still missing after %d ms\n", path, timeout_ms);
    return -1;
}

int vb_ts_wait_pid_exit(pid_t pid, int timeout_ms, int *status)
{
    if (pid <= 0 || exited_unreaped(pid) < 0) {
        fprintf(stderr, "vb_ts_wait_pid_exit: %d is not an unreaped child of this process\n", (int)pid);
        return -1;
    }
    if (vb_ts_wait_until_quiet(cond_exited, &pid, timeout_ms) != 0) {
        fprintf(stderr, "vb_ts_wait_pid_exit: pid %d still running after %d ms\n", (int)pid, timeout_ms);
        return -1;
    }
    int st = sweep_and_reap(pid);
    if (status)
        *status = st;
    return 0;
}

/* ---- ports and memory --------------------------------------------------- */

int vb_ts_free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "vb_ts_free_tcp_port: socket: %s\n", strerror(errno));
        return -1;
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        fprintf(stderr, "vb_ts_free_tcp_port: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* The number after "FIELD:" in /proc/PID/status, -1 when absent. */
static long proc_status_field(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t flen = strlen(field);
    long value = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            char *end;
            value = strtol(line + flen + 1, &end, 10);
            if (end == line + flen + 1)
                value = -1;
            break;
        }
    }
    fclose(f);
    return value;
}

long vb_ts_rss_kib(pid_t pid)
{
    return proc_status_field(pid, "VmRSS");
}

int vb_ts_thread_count(pid_t pid)
{
    return (int)proc_status_field(pid, "Threads");
}

/* ---- logs ---------------------------------------------------------------- */

int vb_ts_check_exit(const char *name, int status, const char *log)
{
    if (status == 0 || status == 143)
        return 0;
    fprintf(stderr, "%s exited with status %d on SIGTERM; from %s:\n", name, status, log);
    size_t len = 0;
    char *text = vb_ts_read_file(log, &len);
    const char *from = NULL;
    /* the last report: a restarted daemon appends to the same log */
    static const char *const marks[] = { "ERROR: LeakSanitizer", "ERROR: AddressSanitizer",
                                         "HEAP SUMMARY", "ERROR SUMMARY" };
    for (size_t m = 0; text && !from && m < 4; m++)
        for (const char *p = text; (p = strstr(p, marks[m])) != NULL; p++)
            from = p;
    if (from) {
        /* the first stacks, where they leave libc and the sanitizer */
        int lines = 0;
        for (const char *p = from; *p && lines < 400; lines++) {
            const char *nl = strchr(p, '\n');
            int n = nl ? (int)(nl - p) : (int)strlen(p);
            int keep = memmem(p, (size_t)n, "leak of", 7) || memmem(p, (size_t)n, "lost in", 7) ||
                       memmem(p, (size_t)n, "Invalid", 7) || memmem(p, (size_t)n, "SUMMARY", 7) ||
                       memmem(p, (size_t)n, "uninitialised", 13) ||
                       (memmem(p, (size_t)n, ".c:", 3) && !memmem(p, (size_t)n, "libc", 4) &&
                        !memmem(p, (size_t)n, "sanitizer", 9));
            if (keep)
                fprintf(stderr, "    %.*s\n", n, p);
            p = nl ? nl + 1 : p + n;
        }
    }
    free(text);
    return -1;
}


int vb_ts_count_in_file(const char *path, const char *needle)
{
    size_t len = 0;
    char *text = vb_ts_read_file(path, &len);
    int count = 0;
    for (char *p = text; p && (p = memmem(p, len - (size_t)(p - text), needle, strlen(needle)));
         p++)
        count++;
    free(text);
    return count;
}

typedef struct log_wait {
    const char *path, *needle;
    int at_least;
} log_wait;

static int log_has(void *arg)
{
    const log_wait *w = arg;
    return vb_ts_count_in_file(w->path, w->needle) >= w->at_least;
}

int vb_ts_wait_for_log(const char *path, const char *needle, int at_least, int timeout_ms)
{
    log_wait w = { path, needle, at_least };
    return vb_ts_wait_until(log_has, &w, timeout_ms);
}

pid_t vb_ts_spawn_daemon(char *const argv[], const char *log)
{
    const char *w = getenv("VB_TEST_DAEMON_WRAPPER");
    if (!w || !*w)
        return vb_ts_spawn(argv, NULL, log);
    char *copy = strdup(w);
    char *full[96];
    size_t n = 0;
    for (char *t = strtok(copy, " "); t && n < 64; t = strtok(NULL, " "))
        full[n++] = t;
    for (size_t i = 0; argv[i] && n < 95; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    pid_t pid = vb_ts_spawn(full, NULL, log);
    free(copy);
    return pid;
}

static int slowdown(void)
{
    static int f;
    if (!f) {
        const char *s = getenv("VB_TEST_SLOWDOWN");
        f = s && atoi(s) > 0 ? atoi(s) : 1;
        const char *w = getenv("VB_TEST_DAEMON_WRAPPER");
        if (w && *w && f < 10)
            f = 10;
    }
    return f;
}

int vb_ts_scaled_ms(int base)
{
    return base * slowdown();
}
