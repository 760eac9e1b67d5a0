/*
 * vbroker_term.c — the default terminal credential callback (vb_auth_default).
 *
 * This is the only part of libvbroker that talks to a person, so it is the
 * only part that prints. It answers one request at a time, item by item:
 *
 *   Authentication failed for SERVICE; try again.     (only when req->retry)
 *   Login for SERVICE via HOP1 → HOP2                  (once per request)
 *   Username [alice]: _                               (echoed)
 *   Password: _                                       (not echoed)
 *
 * - Input is always stdin (fd 0), read with read(2) one byte at a time, so
 *   no secret is ever left in a stdio buffer and no byte past the answer's
 *   newline is consumed.
 * - When stdin is a terminal, a secret (PASSPHRASE, NOECHOPROMPT) is read
 *   with echo turned off through termios; the terminal is restored on every
 *   path, and from a signal handler too (tcsetattr is async-signal-safe), as
 *   a best effort: while echo is off, SIGINT, SIGTERM, SIGHUP, SIGQUIT,
 *   SIGALRM, SIGPIPE, SIGTSTP, SIGTTIN and SIGTTOU (those the caller does not
 *   ignore) are caught; the handler restores the terminal, the reader then
 *   puts the caller's handlers back and re-raises the signal, so the
 *   caller's disposition decides (default: the process ends, with a sane
 *   terminal). A stop (^Z) asks the same item again after SIGCONT; any
 *   other signal the process survives cancels the request. The signals are
 *   blocked on the reading thread except inside ppoll(), so none is lost
 *   between a check and a read. A signal another thread receives still
 *   restores the terminal at once; this thread notices at the next byte.
 * - When stdin is not a terminal, lines are read from it as they come and
 *   termios is never touched, so `printf 'alice\nsecret\n' | vbctl ...` works.
 * - Prompts go to stderr. When stdin is a terminal but stderr is not (for
 *   instance `vbctl list 2>log`), they go to /dev/tty so the person still
 *   sees what is asked.
 * - ECHOPROMPT/NOECHOPROMPT show their challenge on a line of its own
 *   before the prompt; other types' challenges are SASL labels and are not
 *   shown.
 * - An empty line takes the item's default when it has one. An empty
 *   secret without a default is not an answer (no host takes an empty
 *   password, and sending one costs one of the host's few tries): the same
 *   item is asked again, at most VBT_EMPTY_TRIES times in all, then the
 *   request is cancelled. End of input or a read error cancels the whole
 *   request (-1), and nothing this call stored is left behind.
 * - Text that came from a peer (service, hops, prompts, defaults) is printed
 *   with control characters escaped, so a hostile server cannot drive the
 *   terminal. A secret is never printed, and a secret item's default is
 *   shown only as "[default]". Line breaks are escaped too (\x0a), except
 *   in the prompts of the broker's own SSH host key question (kind
 *   "ssh-hostkey", no hops), which the broker composed line by line itself
 *   and which print as ssh prints them: a host's text never starts a line.
 * - Every buffer that held an answer is wiped with explicit_bzero.
 *
 * Only vb_auth_default is exported; everything else here is static.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* ppoll */
#endif
#include "vbroker.h"
#include "vb_textesc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Longest answer accepted (bytes, without the newline). */
#define VBT_LINE_MAX 4096
/* How often an empty secret is asked for before the request is cancelled. */
#define VBT_EMPTY_TRIES 3

/* ---- output ---------------------------------------------------------------- */

static void vbt_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;                 /* nowhere to report it; the read decides */
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void vbt_puts(int fd, const char *s)
{
    vbt_write(fd, s, strlen(s));
}

/* Peer text, escaped (vb_text_escape: controls, bidi, separators, line
 * breaks), even though the broker escaped it already: the terminal trusts
 * no one. keep_lf keeps '\n' only (vb_text_escape_lines), for the broker's
 * own multi-line question. */
static void vbt_put_text(int fd, const char *s, int keep_lf)
{
    char *escaped = keep_lf ? vb_text_escape_lines(s) : vb_text_escape(s);
    if (escaped) {
        vbt_write(fd, escaped, strlen(escaped));
        free(escaped);
    } else { /* out of memory: print nothing rather than the raw text */
        vbt_puts(fd, "?");
    }
}

