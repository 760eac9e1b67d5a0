/*
 * vb_paths.h — where vbroker keeps its per-user files: one rule per path.
 *
 * Every per-user path of the client, the broker and vbctl comes from here
 * (docs/architecture.md, "Per-user paths"), so they cannot disagree:
 *
 *   home        $HOME when absolute, else the passwd entry's home of the
 *               real uid when absolute and it exists; else none
 *   config dir  $XDG_CONFIG_HOME/vbroker, else HOME/.config/vbroker
 *               (auth.conf, vbrokerd.conf, known_hosts, pki/)
 *   state dir   $XDG_STATE_HOME/vbroker, else HOME/.local/state/vbroker
 *               (the broker's cache.db and, autostarted, vbrokerd.log)
 *   socket      $VBROKER_SOCKET, else $XDG_RUNTIME_DIR/vbroker/sock, else
 *               /tmp/vbroker-UID/sock (vb_sockdir_open judges its directory)
 *
 * An XDG variable counts only when it holds an absolute path (the XDG spec:
 * a relative one is invalid and ignored). Without a home there is no
 * config or state dir: never a relative or shared fallback such as
 * /tmp/.local. Variables are read with secure_getenv: were this ever run
 * setuid, the caller's environment must not choose which file's passwords
 * are sent. This file computes names only; the callers create and check.
 *
 * In proto/ because libvbroker needs the socket's name, and libvbroker
 * links nothing else (vbctl builds this file in as well).
 */
#ifndef VB_PATHS_H
#define VB_PATHS_H

#include <stddef.h>

/* Each returns a malloc'd path, or NULL when there is no home (or no
 * memory). */
char *vb_path_home(void);
/* $XDG_CONFIG_HOME, else HOME/.config: the base another program's files
 * (libvirt's auth.conf) live under. */
char *vb_path_config_home(void);
char *vb_path_config_dir(void);
/* vb_path_config_dir()/name, e.g. "auth.conf", "known_hosts", "pki". */
char *vb_path_config_file(const char *name);
char *vb_path_state_dir(void);

/* The broker's socket, as client and broker both find it (truncated to
 * len; a path that long is refused when used). */
void vb_path_broker_socket(char *buf, size_t len);

#endif
