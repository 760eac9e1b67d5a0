/* vb_testsupport_scan — what the suite-wide secret scan needs from every
 * test (tests/scan/secret_scan.c runs last in `make check`):
 *
 *  - vb_ts_note_secret: the secrets a test uses, one hex line each, appended
 *    to $VB_TS_SECRETS_FILE;
 *  - vb_ts_priv_collect_for_scan: before a temp dir is removed, its logs and
 *    sqlite files are copied to $VB_TS_SCAN_DIR/DIRNAME/, so the scan sees
 *    what every daemon of every test wrote.
 *
 * Both are no-ops when their variable is unset (a test binary run by hand).
 */
#include "vb_testsupport_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *env_path(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

const char *vb_ts_note_secret(const char *secret)
{
    const char *path = env_path("VB_TS_SECRETS_FILE");
    if (!path || !secret || !*secret)
        return secret;
    size_t n = strlen(secret);
    char *line = malloc(2 * n + 2);
    if (!line)
        abort();
    for (size_t i = 0; i < n; i++)
        snprintf(line + 2 * i, 3, "%02x", (unsigned char)secret[i]);
    line[2 * n] = '\n';
    /* one write() with O_APPEND: lines from concurrent test processes never interleave */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, 2 * n + 1) != (ssize_t)(2 * n + 1))
        fprintf(stderr, "vb_ts_note_secret: cannot append to %s: %s\n", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(line);
    return secret;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_sqlite(const char *path)
{
    char head[16] = { 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    return n == (ssize_t)sizeof head && memcmp(head, "SQLite format 3", 16) == 0;
}

/* Logs (daemons', tools' and captured outputs) and sqlite databases with
 * their journals: where a leaked secret would persist. */
static int worth_scanning(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return ends_with(base, ".log") || ends_with(base, ".out") || strcmp(base, "out") == 0 ||
           ends_with(base, "-wal") || ends_with(base, "-journal") || is_sqlite(path);
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t n;
    int rc = 0;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n)
            rc = -1;
    close(in);
    close(out);
    return n < 0 ? -1 : rc;
}

/* nftw has no user pointer: the walk in progress (cleanup is single-threaded) */
static const char *walk_root;
static char *walk_dest;

static int collect_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag != FTW_F || !S_ISREG(sb->st_mode) || !worth_scanning(path))
        return 0;
    /* DEST/a__b__c.log for ROOT/a/b/c.log: one flat dir per temp dir */
    char *rel = vb_ts_priv_fmt("%s", path + strlen(walk_root) + 1);
    char *flat = malloc(3 * strlen(rel) + 1), *o = flat;
    if (!flat)
        abort();
    for (const char *p = rel; *p; p++)
        o += *p == '/' ? (size_t)sprintf(o, "__") : (size_t)sprintf(o, "%c", *p);
    *o = '\0';
    char *to = vb_ts_priv_fmt("%s/%s", walk_dest, flat);
    if (copy_file(path, to) < 0)
        fprintf(stderr, "vb_ts: cannot copy %s for the secret scan: %s\n", path, strerror(errno));
    free(to);
    free(flat);
    free(rel);
    return 0;
}

void vb_ts_priv_collect_for_scan(const char *dir)
{
    const char *scan = env_path("VB_TS_SCAN_DIR");
    if (!scan)
        return;
    const char *base = strrchr(dir, '/');
    walk_root = dir;
    walk_dest = vb_ts_priv_fmt("%s/%s", scan, base ? base + 1 : dir);
    if (mkdir(walk_dest, 0700) < 0 && errno != EEXIST)
        fprintf(stderr, "vb_ts: cannot create %s: %s\n", walk_dest, strerror(errno));
    else
        nftw(dir, collect_entry, 16, FTW_PHYS);
    free(walk_dest);
    walk_dest = NULL;
    walk_root = NULL;
}
