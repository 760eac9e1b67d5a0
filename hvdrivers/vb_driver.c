/*
 * vb_driver.c — the table of drivers this build has, and the words shared
 * by all of them (state names, domain name rules).
 */
#include "vb_driver.h"
#include "vb_bodies.h"
#include "vb_libvirt.h"
#include "vb_xenapi.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Local drivers, by URI driver name. xenapi and remote join this table when
 * they exist; nothing else needs to change. */
static const vb_driver *const drivers[] = {
    &vb_test_driver,
    &vb_xenapi_driver,
    &vb_libvirt_driver,
};

#define NDRIVERS (sizeof drivers / sizeof drivers[0])

/* "test, xenapi" — for the NO_DRIVER message. */
static void driver_names(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NDRIVERS && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", drivers[i]->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

const vb_driver *vb_driver_lookup(const char *name, vb_error *err)
{
    for (size_t i = 0; name && i < NDRIVERS; i++)
        if (strcmp(drivers[i]->name, name) == 0)
            return drivers[i];
    char have[128];
    driver_names(have, sizeof have);
    vb_error_set(err, VB_ERR_NO_DRIVER, VB_DOM_DRIVER,
                 "no driver named '%.64s' in this build (drivers: %s)", name ? name : "",
                 have);
    return NULL;
}

/* Indexed by enum vb_domain_state_public; the words libvirt (virsh) prints. */
static const char *const state_names[] = {
    [VB_DOMAIN_NOSTATE] = "no state",     [VB_DOMAIN_RUNNING] = "running",
    [VB_DOMAIN_BLOCKED] = "blocked",      [VB_DOMAIN_PAUSED] = "paused",
    [VB_DOMAIN_SHUTDOWN] = "in shutdown", [VB_DOMAIN_SHUTOFF] = "shut off",
    [VB_DOMAIN_CRASHED] = "crashed",      [VB_DOMAIN_PMSUSPENDED] = "pmsuspended",
};

void vb_driver_encode_domains(vb_enc *enc, const vb_domain_info *doms, size_t n)
{
    vb_enc_array(enc, 1);
    vb_enc_array(enc, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const vb_domain_info *d = &doms[i];
        vb_wire_domain w = { d->id, d->name, strlen(d->name), d->uuid, strlen(d->uuid), d->state,
                             d->memory_kib, d->vcpus };
        vb_body_encode_domain(enc, &w);
    }
}

const char *vb_domain_state_name(uint32_t state)
{
    if (state < sizeof state_names / sizeof state_names[0])
        return state_names[state];
    return "unknown";
}

int vb_domain_name_check(const char *name, vb_error *err)
{
    if (!name || name[0] == '\0')
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER, "empty domain name");
    /* Control characters first, so the too-long message can quote safely. */
    size_t len = strnlen(name, VB_DOMAIN_NAME_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                                "domain name has a control character at offset %zu", i);
    if (len >= VB_DOMAIN_NAME_MAX)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                            "domain name '%.32s...' is longer than %d bytes", name,
                            VB_DOMAIN_NAME_MAX - 1);
    return 0;
}

/* ---- what a URI may say ----------------------------------------------------
 * A parameter nothing reads is a typo (?atuh=sasl) that silently changes
 * nothing, and a driver name nobody has fails only at the far end, after a
 * login. Both are refused here, before anything connects or asks. Each list
 * is exactly what the code opening such a URI reads: keep them in step. */

/* read for any URI: the broker's auth.conf location (brk_creds.c) */
static const char *const params_any[] = { "authfile", NULL };
/* local drivers, by name (vb_test_driver.c reads none; vb_xenapi.c parse_opts) */
static const char *const params_test[] = { NULL };
static const char *const params_xenapi[] = { "transport", "cafile", "no_verify", "timeout", NULL };
/* the remote driver (vb_remote_driver.c, vb_remote_auth.c), then per transport
 * (vb_remote_io.c for unix and tls, vb_ssh.c for ssh) */
