# -*- coding: utf-8 -*-
"""tickgate_printable: text from a job, a state file or the fleet made safe
to print on an operator's terminal, by the helper's own rule
(helper/textsafe: Clean): every C0 and C1 control character, DEL, Unicode
line and paragraph separator and bidi control becomes a visible escape
(\\x1b, \\n, \\u202e), as Go writes it in a quoted string. Both sides run the
cases in helper/testdata/printable.json."""

from __future__ import annotations

_NAMED = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_BIDI = {0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def unsafe(ch):
    o = ord(ch)
    return o < 0x20 or o == 0x7F or 0x80 <= o <= 0x9F or o in _BIDI


def _escape(ch):
    if ch in _NAMED:
        return _NAMED[ch]
    o = ord(ch)
    return "\\x%02x" % o if o < 0x80 else "\\u%04x" % o


def tickgate_printable(value):
    """value (a string; anything else as str()) with every unsafe character
    escaped; invalid UTF-8 surrogates (from bytes decoded with
    surrogateescape) as \\xNN."""
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    out = []
    for ch in s:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:
            out.append("\\x%02x" % (o - 0xDC00))
        elif unsafe(ch):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


class FilterModule(object):
    def filters(self):
        return {"tickgate_printable": tickgate_printable}
