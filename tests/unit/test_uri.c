/* URI parser tests: every documented shape, decoding, nesting, each
 * rejection with its error, and format → parse round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_uri.h"

static void parse_ok(const char *text, vb_uri *u)
{
    vb_error err;
    vb_error_clear(&err);
    int rc = vb_uri_parse(text, u, &err);
    if (rc != 0)
        print_error("parse of '%s' failed: %s\n", text, err.message);
    assert_int_equal(rc, 0);
    assert_int_equal(err.code, VB_ERR_OK);
}

/* The parse fails with INVALID_ARG/CONFIG, the message names the problem
 * (fragment) and shows the expected shape, and nothing is left allocated. */
static void reject(const char *text, const char *fragment)
{
    vb_uri u;
    vb_error err;
    vb_error_clear(&err);
    assert_int_equal(vb_uri_parse(text, &u, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    assert_int_equal(err.domain, VB_DOM_CONFIG);
    if (!strstr(err.message, fragment))
        print_error("message for '%s' lacks '%s': %s\n", text, fragment, err.message);
    assert_non_null(strstr(err.message, fragment));
    assert_non_null(strstr(err.message, "expected driver[+transport]://"));
    assert_null(u.driver);
    assert_null(u.path);
    assert_int_equal(u.nparams, 0);
}

static void test_local_default(void **state)
{
    (void)state;
    vb_uri u;
    parse_ok("test:///default", &u);
    assert_string_equal(u.driver, "test");
    assert_null(u.transport);
    assert_null(u.user);
    assert_null(u.host);
    assert_int_equal(u.port, 0);
    assert_string_equal(u.path, "default");
    assert_int_equal(u.nparams, 0);
    assert_false(vb_uri_is_remote(&u));
    vb_uri_clear(&u);
    assert_null(u.driver);
}

static void test_transports(void **state)
{
    (void)state;
    vb_uri u;
    parse_ok("test+unix:///default", &u);
    assert_string_equal(u.driver, "test");
    assert_string_equal(u.transport, "unix");
    assert_null(u.host);
    assert_string_equal(u.path, "default");
    assert_true(vb_uri_is_remote(&u));
    vb_uri_clear(&u);

    parse_ok("test+tcp://h:16509/default", &u);
    assert_string_equal(u.transport, "tcp");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 16509);
    assert_string_equal(u.path, "default");
    vb_uri_clear(&u);

    parse_ok("test+ssh://alice@h/default", &u);
    assert_string_equal(u.transport, "ssh");
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 0);
    assert_string_equal(u.path, "default");
    assert_true(vb_uri_is_remote(&u));
    vb_uri_clear(&u);
}

static void test_xenapi_shapes(void **state)
{
    (void)state;
    vb_uri u;
    parse_ok("xenapi://root@xen1/", &u);
    assert_string_equal(u.driver, "xenapi");
    assert_null(u.transport);
    assert_string_equal(u.user, "root");
    assert_string_equal(u.host, "xen1");
    assert_string_equal(u.path, "");
    assert_false(vb_uri_is_remote(&u));
    vb_uri_clear(&u);

    /* No trailing slash, params straight after the host. */
    parse_ok("xenapi://10.0.0.5?no_verify=1", &u);
    assert_string_equal(u.host, "10.0.0.5");
    assert_string_equal(u.path, "");
    assert_string_equal(vb_uri_param_get(&u, "no_verify"), "1");
    vb_uri_clear(&u);
}

