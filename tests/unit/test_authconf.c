/* auth.conf tests: a person stores logins once and is not prompted; the
 * right group answers (host beats default, libvirt's name works); prompts,
 * retries and gaps still reach the person; a broken or shared file is
 * refused with file:line and without the password in the message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_authconf.h"

#define SECRET "s3cret-PW-42"

/* A fresh file under /tmp with exactly these bytes and this mode. */
static char *write_file(const char *text, size_t len, mode_t mode)
{
    char *path = strdup("/tmp/vb_authconf_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    return path;
}

static vb_authconf *load_ok(const char *text, mode_t mode)
{
    char *path = write_file(text, strlen(text), mode);
    vb_authconf *conf = NULL;
    vb_error err;
    vb_error_clear(&err);
    int rc = vb_authconf_load(path, &conf, &err);
    if (rc != 0)
        print_error("load failed: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_non_null(conf);
    unlink(path);
    free(path);
    return conf;
}

/* Loading fails with CONFIG/CONFIG, the message names path:line (line > 0)
 * and holds fragment, and no message ever shows the password. */
static void load_fails_len(const char *text, size_t len, mode_t mode, int line,
                           const char *fragment)
{
    char *path = write_file(text, len, mode);
    vb_authconf *conf = (vb_authconf *)&conf; /* must be reset to NULL */
    vb_error err;
    vb_error_clear(&err);
    assert_int_equal(vb_authconf_load(path, &conf, &err), -1);
    assert_null(conf);
    assert_int_equal(err.code, VB_ERR_CONFIG);
    assert_int_equal(err.domain, VB_DOM_CONFIG);
    char where[256];
    if (line > 0)
        snprintf(where, sizeof where, "%s:%d: ", path, line);
    else
        snprintf(where, sizeof where, "%s", path);
    if (!strstr(err.message, where) || !strstr(err.message, fragment))
        print_error("want '%s' and '%s' in: %s\n", where, fragment, err.message);
    assert_non_null(strstr(err.message, where));
    assert_non_null(strstr(err.message, fragment));
    assert_null(strstr(err.message, SECRET));
    assert_null(strstr(err.message, "s3cret"));
    unlink(path);
    free(path);
}

static void load_fails(const char *text, int line, const char *fragment)
{
    load_fails_len(text, strlen(text), 0600, line, fragment);
}

static void add(vb_cred_request *req, int type)
{
    assert_int_equal(vb_cred_request_add(req, type, "prompt", NULL, NULL), 0);
}

/* fill(service, host) for one item type; returns its result (or NULL) in buf. */
static const char *answer(const vb_authconf *conf, const char *service, const char *host,
                          int type, char *buf, size_t size)
{
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add(&req, type);
    vb_error err;
    int rc = vb_authconf_fill(conf, service, host, &req, &err);
    assert_true(rc == 0 || rc == 1);
    const char *out = NULL;
    if (req.items[0].result) {
        assert_int_equal(rc, 1);
        snprintf(buf, size, "%s", req.items[0].result);
        out = buf;
    } else {
        assert_int_equal(rc, 0);
    }
    vb_cred_request_clear(&req);
    return out;
}

static const char example[] =
    "# stored logins\n"
    "[credentials-test]\n"
    "authname=fred\n"
    "password=" SECRET "\n"
    "\n"
    "[credentials-prod]\n"
    "authname=alice\n"
    "username=admin\n"
    "password=prod-" SECRET "\n"
    "realm=EXAMPLE.COM\n"
    "\n"
    "[auth-vbhostd-example.com]\n"
    "credentials=prod\n"
    "\n"
    "[auth-vbhostd-default]\n"
    "credentials=test\n";

static void test_host_beats_default(void **state)
{
    (void)state;
    vb_authconf *conf = load_ok(example, 0600);
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add(&req, VB_CRED_AUTHNAME);
    add(&req, VB_CRED_PASSPHRASE);
    vb_error err;
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "example.com", &req, &err), 1);
    assert_string_equal(req.items[0].result, "alice");
    assert_string_equal(req.items[1].result, "prod-" SECRET);
    assert_int_equal(req.items[1].resultlen, strlen("prod-" SECRET));
    vb_cred_request_clear(&req);
    vb_authconf_free(conf);
}

