#include "vb_textesc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1-4) and its code point, or 0
 * when the bytes there are not one (overlong, surrogate, out of range,
 * truncated). */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    size_t n;
    uint32_t min;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if ((s[0] & 0xE0) == 0xC0) {
        n = 2, min = 0x80, *cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3, min = 0x800, *cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4, min = 0x10000, *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return n;
}

/* Characters that change how the text around them is shown. */
static int unsafe(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C ||
           (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

static char *escape_into(const char *text, char *buf, size_t len, int keep_lf)
{
    size_t o = 0;
    if (!len)
        return buf;
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    while (*s) {
        uint32_t cp;
        size_t n = utf8_decode(s, &cp);
        char esc[12];
        const char *piece = esc;
        size_t plen;
        if (n == 0) {
            plen = (size_t)snprintf(esc, sizeof esc, "\\x%02x", s[0]);
            n = 1;
        } else if (unsafe(cp) && !(keep_lf && cp == '\n')) {
            plen = cp < 0x100 ? (size_t)snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp)
                              : (size_t)snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
        } else {
            piece = (const char *)s;
            plen = n;
        }
        if (o + plen >= len)
            break;
        memcpy(buf + o, piece, plen);
        o += plen;
        s += n;
    }
    buf[o] = '\0';
    return buf;
}

static char *escape_dup(const char *text, int keep_lf)
{
    if (!text)
        return NULL;
    size_t len = strlen(text) * 6 + 1; /* the longest escape: 6 bytes for 1..3 */
    char *buf = malloc(len);
    return buf ? escape_into(text, buf, len, keep_lf) : NULL;
}

char *vb_text_escape_into(const char *text, char *buf, size_t len)
{
    return escape_into(text, buf, len, 0);
}

char *vb_text_escape(const char *text)
{
    return escape_dup(text, 0);
}

char *vb_text_escape_lines(const char *text)
{
    return escape_dup(text, 1);
}
