"""Unit tests for roles/tickgate/filter_plugins/tickgate.py.

What systemd actually does with these strings is proven on a real host by
molecule/default (the argv job); these pin the exact encoding."""

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "filter"))
import tickgate as t  # noqa: E402


class ExecEscaping(unittest.TestCase):
    def test_arguments(self):
        cases = [
            ("plain", '"plain"'),
            ("it's", '"it\'s"'),
            ("100%", '"100%%"'),
            ("$HOME", '"$$HOME"'),
            ("${X}", '"$${X}"'),
            ("a b", '"a b"'),
            ('"q"', '"\\"q\\""'),
            ("back\\slash", '"back\\\\slash"'),
            (";", '";"'),
            ("", '""'),
            ("tab\there", '"tab\\there"'),
            ("line\nbreak", '"line\\nbreak"'),
            ("bell\x07", '"bell\\a"'),
            ("esc\x1b", '"esc\\x1b"'),
            ("é", '"é"'),
            ("%n%%", '"%%n%%%%"'),
        ]
        for arg, want in cases:
            with self.subTest(arg=arg):
                self.assertEqual(t.systemd_exec_arg(arg), want)

    def test_line_joins_quoted_arguments(self):
        self.assertEqual(t.systemd_exec_line(["/bin/echo", "a b", ""]), '"/bin/echo" "a b" ""')

    def test_rejects_non_strings_and_nul(self):
        with self.assertRaises(t.AnsibleFilterError):
            t.systemd_exec_line("echo hi")
        with self.assertRaises(t.AnsibleFilterError):
            t.systemd_exec_arg(3)
        with self.assertRaises(t.AnsibleFilterError):
            t.systemd_exec_arg("a\x00b")


class EnvEscaping(unittest.TestCase):
    def test_assignment(self):
        self.assertEqual(t.systemd_env_assignment("A", "x $y 50%"), '"A=x $y 50%%"')
        self.assertEqual(t.systemd_env_assignment("Q", 'say "hi" \\ ;'), '"Q=say \\"hi\\" \\\\ ;"')
        self.assertEqual(t.systemd_env_assignment("EMPTY", ""), '"EMPTY="')
        self.assertEqual(t.systemd_env_assignment("N", 5), '"N=5"')

    def test_bad_names(self):
        for name in ["", "1A", "A-B", "A B", None]:
            with self.subTest(name=name), self.assertRaises(t.AnsibleFilterError):
                t.systemd_env_assignment(name, "v")


