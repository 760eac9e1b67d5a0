/*
 * vb_log.h — the daemons' log (stderr, one line per event).
 * Only vbhostd and vbrokerd call this; library code returns vb_error values.
 * Never pass a secret: log names, peers, mechanisms and error codes only.
 */
#ifndef VB_LOG_H
#define VB_LOG_H

enum vb_log_level { VB_LOG_ERROR = 0, VB_LOG_WARN = 1, VB_LOG_INFO = 2, VB_LOG_DEBUG = 3 };

void vb_log_init(const char *program, int level);
/* "error", "warn", "info", "debug" → level; -1 when unknown. */
int vb_log_level_parse(const char *name);
void vb_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
