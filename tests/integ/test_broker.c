/* The broker chain end to end: app → libvbroker → vbrokerd → vbhostd (real
 * SASL) → test driver. Only the public API (vbroker.h) on the app side. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vb_testsupport.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "br0ker-S3cret" /* distinctive: the suite-wide scan looks for it */
#define START_MS 10000

static char *dir;
static char hostd_sock[256], hostd_log[256], broker_sock[256], broker_log[256];
static int hostd_port;
static pid_t hostd_pid, broker_pid;

static pid_t start_broker(const char *sock, const char *log, const char *extra)
{
    char state[400];
    snprintf(state, sizeof state, "%s/broker-state", dir);
    /* --secret-ttl 0 --upstream-idle 0: these tests are about prompts, so no
     * password is kept in memory and no host connection is shared between
     * opens (test_login.c covers both) */
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", (char *)sock, "--state-dir", state,
                     "--secret-ttl", "0", "--upstream-idle", "0", "--log-level", "debug",
                     extra ? "--prompt-timeout" : NULL, (char *)extra, NULL };
    pid_t pid = vb_ts_spawn(argv, NULL, log);
    if (pid <= 0 || vb_ts_wait_unix_socket(sock, START_MS) < 0)
        return -1;
    return pid;
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("broker");
    char sasl_dir[300], conf[1500], conf_path[300];
    snprintf(sasl_dir, sizeof sasl_dir, "%s/sasl", dir);
    static const char *const users[] = { "alice:" PASSWORD, NULL };
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256 digest-md5", users, NULL) < 0)
        return -1;
    hostd_port = vb_ts_free_tcp_port();
    snprintf(hostd_sock, sizeof hostd_sock, "%s/hostd.sock", dir);
    snprintf(hostd_log, sizeof hostd_log, "%s/vbhostd.log", dir);
    snprintf(conf, sizeof conf,
             "listen_unix = \"%s\"\nlisten_tcp = \"127.0.0.1:%d\"\nstate_dir = \"%s/state\"\n"
             "auth_unix = [\"peer\", \"sasl\"]\nauth_tcp = [\"sasl\"]\n"
             "sasl_conf_dir = \"%s\"\nsasl_realm = \"" REALM "\"\nmax_anonymous_clients = 300\n"
             "log_level = \"debug\"\n",
             hostd_sock, hostd_port, dir, sasl_dir);
    snprintf(conf_path, sizeof conf_path, "%s/vbhostd.conf", dir);
    vb_ts_write_file(conf_path, conf, 0600);
    char *argv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf_path, "--foreground", NULL };
    hostd_pid = vb_ts_spawn(argv, NULL, hostd_log);
    if (hostd_pid <= 0 || vb_ts_wait_unix_socket(hostd_sock, START_MS) < 0)
        return -1;
    snprintf(broker_sock, sizeof broker_sock, "%s/run/sock", dir);
    snprintf(broker_log, sizeof broker_log, "%s/vbrokerd.log", dir);
    broker_pid = start_broker(broker_sock, broker_log, "3");
    if (broker_pid <= 0)
        return -1;
    setenv("VBROKER_SOCKET", broker_sock, 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    return 0;
}

static void kill_autostarted_brokers(void);

static int group_teardown(void **state)
{
    kill_autostarted_brokers(); /* even when the autostart test failed half-way */
    return vb_ts_group_teardown(state);
}

/* ---- the app's callback: a form filled at once ------------------------------ */

typedef struct form {
    const char *user, *password;
    int calls, items, retries;
    char service[128];
    int exit_inside;         /* simulate an app that dies mid-prompt */
    int stall_ms;            /* simulate a person who never answers */
} form;

static int form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    form *f = data;
    f->calls++;
    f->items = (int)n;
    f->retries += req->retry;
    snprintf(f->service, sizeof f->service, "%s", req->service);
    if (f->exit_inside)
        _exit(3);
    if (f->stall_ms)
        poll(NULL, 0, f->stall_ms); /* a person who walked away */
    for (unsigned i = 0; i < n; i++) {
        const char *v = creds[i].type == VB_CRED_AUTHNAME ? f->user
                        : creds[i].type == VB_CRED_PASSPHRASE ? f->password : NULL;
        if (v) {
            creds[i].result = strdup(v);
            creds[i].resultlen = (unsigned)strlen(v);
        }
    }
    return 0;
}

static const int form_types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };

static vb_conn *open_with(const char *uri, form *f, vb_error *err)
{
    vb_auth auth = { form_types, 2, f ? form_cb : NULL, f };
    return vb_open_auth(uri, &auth, 0, err);
}

static char *hostd_unix_uri(const char *params)
{
    static char buf[1200];
    snprintf(buf, sizeof buf, "test+unix:///default?socket=%s%s%s", hostd_sock,
             params ? "&" : "", params ? params : "");
    return buf;
}

