/* The broker asks by itself, on a graphical display: Debian's pinentry-gtk2
 * under Xvfb, as a person sees it (issue 21; the scripted pinentry and the
 * terminal are tests/integ/test_pinentry.c).
 *
 * program (no callback, DISPLAY=:N) → libvbroker → vbrokerd --pinentry pinentry-gtk-2
 *                                                 → vbhostd (sasldb, password logins)
 *
 * Xvfb runs on a display number it picks itself (-displayfd), only for the
 * holders of a cookie in an Xauthority file this test writes with xauth; the
 * broker, the program, xdotool and ImageMagick's import share that file as a
 * user's session does. No window manager: xdotool gives the dialog the input
 * focus itself. The screenshot is kept as DIR/pinentry-gtk2.png (VB_TS_KEEP=1
 * keeps DIR; docs/pinentry-gtk2.png is one of them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vb_testsupport.h"
#include "vbroker.h"

#define REALM "LAB.TEST"
#define PASSWORD "gtk-Pinentry-Pw-5"
#define PINENTRY_GTK "/usr/bin/pinentry-gtk-2" /* Debian's pinentry-gtk2 package */
#define XVFB "/usr/bin/Xvfb"
#define XAUTH "/usr/bin/xauth"
#define XDOTOOL "/usr/bin/xdotool"
#define IMPORT "/usr/bin/import" /* ImageMagick */
#define PROMPT_TIMEOUT "60"
#define TOOL_MS 30000
/* the 1024x768 black root with the dialog painted is about 17 KB as PNG; the
 * root alone, or with the dialog's bare background before GTK drew into it,
 * is under 1 KB */
#define SHOT_MIN_BYTES 8000

static char *dir;
static vb_ts_hostd hostd;

static int group_setup(void **state)
{
    (void)state;
    dir = vb_ts_tmpdir("pinentry-gtk");
    vb_ts_note_secret(PASSWORD);
    static const char *const users[] = { "jack:" PASSWORD, NULL };
    unsetenv("DISPLAY"); /* the broker gets none: the dialog goes where the program is */
    unsetenv("WAYLAND_DISPLAY");
    unsetenv("VBROKER_NON_INTERACTIVE");
    if (vb_ts_hostd_sasl_setup(dir, REALM, "scram-sha-256", users, NULL) < 0 ||
        vb_ts_hostd_start_sasl(&hostd, dir, "h", 0, REALM, "auth_unix = [\"sasl\"]\n") < 0)
        return -1;
    /* this process has no terminal: only the display can be asked on */
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, 0) < 0)
        return -1;
    close(null);
    return 0;
}

static char *uri_for(const char *user)
{
    static char buf[400];
    snprintf(buf, sizeof buf, "test+unix://%s@/default?socket=%s", user, hostd.sock);
    return buf;
}

/* A tool that must finish; its output (malloc'd, may be NULL) in *out. */
static int tool(char *argv[], const char *stdin_text, char **out)
{
    return vb_ts_run(argv, NULL, stdin_text, out, vb_ts_scaled_ms(TOOL_MS));
}

static int tool_ok(char *argv[], const char *stdin_text)
{
    char *out = NULL;
    int rc = tool(argv, stdin_text, &out);
    if (rc != 0)
        fprintf(stderr, "%s %s: exit %d: %s\n", argv[0], argv[1], rc, out ? out : "");
    free(out);
    return rc;
}

/* ---- the X server ---------------------------------------------------------- */

typedef struct xserver {
    char auth[300], log[300];
    char cookie[33];  /* MIT-MAGIC-COOKIE-1, hex */
    pid_t pid;
    int display;      /* -1 until Xvfb said which */
} xserver;

/* Xvfb writes the display number it took, alone on a line, once it accepts
 * connections (-displayfd 1: stdout, which shares the log with its stderr). */
static int xvfb_ready(void *arg)
{
    xserver *x = arg;
    char *text = vb_ts_read_file(x->log, NULL);
    for (char *line = text; line && *line;) {
        char *end = strchr(line, '\n');
        if (!end)
            break; /* not finished yet */
        size_t digits = 0;
        while (line + digits < end && isdigit((unsigned char)line[digits]))
            digits++;
        if (digits > 0 && line + digits == end)
            x->display = atoi(line);
        line = end + 1;
    }
    free(text);
    return x->display >= 0;
}

