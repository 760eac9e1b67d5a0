/* XML-RPC for the XenAPI driver: integers in every form XenAPI sends,
 * escaping both ways (and xapi's unescaped struct names), the Status
 * envelope, and everything malformed, oversized, too deep or carrying a DTD. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_buf.h"
#include "vb_xenapi_xml.h"

#define HEAD "<?xml version=\"1.0\"?>\n<methodResponse><params><param>"
#define TAIL "</param></params></methodResponse>\n"

static vb_xr_value *parse_ok(const char *xml)
{
    vb_xr_value *v = NULL;
    vb_error err;
    vb_error_clear(&err);
    int rc = vb_xr_parse_response(xml, strlen(xml), &v, &err);
    if (rc != 0)
        print_error("parse failed: %s\n", err.message);
    assert_int_equal(rc, 0);
    assert_non_null(v);
    return v;
}

static void parse_fails(const char *xml, size_t len, int code, const char *message)
{
    vb_xr_value *v = (vb_xr_value *)1;
    vb_error err;
    vb_error_clear(&err);
    assert_int_equal(vb_xr_parse_response(xml, len, &v, &err), -1);
    assert_null(v);
    assert_int_equal(err.code, code);
    assert_int_equal(err.domain, VB_DOM_XENAPI);
    if (!strstr(err.message, message))
        print_error("message lacks '%s': %s\n", message, err.message);
    assert_non_null(strstr(err.message, message));
}

/* One <value> as the whole response. */
static vb_xr_value *parse_value(const char *value_xml)
{
    char buf[4096];
    snprintf(buf, sizeof buf, HEAD "%s" TAIL, value_xml);
    return parse_ok(buf);
}

/* ---- integers -------------------------------------------------------------- */

static void test_int_forms(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "<value>268435456</value>",                 /* bare: how xapi sends int64 */
        "<value><string>268435456</string></value>",
        "<value><int>268435456</int></value>",
        "<value><i4>268435456</i4></value>",
        "<value><i8>268435456</i8></value>",
        "<value> <i8> 268435456 </i8> </value>",    /* blanks around it */
        "<value><string>+268435456</string></value>",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        vb_xr_value *v = parse_value(forms[i]);
        int64_t n = 0;
        assert_int_equal(vb_xr_int(v, &n), 0);
        assert_int_equal(n, 268435456);
        vb_xr_value_free(v);
    }
}

static void test_int_limits(void **state)
{
    (void)state;
    int64_t n = 0;
    vb_xr_value *v = parse_value("<value><i8>-9223372036854775808</i8></value>");
    assert_int_equal(v->type, VB_XR_INT);
    assert_int_equal(vb_xr_int(v, &n), 0);
    assert_true(n == INT64_MIN);
    vb_xr_value_free(v);
    v = parse_value("<value>9223372036854775807</value>");
    assert_int_equal(vb_xr_int(v, &n), 0);
    assert_true(n == INT64_MAX);
    vb_xr_value_free(v);
    v = parse_value("<value>-1</value>"); /* domid of a halted VM */
    assert_int_equal(vb_xr_int(v, &n), 0);
    assert_int_equal(n, -1);
    vb_xr_value_free(v);

    /* a bare value that is not a number is a string, not an int */
    static const char *const not_ints[] = { "<value>9223372036854775808</value>",
                                            "<value>12abc</value>", "<value></value>",
                                            "<value>-</value>", "<value>1 2</value>",
                                            "<value><boolean>1</boolean></value>" };
    for (size_t i = 0; i < sizeof not_ints / sizeof not_ints[0]; i++) {
        v = parse_value(not_ints[i]);
        assert_int_equal(vb_xr_int(v, &n), -1);
        vb_xr_value_free(v);
    }
    assert_int_equal(vb_xr_int(NULL, &n), -1);

    /* a typed int that is not one is malformed */
    char buf[512];
    snprintf(buf, sizeof buf, HEAD "<value><i4>twelve</i4></value>" TAIL);
    parse_fails(buf, strlen(buf), VB_ERR_PROTOCOL, "not a 64-bit integer");
    snprintf(buf, sizeof buf, HEAD "<value><i8>99999999999999999999</i8></value>" TAIL);
    parse_fails(buf, strlen(buf), VB_ERR_PROTOCOL, "not a 64-bit integer");
}

