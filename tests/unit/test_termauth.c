/* Default terminal callback tests (thinclient/vbroker_term.c): answers read
 * from a pipe on stdin, defaults, end of input cancels, the retry and
 * service lines on stderr, escaping of peer text, no secret ever printed,
 * and — on a pseudo-terminal — echo off for secrets, the terminal restored
 * afterwards and after a signal.
 *
 * It calls the callback through the exported vb_auth_default of libvbroker
 * (the test rule links -lvbroker), so it also checks that the library
 * exports it. An earlier version #included thinclient/vbroker_term.c
 * directly; with the library linked as well that defines vb_auth_default
 * twice, which ASan reports as an ODR violation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../../thinclient/vbroker.h"

/* Far longer than any answer (the callback accepts up to 4095 bytes), and
 * still small enough to sit in a pipe's buffer (64 KiB) unread. */
#define LONG_LINE 60000

/* ---- plumbing: run the callback with stdin/stderr replaced ----------------- */

typedef struct captured {
    int rc;
    char err[8192];     /* what the callback wrote on stderr */
    char rest[256];     /* what was left unread on stdin */
} captured;

static void read_all_fd(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap)
            break;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
}

/* stdin ← a pipe holding `input` (then closed), stderr → a temporary file.
 * Both are restored before returning, so cmocka's own output is untouched. */
static void run_piped(const char *input, const vb_auth_request *req,
                      vb_credential *creds, unsigned int n, captured *out)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    size_t len = strlen(input);
    assert_true(len < 4096);                    /* fits in the pipe buffer */
    assert_int_equal(write(p[1], input, len), (ssize_t)len);
    close(p[1]);

    char path[] = "/tmp/vb_termauth_XXXXXX";
    int errfd = mkstemp(path);
    assert_true(errfd >= 0);
    unlink(path);

    int saved_in = dup(STDIN_FILENO);
    int saved_err = dup(STDERR_FILENO);
    assert_true(saved_in >= 0 && saved_err >= 0);
    dup2(p[0], STDIN_FILENO);
    dup2(errfd, STDERR_FILENO);

    out->rc = vb_auth_default->cb(req, creds, n, vb_auth_default->cbdata);

    read_all_fd(STDIN_FILENO, out->rest, sizeof out->rest);
    dup2(saved_in, STDIN_FILENO);
    dup2(saved_err, STDERR_FILENO);
    close(saved_in);
    close(saved_err);
    close(p[0]);

    lseek(errfd, 0, SEEK_SET);
    read_all_fd(errfd, out->err, sizeof out->err);
    close(errfd);
}

static void free_results(vb_credential *creds, unsigned int n)
{
    for (unsigned int i = 0; i < n; i++) {
        if (creds[i].result) {
            explicit_bzero(creds[i].result, creds[i].resultlen);
            free(creds[i].result);
        }
        creds[i].result = NULL;
        creds[i].resultlen = 0;
    }
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        print_error("expected to find [%s] in:\n%s\n", needle, hay);
    assert_non_null(strstr(hay, needle));
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        print_error("did not expect [%s] in:\n%s\n", needle, hay);
    assert_null(strstr(hay, needle));
}

/* ---- the descriptor ---------------------------------------------------------- */

static void test_descriptor(void **state)
{
    (void)state;
    assert_non_null(vb_auth_default);
    assert_non_null(vb_auth_default->cb);
    assert_int_equal(vb_auth_default->ncredtypes, 5);
    int seen[16] = { 0 };
    for (unsigned int i = 0; i < vb_auth_default->ncredtypes; i++) {
        int t = vb_auth_default->credtypes[i];
        assert_true(t > 0 && t < 16);
        seen[t]++;
    }
    assert_int_equal(seen[VB_CRED_AUTHNAME], 1);
    assert_int_equal(seen[VB_CRED_ECHOPROMPT], 1);
    assert_int_equal(seen[VB_CRED_REALM], 1);
    assert_int_equal(seen[VB_CRED_PASSPHRASE], 1);
    assert_int_equal(seen[VB_CRED_NOECHOPROMPT], 1);
    assert_int_equal(seen[VB_CRED_USERNAME], 0);    /* as libvirt's default */
}

