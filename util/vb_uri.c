/*
 * vb_uri.c — parse and format driver[+transport]://[user@][host][:port]/[path][?params].
 *
 * The parser walks the text once, left to right: scheme, authority, path,
 * query. Every piece is percent-decoded into its own allocation and checked
 * after decoding, so "%00" or "%2D" cannot smuggle in what the raw checks
 * refuse. Error messages quote only the offending part (never the whole
 * URI) and print control characters as '?', because a URI can come from a
 * hostile peer and the message ends up on someone's terminal.
 */
#include "vb_uri.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URI_SHAPE "driver[+transport]://[user@][host][:port]/[path][?key=value&...]"

/* How much of an offending part an error message quotes. */
#define URI_QUOTE_MAX 64

static const char *const known_transports[] = { "unix", "tcp", "ssh", "tls" };

/* ---- small character classes ------------------------------------------- */

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static int is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_control(int c)
{
    return (unsigned char)c < 0x20 || c == 0x7f;
}

/* RFC 3986 "unreserved": never needs encoding anywhere. */
static int is_unreserved(int c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int hex_value(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return c - 'A' + 10;
}

/* ---- errors -------------------------------------------------------------- */

/* Copy at most URI_QUOTE_MAX bytes of s[0..len) for an error message. */
static const char *quote(char out[URI_QUOTE_MAX + 4], const char *s, size_t len)
{
    size_t n = len < URI_QUOTE_MAX ? len : URI_QUOTE_MAX;
    for (size_t i = 0; i < n; i++)
        out[i] = is_control(s[i]) ? '?' : s[i];
    if (n < len)
        memcpy(out + n, "...", 4);
    else
        out[n] = '\0';
    return out;
}

/* Every parse error is INVALID_ARG/CONFIG and ends with the expected shape. */
static int uri_error(vb_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int uri_error(vb_error *err, const char *fmt, ...)
{
    char what[VB_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_CONFIG,
                        "invalid URI: %s (expected " URI_SHAPE ")", what);
}

static int no_memory(vb_error *err)
{
    return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_CONFIG, "out of memory parsing a URI");
}

/* ---- percent-decoding ---------------------------------------------------- */

/* Decode s[0..len) into a new string. `what` names the part for errors. */
static int decode(const char *s, size_t len, const char *what, char **out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    char *buf = malloc(len + 1);
    if (!buf)
        return no_memory(err);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            buf[n++] = s[i];
            continue;
        }
        if (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
            char esc[URI_QUOTE_MAX + 4];
            size_t elen = len - i < 3 ? len - i : 3;
            free(buf);
            return uri_error(err, "bad percent-escape '%s' in %s '%s' (use %%XX, two hex digits)",
                             quote(esc, s + i, elen), what, quote(q, s, len));
        }
        char c = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
        if (c == '\0') {
            free(buf);
            return uri_error(err, "%s '%s' decodes to an embedded NUL", what, quote(q, s, len));
        }
        buf[n++] = c;
        i += 2;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

/* ---- scheme: driver[+transport] ------------------------------------------ */

/* A driver or transport name: a letter, then letters, digits, '_', '-', '.'. */
static int valid_name(const char *s, size_t len)
{
    if (len == 0 || !is_alpha(s[0]))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return 0;
    return 1;
}

static int known_transport(const char *t)
{
    for (size_t i = 0; i < sizeof known_transports / sizeof known_transports[0]; i++)
        if (strcmp(t, known_transports[i]) == 0)
            return 1;
    return 0;
}

static int parse_transport(const char *s, size_t len, vb_uri *out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    if (len == 0)
        return uri_error(err, "empty transport after '+'");
    if (!valid_name(s, len))
        return uri_error(err, "bad characters in transport '%s'", quote(q, s, len));
    out->transport = strndup(s, len);
    if (!out->transport)
        return no_memory(err);
    if (!known_transport(out->transport))
        return uri_error(err, "unknown transport '%s' (known: unix, tcp, ssh, tls)", out->transport);
    return 0;
}

/* Consume "driver[+transport]://" from *p. */
static int parse_scheme(const char **p, vb_uri *out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    const char *s = *p;
    const char *colon = strchr(s, ':');
    if (!colon || strncmp(colon, "://", 3) != 0)
        return uri_error(err, "missing '://' in '%s'", quote(q, s, strlen(s)));
    const char *plus = memchr(s, '+', (size_t)(colon - s));
    const char *dend = plus ? plus : colon;
    size_t dlen = (size_t)(dend - s);
    if (dlen == 0)
        return uri_error(err, "empty driver before '%s'", plus ? "+" : "://");
    if (!valid_name(s, dlen))
        return uri_error(err, "bad characters in driver '%s'", quote(q, s, dlen));
    out->driver = strndup(s, dlen);
    if (!out->driver)
        return no_memory(err);
    if (plus && parse_transport(plus + 1, (size_t)(colon - plus - 1), out, err) < 0)
        return -1;
    *p = colon + 3;
    return 0;
}

/* ---- authority: [user@][host][:port] ------------------------------------- */

static int parse_user(const char *s, size_t len, vb_uri *out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    if (len == 0)
        return uri_error(err, "empty user name before '@'");
    /* user:password — refuse, and quote only what precedes the ':' so the
     * password never reaches an error message or a log. */
    const char *colon = memchr(s, ':', len);
    if (colon)
        return uri_error(err, "a password after user '%s:' does not belong in a URI; "
                              "the credential callback asks for it",
                         quote(q, s, (size_t)(colon - s)));
    if (decode(s, len, "user", &out->user, err) < 0)
        return -1;
    /* A leading '-' would read as an option to ssh(1) on the ssh transport. */
    if (out->user[0] == '-')
        return uri_error(err, "user '%s' must not start with '-'", quote(q, s, len));
    for (const char *c = out->user; *c; c++)
        if (is_control(*c))
            return uri_error(err, "control character in user '%s'", quote(q, s, len));
    return 0;
}

/* Bracketed IPv6 literal: hex digits, ':', '.', and an optional zone
 * (RFC 6874, already decoded from "%25") of unreserved characters. */
static int valid_ipv6(const char *h)
{
    const char *zone = strchr(h, '%');
    size_t addr_len = zone ? (size_t)(zone - h) : strlen(h);
    if (addr_len == 0 || !memchr(h, ':', addr_len))
        return 0;
    for (size_t i = 0; i < addr_len; i++)
        if (!is_hex(h[i]) && h[i] != ':' && h[i] != '.')
            return 0;
    if (!zone)
        return 1;
    if (zone[1] == '\0')
        return 0;
    for (const char *c = zone + 1; *c; c++)
        if (!is_unreserved(*c))
            return 0;
    return 1;
}

/* A host name or IPv4 address; a leading '-' would read as an ssh option. */
static int valid_hostname(const char *h)
{
    if (h[0] == '-')
        return 0;
    for (const char *c = h; *c; c++)
        if (!is_unreserved(*c))
            return 0;
    return 1;
}

static int parse_host(const char *s, size_t len, int bracketed, vb_uri *out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    if (decode(s, len, "host", &out->host, err) < 0)
        return -1;
    if (bracketed ? !valid_ipv6(out->host) : !valid_hostname(out->host))
        return uri_error(err, "bad %s '%s'", bracketed ? "IPv6 address" : "host",
                         quote(q, s, len));
    if (out->host[0] == '\0') {
        free(out->host);
        out->host = NULL;
    }
    return 0;
}

static int parse_port(const char *s, size_t len, vb_uri *out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    if (len == 0)
        return uri_error(err, "empty port after ':'");
    long port = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return uri_error(err, "port '%s' is not a number", quote(q, s, len));
        port = port * 10 + (s[i] - '0');
        if (port > 65535)
            break;
    }
    if (port < 1 || port > 65535)
        return uri_error(err, "port '%s' is not in 1..65535", quote(q, s, len));
    out->port = (int)port;
    return 0;
}

