/* Listeners, accepting, client lifetime and the server's persistent id. */
#include "vbh.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vb_daemon.h"
#include "vb_log.h"
#include "vb_net.h"
#include "vb_polkit.h"
#include "vbh_failures.h"

/* ---- persistent server id ------------------------------------------------ */

static int read_server_id(const char *path, char out[65])
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%64s", out) == 1 && strlen(out) == 32;
    fclose(f);
    return ok ? 0 : -1;
}

/* A random id made at first start, so clients can tell servers apart and
 * never show one server's token to another. */
static int load_or_create_server_id(const char *state_dir, char out[65], vb_error *err)
{
    char path[4096];
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        return vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot create state_dir %s", state_dir);
    snprintf(path, sizeof path, "%s/server-id", state_dir);
    if (read_server_id(path, out) == 0)
        return 0;
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return vb_error_set(err, VB_ERR_INTERNAL, VB_DOM_DAEMON, "no randomness for the server id");
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    /* write a temporary file and rename it, so a crash never leaves a torn id */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot create %s", tmp);
    char line[40];
    int n = snprintf(line, sizeof line, "%s\n", out);
    int rc = vb_net_write_all(fd, line, (size_t)n, err);
    if (rc == 0 && fsync(fd) < 0)
        rc = vb_error_set_errno(err, errno, VB_DOM_DAEMON, "fsync %s", tmp);
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = vb_error_set_errno(err, errno, VB_DOM_DAEMON, "rename %s", tmp);
    return rc;
}

#define TOKEN_KEEP_AFTER_EXPIRY_S (7 * 24 * 3600) /* for --list-tokens and audits */

int vbh_open_token_store(const vbh_config *cfg, vb_store **out, vb_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tokens.db", cfg->state_dir);
    if (vb_store_open(path, VB_STORE_DAEMON_TOKENS, out, err) < 0)
        return -1;
    vb_store_token_purge(*out, (int64_t)time(NULL), TOKEN_KEEP_AFTER_EXPIRY_S, NULL);
    return 0;
}

/* ---- client lifetime ----------------------------------------------------- */

static void client_update_anonymous(vbh_client *c)
{
    vbh_admit_set_anonymous(c, !c->authenticated && !c->peer_allowed);
}

static void client_on_close(vb_stream *s, const vb_error *why, void *data)
{
    (void)s;
    vbh_client *c = data;
    vbh_server *srv = c->srv;
    /* a client leaving is routine; being dropped (a timeout, a bad frame,
     * replies it did not read) is worth the operator's notice */
    vb_log(why->code == VB_ERR_PEER_CLOSED ? VB_LOG_DEBUG : VB_LOG_INFO, "client %s disconnected: %s",
           c->peer, why->message);
    if (c->auth_timer)
        vb_loop_del_timer(srv->loop, c->auth_timer);
    if (c->delay_timer)
        vb_loop_del_timer(srv->loop, c->delay_timer);
    if (c->first_frame_timer)
        vb_loop_del_timer(srv->loop, c->first_frame_timer);
    vb_frame_free(c->delayed_frame, c->delayed_len);
    c->delayed_frame = NULL;
    vb_sasl_free(c->sasl); /* the stream that used its layer is gone */
    c->sasl = NULL;
    vbh_admit_set_anonymous(c, 0); /* give the anonymous slot back */
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nclients--;
    for (size_t i = 0; i < srv->nlisteners; i++) /* the stream has closed its descriptor */
        vb_acceptor_fd_freed(srv->listeners[i].acceptor);
    c->gone = 1;
    c->stream = NULL;
    vbh_worker_cancel(c); /* its workers close the drivers, as their last jobs */
    vbh_client_unref(c);
}

static void client_on_msg(vb_stream *s, vb_msg *msg, void *data)
{
    (void)s;
    vbh_client *c = data;
    c->last_rx_ms = vb_now_ms();
    if (!c->spoke && c->first_frame_timer) {
        vb_loop_del_timer(c->srv->loop, c->first_frame_timer);
        c->first_frame_timer = 0;
    }
    c->spoke = 1;
    vbh_dispatch(c, msg);
}

/* A client that has sent a keepalive PING promises to keep talking: when
 * nothing at all has come from it for keepalive_timeout, its host or the
 * network in between is gone. Clients that never ping are left alone (an
 * old client, a person at a prompt), as is one whose call is still running
 * (it waits for us, not we for it).
 * The timer wakes at the earliest deadline, so a client is closed at its
 * deadline and not up to a period later (docs/protocol.md §9.2); every
 * deadline that starts later (a new ping, a call's end) lies beyond it. */
