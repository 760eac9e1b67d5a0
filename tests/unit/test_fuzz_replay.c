/*
 * test_fuzz_replay.c — `make check` runs every fuzz target over its committed
 * seed corpus (tests/fuzz/corpus/TARGET/) and over the inputs that once
 * crashed it (tests/fuzz/regressions/TARGET/), with the normal compiler and,
 * under SAN=1, ASan+UBSan. A target abort()s on a broken invariant, which
 * fails this test; no fuzzer is needed to replay.
 *
 * The targets are compiled into this file, each entry point renamed. The
 * SASL targets bring the daemon's objects (mk/fuzz.mk adds them to this
 * test's link), a private sasldb (saslpasswd2) and real Cyrus peers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LLVMFuzzerTestOneInput fuzz_frame_one
#include "../fuzz/fuzz_frame.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_uri_one
#include "../fuzz/fuzz_uri.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_conf_one
#include "../fuzz/fuzz_conf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_authconf_one
#include "../fuzz/fuzz_authconf.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_xenapi_one
#include "../fuzz/fuzz_xenapi.c"
#undef LLVMFuzzerTestOneInput
/* the SASL targets set up their sasldb on the first input */
#define LLVMFuzzerTestOneInput fuzz_sasl_server_one
#define LLVMFuzzerInitialize fuzz_sasl_server_init
#include "../fuzz/fuzz_sasl_server.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_sasl_client_one
#define LLVMFuzzerInitialize fuzz_sasl_client_init
#include "../fuzz/fuzz_sasl_client.c"
#undef LLVMFuzzerInitialize
#undef LLVMFuzzerTestOneInput

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    assert_false(ferror(f));
    fclose(f);
    *len = n;
    return buf;
}

/* Feed every regular file of dir to fn; the number of files fed. A missing
 * directory is fine when optional (regressions appear with the first bug). */
static size_t replay_dir(const char *dir, fuzz_fn fn, int optional)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (optional && errno == ENOENT)
            return 0;
        fail_msg("cannot open %s: %s", dir, strerror(errno));
    }
    size_t files = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t len;
        uint8_t *data = read_all(path, &len);
        /* on an abort() the last line printed names the culprit */
        print_message("replay %s\n", path);
        assert_int_equal(fn(data, len), 0);
        free(data);
        files++;
    }
    closedir(d);
    return files;
}

static void replay(const char *target, fuzz_fn fn)
{
    char corpus[4096], regressions[4096];
    snprintf(corpus, sizeof corpus, "%s/tests/fuzz/corpus/%s", VB_SRC_DIR, target);
    snprintf(regressions, sizeof regressions, "%s/tests/fuzz/regressions/%s", VB_SRC_DIR, target);
    size_t seeds = replay_dir(corpus, fn, 0);
    size_t regs = replay_dir(regressions, fn, 1);
    print_message("%s: %zu seed(s), %zu regression(s) replayed\n", target, seeds, regs);
    assert_true(seeds > 0);
}

static void test_replay_frame(void **state)
{
    (void)state;
    replay("frame", fuzz_frame_one);
}

static void test_replay_uri(void **state)
{
    (void)state;
    replay("uri", fuzz_uri_one);
}

static void test_replay_conf(void **state)
{
    (void)state;
    replay("conf", fuzz_conf_one);
}

static void test_replay_authconf(void **state)
{
    (void)state;
    replay("authconf", fuzz_authconf_one);
}

static void test_replay_xenapi(void **state)
{
    (void)state;
    replay("xenapi", fuzz_xenapi_one);
}

static void test_replay_sasl_server(void **state)
{
    (void)state;
    replay("sasl_server", fuzz_sasl_server_one);
}

static void test_replay_sasl_client(void **state)
{
    (void)state;
    replay("sasl_client", fuzz_sasl_client_one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_frame),
        cmocka_unit_test(test_replay_uri),
        cmocka_unit_test(test_replay_conf),
        cmocka_unit_test(test_replay_authconf),
        cmocka_unit_test(test_replay_xenapi),
        cmocka_unit_test(test_replay_sasl_server),
        cmocka_unit_test(test_replay_sasl_client),
    };
    return cmocka_run_group_tests_name("fuzz_replay", tests, NULL, NULL);
}
