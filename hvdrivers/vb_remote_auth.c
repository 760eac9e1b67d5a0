/* Client side of vbhostd, auth negotiation: AUTH_LIST, SASL, token, and
 * the local types (peer, polkit, none). */
#include "vb_remote_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "vb_net.h"
#include "vb_tls_cbind.h"

/* ---- auth negotiation ---------------------------------------------------- */

static const char *const default_priority[] = { "token", "sasl", "polkit", "peer", "none" };
#define DEFAULT_PRIORITY_N (sizeof default_priority / sizeof default_priority[0])

typedef struct offer {
    char types[VB_REMOTE_MAX_PRIORITY][16];
    size_t n;
} offer;

static int offered(const offer *o, const char *type)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->types[i], type) == 0)
            return 1;
    return 0;
}

/* AUTH_LIST's optional 3rd field, the server's features; a server from
 * before it sends none, and unknown names are for later clients. */
static void read_features(vb_remote *r, vb_rd *rd)
{
    vb_rd list;
    vb_error ignored;
    if (vb_rd_array(rd, &list, &ignored) < 0)
        return;
    while (vb_rd_has_more(&list)) {
        const char *f;
        size_t flen;
        if (vb_rd_str(&list, &f, &flen, &ignored) < 0 || !f)
            return;
        if (flen == strlen(VB_FEATURE_CONN_ID) && memcmp(f, VB_FEATURE_CONN_ID, flen) == 0)
            r->multiplexes = 1;
        if (flen == strlen(VB_FEATURE_TOKEN_BIND) && memcmp(f, VB_FEATURE_TOKEN_BIND, flen) == 0)
            r->token_bind = 1;
        if (flen == strlen(VB_FEATURE_CONCURRENT) && memcmp(f, VB_FEATURE_CONCURRENT, flen) == 0)
            r->concurrent = 1;
        if (flen == strlen(VB_FEATURE_TLS_CBIND) && memcmp(f, VB_FEATURE_TLS_CBIND, flen) == 0)
            r->tls_cbind = 1;
    }
}

static int read_auth_list(vb_remote *r, offer *o, vb_error *err)
{
    vb_msg reply;
    if (vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_AUTH_LIST, NULL, NULL, &reply, err) < 0)
        return -1;
    vb_rd rd, list;
    const char *id;
    size_t idlen;
    int rc = vb_rd_init(&rd, reply.body, err) < 0 || vb_rd_array(&rd, &list, err) < 0 ? -1 : 0;
    o->n = 0;
    while (rc == 0 && vb_rd_has_more(&list) && o->n < VB_REMOTE_MAX_PRIORITY) {
        const char *t;
        size_t tlen;
        if (vb_rd_str(&list, &t, &tlen, err) < 0 || !t || tlen >= sizeof o->types[0]) {
            rc = -1;
            break;
        }
        memcpy(o->types[o->n], t, tlen);
        o->types[o->n++][tlen] = '\0';
    }
    if (rc == 0 && vb_rd_str(&rd, &id, &idlen, err) == 0 && id && idlen < sizeof r->server_id) {
        memcpy(r->server_id, id, idlen);
        r->server_id[idlen] = '\0';
        r->have_server_id = 1;
    }
    if (rc == 0 && vb_rd_has_more(&rd))
        read_features(r, &rd);
    vb_msg_clear(&reply);
    return rc;
}

typedef struct sasl_args {
    const char *mech;
    const uint8_t *data;
    size_t len;
} sasl_args;

static void pack_sasl_start(vb_enc *enc, const void *arg)
{
    const sasl_args *a = arg;
    vb_enc_array(enc, 2);
    vb_enc_str(enc, a->mech);
    vb_enc_bin(enc, a->data ? a->data : (const uint8_t *)"", a->len);
}

static void pack_sasl_step(vb_enc *enc, const void *arg)
{
    const sasl_args *a = arg;
    vb_enc_array(enc, 1);
    vb_enc_bin(enc, a->data ? a->data : (const uint8_t *)"", a->len);
}

