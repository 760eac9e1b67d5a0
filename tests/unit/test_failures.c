/* Failed-login bookkeeping (daemon/vbh_failures.c), as an attacker and as
 * the account's owner see it: the clock is passed in, so nothing sleeps.
 * One person mistyping gets 0, 250 ms, 500 ms, ...; fifty parallel guesses
 * on one account line up behind each other; a success waits for the queue
 * but resets the count; another account is never slowed; the tables stay
 * within their size; sources are aggregated per IPv4 address (or prefix),
 * per IPv6 /64 and per uid; beyond the ceiling every answer is slow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "vbh_failures.h"
#include "vb_net.h"

#define T0 1000000u /* an arbitrary monotonic start */
#define MAX_MS 8000u

static vbh_failures *make(unsigned table_size, unsigned global_per_s)
{
    vbh_fail_limits lim = { .table_size = table_size, .forget_ms = 600000, .max_ms = MAX_MS,
                            .horizon_ms = 2 * MAX_MS, .global_per_s = global_per_s };
    vbh_failures *t = vbh_failures_new(&lim);
    assert_non_null(t);
    return t;
}

static uint64_t fail_at(vbh_failures *t, const char *account, const char *source, uint64_t now)
{
    vbh_fail_verdict v = vbh_failures_note(t, account, source, 0, now);
    assert_false(v.refused);
    return v.answer_at - now;
}

/* One person, one connection after another: the old per-peer steps. */
static void test_typos_grow_then_cap(void **state)
{
    (void)state;
    vbh_failures *t = make(64, 0);
    static const uint64_t want[] = { 0, 250, 500, 1000, 2000, 4000, 8000, 8000, 8000 };
    uint64_t now = T0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint64_t d = fail_at(t, "alice@R", "10.0.0.1/32", now);
        assert_int_equal(d, want[i]);
        now += d + 1; /* the next try comes after the answer */
    }
    assert_int_equal(vbh_failures_account_count(t, "alice@R", now), 9);
    vbh_failures_free(t);
}

/* Fifty sources guess one account at the same instant: the answers are
 * spread out as one client's would be, and beyond the horizon nothing is
 * judged (and nothing counted). */
static void test_parallel_guesses_line_up(void **state)
{
    (void)state;
    vbh_failures *t = make(256, 0);
    uint64_t last = T0, answered_in_10s = 0;
    unsigned refused = 0;
    for (int i = 0; i < 50; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d/32", i + 2);
        vbh_fail_verdict v = vbh_failures_note(t, "alice@R", src, 0, T0);
        if (v.refused) {
            refused++;
            assert_int_equal(v.answer_at, T0 + 2 * MAX_MS); /* not sooner than a queued one */
            continue;
        }
        assert_true(v.answer_at >= last);
        last = v.answer_at;
        answered_in_10s += v.answer_at - T0 < 10000;
    }
    /* 0, .25, .75, 1.75, 3.75, 7.75 s; then 15.75 s; the rest are refused */
    assert_int_equal(answered_in_10s, 6);
    assert_int_equal(refused, 50 - 7);
    assert_int_equal(vbh_failures_account_count(t, "alice@R", T0), 7);
    /* each source failed once: none is slowed by the others (refused ones count nothing) */
    assert_int_equal(vbh_failures_source_count(t, "127.0.0.3/32", T0), 1);
    vbh_failures_free(t);
}

/* The owner logs in while a few guesses are queued: in at once, and the
 * count restarts. Another account is answered at once throughout. */
static void test_success_resets(void **state)
{
    (void)state;
    vbh_failures *t = make(64, 0);
    for (int i = 0; i < 4; i++) /* booked: 0, .25, .75, 1.75 s */
        fail_at(t, "alice@R", "10.0.0.66/32", T0);
    vbh_fail_verdict v = vbh_failures_note(t, "alice@R", "10.0.0.1/32", 1, T0 + 100);
    assert_false(v.refused);
    assert_int_equal(v.answer_at, T0 + 100);
    assert_int_equal(vbh_failures_account_count(t, "alice@R", T0 + 100), 0);
    v = vbh_failures_note(t, "bob@R", "10.0.0.66/32", 1, T0 + 100);
    assert_int_equal(v.answer_at, T0 + 100);
    /* the next guess still lines up behind the queue, from a fresh count */
    assert_int_equal(fail_at(t, "alice@R", "10.0.0.2/32", T0 + 200), 1550);
    /* a success never creates an entry */
    size_t before = vbh_failures_entries(t);
    vbh_failures_note(t, "carol@R", "10.0.0.7/32", 1, T0 + 2000);
    assert_int_equal(vbh_failures_entries(t), before);
    vbh_failures_free(t);
}

