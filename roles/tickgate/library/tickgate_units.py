#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Batched systemd unit management for the tickgate role (one SSH round trip
per host instead of one per unit: see README "Benchmarks")."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tickgate_units
short_description: Validate, write, prune and arm tickgate's systemd units in one call
description:
  - C(validate) renders nothing itself; it writes the given units that are
    new or changed (not installed in I(unit_dir) with this content) into a
    temporary directory under their real names, runs C(systemd-analyze verify)
    on them (batches side by side), checks every schedule with C(systemd-analyze calendar) and that
    job users and groups exist. It never changes the system.
  - C(layout) creates or fixes tickgate's directories (I(dirs)) and each
    job's state and data directory (I(job_dirs)), never following a link. A
    job state directory from before the trust boundary (owned by the job's
    user) is taken back first, then its files are sorted: tickgate's own
    regular files stay, everything else (the job's cursor, checkpoints) moves
    to the job's data directory. When anything changes, active tickgate
    timers are stopped first (C(arm) starts them again).
  - C(write) writes changed units atomically, stops, disables and removes
    C(tickgate-*) units that are not given (prune), and runs one
    C(systemctl daemon-reload) when anything changed.
  - C(arm) enables and starts the timers in I(enabled) and stops and disables
    those in I(disabled); it never starts a job's service.
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [validate, layout, write, arm]
  units:
    description: Unit file name to content.
    type: dict
    default: {}
  unit_dir:
    description: Where units live.
    type: path
    default: /etc/systemd/system
  prefix:
    description: Units whose name starts with this are tickgate's (pruned when not given).
    type: str
    default: tickgate-
  schedules:
    description: For validate, dicts with job and calendar.
    type: list
    elements: dict
    default: []
  singletons:
    description:
      - For validate, the floating singletons (C(singleton=fleet)), dicts with
        job, calendars (its OnCalendar= expressions) and min_gap (seconds).
        Over the next I(gap_iterations) elapses, two consecutive ones must be
        more than min_gap apart (twice the timer's random delay and accuracy),
        so that every host's tick of a slot starts before the next one. The
        result's C(timezone) and C(local_time_jobs) let the play check that
        the hosts of a job read its local-time schedule in one time zone.
    type: list
    elements: dict
    default: []
  gap_iterations:
    description: For validate, how many elapses of each floating singleton's schedule are checked.
    type: int
    default: 50
  accounts:
    description: For validate, dicts with job, field (user or group) and name.
    type: list
    elements: dict
    default: []
  ignore_missing:
    description: For validate, executables that may not exist yet (installed later).
    type: list
    elements: str
    default: []
  dirs:
    description: For layout, dicts with path, owner, group, mode (tickgate's root directories).
    type: list
    elements: dict
    default: []
  job_dirs:
    description: For layout, dicts with job, state_dir, data_dir, supervisor, group, user, user_group.
    type: list
    elements: dict
    default: []
  enabled:
    description: For arm, timer units to enable and start.
    type: list
    elements: str
    default: []
  disabled:
    description: For arm, timer units to stop and disable.
    type: list
    elements: str
    default: []
author: tickgate
"""

RETURN = r"""
errors: {description: validate problems, each naming the job and field, type: list, returned: always}
written: {description: unit files written (or that would be), type: list, returned: always}
layout: {description: directories created, fixed or migrated (or that would be), type: list, returned: always}
moved: {description: job files moved from a state directory to the job's data directory, type: list, returned: always}
removed: {description: unit files pruned (or that would be), type: list, returned: always}
armed: {description: timers enabled/started, type: list, returned: always}
disarmed: {description: timers stopped/disabled, type: list, returned: always}
timezone: {description: the host's time zone (/etc/localtime), type: str, returned: validate}
local_time_jobs: {description: floating singletons whose schedule is read in the host's local time, type: list, returned: validate}
"""

import concurrent.futures
import datetime
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule

UNIT_RE = re.compile(r"^[A-Za-z0-9:_.@-]+\.(service|timer)$")


def run(cmd, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), p.returncode, (p.stderr or p.stdout).strip()))
    return p


def job_of(unit, prefix):
    return re.sub(r"\.(service|timer)$", "", unit)[len(prefix) :]


def installed_as(unit_dir, name, content):
    """Whether unit_dir already holds this unit with exactly this content."""
    try:
        with open(os.path.join(unit_dir, name)) as f:
            return f.read() == content
    except OSError:
        return False


def validate(module, p):
    errors = []
    tmp = tempfile.mkdtemp(prefix="tickgate-verify-")
    try:
        names = []
        for name, content in sorted(p["units"].items()):
            if not UNIT_RE.match(name):
                errors.append("unit %s: invalid unit file name" % name)
                continue
            # A unit installed with this very content was verified when it
            # was written: only new and changed units are verified again, so
            # a deploy that changes nothing costs no systemd-analyze verify.
            if installed_as(p["unit_dir"], name, content):
                continue
            with open(os.path.join(tmp, name), "w") as f:
                f.write(content)
            names.append(name)
        # Verify in batches of 100 units, as many at once as there are CPUs,
        # then map each complaint back to its job.
        batches = [names[i : i + 100] for i in range(0, len(names), 100)]

        def verify(batch):
            return run(["systemd-analyze", "verify", "--man=no"] + [os.path.join(tmp, n) for n in batch], check=False)

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            results = list(pool.map(verify, batches))
        for batch, r in zip(batches, results):
            every = [l for l in (r.stderr + r.stdout).splitlines() if l.strip()]
            lines = [
                l
                for l in every
                if not any(
                    ("Command %s is not executable" % m) in l or ("%s: No such file" % m) in l for m in p["ignore_missing"]
                )
            ]
            for line in lines:
                where = next((n for n in batch if n in line), None)
                label = ("job %s: unit %s" % (job_of(where, p["prefix"]), where)) if where else "systemd-analyze verify"
                errors.append("%s: %s" % (label, line.replace(tmp + "/", "")))
            if r.returncode != 0 and len(every) == len(lines) and not lines:
                # Failed without saying why (an ignored complaint explains a non-zero exit).
                errors.append("systemd-analyze verify exited %d" % r.returncode)
        errors += check_calendars(p["schedules"])
        for sg in p["singletons"]:
            errors += check_singleton(sg, p["gap_iterations"])
        for a in p["accounts"]:
            try:
                (pwd.getpwnam if a["field"] == "user" else grp.getgrnam)(a["name"])
            except KeyError:
                errors.append("job %s: %s: %s %r does not exist on this host" % (a["job"], a["field"], a["field"], a["name"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return errors


CALENDAR_ERROR_RE = re.compile(r"^Failed to parse calendar specification '(.*)': (.*)$")


def check_calendars(schedules):
    """Every schedule's expression must be one systemd accepts. One
    systemd-analyze call checks them all (it goes on past a bad one and names
    it on stderr); only if it fails without naming why is each asked alone."""
    specs = sorted({s["calendar"] for s in schedules})
    if not specs:
        return []
    r = run(["systemd-analyze", "calendar", "--"] + specs, check=False)
    bad = {}
    if r.returncode != 0:
        for line in r.stderr.splitlines():
            m = CALENDAR_ERROR_RE.match(line.strip())
            if m:
                bad[m.group(1)] = m.group(2)
        if not bad:
            for spec in specs:
                one = run(["systemd-analyze", "calendar", "--", spec], check=False)
                if one.returncode != 0:
                    msg = (one.stderr or one.stdout).strip().splitlines()
                    bad[spec] = msg[-1] if msg else "rejected"
    return [
        "job %s: schedule: %r is not a valid OnCalendar expression (%s)" % (s["job"], s["calendar"], bad[s["calendar"]])
        for s in schedules
        if s["calendar"] in bad
    ]


def elapses(calendars, iterations):
    """The next elapses (UTC datetimes, sorted) of the expressions, and
    whether any is read in local time (names no time zone)."""
    r = run(["systemd-analyze", "calendar", "--iterations=%d" % iterations, "--"] + list(calendars), check=False)
    if r.returncode != 0:
        return None, False
    times, local = [], False
    for line in r.stdout.splitlines():
        key, sep, val = line.strip().partition(": ")
        if not sep:
            continue
        val = val.strip()
        if key == "Normalized form":
            # "*-*-* 03:00:00 UTC": a zone is a last word that is not a time.
            local = local or ":" in val.split()[-1]
        elif key == "Next elapse" or key.startswith("Iter. #"):
            if val != "never":
                times.append(val)
        elif key == "(in UTC)" and times:
            times[-1] = val
    out = []
    for v in times:
        if v.endswith(" UTC"):
            out.append(datetime.datetime.strptime(v[: -len(" UTC")], "%a %Y-%m-%d %H:%M:%S"))
    return sorted(set(out)), local


def check_singleton(sg, iterations):
    """A floating singleton's schedule must leave room for its random delay."""
    times, _ = elapses(sg["calendars"], iterations)
    if times is None:
        return []  # the schedule check reports the bad expression
    if not times:
        return ["job %s: schedule: never elapses again; a floating singleton needs future slots" % sg["job"]]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    if gaps and min(gaps) <= sg["min_gap"]:
        i = gaps.index(min(gaps))
        return [
            "job %s: singleton: fleet needs every interval of its schedule longer than twice "
            "randomized_delay + accuracy (%gs), but %s and %s UTC are %gs apart: every host's tick of a slot "
            "must start before the next slot" % (sg["job"], sg["min_gap"], times[i], times[i + 1], gaps[i])
        ]
    return []


def host_timezone():
    """The zone systemd's timers read local times in (/etc/localtime)."""
    try:
        target = os.path.realpath("/etc/localtime")
    except OSError:
        return "UTC"
    if "/zoneinfo/" in target:
        return target.split("/zoneinfo/", 1)[1]
    return "UTC" if not os.path.exists("/etc/localtime") else target


def current_units(unit_dir, prefix):
    try:
        return sorted(n for n in os.listdir(unit_dir) if n.startswith(prefix) and UNIT_RE.match(n))
    except FileNotFoundError:
        return []


def write_atomic(path, content):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(module, p):
    unit_dir, prefix, check = p["unit_dir"], p["prefix"], module.check_mode
    written, removed = [], []
    for name, content in sorted(p["units"].items()):
        path = os.path.join(unit_dir, name)
        try:
            with open(path) as f:
                same = f.read() == content
        except FileNotFoundError:
            same = False
        if not same:
            written.append(name)
            if not check:
                write_atomic(path, content)
    stale = [n for n in current_units(unit_dir, prefix) if n not in p["units"]]
    if stale:
        timers = [n for n in stale if n.endswith(".timer")]
        removed = stale
        if not check:
            if timers:
                run(["systemctl", "disable", "--now", "--no-block"] + timers, check=False)
            for n in stale:
                os.unlink(os.path.join(unit_dir, n))
    if (written or removed) and not check:
        run(["systemctl", "daemon-reload"])
        run(["systemctl", "reset-failed"] + [n for n in removed if n.endswith(".service")], check=False)
    return written, removed


# tickgate's own files in a job's state directory (everything else there
# before the trust boundary was the job's).
TICKGATE_FILES = {"state.json", "state.json.corrupt", "done", "halted"}


def _ids(owner, group):
    uid = pwd.getpwnam(owner).pw_uid
    gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(owner).pw_gid
    return uid, gid


def _ensure_dir(path, uid, gid, mode, check, changes):
    """Create path (one level) or fix its owner and mode, never through a link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        changes.append("create %s" % path)
        if not check:
            os.mkdir(path, mode)
            os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, mode)
        return
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise LayoutError(
            "%s is not a directory (it is %s): tickgate will not use or follow it; move it away"
            % (path, "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory")
        )
    if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != (uid, gid, mode):
        changes.append(
            "fix %s (uid %d gid %d mode %04o -> uid %d gid %d mode %04o)"
            % (path, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), uid, gid, mode)
        )
        if not check:
            os.chown(path, uid, gid, follow_symlinks=False)
            os.chmod(path, mode)


class LayoutError(Exception):
    pass


def _migrate(job, state_dir, data_dir, uid, gid, check, changes, moved):
    """Sort the entries of a state dir a job's user could write: the caller
    has already taken the directory back, so nothing can change under us."""
    for name in sorted(os.listdir(state_dir)):
        path = os.path.join(state_dir, name)
        st = os.lstat(path)
        ours = name in TICKGATE_FILES and stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        if name == ".state.lock" or name.startswith(".") and ".tmp-" in name:
            if stat.S_ISDIR(st.st_mode):
                continue
            changes.append("remove %s" % path)  # the helper recreates its lock; temps are leftovers
            if not check:
                os.unlink(path)
            continue
        if ours:
            if (st.st_uid, st.st_gid) != (uid, gid):
                changes.append("chown %s" % path)
                if not check:
                    os.chown(path, uid, gid, follow_symlinks=False)
                    os.chmod(path, 0o644)
            continue
        # The job's data, or a tickgate name that is not a plain file of its
        # own (a link, a FIFO, a hard link): it belongs to the job, not to us.
        dest_name = name if name not in TICKGATE_FILES else name + ".untrusted"
        dest = os.path.join(data_dir, dest_name)
        if os.path.lexists(dest):
            dest = dest + ".from-state-dir"
        moved.append("%s -> %s" % (path, dest))
        if not check:
            try:
                os.rename(path, dest)
            except OSError as e:
                raise LayoutError("job %s: cannot move %s to %s (%s); move it by hand, then deploy again" % (job, path, dest, e))


def layout(module, p):
    plans = []
    for d in p["dirs"]:
        uid, gid = _ids(d["owner"], d.get("group"))
        plans.append((d["path"], uid, gid, int(str(d["mode"]), 8)))

    def apply(check):
        changes, moved = [], []
        try:
            for path, uid, gid, mode in plans:
                _ensure_dir(path, uid, gid, mode, check, changes)
            for j in p["job_dirs"]:
                _plan_job(j, check, changes, moved)
        except LayoutError as e:
            module.fail_json(msg=str(e), layout=changes, moved=moved)
        return changes, moved

    # Dry run first: if anything is to change, stop the timers before changing it.
    changes, moved = apply(True)
    if module.check_mode or not (changes or moved):
        return changes, moved
    timers = [n for n in current_units(p["unit_dir"], p["prefix"]) if n.endswith(".timer")]
    if timers:
        run(["systemctl", "stop"] + timers, check=False)
    return apply(False)


def _plan_job(j, check, changes, moved):
    sup_uid, sup_gid = _ids(j["supervisor"], j.get("group"))
    user_uid, user_gid = _ids(j.get("user") or "root", j.get("user_group"))
    state_dir, data_dir = j["state_dir"], j["data_dir"]
    _ensure_dir(data_dir, user_uid, user_gid, 0o700, check, changes)
    try:
        st = os.lstat(state_dir)
    except FileNotFoundError:
        st = None
    if (
        st is not None
        and stat.S_ISDIR(st.st_mode)
        and not stat.S_ISLNK(st.st_mode)
        and (st.st_uid, st.st_gid) != (sup_uid, sup_gid)
    ):
        # Take the directory back first: from here on its old owner can
        # neither add, remove nor swap an entry while we sort them.
        _ensure_dir(state_dir, sup_uid, sup_gid, 0o755, check, changes)
        if check:
            for name in sorted(os.listdir(state_dir)):
                if name not in TICKGATE_FILES and not name.startswith("."):
                    moved.append("%s -> %s" % (os.path.join(state_dir, name), os.path.join(data_dir, name)))
            return
        _migrate(j["job"], state_dir, data_dir, sup_uid, sup_gid, check, changes, moved)
        return
    _ensure_dir(state_dir, sup_uid, sup_gid, 0o755, check, changes)


def timer_states(timers):
    if not timers:
        return {}
    r = run(["systemctl", "show", "--property=Id,UnitFileState,ActiveState"] + timers)
    states, cur = {}, {}
    for line in r.stdout.splitlines() + [""]:
        if not line.strip():
            if cur.get("Id"):
                states[cur["Id"]] = cur
            cur = {}
            continue
        k, _, v = line.partition("=")
        cur[k] = v
    return states


def arm(module, p):
    check = module.check_mode
    st = timer_states(p["enabled"] + p["disabled"])
    to_arm = [
        t for t in p["enabled"] if st.get(t, {}).get("UnitFileState") != "enabled" or st.get(t, {}).get("ActiveState") != "active"
    ]
    to_disarm = [
        t
        for t in p["disabled"]
        if st.get(t, {}).get("UnitFileState") == "enabled" or st.get(t, {}).get("ActiveState") in ("active", "activating")
    ]
    if not check:
        if to_arm:
            run(["systemctl", "enable", "--now"] + to_arm)
        if to_disarm:
            run(["systemctl", "disable", "--now"] + to_disarm)
    return to_arm, to_disarm


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=["validate", "layout", "write", "arm"]),
            units=dict(type="dict", default={}),
            unit_dir=dict(type="path", default="/etc/systemd/system"),
            prefix=dict(type="str", default="tickgate-"),
            schedules=dict(type="list", elements="dict", default=[]),
            singletons=dict(type="list", elements="dict", default=[]),
            gap_iterations=dict(type="int", default=50),
            accounts=dict(type="list", elements="dict", default=[]),
            ignore_missing=dict(type="list", elements="str", default=[]),
            dirs=dict(type="list", elements="dict", default=[]),
            job_dirs=dict(type="list", elements="dict", default=[]),
            enabled=dict(type="list", elements="str", default=[]),
            disabled=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    res = dict(changed=False, errors=[], written=[], removed=[], layout=[], moved=[], armed=[], disarmed=[])
    try:
        if p["action"] == "validate":
            res["errors"] = validate(module, p)
            res["timezone"] = host_timezone()
            res["local_time_jobs"] = sorted(sg["job"] for sg in p["singletons"] if elapses(sg["calendars"], 1)[1])
            if res["errors"]:
                module.fail_json(
                    msg="tickgate preflight: %d problem(s):\n%s" % (len(res["errors"]), "\n".join(res["errors"])), **res
                )
        elif p["action"] == "write":
            res["written"], res["removed"] = write(module, p)
            res["changed"] = bool(res["written"] or res["removed"])
        elif p["action"] == "layout":
            res["layout"], res["moved"] = layout(module, p)
            res["changed"] = bool(res["layout"] or res["moved"])
        else:
            res["armed"], res["disarmed"] = arm(module, p)
            res["changed"] = bool(res["armed"] or res["disarmed"])
    except (RuntimeError, OSError, KeyError) as e:
        module.fail_json(msg="tickgate_units %s: %s" % (p["action"], e), **res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
