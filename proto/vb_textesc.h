/*
 * vb_textesc.h — make text a hop supplied safe to show a person.
 *
 * A server anywhere in the chain names the service, the hops behind it and
 * the prompts of a credential question. Shown raw, that text can move the
 * cursor, clear the screen, reorder what follows it (bidi overrides such as
 * U+202E) or fake a new line (U+2028), so a question from one host could
 * pass for another's. vb_text_escape turns every such character into
 * visible ASCII: C0 and C1 controls and DEL as \xnn, bidi marks,
 * embeddings, overrides and isolates (U+200E/F, U+202A-202E, U+2066-2069,
 * U+061C), zero-width characters (U+200B-200D, U+FEFF) and the line and
 * paragraph separators (U+2028/2029) as \uxxxx, and bytes that are not
 * valid UTF-8 as \xnn (lowercase hex). Everything else passes unchanged. The output holds
 * none of those characters, so escaping it again changes nothing (the
 * broker escapes, and the terminal callback escapes once more).
 *
 * vb_text_escape_lines is the same but keeps LF ('\n', nothing else: CR,
 * VT, FF, NEL and U+2028/2029 are still escaped). Only for text the broker
 * composed itself, line by line, from parts it escaped (its own SSH host
 * key question): a hop's text never keeps a line break, so it cannot print
 * a line that looks like one of ours ("Login for ...", "Password accepted").
 *
 * Pure: no I/O, no locale; the thin client uses it too.
 */
#ifndef VB_TEXTESC_H
#define VB_TEXTESC_H

#include <stddef.h>

/* malloc'd escaped copy of text (NULL for NULL, or when out of memory). */
char *vb_text_escape(const char *text);
/* The same into buf (always NUL-terminated; truncated at a whole escape
 * when buf is too small). Returns buf. */
char *vb_text_escape_into(const char *text, char *buf, size_t len);
/* vb_text_escape keeping '\n' (see above: the broker's own text only). */
char *vb_text_escape_lines(const char *text);

#endif
