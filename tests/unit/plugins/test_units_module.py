"""Unit tests for the tickgate modules (plugins/module_utils, and the
modules tickgate_units, tickgate_layout and tickgate_host), against this
machine's real systemd-analyze."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modlib import COLLECTIONS_PATH, FRAGMENTS, MODULES, m  # noqa: E402


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

    def test_iterations_as_systemd_252_and_257_name_them(self):
        real = m.run
        self.addCleanup(setattr, m, "run", real)
        for iteration in ("Iter. #", "Iteration #"):
            out = (
                "  Original form: *:*:0/10\nNormalized form: *-*-* *:*:00/10\n"
                "    Next elapse: Sun 2026-12-06 23:53:40 UTC\n       From now: 8s left\n"
                "   %s2: Sun 2026-12-06 23:53:50 UTC\n       From now: 18s left\n"
                "   %s3: Sun 2026-12-06 23:54:00 UTC\n       From now: 28s left\n" % (iteration, iteration)
            )
            m.run = lambda cmd, check=True, out=out: type("R", (), {"returncode": 0, "stdout": out, "stderr": ""})()
            times, local = m.elapses(["*:*:0/10"], 3)
            self.assertEqual([t.strftime("%H:%M:%S") for t in times], ["23:53:40", "23:53:50", "23:54:00"], iteration)
            self.assertTrue(local)  # the expression names no zone

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


class InstalledBinaries(unittest.TestCase):
    """The helper and tickgate-exec are copied only when not already installed as wanted."""

    def setUp(self):
        import tempfile

        self.dir = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, self.dir)
        self.path = os.path.join(self.dir, "tickgate-exec")
        with open(self.path, "wb") as f:
            f.write(b"shim")
        os.chmod(self.path, 0o755)
        self.sha = __import__("hashlib").sha256(b"shim").hexdigest()

    @unittest.skipUnless(os.geteuid() == 0, "root's ownership is part of the check")
    def test_current_only_with_same_content_owner_and_mode(self):
        os.chown(self.path, 0, 0)
        self.assertTrue(m.binary_current(self.path, self.sha))
        self.assertFalse(m.binary_current(self.path, __import__("hashlib").sha256(b"other").hexdigest()))
        os.chmod(self.path, 0o775)
        self.assertFalse(m.binary_current(self.path, self.sha))
        os.chmod(self.path, 0o755)
        os.chown(self.path, 1, 1)
        self.assertFalse(m.binary_current(self.path, self.sha))

    def test_missing_or_a_symlink_is_not_current(self):
        self.assertFalse(m.binary_current(os.path.join(self.dir, "missing"), self.sha))
        link = os.path.join(self.dir, "link")
        os.symlink(self.path, link)
        self.assertFalse(m.binary_current(link, self.sha))


def record_systemctl(test):
    """Record systemctl's calls in test.calls instead of running them (show
    answers every unit disabled and inactive); other commands run."""
    test.calls = []
    real_run = m.run

    def fake_run(cmd, check=True):
        if cmd[0] != "systemctl":
            return real_run(cmd, check)
        test.calls.append(cmd[1:])
        out = ""
        if cmd[1] == "show":
            out = "".join("Id=%s\nUnitFileState=disabled\nActiveState=inactive\n\n" % u for u in cmd[3:])
        return type("R", (), {"returncode": 0, "stdout": out, "stderr": ""})()

    m.run = fake_run
    test.addCleanup(setattr, m, "run", real_run)


class FakeModule:
    def __init__(self, check_mode=False):
        self.check_mode = check_mode


class UnitsFromThePlan(unittest.TestCase):
    """write, validate and host as the action plugin calls them: systemctl
    is recorded, not run (molecule runs them against a real systemd)."""

    def setUp(self):
        import hashlib
        import shutil
        import tempfile

        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        record_systemctl(self)
        self.sha = lambda c: hashlib.sha256(c.encode()).hexdigest()

    def params(self, **kw):
        p = dict(
            unit_dir=self.dir,
            prefix="tickgate-",
            units={},
            digests={},
            enabled=[],
            disabled=[],
            schedules=[],
            singletons=[],
            accounts=[],
            ignore_missing=[],
            gap_iterations=5,
        )
        p.update(kw)
        return p

    def put(self, name, content):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(content)

    def test_write_sends_only_what_changed_and_arms_with_one_reload(self):
        timer = "[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n"
        self.put("tickgate-a.service", "A\n")
        self.put("tickgate-old.timer", "old\n")
        want = {"tickgate-a.service": "A\n", "tickgate-b.timer": timer}
        p = self.params(
            units={"tickgate-b.timer": timer},
            digests={n: self.sha(c) for n, c in want.items()},
            enabled=["tickgate-b.timer"],
        )
        written, removed, armed, disarmed = m.write(FakeModule(), p)
        self.assertEqual(
            (written, removed, armed, disarmed), (["tickgate-b.timer"], ["tickgate-old.timer"], ["tickgate-b.timer"], [])
        )
        self.assertEqual(sorted(os.listdir(self.dir)), ["tickgate-a.service", "tickgate-b.timer"])
        verbs = [c[0] for c in self.calls]
        # Symlinks, then one reload for units and symlinks together, then start.
        self.assertLess(verbs.index("enable"), verbs.index("daemon-reload"))
        self.assertLess(verbs.index("daemon-reload"), verbs.index("start"))
        self.assertEqual(verbs.count("daemon-reload"), 1)
        self.assertIn("--no-reload", self.calls[verbs.index("enable")])

    def test_write_refuses_a_unit_changed_since_the_preflight(self):
        self.put("tickgate-a.service", "edited by hand\n")
        p = self.params(digests={"tickgate-a.service": self.sha("A\n")})
        with self.assertRaisesRegex(RuntimeError, "tickgate-a.service changed on the host since the preflight"):
            m.write(FakeModule(), p)

    def test_nothing_to_do_asks_systemd_nothing_but_list_units(self):
        timer = "[Timer]\nOnCalendar=daily\n\n[Install]\nWantedBy=timers.target\n"
        self.put("tickgate-b.timer", timer)
        os.makedirs(os.path.join(self.dir, "timers.target.wants"))
        os.symlink(os.path.join(self.dir, "tickgate-b.timer"), os.path.join(self.dir, "timers.target.wants", "tickgate-b.timer"))
        real = m.active_states
        m.active_states = lambda prefix: {"tickgate-b.timer": "active"}
        self.addCleanup(setattr, m, "active_states", real)
        p = self.params(digests={"tickgate-b.timer": self.sha(timer)}, enabled=["tickgate-b.timer"])
        self.assertEqual(m.write(FakeModule(), p), ([], [], [], []))
        self.assertEqual(self.calls, [])

    def test_validate_asks_for_the_content_it_lacks(self):
        self.put("tickgate-a.service", "A\n")
        want = {"tickgate-a.service": "A\n", "tickgate-b.service": "B\n"}
        p = self.params(digests={n: self.sha(c) for n, c in want.items()})
        errors, need, installed = m.validate(FakeModule(), p)
        self.assertEqual((errors, need), ([], ["tickgate-b.service"]))
        self.assertEqual(installed, {"tickgate-a.service": self.sha("A\n")})

    def test_host_files_and_accounts(self):
        import pwd

        me = pwd.getpwuid(os.getuid()).pw_name
        gate = os.path.join(self.dir, "etc", "gate.json")
        self.put("keep.json", "operator's\n")
        p = self.params(
            dirs=[{"path": os.path.join(self.dir, "etc"), "owner": me, "group": "", "mode": "0755"}],
            files=[
                {"path": gate, "content": "{}\n", "owner": me, "group": "", "mode": "0644", "force": False},
                {
                    "path": os.path.join(self.dir, "keep.json"),
                    "content": "new\n",
                    "owner": me,
                    "group": "",
                    "mode": "0644",
                    "force": False,
                },
                {"path": os.path.join(self.dir, "tmpfiles.conf"), "content": "d /x\n", "owner": me, "group": "", "mode": "0600"},
            ],
            absent=[os.path.join(self.dir, "gone")],
            groups=["no-such-group-tg"],
            users=[{"name": me, "shell": pwd.getpwnam(me).pw_shell}, {"name": "no-such-user-tg", "shell": "/usr/sbin/nologin"}],
        )
        self.put("gone", "x")
        changes, fix_groups, fix_users = m.host(FakeModule(), p)
        with open(gate) as f:
            self.assertEqual(f.read(), "{}\n")
        with open(os.path.join(self.dir, "keep.json")) as f:
            self.assertEqual(f.read(), "operator's\n")  # force: false never overwrites
        self.assertEqual(oct(os.stat(os.path.join(self.dir, "tmpfiles.conf")).st_mode & 0o777), "0o600")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "gone")))
        self.assertEqual((fix_groups, fix_users), (["no-such-group-tg"], ["no-such-user-tg"]))
        # A second run changes nothing.
        self.assertEqual(m.host(FakeModule(), p)[0], [])

    def test_notify_files_are_private_and_pruned(self):
        import pwd

        me = pwd.getpwuid(os.getuid()).pw_name
        d = os.path.join(self.dir, "notify")
        os.mkdir(d)
        self.put("notify/old.json", "{}")
        p = self.params(dir=d, owner=me, group="", secret_files={"a.json": '{"targets": []}\n'})
        changes = m.notify(FakeModule(), p)
        self.assertEqual(sorted(os.listdir(d)), ["a.json"])
        self.assertEqual(oct(os.stat(os.path.join(d, "a.json")).st_mode & 0o777), "0o600")
        self.assertIn("remove %s" % os.path.join(d, "old.json"), changes)
        self.assertEqual(m.notify(FakeModule(), p), [])


class HelperLog:
    """A temporary directory with a program in the helper's place (written by
    the test's fake_helper) that logs its arguments; systemctl is recorded."""

    def setUp(self):
        import shutil
        import tempfile

        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.log = os.path.join(self.dir, "log")
        self.helper = os.path.join(self.dir, "tickgate")
        record_systemctl(self)

    def gate_params(self, **kw):
        """site.yml's close and drain, as the host step gets them."""
        p = dict(
            close=[self.helper, "gate", "close", "--token", "deploy-1"],
            drain=[self.helper, "drain", "--json"],
            drain_stop_running=False,
            prefix="tickgate-",
        )
        p.update(kw)
        return p

    def logged(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


class CloseAndDrain(HelperLog, unittest.TestCase):
    """The host step's close and drain (site.yml's)."""

    def fake_helper(self, close_rc=0, drain_rc=0, drain_out='{"drained": true, "running": []}'):
        with open(self.helper, "w") as f:
            f.write(
                "#!/bin/sh\n"
                'echo "$*" >>%s\n'
                'case "$1" in gate) echo "cannot close: broken gate" >&2; exit %d;; '
                "drain) echo '%s'; echo 'drain timed out after 1s; still running: a (pid 7)' >&2; exit %d;; esac\n"
                % (self.log, close_rc, drain_out, drain_rc)
            )
        os.chmod(self.helper, 0o755)

    def params(self, **kw):
        return self.gate_params(**kw)

    def test_closes_then_drains_where_a_helper_is_installed(self):
        self.fake_helper()
        self.assertEqual(m.close_and_drain(FakeModule(), self.params()), (True, []))
        self.assertEqual(self.logged(), ["gate close --token deploy-1", "drain --json"])

    def test_nothing_without_a_helper_without_close_or_in_check_mode(self):
        self.assertEqual(m.close_and_drain(FakeModule(), self.params()), (False, []))  # first deploy
        self.fake_helper()
        self.assertEqual(m.close_and_drain(FakeModule(), self.params(close=[], drain=[])), (False, []))
        self.assertEqual(m.close_and_drain(FakeModule(check_mode=True), self.params()), (True, []))
        self.assertEqual(self.logged(), [])

    def test_a_failed_close_stops_before_the_drain(self):
        self.fake_helper(close_rc=2)
        with self.assertRaises(m.GateError) as e:
            m.close_and_drain(FakeModule(), self.params())
        self.assertIn("closing the gate failed (exit 2)", str(e.exception))
        self.assertIn("broken gate", e.exception.stderr)
        self.assertEqual(self.logged(), ["gate close --token deploy-1"])

    def test_jobs_running_at_the_timeout_fail_with_their_names(self):
        self.fake_helper(drain_rc=1, drain_out='{"drained": false, "running": [{"job": "a", "pid": 7}]}')
        with self.assertRaises(m.GateError) as e:
            m.close_and_drain(FakeModule(), self.params())
        self.assertIn("still running: a (pid 7)", e.exception.stderr)
        self.assertEqual(self.calls, [])

    def test_drain_stop_running_stops_their_services(self):
        running = '{"drained": false, "running": [{"job": "b", "pid": 8}, {"job": "a", "pid": 7}, {"job": "", "lock": "x"}]}'
        self.fake_helper(drain_rc=1, drain_out=running)
        got = m.close_and_drain(FakeModule(), self.params(drain_stop_running=True))
        self.assertEqual(got, (True, ["tickgate-a.service", "tickgate-b.service"]))
        self.assertEqual(self.calls, [["stop", "tickgate-a.service"], ["stop", "tickgate-b.service"]])

    def test_other_drain_failures_fail_even_with_drain_stop_running(self):
        self.fake_helper(drain_rc=70)
        with self.assertRaises(m.GateError) as e:
            m.close_and_drain(FakeModule(), self.params(drain_stop_running=True))
        self.assertIn("waiting for running jobs failed (exit 70)", str(e.exception))
        self.fake_helper(drain_rc=1, drain_out="not json")
        with self.assertRaises(m.GateError) as e:
            m.close_and_drain(FakeModule(), self.params(drain_stop_running=True))
        self.assertIn("not the JSON expected", str(e.exception))
        self.assertEqual(self.calls, [])


class HostThenWrite(HelperLog, unittest.TestCase):
    """The host step with write_if_ready: close, drain, then the write and the
    reopen in the same call only when the host needs nothing else first. The
    layout and the binaries' check are stubbed."""

    def setUp(self):
        import hashlib

        super().setUp()
        self.units = os.path.join(self.dir, "units")
        os.mkdir(self.units)
        self.open_rc = 0
        self.check_rc = 0
        self.contents = {}  # job_contents, filled by job_file
        self.sha = lambda c: hashlib.sha256(c.encode()).hexdigest()
        self.current = True
        for name, stub in (
            ("binary_current", lambda path, sha: self.current),
            ("lay_out", self.fake_lay_out),
        ):
            real = getattr(m, name)
            setattr(m, name, stub)
            self.addCleanup(setattr, m, name, real)

    def fake_lay_out(self, module, p):
        """Logs "layout" (its place among the helper's calls); changes nothing."""
        with open(self.log, "a") as f:
            f.write("layout\n")
        return [], [], []

    def fake_helper(self):
        with open(self.helper, "w") as f:
            f.write(
                "#!/bin/sh\n"
                'echo "$*" >>%s\n'
                'case "$1 $2" in "gate open") echo "cannot open: broken gate" >&2; exit %d;;\n'
                '  "fleet migrate") echo "fleet schema: a migrate is needed: version 3" >&2; exit %d;; esac\n'
                % (self.log, self.open_rc, self.check_rc)
            )
        os.chmod(self.helper, 0o755)

    def params(self, **kw):
        import pwd

        me = pwd.getpwuid(os.getuid()).pw_name
        p = self.gate_params(
            reopen=[self.helper, "gate", "open", "--token", "deploy-1"],
            write_if_ready=True,
            unit_dir=self.units,
            units={"tickgate-a.service": "A\n"},
            digests={"tickgate-a.service": self.sha("A\n")},
            enabled=[],
            disabled=[],
            dirs=[],
            files=[],
            absent=[],
            groups=[],
            users=[{"name": me, "shell": pwd.getpwnam(me).pw_shell}],
            helper=self.helper,
            helper_sha256="x",
            shim=self.helper,
            shim_sha256="x",
            tick=self.helper,
            tick_sha256="x",
            layout_dirs=[],
            layout_job_dirs=[],
            layout_dir=None,
            layout_owner=me,
            layout_group="",
            private_files=[],
            private_contents={},
            reopen_if=[],
            job_files=[],
            job_contents=self.contents,
            purge_dirs=[],
            absent_jobs=[],
        )
        p.update(kw)
        return p

    def private(self, **kw):
        """One private file (a DSN file) for the host step, owned by the test's user."""
        import pwd

        path = os.path.join(self.dir, "fleet-tick.dsn")
        f = dict(path=path, owner=pwd.getpwuid(os.getuid()).pw_name, mode="0600")
        f.update(kw)
        return f["path"], self.params(private_files=[f], private_contents={f["path"]: "postgresql://tick:s3cret@db/fleet"})

    def test_writes_the_private_files_when_every_account_exists(self):
        import stat

        self.fake_helper()
        path, p = self.private()
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(), p, res), "")
        self.assertTrue(res["private_done"] and res["wrote"])
        self.assertIn(path, res["files"])
        with open(path) as f:
            self.assertEqual(f.read(), "postgresql://tick:s3cret@db/fleet\n")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        # The same again: nothing to change.
        res = m.new_result()
        m.host_step(FakeModule(), p, res)
        self.assertTrue(res["private_done"])
        self.assertNotIn(path, res["files"])

    def test_leaves_the_private_files_to_files_yml_when_an_account_is_missing(self):
        self.fake_helper()
        path, p = self.private()
        p["users"] = [{"name": "no-such-user-tg", "shell": "/usr/sbin/nologin"}]
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(), p, res), "")
        self.assertFalse(res["private_done"] or res["wrote"])
        self.assertFalse(os.path.exists(path))

    def test_a_private_file_without_content_fails_before_the_gate_closes(self):
        self.fake_helper()
        path, p = self.private()
        p["private_contents"] = {}
        with self.assertRaises(m.LayoutError) as e:
            m.host_step(FakeModule(), p, m.new_result())
        self.assertIn(path, str(e.exception))
        self.assertEqual(self.logged(), [])

    def test_the_contents_never_reach_the_module_output(self):
        # The module run as Ansible runs it: its result (with the invocation's
        # arguments) must not hold a DSN or a job file's content, even where
        # it names the file.
        import base64
        import json
        import subprocess
        import sys

        path, p = self.private(path=os.path.join(self.dir, "no-such-dir", "fleet-tick.dsn"))
        job = base64.b64encode(b"PGPASSWORD=j0b-s3cret\n").decode()
        args = {
            "users": p["users"],
            "layout_job_dirs": [],
            "layout_dirs": [],
            "private_files": p["private_files"],
            "private_contents": p["private_contents"],
            "job_files": [{"path": "/opt/j/env", "owner": "root", "group": "root", "mode": "0600"}],
            "job_contents": {"/opt/j/env": job},
        }
        argsfile = os.path.join(self.dir, "args.json")
        with open(argsfile, "w") as f:
            json.dump({"ANSIBLE_MODULE_ARGS": args}, f)
        env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH)
        out = subprocess.run(
            [sys.executable, MODULES["tickgate_host"].__file__, argsfile], capture_output=True, text=True, check=False, env=env
        )
        res = json.loads(out.stdout)
        self.assertTrue(res.get("failed"), res)
        self.assertRegex(res["msg"], r"No such file.*no-such-dir/\.fleet-tick\.dsn")  # its directory does not exist
        self.assertNotIn("no content", res["msg"])
        self.assertNotIn("s3cret", out.stdout + out.stderr)
        self.assertIn("/opt/j/env", out.stdout)
        self.assertNotIn(job, out.stdout + out.stderr)

    def test_writes_and_reopens_after_the_drain_when_nothing_else_is_needed(self):
        self.fake_helper()
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(), self.params(), res), "")
        self.assertTrue(res["wrote"] and res["reopened"] and res["changed"])
        self.assertEqual(res["written"], ["tickgate-a.service"])
        self.assertEqual(
            self.logged(), ["gate close --token deploy-1", "drain --json", "layout", "--version", "gate open --token deploy-1"]
        )
        with open(os.path.join(self.units, "tickgate-a.service")) as f:
            self.assertEqual(f.read(), "A\n")
        self.assertEqual([c[0] for c in self.calls], ["daemon-reload"])

    def test_leaves_the_write_to_its_step_when_anything_else_comes_first(self):
        self.fake_helper()
        cases = {
            "not asked (files to copy)": dict(write_if_ready=False),
            "an account to fix": dict(users=[{"name": "no-such-user-tg", "shell": "/usr/sbin/nologin"}]),
            "no layout given": dict(layout_job_dirs=None),
            "no binaries to compare": dict(helper_sha256=None),
            "no tick-only build to compare": dict(tick_sha256=None),
        }
        for what, kw in cases.items():
            with self.subTest(what):
                res = m.new_result()
                self.assertEqual(m.host_step(FakeModule(), self.params(**kw), res), "")
                self.assertFalse(res["wrote"])
                self.assertNotIn("reopened", res)
        self.current = False  # a helper, shim or tick-only build to install first
        res = m.new_result()
        m.host_step(FakeModule(), self.params(), res)
        self.assertFalse(res["wrote"])
        self.assertNotIn("gate open --token deploy-1", self.logged())
        self.assertEqual(os.listdir(self.units), [])

    def test_check_mode_reports_the_write_and_touches_nothing(self):
        self.fake_helper()
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(check_mode=True), self.params(), res), "")
        self.assertTrue(res["wrote"])
        self.assertEqual(res["written"], ["tickgate-a.service"])
        self.assertNotIn("reopened", res)
        self.assertEqual(os.listdir(self.units), [])
        self.assertNotIn("gate close --token deploy-1", self.logged())

    def gone_jobs_dirs(self):
        """A state and a data root with the directories of jobs a (kept),
        old (its units installed, no longer wanted) and gone (absent in the
        plan); old's data dir holds a link to a directory outside."""
        roots = [os.path.join(self.dir, r) for r in ("state", "data")]
        outside = os.path.join(self.dir, "outside")
        os.makedirs(outside)
        with open(os.path.join(outside, "keep"), "w") as f:
            f.write("not a job's\n")
        for root in roots:
            for job in ("a", "old", "gone"):
                os.makedirs(os.path.join(root, job, "sub"))
        os.symlink(outside, os.path.join(roots[1], "old", "sub", "link"))
        with open(os.path.join(self.units, "tickgate-old.service"), "w") as f:
            f.write("old\n")
        return roots, outside

    def test_purge_removes_the_gone_jobs_dirs_after_the_write_never_following_a_link(self):
        self.fake_helper()
        roots, outside = self.gone_jobs_dirs()
        p = self.params(purge_dirs=roots, absent_jobs=["gone", "../state"])
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(), p, res), "")
        self.assertEqual(res["removed"], ["tickgate-old.service"])
        want = sorted(os.path.join(r, j) for r in roots for j in ("gone", "old"))
        self.assertEqual(sorted(res["purged"]), want)
        self.assertTrue(res["changed"])
        for r in roots:
            self.assertEqual(sorted(os.listdir(r)), ["a"])
        self.assertEqual(os.listdir(outside), ["keep"])  # the link was removed, not followed
        self.assertTrue(os.path.isdir(self.dir))  # "../state" is no job name

    def test_purge_in_check_mode_names_what_would_go_and_removes_nothing(self):
        self.fake_helper()
        roots, _dirs = self.gone_jobs_dirs()
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(check_mode=True), self.params(purge_dirs=roots, absent_jobs=["gone"]), res), "")
        self.assertEqual(len(res["purged"]), 4)
        for r in roots:
            self.assertEqual(sorted(os.listdir(r)), ["a", "gone", "old"])

    def test_without_purge_dirs_the_gone_jobs_dirs_stay(self):
        self.fake_helper()
        roots, _dirs = self.gone_jobs_dirs()
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(), self.params(absent_jobs=["gone"]), res), "")
        self.assertNotIn("purged", res)
        for r in roots:
            self.assertEqual(sorted(os.listdir(r)), ["a", "gone", "old"])

    def job_file(self, **kw):
        """One job file for the host step, in a directory to create."""
        import base64

        f = dict(path=os.path.join(self.dir, "opt", "jobs", "backfill.sh"), owner="root", group="root", mode="0750")
        f.update(kw)
        self.contents[f["path"]] = base64.b64encode(b"#!/bin/sh\n\x00\xff binary too\n").decode()
        return f

    def test_writes_the_jobs_files_and_their_directory_then_the_units(self):
        import stat

        self.fake_helper()
        f = self.job_file()
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(), self.params(job_files=[f]), res), "")
        self.assertTrue(res["job_files_done"] and res["wrote"])
        with open(f["path"], "rb") as fh:
            self.assertEqual(fh.read(), b"#!/bin/sh\n\x00\xff binary too\n")
        self.assertEqual(stat.S_IMODE(os.stat(f["path"]).st_mode), 0o750)
        d = os.stat(os.path.dirname(f["path"]))
        self.assertEqual((d.st_uid, stat.S_IMODE(d.st_mode)), (0, 0o755))
        self.assertIn(f["path"], res["files"])
        res = m.new_result()  # the same again: nothing to change
        m.host_step(FakeModule(), self.params(job_files=[f]), res)
        self.assertTrue(res["job_files_done"])
        self.assertNotIn(f["path"], res["files"])

    def test_leaves_a_job_file_behind_a_link_to_the_copy_tasks_and_the_write_step(self):
        self.fake_helper()
        target = os.path.join(self.dir, "elsewhere")
        os.mkdir(target)
        for what, f in {
            "dest a link": self.job_file(path=os.path.join(self.dir, "link.sh")),
            "its directory a link": self.job_file(path=os.path.join(self.dir, "linkdir", "job.sh")),
            "dest a directory": self.job_file(path=target),
        }.items():
            with self.subTest(what):
                if not os.path.lexists(os.path.join(self.dir, "link.sh")):
                    os.symlink(os.path.join(target, "job.sh"), os.path.join(self.dir, "link.sh"))
                    os.symlink(target, os.path.join(self.dir, "linkdir"))
                res = m.new_result()
                self.assertEqual(m.host_step(FakeModule(), self.params(job_files=[self.job_file(), f]), res), "")
                self.assertFalse(res["job_files_done"] or res["wrote"])
                self.assertEqual(os.listdir(target), [])
                self.assertFalse(os.path.exists(self.job_file()["path"]))  # not the other one either

    def test_reopen_if_decides_whether_the_gate_reopens(self):
        check = [self.helper, "fleet", "migrate", "--check"]
        self.fake_helper()
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(), self.params(reopen_if=check), res), "")
        self.assertTrue(res["reopened"])
        self.assertNotIn("reopen_deferred", res)
        self.assertEqual(self.logged()[-2:], ["fleet migrate --check", "gate open --token deploy-1"])
        # A migrate is needed (or the check cannot tell): the units are
        # written, the gate stays closed, and the task does not fail.
        os.remove(self.log)
        self.check_rc = 1
        self.fake_helper()
        res = m.new_result()
        self.assertEqual(m.host_step(FakeModule(), self.params(reopen_if=check), res), "")
        self.assertTrue(res["wrote"])
        self.assertNotIn("reopened", res)
        self.assertIn("(exit 1): fleet schema: a migrate is needed: version 3", res["reopen_deferred"])
        self.assertEqual(self.logged()[-1], "fleet migrate --check")

    def test_a_failed_reopen_fails_saying_the_gate_may_be_closed(self):
        self.open_rc = 3
        self.fake_helper()
        res = m.new_result()
        failed = m.host_step(FakeModule(), self.params(), res)
        self.assertIn("the units are written, but reopening the gate failed", failed)
        self.assertIn("exit 3): cannot open: broken gate", failed)
        self.assertTrue(res["installed"])
        self.assertEqual(res["written"], ["tickgate-a.service"])