/* ---- pipes ------------------------------------------------------------------- */

static void test_name_and_password(void **state)
{
    (void)state;
    vb_auth_request req = { .service = "vbhostd on host1", .hops = NULL, .nhops = 0, .retry = 0 };
    vb_credential creds[2] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Username" },
        { .type = VB_CRED_PASSPHRASE, .prompt = "Password for alice:" },
    };
    captured c;
    run_piped("alice\nsecret\nleft over\n", &req, creds, 2, &c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(creds[0].result, "alice");
    assert_int_equal(creds[0].resultlen, 5);
    assert_string_equal(creds[1].result, "secret");
    assert_int_equal(creds[1].resultlen, 6);
    /* one line for the service, then the prompts; no doubled colon */
    assert_contains(c.err, "Login for vbhostd on host1\n");
    assert_contains(c.err, "Username: ");
    assert_contains(c.err, "Password for alice: ");
    assert_lacks(c.err, "alice::");
    assert_lacks(c.err, "secret");
    assert_lacks(c.err, "Authentication failed");
    /* exactly one service line per request */
    assert_ptr_equal(strstr(c.err, "Login for"), strstr(c.err, "Login for vbhostd"));
    assert_null(strstr(strstr(c.err, "Login for") + 1, "Login for"));
    /* nothing past the last answer was consumed */
    assert_string_equal(c.rest, "left over\n");
    free_results(creds, 2);
}

static void test_defaults(void **state)
{
    (void)state;
    vb_auth_request req = { .service = "xenapi://xen1/" };
    vb_credential creds[4] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Username", .defresult = "bob" },
        { .type = VB_CRED_REALM, .prompt = "Realm", .defresult = "EXAMPLE.ORG" },
        { .type = VB_CRED_ECHOPROMPT, .prompt = "Site" },             /* no default */
        { .type = VB_CRED_PASSPHRASE, .prompt = "Password", .defresult = "hidden-default" },
    };
    captured c;
    run_piped("\nOTHER.ORG\n\n\n", &req, creds, 4, &c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(creds[0].result, "bob");          /* empty line → default */
    assert_int_equal(creds[0].resultlen, 3);
    assert_string_equal(creds[1].result, "OTHER.ORG");    /* typed value wins */
    assert_non_null(creds[2].result);                     /* empty, no default → "" */
    assert_string_equal(creds[2].result, "");
    assert_int_equal(creds[2].resultlen, 0);
    assert_string_equal(creds[3].result, "hidden-default");
    /* an echoed item shows its default, a secret one never does */
    assert_contains(c.err, "Username [bob]: ");
    assert_contains(c.err, "Realm [EXAMPLE.ORG]: ");
    assert_contains(c.err, "Password [default]: ");
    assert_lacks(c.err, "hidden-default");
    free_results(creds, 4);
}

static void test_eof_cancels(void **state)
{
    (void)state;
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[2] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Username" },
        { .type = VB_CRED_PASSPHRASE, .prompt = "Password" },
    };
    captured c;
    run_piped("alice\n", &req, creds, 2, &c);
    assert_int_equal(c.rc, -1);
    /* the answer already given is taken back, not left for the caller */
    assert_null(creds[0].result);
    assert_int_equal(creds[0].resultlen, 0);
    assert_null(creds[1].result);

    run_piped("", &req, creds, 2, &c);                    /* nothing at all */
    assert_int_equal(c.rc, -1);
    assert_null(creds[0].result);

    /* an empty input never takes a default: EOF is not an empty line */
    vb_credential d[1] = { { .type = VB_CRED_AUTHNAME, .prompt = "Username", .defresult = "bob" } };
    run_piped("", &req, d, 1, &c);
    assert_int_equal(c.rc, -1);
    assert_null(d[0].result);
}

