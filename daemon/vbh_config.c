/* vbhostd.conf → vbh_config. Every key is documented in etc/vbhostd.conf;
 * an unknown key is an error, so a typo never silently weakens security. */
#include "vbh.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_conf.h"
#include "vb_log.h"
#include "vb_remote.h"
#include "vb_session_keep.h"
#include "vb_ssh.h"

static const char *const auth_names[] = { "none", "sasl", "peer", "token", "polkit" };

const char *vbh_auth_type_name(int type)
{
    return type >= 0 && type <= VBH_AUTH_LAST ? auth_names[type] : "?";
}

int vbh_auth_list_has(const vbh_auth_list *list, int type)
{
    for (size_t i = 0; i < list->n; i++)
        if (list->types[i] == type)
            return 1;
    return 0;
}

void vbh_auth_list_format(const vbh_auth_list *list, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < list->n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                                 vbh_auth_type_name(list->types[i]));
}

static int parse_auth_list(vb_conf *conf, const char *key, vbh_auth_list *out, vb_error *err)
{
    char *const *items;
    size_t n;
    int rc = vb_conf_get_list(conf, key, &items, &n, err);
    if (rc <= 0)
        return rc;
    if (n == 0 || n > VBH_MAX_AUTH_TYPES)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: '%s' must list 1 to %d auth types", conf->path, key,
                            VBH_MAX_AUTH_TYPES);
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        int type = -1;
        for (int t = 0; t <= VBH_AUTH_LAST; t++)
            if (strcmp(items[i], auth_names[t]) == 0)
                type = t;
        if (type < 0)
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                "%s: '%s' has unknown auth type '%s' (use none, sasl, peer, token, "
                                "polkit)",
                                conf->path, key, items[i]);
        /* polkit judges a local process (pid, uid): a TCP peer has neither */
        if (type == VBH_AUTH_POLKIT && strcmp(key, "auth_unix") != 0)
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                "%s: '%s': polkit checks a local process, so only auth_unix may "
                                "list it", conf->path, key);
        out->types[out->n++] = type;
    }
    return 1;
}

static int get_str(vb_conf *conf, const char *key, char **out, vb_error *err)
{
    const char *v;
    int rc = vb_conf_get_string(conf, key, &v, err);
    if (rc == 1) {
        free(*out);
        *out = strdup(v);
    }
    return rc;
}

static int get_uint(vb_conf *conf, const char *key, unsigned min, unsigned max, unsigned *out,
                    vb_error *err)
{
    int64_t v;
    int rc = vb_conf_get_int(conf, key, &v, err);
    if (rc != 1)
        return rc;
    if (v < (int64_t)min || v > (int64_t)max)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s: '%s' must be %u..%u",
                            conf->path, key, min, max);
    *out = (unsigned)v;
    return 1;
}

static int get_flag(vb_conf *conf, const char *key, int *out, vb_error *err)
{
    unsigned v = (unsigned)*out;
    int rc = get_uint(conf, key, 0, 1, &v, err);
    *out = (int)v;
    return rc;
}

static int parse_uids(vb_conf *conf, vbh_config *cfg, vb_error *err)
{
    char *const *items;
    size_t n;
    int rc = vb_conf_get_list(conf, "peer_allowed_users", &items, &n, err);
    if (rc <= 0)
        return rc;
    if (n > VBH_MAX_PEER_UIDS)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s: too many peer_allowed_users",
                            conf->path);
    cfg->npeer_allowed_uids = 0;
    for (size_t i = 0; i < n; i++) {
        char *end;
        errno = 0;
        unsigned long uid = strtoul(items[i], &end, 10);
        if (*items[i] && !*end && !errno) {
            cfg->peer_allowed_uids[cfg->npeer_allowed_uids++] = (uid_t)uid;
            continue;
        }
        struct passwd *pw = getpwnam(items[i]);
        if (!pw)
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                "%s: peer_allowed_users: no user named '%s'", conf->path, items[i]);
        cfg->peer_allowed_uids[cfg->npeer_allowed_uids++] = pw->pw_uid;
    }
    return 1;
}