static void check_domains(vb_conn *c)
{
    vb_error err;
    vb_domain *doms;
    size_t n;
    char *host;
    assert_int_equal(vb_get_hostname(c, &host, &err), 0);
    assert_string_equal(host, "test-host");
    free(host);
    assert_int_equal(vb_list_domains(c, &doms, &n, &err), 0);
    assert_true(n >= 3);
    int seen = 0;
    for (size_t i = 0; i < n; i++)
        seen |= strcmp(doms[i].name, "test") == 0;
    assert_true(seen);
    vb_domains_free(doms, n);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_scram_over_unix_through_broker(void **state)
{
    (void)state;
    form f = { "alice", PASSWORD, 0, 0, 0, "", 0, 0 };
    vb_error err;
    vb_conn *c = open_with(hostd_unix_uri("auth=sasl.SCRAM-SHA-256"), &f, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    /* one callback, carrying both items: one form for the person */
    assert_int_equal(f.calls, 1);
    assert_int_equal(f.items, 2);
    assert_non_null(strstr(f.service, "vbhostd"));
    check_domains(c);
    assert_int_equal(vb_domain_shutdown(c, "web", &err), 0);
    assert_int_equal(vb_domain_start(c, "web", &err), 0);
    assert_int_equal(vb_domain_start(c, "nosuch", &err), -1);
    assert_int_equal(err.code, VBROKER_ERR_NO_DOMAIN);
    vb_close(c);
}

static void test_digest_md5_over_tcp_visible_in_status(void **state)
{
    (void)state;
    form f = { "alice", PASSWORD, 0, 0, 0, "", 0, 0 };
    char uri[256];
    vb_error err;
    snprintf(uri, sizeof uri, "test+tcp://127.0.0.1:%d/default?auth=sasl.DIGEST-MD5", hostd_port);
    vb_conn *c = open_with(uri, &f, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    check_domains(c);
    vb_broker_status st;
    assert_int_equal(vb_broker_get_status(&st, &err), 0);
    assert_int_equal(st.pid, broker_pid);
    assert_true(st.clients >= 1);
    int found = 0;
    for (size_t i = 0; i < st.nupstreams; i++)
        if (strcmp(st.upstreams[i].uri, uri) == 0) {
            found = 1;
            assert_string_equal(st.upstreams[i].auth_type, "sasl");
            assert_string_equal(st.upstreams[i].sasl_mech, "DIGEST-MD5");
            assert_true(st.upstreams[i].ssf >= 56);
            assert_non_null(st.upstreams[i].server_id);
        }
    assert_true(found);
    vb_broker_status_clear(&st);
    vb_close(c);
}

static void test_read_only_local_driver(void **state)
{
    (void)state;
    vb_error err;
    vb_auth none = { NULL, 0, NULL, NULL };
    vb_conn *c = vb_open_auth("test:///default", &none, VB_OPEN_READ_ONLY, &err);
    assert_non_null(c);
    assert_int_equal(vb_domain_shutdown(c, "web", &err), -1);
    assert_int_equal(err.code, VBROKER_ERR_READ_ONLY);
    check_domains(c);
    vb_close(c);
}

/* ---- vbctl and the example, as a person or a script runs them ---------------- */

static int run_cli(char *const argv[], const char *stdin_text, char **out)
{
    char sock_env[400];
    snprintf(sock_env, sizeof sock_env, "VBROKER_SOCKET=%s", broker_sock);
    char *env[] = { sock_env, "VBROKER_NO_AUTOSTART=1", NULL };
    return vb_ts_run(argv, env, stdin_text, out, 30000);
}

static void test_vbctl_list_with_answers_on_stdin(void **state)
{
    (void)state;
    char uri[256];
    snprintf(uri, sizeof uri, "test+tcp://127.0.0.1:%d/default?auth=sasl.DIGEST-MD5", hostd_port);
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", uri, "list", NULL };
    char *out = NULL;
    assert_int_equal(run_cli(argv, "alice\n" PASSWORD "\n", &out), 0);
    assert_non_null(strstr(out, "test"));
    assert_non_null(strstr(out, "running"));
    assert_null(strstr(out, PASSWORD)); /* never echoed */
    free(out);
    /* a wrong password, three times: exit 1, asked again each time */
    assert_int_equal(run_cli(argv, "alice\nx\nalice\ny\nalice\nz\n", &out), 1);
    assert_non_null(strstr(out, "authentication failed"));
    free(out);
}

/* vbctl said one line, the last one (the prompts before it are the
 * terminal callback's) */
static void assert_one_line(const char *out)
{
    const char *own = strstr(out, "vbctl: ");
    if (!own || (own != out && own[-1] != '\n') || strstr(own + 1, "vbctl: ") ||
        strchr(own, '\n') != own + strlen(own) - 1)
        fail_msg("expected one last line from vbctl, got:\n%s", out);
}

static void test_vbctl_non_interactive_exits_77(void **state)
{
    (void)state;
    char uri[256];
    snprintf(uri, sizeof uri, "test+tcp://127.0.0.1:%d/default", hostd_port);
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", uri, "--non-interactive", "hostname", NULL };
    char *out = NULL;
    assert_int_equal(run_cli(argv, NULL, &out), 77);
    /* one line, plain words: what happened and what to run (issue 15.5) */
    assert_one_line(out);
    assert_ptr_equal(strstr(out, "vbctl: "), out); /* and nothing else */
    assert_non_null(strstr(out, "needs a login and --non-interactive forbids asking"));
    assert_non_null(strstr(out, "vbctl login"));
    assert_non_null(strstr(out, uri));
    free(out);
    /* no input at all, no terminal: the same, without hanging */
    char *argv2[] = { VB_BUILD_DIR "/vbctl", "-c", uri, "hostname", NULL };
    assert_int_equal(run_cli(argv2, "", &out), 77);
    assert_one_line(out);
    assert_non_null(strstr(out, "stdin ended"));
    free(out);
}

static void test_vbctl_exit_codes(void **state)
{
    (void)state;
    char *out = NULL;
    char *usage[] = { VB_BUILD_DIR "/vbctl", "-c", "test:///default", "frobnicate", NULL };
    assert_int_equal(run_cli(usage, NULL, &out), 2);
    free(out);
    char *status[] = { VB_BUILD_DIR "/vbctl", "status", NULL };
    assert_int_equal(run_cli(status, NULL, &out), 0);
    assert_non_null(strstr(out, "pid"));
    free(out);
    /* a broker that is not there: 69, and the message says what to do */
    char sock_env[400];
    snprintf(sock_env, sizeof sock_env, "VBROKER_SOCKET=%s/nowhere/sock", dir);
    char *env[] = { sock_env, "VBROKER_NO_AUTOSTART=1", NULL };
    char *list[] = { VB_BUILD_DIR "/vbctl", "-c", "test:///default", "list", NULL };
    assert_int_equal(vb_ts_run(list, env, NULL, &out, 30000), 69);
    assert_non_null(strstr(out, "vbrokerd"));
    free(out);
}

static void test_example_fills_the_form_at_once(void **state)
{
    (void)state;
    char uri[256];
    snprintf(uri, sizeof uri, "test+tcp://127.0.0.1:%d/default?auth=sasl.DIGEST-MD5", hostd_port);
    char sock_env[400];
    snprintf(sock_env, sizeof sock_env, "VBROKER_SOCKET=%s", broker_sock);
    char *env[] = { sock_env, "VBROKER_NO_AUTOSTART=1", "VB_EXAMPLE_USER=alice",
                    "VB_EXAMPLE_PASSWORD=" PASSWORD, NULL };
    char *argv[] = { VB_BUILD_DIR "/examples/form_example", uri, NULL };
    char *out = NULL;
    assert_int_equal(vb_ts_run(argv, env, NULL, &out, 30000), 0);
    assert_non_null(strstr(out, "in one call"));
    assert_non_null(strstr(out, "test-host"));
    free(out);
}

static void test_priority_and_uri_auth(void **state)
{
    (void)state;
    form f = { "alice", PASSWORD, 0, 0, 0, "", 0, 0 };
    vb_error err;
    /* the unix listener offers peer and sasl; put peer first: no prompt */
    const int peer_first[] = { VB_AUTH_PEER, VB_AUTH_SASL };
    assert_int_equal(vb_set_auth_priority(peer_first, 2), 0);
    vb_conn *c = open_with(hostd_unix_uri(NULL), &f, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 0);
    vb_close(c);
    /* the URI's auth= beats the process-wide priority */
    c = open_with(hostd_unix_uri("auth=sasl"), &f, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 1);
    vb_close(c);
    /* sasl first: the callback is asked */
    const int sasl_first[] = { VB_AUTH_SASL, VB_AUTH_PEER };
    assert_int_equal(vb_set_auth_priority(sasl_first, 2), 0);
    c = open_with(hostd_unix_uri(NULL), &f, &err);
    assert_non_null(c);
    assert_int_equal(f.calls, 2);
    vb_close(c);
    const int bogus[] = { 42 };
    assert_int_equal(vb_set_auth_priority(bogus, 1), -1);
    assert_int_equal(vb_set_auth_priority(NULL, 0), 0);
}

static void test_auth_conf_answers_without_prompt(void **state)
{
    (void)state;
    char path[300], params[400];
    snprintf(path, sizeof path, "%s/auth.conf", dir);
    vb_ts_write_file(path,
                     "[credentials-lab]\nauthname=alice\npassword=" PASSWORD "\n\n"
                     "[auth-vbhostd-default]\ncredentials=lab\n",
                     0600);
    snprintf(params, sizeof params, "auth=sasl.SCRAM-SHA-256&authfile=%s", path);
    form f = { "nobody", "wrong", 0, 0, 0, "", 0, 0 };
    vb_error err;
    vb_conn *c = open_with(hostd_unix_uri(params), &f, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    assert_int_equal(f.calls, 0); /* the file answered everything */
    check_domains(c);
    vb_close(c);
    /* a wrong password in the file: the person is asked, with the retry flag */
    vb_ts_write_file(path,
                     "[credentials-lab]\nauthname=alice\npassword=stale\n\n"
                     "[auth-vbhostd-default]\ncredentials=lab\n",
                     0600);
    form g = { "alice", PASSWORD, 0, 0, 0, "", 0, 0 };
    c = open_with(hostd_unix_uri(params), &g, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.retries, 1);
    vb_close(c);
}

static void test_no_callback_means_cred_required(void **state)
{
    (void)state;
    vb_error err;
    vb_conn *c = open_with(hostd_unix_uri("auth=sasl"), NULL, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    assert_non_null(strstr(err.message, "credentials required for"));
    assert_non_null(strstr(err.message, "auth.conf"));
}

/* As uid 65534, connect by hand and read what the broker says (libvbroker
 * would not get that far: the directory is not 65534's). 0 when the broker
 * refused with its uid message. */
static int raw_refusal_seen(void)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(broker_sock) >= sizeof sun.sun_path)
        return 15;
    memcpy(sun.sun_path, broker_sock, strlen(broker_sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
        return 13;
    char buf[1024];
    size_t got = 0;
    ssize_t n;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    while (got < sizeof buf - 1 && poll(&p, 1, 10000) == 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    close(fd);
    return memmem(buf, got, "belongs to uid", 14) ? 0 : 14;
}

static void test_second_uid_refused(void **state)
{
    (void)state;
    /* open the door wider than the broker would, so only the uid checks stand */
    char run[300];
    snprintf(run, sizeof run, "%s/run", dir);
    chmod(dir, 0755);
    chmod(run, 0755);
    chmod(broker_sock, 0666);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(10);
        /* the client refuses a directory that is not its own... */
        vb_error err;
        vb_conn *c = open_with("test:///default", NULL, &err);
        if (c)
            _exit(11);
        if (!strstr(err.message, "it belongs to uid 0, not to uid 65534"))
            _exit(12);
        /* ...and the broker refuses a peer of another uid */
        _exit(raw_refusal_seen());
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    chmod(broker_sock, 0600);
    chmod(run, 0700);
    chmod(dir, 0700);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* and the broker still serves its own user */
    vb_error err;
    vb_conn *c = open_with("test:///default", NULL, &err);
    assert_non_null(c);
    vb_close(c);
}

static void test_disconnect_mid_prompt_leaves_broker_healthy(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        form f = { "alice", PASSWORD, 0, 0, 0, "", 1, 0 };
        vb_error err;
        open_with(hostd_unix_uri("auth=sasl"), &f, &err);
        _exit(9); /* not reached: the callback exits */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 3);
    assert_int_equal(kill(broker_pid, 0), 0);
    form f = { "alice", PASSWORD, 0, 0, 0, "", 0, 0 };
    vb_error err;
    vb_conn *c = open_with(hostd_unix_uri("auth=sasl"), &f, &err);
    if (!c)
        fail_msg("open after a client died mid-prompt: %s", err.message);
    check_domains(c);
    vb_close(c);
}

static void test_prompt_timeout(void **state)
{
    (void)state;
    /* the broker was started with --prompt-timeout 3 */
    form f = { "alice", PASSWORD, 0, 0, 0, "", 0, 4500 };
    vb_error err;
    vb_conn *c = open_with(hostd_unix_uri("auth=sasl"), &f, &err);
    assert_null(c);
    assert_int_equal(err.code, VBROKER_ERR_TIMEOUT);
    assert_non_null(strstr(err.message, "within 3 s"));
    /* the late answer is ignored and the broker carries on */
    c = open_with("test:///default", NULL, &err);
    assert_non_null(c);
    vb_close(c);
}

typedef struct job {
    int ok;
    vb_error err;
} job;

static void *many_clients_one(void *arg)
{
    job *j = arg;
    vb_conn *c = open_with("test:///default", NULL, &j->err);
    if (!c)
        return NULL;
    vb_domain *doms;
    size_t n;
    j->ok = vb_list_domains(c, &doms, &n, &j->err) == 0 && n >= 3;
    if (j->ok)
        vb_domains_free(doms, n);
    vb_close(c);
    return NULL;
}

static void test_200_concurrent_clients(void **state)
{
    (void)state;
    enum { N = 200 };
    pthread_t t[N];
    static job jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, many_clients_one, &jobs[i]), 0);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        if (!jobs[i].ok)
            print_message("client %d: %s\n", i, jobs[i].err.message);
        ok += jobs[i].ok;
    }
    assert_int_equal(ok, N);
}

/* ---- autostart ------------------------------------------------------------- */

/* The vbrokerd processes serving sock (autostarted ones are nobody's child
 * here, so they are found by their command line); with kill_them, SIGKILL
 * each by pid. Returns how many there were. */
static int brokers_on(const char *sock, int kill_them)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int count = 0;
    while (d && (e = readdir(d))) {
        char path[300], cmd[1024];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof cmd - 1, f);
        fclose(f);
        cmd[n] = '\0';
        for (size_t i = 0; i + 1 < n; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        if (strstr(cmd, "vbrokerd") && strstr(cmd, sock)) {
            count++;
            if (kill_them)
                kill((pid_t)atoi(e->d_name), SIGKILL);
        }
    }
    if (d)
        closedir(d);
    return count;
}

static int count_brokers_on(const char *sock)
{
    return brokers_on(sock, 0);
}

static void kill_autostarted_brokers(void)
{
    char sock[300];
    snprintf(sock, sizeof sock, "%s/auto/sock", dir);
    brokers_on(sock, 1);
}

static pid_t broker_pid_on(const char *sock)
{
    char old[300];
    snprintf(old, sizeof old, "%s", getenv("VBROKER_SOCKET"));
    setenv("VBROKER_SOCKET", sock, 1);
    vb_broker_status st;
    vb_error err;
    pid_t pid = vb_broker_get_status(&st, &err) == 0 ? (pid_t)st.pid : -1;
    if (pid > 0)
        vb_broker_status_clear(&st);
    setenv("VBROKER_SOCKET", old, 1);
    return pid;
}

static void test_two_clients_race_to_autostart_one_broker(void **state)
{
    (void)state;
    char sock[300];
    snprintf(sock, sizeof sock, "%s/auto/sock", dir);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            setenv("VBROKER_SOCKET", sock, 1);
            setenv("VBROKERD", VB_BUILD_DIR "/vbrokerd", 1);
            char state_home[400];
            snprintf(state_home, sizeof state_home, "%s/auto-state", dir);
            setenv("XDG_STATE_HOME", state_home, 1);
            unsetenv("VBROKER_NO_AUTOSTART");
            vb_error err;
            vb_conn *c = open_with("test:///default", NULL, &err);
            int ok = c != NULL;
            vb_close(c); /* valgrind checks this child too: no leak before _exit */
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(count_brokers_on(sock), 1);
    pid_t pid = broker_pid_on(sock);
    assert_true(pid > 0);
    kill(pid, SIGTERM);
    int gone = 0;
    for (int i = 0; i < 1000 && !gone; i++) {
        gone = kill(pid, 0) < 0;
        if (!gone)
            poll(NULL, 0, 5);
    }
    assert_true(gone);
    /* with autostart off, a missing broker is a clear error */
    vb_error err;
    setenv("VBROKER_SOCKET", sock, 1);
    assert_null(open_with("test:///default", NULL, &err));
    setenv("VBROKER_SOCKET", broker_sock, 1);
    assert_int_equal(err.code, VBROKER_ERR_NO_CONNECT);
    assert_non_null(strstr(err.message, "VBROKER_NO_AUTOSTART"));
}

/* An autostart that cannot work says why at once, instead of waiting for a
 * broker that will never answer: a missing binary, a broker that exits. */
static void test_autostart_failure_is_explained(void **state)
{
    (void)state;
    char sock[300];
    snprintf(sock, sizeof sock, "%s/auto-fail/sock", dir);
    setenv("VBROKER_SOCKET", sock, 1);
    unsetenv("VBROKER_NO_AUTOSTART");
    vb_error err;
    setenv("VBROKERD", "/nonexistent/vbrokerd", 1);
    vb_conn *c1 = open_with("test:///default", NULL, &err);
    char missing[600];
    snprintf(missing, sizeof missing, "%s", err.message);
    setenv("VBROKERD", "/bin/false", 1); /* starts, exits 1 at once */
    vb_conn *c2 = open_with("test:///default", NULL, &err);
    unsetenv("VBROKERD");
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    setenv("VBROKER_SOCKET", broker_sock, 1);
    assert_null(c1);
    print_message("missing binary: %s\n", missing);
    assert_non_null(strstr(missing, "cannot start the broker /nonexistent/vbrokerd"));
    assert_non_null(strstr(missing, "No such file or directory"));
    assert_null(c2);
    print_message("broker exits at once: %s\n", err.message);
    assert_int_equal(err.code, VBROKER_ERR_NO_CONNECT);
    assert_non_null(strstr(err.message, "exited at once"));
}

static void test_broker_refuses_to_start_over_live_broker(void **state)
{
    (void)state;
    char state_dir[300];
    /* its own state dir: not the cache.db in this machine's real HOME, which
     * another build may have written */
    snprintf(state_dir, sizeof state_dir, "%s/second-broker-state", dir);
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", broker_sock, "--state-dir", state_dir,
                     NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, NULL, NULL, &out, 10000);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "in use by a running server"));
    free(out);
    assert_int_equal(kill(broker_pid, 0), 0);
}