static void test_default_for_other_hosts(void **state)
{
    (void)state;
    vb_authconf *conf = load_ok(example, 0600);
    char buf[64];
    const char *a = answer(conf, "vbhostd", "other.example.org", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "fred");
    /* HOST is compared as written: another spelling is another host. */
    a = answer(conf, "vbhostd", "EXAMPLE.COM", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "fred");
    /* No host means localhost, which has no group here: the default. */
    a = answer(conf, "vbhostd", NULL, VB_CRED_PASSPHRASE, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, SECRET);
    /* Groups are per service: nothing here is for ssh or xenapi. */
    assert_null(answer(conf, "ssh", "example.com", VB_CRED_AUTHNAME, buf, sizeof buf));
    assert_null(answer(conf, "xenapi", "other", VB_CRED_PASSPHRASE, buf, sizeof buf));
    vb_authconf_free(conf);

    /* A localhost group answers a request without a host. */
    conf = load_ok("[credentials-l]\nauthname=local\n"
                   "[auth-ssh-localhost]\ncredentials=l\n",
                   0600);
    a = answer(conf, "ssh", NULL, VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "local");
    a = answer(conf, "ssh", "", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "local");
    assert_null(answer(conf, "ssh", "h", VB_CRED_AUTHNAME, buf, sizeof buf));
    vb_authconf_free(conf);
}

static void test_libvirt_alias(void **state)
{
    (void)state;
    char buf[64];
    /* A libvirt user's file works unchanged for vbhostd, and only for it. */
    vb_authconf *conf = load_ok("[credentials-test]\nauthname=fred\npassword=" SECRET "\n"
                                "[auth-libvirt-default]\ncredentials=test\n",
                                0600);
    const char *a = answer(conf, "vbhostd", "anyhost", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "fred");
    a = answer(conf, "libvirt", "anyhost", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "fred");
    assert_null(answer(conf, "ssh", "anyhost", VB_CRED_AUTHNAME, buf, sizeof buf));
    vb_authconf_free(conf);

    /* Host-specific beats default under either name; at the same step the
     * vbhostd name beats libvirt. */
    conf = load_ok("[credentials-d]\nauthname=d\n"
                   "[credentials-l1]\nauthname=l1\n"
                   "[credentials-v2]\nauthname=v2\n"
                   "[credentials-l2]\nauthname=l2\n"
                   "[auth-libvirt-h2]\ncredentials=l2\n"
                   "[auth-vbhostd-default]\ncredentials=d\n"
                   "[auth-libvirt-h1]\ncredentials=l1\n"
                   "[auth-vbhostd-h2]\ncredentials=v2\n",
                   0600);
    a = answer(conf, "vbhostd", "h1", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "l1");
    a = answer(conf, "vbhostd", "h2", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "v2");
    a = answer(conf, "vbhostd", "h3", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "d");
    vb_authconf_free(conf);
}

static void test_all_items_filled(void **state)
{
    (void)state;
    vb_authconf *conf = load_ok(example, 0600);
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add(&req, VB_CRED_USERNAME);
    add(&req, VB_CRED_AUTHNAME);
    add(&req, VB_CRED_PASSPHRASE);
    add(&req, VB_CRED_REALM);
    vb_error err;
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "example.com", &req, &err), 1);
    assert_string_equal(req.items[0].result, "admin");
    assert_string_equal(req.items[1].result, "alice");
    assert_string_equal(req.items[2].result, "prod-" SECRET);
    assert_string_equal(req.items[3].result, "EXAMPLE.COM");
    vb_cred_request_clear(&req);
    vb_authconf_free(conf);
}

static void test_gaps_leave_a_prompt(void **state)
{
    (void)state;
    vb_authconf *conf = load_ok(example, 0600);
    vb_error err;
    /* A prompt item is for the person: 0, but what the file knows stays. */
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add(&req, VB_CRED_AUTHNAME);
    add(&req, VB_CRED_NOECHOPROMPT);
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "example.com", &req, &err), 0);
    assert_string_equal(req.items[0].result, "alice");
    assert_null(req.items[1].result);
    vb_cred_request_clear(&req);

    add(&req, VB_CRED_ECHOPROMPT);
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "example.com", &req, &err), 0);
    assert_null(req.items[0].result);
    vb_cred_request_clear(&req);

    /* The default group has no realm. */
    add(&req, VB_CRED_AUTHNAME);
    add(&req, VB_CRED_REALM);
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "elsewhere", &req, &err), 0);
    assert_string_equal(req.items[0].result, "fred");
    assert_null(req.items[1].result);
    vb_cred_request_clear(&req);

    /* An empty request is not "all answered". */
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "example.com", &req, &err), 0);
    vb_authconf_free(conf);
}

