/* The SSH transport end to end against a real OpenSSH sshd on 127.0.0.1:
 * app → libvbroker → vbrokerd → (libssh2, direct-streamlocal channel) →
 * sshd → vbhostd's unix socket → test driver. Only the public API on the
 * app side.
 *
 * Setup (all undone at the end): a test user (useradd + chpasswd, userdel -r),
 * sshd with its own config and ed25519 + ecdsa host keys (UsePAM yes for
 * keyboard-interactive, AllowStreamLocalForwarding yes), a real ssh-agent,
 * vbhostd listening on a 0666 unix socket with auth_unix = ["peer"] and
 * peer_allowed_users = [the test user]: vbhostd sees the SSH user as the
 * unix peer, so `peer` authentication is what admits the tunnel. The broker
 * runs with its own HOME (no ~/.ssh of the person running the tests) and
 * SSH_AUTH_SOCK pointing at the test agent.
 *
 * Needs root (useradd, sshd); skipped otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"
#include "vbroker.h"

#define START_MS 10000
#define PASSWORD "Ssh-t3st-Pw"
#define PASSPHRASE "key-pass-phrase"
#define ERR_HOST_KEY 24 /* VB_ERR_HOST_KEY: passed through the broker as is */

static char *dir;
static char user[32], home[300], keys[300], sshd_conf[300], sshd_log[300], agent_sock[300];
static char hostd_sock[300], broker_sock[300], broker_log[300];
static int ssh_port, user_created, skip_all;
static pid_t sshd_pid, agent_pid, hostd_pid, broker_pid;

static int run(char *const argv[], char *const env[], const char *in)
{
    char *out = NULL;
    int rc = vb_ts_run(argv, env, in, &out, 30000);
    if (rc != 0)
        fprintf(stderr, "test_ssh: %s exited %d: %s\n", argv[0], rc, out ? out : "");
    free(out);
    return rc;
}

static int keygen(const char *path, const char *type, const char *pass)
{
    char *argv[] = { "ssh-keygen", "-q", "-t", (char *)type, "-N", (char *)pass, "-C", "vbroker-test",
                     "-f", (char *)path, NULL };
    return run(argv, NULL, NULL);
}

static void remove_user(void)
{
    if (!user_created)
        return;
    user_created = 0;
    char *argv[] = { "userdel", "-r", "-f", user, NULL };
    char *out = NULL;
    vb_ts_run(argv, NULL, NULL, &out, 30000); /* -r may complain the mail spool is missing */
    free(out);
}