class Documentation(unittest.TestCase):
    def test_parses_and_documents_every_option(self):
        # ansible-doc reads DOCUMENTATION as YAML; a ': ' in a plain scalar
        # once made it unreadable. Every option the module takes is documented.
        import inspect
        import re

        import yaml

        class Strict(yaml.SafeLoader):
            """A key given twice is an error (safe_load keeps the last one:
            an option inserted inside another's block once went unnoticed)."""

        def mapping(loader, node, deep=False):
            keys = [loader.construct_object(k) for k, _v in node.value]
            dup = sorted({k for k in keys if keys.count(k) > 1})
            self.assertEqual(dup, [], "a key given twice in DOCUMENTATION or RETURN")
            return yaml.SafeLoader.construct_mapping(loader, node, deep)

        Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
        for name, mod in MODULES.items():
            with self.subTest(name):
                doc = yaml.load(mod.DOCUMENTATION, Loader=Strict)
                yaml.load(mod.RETURN, Loader=Strict)
                yaml.load(mod.EXAMPLES, Loader=Strict)
                self.assertEqual(doc["module"], name)
                # The shared options, as ansible-doc merges them.
                for ref in doc.get("extends_documentation_fragment", []):
                    attr = ref.split(".")[3].upper() if ref.count(".") == 3 else "DOCUMENTATION"
                    shared = yaml.load(getattr(FRAGMENTS.ModuleDocFragment, attr), Loader=Strict)["options"]
                    self.assertFalse(set(shared) & set(doc["options"]), "%s documents a fragment's option again" % name)
                    doc["options"].update(shared)
                src = inspect.getsource(mod.main)
                spec = src[src.index("argument_spec=dict(") : src.index("supports_check_mode")]
                self.assertEqual(sorted(set(re.findall(r"^\s+(\w+)=dict\(", spec, re.M))), sorted(doc["options"]))