/* Send one START/STEP and read [complete, data]. */
static int sasl_exchange(vb_remote *r, uint32_t proc, const sasl_args *a, int *server_done,
                         vb_msg *reply, const uint8_t **data, size_t *len, vb_error *err)
{
    vb_remote_args_fn fn = proc == VB_HOST_PROC_AUTH_SASL_START ? pack_sasl_start : pack_sasl_step;
    if (vb_remote_call(r, VB_PROG_HOST, proc, fn, a, reply, err) < 0)
        return -1;
    vb_rd rd;
    if (vb_rd_init(&rd, reply->body, err) < 0 || vb_rd_bool(&rd, server_done, err) < 0 ||
        vb_rd_bin(&rd, data, len, err) < 0) {
        vb_msg_clear(reply);
        return -1;
    }
    return 0;
}

/* Mechanisms that hand the password itself to the server. */
static int sends_cleartext(const char *mech)
{
    return strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0;
}

/* Mechanisms in which the server proves it knows the secret too. */
static int proves_server(const char *mech)
{
    return mech && (strncasecmp(mech, "SCRAM-", 6) == 0 || strcasecmp(mech, "DIGEST-MD5") == 0 ||
                    strcasecmp(mech, "GSSAPI") == 0 || strncasecmp(mech, "GS2-", 4) == 0);
}

/* A unix socket of an unexpected owner may be anyone's: whatever else we
 * try there, no mechanism gives it the password in clear (edits mechlist
 * in place). */
static int drop_cleartext_mechs(vb_remote *r, const char *want, char *mechlist, vb_error *err)
{
    if (want && sends_cleartext(want))
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "not sending a password in clear (%s) to %s: the socket belongs to "
                            "uid %u, not to the expected owner (server_uid= in the URI names it)",
                            want, r->endpoint, (unsigned)r->server_uid);
    char *out = mechlist, *save = NULL;
    size_t n = strlen(mechlist);
    char *copy = malloc(n + 1);
    if (!copy)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_AUTH, "out of memory");
    memcpy(copy, mechlist, n + 1);
    *out = '\0';
    for (char *m = strtok_r(copy, ", ", &save); m; m = strtok_r(NULL, ", ", &save))
        if (!sends_cleartext(m))
            out += sprintf(out, "%s%s", out == mechlist ? "" : " ", m); /* never longer */
    free(copy);
    if (!*mechlist)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                            "%s offers only SASL mechanisms that send the password in clear, and "
                            "its socket belongs to uid %u, not to the expected owner; not logging "
                            "in there (server_uid= in the URI names the owner)",
                            r->endpoint, (unsigned)r->server_uid);
    return 0;
}

static int sasl_mechlist(vb_remote *r, const char *want, char **mechlist, vb_error *err)
{
    vb_msg reply;
    if (vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_AUTH_SASL_INIT, NULL, NULL, &reply, err) < 0)
        return -1;
    vb_rd rd;
    int rc = vb_rd_init(&rd, reply.body, err) < 0 ||
                     vb_rd_strdup(&rd, VB_SASL_MAX_MECHLIST, mechlist, err) < 0
                 ? -1
                 : 0;
    vb_msg_clear(&reply);
    if (rc == 0 && r->owner == VB_REMOTE_OWNER_UNEXPECTED)
        rc = drop_cleartext_mechs(r, want, *mechlist, err);
    if (rc < 0) {
        free(*mechlist);
        *mechlist = NULL;
    }
    if (rc < 0 || !want)
        return rc;
    /* auth=sasl.MECH: only that mechanism, and only if the server offers it */
    char *copy = strdup(*mechlist), *save = NULL;
    int found = 0;
    for (char *m = strtok_r(copy, ", ", &save); m && !found; m = strtok_r(NULL, ", ", &save))
        found = strcasecmp(m, want) == 0;
    rc = found ? 0
               : vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                              "the server does not offer SASL mechanism %s (it offers: %s)", want,
                              *mechlist);
    free(copy);
    free(*mechlist);
    *mechlist = rc == 0 ? strdup(want) : NULL;
    return rc;
}

/* A client's URI must not make this process log in with its own ticket or
 * transport identity: strip those mechanisms from the server's list. */
