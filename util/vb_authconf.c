/*
 * vb_authconf.c — load libvirt's auth.conf keyfile and answer requests from it.
 *
 *   file   := { blank | comment | header | entry }       one per line
 *   header := '[' name ']'        name: credentials-NAME | auth-SERVICE-HOST
 *   entry  := key '=' value       blanks around key and value are trimmed
 *
 * libvirt reads this with GKeyFile; glib is not among our dependencies and
 * the format is a few lines per construct, so it is parsed here, strictly:
 * every group, key and reference is checked at load, so a lookup later can
 * only find an answer or find none. The text is parsed in place and wiped
 * before free, because it holds passwords. Messages name the file, the line
 * and group or key names, never a value other than a credentials= name: a
 * password may sit on any line, even one without '='.
 */
#include "vb_authconf.h"
#include "vb_conf.h"
#include "vb_paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CRED_PREFIX "credentials-"
#define AUTH_PREFIX "auth-"
/* Group names are echoed in messages; a long one must not crowd out the rest. */
#define NAME_SHOWN 64

enum ac_key { AC_CREDENTIALS, AC_AUTHNAME, AC_USERNAME, AC_PASSWORD, AC_REALM, AC_NKEYS };
enum ac_kind { AC_KIND_CREDENTIALS, AC_KIND_AUTH };

/* Which keys exist, which group kind takes each, which item each answers. */
static const struct {
    const char *name;
    enum ac_kind kind;
    int cred_type;
} ac_keys[AC_NKEYS] = {
    [AC_CREDENTIALS] = { "credentials", AC_KIND_AUTH, 0 },
    [AC_AUTHNAME] = { "authname", AC_KIND_CREDENTIALS, VB_CRED_AUTHNAME },
    [AC_USERNAME] = { "username", AC_KIND_CREDENTIALS, VB_CRED_USERNAME },
    [AC_PASSWORD] = { "password", AC_KIND_CREDENTIALS, VB_CRED_PASSPHRASE },
    [AC_REALM] = { "realm", AC_KIND_CREDENTIALS, VB_CRED_REALM },
};

typedef struct ac_group {
    char *name;                 /* the whole header: "credentials-test" */
    enum ac_kind kind;
    int line;
    char *value[AC_NKEYS];      /* NULL when absent */
    size_t len[AC_NKEYS];
    int value_line[AC_NKEYS];
    size_t creds;               /* AC_KIND_AUTH: index of its credentials group */
} ac_group;

struct vb_authconf {
    char *path;
    ac_group *groups;
    size_t ngroups;
};

typedef struct parser {
    vb_authconf *conf;
    int line;
    ac_group *cur;              /* the group entries go to; NULL before the first */
    vb_error *err;
} parser;