if __name__ == "__main__":
    unittest.main()


class JobFileArgs(unittest.TestCase):
    """The action plugin's choice: the jobs' files in the host step's
    arguments, or (None) the role's copy tasks."""

    def setUp(self):
        import shutil
        import tempfile

        import importlib.util

        # The action plugin has the module's name: load it under another.
        path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "plugin_utils", "tickgate_action.py")
        spec = importlib.util.spec_from_file_location("tickgate_action", path)
        self.action = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.action)
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.src = os.path.join(self.dir, "job.sh")
        with open(self.src, "wb") as f:
            f.write(b"#!/bin/sh\necho hi\n")

    def args(self, *files):
        return self.action.job_file_args(list(files), lambda src: os.path.join(self.dir, src))

    def test_small_regular_files_travel_with_owner_group_and_mode(self):
        import base64

        out, contents = self.args(
            {"src": "job.sh", "dest": "/opt/j/job.sh"}, {"src": "job.sh", "dest": "/opt/j/b", "mode": "0640", "owner": "tgtest"}
        )
        self.assertEqual(base64.b64decode(contents["/opt/j/job.sh"]), b"#!/bin/sh\necho hi\n")
        self.assertEqual(sorted(contents), ["/opt/j/b", "/opt/j/job.sh"])
        self.assertNotIn("content_b64", out[0])
        self.assertEqual(
            [(f["path"], f["owner"], f["group"], f["mode"]) for f in out],
            [("/opt/j/job.sh", "root", "root", "0755"), ("/opt/j/b", "tgtest", "root", "0640")],
        )

    def test_anything_else_is_left_to_the_copy_tasks(self):
        big = os.path.join(self.dir, "big")
        with open(big, "wb") as f:
            f.write(b"x" * (self.action.JOB_FILES_MAX + 1))
        for what, f in {
            "a directory as src": {"src": ".", "dest": "/opt/j/"},
            "over the size bound": {"src": "big", "dest": "/opt/j/big"},
            "a symbolic mode": {"src": "job.sh", "dest": "/opt/j/job.sh", "mode": "u=rwx"},
            "a YAML int mode (0755 unquoted is 493)": {"src": "job.sh", "dest": "/opt/j/job.sh", "mode": 493},
            "no dest": {"src": "job.sh"},
        }.items():
            with self.subTest(what):
                self.assertIsNone(self.args({"src": "job.sh", "dest": "/opt/j/a"}, f))


