/* Config parser tests: values, lists over lines, escapes, comments, errors
 * that name file:line, unknown keys, type mismatches, bounded files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vb_conf.h"

static void parse_ok(const char *text, vb_conf *conf)
{
    vb_error err;
    vb_error_clear(&err);
    int rc = vb_conf_parse_string(text, "t.conf", conf, &err);
    if (rc != 0)
        print_error("parse failed: %s\n", err.message);
    assert_int_equal(rc, 0);
}

/* The text fails with CONFIG/CONFIG and a message containing fragment
 * (which the callers start with "t.conf:LINE:"). */
static void parse_fails(const char *text, const char *fragment)
{
    vb_conf conf;
    vb_error err;
    vb_error_clear(&err);
    assert_int_equal(vb_conf_parse_string(text, "t.conf", &conf, &err), -1);
    assert_int_equal(err.code, VB_ERR_CONFIG);
    assert_int_equal(err.domain, VB_DOM_CONFIG);
    if (!strstr(err.message, fragment))
        print_error("message lacks '%s': %s\n", fragment, err.message);
    assert_non_null(strstr(err.message, fragment));
    assert_null(conf.entries);
    assert_int_equal(conf.nentries, 0);
}

static void test_values(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    parse_ok("# vbhostd.conf\n"
             "\n"
             "listen_addr = \"0.0.0.0\"\n"
             "   tcp_port=16509\n"
             "min_ssf = -1   # comment after a value\n"
             "empty = \"\"\n"
             "\t# indented comment\n"
             "auth_tcp = [\"sasl\", \"token\"]\n",
             &conf);
    assert_int_equal(conf.nentries, 5);
    assert_string_equal(conf.path, "t.conf");

    const char *s = NULL;
    assert_int_equal(vb_conf_get_string(&conf, "listen_addr", &s, &err), 1);
    assert_string_equal(s, "0.0.0.0");
    assert_int_equal(vb_conf_get_string(&conf, "empty", &s, &err), 1);
    assert_string_equal(s, "");

    int64_t n = 0;
    assert_int_equal(vb_conf_get_int(&conf, "tcp_port", &n, &err), 1);
    assert_int_equal(n, 16509);
    assert_int_equal(vb_conf_get_int(&conf, "min_ssf", &n, &err), 1);
    assert_int_equal(n, -1);

    char *const *list = NULL;
    size_t nlist = 0;
    assert_int_equal(vb_conf_get_list(&conf, "auth_tcp", &list, &nlist, &err), 1);
    assert_int_equal(nlist, 2);
    assert_string_equal(list[0], "sasl");
    assert_string_equal(list[1], "token");

    /* Lines are recorded for later messages. */
    assert_int_equal(conf.entries[0].line, 3);
    assert_int_equal(conf.entries[1].line, 4);
    assert_int_equal(conf.entries[4].line, 8);
    vb_conf_clear(&conf);
    assert_null(conf.entries);
    assert_null(conf.path);
}

static void test_absent_key(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    parse_ok("a = 1\n", &conf);
    const char *s = "untouched";
    int64_t n = 42;
    char *const *list = NULL;
    size_t nlist = 7;
    assert_int_equal(vb_conf_get_string(&conf, "nope", &s, &err), 0);
    assert_int_equal(vb_conf_get_int(&conf, "nope", &n, &err), 0);
    assert_int_equal(vb_conf_get_list(&conf, "nope", &list, &nlist, &err), 0);
    assert_string_equal(s, "untouched");
    assert_int_equal(n, 42);
    assert_null(list);
    assert_int_equal(nlist, 7);
    vb_conf_clear(&conf);

    /* An empty file and a comments-only file are valid and empty. */
    parse_ok("", &conf);
    assert_int_equal(conf.nentries, 0);
    vb_conf_clear(&conf);
    parse_ok("# nothing\n\n   \n# here", &conf);
    assert_int_equal(conf.nentries, 0);
    vb_conf_clear(&conf);
}

static void test_escapes(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    const char *s;
    parse_ok("msg = \"say \\\"hi\\\" \\\\ back # not a comment\"\n"
             "path = \"C:\\\\dir\\\\\"\n",
             &conf);
    assert_int_equal(vb_conf_get_string(&conf, "msg", &s, &err), 1);
    assert_string_equal(s, "say \"hi\" \\ back # not a comment");
    assert_int_equal(vb_conf_get_string(&conf, "path", &s, &err), 1);
    assert_string_equal(s, "C:\\dir\\");
    vb_conf_clear(&conf);

    parse_fails("a = 1\nmsg = \"bad \\n escape\"\n", "t.conf:2: unknown escape");
    parse_fails("msg = \"trailing \\", "t.conf:1: unknown escape");
}

