#include "vb_sasl.h"

#include <pthread.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vb_buf.h"
#include "vb_net.h"

/* The largest chunk handed to sasl_decode at once; also our maxbufsize. */
#define DECODE_CHUNK 65536u
/* DIGEST-MD5's 3DES layer; a client asking for at most this picks it over RC4 */

struct vb_sasl {
    sasl_conn_t *conn;
    int server;
    unsigned min_ssf;
    int prefer_3des;              /* client: the server said it can (vb_sasl_client_prefer_3des) */
    char *mech;
    sasl_callback_t *callbacks;   /* client: the interaction ids we can answer */
    vb_cred_request pending;      /* client: answers referenced by cyrus until the next call */
    sasl_channel_binding_t cbind; /* cyrus keeps a pointer to it: lives with the session */
    char cbind_type[32];
    uint8_t cbind_data[VB_SASL_CBIND_MAX];
};

/* ---- global init with real locks ---------------------------------------- */

static void *mutex_alloc(void)
{
    pthread_mutex_t *m = malloc(sizeof *m);
    if (m && pthread_mutex_init(m, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}
static int mutex_lock(void *m) { return pthread_mutex_lock(m) == 0 ? SASL_OK : SASL_FAIL; }
static int mutex_unlock(void *m) { return pthread_mutex_unlock(m) == 0 ? SASL_OK : SASL_FAIL; }
static void mutex_free(void *m)
{
    pthread_mutex_destroy(m);
    free(m);
}

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int mutexes_installed, server_ready, client_ready;

static void install_mutexes(void)
{
    if (!mutexes_installed) {
        sasl_set_mutex(mutex_alloc, mutex_lock, mutex_unlock, mutex_free);
        mutexes_installed = 1;
    }
}

static int init_result(int rc, int code, const char *side, vb_error *err)
{
    if (rc != SASL_OK)
        return vb_error_set(err, code, VB_DOM_SASL, "cannot initialise SASL %s: %s", side,
                            sasl_errstring(rc, NULL, NULL));
    return 0;
}

int vb_sasl_server_init(const char *app, const char *conf_dir, vb_error *err)
{
    int rc = SASL_OK;
    pthread_mutex_lock(&init_lock);
    install_mutexes();
    if (!server_ready) {
        if (conf_dir)
            rc = sasl_set_path(SASL_PATH_TYPE_CONFIG, (char *)conf_dir);
        if (rc == SASL_OK)
            rc = sasl_server_init(NULL, app);
        server_ready = rc == SASL_OK;
    }
    pthread_mutex_unlock(&init_lock);
    /* the server's config dir and app name are the operator's to fix */
    return init_result(rc, VB_ERR_CONFIG, "server", err);
}

int vb_sasl_client_init(vb_error *err)
{
    int rc = SASL_OK;
    pthread_mutex_lock(&init_lock);
    install_mutexes();
    if (!client_ready) {
        rc = sasl_client_init(NULL);
        client_ready = rc == SASL_OK;
    }
    pthread_mutex_unlock(&init_lock);
    return init_result(rc, VB_ERR_INTERNAL, "client", err);
}

/* ---- sessions ------------------------------------------------------------ */

static int set_secprops(sasl_conn_t *conn, unsigned min_ssf, unsigned max_ssf, vb_error *err)
{
    sasl_security_properties_t props = {
        .min_ssf = min_ssf,
        .max_ssf = max_ssf,
        .maxbufsize = DECODE_CHUNK,
        .security_flags = SASL_SEC_NOANONYMOUS,
    };
    int rc = sasl_setprop(conn, SASL_SEC_PROPS, &props);
    if (rc != SASL_OK)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_SASL, "cannot set SASL security properties: %s",
                            sasl_errstring(rc, NULL, NULL));
    return 0;
}

/* Both ends of a socket as Cyrus wants them ("host;port"), for the
 * mechanisms that bind to them; both NULL when either is unknown (a unix
 * socket). */
typedef struct sasl_addrs {
    char local_buf[128], remote_buf[128];
    const char *local, *remote;
} sasl_addrs;

static void addrs_of(int fd, sasl_addrs *a)
{
    int have = vb_net_sasl_addr(fd, 0, a->local_buf, sizeof a->local_buf) == 0 &&
               vb_net_sasl_addr(fd, 1, a->remote_buf, sizeof a->remote_buf) == 0;
    a->local = have ? a->local_buf : NULL;
    a->remote = have ? a->remote_buf : NULL;
}

static vb_sasl *session_alloc(int server, vb_error *err)
{
    vb_sasl *s = calloc(1, sizeof *s);
    if (!s)
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SASL, "out of memory");
    else
        s->server = server;
    return s;
}

