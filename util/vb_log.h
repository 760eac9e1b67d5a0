/*
 * vb_log.h — the daemons' log (stderr, one line per event).
 * Only vbhostd and vbrokerd call this; library code returns vb_error values.
 * Never pass a secret: log names, peers, mechanisms and error codes only.
 */
#ifndef VB_LOG_H
#define VB_LOG_H

#include "vb_error.h"

/* A longer message is cut. */
#define VB_LOG_LINE_MAX 1024

enum vb_log_level { VB_LOG_ERROR = 0, VB_LOG_WARN = 1, VB_LOG_INFO = 2, VB_LOG_DEBUG = 3 };

void vb_log_init(const char *program, int level);
/* "error", "warn", "info", "debug" → level; -1 when unknown. */
int vb_log_level_parse(const char *name);
void vb_log_set_level(int level);
/* Where the lines go. Default: stderr. A file is opened for appending
 * (0600, not through a symlink) and put on fd 2, so whatever else the
 * process writes to stderr (a sanitizer report) lands there too;
 * vb_log_reopen opens the same path again (after logrotate moved it).
 * syslog is for a detached daemon that was given no file. */
int vb_log_to_file(const char *path, vb_error *err);
int vb_log_reopen(vb_error *err);
/* Bound the file: once a line would take it past max_bytes, the file
 * becomes PATH.1 (replacing the one before) and a new PATH is started, so
 * there are never more than two files, each at most max_bytes plus one line
 * (VB_LOG_LINE_MAX). When the rename fails the file is emptied instead.
 * 0 (the default) never rotates (vbhostd leaves that to logrotate). */
void vb_log_set_max_size(unsigned long max_bytes);
void vb_log_to_syslog(void);
/* The file vb_log_to_file put on fd 2, or NULL. */
const char *vb_log_file_path(void);
void vb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
