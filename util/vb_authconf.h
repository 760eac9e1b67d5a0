/*
 * vb_authconf.h — libvirt's auth.conf: stored logins, so no one is prompted.
 *
 *   [credentials-test]            # one set of answers
 *   authname=fred
 *   password=123456
 *
 *   [auth-vbhostd-example.com]    # which set a login to SERVICE at HOST uses
 *   credentials=test
 *   [auth-vbhostd-default]        # ...and at any other HOST
 *   credentials=test
 *
 * SERVICE is vbhostd (libvirt is accepted as its alias, so a libvirt user's
 * file works unchanged), ssh or xenapi; HOST is compared exactly as the URI
 * writes it. The file is parsed strictly at load, every error naming
 * file:line, so a typo fails loudly instead of silently prompting. Passwords
 * are wiped on free and never appear in an error message; a file holding
 * one must be private to its owner (ssh's rule for keys).
 */
#ifndef VB_AUTHCONF_H
#define VB_AUTHCONF_H

#include "vb_cred.h"
#include "vb_error.h"

/* A hand-written file is small; anything larger is a mistake. */
#define VB_AUTHCONF_MAX_SIZE (64 * 1024)

typedef struct vb_authconf vb_authconf;

/* Which file to read, malloc'd (NULL when no home directory is known or
 * out of memory): uri_authfile (the URI's ?authfile=) when non-empty, else
 * $VBROKER_AUTH_FILE, else $XDG_CONFIG_HOME/vbroker/auth.conf, where an unset
 * or relative XDG_CONFIG_HOME means $HOME/.config (the passwd entry's home
 * when HOME is unset). */
char *vb_authconf_path(const char *uri_authfile);

/* Parse path. A file that does not exist is not an error: *out = NULL and 0.
 * Refused (-1, VB_ERR_CONFIG, message "path:line: ..."): over
 * VB_AUTHCONF_MAX_SIZE, a NUL byte, a line that is neither [group],
 * key=value, blank nor a comment ('#' or ';' first; a '#' inside a value is
 * part of the value), a key before any group, an unknown group or key, a key
 * given twice, a duplicate group, an auth group without credentials= or
 * naming a missing credentials group, and a file holding a password that
 * group or others can read or write, or that another user owns. */
int vb_authconf_load(const char *path, vb_authconf **out, vb_error *err);

/* Answer req from the credentials group for (service, host): first
 * [auth-SERVICE-HOST], then [auth-SERVICE-default]; for vbhostd each step
 * also tries libvirt (after vbhostd), so a host-specific group of either
 * name beats a default. A NULL or empty host is "localhost", as in libvirt.
 * AUTHNAME <- authname, USERNAME <- username, PASSPHRASE <- password,
 * REALM <- realm; prompts (ECHOPROMPT, NOECHOPROMPT) and the other types
 * are never answered from a file.
 *
 * Returns 1 when every item got a result (no prompt needed); 0 when the file
 * answered only some or none (the answers stay in place) — conf NULL, no
 * group matches, an empty request, or req->retry set (the stored answer just
 * failed: nothing is filled then); -1 on bad arguments or out of memory
 * (results filled by this call are wiped). After a 0 the broker prompts for
 * the whole request, not only the gaps, so the person sees one form. */
int vb_authconf_fill(const vb_authconf *conf, const char *service, const char *host,
                     vb_cred_request *req, vb_error *err);

/* Wipe every value (passwords included) and free; NULL is fine. */
void vb_authconf_free(vb_authconf *conf);

/* The same without the [auth-SERVICE-default] step: only a group named for
 * this very host answers (a question relayed by a hop never takes a
 * catch-all entry: docs/security.md 6). */
int vb_authconf_fill_exact(const vb_authconf *conf, const char *service, const char *host,
                           vb_cred_request *req, vb_error *err);

#endif
