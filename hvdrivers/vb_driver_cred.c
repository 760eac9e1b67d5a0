/* Asking the credential source and telling it the outcome: the same for
 * every driver (vb_driver.h), so each one's messages and its treatment of a
 * missing source or a silent refusal agree. */
#include "vb_driver.h"

#include "vb_cred.h"

int vb_driver_ask(const vb_cred_source *creds, vb_cred_request *req, int domain, const char *what,
                  vb_error *err)
{
    const char *service = req->service ? req->service : what;
    if (!creds || !creds->fn)
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, domain,
                            "credentials required for %s (%s), but nothing can ask for them",
                            service, what);
    vb_error_clear(err);
    if (creds->fn(req, creds->opaque, err) < 0) {
        if (err && err->code == VB_ERR_OK)
            vb_error_set(err, VB_ERR_AUTH_CANCELLED, domain, "authentication cancelled for %s",
                         service);
        return -1;
    }
    return 0;
}

void vb_driver_verdict(const vb_cred_source *creds, const vb_cred_request *req, int worked)
{
    if (!creds)
        return;
    void (*fn)(void *, const vb_cred_request *) = worked ? creds->approve : creds->reject;
    if (fn)
        fn(creds->opaque, req);
}