static void test_last_line_without_newline_and_crlf(void **state)
{
    (void)state;
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[2] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Username" },
        { .type = VB_CRED_NOECHOPROMPT, .prompt = "Code" },
    };
    captured c;
    run_piped("alice\r\n123456", &req, creds, 2, &c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(creds[0].result, "alice");
    assert_int_equal(creds[0].resultlen, 5);
    assert_string_equal(creds[1].result, "123456");
    assert_lacks(c.err, "123456");
    free_results(creds, 2);
}

static void test_retry_and_hops(void **state)
{
    (void)state;
    const char *hops[] = { "vb+ssh://alice@h1/", "vbhostd on h1" };
    vb_auth_request req = { .service = "xenapi://10.0.0.5/", .hops = hops, .nhops = 2, .retry = 1 };
    vb_credential creds[1] = { { .type = VB_CRED_PASSPHRASE, .prompt = "Password" } };
    captured c;
    run_piped("pw\n", &req, creds, 1, &c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(creds[0].result, "pw");
    /* the retry line comes first, then the service with its hops */
    const char *expect =
        "Authentication failed for xenapi://10.0.0.5/; try again.\n"
        "Login for xenapi://10.0.0.5/ via vb+ssh://alice@h1/ \xe2\x86\x92 vbhostd on h1\n";
    assert_int_equal(strncmp(c.err, expect, strlen(expect)), 0);
    free_results(creds, 1);

    req.retry = 0;
    run_piped("pw\n", &req, creds, 1, &c);
    assert_int_equal(c.rc, 0);
    assert_lacks(c.err, "Authentication failed");
    free_results(creds, 1);
}

static void test_peer_text_is_escaped(void **state)
{
    (void)state;
    /* a hostile server names itself with terminal escapes */
    vb_auth_request req = { .service = "evil\x1b]0;pwned\x07host\xc2\x9b" "2J" };
    vb_credential creds[1] = {
        { .type = VB_CRED_ECHOPROMPT, .prompt = "Say\x1b[2J", .challenge = "line1\rline2",
          .defresult = "d\x1b" },
    };
    captured c;
    run_piped("x\n", &req, creds, 1, &c);
    assert_int_equal(c.rc, 0);
    assert_null(strchr(c.err, '\x1b'));
    assert_null(strchr(c.err, '\x07'));
    assert_null(strchr(c.err, '\r'));
    assert_null(strstr(c.err, "\xc2\x9b"));
    assert_contains(c.err, "evil\\x1b]0;pwned\\x07host\\x9b2J");
    assert_contains(c.err, "line1\\x0dline2\n");
    assert_contains(c.err, "Say\\x1b[2J [d\\x1b]: ");
    free_results(creds, 1);
}

/* bidi overrides and line separators from a hop are shown escaped, and the
 * header says which hop the broker verified (issue 13.5) */
static void test_bidi_escaped_and_verified_hop_named(void **state)
{
    (void)state;
    const char *hops[] = { "vbhostd on h1 (server ab12, sasl)", "vbhostd on \xe2\x80\xae" "evil" };
    vb_auth_request req = { .service = "xenapi://x\xe2\x80\xa8Login for bank/", .hops = hops,
                            .nhops = 2, .kind = "xenapi", .nverified = 1 };
    vb_credential creds[1] = { { .type = VB_CRED_PASSPHRASE, .prompt = "Pass\xe2\x81\xa6word" } };
    captured c;
    run_piped("pw\n", &req, creds, 1, &c);
    assert_int_equal(c.rc, 0);
    assert_null(strstr(c.err, "\xe2\x80\xae"));
    assert_null(strstr(c.err, "\xe2\x80\xa8"));
    assert_null(strstr(c.err, "\xe2\x81\xa6"));
    assert_contains(c.err, "xenapi://x\\u2028Login for bank/");
    assert_contains(c.err, "vbhostd on \\u202eevil");
    assert_contains(c.err, "Pass\\u2066word");
    assert_contains(c.err, "(verified by the broker: vbhostd on h1 (server ab12, sasl); "
                           "everything after it is as reported by that host)\n");
    free_results(creds, 1);
}

/* The broker's own SSH host key question prints over several lines, as ssh
 * prints it, with every other control still escaped; a relayed question or
 * another kind keeps its line breaks escaped, so a host's text cannot start
 * a line of its own (issue 15.1). */
static void test_own_hostkey_question_on_lines(void **state)
{
    (void)state;
    static const char prompt[] =
        "The authenticity of host '[h\x1b[2J]:2222' can't be established.\n"
        "ED25519 key fingerprint is SHA256:abc.\n"
        "Are you sure you want to continue connecting (yes/no)?";
    vb_auth_request req = { .service = "ssh host key of [h]:2222", .kind = "ssh-hostkey" };
    vb_credential creds[1] = {
        { .type = VB_CRED_ECHOPROMPT, .prompt = prompt, .challenge = "ssh-ed25519\nSHA256:abc",
          .defresult = "no" },
    };
    captured c;
    run_piped("yes\n", &req, creds, 1, &c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(creds[0].result, "yes");
    assert_contains(c.err, "The authenticity of host '[h\\x1b[2J]:2222' can't be established.\n"
                           "ED25519 key fingerprint is SHA256:abc.\n"
                           "Are you sure you want to continue connecting (yes/no)? [no]: ");
    assert_null(strchr(c.err, '\x1b'));
    assert_contains(c.err, "ssh-ed25519\\x0aSHA256:abc\n");     /* the challenge: one line */
    free_results(creds, 1);

    /* the same text relayed by a hop, or from sshd (keyboard-interactive) */
    static const char fake[] = "Continue (yes/no)?\nPassword accepted";
    const char *hops[] = { "vbhostd on d" };
    vb_auth_request relayed = { .service = "ssh host key of [h]:22", .kind = "ssh-hostkey",
                                .hops = hops, .nhops = 1, .nverified = 1 };
    vb_auth_request kbd = { .service = "ssh://u@h:22", .kind = "ssh-password" };
    const vb_auth_request *others[] = { &relayed, &kbd };
    for (size_t i = 0; i < 2; i++) {
        vb_credential one[1] = { { .type = VB_CRED_ECHOPROMPT, .prompt = fake } };
        run_piped("no\n", others[i], one, 1, &c);
        assert_int_equal(c.rc, 0);
        assert_contains(c.err, "Continue (yes/no)?\\x0aPassword accepted: ");
        assert_lacks(c.err, "\nPassword accepted");
        free_results(one, 1);
    }
}

/* An empty secret is not an answer: asked again (not sent, so no host
 * counts a failed try), at most three times (issue 15.5). */
static void test_empty_secret_asked_again(void **state)
{
    (void)state;
    vb_auth_request req = { .service = "ssh://alice@h:22" };
    vb_credential creds[2] = {
        { .type = VB_CRED_ECHOPROMPT, .prompt = "Site" },            /* may be empty */
        { .type = VB_CRED_PASSPHRASE, .prompt = "alice@h's password" },
    };
    captured c;
    run_piped("\n\nsecret\nleft\n", &req, creds, 2, &c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(creds[0].result, "");
    assert_string_equal(creds[1].result, "secret");
    assert_contains(c.err, "not sent");
    assert_string_equal(c.rest, "left\n");
    /* asked twice: once, and again after the empty line */
    const char *first = strstr(c.err, "alice@h's password: ");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "alice@h's password: "));
    free_results(creds, 2);

    /* three empty answers: cancelled, nothing kept, the rest left unread */
    vb_credential one[1] = { { .type = VB_CRED_NOECHOPROMPT, .prompt = "Password" } };
    run_piped("\n\n\nnext\n", &req, one, 1, &c);
    assert_int_equal(c.rc, -1);
    assert_null(one[0].result);
    assert_contains(c.err, "login cancelled");
    assert_string_equal(c.rest, "next\n");
}

/* SASL labels every item with a challenge ("Authentication Name"); only a
 * prompt's challenge is the question itself and worth showing. */
static void test_challenge_shown_only_for_prompts(void **state)
{
    (void)state;
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[3] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Please enter your authentication name",
          .challenge = "Authentication Name" },
        { .type = VB_CRED_PASSPHRASE, .prompt = "Please enter your password",
          .challenge = "Password" },
        { .type = VB_CRED_NOECHOPROMPT, .prompt = "Response", .challenge = "otp-md5 99 seed42" },
    };
    captured c;
    run_piped("alice\nsecret\nANSWER\n", &req, creds, 3, &c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(creds[2].result, "ANSWER");
    assert_lacks(c.err, "Authentication Name");
    assert_contains(c.err, "Please enter your authentication name: ");
    assert_contains(c.err, "otp-md5 99 seed42\nResponse: ");
    assert_lacks(c.err, "ANSWER");
    free_results(creds, 3);
}