/* Split host[:port] (or [v6][:port]) and parse both halves. */
static int parse_hostport(const char *s, size_t len, vb_uri *out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    const char *end = s + len;
    const char *host = s, *host_end, *port = NULL;
    int bracketed = len > 0 && s[0] == '[';
    if (bracketed) {
        const char *close = memchr(s, ']', len);
        if (!close)
            return uri_error(err, "unterminated '[' in host '%s'", quote(q, s, len));
        host = s + 1;
        host_end = close;
        if (close + 1 < end && close[1] != ':')
            return uri_error(err, "unexpected text after ']' in '%s'", quote(q, s, len));
        if (close + 1 < end)
            port = close + 2;
    } else {
        const char *colon = memchr(s, ':', len);
        host_end = colon ? colon : end;
        if (colon)
            port = colon + 1;
    }
    if (parse_host(host, (size_t)(host_end - host), bracketed, out, err) < 0)
        return -1;
    if (!port)
        return 0;
    if (!out->host)
        return uri_error(err, "port '%s' without a host", quote(q, port, (size_t)(end - port)));
    return parse_port(port, (size_t)(end - port), out, err);
}

/* The authority runs from after "://" to the first '/' or '?'. */
static int parse_authority(const char **p, vb_uri *out, vb_error *err)
{
    const char *s = *p;
    size_t len = strcspn(s, "/?");
    const char *at = memchr(s, '@', len);
    const char *hp = s;
    if (at) {
        if (parse_user(s, (size_t)(at - s), out, err) < 0)
            return -1;
        hp = at + 1;
    }
    if (parse_hostport(hp, (size_t)(s + len - hp), out, err) < 0)
        return -1;
    *p = s + len;
    return 0;
}