/* ---- allow-lists ---------------------------------------------------------- */

int vbh_endpoint_allowed(const vbh_endpoint *list, size_t n, const char *transport,
                         const char *host, int port)
{
    for (size_t i = 0; host && i < n; i++)
        if (strcmp(list[i].transport, transport) == 0 && list[i].port == port &&
            strcasecmp(list[i].host, host) == 0)
            return 1;
    return 0;
}

/* "HOST[:PORT]" or "[V6]:PORT" into e (port defaults to def); -1 when malformed. */
static int parse_host_port(const char *text, int def, vbh_endpoint *e)
{
    const char *end;
    size_t hlen;
    if (*text == '[') {
        end = strchr(text, ']');
        if (!end)
            return -1;
        text++;
        hlen = (size_t)(end - text);
        end++;
    } else {
        end = strchr(text, ':');
        end = end ? end : text + strlen(text);
        hlen = (size_t)(end - text);
        if (strchr(end + (*end == ':'), ':'))
            return -1; /* a bare IPv6 address: the port would be ambiguous */
    }
    if (hlen == 0 || hlen > 253 || strcspn(text, "/@?&#") < hlen)
        return -1;
    e->port = def;
    if (*end == ':') {
        char *stop;
        long port = strtol(end + 1, &stop, 10);
        if (!end[1] || *stop || port < 1 || port > 65535)
            return -1;
        e->port = (int)port;
    } else if (*end) {
        return -1;
    }
    e->host = strndup(text, hlen);
    return e->host ? 0 : -1;
}

/* "tcp://HOST[:PORT]", "tls://HOST[:PORT]", "ssh://HOST[:PORT]" or "unix:/ABSOLUTE/PATH" */
static int parse_next_hop(const char *text, vbh_endpoint *e)
{
    if (strncmp(text, "unix:/", 6) == 0) {
        snprintf(e->transport, sizeof e->transport, "unix");
        e->host = strdup(text + 5);
        return e->host ? 0 : -1;
    }
    int tcp = strncmp(text, "tcp://", 6) == 0, ssh = strncmp(text, "ssh://", 6) == 0;
    int tls = strncmp(text, "tls://", 6) == 0;
    if (!tcp && !ssh && !tls)
        return -1;
    snprintf(e->transport, sizeof e->transport, "%.3s", text);
    return parse_host_port(text + 6, tcp ? VB_REMOTE_DEFAULT_PORT
                                     : tls ? VB_TLS_DEFAULT_PORT
                                           : VB_SSH_DEFAULT_PORT, e);
}

static int parse_xenapi_host(const char *text, vbh_endpoint *e)
{
    snprintf(e->transport, sizeof e->transport, "xenapi");
    return parse_host_port(text, 443, e);
}

static int parse_libvirt_host(const char *text, vbh_endpoint *e)
{
    snprintf(e->transport, sizeof e->transport, "libvirt");
    return parse_host_port(text, 16509, e); /* libvirtd's tcp_port */
}

static int parse_endpoints(vb_conf *conf, const char *key, int (*parse)(const char *, vbh_endpoint *),
                           const char *shape, vbh_endpoint **out, size_t *nout, vb_error *err)
{
    char *const *items;
    size_t n;
    int rc = vb_conf_get_list(conf, key, &items, &n, err);
    if (rc <= 0)
        return rc;
    if (n > VBH_MAX_ALLOWED)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s: '%s' lists more than %d entries",
                            conf->path, key, VBH_MAX_ALLOWED);
    if (n && !(*out = calloc(n, sizeof **out)))
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (parse(items[i], &(*out)[i]) < 0)
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                "%s: '%s': '%.200s' is not %s", conf->path, key, items[i], shape);
        (*nout)++;
    }
    return 1;
}

static void free_endpoints(vbh_endpoint *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i].host);
    free(list);
}

