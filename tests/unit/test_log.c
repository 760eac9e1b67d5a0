/* vb_log to a file (util/vb_log.c): 0600, never through a symbolic link or
 * into a FIFO, and bounded by rotation: never more than PATH and PATH.1, each
 * at most the size plus one line. The test's own stderr is put back after
 * each test (vb_log_to_file takes fd 2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vb_log.h"
#include "vb_testsupport.h"

#define LINE_BOUND (VB_LOG_LINE_MAX + 128)

static char *dir;
static int saved_stderr = -1;

static int setup(void **state)
{
    (void)state;
    saved_stderr = dup(STDERR_FILENO);
    vb_log_init("test_log", VB_LOG_DEBUG);
    return saved_stderr < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    vb_log_set_max_size(0);
    dup2(saved_stderr, STDERR_FILENO);
    return 0;
}

static void test_rotates_into_two_bounded_files(void **state)
{
    (void)state;
    char path[300], old[310], older[310];
    snprintf(path, sizeof path, "%s/rot.log", dir);
    snprintf(old, sizeof old, "%s.1", path);
    snprintf(older, sizeof older, "%s.2", path);
    vb_error err;
    vb_log_set_max_size(2048);
    assert_int_equal(vb_log_to_file(path, &err), 0);
    char big[900];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 100; i++)
        vb_log(VB_LOG_INFO, "line %d %s", i, i % 3 ? "short" : big);
    vb_log(VB_LOG_INFO, "the last line");
    assert_int_equal(vb_ts_file_mode(path), 0600);
    assert_int_equal(vb_ts_file_mode(old), 0600);
    assert_int_equal(vb_ts_file_mode(older), -1);
    assert_true(vb_ts_file_size(path) > 0 && vb_ts_file_size(path) <= 2048 + LINE_BOUND);
    assert_true(vb_ts_file_size(old) > 0 && vb_ts_file_size(old) <= 2048 + LINE_BOUND);
    assert_int_equal(vb_ts_count_in_file(path, "the last line"), 1);
    assert_int_equal(vb_ts_count_in_file(old, "line 0 "), 0); /* long gone */
}

/* When PATH cannot become PATH.1 (a directory is in the way), the file is
 * emptied instead: still bounded. */
static void test_emptied_when_it_cannot_be_moved(void **state)
{
    (void)state;
    char path[300], old[310], inside[330];
    snprintf(path, sizeof path, "%s/stuck.log", dir);
    snprintf(old, sizeof old, "%s.1", path);
    snprintf(inside, sizeof inside, "%s/keep", old);
    assert_int_equal(mkdir(old, 0700), 0);
    assert_int_equal(vb_ts_write_file(inside, "x", 0600), 0); /* rename onto it fails */
    vb_error err;
    vb_log_set_max_size(1024);
    assert_int_equal(vb_log_to_file(path, &err), 0);
    for (int i = 0; i < 200; i++)
        vb_log(VB_LOG_INFO, "line %d of a log that cannot rotate", i);
    assert_true(vb_ts_file_size(path) > 0 && vb_ts_file_size(path) <= 1024 + LINE_BOUND);
}

static void test_never_through_a_link_or_into_a_fifo(void **state)
{
    (void)state;
    char target[300], link[300], fifo[300];
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(link, sizeof link, "%s/link.log", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo.log", dir);
    assert_int_equal(vb_ts_write_file(target, "", 0600), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    vb_error err;
    assert_int_equal(vb_log_to_file(link, &err), -1);
    assert_non_null(strstr(err.message, "symbolic link"));
    /* without a reader the open fails (ENXIO) instead of waiting for one;
     * with one, the type check refuses it */
    assert_int_equal(vb_log_to_file(fifo, &err), -1);
    assert_non_null(strstr(err.message, fifo));
    int reader = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(reader >= 0);
    assert_int_equal(vb_log_to_file(fifo, &err), -1);
    close(reader);
    assert_non_null(strstr(err.message, "not a regular file"));
}

int main(void)
{
    dir = vb_ts_tmpdir("log");
    if (!dir)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotates_into_two_bounded_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emptied_when_it_cannot_be_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_through_a_link_or_into_a_fifo, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("log", tests, NULL, NULL);
    vb_ts_cleanup();
    return rc;
}