/* The end of either _new: rc is sasl_server_new's or sasl_client_new's; on
 * any failure s is freed and NULL returned. */
static vb_sasl *session_ready(vb_sasl *s, int rc, unsigned min_ssf, vb_error *err)
{
    if (rc != SASL_OK)
        vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_SASL, "cannot start a SASL %s session: %s",
                     s->server ? "server" : "client", sasl_errstring(rc, NULL, NULL));
    /* as strong as the mechanism offers (a DIGEST-MD5 client may lower it:
     * cap_for_3des) */
    if (rc != SASL_OK || set_secprops(s->conn, min_ssf, 100000, err) < 0) {
        vb_sasl_free(s);
        return NULL;
    }
    s->min_ssf = min_ssf;
    return s;
}

vb_sasl *vb_sasl_server_new(const char *service, const char *fqdn, const char *realm, int fd,
                            unsigned min_ssf, vb_error *err)
{
    sasl_addrs a;
    addrs_of(fd, &a);
    vb_sasl *s = session_alloc(1, err);
    if (!s)
        return NULL;
    int rc = sasl_server_new(service, fqdn, realm, a.local, a.remote, NULL, SASL_SUCCESS_DATA,
                             &s->conn);
    return session_ready(s, rc, min_ssf, err);
}

static unsigned long sasl_id_for(int cred_type)
{
    switch (cred_type) {
    case VB_CRED_USERNAME:     return SASL_CB_USER;
    case VB_CRED_AUTHNAME:     return SASL_CB_AUTHNAME;
    case VB_CRED_LANGUAGE:     return SASL_CB_LANGUAGE;
    case VB_CRED_CNONCE:       return SASL_CB_CNONCE;
    case VB_CRED_PASSPHRASE:   return SASL_CB_PASS;
    case VB_CRED_ECHOPROMPT:   return SASL_CB_ECHOPROMPT;
    case VB_CRED_NOECHOPROMPT: return SASL_CB_NOECHOPROMPT;
    case VB_CRED_REALM:        return SASL_CB_GETREALM;
    default:                   return 0;
    }
}

static int cred_type_for(unsigned long sasl_id)
{
    for (int t = 1; t <= VB_CRED_TYPE_MAX; t++)
        if (sasl_id_for(t) == sasl_id)
            return t;
    return 0;
}

vb_sasl *vb_sasl_client_new(const char *service, const char *host, int fd, unsigned min_ssf,
                            const int *cred_types, size_t ncred_types, vb_error *err)
{
    sasl_addrs a;
    addrs_of(fd, &a);
    vb_sasl *s = session_alloc(0, err);
    if (!s)
        return NULL;
    /* NULL procs: cyrus returns SASL_INTERACT with prompts we answer in one round */
    s->callbacks = calloc(ncred_types + 1, sizeof *s->callbacks);
    if (!s->callbacks) {
        free(s);
        vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SASL, "out of memory");
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < ncred_types; i++)
        if (sasl_id_for(cred_types[i]))
            s->callbacks[n++].id = sasl_id_for(cred_types[i]);
    s->callbacks[n].id = SASL_CB_LIST_END;
    int rc = sasl_client_new(service, host, a.local, a.remote, s->callbacks, 0, &s->conn);
    return session_ready(s, rc, min_ssf, err);
}

void vb_sasl_client_prefer_3des(vb_sasl *s)
{
    if (s)
        s->prefer_3des = 1;
}

