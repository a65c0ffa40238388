"""playbooks/status.yml's tickgate_printable filter against the cases the
helper's textsafe.Clean runs (helper/testdata/printable.json): one rule for
printing text that came from a job, whichever side prints it."""

from __future__ import annotations

import importlib.util
import json
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.join(HERE, "..", "..", "..")


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


text = load(os.path.join(TOP, "plugins", "filter", "tickgate_text.py"), "tickgate_text")


class PrintableTest(unittest.TestCase):
    def test_shared_cases(self):
        with open(os.path.join(TOP, "helper", "testdata", "printable.json"), encoding="utf-8") as f:
            cases = json.load(f)["cases"]
        self.assertGreaterEqual(len(cases), 10)
        for c in cases:
            self.assertEqual(text.tickgate_printable(c["in"]), c["out"], c["in"])

    def test_nothing_unsafe_survives(self):
        hostile = "".join(chr(c) for c in list(range(0, 0x20)) + [0x7F] + list(range(0x80, 0xA0))) + "\u202e\u2066\u2028\u061c"
        out = text.tickgate_printable(hostile)
        self.assertFalse(any(text.unsafe(ch) for ch in out), out)

    def test_bytes_decoded_with_surrogateescape(self):
        self.assertEqual(text.tickgate_printable(b"bad\xffbyte".decode("utf-8", "surrogateescape")), "bad\\xffbyte")

    def test_not_a_string(self):
        self.assertEqual(text.tickgate_printable(None), "")
        self.assertEqual(text.tickgate_printable(42), "42")


if __name__ == "__main__":
    unittest.main()