static int start_sshd(const char *conf, int port, pid_t *pid)
{
    char text[2000], log[300];
    snprintf(text, sizeof text,
             "Port %d\nListenAddress 127.0.0.1\nHostKey %s/host_ed25519\nHostKey %s/host_ecdsa\n"
             "PidFile %s/sshd-%d.pid\nUsePAM yes\nPasswordAuthentication yes\n"
             "KbdInteractiveAuthentication yes\nPubkeyAuthentication yes\n"
             "AllowStreamLocalForwarding yes\nX11Forwarding no\n"
             "PermitRootLogin no\nAllowUsers %s\nStrictModes yes\nMaxAuthTries 10\n"
             "UseDNS no\nLogLevel VERBOSE\nPrintMotd no\n",
             port, dir, dir, dir, port, user);
    vb_ts_write_file(conf, text, 0600);
    char *check[] = { "/usr/sbin/sshd", "-t", "-f", (char *)conf, NULL };
    if (run(check, NULL, NULL) != 0)
        return -1;
    snprintf(log, sizeof log, "%s/sshd-%d.log", dir, port);
    char *argv[] = { "/usr/sbin/sshd", "-D", "-e", "-f", (char *)conf, NULL };
    *pid = vb_ts_spawn(argv, NULL, log);
    return *pid > 0 && vb_ts_wait_tcp("127.0.0.1", port, START_MS) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    vb_ts_note_secret(PASSWORD);
    vb_ts_note_secret(PASSPHRASE);
    if (geteuid() != 0 || access("/usr/sbin/sshd", X_OK) != 0) {
        skip_all = 1;
        return 0;
    }
    dir = vb_ts_tmpdir("ssh");
    if (!dir)
        return -1;
    chmod(dir, 0711); /* the test user reaches its home and vbhostd's socket */
    snprintf(user, sizeof user, "vbssh%d", (int)(getpid() % 100000));
    snprintf(home, sizeof home, "%s/home", dir);
    snprintf(keys, sizeof keys, "%s/keys", dir);
    mkdir(keys, 0700);
    char *useradd[] = { "useradd", "-m", "-d", home, "-s", "/bin/bash", user, NULL };
    if (run(useradd, NULL, NULL) != 0)
        return -1;
    user_created = 1;
    atexit(remove_user);
    char line[200];
    snprintf(line, sizeof line, "%s:%s\n", user, PASSWORD);
    char *chpasswd[] = { "chpasswd", NULL };
    if (run(chpasswd, NULL, line) != 0)
        return -1;

    /* host keys, user keys, authorized_keys */
    char p[400], q[420];
    snprintf(p, sizeof p, "%s/host_ed25519", dir);
    snprintf(q, sizeof q, "%s/host_ecdsa", dir);
    if (keygen(p, "ed25519", "") || keygen(q, "ecdsa", ""))
        return -1;
    static const char *const names[] = { "id_plain", "id_enc", "id_agent" };
    char *auth = calloc(1, 8192);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", keys, names[i]);
        if (keygen(p, "ed25519", i == 1 ? PASSPHRASE : ""))
            return -1;
        snprintf(q, sizeof q, "%s.pub", p);
        char *pub = vb_ts_read_file(q, NULL);
        if (!pub)
            return -1;
        strncat(auth, pub, 8192 - strlen(auth) - 1);
        free(pub);
    }
    snprintf(p, sizeof p, "%s/.ssh", home);
    mkdir(p, 0700);
    snprintf(q, sizeof q, "%s/.ssh/authorized_keys", home);
    vb_ts_write_file(q, auth, 0600);
    free(auth);
    char owner[100];
    snprintf(owner, sizeof owner, "%s:%s", user, user);
    char *chown_argv[] = { "chown", "-R", owner, p, NULL };
    if (run(chown_argv, NULL, NULL) != 0)
        return -1;

    /* sshd */
    char *install[] = { "install", "-d", "-m0755", "/run/sshd", NULL };
    if (run(install, NULL, NULL) != 0)
        return -1;
    snprintf(sshd_conf, sizeof sshd_conf, "%s/sshd_config", dir);
    snprintf(sshd_log, sizeof sshd_log, "%s/sshd.log", dir);
    int tries = 0;
    do
        ssh_port = vb_ts_free_tcp_port();
    while (start_sshd(sshd_conf, ssh_port, &sshd_pid) < 0 && ++tries < 3 &&
           (vb_ts_stop(sshd_pid, 2000), 1));
    if (tries == 3)
        return -1;

    /* ssh-agent holding id_agent */
    snprintf(agent_sock, sizeof agent_sock, "%s/agent.sock", dir);
    char *agent[] = { "ssh-agent", "-D", "-a", agent_sock, NULL };
    agent_pid = vb_ts_spawn(agent, NULL, NULL);
    if (agent_pid <= 0 || vb_ts_wait_unix_socket(agent_sock, START_MS) < 0)
        return -1;
    char agent_env[400];
    snprintf(agent_env, sizeof agent_env, "SSH_AUTH_SOCK=%s", agent_sock);
    snprintf(p, sizeof p, "%s/id_agent", keys);
    char *env[] = { agent_env, NULL };
    char *add[] = { "ssh-add", "-q", p, NULL };
    if (run(add, env, NULL) != 0)
        return -1;

    /* vbhostd: peer auth, the SSH user allowed */
    char conf[1500], conf_path[300], hostd_log[300];
    snprintf(hostd_sock, sizeof hostd_sock, "%s/hostd.sock", dir);
    snprintf(hostd_log, sizeof hostd_log, "%s/vbhostd.log", dir);
    snprintf(conf, sizeof conf,
             "listen_unix = \"%s\"\nlisten_unix_mode = \"0666\"\nstate_dir = \"%s/hostd-state\"\n"
             "auth_unix = [\"peer\"]\npeer_allowed_users = [\"%s\"]\nlog_level = \"debug\"\n",
             hostd_sock, dir, user);
    snprintf(conf_path, sizeof conf_path, "%s/vbhostd.conf", dir);
    vb_ts_write_file(conf_path, conf, 0600);
    char *hargv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf_path, "--foreground", NULL };
    hostd_pid = vb_ts_spawn(hargv, NULL, hostd_log);
    if (hostd_pid <= 0 || vb_ts_wait_unix_socket(hostd_sock, START_MS) < 0)
        return -1;

    /* vbrokerd with its own HOME and the agent */
    char bhome[300], home_env[400], xdg_env[400], bstate[300];
    snprintf(bhome, sizeof bhome, "%s/broker-home", dir);
    mkdir(bhome, 0700);
    snprintf(home_env, sizeof home_env, "HOME=%s", bhome);
    snprintf(xdg_env, sizeof xdg_env, "XDG_CONFIG_HOME=%s/config", bhome);
    snprintf(bstate, sizeof bstate, "%s/broker-state", dir);
    snprintf(broker_sock, sizeof broker_sock, "%s/run/sock", dir);
    snprintf(broker_log, sizeof broker_log, "%s/vbrokerd.log", dir);
    char *benv[] = { home_env, xdg_env, agent_env, NULL };
    char *bargv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", broker_sock, "--state-dir", bstate,
                      "--secret-ttl", "0", "--upstream-idle", "0", "--log-level", "debug", NULL };
    broker_pid = vb_ts_spawn(bargv, benv, broker_log);
    if (broker_pid <= 0 || vb_ts_wait_unix_socket(broker_sock, START_MS) < 0)
        return -1;
    setenv("VBROKER_SOCKET", broker_sock, 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    return 0;
}