static void test_ints(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    int64_t n;
    parse_ok("zero = 0\nmax = 9223372036854775807\nmin = -9223372036854775808\n"
             "lead = 007\n",
             &conf);
    assert_int_equal(vb_conf_get_int(&conf, "zero", &n, &err), 1);
    assert_int_equal(n, 0);
    assert_int_equal(vb_conf_get_int(&conf, "max", &n, &err), 1);
    assert_true(n == INT64_MAX);
    assert_int_equal(vb_conf_get_int(&conf, "min", &n, &err), 1);
    assert_true(n == INT64_MIN);
    assert_int_equal(vb_conf_get_int(&conf, "lead", &n, &err), 1);
    assert_int_equal(n, 7);
    vb_conf_clear(&conf);

    parse_fails("big = 9223372036854775808\n", "t.conf:1: number '9223372036854775808' is out of range");
    parse_fails("small = -9223372036854775809\n", "t.conf:1: number '-9223372036854775809' is out of range");
    parse_fails("huge = 123456789012345678901234567890\n", "number '123456789012345678901234...' is out");
    parse_fails("\n\nneg = -\n", "t.conf:3: expected digits after '-'");
    parse_fails("x = 12abc\n", "t.conf:1: expected end of line after the value of 'x', found 'a'");
    parse_fails("x = 1.5\n", "t.conf:1: expected end of line");
}

static void test_lists(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    char *const *list;
    size_t n;
    parse_ok("users = [\n"
             "    \"alice\",   # the admin\n"
             "\n"
             "    \"bob\" ,\n"
             "    # commented out: \"carol\",\n"
             "    \"dave\",\n"
             "]\n"
             "none = []\n"
             "none2 = [\n"
             "  # still nothing\n"
             "]\n"
             "one = [\"x\"]\n"
             "after = 1\n",
             &conf);
    assert_int_equal(vb_conf_get_list(&conf, "users", &list, &n, &err), 1);
    assert_int_equal(n, 3);
    assert_string_equal(list[0], "alice");
    assert_string_equal(list[1], "bob");
    assert_string_equal(list[2], "dave");
    assert_int_equal(vb_conf_get_list(&conf, "none", &list, &n, &err), 1);
    assert_int_equal(n, 0);
    assert_int_equal(vb_conf_get_list(&conf, "none2", &list, &n, &err), 1);
    assert_int_equal(n, 0);
    assert_int_equal(vb_conf_get_list(&conf, "one", &list, &n, &err), 1);
    assert_int_equal(n, 1);
    assert_string_equal(list[0], "x");
    /* Line counting continued through the multi-line lists. */
    int64_t v;
    assert_int_equal(vb_conf_get_int(&conf, "after", &v, &err), 1);
    assert_int_equal(conf.entries[conf.nentries - 1].line, 13);
    assert_int_equal(conf.entries[2].line, 9);
    vb_conf_clear(&conf);

    parse_fails("a = [\n\"x\",\n\"y\"\n", "t.conf:4: unterminated list (opened on line 1)");
    parse_fails("a = [\"x\" \"y\"]\n", "t.conf:1: expected ',' or ']' after a list element, found '\"'");
    parse_fails("a = [\n1, 2]\n", "t.conf:2: expected a \"string\" or ']' in list, found '1'");
    parse_fails("a = [,]\n", "t.conf:1: expected a \"string\" or ']'");
    parse_fails("a = [\"x\",,]\n", "t.conf:1: expected a \"string\" or ']'");
    parse_fails("a = [[\"x\"]]\n", "t.conf:1: expected a \"string\"");
    parse_fails("a = [\"x\"] junk\n", "t.conf:1: expected end of line");
}

static void test_crlf(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    const char *s;
    parse_ok("a = \"x\"\r\nb = [\r\n \"y\",\r\n]\r\n", &conf);
    assert_int_equal(vb_conf_get_string(&conf, "a", &s, &err), 1);
    assert_string_equal(s, "x");
    vb_conf_clear(&conf);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    parse_fails("a = 1\nfoo-bar = 1\n", "t.conf:2: expected '=' after key 'foo', found '-'");
    parse_fails("# c\n\n= 1\n", "t.conf:3: expected a key (letters, digits, '_'), found '='");
    parse_fails("key\n", "t.conf:1: expected '=' after key 'key', found end of line");
    parse_fails("key", "t.conf:1: expected '=' after key 'key', found end of file");
    parse_fails("a = 1\nkey =\n", "t.conf:2: expected a value (\"string\", number or [list]) after '=', found end of line");
    parse_fails("key = yes\n", "t.conf:1: expected a value");
    parse_fails("key = 'single'\n", "t.conf:1: expected a value");
    parse_fails("a = 1\nb = 2\nkey = \"open\n\"\n", "t.conf:3: unterminated string");
    parse_fails("key = \"x\" \"y\"\n", "t.conf:1: expected end of line after the value of 'key', found '\"'");
    parse_fails("a = 1 b = 2\n", "t.conf:1: expected end of line");
    parse_fails("k\x01 = 1\n", "t.conf:1: expected '=' after key 'k', found byte 0x01");
}