class JobErrors(unittest.TestCase):
    def ok(self, **kw):
        job = {"name": "j", "command": ["/bin/true"], "schedule": "daily"}
        job.update(kw)
        return job

    def test_valid_jobs_have_no_errors(self):
        self.assertEqual(t.tickgate_job_errors([self.ok(), self.ok(name="k", mode="drain", lock="api", timeout="1h 30min")]), [])
        self.assertEqual(t.tickgate_job_errors([{"name": "gone", "state": "absent"}]), [])

    def test_each_problem_names_job_and_field(self):
        cases = [
            (self.ok(command="echo hi"), "job j: command: must be an argv list, not a string"),
            (self.ok(command=[]), "job j: command: required"),
            (self.ok(command=["/bin/x", 3]), "job j: command: every argv element must be a string"),
            (self.ok(schedule=None), "job j: schedule: required"),
            (self.ok(name="Bad Name"), "job Bad Name: name: required, must match"),
            (self.ok(timeout="5 parsecs"), "job j: timeout: not a time span"),
            (self.ok(ok_codes=[0, 256]), "job j: ok_codes: must be a list of exit codes"),
            (self.ok(ok_codes=[0], done_codes=[0]), "job j: done_codes: exit code 0 is also in ok_codes"),
            (self.ok(mode="sometimes"), "job j: mode: must be recurring or drain"),
            (self.ok(mode=["drain"]), "job j: mode: must be recurring or drain"),
            (self.ok(mode={"drain": 1}), "job j: mode: must be recurring or drain"),
            (self.ok(environment={"A-B": "x"}), "job j: environment: invalid variable name"),
            (self.ok(lock="a/b"), "job j: lock: must match"),
            (self.ok(nice=40), "job j: nice: must be a whole number from -20 to 19"),
            (self.ok(frobnicate=1), "job j: frobnicate: unknown field"),
            (self.ok(singleton="yes"), "job j: singleton: must be true, false or fleet"),
            (self.ok(retry_codes=[0], retries=1), "job j: retry_codes: exit code 0 is also in ok_codes"),
            (self.ok(mode="drain", retry_codes=[4], retries=1), "job j: retry_codes: exit code 4 is also in halt_codes"),
            (self.ok(retry_codes=[7]), "job j: retries: retries and retry_codes go together"),
            (self.ok(retries=2), "job j: retry_codes: retries and retry_codes go together"),
            (self.ok(retry_codes=[75], retries=1), "job j: retry_codes: exit code 75 is tickgate's own"),
            (self.ok(retry_codes=[7], retries=-1), "job j: retries: must be a whole number >= 0"),
            (self.ok(retry_codes=[7], retries=1, retry_delay="soon"), "job j: retry_delay: not a time span"),
            (self.ok(start_deadline="30s"), "job j: start_deadline: 30s is not longer than randomized_delay + accuracy (60s)"),
            (
                self.ok(start_deadline="5min", randomized_delay="10min", accuracy="1s"),
                "job j: start_deadline: 5min is not longer",
            ),
            (self.ok(catch_up="twice"), "job j: catch_up: must be none or once"),
            (self.ok(history=0), "job j: history: must be a whole number from 1 to 1000"),
            (self.ok(notify=[{"webhook": "ftp://x/s3cr3t"}]), "job j: notify: target 1: webhook: not an http(s) URL"),
            (
                self.ok(notify=[{"webhook": "http://x", "on": "sometimes"}]),
                "job j: notify: target 1: on: must be transitions or every",
            ),
            (self.ok(notify=[{"pager": "http://x"}]), "job j: notify: target 1: needs exactly one of webhook or healthchecks"),
            (self.ok(notify={"webhook": "http://x"}), "job j: notify: must be a list of targets"),
            (self.ok(fixed_random_delay="yes"), "job j: fixed_random_delay: must be true or false"),
            (self.ok(name="catch-up"), "job catch-up: name: 'catch-up' is reserved"),
            (self.ok(singleton="fleet"), "job j: singleton: fleet needs tickgate_fleet_dsn"),
            (self.ok(working_directory="relative"), "job j: working_directory: must be an absolute path"),
        ]
        for job, want in cases:
            with self.subTest(want=want):
                errors = t.tickgate_job_errors([job])
                self.assertTrue(any(e.startswith(want) for e in errors), errors)

    def test_mode_from_defaults_counts_for_the_contract(self):
        # drain from tickgate_job_defaults: done 0 clashes with the job's ok 0,
        # exactly as tickgate_normalize_jobs would resolve it.
        errors = t.tickgate_job_errors([self.ok(ok_codes=[0])], {"mode": "drain"})
        self.assertIn("job j: done_codes: exit code 0 is also in ok_codes", errors)
        self.assertEqual(t.tickgate_job_errors([self.ok(ok_codes=[0])]), [])
        self.assertTrue(any(e.startswith("job j: mode:") for e in t.tickgate_job_errors([self.ok()], {"mode": "often"})))

    def test_duplicate_names(self):
        errors = t.tickgate_job_errors([self.ok(), self.ok()])
        self.assertIn("job j: name: duplicate of tickgate_jobs[0]", errors)

    def test_unknown_field_names_the_nearest(self):
        errs = t.tickgate_job_errors([{"name": "j", "command": ["/x"], "schedule": "hourly", "lock_wiat": "5s"}])
        self.assertEqual(errs, ["job j: lock_wiat: unknown field (did you mean lock_wait?)"])

    def test_known_fields_are_the_argument_specs(self):
        self.assertIn("read_write_paths", t._known_fields())
        self.assertIn("gate_fail", t._known_fields())

    def test_fleet_lock_scope_needs_fleet(self):
        job = {"name": "j", "command": ["/x"], "schedule": "hourly", "lock_scope": "fleet"}
        self.assertEqual(
            t.tickgate_job_errors([job]), ["job j: lock_scope: fleet needs tickgate_fleet_dsn (fleet coordination) on this host"]
        )
        self.assertEqual(t.tickgate_job_errors([job], {}, None, True), [])
        self.assertEqual(len(t.tickgate_job_errors([dict(job, lock_scope="planet")], {}, None, True)), 1)

    def test_floating_singleton_with_fleet(self):
        job = {"name": "j", "command": ["/x"], "schedule": "hourly", "singleton": "fleet"}
        self.assertEqual(t.tickgate_job_errors([job], {}, None, True), [])

    def test_supervisor_account_is_not_a_job_user(self):
        errs = t.tickgate_job_errors([{"name": "j", "command": ["/x"], "schedule": "hourly", "user": "tickgate"}], {}, "tickgate")
        self.assertEqual(len(errs), 1)
        self.assertIn("job j: user: 'tickgate' is tickgate's supervisor account", errs[0])
        errs = t.tickgate_job_errors(
            [{"name": "j", "command": ["/x"], "schedule": "hourly", "group": "tickgate"}], {}, "tickgate"
        )
        self.assertIn("job j: group:", errs[0])

    def test_not_a_list(self):
        self.assertEqual(len(t.tickgate_job_errors({"name": "j"})), 1)

    def test_requires(self):
        dep = {"name": "harvest", "command": ["/x"], "schedule": "hourly"}
        good = self.ok(
            requires=[
                {"command": ["/usr/bin/pg_isready", "-q"], "timeout": "5s"},
                {"job": "harvest", "succeeded_within": "6h"},
            ],
            catch_up="once",
            catch_up_on=["gate", "precondition"],
        )
        self.assertEqual(t.tickgate_job_errors([dep, good]), [])
        cases = [
            ([{"command": ["pg_isready"]}], "job j: requires: item 1: command: 'pg_isready' is not an absolute path"),
            (
                [{"command": ["/x"], "timeout": "1h"}],
                "job j: requires: item 1: timeout: must be a time span above 0 and at most 10min",
            ),
            ([{"command": ["/x"], "job": "harvest"}], "job j: requires: item 1: give command or job (exactly one)"),
            ([{"job": "harvest"}], "job j: requires: item 1: succeeded_within is required"),
            (
                [{"job": "harvest", "succeeded_within": "0"}],
                "job j: requires: item 1: succeeded_within: must be a time span above 0",
            ),
            (
                [{"job": "harvest", "succeeded_within": "1h", "scope": "rack"}],
                "job j: requires: item 1: scope: must be host or fleet",
            ),
            (
                [{"job": "harvest", "succeeded_within": "1h", "scope": "fleet"}],
                "job j: requires: item 1: scope fleet needs tickgate_fleet_dsn",
            ),
            ([{"job": "harvest", "succeeded_within": "1h", "extra": 1}], "job j: requires: item 1: unknown key(s) extra"),
            ([{"job": "j", "succeeded_within": "1h"}], "job j: requires: item 1: job: a job cannot require its own success"),
            ([{"job": "nosuch", "succeeded_within": "1h"}], "job j: requires: job nosuch is not a job of this host"),
            ("pg_isready", "job j: requires: must be a list"),
        ]
        for reqs, want in cases:
            errs = t.tickgate_job_errors([dep, self.ok(requires=reqs)])
            self.assertTrue(any(e.startswith(want) for e in errs), (reqs, errs))
        # A fleet-scope dependency may name a job only other hosts have.
        fleet = self.ok(requires=[{"job": "elsewhere", "succeeded_within": "1h", "scope": "fleet"}])
        self.assertEqual(t.tickgate_job_errors([fleet], {}, None, True), [])
        for cuo, want in (
            (["precondition"], "gate skips always owe a run"),
            (["gate", "rain"], "must be a list of gate and precondition"),
        ):
            errs = t.tickgate_job_errors([self.ok(catch_up="once", catch_up_on=cuo)])
            self.assertTrue(errs and want in errs[0], errs)
        errs = t.tickgate_job_errors([self.ok(catch_up_on=["gate", "precondition"])])
        self.assertIn("precondition needs catch_up: once", errs[0])

    def test_blackouts(self):
        jobs = [self.ok(name="report")]
        good = [
            {"name": "db-maint", "calendar": "Sat *-*-* 02:00", "duration": "2h", "locks": ["billing"]},
            {"name": "freeze", "calendar": "*-12-24 00:00", "duration": "3d", "all": True},
            {"name": "rep", "calendar": "daily", "duration": 600, "jobs": ["report"]},
        ]
        self.assertEqual(t.tickgate_blackout_errors(good, jobs), [])
        self.assertEqual(t.tickgate_blackout_errors([], jobs), [])
        cases = [
            ({"calendar": "daily", "duration": "1h", "all": True}, "tickgate_blackouts[1]: name: required"),
            ({"name": "w", "duration": "1h", "all": True}, "tickgate_blackouts: window w: calendar: required"),
            ({"name": "w", "calendar": "daily", "all": True}, "tickgate_blackouts: window w: duration: required"),
            (
                {"name": "w", "calendar": "daily", "duration": "0", "all": True},
                "tickgate_blackouts: window w: duration: required",
            ),
            ({"name": "w", "calendar": "daily", "duration": "1h"}, "tickgate_blackouts: window w: give exactly one of"),
            ({"name": "w", "calendar": "daily", "duration": "1h", "all": True, "locks": ["a"]}, "give exactly one of"),
            (
                {"name": "w", "calendar": "daily", "duration": "1h", "locks": ["bad name"]},
                "window w: locks: must be a list of lock group names",
            ),
            (
                {"name": "w", "calendar": "daily", "duration": "1h", "jobs": ["nosuch"]},
                "window w: jobs: nosuch is not a job of this host",
            ),
            ({"name": "w", "calendar": "daily", "duration": "1h", "all": True, "when": 1}, "window w: unknown key 'when'"),
        ]
        for w, want in cases:
            errs = t.tickgate_blackout_errors([w], jobs)
            self.assertTrue(any(want in e for e in errs), (w, errs))
        self.assertIn("name: given twice", t.tickgate_blackout_errors([good[0], good[0]], jobs)[0])
        self.assertEqual(
            json.loads(t.tickgate_blackouts_json(good))[2],
            {"name": "rep", "calendar": "daily", "duration": "600s", "jobs": ["report"]},
        )

    def test_lock_groups(self):
        self.assertEqual(t.tickgate_lock_group_errors({"api": {"slots": 2}, "db": {"slots": 1}}), [])
        for groups, want in (
            ([], "must be a dict"),
            ({"bad name": {"slots": 2}}, "tickgate_lock_groups: bad name: not a lock group name"),
            ({"api": 2}, "tickgate_lock_groups: api: must be a dict like {slots: 2}"),
            ({"api": {"slots": 0}}, "tickgate_lock_groups: api: slots: a whole number from 1 to 64"),
            ({"api": {"slots": 65}}, "slots: a whole number from 1 to 64"),
            ({"api": {"slots": True}}, "slots: a whole number"),
            ({"api": {"slots": 2, "size": 3}}, "tickgate_lock_groups: api: unknown key 'size'"),
        ):
            errs = t.tickgate_lock_group_errors(groups)
            self.assertTrue(errs and want in errs[0], (groups, errs))
        # A fleet-scoped group of N: N leases (GROUP, GROUP#1, ...).
        fleet_job = self.ok(lock="api", lock_scope="fleet")
        self.assertEqual(t.tickgate_lock_group_errors({"api": {"slots": 2}}, [fleet_job]), [])

    def test_lock_slots_across_hosts(self):
        hv = {"a": {"tickgate_lock_groups": {"api": {"slots": 2}}}, "b": {"tickgate_lock_groups": {"api": {"slots": 3}}}, "c": {}}
        self.assertEqual(
            t.tickgate_lock_slot_errors(hv, ["a", "b", "c"]),
            ["lock group api: slots differ across hosts (2: a; 3: b); give it one size (group_vars)"],
        )
        hv["b"]["tickgate_lock_groups"]["api"]["slots"] = 2
        self.assertEqual(t.tickgate_lock_slot_errors(hv, ["a", "b", "c"]), [])

    def test_fleet_blackouts(self):
        w = {"name": "db-maint", "calendar": "Sat *-*-* 02:00", "duration": "2h", "locks": ["billing"]}
        hv = {
            "a": {"tickgate_fleet_dsn": "postgres://a@db/t", "tickgate_blackouts": [w]},
            "b": {"tickgate_fleet_dsn": "postgres://b@db/t", "tickgate_blackouts": [dict(w)]},
            "c": {"tickgate_blackouts": []},  # no fleet: its own
        }
        self.assertEqual(t.tickgate_fleet_blackout_errors(hv, ["a", "b", "c"]), [])
        reg = t.tickgate_fleet_registration(hv, ["a", "b", "c"])
        self.assertEqual(
            reg["blackouts"], [{"name": "db-maint", "calendar": "Sat *-*-* 02:00", "duration": "2h", "locks": ["billing"]}]
        )
        hv["b"]["tickgate_blackouts"] = []
        errs = t.tickgate_fleet_blackout_errors(hv, ["a", "b", "c"])
        self.assertEqual(len(errs), 1)
        self.assertIn("the fleet's hosts have 2 different lists (a; b)", errs[0])

    def test_requires_cycles(self):
        def job(name, *deps):
            return {
                "name": name,
                "command": ["/x"],
                "schedule": "hourly",
                "requires": [{"job": d, "succeeded_within": "1h"} for d in deps],
            }

        self.assertEqual(t.tickgate_job_errors([job("a", "b"), job("b", "c"), job("c")]), [])
        errs = t.tickgate_job_errors([job("a", "b"), job("b", "c"), job("c", "a"), job("d", "a")])
        self.assertEqual(errs, ["job a: requires: a cycle of dependencies: a -> b -> c -> a"])
        # An absent job is no dependency of this host's.
        errs = t.tickgate_job_errors([job("a", "b"), {"name": "b", "state": "absent"}])
        self.assertEqual(errs, ["job a: requires: job b is not a job of this host (scope host reads this host's state of it)"])