static int group_teardown(void **state)
{
    /* the broker first: its SSH sessions end, so no process of the user is left */
    if (broker_pid > 0)
        vb_ts_stop(broker_pid, 3000);
    if (sshd_pid > 0)
        vb_ts_stop(sshd_pid, 3000);
    if (hostd_pid > 0)
        vb_ts_stop(hostd_pid, 3000);
    if (agent_pid > 0)
        vb_ts_stop(agent_pid, 3000);
    remove_user();
    return vb_ts_group_teardown(state);
}

/* ---- the app's callback ---------------------------------------------------- */

typedef struct form {
    const char *authname, *secret, *echo_answer;
    int calls, retries, items;
    int types[8];
    char service[256], prompt[512];
} form;

static int form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    form *f = data;
    f->calls++;
    f->retries += req->retry;
    f->items = (int)n;
    snprintf(f->service, sizeof f->service, "%s", req->service);
    for (unsigned i = 0; i < n; i++) {
        if (i < 8)
            f->types[i] = creds[i].type;
        if (i == 0)
            snprintf(f->prompt, sizeof f->prompt, "%s", creds[i].prompt ? creds[i].prompt : "");
        const char *v = creds[i].type == VB_CRED_AUTHNAME      ? f->authname
                        : creds[i].type == VB_CRED_PASSPHRASE   ? f->secret
                        : creds[i].type == VB_CRED_NOECHOPROMPT ? f->secret
                        : creds[i].type == VB_CRED_ECHOPROMPT   ? f->echo_answer
                                                                : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

static const int form_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE, VB_CRED_ECHOPROMPT,
                                  VB_CRED_NOECHOPROMPT };

static vb_conn *open_with(const char *uri, form *f, vb_error *err)
{
    vb_auth auth = { form_types, 4, f ? form_cb : NULL, f };
    return vb_open_auth(uri, &auth, 0, err);
}

/* test+ssh://USER@127.0.0.1:PORT/default?socket=…&known_hosts=DIR/KH&PARAMS */
static char *ssh_uri(int port, const char *kh, const char *params)
{
    static char buf[2000];
    snprintf(buf, sizeof buf, "test+ssh://%s@127.0.0.1:%d/default?socket=%s&known_hosts=%s/%s%s%s",
             user, port, hostd_sock, dir, kh, params ? "&" : "", params ? params : "");
    return buf;
}

static void check_domains(vb_conn *c)
{
    vb_error err;
    vb_domain *doms;
    size_t n;
    char *host;
    if (vb_get_hostname(c, &host, &err) < 0)
        fail_msg("hostname: %s", err.message);
    assert_string_equal(host, "test-host");
    free(host);
    assert_int_equal(vb_list_domains(c, &doms, &n, &err), 0);
    assert_true(n >= 3);
    vb_domains_free(doms, n);
}

static vb_conn *must_open(const char *uri, form *f)
{
    vb_error err;
    vb_conn *c = open_with(uri, f, &err);
    if (!c)
        fail_msg("open %s: %s", uri, err.message);
    return c;
}

#define SKIP_UNLESS_READY()                                                                   \
    do {                                                                                      \
        if (skip_all)                                                                         \
            skip();                                                                           \
    } while (0)

/* ---- authentication ---------------------------------------------------------- */

static void test_password(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    form f = { user, PASSWORD, "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(ssh_port, "kh_auto", "known_hosts_verify=auto&sshauth=password"),
                           &f);
    /* the URI names the user: one form with the password only, as
     * `ssh user@host` asks (issue 15.1) */
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.items, 1);
    assert_int_equal(f.types[0], VB_CRED_PASSPHRASE);
    assert_non_null(strstr(f.prompt, user));
    assert_non_null(strstr(f.prompt, "password"));
    assert_non_null(strstr(f.service, "ssh://"));
    check_domains(c);
    /* vbhostd saw the SSH user as the unix peer */
    vb_broker_status st;
    vb_error err;
    assert_int_equal(vb_broker_get_status(&st, &err), 0);
    int found = 0;
    for (size_t i = 0; i < st.nupstreams; i++)
        if (strstr(st.upstreams[i].uri, "+ssh://")) {
            found = 1;
            assert_string_equal(st.upstreams[i].auth_type, "peer");
        }
    vb_broker_status_clear(&st);
    assert_true(found);
    vb_close(c);
}

static void test_wrong_password_three_times(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    form f = { user, "not-the-password", "no", 0, 0, 0, { 0 }, "", "" };
    vb_error err;
    vb_conn *c = open_with(ssh_uri(ssh_port, "kh_auto", "known_hosts_verify=auto&sshauth=password"),
                           &f, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_AUTH_FAILED);
    assert_int_equal(f.calls, 3);
    assert_int_equal(f.retries, 2);
    assert_null(strstr(err.message, "not-the-password"));
}

static void test_keyboard_interactive(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    form f = { user, PASSWORD, "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(
        ssh_uri(ssh_port, "kh_auto", "known_hosts_verify=auto&sshauth=keyboard-interactive"), &f);
    /* PAM asks one question, "Password: ", without echo */
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.items, 1);
    assert_int_equal(f.types[0], VB_CRED_NOECHOPROMPT);
    assert_non_null(strstr(f.prompt, "assword"));
    check_domains(c);
    vb_close(c);
}

