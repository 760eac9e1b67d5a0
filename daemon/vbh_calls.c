/* The driver procedures: OPEN, CLOSE and the host/domain calls. */
#include "vbh.h"

#include <stdlib.h>
#include <string.h>

#include "vb_log.h"

#define NAME_MAX_LEN 4096

void vbh_client_close_driver(vbh_client *c)
{
    if (c->drv && c->drv_conn)
        c->drv->close(c->drv_conn);
    c->drv = NULL;
    c->drv_conn = NULL;
}

static int need_open(vbh_client *c, vb_error *err)
{
    if (!c->drv_conn)
        return vb_error_set(err, VB_ERR_NOT_OPEN, VB_DOM_DAEMON,
                            "no hypervisor connection is open: call OPEN first");
    return 0;
}

static int need_writable(vbh_client *c, vb_error *err)
{
    if (need_open(c, err) < 0)
        return -1;
    if (c->read_only)
        return vb_error_set(err, VB_ERR_READ_ONLY, VB_DOM_DAEMON,
                            "this connection was opened read-only");
    return 0;
}

static void empty_reply(vb_enc *reply)
{
    vb_enc_array(reply, 0);
}

/* The test driver reads test:///PATH files with the daemon's privileges:
 * only below test_host_dir, never anywhere a client names. */
static int check_local_uri(const vbh_config *cfg, const vb_uri *uri, vb_error *err)
{
    if (strcmp(uri->driver, "test") != 0 || !uri->path || strcmp(uri->path, "default") == 0)
        return 0;
    size_t dlen = cfg->test_host_dir ? strlen(cfg->test_host_dir) : 0;
    const char *path = uri->path[0] == '/' ? uri->path : NULL;
    char want[4200];
    if (!path) {
        snprintf(want, sizeof want, "/%s", uri->path);
        path = want;
    }
    if (dlen && strncmp(path, cfg->test_host_dir, dlen) == 0 && path[dlen] == '/' &&
        !strstr(path, "/../"))
        return 0;
    return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                        "this server only opens test:///default%s%s",
                        dlen ? " and test host files below " : "",
                        dlen ? cfg->test_host_dir : "");
}

int vbh_call_open(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    char *name = NULL;
    uint32_t flags = 0;
    if (vb_rd_strdup(args, NAME_MAX_LEN, &name, err) < 0 || vb_rd_u32(args, &flags, err) < 0) {
        free(name);
        return -1;
    }
    if (c->drv_conn) {
        free(name);
        return vb_error_set(err, VB_ERR_OPERATION_INVALID, VB_DOM_DAEMON,
                            "a hypervisor connection is already open on this connection");
    }
    const char *uri_text = name && *name ? name : c->srv->cfg->default_uri;
    vb_uri uri;
    memset(&uri, 0, sizeof uri);
    int rc = vb_uri_parse(uri_text, &uri, err);
    if (rc == 0 && vb_uri_is_remote(&uri))
        rc = vb_error_set(err, VB_ERR_NO_DRIVER, VB_DOM_DAEMON,
                          "'%s' names a remote transport; this server opens local URIs only",
                          uri_text);
    if (rc == 0)
        rc = check_local_uri(c->srv->cfg, &uri, err);
    const vb_driver *drv = rc == 0 ? vb_driver_lookup(uri.driver, err) : NULL;
    if (drv)
        rc = drv->open(&uri, flags, NULL, &c->drv_conn, err);
    else
        rc = -1;
    if (rc == 0) {
        c->drv = drv;
        c->read_only = (flags & VB_OPEN_READ_ONLY) != 0;
        vb_log(VB_LOG_INFO, "client %s (%s) opened %s%s", c->peer, c->identity, uri_text,
               c->read_only ? " read-only" : "");
        empty_reply(reply);
    }
    vb_uri_clear(&uri);
    free(name);
    return rc;
}

int vbh_call_close(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    if (need_open(c, err) < 0)
        return -1;
    vbh_client_close_driver(c);
    empty_reply(reply);
    return 0;
}

int vbh_call_get_hostname(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    char *hostname = NULL;
    if (need_open(c, err) < 0 || c->drv->get_hostname(c->drv_conn, &hostname, err) < 0)
        return -1;
    vb_enc_array(reply, 1);
    vb_enc_str(reply, hostname);
    free(hostname);
    return 0;
}

int vbh_call_list_domains(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    (void)args;
    vb_domain_info *doms = NULL;
    size_t n = 0;
    if (need_open(c, err) < 0 || c->drv->list_domains(c->drv_conn, &doms, &n, err) < 0)
        return -1;
    vb_enc_array(reply, 1);
    vb_enc_array(reply, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        vb_enc_array(reply, 6);
        vb_enc_i64(reply, doms[i].id);
        vb_enc_str(reply, doms[i].name);
        vb_enc_str(reply, doms[i].uuid);
        vb_enc_u64(reply, doms[i].state);
        vb_enc_u64(reply, doms[i].memory_kib);
        vb_enc_u64(reply, doms[i].vcpus);
    }
    free(doms);
    return 0;
}

typedef int (*domain_op)(void *conn, const char *name, vb_error *err);

static int domain_call(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err, int start)
{
    char *name = NULL;
    if (need_writable(c, err) < 0 || vb_rd_strdup(args, VB_DOMAIN_NAME_MAX, &name, err) < 0)
        return -1;
    if (!name)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_DAEMON, "no domain name given");
    domain_op op = start ? c->drv->domain_start : c->drv->domain_shutdown;
    int rc = op(c->drv_conn, name, err);
    if (rc == 0) {
        vb_log(VB_LOG_INFO, "client %s (%s): %s %s", c->peer, c->identity,
               start ? "started" : "shut down", name);
        empty_reply(reply);
    }
    free(name);
    return rc;
}

int vbh_call_domain_start(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    return domain_call(c, args, reply, err, 1);
}

int vbh_call_domain_shutdown(vbh_client *c, vb_rd *args, vb_enc *reply, vb_error *err)
{
    return domain_call(c, args, reply, err, 0);
}