class Normalize(unittest.TestCase):
    settings = {
        "bin": "/usr/local/bin/tickgate",
        "state_dir": "/var/lib/tickgate",
        "lock_dir": "/run/lock/tickgate",
        "gate": "/etc/tickgate/gate.json",
        "metrics_dir": "/m",
        "kill_after": "10s",
        "data_dir": "/var/lib/tickgate-data",
        "supervisor": "tickgate",
        "env_dir": "/etc/tickgate/env",
    }
    defaults = {"lock": "", "mode": "recurring", "environment": {}, "read_write_paths": [], "timeout": 0, "gate_fail": "closed"}

    def norm(self, **kw):
        job = {"name": "backfill", "command": ["/opt/b", "--x"], "schedule": "hourly"}
        job.update(kw)
        return t.tickgate_normalize_jobs([job], self.defaults, self.settings)[0]

    def test_drain_mode_contract_and_argv(self):
        j = self.norm(mode="drain", lock="api", timeout="25min", environment={"B": "2", "A": "1"})
        self.assertEqual(
            j["argv"][:16],
            [
                "/usr/local/bin/tickgate",
                "run",
                "--lock",
                "api",
                "--ok-codes",
                "3",
                "--done-codes",
                "0",
                "--halt-codes",
                "4",
                "--halt-after",
                "1",
                "--gate-fail",
                "closed",
                "--kill-after",
                "10s",
            ],
        )
        self.assertEqual(j["argv"][-4:], ["backfill", "--", "/opt/b", "--x"])
        self.assertIn("--timeout", j["argv"])
        # The job's variables reach its command alone: never the unit's
        # Environment= (the helper's own), but a file the helper reads.
        self.assertNotIn("A", dict(j["env"]))
        self.assertEqual(j["env_vars"], {"A": "1", "B": "2"})
        self.assertEqual(j["env_file"], "/etc/tickgate/env/backfill.json")
        i = j["argv"].index("--env-file")
        self.assertEqual(j["argv"][i + 1], "/etc/tickgate/env/backfill.json")
        self.assertLess(i, j["argv"].index("backfill"))
        self.assertEqual(j["runtime_max"], "1540s")  # 25 min + 10 s + 30 s
        self.assertEqual(j["stop_timeout"], "30s")
        self.assertEqual(j["schedule"], ["hourly"])
        self.assertEqual(
            j["rw_paths"], ["/var/lib/tickgate/backfill", "/run/lock/tickgate", "/var/lib/tickgate-data/backfill", "/m"]
        )
        self.assertFalse(j["nonroot"])
        self.assertNotIn("--user", j["argv"])
        self.assertEqual(
            dict(j["env"][:5]),
            {
                "TICKGATE_STATE_ROOT": "/var/lib/tickgate",
                "TICKGATE_LOCK_DIR": "/run/lock/tickgate",
                "TICKGATE_GATE": "/etc/tickgate/gate.json",
                "TICKGATE_DATA_ROOT": "/var/lib/tickgate-data",
                "TICKGATE_SUPERVISOR": "tickgate",
            },
        )

    def test_the_job_environment_never_reaches_the_unit(self):
        # The ordinary venv job: its PATH first, a loader variable besides.
        j = self.norm(
            environment={"PATH": "/opt/app/venv/bin:/usr/bin:/bin", "LD_PRELOAD": "/opt/app/x.so", "PORT": 8080, "EMPTY": None}
        )
        self.assertTrue(all(k.startswith("TICKGATE_") for k, _v in j["env"]), j["env"])
        self.assertEqual(
            j["env_vars"], {"PATH": "/opt/app/venv/bin:/usr/bin:/bin", "LD_PRELOAD": "/opt/app/x.so", "PORT": "8080", "EMPTY": ""}
        )
        plain = self.norm()
        self.assertNotIn("--env-file", plain["argv"])
        self.assertEqual(plain["env_vars"], {})

    def test_nonroot_job_runs_only_its_command_as_its_user(self):
        j = self.norm(user="svc", group="svcg", working_directory="/srv/x")
        self.assertTrue(j["nonroot"])
        i = j["argv"].index("--user")
        self.assertEqual(j["argv"][i : i + 6], ["--user", "svc", "--group", "svcg", "--workdir", "/srv/x"])
        self.assertEqual(j["argv"][-4:], ["backfill", "--", "/opt/b", "--x"])
        self.assertFalse(self.norm(user="root")["nonroot"])

    def test_fleet_jobs_obey_the_fleet_gate_and_scope_their_lock(self):
        settings = dict(self.settings, fleet=True, fleet_dsn_file="/etc/tickgate/fleet-tick.dsn", fleet_timeout="3s")
        plain, scoped = t.tickgate_normalize_jobs(
            [
                {"name": "a", "command": ["/x"], "schedule": "hourly"},
                {"name": "b", "command": ["/x"], "schedule": "hourly", "lock_scope": "fleet"},
            ],
            self.defaults,
            settings,
        )
        self.assertIn("--fleet", plain["argv"])
        self.assertEqual(scoped["argv"][scoped["argv"].index("--lock-scope") + 1], "fleet")
        self.assertIn(["TICKGATE_FLEET_DSN_FILE", "/etc/tickgate/fleet-tick.dsn"], plain["env"])
        self.assertNotIn("--fleet", self.norm()["argv"])
        # systemd kills a frozen holder's unit a sixth of the lease after
        # its last feed; jobs without a fleet lock have no watchdog.
        self.assertEqual(scoped["watchdog_sec"], "5000ms")
        self.assertNotIn("watchdog_sec", plain)
        (short,) = t.tickgate_normalize_jobs(
            [{"name": "b", "command": ["/x"], "schedule": "hourly", "lock_scope": "fleet"}],
            self.defaults,
            dict(settings, fleet_lease_ttl="10s"),
        )
        self.assertEqual(short["watchdog_sec"], "1666ms")
        self.assertIn(["TICKGATE_FLEET_LEASE_TTL", "10s"], short["env"])

    def test_floating_singleton_names_its_slots_from_the_timer_schedule(self):
        settings = dict(self.settings, fleet=True, fleet_dsn_file="/etc/tickgate/fleet-tick.dsn", fleet_timeout="3s")
        (j,) = t.tickgate_normalize_jobs(
            [{"name": "f", "command": ["/x"], "schedule": ["Mon,Fri 09:00", "*-*-01 00:00 UTC"], "singleton": "fleet"}],
            self.defaults,
            settings,
        )
        i = j["argv"].index("--singleton")
        self.assertEqual(
            j["argv"][i : i + 6], ["--singleton", "fleet", "--schedule", "Mon,Fri 09:00", "--schedule", "*-*-01 00:00 UTC"]
        )
        self.assertNotIn("--singleton", self.norm(singleton=True)["argv"])

    def test_retries_reach_the_helper_and_widen_the_backstop(self):
        j = self.norm(retry_codes=[7, 9], retries=3, retry_delay="10s", timeout="1min")
        i = j["argv"].index("--retry-codes")
        self.assertEqual(j["argv"][i : i + 6], ["--retry-codes", "7,9", "--retries", "3", "--retry-delay", "10s"])
        # 4 attempts x (60 + 10 kill_after) + waits 10 + 20 + 40 + 30 s of margin
        self.assertEqual(j["runtime_max"], "380s")
        self.assertNotIn("--retry-codes", self.norm()["argv"])
        self.assertEqual(self.norm(timeout="1min")["runtime_max"], "100s")

    def test_notify_targets_never_echo_the_url(self):
        errs = t.tickgate_job_errors(
            [{"name": "j", "command": ["/x"], "schedule": "hourly", "notify": [{"webhook": "ftp://h/s3cr3t"}]}]
        )
        self.assertEqual(len(errs), 1)
        self.assertNotIn("s3cr3t", errs[0])
        self.assertEqual(t.tickgate_target_errors([{"healthchecks": "https://hc/uuid", "on": "every"}]), [])
        self.assertIn("tickgate_notify: target 1", t.tickgate_target_errors([{"webhook": "nope s3cr3t"}])[0])

    def test_the_tick_only_build_runs_jobs_without_fleet_or_targets(self):
        tick = dict(self.settings, tick_bin="/usr/local/bin/tickgate-tick", fleet_dsn_file="/d", fleet_timeout="3s")
        cases = [
            ("plain", tick, {}, "/usr/local/bin/tickgate-tick"),
            ("no tick_bin setting", self.settings, {}, "/usr/local/bin/tickgate"),
            ("a job's target", tick, {"notify": [{"webhook": "https://h/x"}]}, "/usr/local/bin/tickgate"),
            ("the host's default target", dict(tick, notify=[{"healthchecks": "https://hc/1"}]), {}, "/usr/local/bin/tickgate"),
            (
                "the job turns the default off",
                dict(tick, notify=[{"healthchecks": "https://hc/1"}]),
                {"notify": []},
                "/usr/local/bin/tickgate-tick",
            ),
            ("fleet coordination", dict(tick, fleet=True), {}, "/usr/local/bin/tickgate"),
        ]
        for what, settings, kw, want in cases:
            with self.subTest(what):
                job = dict({"name": "j", "command": ["/x"], "schedule": "hourly"}, **kw)
                j = t.tickgate_normalize_jobs([job], self.defaults, settings)[0]
                self.assertEqual(j["argv"][:2], [want, "run"])

    def test_notify_targets_from_the_job_or_the_host_default(self):
        settings = dict(self.settings, notify=[{"healthchecks": "https://hc/1"}], notify_dir="/etc/tickgate/notify")
        own, default = t.tickgate_normalize_jobs(
            [
                {"name": "a", "command": ["/x"], "schedule": "hourly", "notify": [{"webhook": "https://h/k", "on": "every"}]},
                {"name": "b", "command": ["/x"], "schedule": "hourly"},
            ],
            self.defaults,
            settings,
        )
        self.assertEqual(own["notify_targets"], [{"kind": "webhook", "url": "https://h/k", "on": "every"}])
        self.assertEqual(default["notify_targets"], [{"kind": "healthchecks", "url": "https://hc/1", "on": "transitions"}])
        self.assertIn(["TICKGATE_NOTIFY_DIR", "/etc/tickgate/notify"], own["env"])
        self.assertNotIn("https://h/k", " ".join(own["argv"]))

    def test_deadline_and_catch_up_pass_the_schedule(self):
        j = self.norm(schedule=["*-*-* 02:00", "Sat 03:00"], start_deadline="6h", catch_up="once")
        a = j["argv"]
        self.assertEqual(a[a.index("--start-deadline") + 1], "6h")
        self.assertEqual(a[a.index("--catch-up") + 1], "once")
        self.assertEqual([a[i + 1] for i, x in enumerate(a) if x == "--schedule"], ["*-*-* 02:00", "Sat 03:00"])
        self.assertEqual(self.norm()["argv"][-6:-4], ["--schedule", "hourly"])

    def test_requires_reach_the_helper(self):
        j = self.norm(
            requires=[{"command": ["/usr/bin/pg_isready", "-q"], "timeout": 5}, {"job": "harvest", "succeeded_within": "6h"}],
            catch_up="once",
            catch_up_on=["gate", "precondition"],
            schedule="hourly",
        )
        a = j["argv"]
        self.assertEqual(
            a[a.index("--requires") + 1],
            '[{"command":["/usr/bin/pg_isready","-q"],"timeout":"5s"},{"job":"harvest","succeeded_within":"6h","scope":"host"}]',
        )
        self.assertEqual(a[a.index("--catch-up-on") + 1], "gate,precondition")
        self.assertNotIn("--requires", self.norm()["argv"])
        self.assertNotIn("--catch-up-on", self.norm(catch_up="once", catch_up_on=["gate"])["argv"])

    def test_lock_slots_reach_the_helper(self):
        settings = dict(self.settings, lock_groups={"api": {"slots": 3}})
        j = t.tickgate_normalize_jobs(
            [{"name": "b", "command": ["/x"], "schedule": "hourly", "lock": "api"}], self.defaults, settings
        )[0]
        self.assertEqual(j["argv"][j["argv"].index("--lock-slots") + 1], "3")
        self.assertNotIn("--lock-slots", self.norm(lock="db")["argv"])

    def test_job_codes_override_the_mode(self):
        j = self.norm(mode="drain", halt_after=0, ok_codes=[3, 5])
        self.assertEqual((j["ok_codes"], j["done_codes"], j["halt_after"]), ([3, 5], [0], 0))

    def test_lock_defaults_to_name(self):
        self.assertEqual(self.norm()["lock"], "backfill")