static void test_unknown_key(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    int64_t n;
    const char *s;
    parse_ok("known = 1\nlisten = \"x\"\ntypo_key = 3\nlast = 4\n", &conf);
    /* Nothing asked yet: the first entry is unknown. */
    assert_ptr_equal(vb_conf_unknown_key(&conf), &conf.entries[0]);
    assert_int_equal(vb_conf_get_int(&conf, "known", &n, &err), 1);
    assert_int_equal(vb_conf_get_string(&conf, "listen", &s, &err), 1);
    assert_int_equal(vb_conf_get_int(&conf, "last", &n, &err), 1);
    /* An absent key marks nothing. */
    assert_int_equal(vb_conf_get_int(&conf, "missing", &n, &err), 0);
    const vb_conf_entry *e = vb_conf_unknown_key(&conf);
    assert_non_null(e);
    assert_string_equal(e->key, "typo_key");
    assert_int_equal(e->line, 3);
    assert_int_equal(vb_conf_get_int(&conf, "typo_key", &n, &err), 1);
    assert_null(vb_conf_unknown_key(&conf));
    vb_conf_clear(&conf);

    /* A type mismatch still counts as asked (the caller reports that). */
    parse_ok("port = \"16509\"\n", &conf);
    assert_int_equal(vb_conf_get_int(&conf, "port", &n, &err), -1);
    assert_null(vb_conf_unknown_key(&conf));
    vb_conf_clear(&conf);
    assert_null(vb_conf_unknown_key(NULL));
}

static void test_repeated_key(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    int64_t n;
    parse_ok("port = 1\nother = 2\nport = 3\n", &conf);
    assert_int_equal(vb_conf_get_int(&conf, "port", &n, &err), 1);
    assert_int_equal(n, 3);
    /* Both "port" lines are used; only "other" is unknown. */
    const vb_conf_entry *e = vb_conf_unknown_key(&conf);
    assert_non_null(e);
    assert_string_equal(e->key, "other");
    vb_conf_clear(&conf);

    /* The last one wins even when its type differs. */
    parse_ok("port = 1\nport = \"x\"\n", &conf);
    assert_int_equal(vb_conf_get_int(&conf, "port", &n, &err), -1);
    assert_non_null(strstr(err.message, "t.conf:2:"));
    vb_conf_clear(&conf);
}

static void test_type_mismatch(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    const char *s = "untouched";
    int64_t n = 5;
    char *const *list = NULL;
    size_t nl = 0;
    parse_ok("\nname = \"x\"\nport = 16509\nauth = [\"sasl\"]\n", &conf);

    vb_error_clear(&err);
    assert_int_equal(vb_conf_get_int(&conf, "name", &n, &err), -1);
    assert_int_equal(err.code, VB_ERR_CONFIG);
    assert_int_equal(err.domain, VB_DOM_CONFIG);
    assert_string_equal(err.message, "t.conf:2: 'name' must be a number, not a \"string\"");
    assert_int_equal(n, 5);

    assert_int_equal(vb_conf_get_string(&conf, "port", &s, &err), -1);
    assert_string_equal(err.message, "t.conf:3: 'port' must be a \"string\", not a number");
    assert_string_equal(s, "untouched");

    assert_int_equal(vb_conf_get_list(&conf, "name", &list, &nl, &err), -1);
    assert_string_equal(err.message, "t.conf:2: 'name' must be a [list], not a \"string\"");
    assert_null(list);

    assert_int_equal(vb_conf_get_string(&conf, "auth", &s, &err), -1);
    assert_string_equal(err.message, "t.conf:4: 'auth' must be a \"string\", not a [list]");
    vb_conf_clear(&conf);
}

/* ---- files ---------------------------------------------------------------- */

