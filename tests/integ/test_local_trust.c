/* The local trust boundary around the broker's socket (issue 14, item 1),
 * tried as a second local user would: a throwaway attacker account squats
 * the victim's /tmp/vbroker-UID (or links it elsewhere) and runs a fake
 * broker there; the victim (a second throwaway account, so the real
 * /tmp/vbroker-0 of this machine is never touched) must refuse with a clear
 * error, and the fake broker must read nothing. Both accounts are created
 * with useradd in the group setup and removed with userdel -r at the end;
 * each side runs in a forked child after setuid, with its own environment.
 * Needs root (skipped otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vb_testsupport.h"
#include "vbroker.h"

#define PASSWORD "sQuat-V1ctim-pw" /* what a fake broker would be after */
#define WAIT_MS 10000

typedef vb_ts_account account;

static char *dir;
static account attacker, victim;
static char victim_tmp[64]; /* /tmp/vbroker-VICTIM_UID: the fallback the victim uses */

/* ---- throwaway accounts ------------------------------------------------------ */

static int account_create(account *a, const char *role)
{
    char name[32], home[400];
    snprintf(name, sizeof name, "vbts%s%d", role, (int)getpid());
    snprintf(home, sizeof home, "%s/home-%s", dir, role);
    return vb_ts_account_create(a, name, home, NULL);
}

/* The real uid in /proc/PID/status (not the owner of /proc/PID, which is
 * root for a process that made itself non-dumpable, as vbrokerd does). */
static long process_uid(const char *pid)
{
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    long uid = -1;
    while (f && uid < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, "Uid:", 4) == 0)
            uid = strtol(line + 4, NULL, 10);
    if (f)
        fclose(f);
    return uid;
}

/* A process that has not exited yet. A zombie holds no descriptors, but a
 * killed multi-threaded process shows its leader as a zombie while its other
 * threads still tear down, and the descriptors (the broker's listening
 * socket) go only with the last of them: "Threads:" must be down to 1 too. */
static int process_alive(const char *pid)
{
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/%s/status", pid);
    FILE *f = fopen(path, "r");
    int zombie = 0, threads = 0, seen = 0;
    while (f && seen < 2 && fgets(line, sizeof line, f)) {
        if (strncmp(line, "State:", 6) == 0) {
            zombie = strchr(line + 6, 'Z') != NULL || strchr(line + 6, 'X') != NULL;
            seen++;
        } else if (strncmp(line, "Threads:", 8) == 0) {
            threads = atoi(line + 8);
            seen++;
        }
    }
    if (f)
        fclose(f);
    return seen > 0 && (!zombie || threads > 1);
}

/* Signal every live process of uid; how many there were. */
static int signal_processes_of(uid_t uid)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && process_uid(e->d_name) == (long)uid &&
            process_alive(e->d_name)) {
            kill((pid_t)atoi(e->d_name), SIGKILL);
            n++;
        }
    if (d)
        closedir(d);
    return n;
}

static int none_left(void *uid)
{
    return signal_processes_of(*(uid_t *)uid) == 0;
}

/* Every process of the account, by pid (a broker a test autostarted), gone
 * before the next step: a broker still dying would accept the next client. */
static void kill_processes_of(uid_t uid)
{
    if (vb_ts_wait_until(none_left, &uid, vb_ts_scaled_ms(WAIT_MS)) < 0)
        fprintf(stderr, "processes of uid %u outlived SIGKILL\n", (unsigned)uid);
}

static void remove_tree(const char *path)
{
    char *argv[] = { "rm", "-rf", "--one-file-system", (char *)path, NULL };
    char *out = NULL;
    if (vb_ts_run(argv, NULL, NULL, &out, vb_ts_scaled_ms(WAIT_MS)) != 0)
        fprintf(stderr, "rm -rf %s: %s\n", path, out ? out : "");
    free(out);
}

/* What a run of the code before the fix may have left in /tmp as the victim. */
static void remove_victim_leftovers(void)
{
    struct stat st;
    remove_tree(victim_tmp);
    if (lstat("/tmp/.local", &st) == 0 && st.st_uid == victim.uid)
        remove_tree("/tmp/.local");
}

