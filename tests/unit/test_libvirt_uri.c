/* libvirt:URI (issue 19): the libvirt URI after "libvirt:" is libvirt's,
 * query string included, and passes through untouched; a malformed scheme
 * fails before any driver runs; the libvirt driver refuses URIs that came
 * over the wire unless it is plain TCP without parameters (vbhostd must
 * never reach libvirt as itself). No libvirtd here:
 * tests/integ/test_libvirt.c has the real one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_driver.h"
#include "vb_libvirt.h"
#include "vb_uri.h"

static void test_libvirt_uri_passes_through(void **state)
{
    (void)state;
    static const char *const inner[] = {
        "test+tcp://127.0.0.1:16509/default",
        "qemu+ssh://root@host.example/system?keyfile=/k&no_verify=1&unknown=x%20y",
        "qemu:///session",
        "qemu+tls://[::1]:16514/system?pkipath=/p",
    };
    for (size_t i = 0; i < sizeof inner / sizeof inner[0]; i++) {
        char text[300];
        snprintf(text, sizeof text, "libvirt:%s", inner[i]);
        vb_uri u;
        vb_error err;
        vb_error_clear(&err);
        assert_int_equal(vb_uri_parse(text, &u, &err), 0);
        assert_true(vb_uri_is_libvirt(&u));
        assert_false(vb_uri_is_remote(&u));
        assert_string_equal(u.driver, "libvirt");
        assert_string_equal(u.path, inner[i]); /* not decoded, not split */
        assert_int_equal(u.nparams, 0);
        assert_null(u.host);
        char *back = vb_uri_format(&u);
        assert_non_null(back);
        assert_string_equal(back, text);
        free(back);
        const vb_driver *drv = vb_driver_for_uri(&u, &err);
        assert_non_null(drv);
        assert_string_equal(drv->name, "libvirt");
        vb_uri_clear(&u);
    }
}

static void test_libvirt_uri_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = { "libvirt:", "libvirt:noscheme", "libvirt:1qemu:///system",
                                       "libvirt:qe mu:///system", "libvirt::///x",
                                       "libvirt:qemu:///system\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vb_uri u;
        vb_error err;
        vb_error_clear(&err);
        assert_int_equal(vb_uri_parse(bad[i], &u, &err), -1);
        assert_int_equal(err.code, VB_ERR_INVALID_ARG);
        assert_null(u.driver);
        assert_null(u.path);
    }
}

/* A client of vbhostd must not make it open libvirt with the daemon's own
 * uid, keys, certificate or files: only DRIVER+tcp://HOST[:PORT]/PATH
 * without parameters, refused before libvirt is touched. */
static void test_libvirt_from_wire_refused(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "libvirt:qemu:///system",
        "libvirt:qemu+ssh://root@h/system",
        "libvirt:qemu+tls://h/system",
        "libvirt:qemu+unix:///system?socket=/run/x",
        "libvirt:qemu+tcp://h/system?authfile=/etc/shadow",
        "libvirt:qemu+tcp:///system",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        vb_uri u;
        vb_error err;
        assert_int_equal(vb_uri_parse(refused[i], &u, &err), 0);
        void *conn = NULL;
        assert_int_equal(vb_libvirt_driver.open(&u, VB_OPEN_FROM_WIRE | VB_OPEN_PRIVATE, NULL,
                                                &conn, &err),
                         -1);
        assert_int_equal(err.code, VB_ERR_OPERATION_INVALID);
        assert_null(conn);
        vb_uri_clear(&u);
    }
    assert_int_equal(vb_libvirt_driver_logins(), 0);
    char host[64];
    int port = 0;
    vb_error err;
    assert_int_equal(vb_libvirt_wire_endpoint("test+tcp://127.0.0.1/default", host, sizeof host,
                                              &port, &err),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 16509);
    assert_int_equal(vb_libvirt_wire_endpoint("qemu+tcp://alice@h1:1234/system", host,
                                              sizeof host, &port, &err),
                     0);
    assert_string_equal(host, "h1");
    assert_int_equal(port, 1234);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libvirt_uri_passes_through),
        cmocka_unit_test(test_libvirt_uri_malformed),
        cmocka_unit_test(test_libvirt_from_wire_refused),
    };
    return cmocka_run_group_tests_name("libvirt_uri", tests, NULL, NULL);
}
