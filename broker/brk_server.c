/* The broker's socket, its clients, and the completion queue from workers. */
#include "brk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vb_daemon.h"
#include "vb_libvirt.h"
#include "vb_log.h"
#include "vb_net.h"
#include "vb_sockdir.h"

/* ---- sessions ------------------------------------------------------------ */

void brk_session_ref(brk_session *s)
{
    pthread_mutex_lock(&s->srv->lock);
    s->refs++;
    pthread_mutex_unlock(&s->srv->lock);
}

static void session_free(brk_session *s)
{
    for (size_t i = 0; i < s->npriority; i++)
        free(s->priority[i]);
    free(s->uri);
    free(s->cred_uri);
    free(s->client_auth_file);
    brk_creds_forget_failures(s);
    brk_screen_clear(&s->screen);
    pthread_mutex_destroy(&s->mutex);
    free(s);
}

void brk_session_unref(brk_session *s)
{
    pthread_mutex_lock(&s->srv->lock);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&s->srv->lock);
    if (last)
        session_free(s);
}

static void session_on_close(vb_stream *stream, const vb_error *why, void *data)
{
    (void)stream;
    brk_session *s = data;
    brk_server *srv = s->srv;
    vb_log(VB_LOG_DEBUG, "client %s left: %s", s->peer, why->message);
    s->stream = NULL;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
    vb_acceptor_fd_freed(srv->acceptor); /* the stream has closed its descriptor */
    brk_worker_cancel(s);
    brk_session_unref(s);
}

static void session_on_msg(vb_stream *stream, vb_msg *msg, void *data)
{
    (void)stream;
    brk_dispatch(data, msg);
}

/* ---- frames finished by workers -------------------------------------------- */

void brk_post(brk_session *s, uint8_t *frame, size_t len, int job_done)
{
    brk_session_ref(s); /* dropped in deliver, on the loop */
    vb_offloop_post(s->srv->done, s, frame, len, job_done);
}

static void deliver(void *target, uint8_t *frame, size_t len, int job_done)
{
    brk_session *s = target;
    if (job_done)
        s->busy = 0;
    if (s->stream && frame)
        vb_stream_send(s->stream, frame, len);
    else
        vb_frame_free(frame, len);
    brk_session_unref(s);
}

/* ---- accepting ------------------------------------------------------------- */

static void accept_one(int fd, void *data)
{
    brk_server *srv = data;
    uid_t uid = (uid_t)-1;
    pid_t pid = 0;
    /* one getsockopt for the uid check, the log name and the pinentry's
     * text (a system call costs microseconds here: a warm open is dozens) */
    if (vb_net_peercred(fd, &uid, NULL, &pid) < 0 || uid != srv->uid) {
        vb_log(VB_LOG_WARN, "refused a client with uid %u (the broker runs as uid %u)",
               (unsigned)uid, (unsigned)srv->uid);
        char why[160];
        snprintf(why, sizeof why, "this broker belongs to uid %u; uid %u must use its own broker",
                 (unsigned)srv->uid, (unsigned)uid);
        vb_daemon_refuse(fd, VB_PROG_BROKER, VB_PROG_BROKER_VERSION, VB_ERR_AUTH_FAILED,
                         VB_DOM_BROKER, why);
        return;
    }
    if (srv->nsessions >= srv->cfg->max_clients) {
        vb_log(VB_LOG_WARN, "max-clients (%u) reached; refusing a connection", srv->cfg->max_clients);
        vb_daemon_refuse(fd, VB_PROG_BROKER, VB_PROG_BROKER_VERSION, VB_ERR_TOO_MANY_CLIENTS,
                         VB_DOM_BROKER, "too many programs use this broker; try again later");
        return;
    }
    brk_session *s = calloc(1, sizeof *s);
    vb_error err;
    if (!s) {
        close(fd);
        return;
    }
    s->srv = srv;
    s->refs = 1;
    pthread_mutex_init(&s->mutex, NULL);
    if (brk_worker_new(s, &err) < 0) {
        vb_log(VB_LOG_ERROR, "cannot serve a client: %s", err.message);
        close(fd);
        session_free(s);
        return;
    }
    /* the listener is a unix socket: what vb_net_peer_string would write */
    snprintf(s->peer, sizeof s->peer, "unix uid %u pid %d", (unsigned)uid, (int)pid);
    s->peer_pid = pid; /* named in the broker's own prompts */
    s->stream = vb_stream_new(srv->loop, fd, VB_FRAME_MAX_POSTAUTH, session_on_msg,
                              session_on_close, s, &err);
    if (!s->stream) {
        vb_log(VB_LOG_ERROR, "cannot serve %s: %s", s->peer, err.message);
        close(fd);
        brk_worker_cancel(s);
        session_free(s);
        return;
    }
    vb_stream_set_frame_timeout(s->stream, srv->cfg->frame_timeout_s * 1000);
    vb_stream_set_output_limit(s->stream, srv->cfg->max_output, srv->cfg->output_timeout_s * 1000);
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
}