static void drop_own_identity_mechs(char *mechlist)
{
    char *out = mechlist, *save = NULL;
    char *copy = mechlist ? strdup(mechlist) : NULL;
    if (!copy) {
        if (mechlist)
            mechlist[0] = '\0'; /* out of memory: offer nothing rather than everything */
        return;
    }
    for (char *m = strtok_r(copy, ", ", &save); m; m = strtok_r(NULL, ", ", &save)) {
        if (vb_driver_sasl_mech_is_own_identity(m))
            continue;
        size_t n = strlen(m);
        if (out != mechlist)
            *out++ = ' ';
        memmove(out, m, n);
        out += n;
    }
    *out = '\0';
    free(copy);
}

/* On TLS the SASL session is bound to the connection: only -PLUS mechanisms,
 * which a man in the middle cannot relay (docs/protocol.md 9.7a). */
static int sasl_bind_tls(vb_remote *r, vb_error *err)
{
    uint8_t cb[VB_TLS_CBIND_LEN];
    int rc = vb_tls_channel_binding(r->tls, cb, err) < 0
                 ? -1
                 : vb_sasl_set_channel_binding(r->sasl, VB_TLS_CBIND_TYPE, cb, sizeof cb, err);
    explicit_bzero(cb, sizeof cb);
    return rc;
}

/* One complete SASL login attempt. */
static int sasl_attempt(vb_remote *r, const char *want_mech, const vb_remote_opts *opts, int retry,
                        vb_error *err)
{
    char *mechlist = NULL;
    if (sasl_mechlist(r, want_mech, &mechlist, err) < 0)
        return -1;
    if (opts->flags & VB_OPEN_FROM_WIRE)
        drop_own_identity_mechs(mechlist);
    vb_sasl_free(r->sasl);
    unsigned min_ssf = vb_net_is_unix(r->fd) ? 0 : 56;
    r->sasl = vb_sasl_client_new("vbhostd", r->host, r->fd, min_ssf, opts->creds.types,
                                 opts->creds.ntypes, err);
    if (r->sasl && r->tls) /* TLS is the security layer: SCRAM needs no SASL one on top */
        vb_sasl_set_external_ssf(r->sasl, vb_tls_ssf(r->tls));
    if (r->sasl && r->tls && sasl_bind_tls(r, err) < 0) {
        free(mechlist);
        return -1;
    }
    vb_sasl_prompter prompter = { opts->creds.fn, opts->creds.opaque, r->service, retry,
                                  &r->target };
    sasl_args a = { NULL, NULL, 0 };
    int client = r->sasl ? vb_sasl_client_start(r->sasl, mechlist, &prompter, &a.mech, &a.data,
                                                &a.len, err)
                         : -1;
    free(mechlist);
    if (client < 0)
        return -1;
    uint32_t proc = VB_HOST_PROC_AUTH_SASL_START;
    for (;;) {
        int server_done;
        vb_msg reply;
        const uint8_t *data;
        size_t len;
        if (sasl_exchange(r, proc, &a, &server_done, &reply, &data, &len, err) < 0)
            return -1;
        proc = VB_HOST_PROC_AUTH_SASL_STEP;
        /* cyrus must see the server's final data unless it already finished */
        if (client != VB_SASL_COMPLETE && (len > 0 || !server_done))
            client = vb_sasl_client_step(r->sasl, data, len, &prompter, &a.data, &a.len, err);
        else
            a.data = NULL, a.len = 0;
        vb_msg_clear(&reply);
        if (client < 0)
            return -1;
        if (server_done) {
            if (client != VB_SASL_COMPLETE)
                return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SASL,
                                    "the server finished SASL before this client did");
            break;
        }
    }
    snprintf(r->auth_type, sizeof r->auth_type, "sasl");
    r->layer = vb_sasl_ssf(r->sasl) > 0;
    return 0;
}

/* Tell the credential source whether the answers it gave worked. */
static void report_answers(vb_remote *r, const vb_remote_opts *opts, int worked)
{
    const vb_cred_request *last = r->sasl ? vb_sasl_last_request(r->sasl) : NULL;
    if (!last)
        return;
    if (worked && opts->creds.approve)
        opts->creds.approve(opts->creds.opaque, last);
    else if (!worked && opts->creds.reject)
        opts->creds.reject(opts->creds.opaque, last);
}