/* A full queue refuses the right password as it refuses a wrong one (at
 * the same time), and drains within the horizon once the guessing stops. */
static void test_full_queue_refuses_then_drains(void **state)
{
    (void)state;
    vbh_failures *t = make(64, 0);
    for (int i = 0; i < 7; i++)
        fail_at(t, "alice@R", "10.0.0.66/32", T0);
    vbh_fail_verdict right = vbh_failures_note(t, "alice@R", "10.0.0.1/32", 1, T0 + 5);
    vbh_fail_verdict wrong = vbh_failures_note(t, "alice@R", "10.0.0.1/32", 0, T0 + 5);
    assert_true(right.refused);
    assert_true(wrong.refused);
    assert_int_equal(right.answer_at, wrong.answer_at);
    assert_int_equal(vbh_failures_account_count(t, "alice@R", T0 + 5), 7); /* not counted */
    right = vbh_failures_note(t, "alice@R", "10.0.0.1/32", 1, T0 + 2 * MAX_MS);
    assert_false(right.refused);
    vbh_failures_free(t);
}

/* Many sources guessing: each source's own queue too (one address with
 * twenty connections lines up like one account). */
static void test_one_source_many_accounts(void **state)
{
    (void)state;
    vbh_failures *t = make(256, 0);
    uint64_t last = 0;
    for (int i = 0; i < 6; i++) {
        char acct[32];
        snprintf(acct, sizeof acct, "user%d@R", i);
        uint64_t d = fail_at(t, acct, "10.9.9.9/32", T0);
        assert_true(i < 2 || d > last);
        last = d;
    }
    assert_int_equal(last, 7750);
    assert_int_equal(vbh_failures_source_count(t, "10.9.9.9/32", T0), 6);
    vbh_failures_free(t);
}

/* An unknown name costs an entry like a known one; the tables never hold
 * more than their size, and the least recently touched entry goes. */
static void test_table_is_bounded(void **state)
{
    (void)state;
    vbh_failures *t = make(16, 0);
    fail_at(t, "target@R", "10.0.0.1/32", T0);
    fail_at(t, "target@R", "10.0.0.1/32", T0 + 1);
    for (int i = 0; i < 10000; i++) {
        char acct[32], src[32];
        snprintf(acct, sizeof acct, "nobody%d@R", i);
        snprintf(src, sizeof src, "10.1.%d.%d/32", i / 256, i % 256);
        vbh_failures_note(t, acct, src, 0, T0 + 10 + (uint64_t)i);
        if (i % 8 == 0) /* kept warm: never the least recent */
            vbh_failures_note(t, "target@R", "10.0.0.1/32", 0, T0 + 10 + (uint64_t)i);
        assert_true(vbh_failures_entries(t) <= 32);
    }
    assert_int_equal(vbh_failures_account_count(t, "nobody0@R", T0 + 20000), 0); /* evicted */
    assert_true(vbh_failures_account_count(t, "target@R", T0 + 20000) > 2);
    vbh_failures_free(t);
}

/* A record is forgotten after forget_ms without failures. */
static void test_entries_expire(void **state)
{
    (void)state;
    vbh_failures *t = make(16, 0);
    for (int i = 0; i < 5; i++)
        fail_at(t, "alice@R", "10.0.0.1/32", T0);
    uint64_t later = T0 + 600000 + 20000;
    assert_int_equal(vbh_failures_account_count(t, "alice@R", later), 0);
    assert_int_equal(fail_at(t, "alice@R", "10.0.0.1/32", later), 0);
    vbh_failures_free(t);
}

