/*
 * vb_xenapi_xml.h — XML-RPC as XenAPI speaks it: build a call, parse a
 * response into a small value tree, split XenAPI's Status envelope.
 *
 * Pure: no I/O, no globals beyond libxml2's. Requests are written by hand
 * into a buffer the caller owns, so a password in one exists in exactly one
 * place that the caller wipes (vb_xr_buf_wipe). Responses are parsed with
 * libxml2 (no network, no DTD, no entity expansion) under hard limits on
 * size and nesting; every string of a parsed tree is wiped when it is freed,
 * since a login response holds a session ref. Integers are accepted in every
 * form XenAPI sends: bare <value>123</value>, <string>, <int>, <i4>, <i8>.
 * Struct member names that arrive unescaped ("a<b&c", as xapi writes map
 * keys) are repaired before a second parse. Nothing here logs, and no error
 * message quotes a value (only element names, positions and libxml2's text).
 */
#ifndef VB_XENAPI_XML_H
#define VB_XENAPI_XML_H

#include <stddef.h>
#include <stdint.h>

#include "vb_error.h"

#define VB_XR_MAX_RESPONSE (16u * 1024u * 1024u) /* bytes; larger responses are refused */
#define VB_XR_MAX_DEPTH 32                       /* nested <value>s (records are ~4 deep) */

enum vb_xr_type {
    VB_XR_STRING,   /* also bare <value>text</value> */
    VB_XR_INT,      /* <int>, <i4>, <i8> */
    VB_XR_BOOL,
    VB_XR_DOUBLE,   /* kept as text */
    VB_XR_DATETIME, /* kept as text */
    VB_XR_BASE64,   /* kept as text */
    VB_XR_NIL,
    VB_XR_ARRAY,
    VB_XR_STRUCT,
};

typedef struct vb_xr_value vb_xr_value;
struct vb_xr_value {
    enum vb_xr_type type;
    char *str;           /* STRING, DOUBLE, DATETIME, BASE64 (never NULL for these) */
    int64_t i;           /* INT; BOOL as 0/1 */
    size_t n;            /* ARRAY items / STRUCT members */
    vb_xr_value *items;  /* ARRAY items; STRUCT member values */
    char **names;        /* STRUCT member names */
};

/* Free (wiping every string) a tree from vb_xr_parse_response. NULL is fine. */
void vb_xr_value_free(vb_xr_value *v);

/* The value of the first member called name of a STRUCT, else NULL. */
const vb_xr_value *vb_xr_member(const vb_xr_value *v, const char *name);
/* The text of a STRING, else NULL. */
const char *vb_xr_str(const vb_xr_value *v);
/* An integer in any form: INT, or a STRING holding [ws][+-]digits[ws] that
 * fits in int64. 0, or -1 when v is anything else. */
int vb_xr_int(const vb_xr_value *v, int64_t *out);
/* BOOL, or a STRING "true"/"false"/"1"/"0" (xapi sends both). 0 / -1. */
int vb_xr_bool(const vb_xr_value *v, int *out);

/* ---- requests ------------------------------------------------------------ */

typedef struct vb_xr_arg {
    enum vb_xr_type type; /* VB_XR_STRING or VB_XR_BOOL */
    const char *str;
    int b;
} vb_xr_arg;

#define VB_XR_S(s) ((vb_xr_arg){ .type = VB_XR_STRING, .str = (s) })
#define VB_XR_B(v) ((vb_xr_arg){ .type = VB_XR_BOOL, .b = (v) })

/* Text in a vb_buf's block (util/vb_buf.h: growth and free wipe). */
typedef struct vb_xr_buf {
    char *data;
    size_t len, cap;
} vb_xr_buf;

/* Write <methodCall> for method with args into out (reset first). Strings
 * are escaped (& < > " and CR as &#13;); a string holding a byte XML cannot
 * carry (other control characters) is refused with VB_ERR_INVALID_ARG, the
 * message naming only the argument's position. 0 / -1. */
int vb_xr_build_call(const char *method, const vb_xr_arg *args, size_t nargs, vb_xr_buf *out,
                     vb_error *err);
/* Append n bytes (the buffer grows by copy-and-wipe and stays
 * NUL-terminated); 0, or -1 when out of memory. */
int vb_xr_buf_add(vb_xr_buf *b, const void *data, size_t n);
/* Wipe and free the buffer's memory; it is reusable (empty) after. */
void vb_xr_buf_wipe(vb_xr_buf *b);
/* Wipe a string (a value's text, a session reference: either may let
 * someone act as the user) and free it; NULL is fine. */
void vb_xr_wipe_free(char *s);

/* ---- responses ----------------------------------------------------------- */

/* Parse a <methodResponse> and return its single param's value in *out
 * (free with vb_xr_value_free). A <fault> is VB_ERR_REMOTE with its code and
 * string; anything malformed, over VB_XR_MAX_RESPONSE or VB_XR_MAX_DEPTH, or
 * carrying a DTD is VB_ERR_PROTOCOL (VB_ERR_TOO_LARGE for the size). */
int vb_xr_parse_response(const char *data, size_t len, vb_xr_value **out, vb_error *err);

/* XenAPI's envelope: a STRUCT with Status "Success" and Value, or "Failure"
 * and ErrorDescription (a non-empty array of strings). Returns 1 with *value
 * set, 0 with *errdesc set, or -1 (VB_ERR_PROTOCOL) when resp is neither. */
int vb_xr_status(const vb_xr_value *resp, const vb_xr_value **value,
                 const vb_xr_value **errdesc, vb_error *err);

#endif