static void test_unanswerable_type_cancels_before_reading(void **state)
{
    (void)state;
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[2] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Username" },
        { .type = VB_CRED_CNONCE, .prompt = "cnonce" },
    };
    captured c;
    run_piped("alice\n", &req, creds, 2, &c);
    assert_int_equal(c.rc, -1);
    assert_null(creds[0].result);
    assert_string_equal(c.rest, "alice\n");                /* nothing was read */
    assert_contains(c.err, "cannot give");
}

static void test_too_long_cancels(void **state)
{
    (void)state;
    static char big[LONG_LINE];
    memset(big, 'a', sizeof big - 2);
    big[sizeof big - 2] = '\n';
    big[sizeof big - 1] = '\0';
    /* run_piped takes short inputs only, so feed this one by hand */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], big, strlen(big)), (ssize_t)strlen(big));
    close(p[1]);
    int devnull = open("/dev/null", O_WRONLY);
    int saved_in = dup(0), saved_err = dup(2);
    dup2(p[0], 0);
    dup2(devnull, 2);
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[1] = { { .type = VB_CRED_PASSPHRASE, .prompt = "Password" } };
    int rc = vb_auth_default->cb(&req, creds, 1, vb_auth_default->cbdata);
    dup2(saved_in, 0);
    dup2(saved_err, 2);
    close(saved_in);
    close(saved_err);
    close(devnull);
    close(p[0]);
    assert_int_equal(rc, -1);
    assert_null(creds[0].result);
}

