/*
 * vb_sockdir.h — where the broker's socket lives, and whether that place is
 * private to us.
 *
 * The one part of proto/ that touches the file system: libvbroker links
 * only proto/, and the thin client and vbrokerd must find the same socket
 * and apply the same checks to its directory (docs/security.md §1.1).
 */
#ifndef VB_SOCKDIR_H
#define VB_SOCKDIR_H

#include <stddef.h>
#include <sys/types.h>

#include "vb_error.h"

/* Open the directory that holds socket_path (its dirname) as an
 * O_DIRECTORY|O_NOFOLLOW descriptor and check that it is private to uid: not
 * a symbolic link, owned by uid, no permission bits for group or others, and
 * every directory above it (walked through "..", so what is checked is what
 * the descriptor sits in) owned by root or uid and, when others may write
 * it, sticky. With create, a missing directory is made 0700 first (its
 * parent must exist). Returns the descriptor (close-on-exec), or -1 with err
 * (code VB_ERR_NO_CONNECT, the given domain) naming the directory and what
 * is wrong; errno is ENOENT when the directory does not exist. */
int vb_sockdir_open(const char *socket_path, uid_t uid, int create, int domain, vb_error *err);

/* A path that reaches socket_path's last component through dir_fd
 * ("/proc/self/fd/N/NAME"), so a connect or bind lands in the directory that
 * was checked even if a name above it changes later; socket_path itself when
 * /proc is not mounted or the result would not fit a sockaddr_un. */
void vb_sockdir_entry_path(int dir_fd, const char *socket_path, char *buf, size_t len);

#endif
