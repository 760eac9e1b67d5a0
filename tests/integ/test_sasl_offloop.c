/* vbhostd runs SASL steps off its event loop (issue 18, item 5; daemon/vbh_auth.c).
 *
 * A Cyrus step costs milliseconds of CPU, and a SCRAM server that holds the
 * password derives the keys in its first step: with the SASL option
 * scram_iteration_counter at 1 500 000 (60 000 under ASan) that one step
 * takes a second or more.
 * While it runs, another client's PINGs (about ten a second) must be answered
 * at once (each within 500 ms, and within a quarter of the step)
 * and the slow login must still complete its step; a client that leaves in
 * the middle of its step costs nothing (the daemon exits cleanly, SAN=1 checks
 * for leaks). Before the steps left the loop, the PINGs waited for the whole
 * step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vb_msg.h"
#include "vb_testsupport.h"
#include "vb_testsupport_wire.h"

#define REALM "LAB.TEST"
/* The iterations of the server's key derivation. Under AddressSanitizer
 * every allocation of OpenSSL's per-iteration fetch is slow (run-tests.sh
 * unwinds each malloc's stack): fewer there, for a step of seconds still. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OFFLOOP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(OFFLOOP_ASAN)
#define ITERATIONS "60000"
#else
#define ITERATIONS "1500000"
#endif
#define PING_MS 500          /* an answered PING (scaled under SAN and valgrind) */
#define SLOW_STEP_MS 600     /* the slow step must take at least this long */

static char *dir;
static vb_ts_hostd h;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    dir = vb_ts_tmpdir("offloop");
    const char *users[] = { "alice:0ffl00p-Pw", NULL };
    char conf[400], text[4096];
    if (!dir || vb_ts_hostd_sasl_setup(dir, REALM, "SCRAM-SHA-256", users, NULL) < 0)
        return -1;
    /* the server's first SCRAM step derives the keys from the stored password */
    snprintf(conf, sizeof conf, "%s/sasl/vbhostd.conf", dir);
    char *old = vb_ts_read_file(conf, NULL);
    if (!old)
        return -1;
    snprintf(text, sizeof text, "%sscram_iteration_counter: " ITERATIONS "\n", old);
    free(old);
    if (vb_ts_write_file(conf, text, 0600) < 0)
        return -1;
    return vb_ts_hostd_start_sasl(&h, dir, "h", 0, REALM,
                                  "auth_unix = [\"sasl\"]\nsasl_hostname = \"localhost\"\n"
                                  "auth_timeout = 600\n"); /* the step may be slow on a busy machine */
}

static vb_msg_header hdr(uint32_t serial, uint32_t proc)
{
    vb_msg_header m = { VB_PROG_HOST, VB_PROG_HOST_VERSION, VB_MSG_CALL, serial, proc,
                        VB_STATUS_OK, 0 };
    return m;
}

static void start_body(vb_enc *enc, const void *arg)
{
    static const char first[] = "n,,n=alice,r=0ffl00pClientNonce42";
    (void)arg;
    vb_enc_array(enc, 2);
    vb_enc_str(enc, "SCRAM-SHA-256");
    vb_enc_bin(enc, (const uint8_t *)first, sizeof first - 1);
}

/* w logged in as far as AUTH_SASL_INIT, then its START sent, unanswered */
static void begin_slow_login(vb_ts_wire *w)
{
    vb_msg m;
    assert_int_equal(vb_ts_wire_connect_unix(w, h.sock), 0);
    vb_msg_header init = hdr(1, VB_HOST_PROC_AUTH_SASL_INIT);
    assert_int_equal(vb_ts_wire_call(w, &init, NULL, NULL, vb_ts_scaled_ms(5000), &m), 1);
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    vb_msg_clear(&m);
    vb_msg_header start = hdr(2, VB_HOST_PROC_AUTH_SASL_START);
    assert_int_equal(vb_ts_wire_send(w, &start, start_body, NULL), 0);
}

static void test_pings_answered_during_a_slow_step(void **state)
{
    (void)state;
    vb_ts_wire other, slow;
    assert_int_equal(vb_ts_wire_connect_unix(&other, h.sock), 0);
    assert_true(vb_ts_wire_ping_ms(&other, 1, vb_ts_scaled_ms(5000)) >= 0);
    int64_t t0 = now_ms();
    begin_slow_login(&slow);
    uint32_t serial = 2;
    int pings = 0;
    int64_t worst = 0;
    vb_msg m;
    int got;
    /* a PING, then up to 100 ms for the slow reply (the pace: the step gets
     * the CPU), until it comes */
    do {
        int64_t ms = vb_ts_wire_ping_ms(&other, serial++, vb_ts_scaled_ms(60000));
        assert_true(ms >= 0);
        if (ms > worst)
            worst = ms;
        pings++;
        got = vb_ts_wire_read(&slow, 100, &m);
    } while (got == -2 && now_ms() - t0 < vb_ts_scaled_ms(120000));
    assert_int_equal(got, 1);
    int64_t step = now_ms() - t0;
    /* the step really was slow, and it completed: the server-first message */
    assert_int_equal(m.hdr.type, VB_MSG_REPLY);
    assert_int_equal(m.hdr.serial, 2);
    vb_msg_clear(&m);
    fprintf(stderr, "slow step %lld ms; %d pings meanwhile, the slowest %lld ms\n",
            (long long)step, pings, (long long)worst);
    assert_true(step >= SLOW_STEP_MS);
    assert_true(pings >= 2);
    assert_true(worst < vb_ts_scaled_ms(PING_MS));
    assert_true(worst * 4 < step); /* on the loop, one PING waited for most of the step */
    vb_ts_wire_close(&slow);
    vb_ts_wire_close(&other);
}

static void test_client_leaving_mid_step(void **state)
{
    (void)state;
    vb_ts_wire slow, other;
    begin_slow_login(&slow);
    vb_ts_wire_close(&slow); /* gone while its step runs */
    assert_int_equal(vb_ts_wire_connect_unix(&other, h.sock), 0);
    assert_true(vb_ts_wire_ping_ms(&other, 1, vb_ts_scaled_ms(5000)) >= 0);
    vb_ts_wire_close(&other);
    /* stopped while that step may still run: it finishes, nothing is left */
    assert_int_equal(vb_ts_check_exit("vbhostd", vb_ts_stop(h.pid, vb_ts_scaled_ms(60000)), h.log),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pings_answered_during_a_slow_step),
        cmocka_unit_test(test_client_leaving_mid_step),
    };
    return cmocka_run_group_tests(tests, group_setup, vb_ts_group_teardown);
}