static void account_remove(account *a)
{
    if (a->created)
        kill_processes_of(a->uid);
    vb_ts_account_remove(a);
}

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("trust");
    if (!dir)
        return -1;
    chmod(dir, 0711); /* both accounts traverse it, neither can list or write it */
    vb_ts_note_secret(PASSWORD);
    if (geteuid() != 0)
        return 0; /* each test skips */
    if (account_create(&attacker, "atk") < 0 || account_create(&victim, "vic") < 0)
        return -1;
    snprintf(victim_tmp, sizeof victim_tmp, "/tmp/vbroker-%u", (unsigned)victim.uid);
    remove_victim_leftovers(); /* a uid reused from a crashed run */
    return 0;
}

static int group_teardown(void **state)
{
    if (victim.created)
        remove_victim_leftovers();
    account_remove(&victim);
    account_remove(&attacker);
    return vb_ts_group_teardown(state);
}

static void need_root(void)
{
    if (geteuid() != 0 || !victim.created)
        skip();
}


/* ---- a fake broker: listens, counts what it is sent, answers nothing ---------- */

typedef struct fake {
    pid_t pid;
    int ctl;     /* closing it tells the fake to report and exit */
    int result;  /* "ready", then the counts */
} fake;

typedef struct fake_counts {
    long conns, bytes;
} fake_counts;

typedef enum { AS_OWNER, LISTEN_AS_OWNER } fake_mode;

/* One accepted client: whatever it sends within a moment, then hang up (so
 * a client that did send is not left waiting for a reply). */
static void take_one(int lfd, fake_counts *n)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return;
    n->conns++;
    struct pollfd c = { .fd = fd, .events = POLLIN };
    char buf[4096];
    ssize_t got;
    while (poll(&c, 1, 300) > 0 && (got = read(fd, buf, sizeof buf)) > 0)
        n->bytes += got;
    close(fd);
}

/* In the child: serve until ctl closes, take what is still queued, then
 * write the counts to out. */
static void fake_serve(int lfd, int ctl, int out)
{
    fake_counts n = { 0, 0 };
    struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = ctl, .events = POLLIN } };
    while (poll(p, 2, -1) >= 0 && !(p[1].revents & (POLLIN | POLLHUP)))
        if (p[0].revents & POLLIN)
            take_one(lfd, &n);
    while (poll(p, 1, 0) == 1 && (p[0].revents & POLLIN))
        take_one(lfd, &n);
    if (write(out, &n, sizeof n) != (ssize_t)sizeof n)
        _exit(1);
    _exit(0);
}

/* Start a fake broker as owner on sock_path. setup(arg) runs first as owner
 * (it makes the directory, or a link to one); with LISTEN_AS_OWNER the
 * socket is bound as root and only listen() runs as owner, which is what
 * SO_PEERCRED reports (a listener of another uid in the victim's own
 * directory). */
static int fake_start(fake *f, const account *owner, fake_mode mode, void (*setup)(void *),
                      void *arg, const char *sock_path)
{
    int ctl[2], res[2];
    if (pipe2(ctl, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0)
        return -1;
    f->pid = fork();
    if (f->pid < 0)
        return -1;
    if (f->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ctl[1]);
        close(res[0]);
        if (mode == AS_OWNER && vb_ts_become(owner) < 0)
            _exit(10);
        if (setup)
            setup(arg);
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock_path);
        int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        unlink(sock_path);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof sun) < 0 || chmod(sock_path, 0777) < 0)
            _exit(11);
        if (mode == LISTEN_AS_OWNER && vb_ts_become(owner) < 0)
            _exit(12);
        if (listen(lfd, 16) < 0 || write(res[1], "r", 1) != 1)
            _exit(13);
        fake_serve(lfd, ctl[0], res[1]);
    }
    close(ctl[0]);
    close(res[1]);
    f->ctl = ctl[1];
    f->result = res[0];
    char ready;
    struct pollfd p = { .fd = f->result, .events = POLLIN };
    if (poll(&p, 1, vb_ts_scaled_ms(WAIT_MS)) == 1 && read(f->result, &ready, 1) == 1)
        return 0;
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
    close(f->ctl);
    close(f->result);
    return -1;
}

