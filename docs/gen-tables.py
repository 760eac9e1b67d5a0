#!/usr/bin/env python3
"""Print the wire-number tables of docs/protocol.md from proto/vb_protocol.h.

The header is the single source of truth: its X-macro tables (programs,
procedures, error codes, error domains), its enums (message types, statuses)
and its limit #defines. This script parses exactly those and nothing else.

    docs/gen-tables.py                 print the tables (markdown) to stdout
    docs/gen-tables.py --update FILE   rewrite the block between
                                       <!-- tables:begin --> and <!-- tables:end -->
    docs/gen-tables.py --check FILE    exit 1 when that block is out of date

Options: --header PATH (default: proto/vb_protocol.h next to this script's parent).
Anything the script cannot parse is an error, never a silently shorter table.
"""
import argparse
import os
import re
import sys

BEGIN = "<!-- tables:begin -->"
END = "<!-- tables:end -->"


RUNS = {
    "LOOP": "on the event loop",
    "ASYNC": "asked off the loop, answered on it later",
    "WORKER": "on the connection's worker thread (may block)",
    "PEER": "sent by the server, handled by its client",
}


class ParseError(Exception):
    pass


def strip_comments(text):
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def macro_body(text, name):
    """The body of a multi-line `#define NAME(X) \\ ...` X-macro list."""
    m = re.search(r"^#define\s+" + re.escape(name) + r"\(X\)(.*?)(?<!\\)\n", text, flags=re.S | re.M)
    if not m:
        raise ParseError("X-macro %s not found" % name)
    return m.group(1).replace("\\\n", "\n")


def x_rows(text, name, nfields):
    body = strip_comments(macro_body(text, name))
    rows = []
    for m in re.finditer(r"\bX\((.*?)\)\s*(?=X\(|$)", body, flags=re.S):
        parts = [p.strip() for p in split_args(m.group(1))]
        if len(parts) != nfields:
            raise ParseError("%s: row %r has %d fields, expected %d" % (name, m.group(1), len(parts), nfields))
        rows.append(parts)
    if not rows:
        raise ParseError("%s: no rows" % name)
    leftover = re.sub(r"\bX\((.*?)\)\s*(?=X\(|$)", "", body, flags=re.S).strip()
    if leftover:
        raise ParseError("%s: unparsed text %r" % (name, leftover))
    return rows


def split_args(s):
    """Split macro arguments on commas outside string literals."""
    out, cur, in_str = [], "", False
    for ch in s:
        if ch == '"':
            in_str = not in_str
        if ch == "," and not in_str:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def c_int(s):
    s = s.strip()
    if not re.fullmatch(r"[0-9]+[uU]?", s):
        raise ParseError("not an integer literal: %r" % s)
    return int(s.rstrip("uU"))


def c_expr(s):
    """Evaluate a constant expression made of integer literals, * + ( )."""
    expr = re.sub(r"([0-9]+)[uU]", r"\1", s.strip())
    if not re.fullmatch(r"[0-9\s\*\+\(\)]+", expr):
        raise ParseError("unsupported constant expression: %r" % s)
    return int(eval(expr, {"__builtins__": {}}, {}))  # digits and * + ( ) only


def c_string(s):
    """A string literal, or adjacent ones (C concatenates them)."""
    s = s.strip()
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', s)
    if not parts or re.sub(r'"((?:[^"\\]|\\.)*)"', "", s).strip():
        raise ParseError("not a string literal: %r" % s)
    out = "".join(parts)
    if "\\" in out:
        raise ParseError("escape sequences are not supported: %r" % s)
    return out


def c_ident(s):
    s = s.strip()
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", s):
        raise ParseError("not an identifier: %r" % s)
    return s


def md_cell(s):
    """Text for a markdown table cell: its pipes escaped."""
    return s.replace("|", "\\|")


def enum_rows(text, enum_name, prefix):
    m = re.search(r"enum\s+" + re.escape(enum_name) + r"\s*\{(.*?)\};", text, flags=re.S)
    if not m:
        raise ParseError("enum %s not found" % enum_name)
    rows = []
    for line in m.group(1).splitlines():
        lm = re.match(r"\s*" + re.escape(prefix) + r"([A-Z0-9_]+)\s*=\s*([0-9]+)\s*,?\s*(?:/\*\s*(.*?)\s*\*/)?\s*$", line)
        if lm:
            rows.append((lm.group(1), int(lm.group(2)), lm.group(3) or ""))
        elif line.strip():
            raise ParseError("enum %s: unparsed line %r" % (enum_name, line))
    if not rows:
        raise ParseError("enum %s: no values" % enum_name)
    return rows


def defines(text, names):
    out = {}
    for name in names:
        m = re.search(r"^#define\s+" + re.escape(name) + r"\s+(.*?)\s*(?:/\*\s*(.*?)\s*\*/)?\s*$", text, flags=re.M)
        if not m:
            raise ParseError("#define %s not found" % name)
        out[name] = (c_expr(m.group(1)), m.group(2) or "")
    return out