static void test_name_nesting(void **state)
{
    (void)state;
    vb_uri u, inner;
    parse_ok("xenapi+ssh://alice@h/?name=xenapi://xen1/", &u);
    assert_string_equal(u.driver, "xenapi");
    assert_string_equal(u.transport, "ssh");
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.host, "h");
    assert_string_equal(u.path, "");
    assert_int_equal(u.nparams, 1);
    assert_string_equal(vb_uri_param_get(&u, "name"), "xenapi://xen1/");
    /* The nested value is itself a URI. */
    parse_ok(vb_uri_param_get(&u, "name"), &inner);
    assert_string_equal(inner.driver, "xenapi");
    assert_string_equal(inner.host, "xen1");
    vb_uri_clear(&inner);
    vb_uri_clear(&u);

    /* '=' and '?' inside the value stay; an encoded '&' keeps the inner
     * query in one value; the outer '&' starts the next param. */
    parse_ok("xenapi+tcp://h:16509/?name=xenapi://root@x/?no_verify=1%26auth=sasl&auth=token",
             &u);
    assert_int_equal(u.nparams, 2);
    assert_string_equal(vb_uri_param_get(&u, "name"),
                        "xenapi://root@x/?no_verify=1&auth=sasl");
    assert_string_equal(vb_uri_param_get(&u, "auth"), "token");
    parse_ok(vb_uri_param_get(&u, "name"), &inner);
    assert_string_equal(inner.user, "root");
    assert_int_equal(inner.nparams, 2);
    assert_string_equal(vb_uri_param_get(&inner, "auth"), "sasl");
    vb_uri_clear(&inner);
    vb_uri_clear(&u);
}

static void test_ipv6(void **state)
{
    (void)state;
    vb_uri u;
    parse_ok("test+tcp://[::1]:16509/default", &u);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 16509);
    assert_string_equal(u.path, "default");
    vb_uri_clear(&u);

    parse_ok("xenapi://root@[2001:db8::5]/", &u);
    assert_string_equal(u.user, "root");
    assert_string_equal(u.host, "2001:db8::5");
    assert_int_equal(u.port, 0);
    vb_uri_clear(&u);

    /* RFC 6874 zone id, '%' encoded as %25. */
    parse_ok("test+tcp://[fe80::1%25eth0]:1/x", &u);
    assert_string_equal(u.host, "fe80::1%eth0");
    assert_int_equal(u.port, 1);
    vb_uri_clear(&u);

    parse_ok("test+tcp://[::ffff:10.0.0.1]/x", &u);
    assert_string_equal(u.host, "::ffff:10.0.0.1");
    vb_uri_clear(&u);

    reject("test+tcp://[::1/default", "unterminated '['");
    reject("test+tcp://[zz::1]/default", "bad IPv6 address");
    reject("test+tcp://[]/default", "bad IPv6 address");
    reject("test+tcp://[10.0.0.1]/default", "bad IPv6 address");
    reject("test+tcp://[::1]x/default", "after ']'");
    reject("test+tcp://[::1]:0/default", "not in 1..65535");
}

static void test_percent_decoding(void **state)
{
    (void)state;
    vb_uri u;
    parse_ok("test+ssh://al%20ice@h%2Eexample/my%2Fdir/x%3Fy?keyfile=%2Fhome%2Fa%20b&k%5Fx=%41", &u);
    assert_string_equal(u.user, "al ice");
    assert_string_equal(u.host, "h.example");
    assert_string_equal(u.path, "my/dir/x?y");
    assert_string_equal(vb_uri_param_get(&u, "keyfile"), "/home/a b");
    assert_string_equal(vb_uri_param_get(&u, "k_x"), "A");
    vb_uri_clear(&u);

    /* Lower-case hex and UTF-8 bytes decode too; '+' is not a space. */
    parse_ok("test:///%c3%a9t%c3%A9?v=a+b", &u);
    assert_string_equal(u.path, "\xc3\xa9t\xc3\xa9");
    assert_string_equal(vb_uri_param_get(&u, "v"), "a+b");
    vb_uri_clear(&u);

    reject("test:///a%4", "bad percent-escape '%4'");
    reject("test:///a%zzb", "bad percent-escape '%zz'");
    reject("test:///a?k=%", "bad percent-escape '%'");
    reject("test+ssh://h%2/x", "bad percent-escape");
}