/* The DIGEST-MD5 client picks its layer in its first step, from the
 * properties of that moment: the strongest the server offers up to max_ssf.
 * Capped only for that mechanism (GSSAPI's layer is not DES), only where
 * both ends can do 3DES, and never below what min_ssf demands. */
static void cap_for_3des(vb_sasl *s, const char *chosen)
{
    if (!s->prefer_3des || !chosen || strcasecmp(chosen, "DIGEST-MD5") != 0 ||
        s->min_ssf > VB_SASL_3DES_SSF || !vb_sasl_3des_usable())
        return;
    set_secprops(s->conn, s->min_ssf, VB_SASL_3DES_SSF, NULL);
}

/* Cyrus 2.1.28's sasl_listmech sizes its buffer for 2n-2 separators, but a
 * server with a channel binding lists up to 2n names (each mechanism and its
 * -PLUS variant): when every mechanism of the list can bind (mech_list:
 * SCRAM-SHA-256 alone, say) it writes one separator past the end of the heap
 * buffer (AddressSanitizer: heap-buffer-overflow in strcat). The buffer is
 * the connection's and is reused when big enough, so one listing without the
 * binding and with a prefix of VB_SASL_MAX_MECHLIST bytes makes it roomy
 * first. */
static void grow_mechlist_buffer(vb_sasl *s)
{
    char prefix[VB_SASL_MAX_MECHLIST + 1];
    const char *list;
    memset(prefix, ' ', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    sasl_listmech(s->conn, NULL, prefix, ",", "", &list, NULL, NULL);
}

int vb_sasl_set_channel_binding(vb_sasl *s, const char *type, const uint8_t *data, size_t len,
                                vb_error *err)
{
    if (!type || strlen(type) >= sizeof s->cbind_type || !data || len == 0 ||
        len > sizeof s->cbind_data)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_SASL, "malformed channel binding");
    snprintf(s->cbind_type, sizeof s->cbind_type, "%s", type);
    memcpy(s->cbind_data, data, len);
    if (s->server)
        grow_mechlist_buffer(s);
    /* not critical: a server still offers the mechanisms without it (the
     * SCRAM flag catches a client that has one and is told otherwise); a
     * client keeps to -PLUS by itself (vb_sasl_client_start) */
    s->cbind = (sasl_channel_binding_t){ s->cbind_type, 0, (unsigned)len, s->cbind_data };
    int rc = sasl_setprop(s->conn, SASL_CHANNEL_BINDING, &s->cbind);
    if (rc != SASL_OK)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_SASL, "cannot set the channel binding: %s",
                            sasl_errstring(rc, NULL, NULL));
    return 0;
}

int vb_sasl_require_channel_binding(vb_sasl *s, vb_error *err)
{
    if (!s->cbind_type[0])
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_SASL, "no channel binding to require");
    s->cbind.critical = 1;
    int rc = sasl_setprop(s->conn, SASL_CHANNEL_BINDING, &s->cbind);
    if (rc != SASL_OK)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_SASL,
                            "cannot require the channel binding: %s", sasl_errstring(rc, NULL, NULL));
    return 0;
}

static int is_plus(const char *mech, size_t len)
{
    return len > 5 && strncasecmp(mech + len - 5, "-PLUS", 5) == 0;
}

int vb_sasl_mech_is_plus(const char *mech)
{
    return mech && is_plus(mech, strlen(mech));
}

char *vb_sasl_plus_only(const char *mechlist, char sep)
{
    size_t n = strlen(mechlist);
    char *list = malloc(n + 1), *o = list;
    if (!list)
        return NULL;
    for (const char *p = mechlist; *p;) {
        size_t len = strcspn(p, ", ");
        if (is_plus(p, len)) {
            if (o != list)
                *o++ = sep;
            memcpy(o, p, len);
            o += len;
        }
        p += len;
        p += strspn(p, ", ");
    }
    *o = '\0';
    return list;
}

/* A client with a channel binding: only the -PLUS names of mechlist (a
 * malloc'd list), or AUTH_UNAVAILABLE when the server offers none. */
