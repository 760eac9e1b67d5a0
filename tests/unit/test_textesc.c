/* vb_text_escape (proto/vb_textesc.c) and the typed CRED_FILL fields
 * (util/vb_credwire.c): what a hop supplies is shown escaped, and a body
 * from a peer before the typed fields still decodes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vb_credwire.h"
#include "vb_msg.h"
#include "vb_textesc.h"

static void check(const char *in, const char *want)
{
    char *out = vb_text_escape(in);
    assert_non_null(out);
    assert_string_equal(out, want);
    char *again = vb_text_escape(out); /* idempotent: the terminal escapes once more */
    assert_string_equal(again, want);
    free(again);
    free(out);
}

static void test_escapes(void **state)
{
    (void)state;
    check("plain host:16509 \xc3\xa9t\xc3\xa9 \xe2\x86\x92 ok", "plain host:16509 \xc3\xa9t\xc3\xa9 \xe2\x86\x92 ok");
    check("a\x1b[2Jb\tc\x7f", "a\\x1b[2Jb\\x09c\\x7f");
    check("x\xc2\x9b" "2J", "x\\x9b2J");                          /* C1 CSI */
    check("gpj\xe2\x80\xae" "exe", "gpj\\u202eexe");               /* RLO */
    check("l1\xe2\x80\xa8l2\xe2\x80\xa9", "l1\\u2028l2\\u2029");   /* separators */
    check("\xe2\x81\xa6i\xe2\x81\xa9\xe2\x80\x8e\xe2\x80\x8f", "\\u2066i\\u2069\\u200e\\u200f");
    check("bad\xff\xc0\xaf", "bad\\xff\\xc0\\xaf");               /* not UTF-8, overlong */
    check("", "");
    assert_null(vb_text_escape(NULL));
    char small[7]; /* "ab\\x1bc" would need 8 */
    assert_string_equal(vb_text_escape_into("ab\x1b" "cdef", small, sizeof small), "ab\\x1b");
}

/* vb_text_escape_lines keeps LF and nothing else (issue 15.1) */
static void test_escape_lines(void **state)
{
    (void)state;
    char *out = vb_text_escape_lines("a\nb\r\x1b[2Jc\xc2\x85" "d\xe2\x80\xa8" "e\x0b\x0c");
    assert_non_null(out);
    assert_string_equal(out, "a\nb\\x0d\\x1b[2Jc\\x85d\\u2028e\\x0b\\x0c");
    char *again = vb_text_escape_lines(out);
    assert_string_equal(again, out);
    free(again);
    free(out);
    assert_null(vb_text_escape_lines(NULL));
    check("a\nb", "a\\x0ab");                                   /* the plain one still escapes it */
}

/* The broker shows an app its own host key question over several lines; a
 * relayed question, or any other kind, stays on one line. */
static void test_request_escape_keeps_own_hostkey_lines(void **state)
{
    (void)state;
    static const char prompt[] = "The authenticity of host 'h' can't be established.\n"
                                 "ED25519 key fingerprint is SHA256:abc.\nContinue (yes/no)?";
    struct { const char *kind; int hop; int keeps; } cases[] = {
        { "ssh-hostkey", 0, 1 }, { "ssh-hostkey", 1, 0 }, { "ssh-password", 0, 0 }, { NULL, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vb_cred_request req = { 0 };
        req.service = strdup("ssh host key of h\nLogin for bank");
        assert_int_equal(vb_cred_request_set_target(&req, cases[i].kind, "ssh", "h", 22, NULL), 0);
        assert_int_equal(vb_cred_request_add(&req, VB_CRED_ECHOPROMPT, prompt, "c\nd", "no"), 0);
        if (cases[i].hop)
            assert_int_equal(vb_cred_request_qualify(&req, "vbhostd on d"), 0);
        assert_int_equal(vb_cred_request_escape(&req), 0);
        assert_null(strchr(req.service, '\n'));
        assert_string_equal(req.items[0].challenge, "c\\x0ad");      /* only the prompt */
        if (cases[i].keeps) {
            assert_string_equal(req.items[0].prompt, prompt);
        } else {
            assert_null(strchr(req.items[0].prompt, '\n'));
            assert_non_null(strstr(req.items[0].prompt, "established.\\x0aED25519"));
        }
        vb_cred_request_clear(&req);
    }
}

/* An old peer's body [service, hops, retry, items] decodes with no kind;
 * a new one round-trips every typed field. */
static void test_credwire_typed_fields(void **state)
{
    (void)state;
    vb_cred_request req = { 0 }, back = { 0 };
    req.service = strdup("xenapi://10.0.0.5:443/");
    assert_int_equal(vb_cred_request_set_target(&req, "xenapi", "xenapi", "10.0.0.5", 443, "root"), 0);
    req.id = 77;
    assert_int_equal(vb_cred_request_add(&req, VB_CRED_PASSPHRASE, "Password", NULL, NULL), 0);
    vb_msg_header h = { VB_PROG_HOST, 2, VB_MSG_CALLBACK, 1, VB_HOST_PROC_CRED_FILL, 0, 0 };
    vb_enc enc;
    uint8_t *frame;
    size_t len;
    vb_enc_begin(&enc, &h);
    vb_credwire_encode_request(&enc, &req);
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, NULL), 0);
    vb_msg m;
    uint8_t *payload = malloc(len - 4);
    memcpy(payload, frame + 4, len - 4);
    assert_int_equal(vb_msg_decode(&m, payload, len - 4, NULL), 0);
    assert_int_equal(vb_credwire_decode_request(m.body, &back, NULL), 0);
    assert_int_equal(back.id, 77);
    assert_string_equal(back.kind, "xenapi");
    assert_string_equal(back.target.host, "10.0.0.5");
    assert_int_equal(back.target.port, 443);
    assert_string_equal(back.target.user, "root");
    vb_msg_clear(&m);
    vb_frame_free(frame, len);
    vb_cred_request_clear(&back);

    /* the old shape */
    vb_enc_begin(&enc, &h);
    vb_enc_array(&enc, 4);
    vb_enc_str(&enc, "vbhostd on old");
    vb_enc_array(&enc, 0);
    vb_enc_bool(&enc, 1);
    vb_enc_array(&enc, 0);
    assert_int_equal(vb_enc_finish(&enc, VB_FRAME_MAX_POSTAUTH, &frame, &len, NULL), 0);
    payload = malloc(len - 4);
    memcpy(payload, frame + 4, len - 4);
    assert_int_equal(vb_msg_decode(&m, payload, len - 4, NULL), 0);
    assert_int_equal(vb_credwire_decode_request(m.body, &back, NULL), 0);
    assert_string_equal(back.service, "vbhostd on old");
    assert_null(back.kind);
    assert_int_equal(back.id, 0);
    assert_int_equal(back.nverified, 0);
    vb_msg_clear(&m);
    vb_frame_free(frame, len);
    vb_cred_request_clear(&back);
    vb_cred_request_clear(&req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_escape_lines),
        cmocka_unit_test(test_request_escape_keeps_own_hostkey_lines),
        cmocka_unit_test(test_credwire_typed_fields),
    };
    return cmocka_run_group_tests_name("textesc", tests, NULL, NULL);
}
