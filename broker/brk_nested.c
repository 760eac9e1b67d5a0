/* LOGIN of a nested URI (a XenAPI host behind vbhostd, or behind two):
 * the rest of the chain after the first hop.
 *
 * The first hop's login is a token (brk_creds.c). Nothing beyond it can be
 * kept as one: XenAPI has no tokens, and a vbhostd keeps nothing for a
 * client once its connection ends (docs/security.md 7: a hop learns an
 * answer for the one call that asked). So the login opens the whole chain
 * once, exactly as the next script run will — a fresh connection that logs
 * in to the first hop with the kept token, then OPEN of the inner URI — and
 * the questions asked beyond the first hop are answered now (by the person,
 * or what the broker already holds). The answers the asking hop confirms
 * (CRED_APPROVE) go where every answer goes: the broker's in-memory secret
 * cache, keyed by the verified chain, so the script's identical chain finds
 * them. Their lifetime is the cache's; an answer the broker could not keep
 * is named with the reason. */
#include "brk.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vb_log.h"
#include "vb_remote.h"
#include "vb_textesc.h"

int brk_nested_inner(const vb_uri *uri)
{
    const char *name = vb_uri_param_get(uri, "name");
    vb_uri inner;
    vb_error err;
    memset(&inner, 0, sizeof inner);
    if (!name || vb_uri_parse(name, &inner, &err) < 0)
        return 0; /* vbhostd refuses what does not parse; the plain login says so */
    int nested = vb_uri_is_remote(&inner) || (inner.host && *inner.host);
    vb_uri_clear(&inner);
    return nested;
}

/* "8 h", "10 min", "90 s" */
static void format_span(uint64_t ms, char *buf, size_t len)
{
    uint64_t s = ms / 1000;
    if (s >= 3600 && s % 3600 == 0)
        snprintf(buf, len, "%llu h", (unsigned long long)(s / 3600));
    else if (s >= 60 && s % 60 == 0)
        snprintf(buf, len, "%llu min", (unsigned long long)(s / 60));
    else
        snprintf(buf, len, "%llu s", (unsigned long long)s);
}

/* The source the chain's questions go through: the broker's own, watched. */
typedef struct chain_watch {
    vb_cred_source inner;
    brk_session *s;
    brk_login_hops *hops;
} chain_watch;

/* The entry of the hop that asked req (by its chain-qualified service),
 * added when new; NULL when the list is full. */
static brk_login_hop *hop_of(brk_login_hops *hops, const vb_cred_request *req)
{
    char shown[sizeof hops->hop[0].hop];
    vb_text_escape_into(req->service ? req->service : "a hop that did not say", shown,
                        sizeof shown);
    for (size_t i = 0; i < hops->n; i++)
        if (!hops->hop[i].is_token && strcmp(hops->hop[i].hop, shown) == 0)
            return &hops->hop[i];
    if (hops->n == BRK_LOGIN_MAX_HOPS)
        return NULL;
    brk_login_hop *h = &hops->hop[hops->n++];
    memset(h, 0, sizeof *h);
    snprintf(h->hop, sizeof h->hop, "%s", shown);
    return h;
}

static int watch_fill(vb_cred_request *req, void *opaque, vb_error *err)
{
    chain_watch *w = opaque;
    if (w->inner.fn(req, w->inner.opaque, err) < 0)
        return -1;
    brk_login_hop *h = hop_of(w->hops, req);
    if (h && !h->until) /* until the hop confirms the answer worked */
        snprintf(h->kept, sizeof h->kept,
                 "not kept: that hop never confirmed the answer worked (a vbhostd from before "
                 "CRED_APPROVE?); a non-interactive run will be asked again");
    return 0;
}

static void watch_approve(void *opaque, const vb_cred_request *req)
{
    chain_watch *w = opaque;
    if (w->inner.approve)
        w->inner.approve(w->inner.opaque, req);
    brk_login_hop *h = hop_of(w->hops, req);
    if (!h)
        return;
    const brk_config *cfg = w->s->srv->cfg;
    if (!cfg->secret_ttl_ms) {
        h->until = 0;
        snprintf(h->kept, sizeof h->kept,
                 "not kept: this vbrokerd keeps no typed answer (--secret-ttl 0); a "
                 "non-interactive run will be asked again");
        return;
    }
    if (!brk_creds_kept(w->s, req)) { /* over the cache's limits (docs/security.md 4) */
        h->until = 0;
        snprintf(h->kept, sizeof h->kept,
                 "not kept: the answer or the question is over the limits of vbrokerd's memory "
                 "cache; a non-interactive run will be asked again");
        return;
    }
    char sliding[32], max[32];
    format_span(cfg->secret_ttl_ms, sliding, sizeof sliding);
    format_span(cfg->secret_max_ms, max, sizeof max);
    h->until = (int64_t)time(NULL) + (int64_t)(cfg->secret_max_ms / 1000); /* used all along */
    snprintf(h->kept, sizeof h->kept,
             "answer kept in vbrokerd's memory only (never on disk), forgotten %s after its "
             "last use (%s at most) or when vbrokerd stops", sliding, max);
}

static void watch_reject(void *opaque, const vb_cred_request *req)
{
    chain_watch *w = opaque;
    if (w->inner.reject)
        w->inner.reject(w->inner.opaque, req);
}

static int watch_token_lookup(void *opaque, const char *server_id, const char *endpoint,
                              const char *user, char *id, size_t id_len, uint8_t *secret,
                              size_t secret_len)
{
    chain_watch *w = opaque;
    return w->inner.token_lookup(w->inner.opaque, server_id, endpoint, user, id, id_len, secret,
                                 secret_len);
}

static void watch_token_rejected(void *opaque, const char *server_id, const char *endpoint,
                                 const char *id)
{
    chain_watch *w = opaque;
    w->inner.token_rejected(w->inner.opaque, server_id, endpoint, id);
}

int brk_login_chain(brk_session *s, const brk_job *job, const vb_uri *uri, brk_login_hops *hops,
                    vb_error *err)
{
    const char *name = vb_uri_param_get(uri, "name");
    int types[BRK_MAX_CRED_TYPES + 3];
    chain_watch w = { .s = s, .hops = hops };
    /* the source a script's open gets, with the token allowed: the first hop
     * then authenticates as it will in the script, and the chain's questions
     * carry the same verified first hop, so the same cache keys */
    brk_creds_source(s, &w.inner, types, sizeof types / sizeof types[0], 1);
    vb_remote_opts opts = { .timeout_ms = 0 };
    opts.creds = w.inner;
    opts.creds.opaque = &w; /* the first hop's own questions are watched too (auth=sasl) */
    opts.creds.fn = watch_fill;
    opts.creds.approve = watch_approve;
    opts.creds.reject = watch_reject;
    opts.creds.token_lookup = watch_token_lookup;
    opts.creds.token_rejected = watch_token_rejected;
    vb_remote *r = NULL;
    if (vb_remote_connect(uri, &opts, &r, err) < 0)
        return -1;
    vb_remote_set_relay(r, &opts.creds);
    int rc = vb_remote_open(r, name, job->flags & VB_OPEN_WIRE_FLAGS, err);
    if (rc == 0) {
        vb_remote_close_driver(r, NULL); /* the XenAPI session ends here (session.logout) */
        vb_log(VB_LOG_INFO, "client %s: logged in along %s (%zu hop(s) reported)", s->peer,
               job->uri, hops->n);
    }
    vb_remote_free(r);
    return rc;
}
