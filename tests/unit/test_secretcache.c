/* Secret cache tests, as the user's story: type a password once, log in
 * again without typing, stop using it and it is gone, the password changes
 * and a stale failure does not throw the new one away. Time is passed in,
 * so nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vb_secretcache.h"

#define MIN (60u * 1000u)
#define HOUR (60u * MIN)
#define T0 1000000u   /* an arbitrary monotonic start */

static void add_item(vb_cred_request *req, int type, const char *prompt, const char *result)
{
    assert_int_equal(vb_cred_request_add(req, type, prompt, NULL, NULL), 0);
    if (result)
        assert_int_equal(vb_cred_item_set_result(&req->items[req->nitems - 1], result,
                                                 strlen(result)), 0);
}

/* A login form: name and password, answered when the strings are given. */
static void login_req(vb_cred_request *req, const char *user, const char *pass)
{
    memset(req, 0, sizeof *req);
    add_item(req, VB_CRED_AUTHNAME, "Name", user);
    add_item(req, VB_CRED_PASSPHRASE, "Password", pass);
}

static void approve_login(vb_secretcache *c, const char *service, const char *user,
                          const char *pass, uint64_t now)
{
    vb_cred_request req;
    login_req(&req, user, pass);
    assert_int_equal(vb_secretcache_approve(c, service, &req, now), 0);
    vb_cred_request_clear(&req);
}

static void reject_login(vb_secretcache *c, const char *service, const char *user,
                         const char *pass)
{
    vb_cred_request req;
    login_req(&req, user, pass);
    vb_secretcache_reject(c, service, &req);
    vb_cred_request_clear(&req);
}

/* Fill an empty login form; 1 and the values when the cache answered it. */
static int fill_login(vb_secretcache *c, const char *service, uint64_t now, const char *user,
                      const char *pass)
{
    vb_cred_request req;
    login_req(&req, NULL, NULL);
    int rc = vb_secretcache_fill(c, service, &req, now);
    if (rc == 1) {
        assert_non_null(req.items[0].result);
        assert_non_null(req.items[1].result);
        if (user) {
            assert_string_equal(req.items[0].result, user);
            assert_int_equal(req.items[0].resultlen, strlen(user));
        }
        if (pass) {
            assert_string_equal(req.items[1].result, pass);
            assert_int_equal(req.items[1].resultlen, strlen(pass));
        }
    } else {
        assert_null(req.items[0].result);
        assert_null(req.items[1].result);
    }
    vb_cred_request_clear(&req);
    return rc;
}

static void test_approve_then_fill(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    assert_non_null(c);
    approve_login(c, "vbhostd@h1:16509", "alice", "s3cret", T0);
    /* the approved request was cleared: the cache holds its own copies */
    assert_int_equal(fill_login(c, "vbhostd@h1:16509", T0 + MIN, "alice", "s3cret"), 1);
    /* again: a fill does not consume the entry */
    assert_int_equal(fill_login(c, "vbhostd@h1:16509", T0 + 2 * MIN, "alice", "s3cret"), 1);

    /* a request for fewer items, in another order, is answered too */
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_PASSPHRASE, "Password", NULL);
    assert_int_equal(vb_secretcache_fill(c, "vbhostd@h1:16509", &req, T0 + 3 * MIN), 1);
    assert_string_equal(req.items[0].result, "s3cret");
    vb_cred_request_clear(&req);

    /* a result the caller already had is replaced by the cached one */
    login_req(&req, "bob", "typo");
    assert_int_equal(vb_secretcache_fill(c, "vbhostd@h1:16509", &req, T0 + 4 * MIN), 1);
    assert_string_equal(req.items[0].result, "alice");
    assert_string_equal(req.items[1].result, "s3cret");
    vb_cred_request_clear(&req);
    vb_secretcache_free(c);
}

