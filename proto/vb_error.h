/*
 * vb_error.h — errors as values.
 *
 * Every layer reports failure by filling a vb_error (code, domain, message)
 * and returning -1; the edge (a CLI, a reply frame, a log line) decides how
 * to show it. Library code never prints or exits. Messages must never
 * contain a secret: callers format only names, numbers and peer text that
 * is already public.
 */
#ifndef VB_ERROR_H
#define VB_ERROR_H

#include "vb_protocol.h"
/* struct vb_error (code: enum vb_error_code, domain: enum vb_error_domain)
 * is defined once, in the header libvbroker's API shares. */
#include "vbroker_types.h"

/* Fill err (when err is non-NULL) and return -1, so callers can write
 * `return vb_error_set(err, ...);`. */
int vb_error_set(vb_error *err, int code, int domain, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same, appending ": strerror(errnum)". */
int vb_error_set_errno(vb_error *err, int errnum, int domain, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void vb_error_clear(vb_error *err);
void vb_error_copy(vb_error *dst, const vb_error *src);
/* Prefix the existing message with context: "opening X: <old message>". */
void vb_error_prefix(vb_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