static void set_defaults(vbh_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_unix_mode = 0600;
    cfg->passed_unix_fd = cfg->passed_tcp_fd = cfg->passed_tls_fd = -1;
    cfg->auth_unix = (vbh_auth_list){ { VBH_AUTH_PEER }, 1 };
    cfg->auth_tcp = (vbh_auth_list){ { VBH_AUTH_SASL }, 1 };
    cfg->auth_tls = (vbh_auth_list){ { VBH_AUTH_SASL }, 1 };
    cfg->cert_file = strdup(VB_TLS_SERVER_CERT);
    cfg->key_file = strdup(VB_TLS_SERVER_KEY);
    cfg->ca_file = strdup(VB_TLS_SYSTEM_CA);
    cfg->tls_client_cert = VB_TLS_CLIENT_CERT_OPTIONAL;
    cfg->tls_require_cbind = 1; /* every vbroker client binds; the others can be relayed */
    cfg->sasl_app = strdup("vbhostd");
    cfg->peer_allowed_uids[0] = getuid();
    cfg->npeer_allowed_uids = 1;
    cfg->tcp_min_ssf = 56;
    cfg->state_dir = strdup("/var/lib/vbhostd");
    cfg->max_clients = 5000;
    cfg->max_anonymous_clients = 20;
    cfg->max_anonymous_per_peer = 5;
    cfg->first_frame_timeout_s = 5;
    cfg->max_output_preauth = 64 * 1024;
    cfg->max_output = 4u << 20;
    cfg->output_timeout_s = 30;
    cfg->auth_attempts_per_connection = 3;
    cfg->auth_timeout_s = 30;
    cfg->auth_failure_max_delay_s = 8;
    cfg->auth_failure_forget_s = 600;
    cfg->auth_failure_table_size = 4096;
    cfg->auth_failures_per_second = 20;
    cfg->auth_failure_ipv4_prefix = 32;
    cfg->auth_failure_ipv6_prefix = 64;
    cfg->frame_timeout_s = 60;
    cfg->keepalive_timeout_s = 60;
    cfg->max_frame = VB_FRAME_MAX_POSTAUTH;
    cfg->default_uri = strdup("test:///default");
    cfg->token_ttl_s = 8 * 3600;
    cfg->relay_timeout_s = 120;
    cfg->xenapi_session_keep_s = VB_SESSION_KEEP_DEFAULT_IDLE_S;
    cfg->xenapi_sessions_max = VB_SESSION_KEEP_DEFAULT_MAX;
    cfg->log_level = VB_LOG_INFO;
}

/* token_endpoints: where clients also reach this server, through a
 * forwarder the operator runs; a token proof bound to one is accepted. */
static int load_token_endpoints(vb_conf *conf, vbh_config *cfg, vb_error *err)
{
    char *const *items;
    size_t n;
    int rc = vb_conf_get_list(conf, "token_endpoints", &items, &n, err);
    if (rc <= 0)
        return rc;
    if (n > VBH_MAX_TOKEN_ENDPOINTS)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: token_endpoints: at most %d entries", conf->path,
                            VBH_MAX_TOKEN_ENDPOINTS);
    for (size_t i = 0; i < n; i++) {
        if (strlen(items[i]) > VB_TOKEN_ENDPOINT_MAX ||
            (strncmp(items[i], "unix:/", 6) != 0 && strncmp(items[i], "tcp:", 4) != 0 &&
             strncmp(items[i], "tls:", 4) != 0))
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                "%s: token_endpoints: '%s' is not \"unix:/PATH\", "
                                "\"tcp:ADDR:PORT\" or \"tls:ADDR:PORT\"", conf->path, items[i]);
        cfg->token_endpoints[cfg->ntoken_endpoints++] = strdup(items[i]);
    }
    return 1;
}

static int load_string_list(vb_conf *conf, const char *key, int *set, char ***out, size_t *nout,
                            vb_error *err)
{
    char *const *items;
    size_t n;
    int rc = vb_conf_get_list(conf, key, &items, &n, err);
    if (rc <= 0)
        return rc;
    *set = 1;
    if (n && !(*out = calloc(n, sizeof **out)))
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!((*out)[(*nout)++] = strdup(items[i])))
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory");
    return 1;
}

