/* The broker asks by itself: a pinentry on the program's own screen.
 *
 * A program without a callback (a script started from a desktop menu, a GUI
 * built on a library that never prompts) that did not ask to be
 * non-interactive, and that reported a display or a terminal when it opened,
 * gets its questions asked by the broker through a pinentry program (as
 * gpg-agent does), spoken to through libassuan:
 *
 *   OPTION ttyname/ttytype (a terminal), SETTIMEOUT, SETTITLE, then per item
 *   SETDESC + SETPROMPT + GETPIN (a secret or a typed answer), or SETDESC +
 *   CONFIRM (a yes/no question: an unknown SSH host key). Never SETREPEAT,
 *   never SETKEYINFO or allow-external-password-cache (so no pinentry offers
 *   to store the answer in a keyring): answers go only into the request.
 *
 * Which screen: the program's own DISPLAY / WAYLAND_DISPLAY / terminal, never
 * the broker's (its own are taken out of the pinentry's environment); a
 * terminal must be a character device of this broker's uid.
 * One pinentry at a time per user (the broker is per user: per process); a
 * second question waits for the first, within the same --prompt-timeout.
 * A watchdog ends a pinentry that outlives the timeout or whose program
 * left: it shuts the socket (our blocked read returns) and sends the
 * pinentry's process group SIGTERM, then SIGKILL if it has not exited.
 * Memory: libassuan allocates through hooks that wipe what they free (its
 * line buffers held the answer); our own buffers are wiped too. The
 * pinentry's own memory is not ours to wipe. */
#include "brk.h"

#include <assuan.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vb_log.h"
#include "vb_textesc.h"

#define PE_LINE_MAX 1000       /* an Assuan line, the command word included (ASSUAN_LINELENGTH) */
#define PE_ANSWER_MAX 1024     /* the longest answer taken from a pinentry */
#define PE_SLICE_MS 250        /* how often a waiting question checks that its program is still there */
#define PE_EXIT_GRACE_MS 2000  /* a pinentry told BYE (or SIGTERM) may take this long to exit */
#define PE_DEFAULT "pinentry"

extern char **environ;

/* ---- the screen a program reported ------------------------------------------ */

void brk_screen_clear(brk_screen *sc)
{
    free(sc->display);
    free(sc->wayland_display);
    free(sc->tty);
    free(sc->term);
    memset(sc, 0, sizeof *sc);
}

/* Printable ASCII without spaces: these go into the pinentry's environment
 * and into Assuan OPTION lines, where a newline would be a command. */
static int plain_value(const char *v)
{
    for (const char *p = v; p && *p; p++)
        if (*p <= ' ' || *p > '~')
            return 0;
    return 1;
}

int brk_screen_read(vb_rd *rd, brk_screen *sc, vb_error *err)
{
    static const char *const names[] = { "display", "wayland_display", "tty", "term" };
    brk_screen_clear(sc);
    vb_rd fields;
    if (vb_rd_array(rd, &fields, err) < 0)
        return -1;
    char **slots[] = { &sc->display, &sc->wayland_display, &sc->tty, &sc->term };
    for (size_t i = 0; i < 4 && vb_rd_has_more(&fields); i++) {
        int rc = vb_rd_strdup(&fields, VB_SCREEN_VALUE_MAX, slots[i], err);
        if (rc == 0 && !plain_value(*slots[i]))
            rc = vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_BROKER,
                              "OPEN's %s is not plain printable text", names[i]);
        if (rc < 0) {
            brk_screen_clear(sc);
            return -1;
        }
    }
    if (sc->tty && strncmp(sc->tty, "/dev/", 5) != 0) {
        brk_screen_clear(sc);
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_BROKER,
                            "OPEN's tty must be a /dev/ path");
    }
    return 0;
}

static const char *program_path(const brk_server *srv)
{
    return srv->cfg->pinentry_program ? srv->cfg->pinentry_program : PE_DEFAULT;
}

int brk_pinentry_can_ask(const brk_session *s)
{
    const brk_screen *sc = &s->screen;
    return !s->non_interactive && (sc->display || sc->wayland_display || sc->tty) &&
           strcmp(program_path(s->srv), "none") != 0;
}

