/*
 * vb_cred.h — who answers credential requests: the source a driver gets at
 * open. The requests themselves (vb_cred_request, its items, its helpers)
 * are wire messages and live in proto/vb_credreq.h.
 */
#ifndef VB_CRED_H
#define VB_CRED_H

#include "vb_credreq.h"

/* Answer a request by filling item results and return 0; or return -1
 * with err set (AUTH_CANCELLED, CRED_REQUIRED, TIMEOUT, PEER_CLOSED, ...). */
typedef int (*vb_cred_fn)(vb_cred_request *req, void *opaque, vb_error *err);

/* What the requester at the top of the chain can do: answer credential
 * requests (fn; NULL when nothing can ask, e.g. a script), which item types
 * it answers, and which auth types to try in which order. Drivers receive
 * one at open. (approve/reject verbs arrive with the login cache.) */
typedef struct vb_cred_source {
    vb_cred_fn fn;
    void *opaque;
    const int *types;
    size_t ntypes;
    const char *const *auth_priority;  /* "token", "sasl", "peer", "none"; may carry ".MECH" */
    size_t nauth_priority;
    /* optional, as git's credential helpers: these answers worked / failed
     * (reject forgets exactly these values, so a newer answer survives) */
    void (*approve)(void *opaque, const vb_cred_request *req);
    void (*reject)(void *opaque, const vb_cred_request *req);
    /* optional: a cached login token for this server obtained at this
     * endpoint (vb_remote.h: canonical form; id and secret filled, return 1;
     * 0 when none), and the news that a server that proved who it is
     * refused it (a refusal from an unproven server is not reported:
     * docs/security.md "erase only on proof") */
    int (*token_lookup)(void *opaque, const char *server_id, const char *endpoint,
                        const char *user, char *id, size_t id_len, uint8_t *secret,
                        size_t secret_len);
    void (*token_rejected)(void *opaque, const char *server_id, const char *endpoint,
                           const char *id);
    /* optional: who gives the answers (vbhostd: the authenticated client,
     * "auth_type:identity"). A driver may keep a login at close for a later
     * open by the same owner that is given the same secret again
     * (vb_session_keep.h); NULL keeps nothing. */
    const char *keep_owner;
} vb_cred_source;

#endif