/* The TLS listener: its files, whether clients show certificates, and
 * which. "none" in auth_tls lets in whoever completes the handshake, so it
 * needs a required (and verified) client certificate. */
static int load_tls_keys(vb_conf *conf, vbh_config *cfg, vb_error *err)
{
    const char *mode = NULL;
    if (get_str(conf, "listen_tls", &cfg->listen_tls, err) < 0 ||
        parse_auth_list(conf, "auth_tls", &cfg->auth_tls, err) < 0 ||
        get_str(conf, "cert_file", &cfg->cert_file, err) < 0 ||
        get_str(conf, "key_file", &cfg->key_file, err) < 0 ||
        get_str(conf, "ca_file", &cfg->ca_file, err) < 0 ||
        get_str(conf, "crl_file", &cfg->crl_file, err) < 0 ||
        get_str(conf, "next_hop_pkipath", &cfg->next_hop_pkipath, err) < 0 ||
        get_flag(conf, "tls_require_cbind", &cfg->tls_require_cbind, err) < 0 ||
        vb_conf_get_string(conf, "tls_client_cert", &mode, err) < 0 ||
        load_string_list(conf, "tls_allowed_dn_list", &cfg->tls_allowed_dn_set,
                         &cfg->tls_allowed_dn, &cfg->ntls_allowed_dn, err) < 0)
        return -1;
    if (mode) {
        static const char *const names[] = { "none", "optional", "required" };
        cfg->tls_client_cert = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(mode, names[i]) == 0)
                cfg->tls_client_cert = i;
        if (cfg->tls_client_cert < 0)
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                "%s: tls_client_cert must be \"required\", \"optional\" or "
                                "\"none\"", conf->path);
        cfg->tls_client_cert_set = 1;
    }
    if (cfg->tls_allowed_dn_set) { /* libvirt's meaning: a matching certificate is required */
        if (cfg->tls_client_cert_set && cfg->tls_client_cert != VB_TLS_CLIENT_CERT_REQUIRED)
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                "%s: tls_allowed_dn_list needs client certificates, but "
                                "tls_client_cert is \"%s\" (make it \"required\" or leave it out)",
                                conf->path, mode);
        cfg->tls_client_cert = VB_TLS_CLIENT_CERT_REQUIRED;
    }
    if (!cfg->crl_file && access(VB_TLS_SYSTEM_CRL, F_OK) == 0)
        cfg->crl_file = strdup(VB_TLS_SYSTEM_CRL);
    if (cfg->listen_tls && vbh_auth_list_has(&cfg->auth_tls, VBH_AUTH_NONE) &&
        cfg->tls_client_cert != VB_TLS_CLIENT_CERT_REQUIRED)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: auth_tls lists \"none\", which admits whoever completes the TLS "
                            "handshake: set tls_client_cert = \"required\" (and "
                            "tls_allowed_dn_list) so that only holders of a certificate from "
                            "ca_file get in",
                            conf->path);
    if (cfg->listen_tls && vbh_auth_list_has(&cfg->auth_tls, VBH_AUTH_PEER))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: auth_tls: peer checks a local process's uid, which a TLS "
                            "client does not have", conf->path);
    return 0;
}

