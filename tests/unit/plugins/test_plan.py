"""Unit tests for roles/tickgate/action_plugins/tickgate_plan.py: the
preflight's controller-side checks, in their order, against the role's real
meta/argument_specs.yml and defaults/main.yml, then the plan they lead to.
The molecule scenarios run the task itself in deploys."""

import copy
import json
import os
import sys
import unittest

import yaml

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "plugins", "action"))
import tickgate_plan as c  # noqa: E402

SPEC_FILE = os.path.join(HERE, "..", "..", "..", "roles", "tickgate", "meta", "argument_specs.yml")
with open(os.path.join(HERE, "..", "..", "..", "roles", "tickgate", "defaults", "main.yml"), encoding="utf-8") as f:
    DEFAULTS = yaml.safe_load(f)


def values(**over):
    v = copy.deepcopy(DEFAULTS)
    # As the action templates them: the defaults that name a host variable.
    v["tickgate_fleet_host"] = "h1"
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

    def test_fleet_settings_name_the_variable(self):
        v = values(tickgate_fleet_dsn="postgresql://u@db/t?sslmode=verify-full", tickgate_fleet_lease_ttl="1h1s")
        msg = self.run_check(v)
        self.assertEqual(msg, "host h1: tickgate_fleet_lease_ttl: 1h1s is outside 6s to 3600s")
        self.assertEqual(self.run_check(values(tickgate_fleet_dsn="postgresql://u@db/t?sslmode=verify-full")), "")

    def test_then_the_argument_spec(self):
        msg = self.run_check(values(tickgate_purge="sometimes"))
        self.assertTrue(msg.startswith("Validation of arguments failed:"), msg)
        self.assertIn("tickgate_purge", msg)

    def test_a_value_the_spec_would_only_accept_converted_is_refused(self):
        # ArgumentSpecValidator converts these, but the role reads the
        # variables as given: each would fail later (a list's .endswith on the
        # host, with the gate closed; "yes" in a condition).
        for name, bad, says in (
            ("tickgate_fleet_dsn", [5], "tickgate_fleet_dsn: must be a string, not list"),
            ("tickgate_gate_file", {"a": 1}, "tickgate_gate_file: must be a string, not dict"),
            ("tickgate_state_dir", None, "tickgate_state_dir: must be a string, not null"),
            ("tickgate_metrics_dir", True, "tickgate_metrics_dir: must be a string, not bool"),
            ("tickgate_purge", "y", "tickgate_purge: must be true or false (or yes/no, on/off, 1/0), not 'y'"),
            ("tickgate_facts", 2, "tickgate_facts: must be true or false (or yes/no, on/off, 1/0), not 2"),
        ):
            with self.subTest(name=name):
                msg = self.run_check(values(**{name: bad}))
                self.assertTrue(msg.startswith("Validation of arguments failed:"), msg)
                self.assertIn(says, msg)
        # A number is a string's value as it renders: a duration in seconds.
        self.assertEqual(self.run_check(values(tickgate_kill_after=30, tickgate_drain_timeout=600)), "")
        # `-e tickgate_purge=true` passes a string: the role reads it with `| bool`.
        self.assertEqual(self.run_check(values(tickgate_purge="true", tickgate_facts="False", tickgate_hardening="no")), "")

    def run_action(self, task_vars, helper_source=None, blackouts=None):
        """The action as the preflight calls it, its plans in a temp dir."""
        import shutil
        import tempfile
        from unittest import mock

        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        templates = os.path.join(HERE, "..", "..", "..", "templates")
        action = c.ActionModule.__new__(c.ActionModule)
        action._task = mock.Mock(args={"spec_file": SPEC_FILE, "inputs_var": "__tickgate_plan_inputs"})
        task_vars["__tickgate_plan_inputs"] = {
            "settings": {
                "bin": "/usr/local/bin/tickgate",
                "state_dir": "/var/lib/tickgate",
                "lock_dir": "/run/lock/tickgate",
                "gate": "/etc/tickgate/gate.json",
                "metrics_dir": "",
                "data_dir": "/var/lib/tickgate-data",
                "supervisor": "tickgate",
                "kill_after": "30s",
                "fleet": False,
                "fleet_dsn_file": "/etc/tickgate/fleet-tick.dsn",
                "fleet_timeout": "5s",
                "notify": [],
                "notify_dir": "/etc/tickgate/notify",
                "blackouts": blackouts or [],
            },
            "service_template": os.path.join(templates, "tickgate-job.service.j2"),
            "timer_template": os.path.join(templates, "tickgate-job.timer.j2"),
            "catch_up_template": os.path.join(templates, "tickgate-catch-up.service.j2"),
        }
        if helper_source is not None:
            task_vars["__tickgate_plan_inputs"]["helper_source"] = helper_source
        self.templated = []  # what the action had templated, in order
        action._templar = mock.Mock(template=lambda v: self.templated.append(v) or v)
        with mock.patch.object(c.ActionBase, "run", return_value={}), mock.patch.object(c.C, "DEFAULT_LOCAL_TMP", tmp):
            return action.run(task_vars=task_vars), tmp

    def test_the_action_checks_then_plans_and_returns_the_armed_jobs_for_the_check_across_hosts(self):
        import json

        jobs = [
            {"name": "s", "command": ["/bin/true"], "schedule": "hourly", "singleton": True},
            {"name": "off", "command": ["/bin/true"], "schedule": "hourly", "enabled": False},
            {"name": "a", "command": ["/bin/true"], "schedule": "hourly"},
        ]
        task_vars = dict(values(tickgate_jobs=jobs), inventory_hostname="h1", ansible_managed="managed")
        res, _templ = self.run_action(task_vars)
        self.assertFalse(res.get("failed"), res.get("msg"))
        self.assertEqual(res["armed"], "s:1 a")
        summary = res["ansible_facts"]["__tickgate_plan"]
        self.assertEqual((summary["jobs"], summary["present"], summary["units"]), (3, 3, 6))
        with open(summary["path"]) as f:
            plan = json.load(f)
        self.assertEqual([j["name"] for j in plan["jobs"]], ["s", "off", "a"])
        self.assertIn('ExecStart="/usr/local/bin/tickgate" "run" "--lock" "a"', plan["units"]["tickgate-a.service"])

    def test_blackouts_reach_the_jobs_they_cover_and_arm_the_catch_up_timer(self):
        import json

        jobs = [
            {"name": "bill", "command": ["/bin/true"], "schedule": "hourly", "lock": "billing", "catch_up": "once"},
            {"name": "other", "command": ["/bin/true"], "schedule": "hourly"},
        ]
        windows = [{"name": "db-maint", "calendar": "Sat *-*-* 02:00", "duration": "2h", "locks": ["billing"]}]

        def plan_of(blackouts):
            tv = dict(
                values(tickgate_jobs=jobs, tickgate_blackouts=blackouts), inventory_hostname="h1", ansible_managed="managed"
            )
            res, _tmp = self.run_action(tv, blackouts=blackouts)
            self.assertFalse(res.get("failed"), res.get("msg"))
            with open(res["ansible_facts"]["__tickgate_plan"]["path"]) as f:
                return json.load(f)["units"]

        units = plan_of(windows)
        self.assertIn('"--blackouts" "[{\\"name\\":\\"db-maint\\",', units["tickgate-bill.service"])
        self.assertNotIn("--blackouts", units["tickgate-other.service"])
        self.assertIn("OnCalendar=*-*-* *:*:30", units["tickgate-catch-up.timer"])
        # Without a blackout (or a precondition catch-up): no catch-up timer.
        units = plan_of([])
        self.assertIn("tickgate-catch-up.service", units)
        self.assertNotIn("tickgate-catch-up.timer", units)
        # A window naming a job the host does not have is refused by the check.
        bad = [{"name": "w", "calendar": "daily", "duration": "1h", "jobs": ["nosuch"]}]
        tv = dict(values(tickgate_jobs=jobs, tickgate_blackouts=bad), inventory_hostname="h1", ansible_managed="managed")
        res, _tmp = self.run_action(tv, blackouts=bad)
        self.assertTrue(res.get("failed"))
        self.assertIn("tickgate_blackouts: window w: jobs: nosuch is not a job of this host", res["msg"])

    def test_without_a_helper_source_it_names_what_to_set(self):
        task_vars = dict(values(), inventory_hostname="h1", ansible_managed="managed")
        missing = os.path.join(HERE, "no-such-dir", "scripts", "build-helper")
        res, tmp = self.run_action(task_vars, {"package": "", "binary_src": "", "build_script": missing})
        self.assertTrue(res.get("failed"))
        self.assertEqual(
            res["msg"],
            "h1: no helper to install: set tickgate_package (the .deb from make dist) or tickgate_binary_src; "
            "%s is missing (an installed collection carries no Go sources to build from)" % missing,
        )
        self.assertFalse(os.path.exists(os.path.join(tmp, "tickgate-plans")))
        # Any one of the three is enough.
        here = os.path.join(tmp, "build-helper")  # a checkout's script
        with open(here, "w", encoding="utf-8") as f:
            f.write("#!/bin/sh\n")
        for src in (
            {"package": "x.deb", "binary_src": "", "build_script": missing},
            {"package": "", "binary_src": "/opt/tickgate", "build_script": missing},
            {"package": "", "binary_src": "", "build_script": here},
        ):
            res, _tmp = self.run_action(dict(values(), inventory_hostname="h1", ansible_managed="managed"), src)
            self.assertFalse(res.get("failed"), (src, res.get("msg")))

    def test_a_boolean_given_as_a_string_renders_as_that_boolean(self):
        # As `-e tickgate_hardening=false` gives it: a string, which Jinja
        # alone would read as true.
        jobs = [{"name": "a", "command": ["/bin/true"], "schedule": "hourly"}]
        units = {}
        for given in (False, "false", True, "true"):
            task_vars = dict(values(tickgate_jobs=jobs, tickgate_hardening=given), inventory_hostname="h1", ansible_managed="m")
            res, _templ = self.run_action(task_vars)
            self.assertFalse(res.get("failed"), res.get("msg"))
            with open(res["ansible_facts"]["__tickgate_plan"]["path"]) as f:
                units[given] = json.load(f)["units"]["tickgate-a.service"]
        self.assertNotIn("NoNewPrivileges=yes", units[False])
        self.assertEqual(units["false"], units[False])
        self.assertIn("NoNewPrivileges=yes", units[True])
        self.assertEqual(units["true"], units[True])

    def test_a_failed_check_writes_no_plan(self):
        task_vars = dict(
            values(tickgate_jobs=[{"name": "bad", "command": "echo", "schedule": "hourly"}]), inventory_hostname="h1"
        )
        res, tmp = self.run_action(task_vars)
        self.assertTrue(res["failed"])
        self.assertIn("job bad: command: must be an argv list", res["msg"])
        self.assertNotIn("armed", res)
        self.assertNotIn("ansible_facts", res)
        self.assertFalse(os.path.exists(os.path.join(tmp, "tickgate-plans")))
        # The plan's inputs were never templated: a variable of the wrong
        # type fails with the check's message, not in their templating.
        self.assertNotIn(task_vars["__tickgate_plan_inputs"], self.templated)
        self.assertEqual(len(self.templated), 1)

    def test_documents_every_argument_it_reads(self):
        import inspect
        import re

        # The docs live in the module stub, for ansible-doc.
        stub = load_stub()
        doc = yaml.safe_load(stub.DOCUMENTATION)
        yaml.safe_load(stub.RETURN)
        yaml.safe_load(stub.EXAMPLES)
        src = inspect.getsource(c.ActionModule.run)
        read = set(re.findall(r'args(?:\["|\.get\(")(\w+)"', src)) | set(
            re.findall(r"for k in \(([^)]*)\)", src)[0].replace('"', "").replace(" ", "").split(",")
        )
        self.assertEqual(sorted(read - {""}), sorted(doc["options"]))

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


def load_stub():
    """plugins/modules/tickgate_plan.py, the action's documentation."""
    import importlib.util

    path = os.path.join(HERE, "..", "..", "..", "plugins", "modules", "tickgate_plan.py")
    spec = importlib.util.spec_from_file_location("tickgate_plan_doc", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