static void test_other_service_gets_nothing(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    approve_login(c, "vbhostd@h1:16509", "alice", "s3cret", T0);
    assert_int_equal(fill_login(c, "vbhostd@h2:16509", T0 + 1, NULL, NULL), 0);
    assert_int_equal(fill_login(c, "vbhostd@h1:1650", T0 + 1, NULL, NULL), 0);
    assert_int_equal(fill_login(c, "", T0 + 1, NULL, NULL), 0);
    assert_int_equal(fill_login(c, "vbhostd@h1:16509", T0 + 1, "alice", "s3cret"), 1);
    vb_secretcache_free(c);
}

static void test_missing_item_fills_nothing(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_PASSPHRASE, "Password", "only-a-password");
    assert_int_equal(vb_secretcache_approve(c, "svc", &req, T0), 0);
    vb_cred_request_clear(&req);

    /* the entry has a password but no name: nothing, not even the password */
    assert_int_equal(fill_login(c, "svc", T0 + 1, NULL, NULL), 0);

    /* two passwords asked, one stored: nothing */
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_PASSPHRASE, "Password", NULL);
    add_item(&req, VB_CRED_PASSPHRASE, "Password again", NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 2), 0);
    assert_null(req.items[0].result);
    assert_null(req.items[1].result);
    vb_cred_request_clear(&req);

    /* a realm it never saw: nothing */
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_PASSPHRASE, "Password", NULL);
    add_item(&req, VB_CRED_REALM, "Realm", NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 3), 0);
    assert_null(req.items[0].result);
    vb_cred_request_clear(&req);

    /* an empty request is not "answered" */
    memset(&req, 0, sizeof req);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 4), 0);

    /* items without a result are not kept: approving a half-answered form
     * stores only the answered half */
    login_req(&req, NULL, "pw2");
    assert_int_equal(vb_secretcache_approve(c, "svc2", &req, T0 + 5), 0);
    vb_cred_request_clear(&req);
    assert_int_equal(fill_login(c, "svc2", T0 + 6, NULL, NULL), 0);

    /* the entry is still usable for what it holds */
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_PASSPHRASE, "Password", NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 7), 1);
    assert_string_equal(req.items[0].result, "only-a-password");
    vb_cred_request_clear(&req);
    vb_secretcache_free(c);
}

static void test_sliding_expiry(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(10 * MIN, 8 * HOUR);
    approve_login(c, "used", "alice", "pw", T0);
    approve_login(c, "idle", "alice", "pw", T0);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 10 * MIN);

    /* using it at +9 min moves its deadline to +19 min */
    assert_int_equal(fill_login(c, "used", T0 + 9 * MIN, "alice", "pw"), 1);
    /* the one nobody used is gone at +10 min */
    assert_int_equal(vb_secretcache_count(c, T0 + 10 * MIN - 1), 2);
    assert_int_equal(vb_secretcache_count(c, T0 + 10 * MIN), 1);
    assert_int_equal(fill_login(c, "idle", T0 + 10 * MIN, NULL, NULL), 0);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 19 * MIN);

    /* still there just before +19 min (count does not extend it) */
    assert_int_equal(vb_secretcache_count(c, T0 + 19 * MIN - 1), 1);
    /* 11 minutes after its last use: gone */
    assert_int_equal(fill_login(c, "used", T0 + 9 * MIN + 11 * MIN, NULL, NULL), 0);
    assert_int_equal(vb_secretcache_count(c, T0 + 20 * MIN), 0);
    assert_int_equal(vb_secretcache_next_expiry(c), 0);
    vb_secretcache_free(c);
}

static void test_absolute_max(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(10 * MIN, 8 * HOUR);
    approve_login(c, "svc", "alice", "pw", T0);
    uint64_t t;
    for (t = 5 * MIN; t < 8 * HOUR; t += 5 * MIN)
        assert_int_equal(fill_login(c, "svc", T0 + t, "alice", "pw"), 1);
    /* the sliding deadline would be later, but the absolute one comes first */
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 8 * HOUR);
    assert_int_equal(t, 8 * HOUR);
    assert_int_equal(fill_login(c, "svc", T0 + t, NULL, NULL), 0);
    assert_int_equal(vb_secretcache_count(c, T0 + t), 0);

    /* approving again restarts the absolute deadline */
    approve_login(c, "svc", "alice", "pw", T0 + t);
    assert_int_equal(fill_login(c, "svc", T0 + t + 5 * MIN, "alice", "pw"), 1);
    vb_secretcache_free(c);
}