static int load_keys(vb_conf *conf, vbh_config *cfg, vb_error *err)
{
    const char *mode = NULL, *level = NULL;
    unsigned max_frame = (unsigned)cfg->max_frame;
    char *const *names;
    size_t n;
    if (get_str(conf, "listen_unix", &cfg->listen_unix, err) < 0 ||
        vb_conf_get_string(conf, "listen_unix_mode", &mode, err) < 0 ||
        get_str(conf, "listen_tcp", &cfg->listen_tcp, err) < 0 ||
        parse_auth_list(conf, "auth_unix", &cfg->auth_unix, err) < 0 ||
        parse_auth_list(conf, "auth_tcp", &cfg->auth_tcp, err) < 0 ||
        get_str(conf, "sasl_app", &cfg->sasl_app, err) < 0 ||
        get_str(conf, "sasl_conf_dir", &cfg->sasl_conf_dir, err) < 0 ||
        get_str(conf, "sasl_hostname", &cfg->sasl_hostname, err) < 0 ||
        get_str(conf, "sasl_realm", &cfg->sasl_realm, err) < 0 ||
        parse_uids(conf, cfg, err) < 0 ||
        get_uint(conf, "tcp_min_ssf", 0, 256, &cfg->tcp_min_ssf, err) < 0 ||
        get_str(conf, "state_dir", &cfg->state_dir, err) < 0 ||
        get_uint(conf, "max_clients", 1, 1000000, &cfg->max_clients, err) < 0 ||
        get_uint(conf, "max_anonymous_clients", 1, 1000000, &cfg->max_anonymous_clients, err) < 0 ||
        get_uint(conf, "max_anonymous_per_peer", 1, 1000000, &cfg->max_anonymous_per_peer, err) < 0 ||
        get_uint(conf, "first_frame_timeout", 1, 3600, &cfg->first_frame_timeout_s, err) < 0 ||
        get_uint(conf, "max_output_preauth", 4096, 1u << 30, &cfg->max_output_preauth, err) < 0 ||
        get_uint(conf, "max_output", 65536, 1u << 30, &cfg->max_output, err) < 0 ||
        get_uint(conf, "output_timeout", 1, 86400, &cfg->output_timeout_s, err) < 0 ||
        get_uint(conf, "auth_attempts_per_connection", 1, 100, &cfg->auth_attempts_per_connection,
                 err) < 0 ||
        get_uint(conf, "auth_timeout", 1, 3600, &cfg->auth_timeout_s, err) < 0 ||
        get_uint(conf, "auth_failure_max_delay", 1, 3600, &cfg->auth_failure_max_delay_s, err) < 0 ||
        get_uint(conf, "auth_failure_forget", 1, 86400, &cfg->auth_failure_forget_s, err) < 0 ||
        get_uint(conf, "auth_failure_table_size", 16, 1000000, &cfg->auth_failure_table_size,
                 err) < 0 ||
        get_uint(conf, "auth_failures_per_second", 0, 100000, &cfg->auth_failures_per_second,
                 err) < 0 ||
        get_uint(conf, "auth_failure_ipv4_prefix", 8, 32, &cfg->auth_failure_ipv4_prefix, err) < 0 ||
        get_uint(conf, "auth_failure_ipv6_prefix", 16, 128, &cfg->auth_failure_ipv6_prefix, err) < 0 ||
        get_uint(conf, "frame_timeout", 1, 3600, &cfg->frame_timeout_s, err) < 0 ||
        get_uint(conf, "keepalive_timeout", 0, 86400, &cfg->keepalive_timeout_s, err) < 0 ||
        get_uint(conf, "max_frame", VB_FRAME_MAX_PREAUTH, VB_FRAME_MAX_ABSOLUTE, &max_frame, err) < 0 ||
        get_str(conf, "default_uri", &cfg->default_uri, err) < 0 ||
        get_str(conf, "test_host_dir", &cfg->test_host_dir, err) < 0 ||
        get_str(conf, "log_file", &cfg->log_file, err) < 0 ||
        get_uint(conf, "token_ttl", 60, 90u * 24 * 3600, &cfg->token_ttl_s, err) < 0 ||
        get_uint(conf, "relay_timeout", 1, 3600, &cfg->relay_timeout_s, err) < 0 ||
        get_uint(conf, "xenapi_session_keep", 0, 24 * 3600, &cfg->xenapi_session_keep_s, err) < 0 ||
        get_uint(conf, "xenapi_sessions_max", 0, 4096, &cfg->xenapi_sessions_max, err) < 0 ||
        get_flag(conf, "allow_remote_uris", &cfg->allow_remote_uris, err) < 0 ||
        parse_endpoints(conf, "allowed_next_hops", parse_next_hop,
                        "tcp://HOST[:PORT], tls://HOST[:PORT], ssh://HOST[:PORT] or unix:/PATH",
                        &cfg->allowed_next_hops, &cfg->nallowed_next_hops, err) < 0 ||
        parse_endpoints(conf, "allowed_xenapi_hosts", parse_xenapi_host, "HOST[:PORT]",
                        &cfg->allowed_xenapi, &cfg->nallowed_xenapi, err) < 0 ||
        parse_endpoints(conf, "allowed_libvirt_hosts", parse_libvirt_host, "HOST[:PORT]",
                        &cfg->allowed_libvirt, &cfg->nallowed_libvirt, err) < 0 ||
        vb_conf_get_string(conf, "log_level", &level, err) < 0)
        return -1;
    cfg->max_frame = max_frame;
    if (load_token_endpoints(conf, cfg, err) < 0 || load_tls_keys(conf, cfg, err) < 0)
        return -1;
    if (vb_conf_get_list(conf, "sasl_allowed_username_list", &names, &n, err) == 1)
        cfg->sasl_allowed_set = 1;
    if (cfg->sasl_allowed_set && n > 0) {
        cfg->sasl_allowed_usernames = calloc(n, sizeof *cfg->sasl_allowed_usernames);
        for (size_t i = 0; cfg->sasl_allowed_usernames && i < n; i++)
            cfg->sasl_allowed_usernames[cfg->nsasl_allowed_usernames++] = strdup(names[i]);
    }
    if (mode) {
        char *end;
        unsigned long m = strtoul(mode, &end, 8);
        if (*end || m > 0777)
            return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                                "%s: listen_unix_mode must be octal like \"0600\"", conf->path);
        cfg->listen_unix_mode = (unsigned)m;
    }
    if (level && (cfg->log_level = vb_log_level_parse(level)) < 0)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: log_level must be error, warn, info or debug", conf->path);
    return 0;
}