/* ---- path and query ------------------------------------------------------ */

static int parse_path(const char **p, vb_uri *out, vb_error *err)
{
    const char *s = *p;
    if (*s == '/')
        s++;
    size_t len = strcspn(s, "?");
    if (decode(s, len, "path", &out->path, err) < 0)
        return -1;
    *p = s + len;
    return 0;
}

/* A param key: letters, digits, '_', '-', '.' (auth, name, known_hosts, ...). */
static int valid_key(const char *k)
{
    if (k[0] == '\0')
        return 0;
    for (const char *c = k; *c; c++)
        if (!is_alnum(*c) && *c != '_' && *c != '-' && *c != '.')
            return 0;
    return 1;
}

/* One "key=value" (or "key", meaning an empty value). Only the first '='
 * splits, so a value may itself be a URI: name=xenapi://x/?a=b. */
static int parse_param(const char *s, size_t len, vb_uri *out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    if (out->nparams == VB_URI_MAX_PARAMS)
        return uri_error(err, "more than %d params at '%s'", VB_URI_MAX_PARAMS,
                         quote(q, s, len));
    const char *eq = memchr(s, '=', len);
    size_t klen = eq ? (size_t)(eq - s) : len;
    vb_uri_param *prm = &out->params[out->nparams];
    if (decode(s, klen, "param key", &prm->key, err) < 0)
        return -1;
    out->nparams++; /* from here vb_uri_clear frees what this param holds */
    if (!valid_key(prm->key))
        return uri_error(err, "bad param key '%s'", quote(q, s, klen));
    const char *v = eq ? eq + 1 : s + len;
    return decode(v, (size_t)(s + len - v), "param value", &prm->value, err);
}

static int parse_query(const char *s, vb_uri *out, vb_error *err)
{
    if (*s != '?')
        return 0;
    s++;
    while (*s) {
        size_t len = strcspn(s, "&");
        /* Empty pieces ("a=1&&b=2", a trailing '&') carry nothing; skip them. */
        if (len > 0 && parse_param(s, len, out, err) < 0)
            return -1;
        s += len;
        if (*s == '&')
            s++;
    }
    return 0;
}

/* ---- public -------------------------------------------------------------- */

static int check_text(const char *text, vb_error *err)
{
    if (!text)
        return uri_error(err, "no URI given");
    size_t len = strnlen(text, VB_URI_MAX_LEN + 1);
    if (len > VB_URI_MAX_LEN)
        return uri_error(err, "longer than %d bytes", VB_URI_MAX_LEN);
    if (len == 0)
        return uri_error(err, "empty URI");
    for (size_t i = 0; i < len; i++)
        if (is_control(text[i]))
            return uri_error(err, "control character at offset %zu", i);
    return 0;
}

/* "libvirt:" + a libvirt URI: the rest is libvirt's, parsed by libvirt
 * (its query string included; none of our parameter rules apply to it).
 * Only its scheme is checked here, so a typo fails before any driver runs. */
static int parse_libvirt(const char *text, vb_uri *out, vb_error *err)
{
    char q[URI_QUOTE_MAX + 4];
    const char *inner = text + strlen(VB_URI_LIBVIRT_PREFIX);
    size_t slen = strcspn(inner, ":");
    if (inner[slen] != ':' || slen == 0 || !is_alpha(inner[0]))
        return uri_error(err, "'libvirt:' must be followed by a libvirt URI like "
                              "qemu+ssh://host/system, not '%s'",
                         quote(q, inner, strlen(inner)));
    for (size_t i = 0; i < slen; i++)
        if (!is_alnum(inner[i]) && inner[i] != '+' && inner[i] != '-' && inner[i] != '.')
            return uri_error(err, "bad characters in the libvirt scheme '%s'",
                             quote(q, inner, slen));
    out->driver = strdup("libvirt");
    out->path = strdup(inner);
    return out->driver && out->path ? 0 : no_memory(err);
}

