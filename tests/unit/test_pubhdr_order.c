/* test_pubhdr.c the other way round: every internal header of the product
 * folders first, <vbroker.h> last. It compiles (the point), and the
 * names both define once are the same things. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vb_internal_headers.h"
#include "vbroker.h"

static void test_shared_names(void **state)
{
    (void)state;
    /* a credential item as the chain carries it, answered in public terms */
    vb_cred_item item = { .type = VB_CRED_PASSPHRASE };
    vb_credential pub = { .type = item.type };
    assert_int_equal(pub.type, 5);
    assert_string_equal(vb_cred_type_name(pub.type), vb_cred_type_name(VB_CRED_PASSPHRASE));
    /* the drivers' flags keep the public bits and add private ones above them */
    assert_int_equal(VB_OPEN_WIRE_FLAGS, VB_OPEN_READ_ONLY);
    assert_true(((unsigned)VB_OPEN_FROM_WIRE & (VB_OPEN_READ_ONLY | VB_OPEN_NON_INTERACTIVE)) == 0);
    assert_string_equal(vb_domain_state_string(VB_DOMAIN_SHUTOFF), "shut off");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
