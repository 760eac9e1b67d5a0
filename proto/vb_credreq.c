#include "vb_credreq.h"
#include "vb_textesc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int vb_cred_request_add(vb_cred_request *req, int type, const char *prompt,
                        const char *challenge, const char *defresult)
{
    if (req->nitems >= VB_CRED_MAX_ITEMS)
        return -1;
    vb_cred_item *it = &req->items[req->nitems];
    memset(it, 0, sizeof *it);
    it->type = type;
    it->prompt = dup_or_null(prompt);
    it->challenge = dup_or_null(challenge);
    it->defresult = dup_or_null(defresult);
    if ((prompt && !it->prompt) || (challenge && !it->challenge) || (defresult && !it->defresult)) {
        free(it->prompt);
        free(it->challenge);
        free(it->defresult);
        return -1;
    }
    req->nitems++;
    return 0;
}

static void wipe_result(vb_cred_item *item)
{
    if (item->result) {
        explicit_bzero(item->result, item->resultlen);
        free(item->result);
    }
    item->result = NULL;
    item->resultlen = 0;
}

int vb_cred_item_set_result(vb_cred_item *item, const char *value, size_t len)
{
    wipe_result(item);
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, value, len);
    copy[len] = '\0';
    item->result = copy;
    item->resultlen = len;
    return 0;
}

void vb_cred_request_clear(vb_cred_request *req)
{
    for (size_t i = 0; i < req->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        wipe_result(it);
        free(it->prompt);
        free(it->challenge);
        free(it->defresult);
    }
    free(req->service);
    for (size_t i = 0; i < req->nhops; i++)
        free(req->hops[i]);
    free(req->kind);
    free(req->target.scheme);
    free(req->target.host);
    free(req->target.user);
    memset(req, 0, sizeof *req);
}

int vb_cred_request_qualify(vb_cred_request *req, const char *hop)
{
    if (req->nhops >= VB_CRED_MAX_HOPS)
        return -1;
    size_t len = strlen(hop) + (req->service ? strlen(req->service) : 0) + 8;
    char *service = malloc(len);
    char *h = strdup(hop);
    if (!service || !h) {
        free(service);
        free(h);
        return -1;
    }
    snprintf(service, len, "%s \u2192 %s", hop, req->service ? req->service : "?");
    free(req->service);
    req->service = service;
    memmove(req->hops + 1, req->hops, req->nhops * sizeof req->hops[0]);
    req->hops[0] = h;
    req->nhops++;
    return 0;
}

int vb_cred_request_set_target(vb_cred_request *req, const char *kind, const char *scheme,
                               const char *host, unsigned port, const char *user)
{
    /* copy first: the arguments may be the request's own strings */
    char *k = dup_or_null(kind), *sc = dup_or_null(scheme), *h = dup_or_null(host),
         *u = dup_or_null(user);
    if ((kind && !k) || (scheme && !sc) || (host && !h) || (user && !u)) {
        free(k);
        free(sc);
        free(h);
        free(u);
        return -1;
    }
    free(req->kind);
    free(req->target.scheme);
    free(req->target.host);
    free(req->target.user);
    req->kind = k;
    req->target = (vb_cred_target){ sc, h, port, u };
    return 0;
}

int vb_cred_request_copy(vb_cred_request *dst, const vb_cred_request *src)
{
    memset(dst, 0, sizeof *dst);
    dst->retry = src->retry;
    dst->id = src->id;
    dst->nverified = src->nverified;
    if (vb_cred_request_set_target(dst, src->kind, src->target.scheme, src->target.host,
                                   src->target.port, src->target.user) < 0) {
        vb_cred_request_clear(dst);
        return -1;
    }
    dst->service = src->service ? strdup(src->service) : NULL;
    for (size_t i = 0; i < src->nhops; i++)
        dst->hops[dst->nhops++] = strdup(src->hops[i]);
    for (size_t i = 0; i < src->nitems; i++) {
        const vb_cred_item *it = &src->items[i];
        if (vb_cred_request_add(dst, it->type, it->prompt, it->challenge, it->defresult) < 0 ||
            (it->result && vb_cred_item_set_result(&dst->items[i], it->result, it->resultlen) < 0)) {
            vb_cred_request_clear(dst);
            return -1;
        }
    }
    return 0;
}

static int escape_text(char **text, int keep_lf)
{
    if (!*text)
        return 0;
    char *escaped = keep_lf ? vb_text_escape_lines(*text) : vb_text_escape(*text);
    if (!escaped)
        return -1;
    free(*text);
    *text = escaped;
    return 0;
}

static int escape_field(char **text)
{
    return escape_text(text, 0);
}

/* The one question whose text may span lines: the broker's own SSH host key
 * question (no hops: no server relayed it; the driver composed it from
 * escaped parts, docs/security.md 6). A relayed question always has hops,
 * whatever kind it claims. */
static int own_multiline(const vb_cred_request *req)
{
    return req->nhops == 0 && req->kind && strcmp(req->kind, VB_CRED_KIND_SSH_HOSTKEY) == 0;
}

int vb_cred_request_escape(vb_cred_request *req)
{
    int multiline = own_multiline(req);
    int rc = escape_field(&req->service) | escape_field(&req->kind) |
             escape_field(&req->target.scheme) | escape_field(&req->target.host) |
             escape_field(&req->target.user);
    for (size_t i = 0; i < req->nhops; i++)
        rc |= escape_field(&req->hops[i]);
    for (size_t i = 0; i < req->nitems; i++)
        rc |= escape_text(&req->items[i].prompt, multiline) |
              escape_field(&req->items[i].challenge) |
              escape_field(&req->items[i].defresult);
    if (rc)
        vb_cred_request_clear(req);
    return rc ? -1 : 0;
}

const char *vb_cred_type_name(int type)
{
    static const char *const names[] = { "?", "username", "authname", "language", "cnonce",
                                         "passphrase", "echoprompt", "noechoprompt", "realm",
                                         "external" };
    return type >= 1 && type <= VB_CRED_TYPE_MAX ? names[type] : "?";
}