static void test_zero_items(void **state)
{
    (void)state;
    vb_auth_request req = { .service = "svc" };
    captured c;
    run_piped("unused\n", &req, NULL, 0, &c);
    assert_int_equal(c.rc, 0);
    assert_string_equal(c.rest, "unused\n");
}

/* ---- a pseudo-terminal ------------------------------------------------------
 * stdin and stderr are the pty's slave; a helper thread plays the person on
 * the master side: it waits for each prompt and types the answer. */

typedef struct person {
    int master;
    pthread_t victim;               /* the thread blocked in the callback */
    int interrupt_at_password;      /* press ^C (SIGINT) instead of typing the password */
    int stop_at_password;           /* press ^Z (SIGTSTP) first, type it when asked again */
    int empty_at_password;          /* press Enter first, type it when asked again */
    volatile int done;
    char seen[8192];                /* everything the terminal displayed */
    size_t nseen;
} person;

static void *person_main(void *arg)
{
    person *p = arg;
    int typed_name = 0, typed_pw = 0;
    for (;;) {
        struct pollfd pfd = { .fd = p->master, .events = POLLIN };
        int r = poll(&pfd, 1, 100);
        if (r == 0) {
            if (p->done)
                break;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        ssize_t n = read(p->master, p->seen + p->nseen, sizeof p->seen - 1 - p->nseen);
        if (n <= 0)
            break;
        p->nseen += (size_t)n;
        p->seen[p->nseen] = '\0';
        if (!typed_name && strstr(p->seen, "Username: ")) {
            typed_name = 1;
            (void)!write(p->master, "alice\n", 6);
        }
        if (!typed_pw && strstr(p->seen, "Password: ")) {
            typed_pw = 1;
            /* the reader blocks these signals outside its wait, so sending
             * one early cannot be lost */
            if (p->interrupt_at_password)
                pthread_kill(p->victim, SIGINT);
            else if (p->stop_at_password)
                pthread_kill(p->victim, SIGTSTP);
            else if (p->empty_at_password)
                (void)!write(p->master, "\n", 1);
            else
                (void)!write(p->master, "hunter2\n", 8);
        }
        if ((p->stop_at_password || p->empty_at_password) && typed_pw == 1) {
            const char *first = strstr(p->seen, "Password: ");
            if (first && strstr(first + 1, "Password: ")) {
                typed_pw = 2;               /* asked again after the "stop" */
                (void)!write(p->master, "hunter2\n", 8);
            }
        }
    }
    return NULL;
}

static volatile sig_atomic_t int_seen;
static void on_int(int signo)
{
    (void)signo;
    int_seen = 1;
}

static int run_on_pty(person *p, const vb_auth_request *req, vb_credential *creds,
                      unsigned int n, struct termios *after)
{
    int saved_in = dup(0), saved_err = dup(2);
    int slave = open(ptsname(p->master), O_RDWR | O_NOCTTY);
    assert_true(slave >= 0);
    dup2(slave, 0);
    dup2(slave, 2);

    p->victim = pthread_self();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, person_main, p), 0);
    int rc = vb_auth_default->cb(req, creds, n, vb_auth_default->cbdata);
    int got = tcgetattr(slave, after);
    p->done = 1;
    pthread_join(th, NULL);

    dup2(saved_in, 0);
    dup2(saved_err, 2);
    close(saved_in);
    close(saved_err);
    close(slave);
    assert_int_equal(got, 0);
    return rc;
}

