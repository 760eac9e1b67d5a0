/* vbhostd — the remote host daemon.
 *
 *   vbhostd -f CONFIG [--foreground] [--pidfile FILE]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "vb_daemon.h"
#include "vb_log.h"
#include "vb_session_keep.h"
#include "vbh.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vbhostd -f CONFIG [--foreground] [--pidfile FILE]\n"
            "  -f, --config FILE   configuration (see etc/vbhostd.conf)\n"
            "  -F, --foreground    do not detach\n"
            "  -p, --pidfile FILE  write the daemon's pid here\n"
            "      --list-tokens   list the tokens this daemon issued, then exit\n"
            "      --revoke-token ID  revoke one token, then exit\n"
            "      --protocol-v1   behave as a HOST protocol v1 server (no AUTH_*); for\n"
            "                      compatibility testing only\n");
}


static int write_pidfile(const char *path, vb_error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot write pidfile %s", path);
    dprintf(fd, "%d\n", (int)getpid());
    close(fd);
    return 0;
}

/* SIGHUP: re-read the file and apply what can change under running clients
 * (log_level), reopen log_file (after logrotate moved it) and re-read the
 * TLS listener's crl_file (the same path). Listeners,
 * auth lists, SASL, limits and the state dir take effect at a restart. */
typedef struct reload_ctx {
    const char *config_path;
    vbh_server *srv;        /* once started: SIGHUP re-checks its token sessions */
} reload_ctx;

static void reload(void *data)
{
    const reload_ctx *ctx = data;
    vbh_config fresh;
    vb_error err;
    sd_notify(0, "RELOADING=1");
    if (vb_log_reopen(&err) < 0)
        vb_log(VB_LOG_ERROR, "SIGHUP: %s", err.message);
    if (ctx->srv) /* a certificate revoked in crl_file, whatever the rest of the file says */
        vbh_server_reload_tls(ctx->srv);
    if (vbh_config_load(ctx->config_path, &fresh, &err) < 0) {
        vb_log(VB_LOG_ERROR, "SIGHUP: %s; keeping the running configuration", err.message);
        sd_notify(0, "READY=1");
        return;
    }
    vb_log_set_level(fresh.log_level);
    if (ctx->srv) /* a token revoked by `vbhostd --revoke-token` ends its sessions now */
        vbh_recheck_token_sessions(ctx->srv);
    vb_log(VB_LOG_INFO, "SIGHUP: log reopened, log_level and crl_file re-read; other keys take "
                        "effect at restart");
    vbh_config_clear(&fresh);
    sd_notify(0, "READY=1");
}

/* Where the log goes: log_file when set; else stderr in the foreground and
 * syslog once detached (the terminal it started from is nobody's log). */
static int choose_log(const vbh_config *cfg, int detached, vb_error *err)
{
    if (cfg->log_file)
        return vb_log_to_file(cfg->log_file, err);
    if (detached)
        vb_log_to_syslog();
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'f' },
        { "foreground", no_argument, NULL, 'F' },
        { "pidfile", required_argument, NULL, 'p' },
        { "protocol-v1", no_argument, NULL, '1' },
        { "list-tokens", no_argument, NULL, 'L' },
        { "revoke-token", required_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *pidfile = NULL, *revoke = NULL;
    int foreground = 0, v1 = 0, list_tokens = 0, opt;
    while ((opt = getopt_long(argc, argv, "f:Fp:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'f': config = optarg; break;
        case 'F': foreground = 1; break;
        case 'p': pidfile = optarg; break;
        case '1': v1 = 1; break;
        case 'L': list_tokens = 1; break;
        case 'R': revoke = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!config || optind != argc) {
        usage(stderr);
        return 2;
    }
    vb_error err;
    vbh_config cfg;
    if (vbh_config_load(config, &cfg, &err) < 0) {
        fprintf(stderr, "vbhostd: %s\n", err.message);
        return 1;
    }
    cfg.protocol_v1 = v1;
    if (list_tokens || revoke) {
        int status = vbh_admin_tokens(&cfg, revoke);
        vbh_config_clear(&cfg);
        return status;
    }
    vb_log_init("vbhostd", cfg.log_level);
    /* before detaching: LISTEN_PID names this process, not the child */
    if (vbh_take_passed_sockets(&cfg, config, &err) < 0) {
        fprintf(stderr, "vbhostd: %s\n", err.message);
        vbh_config_clear(&cfg);
        return 1;
    }
    /* detach before anything is opened: an epoll set, a signalfd or a
     * sqlite handle made before fork() does not work in the child */
    vb_daemon_start start = { -1 };
    if (!foreground && vb_daemon_detach(&start, &err) < 0) {
        fprintf(stderr, "vbhostd: %s\n", err.message);
        return 1;
    }
    vb_daemon_protect_memory();
    unsigned long nofile = vb_raise_nofile_limit();
    static reload_ctx reload_at; /* static: the signal handler keeps it */
    reload_at.config_path = config;
    vb_daemon_on_reload(reload, &reload_at);
    vb_loop *loop = NULL;
    static vbh_server srv; /* static: reachable at exit, workers may still use it */
    if (choose_log(&cfg, !foreground, &err) < 0 || vbh_check_sasldb(&cfg, &err) < 0 ||
        !(loop = vb_loop_new(&err)) ||
        vb_daemon_watch_signals(loop, &err) < 0 || vbh_server_start(&srv, &cfg, loop, &err) < 0 ||
        (pidfile && write_pidfile(pidfile, &err) < 0)) {
        char why[600];
        snprintf(why, sizeof why, "vbhostd: %s", err.message);
        vb_log(VB_LOG_ERROR, "%s", err.message);
        if (foreground)
            fprintf(stderr, "%s\n", why);
        vb_daemon_failed(&start, why);
        return 1;
    }
    reload_at.srv = &srv;
    vb_log(VB_LOG_INFO, "ready: server id %s, %lu descriptors%s%s%s%s%s%s%s%s", srv.server_id, nofile,
           cfg.listen_unix ? ", unix " : "", cfg.listen_unix ? cfg.listen_unix : "",
           cfg.listen_tcp ? ", tcp " : "", cfg.listen_tcp ? cfg.listen_tcp : "",
           cfg.listen_tls ? ", tls " : "", cfg.listen_tls ? cfg.listen_tls : "",
           cfg.passed_unix_fd >= 0 || cfg.passed_tcp_fd >= 0 || cfg.passed_tls_fd >= 0
               ? " (sockets from systemd)"
               : "",
           v1 ? " (protocol v1 mode)" : "");
    vb_daemon_started(&start);
    /* Type=notify: systemd's readiness signal (a no-op without NOTIFY_SOCKET) */
    sd_notify(0, "READY=1");
    vb_session_keep_configure(cfg.xenapi_session_keep_s, cfg.xenapi_sessions_max);
    int rc = vb_loop_run(loop);
    sd_notify(0, "STOPPING=1");
    vbh_server_stop(&srv);
    vb_session_keep_shutdown(); /* logs out every kept XenAPI session */
    vb_loop_free(loop);
    vbh_config_clear(&cfg);
    if (pidfile)
        unlink(pidfile);
    return rc == 0 ? 0 : 1;
}