static void test_ed25519_key(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    char params[600];
    snprintf(params, sizeof params, "known_hosts_verify=auto&sshauth=privkey&keyfile=%s/id_plain",
             keys);
    form f = { user, "unused", "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(ssh_port, "kh_auto", params), &f);
    assert_int_equal(f.calls, 0); /* nothing to ask */
    check_domains(c);
    vb_close(c);
}

static void test_encrypted_key_asks_passphrase(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    char params[600];
    snprintf(params, sizeof params, "known_hosts_verify=auto&sshauth=privkey&keyfile=%s/id_enc",
             keys);
    form f = { user, PASSPHRASE, "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(ssh_port, "kh_auto", params), &f);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.items, 1);
    assert_int_equal(f.types[0], VB_CRED_PASSPHRASE);
    assert_non_null(strstr(f.prompt, "id_enc"));
    check_domains(c);
    vb_close(c);
    /* a wrong passphrase: asked again (retry set), three times in all */
    form g = { user, "wrong", "no", 0, 0, 0, { 0 }, "", "" };
    vb_error err;
    assert_null(open_with(ssh_uri(ssh_port, "kh_auto", params), &g, &err));
    assert_int_equal(err.code, VBROKER_ERR_AUTH_FAILED);
    assert_int_equal(g.calls, 3);
    assert_int_equal(g.retries, 2);
}

static void test_agent(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    form f = { user, "unused", "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(ssh_port, "kh_auto", "known_hosts_verify=auto&sshauth=agent"),
                           &f);
    assert_int_equal(f.calls, 0);
    check_domains(c);
    vb_close(c);
}

static void test_default_order_skips_to_what_works(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    /* default sshauth: the agent comes first and needs no answer */
    form f = { user, PASSWORD, "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(ssh_port, "kh_auto", "known_hosts_verify=auto"), &f);
    assert_int_equal(f.calls, 0);
    vb_close(c);
}

/* ---- host keys -------------------------------------------------------------- */

static int file_has(const char *name, const char *needle)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = access(path, F_OK) == 0 ? vb_ts_read_file(path, NULL) : NULL;
    int found = text && strstr(text, needle);
    free(text);
    return found;
}

static void test_unknown_host_key_prompt_then_remembered(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    char params[600], hostpat[64];
    snprintf(params, sizeof params, "sshauth=privkey&keyfile=%s/id_plain", keys);
    snprintf(hostpat, sizeof hostpat, "[127.0.0.1]:%d ", ssh_port);
    /* "no": refused, nothing written */
    form n = { user, "unused", "no", 0, 0, 0, { 0 }, "", "" };
    vb_error err;
    assert_null(open_with(ssh_uri(ssh_port, "kh_prompt", params), &n, &err));
    assert_int_equal(err.code, ERR_HOST_KEY);
    assert_int_equal(n.calls, 1);
    assert_false(file_has("kh_prompt", hostpat));
    /* no callback: an error, not a hang */
    assert_null(open_with(ssh_uri(ssh_port, "kh_prompt", params), NULL, &err));
    assert_int_not_equal(err.code, VBROKER_ERR_OK);
    /* "yes": one question with the key type and the SHA256 fingerprint */
    form f = { user, "unused", "yes", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(ssh_port, "kh_prompt", params), &f);
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.items, 1);
    assert_int_equal(f.types[0], VB_CRED_ECHOPROMPT);
    assert_non_null(strstr(f.prompt, "SHA256:"));
    assert_true(strstr(f.prompt, "ED25519") || strstr(f.prompt, "ECDSA"));
    assert_non_null(strstr(f.prompt, "yes/no"));
    /* several lines, as ssh prints it, not "\x0a" (issue 15.1) */
    assert_non_null(strstr(f.prompt, "can't be established.\n"));
    assert_null(strstr(f.prompt, "\\x0a"));
    check_domains(c);
    vb_close(c);
    assert_true(file_has("kh_prompt", hostpat));
    /* remembered: the second open asks nothing */
    f.calls = 0;
    c = must_open(ssh_uri(ssh_port, "kh_prompt", params), &f);
    assert_int_equal(f.calls, 0);
    vb_close(c);
}

static void write_changed_known_hosts(void)
{
    /* other keys of both types for this host:port */
    char p[400], q[420], text[2000] = "";
    static const char *const types[] = { "ed25519", "ecdsa" };
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/impostor_%s", dir, types[i]);
        if (access(p, F_OK) != 0)
            assert_int_equal(keygen(p, types[i], ""), 0);
        snprintf(q, sizeof q, "%s.pub", p);
        char *pub = vb_ts_read_file(q, NULL);
        assert_non_null(pub);
        char *sp = strchr(pub, ' ');
        sp = sp ? strchr(sp + 1, ' ') : NULL; /* drop the comment */
        if (sp)
            *sp = '\0';
        snprintf(text + strlen(text), sizeof text - strlen(text), "[127.0.0.1]:%d %s\n", ssh_port,
                 pub);
        free(pub);
    }
    snprintf(p, sizeof p, "%s/kh_changed", dir);
    vb_ts_write_file(p, text, 0600);
}

