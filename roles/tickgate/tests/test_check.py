"""Unit tests for roles/tickgate/action_plugins/tickgate_check.py: the
preflight's controller-side checks, in their order, against the role's real
meta/argument_specs.yml and defaults/main.yml. The molecule scenario runs the
task itself in a deploy."""

import copy
import os
import sys
import unittest

import yaml

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "action_plugins"))
import tickgate_check as c  # noqa: E402

SPEC_FILE = os.path.join(HERE, "..", "meta", "argument_specs.yml")
with open(os.path.join(HERE, "..", "defaults", "main.yml"), encoding="utf-8") as f:
    DEFAULTS = yaml.safe_load(f)


def values(**over):
    v = copy.deepcopy(DEFAULTS)
    v["tickgate_jobs"] = [{"name": "a", "command": ["/bin/true"], "schedule": "hourly"}]
    v.update(over)
    return v


class Check(unittest.TestCase):
    def setUp(self):
        self.spec = c._spec(SPEC_FILE)

    def run_check(self, v):
        return c.check("h1", v, self.spec)

    def test_defaults_and_a_job_pass(self):
        self.assertEqual(self.run_check(values()), "")

    def test_every_default_is_in_the_spec(self):
        # What the action templates is the spec's options: a default the spec
        # lacks would never be checked.
        self.assertEqual(sorted(k for k in DEFAULTS if k not in self.spec), [])

    def test_the_job_list_first_one_line_naming_host_job_and_field(self):
        v = values(tickgate_jobs=[{"name": "shelly", "command": "echo hi", "schedule": "hourly"}], tickgate_kill_after=[1])
        msg = self.run_check(v)
        self.assertTrue(msg.startswith("host h1: "), msg)
        self.assertIn("job shelly: command: must be an argv list, not a string", msg)
        self.assertNotIn("argument", msg)  # the spec's own check did not run

    def test_then_the_argument_spec(self):
        msg = self.run_check(values(tickgate_purge="sometimes"))
        self.assertTrue(msg.startswith("Validation of arguments failed:"), msg)
        self.assertIn("tickgate_purge", msg)

    def test_the_action_returns_the_armed_jobs_for_the_check_across_hosts(self):
        from unittest import mock

        jobs = [
            {"name": "s", "command": ["/bin/true"], "schedule": "hourly", "singleton": True},
            {"name": "off", "command": ["/bin/true"], "schedule": "hourly", "enabled": False},
            {"name": "a", "command": ["/bin/true"], "schedule": "hourly"},
        ]
        task_vars = dict(values(tickgate_jobs=jobs), inventory_hostname="h1")
        action = c.ActionModule.__new__(c.ActionModule)
        action._task = mock.Mock(args={"spec_file": SPEC_FILE})
        action._templar = mock.Mock(template=lambda v: v)
        with mock.patch.object(c.ActionBase, "run", return_value={}):
            res = action.run(task_vars=task_vars)
        self.assertEqual(res, {"changed": False, "armed": "s:1 a"})
        task_vars["tickgate_jobs"] = [{"name": "bad", "command": "echo", "schedule": "hourly"}]
        with mock.patch.object(c.ActionBase, "run", return_value={}):
            res = action.run(task_vars=task_vars)
        self.assertTrue(res["failed"])
        self.assertNotIn("armed", res)

    def test_plain_strips_subclasses(self):
        class Tagged(str):
            pass

        out = c.plain({Tagged("k"): [Tagged("v"), 1, True, 1.5, None, (Tagged("t"),)]})
        self.assertEqual(out, {"k": ["v", 1, True, 1.5, None, ["t"]]})
        k = next(iter(out))
        self.assertIs(type(k), str)
        self.assertIs(type(out["k"][0]), str)
        self.assertIs(type(out["k"][2]), bool)


if __name__ == "__main__":
    unittest.main()
