/* The remote driver: vb_remote (the client side of vbhostd) behind the
 * driver vtable, so vbrokerd opens test+tcp://h/default exactly as it opens
 * test:///default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_cred.h"
#include "vb_driver.h"
#include "vb_remote.h"

/* What vbhostd should open: ?name= when given, else DRIVER:///PATH. */
static char *inner_name(const vb_uri *uri)
{
    const char *name = vb_uri_param_get(uri, "name");
    if (name)
        return strdup(name);
    size_t len = strlen(uri->driver) + strlen(uri->path ? uri->path : "") + 8;
    char *buf = malloc(len);
    if (buf)
        snprintf(buf, len, "%s:///%s", uri->driver, uri->path ? uri->path : "");
    return buf;
}

static int remote_open(const vb_uri *uri, unsigned flags, struct vb_cred_source *creds, void **conn,
                       vb_error *err)
{
    vb_remote_opts opts = { .timeout_ms = 0 };
    if (creds)
        opts.creds = *creds;
    vb_remote *r;
    if (vb_remote_connect(uri, &opts, &r, err) < 0)
        return -1;
    char *name = inner_name(uri);
    if (!name || vb_remote_open(r, name, flags, err) < 0) {
        if (!name)
            vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DRIVER, "out of memory");
        free(name);
        vb_remote_free(r);
        return -1;
    }
    free(name);
    *conn = r;
    return 0;
}

static void remote_close(void *conn)
{
    vb_remote_close_driver(conn, NULL);
    vb_remote_free(conn);
}

static int remote_hostname(void *conn, char **hostname, vb_error *err)
{
    return vb_remote_get_hostname(conn, hostname, err);
}

static int remote_list(void *conn, vb_domain_info **doms, size_t *n, vb_error *err)
{
    return vb_remote_list_domains(conn, doms, n, err);
}

static int remote_start(void *conn, const char *name, vb_error *err)
{
    return vb_remote_domain_start(conn, name, err);
}

static int remote_shutdown(void *conn, const char *name, vb_error *err)
{
    return vb_remote_domain_shutdown(conn, name, err);
}

static void remote_describe(void *conn, vb_conn_info *info)
{
    const vb_remote *r = conn;
    snprintf(info->auth_type, sizeof info->auth_type, "%s", vb_remote_auth_type(r));
    snprintf(info->sasl_mech, sizeof info->sasl_mech, "%s",
             vb_remote_sasl_mech(r) ? vb_remote_sasl_mech(r) : "");
    info->ssf = vb_remote_ssf(r);
    snprintf(info->server_id, sizeof info->server_id, "%s",
             vb_remote_server_id(r) ? vb_remote_server_id(r) : "");
}

const vb_driver vb_remote_driver = {
    .name = "remote",
    .open = remote_open,
    .close = remote_close,
    .get_hostname = remote_hostname,
    .list_domains = remote_list,
    .domain_start = remote_start,
    .domain_shutdown = remote_shutdown,
    .describe = remote_describe,
};