static void test_embedded_nul(void **state)
{
    (void)state;
    reject("test:///def%00ault", "embedded NUL");
    reject("test+ssh://al%00ice@h/", "embedded NUL");
    reject("test+ssh://h%00x/", "embedded NUL");
    reject("test:///x?k=a%00b", "embedded NUL");
    reject("test:///x?k%00=a", "embedded NUL");
}

static void test_params(void **state)
{
    (void)state;
    vb_uri u;
    parse_ok("test+ssh://a@h/default?auth=sasl.GSSAPI&known_hosts_verify=ignore&auth=token"
             "&&no_verify&keyfile=&",
             &u);
    assert_int_equal(u.nparams, 5);
    assert_string_equal(u.params[0].key, "auth");
    assert_string_equal(u.params[0].value, "sasl.GSSAPI");
    /* The first of a repeated key wins. */
    assert_string_equal(vb_uri_param_get(&u, "auth"), "sasl.GSSAPI");
    assert_string_equal(vb_uri_param_get(&u, "known_hosts_verify"), "ignore");
    /* A key without '=' has the empty value; empty pieces are skipped. */
    assert_string_equal(vb_uri_param_get(&u, "no_verify"), "");
    assert_string_equal(vb_uri_param_get(&u, "keyfile"), "");
    assert_null(vb_uri_param_get(&u, "socket"));
    assert_null(vb_uri_param_get(&u, NULL));
    assert_null(vb_uri_param_get(NULL, "auth"));
    vb_uri_clear(&u);

    parse_ok("test:///default?", &u);
    assert_int_equal(u.nparams, 0);
    vb_uri_clear(&u);

    reject("test:///x?=v", "bad param key ''");
    reject("test:///x?a%20b=v", "bad param key 'a%20b'");
}

static void test_too_many_params(void **state)
{
    (void)state;
    char text[1024] = "test:///default?";
    for (int i = 0; i < VB_URI_MAX_PARAMS; i++) {
        char piece[16];
        snprintf(piece, sizeof piece, "%sk%d=%d", i ? "&" : "", i, i);
        strcat(text, piece);
    }
    vb_uri u;
    parse_ok(text, &u);
    assert_int_equal(u.nparams, VB_URI_MAX_PARAMS);
    assert_string_equal(vb_uri_param_get(&u, "k31"), "31");
    vb_uri_clear(&u);

    strcat(text, "&one=more");
    reject(text, "more than 32 params at 'one=more'");
}

static void test_length_limit(void **state)
{
    (void)state;
    char *text = malloc(VB_URI_MAX_LEN + 2);
    assert_non_null(text);
    size_t prefix = strlen("test:///");
    memcpy(text, "test:///", prefix);
    memset(text + prefix, 'a', VB_URI_MAX_LEN - prefix);
    text[VB_URI_MAX_LEN] = '\0';
    vb_uri u;
    parse_ok(text, &u);
    assert_int_equal(strlen(u.path), VB_URI_MAX_LEN - prefix);
    vb_uri_clear(&u);

    text[VB_URI_MAX_LEN] = 'a';
    text[VB_URI_MAX_LEN + 1] = '\0';
    reject(text, "longer than 4096 bytes");
    free(text);
}