static void vbt_put_safe(int fd, const char *s)
{
    vbt_put_text(fd, s, 0);
}

/* The broker's own SSH host key question: no hop relayed it (a relayed
 * question always names its hops, whatever kind it claims), and the broker
 * kept its line breaks after escaping every part of it. */
static int vbt_is_own_multiline(const vb_auth_request *req)
{
    return req->nhops == 0 && req->kind && strcmp(req->kind, "ssh-hostkey") == 0;
}

/* ---- item kinds ------------------------------------------------------------ */

static int vbt_is_secret(int type)
{
    return type == VB_CRED_PASSPHRASE || type == VB_CRED_NOECHOPROMPT;
}

static int vbt_is_answerable(int type)
{
    switch (type) {
    case VB_CRED_USERNAME:   /* not offered in credtypes, but harmless to answer */
    case VB_CRED_AUTHNAME:
    case VB_CRED_LANGUAGE:
    case VB_CRED_ECHOPROMPT:
    case VB_CRED_REALM:
    case VB_CRED_PASSPHRASE:
    case VB_CRED_NOECHOPROMPT:
        return 1;
    default:
        return 0;
    }
}

static const char *vbt_default_prompt(int type)
{
    switch (type) {
    case VB_CRED_USERNAME:     return "Username";
    case VB_CRED_AUTHNAME:     return "Username";
    case VB_CRED_LANGUAGE:     return "Language";
    case VB_CRED_PASSPHRASE:   return "Password";
    case VB_CRED_REALM:        return "Realm";
    case VB_CRED_ECHOPROMPT:
    case VB_CRED_NOECHOPROMPT: return "Answer";
    default:                   return "Value";
    }
}

/* ---- terminal state and signals --------------------------------------------
 * Only touched while a secret is read from a terminal. The handler restores
 * the saved attributes itself (tcsetattr is async-signal-safe), records the
 * signal, and the reader re-raises it once the caller's handlers are back. */

static const int vbt_signals[] = {
    SIGALRM, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU,
};
#define VBT_NSIGNALS (sizeof vbt_signals / sizeof vbt_signals[0])

static volatile sig_atomic_t vbt_caught;       /* last signal seen, 0 for none */
static volatile sig_atomic_t vbt_restore_fd = -1;
static struct termios vbt_saved_tio;

static void vbt_on_signal(int signo)
{
    int saved_errno = errno;
    if (vbt_restore_fd >= 0)
        (void)tcsetattr(vbt_restore_fd, TCSANOW, &vbt_saved_tio);
    vbt_caught = signo;
    errno = saved_errno;
}

typedef struct vbt_echo_guard {
    int fd;
    int active;                              /* echo is off, handlers installed */
    struct sigaction old[VBT_NSIGNALS];
    int installed[VBT_NSIGNALS];
    sigset_t oldmask;                        /* this thread's mask before */
} vbt_echo_guard;

/* Block the guarded signals on this thread, install the handlers and turn
 * echo off. The signals stay blocked except inside ppoll (see
 * vbt_wait_readable), so one cannot slip in between a check and a read()
 * that would then block with nobody to wake it. -1 when the terminal
 * refused (everything undone). */
