/*
 * vb_testsupport_daemons.c — start this build's vbhostd and vbrokerd the way
 * the integration tests do, and the XenAPI simulator: files in the test's
 * temp dir, named after the daemon, a debug log, and a wait (with a
 * deadline) until the sockets accept.
 */
#include "vb_testsupport.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define START_MS 10000

static char *const *hostd_argv(vb_ts_hostd *h, char *argv[5])
{
    argv[0] = VB_BUILD_DIR "/vbhostd";
    argv[1] = "-f";
    argv[2] = h->conf;
    argv[3] = "--foreground";
    argv[4] = NULL;
    return argv;
}

int vb_ts_hostd_restart(vb_ts_hostd *h)
{
    char *argv[5];
    h->pid = vb_ts_spawn_daemon(hostd_argv(h, argv), h->log);
    if (h->pid <= 0 || vb_ts_wait_unix_socket(h->sock, vb_ts_scaled_ms(START_MS)) < 0)
        return -1;
    if (h->port && vb_ts_wait_tcp("127.0.0.1", h->port, vb_ts_scaled_ms(START_MS)) < 0)
        return -1;
    if (h->tls_port && vb_ts_wait_tcp("127.0.0.1", h->tls_port, vb_ts_scaled_ms(START_MS)) < 0)
        return -1;
    return 0;
}

static int hostd_vstart(vb_ts_hostd *h, const char *dir, const char *name, int tcp, int tls,
                        const char *fmt, va_list ap)
{
    char extra[3000], tcp_line[80] = "", tls_line[80] = "", text[4200];
    int n = vsnprintf(extra, sizeof extra, fmt, ap);
    if (n < 0 || (size_t)n >= sizeof extra)
        return -1;
    snprintf(h->conf, sizeof h->conf, "%s/%s.conf", dir, name);
    snprintf(h->sock, sizeof h->sock, "%s/%s.sock", dir, name);
    snprintf(h->log, sizeof h->log, "%s/%s.log", dir, name);
    snprintf(h->state, sizeof h->state, "%s/%s-state", dir, name);
    if (!tcp)
        h->port = 0;
    else if (!h->port)
        h->port = vb_ts_free_tcp_port();
    h->tls_port = tls ? vb_ts_free_tcp_port() : 0;
    if (h->port)
        snprintf(tcp_line, sizeof tcp_line, "listen_tcp = \"127.0.0.1:%d\"\n", h->port);
    if (h->tls_port)
        snprintf(tls_line, sizeof tls_line, "listen_tls = \"127.0.0.1:%d\"\n", h->tls_port);
    n = snprintf(text, sizeof text,
                 "listen_unix = \"%s\"\n%s%sstate_dir = \"%s\"\nlog_level = \"debug\"\n%s",
                 h->sock, tcp_line, tls_line, h->state, extra);
    if (n < 0 || (size_t)n >= sizeof text || vb_ts_write_file(h->conf, text, 0600) < 0)
        return -1;
    return vb_ts_hostd_restart(h);
}