/* ---- checks before anything starts ---------------------------------------------- */

/* The terminal named must be one this user owns: never another user's
 * screen. /dev/tty is whatever terminal the opener has, so never that. */
static int check_tty(const brk_session *s, vb_error *err)
{
    const char *tty = s->screen.tty;
    struct stat st;
    if (!tty)
        return 0;
    if (strcmp(tty, "/dev/tty") == 0 || strstr(tty, "/../") || strstr(tty, "/./"))
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_BROKER,
                            "the terminal %s the program reported is not a terminal of its own; "
                            "not asking there", tty);
    if (lstat(tty, &st) < 0)
        return vb_error_set_errno(err, errno, VB_DOM_BROKER,
                                  "the terminal %s the program reported", tty);
    if (!S_ISCHR(st.st_mode))
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_BROKER,
                            "%s, which the program reported as its terminal, is not a terminal; "
                            "not asking there", tty);
    if (st.st_uid != s->srv->uid)
        return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_BROKER,
                            "the terminal %s belongs to uid %u, not to this broker's uid %u: "
                            "the broker never asks on another user's screen", tty,
                            (unsigned)st.st_uid, (unsigned)s->srv->uid);
    return 0;
}

/* execve needs a path: a name without '/' is looked up in the broker's PATH. */
static int find_program(const char *name, char *path, size_t len, vb_error *err)
{
    if (strchr(name, '/')) {
        snprintf(path, len, "%s", name);
        if (access(path, X_OK) == 0)
            return 0;
        return vb_error_set_errno(err, errno, VB_DOM_BROKER, "the pinentry %s", name);
    }
    const char *dirs = getenv("PATH");
    for (const char *d = dirs ? dirs : "/usr/bin:/bin"; *d;) {
        size_t n = strcspn(d, ":");
        if (n > 0 && (size_t)snprintf(path, len, "%.*s/%s", (int)n, d, name) < len &&
            access(path, X_OK) == 0)
            return 0;
        d += n + (d[n] == ':');
    }
    return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_BROKER,
                        "no pinentry program '%s' in PATH (install pinentry-gnome3, "
                        "pinentry-curses or pinentry-tty, or set vbrokerd --pinentry)", name);
}

/* ---- one at a time per user ----------------------------------------------------- */

static pthread_mutex_t pe_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pe_idle = PTHREAD_COND_INITIALIZER;
static int pe_busy;

/* Wait for the screen to be free, until deadline_ms or the program leaves. */
static int take_turn(brk_session *s, uint64_t deadline_ms, vb_error *err)
{
    pthread_mutex_lock(&pe_lock);
    while (pe_busy) {
        uint64_t now = vb_now_ms();
        if (now >= deadline_ms || brk_session_left(s)) {
            pthread_mutex_unlock(&pe_lock);
            return now >= deadline_ms
                       ? vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_BROKER,
                                      "another program's question was on the screen for the "
                                      "whole prompt timeout")
                       : vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_BROKER,
                                      "the program left while its question waited");
        }
        uint64_t wait = deadline_ms - now < PE_SLICE_MS ? deadline_ms - now : PE_SLICE_MS;
        struct timespec until = vb_worker_deadline(wait);
        pthread_cond_timedwait(&pe_idle, &pe_lock, &until);
    }
    pe_busy = 1;
    pthread_mutex_unlock(&pe_lock);
    return 0;
}

static void end_turn(void)
{
    pthread_mutex_lock(&pe_lock);
    pe_busy = 0;
    pthread_cond_signal(&pe_idle);
    pthread_mutex_unlock(&pe_lock);
}

/* ---- the pinentry process -------------------------------------------------------- */

typedef struct pe_child {
    pid_t pid;
    int fd;                  /* our end of the socketpair (the pinentry's stdin and stdout);
                                libassuan's once connected (it closes it) */
    int watch_fd;            /* the watchdog's own descriptor of that socket: shutting it
                                down never touches a number libassuan may have closed */
    brk_session *s;
    uint64_t deadline_ms;
    pthread_t watch;
    int watching;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;                /* the conversation is over: the watchdog may go */
    int fired;               /* what ended it early: 0, ETIMEDOUT, or ECONNRESET (program left) */
} pe_child;

