/* vbrokerd — the per-user broker.
 *
 *   vbrokerd [--config FILE] [--socket PATH] [--state-dir DIR] [--prompt-timeout SECONDS]
 *            [--secret-ttl SECONDS] [--secret-max SECONDS] [--upstream-idle SECONDS]
 *            [--max-logins-per-host N]
 *            [--frame-timeout SECONDS] [--keepalive-interval SECONDS]
 *            [--keepalive-count N] [--log-level LEVEL] [--log-file PATH]
 *            [--log-max-size BYTES] [--pinentry PROGRAM|none]
 *
 * Settings: the defaults, then vbrokerd.conf (brk_config.c), then these
 * options. An autostarted broker gets only --socket, so the file is how a
 * user configures it.
 * Runs in the foreground (autostart detaches it; systemd supervises it).
 * Socket: --socket, else $VBROKER_SOCKET, else $XDG_RUNTIME_DIR/vbroker/sock,
 * else /tmp/vbroker-UID/sock; or the socket systemd passes (LISTEN_FDS). Its
 * directory must be ours, 0700, not a link, below directories only root and
 * we can change (vb_sockdir.h); the broker binds through a descriptor of it.
 * State (cache.db): --state-dir, else $XDG_STATE_HOME/vbroker, else
 * $HOME/.local/state/vbroker; never a shared path when neither is set.
 * Log: stderr; --log-file (log_file) when given; a broker libvbroker
 * autostarted (VBROKER_AUTOSTARTED=1 in its environment) logs to
 * STATE/vbrokerd.log, because its stderr is a pipe nobody reads once it
 * answers. The file is rotated at --log-max-size (one .1 kept).
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

#include "brk.h"
#include "vb_paths.h" /* the default socket, state dir and vbrokerd.conf */
#include "vb_daemon.h"
#include "vb_libvirt.h"
#include "vb_log.h"
#include "vb_login_gate.h"
#include "vb_store.h"

#define SD_LISTEN_FDS_START 3

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vbrokerd [--config FILE] [--socket PATH] [--state-dir DIR] [OPTION SECONDS]...\n"
            "  --config FILE           settings (default $XDG_CONFIG_HOME/vbroker/vbrokerd.conf,\n"
            "                          else ~/.config/vbroker/vbrokerd.conf, when it exists);\n"
            "                          the options below win over it\n"
            "  --socket PATH           listen here (default: $VBROKER_SOCKET, else\n"
            "                          $XDG_RUNTIME_DIR/vbroker/sock, else /tmp/vbroker-UID/sock)\n"
            "  --state-dir DIR         the login cache (default $XDG_STATE_HOME/vbroker,\n"
            "                          else ~/.local/state/vbroker; with no home at all\n"
            "                          it must be given)\n"
            "  --log-level LEVEL       error, warn, info (default) or debug\n"
            "  --log-file PATH         log here (0600, never through a symbolic link) instead\n"
            "                          of stderr; an autostarted broker logs to\n"
            "                          STATE-DIR/vbrokerd.log\n"
            "  --log-max-size BYTES    past this the log file becomes PATH.1 and a new one\n"
            "                          starts (default 1048576; 1024..1073741824)\n"
            "  --prompt-timeout SECS   fail a credential request nobody answers (default 120)\n"
            "  --secret-ttl SECS       forget a cached password unused this long (default 600;\n"
            "                          0 keeps no passwords in memory)\n"
            "  --secret-max SECS       forget a cached password this long after entry (default 28800)\n"
            "  --upstream-idle SECS    close a shared host connection unused this long (default\n"
            "                          300; 0 closes it as soon as its last client closes)\n"
            "  --max-logins-per-host N logins to one host in progress at once (default 4;\n"
            "                          0: no limit); more wait up to 10 s for a turn, since\n"
            "                          vbhostd admits 5 unauthenticated connections per address\n"
            "  --frame-timeout SECS    disconnect a client whose frame has not arrived whole\n"
            "                          this long after its first byte (default 60)\n"
            "  --keepalive-interval SECS  ping idle host connections this often (default 5;\n"
            "                          0: never)\n"
            "  --keepalive-count N     give a host connection up after N unanswered pings\n"
            "                          (default 5)\n"
            "  --max-clients N         programs connected at once (default 1000); one more\n"
            "                          gets TOO_MANY_CLIENTS\n"
            "  --max-output BYTES      replies queued for a program that does not read them\n"
            "                          before its further calls wait (default 4194304)\n"
            "  --output-timeout SECS   disconnect a program whose full queue has not moved\n"
            "                          this long (default 30)\n"
            "  --pinentry PROGRAM      how the broker asks by itself for a program without a\n"
            "                          callback, on that program's display or terminal\n"
            "                          (default $VBROKER_PINENTRY, else pinentry_program in\n"
            "                          vbrokerd.conf, else 'pinentry' in PATH; 'none': never)\n");
}