static char *write_temp(const void *data, size_t len)
{
    char *path = strdup("/tmp/vb-test-conf-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
    close(fd);
    return path;
}

static void test_file(void **state)
{
    (void)state;
    const char text[] = "hostname = \"lab1\"\n"
                        "domains = [\"alpha:running:1048576:1\",\n"
                        "           \"beta:shutoff:2097152:2\"]\n";
    char *path = write_temp(text, sizeof text - 1);
    vb_conf conf;
    vb_error err;
    assert_int_equal(vb_conf_parse_file(path, &conf, &err), 0);
    assert_string_equal(conf.path, path);
    const char *s;
    assert_int_equal(vb_conf_get_string(&conf, "hostname", &s, &err), 1);
    assert_string_equal(s, "lab1");
    char *const *list;
    size_t n;
    assert_int_equal(vb_conf_get_list(&conf, "domains", &list, &n, &err), 1);
    assert_int_equal(n, 2);
    assert_string_equal(list[1], "beta:shutoff:2097152:2");
    vb_conf_clear(&conf);
    unlink(path);
    free(path);
}

static void test_file_errors(void **state)
{
    (void)state;
    vb_conf conf;
    vb_error err;
    char expect[256];

    /* A syntax error names the real file. */
    char *path = write_temp("a = 1\nb = oops\n", 15);
    assert_int_equal(vb_conf_parse_file(path, &conf, &err), -1);
    snprintf(expect, sizeof expect, "%s:2: expected a value", path);
    assert_non_null(strstr(err.message, expect));
    unlink(path);

    /* Gone now: an errno message that names the path. */
    assert_int_equal(vb_conf_parse_file(path, &conf, &err), -1);
    assert_int_equal(err.code, VB_ERR_SYSTEM);
    assert_int_equal(err.domain, VB_DOM_CONFIG);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "No such file or directory"));
    free(path);

    assert_int_equal(vb_conf_parse_file("/tmp", &conf, &err), -1);
    assert_int_equal(err.code, VB_ERR_CONFIG);
    assert_non_null(strstr(err.message, "not a regular file"));

    assert_int_equal(vb_conf_parse_file(NULL, &conf, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);

    /* A NUL byte would hide the rest of the file: refused with its line. */
    static const char with_nul[] = "a = 1\n\nb = \"x\0y\"\n";
    path = write_temp(with_nul, sizeof with_nul - 1);
    assert_int_equal(vb_conf_parse_file(path, &conf, &err), -1);
    assert_int_equal(err.code, VB_ERR_CONFIG);
    snprintf(expect, sizeof expect, "%s:3: NUL byte", path);
    assert_non_null(strstr(err.message, expect));
    unlink(path);
    free(path);
}

static void test_size_limit(void **state)
{
    (void)state;
    const size_t limit = 1024 * 1024;
    /* Exactly 1 MiB of comment lines is accepted... */
    char *text = malloc(limit + 2);
    assert_non_null(text);
    memset(text, '#', limit);
    for (size_t i = 63; i < limit; i += 64)
        text[i] = '\n';
    text[limit] = '\0';
    vb_conf conf;
    vb_error err;
    char *path = write_temp(text, limit);
    assert_int_equal(vb_conf_parse_file(path, &conf, &err), 0);
    vb_conf_clear(&conf);
    unlink(path);
    free(path);
    parse_ok(text, &conf);
    vb_conf_clear(&conf);

    /* ...one byte more is refused, from a file and from a string. */
    text[limit] = '#';
    text[limit + 1] = '\0';
    path = write_temp(text, limit + 1);
    assert_int_equal(vb_conf_parse_file(path, &conf, &err), -1);
    assert_int_equal(err.code, VB_ERR_CONFIG);
    assert_non_null(strstr(err.message, "larger than 1048576 bytes"));
    unlink(path);
    free(path);
    assert_int_equal(vb_conf_parse_string(text, "big", &conf, &err), -1);
    assert_non_null(strstr(err.message, "big: larger than 1048576 bytes"));
    free(text);
}

static void test_clear_is_safe(void **state)
{
    (void)state;
    vb_conf conf;
    memset(&conf, 0, sizeof conf);
    vb_conf_clear(&conf);
    vb_conf_clear(NULL);
    vb_error err;
    assert_int_equal(vb_conf_parse_string("a = [\"x\"]\n", NULL, &conf, &err), 0);
    assert_string_equal(conf.path, "<string>");
    vb_conf_clear(&conf);
    vb_conf_clear(&conf);
    assert_int_equal(conf.nentries, 0);
    assert_int_equal(vb_conf_parse_string(NULL, "x", &conf, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_absent_key),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_ints),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_repeated_key),
        cmocka_unit_test(test_type_mismatch),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_clear_is_safe),
    };
    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