/* The broker's environment without its own screen, plus the program's. */
static char **child_env(const brk_screen *sc)
{
    static const char *const drop[] = { "DISPLAY=", "WAYLAND_DISPLAY=", "GPG_TTY=", "TERM=" };
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 5, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t d = 0; d < sizeof drop / sizeof drop[0]; d++)
            keep &= strncmp(environ[i], drop[d], strlen(drop[d])) != 0;
        if (keep && !(env[k++] = strdup(environ[i])))
            goto fail;
    }
    const char *names[] = { "DISPLAY", "WAYLAND_DISPLAY", "TERM" };
    const char *values[] = { sc->display, sc->wayland_display, sc->tty ? sc->term : NULL };
    for (size_t i = 0; i < 3; i++) {
        if (!values[i])
            continue;
        size_t len = strlen(names[i]) + strlen(values[i]) + 2;
        if (!(env[k] = malloc(len)))
            goto fail;
        snprintf(env[k++], len, "%s=%s", names[i], values[i]);
    }
    return env;
fail:
    for (size_t i = 0; i < k; i++)
        free(env[i]);
    free(env);
    return NULL;
}

static void env_free(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

/* In the child, between fork and exec: async-signal-safe calls only. Its own
 * session (so the watchdog can end it and whatever it starts), default
 * signals (the broker blocks some and ignores SIGPIPE; both would be
 * inherited through exec), the socket as stdin and stdout, /dev/null as
 * stderr, nothing else open. */
static void exec_child(int sock, int devnull, const char *path, char **argv, char **env)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL);
    setsid();
    if (dup2(sock, 0) < 0 || dup2(sock, 1) < 0 || dup2(devnull, 2) < 0)
        _exit(126);
    close_range(3, ~0u, 0);
    execve(path, argv, env);
    _exit(127);
}

static int spawn(pe_child *c, const char *path, const brk_screen *sc, vb_error *err)
{
    int sv[2];
    char *argv[] = { (char *)path, NULL };
    char **env = child_env(sc);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (!env || devnull < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        int e = errno;
        env_free(env);
        if (devnull >= 0)
            close(devnull);
        return vb_error_set_errno(err, e, VB_DOM_BROKER, "cannot start the pinentry");
    }
    c->pid = fork();
    if (c->pid == 0)
        exec_child(sv[1], devnull, path, argv, env);
    int e = errno;
    close(sv[1]);
    close(devnull);
    env_free(env);
    if (c->pid < 0) {
        close(sv[0]);
        return vb_error_set_errno(err, e, VB_DOM_BROKER, "cannot start the pinentry");
    }
    c->fd = sv[0];
    return 0;
}