static char *default_socket_path(void)
{
    char buf[256];
    vb_path_broker_socket(buf, sizeof buf);
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


static const struct option long_options[] = {
    { "config", required_argument, NULL, 'c' },
    { "socket", required_argument, NULL, 's' },
    { "state-dir", required_argument, NULL, 'd' },
    { "log-level", required_argument, NULL, 'l' },
    { "prompt-timeout", required_argument, NULL, 'n' },
    { "frame-timeout", required_argument, NULL, 'n' },
    { "keepalive-interval", required_argument, NULL, 'n' },
    { "keepalive-count", required_argument, NULL, 'n' },
    { "secret-ttl", required_argument, NULL, 'n' },
    { "secret-max", required_argument, NULL, 'n' },
    { "upstream-idle", required_argument, NULL, 'n' },
    { "max-clients", required_argument, NULL, 'n' },
    { "max-output", required_argument, NULL, 'n' },
    { "output-timeout", required_argument, NULL, 'n' },
    { "log-max-size", required_argument, NULL, 'n' },
    { "max-logins-per-host", required_argument, NULL, 'n' },
    { "log-file", required_argument, NULL, 'f' },
    { "pinentry", required_argument, NULL, 'p' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* --config FILE, when given: read first, so the other options win over it. */
static const char *config_option(int argc, char **argv)
{
    const char *path = NULL;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1)
        if (opt == 'c')
            path = optarg;
    opterr = 1;
    optind = 0; /* glibc: start over, fully */
    return path;
}

static int load_config_file(brk_config *cfg, const char *given)
{
    vb_error err;
    char *path = given ? strdup(given) : vb_path_config_file("vbrokerd.conf");
    int rc = path ? brk_config_load(cfg, path, given != NULL, &err) : 0;
    free(path);
    if (rc < 0)
        fprintf(stderr, "vbrokerd: %s\n", err.message);
    return rc;
}

/* The command line over cfg; 0, or the exit status. */
static int parse_options(int argc, char **argv, brk_config *cfg)
{
    int opt, index;
    vb_error err;
    while ((opt = getopt_long(argc, argv, "h", long_options, &index)) != -1) {
        switch (opt) {
        case 'c': break; /* already read */
        case 's': free(cfg->socket_path); cfg->socket_path = strdup(optarg); break;
        case 'd': free(cfg->state_dir); cfg->state_dir = strdup(optarg); break;
        case 'f': free(cfg->log_file); cfg->log_file = strdup(optarg); break;
        case 'p':
            if (!*optarg) {
                fprintf(stderr, "vbrokerd: --pinentry needs a program ('none' turns it off)\n");
                return 2;
            }
            free(cfg->pinentry_program);
            cfg->pinentry_program = strdup(optarg);
            break;
        case 'l':
            if ((cfg->log_level = vb_log_level_parse(optarg)) < 0) {
                fprintf(stderr, "vbrokerd: --log-level must be error, warn, info or debug\n");
                return 2;
            }
            break;
        case 'n':
            if (brk_config_set_option(cfg, long_options[index].name, optarg, &err) < 0) {
                fprintf(stderr, "vbrokerd: %s\n", err.message);
                return 2;
            }
            break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* ---- the log, and refusals until the broker is ready ---------------------- */

/* Where stderr pointed before the log file took it (-1: it did not): until
 * the broker is ready a refusal goes there too, since an autostarting client
 * reads its first line for the reason, and a person at a terminal sees it. */
static int start_stderr = -1;

static void refuse_start(const char *message)
{
    if (start_stderr < 0) {
        fprintf(stderr, "vbrokerd: %s\n", message);
        return;
    }
    vb_log(VB_LOG_ERROR, "%s", message);
    dprintf(start_stderr, "vbrokerd: %s\n", message);
}

/* libvbroker marks a broker it autostarts; the mark is not passed on to the
 * programs the broker runs (ssh). */
static int was_autostarted(void)
{
    const char *mark = getenv("VBROKER_AUTOSTARTED");
    int yes = mark && strcmp(mark, "1") == 0;
    unsetenv("VBROKER_AUTOSTARTED");
    return yes;
}

/* --log-file, else STATE/vbrokerd.log when autostarted, else stderr. */
static int choose_log(brk_config *cfg, int autostarted, vb_error *err)
{
    if (!cfg->log_file && autostarted) {
        if (vb_store_prepare_dir(cfg->state_dir, err) < 0)
            return -1;
        if (asprintf(&cfg->log_file, "%s/vbrokerd.log", cfg->state_dir) < 0) {
            cfg->log_file = NULL;
            return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_DAEMON, "out of memory");
        }
    }
    if (!cfg->log_file)
        return 0;
    start_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    vb_log_set_max_size(cfg->log_max_size);
    return vb_log_to_file(cfg->log_file, err);
}

/* SIGHUP: open the log file again (after someone moved it). */
static void reopen_log(void *data)
{
    (void)data;
    vb_error err;
    if (vb_log_reopen(&err) < 0)
        vb_log(VB_LOG_WARN, "SIGHUP: %s", err.message);
    else
        vb_log(VB_LOG_INFO, "SIGHUP: log reopened; other settings take effect at restart");
}

int main(int argc, char **argv)
{
    brk_config cfg;
    brk_config_defaults(&cfg);
    int autostarted = was_autostarted();
    if (load_config_file(&cfg, config_option(argc, argv)) < 0) {
        brk_config_clear(&cfg);
        return 2;
    }
    const char *pinentry = getenv("VBROKER_PINENTRY"); /* over the file, under --pinentry */
    if (pinentry && *pinentry) {
        free(cfg.pinentry_program);
        cfg.pinentry_program = strdup(pinentry);
    }
    int rc = parse_options(argc, argv, &cfg);
    if (rc != 0) { /* --help, or a usage error: no leak under ASan either */
        brk_config_clear(&cfg);
        return rc < 0 ? 0 : rc;
    }
    vb_remote_driver_set_idle(cfg.upstream_idle_ms);
    vb_login_gate_configure(cfg.max_logins_per_host, VB_LOGIN_GATE_DEFAULT_WAIT_MS);
    vb_libvirt_driver_set_idle(cfg.upstream_idle_ms);
    vb_libvirt_driver_set_keepalive(cfg.keepalive_interval_s, cfg.keepalive_count);
    if (!cfg.socket_path)
        cfg.socket_path = default_socket_path();
    /* NULL when there is no private place: the cache holds login tokens,
     * and a fallback such as /tmp/.local/state would be shared by every user */
    if (!cfg.state_dir && !(cfg.state_dir = vb_path_state_dir())) {
        fprintf(stderr, "vbrokerd: no private directory for the login cache: neither HOME nor "
                        "XDG_STATE_HOME is set to an absolute path, the account's home does not "
                        "exist, and a shared one such as /tmp is never used; set HOME or pass "
                        "--state-dir DIR\n");
        brk_config_clear(&cfg);
        return 2;
    }
    cfg.listen_fd = activated_fd();
    vb_log_init("vbrokerd", cfg.log_level);
    vb_error err;
    if (choose_log(&cfg, autostarted, &err) < 0) {
        refuse_start(err.message);
        brk_config_clear(&cfg);
        return 1;
    }
    vb_daemon_protect_memory();
    unsigned long nofile = vb_raise_nofile_limit();
    vb_loop *loop = vb_loop_new(&err);
    static brk_server srv; /* static: reachable at exit, workers may still use it */
    vb_daemon_on_reload(reopen_log, NULL);
    if (!loop || vb_daemon_watch_signals(loop, &err) < 0 || brk_server_start(&srv, &cfg, loop, &err) < 0) {
        refuse_start(err.message);
        brk_config_clear(&cfg); /* a refused start is no leak under ASan */
        return 1;
    }
    vb_log(VB_LOG_INFO, "ready on %s (uid %u, up to %u clients, %lu descriptors)",
           cfg.listen_fd >= 0 ? "systemd socket" : cfg.socket_path, (unsigned)getuid(),
           cfg.max_clients, nofile);
    if (start_stderr >= 0)
        close(start_stderr); /* ready: the client that started us stops listening there */
    start_stderr = -1;
    rc = vb_loop_run(loop);
    brk_server_stop(&srv);
    vb_loop_free(loop);
    brk_config_clear(&cfg);
    return rc == 0 ? 0 : 1;
}