static int auth_sasl(vb_remote *r, const char *mech, const vb_remote_opts *opts, vb_error *err)
{
    for (int attempt = 0; attempt < VB_REMOTE_AUTH_TRIES; attempt++) {
        if (sasl_attempt(r, mech, opts, attempt > 0, err) == 0) {
            report_answers(r, opts, 1);
            return 0;
        }
        if (err && err->code != VB_ERR_AUTH_FAILED)
            return -1;
        report_answers(r, opts, 0);
    }
    return -1;
}

typedef struct token_challenge {
    const char *id;
    const uint8_t *cnonce;
    const vb_token_binding *bind;   /* NULL: an old server, the unbound v1 proof */
} token_challenge;

static void pack_token_challenge(vb_enc *enc, const void *arg)
{
    const token_challenge *t = arg;
    vb_enc_array(enc, t->bind ? 3 : 2);
    vb_enc_str(enc, t->id);
    vb_enc_bin(enc, t->cnonce, VB_TOKEN_NONCE_LEN);
    if (t->bind)
        vb_enc_str(enc, t->bind->endpoint);
}

static int make_proof(enum vb_token_role role, const uint8_t *secret, const char *id,
                      const vb_token_binding *bind, const uint8_t *cnonce, const uint8_t *snonce,
                      uint8_t *proof, vb_error *err)
{
    return bind ? vb_token_proof_bound(role, secret, VB_TOKEN_SECRET_LEN, id, bind, cnonce, snonce,
                                       proof, err)
                : vb_token_proof(role, secret, VB_TOKEN_SECRET_LEN, id, cnonce, snonce, proof, err);
}

static void pack_proof(vb_enc *enc, const void *arg)
{
    vb_enc_array(enc, 1);
    vb_enc_bin(enc, arg, VB_TOKEN_PROOF_LEN);
}

/* CHALLENGE: send our nonce, check the server's proof before proving ours. */
static int token_challenge_round(vb_remote *r, const char *id, const uint8_t *secret,
                                 const vb_token_binding *bind, const uint8_t *cnonce,
                                 uint8_t *snonce, vb_error *err)
{
    token_challenge tc = { id, cnonce, bind };
    vb_msg reply;
    vb_rd rd;
    const uint8_t *sn, *sproof;
    size_t snlen, splen;
    uint8_t want[VB_TOKEN_PROOF_LEN];
    if (vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_AUTH_TOKEN_CHALLENGE, pack_token_challenge, &tc,
                       &reply, err) < 0)
        return -1;
    int rc = vb_rd_init(&rd, reply.body, err) < 0 || vb_rd_bin(&rd, &sn, &snlen, err) < 0 ||
                     vb_rd_bin(&rd, &sproof, &splen, err) < 0
                 ? -1
                 : 0;
    if (rc == 0 && (snlen != VB_TOKEN_NONCE_LEN || splen != VB_TOKEN_PROOF_LEN))
        rc = vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_AUTH, "malformed token challenge reply");
    if (rc == 0) {
        memcpy(snonce, sn, VB_TOKEN_NONCE_LEN);
        rc = make_proof(VB_TOKEN_SERVER, secret, id, bind, cnonce, snonce, want, err);
    }
    if (rc == 0 && !vb_token_proof_equal(want, sproof))
        rc = vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH,
                          "the server could not prove it knows this login's token; refusing to "
                          "continue (is it the server you logged in to?%s)",
                          r->tls ? " Over TLS this also means something in between terminated the "
                                   "TLS connection: a man in the middle with a certificate your CA "
                                   "trusts"
                                 : "");
    vb_msg_clear(&reply);
    return rc;
}

/* 1: logged in with the token; 0: no usable token here (fall through to
 * the next type); -1: hard error. A token is shown only to a server at the
 * endpoint it was obtained at, never to a unix socket of an unexpected
 * owner; the proof is bound to the server id and endpoint when the server
 * can check them. A refusal puts the token's id in refused (see negotiate:
 * it is reported only once the server proved who it is). */