static void keepalive_check(vb_loop *loop, uint64_t id, void *data)
{
    (void)id;
    vbh_server *srv = data;
    uint64_t now = vb_now_ms(), limit = (uint64_t)srv->cfg->keepalive_timeout_s * 1000;
    uint64_t next = limit;
    for (vbh_client *c = srv->clients, *next_c; c; c = next_c) {
        next_c = c->next;
        if (!c->speaks_keepalive || c->ncalls || c->token_busy)
            continue;
        uint64_t quiet = now - c->last_rx_ms;
        if (quiet >= limit) {
            vb_log(VB_LOG_INFO, "client %s sent nothing, not even a keepalive, for %u s; "
                                "disconnecting", c->peer, srv->cfg->keepalive_timeout_s);
            vb_stream_close(c->stream);
        } else if (limit - quiet < next) {
            next = limit - quiet;
        }
    }
    srv->keepalive_timer = vb_loop_add_timer(loop, next, keepalive_check, srv);
}

/* `vbhostd --revoke-token` writes tokens.db from another process: the
 * running daemon sees it here, within VBH_TOKEN_RECHECK_MS plus the store's
 * answer (one indexed read per token, on the store lane; nothing to do
 * without token sessions). */
static void token_recheck(vb_loop *loop, uint64_t id, void *data)
{
    (void)id;
    vbh_server *srv = data;
    vbh_recheck_token_sessions(srv);
    srv->token_check_timer = vb_loop_add_timer(loop, VBH_TOKEN_RECHECK_MS, token_recheck, srv);
}

static void auth_timeout(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    vbh_client *c = data;
    c->auth_timer = 0;
    if (!c->authenticated) {
        vb_log(VB_LOG_INFO, "client %s did not authenticate within %u s; disconnecting", c->peer,
               c->srv->cfg->auth_timeout_s);
        vb_stream_close(c->stream);
    }
}

/* A connection that holds an anonymous slot must say something soon: a
 * silent one only occupies the slot. */
static void first_frame_timeout(vb_loop *loop, uint64_t id, void *data)
{
    (void)loop;
    (void)id;
    vbh_client *c = data;
    c->first_frame_timer = 0;
    vb_log(VB_LOG_INFO, "client %s sent no frame within %u s of connecting; disconnecting", c->peer,
           c->srv->cfg->first_frame_timeout_s);
    vb_stream_close(c->stream);
}

void vbh_client_mark_authenticated(vbh_client *c, const char *auth_type, const char *identity)
{
    c->authenticated = 1;
    c->auth_type = auth_type;
    snprintf(c->identity, sizeof c->identity, "%s", identity);
    client_update_anonymous(c);
    vb_stream_set_max_frame(c->stream, c->srv->cfg->max_frame);
    vb_stream_set_output_limit(c->stream, c->srv->cfg->max_output,
                               c->srv->cfg->output_timeout_s * 1000);
    if (c->auth_timer) {
        vb_loop_del_timer(c->srv->loop, c->auth_timer);
        c->auth_timer = 0;
    }
}

static int peer_uid_allowed(const vbh_config *cfg, uid_t uid)
{
    for (size_t i = 0; i < cfg->npeer_allowed_uids; i++)
        if (cfg->peer_allowed_uids[i] == uid)
            return 1;
    return 0;
}

/* A TCP peer's failures count against its address group (IPv4 per
 * auth_failure_ipv4_prefix, IPv6 per auth_failure_ipv6_prefix); without a
 * peer address, against its printable address without the port. */
static void set_failure_source(vbh_client *c, int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    const vbh_config *cfg = c->srv->cfg;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        vb_net_addr_group((struct sockaddr *)&ss, sl, cfg->auth_failure_ipv4_prefix,
                          cfg->auth_failure_ipv6_prefix, c->failure_source,
                          sizeof c->failure_source) == 0)
        return;
    snprintf(c->failure_source, sizeof c->failure_source, "%s", c->peer);
    char *colon = strrchr(c->failure_source, ':'); /* the port is not part of the key */
    if (colon)
        *colon = '\0';
}