int vb_uri_parse(const char *text, vb_uri *out, vb_error *err)
{
    if (!out)
        return uri_error(err, "nowhere to put the parsed URI");
    memset(out, 0, sizeof *out);
    const char *p = text;
    if (check_text(text, err) == 0 &&
        strncmp(text, VB_URI_LIBVIRT_PREFIX, strlen(VB_URI_LIBVIRT_PREFIX)) == 0) {
        if (parse_libvirt(text, out, err) < 0) {
            vb_uri_clear(out);
            return -1;
        }
        return 0;
    }
    if (check_text(text, err) < 0 || parse_scheme(&p, out, err) < 0 ||
        parse_authority(&p, out, err) < 0 || parse_path(&p, out, err) < 0 ||
        parse_query(p, out, err) < 0) {
        vb_uri_clear(out);
        return -1;
    }
    return 0;
}

void vb_uri_clear(vb_uri *uri)
{
    if (!uri)
        return;
    free(uri->driver);
    free(uri->transport);
    free(uri->user);
    free(uri->host);
    free(uri->path);
    for (size_t i = 0; i < uri->nparams && i < VB_URI_MAX_PARAMS; i++) {
        free(uri->params[i].key);
        free(uri->params[i].value);
    }
    memset(uri, 0, sizeof *uri);
}

const char *vb_uri_param_get(const vb_uri *uri, const char *key)
{
    if (!uri || !key)
        return NULL;
    for (size_t i = 0; i < uri->nparams && i < VB_URI_MAX_PARAMS; i++)
        if (uri->params[i].key && strcmp(uri->params[i].key, key) == 0)
            return uri->params[i].value;
    return NULL;
}

int vb_uri_is_remote(const vb_uri *uri)
{
    return uri && uri->transport != NULL;
}

int vb_uri_is_libvirt(const vb_uri *uri)
{
    return uri && !uri->transport && uri->driver && strcmp(uri->driver, "libvirt") == 0 &&
           uri->path;
}

/* ---- formatting ---------------------------------------------------------- */

/* Write s, percent-encoding every byte that is neither unreserved nor in
 * `keep`. The keep sets hold exactly what the parser never splits on at
 * that position, so the output re-parses to the same string. */
static void put_encoded(FILE *f, const char *s, const char *keep)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_unreserved(c) || (c && strchr(keep, c)))
            fputc(c, f);
        else
            fprintf(f, "%%%02X", c);
    }
}

/* Path: '/' and ':' stay readable; '?' would start the query. */
#define KEEP_PATH "/:@+,;="
/* Param value: ':' '/' '=' '?' stay, so name=xenapi://x/ reads as written;
 * '&' would end the param. */
#define KEEP_VALUE "/:@+,;=?"

static void put_authority(FILE *f, const vb_uri *uri)
{
    if (uri->user) {
        put_encoded(f, uri->user, "");
        fputc('@', f);
    }
    if (uri->host && uri->host[0]) {
        int v6 = strchr(uri->host, ':') != NULL;
        if (v6)
            fputc('[', f);
        put_encoded(f, uri->host, v6 ? ":" : "");
        if (v6)
            fputc(']', f);
    }
    if (uri->port > 0)
        fprintf(f, ":%d", uri->port);
}

char *vb_uri_format(const vb_uri *uri)
{
    if (!uri || !uri->driver)
        return NULL;
    if (vb_uri_is_libvirt(uri)) {
        char *text = NULL;
        return asprintf(&text, "%s%s", VB_URI_LIBVIRT_PREFIX, uri->path) < 0 ? NULL : text;
    }
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    fputs(uri->driver, f);
    if (uri->transport)
        fprintf(f, "+%s", uri->transport);
    fputs("://", f);
    put_authority(f, uri);
    fputc('/', f);
    put_encoded(f, uri->path ? uri->path : "", KEEP_PATH);
    for (size_t i = 0; i < uri->nparams && i < VB_URI_MAX_PARAMS; i++) {
        fputc(i == 0 ? '?' : '&', f);
        put_encoded(f, uri->params[i].key ? uri->params[i].key : "", "");
        fputc('=', f);
        put_encoded(f, uri->params[i].value ? uri->params[i].value : "", KEEP_VALUE);
    }
    int failed = ferror(f);
    if (fclose(f) != 0 || failed) {
        free(buf);
        return NULL;
    }
    return buf;
}
