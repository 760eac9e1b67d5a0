/* fuzz_xenapi — the XenAPI XML-RPC response parser (hvdrivers/vb_xenapi_xml.c):
 * whatever a host (or a man in the middle) sends back.
 *
 * Must hold (else abort): a failed parse sets an error; every value of a
 * parsed tree can be read with every accessor; vb_xr_status's answer is
 * consistent (Success has a Value, Failure a non-empty ErrorDescription
 * array); freeing the tree is clean (ASan). */
#include <stdint.h>
#include <stdlib.h>

#include "vb_xenapi_xml.h"

#define WALK_MAX_DEPTH 64

static void walk(const vb_xr_value *v, int depth)
{
    if (!v || depth > WALK_MAX_DEPTH)
        return;
    int64_t i;
    int b;
    const char *s = vb_xr_str(v);
    if (v->type == VB_XR_STRING && !s)
        abort();
    (void)vb_xr_int(v, &i);
    (void)vb_xr_bool(v, &b);
    if (v->type == VB_XR_STRUCT)
        for (size_t k = 0; k < v->n; k++)
            if (!v->names[k] || !vb_xr_member(v, v->names[k]))
                abort(); /* a member is found by its own name */
    if (v->type == VB_XR_ARRAY || v->type == VB_XR_STRUCT)
        for (size_t k = 0; k < v->n; k++)
            walk(&v->items[k], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vb_xr_value *v = NULL;
    vb_error err;
    vb_error_clear(&err);
    if (vb_xr_parse_response((const char *)data, size, &v, &err) < 0) {
        if (err.code == VB_ERR_OK || v)
            abort();
        return 0;
    }
    walk(v, 0);
    const vb_xr_value *value = NULL, *errdesc = NULL;
    int rc = vb_xr_status(v, &value, &errdesc, &err);
    if (rc == 1 && !value)
        abort();
    if (rc == 0 && (!errdesc || errdesc->type != VB_XR_ARRAY || errdesc->n == 0))
        abort();
    vb_xr_value_free(v);
    return 0;
}