/* Beyond the ceiling every answer is slow, successes included, and the
 * failures come out at the ceiling's rate; a second later all is well. */
static void test_global_ceiling(void **state)
{
    (void)state;
    vbh_failures *t = make(256, 5);
    for (int i = 0; i < 5; i++) {
        char acct[32];
        snprintf(acct, sizeof acct, "user%d@R", i);
        assert_int_equal(fail_at(t, acct, NULL, T0), 0);
    }
    uint64_t prev = 0;
    for (int i = 5; i < 15; i++) {
        char acct[32];
        snprintf(acct, sizeof acct, "user%d@R", i);
        uint64_t d = fail_at(t, acct, NULL, T0);
        assert_true(d >= VBH_FAIL_GLOBAL_DELAY_MS);
        assert_true(i < 6 || d >= prev + 200 || d == VBH_FAIL_GLOBAL_DELAY_MS);
        prev = d;
    }
    assert_int_equal(prev, 2000); /* ten beyond the ceiling: one per 200 ms */
    vbh_fail_verdict v = vbh_failures_note(t, "owner@R", NULL, 1, T0 + 10);
    assert_int_equal(v.answer_at, T0 + 10 + VBH_FAIL_GLOBAL_DELAY_MS);
    v = vbh_failures_note(t, "owner@R", NULL, 1, T0 + 2000);
    assert_int_equal(v.answer_at, T0 + 2000);
    vbh_failures_free(t);
}

static void key_of(const char *addr, unsigned v4, unsigned v6, char *out, size_t len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
        sl = sizeof *s4;
    }
    assert_int_equal(vb_net_addr_group((struct sockaddr *)&ss, sl, v4, v6, out, len), 0);
}

static void test_source_keys(void **state)
{
    (void)state;
    char a[64], b[64];
    key_of("192.0.2.7", 32, 64, a, sizeof a);
    assert_string_equal(a, "192.0.2.7/32");
    key_of("192.0.2.8", 32, 64, b, sizeof b);
    assert_string_not_equal(a, b);
    key_of("192.0.2.200", 24, 64, a, sizeof a);
    assert_string_equal(a, "192.0.2.0/24");
    key_of("192.0.2.77", 20, 64, a, sizeof a);
    assert_string_equal(a, "192.0.0.0/20");
    /* one /64 is one source, however many addresses an attacker takes from it */
    key_of("2001:db8:1:2:aaaa::1", 32, 64, a, sizeof a);
    key_of("2001:db8:1:2:ffff:1:2:3", 32, 64, b, sizeof b);
    assert_string_equal(a, b);
    assert_string_equal(a, "2001:db8:1:2::/64");
    key_of("2001:db8:1:3::1", 32, 64, b, sizeof b);
    assert_string_not_equal(a, b);
    key_of("2001:db8:1:2:aaaa::1", 32, 48, a, sizeof a);
    assert_string_equal(a, "2001:db8:1::/48");
    /* an IPv4 peer on a dual-stack socket counts as that IPv4 address */
    key_of("::ffff:192.0.2.7", 32, 64, a, sizeof a);
    assert_string_equal(a, "192.0.2.7/32");
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    assert_int_equal(vb_net_addr_group((struct sockaddr *)&un, sizeof un, 32, 64, a, sizeof a), -1);
}

/* Names longer than a key share one entry: more delay, never less. */
static void test_long_names_share_an_entry(void **state)
{
    (void)state;
    vbh_failures *t = make(16, 0);
    char a[300], b[300];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[250] = 'y';
    fail_at(t, a, NULL, T0);
    assert_int_equal(fail_at(t, b, NULL, T0), 250);
    vbh_failures_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typos_grow_then_cap),
        cmocka_unit_test(test_parallel_guesses_line_up),
        cmocka_unit_test(test_success_resets),
        cmocka_unit_test(test_full_queue_refuses_then_drains),
        cmocka_unit_test(test_one_source_many_accounts),
        cmocka_unit_test(test_table_is_bounded),
        cmocka_unit_test(test_entries_expire),
        cmocka_unit_test(test_global_ceiling),
        cmocka_unit_test(test_source_keys),
        cmocka_unit_test(test_long_names_share_an_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
