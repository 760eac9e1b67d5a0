/*
 * vb_xenapi_xml.c — XML-RPC for the XenAPI driver (see vb_xenapi_xml.h).
 *
 * Requests are small and carry the password, so they are written by hand
 * into one buffer that grows by copy-and-wipe (never realloc, which could
 * leave a copy behind). Responses come from the network, so they go through
 * libxml2 with everything dangerous off (network, DTDs, entities), and the
 * DOM is turned into a plain tree under a depth limit before anyone looks
 * at it.
 */
#include "vb_xenapi_xml.h"
#include "vb_buf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

/* ---- values -------------------------------------------------------------- */

void vb_xr_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void value_clear(vb_xr_value *v)
{
    vb_xr_wipe_free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items)
            value_clear(&v->items[i]);
        if (v->names)
            vb_xr_wipe_free(v->names[i]);
    }
    free(v->items);
    free(v->names);
    memset(v, 0, sizeof *v);
}

void vb_xr_value_free(vb_xr_value *v)
{
    if (!v)
        return;
    value_clear(v);
    free(v);
}

const vb_xr_value *vb_xr_member(const vb_xr_value *v, const char *name)
{
    if (!v || v->type != VB_XR_STRUCT)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->names[i], name) == 0)
            return &v->items[i];
    return NULL;
}

const char *vb_xr_str(const vb_xr_value *v)
{
    return v && v->type == VB_XR_STRING ? v->str : NULL;
}

/* [ws][+-]digits[ws], within int64. */
static int parse_int64(const char *s, int64_t *out)
{
    while (isspace((unsigned char)*s))
        s++;
    int neg = 0;
    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (!isdigit((unsigned char)*s))
        return -1;
    /* accumulate as a negative number so INT64_MIN fits */
    int64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (v < (INT64_MIN + d) / 10)
            return -1;
        v = v * 10 - d;
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s)
        return -1;
    if (!neg && v == INT64_MIN)
        return -1;
    *out = neg ? v : -v;
    return 0;
}

int vb_xr_int(const vb_xr_value *v, int64_t *out)
{
    if (!v)
        return -1;
    if (v->type == VB_XR_INT) {
        *out = v->i;
        return 0;
    }
    if (v->type == VB_XR_STRING)
        return parse_int64(v->str, out);
    return -1;
}

/* "true"/"false"/"1"/"0", surrounding blanks allowed. */
static int parse_bool(const char *s, int *out)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if ((n == 1 && s[0] == '1') || (n == 4 && strncasecmp(s, "true", 4) == 0))
        *out = 1;
    else if ((n == 1 && s[0] == '0') || (n == 5 && strncasecmp(s, "false", 5) == 0))
        *out = 0;
    else
        return -1;
    return 0;
}

int vb_xr_bool(const vb_xr_value *v, int *out)
{
    if (!v)
        return -1;
    if (v->type == VB_XR_BOOL) {
        *out = v->i != 0;
        return 0;
    }
    if (v->type == VB_XR_STRING)
        return parse_bool(v->str, out);
    return -1;
}

/* ---- request buffers ----------------------------------------------------- */

/* A vb_xr_buf is a vb_buf (util/vb_buf.h) seen as text: nothing is ever
 * consumed from its front, so its bytes start at data. Growth and freeing
 * are vb_buf's, which copy, wipe the old block and never realloc. */
static vb_buf as_vb_buf(const vb_xr_buf *b)
{
    return (vb_buf){ (uint8_t *)b->data, 0, b->len, b->cap };
}

void vb_xr_buf_wipe(vb_xr_buf *b)
{
    vb_buf v = as_vb_buf(b);
    vb_buf_free(&v);
    memset(b, 0, sizeof *b);
}

/* Room for more bytes and the NUL after them; the buffer stays
 * NUL-terminated. */
