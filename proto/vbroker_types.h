/*
 * vbroker_types.h — the definitions libvbroker's public API shares with the
 * rest of vbroker, in one place.
 *
 * Installed next to vbroker.h (which includes it) and included by the
 * internal headers that need the same names (vb_error.h, vb_cred.h,
 * vb_driver.h), so <vbroker.h> composes with any internal header in either
 * order, and the internal code cannot drift from the ABI: libvbroker fills
 * the caller's vb_error with the internal vb_error_set, and credential
 * types, open flags and domain states cross the wire with these numbers.
 *
 * Only plain C with no dependency: this file is part of the public API.
 */
#ifndef VBROKER_TYPES_H
#define VBROKER_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors: code, domain and a message for a person ---------------------
 * Codes and domains are the wire numbers of docs/protocol.md (vbroker.h
 * names them VBROKER_ERR_* and VBROKER_DOM_*). */
#define VB_ERROR_MESSAGE_MAX 512
typedef struct vb_error {
    int code;                           /* 0 (OK) when unset */
    int domain;                         /* which layer failed */
    char message[VB_ERROR_MESSAGE_MAX]; /* for a person: what failed and what to do */
} vb_error;

/* ---- credential item types (libvirt's VIR_CRED_* numbering) --------------- */
enum vb_cred_type_public {
    VB_CRED_USERNAME = 1,      /* identity to act as (SASL authorization id) */
    VB_CRED_AUTHNAME = 2,      /* identity to authenticate as */
    VB_CRED_LANGUAGE = 3,
    VB_CRED_CNONCE = 4,
    VB_CRED_PASSPHRASE = 5,    /* a secret: never echo it */
    VB_CRED_ECHOPROMPT = 6,    /* a question whose answer may be shown */
    VB_CRED_NOECHOPROMPT = 7,  /* a question whose answer must not be shown */
    VB_CRED_REALM = 8,
    VB_CRED_EXTERNAL = 9,
};

/* ---- open flags (the broker and the drivers read the same bits) ----------- */
enum vb_open_flags_public {
    VB_OPEN_READ_ONLY = 1u << 0,
    /* Never ask anything, by any route: neither the callback nor the
     * broker's own pinentry. A login that needs input fails with
     * VBROKER_ERR_CRED_REQUIRED. VBROKER_NON_INTERACTIVE=1 in the
     * environment sets it for every open and login of the process. */
    VB_OPEN_NON_INTERACTIVE = 1u << 1,
};

/* ---- domain states (libvirt's virDomainState numbering) ------------------ */
enum vb_domain_state_public {
    VB_DOMAIN_NOSTATE = 0,
    VB_DOMAIN_RUNNING = 1,
    VB_DOMAIN_BLOCKED = 2,
    VB_DOMAIN_PAUSED = 3,
    VB_DOMAIN_SHUTDOWN = 4,
    VB_DOMAIN_SHUTOFF = 5,
    VB_DOMAIN_CRASHED = 6,
    VB_DOMAIN_PMSUSPENDED = 7,
};

#ifdef __cplusplus
}
#endif

#endif