static int plus_only(const char *mechlist, char **out, vb_error *err)
{
    char *list = vb_sasl_plus_only(mechlist, ' ');
    if (!list)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SASL, "out of memory");
    if (!*list) {
        free(list);
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_SASL,
                            "the server offers no channel-bound SASL mechanism (it offers: %s); "
                            "over TLS this client logs in only with one (SCRAM-SHA-256-PLUS, say), "
                            "because any other can be relayed by a man in the middle: enable "
                            "SCRAM-SHA-256 in the server's SASL mech_list", mechlist);
    }
    *out = list;
    return 0;
}

void vb_sasl_free(vb_sasl *s)
{
    if (!s)
        return;
    if (s->conn)
        sasl_dispose(&s->conn);
    vb_cred_request_clear(&s->pending);
    free(s->callbacks);
    free(s->mech);
    free(s);
}

void vb_sasl_set_external_ssf(vb_sasl *s, unsigned ssf)
{
    sasl_ssf_t ext = (sasl_ssf_t)ssf;
    if (s && s->conn)
        sasl_setprop(s->conn, SASL_SSF_EXTERNAL, &ext);
}

/* ---- server steps -------------------------------------------------------- */

int vb_sasl_server_mechlist(vb_sasl *s, char **mechlist, vb_error *err)
{
    const char *list;
    int rc = sasl_listmech(s->conn, NULL, "", ",", "", &list, NULL, NULL);
    if (rc != SASL_OK)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_SASL,
                            "no SASL mechanism is usable here: %s", sasl_errdetail(s->conn));
    *mechlist = strdup(list);
    return *mechlist ? 0 : vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SASL, "out of memory");
}

/* A step's output token and, for SASL_OK or SASL_CONTINUE, its state
 * (VB_SASL_COMPLETE, VB_SASL_CONTINUE): 1; 0 for a failure, which each end
 * words its own way. */
static int step_output(int rc, const char *o, unsigned ol, const uint8_t **out, size_t *outlen,
                       int *state)
{
    *out = (const uint8_t *)o;
    *outlen = o ? ol : 0;
    *state = rc == SASL_OK ? VB_SASL_COMPLETE : VB_SASL_CONTINUE;
    return rc == SASL_OK || rc == SASL_CONTINUE;
}

static int server_result(vb_sasl *s, int rc, const char *out, unsigned outlen,
                         const uint8_t **outp, size_t *outlenp, int *sasl_rc, vb_error *err)
{
    int state;
    if (sasl_rc)
        *sasl_rc = rc;
    if (step_output(rc, out, outlen, outp, outlenp, &state))
        return state;
    if (rc == SASL_NOMECH || rc == SASL_TOOWEAK)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_SASL,
                            "SASL mechanism %s is not available on this connection",
                            s->mech ? s->mech : "?");
    /* One message for every failure: a client must not learn whether the
     * user exists. The daemon logs the precise reason from *sasl_rc. */
    return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_AUTH, "authentication failed");
}

int vb_sasl_server_start(vb_sasl *s, const char *mech, const uint8_t *in, size_t inlen,
                         const uint8_t **out, size_t *outlen, int *sasl_rc, vb_error *err)
{
    const char *o = NULL;
    unsigned ol = 0;
    free(s->mech);
    s->mech = strdup(mech);
    int rc = sasl_server_start(s->conn, mech, (const char *)in, (unsigned)inlen, &o, &ol);
    return server_result(s, rc, o, ol, out, outlen, sasl_rc, err);
}

int vb_sasl_server_step(vb_sasl *s, const uint8_t *in, size_t inlen, const uint8_t **out,
                        size_t *outlen, int *sasl_rc, vb_error *err)
{
    const char *o = NULL;
    unsigned ol = 0;
    int rc = sasl_server_step(s->conn, (const char *)in, (unsigned)inlen, &o, &ol);
    return server_result(s, rc, o, ol, out, outlen, sasl_rc, err);
}

/* ---- client interactions ------------------------------------------------- */