static int vbt_echo_off(vbt_echo_guard *g, int fd)
{
    memset(g, 0, sizeof *g);
    g->fd = fd;
    struct termios tio;
    if (tcgetattr(fd, &tio) != 0)
        return -1;
    vbt_saved_tio = tio;
    vbt_caught = 0;

    sigset_t block;
    sigemptyset(&block);
    for (size_t i = 0; i < VBT_NSIGNALS; i++)
        sigaddset(&block, vbt_signals[i]);
    if (pthread_sigmask(SIG_BLOCK, &block, &g->oldmask) != 0)
        return -1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = vbt_on_signal;
    sigfillset(&sa.sa_mask);                 /* one handler at a time */
    sa.sa_flags = 0;                         /* no SA_RESTART: ppoll returns EINTR */
    for (size_t i = 0; i < VBT_NSIGNALS; i++) {
        struct sigaction cur;
        if (sigaction(vbt_signals[i], NULL, &cur) != 0)
            continue;
        if (cur.sa_handler == SIG_IGN)       /* the caller ignores it: so do we */
            continue;
        if (sigaction(vbt_signals[i], &sa, &g->old[i]) == 0)
            g->installed[i] = 1;
    }
    vbt_restore_fd = fd;

    tio.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    tio.c_lflag |= ICANON;
    if (tcsetattr(fd, TCSAFLUSH, &tio) != 0) {
        vbt_restore_fd = -1;
        for (size_t i = 0; i < VBT_NSIGNALS; i++)
            if (g->installed[i])
                (void)sigaction(vbt_signals[i], &g->old[i], NULL);
        memset(g->installed, 0, sizeof g->installed);
        (void)pthread_sigmask(SIG_SETMASK, &g->oldmask, NULL);
        return -1;
    }
    g->active = 1;
    return 0;
}

/* Restore the terminal, the caller's handlers, then the signal mask (a
 * signal that arrived while blocked is delivered to the caller's handler
 * right there); re-raise one our handler caught. Returns the caught signal
 * (0 when none). Safe to call on an inactive guard. */
static int vbt_echo_restore(vbt_echo_guard *g)
{
    if (!g->active)
        return 0;
    (void)tcsetattr(g->fd, TCSAFLUSH, &vbt_saved_tio);
    vbt_restore_fd = -1;
    for (size_t i = 0; i < VBT_NSIGNALS; i++)
        if (g->installed[i])
            (void)sigaction(vbt_signals[i], &g->old[i], NULL);
    g->active = 0;
    int signo = vbt_caught;
    vbt_caught = 0;
    (void)pthread_sigmask(SIG_SETMASK, &g->oldmask, NULL);
    if (signo != 0)
        (void)raise(signo);                  /* the caller's disposition decides */
    return signo;
}

/* With a guard active: wait until fd is readable, letting the guarded
 * signals in only while waiting. 0 ready, -1 error, 1 a signal arrived. */