static void test_retry_gets_nothing(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    approve_login(c, "svc", "alice", "pw", T0);
    vb_cred_request req;
    login_req(&req, NULL, NULL);
    req.retry = 1;
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 1), 0);
    assert_null(req.items[0].result);
    assert_null(req.items[1].result);
    req.retry = 0;
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 2), 1);
    assert_string_equal(req.items[1].result, "pw");
    vb_cred_request_clear(&req);
    vb_secretcache_free(c);
}

static void test_reject_same_forgets(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    approve_login(c, "svc", "alice", "old-pw", T0);
    approve_login(c, "other", "alice", "old-pw", T0);
    reject_login(c, "svc", "alice", "old-pw");
    assert_int_equal(vb_secretcache_count(c, T0 + 1), 1);
    assert_int_equal(fill_login(c, "svc", T0 + 1, NULL, NULL), 0);
    /* only that service */
    assert_int_equal(fill_login(c, "other", T0 + 1, "alice", "old-pw"), 1);

    /* rejecting with just the password that failed is enough */
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_PASSPHRASE, "Password", "old-pw");
    vb_secretcache_reject(c, "other", &req);
    vb_cred_request_clear(&req);
    assert_int_equal(vb_secretcache_count(c, T0 + 2), 0);
    vb_secretcache_free(c);
}

static void test_reject_stale_keeps_newer(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    /* login A takes old-pw from the cache; meanwhile the password changed
     * and login B approves new-pw; then A's failure arrives */
    approve_login(c, "svc", "alice", "old-pw", T0);
    approve_login(c, "svc", "alice", "new-pw", T0 + 1);
    reject_login(c, "svc", "alice", "old-pw");
    assert_int_equal(fill_login(c, "svc", T0 + 2, "alice", "new-pw"), 1);

    /* a prefix, a longer value, another user: all different, all kept */
    reject_login(c, "svc", "alice", "new-p");
    reject_login(c, "svc", "alice", "new-pw!");
    reject_login(c, "svc", "bob", "new-pw");
    reject_login(c, "svc", "alice", "");
    /* a reject with no results has nothing to compare: kept */
    reject_login(c, "svc", NULL, NULL);
    /* a reject naming an item the entry lacks: kept */
    vb_cred_request req;
    login_req(&req, "alice", "new-pw");
    add_item(&req, VB_CRED_REALM, "Realm", "EXAMPLE");
    vb_secretcache_reject(c, "svc", &req);
    vb_cred_request_clear(&req);
    assert_int_equal(fill_login(c, "svc", T0 + 3, "alice", "new-pw"), 1);

    reject_login(c, "svc", "alice", "new-pw");
    assert_int_equal(fill_login(c, "svc", T0 + 4, NULL, NULL), 0);
    vb_secretcache_free(c);
}

static void test_clear_one_and_all(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    approve_login(c, "a", "u", "p", T0);
    approve_login(c, "b", "u", "p", T0);
    approve_login(c, "c", "u", "p", T0);
    assert_int_equal(vb_secretcache_count(c, T0), 3);
    vb_secretcache_clear(c, "b");
    vb_secretcache_clear(c, "nope");
    assert_int_equal(vb_secretcache_count(c, T0), 2);
    assert_int_equal(fill_login(c, "b", T0, NULL, NULL), 0);
    assert_int_equal(fill_login(c, "a", T0, "u", "p"), 1);
    assert_int_equal(fill_login(c, "c", T0, "u", "p"), 1);
    vb_secretcache_clear(c, NULL);
    assert_int_equal(vb_secretcache_count(c, T0), 0);
    assert_int_equal(vb_secretcache_next_expiry(c), 0);
    assert_int_equal(fill_login(c, "a", T0, NULL, NULL), 0);
    vb_secretcache_free(c);
}