static int buf_reserve(vb_xr_buf *b, size_t more)
{
    if (b->cap - b->len > more)
        return 0;
    vb_buf v = as_vb_buf(b);
    if (more == SIZE_MAX || vb_buf_reserve(&v, more + 1) < 0)
        return -1;
    b->data = (char *)v.data;
    b->cap = v.cap;
    b->data[b->len] = '\0'; /* not a live byte: vb_buf did not copy it */
    return 0;
}

int vb_xr_buf_add(vb_xr_buf *b, const void *data, size_t n)
{
    const char *s = data;
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int buf_adds(vb_xr_buf *b, const char *s)
{
    return vb_xr_buf_add(b, s, strlen(s));
}

/* 1 when s holds a byte XML 1.0 cannot carry even escaped. */
static int xml_unsafe(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return 1;
    }
    return 0;
}

static int buf_add_escaped(vb_xr_buf *b, const char *s)
{
    for (const char *run = s;; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\r': rep = "&#13;"; break; /* a raw CR would arrive as LF */
        case '\0': return vb_xr_buf_add(b, run, (size_t)(s - run));
        default: continue;
        }
        if (vb_xr_buf_add(b, run, (size_t)(s - run)) < 0 || buf_adds(b, rep) < 0)
            return -1;
        run = s + 1;
    }
}

int vb_xr_build_call(const char *method, const vb_xr_arg *args, size_t nargs, vb_xr_buf *out,
                     vb_error *err)
{
    if (out->data)
        explicit_bzero(out->data, out->cap);
    out->len = 0;
    for (size_t i = 0; i < nargs; i++)
        if (args[i].type == VB_XR_STRING && (!args[i].str || xml_unsafe(args[i].str)))
            return vb_error_set(err, VB_ERR_INVALID_ARG, VB_DOM_XENAPI,
                                "%s: argument %zu %s", method, i + 1,
                                args[i].str ? "holds a control character XML cannot carry"
                                            : "is missing");
    int rc = buf_adds(out, "<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    rc = rc ? rc : buf_add_escaped(out, method);
    rc = rc ? rc : buf_adds(out, "</methodName><params>");
    for (size_t i = 0; i < nargs && rc == 0; i++) {
        if (args[i].type == VB_XR_BOOL) {
            rc = buf_adds(out, args[i].b ? "<param><value><boolean>1</boolean></value></param>"
                                         : "<param><value><boolean>0</boolean></value></param>");
            continue;
        }
        rc = buf_adds(out, "<param><value><string>");
        rc = rc ? rc : buf_add_escaped(out, args[i].str);
        rc = rc ? rc : buf_adds(out, "</string></value></param>");
    }
    rc = rc ? rc : buf_adds(out, "</params></methodCall>\n");
    if (rc < 0) {
        vb_xr_buf_wipe(out);
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    }
    return 0;
}

/* ---- responses: DOM → tree ----------------------------------------------- */

static int bad(vb_error *err, const xmlNode *at, const char *what)
{
    return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                        "malformed XML-RPC response (line %ld): %s",
                        at ? (long)xmlGetLineNo(at) : 0L, what);
}

static int is_elem(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static int is_text(const xmlNode *n)
{
    return n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE;
}

static int blank(const xmlChar *s)
{
    for (; s && *s; s++)
        if (!isspace(*s))
            return 0;
    return 1;
}

/* The direct text of an element (text and CDATA children), malloc'd.
 * Element children are an error: <string><b/></string> is not a string. */
static int text_of(const xmlNode *el, char **out, vb_error *err)
{
    size_t len = 0;
    for (const xmlNode *c = el->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE || c->type == XML_ENTITY_REF_NODE)
            return bad(err, c, "unexpected markup inside a scalar");
        if (is_text(c) && c->content)
            len += strlen((const char *)c->content);
    }
    char *s = malloc(len + 1);
    if (!s)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    size_t at = 0;
    for (const xmlNode *c = el->children; c; c = c->next)
        if (is_text(c) && c->content) {
            size_t n = strlen((const char *)c->content);
            memcpy(s + at, c->content, n);
            at += n;
        }
    s[at] = '\0';
    *out = s;
    return 0;
}