static void test_retry_fills_nothing(void **state)
{
    (void)state;
    vb_authconf *conf = load_ok(example, 0600);
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add(&req, VB_CRED_AUTHNAME);
    add(&req, VB_CRED_PASSPHRASE);
    req.retry = 1;
    vb_error err;
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "example.com", &req, &err), 0);
    assert_null(req.items[0].result);
    assert_null(req.items[1].result);
    /* The same request without the flag is answered: the flag did it. */
    req.retry = 0;
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "example.com", &req, &err), 1);
    vb_cred_request_clear(&req);
    vb_authconf_free(conf);
}

static void test_missing_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/vb_authconf_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/auth.conf", dir);
    vb_authconf *conf = (vb_authconf *)&conf;
    vb_error err;
    vb_error_clear(&err);
    assert_int_equal(vb_authconf_load(path, &conf, &err), 0);
    assert_null(conf);
    assert_int_equal(err.code, VB_ERR_OK);

    /* No file answers nothing, and freeing nothing is fine. */
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add(&req, VB_CRED_AUTHNAME);
    assert_int_equal(vb_authconf_fill(NULL, "vbhostd", "h", &req, &err), 0);
    assert_null(req.items[0].result);
    vb_authconf_free(NULL);

    /* A directory is not a missing file. */
    assert_int_equal(vb_authconf_load(dir, &conf, &err), -1);
    assert_null(conf);
    assert_int_equal(err.code, VB_ERR_CONFIG);
    assert_non_null(strstr(err.message, "not a regular file"));
    assert_int_equal(rmdir(dir), 0);

    /* An empty file loads and answers nothing. */
    conf = load_ok("", 0644);
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "h", &req, &err), 0);
    assert_null(req.items[0].result);
    vb_authconf_free(conf);
    vb_cred_request_clear(&req);
}

