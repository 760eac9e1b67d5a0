/* vbrokerd — the per-user broker.
 *
 *   vbrokerd [--socket PATH] [--state-dir DIR] [--prompt-timeout SECONDS]
 *            [--secret-ttl SECONDS] [--secret-max SECONDS] [--upstream-idle SECONDS]
 *            [--frame-timeout SECONDS] [--keepalive-interval SECONDS]
 *            [--keepalive-count N] [--log-level LEVEL]
 *
 * Runs in the foreground (autostart detaches it; systemd supervises it).
 * Socket: --socket, else $VBROKER_SOCKET, else $XDG_RUNTIME_DIR/vbroker/sock,
 * else /tmp/vbroker-UID/sock; or the socket systemd passes (LISTEN_FDS).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "brk.h"
#include "vb_daemon.h"
#include "vb_log.h"

#define DEFAULT_PROMPT_TIMEOUT_S 120
#define DEFAULT_FRAME_TIMEOUT_S 60
#define DEFAULT_KEEPALIVE_INTERVAL_S 5
#define DEFAULT_KEEPALIVE_COUNT 5
#define SD_LISTEN_FDS_START 3

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vbrokerd [--socket PATH] [--prompt-timeout SECONDS] [--log-level LEVEL]\n"
            "  --socket PATH           listen here (default: $VBROKER_SOCKET, else\n"
            "                          $XDG_RUNTIME_DIR/vbroker/sock, else /tmp/vbroker-UID/sock)\n"
            "  --prompt-timeout SECS   fail a credential request nobody answers (default %d)\n"
            "  --log-level LEVEL       error, warn, info (default) or debug\n"
            "  --state-dir DIR         the login cache (default $XDG_STATE_HOME/vbroker,\n"
            "                          else ~/.local/state/vbroker)\n"
            "  --secret-ttl SECS       forget a cached password unused this long (default 600;\n"
            "                          0 keeps no passwords in memory)\n"
            "  --secret-max SECS       forget a cached password this long after entry (default 28800)\n"
            "  --upstream-idle SECS    close a shared host connection unused this long (default\n"
            "                          300; 0 closes it as soon as its last client closes)\n"
            "  --frame-timeout SECS    disconnect a client whose frame has not arrived whole\n"
            "                          this long after its first byte (default %d)\n"
            "  --keepalive-interval SECS  ping idle host connections this often (default %d;\n"
            "                          0: never)\n"
            "  --keepalive-count N     give a host connection up after N unanswered pings\n"
            "                          (default %d)\n",
            DEFAULT_PROMPT_TIMEOUT_S, DEFAULT_FRAME_TIMEOUT_S, DEFAULT_KEEPALIVE_INTERVAL_S,
            DEFAULT_KEEPALIVE_COUNT);
}

/* SECONDS as a count of milliseconds; -1 when it is not a number. */
static int64_t parse_seconds(const char *text)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || v > 100ull * 365 * 24 * 3600)
        return -1;
    return (int64_t)v * 1000;
}

static char *default_state_dir(void)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char buf[4096];
    if (xdg && xdg[0] == '/')
        snprintf(buf, sizeof buf, "%s/vbroker", xdg);
    else
        snprintf(buf, sizeof buf, "%s/.local/state/vbroker", home && *home ? home : "/tmp");
    return strdup(buf);
}

static char *default_socket_path(void)
{
    char buf[256];
    vb_proto_broker_socket_path(buf, sizeof buf);
    return strdup(buf);
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1. */
static int activated_fd(void)
{
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) < 1)
        return -1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return SD_LISTEN_FDS_START;
}


int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "prompt-timeout", required_argument, NULL, 't' },
        { "frame-timeout", required_argument, NULL, 'F' },
        { "keepalive-interval", required_argument, NULL, 'K' },
        { "keepalive-count", required_argument, NULL, 'C' },
        { "log-level", required_argument, NULL, 'l' },
        { "state-dir", required_argument, NULL, 'd' },
        { "secret-ttl", required_argument, NULL, 'T' },
        { "secret-max", required_argument, NULL, 'M' },
        { "upstream-idle", required_argument, NULL, 'U' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    brk_config cfg = { NULL, -1, DEFAULT_PROMPT_TIMEOUT_S, VB_LOG_INFO, NULL,
                       600u * 1000u, 8u * 3600u * 1000u, DEFAULT_FRAME_TIMEOUT_S,
                       DEFAULT_KEEPALIVE_INTERVAL_S, DEFAULT_KEEPALIVE_COUNT };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 's': free(cfg.socket_path); cfg.socket_path = strdup(optarg); break;
        case 't':
        case 'F': {
            int64_t ms = parse_seconds(optarg);
            if (ms <= 0 || ms > 24 * 3600 * 1000) {
                usage(stderr);
                return 2;
            }
            *(opt == 't' ? &cfg.prompt_timeout_s : &cfg.frame_timeout_s) = (unsigned)(ms / 1000);
            break;
        }
        case 'l':
            if ((cfg.log_level = vb_log_level_parse(optarg)) < 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'd': free(cfg.state_dir); cfg.state_dir = strdup(optarg); break;
        case 'K':
        case 'C': {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v > 3600 || (opt == 'C' && v == 0)) {
                fprintf(stderr, "vbrokerd: --%s needs a number%s\n",
                        opt == 'K' ? "keepalive-interval" : "keepalive-count",
                        opt == 'K' ? " of seconds (0 turns keepalive off)" : " from 1 to 3600");
                return 2;
            }
            *(opt == 'K' ? &cfg.keepalive_interval_s : &cfg.keepalive_count) = (unsigned)v;
            break;
        }
        case 'T':
        case 'M':
        case 'U': {
            int64_t ms = parse_seconds(optarg);
            if (ms < 0 || (opt == 'M' && ms == 0)) {
                fprintf(stderr, "vbrokerd: --%s needs a number of seconds%s\n",
                        opt == 'T' ? "secret-ttl" : opt == 'M' ? "secret-max" : "upstream-idle",
                        opt == 'M' ? " above 0" : "");
                return 2;
            }
            if (opt == 'T')
                cfg.secret_ttl_ms = (uint64_t)ms;
            else if (opt == 'M')
                cfg.secret_max_ms = (uint64_t)ms;
            else
                vb_remote_driver_set_idle((uint64_t)ms);
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || cfg.prompt_timeout_s == 0) {
        usage(stderr);
        return 2;
    }
    if (!cfg.socket_path)
        cfg.socket_path = default_socket_path();
    if (!cfg.state_dir)
        cfg.state_dir = default_state_dir();
    cfg.listen_fd = activated_fd();
    vb_log_init("vbrokerd", cfg.log_level);
    vb_daemon_protect_memory();
    vb_error err;
    vb_loop *loop = vb_loop_new(&err);
    static brk_server srv; /* static: reachable at exit, workers may still use it */
    if (!loop || vb_daemon_watch_signals(loop, &err) < 0 || brk_server_start(&srv, &cfg, loop, &err) < 0) {
        fprintf(stderr, "vbrokerd: %s\n", err.message);
        return 1;
    }
    vb_log(VB_LOG_INFO, "ready on %s (uid %u)%s", cfg.listen_fd >= 0 ? "systemd socket" : cfg.socket_path,
           (unsigned)getuid(), "");
    int rc = vb_loop_run(loop);
    brk_server_stop(&srv);
    vb_loop_free(loop);
    free(cfg.socket_path);
    free(cfg.state_dir);
    return rc == 0 ? 0 : 1;
}