/* The only element child of el, ignoring blank text and comments; NULL when
 * there is none. Non-blank text next to an element is an error. */
static int only_element(const xmlNode *el, const xmlNode **found, vb_error *err)
{
    const xmlNode *e = NULL;
    int text = 0;
    for (const xmlNode *c = el->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            if (e)
                return bad(err, c, "more than one element where one was expected");
            e = c;
        } else if (is_text(c) && !blank(c->content)) {
            text = 1;
        } else if (c->type == XML_ENTITY_REF_NODE) {
            return bad(err, c, "entity reference");
        }
    }
    if (e && text)
        return bad(err, e, "text next to a typed value");
    *found = e;
    return 0;
}

static int conv_value(const xmlNode *vnode, int depth, vb_xr_value *out, vb_error *err);

static size_t count_elems(const xmlNode *parent, const char *name)
{
    size_t n = 0;
    for (const xmlNode *c = parent->children; c; c = c->next)
        n += is_elem(c, name);
    return n;
}

static int conv_array(const xmlNode *arr, int depth, vb_xr_value *out, vb_error *err)
{
    const xmlNode *data = NULL;
    if (only_element(arr, &data, err) < 0)
        return -1;
    if (!is_elem(data, "data"))
        return bad(err, arr, "<array> without <data>");
    size_t n = count_elems(data, "value");
    out->type = VB_XR_ARRAY;
    out->items = calloc(n ? n : 1, sizeof *out->items);
    if (!out->items)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    for (const xmlNode *c = data->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && !is_elem(c, "value"))
            return bad(err, c, "unexpected element in <data>");
        if (!is_elem(c, "value"))
            continue;
        out->n++; /* counted first, so a failure below frees this item too */
        if (conv_value(c, depth + 1, &out->items[out->n - 1], err) < 0)
            return -1;
    }
    return 0;
}

static int conv_member(const xmlNode *m, int depth, char **name, vb_xr_value *v, vb_error *err)
{
    const xmlNode *nm = NULL, *val = NULL;
    for (const xmlNode *c = m->children; c; c = c->next) {
        if (is_elem(c, "name") && !nm)
            nm = c;
        else if (is_elem(c, "value") && !val)
            val = c;
        else if (c->type == XML_ELEMENT_NODE)
            return bad(err, c, "unexpected element in <member>");
    }
    if (!nm || !val)
        return bad(err, m, "<member> needs a <name> and a <value>");
    if (text_of(nm, name, err) < 0)
        return -1;
    return conv_value(val, depth + 1, v, err);
}

static int conv_struct(const xmlNode *st, int depth, vb_xr_value *out, vb_error *err)
{
    size_t n = count_elems(st, "member");
    out->type = VB_XR_STRUCT;
    out->items = calloc(n ? n : 1, sizeof *out->items);
    out->names = calloc(n ? n : 1, sizeof *out->names);
    if (!out->items || !out->names)
        return vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    for (const xmlNode *c = st->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && !is_elem(c, "member"))
            return bad(err, c, "unexpected element in <struct>");
        if (!is_elem(c, "member"))
            continue;
        out->n++;
        if (conv_member(c, depth, &out->names[out->n - 1], &out->items[out->n - 1], err) < 0)
            return -1;
    }
    return 0;
}

/* A scalar kept as text (string, double, dateTime, base64). */
static int conv_text(const xmlNode *el, enum vb_xr_type type, vb_xr_value *out, vb_error *err)
{
    out->type = type;
    return text_of(el, &out->str, err);
}