static int open_pty(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0)
        return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0 || !ptsname(m)) {
        close(m);
        return -1;
    }
    return m;
}

static void test_tty_hides_secret(void **state)
{
    (void)state;
    int m = open_pty();
    if (m < 0)
        skip();                             /* no /dev/pts here */
    person p;
    memset(&p, 0, sizeof p);
    p.master = m;
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[2] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Username" },
        { .type = VB_CRED_PASSPHRASE, .prompt = "Password" },
    };
    struct termios after;
    int rc = run_on_pty(&p, &req, creds, 2, &after);
    close(m);
    assert_int_equal(rc, 0);
    assert_string_equal(creds[0].result, "alice");
    assert_string_equal(creds[1].result, "hunter2");
    assert_contains(p.seen, "Login for svc");
    assert_contains(p.seen, "alice");                   /* the name was echoed */
    assert_lacks(p.seen, "hunter2");                    /* the password was not */
    assert_true(after.c_lflag & ECHO);                  /* and echo is back on */
    free_results(creds, 2);
}

/* On a terminal too, Enter alone at a password is not an answer: asked
 * again with echo off, and echo is back on afterwards (issue 15.5). */
static void test_tty_empty_password_asked_again(void **state)
{
    (void)state;
    int m = open_pty();
    if (m < 0)
        skip();
    person p;
    memset(&p, 0, sizeof p);
    p.master = m;
    p.empty_at_password = 1;
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[1] = { { .type = VB_CRED_PASSPHRASE, .prompt = "Password" } };
    struct termios after;
    int rc = run_on_pty(&p, &req, creds, 1, &after);
    close(m);
    assert_int_equal(rc, 0);
    assert_string_equal(creds[0].result, "hunter2");
    assert_contains(p.seen, "not sent");
    assert_lacks(p.seen, "hunter2");
    assert_true(after.c_lflag & ECHO);
    free_results(creds, 1);
}