static void *watch_main(void *arg)
{
    pe_child *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->done) {
        uint64_t now = vb_now_ms();
        if (now >= c->deadline_ms)
            c->fired = ETIMEDOUT;
        else if (brk_session_left(c->s))
            c->fired = ECONNRESET;
        if (c->fired)
            break;
        uint64_t wait = c->deadline_ms - now < PE_SLICE_MS ? c->deadline_ms - now : PE_SLICE_MS;
        struct timespec until = vb_worker_deadline(wait);
        pthread_cond_timedwait(&c->cv, &c->mu, &until);
    }
    if (c->fired) {
        /* the conversation's blocked read returns; the pinentry (not reaped
         * yet, so its group id is still its own) is told to go */
        shutdown(c->watch_fd, SHUT_RDWR);
        kill(-c->pid, SIGTERM);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static int start_watch(pe_child *c, vb_error *err)
{
    c->watch_fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
    if (c->watch_fd < 0)
        return vb_error_set_errno(err, errno, VB_DOM_BROKER, "cannot watch the pinentry");
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int rc = pthread_create(&c->watch, NULL, watch_main, c);
    if (rc != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        close(c->watch_fd);
        return vb_error_set_errno(err, rc, VB_DOM_BROKER, "cannot watch the pinentry");
    }
    c->watching = 1;
    return 0;
}

static void stop_watch(pe_child *c)
{
    if (!c->watching)
        return;
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->watch, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    close(c->watch_fd);
    c->watching = 0;
}

/* Wait (bounded) for the pinentry to exit after BYE or SIGTERM; then kill
 * what is left of its group and reap it. Returns its wait status. */
static int reap(pe_child *c)
{
    int status = 0;
    int pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    if (pidfd >= 0) {
        struct pollfd p = { pidfd, POLLIN, 0 };
        while (poll(&p, 1, PE_EXIT_GRACE_MS) < 0 && errno == EINTR)
            ;
        close(pidfd);
    }
    if (waitpid(c->pid, &status, WNOHANG) != c->pid) {
        kill(-c->pid, SIGKILL);
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    return status;
}

/* ---- libassuan, without logs, wiping what it frees -------------------------------- */

static void wiping_free(void *p)
{
    if (p) {
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
    }
}

static void *wiping_realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n ? n : 1);
    size_t old = malloc_usable_size(p);
    void *q = malloc(n ? n : 1);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    wiping_free(p);
    return q;
}

static void *plain_malloc(size_t n)
{
    return malloc(n ? n : 1);
}

static struct assuan_malloc_hooks wiping_hooks = { plain_malloc, wiping_realloc, wiping_free };

/* Nothing of a conversation is ever logged (its data lines are answers). */
static int no_log(assuan_context_t ctx, void *hook, unsigned cat, const char *msg)
{
    (void)ctx, (void)hook, (void)cat, (void)msg;
    return 0;
}

/* ---- the conversation -------------------------------------------------------------- */

/* "VERB text" with text percent-escaped for Assuan (%, CR, LF and controls;
 * a '\n' in text is a line break the pinentry shows), cut at a character
 * boundary to fit one Assuan line. */
static void build_line(char *line, const char *verb, const char *text)
{
    size_t n = (size_t)snprintf(line, PE_LINE_MAX, "%s", verb);
    if (!text)
        return;
    line[n++] = ' ';
    const size_t room = PE_LINE_MAX - 1;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        int esc = *p < 0x20 || *p == '%' || *p == 0x7f;
        size_t need = esc ? 3 : 1;
        if (n + need > room) {
            while (n > 0 && ((unsigned char)line[n - 1] & 0xc0) == 0x80)
                n--; /* drop a cut UTF-8 sequence: continuation bytes and their lead */
            if (n > 0 && (unsigned char)line[n - 1] >= 0xc0)
                n--;
            break;
        }
        if (esc)
            n += (size_t)snprintf(line + n, 4, "%%%02X", *p);
        else
            line[n++] = (char)*p;
    }
    line[n] = '\0';
}

static gpg_error_t say(assuan_context_t ctx, const char *verb, const char *text)
{
    char line[PE_LINE_MAX];
    build_line(line, verb, text);
    return assuan_transact(ctx, line, NULL, NULL, NULL, NULL, NULL, NULL);
}

typedef struct pe_answer {
    char buf[PE_ANSWER_MAX + 1];
    size_t len;
    int too_long;
} pe_answer;

static gpg_error_t take_data(void *opaque, const void *data, size_t len)
{
    pe_answer *a = opaque;
    if (len > PE_ANSWER_MAX - a->len) {
        a->too_long = 1;
        return 0;
    }
    memcpy(a->buf + a->len, data, len);
    a->len += len;
    return 0;
}

static const char *default_prompt(int type)
{
    switch (type) {
    case VB_CRED_USERNAME:
    case VB_CRED_AUTHNAME: return "User name (not shown):";
    case VB_CRED_REALM: return "Realm (not shown):";
    case VB_CRED_PASSPHRASE: return "Password:";
    default: return "Answer:";
    }
}

/* An item the pinentry asks; the others keep their default, take the
 * login's own user name (the URI's user@, or as the asking hop reported
 * it), or stay unanswered. */