static void setup_peer(vbh_client *c, int fd)
{
    vb_net_peer_string(fd, c->peer, sizeof c->peer);
    vb_net_peer_group(fd, c->peer_group, sizeof c->peer_group);
    if (c->lis->is_unix) {
        vb_net_peercred(fd, &c->uid, NULL, &c->pid);
        /* polkit names the peer by pid and start time: read the time now,
         * while the connecting process is most likely still the pid's owner
         * (a pid reused later then fails polkitd's start-time check) */
        if (vbh_auth_list_has(c->lis->auth, VBH_AUTH_POLKIT) &&
            (c->pid <= 0 || vb_polkit_start_time(c->pid, &c->start_time, NULL) < 0))
            c->pid = 0;
        c->peer_allowed = vbh_auth_list_has(c->lis->auth, VBH_AUTH_PEER) &&
                          peer_uid_allowed(c->srv->cfg, c->uid);
        snprintf(c->failure_source, sizeof c->failure_source, "uid:%u", (unsigned)c->uid);
    } else {
        vb_net_set_nodelay(fd);
        set_failure_source(c, fd);
    }
}

/* Refuse a client in words it can read (a serial-0 error reply, as for the
 * connection limits), over its TLS session, then close. */
static void refuse_client(vbh_client *c, int code, const char *message)
{
    vb_msg_header hdr = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_REPLY, 0, 0,
                          VB_STATUS_ERROR, 0 };
    vb_error e;
    uint8_t *frame;
    size_t len;
    vb_error_set(&e, code, VB_DOM_AUTH, "%s", message);
    if (vb_enc_error_reply(&hdr, VB_MSG_REPLY, &e, &frame, &len, NULL) == 0)
        vb_stream_send(c->stream, frame, len);
    vb_stream_close_after_flush(c->stream);
}

/* The TLS handshake is done (the client's certificate, if it sent one, is
 * verified): now the listener's policy on client certificates. */
static void client_tls_ready(vb_stream *s, void *data)
{
    vbh_client *c = data;
    const vbh_config *cfg = c->srv->cfg;
    vb_tls *tls = vb_stream_tls(s);
    int has_cert = vb_tls_peer_dn(tls, c->tls_dn, sizeof c->tls_dn);
    c->tls_ssf = vb_tls_ssf(tls);
    c->confidential = 1;
    char why[600];
    if (cfg->tls_client_cert == VB_TLS_CLIENT_CERT_REQUIRED && !has_cert) {
        vb_log(VB_LOG_WARN, "client %s: refused: it sent no TLS client certificate (%s)", c->peer,
               cfg->tls_allowed_dn_set ? "tls_allowed_dn_list requires one"
                                       : "tls_client_cert = required");
        snprintf(why, sizeof why,
                 "this vbhostd requires a TLS client certificate (%s in its vbhostd.conf) and this "
                 "client sent none; a client sends clientcert.pem and clientkey.pem from pkipath=, "
                 "$XDG_CONFIG_HOME/vbroker/pki/ or " VB_TLS_SYSTEM_DIR,
                 cfg->tls_allowed_dn_set ? "tls_allowed_dn_list" : "tls_client_cert = required");
        refuse_client(c, VB_ERR_AUTH_FAILED, why);
        return;
    }
    if (cfg->tls_allowed_dn_set &&
        !vb_tls_dn_allowed(c->tls_dn, cfg->tls_allowed_dn, cfg->ntls_allowed_dn)) {
        vb_log(VB_LOG_WARN, "client %s: refused: its certificate's subject \"%s\" matches no "
                            "pattern of tls_allowed_dn_list", c->peer, c->tls_dn);
        snprintf(why, sizeof why,
                 "this client's certificate (subject \"%.300s\") is not allowed here: it matches "
                 "no entry of tls_allowed_dn_list in the server's vbhostd.conf", c->tls_dn);
        refuse_client(c, VB_ERR_AUTH_FAILED, why);
        return;
    }
    if (vbh_cbind_admit(c, why, sizeof why) < 0) {
        vb_log(VB_LOG_WARN, "client %s: refused: %s", c->peer, why);
        refuse_client(c, VB_ERR_AUTH_UNAVAILABLE, why);
        return;
    }
    vb_log(VB_LOG_DEBUG, "client %s: %s, %u-bit cipher, client certificate %s", c->peer,
           vb_tls_version(tls), c->tls_ssf, has_cert ? c->tls_dn : "none");
    /* auth_tls = none: the verified certificate is the login (config demands one) */
    if (vbh_auth_list_has(c->lis->auth, VBH_AUTH_NONE) && !c->authenticated)
        vbh_client_mark_authenticated(c, "none", has_cert ? c->tls_dn : "anonymous");
}

