/*
 * vb_conf.h — config files in libvirt's style.
 *
 *   # comment
 *   key = "string"
 *   key = 123
 *   key = ["a", "b"]        (lists may span lines)
 *
 * Parsing only: the daemon and broker look up the keys they know and reject
 * the ones they do not (vb_conf_unknown_key). Errors name the file and line.
 */
#ifndef VB_CONF_H
#define VB_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "vb_error.h"

enum vb_conf_type { VB_CONF_STRING, VB_CONF_INT, VB_CONF_LIST };

typedef struct vb_conf_entry {
    char *key;
    enum vb_conf_type type;
    char *str;          /* VB_CONF_STRING */
    int64_t num;        /* VB_CONF_INT */
    char **list;        /* VB_CONF_LIST: strings */
    size_t nlist;
    int line;
    int used;           /* set by the getters; see vb_conf_unknown_key */
} vb_conf_entry;

typedef struct vb_conf {
    char *path;
    vb_conf_entry *entries;
    size_t nentries;
} vb_conf;

int vb_conf_parse_file(const char *path, vb_conf *out, vb_error *err);
int vb_conf_parse_string(const char *text, const char *name, vb_conf *out, vb_error *err);
void vb_conf_clear(vb_conf *conf);

struct stat;
/* The whole of a small hand-written text file (config, auth.conf): a regular
 * file only (a FIFO is opened without waiting for a writer), at most max
 * bytes (what names the kind of file in that error: "auth.conf must be
 * small"), no NUL byte. *text is malloc'd and NUL-terminated, *len its
 * length; st (may be NULL) gets the opened file's status, for an owner
 * check free of races. Bytes read are wiped on an error; a caller whose
 * file may hold secrets wipes *text itself. 0, or -1 with err. missing_ok:
 * a file that does not exist is 0 with *text NULL. */
int vb_conf_read_text(const char *path, size_t max, const char *what, int missing_ok,
                      char **text, size_t *len, struct stat *st, vb_error *err);

/* Getters: 0 and *out untouched when the key is absent; 1 when found; -1 on
 * a type mismatch (err says file:line and the expected type). A repeated key:
 * the last one wins. */
int vb_conf_get_string(vb_conf *conf, const char *key, const char **out, vb_error *err);
int vb_conf_get_int(vb_conf *conf, const char *key, int64_t *out, vb_error *err);
int vb_conf_get_list(vb_conf *conf, const char *key, char *const **out, size_t *n, vb_error *err);
/* After all getters ran: the first key nobody asked for, or NULL. */
const vb_conf_entry *vb_conf_unknown_key(const vb_conf *conf);

#endif
