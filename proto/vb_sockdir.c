/* The broker socket's directory: open it without following a link, then
 * judge the descriptor (not the name, which may change under us). */
#include "vb_sockdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_DEPTH 256 /* directories above the socket's; more means a loop */

static const char fix_hint[] =
    "remove it, or use a 0700 directory of yours (VBROKER_SOCKET=DIR/sock, or your own XDG_RUNTIME_DIR)";

static void dir_of(const char *path, char *dir, size_t len)
{
    snprintf(dir, len, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
}

/* -1 with err and errno kept, so a caller can tell "missing" from "unsafe". */
static int fail_errno(vb_error *err, int e, int domain, const char *what, const char *dir)
{
    vb_error_set_errno(err, e, domain, "cannot %s the broker's socket directory %s", what, dir);
    if (err)
        err->code = VB_ERR_NO_CONNECT;
    errno = e;
    return -1;
}

/* The name an error message gives a directory we hold only as a descriptor. */
static void fd_name(int fd, const char *fallback, char *buf, size_t len)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, len - 1);
    if (n > 0 && (size_t)n < len - 1)
        buf[n] = '\0';
    else
        snprintf(buf, len, "%s", fallback);
}

/* A directory above the socket's may be root's or ours; one others can
 * write must be sticky, or they could rename our directory away and put
 * theirs in its place. */
static int check_parent(int fd, const struct stat *st, uid_t uid, const char *dir, int domain,
                        vb_error *err)
{
    const char *wrong = NULL;
    if (st->st_uid != 0 && st->st_uid != uid)
        wrong = "belongs to another user";
    else if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
        wrong = "is writable by others and not sticky";
    if (!wrong)
        return 0;
    char name[256];
    fd_name(fd, "a directory above it", name, sizeof name);
    return vb_error_set(err, VB_ERR_NO_CONNECT, domain,
                        "refusing the broker's socket directory %s: %s (uid %u, mode %04o) %s, "
                        "so others could replace what is below it; %s",
                        dir, name, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777), wrong,
                        fix_hint);
}

/* Walk "..", from the descriptor up to the root. */
static int check_parents(int dir_fd, uid_t uid, const char *dir, int domain, vb_error *err)
{
    struct stat below, st;
    if (fstat(dir_fd, &below) < 0)
        return fail_errno(err, errno, domain, "stat", dir);
    int cur = dir_fd, rc = 0;
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        int e = errno;
        if (cur != dir_fd)
            close(cur);
        if (up < 0)
            return fail_errno(err, e, domain, "check the directories above", dir);
        if (fstat(up, &st) < 0) {
            e = errno;
            close(up);
            return fail_errno(err, e, domain, "check the directories above", dir);
        }
        if (st.st_dev == below.st_dev && st.st_ino == below.st_ino) { /* "/.." is "/" */
            close(up);
            return 0;
        }
        if ((rc = check_parent(up, &st, uid, dir, domain, err)) < 0) {
            close(up);
            return rc;
        }
        below = st;
        cur = up;
    }
    if (cur != dir_fd)
        close(cur);
    return vb_error_set(err, VB_ERR_NO_CONNECT, domain,
                        "the broker's socket directory %s is more than %d levels deep", dir,
                        MAX_DEPTH);
}

/* Why open(O_NOFOLLOW|O_DIRECTORY) failed, in words. */
static int explain_open_failure(const char *dir, int e, int domain, vb_error *err)
{
    struct stat st;
    if ((e == ELOOP || e == ENOTDIR) && lstat(dir, &st) == 0) {
        if (S_ISLNK(st.st_mode))
            return vb_error_set(err, VB_ERR_NO_CONNECT, domain,
                                "refusing the broker's socket directory %s: it is a symbolic "
                                "link (owner uid %u), which could lead anywhere; %s",
                                dir, (unsigned)st.st_uid, fix_hint);
        if (!S_ISDIR(st.st_mode))
            return vb_error_set(err, VB_ERR_NO_CONNECT, domain,
                                "refusing the broker's socket directory %s: it is not a directory; %s",
                                dir, fix_hint);
    }
    if (e == EACCES) { /* typically su without "-": XDG_RUNTIME_DIR is still the other user's */
        vb_error_set(err, VB_ERR_NO_CONNECT, domain,
                     "cannot open the broker's socket directory %s: %s; it is not yours: %s", dir,
                     strerror(e), fix_hint);
        errno = e;
        return -1;
    }
    return fail_errno(err, e, domain, "open", dir);
}

static int check_own(const struct stat *st, uid_t uid, const char *dir, int domain, vb_error *err)
{
    if (st->st_uid != uid)
        return vb_error_set(err, VB_ERR_NO_CONNECT, domain,
                            "refusing the broker's socket directory %s: it belongs to uid %u, not "
                            "to uid %u (you); whoever made it could pose as your broker; %s",
                            dir, (unsigned)st->st_uid, (unsigned)uid, fix_hint);
    if (st->st_mode & 077)
        return vb_error_set(err, VB_ERR_NO_CONNECT, domain,
                            "refusing the broker's socket directory %s: it has mode %04o, open to "
                            "others; it must be 0700 (chmod 700 %s)",
                            dir, (unsigned)(st->st_mode & 07777), dir);
    return 0;
}

int vb_sockdir_open(const char *socket_path, uid_t uid, int create, int domain, vb_error *err)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    if (strlen(socket_path) >= sizeof dir - 1)
        return fail_errno(err, ENAMETOOLONG, domain, "use", socket_path);
    dir_of(socket_path, dir, sizeof dir);
    int made = create && mkdir(dir, 0700) == 0;
    if (create && !made && errno != EEXIST)
        return fail_errno(err, errno, domain, "create", dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        explain_open_failure(dir, e, domain, err);
        errno = e;
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return fail_errno(err, e, domain, "stat", dir);
    }
    /* a umask may have taken bits we need from a directory we just made */
    if (made && st.st_uid == uid && fchmod(fd, 0700) == 0)
        st.st_mode = (st.st_mode & ~07777u) | 0700;
    if (check_own(&st, uid, dir, domain, err) < 0 || check_parents(fd, uid, dir, domain, err) < 0) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

void vb_sockdir_entry_path(int dir_fd, const char *socket_path, char *buf, size_t len)
{
    const char *slash = strrchr(socket_path, '/');
    const char *name = slash ? slash + 1 : socket_path;
    char proc_dir[64];
    struct stat via_proc, direct;
    snprintf(proc_dir, sizeof proc_dir, "/proc/self/fd/%d", dir_fd);
    size_t need = strlen(proc_dir) + 1 + strlen(name) + 1;
    int usable = need <= len && need <= sizeof(((struct sockaddr_un *)0)->sun_path) &&
                 stat(proc_dir, &via_proc) == 0 && fstat(dir_fd, &direct) == 0 &&
                 via_proc.st_dev == direct.st_dev && via_proc.st_ino == direct.st_ino;
    if (usable)
        snprintf(buf, len, "%s/%s", proc_dir, name);
    else
        snprintf(buf, len, "%s", socket_path);
}