static int at_line(vb_error *err, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int at_line(vb_error *err, const char *path, int line, const char *fmt, ...)
{
    char what[VB_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG, "%s:%d: %s", path, line, what);
}

static int no_memory(vb_error *err)
{
    return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory reading auth.conf");
}

/* ---- lines ---------------------------------------------------------------- */

/* Spaces, tabs and the '\r' of CRLF files. */
static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Trim in place; the text is ours and wiped afterwards. */
static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* auth-SERVICE-HOST with both parts non-empty; SERVICE ends at the first
 * '-' (service names have none, host names may). */
static int is_auth_name(const char *name)
{
    if (strncmp(name, AUTH_PREFIX, strlen(AUTH_PREFIX)) != 0)
        return 0;
    const char *service = name + strlen(AUTH_PREFIX);
    const char *dash = strchr(service, '-');
    return dash && dash > service && dash[1] != '\0';
}

static int parse_header(parser *ps, char *text)
{
    const char *path = ps->conf->path;
    size_t n = strlen(text);
    if (n < 2 || text[n - 1] != ']')
        return at_line(ps->err, path, ps->line, "expected ']' at the end of the group header");
    text[n - 1] = '\0';
    char *name = trim(text + 1);
    if (*name == '\0')
        return at_line(ps->err, path, ps->line, "empty group name '[]'");
    for (const char *c = name; *c; c++)
        if (is_blank(*c) || *c == '[' || *c == ']' || (unsigned char)*c < 0x20 || *c == 0x7f)
            return at_line(ps->err, path, ps->line,
                           "a group name takes no blanks, brackets or control bytes");

    enum ac_kind kind;
    if (strncmp(name, CRED_PREFIX, strlen(CRED_PREFIX)) == 0 && name[strlen(CRED_PREFIX)])
        kind = AC_KIND_CREDENTIALS;
    else if (is_auth_name(name))
        kind = AC_KIND_AUTH;
    else
        return at_line(ps->err, path, ps->line,
                       "unknown group [%.*s]: expected [credentials-NAME] or "
                       "[auth-SERVICE-HOST]",
                       NAME_SHOWN, name);

    vb_authconf *conf = ps->conf;
    for (size_t i = 0; i < conf->ngroups; i++)
        if (strcmp(conf->groups[i].name, name) == 0)
            return at_line(ps->err, path, ps->line, "duplicate group [%.*s] (first on line %d)",
                           NAME_SHOWN, name, conf->groups[i].line);

    ac_group *grown = realloc(conf->groups, (conf->ngroups + 1) * sizeof *grown);
    if (!grown)
        return no_memory(ps->err);
    conf->groups = grown;
    ac_group *g = &conf->groups[conf->ngroups];
    memset(g, 0, sizeof *g);
    g->name = strdup(name);
    if (!g->name)
        return no_memory(ps->err);
    g->kind = kind;
    g->line = ps->line;
    conf->ngroups++;
    ps->cur = g;
    return 0;
}

static int parse_entry(parser *ps, char *text)
{
    const char *path = ps->conf->path;
    char *eq = strchr(text, '=');
    /* The line is not echoed: a stray password on a line of its own is the
     * likeliest way to get here. */
    if (!eq)
        return at_line(ps->err, path, ps->line,
                       "expected key=value, a [group] header or a comment ('#' or ';')");
    if (!ps->cur)
        return at_line(ps->err, path, ps->line,
                       "key=value before any group: put it under a [credentials-NAME] or "
                       "[auth-SERVICE-HOST] header");
    *eq = '\0';
    const char *key = trim(text);
    char *value = trim(eq + 1);
    ac_group *g = ps->cur;
    if (*key == '\0')
        return at_line(ps->err, path, ps->line, "missing key before '=' in [%.*s]", NAME_SHOWN,
                       g->name);

    size_t k = 0;
    while (k < AC_NKEYS && strcmp(ac_keys[k].name, key) != 0)
        k++;
    /* An unknown key is not echoed either: it may be part of a password. */
    if (k == AC_NKEYS || ac_keys[k].kind != g->kind) {
        const char *takes = g->kind == AC_KIND_AUTH
                                ? "an auth group takes only credentials=NAME"
                                : "a credentials group takes authname, username, password "
                                  "and realm";
        if (k == AC_NKEYS)
            return at_line(ps->err, path, ps->line, "unknown key in [%.*s]: %s", NAME_SHOWN,
                           g->name, takes);
        return at_line(ps->err, path, ps->line, "'%s' does not belong in [%.*s]: %s",
                       ac_keys[k].name, NAME_SHOWN, g->name, takes);
    }
    if (g->value[k])
        return at_line(ps->err, path, ps->line, "'%s' given twice in [%.*s] (first on line %d)",
                       ac_keys[k].name, NAME_SHOWN, g->name, g->value_line[k]);
    g->len[k] = strlen(value);
    g->value[k] = strdup(value);
    if (!g->value[k])
        return no_memory(ps->err);
    g->value_line[k] = ps->line;
    return 0;
}

static int parse_text(vb_authconf *conf, char *text, vb_error *err)
{
    parser ps = { .conf = conf, .line = 0, .cur = NULL, .err = err };
    char *p = text;
    while (*p) {
        ps.line++;
        char *nl = strchr(p, '\n');
        char *next = nl ? nl + 1 : p + strlen(p);
        if (nl)
            *nl = '\0';
        char *line = trim(p);
        p = next;
        if (*line == '\0' || *line == '#' || *line == ';')
            continue;
        if ((*line == '[' ? parse_header(&ps, line) : parse_entry(&ps, line)) < 0)
            return -1;
    }
    return 0;
}

/* Every auth group names a credentials group that exists: checked once
 * here, so a lookup never meets a dangling name. */
static int resolve(vb_authconf *conf, vb_error *err)
{
    const size_t plen = strlen(CRED_PREFIX);
    for (size_t i = 0; i < conf->ngroups; i++) {
        ac_group *g = &conf->groups[i];
        if (g->kind != AC_KIND_AUTH)
            continue;
        const char *want = g->value[AC_CREDENTIALS];
        if (!want)
            return at_line(err, conf->path, g->line, "[%.*s] has no credentials=NAME",
                           NAME_SHOWN, g->name);
        size_t j = 0;
        while (j < conf->ngroups && !(conf->groups[j].kind == AC_KIND_CREDENTIALS &&
                                      strcmp(conf->groups[j].name + plen, want) == 0))
            j++;
        if (j == conf->ngroups)
            return at_line(err, conf->path, g->value_line[AC_CREDENTIALS],
                           "credentials=%.*s names no group [credentials-%.*s]", NAME_SHOWN,
                           want, NAME_SHOWN, want);
        g->creds = j;
    }
    return 0;
}

/* ssh's rule for private keys: a file holding a password is the owner's
 * alone. Checked on the opened file (fstat), so a swap after the check
 * cannot slip through. */
static int check_private(const vb_authconf *conf, const struct stat *st, vb_error *err)
{
    int has_password = 0;
    for (size_t i = 0; i < conf->ngroups; i++)
        has_password |= conf->groups[i].value[AC_PASSWORD] != NULL;
    if (!has_password)
        return 0;
    if (st->st_uid != geteuid() && st->st_uid != 0)
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "auth.conf holds passwords but belongs to another user (uid %u); "
                            "it must be yours: %s",
                            (unsigned)st->st_uid, conf->path);
    if (st->st_mode & (S_IRGRP | S_IROTH))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "auth.conf holds passwords but is readable by others; chmod 600 %s",
                            conf->path);
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return vb_error_set(err, VB_ERR_CONFIG, VB_DOM_CONFIG,
                            "auth.conf holds passwords but is writable by others; chmod 600 %s",
                            conf->path);
    return 0;
}