int vbh_config_load(const char *path, vbh_config *cfg, vb_error *err)
{
    vb_conf conf;
    set_defaults(cfg);
    if (vb_conf_parse_file(path, &conf, err) < 0)
        return -1;
    int rc = load_keys(&conf, cfg, err);
    const vb_conf_entry *unknown = rc == 0 ? vb_conf_unknown_key(&conf) : NULL;
    if (unknown)
        rc = vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s:%d: unknown key '%s'", path,
                          unknown->line, unknown->key);
    if (rc == 0 && !cfg->listen_unix && !cfg->listen_tcp && !cfg->listen_tls)
        rc = vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                          "%s: set listen_unix, listen_tcp and/or listen_tls", path);
    vb_conf_clear(&conf);
    return rc;
}

void vbh_config_clear(vbh_config *cfg)
{
    free(cfg->listen_unix);
    free(cfg->listen_tcp);
    free(cfg->listen_tls);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->ca_file);
    free(cfg->crl_file);
    free(cfg->next_hop_pkipath);
    for (size_t i = 0; i < cfg->ntls_allowed_dn; i++)
        free(cfg->tls_allowed_dn[i]);
    free(cfg->tls_allowed_dn);
    free(cfg->sasl_app);
    free(cfg->sasl_conf_dir);
    free(cfg->sasl_hostname);
    free(cfg->sasl_realm);
    for (size_t i = 0; i < cfg->nsasl_allowed_usernames; i++)
        free(cfg->sasl_allowed_usernames[i]);
    free(cfg->sasl_allowed_usernames);
    free(cfg->state_dir);
    free(cfg->default_uri);
    free(cfg->test_host_dir);
    free(cfg->log_file);
    free_endpoints(cfg->allowed_next_hops, cfg->nallowed_next_hops);
    free_endpoints(cfg->allowed_xenapi, cfg->nallowed_xenapi);
    free_endpoints(cfg->allowed_libvirt, cfg->nallowed_libvirt);
    for (size_t i = 0; i < cfg->ntoken_endpoints; i++)
        free(cfg->token_endpoints[i]);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- the sasldb Cyrus will read ------------------------------------------ */