static int needs_asking(const vb_cred_request *req, const vb_cred_item *it)
{
    switch (it->type) {
    case VB_CRED_PASSPHRASE:
    case VB_CRED_NOECHOPROMPT:
    case VB_CRED_ECHOPROMPT:
        return 1;
    case VB_CRED_USERNAME:
    case VB_CRED_AUTHNAME:
        return !it->defresult && !req->target.user;
    case VB_CRED_REALM:
        return !it->defresult;
    default:
        return 0;
    }
}

static int takes_target_user(const vb_cred_request *req, const vb_cred_item *it)
{
    return (it->type == VB_CRED_AUTHNAME || it->type == VB_CRED_USERNAME) && !it->defresult &&
           req->target.user;
}

static void program_name(pid_t pid, char *name, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = pid > 0 ? fopen(path, "re") : NULL;
    if (!f || !fgets(name, (int)len, f))
        snprintf(name, len, "a program");
    name[strcspn(name, "\n")] = '\0';
    if (f)
        fclose(f);
}

/* A yes/no question: CONFIRM, not GETPIN. */
static int is_confirm(const vb_cred_request *req)
{
    return req->kind && strcmp(req->kind, VB_CRED_KIND_SSH_HOSTKEY) == 0;
}

/* What the person reads: which program asks, for what, through which chain
 * (the hops the broker verified, then those only reported), every text a
 * hop supplied already escaped (vb_cred_request_escape). */
static void describe(const brk_session *s, const vb_cred_request *shown, const char *prog,
                     const vb_cred_item *it, char *out, size_t len)
{
    char prog_safe[96];
    vb_text_escape_into(prog, prog_safe, sizeof prog_safe);
    const vb_cred_target *t = &shown->target;
    size_t n = (size_t)snprintf(out, len, "%s (pid %d) asks ", prog_safe, (int)s->peer_pid);
    if (is_confirm(shown) && t->host)
        n += (size_t)snprintf(out + n, len - n, "whether to accept the SSH host key of %s",
                              t->host);
    else if (shown->kind && t->host)
        n += (size_t)snprintf(out + n, len - n, "for a %s login to %s%s%s", shown->kind,
                              t->user ? t->user : "", t->user ? "@" : "", t->host);
    else
        n += (size_t)snprintf(out + n, len - n, "for %s",
                              shown->service ? shown->service : "a login");
    if (n < len && t->host && t->port)
        n += (size_t)snprintf(out + n, len - n, ":%u", t->port);
    if (n < len && shown->nhops)
        n += (size_t)snprintf(out + n, len - n, "\nVia:");
    for (size_t i = 0; n < len && i < shown->nhops; i++)
        n += (size_t)snprintf(out + n, len - n, "%s %s (%s)", i ? " \xe2\x86\x92" : "",
                              shown->hops[i],
                              i < shown->nverified ? "verified by the broker" : "as reported");
    if (n < len && shown->retry)
        n += (size_t)snprintf(out + n, len - n, "\nThe last answer did not work.");
    if (n < len && it->challenge &&
        (it->type == VB_CRED_ECHOPROMPT || it->type == VB_CRED_NOECHOPROMPT))
        n += (size_t)snprintf(out + n, len - n, "\n%s", it->challenge);
    if (n < len && is_confirm(shown) && it->prompt)
        snprintf(out + n, len - n, "\n%s", it->prompt);
}

