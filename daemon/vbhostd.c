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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "vb_daemon.h"
#include "vb_log.h"
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
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_DAEMON, "cannot write pidfile %s", path);
    dprintf(fd, "%d\n", (int)getpid());
    close(fd);
    return 0;
}

static int daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    setsid();
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        close(null);
    }
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
    vb_daemon_protect_memory();
    vb_loop *loop = vb_loop_new(&err);
    static vbh_server srv; /* static: reachable at exit, workers may still use it */
    if (!loop || vbh_check_sasldb(&cfg, &err) < 0 || vb_daemon_watch_signals(loop, &err) < 0 ||
        vbh_server_start(&srv, &cfg, loop, &err) < 0) {
        fprintf(stderr, "vbhostd: %s\n", err.message);
        return 1;
    }
    if (!foreground && daemonize() < 0) {
        fprintf(stderr, "vbhostd: cannot detach: %s\n", strerror(errno));
        return 1;
    }
    if (pidfile && write_pidfile(pidfile, &err) < 0) {
        vb_log(VB_LOG_ERROR, "%s", err.message);
        return 1;
    }
    vb_log(VB_LOG_INFO, "ready: server id %s%s%s%s%s%s", srv.server_id,
           cfg.listen_unix ? ", unix " : "", cfg.listen_unix ? cfg.listen_unix : "",
           cfg.listen_tcp ? ", tcp " : "", cfg.listen_tcp ? cfg.listen_tcp : "",
           v1 ? " (protocol v1 mode)" : "");
    int rc = vb_loop_run(loop);
    vbh_server_stop(&srv);
    vb_loop_free(loop);
    vbh_config_clear(&cfg);
    if (pidfile)
        unlink(pidfile);
    return rc == 0 ? 0 : 1;
}