static int conv_scalar(const xmlNode *t, vb_xr_value *out, vb_error *err)
{
    const char *name = (const char *)t->name;
    char *text = NULL;
    int rc = 0;
    if (strcmp(name, "string") == 0)
        return conv_text(t, VB_XR_STRING, out, err);
    if (strcmp(name, "double") == 0)
        return conv_text(t, VB_XR_DOUBLE, out, err);
    if (strcmp(name, "dateTime.iso8601") == 0)
        return conv_text(t, VB_XR_DATETIME, out, err);
    if (strcmp(name, "base64") == 0)
        return conv_text(t, VB_XR_BASE64, out, err);
    if (strcmp(name, "nil") == 0) {
        out->type = VB_XR_NIL;
        return 0;
    }
    if (text_of(t, &text, err) < 0)
        return -1;
    if (strcmp(name, "int") == 0 || strcmp(name, "i4") == 0 || strcmp(name, "i8") == 0) {
        out->type = VB_XR_INT;
        if (parse_int64(text, &out->i) < 0)
            rc = bad(err, t, "an integer element that is not a 64-bit integer");
    } else if (strcmp(name, "boolean") == 0) {
        int b = 0;
        out->type = VB_XR_BOOL;
        if (parse_bool(text, &b) < 0)
            rc = bad(err, t, "a boolean that is neither 0 nor 1");
        out->i = b;
    } else {
        char what[96];
        snprintf(what, sizeof what, "unknown value type <%.40s>", name);
        rc = bad(err, t, what);
    }
    vb_xr_wipe_free(text);
    return rc;
}

static int conv_value(const xmlNode *vnode, int depth, vb_xr_value *out, vb_error *err)
{
    if (depth > VB_XR_MAX_DEPTH)
        return bad(err, vnode, "values nested too deeply");
    const xmlNode *t = NULL;
    if (only_element(vnode, &t, err) < 0)
        return -1;
    if (!t) /* bare <value>text</value> is a string (XenAPI's ints come so) */
        return conv_text(vnode, VB_XR_STRING, out, err);
    if (is_elem(t, "array"))
        return conv_array(t, depth, out, err);
    if (is_elem(t, "struct"))
        return conv_struct(t, depth, out, err);
    return conv_scalar(t, out, err);
}

/* <fault><value><struct>faultCode, faultString</struct></value></fault> */
static int fault_error(const xmlNode *fault, vb_error *err)
{
    const xmlNode *v = NULL;
    vb_xr_value fv;
    memset(&fv, 0, sizeof fv);
    if (only_element(fault, &v, err) < 0)
        return -1;
    if (!is_elem(v, "value"))
        return bad(err, fault, "<fault> without a <value>");
    if (conv_value(v, 0, &fv, err) < 0) {
        value_clear(&fv);
        return -1;
    }
    int64_t code = 0;
    const char *text = vb_xr_str(vb_xr_member(&fv, "faultString"));
    int have_code = vb_xr_int(vb_xr_member(&fv, "faultCode"), &code) == 0;
    char shown[200];
    snprintf(shown, sizeof shown, "%s", text ? text : "(no faultString)");
    for (char *p = shown; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    vb_error_set(err, VB_ERR_REMOTE, VB_DOM_XENAPI, "XML-RPC fault %lld: %s",
                 have_code ? (long long)code : 0LL, shown);
    value_clear(&fv);
    return -1;
}

static int conv_response(const xmlDoc *doc, vb_xr_value *out, vb_error *err)
{
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!is_elem(root, "methodResponse"))
        return bad(err, root, "the root element is not <methodResponse>");
    const xmlNode *body = NULL, *param = NULL, *value = NULL;
    if (only_element(root, &body, err) < 0)
        return -1;
    if (is_elem(body, "fault"))
        return fault_error(body, err);
    if (!is_elem(body, "params"))
        return bad(err, root, "<methodResponse> without <params> or <fault>");
    if (only_element(body, &param, err) < 0)
        return -1;
    if (!is_elem(param, "param"))
        return bad(err, body, "<params> must hold exactly one <param>");
    if (only_element(param, &value, err) < 0)
        return -1;
    if (!is_elem(value, "value"))
        return bad(err, param, "<param> without a <value>");
    return conv_value(value, 0, out, err);
}