static void accept_one(int fd, void *data)
{
    vbh_listener *lis = data;
    vbh_server *srv = lis->srv;
    vb_error err;
    if (srv->nclients >= srv->cfg->max_clients) {
        vb_log(VB_LOG_WARN, "max_clients (%u) reached; refusing a connection", srv->cfg->max_clients);
        vb_daemon_refuse(fd, VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_ERR_TOO_MANY_CLIENTS,
                         VB_DOM_DAEMON, "too many clients; try again later");
        return;
    }
    vbh_client *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->srv = srv;
    c->lis = lis;
    c->refs = 1;
    setup_peer(c, fd);
    c->confidential = lis->is_unix;
    int none = vbh_auth_list_has(lis->auth, VBH_AUTH_NONE) || srv->cfg->protocol_v1;
    if (!none && !c->peer_allowed && vbh_admit_anonymous(srv, c->peer_group, c->peer) < 0) {
        vb_log(VB_LOG_WARN, "max_anonymous_clients (%u) reached, none of them evictable for it; "
                            "refusing %s",
               srv->cfg->max_anonymous_clients, c->peer);
        vb_daemon_refuse(fd, VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_ERR_TOO_MANY_CLIENTS,
                         VB_DOM_DAEMON,
                         "too many unauthenticated clients on this server; try again later");
        free(c);
        return;
    }
    vb_tls *tls = NULL;
    if (lis->is_tls && !(tls = vb_tls_server_new(srv->tls_ctx, fd, &err))) {
        vb_log(VB_LOG_ERROR, "cannot serve %s: %s", c->peer, err.message);
        close(fd);
        free(c);
        return;
    }
    c->stream = vb_stream_new(srv->loop, fd, VB_FRAME_MAX_PREAUTH, client_on_msg, client_on_close,
                              c, &err);
    if (!c->stream) {
        vb_log(VB_LOG_ERROR, "cannot serve %s: %s", c->peer, err.message);
        vb_tls_free(tls);
        close(fd);
        free(c);
        return;
    }
    /* the handshake is held to the deadline of a first frame: a client that
     * opens TCP and never says hello only occupies a slot */
    if (tls)
        vb_stream_start_tls(c->stream, tls, srv->cfg->first_frame_timeout_s * 1000,
                            client_tls_ready);
    vb_stream_set_frame_timeout(c->stream, srv->cfg->frame_timeout_s * 1000);
    vb_stream_set_output_limit(c->stream, srv->cfg->max_output_preauth,
                               srv->cfg->output_timeout_s * 1000);
    c->last_rx_ms = vb_now_ms();
    c->next = srv->clients;
    if (srv->clients)
        srv->clients->prev = c;
    srv->clients = c;
    srv->nclients++;
    if (none && !lis->is_tls) {
        vbh_client_mark_authenticated(c, "none", "anonymous");
    } else if (!none) {
        client_update_anonymous(c);
        c->auth_deadline_ms = vb_now_ms() + (uint64_t)srv->cfg->auth_timeout_s * 1000;
        c->auth_timer = vb_loop_add_timer(srv->loop, (uint64_t)srv->cfg->auth_timeout_s * 1000,
                                          auth_timeout, c);
        if (c->counted_anonymous)
            c->first_frame_timer = vb_loop_add_timer(
                srv->loop, (uint64_t)srv->cfg->first_frame_timeout_s * 1000, first_frame_timeout, c);
    }
    vb_log(VB_LOG_DEBUG, "client %s connected (%s)", c->peer,
           lis->is_unix ? "unix" : lis->is_tls ? "tls" : "tcp");
}

enum { LISTEN_UNIX, LISTEN_TCP, LISTEN_TLS };

static int add_listener(vbh_server *srv, int fd, int kind, const vbh_auth_list *auth,
                        vb_error *err)
{
    static const char *const names[] = { "the unix socket", "the TCP socket", "the TLS socket" };
    vbh_listener *lis = &srv->listeners[srv->nlisteners];
    lis->srv = srv;
    lis->fd = fd;
    lis->is_unix = kind == LISTEN_UNIX;
    lis->is_tls = kind == LISTEN_TLS;
    lis->auth = auth;
    lis->acceptor = vb_acceptor_new(srv->loop, fd, names[kind], accept_one, lis, err);
    if (!lis->acceptor)
        return -1;
    srv->nlisteners++;
    return 0;
}

