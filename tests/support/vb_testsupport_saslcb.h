/* vb_testsupport: raw Cyrus SASL client callbacks, for a test or a bench
 * that drives sasl_client_* itself rather than through vb_sasl (which asks
 * through SASL_INTERACT and a prompter). */
#ifndef VB_TESTSUPPORT_SASLCB_H
#define VB_TESTSUPPORT_SASLCB_H

#include <sasl/sasl.h>

/* SASL_CB_USER and SASL_CB_AUTHNAME answer user, SASL_CB_PASS password.
 * Pass cbs to sasl_client_new; the struct must outlive the connection. */
typedef struct vb_ts_sasl_client_creds {
    const char *user;
    sasl_secret_t *secret;
    sasl_callback_t cbs[4];
} vb_ts_sasl_client_creds;

/* Fill c (user and password are copied or pointed at: user must live as
 * long as c). Aborts on out-of-memory, like the rest of tests/support. */
void vb_ts_sasl_client_creds_init(vb_ts_sasl_client_creds *c, const char *user,
                                  const char *password);
/* Wipe and free the password. */
void vb_ts_sasl_client_creds_clear(vb_ts_sasl_client_creds *c);

#endif
