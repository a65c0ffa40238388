#!/usr/bin/env python3
"""Reads stdin and fails naming the first character a terminal would obey
(C0 and C1 controls, DEL, bidi controls, line separators; as the helper's
textsafe): `text` allows newlines and tabs (a table's own), `json` parses
the input and checks every string value, which must be one line."""

import json
import sys

BIDI = {0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def unsafe(ch, allow):
    o = ord(ch)
    if ch in allow:
        return False
    return o < 0x20 or o == 0x7F or 0x80 <= o <= 0x9F or o in BIDI or 0xDC80 <= o <= 0xDCFF


def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for e in v:
            yield from strings(e)
    elif isinstance(v, dict):
        for k, e in v.items():
            yield from strings(k)
            yield from strings(e)


def main():
    mode = sys.argv[1]
    data = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    texts, allow = ([data], "\n\t") if mode == "text" else (list(strings(json.loads(data))), "")
    for t in texts:
        for i, ch in enumerate(t):
            if unsafe(ch, allow):
                sys.exit("unsafe %r at %d in %r" % (ch, i, t[max(0, i - 40) : i + 40]))
    print("ok: %d text(s), nothing a terminal would obey" % len(texts))


if __name__ == "__main__":
    main()