static void test_tty_restored_after_signal(void **state)
{
    (void)state;
    int m = open_pty();
    if (m < 0)
        skip();
    /* The caller has its own SIGINT handler, which returns. While the
     * password is read with echo off, the person presses ^C (the helper
     * thread sends SIGINT to the reading thread): the callback must restore
     * the terminal, hand the signal to the caller's handler, and cancel. */
    struct sigaction sa, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_int;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);

    person p;
    memset(&p, 0, sizeof p);
    p.master = m;
    p.interrupt_at_password = 1;
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[2] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Username" },
        { .type = VB_CRED_PASSPHRASE, .prompt = "Password" },
    };
    struct termios after;
    int_seen = 0;
    int rc = run_on_pty(&p, &req, creds, 2, &after);
    struct sigaction now;
    sigaction(SIGINT, &old_int, &now);
    close(m);
    assert_int_equal(rc, -1);
    assert_true(int_seen);                  /* the caller's handler ran (re-raised) */
    assert_ptr_equal(now.sa_handler, on_int);  /* and is installed again */
    assert_true(after.c_lflag & ECHO);      /* the terminal is usable again */
    assert_null(creds[0].result);           /* the name given is taken back */
    assert_null(creds[1].result);
}

static volatile sig_atomic_t tstp_seen;
static void on_tstp(int signo)
{
    (void)signo;
    tstp_seen = 1;
}

static void test_tty_stop_asks_again(void **state)
{
    (void)state;
    int m = open_pty();
    if (m < 0)
        skip();
    /* ^Z while the password is read: the terminal is restored, the caller's
     * SIGTSTP disposition runs (here a handler that returns, standing in for
     * "stopped, then continued"), and the same item is asked again. */
    struct sigaction sa, old_tstp;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tstp;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTSTP, &sa, &old_tstp);

    person p;
    memset(&p, 0, sizeof p);
    p.master = m;
    p.stop_at_password = 1;
    vb_auth_request req = { .service = "svc" };
    vb_credential creds[2] = {
        { .type = VB_CRED_AUTHNAME, .prompt = "Username" },
        { .type = VB_CRED_PASSPHRASE, .prompt = "Password" },
    };
    struct termios after;
    tstp_seen = 0;
    int rc = run_on_pty(&p, &req, creds, 2, &after);
    sigaction(SIGTSTP, &old_tstp, NULL);
    close(m);
    assert_int_equal(rc, 0);
    assert_true(tstp_seen);
    assert_string_equal(creds[0].result, "alice");
    assert_string_equal(creds[1].result, "hunter2");
    assert_lacks(p.seen, "hunter2");
    assert_true(after.c_lflag & ECHO);
    free_results(creds, 2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_name_and_password),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_eof_cancels),
        cmocka_unit_test(test_last_line_without_newline_and_crlf),
        cmocka_unit_test(test_retry_and_hops),
        cmocka_unit_test(test_peer_text_is_escaped),
        cmocka_unit_test(test_bidi_escaped_and_verified_hop_named),
        cmocka_unit_test(test_own_hostkey_question_on_lines),
        cmocka_unit_test(test_empty_secret_asked_again),
        cmocka_unit_test(test_challenge_shown_only_for_prompts),
        cmocka_unit_test(test_unanswerable_type_cancels_before_reading),
        cmocka_unit_test(test_too_long_cancels),
        cmocka_unit_test(test_zero_items),
        cmocka_unit_test(test_tty_hides_secret),
        cmocka_unit_test(test_tty_empty_password_asked_again),
        cmocka_unit_test(test_tty_restored_after_signal),
        cmocka_unit_test(test_tty_stop_asks_again),
    };
    return cmocka_run_group_tests_name("termauth", tests, NULL, NULL);
}