/* "add DISPLAY . COOKIE" through xauth's stdin: the cookie never shows in a
 * command line. */
static int xauth_add(const xserver *x, int display)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "add :%d . %s\n", display, x->cookie);
    char *argv[] = { XAUTH, "-q", "-f", (char *)x->auth, "source", "-", NULL };
    return tool_ok(argv, cmd);
}

static int xvfb_start(xserver *x)
{
    snprintf(x->auth, sizeof x->auth, "%s/Xauthority", dir);
    snprintf(x->log, sizeof x->log, "%s/xvfb.log", dir);
    x->display = -1;
    unsigned char raw[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, raw, sizeof raw);
    if (fd >= 0)
        close(fd);
    if (got != (ssize_t)sizeof raw)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(x->cookie + 2 * i, 3, "%02x", raw[i]);
    /* the server loads every cookie of the file whatever its display number;
     * the clients look theirs up by number, added once Xvfb told it */
    if (vb_ts_write_file(x->auth, "", 0600) < 0 || xauth_add(x, 0) != 0)
        return -1;
    char *argv[] = { XVFB, "-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp",
                     "-auth", x->auth, NULL };
    x->pid = vb_ts_spawn(argv, NULL, x->log);
    if (x->pid <= 0 || vb_ts_wait_until(xvfb_ready, x, vb_ts_scaled_ms(20000)) != 0)
        return -1;
    return x->display == 0 ? 0 : xauth_add(x, x->display);
}

/* ---- the dialog ------------------------------------------------------------ */

/* The program without a callback: the test binary again, on the display only
 * (its stdin is /dev/null); it opens once and writes what happened. */
static int open_without_callback(const char *uri, const char *result)
{
    vb_error err;
    vb_conn *c = vb_open_auth(uri, NULL, 0, &err);
    char text[700];
    snprintf(text, sizeof text, "%s\n", c ? "opened" : err.message);
    vb_close(c);
    return vb_ts_write_file(result, text, 0600) == 0 && c ? 0 : 1;
}

/* The window id of the broker's dialog once it is mapped (xdotool polls). */
static long wait_for_dialog(void)
{
    char *argv[] = { XDOTOOL, "search", "--sync", "--onlyvisible", "--name",
                     "^vbroker: .* needs credentials$", NULL };
    char *out = NULL;
    long id = tool(argv, NULL, &out) == 0 && out ? strtol(out, NULL, 10) : -1;
    free(out);
    return id;
}

