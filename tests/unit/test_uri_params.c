/* vb_driver_check_uri: which drivers and parameters a URI may name, per
 * driver and transport, nested name= URIs included. Pure: nothing connects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vb_driver.h"

/* 0 or -1 from the check; err filled */
static int check(const char *text, vb_error *err)
{
    vb_uri uri;
    if (vb_uri_parse(text, &uri, err) < 0)
        fail_msg("%s does not parse: %s", text, err->message);
    vb_error_clear(err);
    int rc = vb_driver_check_uri(&uri, err);
    vb_uri_clear(&uri);
    return rc;
}

static void accepted(const char *text)
{
    vb_error err;
    if (check(text, &err) < 0)
        fail_msg("%s refused: %s", text, err.message);
}

static void refused(const char *text, int code, const char *const needles[])
{
    vb_error err;
    if (check(text, &err) == 0)
        fail_msg("%s accepted", text);
    if (err.code != code)
        fail_msg("%s: code %d, expected %d (%s)", text, err.code, code, err.message);
    for (size_t i = 0; needles[i]; i++)
        if (!strstr(err.message, needles[i]))
            fail_msg("%s: '%s' not in: %s", text, needles[i], err.message);
}

/* Every parameter the documentation lists, where it applies. */
static void test_known_params_pass(void **state)
{
    (void)state;
    accepted("test:///default");
    accepted("test:///default?authfile=/a");
    accepted("xenapi://root@x/?transport=http&cafile=/c&no_verify=1&timeout=5&authfile=/a");
    accepted("test+unix:///default?socket=/s&server_uid=0&auth=peer&authfile=/a");
    accepted("test+tcp://h/default?auth=sasl.SCRAM-SHA-256&name=test:///default");
    accepted("test+ssh://a@h/default?socket=/s&sshauth=password&keyfile=/k&known_hosts=/kh"
             "&known_hosts_verify=auto&auth=sasl");
    /* the chains of docs/xenapi.md and README */
    accepted("xenapi+ssh://alice@h/?name=xenapi://xen1/");
    accepted("test+unix:///default?socket=/a&name=test%2Bunix%3A%2F%2F%2Fdefault%3Fsocket%3D%2Fb"
             "%26auth%3Dsasl");
    accepted("xenapi+tcp://h:16509/?name=xenapi://root@x/?no_verify=1%26timeout=9&auth=token");
}

static void test_unknown_param_named_with_the_known_ones(void **state)
{
    (void)state;
    refused("test+unix:///default?atuh=sasl", VB_ERR_INVALID_ARG,
            (const char *const[]){ "unknown URI parameter 'atuh' for test+unix://", "known: ",
                                   "socket", "server_uid", "auth", "name", "authfile", NULL });
    /* per transport: ssh's keys are not unix's, unix's not tcp's */
    refused("test+unix:///default?keyfile=/k", VB_ERR_INVALID_ARG,
            (const char *const[]){ "'keyfile'", NULL });
    refused("test+tcp://h/default?socket=/s", VB_ERR_INVALID_ARG,
            (const char *const[]){ "'socket'", "test+tcp://", NULL });
    refused("test+ssh://h/default?server_uid=0", VB_ERR_INVALID_ARG,
            (const char *const[]){ "'server_uid'", "sshauth", "known_hosts_verify", NULL });
    /* per driver: the xenapi driver's keys on a test URI, and remote keys on a local one */
    refused("test:///default?timeout=5", VB_ERR_INVALID_ARG,
            (const char *const[]){ "'timeout'", "known: authfile", NULL });
    refused("xenapi://x/?auth=sasl", VB_ERR_INVALID_ARG,
            (const char *const[]){ "'auth'", "transport", "cafile", "no_verify", "timeout",
                                   NULL });
    /* a remote URI's own params are not passed on: the driver's are unknown there */
    refused("xenapi+ssh://h/?timeout=5", VB_ERR_INVALID_ARG,
            (const char *const[]){ "'timeout'", NULL });
    /* a key without a value is a key too */
    refused("test:///default?no_verify", VB_ERR_INVALID_ARG,
            (const char *const[]){ "'no_verify'", NULL });
}

static void test_twice(void **state)
{
    (void)state;
    refused("test+unix:///default?auth=sasl&auth=token", VB_ERR_INVALID_ARG,
            (const char *const[]){ "'auth' is given twice", NULL });
}

static void test_drivers(void **state)
{
    (void)state;
    refused("bogus:///", VB_ERR_NO_DRIVER,
            (const char *const[]){ "no driver named 'bogus'", "test, xenapi", NULL });
    refused("tset+ssh://h/default", VB_ERR_NO_DRIVER,
            (const char *const[]){ "'tset'", NULL });
    refused("xenapi+ssh://h/?name=xenpai://x/", VB_ERR_NO_DRIVER,
            (const char *const[]){ "in name=", "'xenpai'", NULL });
}

static void test_nested(void **state)
{
    (void)state;
    /* the broker reads the outer URI's authfile=, nobody a nested one's */
    refused("test+tcp://h/?name=test:///default%3Fauthfile=/a", VB_ERR_INVALID_ARG,
            (const char *const[]){ "in name=: ", "'authfile'", "known: none", NULL });
    refused("xenapi+ssh://h/?name=xenapi://x/?no_verfy=1", VB_ERR_INVALID_ARG,
            (const char *const[]){ "in name=: ", "'no_verfy'", "for xenapi://", NULL });
    refused("test+tcp://h/?name=not-a-uri", VB_ERR_INVALID_ARG,
            (const char *const[]){ "in name=: ", "invalid URI", NULL });
    /* three hops (two name= levels) pass; nesting without end does not */
    accepted("test+tcp://a/?name=test%2Btcp%3A%2F%2Fb%2F%3Fname%3Dtest%3A%2F%2F%2Fdefault");
    refused("test+tcp://a/?name=test%2Btcp%3A%2F%2Fb%2F%3Fname%3Dtest%252Btcp%253A%252F%252Fc"
            "%252F%253Fname%253Dtest%25252Btcp%25253A%25252F%25252Fd%25252F%25253Fname%25253D"
            "test%2525253A%2525252F%2525252Fdefault",
            VB_ERR_INVALID_ARG, (const char *const[]){ "nested in name=", NULL });
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_params_pass),
        cmocka_unit_test(test_unknown_param_named_with_the_known_ones),
        cmocka_unit_test(test_twice),
        cmocka_unit_test(test_drivers),
        cmocka_unit_test(test_nested),
    };
    return cmocka_run_group_tests_name("uri_params", tests, NULL, NULL);
}
