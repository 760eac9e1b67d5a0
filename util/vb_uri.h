/*
 * vb_uri.h — parse vbroker URIs (libvirt's shape).
 *
 *   driver[+transport]://[user@][host][:port]/[path][?key=value&...]
 *
 * Examples: test:///default, test+unix:///default, test+tcp://h:16509/default,
 * test+ssh://alice@h/default, xenapi://root@xen1/, xenapi+ssh://a@h/?name=xenapi://x/,
 * libvirt:test+tcp://h:16509/default.
 * Values are percent-decoded; IPv6 hosts in brackets ([::1]:16509). Pure
 * parsing: no I/O, no policy.
 */
#ifndef VB_URI_H
#define VB_URI_H

#include <stddef.h>

#include "vb_error.h"

#define VB_URI_MAX_LEN 4096
#define VB_URI_MAX_PARAMS 32

typedef struct vb_uri_param {
    char *key;
    char *value;
} vb_uri_param;

typedef struct vb_uri {
    char *driver;      /* "test", "xenapi" (never NULL after a successful parse) */
    char *transport;   /* "unix", "tcp", "ssh", or NULL when absent */
    char *user;        /* NULL when absent */
    char *host;        /* NULL or "" when absent; brackets stripped for IPv6 */
    int port;          /* 0 when absent */
    char *path;        /* without the leading '/', "" when absent */
    vb_uri_param params[VB_URI_MAX_PARAMS];
    size_t nparams;
} vb_uri;

int vb_uri_parse(const char *text, vb_uri *out, vb_error *err);
void vb_uri_clear(vb_uri *uri);
/* The value of the first param named key, or NULL. */
const char *vb_uri_param_get(const vb_uri *uri, const char *key);
/* True when the URI names a remote driver (has a transport). */
int vb_uri_is_remote(const vb_uri *uri);
/* "libvirt:" followed by any libvirt URI (libvirt:qemu+ssh://h/system):
 * parsed as driver "libvirt" with the libvirt URI, untouched, in path and
 * nothing else (no host, no params: the rest belongs to libvirt). */
#define VB_URI_LIBVIRT_PREFIX "libvirt:"
int vb_uri_is_libvirt(const vb_uri *uri);
/* Canonical text form, malloc'd (NULL on out of memory). */
char *vb_uri_format(const vb_uri *uri);

#endif