static void test_scalars(void **state)
{
    (void)state;
    int b = -1;
    vb_xr_value *v = parse_value("<value><boolean>1</boolean></value>");
    assert_int_equal(v->type, VB_XR_BOOL);
    assert_int_equal(vb_xr_bool(v, &b), 0);
    assert_int_equal(b, 1);
    vb_xr_value_free(v);
    v = parse_value("<value>false</value>"); /* xapi also sends bools as strings */
    assert_int_equal(vb_xr_bool(v, &b), 0);
    assert_int_equal(b, 0);
    vb_xr_value_free(v);
    v = parse_value("<value>maybe</value>");
    assert_int_equal(vb_xr_bool(v, &b), -1);
    vb_xr_value_free(v);

    v = parse_value("<value><double>1.5</double></value>");
    assert_int_equal(v->type, VB_XR_DOUBLE);
    assert_string_equal(v->str, "1.5");
    assert_null(vb_xr_str(v)); /* only strings are strings */
    vb_xr_value_free(v);
    v = parse_value("<value><dateTime.iso8601>20240101T00:00:00Z</dateTime.iso8601></value>");
    assert_int_equal(v->type, VB_XR_DATETIME);
    vb_xr_value_free(v);
    v = parse_value("<value><nil/></value>");
    assert_int_equal(v->type, VB_XR_NIL);
    vb_xr_value_free(v);
    v = parse_value("<value><string/></value>");
    assert_string_equal(vb_xr_str(v), "");
    vb_xr_value_free(v);
    v = parse_value("<value>  spaced  </value>"); /* a bare string keeps its blanks */
    assert_string_equal(vb_xr_str(v), "  spaced  ");
    vb_xr_value_free(v);
    v = parse_value("<value><![CDATA[a<b]]>c</value>");
    assert_string_equal(vb_xr_str(v), "a<bc");
    vb_xr_value_free(v);
}

/* ---- escaping ---------------------------------------------------------------- */

static void test_unescape(void **state)
{
    (void)state;
    vb_xr_value *v = parse_value("<value>R&amp;D &lt;lab&gt; &quot;one&quot; &apos;&#65;&#x42;"
                                 "\xc3\xa9</value>");
    assert_string_equal(vb_xr_str(v), "R&D <lab> \"one\" 'AB\xc3\xa9");
    vb_xr_value_free(v);
}