/* systemd socket activation as systemd does it, with a launcher in place of
 * systemd: it binds the socket, makes it fd 3, sets LISTEN_PID to its own pid
 * and LISTEN_FDS=1, and execs vbrokerd (same pid) without --socket. The
 * broker must serve that socket and leave it in place when it stops (the
 * socket belongs to systemd). */
static const char socket_activation_launcher[] =
    "import os, socket, sys\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
    "s.bind(sys.argv[1])\n"
    "os.chmod(sys.argv[1], 0o600)\n"
    "s.listen(16)\n"
    "if s.fileno() != 3:\n"
    "    os.dup2(s.fileno(), 3)\n"
    "os.set_inheritable(3, True)\n"
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='vbrokerd.socket')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n";

static void test_socket_activation(void **state)
{
    (void)state;
    char act[300], sock[400], log[400], state_dir[400];
    snprintf(act, sizeof act, "%s/activated", dir);
    mkdir(act, 0700);
    snprintf(sock, sizeof sock, "%s/sock", act);
    snprintf(log, sizeof log, "%s/activated-broker.log", dir);
    snprintf(state_dir, sizeof state_dir, "%s/activated-state", dir);
    char *argv[] = { "python3", "-I", "-S", "-c", (char *)socket_activation_launcher, sock,
                     VB_BUILD_DIR "/vbrokerd", "--state-dir", state_dir, "--log-level", "debug",
                     NULL };
    pid_t pid = vb_ts_spawn(argv, NULL, log);
    assert_true(pid > 0);
    if (vb_ts_wait_for_log(log, "ready on systemd socket", 1, START_MS) < 0)
        fail_msg("the socket-activated broker never became ready (see %s)", log);
    /* a client of that socket is served: a real open through it */
    setenv("VBROKER_SOCKET", sock, 1);
    vb_error err;
    vb_conn *c = vb_open_auth(hostd_unix_uri("auth=peer"), NULL, 0, &err);
    setenv("VBROKER_SOCKET", broker_sock, 1);
    if (!c)
        fail_msg("open through the activated broker: %s", err.message);
    char *host = NULL;
    assert_int_equal(vb_get_hostname(c, &host, &err), 0);
    assert_non_null(host);
    free(host);
    vb_close(c);
    assert_int_equal(vb_ts_stop(pid, START_MS), 0);
    /* systemd's socket stays: the broker did not unlink what it was given */
    struct stat st;
    assert_int_equal(lstat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
}

/* ---- idle sessions cost no thread ------------------------------------------ */

typedef struct fewer_threads {
    pid_t pid;
    int than;
} fewer_threads;

static int has_fewer_threads(void *arg)
{
    const fewer_threads *f = arg;
    int n = vb_ts_thread_count(f->pid);
    return n >= 0 && n < f->than;
}

/* A session's worker thread leaves after BRK_WORKER_IDLE_MS without work;
 * the next call starts another, and a client that vanishes while its worker
 * is gone still gets its host connection closed. */
static void test_idle_session_gives_its_thread_back(void **state)
{
    (void)state;
    vb_error err;
    vb_conn *c = vb_open_auth(hostd_unix_uri("auth=peer"), NULL, 0, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    char *host = NULL;
    assert_int_equal(vb_get_hostname(c, &host, &err), 0);
    free(host);
    fewer_threads f = { broker_pid, vb_ts_thread_count(broker_pid) };
    if (vb_ts_wait_until(has_fewer_threads, &f, 10000) < 0)
        fail_msg("the broker kept %d threads for an idle client", f.than);
    host = NULL;
    if (vb_get_hostname(c, &host, &err) < 0)
        fail_msg("a call after the worker left: %s", err.message);
    assert_non_null(host);
    free(host);
    vb_close(c);

    /* a client that dies while its session has no worker: the host
     * connection is closed all the same (vbhostd sees the transport go,
     * --upstream-idle 0) */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        close(fds[0]);
        vb_conn *k = vb_open_auth(hostd_unix_uri("auth=peer"), NULL, 0, &err);
        char ok = k ? 'y' : 'n';
        if (write(fds[1], &ok, 1) != 1)
            _exit(1);
        for (;;)
            pause(); /* holds the connection until SIGKILL */
    }
    close(fds[1]);
    char ok = 0;
    assert_int_equal(read(fds[0], &ok, 1), 1);
    assert_int_equal(ok, 'y');
    f.than = vb_ts_thread_count(broker_pid);
    if (vb_ts_wait_until(has_fewer_threads, &f, 10000) < 0)
        fail_msg("the broker kept a thread for the idle child");
    int disconnects = vb_ts_count_in_file(hostd_log, "disconnected");
    kill(kid, SIGKILL);
    int status;
    assert_int_equal(waitpid(kid, &status, 0), kid);
    close(fds[0]);
    if (vb_ts_wait_for_log(hostd_log, "disconnected", disconnects + 1, 10000) < 0)
        fail_msg("the dead client's host connection was never closed");
}

/* ---- keepalive --------------------------------------------------------------- */

/* The broker pings the host connections nobody calls on; a healthy host keeps
 * its connection, a host that stops answering (SIGSTOP: alive for TCP, dead
 * for us) is given up: the held connection fails at once with the reason,
 * and a new open logs in anew once the host is back. */
static void test_keepalive_gives_up_a_host_that_stopped_answering(void **state)
{
    (void)state;
    char conf[1200], conf_path[300], hsock[300], hlog[300], bsock[300], blog[300], bstate[300];
    snprintf(hsock, sizeof hsock, "%s/ka-hostd.sock", dir);
    snprintf(hlog, sizeof hlog, "%s/ka-hostd.log", dir);
    snprintf(conf_path, sizeof conf_path, "%s/ka-hostd.conf", dir);
    snprintf(conf, sizeof conf,
             "listen_unix = \"%s\"\nstate_dir = \"%s/ka-state\"\nauth_unix = [\"peer\"]\n"
             "log_level = \"debug\"\n",
             hsock, dir);
    assert_int_equal(vb_ts_write_file(conf_path, conf, 0600), 0);
    char *hargv[] = { VB_BUILD_DIR "/vbhostd", "-f", conf_path, "--foreground", NULL };
    pid_t hpid = vb_ts_spawn(hargv, NULL, hlog);
    assert_true(hpid > 0);
    assert_int_equal(vb_ts_wait_unix_socket(hsock, START_MS), 0);
    snprintf(bsock, sizeof bsock, "%s/ka-run/sock", dir);
    snprintf(blog, sizeof blog, "%s/ka-broker.log", dir);
    snprintf(bstate, sizeof bstate, "%s/ka-broker-state", dir);
    char *bargv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", bsock, "--state-dir", bstate,
                      "--keepalive-interval", "1", "--keepalive-count", "2", "--log-level", "debug",
                      NULL };
    pid_t bpid = vb_ts_spawn(bargv, NULL, blog);
    assert_true(bpid > 0);
    assert_int_equal(vb_ts_wait_unix_socket(bsock, START_MS), 0);
    setenv("VBROKER_SOCKET", bsock, 1);

    char uri[600];
    snprintf(uri, sizeof uri, "test+unix:///default?socket=%s&auth=peer", hsock);
    vb_error err;
    vb_conn *c = vb_open_auth(uri, NULL, 0, &err);
    if (!c)
        fail_msg("open: %s", err.message);
    /* idle, pinged three times: still the same connection, still working */
    if (vb_ts_wait_for_log(hlog, "keepalive ping", 3, 15000) < 0)
        fail_msg("the broker never pinged the idle host connection 3 times (see %s)", hlog);
    char *host = NULL;
    if (vb_get_hostname(c, &host, &err) < 0)
        fail_msg("a call on the pinged connection: %s", err.message);
    free(host);
    assert_int_equal(vb_ts_count_in_file(hlog, "authenticated as"), 1);

    kill(hpid, SIGSTOP);
    int noticed = vb_ts_wait_for_log(blog, "stopped answering keepalive pings", 1, 15000);
    /* at once, not after the call timeout: the transport is known dead */
    int rc = vb_get_hostname(c, &host, &err);
    kill(hpid, SIGCONT);
    if (noticed < 0)
        fail_msg("the broker never gave up the stopped host (see %s)", blog);
    assert_int_equal(rc, -1);
    print_message("a call after the host stopped answering: %s\n", err.message);
    assert_non_null(strstr(err.message, "stopped answering"));
    vb_close(c);
    /* the host is back: a new open logs in on a new transport */
    c = vb_open_auth(uri, NULL, 0, &err);
    if (!c)
        fail_msg("open after the host came back: %s", err.message);
    host = NULL;
    assert_int_equal(vb_get_hostname(c, &host, &err), 0);
    free(host);
    vb_close(c);
    assert_int_equal(vb_ts_count_in_file(hlog, "authenticated as"), 2);
    setenv("VBROKER_SOCKET", broker_sock, 1);
    assert_int_equal(vb_ts_stop(bpid, START_MS), 0);
    vb_ts_stop(hpid, START_MS);
}

