/*
 * vb_conf.c — a small recursive-descent parser for libvirt-style config.
 *
 *   file  := { blank | comment | entry }
 *   entry := key ws* '=' ws* value ws* [comment] (newline | EOF)
 *   value := string | int | '[' [string {',' string} [',']] ']'
 *
 * Inside a list, newlines and comments count as whitespace. The whole input
 * is in memory (bounded by VB_CONF_MAX_SIZE), so the parser is a cursor and
 * a line counter; every error names name:line and what was expected there.
 */
#include "vb_conf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Config files are hand-written and small; anything larger is a mistake or
 * an attack, and refusing it keeps memory use bounded. */
#define VB_CONF_MAX_SIZE (1024 * 1024)

typedef struct parser {
    const char *p;     /* cursor */
    const char *name;  /* file name for messages */
    int line;
    vb_conf *conf;
    vb_error *err;
} parser;

static int is_key_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* What the cursor sees, for "expected X, found Y" messages. */
static const char *describe(const char *p, char buf[16])
{
    if (*p == '\0')
        return "end of file";
    if (*p == '\n')
        return "end of line";
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
        snprintf(buf, 16, "byte 0x%02x", (unsigned char)*p);
    else
        snprintf(buf, 16, "'%c'", *p);
    return buf;
}