static int auth_token(vb_remote *r, const vb_uri *uri, const vb_remote_opts *opts,
                      char refused[VB_TOKEN_ID_LEN + 1], vb_error *err)
{
    char id[VB_TOKEN_ID_LEN + 1];
    uint8_t secret[VB_TOKEN_SECRET_LEN], cnonce[VB_TOKEN_NONCE_LEN], snonce[VB_TOKEN_NONCE_LEN];
    uint8_t proof[VB_TOKEN_PROOF_LEN];
    const vb_cred_source *src = &opts->creds;
    uint8_t cb[VB_TLS_CBIND_LEN];
    vb_error no_cb;
    /* on TLS only a proof bound to this connection: one a server without
     * "tls_cbind" would check (or one without a channel binding) could be
     * relayed by a man in the middle */
    int tls_ok = !r->tls || (r->token_bind && r->tls_cbind &&
                             vb_tls_channel_binding(r->tls, cb, &no_cb) == 0);
    vb_token_binding bind = { r->server_id, r->bound_endpoint, r->tls ? cb : NULL,
                              r->tls ? sizeof cb : 0 };
    const vb_token_binding *b = r->token_bind ? &bind : NULL;
    if (!src->token_lookup || !r->have_server_id || r->owner == VB_REMOTE_OWNER_UNEXPECTED ||
        !tls_ok || !r->endpoint[0] || (b && !r->bound_endpoint[0]) ||
        src->token_lookup(src->opaque, r->server_id, r->endpoint, uri->user, id, sizeof id, secret,
                          sizeof secret) != 1) {
        explicit_bzero(secret, sizeof secret);
        explicit_bzero(cb, sizeof cb);
        return 0;
    }
    int rc = vb_token_nonce(cnonce, err) < 0 ||
                     token_challenge_round(r, id, secret, b, cnonce, snonce, err) < 0 ||
                     make_proof(VB_TOKEN_CLIENT, secret, id, b, cnonce, snonce, proof, err) < 0
                 ? -1
                 : 0;
    explicit_bzero(secret, sizeof secret);
    explicit_bzero(cb, sizeof cb);
    vb_msg reply;
    if (rc == 0)
        rc = vb_remote_call(r, VB_PROG_HOST, VB_HOST_PROC_AUTH_TOKEN_PROVE, pack_proof, proof,
                            &reply, err);
    if (rc == 0) {
        vb_msg_clear(&reply);
        snprintf(r->auth_type, sizeof r->auth_type, "token");
        return 1;
    }
    if (err && err->code == VB_ERR_TOKEN_REFUSED) {
        memcpy(refused, id, sizeof id);
        return 0;
    }
    if (err && err->code == VB_ERR_AUTH_UNAVAILABLE)
        return 0; /* not on this transport: merely unavailable */
    return -1;
}

/* Whether the transport itself vouches for the server: a unix socket of the
 * expected owner (the kernel says who listens), or an SSH tunnel whose host
 * key was checked. */
static int transport_proves_server(const vb_remote *r, const vb_uri *uri)
{
    if (r->owner == VB_REMOTE_OWNER_VERIFIED || (r->tls && !vb_tls_unverified(r->tls)))
        return 1;
    const char *verify = vb_uri_param_get(uri, "known_hosts_verify");
    return uri->transport && strcmp(uri->transport, "ssh") == 0 &&
           !(verify && strcmp(verify, "ignore") == 0);
}

/* Erase only on proof: the token refused is forgotten only when the server
 * that refused it has proven who it is (by its transport, or by the login
 * that followed on this connection with a mechanism that authenticates the
 * server). Until then it is merely suspect: not offered again on this
 * connection, kept for the next one. */
static void settle_refusal(vb_remote *r, const vb_uri *uri, const vb_remote_opts *opts,
                           char refused[VB_TOKEN_ID_LEN + 1])
{
    if (!refused[0])
        return;
    int proven = transport_proves_server(r, uri) ||
                 (strcmp(r->auth_type, "sasl") == 0 && proves_server(vb_remote_sasl_mech(r)));
    if (proven && opts->creds.token_rejected)
        opts->creds.token_rejected(opts->creds.opaque, r->server_id, r->endpoint, refused);
    refused[0] = '\0';
}

/* peer (AUTH_PEER) and polkit (AUTH_POLKIT): the server judges this
 * process by what the kernel tells it; nothing is sent */