static void test_changed_host_key_is_refused_without_prompt(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    write_changed_known_hosts();
    char params[600];
    snprintf(params, sizeof params, "sshauth=privkey&keyfile=%s/id_plain", keys);
    form f = { user, "unused", "yes", 0, 0, 0, { 0 }, "", "" };
    vb_error err;
    assert_null(open_with(ssh_uri(ssh_port, "kh_changed", params), &f, &err));
    assert_int_equal(err.code, ERR_HOST_KEY);
    assert_int_equal(f.calls, 0);
    assert_non_null(strstr(err.message, "CHANGED"));
    /* auto does not override a changed key either */
    char auto_params[700];
    snprintf(auto_params, sizeof auto_params, "%s&known_hosts_verify=auto", params);
    assert_null(open_with(ssh_uri(ssh_port, "kh_changed", auto_params), &f, &err));
    assert_int_equal(err.code, ERR_HOST_KEY);
    assert_int_equal(f.calls, 0);
}

static void test_auto_adds_silently(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    char params[600], hostpat[64];
    snprintf(params, sizeof params, "known_hosts_verify=auto&sshauth=privkey&keyfile=%s/id_plain",
             keys);
    snprintf(hostpat, sizeof hostpat, "[127.0.0.1]:%d ", ssh_port);
    form f = { user, "unused", "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(ssh_port, "kh_auto_new", params), &f);
    assert_int_equal(f.calls, 0);
    vb_close(c);
    assert_true(file_has("kh_auto_new", hostpat));
}

static void test_ignore_skips_the_check(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    write_changed_known_hosts();
    char params[600];
    snprintf(params, sizeof params,
             "known_hosts_verify=ignore&sshauth=privkey&keyfile=%s/id_plain", keys);
    form f = { user, "unused", "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(ssh_port, "kh_changed", params), &f);
    assert_int_equal(f.calls, 0);
    check_domains(c);
    vb_close(c);
}

static void test_bad_params_and_no_streamlocal_target(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    form f = { user, "unused", "no", 0, 0, 0, { 0 }, "", "" };
    vb_error err;
    assert_null(open_with(ssh_uri(ssh_port, "kh_auto", "known_hosts_verify=maybe"), &f, &err));
    assert_int_equal(err.code, VBROKER_ERR_INVALID_ARG);
    assert_null(open_with(ssh_uri(ssh_port, "kh_auto", "known_hosts_verify=auto&sshauth=telepathy"),
                          &f, &err));
    assert_int_equal(err.code, VBROKER_ERR_INVALID_ARG);
    /* a socket path where nothing listens: a connect error naming it */
    char uri[1200], params[600];
    snprintf(params, sizeof params, "known_hosts_verify=auto&sshauth=privkey&keyfile=%s/id_plain",
             keys);
    snprintf(uri, sizeof uri, "test+ssh://%s@127.0.0.1:%d/default?socket=%s/nothing.sock&"
             "known_hosts=%s/kh_auto&%s", user, ssh_port, dir, dir, params);
    assert_null(open_with(uri, &f, &err));
    assert_int_equal(err.code, VBROKER_ERR_NO_CONNECT);
    assert_non_null(strstr(err.message, "nothing.sock"));
    assert_int_equal(f.calls, 0);
}

/* ---- vbctl and a dying sshd ---------------------------------------------------- */

static void test_vbctl_list_over_ssh(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    char *uri = ssh_uri(ssh_port, "kh_auto", "known_hosts_verify=auto&sshauth=password");
    char sock_env[400], answers[200];
    snprintf(sock_env, sizeof sock_env, "VBROKER_SOCKET=%s", broker_sock);
    snprintf(answers, sizeof answers, "%s\n", PASSWORD); /* no user name: the URI has it */
    char *env[] = { sock_env, "VBROKER_NO_AUTOSTART=1", NULL };
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", uri, "list", NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, env, answers, &out, 60000);
    if (rc != 0)
        fail_msg("vbctl exited %d: %s", rc, out ? out : "");
    assert_non_null(strstr(out, "test"));
    assert_non_null(strstr(out, "running"));
    assert_null(strstr(out, PASSWORD));
    assert_null(strstr(out, "Username"));
    free(out);
}

/* What a person sees in vbctl: the host key question on its own lines, no
 * user name question, and an empty password asked again without being sent
 * (sshd counts no failed password for it) (issues 15.1, 15.5). */
static void test_vbctl_host_key_and_empty_password(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    char *uri = ssh_uri(ssh_port, "kh_vbctl", "sshauth=password");
    char sock_env[400], log[300];
    snprintf(sock_env, sizeof sock_env, "VBROKER_SOCKET=%s", broker_sock);
    snprintf(log, sizeof log, "%s/sshd-%d.log", dir, ssh_port);
    /* a failed try shows in sshd's log as "Failed password", and the empty
     * password (when it was sent) showed as "Failed none": count both */
    char failed[100], failed_empty[100], accepted[100];
    snprintf(failed, sizeof failed, "Failed password for %s ", user);
    snprintf(failed_empty, sizeof failed_empty, "Failed none for %s ", user);
    snprintf(accepted, sizeof accepted, "Accepted password for %s ", user);
    int failed_before = vb_ts_count_in_file(log, failed) + vb_ts_count_in_file(log, failed_empty);
    int accepted_before = vb_ts_count_in_file(log, accepted);
    char *env[] = { sock_env, "VBROKER_NO_AUTOSTART=1", NULL };
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", uri, "list", NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, env, "yes\n\n" PASSWORD "\n", &out, 60000);
    if (rc != 0)
        fail_msg("vbctl exited %d: %s", rc, out ? out : "");
    assert_non_null(strstr(out, "can't be established.\n"));
    assert_non_null(strstr(out, " key fingerprint is SHA256:"));
    assert_non_null(strstr(out, ".\nAre you sure you want to continue connecting (yes/no)?"));
    assert_null(strstr(out, "\\x0a"));
    assert_null(strstr(out, "Username"));
    assert_non_null(strstr(out, "not sent"));
    assert_null(strstr(out, "Authentication failed"));
    assert_null(strstr(out, PASSWORD));
    assert_non_null(strstr(out, "running"));
    free(out);
    assert_int_equal(vb_ts_count_in_file(log, failed) + vb_ts_count_in_file(log, failed_empty),
                     failed_before);
    assert_int_equal(vb_ts_count_in_file(log, accepted), accepted_before + 1);
}

/* ---- vbhostd as a hop: a client's ssh URI uses none of the daemon's own -------- */

/* A vbhostd D that holds an ssh identity of its own: an agent with id_agent,
 * ~/.ssh/id_ed25519 (id_plain), both authorized for the test user, and an
 * (empty) known_hosts. It may reach this sshd. */
static pid_t start_deputy(char *sock, char *home_dir, char *kh)
{
    char conf[1500], conf_path[300], log[300], key[400], home_env[400], xdg_env[400], agent_env[400];
    snprintf(home_dir, 300, "%s/deputy-home", dir);
    snprintf(sock, 300, "%s/deputy.sock", dir);
    snprintf(kh, 400, "%s/config/vbroker/known_hosts", home_dir);
    snprintf(key, sizeof key, "%s/.ssh", home_dir);
    mkdir(home_dir, 0700);
    mkdir(key, 0700);
    snprintf(key, sizeof key, "%s/.ssh/id_ed25519", home_dir);
    char src[400];
    snprintf(src, sizeof src, "%s/id_plain", keys);
    char *pem = vb_ts_read_file(src, NULL);
    vb_ts_write_file(key, pem ? pem : "", 0600);
    free(pem);
    snprintf(log, sizeof log, "%s/deputy.log", dir);
    snprintf(conf, sizeof conf,
             "listen_unix = \"%s\"\nstate_dir = \"%s/deputy-state\"\nauth_unix = [\"peer\"]\n"
             "allow_remote_uris = 1\nallowed_next_hops = [\"ssh://127.0.0.1:%d\"]\n"
             "log_level = \"debug\"\n",
             sock, dir, ssh_port);
    snprintf(conf_path, sizeof conf_path, "%s/deputy.conf", dir);
    vb_ts_write_file(conf_path, conf, 0600);
    snprintf(home_env, sizeof home_env, "HOME=%s", home_dir);
    snprintf(xdg_env, sizeof xdg_env, "XDG_CONFIG_HOME=%s/config", home_dir);
    snprintf(agent_env, sizeof agent_env, "SSH_AUTH_SOCK=%s", agent_sock);
    char *env[] = { home_env, xdg_env, agent_env, NULL };
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf_path, "--foreground", NULL };
    pid_t pid = vb_ts_spawn(argv, env, log);
    return pid > 0 && vb_ts_wait_unix_socket(sock, START_MS) == 0 ? pid : -1;
}

/* "[127.0.0.1]:PORT TYPE KEY" for each host key: what the operator records */
static void record_host_keys(const char *kh)
{
    char line[2000] = "", path[400];
    static const char *const names[] = { "host_ed25519.pub", "host_ecdsa.pub" };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *pub = vb_ts_read_file(path, NULL);
        assert_non_null(pub);
        char type[64], b64[1000];
        assert_int_equal(sscanf(pub, "%63s %999s", type, b64), 2);
        snprintf(line + strlen(line), sizeof line - strlen(line), "[127.0.0.1]:%d %s %s\n",
                 ssh_port, type, b64);
        free(pub);
    }
    char d[400];
    snprintf(d, sizeof d, "%.*s", (int)(strrchr(kh, '/') - kh), kh);
    *strrchr(d, '/') = '\0';
    mkdir(d, 0700); /* config */
    snprintf(d, sizeof d, "%.*s", (int)(strrchr(kh, '/') - kh), kh);
    mkdir(d, 0700); /* config/vbroker */
    assert_int_equal(vb_ts_write_file(kh, line, 0600), 0);
}

