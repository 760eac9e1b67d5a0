#include "vb_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "vbroker";
static int log_level = VB_LOG_INFO;
static int log_syslog;
static char *log_path; /* the file on fd 2, for vb_log_reopen */
static unsigned long log_max_size; /* 0: never rotate */
/* Workers log too: a rotation and the lines around it must not interleave. */
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void vb_log_init(const char *program, int level)
{
    log_program = program;
    log_level = level;
}

void vb_log_set_level(int level)
{
    log_level = level;
}

int vb_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* O_NONBLOCK only for the open, so a FIFO planted at path cannot hang us
 * before the regular-file check refuses it. */
static int open_log_fd(const char *path, vb_error *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
                            O_NONBLOCK, 0600);
    if (fd < 0 && errno == ELOOP)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_DAEMON,
                            "refusing log file %s: it is a symbolic link, and a log is never "
                            "opened through one", path);
    if (fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot open log file %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, O_APPEND) < 0) {
        close(fd);
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_DAEMON,
                            "refusing log file %s: not a regular file", path);
    }
    return fd;
}

static int open_onto_stderr(const char *path, vb_error *err)
{
    int fd = open_log_fd(path, err);
    if (fd < 0)
        return -1;
    /* dup2 swaps fd 2 at once: a thread logging meanwhile writes whole
     * lines to the old file or the new one */
    int rc = dup2(fd, STDERR_FILENO) < 0
                 ? vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot log to %s", path)
                 : 0;
    close(fd);
    return rc;
}

/* With log_mutex held: make room for a line of `incoming` bytes. */
static void rotate_if_full(size_t incoming)
{
    struct stat st;
    if (!log_path || !log_max_size || fstat(STDERR_FILENO, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size == 0 || (unsigned long)st.st_size + incoming <= log_max_size)
        return;
    char old[4096];
    vb_error err;
    int n = snprintf(old, sizeof old, "%s.1", log_path);
    int moved = n > 0 && (size_t)n < sizeof old &&
                (rename(log_path, old) == 0 || errno == ENOENT); /* ENOENT: someone moved it */
    /* the file stays bounded even when it cannot be moved aside */
    if (!moved || open_onto_stderr(log_path, &err) < 0)
        (void)!ftruncate(STDERR_FILENO, 0);
}

void vb_log_set_max_size(unsigned long max_bytes)
{
    log_max_size = max_bytes;
}

int vb_log_to_file(const char *path, vb_error *err)
{
    char *copy = strdup(path);
    if (!copy)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
    pthread_mutex_lock(&log_mutex);
    int rc = open_onto_stderr(path, err);
    if (rc == 0) {
        free(log_path);
        log_path = copy;
        log_syslog = 0;
    } else
        free(copy);
    pthread_mutex_unlock(&log_mutex);
    return rc;
}

int vb_log_reopen(vb_error *err)
{
    pthread_mutex_lock(&log_mutex);
    int rc = log_path ? open_onto_stderr(log_path, err) : 0;
    pthread_mutex_unlock(&log_mutex);
    return rc;
}

const char *vb_log_file_path(void)
{
    return log_path;
}

void vb_log_to_syslog(void)
{
    openlog(log_program, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_syslog = 1;
}

void vb_log(int level, const char *fmt, ...)
{
    static const int priorities[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    if (level > log_level || level < 0)
        return;
    char line[VB_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_syslog) {
        syslog(priorities[level], "%s: %s", level_names[level], line);
        return;
    }
    char stamp[32], out[VB_LOG_LINE_MAX + 128];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(out, sizeof out, "%s %s[%d]: %s: %s\n", stamp, log_program, (int)getpid(),
                     level_names[level], line);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof out ? (size_t)n : sizeof out - 1;
    pthread_mutex_lock(&log_mutex);
    rotate_if_full(len);
    fwrite(out, 1, len, stderr);
    pthread_mutex_unlock(&log_mutex);
}