static int vbt_wait_readable(int fd, const sigset_t *waitmask)
{
    for (;;) {
        if (vbt_caught != 0)
            return 1;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int r = ppoll(&pfd, 1, NULL, waitmask);
        if (r > 0)
            return vbt_caught != 0 ? 1 : 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* ---- reading one answer ------------------------------------------------------ */

enum vbt_read_result {
    VBT_READ_LINE = 0,      /* a line (possibly empty) is in the buffer */
    VBT_READ_EOF,           /* end of input before anything was typed */
    VBT_READ_ERROR,         /* read(2) failed (errno kept) */
    VBT_READ_TOOLONG,       /* longer than the buffer */
    VBT_READ_SIGNAL,        /* a signal arrived while echo was off */
};

/* Read bytes from fd up to a newline (not stored) into buf. A last line
 * without a newline counts as a line. *len gets the length. waitmask is
 * the guard's mask while echo is off (NULL otherwise). */
static int vbt_read_line(int fd, char *buf, size_t cap, size_t *len, const sigset_t *waitmask)
{
    size_t n = 0;
    *len = 0;
    for (;;) {
        if (waitmask) {
            int w = vbt_wait_readable(fd, waitmask);
            if (w > 0)
                return VBT_READ_SIGNAL;
            if (w < 0)
                return VBT_READ_ERROR;
        }
        char c;
        ssize_t r = read(fd, &c, 1);
        if (vbt_caught != 0)
            return VBT_READ_SIGNAL;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return VBT_READ_ERROR;
        }
        if (r == 0) {
            if (n == 0)
                return VBT_READ_EOF;
            break;
        }
        if (c == '\n')
            break;
        if (n + 1 >= cap) {
            explicit_bzero(&c, sizeof c);
            return VBT_READ_TOOLONG;
        }
        buf[n++] = c;
        explicit_bzero(&c, sizeof c);
    }
    if (n > 0 && buf[n - 1] == '\r')         /* CRLF input (a file from Windows) */
        n--;
    buf[n] = '\0';
    *len = n;
    return VBT_READ_LINE;
}

/* Print "[CHALLENGE\n]PROMPT[ [DEFAULT]]: ". A prompt that already ends in
 * ':' (with or without a blank) keeps its own colon. The challenge is shown
 * only for ECHOPROMPT/NOECHOPROMPT, where it is the question itself (a
 * one-time-password challenge, say); for the other types SASL fills it with
 * a label ("Authentication Name") that would only repeat the prompt. */
static void vbt_print_prompt(int out, const vb_credential *cred, int multiline)
{
    if ((cred->type == VB_CRED_ECHOPROMPT || cred->type == VB_CRED_NOECHOPROMPT) &&
        cred->challenge && cred->challenge[0]) {
        vbt_put_safe(out, cred->challenge);
        vbt_puts(out, "\n");
    }
    const char *prompt = cred->prompt && cred->prompt[0] ? cred->prompt
                                                          : vbt_default_prompt(cred->type);
    size_t plen = strlen(prompt);
    while (plen > 0 && (prompt[plen - 1] == ' ' || prompt[plen - 1] == ':'))
        plen--;
    char *trimmed = strndup(prompt, plen);
    vbt_put_text(out, trimmed ? trimmed : prompt, multiline);
    free(trimmed);
    if (cred->defresult) {
        if (vbt_is_secret(cred->type)) {
            vbt_puts(out, " [default]");
        } else {
            vbt_puts(out, " [");
            vbt_put_safe(out, cred->defresult);
            vbt_puts(out, "]");
        }
    }
    vbt_puts(out, ": ");
}

/* Ask for one item; on success cred->result/resultlen are set. Returns 0,
 * or -1 to cancel the request. */
static int vbt_ask(int in, int out, int in_is_tty, vb_credential *cred, int multiline)
{
    char line[VBT_LINE_MAX];
    size_t len = 0;
    int rc;
    int secret = vbt_is_secret(cred->type);
    int empty = 0;

    for (;;) {
        vbt_echo_guard guard;
        memset(&guard, 0, sizeof guard);
        if (secret && in_is_tty && vbt_echo_off(&guard, in) != 0) {
            vbt_puts(out, "vbroker: cannot turn off echo on the terminal; "
                          "not reading a secret; login cancelled\n");
            return -1;
        }
        vbt_print_prompt(out, cred, multiline);
        rc = vbt_read_line(in, line, sizeof line, &len, guard.active ? &guard.oldmask : NULL);
        int read_errno = errno;
        int signo = vbt_echo_restore(&guard);
        /* the Enter was not echoed (secret on a terminal), or the answer
         * came from a pipe and is not on the screen: end the prompt line */
        if (secret || !in_is_tty)
            vbt_puts(out, "\n");
        if (signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU) {
            /* stopped and continued: ask the same item again */
            explicit_bzero(line, sizeof line);
            continue;
        }
        if (signo != 0)
            rc = VBT_READ_SIGNAL;            /* interrupted and still alive: cancel */
        if (rc == VBT_READ_ERROR) {
            vbt_puts(out, "vbroker: cannot read the answer: ");
            vbt_puts(out, strerror(read_errno));
            vbt_puts(out, "; login cancelled\n");
        } else if (rc == VBT_READ_TOOLONG) {
            vbt_puts(out, "vbroker: answer too long; login cancelled\n");
        } else if (rc == VBT_READ_LINE && len == 0 && secret && !cred->defresult) {
            /* not sent: the host would count it as a failed try */
            if (++empty < VBT_EMPTY_TRIES) {
                vbt_puts(out, "vbroker: nothing typed; the empty answer was not sent, "
                              "try again\n");
                continue;
            }
            vbt_puts(out, "vbroker: nothing typed; login cancelled\n");
            rc = VBT_READ_EOF;
        }
        break;
    }
    if (rc != VBT_READ_LINE) {
        explicit_bzero(line, sizeof line);
        return -1;
    }

    const char *value = line;
    size_t vlen = len;
    if (len == 0 && cred->defresult) {
        value = cred->defresult;
        vlen = strlen(cred->defresult);
    }
    char *res = malloc(vlen + 1);
    if (!res) {
        explicit_bzero(line, sizeof line);
        return -1;
    }
    memcpy(res, value, vlen);
    res[vlen] = '\0';
    explicit_bzero(line, sizeof line);
    cred->result = res;
    cred->resultlen = (unsigned int)vlen;
    return 0;
}

/* ---- the callback -------------------------------------------------------------- */

static void vbt_print_header(int out, const vb_auth_request *req)
{
    const char *service = req->service && req->service[0] ? req->service : "(unnamed service)";
    if (req->retry) {
        vbt_puts(out, "Authentication failed for ");
        vbt_put_safe(out, service);
        vbt_puts(out, "; try again.\n");
    }
    vbt_puts(out, "Login for ");
    vbt_put_safe(out, service);
    if (req->hops && req->nhops > 0) {
        int first = 1;
        for (size_t i = 0; i < req->nhops; i++) {
            if (!req->hops[i])
                continue;
            vbt_puts(out, first ? " via " : " \xe2\x86\x92 ");   /* U+2192 → */
            vbt_put_safe(out, req->hops[i]);
            first = 0;
        }
    }
    vbt_puts(out, "\n");
    /* which part of that the broker checked itself (a broker from before
     * nverified says nothing: no line) */
    if (req->nverified > 0 && req->nverified <= req->nhops && req->hops[req->nverified - 1]) {
        vbt_puts(out, "  (verified by the broker: ");
        vbt_put_safe(out, req->hops[req->nverified - 1]);
        if (req->nverified < req->nhops || req->kind)
            vbt_puts(out, "; everything after it is as reported by that host");
        vbt_puts(out, ")\n");
    }
}

static int vbt_callback(const vb_auth_request *req, vb_credential *creds,
                        unsigned int ncreds, void *cbdata)
{
    (void)cbdata;
    if (!req || (!creds && ncreds > 0))
        return -1;

    const int in = STDIN_FILENO;
    int in_is_tty = isatty(in);
    int out = STDERR_FILENO;
    int close_out = 0;
    if (in_is_tty && !isatty(STDERR_FILENO)) {
        int tty = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (tty >= 0) {
            out = tty;
            close_out = 1;
        }
    }

    /* Refuse up front what a terminal cannot answer, before asking anything. */
    for (unsigned int i = 0; i < ncreds; i++) {
        if (!vbt_is_answerable(creds[i].type)) {
            vbt_puts(out, "vbroker: this login needs an answer the terminal cannot give; "
                          "login cancelled\n");
            if (close_out)
                close(out);
            return -1;
        }
    }

    vbt_print_header(out, req);

    int rc = 0;
    unsigned int done = 0;
    for (; done < ncreds; done++) {
        creds[done].result = NULL;
        creds[done].resultlen = 0;
        if (vbt_ask(in, out, in_is_tty, &creds[done], vbt_is_own_multiline(req)) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc != 0) {
        /* cancelled: take back every answer this call stored */
        for (unsigned int i = 0; i < done; i++) {
            if (creds[i].result) {
                explicit_bzero(creds[i].result, creds[i].resultlen);
                free(creds[i].result);
                creds[i].result = NULL;
                creds[i].resultlen = 0;
            }
        }
    }
    if (close_out)
        close(out);
    return rc;
}

/* libvirt's virConnectCredTypeDefault without EXTERNAL: no USERNAME, so a
 * password login asks for the auth name and the password only. */
static const int vbt_credtypes[] = {
    VB_CRED_AUTHNAME,
    VB_CRED_ECHOPROMPT,
    VB_CRED_REALM,
    VB_CRED_PASSPHRASE,
    VB_CRED_NOECHOPROMPT,
};

static const vb_auth vbt_auth_default = {
    .credtypes = vbt_credtypes,
    .ncredtypes = sizeof vbt_credtypes / sizeof vbt_credtypes[0],
    .cb = vbt_callback,
    .cbdata = NULL,
};

__attribute__((visibility("default")))
const vb_auth *vb_auth_default = &vbt_auth_default;
