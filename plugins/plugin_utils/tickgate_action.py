# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""Controller side of the tickgate_units, tickgate_layout and tickgate_host
modules (their action plugins are this class, each naming its module).

With plan (the file tickgate_plan wrote), the units, schedules, accounts and
job directories come from the plan instead of task arguments, so a 1000-job
list never passes through Ansible's argument templating. Unit contents cross
the SSH connection only when they differ from what the host has: the module
is asked for the digests of the installed units first (one small round
trip), then given only the new or changed units.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

# The module that answers digest (the installed units' sha256).
UNITS_MODULE = "tickgate.tickgate.tickgate_units"


def digest(content):
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def load_plan(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise AnsibleActionFail(
            "tickgate: the plan %s is not readable (%s): the role's preflight (tasks_from: preflight) must run "
            "in the same ansible-playbook run before its other tasks" % (path, e)
        )


def deb_binaries(path):
    """The sha256 of each file under usr/bin/ in the .deb at path (an ar
    archive whose data.tar is gzip- or xz-compressed, as make dist builds
    it), by program name. (tarfile is imported here: only a deploy with
    tickgate_package pays for it.)"""
    import io  # pylint: disable=import-outside-toplevel
    import tarfile  # pylint: disable=import-outside-toplevel

    sums = {}
    with open(path, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise ValueError("not a Debian package (no ar header)")
        while True:
            head = f.read(60)
            if len(head) < 60:
                raise ValueError("no data.tar member")
            name, size = head[:16].decode("ascii", "replace").strip().rstrip("/"), int(head[48:58])
            if not name.startswith("data.tar"):
                f.seek(size + (size & 1), os.SEEK_CUR)
                continue
            if name not in ("data.tar.gz", "data.tar.xz", "data.tar"):
                raise ValueError("%s: compression not readable here (make dist writes data.tar.gz)" % name)
            try:
                with tarfile.open(fileobj=io.BytesIO(f.read(size)), mode="r:*") as tar:
                    for m in tar:
                        n = m.name[2:] if m.name.startswith("./") else m.name
                        if m.isfile() and n.startswith("usr/bin/"):
                            sums[n[len("usr/bin/") :]] = hashlib.sha256(tar.extractfile(m).read()).hexdigest()
            except tarfile.TarError as e:
                raise ValueError("%s: %s" % (name, e)) from e
            return sums


def deb_binaries_cached(path, cache_dir):
    """deb_binaries(path), read once per run for all hosts: every host's
    host step asks, each in its own worker, and unpacking the .deb's
    data.tar costs ~0.2 s. Kept in cache_dir (the run's private temp dir)
    by the file's path, size and mtime; written by rename."""
    st = os.stat(path)
    key = hashlib.sha256(("%s\0%d\0%d" % (os.path.abspath(path), st.st_size, st.st_mtime_ns)).encode()).hexdigest()
    cached = os.path.join(cache_dir, key + ".json")
    try:
        with open(cached, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        pass
    sums = deb_binaries(path)
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    tmp = "%s.%d.tmp" % (cached, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(sums, f)
    os.replace(tmp, cached)
    return sums


def save_installed(plan_path, digests):
    """The digests of the units the host had at the preflight, beside the plan."""
    with open(plan_path + ".installed", "w") as f:
        json.dump(digests, f)


def load_installed(plan_path):
    try:
        with open(plan_path + ".installed") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def notify_files(jobs):
    """Each job's notification targets file name and content."""
    return {
        "%s.json" % j["name"]: json.dumps({"targets": j["notify_targets"]}, indent=4, sort_keys=True) + "\n"
        for j in jobs
        if j.get("notify_targets")
    }


def env_files(jobs):
    """Each job's environment file name and content (the variables its
    command gets, and tickgate never does)."""
    return {"%s.json" % j["name"]: json.dumps(j["env_vars"], indent=4, sort_keys=True) + "\n" for j in jobs if j.get("env_vars")}


def layout_args(lay, jobs):
    """The module's layout parameters from the task's (supervisor, group,
    dirs, and dir and owner for the notification targets): each job's state
    and data dir, and the targets files."""
    sup, grp = lay["supervisor"], lay["group"]
    out = {
        "dirs": lay.get("dirs") or [],
        "job_dirs": [
            {
                "job": j["name"],
                "state_dir": j["state_path"],
                "data_dir": j["data_path"],
                "supervisor": sup,
                "group": grp,
                "user": j.get("user") or "root",
                "user_group": j.get("group") or "",
            }
            for j in jobs
        ],
    }
    if lay.get("dir"):
        # The targets, in the same round trip; URLs may hold secrets, so they
        # go in a no_log option of the module.
        out.update(dir=lay["dir"], owner=lay.get("owner"), group=grp, secret_files=notify_files(jobs))
    if lay.get("env_dir"):
        # The jobs' environments too; a value may be a credential: no_log.
        out.update(env_dir=lay["env_dir"], env_files=env_files(jobs))
    return out


# The jobs' files travel in the host step's arguments only up to this much
# in all; beyond it (or for a directory as src, or a mode that is not
# octal) the role's copy tasks copy them, as before.
JOB_FILES_MAX = 1 << 20


def job_file_args(files, find):
    """The host step's job_files and job_contents (path to content, base64)
    from tickgate_job_files (src found on the controller by find, as
    ansible.builtin.copy finds it), or None when the copy tasks must do it."""
    out, contents, total = [], {}, 0
    for f in files:
        if not f.get("src") or not f.get("dest"):
            return None  # the copy task says what is missing
        path = find(f["src"])
        mode = str(f.get("mode") or "0755")
        if not os.path.isfile(path) or not re.fullmatch(r"0?[0-7]{3}", mode):
            return None
        total += os.path.getsize(path)
        if total > JOB_FILES_MAX:
            return None
        with open(path, "rb") as fh:
            contents[f["dest"]] = base64.b64encode(fh.read()).decode("ascii")
        out.append(
            {
                "path": f["dest"],
                "owner": f.get("owner") or "root",
                "group": f.get("group") or "root",
                "mode": mode,
            }
        )
    return out, contents


def present(plan):
    return [j for j in plan["jobs"] if j["state"] == "present"]


def absent_jobs(plan):
    """Which jobs the plan marks absent, for tickgate_purge."""
    return [j["name"] for j in plan["jobs"] if j["state"] == "absent"]


def handovers(jobs):
    """The present jobs that replace a cron entry, for the module."""
    return [dict(j["handover"], enabled=j.get("enabled", True)) for j in jobs if j.get("handover")]


class PlanAction(ActionBase):
    """An action plugin for MODULE. ACTION is what it does (None: the task's
    action argument says, as tickgate_units takes it)."""

    TRANSFERS_FILES = False
    MODULE = UNITS_MODULE
    ACTION = None

    def _module(self, args, task_vars):
        if self.ACTION:
            args = {k: v for k, v in args.items() if k != "action"}
        return self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars)

    def _installed(self, task_vars, base):
        """The digests of the units installed on the host (its module result on failure)."""
        res = self._execute_module(module_name=UNITS_MODULE, module_args=dict(base, action="digest"), task_vars=task_vars)
        if res.get("failed"):
            return None, res
        return res.get("digests", {}), res

    def _write_args(self, args, path, plan, jobs, task_vars, base):
        """write's arguments from the plan (None, and the module's failed
        result, when the installed units cannot be read)."""
        # As the preflight saw the host (else asked now): the module checks
        # that every unit not sent is still installed with its digest.
        installed = load_installed(path)
        if installed is None:
            installed, res = self._installed(task_vars, base)
            if installed is None:
                return None, res
        wanted = {n: digest(c) for n, c in plan["units"].items()}
        args["units"] = {n: plan["units"][n] for n, d in wanted.items() if installed.get(n) != d}
        args["digests"] = wanted
        if args.pop("arm", False):
            args["enabled"] = [j["unit"] + ".timer" for j in jobs if j.get("enabled", True)]
            for own in ("tickgate-catch-up.timer", "tickgate-fleet-starts.timer"):
                if own in plan["units"]:
                    args["enabled"].append(own)
            args["disabled"] = [j["unit"] + ".timer" for j in jobs if not j.get("enabled", True)]
        # The cron entries the jobs take over (replaces_cron), and so also
        # which lines handed over before go back.
        args["handover"] = handovers(jobs)
        if args.get("purge_dirs"):
            # tickgate_purge: the module purges these and the jobs whose
            # units it removes, after the write.
            args["absent_jobs"] = absent_jobs(plan)
        return args, None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        path = args.pop("plan", None)
        if not path:
            # No plan: a plain module call (the arguments are the module's).
            result.update(self._module(args, task_vars))
            return result
        plan = load_plan(path)
        action = self.ACTION or args.get("action")
        base = {k: v for k, v in args.items() if k in ("unit_dir", "prefix")}
        jobs = present(plan)

        if action == "validate":
            wanted = {n: digest(c) for n, c in plan["units"].items()}
            users = set(args.pop("known_accounts", None) or [])
            args["digests"] = wanted
            args["units"] = {}
            # Only schedules of changed units are checked (the module picks
            # them by unit); floating singletons and accounts always are.
            args["schedules"] = [{"job": j["name"], "unit": j["unit"], "calendar": s} for j in jobs for s in j["schedule"]] + [
                {"job": j["name"], "unit": j["unit"], "calendar": w["calendar"], "field": "blackout %s: calendar" % w["name"]}
                for j in jobs
                for w in j.get("blackout_windows") or []
            ]
            args["singletons"] = [
                {"job": j["name"], "calendars": j["schedule"], "min_gap": j["singleton_min_gap"]}
                for j in jobs
                if "singleton_min_gap" in j
            ]
            args["handover"] = handovers(jobs)
            args["accounts"] = [
                {"job": j["name"], "field": f, "name": j[f]}
                for j in jobs
                for f in ("user", "group")
                if j.get(f) and j[f] not in users
            ]
            res = self._module(args, task_vars)
            if res.get("need") and not res.get("failed"):
                # The host lacks these units: send their content and check them.
                args["units"] = {n: plan["units"][n] for n in res["need"]}
                res = self._module(args, task_vars)
            if not res.get("failed"):
                save_installed(path, res.get("digests", {}))
            res["units_checked"] = len(args["units"])
            res.pop("digests", None)
            result.update(res)
            return result

        if action == "layout":
            if not args.get("layout"):
                raise AnsibleActionFail("tickgate_units: action layout needs layout (supervisor, group, dirs, dir, owner)")
            args.update(layout_args(args.pop("layout"), jobs))
            result.update(self._module(args, task_vars))
            return result

        if action == "write":
            args, failed = self._write_args(args, path, plan, jobs, task_vars, base)
            if failed:
                result.update(failed)
                return result
            result.update(self._module(args, task_vars))
            return result

        if action == "host":
            args["files"] = plan.get("files", []) + list(args.get("files") or [])
            package = args.pop("package", "") or ""
            if package:
                # The binaries come from the .deb: compare the installed ones
                # with its (a URL's are unknown: the package step runs).
                for name in ("helper", "shim", "tick"):
                    args.pop(name + "_src", None)
                if not re.match(r"https?://", package):
                    try:
                        sums = deb_binaries_cached(package, os.path.join(C.DEFAULT_LOCAL_TMP, "tickgate-debs"))
                    except (OSError, ValueError) as e:
                        raise AnsibleActionFail("tickgate: tickgate_package %s: %s" % (package, e))
                    for name, prog in (("helper", "tickgate"), ("shim", "tickgate-exec"), ("tick", "tickgate-tick")):
                        if prog not in sums:
                            raise AnsibleActionFail("tickgate: tickgate_package %s: no usr/bin/%s in it" % (package, prog))
                        args[name + "_sha256"] = sums[prog]
            for name, what in (
                ("helper", "the helper"),
                ("shim", "the helper's start-up shim"),
                ("tick", "the helper's tick-only build"),
            ):
                src = args.pop(name + "_src", None)
                if src:
                    # The module compares this with the installed file: the
                    # copy task (two round trips even when nothing changes)
                    # runs only when they differ.
                    try:
                        with open(src, "rb") as f:
                            args[name + "_sha256"] = hashlib.sha256(f.read()).hexdigest()
                    except OSError as e:
                        raise AnsibleActionFail("tickgate: %s to install, %s: %s" % (what, src, e))
            lay = args.pop("layout", None)
            if lay:
                # The layout in the same round trip: the module does it when
                # every account already exists (configure.yml's step then skips).
                la = layout_args(lay, jobs)
                args["secret_files"] = la.pop("secret_files", {})
                args["env_files"] = la.pop("env_files", {})
                args.update({"layout_" + k: v for k, v in la.items()})
            job_files = args.pop("job_files", None) or []
            left = False  # the jobs' files left to the copy tasks
            if job_files:
                # The jobs' files in this round trip when they are small
                # regular files; else the copy tasks, and the write step.
                try:
                    carried = job_file_args(job_files, lambda src: self._find_needle("files", src))
                except (AnsibleError, OSError) as e:
                    raise AnsibleActionFail("tickgate: tickgate_job_files: %s" % e)
                if carried is None:
                    left = True
                    args["write_if_ready"] = False
                else:
                    args["job_files"], args["job_contents"] = carried
            then_write = boolean(args.get("write_if_ready", False), strict=False)
            if then_write:
                # The write too, if the host turns out ready for it: its
                # arguments as the write step's (which arms).
                args, failed = self._write_args(dict(args, arm=True), path, plan, jobs, task_vars, base)
                if failed:
                    result.update(failed)
                    return result
            res = self._module(args, task_vars)
            if left:
                # The module saw no job files: files.yml must copy them.
                res["job_files_done"] = False
            result.update(res)
            return result

        raise AnsibleActionFail("%s: action %r does not take a plan" % (self.MODULE, action))