/* Logout forgets what was asked through a hop: its own questions and those
 * relayed through it, not another port's that merely begins the same. */
static void test_clear_service_for_logout(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    approve_login(c, "vbhostd on h:1|vbhostd|vbhostd://h:1", "u", "p", T0);
    approve_login(c, "vbhostd on h:1 (server ab, token) \u2192 xenapi|xenapi|https://x:443", "u",
                  "p", T0);
    approve_login(c, "vbhostd on h:10|vbhostd|vbhostd://h:10", "u", "p", T0);
    approve_login(c, "vbhostd on h:2|vbhostd|vbhostd://h:2", "u", "p", T0);
    assert_int_equal(vb_secretcache_clear_service(c, "vbhostd on h:1"), 2);
    assert_int_equal(vb_secretcache_count(c, T0), 2);
    assert_int_equal(fill_login(c, "vbhostd on h:1|vbhostd|vbhostd://h:1", T0, NULL, NULL), 0);
    assert_int_equal(fill_login(c, "vbhostd on h:10|vbhostd|vbhostd://h:10", T0, "u", "p"), 1);
    assert_int_equal(vb_secretcache_clear_service(c, "vbhostd on h:3"), 0);
    vb_secretcache_free(c);
}

static void test_count_and_next_expiry(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(1000, 5000);
    assert_int_equal(vb_secretcache_count(c, T0), 0);
    assert_int_equal(vb_secretcache_next_expiry(c), 0);

    approve_login(c, "a", "u", "p", T0);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 1000);
    approve_login(c, "b", "u", "p", T0 + 200);
    assert_int_equal(vb_secretcache_count(c, T0 + 200), 2);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 1000);
    /* using a moves it behind b */
    assert_int_equal(fill_login(c, "a", T0 + 500, "u", "p"), 1);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 1200);
    /* replacing an entry does not count twice */
    approve_login(c, "b", "u", "p2", T0 + 600);
    assert_int_equal(vb_secretcache_count(c, T0 + 600), 2);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 1500);

    /* expire wipes exactly what is due */
    vb_secretcache_expire(c, T0 + 1499);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 1500);
    vb_secretcache_expire(c, T0 + 1500);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 1600);
    assert_int_equal(vb_secretcache_count(c, T0 + 1500), 1);
    vb_secretcache_free(c);

    /* when max is shorter than sliding, max is the deadline */
    c = vb_secretcache_new(10000, 3000);
    approve_login(c, "a", "u", "p", T0);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 3000);
    assert_int_equal(fill_login(c, "a", T0 + 2999, "u", "p"), 1);
    assert_int_equal(vb_secretcache_next_expiry(c), T0 + 3000);
    vb_secretcache_free(c);
}

static void test_prompts_keyed_by_text(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_ECHOPROMPT, "Token serial:", "AB-1234");
    add_item(&req, VB_CRED_ECHOPROMPT, "Department:", "ops");
    add_item(&req, VB_CRED_NOECHOPROMPT, "PIN:", "0000");
    assert_int_equal(vb_secretcache_approve(c, "svc", &req, T0), 0);
    vb_cred_request_clear(&req);

    /* the same questions in another order get their own answers */
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_NOECHOPROMPT, "PIN:", NULL);
    add_item(&req, VB_CRED_ECHOPROMPT, "Department:", NULL);
    add_item(&req, VB_CRED_ECHOPROMPT, "Token serial:", NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 1), 1);
    assert_string_equal(req.items[0].result, "0000");
    assert_string_equal(req.items[1].result, "ops");
    assert_string_equal(req.items[2].result, "AB-1234");
    vb_cred_request_clear(&req);

    /* another question of the same type: nothing */
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_ECHOPROMPT, "Favourite colour:", NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 2), 0);
    assert_null(req.items[0].result);
    vb_cred_request_clear(&req);

    /* the same text under the other prompt type: nothing */
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_ECHOPROMPT, "PIN:", NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 3), 0);
    vb_cred_request_clear(&req);

    /* a prompt item without text matches only a stored one without text */
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_NOECHOPROMPT, NULL, NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 4), 0);
    vb_cred_request_clear(&req);

    /* for other types the prompt text does not matter */
    approve_login(c, "svc2", "alice", "pw", T0);
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_AUTHNAME, "Who are you?", NULL);
    add_item(&req, VB_CRED_PASSPHRASE, NULL, NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc2", &req, T0 + 5), 1);
    assert_string_equal(req.items[0].result, "alice");
    assert_string_equal(req.items[1].result, "pw");
    vb_cred_request_clear(&req);
    vb_secretcache_free(c);
}