static void test_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int line;
        const char *fragment;
    } cases[] = {
        /* a password pasted on a line of its own */
        { "[credentials-test]\nauthname=fred\n" SECRET "\n", 3, "expected key=value" },
        { "# c\n\npassword=" SECRET "\n[credentials-test]\n", 3, "before any group" },
        { "[credentials-test]\nauthname=fred\npasswd=" SECRET "\n", 3,
          "unknown key in [credentials-test]" },
        { "[credentials-test]\npassword=" SECRET "\n[auth-vbhostd-default]\ncredentials=tset\n",
          4, "credentials=tset names no group [credentials-tset]" },
        { "[credentials-test]\npassword=" SECRET "\n[auth-ssh-default]\ncredentials=test\n"
          "[credentials-test]\nauthname=x\n",
          5, "duplicate group [credentials-test] (first on line 1)" },
        { "[credentials-test]\npassword=" SECRET "\n[auth-ssh-h]\n", 3,
          "[auth-ssh-h] has no credentials=NAME" },
        { "[credentials-test]\npassword=x\npassword=" SECRET "\n", 3,
          "'password' given twice in [credentials-test] (first on line 2)" },
        { "[credentials-t]\n[auth-ssh-h]\ncredentials=t\npassword=" SECRET "\n", 4,
          "'password' does not belong in [auth-ssh-h]" },
        { "[credentials-t]\n[auth-ssh-h]\ncredentials=t\nuser=" SECRET "\n", 4,
          "an auth group takes only credentials=NAME" },
        { "[credential-test]\npassword=" SECRET "\n", 1, "unknown group [credential-test]" },
        { "[credentials-]\n", 1, "unknown group" },
        { "[auth-vbhostd]\ncredentials=x\n", 1, "unknown group [auth-vbhostd]" },
        { "[auth--h]\n", 1, "unknown group" },
        { "[credentials-test\npassword=" SECRET "\n", 1, "expected ']'" },
        { "[credentials test]\n", 1, "no blanks" },
        { "[]\n", 1, "empty group name" },
        { "[credentials-test]\n=" SECRET "\n", 2, "missing key before '='" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        load_fails(cases[i].text, cases[i].line, cases[i].fragment);
}

static void test_nul_byte(void **state)
{
    (void)state;
    static const char text[] = "[credentials-test]\nauthname=fred\npassword=" SECRET "\0x\n";
    load_fails_len(text, sizeof text - 1, 0600, 3, "NUL byte");
}

static void test_size_limit(void **state)
{
    (void)state;
    const size_t limit = VB_AUTHCONF_MAX_SIZE;
    assert_int_equal(limit, 65536);
    static const char head[] = "[credentials-test]\npassword=" SECRET "\n"
                               "[auth-ssh-default]\ncredentials=test\n";
    char *text = malloc(limit + 2);
    assert_non_null(text);
    memcpy(text, head, sizeof head - 1);
    memset(text + sizeof head - 1, '#', limit - (sizeof head - 1));
    for (size_t i = sizeof head - 1 + 63; i < limit; i += 64)
        text[i] = '\n';
    text[limit] = '\0';

    /* Exactly 64 KiB loads and answers... */
    vb_authconf *conf = load_ok(text, 0600);
    char buf[64];
    const char *a = answer(conf, "ssh", "h", VB_CRED_PASSPHRASE, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, SECRET);
    vb_authconf_free(conf);

    /* ...one byte more is refused. */
    text[limit] = '#';
    text[limit + 1] = '\0';
    load_fails_len(text, limit + 1, 0600, 0, "larger than 65536 bytes");
    free(text);
}

static void test_whitespace_and_comments(void **state)
{
    (void)state;
    vb_authconf *conf = load_ok("; libvirt style comment\r\n"
                                "  # indented comment\n"
                                "  [ credentials-test ]  \r\n"
                                "\tauthname\t=\t fred \r\n"
                                "password = pa#ss;word \n"
                                "realm=\n"
                                "\n"
                                "[auth-ssh-::1]\ncredentials = test\n"
                                "[auth-xenapi-xen-1.lab]\n"
                                "credentials=test", /* no final newline */
                                0600);
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add(&req, VB_CRED_AUTHNAME);
    add(&req, VB_CRED_PASSPHRASE);
    add(&req, VB_CRED_REALM);
    vb_error err;
    assert_int_equal(vb_authconf_fill(conf, "ssh", "::1", &req, &err), 1);
    assert_string_equal(req.items[0].result, "fred");
    assert_string_equal(req.items[1].result, "pa#ss;word");
    assert_string_equal(req.items[2].result, "");
    assert_int_equal(req.items[2].resultlen, 0);
    vb_cred_request_clear(&req);

    /* A host with '-' in it: the service ends at the first '-'. */
    char buf[64];
    const char *a = answer(conf, "xenapi", "xen-1.lab", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "fred");
    assert_null(answer(conf, "xenapi", "xen-2.lab", VB_CRED_AUTHNAME, buf, sizeof buf));
    vb_authconf_free(conf);
}

static void test_permissions(void **state)
{
    (void)state;
    /* Shared with the group or the world while holding a password: refused
     * with the fix in the message. */
    char *path = write_file(example, strlen(example), 0644);
    vb_authconf *conf = NULL;
    vb_error err;
    assert_int_equal(vb_authconf_load(path, &conf, &err), -1);
    assert_null(conf);
    assert_int_equal(err.code, VB_ERR_CONFIG);
    char expect[256];
    snprintf(expect, sizeof expect,
             "auth.conf holds passwords but is readable by others; chmod 600 %s", path);
    assert_string_equal(err.message, expect);
    assert_null(strstr(err.message, "s3cret"));
    unlink(path);
    free(path);

    load_fails_len(example, strlen(example), 0640, 0, "readable by others; chmod 600");
    load_fails_len(example, strlen(example), 0604, 0, "readable by others; chmod 600");
    load_fails_len(example, strlen(example), 0620, 0, "writable by others; chmod 600");

    /* Private: fine. Without a password a shared file is fine too. */
    conf = load_ok(example, 0600);
    vb_authconf_free(conf);
    conf = load_ok(example, 0400);
    vb_authconf_free(conf);
    conf = load_ok("[credentials-test]\nauthname=fred\n[auth-ssh-default]\ncredentials=test\n",
                   0644);
    char buf[64];
    const char *a = answer(conf, "ssh", "h", VB_CRED_AUTHNAME, buf, sizeof buf);
    assert_non_null(a);
    assert_string_equal(a, "fred");
    vb_authconf_free(conf);
}

/* Set or unset (value NULL) an environment variable. */
static void set_env(const char *name, const char *value)
{
    if (value)
        assert_int_equal(setenv(name, value, 1), 0);
    else
        assert_int_equal(unsetenv(name), 0);
}

static void expect_path(const char *uri_authfile, const char *want)
{
    char *got = vb_authconf_path(uri_authfile);
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_path_selection(void **state)
{
    (void)state;
    static const char *const names[] = { "VBROKER_AUTH_FILE", "XDG_CONFIG_HOME", "HOME" };
    char *saved[3];
    for (size_t i = 0; i < 3; i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
    }

    set_env("VBROKER_AUTH_FILE", "/env/auth.conf");
    set_env("XDG_CONFIG_HOME", "/xdg");
    set_env("HOME", "/home/fred");
    expect_path("/uri/auth.conf", "/uri/auth.conf"); /* ?authfile= wins */
    expect_path(NULL, "/env/auth.conf");
    expect_path("", "/env/auth.conf");

    set_env("VBROKER_AUTH_FILE", NULL);
    expect_path(NULL, "/xdg/vbroker/auth.conf");
    set_env("VBROKER_AUTH_FILE", "");
    expect_path(NULL, "/xdg/vbroker/auth.conf");

    set_env("XDG_CONFIG_HOME", NULL);
    expect_path(NULL, "/home/fred/.config/vbroker/auth.conf");
    set_env("XDG_CONFIG_HOME", "relative/dir"); /* invalid per XDG: ignored */
    expect_path(NULL, "/home/fred/.config/vbroker/auth.conf");
    set_env("XDG_CONFIG_HOME", "");
    expect_path(NULL, "/home/fred/.config/vbroker/auth.conf");

    /* No HOME: the passwd entry's home, when there is one. */
    set_env("XDG_CONFIG_HOME", NULL);
    set_env("HOME", NULL);
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_dir && *pw->pw_dir) {
        char want[512];
        snprintf(want, sizeof want, "%s/.config/vbroker/auth.conf", pw->pw_dir);
        expect_path(NULL, want);
    } else {
        expect_path(NULL, NULL);
    }
    expect_path("/uri/auth.conf", "/uri/auth.conf");

    for (size_t i = 0; i < 3; i++) {
        set_env(names[i], saved[i]);
        free(saved[i]);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    vb_authconf *conf = load_ok(example, 0600);
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add(&req, VB_CRED_AUTHNAME);
    vb_error err;
    vb_error_clear(&err);
    assert_int_equal(vb_authconf_fill(conf, NULL, "h", &req, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    vb_error_clear(&err);
    assert_int_equal(vb_authconf_fill(conf, "", "h", &req, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    /* "vbhostd-example.com" would otherwise match [auth-vbhostd-example.com-...]. */
    vb_error_clear(&err);
    assert_int_equal(vb_authconf_fill(conf, "vbhostd-example.com", "h", &req, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    assert_null(req.items[0].result);
    vb_error_clear(&err);
    assert_int_equal(vb_authconf_fill(conf, "vbhostd", "h", NULL, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    vb_cred_request_clear(&req);
    vb_authconf_free(conf);

    vb_error_clear(&err);
    assert_int_equal(vb_authconf_load(NULL, &conf, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    assert_null(conf);
    vb_error_clear(&err);
    assert_int_equal(vb_authconf_load("/tmp/x", NULL, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_beats_default),
        cmocka_unit_test(test_default_for_other_hosts),
        cmocka_unit_test(test_libvirt_alias),
        cmocka_unit_test(test_all_items_filled),
        cmocka_unit_test(test_gaps_leave_a_prompt),
        cmocka_unit_test(test_retry_fills_nothing),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_whitespace_and_comments),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_path_selection),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("authconf", tests, NULL, NULL);
}