/* Turn cyrus's interaction list into one request, ask once, hand back answers. */
static int answer_interactions(vb_sasl *s, sasl_interact_t *interact,
                               const vb_sasl_prompter *prompter, vb_error *err)
{
    vb_cred_request_clear(&s->pending);
    vb_cred_request *req = &s->pending;
    req->service = prompter && prompter->service ? strdup(prompter->service) : NULL;
    req->retry = prompter ? prompter->retry : 0;
    const vb_cred_target *t = prompter ? prompter->target : NULL;
    if (t && vb_cred_request_set_target(req, VB_CRED_KIND_VBHOSTD, t->scheme, t->host, t->port,
                                        t->user) < 0)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SASL, "out of memory");
    for (sasl_interact_t *i = interact; i->id != SASL_CB_LIST_END; i++) {
        if (vb_cred_request_add(req, cred_type_for(i->id), i->prompt, i->challenge,
                                i->defresult) < 0)
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SASL, "too many SASL prompts");
    }
    if (!prompter || !prompter->fn)
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_AUTH,
                            "credentials required for %s, but nothing can ask for them",
                            prompter && prompter->service ? prompter->service : "this login");
    vb_error_clear(err);
    if (prompter->fn(req, prompter->opaque, err) < 0) {
        if (err && err->code == VB_ERR_OK)
            vb_error_set(err, VB_ERR_AUTH_CANCELLED, VB_DOM_AUTH, "authentication cancelled for %s",
                         prompter->service ? prompter->service : "this login");
        return -1;
    }
    size_t k = 0;
    for (sasl_interact_t *i = interact; i->id != SASL_CB_LIST_END; i++, k++) {
        vb_cred_item *it = &req->items[k];
        if (!it->result && it->defresult)
            vb_cred_item_set_result(it, it->defresult, strlen(it->defresult));
        if (!it->result)
            return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_AUTH,
                                "no answer given for the %s asked by %s",
                                vb_cred_type_name(it->type),
                                prompter->service ? prompter->service : "this login");
        i->result = it->result;
        i->len = (unsigned)it->resultlen;
    }
    return 0;
}

static int client_result(vb_sasl *s, int rc, const char *o, unsigned ol, const uint8_t **out,
                         size_t *outlen, vb_error *err)
{
    int state;
    if (step_output(rc, o, ol, out, outlen, &state))
        return state;
    if (rc == SASL_NOMECH || rc == SASL_TOOWEAK)
        return vb_error_set(err, VB_ERR_AUTH_UNAVAILABLE, VB_DOM_SASL,
                            "no SASL mechanism offered by the server is usable here "
                            "(check auth=sasl.MECH, credentials the client can answer, and "
                            "the security strength the server requires): %s",
                            sasl_errdetail(s->conn));
    return vb_error_set(err, VB_ERR_AUTH_FAILED, VB_DOM_SASL, "SASL client failed: %s",
                        sasl_errdetail(s->conn));
}

int vb_sasl_client_start(vb_sasl *s, const char *mechlist, const vb_sasl_prompter *prompter,
                         const char **mech, const uint8_t **out, size_t *outlen, vb_error *err)
{
    sasl_interact_t *interact = NULL;
    const char *o = NULL;
    unsigned ol = 0;
    const char *chosen = NULL;
    char *bound = NULL;
    int rc;
    if (s->cbind_type[0] && plus_only(mechlist, &bound, err) < 0)
        return -1;
    while ((rc = sasl_client_start(s->conn, bound ? bound : mechlist, &interact, &o, &ol,
                                   &chosen)) == SASL_INTERACT) {
        if (answer_interactions(s, interact, prompter, err) < 0) {
            /* the plugin frees its prompt array at the next start/step call;
             * there will be none */
            free(interact);
            free(bound);
            return -1;
        }
    }
    free(bound);
    cap_for_3des(s, chosen);
    if (chosen) {
        /* cyrus names the plugin; the server is told (and logs) the -PLUS
         * variant it offered, the only kind a bound client picks */
        size_t n = strlen(chosen);
        free(s->mech);
        s->mech = malloc(n + 6);
        if (!s->mech)
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_SASL, "out of memory");
        snprintf(s->mech, n + 6, "%s%s", chosen,
                 s->cbind_type[0] && !is_plus(chosen, n) ? "-PLUS" : "");
        *mech = s->mech;
    }
    return client_result(s, rc, o, ol, out, outlen, err);
}