static int auth_local(vb_remote *r, uint32_t procedure, const char *type, vb_error *err)
{
    vb_msg reply;
    if (vb_remote_call(r, VB_PROG_HOST, procedure, NULL, NULL, &reply, err) < 0)
        return -1;
    vb_msg_clear(&reply);
    snprintf(r->auth_type, sizeof r->auth_type, "%s", type);
    return 0;
}

/* auth=sasl.SCRAM-SHA-256 → type "sasl", mech "SCRAM-SHA-256" */
static void split_auth(const char *spec, char *type, size_t tlen, const char **mech)
{
    const char *dot = strchr(spec, '.');
    size_t n = dot ? (size_t)(dot - spec) : strlen(spec);
    if (n >= tlen)
        n = tlen - 1;
    memcpy(type, spec, n);
    type[n] = '\0';
    *mech = dot ? dot + 1 : NULL;
}

int vb_remote_negotiate(vb_remote *r, const vb_uri *uri, const vb_remote_opts *opts, vb_error *err)
{
    offer o;
    if (r->host_version == VB_PROG_HOST_VERSION_NOAUTH) {
        snprintf(r->auth_type, sizeof r->auth_type, "none (v1 client)");
        return 0;
    }
    const char *uri_auth = vb_uri_param_get(uri, "auth");
    if (read_auth_list(r, &o, err) < 0) {
        if (!err || err->code != VB_ERR_NO_SUPPORT)
            return -1;
        /* a server from before authentication: fine, unless this URI demands
         * an authentication (else anyone in the middle could strip it by
         * answering like an old server) */
        if (uri_auth && strncmp(uri_auth, "none", 4) != 0)
            return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                                "the server does not negotiate authentication (a server from "
                                "before it, or something in between posing as one), but this "
                                "URI requires auth=%s; not connecting without it",
                                uri_auth);
        snprintf(r->auth_type, sizeof r->auth_type, "none (v1 server)");
        return 0;
    }
    const char *const *prio = opts->creds.nauth_priority ? opts->creds.auth_priority
                                                         : default_priority;
    size_t nprio = opts->creds.nauth_priority ? opts->creds.nauth_priority : DEFAULT_PRIORITY_N;
    if (uri_auth) {
        prio = &uri_auth;
        nprio = 1;
    }
    char refused[VB_TOKEN_ID_LEN + 1] = "";
    for (size_t i = 0; i < nprio; i++) {
        char type[16];
        const char *mech;
        int rc = 1;
        split_auth(prio[i], type, sizeof type, &mech);
        if (!offered(&o, type))
            continue;
        if (strcmp(type, "none") == 0) {
            snprintf(r->auth_type, sizeof r->auth_type, "none");
            rc = 0;
        } else if (strcmp(type, "sasl") == 0) {
            rc = auth_sasl(r, mech, opts, err);
        } else if (strcmp(type, "peer") == 0) {
            rc = auth_local(r, VB_HOST_PROC_AUTH_PEER, "peer", err);
        } else if (strcmp(type, "polkit") == 0) {
            rc = auth_local(r, VB_HOST_PROC_AUTH_POLKIT, "polkit", err);
        } else if (strcmp(type, "token") == 0 && !refused[0]) {
            rc = auth_token(r, uri, opts, refused, err);
            rc = rc > 0 ? 0 : rc < 0 ? -1 : 1; /* 1: no usable token, try the next type */
        }
        if (rc <= 0) {
            /* an authenticated transport whose server is who it should be: its
             * questions may be relayed (a unix socket of an unexpected owner
             * proves nothing, whatever login it accepted) */
            r->vouched = rc == 0 && strcmp(type, "none") != 0 &&
                         r->owner != VB_REMOTE_OWNER_UNEXPECTED;
            settle_refusal(r, uri, opts, refused);
            return rc;
        }
    }
    settle_refusal(r, uri, opts, refused);
    char have[128] = "";
    for (size_t i = 0; i < o.n; i++)
        snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", o.types[i]);
    return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_AUTH,
                        "no usable authentication type: the server accepts %s; this client "
                        "tried %s", have, uri_auth ? uri_auth : "its priority list");
}