static const char *const params_remote[] = { "auth", "name", NULL };
static const char *const params_unix[] = { "socket", "server_uid", NULL };
static const char *const params_tcp[] = { NULL };
static const char *const params_tls[] = { "pkipath", "no_verify", NULL };
static const char *const params_ssh[] = { "socket", "sshauth", "keyfile", "known_hosts",
                                          "known_hosts_verify", NULL };

/* name= nests a URI in a URI; deeper than this is not a chain anyone runs */
#define URI_NEST_MAX 4

typedef struct param_lists {
    const char *const *list[3];
} param_lists;

/* A URI nested in name= is opened by a vbhostd, which reads no authfile= */
static void lists_for(const vb_uri *uri, int nested, param_lists *p)
{
    memset(p, 0, sizeof *p);
    p->list[0] = nested ? NULL : params_any;
    if (!vb_uri_is_remote(uri)) {
        p->list[1] = strcmp(uri->driver, "xenapi") == 0 ? params_xenapi : params_test;
        return;
    }
    p->list[1] = params_remote;
    const char *t = uri->transport;
    p->list[2] = strcmp(t, "ssh") == 0   ? params_ssh
                 : strcmp(t, "tcp") == 0 ? params_tcp
                 : strcmp(t, "tls") == 0 ? params_tls
                                         : params_unix;
}

static int param_known(const param_lists *p, const char *key)
{
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; p->list[l] && p->list[l][i]; i++)
            if (strcmp(p->list[l][i], key) == 0)
                return 1;
    return 0;
}

/* "auth, name, socket, ..." (driver-specific first; authfile last) */
static void param_names(const param_lists *p, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t l = 3; l-- > 0;)
        for (size_t i = 0; p->list[l] && p->list[l][i] && used < size; i++) {
            int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", p->list[l][i]);
            if (n < 0)
                return;
            used += (size_t)n;
        }
}

static int check_params(const vb_uri *uri, int nested, vb_error *err)
{
    param_lists p;
    lists_for(uri, nested, &p);
    for (size_t i = 0; i < uri->nparams; i++) {
        const char *key = uri->params[i].key;
        char known[256];
        if (!param_known(&p, key)) {
            param_names(&p, known, sizeof known);
            /* keys are [A-Za-z0-9_.-] (vb_uri.c): safe to quote */
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                                "unknown URI parameter '%.64s' for %s%s%s:// (known: %s)", key,
                                uri->driver, uri->transport ? "+" : "",
                                uri->transport ? uri->transport : "",
                                known[0] ? known : "none");
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(uri->params[j].key, key) == 0)
                return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                                    "URI parameter '%.64s' is given twice", key);
    }
    return 0;
}

static int check_uri(const vb_uri *uri, int depth, vb_error *err)
{
    if (!vb_driver_lookup(uri->driver, err) || check_params(uri, depth > 0, err) < 0)
        return -1;
    const char *name = vb_uri_is_remote(uri) ? vb_uri_param_get(uri, "name") : NULL;
    if (!name || !*name)
        return 0;
    if (depth + 1 >= URI_NEST_MAX)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER,
                            "URIs nested in name= more than %d deep", URI_NEST_MAX);
    vb_uri inner;
    int rc = vb_uri_parse(name, &inner, err);
    if (rc == 0)
        rc = check_uri(&inner, depth + 1, err);
    vb_uri_clear(&inner);
    if (rc < 0)
        vb_error_prefix(err, "in name=");
    return rc;
}

int vb_driver_check_uri(const vb_uri *uri, vb_error *err)
{
    if (!uri || !uri->driver)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DRIVER, "no URI");
    return check_uri(uri, 0, err);
}

const vb_driver *vb_driver_for_uri(const vb_uri *uri, vb_error *err)
{
    if (vb_driver_check_uri(uri, err) < 0)
        return NULL;
    return vb_uri_is_remote(uri) ? &vb_remote_driver : vb_driver_lookup(uri->driver, err);
}