def human_bytes(n):
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return "%d %s" % (n // size, unit)
    return "%d B" % n


def render(header_path):
    with open(header_path, encoding="utf-8") as f:
        text = f.read()
    out = []
    w = out.append
    w("<!-- generated by docs/gen-tables.py from proto/vb_protocol.h; do not edit by hand -->")
    w("")

    w("### Limits")
    w("")
    w("| constant | value | bytes | note |")
    w("|---|---|---|---|")
    limit_names = ["VB_FRAME_PREFIX_LEN", "VB_FRAME_MAX_PREAUTH", "VB_FRAME_MAX_POSTAUTH",
                   "VB_FRAME_MAX_ABSOLUTE", "VB_MSG_MAX_DEPTH", "VB_MSG_HEADER_FIELDS"]
    lim = defines(text, limit_names)
    for name in limit_names:
        val, note = lim[name]
        is_bytes = name.startswith("VB_FRAME_MAX")
        w("| `%s` | %s | %s | %s |" % (name, human_bytes(val) if is_bytes else str(val),
                                      str(val) if is_bytes else "", note))
    w("")

    w("### Message types")
    w("")
    w("| number | type | meaning |")
    w("|---|---|---|")
    for name, num, note in enum_rows(text, "vb_msg_type", "VB_MSG_"):
        w("| %d | `%s` | %s |" % (num, name, note))
    w("")

    w("### Statuses")
    w("")
    w("| number | status | meaning |")
    w("|---|---|---|")
    for name, num, note in enum_rows(text, "vb_status", "VB_STATUS_"):
        w("| %d | `%s` | %s |" % (num, name, note))
    w("")

    programs = x_rows(text, "VB_PROGRAMS", 3)
    w("### Programs")
    w("")
    w("| number | program | current version |")
    w("|---|---|---|")
    for name, num, ver in programs:
        w("| %d | `%s` | %d |" % (c_int(num), name, c_int(ver)))
    noauth = defines(text, ["VB_PROG_HOST_VERSION_NOAUTH"])["VB_PROG_HOST_VERSION_NOAUTH"][0]
    w("")
    w("`HOST` version %d is the version without the `AUTH_*` procedures "
      "(`VB_PROG_HOST_VERSION_NOAUTH`)." % noauth)
    w("")

    bodies = [(c_ident(n), c_string(call), c_string(reply))
              for n, call, reply in x_rows(text, "VB_BODIES", 3)]
    body_names = [b[0] for b in bodies]
    used_by = {n: [] for n in body_names}
    for pname, pnum, _ in programs:
        rows = x_rows(text, "VB_%s_PROCS" % pname, 8)
        w("### Procedures of `%s` (program %d)" % (pname, c_int(pnum)))
        w("")
        w("| number | procedure | needs auth | runs | logs in | since version | body | max body (bytes) |")
        w("|---|---|---|---|---|---|---|---|")
        for name, num, auth, runs, login, since, body, mx in rows:
            a, li = c_int(auth), c_int(login)
            if a not in (0, 1) or li not in (0, 1):
                raise ParseError("%s %s: needs_auth %d, logs_in %d" % (pname, name, a, li))
            runs, body = c_ident(runs), c_ident(body)
            if runs not in RUNS:
                raise ParseError("%s %s: runs is %s" % (pname, name, runs))
            if body not in used_by:
                raise ParseError("%s %s: body %s is not in VB_BODIES" % (pname, name, body))
            used_by[body].append("`%s` `%s`" % (pname, name))
            w("| %d | `%s` | %s | %s | %s | %d | `%s` | %d |" % (
                c_int(num), name, "yes" if a else "no", runs.lower(), "yes" if li else "no",
                c_int(since), body, c_int(mx)))
        w("")
    w("*runs*: where the server runs the procedure: " +
      "; ".join("`%s` %s" % (r.lower(), RUNS[r]) for r in RUNS) + ". "
      "*logs in*: the driver may log in during the call, so a credential question may "
      "come (9.12). *since version*: the first version of the program that has it.")
    w("")

    w("### Bodies")
    w("")
    w("Each procedure's body shape (section 9 says what each field means). Procedures "
      "that carry the same message name the same body.")
    w("")
    w("| body | call (or callback, event) | answer | used by |")
    w("|---|---|---|---|")
    for name, call, reply in bodies:
        if not used_by[name]:
            raise ParseError("body %s is used by no procedure" % name)
        w("| `%s` | `%s` | %s | %s |" % (name, md_cell(call),
                                        "none" if reply == "-" else "`%s`" % md_cell(reply),
                                        ", ".join(used_by[name])))
    w("")

    w("### Error codes")
    w("")
    w("| code | name | text |")
    w("|---|---|---|")
    for name, num, txt in x_rows(text, "VB_ERROR_CODES", 3):
        w("| %d | `%s` | %s |" % (c_int(num), name, c_string(txt)))
    w("")

    w("### Error domains")
    w("")
    w("| domain | name | string |")
    w("|---|---|---|")
    for name, num, txt in x_rows(text, "VB_ERROR_DOMAINS", 3):
        w("| %d | `%s` | `%s` |" % (c_int(num), name, c_string(txt)))
    return "\n".join(out) + "\n"


def splice(doc, tables):
    b, e = doc.find(BEGIN), doc.find(END)
    if b < 0 or e < 0 or e < b:
        raise ParseError("markers %s / %s not found in order" % (BEGIN, END))
    return doc[:b + len(BEGIN)] + "\n" + tables + doc[e:]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--header", default=os.path.join(here, "..", "proto", "vb_protocol.h"))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--update", metavar="FILE")
    g.add_argument("--check", metavar="FILE")
    args = ap.parse_args()
    try:
        tables = render(args.header)
        if not args.update and not args.check:
            sys.stdout.write(tables)
            return 0
        path = args.update or args.check
        with open(path, encoding="utf-8") as f:
            doc = f.read()
        new = splice(doc, tables)
        if args.check:
            if new != doc:
                print("%s: tables are out of date; run docs/gen-tables.py --update %s" % (path, path),
                      file=sys.stderr)
                return 1
            return 0
        if new != doc:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
        return 0
    except (ParseError, OSError) as exc:
        print("gen-tables: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
