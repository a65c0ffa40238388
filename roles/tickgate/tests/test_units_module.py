"""Unit tests for the floating-singleton checks of roles/tickgate/library/
tickgate_units.py, against this machine's real systemd-analyze."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "library"))
import tickgate_units as m  # noqa: E402


class FloatingSingletonSchedule(unittest.TestCase):
    def test_gap_must_exceed_twice_delay_and_accuracy(self):
        ok = {"job": "f", "calendars": ["*:0/10"], "min_gap": 2 * (60 + 60)}
        self.assertEqual(m.check_singleton(ok, 20), [])
        tight = dict(ok, min_gap=2 * (300 + 60))
        errs = m.check_singleton(tight, 20)
        self.assertEqual(len(errs), 1)
        self.assertIn("job f: singleton: fleet needs every interval of its schedule longer than twice", errs[0])
        self.assertIn("are 600s apart", errs[0])

    def test_gaps_are_over_the_union_of_expressions(self):
        # Each alone is daily; together 09:00 and 09:01 are a minute apart.
        sg = {"job": "f", "calendars": ["*-*-* 09:00", "*-*-* 09:01"], "min_gap": 10}
        self.assertEqual(m.check_singleton(sg, 10), [])
        errs = m.check_singleton(dict(sg, min_gap=120), 10)
        self.assertIn("are 60s apart", errs[0])

    def test_never_and_invalid(self):
        self.assertIn("never elapses again", m.check_singleton({"job": "f", "calendars": ["2001-01-01"], "min_gap": 1}, 5)[0])
        # A bad expression is the schedule check's to report.
        self.assertEqual(m.check_singleton({"job": "f", "calendars": ["nonsense o'clock"], "min_gap": 1}, 5), [])

    def test_local_time_is_detected(self):
        self.assertTrue(m.elapses(["*-*-* 03:00"], 1)[1])
        self.assertFalse(m.elapses(["*-*-* 03:00 UTC"], 1)[1])
        self.assertFalse(m.elapses(["*-*-* 03:00 Europe/Berlin"], 1)[1])
        self.assertTrue(m.elapses(["*-*-* 03:00 UTC", "hourly"], 1)[1])

    def test_zone_host(self):
        os.environ["TZ"] = "Europe/Berlin"
        try:
            times, local = m.elapses(["*-*-* 03:00"], 3)
        finally:
            del os.environ["TZ"]
        self.assertTrue(local)
        self.assertEqual(len(times), 3)
        self.assertTrue(all(t.hour in (1, 2) for t in times), times)  # 03:00 CET/CEST in UTC


class Calendars(unittest.TestCase):
    def test_one_call_names_each_bad_expression_and_its_jobs(self):
        scheds = [
            {"job": "a", "calendar": "daily"},
            {"job": "b", "calendar": "bogus spec"},
            {"job": "c", "calendar": "*-*-* 25:00"},
            {"job": "d", "calendar": "bogus spec"},
            {"job": "e", "calendar": "Mon,Fri 09:00 Europe/Berlin"},
        ]
        errs = m.check_calendars(scheds)
        self.assertEqual(len(errs), 3, errs)
        self.assertTrue(
            errs[0].startswith("job b: schedule: 'bogus spec' is not a valid OnCalendar expression (Invalid argument)")
        )
        self.assertTrue(errs[1].startswith("job c: schedule: '*-*-* 25:00' is not a valid"))
        self.assertTrue(errs[2].startswith("job d: schedule: 'bogus spec'"))
        self.assertEqual(m.check_calendars(scheds[:1] + scheds[4:]), [])
        self.assertEqual(m.check_calendars([]), [])


if __name__ == "__main__":
    unittest.main()


class EnablementSymlinks(unittest.TestCase):
    """The fast check that spares systemd a UnitFileState query per timer."""

    def setUp(self):
        import tempfile

        self.dir = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.dir)

    def unit(self, name, install):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write("[Unit]\nDescription=x\n\n[Timer]\nOnCalendar=daily\n\n" + install)

    def link(self, target_dir, name):
        os.makedirs(os.path.join(self.dir, target_dir), exist_ok=True)
        os.symlink(os.path.join(self.dir, name), os.path.join(self.dir, target_dir, name))

    def test_enabled_when_every_symlink_is_there(self):
        self.unit("a.timer", "[Install]\nWantedBy=timers.target\n")
        self.assertFalse(m.linked_as_enabled(self.dir, "a.timer"))
        self.link("timers.target.wants", "a.timer")
        self.assertTrue(m.linked_as_enabled(self.dir, "a.timer"))

    def test_every_target_counts(self):
        self.unit("b.timer", "[Install]\nWantedBy=timers.target multi-user.target\nRequiredBy=x.target\n")
        self.link("timers.target.wants", "b.timer")
        self.link("multi-user.target.wants", "b.timer")
        self.assertFalse(m.linked_as_enabled(self.dir, "b.timer"))
        self.link("x.target.requires", "b.timer")
        self.assertTrue(m.linked_as_enabled(self.dir, "b.timer"))

    def test_unsure_cases_ask_systemd(self):
        self.unit("c.timer", "")  # static: no [Install]
        self.unit("d.timer", "[Install]\nWantedBy=timers.target\nAlias=e.timer\n")
        self.link("timers.target.wants", "d.timer")
        self.assertFalse(m.linked_as_enabled(self.dir, "c.timer"))
        self.assertFalse(m.linked_as_enabled(self.dir, "d.timer"))
        self.assertFalse(m.linked_as_enabled(self.dir, "missing.timer"))
