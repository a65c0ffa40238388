"""The layout migration from before the trust boundary trusts nothing the
job's user wrote (docs/security.md, upgrading): tickgate's own files
in a state dir the job's user could write are set aside in the job's data dir
as NAME.untrusted and rebuilt from their validated fields - never a pid,
never a control character - and a marker always comes back."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from modlib import m  # noqa: E402

ESC = "\x1b]0;pwned\x07\x1b[2J\u202eevil"


class Migration(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.state = os.path.join(self.tmp.name, "state", "job")
        self.data = os.path.join(self.tmp.name, "data", "job")
        os.makedirs(self.state)
        os.makedirs(self.data)
        self.uid, self.gid = os.getuid(), os.getgid()

    def tearDown(self):
        self.tmp.cleanup()

    def put(self, name, content):
        with open(os.path.join(self.state, name), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))

    def migrate(self, check=False):
        changes, moved = [], []
        m._migrate("job", self.state, self.data, self.uid, self.gid, check, changes, moved)
        return changes, moved

    def read(self, *p):
        with open(os.path.join(*p)) as f:
            return f.read()

    def assert_printable(self, text):
        for ch in text:
            o = ord(ch)
            self.assertFalse(o < 0x20 and ch != "\n" or o == 0x7F or 0x80 <= o <= 0x9F or 0x202A <= o <= 0x202E, repr(text))

    def test_forged_state_is_set_aside_and_rebuilt_without_pid_or_escapes(self):
        forged = {
            "job": "../../other",
            "lock": "api",
            "result": "running",
            "reason": ESC,
            "run_id": "0123456789abcdef",
            "pid": 1,
            "pid_start": 1,
            "helper_pid": 1,
            "consecutive_failures": 3,
            "runs_total": 12,
            "failures_total": -5,
            "last_success_at": "2026-11-01T02:00:00Z",
            "next_due": "2099-01-01T00:00:00Z",
            "history": [
                {"result": "failed", "reason": ESC, "exit_code": 2, "started_at": "2026-11-01T02:00:00Z"},
                {"result": "pwned"},
            ],
        }
        self.put("state.json", forged)
        changes, moved = self.migrate()
        self.assertEqual(moved, ["%s/state.json -> %s/state.json.untrusted" % (self.state, self.data)])
        self.assertEqual(json.loads(self.read(self.data, "state.json.untrusted")), forged)
        text = self.read(self.state, "state.json")
        self.assert_printable(text)
        st = json.loads(text)
        self.assertEqual(st["job"], "job")
        self.assertEqual(st["lock"], "api")
        self.assertEqual(st["pid"], 0)
        for k in ("pid_start", "helper_pid", "next_due"):
            self.assertNotIn(k, st)
        self.assertEqual(st["result"], "interrupted")
        self.assertEqual((st["consecutive_failures"], st["runs_total"], st["failures_total"]), (3, 12, 0))
        self.assertEqual(st["last_success_at"], "2026-11-01T02:00:00.000000Z")
        self.assertEqual([r["result"] for r in st["history"]], ["failed"])
        self.assertEqual(st["history"][0]["reason"], m.printable(ESC))
        self.assertIn("\\x1b]0;pwned", st["history"][0]["reason"])
        self.assertEqual(list(st)[-1], "history")
        self.assertTrue(any(c.startswith("rebuild %s/state.json" % self.state) for c in changes))

    def test_markers_come_back_whatever_they_held(self):
        self.put("halted", {"at": "2026-11-01T02:00:00Z", "reason": ESC, "exit_code": 4, "run_id": "x; rm -rf"})
        self.put("done", "{not json")
        os.symlink("/etc/shadow", os.path.join(self.state, "halted2"))
        self.migrate()
        halted = json.loads(self.read(self.state, "halted"))
        self.assertEqual(halted["reason"], m.printable(ESC))
        self.assertEqual((halted["exit_code"], halted["run_id"]), (4, ""))
        self.assertIn("did not parse", json.loads(self.read(self.state, "done"))["reason"])
        self.assertTrue(os.path.exists(os.path.join(self.data, "halted.untrusted")))
        self.assertTrue(os.path.exists(os.path.join(self.data, "done.untrusted")))
        self.assertTrue(os.path.islink(os.path.join(self.data, "halted2")))  # the job's, moved as it was

    def test_a_marker_that_is_no_plain_file_still_stops_the_job(self):
        os.symlink("/etc/hostname", os.path.join(self.state, "halted"))
        self.migrate()
        self.assertTrue(os.path.islink(os.path.join(self.data, "halted.untrusted")))
        st = os.lstat(os.path.join(self.state, "halted"))
        self.assertTrue(
            os.path.isfile(os.path.join(self.state, "halted")) and not os.path.islink(os.path.join(self.state, "halted"))
        )
        self.assertEqual(st.st_mode & 0o777, 0o644)
        self.assertIn("not a plain file", json.loads(self.read(self.state, "halted"))["reason"])

    def test_unparsable_state_is_only_set_aside(self):
        self.put("state.json", "[1, 2")
        self.put("cursor", "42")
        _files, moved = self.migrate()
        self.assertFalse(os.path.exists(os.path.join(self.state, "state.json")))
        self.assertEqual(self.read(self.data, "state.json.untrusted"), "[1, 2")
        self.assertEqual(self.read(self.data, "cursor"), "42")
        self.assertEqual(len(moved), 2)

    def test_check_mode_changes_nothing(self):
        self.put("state.json", {"result": "success"})
        self.put("halted", {"reason": "x"})
        changes, moved = self.migrate(check=True)
        self.assertEqual(len(moved), 2)
        self.assertEqual(sorted(os.listdir(self.state)), ["halted", "state.json"])
        self.assertEqual(os.listdir(self.data), [])
        self.assertEqual(len([c for c in changes if c.startswith("rebuild")]), 2)

    def test_printable_is_the_helpers_rule(self):
        with open(os.path.join(HERE, "..", "..", "..", "helper", "testdata", "printable.json"), encoding="utf-8") as f:
            for c in json.load(f)["cases"]:
                self.assertEqual(m.printable(c["in"]), c["out"], c["in"])


if __name__ == "__main__":
    unittest.main()
