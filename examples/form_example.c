/*
 * form_example.c — answer vbroker's credential requests from a "form".
 *
 * A GUI application draws ONE login form when vbroker asks for credentials:
 * libvbroker calls the application's callback once per request with every
 * item the login needs (user name, password, realm, ...), so the form can
 * show them all together and return them all together when the person
 * clicks OK. This example plays that GUI without a window: the "form" was
 * filled in beforehand from the environment.
 *
 *   VB_EXAMPLE_USER=alice VB_EXAMPLE_PASSWORD=secret ./form_example test+tcp://host/default
 *
 * It opens the URI (default test:///default), prints the host name and the
 * domains, and closes. Exit status 0 on success, 1 on error.
 *
 * Build (from the source tree, after `make`):
 *   cc -std=c11 -Ithinclient examples/form_example.c -Lbuild -lvbroker -o form_example
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vbroker.h"

/* What the person typed into the form before clicking OK. */
typedef struct login_form {
    const char *user;
    const char *password;
    int calls;            /* how many requests the library made */
} login_form;

static char *copy_answer(const char *value, unsigned int *len)
{
    size_t n = strlen(value);
    char *out = malloc(n + 1);       /* the library wipes and frees it */
    if (out) {
        memcpy(out, value, n + 1);
        *len = (unsigned int)n;
    }
    return out;
}

/* Fill EVERY item of the request in this one call, or return -1 to cancel
 * (as a form's Cancel button would). */
static int form_callback(const vb_auth_request *req, vb_credential *creds,
                         unsigned int ncreds, void *cbdata)
{
    login_form *form = cbdata;
    form->calls++;
    printf("form: %u item%s in one call for %s%s\n", ncreds, ncreds == 1 ? "" : "s",
           req->service ? req->service : "(unknown)",
           req->retry ? " (the previous answer was refused)" : "");
    if (req->retry)
        return -1;                   /* a GUI would show the form again; we have no other answer */

    for (unsigned int i = 0; i < ncreds; i++) {
        const char *value = NULL;
        switch (creds[i].type) {
        case VB_CRED_USERNAME:
        case VB_CRED_AUTHNAME:
            value = form->user;
            break;
        case VB_CRED_PASSPHRASE:
            value = form->password;
            break;
        case VB_CRED_REALM:
            value = creds[i].defresult ? creds[i].defresult : "";
            break;
        default:
            break;                   /* the form has no field for it */
        }
        if (!value) {
            fprintf(stderr, "form: no field for \"%s\"; cancelling\n",
                    creds[i].prompt ? creds[i].prompt : "?");
            return -1;               /* the library wipes anything already filled */
        }
        creds[i].result = copy_answer(value, &creds[i].resultlen);
        if (!creds[i].result)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "test:///default";
    login_form form = {
        .user = getenv("VB_EXAMPLE_USER"),
        .password = getenv("VB_EXAMPLE_PASSWORD"),
        .calls = 0,
    };

    /* The item types this form can answer; mechanisms needing others
     * (e.g. a one-time-code prompt) are not offered to it. */
    static const int types[] = { VB_CRED_AUTHNAME, VB_CRED_USERNAME, VB_CRED_PASSPHRASE,
                                 VB_CRED_REALM };
    vb_auth auth = { types, sizeof types / sizeof types[0], form_callback, &form };

    vb_error err;
    memset(&err, 0, sizeof err);
    vb_conn *conn = vb_open_auth(uri, &auth, 0, &err);
    if (!conn) {
        fprintf(stderr, "cannot open %s: %s\n", uri, err.message);
        return 1;
    }
    printf("form: the library asked %d time%s\n", form.calls, form.calls == 1 ? "" : "s");

    int status = 0;
    char *host = NULL;
    if (vb_get_hostname(conn, &host, &err) < 0) {
        fprintf(stderr, "hostname: %s\n", err.message);
        status = 1;
    } else {
        printf("host: %s\n", host);
        free(host);
    }

    vb_domain *doms = NULL;
    size_t n = 0;
    if (vb_list_domains(conn, &doms, &n, &err) < 0) {
        fprintf(stderr, "domains: %s\n", err.message);
        status = 1;
    } else {
        printf("domains: %zu\n", n);
        for (size_t i = 0; i < n; i++)
            printf("  %-20s %-10s %u vCPU, %llu KiB\n", doms[i].name,
                   vb_domain_state_string(doms[i].state), doms[i].vcpus,
                   (unsigned long long)doms[i].memory_kib);
        vb_domains_free(doms, n);
    }

    if (vb_close(conn) < 0)
        status = 1;
    return status;
}
