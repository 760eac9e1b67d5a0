#include "vb_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "vbroker";
static int log_level = VB_LOG_INFO;
static int log_syslog;
static char *log_path; /* the file on fd 2, for vb_log_reopen */

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

static int open_onto_stderr(const char *path, vb_error *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot open log file %s", path);
    /* dup2 swaps fd 2 at once: a thread logging meanwhile writes whole
     * lines to the old file or the new one */
    int rc = dup2(fd, STDERR_FILENO) < 0
                 ? vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot log to %s", path)
                 : 0;
    close(fd);
    return rc;
}

int vb_log_to_file(const char *path, vb_error *err)
{
    char *copy = strdup(path);
    if (!copy)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
    if (open_onto_stderr(path, err) < 0) {
        free(copy);
        return -1;
    }
    free(log_path);
    log_path = copy;
    log_syslog = 0;
    return 0;
}

int vb_log_reopen(vb_error *err)
{
    return log_path ? open_onto_stderr(log_path, err) : 0;
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
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_syslog) {
        syslog(priorities[level], "%s: %s", level_names[level], line);
        return;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s[%d]: %s: %s\n", stamp, log_program, (int)getpid(), level_names[level],
            line);
}
