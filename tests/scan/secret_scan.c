/* The suite-wide secret scan, run by tests/run-tests.sh after every other
 * test binary: no test password and no token secret may be found in any log
 * or sqlite file that the whole run left behind.
 *
 * What it reads (tests/support/vb_testsupport_scan.c collects them):
 *  - $VB_TS_SECRETS_FILE: every password and passphrase the tests used, one
 *    hex line each (the sasldb and KDC helpers note their users themselves);
 *  - $VB_TS_SCAN_DIR: copies of the logs and sqlite files (with their -wal
 *    and -journal) of every temp dir of every test, taken at its removal;
 *  - $VB_TS_TEST_LOGS: the test binaries' own outputs.
 *
 * A password may appear nowhere: not raw, not hex, not base64. A token
 * secret lives, by design, in exactly two places, the daemon's tokens.db and
 * the broker's cache.db (0600 files, like an ssh key); the scan reads them
 * from there and requires that no log and no captured output shows one.
 * Without the variables (a binary run by hand) the tests are skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vb_testsupport.h"
#include "vb_token.h"

#define MAX_SECRETS 4096
#define MAX_FILES 8192
#define MAX_FORMS 4

typedef struct secret {
    uint8_t *bytes;
    size_t len;
} secret;

typedef struct scanned_file {
    char *path;
    int is_sqlite; /* a database or one of its journals */
} scanned_file;

static secret passwords[MAX_SECRETS], tokens[MAX_SECRETS];
static size_t npasswords, ntokens;
static scanned_file files[MAX_FILES];
static size_t nfiles;

/* ---- finding bytes in files ------------------------------------------------ */

static uint8_t *read_all(const char *path, size_t *len)
{
    char *text = vb_ts_read_file(path, len);
    return (uint8_t *)text;
}

static int contains(const uint8_t *hay, size_t haylen, const uint8_t *needle, size_t len)
{
    return len > 0 && memmem(hay, haylen, needle, len) != NULL;
}

/* The forms a secret could take in a file: as it is, hex (both cases), base64. */
static size_t forms_of(const secret *s, secret out[MAX_FORMS])
{
    size_t n = 0;
    out[n++] = (secret){ s->bytes, s->len };
    for (int upper = 0; upper < 2; upper++) {
        char *hex = malloc(2 * s->len + 1);
        assert_non_null(hex);
        for (size_t i = 0; i < s->len; i++)
            snprintf(hex + 2 * i, 3, upper ? "%02X" : "%02x", s->bytes[i]);
        out[n++] = (secret){ (uint8_t *)hex, 2 * s->len };
    }
    uint8_t *b64 = malloc(4 * ((s->len + 2) / 3) + 1);
    assert_non_null(b64);
    int blen = EVP_EncodeBlock(b64, s->bytes, (int)s->len);
    out[n++] = (secret){ b64, (size_t)blen };
    return n;
}

static void free_forms(secret forms[MAX_FORMS], size_t n)
{
    for (size_t i = 1; i < n; i++) /* forms[0] borrows the secret's bytes */
        free(forms[i].bytes);
}

static const char *const form_names[MAX_FORMS] = { "raw", "hex", "HEX", "base64" };

/* How many (file, secret, form) triples match; each one is printed. */
static int count_leaks(const scanned_file *fs, size_t nfs, const secret *list, size_t n,
                       const char *what, int include_sqlite)
{
    int leaks = 0;
    for (size_t f = 0; f < nfs; f++) {
        if (fs[f].is_sqlite && !include_sqlite)
            continue;
        size_t len;
        uint8_t *data = read_all(fs[f].path, &len);
        if (!data)
            continue;
        for (size_t i = 0; i < n; i++) {
            secret forms[MAX_FORMS];
            size_t nforms = forms_of(&list[i], forms);
            for (size_t k = 0; k < nforms; k++) {
                if (contains(data, len, forms[k].bytes, forms[k].len)) {
                    print_message("FOUND: %s #%zu (%s) in %s\n", what, i, form_names[k],
                                  fs[f].path);
                    leaks++;
                }
            }
            free_forms(forms, nforms);
        }
        free(data);
    }
    return leaks;
}

/* ---- what the run left behind -------------------------------------------------- */

static int is_sqlite_name(const char *path)
{
    size_t n;
    uint8_t *head = read_all(path, &n);
    int db = head && n >= 16 && memcmp(head, "SQLite format 3", 16) == 0;
    free(head);
    size_t len = strlen(path);
    return db || (len > 4 && strcmp(path + len - 4, "-wal") == 0) ||
           (len > 8 && strcmp(path + len - 8, "-journal") == 0);
}

static void add_files_below(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && nfiles < MAX_FILES) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 2)
            add_files_below(path, depth + 1);
        else if (S_ISREG(st.st_mode))
            files[nfiles++] = (scanned_file){ strdup(path), is_sqlite_name(path) };
    }
    closedir(d);
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void load_passwords(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f) && npasswords < MAX_SECRETS) {
        size_t n = strcspn(line, "\n") / 2;
        secret s = { malloc(n ? n : 1), n };
        assert_non_null(s.bytes);
        for (size_t i = 0; i < n; i++)
            s.bytes[i] = (uint8_t)(hexval(line[2 * i]) << 4 | hexval(line[2 * i + 1]));
        int dup = 0;
        for (size_t i = 0; i < npasswords && !dup; i++)
            dup = passwords[i].len == n && memcmp(passwords[i].bytes, s.bytes, n) == 0;
        if (dup || n == 0)
            free(s.bytes);
        else
            passwords[npasswords++] = s;
    }
    if (f)
        fclose(f);
}

