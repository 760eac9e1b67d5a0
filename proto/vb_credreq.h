/*
 * vb_credreq.h — credential items and requests, as the whole chain sees them
 * (in proto/: libvbroker decodes them with the same code as the daemons).
 *
 * One request carries every item a login needs at once (so a GUI can draw a
 * single form), plus which service asks, over which hops, and whether this
 * is a retry after a failure. Results are secrets: free them with
 * vb_cred_request_clear, which wipes them.
 */
#ifndef VB_CREDREQ_H
#define VB_CREDREQ_H

#include <stddef.h>
#include <stdint.h>

#include "vb_error.h"
/* VB_CRED_* (libvirt's VIR_CRED_* numbering, enum vb_cred_type_public): the
 * same names and numbers libvbroker's API has, defined there once */
#include "vbroker_types.h"

#define VB_CRED_TYPE_MAX VB_CRED_EXTERNAL
#define VB_CRED_MAX_ITEMS 16
#define VB_CRED_MAX_HOPS 8

typedef struct vb_cred_item {
    int type;               /* enum vb_cred_type_public */
    char *prompt;           /* for a person */
    char *challenge;        /* extra detail, may be NULL */
    char *defresult;        /* default answer, may be NULL */
    char *result;           /* the answer (malloc'd; wiped on clear) */
    size_t resultlen;
} vb_cred_item;

/* What a question is for (docs/protocol.md 9.13): its kind names the login,
 * and auth.conf's SERVICE for it (vbhostd, xenapi, ssh; none for a host key
 * or a key passphrase). */
#define VB_CRED_KIND_VBHOSTD "vbhostd"              /* a SASL login to vbhostd */
#define VB_CRED_KIND_XENAPI "xenapi"                /* a XenAPI session login */
#define VB_CRED_KIND_SSH_PASSWORD "ssh-password"    /* password / keyboard-interactive */
#define VB_CRED_KIND_SSH_PASSPHRASE "ssh-passphrase" /* a private key's passphrase */
#define VB_CRED_KIND_SSH_HOSTKEY "ssh-hostkey"      /* accept an unknown host key? */

/* Where the login goes, as the asking driver knows it. */
typedef struct vb_cred_target {
    char *scheme;           /* "vbhostd", "xenapi", "ssh" */
    char *host;             /* "localhost" for a unix socket */
    unsigned port;          /* 0: none / the default */
    char *user;             /* may be NULL */
} vb_cred_target;

typedef struct vb_cred_request {
    char *service;          /* chain-qualified: "vbhostd on h:16509 → xenapi://x:443/" */
    char *hops[VB_CRED_MAX_HOPS]; /* the daemons that relayed it, outermost first */
    size_t nhops;
    /* hops[0 .. nverified) were named by the process holding the request
     * from what it verified itself (the endpoint it dialled, the server that
     * authenticated); the hops after them, the kind and the target are only
     * as reported by hops[nverified - 1] */
    size_t nverified;
    uint64_t id;            /* the asking hop's question id; CRED_APPROVE/REJECT name it */
    char *kind;             /* VB_CRED_KIND_*; NULL from a peer that predates kinds */
    vb_cred_target target;
    int retry;              /* the previous answer for this service failed */
    vb_cred_item items[VB_CRED_MAX_ITEMS];
    size_t nitems;
} vb_cred_request;

/* Add an item (copies the strings). -1 when full or out of memory. */
int vb_cred_request_add(vb_cred_request *req, int type, const char *prompt,
                        const char *challenge, const char *defresult);
/* Store a result for an item (copies and NUL-terminates). */
int vb_cred_item_set_result(vb_cred_item *item, const char *value, size_t len);
/* Put hop in front of the request's path: service becomes "hop → service"
 * and hop is prepended to hops (each relay qualifies what it passes up). */
int vb_cred_request_qualify(vb_cred_request *req, const char *hop);
/* Say what the question is for (copies the strings). -1 when out of memory. */
int vb_cred_request_set_target(vb_cred_request *req, const char *kind, const char *scheme,
                               const char *host, unsigned port, const char *user);
/* Escape, in place, every text a hop supplied (service, hops, kind,
 * target, prompts, challenges, defaults: vb_text_escape), so it can be
 * shown to a person. The prompts of the broker's own SSH host key question
 * (kind ssh-hostkey, no hops) keep their line breaks (vb_text_escape_lines);
 * nothing else does. -1 when out of memory (the request is then cleared). */
int vb_cred_request_escape(vb_cred_request *req);
/* A deep copy (results included: wipe it with vb_cred_request_clear). */
int vb_cred_request_copy(vb_cred_request *dst, const vb_cred_request *src);

/* Wipe results and free everything; the request is reusable after. */
void vb_cred_request_clear(vb_cred_request *req);
const char *vb_cred_type_name(int type);

#endif
