/* The app's side of a login in tests: one form callback (see
 * vb_testsupport_form.h) instead of a copy in every integration test. */
#include "vb_testsupport_form.h"

#include <stdlib.h>
#include <string.h>

const int vb_ts_form_types[2] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

int vb_ts_form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    (void)req;
    vb_ts_form *f = data;
    f->calls++;
    for (unsigned i = 0; i < n; i++) {
        const char *v = creds[i].type == VB_CRED_AUTHNAME     ? f->authname
                        : creds[i].type == VB_CRED_PASSPHRASE ? f->password
                                                              : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

int vb_ts_open_list(const char *uri, const vb_auth *auth, size_t *ndomains, vb_error *err)
{
    vb_conn *c = vb_open_auth(uri, auth, 0, err);
    if (!c)
        return -1;
    vb_domain *doms = NULL;
    size_t n = 0;
    int rc = vb_list_domains(c, &doms, &n, err);
    if (rc == 0)
        vb_domains_free(doms, n);
    vb_close(c);
    if (rc == 0 && ndomains)
        *ndomains = n;
    return rc;
}
