/* util/vb_buf: the buffer for secrets. Through an allocator hook the test
 * sees every block the buffer gives back: each must be all zero by then
 * (growth never leaves the old copy, free wipes), and growth must never
 * hand a live block to realloc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vb_buf.h"

static size_t released, released_dirty, allocated;

static void *counting_alloc(size_t n)
{
    allocated++;
    return malloc(n);
}

/* called with a block the buffer is done with, before it is freed */
static void checking_release(void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) {
            released_dirty++;
            break;
        }
    released++;
    free(p);
}

static int hook(void **state)
{
    (void)state;
    released = released_dirty = allocated = 0;
    vb_buf_set_allocator(counting_alloc, checking_release);
    return 0;
}

static int unhook(void **state)
{
    (void)state;
    vb_buf_set_allocator(NULL, NULL);
    return 0;
}

static const char secret[] = "hunter2-correct-horse-battery";

static void test_growth_wipes_the_old_block(void **state)
{
    (void)state;
    vb_buf b = VB_BUF_INIT;
    assert_int_equal(vb_buf_append(&b, secret, sizeof secret), 0);
    size_t first_cap = b.cap;
    /* grow past the first block, several times */
    uint8_t big[10000];
    memset(big, 'S', sizeof big);
    for (int i = 0; i < 4; i++)
        assert_int_equal(vb_buf_append(&b, big, sizeof big), 0);
    assert_true(b.cap > first_cap);
    assert_true(released >= 2);            /* the old blocks went back ... */
    assert_int_equal(released_dirty, 0);   /* ... wiped */
    assert_int_equal(vb_buf_len(&b), sizeof secret + 4 * sizeof big);
    assert_memory_equal(vb_buf_data(&b), secret, sizeof secret); /* and nothing was lost */
    assert_int_equal(vb_buf_data(&b)[sizeof secret + 4 * sizeof big - 1], 'S');
    size_t before = released;
    vb_buf_free(&b);
    assert_int_equal(released, before + 1);
    assert_int_equal(released_dirty, 0);   /* free wipes too */
    assert_null(b.data);
    assert_int_equal(allocated, released);
}

static void test_consume_wipes_and_reuses(void **state)
{
    (void)state;
    vb_buf b = VB_BUF_INIT;
    assert_int_equal(vb_buf_reserve(&b, 32768), 0);
    assert_true(b.cap >= 32768);
    uint8_t *block = b.data;
    memcpy(vb_buf_space(&b), secret, sizeof secret); /* a reader fills it directly */
    vb_buf_added(&b, sizeof secret);
    vb_buf_consume(&b, 10);
    assert_int_equal(vb_buf_len(&b), sizeof secret - 10);
    assert_memory_equal(vb_buf_data(&b), secret + 10, sizeof secret - 10);
    vb_buf_consume(&b, sizeof secret - 10);
    assert_int_equal(vb_buf_len(&b), 0);
    /* all sent: the bytes are gone from the block at once, not at free */
    for (size_t i = 0; i < sizeof secret; i++)
        assert_int_equal(block[i], 0);
    assert_ptr_equal(vb_buf_space(&b), block); /* reused from its start */
    assert_int_equal(allocated, 1);
    vb_buf_consume(&b, 5); /* more than there is: nothing happens */
    assert_int_equal(vb_buf_len(&b), 0);
    vb_buf_free(&b);
    assert_int_equal(released_dirty, 0);
}

static void test_growth_keeps_only_unconsumed(void **state)
{
    (void)state;
    vb_buf b = VB_BUF_INIT;
    assert_int_equal(vb_buf_append(&b, "0123456789", 10), 0);
    vb_buf_consume(&b, 4);
    uint8_t big[8192] = { 0 };
    assert_int_equal(vb_buf_append(&b, big, sizeof big), 0);
    assert_int_equal(b.off, 0);
    assert_memory_equal(vb_buf_data(&b), "456789", 6);
    assert_int_equal(released_dirty, 0);
    vb_buf_free(&b);
}

static void test_steal(void **state)
{
    (void)state;
    vb_buf b = VB_BUF_INIT;
    size_t len = 99;
    assert_null(vb_buf_steal(&b, &len)); /* empty */
    assert_int_equal(len, 0);
    assert_int_equal(vb_buf_append(&b, "xxsecret", 8), 0);
    vb_buf_consume(&b, 2);
    uint8_t *out = vb_buf_steal(&b, &len);
    assert_non_null(out);
    assert_int_equal(len, 6);
    assert_memory_equal(out, "secret", 6);
    assert_int_equal(out[6], 0); /* the moved-from tail is wiped */
    assert_int_equal(out[7], 0);
    assert_null(b.data);
    explicit_bzero(out, len);
    free(out);
}

static void test_refuses_absurd_sizes(void **state)
{
    (void)state;
    vb_buf b = VB_BUF_INIT;
    assert_int_equal(vb_buf_append(&b, "ab", 2), 0);
    assert_int_equal(vb_buf_reserve(&b, SIZE_MAX - 1), -1);
    assert_int_equal(vb_buf_len(&b), 2); /* unchanged */
    assert_memory_equal(vb_buf_data(&b), "ab", 2);
    vb_buf_free(&b);
    vb_buf_free(&b); /* twice is harmless */
    assert_int_equal(released_dirty, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_growth_wipes_the_old_block, hook, unhook),
        cmocka_unit_test_setup_teardown(test_consume_wipes_and_reuses, hook, unhook),
        cmocka_unit_test_setup_teardown(test_growth_keeps_only_unconsumed, hook, unhook),
        cmocka_unit_test_setup_teardown(test_steal, hook, unhook),
        cmocka_unit_test_setup_teardown(test_refuses_absurd_sizes, hook, unhook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