static char *window_name(long id)
{
    char win[32];
    snprintf(win, sizeof win, "%ld", id);
    char *argv[] = { XDOTOOL, "getwindowname", win, NULL };
    char *out = NULL;
    if (tool(argv, NULL, &out) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* GTK draws the dialog some time after it is mapped: screenshots (to the
 * path arg) until one shows more than the bare window. */
static int shot_shows_dialog(void *arg)
{
    char *argv[] = { IMPORT, "-window", "root", arg, NULL };
    return tool_ok(argv, NULL) == 0 && vb_ts_file_size(arg) > SHOT_MIN_BYTES;
}

static int is_png(const char *path)
{
    size_t len = 0;
    char *data = vb_ts_read_file(path, &len);
    int ok = data && len > 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0;
    free(data);
    return ok;
}

/* A program without a callback on an X display: the broker runs Debian's
 * pinentry-gtk2 there; the dialog's title names the program and its pid;
 * the password typed into it opens the connection, and the next open (the
 * broker logs in again: --upstream-idle 0) asks nothing. */
static void test_real_pinentry_gtk2_under_xvfb(void **state)
{
    (void)state;
    if (access(PINENTRY_GTK, X_OK) != 0 || access(XVFB, X_OK) != 0 ||
        access(XAUTH, X_OK) != 0 || access(XDOTOOL, X_OK) != 0 || access(IMPORT, X_OK) != 0)
        skip(); /* mk/deps.sh test installs them */
    xserver x;
    assert_int_equal(xvfb_start(&x), 0);
    setenv("XAUTHORITY", x.auth, 1); /* the user's session: broker, program, tools */

    vb_ts_broker b;
    const char *const extra[] = { "--prompt-timeout", PROMPT_TIMEOUT, "--upstream-idle", "0",
                                  "--pinentry", PINENTRY_GTK, NULL };
    assert_int_equal(vb_ts_broker_start(&b, dir, "broker", extra), 0);
    vb_ts_broker_use(&b);

    char display[16], env_display[32], result[300];
    snprintf(display, sizeof display, ":%d", x.display);
    snprintf(env_display, sizeof env_display, "DISPLAY=%s", display);
    setenv("DISPLAY", display, 1); /* for xdotool and import, and the second open */
    snprintf(result, sizeof result, "%s/program.out", dir);
    char *prog_argv[] = { VB_BUILD_DIR "/tests/test_pinentry_gtk", "--open-without-callback",
                          uri_for("jack"), result, NULL };
    char *prog_env[] = { env_display, NULL };
    pid_t prog = vb_ts_spawn(prog_argv, prog_env, NULL);
    assert_true(prog > 0);

    long win = wait_for_dialog();
    if (win <= 0)
        fail_msg("no pinentry dialog on %s; broker log %s", display, b.log);
    char *name = window_name(win);
    assert_non_null(name);
    char who[100];
    snprintf(who, sizeof who, "vbroker: test_pinentry_g (pid %d) needs credentials", (int)prog);
    if (!strstr(name, who))
        fail_msg("the dialog's title is '%s', not '%s'", name, who);
    free(name);

    char png[300];
    snprintf(png, sizeof png, "%s/pinentry-gtk2.png", dir);
    assert_int_equal(vb_ts_wait_until(shot_shows_dialog, png, vb_ts_scaled_ms(20000)), 0);
    assert_true(is_png(png));

    /* No window manager gives it the focus: xdotool does, then types into
     * it (XTEST, as a keyboard would). The script comes on stdin: the
     * password is in no command line. */
    char script[200];
    snprintf(script, sizeof script, "windowfocus --sync %ld\ntype --delay 20 %s\nkey Return\n", win,
             PASSWORD);
    char *type[] = { XDOTOOL, "-", NULL };
    assert_int_equal(tool_ok(type, script), 0);

    int status = -1;
    assert_int_equal(vb_ts_wait_pid_exit(prog, vb_ts_scaled_ms(TOOL_MS), &status), 0);
    char *text = vb_ts_read_file(result, NULL);
    assert_non_null(text);
    if (strncmp(text, "opened", 6) != 0)
        fail_msg("the program without a callback: %s", text);
    free(text);
    assert_int_equal(status, 0);
    assert_int_equal(vb_ts_count_in_file(b.log, "through the pinentry"), 1);

    /* the next open, from this process on the same display: no dialog */
    vb_error err;
    memset(&err, 0, sizeof err);
    vb_conn *c = vb_open_auth(uri_for("jack"), NULL, 0, &err);
    if (!c)
        fail_msg("the second open: %s", err.message);
    vb_close(c);
    assert_int_equal(vb_ts_count_in_file(b.log, "through the pinentry"), 1);
    /* it did log in again, with the answer the dialog gave */
    assert_int_equal(vb_ts_count_in_file(b.log, "from the secret cache"), 1);
    assert_int_equal(vb_ts_count_in_file(hostd.log, "authenticated as 'jack@"), 2);

    assert_int_equal(vb_ts_check_exit("vbrokerd", vb_ts_stop(b.pid, 5000), b.log), 0);
    int xstatus = vb_ts_stop(x.pid, 5000);
    assert_true(xstatus == 0 || xstatus == 143);
    unsetenv("DISPLAY");
    unsetenv("XAUTHORITY");
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--open-without-callback") == 0)
        return open_without_callback(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_pinentry_gtk2_under_xvfb),
    };
    return cmocka_run_group_tests_name("pinentry_gtk", tests, group_setup, vb_ts_group_teardown);
}