static int syntax_error(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int syntax_error(parser *ps, const char *fmt, ...)
{
    char what[VB_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return vb_error_set(ps->err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s:%d: %s", ps->name, ps->line,
                        what);
}

static int no_memory(vb_error *err)
{
    return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory reading config");
}

/* ---- whitespace ---------------------------------------------------------- */

/* Spaces, tabs and the '\r' of CRLF files, within one line. */
static void skip_blanks(parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r')
        ps->p++;
}

static void skip_comment(parser *ps)
{
    if (*ps->p == '#')
        while (*ps->p && *ps->p != '\n')
            ps->p++;
}

/* Blanks, comments and newlines: between list elements and between entries. */
static void skip_space(parser *ps)
{
    for (;;) {
        skip_blanks(ps);
        skip_comment(ps);
        if (*ps->p != '\n')
            return;
        ps->p++;
        ps->line++;
    }
}

/* ---- values -------------------------------------------------------------- */

/* "..." with \" and \\; the string may not cross a line. */
static int parse_string(parser *ps, char **out)
{
    const char *start = ++ps->p; /* past the opening quote */
    size_t n = 0;
    for (const char *c = start; *c != '"'; c++, n++) {
        if (*c == '\0' || *c == '\n')
            return syntax_error(ps, "unterminated string: expected a closing '\"' on this line");
        if (*c == '\\') {
            c++;
            if (*c != '"' && *c != '\\') {
                char d[16];
                return syntax_error(ps, "unknown escape '\\' followed by %s in string: "
                                        "only \\\" and \\\\ are allowed",
                                    describe(c, d));
            }
        }
    }
    char *s = malloc(n + 1);
    if (!s)
        return no_memory(ps->err);
    size_t i = 0;
    for (; *ps->p != '"'; ps->p++) {
        if (*ps->p == '\\')
            ps->p++;
        s[i++] = *ps->p;
    }
    s[i] = '\0';
    ps->p++; /* past the closing quote */
    *out = s;
    return 0;
}

/* Decimal, optionally negative, within int64. */
static int parse_int(parser *ps, int64_t *out)
{
    const char *start = ps->p;
    int neg = *ps->p == '-';
    if (neg)
        ps->p++;
    if (*ps->p < '0' || *ps->p > '9') {
        char d[16];
        return syntax_error(ps, "expected digits after '-', found %s", describe(ps->p, d));
    }
    /* Accumulate as a negative number so INT64_MIN fits. */
    int64_t v = 0;
    int overflow = 0;
    for (; *ps->p >= '0' && *ps->p <= '9'; ps->p++) {
        int digit = *ps->p - '0';
        if (v < (INT64_MIN + digit) / 10)
            overflow = 1;
        else
            v = v * 10 - digit;
    }
    if (overflow || (!neg && v == INT64_MIN)) {
        int len = (int)(ps->p - start);
        return syntax_error(ps, "number '%.*s%s' is out of range (64-bit signed)",
                            len > 24 ? 24 : len, start, len > 24 ? "..." : "");
    }
    *out = neg ? v : -v;
    return 0;
}

static int list_append(vb_conf_entry *e, char *s, vb_error *err)
{
    char **grown = realloc(e->list, (e->nlist + 1) * sizeof *grown);
    if (!grown) {
        free(s);
        return no_memory(err);
    }
    e->list = grown;
    e->list[e->nlist++] = s;
    return 0;
}

/* '[' already seen. Elements are strings; a trailing comma is allowed. */
static int parse_list(parser *ps, vb_conf_entry *e)
{
    int start_line = ps->line;
    char d[16];
    ps->p++;
    for (;;) {
        skip_space(ps);
        if (*ps->p == ']')
            break;
        if (*ps->p == '\0')
            return syntax_error(ps, "unterminated list (opened on line %d): expected ']'",
                                start_line);
        if (*ps->p != '"')
            return syntax_error(ps, "expected a \"string\" or ']' in list, found %s",
                                describe(ps->p, d));
        char *s;
        if (parse_string(ps, &s) < 0 || list_append(e, s, ps->err) < 0)
            return -1;
        skip_space(ps);
        if (*ps->p == ',')
            ps->p++;
        else if (*ps->p != ']' && *ps->p != '\0')
            return syntax_error(ps, "expected ',' or ']' after a list element, found %s",
                                describe(ps->p, d));
    }
    ps->p++; /* past ']' */
    e->type = VB_CONF_LIST;
    return 0;
}

static int parse_value(parser *ps, vb_conf_entry *e)
{
    char d[16];
    if (*ps->p == '"') {
        e->type = VB_CONF_STRING;
        return parse_string(ps, &e->str);
    }
    if (*ps->p == '[')
        return parse_list(ps, e);
    if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
        e->type = VB_CONF_INT;
        return parse_int(ps, &e->num);
    }
    return syntax_error(ps, "expected a value (\"string\", number or [list]) after '=', found %s",
                        describe(ps->p, d));
}

/* ---- entries ------------------------------------------------------------- */

static vb_conf_entry *new_entry(vb_conf *conf, vb_error *err)
{
    vb_conf_entry *grown = realloc(conf->entries, (conf->nentries + 1) * sizeof *grown);
    if (!grown) {
        no_memory(err);
        return NULL;
    }
    conf->entries = grown;
    vb_conf_entry *e = &conf->entries[conf->nentries++];
    memset(e, 0, sizeof *e);
    return e;
}

static int parse_entry(parser *ps)
{
    char d[16];
    const char *key = ps->p;
    while (is_key_char(*ps->p))
        ps->p++;
    if (ps->p == key)
        return syntax_error(ps, "expected a key (letters, digits, '_'), found %s",
                            describe(ps->p, d));
    vb_conf_entry *e = new_entry(ps->conf, ps->err);
    if (!e)
        return -1;
    e->line = ps->line;
    e->type = VB_CONF_INT; /* until the value says otherwise; nothing to free yet */
    e->key = strndup(key, (size_t)(ps->p - key));
    if (!e->key)
        return no_memory(ps->err);
    skip_blanks(ps);
    if (*ps->p != '=')
        return syntax_error(ps, "expected '=' after key '%s', found %s", e->key,
                            describe(ps->p, d));
    ps->p++;
    skip_blanks(ps);
    if (parse_value(ps, e) < 0)
        return -1;
    skip_blanks(ps);
    skip_comment(ps);
    if (*ps->p != '\n' && *ps->p != '\0')
        return syntax_error(ps, "expected end of line after the value of '%s', found %s",
                            e->key, describe(ps->p, d));
    return 0;
}

static int parse_all(parser *ps)
{
    for (;;) {
        skip_space(ps);
        if (*ps->p == '\0')
            return 0;
        if (parse_entry(ps) < 0)
            return -1;
    }
}

/* ---- public: parsing ----------------------------------------------------- */

int vb_conf_parse_string(const char *text, const char *name, vb_conf *out, vb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!name)
        name = "<string>";
    if (!text)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CONFIG, "%s: no text given", name);
    if (strnlen(text, VB_CONF_MAX_SIZE + 1) > VB_CONF_MAX_SIZE)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "%s: larger than %d bytes; config files must be small", name,
                            VB_CONF_MAX_SIZE);
    out->path = strdup(name);
    if (!out->path)
        return no_memory(err);
    parser ps = { .p = text, .name = out->path, .line = 1, .conf = out, .err = err };
    if (parse_all(&ps) < 0) {
        vb_conf_clear(out);
        return -1;
    }
    return 0;
}

/* Read at most max + 1 bytes, so an oversized (or growing) file is caught
 * without reading all of it. On an error the bytes read are wiped: the file
 * may hold passwords (auth.conf). */