static void test_same_type_in_order(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_PASSPHRASE, "Key password", "first");
    add_item(&req, VB_CRED_PASSPHRASE, "Login password", "second");
    assert_int_equal(vb_secretcache_approve(c, "svc", &req, T0), 0);
    vb_cred_request_clear(&req);

    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_PASSPHRASE, NULL, NULL);
    add_item(&req, VB_CRED_PASSPHRASE, NULL, NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 1), 1);
    assert_string_equal(req.items[0].result, "first");
    assert_string_equal(req.items[1].result, "second");

    /* rejecting needs both to match, in order */
    vb_cred_item tmp = req.items[0];
    req.items[0] = req.items[1];
    req.items[1] = tmp;
    vb_secretcache_reject(c, "svc", &req);
    assert_int_equal(vb_secretcache_count(c, T0 + 2), 1);
    req.items[1] = req.items[0];
    req.items[0] = tmp;
    vb_secretcache_reject(c, "svc", &req);
    assert_int_equal(vb_secretcache_count(c, T0 + 2), 0);
    vb_cred_request_clear(&req);
    vb_secretcache_free(c);
}

static void test_binary_values(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    static const char blob[] = { 'a', '\0', 'b', '\xff' };
    vb_cred_request req;
    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_EXTERNAL, NULL, NULL);
    assert_int_equal(vb_cred_item_set_result(&req.items[0], blob, sizeof blob), 0);
    assert_int_equal(vb_secretcache_approve(c, "svc", &req, T0), 0);
    vb_cred_request_clear(&req);

    memset(&req, 0, sizeof req);
    add_item(&req, VB_CRED_EXTERNAL, NULL, NULL);
    assert_int_equal(vb_secretcache_fill(c, "svc", &req, T0 + 1), 1);
    assert_int_equal(req.items[0].resultlen, sizeof blob);
    assert_memory_equal(req.items[0].result, blob, sizeof blob);
    assert_int_equal(req.items[0].result[sizeof blob], '\0');
    /* "a" alone is a different value: kept */
    vb_cred_request bad;
    memset(&bad, 0, sizeof bad);
    add_item(&bad, VB_CRED_EXTERNAL, NULL, "a");
    vb_secretcache_reject(c, "svc", &bad);
    vb_cred_request_clear(&bad);
    assert_int_equal(vb_secretcache_count(c, T0 + 1), 1);
    vb_secretcache_reject(c, "svc", &req);
    assert_int_equal(vb_secretcache_count(c, T0 + 1), 0);
    vb_cred_request_clear(&req);
    vb_secretcache_free(c);
}

static void test_limits(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(0, 0);
    approve_login(c, "svc", "alice", "old-pw", T0);

    /* an answer over the limit is not kept, and the older one is dropped */
    char *big = malloc(VB_SECRETCACHE_MAX_VALUE + 2);
    assert_non_null(big);
    memset(big, 'x', VB_SECRETCACHE_MAX_VALUE + 1);
    big[VB_SECRETCACHE_MAX_VALUE + 1] = '\0';
    approve_login(c, "svc", "alice", big, T0 + 1);
    assert_int_equal(vb_secretcache_count(c, T0 + 1), 0);

    /* exactly at the limit is kept */
    big[VB_SECRETCACHE_MAX_VALUE] = '\0';
    approve_login(c, "svc", "alice", big, T0 + 2);
    assert_int_equal(fill_login(c, "svc", T0 + 3, "alice", big), 1);

    /* a service name over the limit is not kept */
    char *name = malloc(VB_SECRETCACHE_MAX_KEY + 2);
    assert_non_null(name);
    memset(name, 's', VB_SECRETCACHE_MAX_KEY + 1);
    name[VB_SECRETCACHE_MAX_KEY + 1] = '\0';
    approve_login(c, name, "alice", "pw", T0 + 4);
    assert_int_equal(fill_login(c, name, T0 + 5, NULL, NULL), 0);
    assert_int_equal(vb_secretcache_count(c, T0 + 5), 1);

    /* a request without any answer changes nothing */
    approve_login(c, "svc", NULL, NULL, T0 + 6);
    assert_int_equal(fill_login(c, "svc", T0 + 7, "alice", big), 1);
    free(name);
    free(big);
    vb_secretcache_free(c);
}