/* Cyrus' built-in config path (Debian's build) and sasldb default. */
#define SASL_DEFAULT_CONF_PATH "/etc/sasl2:/etc/sasl:/usr/lib/x86_64-linux-gnu/sasl2:/usr/lib/sasl2"
#define SASLDB_DEFAULT "/etc/sasldb2"

/* The value of key in a Cyrus config file, parsed as Cyrus does: "key:
 * value" lines, keys case-insensitive, '#' lines skipped, surrounding blanks
 * trimmed, the first occurrence wins. 1 found (copied to out), 0 not. */
static int sasl_conf_value(FILE *f, const char *key, char *out, size_t cap)
{
    char line[4096];
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '#' || strncasecmp(p, key, strlen(key)) != 0 || p[strlen(key)] != ':')
            continue;
        for (p += strlen(key) + 1; isspace((unsigned char)*p); p++)
            ;
        for (end = p + strlen(p); end > p && isspace((unsigned char)end[-1]); end--)
            ;
        *end = '\0';
        snprintf(out, cap, "%s", p);
        return 1;
    }
    return 0;
}

/* Which sasldb vbhostd's SASL opens: sasldb_path of the first APP.conf on
 * Cyrus' config path (sasl_conf_dir, else $SASL_CONF_PATH, else the
 * built-in list), else SASLDB_DEFAULT. 0 when an auxprop_plugin line leaves
 * sasldb out (then no sasldb is read), else 1. */
static int sasldb_in_use(const vbh_config *cfg, char *db, size_t cap)
{
    const char *env = getenv("SASL_CONF_PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s",
             cfg->sasl_conf_dir ? cfg->sasl_conf_dir : env && *env ? env : SASL_DEFAULT_CONF_PATH);
    snprintf(db, cap, "%s", SASLDB_DEFAULT);
    char *save = NULL;
    for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char path[4200], plugins[256];
        snprintf(path, sizeof path, "%s/%s.conf", dir, cfg->sasl_app);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        int used = !sasl_conf_value(f, "auxprop_plugin", plugins, sizeof plugins) ||
                   strcasestr(plugins, "sasldb") != NULL;
        sasl_conf_value(f, "sasldb_path", db, cap);
        fclose(f);
        return used;
    }
    return 1;
}

/* The sasldb holds password equivalents (DIGEST-MD5 and SCRAM need them):
 * only vbhostd's user may read it, or its group when the file is 0640 and
 * belongs to vbhostd's own group. Nobody else may write it. */
int vbh_check_sasldb(const vbh_config *cfg, vb_error *err)
{
    char db[4096];
    struct stat sb;
    if (!(cfg->listen_unix && vbh_auth_list_has(&cfg->auth_unix, VBH_AUTH_SASL)) &&
        !(cfg->listen_tcp && vbh_auth_list_has(&cfg->auth_tcp, VBH_AUTH_SASL)) &&
        !(cfg->listen_tls && vbh_auth_list_has(&cfg->auth_tls, VBH_AUTH_SASL)))
        return 0;
    if (!sasldb_in_use(cfg, db, sizeof db) || stat(db, &sb) != 0)
        return 0; /* no sasldb: SASL logins with passwords fail, nothing to leak */
    unsigned mode = (unsigned)sb.st_mode & 07777;
    if (sb.st_uid != 0 && sb.st_uid != geteuid())
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "sasldb %s belongs to uid %ld, who can change its passwords; it must "
                            "belong to root or to the user vbhostd runs as (chown %ld %s)",
                            db, (long)sb.st_uid, (long)geteuid(), db);
    if ((mode & 007) || (mode & 020) || ((mode & 040) && sb.st_gid != getegid()))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "sasldb %s has mode %04o (group %ld): it holds password equivalents, "
                            "so no other user may read or write it; run: chmod 0600 %s (or chmod "
                            "0640 with group %ld, vbhostd's own)",
                            db, mode, (long)sb.st_gid, db, (long)getegid());
    return 0;
}