static void test_hop_uses_no_daemon_identity(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    char sock[300], dhome[300], kh[400], inner[600], enc[1800], uri[2400];
    pid_t deputy = start_deputy(sock, dhome, kh);
    assert_true(deputy > 0);
    /* the broker opens D; D opens the ssh URI the app named: a client's URI */
    snprintf(inner, sizeof inner, "test+ssh://%s@127.0.0.1:%d/default?socket=%s", user, ssh_port,
             hostd_sock);
    size_t o = 0;
    for (const char *p = inner; *p && o + 4 < sizeof enc; p++)
        o += (size_t)snprintf(enc + o, sizeof enc - o, isalnum((unsigned char)*p) ? "%c" : "%%%02X",
                              (unsigned char)*p);
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s&name=%s", sock, enc);
    char sshd_log_now[300];
    snprintf(sshd_log_now, sizeof sshd_log_now, "%s/sshd-%d.log", dir, ssh_port);
    int pubkeys = vb_ts_count_in_file(sshd_log_now, "Accepted publickey");
    /* an unknown host key: refused, nobody asked "yes/no", nothing written */
    form y = { user, PASSWORD, "yes", 0, 0, 0, { 0 }, "", "" };
    vb_error err;
    vb_conn *c = open_with(uri, &y, &err);
    if (c)
        fail_msg("D accepted an unknown host key for a client's URI");
    assert_int_equal(err.code, ERR_HOST_KEY);
    assert_non_null(strstr(err.message, "known_hosts"));
    assert_int_equal(y.calls, 0);
    assert_int_equal(access(kh, F_OK), -1);
    /* recorded by the operator: it logs in with the app's password, not with
     * D's agent or D's key (both would be accepted by sshd) */
    record_host_keys(kh);
    int passwords = vb_ts_count_in_file(sshd_log_now, "Accepted password for");
    form f = { user, PASSWORD, "no", 0, 0, 0, { 0 }, "", "" };
    c = must_open(uri, &f);
    assert_int_equal(f.calls, 1);
    assert_non_null(strstr(f.service, "ssh://"));
    check_domains(c);
    vb_close(c);
    assert_int_equal(vb_ts_count_in_file(sshd_log_now, "Accepted password for"), passwords + 1);
    assert_int_equal(vb_ts_count_in_file(sshd_log_now, "Accepted publickey"), pubkeys);
    vb_ts_stop(deputy, 3000);
}

