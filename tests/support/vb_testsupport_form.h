/*
 * vb_testsupport_form.h — a person filling the login form, for tests that
 * drive the public API: vb_ts_form_cb answers AUTHNAME with f->authname and
 * PASSPHRASE with f->password (NULL: left empty), and counts its calls.
 *
 *   vb_ts_form f = { "alice", PASSWORD, 0 };
 *   vb_auth auth = { vb_ts_form_types, 2, vb_ts_form_cb, &f };
 */
#ifndef VB_TESTSUPPORT_FORM_H
#define VB_TESTSUPPORT_FORM_H

#include "../../thinclient/vbroker.h"

typedef struct vb_ts_form {
    const char *authname;
    const char *password;
    int calls;
} vb_ts_form;

extern const int vb_ts_form_types[2];
int vb_ts_form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data);

/* What an app (or a script, auth NULL or without a callback) does most:
 * open uri through the broker, list the domains, close. 0 (*ndomains, when
 * not NULL, the count) or -1 with err set. */
int vb_ts_open_list(const char *uri, const vb_auth *auth, size_t *ndomains, vb_error *err);

#endif