class Singletons(unittest.TestCase):
    @staticmethod
    def registered(jobs_by_host):
        """hostvars as the check across hosts sees them: each host's
        tickgate_plan result, whose "armed" is tickgate_armed of its jobs."""
        return {h: {"__tickgate_checked": {"armed": t.tickgate_armed(jobs)}} for h, jobs in jobs_by_host.items()}

    def test_armed_summary(self):
        jobs = [
            {"name": "s", "singleton": True},
            {"name": "f", "singleton": "fleet", "schedule": "hourly"},
            {"name": "plain"},
            {"name": "off", "singleton": True, "enabled": False},
            {"name": "gone", "state": "absent"},
            {"name": "no", "singleton": False},
        ]
        self.assertEqual(t.tickgate_armed(jobs), "s:1 f:fleet:%s plain no" % t.schedule_hash(["hourly"]))
        self.assertEqual(t.tickgate_armed(None), "")

    def test_exactly_one_host(self):
        jobs = {
            "a": [{"name": "s", "singleton": True}],
            "b": [{"name": "s", "singleton": True}],
            "c": [{"name": "s", "singleton": True, "enabled": False}],
        }
        hv = self.registered(jobs)
        self.assertEqual(
            t.tickgate_singleton_errors(hv, ["a", "b", "c"]),
            ["job s: singleton: armed on 2 hosts (a, b); it must be present and enabled on exactly one"],
        )
        self.assertEqual(t.tickgate_singleton_errors(hv, ["a", "c"]), [])
        jobs["b"][0]["state"] = "absent"
        self.assertEqual(t.tickgate_singleton_errors(self.registered(jobs), ["a", "b"]), [])
        # A host whose check did not register counts as arming nothing.
        self.assertEqual(t.tickgate_singleton_errors({"a": hv["a"], "d": {}}, ["a", "d"]), [])

    def test_floating_singleton_has_one_schedule_on_every_host(self):
        jobs = {h: [{"name": "f", "singleton": "fleet", "schedule": "*-*-* 02:00 UTC"}] for h in ("a", "b", "c")}
        self.assertEqual(t.tickgate_singleton_errors(self.registered(jobs), ["a", "b", "c"]), [])
        jobs["c"][0]["schedule"] = ["*-*-* 03:00 UTC"]  # host_vars, or a rolling deploy
        errs = t.tickgate_singleton_errors(self.registered(jobs), ["a", "b", "c"])
        self.assertEqual(len(errs), 1)
        self.assertIn("job f: singleton: fleet with 2 different schedules across its hosts (a, b; c)", errs[0])

    def test_schedule_hash_is_the_helpers(self):
        # helper/fleet ScheduleHash of ["*:*:0/10"] (fleet_test registers it).
        self.assertEqual(t.schedule_hash(["*:*:0/10"]), "f502770ce8d284f89850aab160b24008f70e949afec570b1c93309cbd789dc35")
        self.assertEqual(t.schedule_hash("*:*:0/10"), t.schedule_hash(["*:*:0/10"]))

    def test_fleet_dsns(self):
        self.assertEqual(
            t.tickgate_dsn_user("postgresql://tickgate_tick_web1:p%40w@db:5432/tickgate?sslmode=verify-full"),
            "tickgate_tick_web1",
        )
        self.assertEqual(t.tickgate_dsn_user("host=db user=tg_web1 password='a b' sslmode=verify-full"), "tg_web1")
        self.assertEqual(t.tickgate_dsn_user("postgresql://db/t?user=u2"), "u2")
        self.assertEqual(
            t.tickgate_dsn_errors("postgresql://u:s3cret@db/t?sslmode=verify-full&sslrootcert=/etc/tickgate/fleet-ca.crt", "v"),
            [],
        )
        errs = t.tickgate_dsn_errors("postgresql://u:s3cret@db/t?sslmode=require", "tickgate_fleet_dsn")
        self.assertEqual(len(errs), 1)
        self.assertIn("tickgate_fleet_dsn: sslmode is require, not verify-full", errs[0])
        self.assertNotIn("s3cret", errs[0])
        self.assertEqual(t.tickgate_dsn_errors("postgresql://u:p@db/t?sslmode=disable", "v", insecure=True), [])
        self.assertIn("names no user", t.tickgate_dsn_errors("postgresql://db/t?sslmode=verify-full", "v")[0])
        self.assertEqual(t.tickgate_dsn_errors(["not", "a", "string"], "v"), [])

    def test_fleet_settings(self):
        ok = {
            "tickgate_fleet_dsn": "x",
            "tickgate_fleet_lease_ttl": "30s",
            "tickgate_fleet_max_skew": 5,
            "tickgate_fleet_host": "web-1.example",
        }
        self.assertEqual(t.tickgate_fleet_setting_errors(ok), [])
        errs = t.tickgate_fleet_setting_errors(
            dict(ok, tickgate_fleet_lease_ttl="2s", tickgate_fleet_max_skew="soon", tickgate_fleet_host="web 1\x1b[2J")
        )
        self.assertEqual(len(errs), 3, errs)
        self.assertIn("tickgate_fleet_lease_ttl: 2s is outside 6s to 3600s", errs[0])
        self.assertIn("tickgate_fleet_max_skew: 'soon' is not a time span", errs[1])
        self.assertIn("tickgate_fleet_host: 'web 1\\x1b[2J' is not a host name", errs[2])
        # Without a fleet, nothing to check.
        self.assertEqual(t.tickgate_fleet_setting_errors(dict(ok, tickgate_fleet_dsn="", tickgate_fleet_lease_ttl="2s")), [])

    def test_registration(self):
        hv = {
            "web1": {
                "tickgate_fleet_dsn": "postgresql://tg_web1:p@db/t?sslmode=verify-full",
                "tickgate_fleet_host": "web1.example",
                "__tickgate_checked": {"schedules": {"nightly": "abc"}},
                "__tickgate_validated": {"singleton_intervals": {"nightly": 86400.0}},
            },
            "web2": {"tickgate_fleet_dsn": "host=db user=tg_web2 sslmode=verify-full"},
            "local": {},
        }
        self.assertEqual(
            t.tickgate_fleet_registration(hv, ["web1", "web2", "local"]),
            {
                "hosts": {"web1.example": "tg_web1", "web2": "tg_web2"},
                "singletons": {"nightly": {"schedule": "abc", "interval": 86400.0}},
                "blackouts": [],
            },
        )

    def test_floating_singleton_is_armed_everywhere_but_says_so_everywhere(self):
        jobs = {h: [{"name": "f", "singleton": "fleet"}] for h in ("a", "b", "c")}
        self.assertEqual(t.tickgate_singleton_errors(self.registered(jobs), ["a", "b", "c"]), [])
        jobs["c"][0]["singleton"] = False
        errs = t.tickgate_singleton_errors(self.registered(jobs), ["a", "b", "c"])
        self.assertEqual(len(errs), 1)
        self.assertIn("job f: singleton: fleet on a, b but not a singleton on c", errs[0])
        jobs["c"][0]["singleton"] = True
        errs = t.tickgate_singleton_errors(self.registered(jobs), ["a", "b", "c"])
        self.assertIn("job f: singleton: fleet on a, b but singleton on c", errs[0])
        jobs["c"][0]["enabled"] = False
        self.assertEqual(t.tickgate_singleton_errors(self.registered(jobs), ["a", "b", "c"]), [])

    def test_floating_singleton_hosts_share_a_time_zone(self):
        hv = {
            "a": {"__tickgate_validated": {"timezone": "UTC", "local_time_jobs": ["f"]}},
            "b": {"__tickgate_validated": {"timezone": "Europe/Berlin", "local_time_jobs": ["f", "g"]}},
            "c": {"__tickgate_validated": {"timezone": "UTC", "local_time_jobs": []}},
            "d": {},
        }
        errs = t.tickgate_singleton_tz_errors(hv, ["a", "b", "c", "d"])
        self.assertEqual(len(errs), 1)
        self.assertIn("job f: singleton: fleet with a schedule in local time, but its hosts are in 2 time zones", errs[0])
        self.assertIn("Europe/Berlin: b; UTC: a", errs[0])
        self.assertEqual(t.tickgate_singleton_tz_errors(hv, ["a", "c"]), [])

    def test_same_job_not_marked_singleton_elsewhere_counts(self):
        hv = self.registered({"a": [{"name": "s", "singleton": True}], "b": [{"name": "s"}]})
        self.assertEqual(len(t.tickgate_singleton_errors(hv, ["a", "b"])), 1)


