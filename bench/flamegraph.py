#!/usr/bin/env python3
"""Draw a flame graph (SVG) from folded stacks ("a;b;c COUNT" per line).

bench/flame.sh makes the folded stacks with perf's own stackcollapse script
(linux-perf). Debian 12 packages no flame graph drawer (no flamegraph, no
libjs-d3-flame-graph for `perf script report flamegraph`), so this one is
here: the standard library only, a static SVG, each frame's full name and
share in its tooltip.

    flamegraph.py [--title TEXT] [--width PX] FOLDED > OUT.svg
"""
import argparse
import html
import sys
import zlib

ROW = 16


def load(path):
    root = {"n": 0, "kids": {}}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            root["n"] += n
            node = root
            for frame in stack.split(";"):
                node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
                node["n"] += n
    return root


def depth(node):
    return 1 + max((depth(k) for k in node["kids"].values()), default=0)


def colour(name):
    h = zlib.crc32(name.encode())
    if name.endswith("_[k]"):  # stackcollapse.py --kernel marks kernel frames
        return "rgb(%d,%d,%d)" % (200 + h % 55, 120 + h % 60, 40)       # kernel: orange
    return "rgb(%d,%d,%d)" % (205 + h % 50, 80 + (h >> 8) % 100, 60 + (h >> 16) % 40)


def draw(out, name, node, x, y, scale, total, min_px):
    w = node["n"] * scale
    if w < min_px:
        return
    pct = 100.0 * node["n"] / total
    label = html.escape(name)
    chars = int(w / 7)
    text = label if len(name) <= chars else html.escape(name[: max(chars - 2, 0)]) + ".." if chars > 3 else ""
    out.write('<g><title>%s (%d samples, %.2f%%)</title><rect x="%.1f" y="%d" width="%.1f" '
              'height="%d" fill="%s" rx="2"/>' % (label, node["n"], pct, x, y, w, ROW - 1, colour(name)))
    if text:
        out.write('<text x="%.1f" y="%d">%s</text>' % (x + 3, y + ROW - 4, text))
    out.write("</g>\n")
    cx = x
    for kid_name, kid in sorted(node["kids"].items()):
        draw(out, kid_name, kid, cx, y - ROW, scale, total, min_px)
        cx += kid["n"] * scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folded")
    ap.add_argument("--title", default="")
    ap.add_argument("--width", type=int, default=1400)
    a = ap.parse_args()
    root = load(a.folded)
    if not root["n"]:
        sys.exit("flamegraph.py: no samples in %s" % a.folded)
    rows = depth(root)
    height = rows * ROW + 50
    out = sys.stdout
    out.write('<?xml version="1.0" standalone="no"?>\n'
              '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
              'font-family="monospace" font-size="11">\n' % (a.width, height))
    out.write('<rect width="100%%" height="100%%" fill="#f8f8f0"/>\n'
              '<text x="%d" y="20" font-size="14" text-anchor="middle">%s</text>\n'
              '<text x="10" y="38" fill="#555">%d samples; width = share of samples; '
              'hover a frame for its name and share</text>\n'
              % (a.width // 2, html.escape(a.title), root["n"]))
    scale = (a.width - 20) / root["n"]
    draw(out, "all", root, 10, height - ROW - 4, scale, root["n"], 0.3)
    out.write("</svg>\n")


if __name__ == "__main__":
    main()