/* ---- the socket -------------------------------------------------------------- */

/* err's message names the path we used, path_used; people know the socket
 * by its own name. */
static void rename_in_message(vb_error *err, const char *path_used, const char *path)
{
    char *at = strstr(err->message, path_used);
    if (!at || strcmp(path_used, path) == 0)
        return;
    char rest[sizeof err->message];
    snprintf(rest, sizeof rest, "%s", at + strlen(path_used));
    snprintf(at, sizeof err->message - (size_t)(at - err->message), "%s%s", path, rest);
}

/* The socket's directory must be ours and closed to everyone else (the
 * peer-uid check is the second lock, not the only one). The broker keeps a
 * descriptor of the directory it checked and binds through it
 * (/proc/self/fd/N/NAME): a name swapped for a link after the check cannot
 * redirect the socket. fchdir would do the same, but would move the working
 * directory of a threaded process under relative --state-dir paths. */
static int listen_in_checked_dir(brk_server *srv, const char *path, vb_error *err)
{
    srv->dir_fd = vb_sockdir_open(path, srv->uid, 1, VB_DOM_BROKER, err);
    if (srv->dir_fd < 0)
        return -1;
    char entry[sizeof(((struct sockaddr_un *)0)->sun_path)];
    vb_sockdir_entry_path(srv->dir_fd, path, entry, sizeof entry);
    srv->listen_fd = vb_net_listen_unix(entry, 0600, err);
    if (srv->listen_fd < 0)
        rename_in_message(err, entry, path);
    return srv->listen_fd;
}

static void unlink_socket(brk_server *srv)
{
    const char *slash = strrchr(srv->cfg->socket_path, '/');
    if (srv->dir_fd >= 0) {
        unlinkat(srv->dir_fd, slash ? slash + 1 : srv->cfg->socket_path, 0);
        close(srv->dir_fd);
        srv->dir_fd = -1;
    }
}

/* ---- the timers' chores, off the loop ----------------------------------------- */

/* cache.db may be locked by another process (a second broker's vbctl, a
 * backup): the purge waits for it on the store lane, up to the store's busy
 * timeout, and is tried again at the next round if it gives up. */
static void purge_run(void *arg)
{
    brk_server *srv = arg;
    vb_error err;
    vb_log(VB_LOG_DEBUG, "purging expired logins from cache.db");
    pthread_mutex_lock(&srv->cache_lock);
    int rc = vb_store_login_purge(srv->cache, (int64_t)time(NULL), &err);
    pthread_mutex_unlock(&srv->cache_lock);
    if (rc < 0)
        vb_log(VB_LOG_WARN, "purging expired logins: %s; tried again in 10 s", err.message);
}

static void purge_done(void *arg)
{
    ((brk_server *)arg)->purge_running = 0;
}

/* Closing a host connection waits for its host (an SSH session's pump
 * thread is joined, up to 2 s; a TLS or libvirt close may wait too): on the
 * teardown lane. */
static void reap_run(void *arg)
{
    (void)arg;
    uint64_t start = vb_now_ms();
    size_t before = vb_remote_driver_upstreams();
    vb_remote_driver_reap();
    size_t after = vb_remote_driver_upstreams();
    vb_libvirt_driver_reap();
    if (after < before)
        vb_log(VB_LOG_DEBUG, "closed %zu idle host connection%s in %llu ms", before - after,
               before - after == 1 ? "" : "s", (unsigned long long)(vb_now_ms() - start));
}

static void reap_done(void *arg)
{
    ((brk_server *)arg)->reap_running = 0;
}

/* Start a chore on lane unless the last one of its kind still runs. */
static void chore(brk_server *srv, vb_lane *lane, int *running, vb_lane_fn run, vb_lane_fn done,
                  const char *what)
{
    vb_error err;
    if (*running)
        return;
    if (vb_lane_submit(lane, run, done, srv, &err) < 0)
        vb_log(VB_LOG_WARN, "%s: %s", what, err.message);
    else
        *running = 1;
}

/* Wipe expired passwords even when nobody asks for them (memory: here),
 * purge expired logins and close shared host connections that stayed idle
 * (on the lanes). */