/* ---- vbrokerd.conf ---------------------------------------------------------------- */

static int file_exists(void *path)
{
    return access(path, F_OK) == 0;
}

/* The settings file an autostarted broker reads (it gets only --socket),
 * the options that win over it, and the clear refusals of a bad one. */
static void test_config_file(void **state)
{
    (void)state;
    char home[300], cdir[400], conf[500], text[800], sock[300], log[300], env[400];
    char from_file[300], from_option[300], db[400];
    snprintf(home, sizeof home, "%s/cfg-home", dir);
    snprintf(cdir, sizeof cdir, "%s/vbroker", home);
    mkdir(home, 0700);
    mkdir(cdir, 0700);
    snprintf(conf, sizeof conf, "%s/vbrokerd.conf", cdir);
    snprintf(from_file, sizeof from_file, "%s/cfg-state-file", dir);
    snprintf(from_option, sizeof from_option, "%s/cfg-state-option", dir);
    snprintf(text, sizeof text,
             "# vbrokerd.conf\nstate_dir = \"%s\"\nsecret_ttl = 0\nkeepalive_interval = 2\n",
             from_file);
    assert_int_equal(vb_ts_write_file(conf, text, 0600), 0);
    snprintf(sock, sizeof sock, "%s/cfg-run/sock", dir);
    snprintf(log, sizeof log, "%s/cfg-broker.log", dir);
    snprintf(env, sizeof env, "XDG_CONFIG_HOME=%s", home);
    char *envs[] = { env, NULL };

    /* the file's state_dir: cache.db appears there */
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", sock, NULL, NULL, NULL };
    pid_t pid = vb_ts_spawn(argv, envs, log);
    assert_true(pid > 0);
    snprintf(db, sizeof db, "%s/cache.db", from_file);
    if (vb_ts_wait_until(file_exists, db, START_MS) < 0)
        fail_msg("the broker did not use state_dir from %s (see %s)", conf, log);
    assert_int_equal(vb_ts_stop(pid, START_MS), 0);

    /* an option wins over the file */
    argv[3] = "--state-dir";
    argv[4] = from_option;
    pid = vb_ts_spawn(argv, envs, log);
    assert_true(pid > 0);
    snprintf(db, sizeof db, "%s/cache.db", from_option);
    if (vb_ts_wait_until(file_exists, db, START_MS) < 0)
        fail_msg("--state-dir did not win over the file (see %s)", log);
    assert_int_equal(vb_ts_stop(pid, START_MS), 0);

    /* the documented example file is valid as shipped */
    char *check[] = { VB_BUILD_DIR "/vbrokerd", "--config", VB_SRC_DIR "/etc/vbrokerd.conf", "--help",
                      NULL };
    char *help = NULL;
    assert_int_equal(vb_ts_run(check, NULL, NULL, &help, START_MS), 0);
    free(help);

    /* refusals: an unknown key (file:line), a bad value, a file others may write */
    static const struct {
        const char *text;
        mode_t mode;
        const char *says;
    } bad[] = {
        { "secret_ttl = 5\nbogus = 1\n", 0600, "vbrokerd.conf:2: unknown key 'bogus'" },
        { "keepalive_count = 0\n", 0600, "'keepalive_count' must be 1..3600" },
        { "secret_ttl = 5\n", 0666, "writable by nobody else" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(vb_ts_write_file(conf, bad[i].text, 0600), 0);
        assert_int_equal(chmod(conf, bad[i].mode), 0);
        char *out = NULL;
        int rc = vb_ts_run(argv, envs, NULL, &out, START_MS);
        print_message("%s", out ? out : "");
        assert_int_equal(rc, 2);
        assert_non_null(out);
        assert_non_null(strstr(out, bad[i].says));
        free(out);
    }
}

/* ---- the broker's voice reaches the user ------------------------------------ */

/* An auth.conf others can read is ignored; the script that then gets
 * CRED_REQUIRED (and vbctl's exit 77) is told which file and how to fix it,
 * not "add them to auth.conf". */
static void test_ignored_auth_conf_is_named_in_the_error(void **state)
{
    (void)state;
    char path[300], params[400];
    snprintf(path, sizeof path, "%s/open-auth.conf", dir);
    vb_ts_write_file(path,
                     "[credentials-lab]\nauthname=alice\npassword=" PASSWORD "\n\n"
                     "[auth-vbhostd-default]\ncredentials=lab\n",
                     0644);
    snprintf(params, sizeof params, "auth=sasl.SCRAM-SHA-256&authfile=%s", path);
    vb_error err;
    vb_conn *c = open_with(hostd_unix_uri(params), NULL, &err);
    assert_null(c);
    print_message("client error: %s\n", err.message);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    char fix[400];
    snprintf(fix, sizeof fix, "chmod 600 %s", path);
    assert_non_null(strstr(err.message, "auth.conf ignored"));
    assert_non_null(strstr(err.message, "readable by others"));
    assert_non_null(strstr(err.message, fix));
    assert_null(strstr(err.message, PASSWORD));
    /* vbctl: exit 77, and the same reason on its stderr */
    char uri[1200];
    snprintf(uri, sizeof uri, "%s", hostd_unix_uri(params));
    char *argv[] = { VB_BUILD_DIR "/vbctl", "-c", uri, "--non-interactive", "hostname", NULL };
    char *out = NULL;
    assert_int_equal(run_cli(argv, NULL, &out), 77);
    assert_non_null(strstr(out, fix));
    /* one line, which does not send the user back to the file it ignores */
    assert_null(strstr(strstr(out, "vbctl: ") + 1, "vbctl: "));
    assert_null(strstr(out, "put the login in auth.conf"));
    free(out);
}

/* VBROKER_AUTH_FILE set for the client names a file the running broker (which
 * read its own environment at start) does not read: the error says so, and
 * the broker still reads only its own file. */
static void test_client_auth_file_the_broker_does_not_read(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/client-only-auth.conf", dir);
    vb_ts_write_file(path,
                     "[credentials-lab]\nauthname=alice\npassword=" PASSWORD "\n\n"
                     "[auth-vbhostd-default]\ncredentials=lab\n",
                     0600);
    setenv("VBROKER_AUTH_FILE", path, 1);
    vb_error err;
    vb_conn *c = open_with(hostd_unix_uri("auth=sasl.SCRAM-SHA-256"), NULL, &err);
    unsetenv("VBROKER_AUTH_FILE");
    assert_null(c); /* never read by the broker: no login */
    print_message("client error: %s\n", err.message);
    assert_int_equal(err.code, VBROKER_ERR_CRED_REQUIRED);
    char said[400];
    snprintf(said, sizeof said, "VBROKER_AUTH_FILE=%s is not read", path);
    assert_non_null(strstr(err.message, said));
    assert_non_null(strstr(err.message, "the running broker reads "));
    /* without the variable: no such note */
    c = open_with(hostd_unix_uri("auth=sasl.SCRAM-SHA-256"), NULL, &err);
    assert_null(c);
    assert_null(strstr(err.message, "VBROKER_AUTH_FILE"));
}

/* Autostart a broker on sock with XDG_STATE_HOME=state_home; open
 * test:///default through it. NULL with err filled when that failed. */
static vb_conn *autostart_with_state_home(const char *sock, const char *state_home, vb_error *err)
{
    char *old_state = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;
    setenv("XDG_STATE_HOME", state_home, 1);
    setenv("VBROKER_SOCKET", sock, 1);
    unsetenv("VBROKER_NO_AUTOSTART");
    setenv("VBROKERD", VB_BUILD_DIR "/vbrokerd", 1);
    vb_conn *c = open_with("test:///default", NULL, err);
    unsetenv("VBROKERD");
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    setenv("VBROKER_SOCKET", broker_sock, 1);
    if (old_state)
        setenv("XDG_STATE_HOME", old_state, 1);
    else
        unsetenv("XDG_STATE_HOME");
    free(old_state);
    return c;
}

/* An autostarted broker's stderr is a pipe nobody reads once it answers: it
 * logs to $XDG_STATE_HOME/vbroker/vbrokerd.log instead, a 0600 file. */
static void test_autostarted_broker_logs_to_its_state_dir(void **state)
{
    (void)state;
    char sock[300], state_home[300], log[400];
    snprintf(sock, sizeof sock, "%s/auto-log/sock", dir);
    snprintf(state_home, sizeof state_home, "%s/xdg-state", dir);
    snprintf(log, sizeof log, "%s/vbroker/vbrokerd.log", state_home);
    vb_error err;
    vb_conn *c = autostart_with_state_home(sock, state_home, &err);
    if (!c) {
        brokers_on(sock, 1);
        fail_msg("autostart: %s", err.message);
    }
    vb_close(c);
    int ready = vb_ts_wait_for_log(log, "ready on", 1, START_MS);
    int mode = vb_ts_file_mode(log);
    assert_int_equal(brokers_on(sock, 1), 1);
    assert_int_equal(ready, 0);
    assert_int_equal(mode, 0600);
}

/* --log-file with --log-max-size: past the size the file becomes .1 and a new
 * one starts; never a third file, never a file much over the size. */
static void test_log_file_rotates_and_stays_bounded(void **state)
{
    (void)state;
    char rot[300], sock[400], state_dir[400], log[400], old[420], older[420], stderr_log[400];
    snprintf(rot, sizeof rot, "%s/rot", dir);
    mkdir(rot, 0700);
    snprintf(sock, sizeof sock, "%s/run/sock", rot);
    snprintf(state_dir, sizeof state_dir, "%s/state", rot);
    snprintf(log, sizeof log, "%s/vbrokerd.log", rot);
    snprintf(old, sizeof old, "%s.1", log);
    snprintf(older, sizeof older, "%s.2", log);
    snprintf(stderr_log, sizeof stderr_log, "%s/stderr.log", rot);
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--socket", sock, "--state-dir", state_dir,
                     "--log-level", "debug", "--log-file", log, "--log-max-size", "1024", NULL };
    pid_t pid = vb_ts_spawn(argv, NULL, stderr_log);
    assert_true(pid > 0);
    assert_int_equal(vb_ts_wait_unix_socket(sock, START_MS), 0);
    setenv("VBROKER_SOCKET", sock, 1);
    int opens = 0, failed = 0;
    /* each open logs a few lines: rotate at least twice */
    for (; opens < 300 && !failed && vb_ts_file_size(old) <= 0; opens++) {
        vb_error err;
        vb_conn *c = open_with("test:///default", NULL, &err);
        failed = !c;
        vb_close(c);
    }
    for (int i = 0; i < 20 && !failed; i++) {
        vb_error err;
        vb_conn *c = open_with("test:///default", NULL, &err);
        failed = !c;
        vb_close(c);
    }
    setenv("VBROKER_SOCKET", broker_sock, 1);
    assert_int_equal(vb_ts_stop(pid, START_MS), 0);
    assert_false(failed);
    print_message("%d opens; %ld + %ld bytes\n", opens, vb_ts_file_size(log), vb_ts_file_size(old));
    assert_int_equal(vb_ts_file_mode(log), 0600);
    assert_int_equal(vb_ts_file_mode(old), 0600);
    assert_int_equal(vb_ts_file_mode(older), -1);
    long bound = 1024 + 1024 + 128; /* the size plus one line */
    assert_true(vb_ts_file_size(log) > 0 && vb_ts_file_size(log) <= bound);
    assert_true(vb_ts_file_size(old) > 0 && vb_ts_file_size(old) <= bound);
    /* the log went to the file, not to stderr */
    assert_int_equal(vb_ts_count_in_file(stderr_log, "ready on"), 0);
    /* never through a symbolic link; a size below the minimum is refused */
    char link[400], *out = NULL;
    snprintf(link, sizeof link, "%s/link.log", rot);
    assert_int_equal(symlink(stderr_log, link), 0);
    char *via_link[] = { VB_BUILD_DIR "/vbrokerd", "--socket", sock, "--state-dir", state_dir,
                         "--log-file", link, NULL };
    assert_int_equal(vb_ts_run(via_link, NULL, NULL, &out, START_MS), 1);
    assert_non_null(strstr(out, "symbolic link"));
    free(out);
    char *tiny[] = { VB_BUILD_DIR "/vbrokerd", "--socket", sock, "--log-max-size", "10", NULL };
    assert_int_equal(vb_ts_run(tiny, NULL, NULL, &out, START_MS), 2);
    assert_non_null(strstr(out, "--log-max-size must be 1024"));
    free(out);
}