static int read_bounded(int fd, const char *path, size_t max, const char *what, char **text,
                        size_t *textlen, vb_error *err)
{
    char *buf = malloc(max + 2);
    if (!buf)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory reading '%s'",
                            path);
    size_t len = 0;
    int rc = 0;
    while (len <= max) {
        ssize_t n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = vb_error_set_errno(err, errno, VB_DOM_CONFIG, "cannot read '%s'", path);
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (rc == 0 && len > max)
        rc = vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                          "%s: larger than %zu bytes; %s must be small", path, max, what);
    /* A NUL would silently end the text early; say where it is instead. */
    const char *nul = rc == 0 ? memchr(buf, '\0', len) : NULL;
    if (nul) {
        int line = 1;
        for (const char *c = buf; c < nul; c++)
            line += *c == '\n';
        rc = vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s:%d: NUL byte in a text file", path,
                          line);
    }
    if (rc < 0) {
        explicit_bzero(buf, len);
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    *text = buf;
    *textlen = len;
    return 0;
}

int vb_conf_read_text(const char *path, size_t max, const char *what, int missing_ok,
                      char **text, size_t *len, struct stat *st, vb_error *err)
{
    *text = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it changes
     * nothing for the regular files we accept. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (missing_ok && errno == ENOENT)
            return 0;
        return vb_error_set_errno(err, errno, VB_DOM_CONFIG, "cannot open '%s'", path);
    }
    struct stat own;
    if (!st)
        st = &own;
    if (fstat(fd, st) < 0) {
        int e = errno;
        close(fd);
        return vb_error_set_errno(err, e, VB_DOM_CONFIG, "cannot stat '%s'", path);
    }
    /* A directory, FIFO or device is never a config file (and a FIFO could
     * block the caller forever). */
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "'%s' is not a regular file",
                            path);
    }
    int rc = read_bounded(fd, path, max, what, text, len, err);
    close(fd);
    return rc;
}

int vb_conf_parse_file(const char *path, vb_conf *out, vb_error *err)
{
    memset(out, 0, sizeof *out);
    if (!path)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CONFIG, "no config file given");
    char *text;
    size_t len;
    if (vb_conf_read_text(path, VB_CONF_MAX_SIZE, "config files", 0, &text, &len, NULL, err) < 0)
        return -1;
    int rc = vb_conf_parse_string(text, path, out, err);
    free(text);
    return rc;
}

void vb_conf_clear(vb_conf *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < conf->nentries; i++) {
        vb_conf_entry *e = &conf->entries[i];
        free(e->key);
        free(e->str);
        for (size_t j = 0; j < e->nlist; j++)
            free(e->list[j]);
        free(e->list);
    }
    free(conf->entries);
    free(conf->path);
    memset(conf, 0, sizeof *conf);
}

/* ---- public: lookups ----------------------------------------------------- */

static const char *type_name(enum vb_conf_type t)
{
    switch (t) {
    case VB_CONF_STRING:
        return "a \"string\"";
    case VB_CONF_INT:
        return "a number";
    case VB_CONF_LIST:
        return "a [list]";
    }
    return "an unknown type";
}

/* The last entry named key (the last one wins), marking every entry with
 * that name used: an overridden duplicate is not an "unknown" key. */
static vb_conf_entry *find(vb_conf *conf, const char *key)
{
    vb_conf_entry *found = NULL;
    for (size_t i = 0; conf && key && i < conf->nentries; i++) {
        if (strcmp(conf->entries[i].key, key) == 0) {
            conf->entries[i].used = 1;
            found = &conf->entries[i];
        }
    }
    return found;
}

static vb_conf_entry *find_typed(vb_conf *conf, const char *key, enum vb_conf_type want,
                                 int *rc, vb_error *err)
{
    vb_conf_entry *e = find(conf, key);
    *rc = e ? 1 : 0;
    if (e && e->type != want) {
        *rc = vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s:%d: '%s' must be %s, not %s",
                           conf->path ? conf->path : "<string>", e->line, key,
                           type_name(want), type_name(e->type));
        return NULL;
    }
    return e;
}

int vb_conf_get_string(vb_conf *conf, const char *key, const char **out, vb_error *err)
{
    int rc;
    vb_conf_entry *e = find_typed(conf, key, VB_CONF_STRING, &rc, err);
    if (e)
        *out = e->str;
    return rc;
}

int vb_conf_get_int(vb_conf *conf, const char *key, int64_t *out, vb_error *err)
{
    int rc;
    vb_conf_entry *e = find_typed(conf, key, VB_CONF_INT, &rc, err);
    if (e)
        *out = e->num;
    return rc;
}

int vb_conf_get_list(vb_conf *conf, const char *key, char *const **out, size_t *n,
                     vb_error *err)
{
    int rc;
    vb_conf_entry *e = find_typed(conf, key, VB_CONF_LIST, &rc, err);
    if (e) {
        *out = e->list;
        *n = e->nlist;
    }
    return rc;
}

const vb_conf_entry *vb_conf_unknown_key(const vb_conf *conf)
{
    for (size_t i = 0; conf && i < conf->nentries; i++)
        if (!conf->entries[i].used)
            return &conf->entries[i];
    return NULL;
}