static void expire_secrets(vb_loop *loop, uint64_t id, void *data)
{
    (void)id;
    brk_server *srv = data;
    vb_secretcache_expire(srv->secrets, vb_now_ms());
    chore(srv, srv->store_lane, &srv->purge_running, purge_run, purge_done,
          "purging expired logins");
    chore(srv, srv->teardown_lane, &srv->reap_running, reap_run, reap_done,
          "closing idle host connections");
    srv->expiry_timer = vb_loop_add_timer(loop, 10000, expire_secrets, srv);
}

/* Shared host connections nobody is calling on get a PING each interval; one
 * that stopped answering is given up, so the next open logs in anew instead
 * of waiting for a dead host's timeout. A ping waits for its host: on the
 * teardown lane. */
static void keepalive_run(void *arg)
{
    brk_server *srv = arg;
    srv->keepalive_died = vb_remote_driver_keepalive(
        (uint64_t)srv->cfg->keepalive_interval_s * 1000, srv->cfg->keepalive_count);
}

static void keepalive_done(void *arg)
{
    brk_server *srv = arg;
    unsigned died = srv->keepalive_died;
    srv->keepalive_running = 0;
    if (died)
        vb_log(VB_LOG_WARN, "%u host connection%s stopped answering keepalive pings (%u s apart); "
                            "given up",
               died, died == 1 ? "" : "s", srv->cfg->keepalive_interval_s);
}

static void keepalive_upstreams(vb_loop *loop, uint64_t id, void *data)
{
    (void)id;
    brk_server *srv = data;
    chore(srv, srv->teardown_lane, &srv->keepalive_running, keepalive_run, keepalive_done,
          "pinging host connections");
    srv->keepalive_timer = vb_loop_add_timer(loop, (uint64_t)srv->cfg->keepalive_interval_s * 1000,
                                             keepalive_upstreams, srv);
}

static int open_cache(brk_server *srv, const char *state_dir, vb_error *err)
{
    char path[4200];
    if (vb_store_prepare_dir(state_dir, err) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/cache.db", state_dir);
    return vb_store_open(path, VB_STORE_BROKER_CACHE, &srv->cache, err);
}

int brk_server_start(brk_server *srv, brk_config *cfg, vb_loop *loop, vb_error *err)
{
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    srv->loop = loop;
    srv->dir_fd = -1;
    srv->uid = getuid();
    srv->started_ms = vb_now_ms();
    pthread_mutex_init(&srv->lock, NULL);
    pthread_mutex_init(&srv->cache_lock, NULL);
    srv->secrets = vb_secretcache_new(cfg->secret_ttl_ms, cfg->secret_max_ms);
    if (!srv->secrets)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
    if (open_cache(srv, cfg->state_dir, err) < 0 ||
        !(srv->store_lane = vb_lane_new(loop, VB_DOM_BROKER, err)) ||
        !(srv->teardown_lane = vb_lane_new(loop, VB_DOM_BROKER, err)))
        return -1;
    srv->expiry_timer = vb_loop_add_timer(loop, 10000, expire_secrets, srv);
    if (cfg->keepalive_interval_s)
        srv->keepalive_timer = vb_loop_add_timer(loop, (uint64_t)cfg->keepalive_interval_s * 1000,
                                                 keepalive_upstreams, srv);
    if (!(srv->done = vb_offloop_new(loop, deliver, err)))
        return -1;
    if (cfg->listen_fd >= 0) {
        srv->listen_fd = cfg->listen_fd;
    } else if (listen_in_checked_dir(srv, cfg->socket_path, err) < 0) {
        return -1;
    }
    srv->acceptor = vb_acceptor_new(loop, srv->listen_fd, "the broker socket", accept_one, srv, err);
    return srv->acceptor ? 0 : -1;
}

void brk_server_stop(brk_server *srv)
{
    while (srv->sessions)
        vb_stream_close(srv->sessions->stream);
    vb_acceptor_free(srv->acceptor);
    srv->acceptor = NULL;
    close(srv->listen_fd);
    if (srv->cfg->listen_fd < 0)
        unlink_socket(srv);
    /* the lanes finish what they were given (a purge, a STATUS whose client
     * left, closing host connections) */
    vb_lane_free(srv->store_lane, srv->loop);
    vb_lane_free(srv->teardown_lane, srv->loop);
    srv->store_lane = srv->teardown_lane = NULL;
    /* workers may still run: leave the cache open; wipe the passwords */
    vb_secretcache_clear(srv->secrets, NULL);
}