static void test_eviction_when_full(void **state)
{
    (void)state;
    vb_secretcache *c = vb_secretcache_new(10 * MIN, 8 * HOUR);
    char name[32];
    /* svc-i approved at T0 + i ms: svc-0 is due first, then svc-1 ... */
    for (unsigned i = 0; i < VB_SECRETCACHE_MAX_SERVICES; i++) {
        snprintf(name, sizeof name, "svc-%u", i);
        approve_login(c, name, "u", name, T0 + i);
    }
    assert_int_equal(vb_secretcache_count(c, T0 + 1000), VB_SECRETCACHE_MAX_SERVICES);
    /* svc-0 is used, so svc-1 is now the closest to expiry */
    assert_int_equal(fill_login(c, "svc-0", T0 + 1000, "u", "svc-0"), 1);
    /* replacing an existing service evicts nobody */
    approve_login(c, "svc-7", "u", "svc-7", T0 + 1001);
    assert_int_equal(vb_secretcache_count(c, T0 + 1001), VB_SECRETCACHE_MAX_SERVICES);

    approve_login(c, "newcomer", "u", "pw", T0 + 2000);
    assert_int_equal(vb_secretcache_count(c, T0 + 2000), VB_SECRETCACHE_MAX_SERVICES);
    assert_int_equal(fill_login(c, "svc-1", T0 + 2000, NULL, NULL), 0);
    assert_int_equal(fill_login(c, "newcomer", T0 + 2000, "u", "pw"), 1);
    assert_int_equal(fill_login(c, "svc-0", T0 + 2000, "u", "svc-0"), 1);
    assert_int_equal(fill_login(c, "svc-2", T0 + 2000, "u", "svc-2"), 1);
    assert_int_equal(fill_login(c, "svc-7", T0 + 2000, "u", "svc-7"), 1);
    /* next in line: svc-3 (svc-2 was just used) */
    approve_login(c, "newcomer2", "u", "pw", T0 + 2001);
    assert_int_equal(fill_login(c, "svc-3", T0 + 2001, NULL, NULL), 0);
    assert_int_equal(fill_login(c, "svc-4", T0 + 2001, "u", "svc-4"), 1);
    assert_int_equal(vb_secretcache_count(c, T0 + 2001), VB_SECRETCACHE_MAX_SERVICES);
    vb_secretcache_free(c);
}

/* --- concurrency --- */

#define NTHREADS 8
#define NOPS 10000
#define NSERVICES 4

