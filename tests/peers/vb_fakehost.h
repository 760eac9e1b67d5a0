/* vb_fakehost — a scripted hostile vbhostd for tests.
 *
 * A real thread in the test process, listening on a real unix or TCP
 * socket and speaking the real framing (proto/). It answers the auth
 * negotiation as its script says and, at the point the script names, asks
 * its client a credential question (a CRED_FILL callback) as a malicious
 * server or a man in the middle would. It records every byte the client
 * sent and whether the client dropped the connection, so a test can assert
 * what the hostile side received: nothing it should not have.
 *
 * Test code only (links proto/ and the test support library). */
#ifndef VB_FAKEHOST_H
#define VB_FAKEHOST_H

#include <stddef.h>
#include <stdint.h>

/* When the fake asks its question. */
enum vb_fakehost_when {
    VB_FAKEHOST_ASK_ON_AUTH_LIST,   /* instead of answering AUTH_LIST */
    VB_FAKEHOST_ASK_ON_SASL_INIT,   /* offer "sasl", then ask instead of answering SASL_INIT */
    VB_FAKEHOST_ASK_ON_OPEN,        /* during OPEN (after the negotiation the script names) */
    VB_FAKEHOST_ASK_AFTER_OPEN,     /* right after the OPEN reply: between calls */
};

typedef struct vb_fakehost_script {
    enum vb_fakehost_when when;
    /* what AUTH_LIST offers: "none", "peer" (AUTH_PEER is then simply
     * accepted) or "sasl"; NULL answers AUTH_LIST with NO_SUPPORT, as a
     * server from before authentication (HOST v1) */
    const char *auth;
    const char *server_id;          /* sent in AUTH_LIST; NULL: a made-up one */
    /* the question: service text and (optional, the typed fields of
     * docs/protocol.md 9.13) kind and target */
    const char *service;
    const char *kind;
    const char *target_host;
    const char *target_user;
    unsigned target_port;
    uint32_t conn_id_offset;        /* ask with the call's conn_id plus this (0: the call's own) */
} vb_fakehost_script;

typedef struct vb_fakehost vb_fakehost;

/* Listen on path (unix; an old socket file there is removed) or on
 * 127.0.0.1:port (tcp, SO_REUSEADDR) and serve clients one after another
 * until stopped. NULL on failure (printed). */
vb_fakehost *vb_fakehost_start_unix(const char *path, const vb_fakehost_script *script);
vb_fakehost *vb_fakehost_start_tcp(int port, const vb_fakehost_script *script);

/* Wait (up to timeout_ms) until the fake has asked its question and the
 * client has then closed that connection: 0, or -1 on timeout. */
int vb_fakehost_wait_dropped(vb_fakehost *f, int timeout_ms);
/* Wait until the question was asked and answered (any CALLBACK_REPLY): 0 /
 * -1 on timeout. */
int vb_fakehost_wait_answered(vb_fakehost *f, int timeout_ms);
/* Wait until the question was sent: 0 / -1 on timeout. */
int vb_fakehost_wait_asked(vb_fakehost *f, int timeout_ms);

/* How many questions were asked, answered with values (a CALLBACK_REPLY
 * with status OK), answered with an error. */
unsigned vb_fakehost_asked(vb_fakehost *f);
unsigned vb_fakehost_answered_ok(vb_fakehost *f);
unsigned vb_fakehost_answered_error(vb_fakehost *f);
/* 1 when needle (e.g. a password) occurs anywhere in what clients sent. */
int vb_fakehost_received(vb_fakehost *f, const char *needle);

/* Stop the thread, close everything, remove the socket file. */
void vb_fakehost_stop(vb_fakehost *f);

#endif