/* Ask one item. gpg errors come back for the caller to name. */
static gpg_error_t ask_item(assuan_context_t ctx, const brk_session *s, const vb_cred_request *shown,
                            const char *prog, size_t i, vb_cred_item *answer)
{
    const vb_cred_item *it = &shown->items[i];
    char desc[PE_LINE_MAX];
    describe(s, shown, prog, it, desc, sizeof desc);
    gpg_error_t rc = say(ctx, "SETDESC", desc);
    if (is_confirm(shown)) {
        if (!rc)
            rc = say(ctx, "SETOK", "Yes, connect");
        if (!rc)
            rc = say(ctx, "SETCANCEL", "No");
        if (!rc)
            rc = say(ctx, "CONFIRM", NULL);
        /* fail closed: anything but a yes is a no */
        gpg_err_code_t code = gpg_err_code(rc);
        if (!rc || code == GPG_ERR_CANCELED || code == GPG_ERR_NOT_CONFIRMED)
            vb_cred_item_set_result(answer, rc ? "no" : "yes", rc ? 2 : 3);
        return code == GPG_ERR_CANCELED || code == GPG_ERR_NOT_CONFIRMED ? 0 : rc;
    }
    if (!rc)
        rc = say(ctx, "SETPROMPT", it->prompt && *it->prompt ? it->prompt : default_prompt(it->type));
    pe_answer a;
    a.len = 0;
    a.too_long = 0;
    if (!rc) {
        assuan_begin_confidential(ctx);
        rc = assuan_transact(ctx, "GETPIN", take_data, &a, NULL, NULL, NULL, NULL);
        assuan_end_confidential(ctx);
    }
    if (!rc && a.too_long)
        rc = gpg_error(GPG_ERR_TOO_LARGE);
    if (!rc && vb_cred_item_set_result(answer, a.buf, a.len) < 0)
        rc = gpg_error(GPG_ERR_ENOMEM);
    explicit_bzero(&a, sizeof a);
    return rc;
}

/* The pinentry's options, timeout and title; then each item. */
static gpg_error_t converse(assuan_context_t ctx, const brk_session *s, const vb_cred_request *shown,
                            vb_cred_request *req, uint64_t deadline_ms)
{
    const brk_screen *sc = &s->screen;
    char text[PE_LINE_MAX], prog[64];
    gpg_error_t rc = 0;
    if (sc->tty) {
        snprintf(text, sizeof text, "ttyname=%s", sc->tty);
        rc = say(ctx, "OPTION", text);
        if (!rc && sc->term) {
            snprintf(text, sizeof text, "ttytype=%s", sc->term);
            rc = say(ctx, "OPTION", text);
        }
    }
    /* a second before the watchdog: a real pinentry then closes itself and
     * gives the terminal back as it found it */
    uint64_t now = vb_now_ms(), left_s = deadline_ms > now ? (deadline_ms - now) / 1000 : 0;
    snprintf(text, sizeof text, "%llu", (unsigned long long)(left_s > 1 ? left_s - 1 : 1));
    if (!rc)
        rc = say(ctx, "SETTIMEOUT", text);
    program_name(s->peer_pid, prog, sizeof prog);
    char prog_safe[96];
    vb_text_escape_into(prog, prog_safe, sizeof prog_safe);
    snprintf(text, sizeof text, "vbroker: %s (pid %d) needs credentials", prog_safe,
             (int)s->peer_pid);
    if (!rc)
        rc = say(ctx, "SETTITLE", text);
    const vb_cred_item *confirmed = NULL; /* a yes/no question is asked once */
    for (size_t i = 0; !rc && i < shown->nitems; i++) {
        vb_cred_item *it = &req->items[i];
        const char *value = NULL; /* taken without asking */
        size_t len = 0;
        if (!needs_asking(req, it) && takes_target_user(req, it)) {
            value = req->target.user;
            len = strlen(value);
        } else if (needs_asking(req, it) && confirmed) {
            value = confirmed->result;
            len = confirmed->resultlen;
        } else if (needs_asking(req, it)) { /* one GETPIN per item, or one CONFIRM */
            rc = ask_item(ctx, s, shown, prog, i, it);
            confirmed = is_confirm(req) && it->result ? it : NULL;
        }
        if (value && vb_cred_item_set_result(it, value, len) < 0)
            rc = gpg_error(GPG_ERR_ENOMEM);
    }
    return rc;
}