static void test_reject_scheme(void **state)
{
    (void)state;
    reject("test", "missing '://' in 'test'");
    reject("test:/default", "missing '://'");
    reject("h:16509/default", "missing '://'");
    reject("", "empty URI");
    reject("://h/", "empty driver");
    reject("+ssh://h/", "empty driver before '+'");
    reject("te st:///default", "bad characters in driver 'te st'");
    reject("1test:///default", "bad characters in driver '1test'");
    reject("te$t:///default", "bad characters in driver");
    reject("test+:///default", "empty transport");
    reject("test+ssh+tcp://h/", "bad characters in transport 'ssh+tcp'");
    reject("test+quic://h/default", "unknown transport 'quic' (known: unix, tcp, ssh, tls)");
    reject("test+SSH://h/default", "unknown transport 'SSH'");
    reject("test:///def\nault", "control character at offset 11");

    vb_error err;
    vb_uri u;
    assert_int_equal(vb_uri_parse(NULL, &u, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
}

static void test_reject_port(void **state)
{
    (void)state;
    reject("test+tcp://h:0/default", "port '0' is not in 1..65535");
    reject("test+tcp://h:65536/default", "port '65536' is not in 1..65535");
    reject("test+tcp://h:99999999999999999999999/default", "not in 1..65535");
    reject("test+tcp://h:-1/default", "port '-1' is not a number");
    reject("test+tcp://h:16x/default", "port '16x' is not a number");
    reject("test+tcp://h:/default", "empty port");
    reject("test+tcp://:16509/default", "port '16509' without a host");

    vb_uri u;
    parse_ok("test+tcp://h:65535/default", &u);
    assert_int_equal(u.port, 65535);
    vb_uri_clear(&u);
    parse_ok("test+tcp://h:1/default", &u);
    assert_int_equal(u.port, 1);
    vb_uri_clear(&u);
}

static void test_reject_authority(void **state)
{
    (void)state;
    reject("test+ssh://@h/default", "empty user");
    reject("test+ssh://a@b@h/default", "bad host 'b@h'");
    reject("test+ssh://h%2Fx/default", "bad host");
    reject("test+ssh://h_ost!/default", "bad host");
    /* A leading '-' would become an ssh option. */
    reject("test+ssh://-oProxyCommand=x@h/default", "must not start with '-'");
    reject("test+ssh://-oProxyCommand=x/default", "bad host");
    reject("test+ssh://%2Dl@h/default", "must not start with '-'");
    reject("test+ssh://al%0Aice@h/default", "control character in user 'al%0Aice'");

    /* A password is refused, and the message never shows it. */
    vb_uri u;
    vb_error err;
    assert_int_equal(vb_uri_parse("test+ssh://alice:s3cret@h/default", &u, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "'alice:'"));
    assert_null(strstr(err.message, "s3cret"));
}

static void test_error_quotes_are_sanitised(void **state)
{
    (void)state;
    vb_uri u;
    vb_error err;
    /* Decoded control bytes in the host are quoted raw-encoded, and a long
     * part is cut, so a hostile URI cannot flood or drive a terminal. */
    assert_int_equal(vb_uri_parse("test+ssh://h%1B[2J/x", &u, &err), -1);
    assert_null(strchr(err.message, '\x1b'));
    char text[600] = "te$t";
    memset(text + 4, 'x', 300);
    strcpy(text + 304, ":///default");
    assert_int_equal(vb_uri_parse(text, &u, &err), -1);
    assert_non_null(strstr(err.message, "...'"));
    assert_true(strlen(err.message) < 250);
}

/* Both structs hold the same values. */
static void assert_uri_equal(const vb_uri *a, const vb_uri *b)
{
#define SAME_STR(f)                                   \
    do {                                              \
        if (a->f && b->f)                             \
            assert_string_equal(a->f, b->f);          \
        else                                          \
            assert_ptr_equal(a->f, b->f);             \
    } while (0)
    SAME_STR(driver);
    SAME_STR(transport);
    SAME_STR(user);
    SAME_STR(host);
    SAME_STR(path);
    assert_int_equal(a->port, b->port);
    assert_int_equal(a->nparams, b->nparams);
    for (size_t i = 0; i < a->nparams; i++) {
        assert_string_equal(a->params[i].key, b->params[i].key);
        assert_string_equal(a->params[i].value, b->params[i].value);
    }
#undef SAME_STR
}

static void test_format_canonical(void **state)
{
    (void)state;
    /* Already canonical: format gives the text back. */
    static const char *const canonical[] = {
        "test:///default",
        "test+unix:///default",
        "test+tcp://h:16509/default",
        "test+ssh://alice@h/default",
        "xenapi://root@xen1/",
        "xenapi+ssh://alice@h/?name=xenapi://xen1/",
        "test+tcp://[::1]:16509/default",
        "test+tcp://[fe80::1%25eth0]/default",
        "test:///tmp/lab1.conf",
        "test+ssh://al%20ice@h/a%3Fb?keyfile=/home/a%20b&v=x%26y%25z",
    };
    for (size_t i = 0; i < sizeof canonical / sizeof canonical[0]; i++) {
        vb_uri u;
        parse_ok(canonical[i], &u);
        char *s = vb_uri_format(&u);
        assert_non_null(s);
        assert_string_equal(s, canonical[i]);
        free(s);
        vb_uri_clear(&u);
    }

    /* Not canonical: encodings normalise, empty pieces and the missing
     * slash come back in one form. */
    vb_uri u;
    parse_ok("xenapi://xen%31?no_verify&&a=%2f", &u);
    char *s = vb_uri_format(&u);
    assert_string_equal(s, "xenapi://xen1/?no_verify=&a=/");
    free(s);
    vb_uri_clear(&u);
}

static void test_format_round_trip(void **state)
{
    (void)state;
    /* A struct with every awkward character, built by hand. */
    vb_uri u;
    memset(&u, 0, sizeof u);
    u.driver = "xenapi";
    u.transport = "ssh";
    u.user = "a@b:c/d%e f";
    u.host = "2001:db8::1";
    u.port = 22;
    u.path = "dir/with?query#frag%and space&amp";
    u.params[0] = (vb_uri_param){ "name", "xenapi://root@x/?a=1&b=%41" };
    u.params[1] = (vb_uri_param){ "keyfile", "/k\xc3\xa9y file" };
    u.params[2] = (vb_uri_param){ "empty", "" };
    u.nparams = 3;
    char *s = vb_uri_format(&u);
    assert_non_null(s);
    vb_uri back;
    parse_ok(s, &back);
    assert_uri_equal(&u, &back);
    /* And formatting again is stable. */
    char *s2 = vb_uri_format(&back);
    assert_string_equal(s, s2);
    free(s);
    free(s2);
    vb_uri_clear(&back);

    static const char *const texts[] = {
        "test+ssh://alice@h:2222/default?sshauth=agent,privkey&known_hosts=/x/y",
        "xenapi+ssh://alice@h/?name=xenapi://root@[::1]:443/%3Fno_verify=1",
        "test:////abs/path",
        "test:///%7Eme/x%20y.conf",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        vb_uri a, b;
        parse_ok(texts[i], &a);
        char *t = vb_uri_format(&a);
        assert_non_null(t);
        parse_ok(t, &b);
        assert_uri_equal(&a, &b);
        free(t);
        vb_uri_clear(&a);
        vb_uri_clear(&b);
    }

    memset(&u, 0, sizeof u);
    assert_null(vb_uri_format(&u));
    assert_null(vb_uri_format(NULL));
}

static void test_clear_is_safe(void **state)
{
    (void)state;
    vb_uri u;
    memset(&u, 0, sizeof u);
    vb_uri_clear(&u);
    vb_uri_clear(NULL);
    parse_ok("test:///default?a=b", &u);
    vb_uri_clear(&u);
    vb_uri_clear(&u);
    assert_null(u.driver);
    assert_int_equal(u.nparams, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_default),
        cmocka_unit_test(test_transports),
        cmocka_unit_test(test_xenapi_shapes),
        cmocka_unit_test(test_name_nesting),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_too_many_params),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_reject_scheme),
        cmocka_unit_test(test_reject_port),
        cmocka_unit_test(test_reject_authority),
        cmocka_unit_test(test_error_quotes_are_sanitised),
        cmocka_unit_test(test_format_canonical),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_clear_is_safe),
    };
    return cmocka_run_group_tests_name("uri", tests, NULL, NULL);
}