int vbh_server_start(vbh_server *srv, vbh_config *cfg, vb_loop *loop, vb_error *err)
{
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    srv->loop = loop;
    if (vbh_worker_start(srv, err) < 0 ||
        load_or_create_server_id(cfg->state_dir, srv->server_id, err) < 0 ||
        vbh_open_token_store(cfg, &srv->tokens, err) < 0 ||
        !(srv->store_lane = vb_lane_new(loop, VB_DOM_DAEMON, err)))
        return -1;
    if ((vbh_auth_list_has(&cfg->auth_unix, VBH_AUTH_SASL) ||
         vbh_auth_list_has(&cfg->auth_tcp, VBH_AUTH_SASL) ||
         (cfg->listen_tls && vbh_auth_list_has(&cfg->auth_tls, VBH_AUTH_SASL))) &&
        vb_sasl_server_init(cfg->sasl_app, cfg->sasl_conf_dir, err) < 0)
        return -1;
    if (cfg->listen_unix && vbh_auth_list_has(&cfg->auth_unix, VBH_AUTH_POLKIT) &&
        vbh_polkit_start(srv, err) < 0)
        return -1;
    if (cfg->keepalive_timeout_s)
        srv->keepalive_timer = vb_loop_add_timer(loop, (uint64_t)cfg->keepalive_timeout_s * 1000,
                                                 keepalive_check, srv);
    srv->token_check_timer = vb_loop_add_timer(loop, VBH_TOKEN_RECHECK_MS, token_recheck, srv);
    if (cfg->listen_unix) {
        int fd = cfg->passed_unix_fd >= 0
                     ? cfg->passed_unix_fd
                     : vb_net_listen_unix(cfg->listen_unix, cfg->listen_unix_mode, err);
        if (fd < 0 || add_listener(srv, fd, LISTEN_UNIX, &cfg->auth_unix, err) < 0)
            return -1;
    }
    if (cfg->listen_tcp) {
        int fd = cfg->passed_tcp_fd >= 0 ? cfg->passed_tcp_fd : vb_net_listen_tcp(cfg->listen_tcp, err);
        if (fd < 0 || add_listener(srv, fd, LISTEN_TCP, &cfg->auth_tcp, err) < 0)
            return -1;
    }
    vb_tls_client_set_default_pkipath(cfg->next_hop_pkipath);
    if (cfg->listen_tls) {
        vb_tls_server_conf tc = { cfg->cert_file, cfg->key_file, cfg->ca_file, cfg->crl_file,
                                  cfg->tls_client_cert };
        if (!(srv->tls_ctx = vb_tls_server_ctx_new(&tc, err)))
            return -1;
        int fd = cfg->passed_tls_fd >= 0 ? cfg->passed_tls_fd : vb_net_listen_tcp(cfg->listen_tls, err);
        if (fd < 0 || add_listener(srv, fd, LISTEN_TLS, &cfg->auth_tls, err) < 0)
            return -1;
    }
    return 0;
}

void vbh_server_reload_tls(vbh_server *srv)
{
    vb_error err;
    if (!srv->tls_ctx || !srv->cfg->crl_file)
        return;
    if (vb_tls_server_reload_crl(srv->tls_ctx, &err) < 0)
        vb_log(VB_LOG_ERROR, "SIGHUP: %s; the CRL read before stays in force", err.message);
    else if (srv->cfg->tls_client_cert != VB_TLS_CLIENT_CERT_NONE)
        vb_log(VB_LOG_INFO, "SIGHUP: crl_file re-read (%s)", srv->cfg->crl_file);
}

void vbh_server_stop(vbh_server *srv)
{
    if (srv->keepalive_timer)
        vb_loop_del_timer(srv->loop, srv->keepalive_timer);
    if (srv->token_check_timer)
        vb_loop_del_timer(srv->loop, srv->token_check_timer);
    while (srv->clients)
        vb_stream_close(srv->clients->stream);
    for (size_t i = 0; i < srv->nlisteners; i++) {
        vb_acceptor_free(srv->listeners[i].acceptor);
        close(srv->listeners[i].fd);
    }
    /* a socket systemd passed is systemd's: it stays for the next activation */
    if (srv->cfg->listen_unix && srv->cfg->passed_unix_fd < 0)
        unlink(srv->cfg->listen_unix);
    vb_lane_free(srv->store_lane, srv->loop); /* what was asked of tokens.db happens */
    srv->store_lane = NULL;
    vb_store_close(srv->tokens);
    srv->tokens = NULL;
    vb_tls_ctx_free(srv->tls_ctx); /* the streams that used it are gone */
    srv->tls_ctx = NULL;
    vbh_failures_free(srv->failures);
    srv->failures = NULL;
}