/* ---- file ----------------------------------------------------------------- */

int vb_authconf_load(const char *path, vb_authconf **out, vb_error *err)
{
    if (!out)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CONFIG, "no place for auth.conf");
    *out = NULL;
    if (!path || !*path)
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CONFIG, "no auth.conf path given");
    struct stat st;
    char *text;
    size_t len;
    if (vb_conf_read_text(path, VB_AUTHCONF_MAX_SIZE, "auth.conf", 1, &text, &len, &st, err) < 0)
        return -1;
    if (!text)
        return 0; /* no file: nothing stored, the person is prompted */
    int rc = 0;
    vb_authconf *conf = calloc(1, sizeof *conf);
    if (!conf || !(conf->path = strdup(path)))
        rc = no_memory(err);
    if (rc == 0)
        rc = parse_text(conf, text, err);
    if (rc == 0)
        rc = resolve(conf, err);
    if (rc == 0)
        rc = check_private(conf, &st, err);
    explicit_bzero(text, len);
    free(text);
    if (rc < 0) {
        vb_authconf_free(conf);
        return -1;
    }
    *out = conf;
    return 0;
}

void vb_authconf_free(vb_authconf *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < conf->ngroups; i++) {
        ac_group *g = &conf->groups[i];
        for (size_t k = 0; k < AC_NKEYS; k++) {
            if (g->value[k])
                explicit_bzero(g->value[k], g->len[k]);
            free(g->value[k]);
        }
        free(g->name);
    }
    free(conf->groups);
    free(conf->path);
    free(conf);
}

/* ---- path ----------------------------------------------------------------- */

