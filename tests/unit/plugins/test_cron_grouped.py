"""Unit tests for plugins/filter/tickgate_cron.py: splitting imported jobs
into each group's and each host's own (playbooks/cron_import.yml)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "filter"))
import tickgate_cron as c  # noqa: E402

A = {"name": "logrotate", "command": ["/usr/sbin/logrotate", "/etc/logrotate.conf"], "schedule": "*-*-* 04:00:00"}
B = {"name": "harvest", "command": ["/opt/jobs/harvest"], "schedule": "*-*-* 02:00:00", "lock": "api"}
C = {"name": "backup", "command": ["/opt/backup"], "schedule": "*-*-* 03:00:00"}


class Grouped(unittest.TestCase):
    def test_a_job_every_host_of_a_group_has_goes_to_the_group(self):
        out = c.tickgate_cron_grouped(
            {"w1": [A, B], "w2": [A], "w3": [A, C]}, {"all": ["w1", "w2", "w3"], "web": ["w1", "w2", "w3"]}
        )
        self.assertEqual(out["groups"], {"web": [A]})
        self.assertEqual(out["hosts"]["w1"], {"jobs": [B], "groups": ["web"]})
        self.assertEqual(out["hosts"]["w2"], {"jobs": [], "groups": ["web"]})
        self.assertEqual(out["hosts"]["w3"], {"jobs": [C], "groups": ["web"]})

    def test_a_job_lands_in_one_group_the_largest(self):
        groups = {"web": ["w1", "w2", "w3"], "eu": ["w1", "w2"]}
        out = c.tickgate_cron_grouped({"w1": [A, B], "w2": [A, B], "w3": [A]}, groups)
        self.assertEqual(out["groups"], {"web": [A], "eu": [B]})
        self.assertEqual(out["hosts"]["w1"], {"jobs": [], "groups": ["web", "eu"]})
        self.assertEqual(out["hosts"]["w3"], {"jobs": [], "groups": ["web"]})

    def test_a_group_with_a_host_not_imported_takes_nothing(self):
        out = c.tickgate_cron_grouped({"w1": [A], "w2": [A]}, {"web": ["w1", "w2", "w9"]})
        self.assertEqual(out["groups"], {})
        self.assertEqual(out["hosts"]["w1"], {"jobs": [A], "groups": []})

    def test_jobs_that_differ_in_one_field_are_not_the_same(self):
        a2 = dict(A, schedule="*-*-* 05:00:00")
        out = c.tickgate_cron_grouped({"w1": [A], "w2": [a2]}, {"web": ["w1", "w2"]})
        self.assertEqual(out["groups"], {})

    def test_group_var(self):
        self.assertEqual(c.tickgate_cron_group_var("Web-EU"), "tickgate_imported_jobs_web_eu")


if __name__ == "__main__":
    unittest.main()