class DebBinaries(unittest.TestCase):
    """tickgate_package: the binaries' digests from the .deb (an ar archive
    with a gzipped data.tar), read once per run for every host."""

    def setUp(self):
        import importlib.util
        import shutil
        import tempfile

        path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "plugin_utils", "tickgate_action.py")
        spec = importlib.util.spec_from_file_location("tickgate_action", path)
        self.action = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.action)
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def deb(self, files, data_name="data.tar.gz"):
        import io
        import tarfile

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, content in files.items():
                info = tarfile.TarInfo("./" + name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        members = [("debian-binary", b"2.0\n"), ("control.tar.gz", b"x"), (data_name, buf.getvalue())]
        out = b"!<arch>\n"
        for name, data in members:
            out += ("%-16s%-12s%-6s%-6s%-8s%-10d`\n" % (name, "0", "0", "0", "100644", len(data))).encode()
            out += data + (b"\n" if len(data) % 2 else b"")
        path = os.path.join(self.dir, "t.deb")
        with open(path, "wb") as f:
            f.write(out)
        return path

    def test_the_binaries_under_usr_bin_by_name(self):
        import hashlib

        path = self.deb({"usr/bin/tickgate": b"full", "usr/bin/tickgate-tick": b"tick", "usr/share/man/man1/x.1.gz": b"m"})
        want = {"tickgate": hashlib.sha256(b"full").hexdigest(), "tickgate-tick": hashlib.sha256(b"tick").hexdigest()}
        self.assertEqual(self.action.deb_binaries(path), want)

    def test_read_once_per_run_and_again_when_the_file_changes(self):
        cache = os.path.join(self.dir, "cache")
        path = self.deb({"usr/bin/tickgate": b"one"})
        first = self.action.deb_binaries_cached(path, cache)
        real = self.action.deb_binaries
        self.action.deb_binaries = lambda p: self.fail("read again")
        self.assertEqual(self.action.deb_binaries_cached(path, cache), first)
        self.action.deb_binaries = real
        os.utime(path, ns=(1, 1))  # another build of the package
        path = self.deb({"usr/bin/tickgate": b"two, longer"})
        self.assertNotEqual(self.action.deb_binaries_cached(path, cache), first)

    def test_not_a_package(self):
        path = os.path.join(self.dir, "x.deb")
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04")
        with self.assertRaisesRegex(ValueError, "not a Debian package"):
            self.action.deb_binaries(path)
        with self.assertRaisesRegex(ValueError, "data.tar.zst: compression not readable here"):
            self.action.deb_binaries(self.deb({"usr/bin/tickgate": b"x"}, data_name="data.tar.zst"))