class Spans(unittest.TestCase):
    def test_span_seconds(self):
        for value, want in [(90, 90), ("90", 90), ("1h 30min", 5400), ("2d", 172800), ("250ms", 0.25), ("1min 30s", 90)]:
            with self.subTest(value=value):
                self.assertAlmostEqual(t.span_seconds(value), want)

    def test_tickgate_span(self):
        self.assertEqual(t.tickgate_span(30), "30s")
        self.assertEqual(t.tickgate_span(" 5min "), "5min")


if __name__ == "__main__":
    unittest.main()


class ReadmeNotifyExample(unittest.TestCase):
    """docs/observability.md's notify example, read as Ansible reads an inventory file
    (YAML 1.1: a bare on: key is the boolean true), passes preflight and
    means on: every."""

    def example(self):
        readme = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "observability.md")
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
        block = next(b for b in blocks if "on: every" in b and "tickgate_notify:" in b)
        # What Ansible templates before the role sees it: a vaulted URL, or
        # a part of one.
        block = re.sub(r'"\{\{[^}]*\}\}"', '"https://hooks.example/x"', block)
        return re.sub(r"\{\{[^}]*\}\}", "x", block)

    def test_as_ansible_loads_it(self):
        from ansible.parsing.yaml.loader import AnsibleLoader

        data = AnsibleLoader(self.example()).get_single_data()
        target = data["tickgate_jobs"][0]["notify"][0]
        self.assertIn(True, target)  # the premise: YAML 1.1 made the key a boolean
        self.assertEqual(t.tickgate_job_errors(data["tickgate_jobs"]), [])
        self.assertEqual(t.tickgate_target_errors(data["tickgate_notify"]), [])
        settings = dict(Normalize.settings, notify=data["tickgate_notify"], notify_dir="/etc/tickgate/notify")
        j = t.tickgate_normalize_jobs(data["tickgate_jobs"], Normalize.defaults, settings)[0]
        self.assertEqual(j["notify_targets"], [{"kind": "healthchecks", "url": "https://hc-ping.com/x", "on": "every"}])

    def test_quoted_and_bare_on_given_twice(self):
        errs = t.tickgate_target_errors([{"webhook": "https://h/x", "on": "every", True: "transitions"}])
        self.assertEqual(len(errs), 1)
        self.assertIn("on: given twice", errs[0])

    def test_through_the_plan_json(self):
        # The plan stores the job list as JSON: a boolean key becomes "true".
        import json

        jobs = json.loads(
            json.dumps(
                [{"name": "j", "command": ["/x"], "schedule": "hourly", "notify": [{"webhook": "https://h/x", True: "every"}]}]
            )
        )
        self.assertEqual(t.tickgate_job_errors(jobs), [])
        j = t.tickgate_normalize_jobs(jobs, Normalize.defaults, Normalize.settings)[0]
        self.assertEqual(j["notify_targets"], [{"kind": "webhook", "url": "https://h/x", "on": "every"}])


