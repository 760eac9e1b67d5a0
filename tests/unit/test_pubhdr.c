/* The public header composes: <vbroker.h> first, then every internal
 * header of the product folders (the list the Makefile generates from the
 * tree, so a new header is covered without editing this file);
 * test_pubhdr_order.c includes them the other way round. And every public
 * error code and domain is the wire's number: a wire code or domain with no
 * public name, or with another number, does not compile; a public one the
 * wire does not have fails at run time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vbroker.h"
#include "vb_internal_headers.h"

/* wire → public, at compile time */
#define VB_X(name, num, str)                                                                 \
    _Static_assert((int)VBROKER_ERR_##name == (int)VB_ERR_##name && VB_ERR_##name == num,             \
                   "public error code " #name " is not the wire's " #num);
VB_ERROR_CODES(VB_X)
#undef VB_X
#define VB_X(name, num, str)                                                                 \
    _Static_assert((int)VBROKER_DOM_##name == (int)VB_DOM_##name && VB_DOM_##name == num,             \
                   "public error domain " #name " is not the wire's " #num);
VB_ERROR_DOMAINS(VB_X)
#undef VB_X

typedef struct {
    int value;
    const char *name;
} named;
#define P(prefix, name) { prefix##name, #name }

/* every public code, by hand: the wire must know each by the same name */
static const named public_codes[] = {
    P(VBROKER_ERR_, OK), P(VBROKER_ERR_, INTERNAL), P(VBROKER_ERR_, NO_MEMORY),
    P(VBROKER_ERR_, SYSTEM), P(VBROKER_ERR_, PROTOCOL), P(VBROKER_ERR_, TOO_LARGE),
    P(VBROKER_ERR_, NO_SUPPORT), P(VBROKER_ERR_, AUTH_REQUIRED), P(VBROKER_ERR_, AUTH_FAILED),
    P(VBROKER_ERR_, AUTH_CANCELLED), P(VBROKER_ERR_, AUTH_UNAVAILABLE),
    P(VBROKER_ERR_, CRED_REQUIRED), P(VBROKER_ERR_, INVALID_ARG), P(VBROKER_ERR_, NO_CONNECT),
    P(VBROKER_ERR_, NOT_OPEN), P(VBROKER_ERR_, NO_DOMAIN), P(VBROKER_ERR_, OPERATION_INVALID),
    P(VBROKER_ERR_, READ_ONLY), P(VBROKER_ERR_, TIMEOUT), P(VBROKER_ERR_, CONFIG),
    P(VBROKER_ERR_, RATE_LIMITED), P(VBROKER_ERR_, TOO_MANY_CLIENTS), P(VBROKER_ERR_, PEER_CLOSED),
    P(VBROKER_ERR_, NO_DRIVER), P(VBROKER_ERR_, HOST_KEY), P(VBROKER_ERR_, STORE),
    P(VBROKER_ERR_, REMOTE), P(VBROKER_ERR_, TOKEN_REFUSED),
};
static const named public_domains[] = {
    P(VBROKER_DOM_, NONE), P(VBROKER_DOM_, PROTO), P(VBROKER_DOM_, RPC), P(VBROKER_DOM_, AUTH),
    P(VBROKER_DOM_, SASL), P(VBROKER_DOM_, DRIVER), P(VBROKER_DOM_, BROKER),
    P(VBROKER_DOM_, DAEMON), P(VBROKER_DOM_, SSH), P(VBROKER_DOM_, XENAPI),
    P(VBROKER_DOM_, STORE), P(VBROKER_DOM_, CONFIG), P(VBROKER_DOM_, SYSTEM),
    P(VBROKER_DOM_, CLIENT),
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_every_public_code_is_on_the_wire(void **state)
{
    (void)state;
    static const named wire[] = {
#define VB_X(name, num, str) { num, #name },
        VB_ERROR_CODES(VB_X)
#undef VB_X
    };
    assert_int_equal(COUNT(public_codes), COUNT(wire)); /* none public only, none missing */
    for (size_t i = 0; i < COUNT(public_codes); i++) {
        const char *wname = vb_proto_error_code_name(public_codes[i].value);
        assert_non_null(wname);
        assert_string_equal(wname, public_codes[i].name);
    }
}

static void test_every_public_domain_is_on_the_wire(void **state)
{
    (void)state;
    static const named wire[] = {
#define VB_X(name, num, str) { num, str },
        VB_ERROR_DOMAINS(VB_X)
#undef VB_X
    };
    assert_int_equal(COUNT(public_domains), COUNT(wire));
    for (size_t i = 0; i < COUNT(public_domains); i++) {
        const char *wname = vb_proto_error_domain_name(public_domains[i].value);
        assert_non_null(wname);
        /* the wire's names are lower case: "client" for CLIENT */
        char lower[32];
        size_t n = strlen(public_domains[i].name);
        assert_true(n < sizeof lower);
        for (size_t k = 0; k <= n; k++)
            lower[k] = (char)(public_domains[i].name[k] | (k < n ? 0x20 : 0));
        assert_string_equal(wname, lower);
    }
}

/* The library itself reports an unreachable broker in the public CLIENT
 * domain (what vbctl tests for). */
static void test_unreachable_broker_is_client_domain(void **state)
{
    (void)state;
    setenv("VBROKER_SOCKET", "/nonexistent-vbroker-test/sock", 1);
    setenv("VBROKER_NO_AUTOSTART", "1", 1);
    vb_error err;
    memset(&err, 0, sizeof err);
    vb_conn *c = vb_open_auth("test:///default", NULL, VB_OPEN_NON_INTERACTIVE, &err);
    assert_null(c);
    assert_int_equal(err.domain, VBROKER_DOM_CLIENT);
    assert_int_equal(err.code, VBROKER_ERR_NO_CONNECT);
    assert_true(err.message[0] != '\0');
}

/* One struct for both sides: the internal setter fills what an
 * application reads. */
static void test_error_struct_is_shared(void **state)
{
    (void)state;
    assert_int_equal(offsetof(vb_error, message), 2 * sizeof(int));
    assert_int_equal(sizeof(((vb_error *)0)->message), 512);
    vb_error err;
    assert_int_equal(vb_error_set(&err, VB_ERR_HOST_KEY, VB_DOM_SSH, "x%d", 1), -1);
    assert_int_equal(err.code, VBROKER_ERR_HOST_KEY);
    assert_int_equal(err.domain, VBROKER_DOM_SSH);
    assert_string_equal(err.message, "x1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_public_code_is_on_the_wire),
        cmocka_unit_test(test_every_public_domain_is_on_the_wire),
        cmocka_unit_test(test_unreachable_broker_is_client_domain),
        cmocka_unit_test(test_error_struct_is_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