/* An autostarted broker that refuses to start after its log file is open:
 * the client still gets its reason (the first line it wrote), and the log
 * has it too. */
static void test_autostarted_broker_refusal_reaches_the_client(void **state)
{
    (void)state;
    char sock[300], state_home[300], cache[400], log[400];
    snprintf(sock, sizeof sock, "%s/auto-refuse/sock", dir);
    snprintf(state_home, sizeof state_home, "%s/refuse-state", dir);
    snprintf(cache, sizeof cache, "%s/vbroker", state_home);
    mkdir(state_home, 0700);
    mkdir(cache, 0700);
    snprintf(cache, sizeof cache, "%s/vbroker/cache.db", state_home);
    mkdir(cache, 0700); /* not a sqlite file: the store refuses it */
    snprintf(log, sizeof log, "%s/vbroker/vbrokerd.log", state_home);
    vb_error err;
    vb_conn *c = autostart_with_state_home(sock, state_home, &err);
    brokers_on(sock, 1);
    assert_null(c);
    print_message("client error: %s\n", err.message);
    assert_non_null(strstr(err.message, "exited at once: vbrokerd: store"));
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_int_equal(vb_ts_count_in_file(log, "not a regular file"), 1);
    /* before any log: a state directory others may read is refused, and
     * the reason reaches the client the same way */
    snprintf(state_home, sizeof state_home, "%s/open-state", dir);
    snprintf(cache, sizeof cache, "%s/vbroker", state_home);
    mkdir(state_home, 0700);
    mkdir(cache, 0755);
    chmod(cache, 0755);
    c = autostart_with_state_home(sock, state_home, &err);
    brokers_on(sock, 1);
    assert_null(c);
    print_message("client error: %s\n", err.message);
    assert_non_null(strstr(err.message, "exited at once: vbrokerd: "));
    assert_non_null(strstr(err.message, cache));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scram_over_unix_through_broker),
        cmocka_unit_test(test_digest_md5_over_tcp_visible_in_status),
        cmocka_unit_test(test_read_only_local_driver),
        cmocka_unit_test(test_vbctl_list_with_answers_on_stdin),
        cmocka_unit_test(test_vbctl_non_interactive_exits_77),
        cmocka_unit_test(test_vbctl_exit_codes),
        cmocka_unit_test(test_example_fills_the_form_at_once),
        cmocka_unit_test(test_priority_and_uri_auth),
        cmocka_unit_test(test_auth_conf_answers_without_prompt),
        cmocka_unit_test(test_no_callback_means_cred_required),
        cmocka_unit_test(test_second_uid_refused),
        cmocka_unit_test(test_disconnect_mid_prompt_leaves_broker_healthy),
        cmocka_unit_test(test_prompt_timeout),
        cmocka_unit_test(test_200_concurrent_clients),
        cmocka_unit_test(test_two_clients_race_to_autostart_one_broker),
        cmocka_unit_test(test_autostart_failure_is_explained),
        cmocka_unit_test(test_broker_refuses_to_start_over_live_broker),
        cmocka_unit_test(test_socket_activation),
        cmocka_unit_test(test_idle_session_gives_its_thread_back),
        cmocka_unit_test(test_keepalive_gives_up_a_host_that_stopped_answering),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_ignored_auth_conf_is_named_in_the_error),
        cmocka_unit_test(test_client_auth_file_the_broker_does_not_read),
        cmocka_unit_test(test_autostarted_broker_logs_to_its_state_dir),
        cmocka_unit_test(test_log_file_rotates_and_stays_bounded),
        cmocka_unit_test(test_autostarted_broker_refusal_reaches_the_client),
    };
    return cmocka_run_group_tests_name("broker", tests, group_setup, group_teardown);
}