char *vb_authconf_path(const char *uri_authfile)
{
    if (uri_authfile && *uri_authfile)
        return strdup(uri_authfile);
    /* secure_getenv: were this ever run setuid, the caller's environment
     * must not choose which file's passwords we send. */
    const char *env = secure_getenv("VBROKER_AUTH_FILE");
    if (env && *env)
        return strdup(env);
    return vb_path_config_file("auth.conf");
}

/* ---- lookup --------------------------------------------------------------- */

/* name == "auth-" service "-" host, without building the string. */
static int auth_name_is(const char *name, const char *service, const char *host)
{
    size_t plen = strlen(AUTH_PREFIX), slen = strlen(service);
    return strncmp(name, AUTH_PREFIX, plen) == 0 && strncmp(name + plen, service, slen) == 0 &&
           name[plen + slen] == '-' && strcmp(name + plen + slen + 1, host) == 0;
}

static const ac_group *find_credentials(const vb_authconf *conf, const char *service,
                                        const char *host, int allow_default)
{
    /* The host-specific step comes first whatever the service is called:
     * [auth-libvirt-h] is meant for h more than [auth-vbhostd-default] is. */
    const char *services[] = { service, strcmp(service, "vbhostd") == 0 ? "libvirt" : NULL };
    const char *hosts[] = { host && *host ? host : "localhost", "default" };
    for (size_t h = 0; h < (allow_default ? 2u : 1u); h++)
        for (size_t s = 0; s < 2 && services[s]; s++)
            for (size_t i = 0; i < conf->ngroups; i++) {
                const ac_group *g = &conf->groups[i];
                if (g->kind == AC_KIND_AUTH && auth_name_is(g->name, services[s], hosts[h]))
                    return &conf->groups[g->creds];
            }
    return NULL;
}

static int key_for_type(int type)
{
    for (size_t k = 0; k < AC_NKEYS; k++)
        if (ac_keys[k].cred_type != 0 && ac_keys[k].cred_type == type)
            return (int)k;
    return -1;
}

_Static_assert(VB_CRED_MAX_ITEMS <= 32, "the filled-items mask is 32 bits");

static int fill(const vb_authconf *conf, const char *service, const char *host,
                int allow_default, vb_cred_request *req, vb_error *err)
{
    if (!req || !service || !*service || strchr(service, '-'))
        return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CONFIG,
                            "auth.conf lookup needs a request and a service name without '-'");
    /* On a retry the stored answer is what just failed: asking the file
     * again would loop on it, so the person is asked instead. */
    if (!conf || req->retry || req->nitems == 0)
        return 0;
    const ac_group *creds = find_credentials(conf, service, host, allow_default);
    if (!creds)
        return 0;

    size_t nitems = req->nitems < VB_CRED_MAX_ITEMS ? req->nitems : VB_CRED_MAX_ITEMS;
    uint32_t filled = 0;
    size_t answered = 0;
    for (size_t i = 0; i < nitems; i++) {
        vb_cred_item *item = &req->items[i];
        int k = key_for_type(item->type);
        if (k < 0 || !creds->value[k])
            continue;
        if (vb_cred_item_set_result(item, creds->value[k], creds->len[k]) < 0) {
            for (size_t j = 0; j < i; j++) {
                vb_cred_item *done = &req->items[j];
                if (!(filled & (UINT32_C(1) << j)))
                    continue;
                explicit_bzero(done->result, done->resultlen);
                free(done->result);
                done->result = NULL;
                done->resultlen = 0;
            }
            return no_memory(err);
        }
        filled |= UINT32_C(1) << i;
        answered++;
    }
    return answered == req->nitems;
}

int vb_authconf_fill(const vb_authconf *conf, const char *service, const char *host,
                     vb_cred_request *req, vb_error *err)
{
    return fill(conf, service, host, 1, req, err);
}

int vb_authconf_fill_exact(const vb_authconf *conf, const char *service, const char *host,
                           vb_cred_request *req, vb_error *err)
{
    return fill(conf, service, host, 0, req, err);
}