/* The secret column of a token store (daemon: tokens, broker: logins):
 * the secrets vbhostd issued during the run. */
static void load_tokens_from(const char *db_path, const char *sql)
{
    sqlite3 *db;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW && ntokens < MAX_SECRETS) {
            size_t n = (size_t)sqlite3_column_bytes(st, 0);
            if (n != VB_TOKEN_SECRET_LEN)
                continue; /* the store's unit tests use short made-up secrets */
            secret s = { malloc(n), n };
            assert_non_null(s.bytes);
            memcpy(s.bytes, sqlite3_column_blob(st, 0), n);
            tokens[ntokens++] = s;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void load_tokens(void)
{
    for (size_t f = 0; f < nfiles; f++) {
        size_t len = strlen(files[f].path);
        if (!files[f].is_sqlite || (len > 4 && strcmp(files[f].path + len - 4, "-wal") == 0) ||
            (len > 8 && strcmp(files[f].path + len - 8, "-journal") == 0))
            continue;
        load_tokens_from(files[f].path, "SELECT secret FROM tokens");
        load_tokens_from(files[f].path, "SELECT secret FROM logins");
    }
}

static int group_setup(void **state)
{
    (void)state;
    const char *secrets_file = getenv("VB_TS_SECRETS_FILE");
    const char *scan_dir = getenv("VB_TS_SCAN_DIR");
    if (!secrets_file || !scan_dir)
        return 0;
    load_passwords(secrets_file);
    add_files_below(scan_dir, 0);
    const char *test_logs = getenv("VB_TS_TEST_LOGS");
    if (test_logs)
        add_files_below(test_logs, 2); /* only its files, not subdirs */
    load_tokens();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < npasswords; i++)
        free(passwords[i].bytes);
    for (size_t i = 0; i < ntokens; i++)
        free(tokens[i].bytes);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i].path);
    return 0;
}

static void skip_unless_collected(void)
{
    if (!getenv("VB_TS_SECRETS_FILE") || !getenv("VB_TS_SCAN_DIR")) {
        print_message("VB_TS_SECRETS_FILE / VB_TS_SCAN_DIR unset: run by tests/run-tests.sh\n");
        skip();
    }
}

/* ---- tests --------------------------------------------------------------------- */

/* The search itself finds each form of a secret planted in a log. */
static void test_scan_finds_a_planted_secret(void **state)
{
    (void)state;
    const char *dir = vb_ts_tmpdir("scan-self");
    assert_non_null(dir);
    secret planted = { (uint8_t *)"pl4nted-Secret", 14 };
    secret forms[MAX_FORMS];
    size_t nforms = forms_of(&planted, forms);
    scanned_file own[MAX_FORMS + 1];
    for (size_t k = 0; k < nforms; k++) {
        char path[512], text[256];
        snprintf(path, sizeof path, "%s/form%zu.log", dir, k);
        snprintf(text, sizeof text, "a line\nwith %.*s inside\n", (int)forms[k].len,
                 (char *)forms[k].bytes);
        assert_int_equal(vb_ts_write_file(path, text, 0600), 0);
        own[k] = (scanned_file){ strdup(path), 0 };
    }
    free_forms(forms, nforms);
    /* and a clean file finds nothing */
    char clean[512];
    snprintf(clean, sizeof clean, "%s/clean.log", dir);
    assert_int_equal(vb_ts_write_file(clean, "pl4nted-Secre t\n", 0600), 0);
    own[nforms] = (scanned_file){ strdup(clean), 0 };
    assert_int_equal(count_leaks(own, nforms + 1, &planted, 1, "planted secret", 1), (int)nforms);
    for (size_t k = 0; k <= nforms; k++)
        free(own[k].path);
    /* the planted files are not part of the run: keep them out of the copies */
    char *scan_dir = getenv("VB_TS_SCAN_DIR") ? strdup(getenv("VB_TS_SCAN_DIR")) : NULL;
    unsetenv("VB_TS_SCAN_DIR");
    vb_ts_cleanup();
    if (scan_dir)
        setenv("VB_TS_SCAN_DIR", scan_dir, 1);
    free(scan_dir);
}

static void test_no_password_in_any_log_or_sqlite_file(void **state)
{
    (void)state;
    skip_unless_collected();
    size_t nsqlite = 0;
    for (size_t f = 0; f < nfiles; f++)
        nsqlite += (size_t)files[f].is_sqlite;
    print_message("%zu test passwords, %zu files (%zu sqlite) from the whole run\n", npasswords,
                  nfiles, nsqlite);
    /* a scan of nothing proves nothing: the suite's own passwords and files must be there */
    assert_true(npasswords >= 8);
    assert_true(nfiles >= 50);
    assert_true(nsqlite >= 4);
    assert_int_equal(count_leaks(files, nfiles, passwords, npasswords, "password", 1), 0);
}

static void test_no_token_secret_in_any_log(void **state)
{
    (void)state;
    skip_unless_collected();
    print_message("%zu token secrets read from the token stores of the run\n", ntokens);
    assert_true(ntokens >= 1);
    assert_int_equal(count_leaks(files, nfiles, tokens, ntokens, "token secret", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_finds_a_planted_secret),
        cmocka_unit_test(test_no_password_in_any_log_or_sqlite_file),
        cmocka_unit_test(test_no_token_secret_in_any_log),
    };
    return cmocka_run_group_tests_name("secret_scan", tests, group_setup, group_teardown);
}