/* ---- responses: parsing -------------------------------------------------- */

/* libxml2 must never print: errors land in ctxt->lastError, read below. */
#if LIBXML_VERSION >= 21200
static void quiet_error(void *ctx, const xmlError *e)
#else
static void quiet_error(void *ctx, xmlErrorPtr e)
#endif
{
    (void)ctx;
    (void)e;
}

/* A DTD can declare entities (billion laughs, external files): stop at once. */
static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys)
{
    (void)name;
    (void)ext;
    (void)sys;
    xmlParserCtxtPtr ctxt = ctx;
    *(int *)ctxt->_private = 1;
    ctxt->wellFormed = 0;
    xmlStopParser(ctxt);
}

/* Wipe the text of every node before the DOM is freed (it may hold a
 * session ref). Iterative: the tree may be as deep as libxml2 allows. */
static void wipe_doc(xmlDoc *doc)
{
    xmlNode *n = xmlDocGetRootElement(doc);
    while (n) {
        if (n->type != XML_ELEMENT_NODE && n->content)
            explicit_bzero(n->content, strlen((const char *)n->content));
        if (n->type == XML_ELEMENT_NODE && n->children) {
            n = n->children;
            continue;
        }
        while (n && !n->next) {
            n = n->parent;
            if (n && n->type == XML_DOCUMENT_NODE)
                n = NULL;
        }
        if (n)
            n = n->next;
    }
}

typedef struct parse_result {
    xmlDoc *doc;
    char message[160];
    int dtd;
} parse_result;

static void parse_once(const char *data, size_t len, parse_result *r)
{
    memset(r, 0, sizeof *r);
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        snprintf(r->message, sizeof r->message, "out of memory");
        return;
    }
    ctxt->_private = &r->dtd;
    ctxt->sax->serror = quiet_error;
    ctxt->sax->internalSubset = refuse_dtd;
    ctxt->sax->externalSubset = refuse_dtd;
    int opts = XML_PARSE_NONET | XML_PARSE_NODICT | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    xmlDoc *doc = xmlCtxtReadMemory(ctxt, data, (int)len, "response.xml", NULL, opts);
    const xmlError *e = xmlCtxtGetLastError(ctxt);
    if (doc && (doc->intSubset || doc->extSubset))
        r->dtd = 1;
    if (r->dtd) {
        /* refused above */
    } else if (doc && ctxt->wellFormed) {
        r->doc = doc;
        doc = NULL;
    } else if (e && e->message) {
        snprintf(r->message, sizeof r->message, "line %d: %s", e->line, e->message);
        size_t n = strlen(r->message);
        while (n > 0 && r->message[n - 1] == '\n')
            r->message[--n] = '\0';
    } else {
        snprintf(r->message, sizeof r->message, "not well-formed XML");
    }
    if (doc) {
        wipe_doc(doc);
        xmlFreeDoc(doc);
    }
    xmlFreeParserCtxt(ctxt);
}

/* "&amp;" "&lt;" "&#38;" "&#x26;" ... at s (s < end). */
static int is_reference(const char *s, const char *end)
{
    static const char *const named[] = { "&amp;", "&lt;", "&gt;", "&quot;", "&apos;" };
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t n = strlen(named[i]);
        if ((size_t)(end - s) >= n && memcmp(s, named[i], n) == 0)
            return 1;
    }
    const char *p = s + 1;
    if (p >= end || *p++ != '#')
        return 0;
    int hex = p < end && *p == 'x';
    p += hex;
    const char *digits = p;
    while (p < end && (hex ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p)))
        p++;
    return p > digits && p < end && *p == ';';
}