static fake_counts fake_stop(fake *f)
{
    fake_counts n = { -1, -1 };
    close(f->ctl);
    struct pollfd p = { .fd = f->result, .events = POLLIN };
    if (poll(&p, 1, vb_ts_scaled_ms(WAIT_MS)) == 1 && read(f->result, &n, sizeof n) != (ssize_t)sizeof n)
        n.conns = n.bytes = -1;
    close(f->result);
    kill(f->pid, SIGKILL); /* by pid: it has reported, or it is stuck */
    waitpid(f->pid, NULL, 0);
    return n;
}

/* ---- the victim: vb_open as another user, in a child with its own env --------- */

static int form_cb(const vb_auth_request *req, vb_credential *creds, unsigned n, void *data)
{
    (void)req;
    (void)data;
    for (unsigned i = 0; i < n; i++) {
        const char *v = creds[i].type == VB_CRED_PASSPHRASE ? PASSWORD : "victim";
        creds[i].result = strdup(v);
        creds[i].resultlen = (unsigned)strlen(v);
    }
    return 0;
}

/* vb_open as who (NULL: as ourselves) with exactly env (plus PATH); returns
 * 1 when it opened, 0 when refused (message in msg), -1 when the child failed. */
static int victim_open(const account *who, char *const env[], char *msg, size_t len)
{
    int out[2];
    if (pipe(out) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(out[0]);
        clearenv();
        setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
        for (size_t i = 0; env && env[i]; i++)
            putenv(env[i]);
        if (who && vb_ts_become(who) < 0)
            _exit(10);
        static const int types[] = { VB_CRED_AUTHNAME, VB_CRED_PASSPHRASE };
        vb_auth auth = { types, 2, form_cb, NULL };
        vb_error err;
        vb_conn *c = vb_open_auth("test:///default", &auth, 0, &err);
        const char *text = c ? "" : err.message;
        if (write(out[1], text, strlen(text)) < 0)
            _exit(11);
        vb_close(c);
        _exit(c ? 1 : 0);
    }
    close(out[1]);
    size_t got = 0;
    ssize_t n;
    struct pollfd p = { .fd = out[0], .events = POLLIN };
    while (got + 1 < len && poll(&p, 1, vb_ts_scaled_ms(WAIT_MS)) == 1 &&
           (n = read(out[0], msg + got, len - 1 - got)) > 0)
        got += (size_t)n;
    msg[got] = '\0';
    close(out[0]);
    int status;
    if (vb_ts_wait_pid_exit(pid, vb_ts_scaled_ms(WAIT_MS), &status) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return status == 0 ? 0 : status == 1 ? 1 : -1;
}

/* The victim as su/sudo/cron leave it: no XDG_RUNTIME_DIR, no VBROKER_SOCKET,
 * so it looks in /tmp/vbroker-UID; an autostart could only fail. */
static char *const no_runtime_dir_env[] = { "HOME=/nonexistent", "VBROKERD=/nonexistent/vbrokerd",
                                            NULL };

/* ---- the attacks ------------------------------------------------------------------ */

typedef struct attack {
    fake_mode mode;
    void (*setup)(void *);   /* as the attacker, before it listens */
    void *arg;
    const char *sock;        /* where the fake broker listens */
    char *const *victim_env;
} attack;

/* The fake broker up, the victim's vb_open, the fake's counts: returns what
 * victim_open returned (0: refused, message in msg), -2 when the fake did
 * not start. */
static int run_attack(const attack *a, char *msg, size_t len, fake_counts *n)
{
    fake f;
    n->conns = n->bytes = -1;
    if (fake_start(&f, &attacker, a->mode, a->setup, a->arg, a->sock) < 0)
        return -2;
    int opened = victim_open(&victim, a->victim_env, msg, len);
    *n = fake_stop(&f);
    print_message("victim: %s\n", msg);
    return opened;
}

/* The victim refused and the fake read nothing; with no_connect, the victim
 * did not even connect (its check of the directory stopped it first). */
static void assert_nothing_sent(int opened, const fake_counts *n, int no_connect)
{
    assert_int_equal(opened, 0);
    assert_int_equal(n->bytes, 0);
    if (no_connect)
        assert_int_equal(n->conns, 0);
}

static void make_open_dir(void *path)
{
    mkdir(path, 0755);
    chmod(path, 0755);
}

/* Another user made /tmp/vbroker-VICTIM first and runs a fake broker in it. */
static void test_squatted_tmp_dir_gets_nothing(void **state)
{
    (void)state;
    need_root();
    char sock[128], msg[600], expect[128];
    snprintf(sock, sizeof sock, "%s/sock", victim_tmp);
    attack a = { AS_OWNER, make_open_dir, victim_tmp, sock, no_runtime_dir_env };
    fake_counts n;
    int opened = run_attack(&a, msg, sizeof msg, &n);
    remove_tree(victim_tmp);
    assert_nothing_sent(opened, &n, 1);
    snprintf(expect, sizeof expect, "%s: it belongs to uid %u", victim_tmp, (unsigned)attacker.uid);
    assert_non_null(strstr(msg, expect));
}

typedef struct link_setup {
    const char *target, *link;
} link_setup;

static void make_linked_dir(void *arg)
{
    link_setup *l = arg;
    make_open_dir((void *)l->target);
    if (symlink(l->target, l->link) < 0)
        _exit(14);
}

/* Another user points /tmp/vbroker-VICTIM at a directory of theirs. */
static void test_symlinked_socket_dir_refused(void **state)
{
    (void)state;
    need_root();
    char target[400], sock[128], msg[600];
    snprintf(target, sizeof target, "%s/evil", dir);
    snprintf(sock, sizeof sock, "%s/sock", victim_tmp);
    assert_int_equal(mkdir(target, 0755), 0); /* the attacker's: dir lets nobody else write */
    assert_int_equal(chown(target, attacker.uid, attacker.gid), 0);
    link_setup l = { target, victim_tmp };
    attack a = { AS_OWNER, make_linked_dir, &l, sock, no_runtime_dir_env };
    fake_counts n;
    int opened = run_attack(&a, msg, sizeof msg, &n);
    unlink(victim_tmp);
    assert_nothing_sent(opened, &n, 1);
    assert_non_null(strstr(msg, victim_tmp));
    assert_non_null(strstr(msg, "symbolic link"));
}

/* The directory is the victim's own and 0700, but what listens in it runs
 * as another uid: SO_PEERCRED stops the client before its first byte. */
static void test_listener_of_another_uid_gets_nothing(void **state)
{
    (void)state;
    need_root();
    char run[400], sock[450], env_sock[500], msg[600], expect[128];
    snprintf(run, sizeof run, "%s/victim-run", dir);
    assert_int_equal(mkdir(run, 0700), 0);
    assert_int_equal(chown(run, victim.uid, victim.gid), 0);
    snprintf(sock, sizeof sock, "%s/sock", run);
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s", sock);
    char *env[] = { env_sock, "HOME=/nonexistent", "VBROKERD=/nonexistent/vbrokerd", NULL };
    attack a = { LISTEN_AS_OWNER, NULL, NULL, sock, env };
    fake_counts n;
    int opened = run_attack(&a, msg, sizeof msg, &n);
    assert_nothing_sent(opened, &n, 0);
    snprintf(expect, sizeof expect, "it runs as uid %u, not as uid %u (you)", (unsigned)attacker.uid,
             (unsigned)victim.uid);
    assert_non_null(strstr(msg, expect));
}

/* A link where the autostart lock goes: the lock is never opened through
 * it, so the file it points to is not created. */
static void test_lock_symlink_not_followed(void **state)
{
    (void)state;
    char run[400], lock[450], target[400], env_sock[500], msg[600];
    snprintf(run, sizeof run, "%s/lock-run", dir);
    snprintf(lock, sizeof lock, "%s/autostart.lock", run);
    snprintf(target, sizeof target, "%s/created-through-the-link", dir);
    assert_int_equal(mkdir(run, 0700), 0);
    assert_int_equal(symlink(target, lock), 0);
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s/sock", run);
    char *env[] = { env_sock, "VBROKERD=/bin/false", "HOME=/nonexistent", NULL };
    int opened = victim_open(NULL, env, msg, sizeof msg); /* as ourselves: our own directory */
    print_message("client: %s\n", msg);
    struct stat st;
    assert_int_equal(opened, 0);
    assert_int_equal(lstat(target, &st), -1);
    assert_non_null(strstr(msg, "autostart.lock: it is a symbolic link"));
}

/* The directory is ours and 0700, but a directory above it can be changed
 * by others (world-writable and not sticky; or another user's): whoever can
 * rename ours away could put theirs in its place, so it is refused. */
static void test_parent_others_can_change_refused(void **state)
{
    (void)state;
    char parent[400], run[450], env_sock[500], msg[600];
    snprintf(parent, sizeof parent, "%s/open-parent", dir);
    snprintf(run, sizeof run, "%s/run", parent);
    assert_int_equal(mkdir(parent, 0700), 0);
    assert_int_equal(chmod(parent, 0777), 0); /* no sticky bit, unlike /tmp */
    assert_int_equal(mkdir(run, 0700), 0);
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s/sock", run);
    char *env[] = { env_sock, "VBROKERD=/bin/false", "HOME=/nonexistent", NULL };
    int opened = victim_open(NULL, env, msg, sizeof msg);
    print_message("client: %s\n", msg);
    assert_int_equal(opened, 0);
    assert_non_null(strstr(msg, "mode 0777) is writable by others and not sticky"));
    if (geteuid() != 0 || !victim.created)
        return;
    /* the same below a directory of another user (the attacker's) */
    assert_int_equal(chmod(parent, 0755), 0);
    assert_int_equal(chown(parent, attacker.uid, attacker.gid), 0);
    opened = victim_open(NULL, env, msg, sizeof msg);
    print_message("client: %s\n", msg);
    assert_int_equal(opened, 0);
    assert_non_null(strstr(msg, "belongs to another user"));
}

/* After su without "-", XDG_RUNTIME_DIR is still the other user's (here
 * root's): the victim cannot open the directory and is told why, instead of
 * a bare "permission denied" on a lock file. */
static void test_runtime_dir_of_another_user_refused(void **state)
{
    (void)state;
    need_root();
    char xdg[400], run[450], env_xdg[500], msg[600];
    snprintf(xdg, sizeof xdg, "%s/root-xdg", dir);
    snprintf(run, sizeof run, "%s/vbroker", xdg);
    assert_int_equal(mkdir(xdg, 0711), 0);
    assert_int_equal(chmod(xdg, 0711), 0);
    assert_int_equal(mkdir(run, 0700), 0);
    snprintf(env_xdg, sizeof env_xdg, "XDG_RUNTIME_DIR=%s", xdg);
    char *env[] = { env_xdg, "VBROKERD=/nonexistent/vbrokerd", "HOME=/nonexistent", NULL };
    int opened = victim_open(&victim, env, msg, sizeof msg);
    print_message("victim: %s\n", msg);
    assert_int_equal(opened, 0);
    assert_non_null(strstr(msg, run));
    assert_non_null(strstr(msg, "Permission denied; it is not yours"));
}

static int exists_as_victim(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && st.st_uid == victim.uid;
}

/* No HOME (and no XDG_STATE_HOME): the broker uses the account's home when
 * it exists (proto/vb_paths.c); when it does not, the broker has no private
 * place for its login cache and says so, instead of using
 * /tmp/.local/state/vbroker; an app that autostarts it gets that reason. */
static void test_home_unset_is_a_clear_error(void **state)
{
    (void)state;
    need_root();
    char run[400], env_sock[500], msg[600], bin[400], env_bin[500];
    snprintf(run, sizeof run, "%s/nohome-run", dir);
    assert_int_equal(mkdir(run, 0700), 0);
    assert_int_equal(chown(run, victim.uid, victim.gid), 0);
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s/sock", run);
    /* a copy the victim can run: the build tree may sit in a directory only
     * root can enter (a clone under a 0700 mktemp -d) */
    snprintf(bin, sizeof bin, "%s/vbrokerd", dir);
    char *copy[] = { "cp", VB_BUILD_DIR "/vbrokerd", bin, NULL };
    assert_int_equal(vb_ts_run(copy, NULL, NULL, NULL, vb_ts_scaled_ms(WAIT_MS)), 0);
    assert_int_equal(chmod(bin, 0755), 0);
    snprintf(env_bin, sizeof env_bin, "VBROKERD=%s", bin);
    char *env[] = { env_sock, env_bin, NULL };
    /* the account's home exists: the cache goes there */
    char home[400], away[420], in_home[500];
    snprintf(home, sizeof home, "%s/home-vic", dir); /* account_create */
    snprintf(away, sizeof away, "%s.away", home);
    snprintf(in_home, sizeof in_home, "%s/.local/state/vbroker", home);
    int opened_home = victim_open(&victim, env, msg, sizeof msg);
    int used_home = exists_as_victim(in_home);
    kill_processes_of(victim.uid);
    /* and when it does not exist, there is no private place */
    assert_int_equal(rename(home, away), 0);
    int opened = victim_open(&victim, env, msg, sizeof msg);
    print_message("client: %s\n", msg);
    int leaked = exists_as_victim("/tmp/.local") || exists_as_victim("/tmp/.local/state/vbroker");
    kill_processes_of(victim.uid); /* a broker the code before the fix started */
    remove_victim_leftovers();
    assert_int_equal(rename(away, home), 0);
    assert_int_equal(opened_home, 1);
    assert_true(used_home);
    assert_int_equal(opened, 0);
    assert_false(leaked);
    assert_non_null(strstr(msg, "exited at once: vbrokerd: no private directory for the login cache"));
    assert_non_null(strstr(msg, "set HOME or pass --state-dir"));
}

/* The broker itself refuses a socket directory that is not private, also
 * when the path comes from VBROKER_SOCKET, and names what is wrong. */
static void test_broker_refuses_an_open_socket_dir(void **state)
{
    (void)state;
    char run[400], env_sock[500], state_dir[400];
    snprintf(run, sizeof run, "%s/open-run", dir);
    snprintf(state_dir, sizeof state_dir, "%s/open-state", dir);
    assert_int_equal(mkdir(run, 0700), 0);
    assert_int_equal(chmod(run, 0770), 0);
    snprintf(env_sock, sizeof env_sock, "VBROKER_SOCKET=%s/sock", run);
    char *env[] = { env_sock, NULL };
    char *argv[] = { VB_BUILD_DIR "/vbrokerd", "--state-dir", state_dir, NULL };
    char *out = NULL;
    int rc = vb_ts_run(argv, env, NULL, &out, vb_ts_scaled_ms(WAIT_MS));
    print_message("broker: %s", out ? out : "");
    assert_int_equal(rc, 1);
    assert_non_null(out);
    assert_non_null(strstr(out, run));
    assert_non_null(strstr(out, "has mode 0770"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_squatted_tmp_dir_gets_nothing),
        cmocka_unit_test(test_symlinked_socket_dir_refused),
        cmocka_unit_test(test_listener_of_another_uid_gets_nothing),
        cmocka_unit_test(test_lock_symlink_not_followed),
        cmocka_unit_test(test_parent_others_can_change_refused),
        cmocka_unit_test(test_runtime_dir_of_another_user_refused),
        cmocka_unit_test(test_home_unset_is_a_clear_error),
        cmocka_unit_test(test_broker_refuses_an_open_socket_dir),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