/* A gpg error, or how the conversation ended, as the program's vb_error. */
static int name_failure(const pe_child *c, gpg_error_t rc, int status, const char *path,
                        const vb_cred_request *req, vb_error *err)
{
    char what[256];
    vb_text_escape_into(req->service ? req->service : "this login", what, sizeof what);
    if (c->fired == ETIMEDOUT || gpg_err_code(rc) == GPG_ERR_TIMEOUT)
        return vb_error_set(err, VB_ERR_TIMEOUT, VB_DOM_BROKER,
                            "nobody answered the pinentry for %s within the prompt timeout", what);
    if (c->fired == ECONNRESET)
        return vb_error_set(err, VB_ERR_PEER_CLOSED, VB_DOM_BROKER,
                            "the program left while the pinentry asked for %s", what);
    if (gpg_err_code(rc) == GPG_ERR_CANCELED)
        return vb_error_set(err, VB_ERR_AUTH_CANCELLED, VB_DOM_BROKER,
                            "credentials required for %s: the question was cancelled at the "
                            "pinentry", what);
    char how[64];
    if (WIFEXITED(status))
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "died of signal %d", WTERMSIG(status));
    else
        snprintf(how, sizeof how, "failed");
    return vb_error_set(err, VB_ERR_CRED_REQUIRED, VB_DOM_BROKER,
                        "credentials required for %s: the pinentry %s %s (%s) before answering; "
                        "run `vbctl login` or add them to auth.conf",
                        what, path, how, gpg_strerror(rc));
}

/* shown: req with every hop-supplied text escaped, for the dialog. */
static int converse_with_child(brk_session *s, pe_child *c, const char *path,
                               const vb_cred_request *shown, vb_cred_request *req, vb_error *err)
{
    assuan_context_t ctx = NULL;
    gpg_error_t rc = assuan_new_ext(&ctx, GPG_ERR_SOURCE_DEFAULT, &wiping_hooks, no_log, NULL);
    if (!rc) {
        assuan_set_flag(ctx, ASSUAN_NO_LOGGING, 1);
        /* libassuan's from here: it closes it, on a failed handshake too */
        rc = assuan_socket_connect_fd(ctx, c->fd, 0);
    } else {
        close(c->fd);
    }
    c->fd = -1;
    if (!rc)
        rc = converse(ctx, s, shown, req, c->deadline_ms);
    assuan_release(ctx); /* BYE, and closes the socket */
    stop_watch(c);
    int status = reap(c);
    if (!rc)
        return 0;
    for (size_t i = 0; i < req->nitems; i++) /* no half-answered request goes on */
        if (req->items[i].result) {
            explicit_bzero(req->items[i].result, req->items[i].resultlen);
            free(req->items[i].result);
            req->items[i].result = NULL;
            req->items[i].resultlen = 0;
        }
    return name_failure(c, rc, status, path, req, err);
}

int brk_pinentry_ask(brk_session *s, vb_cred_request *req, vb_error *err)
{
    char path[4096];
    if (check_tty(s, err) < 0 || find_program(program_path(s->srv), path, sizeof path, err) < 0)
        return -1;
    uint64_t deadline_ms = vb_now_ms() + (uint64_t)s->srv->cfg->prompt_timeout_s * 1000u;
    vb_cred_request shown;
    if (vb_cred_request_copy(&shown, req) < 0 || vb_cred_request_escape(&shown) < 0)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_BROKER, "out of memory");
    if (take_turn(s, deadline_ms, err) < 0) {
        vb_cred_request_clear(&shown);
        return -1;
    }
    pe_child c;
    memset(&c, 0, sizeof c);
    c.fd = -1;
    c.s = s;
    c.deadline_ms = deadline_ms;
    int rc = spawn(&c, path, &s->screen, err);
    if (rc == 0 && start_watch(&c, err) < 0) {
        kill(-c.pid, SIGKILL);
        reap(&c);
        close(c.fd);
        rc = -1;
    }
    if (rc == 0) {
        char what[256];
        vb_log(VB_LOG_INFO, "client %s: asking for %s through the pinentry %s (pid %d)", s->peer,
               vb_text_escape_into(req->service ? req->service : "a login", what, sizeof what),
               path, (int)c.pid);
        rc = converse_with_child(s, &c, path, &shown, req, err);
    }
    end_turn();
    vb_cred_request_clear(&shown);
    return rc;
}