/* xapi writes struct member names unescaped: "<name>a<b&c</name>". Escape
 * what sits between each <name> and the next </name>, so the document
 * parses; a name holding "</name>" itself cannot be repaired. */
static int repair_names(const char *data, size_t len, vb_xr_buf *out)
{
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *open = memmem(p, (size_t)(end - p), "<name>", 6);
        const char *close = open ? memmem(open + 6, (size_t)(end - open - 6), "</name>", 7) : NULL;
        if (!open || !close)
            return vb_xr_buf_add(out, p, (size_t)(end - p));
        if (vb_xr_buf_add(out, p, (size_t)(open + 6 - p)) < 0)
            return -1;
        for (const char *c = open + 6; c < close; c++) {
            const char *rep = *c == '<'                               ? "&lt;"
                              : *c == '>'                             ? "&gt;"
                              : *c == '&' && !is_reference(c, close) ? "&amp;"
                                                                      : NULL;
            if (rep ? buf_adds(out, rep) < 0 : vb_xr_buf_add(out, c, 1) < 0)
                return -1;
        }
        if (buf_adds(out, "</name>") < 0)
            return -1;
        p = close + 7;
        if (out->len > 2 * (size_t)VB_XR_MAX_RESPONSE)
            return -1;
    }
    return 0;
}

int vb_xr_parse_response(const char *data, size_t len, vb_xr_value **out, vb_error *err)
{
    *out = NULL;
    if (len > VB_XR_MAX_RESPONSE)
        return vb_error_set(err, VB_ERR_TOO_LARGE, VB_DOM_XENAPI,
                            "XML-RPC response of %zu bytes is over the %u-byte limit", len,
                            VB_XR_MAX_RESPONSE);
    if (len == 0)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI, "empty XML-RPC response");
    xmlInitParser();
    parse_result r;
    parse_once(data, len, &r);
    if (!r.doc && !r.dtd && memmem(data, len, "<name>", 6)) {
        vb_xr_buf fixed = { 0 };
        parse_result again;
        if (repair_names(data, len, &fixed) == 0) {
            parse_once(fixed.data, fixed.len, &again);
            if (again.doc || again.dtd)
                r = again;
        }
        vb_xr_buf_wipe(&fixed);
    }
    if (r.dtd)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                            "XML-RPC response carries a DTD; refused");
    if (!r.doc)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                            "XML-RPC response is not well-formed XML (%s)", r.message);
    vb_xr_value *v = calloc(1, sizeof *v);
    int rc = v ? conv_response(r.doc, v, err)
               : vb_error_set(err, VB_ERR_NO_MEMORY, VB_DOM_XENAPI, "out of memory");
    wipe_doc(r.doc);
    xmlFreeDoc(r.doc);
    if (rc < 0) {
        vb_xr_value_free(v);
        return -1;
    }
    *out = v;
    return 0;
}

int vb_xr_status(const vb_xr_value *resp, const vb_xr_value **value,
                 const vb_xr_value **errdesc, vb_error *err)
{
    *value = NULL;
    *errdesc = NULL;
    const char *status = vb_xr_str(vb_xr_member(resp, "Status"));
    if (!status)
        return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                            "XenAPI response is not a struct with a Status");
    if (strcmp(status, "Success") == 0) {
        *value = vb_xr_member(resp, "Value");
        if (!*value)
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                                "XenAPI Success without a Value");
        return 1;
    }
    if (strcmp(status, "Failure") == 0) {
        const vb_xr_value *d = vb_xr_member(resp, "ErrorDescription");
        if (!d || d->type != VB_XR_ARRAY || d->n == 0 || !vb_xr_str(&d->items[0]))
            return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                                "XenAPI Failure without an ErrorDescription");
        *errdesc = d;
        return 0;
    }
    return vb_error_set(err, VB_ERR_PROTOCOL, VB_DOM_XENAPI,
                        "XenAPI Status is neither Success nor Failure");
}
