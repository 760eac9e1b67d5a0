#include "vb_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void format_message(vb_error *err, const char *fmt, va_list ap)
{
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

int vb_error_set(vb_error *err, int code, int domain, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->code = code;
    err->domain = domain;
    va_list ap;
    va_start(ap, fmt);
    format_message(err, fmt, ap);
    va_end(ap);
    return -1;
}

int vb_error_set_errno(vb_error *err, int errnum, int domain, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->code = VB_ERR_SYSTEM;
    err->domain = domain;
    va_list ap;
    va_start(ap, fmt);
    format_message(err, fmt, ap);
    va_end(ap);
    size_t used = strlen(err->message);
    snprintf(err->message + used, sizeof err->message - used, ": %s", strerror(errnum));
    return -1;
}

void vb_error_clear(vb_error *err)
{
    if (!err)
        return;
    err->code = VB_ERR_OK;
    err->domain = VB_DOM_NONE;
    err->message[0] = '\0';
}

void vb_error_copy(vb_error *dst, const vb_error *src)
{
    if (dst && src && dst != src)
        memcpy(dst, src, sizeof *dst);
}

void vb_error_prefix(vb_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[VB_ERROR_MESSAGE_MAX];
    char old[VB_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation is acceptable: the message is for a person. */
    size_t used = strnlen(prefix, sizeof err->message - 1);
    memcpy(err->message, prefix, used);
    const char *parts[] = { ": ", old };
    for (size_t i = 0; i < 2; i++) {
        size_t n = strnlen(parts[i], sizeof err->message - 1 - used);
        memcpy(err->message + used, parts[i], n);
        used += n;
    }
    err->message[used] = '\0';
}