class ReplacesCron(unittest.TestCase):
    def job(self, rc):
        return [{"name": "harvest", "command": ["/opt/h"], "schedule": "daily", "replaces_cron": rc}]

    def test_a_file_and_a_match(self):
        self.assertEqual(t.tickgate_job_errors(self.job({"file": "/etc/cron.d/harvest", "match": "/opt/h"})), [])

    def test_refused(self):
        for rc, want in [
            ("/etc/cron.d/harvest", "must be {file: ABSOLUTE PATH"),
            ({"file": "cron.d/harvest", "match": "x"}, "file must be the crontab's absolute path"),
            ({"file": "/etc/crontab", "match": " "}, "match must be text of the one cron line"),
            ({"file": "/etc/crontab", "match": "x", "user": "root"}, "unknown key 'user'"),
        ]:
            errs = t.tickgate_job_errors(self.job(rc))
            self.assertEqual(len(errs), 1, errs)
            self.assertIn("job harvest: replaces_cron: " + want, errs[0])

    def test_normalized_with_where_its_state_is(self):
        j = t.tickgate_normalize_jobs(
            self.job({"file": "/etc/cron.d/harvest", "match": "/opt/h"}),
            Normalize.defaults,
            dict(Normalize.settings, state_dir="/var/lib/tg"),
        )[0]
        self.assertEqual(
            j["handover"],
            {
                "job": "harvest",
                "unit": "tickgate-harvest",
                "file": "/etc/cron.d/harvest",
                "match": "/opt/h",
                "catch_up": False,
                "state": "/var/lib/tg/harvest/state.json",
            },
        )