int vb_ts_hostd_start(vb_ts_hostd *h, const char *dir, const char *name, int tcp,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = hostd_vstart(h, dir, name, tcp, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int vb_ts_hostd_start_tls(vb_ts_hostd *h, const char *dir, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    h->port = 0;
    int rc = hostd_vstart(h, dir, name, 0, 1, fmt, ap);
    va_end(ap);
    return rc;
}

int vb_ts_hostd_sasl_setup(const char *dir, const char *realm, const char *mech_list,
                           const char *const users[], const char *keytab)
{
    char sasl[400];
    int n = snprintf(sasl, sizeof sasl, "%s/sasl", dir);
    if (n < 0 || (size_t)n >= sizeof sasl)
        return -1;
    return vb_ts_sasl_setup(sasl, "vbhostd", realm, mech_list, users, keytab);
}

int vb_ts_hostd_start_sasl(vb_ts_hostd *h, const char *dir, const char *name, int tcp,
                           const char *realm, const char *fmt, ...)
{
    char extra[3000];
    int n = snprintf(extra, sizeof extra, "sasl_conf_dir = \"%s/sasl\"\nsasl_realm = \"%s\"\n", dir,
                     realm);
    if (n < 0 || (size_t)n >= sizeof extra)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(extra + n, sizeof extra - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= sizeof extra - (size_t)n)
        return -1;
    return vb_ts_hostd_start(h, dir, name, tcp, "%s", extra);
}

int vb_ts_broker_start(vb_ts_broker *b, const char *dir, const char *name,
                       const char *const extra[])
{
    snprintf(b->sock, sizeof b->sock, "%s/%s-run/sock", dir, name);
    snprintf(b->log, sizeof b->log, "%s/%s.log", dir, name);
    snprintf(b->state, sizeof b->state, "%s/%s-state", dir, name);
    char *argv[48] = { VB_BUILD_DIR "/vbrokerd", "--socket", b->sock, "--state-dir", b->state,
                       "--log-level", "debug" };
    size_t n = 7;
    for (size_t i = 0; extra && extra[i]; i++) {
        if (n + 1 >= sizeof argv / sizeof *argv)
            return -1;
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    b->pid = vb_ts_spawn_daemon(argv, b->log);
    return b->pid > 0 && vb_ts_wait_unix_socket(b->sock, vb_ts_scaled_ms(START_MS)) == 0 ? 0 : -1;
}

void vb_ts_broker_use(const vb_ts_broker *b)
{
    setenv("VBROKER_SOCKET", b->sock, 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
}

int vb_ts_broker_run(const vb_ts_broker *b, char *const argv[], const char *stdin_text,
                     char **output, int timeout_ms)
{
    char env_sock[300];
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s", b->sock);
    char *env[] = { env_sock, "VBROKER_NO_AUTOSTART=1", NULL };
    return vb_ts_run(argv, env, stdin_text, output, timeout_ms);
}

pid_t vb_ts_xensim_start(const char *dir, int port, const char *users)
{
    char users_file[400], log[400], calls[400], listen_at[64];
    snprintf(users_file, sizeof users_file, "%s/xen-users", dir);
    snprintf(log, sizeof log, "%s/xen.log", dir);
    snprintf(calls, sizeof calls, "%s/xen-calls.log", dir);
    snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", port);
    if (vb_ts_write_file(users_file, users, 0600) < 0)
        return -1;
    char *sim[] = { "python3", "-I", "-S", VB_SRC_DIR "/tests/peers/xenapi_sim.py", "--listen",
                    listen_at, "--users", users_file, "--log", calls, NULL };
    pid_t pid = vb_ts_spawn(sim, NULL, log);
    return pid > 0 && vb_ts_wait_tcp("127.0.0.1", port, vb_ts_scaled_ms(START_MS)) == 0 ? pid : -1;
}

pid_t vb_ts_tls_forwarder(const char *dir, int port, int target_port, const char *mode,
                          const vb_ts_pki *id, const char *flag)
{
    char portarg[16], target[64], ready[400], log[400];
    snprintf(portarg, sizeof portarg, "%d", port);
    snprintf(target, sizeof target, "127.0.0.1:%d", target_port);
    snprintf(ready, sizeof ready, "%s/fwd-%d.ready", dir, port);
    snprintf(log, sizeof log, "%s/fwd.log", dir);
    unlink(ready);
    char *argv[16];
    size_t n = 0;
    char *fixed[] = { "python3", VB_SRC_DIR "/tests/peers/tls_mitm.py", "--port", portarg,
                      "--target", target, "--mode", (char *)mode, "--ready-file", ready };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = fixed[i];
    if (id) {
        argv[n++] = "--cert";
        argv[n++] = (char *)id->cert;
        argv[n++] = "--key";
        argv[n++] = (char *)id->key;
    }
    if (flag)
        argv[n++] = (char *)flag;
    argv[n] = NULL;
    pid_t pid = vb_ts_spawn(argv, NULL, log);
    if (pid > 0 && vb_ts_wait_file(ready, vb_ts_scaled_ms(15000)) == 0)
        return pid;
    if (pid > 0)
        vb_ts_stop(pid, 3000);
    return -1;
}