/* the pids whose parent is ppid */
static int children_of(pid_t ppid, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) && n < max) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        int pp = 0;
        if (rp && sscanf(rp + 2, "%*c %d", &pp) == 1 && pp == ppid)
            out[n++] = (pid_t)atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return n;
}

/* A second sshd of our own (config NAME), so killing or freezing it spares
 * the others' tests: its port. */
static int start_own_sshd(const char *name, pid_t *pid)
{
    char conf[300];
    int port = 0;
    snprintf(conf, sizeof conf, "%s/%s", dir, name);
    for (int i = 0; i < 3 && !port; i++) {
        port = vb_ts_free_tcp_port();
        if (start_sshd(conf, port, pid) < 0) {
            vb_ts_stop(*pid, 2000);
            port = 0;
        }
    }
    assert_true(port > 0);
    return port;
}

/* the per-connection processes of the sshd pid (all its descendants) */
static int sshd_children(pid_t pid, pid_t *kids, int max)
{
    int nk = children_of(pid, kids, max);
    for (int i = 0; i < nk && nk < max; i++)
        nk += children_of(kids[i], kids + nk, max - nk);
    return nk;
}

static void test_sshd_killed_mid_session(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    pid_t pid = 0;
    int port = start_own_sshd("sshd_config_2", &pid);
    char params[600];
    snprintf(params, sizeof params, "known_hosts_verify=auto&sshauth=privkey&keyfile=%s/id_plain",
             keys);
    form f = { user, "unused", "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(port, "kh_auto", params), &f);
    check_domains(c);
    /* kill the listener and the per-connection sshd processes (the monitor and
     * the user's process that carries the channel: all descendants of ours) */
    pid_t kids[32];
    int nk = sshd_children(pid, kids, 32);
    assert_true(nk >= 1);
    for (int i = 0; i < nk; i++)
        kill(kids[i], SIGKILL); /* started by our sshd for this test: ours to end */
    vb_ts_stop(pid, 2000);
    vb_domain *doms;
    size_t n;
    vb_error err;
    assert_int_equal(vb_list_domains(c, &doms, &n, &err), -1);
    assert_int_not_equal(err.code, VBROKER_ERR_OK);
    vb_close(c);
    /* the broker is fine and serves the next SSH open */
    assert_int_equal(kill(broker_pid, 0), 0);
    c = must_open(ssh_uri(ssh_port, "kh_auto", params), &f);
    check_domains(c);
    vb_close(c);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Closing an idle SSH host connection waits for its host (the channel's
 * close, up to 2 s when the host does not answer): the broker's timer does
 * it off its loop (the teardown lane), so every client is answered
 * meanwhile (issue 17 item 5). The host is an sshd whose processes are
 * stopped (SIGSTOP), so the close really waits. */
static pid_t frozen[32]; /* ended by thaw_frozen, also when the test fails */
static int nfrozen;

static int thaw_frozen(void **state)
{
    (void)state;
    for (int i = 0; i < nfrozen; i++) {
        kill(frozen[i], SIGKILL); /* our sshd's, for this test: ours to end */
        kill(frozen[i], SIGCONT);
    }
    nfrozen = 0;
    return 0;
}

static void test_closing_a_frozen_host_stalls_nobody(void **state)
{
    (void)state;
    SKIP_UNLESS_READY();
    pid_t sshd = 0;
    int port = start_own_sshd("sshd_config_3", &sshd);
    /* a broker that closes host connections idle for 1 s (its 10 s timer) */
    char home_env[400], xdg_env[400], agent_env[400], bstate[300], bsock[300], blog[300];
    snprintf(home_env, sizeof home_env, "HOME=%s/broker-home", dir);
    snprintf(xdg_env, sizeof xdg_env, "XDG_CONFIG_HOME=%s/broker-home/config", dir);
    snprintf(agent_env, sizeof agent_env, "SSH_AUTH_SOCK=%s", agent_sock);
    snprintf(bstate, sizeof bstate, "%s/broker3-state", dir);
    snprintf(bsock, sizeof bsock, "%s/run3/sock", dir);
    snprintf(blog, sizeof blog, "%s/vbrokerd3.log", dir);
    char *benv[] = { home_env, xdg_env, agent_env, NULL };
    char *bargv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", bsock, "--state-dir", bstate,
                      "--secret-ttl", "0", "--upstream-idle", "1", "--keepalive-interval", "0",
                      "--log-level", "debug", NULL };
    pid_t broker = vb_ts_spawn(bargv, benv, blog);
    assert_true(broker > 0);
    assert_int_equal(vb_ts_wait_unix_socket(bsock, START_MS), 0);
    setenv("VBROKER_SOCKET", bsock, 1);
    char params[600];
    snprintf(params, sizeof params, "known_hosts_verify=auto&sshauth=privkey&keyfile=%s/id_plain",
             keys);
    form f = { user, "unused", "no", 0, 0, 0, { 0 }, "", "" };
    vb_conn *c = must_open(ssh_uri(port, "kh_auto", params), &f);
    check_domains(c);
    vb_close(c); /* the host connection stays, idle, until the timer closes it */
    setenv("VBROKER_SOCKET", broker_sock, 1);
    nfrozen = sshd_children(sshd, frozen, 32);
    assert_true(nfrozen >= 1);
    for (int i = 0; i < nfrozen; i++)
        kill(frozen[i], SIGSTOP); /* our sshd's: the channel's close gets no answer */

    vb_ts_wire w;
    assert_int_equal(vb_ts_wire_connect_unix(&w, bsock), 0);
    int64_t end = mono_ms() + 25000, best = -1;
    uint32_t serial = 0;
    while (mono_ms() < end && vb_ts_count_in_file(blog, "idle host connection") == 0) {
        int64_t ms = vb_ts_wire_ping_ms(&w, ++serial, 1000);
        if (ms < 0)
            fail_msg("PING %u not answered within 1000 ms while a host connection was being "
                     "closed: the broker's event loop is blocked", serial);
        best = best < 0 || ms < best ? ms : best;
        struct pollfd p = { .fd = w.fd, .events = POLLIN }; /* nothing comes unasked */
        assert_int_equal(poll(&p, 1, 20), 0);
    }
    thaw_frozen(NULL);
    vb_ts_wire_close(&w);
    char *text = vb_ts_read_file(blog, NULL);
    const char *line = text ? strstr(text, "closed 1 idle host connection in ") : NULL;
    unsigned long took = line ? strtoul(line + strlen("closed 1 idle host connection in "), NULL, 10)
                              : 0;
    free(text);
    print_message("%u PINGs answered (best %lld ms) while the close took %lu ms\n", serial,
                  (long long)best, took);
    assert_non_null(line);
    assert_true(took >= 1000); /* the close really waited for the frozen host */
    assert_true(best >= 0 && best < 50);
    assert_int_equal(vb_ts_check_exit("vbrokerd", vb_ts_stop(broker, 5000), blog), 0);
    vb_ts_stop(sshd, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_wrong_password_three_times),
        cmocka_unit_test(test_keyboard_interactive),
        cmocka_unit_test(test_ed25519_key),
        cmocka_unit_test(test_encrypted_key_asks_passphrase),
        cmocka_unit_test(test_agent),
        cmocka_unit_test(test_default_order_skips_to_what_works),
        cmocka_unit_test(test_unknown_host_key_prompt_then_remembered),
        cmocka_unit_test(test_changed_host_key_is_refused_without_prompt),
        cmocka_unit_test(test_auto_adds_silently),
        cmocka_unit_test(test_ignore_skips_the_check),
        cmocka_unit_test(test_bad_params_and_no_streamlocal_target),
        cmocka_unit_test(test_vbctl_list_over_ssh),
        cmocka_unit_test(test_vbctl_host_key_and_empty_password),
        cmocka_unit_test(test_hop_uses_no_daemon_identity),
        cmocka_unit_test(test_sshd_killed_mid_session),
        cmocka_unit_test_teardown(test_closing_a_frozen_host_stalls_nobody, thaw_frozen),
    };
    return cmocka_run_group_tests_name("ssh", tests, group_setup, group_teardown);
}