void vb_driver_describe(const vb_driver *drv, void *conn, vb_conn_info *info)
{
    memset(info, 0, sizeof *info);
    if (drv && drv->describe)
        drv->describe(conn, info);
    else
        snprintf(info->auth_type, sizeof info->auth_type, "local");
}

/* ---- URIs from the wire ----------------------------------------------------
 * vbhostd opens what its clients name with its own privileges. Whatever in a
 * URI would make a driver act as the daemon (log in with its uid, its agent,
 * its keys or tickets; read or write a file it may and the client may not) is
 * refused here, by name, so the client sees which parameter to drop. */

int vb_driver_sasl_mech_is_own_identity(const char *mech)
{
    return mech && (strcasecmp(mech, "GSSAPI") == 0 || strncasecmp(mech, "GS2-", 4) == 0 ||
                    strcasecmp(mech, "EXTERNAL") == 0);
}

static int wire_refuse(vb_error *err, const char *key, const char *value, const char *why)
{
    return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DRIVER,
                        "%s%s%.64s is refused in a URI sent to this server (%s); a next hop is "
                        "reached only with credentials asked of you",
                        key, value ? "=" : "", value ? value : "", why);
}

/* "peer", "polkit", "none" or "sasl" of an auth= spec like "sasl.SCRAM-SHA-256" */
static int auth_type_is(const char *spec, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(spec, type, n) == 0 && (spec[n] == '\0' || spec[n] == '.');
}

int vb_driver_auth_is_own_identity(const char *spec, const char *transport)
{
    /* at the end of an ssh tunnel the peer is the ssh user, who logged in
     * with what the client answered: its identity, not ours */
    int ssh = transport && strcmp(transport, "ssh") == 0;
    return spec && ((!ssh && (auth_type_is(spec, "peer") || auth_type_is(spec, "polkit") ||
                              auth_type_is(spec, "none"))) ||
                    (auth_type_is(spec, "sasl") && spec[4] == '.' &&
                     vb_driver_sasl_mech_is_own_identity(spec + 5)));
}

static int check_auth_param(const char *auth, const char *transport, vb_error *err)
{
    if (!vb_driver_auth_is_own_identity(auth, transport))
        return 0;
    return wire_refuse(err, "auth", auth,
                       auth_type_is(auth, "peer") || auth_type_is(auth, "polkit")
                                                    ? "it would log in as this server's own process"
                       : auth_type_is(auth, "none") ? "it would ride this server's own access"
                                                    : "it would log in with this server's own ticket");
}

/* sshauth=agent or privkey would use this server's agent or its ~/.ssh keys */
static int check_sshauth(const char *order, vb_error *err)
{
    for (const char *p = order; p && *p;) {
        size_t len = strcspn(p, ",");
        if ((len == 5 && strncmp(p, "agent", 5) == 0) || (len == 7 && strncmp(p, "privkey", 7) == 0))
            return wire_refuse(err, "sshauth", order,
                               "the ssh-agent and the key files are this server's own");
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

int vb_driver_check_wire_uri(const vb_uri *uri, vb_error *err)
{
    /* parameters that name a local file the daemon would read or write */
    static const char *const files[] = { "keyfile", "known_hosts", "cafile", "authfile",
                                         "pkipath" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (vb_uri_param_get(uri, files[i]))
            return wire_refuse(err, files[i], NULL,
                               "it names a file this server would read or write as itself");
    const char *verify = vb_uri_param_get(uri, "known_hosts_verify");
    if (verify && strcmp(verify, "normal") != 0)
        return wire_refuse(err, "known_hosts_verify", verify,
                           "only host keys the operator recorded are accepted");
    const char *nv = vb_uri_param_get(uri, "no_verify");
    if (nv && strcmp(nv, "0") != 0)
        return wire_refuse(err, "no_verify", nv,
                           "this server verifies TLS certificates with its trust store");
    if (check_auth_param(vb_uri_param_get(uri, "auth"), uri->transport, err) < 0)
        return -1;
    return check_sshauth(vb_uri_param_get(uri, "sshauth"), err);
}
