/* Helpers shared by the vb_testsupport*.c files; not for tests. */
#ifndef VB_TESTSUPPORT_PRIV_H
#define VB_TESTSUPPORT_PRIV_H

#include "vb_testsupport.h"

#include <stdint.h>

/* asprintf that aborts on out-of-memory: this is test code. */
char *vb_ts_priv_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds on CLOCK_MONOTONIC. */

/* Remove a temp dir now and forget it (kept and reported under VB_TS_KEEP). */
void vb_ts_priv_rmtree_now(const char *dir);

/* Copy dir's logs and sqlite files to $VB_TS_SCAN_DIR (when set) before it
 * is removed, for the suite-wide secret scan. */
void vb_ts_priv_collect_for_scan(const char *dir);

/* 1 when every byte of s is in the set [A-Za-z0-9] or in extra. */
int vb_ts_priv_chars_ok(const char *s, const char *extra);

#endif