static void test_escape_request(void **state)
{
    (void)state;
    vb_xr_buf b = { 0 };
    vb_error err;
    vb_xr_arg args[] = { VB_XR_S("root"), VB_XR_S("p<&>\"'x\r\n\t"), VB_XR_B(1), VB_XR_B(0) };
    assert_int_equal(vb_xr_build_call("session.login_with_password", args, 4, &b, &err), 0);
    assert_int_equal(strlen(b.data), b.len);
    assert_non_null(strstr(b.data, "<methodName>session.login_with_password</methodName>"));
    assert_non_null(strstr(b.data, "<value><string>root</string></value>"));
    assert_non_null(strstr(b.data, "<string>p&lt;&amp;&gt;&quot;'x&#13;\n\t</string>"));
    assert_non_null(strstr(b.data, "<value><boolean>1</boolean></value></param>"
                                   "<param><value><boolean>0</boolean></value>"));
    assert_null(strstr(b.data, "p<&"));

    /* what we write, a parser reads back exactly (here: libxml2 via a
     * response that carries the same escaped text) */
    const char *open = strstr(b.data, "<string>p");
    const char *close = strstr(open, "</string>");
    char resp[512];
    snprintf(resp, sizeof resp, HEAD "<value>%.*s</value>" TAIL, (int)(close - open - 8),
             open + 8);
    vb_xr_value *v = parse_ok(resp);
    assert_string_equal(vb_xr_str(v), "p<&>\"'x\r\n\t");
    vb_xr_value_free(v);

    /* a control character XML cannot carry is refused, naming no value */
    vb_xr_arg bad[] = { VB_XR_S("root"), VB_XR_S("pw\x01secret") };
    assert_int_equal(vb_xr_build_call("session.login_with_password", bad, 2, &b, &err), -1);
    assert_int_equal(err.code, VB_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "argument 2"));
    assert_null(strstr(err.message, "secret"));
    vb_xr_buf_wipe(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_big_request(void **state)
{
    (void)state;
    /* growth by copy-and-wipe keeps every byte */
    char *big = malloc(100001);
    memset(big, '&', 100000);
    big[100000] = '\0';
    vb_xr_buf b = { 0 };
    vb_error err;
    vb_xr_arg a = VB_XR_S(big);
    assert_int_equal(vb_xr_build_call("m", &a, 1, &b, &err), 0);
    assert_true(b.len > 500000);
    char *resp = malloc(b.len + 200);
    const char *open = strstr(b.data, "<string>") + 8;
    int n = snprintf(resp, b.len + 200, HEAD "<value>%.*s</value>" TAIL,
                     (int)(strstr(open, "</string>") - open), open);
    vb_xr_value *v = NULL;
    assert_int_equal(vb_xr_parse_response(resp, (size_t)n, &v, &err), 0);
    assert_string_equal(vb_xr_str(v), big);
    vb_xr_value_free(v);
    vb_xr_buf_wipe(&b);
    free(resp);
    free(big);
}

/* Blocks the request buffer gave back, and whether any held a nonzero byte
 * when it did (vb_buf's release hook sees a block after the wipe). */
static size_t released_blocks;
static int released_dirty;

static void checking_release(void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        released_dirty |= c[i] != 0;
    released_blocks++;
    free(p);
}

static void test_request_growth_wipes(void **state)
{
    (void)state;
    /* the password is copied at every growth of the request: each old block
     * must be wiped before the heap gets it back, and so must the last one */
    char *pw = malloc(50001);
    for (size_t i = 0; i < 50000; i++) /* escaped piece by piece: many growths */
        pw[i] = i % 2 ? '&' : 'S';
    pw[50000] = '\0';
    vb_xr_buf b = { 0 };
    vb_error err;
    vb_xr_arg args[] = { VB_XR_S("root"), VB_XR_S(pw) };
    released_blocks = 0;
    released_dirty = 0;
    vb_buf_set_allocator(NULL, checking_release);
    assert_int_equal(vb_xr_build_call("session.login_with_password", args, 2, &b, &err), 0);
    assert_non_null(strstr(b.data, "S&amp;S&amp;"));
    size_t grown = released_blocks;
    vb_xr_buf_wipe(&b);
    vb_buf_set_allocator(NULL, NULL);
    assert_true(grown >= 3); /* 4 KiB doubled past 150 KB: the old blocks came back */
    assert_int_equal(released_blocks, grown + 1);
    assert_false(released_dirty);
    assert_null(b.data);
    free(pw);
}

static void test_unescaped_names(void **state)
{
    (void)state;
    /* xapi writes map keys raw; a name "a<b&c>" must not sink the response */
    vb_xr_value *v = parse_value("<value><struct>"
                                 "<member><name>a<b&c></name><value>raw</value></member>"
                                 "<member><name>q&amp;\"d</name><value>1</value></member>"
                                 "<member><name>x&#38;y</name><value>2</value></member>"
                                 "<member><name>plain</name><value>&lt;ok&gt;</value></member>"
                                 "</struct></value>");
    assert_int_equal(v->type, VB_XR_STRUCT);
    assert_int_equal(v->n, 4);
    assert_string_equal(vb_xr_str(vb_xr_member(v, "a<b&c>")), "raw");
    assert_string_equal(vb_xr_str(vb_xr_member(v, "q&\"d")), "1");
    assert_string_equal(vb_xr_str(vb_xr_member(v, "x&y")), "2");
    assert_string_equal(vb_xr_str(vb_xr_member(v, "plain")), "<ok>");
    assert_null(vb_xr_member(v, "missing"));
    assert_null(vb_xr_member(NULL, "plain"));
    vb_xr_value_free(v);
}

/* ---- the XenAPI envelope ------------------------------------------------------- */

static void test_status(void **state)
{
    (void)state;
    const vb_xr_value *value, *errdesc;
    vb_error err;
    vb_xr_value *v = parse_value("<value><struct><member><name>Status</name><value>Success"
                                 "</value></member><member><name>Value</name><value>"
                                 "OpaqueRef:1234</value></member></struct></value>");
    assert_int_equal(vb_xr_status(v, &value, &errdesc, &err), 1);
    assert_string_equal(vb_xr_str(value), "OpaqueRef:1234");
    assert_null(errdesc);
    vb_xr_value_free(v);

    v = parse_value("<value><struct><member><name>Status</name><value>Failure</value></member>"
                    "<member><name>ErrorDescription</name><value><array><data>"
                    "<value>VM_BAD_POWER_STATE</value><value>OpaqueRef:9</value>"
                    "<value>halted</value><value>running</value></data></array></value>"
                    "</member></struct></value>");
    assert_int_equal(vb_xr_status(v, &value, &errdesc, &err), 0);
    assert_null(value);
    assert_int_equal(errdesc->n, 4);
    assert_string_equal(vb_xr_str(&errdesc->items[0]), "VM_BAD_POWER_STATE");
    assert_string_equal(vb_xr_str(&errdesc->items[3]), "running");
    vb_xr_value_free(v);

    /* Status need not come first; ordering is the peer's business */
    v = parse_value("<value><struct><member><name>Value</name><value><array><data/></array>"
                    "</value></member><member><name>Status</name><value><string>Success"
                    "</string></value></member></struct></value>");
    assert_int_equal(vb_xr_status(v, &value, &errdesc, &err), 1);
    assert_int_equal(value->type, VB_XR_ARRAY);
    assert_int_equal(value->n, 0);
    vb_xr_value_free(v);

    static const char *const broken[] = {
        "<value>Success</value>",
        "<value><struct><member><name>Status</name><value>Success</value></member></struct>"
        "</value>",
        "<value><struct><member><name>Status</name><value>Failure</value></member></struct>"
        "</value>",
        "<value><struct><member><name>Status</name><value>Failure</value></member><member>"
        "<name>ErrorDescription</name><value><array><data/></array></value></member></struct>"
        "</value>",
        "<value><struct><member><name>Status</name><value>Maybe</value></member></struct>"
        "</value>",
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        v = parse_value(broken[i]);
        assert_int_equal(vb_xr_status(v, &value, &errdesc, &err), -1);
        assert_int_equal(err.code, VB_ERR_PROTOCOL);
        vb_xr_value_free(v);
    }
}

static void test_fault(void **state)
{
    (void)state;
    const char *xml = "<?xml version=\"1.0\"?><methodResponse><fault><value><struct>"
                      "<member><name>faultCode</name><value><int>4</int></value></member>"
                      "<member><name>faultString</name><value>Too many\nparameters</value>"
                      "</member></struct></value></fault></methodResponse>";
    parse_fails(xml, strlen(xml), VB_ERR_REMOTE, "XML-RPC fault 4: Too many?parameters");
}

static void test_nested(void **state)
{
    (void)state;
    /* a VM record: map of ref → struct with a nested map and an array */
    vb_xr_value *v = parse_value(
        "<value><struct><member><name>OpaqueRef:a</name><value><struct>"
        "<member><name>name_label</name><value>web</value></member>"
        "<member><name>other_config</name><value><struct><member><name>k</name>"
        "<value>v</value></member></struct></value></member>"
        "<member><name>allowed_operations</name><value><array><data><value>start</value>"
        "<value>clone</value></data></array></value></member>"
        "</struct></value></member></struct></value>");
    assert_int_equal(v->n, 1);
    assert_string_equal(v->names[0], "OpaqueRef:a");
    const vb_xr_value *rec = &v->items[0];
    assert_string_equal(vb_xr_str(vb_xr_member(rec, "name_label")), "web");
    assert_string_equal(vb_xr_str(vb_xr_member(vb_xr_member(rec, "other_config"), "k")), "v");
    const vb_xr_value *ops = vb_xr_member(rec, "allowed_operations");
    assert_int_equal(ops->type, VB_XR_ARRAY);
    assert_int_equal(ops->n, 2);
    assert_string_equal(vb_xr_str(&ops->items[1]), "clone");
    vb_xr_value_free(v);
}

/* ---- malformed and hostile input ---------------------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *xml;
        const char *message;
    } cases[] = {
        { "", "empty" },
        { "not xml at all", "not well-formed" },
        { HEAD "<value>unterminated" TAIL, "not well-formed" },
        { HEAD "<value>a & b</value>" TAIL, "not well-formed" }, /* raw & in a value */
        { HEAD "<value>&bogus;</value>" TAIL, "not well-formed" },
        { "<methodCall/>", "not <methodResponse>" },
        { "<methodResponse/>", "without <params> or <fault>" },
        { "<methodResponse><params></params></methodResponse>", "exactly one <param>" },
        { "<methodResponse><params><param><value>1</value></param><param><value>2</value>"
          "</param></params></methodResponse>", "more than one element" },
        { HEAD "<value><int>1</int><int>2</int></value>" TAIL, "more than one element" },
        { HEAD "<value>text<int>1</int></value>" TAIL, "text next to a typed value" },
        { HEAD "<value><float>1</float></value>" TAIL, "unknown value type <float>" },
        { HEAD "<value><boolean>2</boolean></value>" TAIL, "neither 0 nor 1" },
        { HEAD "<value><array><value>1</value></array></value>" TAIL, "without <data>" },
        { HEAD "<value><array><data><int>1</int></data></array></value>" TAIL,
          "unexpected element in <data>" },
        { HEAD "<value><struct><member><name>x</name></member></struct></value>" TAIL,
          "needs a <name> and a <value>" },
        { HEAD "<value><struct><value>1</value></struct></value>" TAIL,
          "unexpected element in <struct>" },
        { HEAD "<value><string><b>1</b></string></value>" TAIL, "markup inside a scalar" },
        { HEAD "<value><struct><member><name>a</name></name><value>1</value></member></struct>"
          "</value>" TAIL, "not well-formed" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        parse_fails(cases[i].xml, strlen(cases[i].xml), VB_ERR_PROTOCOL, cases[i].message);
    /* truncated anywhere: always an error, never a crash */
    const char *good = HEAD "<value><struct><member><name>Status</name><value>Success</value>"
                            "</member></struct></value>" TAIL;
    for (size_t n = 1; n + 2 < strlen(good); n += 3) {
        vb_xr_value *v = NULL;
        vb_error err;
        assert_int_equal(vb_xr_parse_response(good, n, &v, &err), -1);
        assert_null(v);
    }
}

static void test_dtd_refused(void **state)
{
    (void)state;
    const char *laughs =
        "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY a \"aaaaaaaaaa\">"
        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
        "<methodResponse><params><param><value>&c;</value></param></params></methodResponse>";
    parse_fails(laughs, strlen(laughs), VB_ERR_PROTOCOL, "DTD");
    const char *external = "<?xml version=\"1.0\"?><!DOCTYPE m SYSTEM \"file:///etc/passwd\">"
                           "<methodResponse><params><param><value>x</value></param></params>"
                           "</methodResponse>";
    parse_fails(external, strlen(external), VB_ERR_PROTOCOL, "DTD");
}

static void test_depth_limit(void **state)
{
    (void)state;
    char *xml = malloc(64 * 1024);
    for (int depth = VB_XR_MAX_DEPTH; depth <= VB_XR_MAX_DEPTH + 1; depth++) {
        size_t at = (size_t)sprintf(xml, HEAD);
        for (int i = 0; i < depth; i++)
            at += (size_t)sprintf(xml + at, "<value><array><data>");
        at += (size_t)sprintf(xml + at, "<value>leaf</value>");
        for (int i = 0; i < depth; i++)
            at += (size_t)sprintf(xml + at, "</data></array></value>");
        sprintf(xml + at, TAIL);
        if (depth == VB_XR_MAX_DEPTH) {
            vb_xr_value *v = parse_ok(xml);
            vb_xr_value_free(v);
        } else {
            parse_fails(xml, strlen(xml), VB_ERR_PROTOCOL, "nested too deeply");
        }
    }
    /* far deeper than libxml2's own limit: still just an error */
    size_t at = (size_t)sprintf(xml, HEAD);
    for (int i = 0; i < 2000; i++)
        at += (size_t)sprintf(xml + at, "<value><array><data>");
    parse_fails(xml, at, VB_ERR_PROTOCOL, "");
    free(xml);
}

static void test_size_limit(void **state)
{
    (void)state;
    size_t len = (size_t)VB_XR_MAX_RESPONSE + 1;
    char *xml = malloc(len);
    memset(xml, ' ', len);
    parse_fails(xml, len, VB_ERR_TOO_LARGE, "over the");
    free(xml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_forms),       cmocka_unit_test(test_int_limits),
        cmocka_unit_test(test_scalars),         cmocka_unit_test(test_unescape),
        cmocka_unit_test(test_escape_request),  cmocka_unit_test(test_big_request),
        cmocka_unit_test(test_request_growth_wipes),
        cmocka_unit_test(test_unescaped_names), cmocka_unit_test(test_status),
        cmocka_unit_test(test_fault),           cmocka_unit_test(test_nested),
        cmocka_unit_test(test_malformed),       cmocka_unit_test(test_dtd_refused),
        cmocka_unit_test(test_depth_limit),     cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests_name("xenapi_xml", tests, NULL, NULL);
}