static vb_secretcache *shared_cache;
static atomic_uint_fast64_t shared_clock;
static atomic_int torn_fills;      /* a fill mixing two approvals' values */
static atomic_int good_fills;
static atomic_int failures;        /* approve/fill errors */

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    char service[16], user[32], pass[32];
    for (int i = 0; i < NOPS; i++) {
        unsigned r = (unsigned)rand_r(&seed);
        uint64_t now = atomic_fetch_add(&shared_clock, 1);
        unsigned k = (r >> 8) % 50;
        snprintf(service, sizeof service, "svc%u", (r >> 4) % NSERVICES);
        /* every approval pairs user uK with password pK */
        snprintf(user, sizeof user, "u%u", k);
        snprintf(pass, sizeof pass, "p%u", k);
        vb_cred_request req;
        memset(&req, 0, sizeof req);
        int rc = 0;
        switch (r % 8) {
        case 0: case 1: case 2:
            rc |= vb_cred_request_add(&req, VB_CRED_AUTHNAME, "Name", NULL, NULL);
            rc |= vb_cred_request_add(&req, VB_CRED_PASSPHRASE, "Password", NULL, NULL);
            rc |= vb_cred_item_set_result(&req.items[0], user, strlen(user));
            rc |= vb_cred_item_set_result(&req.items[1], pass, strlen(pass));
            if (rc || vb_secretcache_approve(shared_cache, service, &req, now) != 0)
                atomic_fetch_add(&failures, 1);
            break;
        case 3: case 4: case 5:
            rc |= vb_cred_request_add(&req, VB_CRED_AUTHNAME, "Name", NULL, NULL);
            rc |= vb_cred_request_add(&req, VB_CRED_PASSPHRASE, "Password", NULL, NULL);
            rc = rc ? -1 : vb_secretcache_fill(shared_cache, service, &req, now);
            if (rc < 0) {
                atomic_fetch_add(&failures, 1);
            } else if (rc == 1) {
                if (!req.items[0].result || !req.items[1].result ||
                    strcmp(req.items[0].result + 1, req.items[1].result + 1) != 0)
                    atomic_fetch_add(&torn_fills, 1);
                else
                    atomic_fetch_add(&good_fills, 1);
            }
            break;
        case 6:
            rc |= vb_cred_request_add(&req, VB_CRED_AUTHNAME, "Name", NULL, NULL);
            rc |= vb_cred_request_add(&req, VB_CRED_PASSPHRASE, "Password", NULL, NULL);
            rc |= vb_cred_item_set_result(&req.items[0], user, strlen(user));
            rc |= vb_cred_item_set_result(&req.items[1], pass, strlen(pass));
            if (rc)
                atomic_fetch_add(&failures, 1);
            vb_secretcache_reject(shared_cache, service, &req);
            break;
        default:
            switch ((r >> 12) % 4) {
            case 0: vb_secretcache_expire(shared_cache, now); break;
            case 1: (void)vb_secretcache_next_expiry(shared_cache); break;
            case 2:
                if (vb_secretcache_count(shared_cache, now) > NSERVICES)
                    atomic_fetch_add(&failures, 1);
                break;
            default:
                if ((r >> 16) % 16 == 0)
                    vb_secretcache_clear(shared_cache, (r >> 20) % 2 ? service : NULL);
                break;
            }
        }
        vb_cred_request_clear(&req);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    /* a short sliding TTL on the shared op clock, so entries also expire */
    shared_cache = vb_secretcache_new(200, 5000);
    assert_non_null(shared_cache);
    atomic_store(&shared_clock, T0);
    pthread_t th[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)(i + 1)), 0);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(atomic_load(&torn_fills), 0);
    assert_true(atomic_load(&good_fills) > 0);
    assert_true(vb_secretcache_count(shared_cache, atomic_load(&shared_clock)) <= NSERVICES);
    vb_secretcache_clear(shared_cache, NULL);
    assert_int_equal(vb_secretcache_count(shared_cache, 0), 0);
    vb_secretcache_free(shared_cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_approve_then_fill),
        cmocka_unit_test(test_other_service_gets_nothing),
        cmocka_unit_test(test_missing_item_fills_nothing),
        cmocka_unit_test(test_sliding_expiry),
        cmocka_unit_test(test_absolute_max),
        cmocka_unit_test(test_retry_gets_nothing),
        cmocka_unit_test(test_reject_same_forgets),
        cmocka_unit_test(test_reject_stale_keeps_newer),
        cmocka_unit_test(test_clear_one_and_all),
        cmocka_unit_test(test_clear_service_for_logout),
        cmocka_unit_test(test_count_and_next_expiry),
        cmocka_unit_test(test_prompts_keyed_by_text),
        cmocka_unit_test(test_same_type_in_order),
        cmocka_unit_test(test_binary_values),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_eviction_when_full),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