int vb_sasl_client_step(vb_sasl *s, const uint8_t *in, size_t inlen,
                        const vb_sasl_prompter *prompter, const uint8_t **out, size_t *outlen,
                        vb_error *err)
{
    sasl_interact_t *interact = NULL;
    const char *o = NULL;
    unsigned ol = 0;
    int rc;
    while ((rc = sasl_client_step(s->conn, (const char *)in, (unsigned)inlen, &interact, &o,
                                  &ol)) == SASL_INTERACT) {
        if (answer_interactions(s, interact, prompter, err) < 0) {
            /* the plugin frees its prompt array at the next start/step call;
             * there will be none */
            free(interact);
            return -1;
        }
    }
    return client_result(s, rc, o, ol, out, outlen, err);
}

/* ---- properties and the security layer ----------------------------------- */

unsigned vb_sasl_ssf(vb_sasl *s)
{
    const void *v = NULL;
    if (sasl_getprop(s->conn, SASL_SSF, &v) != SASL_OK || !v)
        return 0;
    return (unsigned)*(const sasl_ssf_t *)v;
}

static const char *string_prop(vb_sasl *s, int prop)
{
    const void *v = NULL;
    if (sasl_getprop(s->conn, prop, &v) != SASL_OK)
        return NULL;
    return v;
}

const char *vb_sasl_username(vb_sasl *s)
{
    return string_prop(s, SASL_USERNAME);
}

const char *vb_sasl_authname(vb_sasl *s)
{
    return string_prop(s, SASL_AUTHUSER);
}

const vb_cred_request *vb_sasl_last_request(const vb_sasl *s)
{
    return s->pending.nitems ? &s->pending : NULL;
}

const char *vb_sasl_mech(vb_sasl *s)
{
    return s->mech;
}

int vb_sasl_encode(vb_sasl *s, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                   vb_error *err)
{
    const void *v = NULL;
    unsigned maxout = 4096;
    if (sasl_getprop(s->conn, SASL_MAXOUTBUF, &v) == SASL_OK && v && *(const unsigned *)v)
        maxout = *(const unsigned *)v;
    /* with an integrity-only layer the output carries the plaintext: a
     * buffer that wipes what it leaves behind */
    vb_buf acc = VB_BUF_INIT;
    *out = NULL;
    *outlen = 0;
    /* sasl_encode does not split input above MAXOUTBUF itself */
    for (size_t off = 0; off < inlen;) {
        unsigned chunk = inlen - off > maxout ? maxout : (unsigned)(inlen - off);
        const char *enc;
        unsigned enclen;
        int rc = sasl_encode(s->conn, (const char *)in + off, chunk, &enc, &enclen);
        if (rc != SASL_OK || vb_buf_append(&acc, enc, enclen) < 0) {
            vb_buf_free(&acc);
            return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_SASL, "SASL encode failed: %s",
                                sasl_errstring(rc, NULL, NULL));
        }
        off += chunk;
    }
    *out = vb_buf_steal(&acc, outlen);
    return 0;
}

int vb_sasl_decode(vb_sasl *s, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen,
                   vb_error *err)
{
    vb_buf plain = VB_BUF_INIT; /* decrypted traffic: wiped on growth and on failure */
    *out = NULL;
    *outlen = 0;
    for (size_t off = 0; off < inlen;) {
        unsigned chunk = inlen - off > DECODE_CHUNK ? DECODE_CHUNK : (unsigned)(inlen - off);
        const char *dec = NULL;
        unsigned declen = 0;
        int rc = sasl_decode(s->conn, (const char *)in + off, chunk, &dec, &declen);
        if (rc != SASL_OK || vb_buf_append(&plain, dec, declen) < 0) {
            vb_buf_free(&plain);
            /* a tampered or corrupt packet desynchronises the layer: the caller drops the link */
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_SASL,
                                "SASL security layer rejected received data: %s",
                                sasl_errstring(rc, NULL, NULL));
        }
        off += chunk;
    }
    *out = vb_buf_steal(&plain, outlen);
    return 0;
}
