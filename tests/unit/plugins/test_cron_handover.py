"""Unit tests for plugins/module_utils/tickgate_cron.py: handing a cron
entry over to the job that replaces it (replaces_cron), and back."""

import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modlib import m  # noqa: E402

CRON = "MAILTO=ops@example.com\n0 2 * * * harvest flock -n /tmp/api.lock /opt/jobs/harvest\n*/30 * * * * harvest /opt/jobs/backfill\n"


class Handover(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.file = os.path.join(self.dir, "harvest")
        with open(self.file, "w") as f:
            f.write(CRON)
        os.chmod(self.file, 0o640)
        self.reg = os.path.join(self.dir, "handover")
        self.h = {
            "job": "harvest",
            "unit": "tickgate-harvest",
            "file": self.file,
            "match": "/opt/jobs/harvest",
            "catch_up": False,
        }
        # Never wait for a minute's second 2 in a unit test.
        self._outside = m._outside_cron_load
        m._outside_cron_load = lambda: None

    def tearDown(self):
        m._outside_cron_load = self._outside

    def read(self):
        with open(self.file) as f:
            return f.read()

    def test_check_finds_one_line_and_refuses_none_or_two(self):
        self.assertEqual(m.check([self.h]), [])
        none = dict(self.h, match="/opt/jobs/nothing")
        self.assertIn("matches no line", m.check([none])[0])
        two = dict(self.h, match="/opt/jobs/")
        self.assertIn("matches 2 lines (2, 3)", m.check([two])[0])
        gone = dict(self.h, file=os.path.join(self.dir, "nope"))
        self.assertIn("job harvest: replaces_cron: %s:" % gone["file"], m.check([gone])[0])

    def test_hand_over_comments_the_line_once_and_records_it(self):
        handed, diffs = m.hand_over([self.h], self.reg, False)
        self.assertEqual([h["job"] for h in handed], ["harvest"])
        self.assertIn("# tickgate(harvest): 0 2 * * * harvest flock -n /tmp/api.lock /opt/jobs/harvest\n", self.read())
        self.assertIn("*/30 * * * * harvest /opt/jobs/backfill\n", self.read())
        self.assertEqual(os.stat(self.file).st_mode & 0o777, 0o640)
        self.assertEqual(len(diffs), 1)
        with open(os.path.join(self.reg, "harvest.json")) as f:
            rec = json.load(f)
        self.assertEqual(rec["line"], "0 2 * * * harvest flock -n /tmp/api.lock /opt/jobs/harvest")
        # Again: nothing left to hand over, and the preflight accepts the marker.
        again, diffs = m.hand_over([self.h], self.reg, False)
        self.assertEqual((again, diffs), ([], []))
        self.assertEqual(m.check([self.h]), [])

    def test_check_mode_changes_nothing(self):
        handed, diffs = m.hand_over([self.h], self.reg, True)
        self.assertEqual(len(handed), 1)
        self.assertIn("# tickgate(harvest)", diffs[0]["after"])
        self.assertEqual(self.read(), CRON)
        self.assertFalse(os.path.exists(self.reg))

    def test_give_back_puts_the_line_back_when_the_job_goes(self):
        m.hand_over([self.h], self.reg, False)
        restored, problems, diffs = m.give_back({"harvest"}, self.reg, False)
        self.assertEqual((restored, problems), ([], []))
        restored, problems, diffs = m.give_back(set(), self.reg, False)
        self.assertEqual([r["job"] for r in restored], ["harvest"])
        self.assertEqual(problems, [])
        self.assertEqual(self.read(), CRON)
        self.assertFalse(os.path.exists(os.path.join(self.reg, "harvest.json")))

    def test_give_back_of_a_line_someone_removed_warns_and_forgets(self):
        m.hand_over([self.h], self.reg, False)
        with open(self.file, "w") as f:
            f.write("*/30 * * * * harvest /opt/jobs/backfill\n")
        restored, problems, unused_diffs = m.give_back(set(), self.reg, False)
        self.assertEqual(restored, [])
        self.assertIn("no longer holds the line", problems[0])

    def test_the_jobs_of_a_run_parts_dir_share_its_line(self):
        parts = "* * * * * root run-parts /etc/cron.handed"
        with open(self.file, "w") as f:
            f.write(parts + "\n")
        a = dict(self.h, job="handed-a", match=parts)
        b = dict(self.h, job="handed-b", match=parts)
        handed, unused_diffs = m.hand_over([a, b], self.reg, False)
        self.assertEqual([h["job"] for h in handed], ["handed-a"])
        self.assertEqual(self.read(), "# tickgate(handed-a): " + parts + "\n")
        self.assertTrue(os.path.exists(os.path.join(self.reg, "handed-b.json")))
        self.assertEqual(m.check([b]), [])
        # One job goes: the line stays with the other; both go: it is back.
        restored, problems, unused_diffs = m.give_back({"handed-b"}, self.reg, False)
        self.assertEqual((restored, problems), ([], []))
        self.assertEqual(self.read(), "# tickgate(handed-a): " + parts + "\n")
        restored, problems, unused_diffs = m.give_back(set(), self.reg, False)
        self.assertEqual([r["job"] for r in restored], ["handed-b"])
        self.assertEqual(self.read(), parts + "\n")

    def test_run_missed_starts_a_job_the_closed_gate_skipped_after_the_handover(self):
        state = os.path.join(self.dir, "state.json")
        started = []
        self._run = m.run
        m.run = lambda argv, check=True: started.append(argv)
        try:
            at = time.time() - 5
            for when, result, reason, want in [
                (at + 1, "skipped", "gate-closed: deploy", True),
                (at - 1, "skipped", "gate-closed: deploy", False),  # cron ran that slot
                (at + 1, "success", "", False),
            ]:
                started.clear()
                with open(state, "w") as f:
                    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + ".5Z"
                    json.dump({"result": result, "reason": reason, "started_at": stamp}, f)
                h = dict(self.h, at=at, state=state)
                m.run_missed([h])
                self.assertEqual(bool(started), want, (when - at, result))
            started.clear()
            m.run_missed([dict(self.h, at=at, state=state, catch_up=True)])
            self.assertEqual(started, [])
        finally:
            m.run = self._run


if __name__ == "__main__":
    unittest.main()
