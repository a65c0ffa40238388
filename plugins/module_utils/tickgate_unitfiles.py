# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""tickgate's systemd unit files on a host: digests, validation (systemd-analyze verify and calendar,
floating singletons' schedules), the write (atomic, one daemon-reload), pruning, arming timers, purging gone jobs."""

from __future__ import annotations

import concurrent.futures
import datetime
import grp
import os
import pwd
import re
import shutil
import tempfile

from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_sys import run, sha256_of

UNIT_RE = re.compile(r"^[A-Za-z0-9:_.@-]+\.(service|timer)$")


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
    """Problems with the units, schedules and accounts, the units that must
    be sent (need), and the installed units' digests. With digests (every
    wanted unit's sha256), only the units the host does not have yet are
    checked, and when their content was not given, nothing is checked and
    their names are returned: the controller then sends just those."""
    installed = {}
    if p["digests"]:
        installed = digests(p["unit_dir"], p["prefix"])
        changed = sorted(n for n, d in p["digests"].items() if installed.get(n) != d)
        need = [n for n in changed if n not in p["units"]]
        if need:
            return [], need, installed
        p["units"] = {n: p["units"][n] for n in changed}
        touched = {n.rsplit(".", 1)[0] for n in changed}
        p["schedules"] = [s for s in p["schedules"] if s.get("unit") in touched]
    return _validate(module, p), [], installed


def _validate(module, p):
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
        if p.get("handover"):
            from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_cron import check as check_handover

            errors += check_handover(p["handover"])
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
        "job %s: %s: %r is not a valid OnCalendar expression (%s)"
        % (s["job"], s.get("field", "schedule"), s["calendar"], bad[s["calendar"]])
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
        elif key == "Next elapse" or key.startswith(("Iter. #", "Iteration #")):  # systemd 252, 257
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
    times, _unused = elapses(sg["calendars"], iterations)
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


def singleton_intervals(singletons, iterations):
    """Each floating singleton's longest gap between two of its next elapses,
    in seconds: the interval the fleet database lets a claim run ahead of
    its clock (the deploy registers it)."""
    out = {}
    for sg in singletons:
        times, _unused = elapses(sg["calendars"], iterations)
        gaps = [(b - a).total_seconds() for a, b in zip(times or [], (times or [])[1:])]
        if gaps:
            out[sg["job"]] = max(gaps)
    return out


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


def write_all(d, pending):
    """Replace many files of directory d atomically, each by its own temp file
    and rename, with one sync for all their contents (2000 units: one
    sync, not 2000 fsyncs) and one fsync of the directory for the renames."""
    temps = []
    try:
        for path, content in pending:
            fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=d)
            temps.append(tmp)
            with os.fdopen(fd, "w") as f:
                f.write(content)
            os.chmod(tmp, 0o644)
        os.sync()
        for (path, _unused), tmp in zip(pending, temps):
            os.rename(tmp, path)
        temps = []
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        for tmp in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def digests(unit_dir, prefix):
    return {n: sha256_of(os.path.join(unit_dir, n)) for n in current_units(unit_dir, prefix)}


def write(module, p):
    unit_dir, prefix, check = p["unit_dir"], p["prefix"], module.check_mode
    written, removed = [], []
    want = set(p["digests"]) | set(p["units"])
    new, pending = set(), []
    for name in sorted(want):
        if not UNIT_RE.match(name):
            raise RuntimeError("unit %s: invalid unit file name" % name)
        path = os.path.join(unit_dir, name)
        if name not in p["units"]:
            # The controller saw this unit installed as it should be: it must still be.
            if sha256_of(path) != p["digests"][name]:
                raise RuntimeError("unit %s changed on the host since the preflight looked at it; deploy again" % name)
            continue
        content = p["units"][name]
        try:
            with open(path) as f:
                same = f.read() == content
        except FileNotFoundError:
            same = False
            new.add(name)
        if not same:
            written.append(name)
            if not check:
                pending.append((path, content))
    if pending:
        write_all(unit_dir, pending)
    stale = [n for n in current_units(unit_dir, prefix) if n not in want]
    if stale:
        timers = [n for n in stale if n.endswith(".timer")]
        removed = stale
        if not check:
            if timers:
                run(["systemctl", "disable", "--now", "--no-block"] + timers, check=False)
            for n in stale:
                os.unlink(os.path.join(unit_dir, n))
    armed, disarmed = [], []
    if p["enabled"] or p["disabled"]:
        # A timer written just now is neither enabled nor active: only the
        # others' states are asked of systemd.
        fresh = [t for t in p["enabled"] if t in new]
        armed, disarmed = to_change(dict(p, enabled=[t for t in p["enabled"] if t not in new]))
        armed = fresh + armed
    if not check:
        # Symlinks first, then one daemon-reload for the units and the
        # symlinks together, then start and stop.
        if armed:
            run(["systemctl", "enable", "--no-reload"] + armed)
        if disarmed:
            run(["systemctl", "disable", "--no-reload"] + disarmed)
        if written or removed or armed or disarmed:
            run(["systemctl", "daemon-reload"])
        if removed:
            run(["systemctl", "reset-failed"] + [n for n in removed if n.endswith(".service")], check=False)
        if armed:
            run(["systemctl", "start"] + armed)
        if disarmed:
            run(["systemctl", "stop"] + disarmed)
    return written, removed, armed, disarmed


JOB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def purge(p, removed, check):
    """tickgate_purge: each gone job's entry in each of p["purge_dirs"] (its
    state dir and data dir) removed, as ansible.builtin.file state=absent
    does: a link is unlinked, not followed, and a directory is removed with
    shutil.rmtree, which on Linux walks by file descriptor and never follows
    a link a job planted inside. The gone jobs: the plan's absent ones and
    those whose units the write removed. Returns the paths (in check mode,
    those that would go)."""
    gone = set(p["absent_jobs"]) | {job_of(n, p["prefix"]) for n in removed if n.startswith(p["prefix"])}
    out = []
    for name in sorted(gone):
        if not JOB_NAME_RE.match(name):
            continue  # never "..", never a path
        for d in p["purge_dirs"]:
            path = os.path.join(d, name)
            if not os.path.lexists(path):
                continue
            out.append(path)
            if check:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    return out


def helper_version(path):
    """What `tickgate --version` prints ("" when it cannot run)."""
    try:
        r = run([path, "--version"], check=False)
    except OSError:
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


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
        k, _sep, v = line.partition("=")
        cur[k] = v
    return states


def active_states(prefix):
    """ActiveState of each loaded timer named prefix*, in one cheap call (an
    active unit is always loaded, so a timer not listed is not active)."""
    r = run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "--type=timer", prefix + "*"], check=False)
    out = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0].endswith(".timer"):
            out[f[0]] = f[2]
    return out


INSTALL_KEYS = ("WantedBy", "RequiredBy", "UpheldBy")


def linked_as_enabled(unit_dir, name):
    """Whether every symlink `systemctl enable` makes for this unit in
    unit_dir (from its [Install] WantedBy=/RequiredBy=/UpheldBy=) is there.
    False when unsure (no [Install] targets, Alias=, Also=, unreadable):
    then systemd is asked."""
    try:
        with open(os.path.join(unit_dir, name)) as f:
            text = f.read()
    except OSError:
        return False
    targets, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != "Install" or "=" not in line:
            continue
        key, _sep, value = line.partition("=")
        key = key.strip()
        if key in INSTALL_KEYS:
            targets += [(key, t) for t in value.split()]
        elif key in ("Alias", "Also", "DefaultInstance"):
            return False
    if not targets:
        return False
    suffix = {"WantedBy": ".wants", "RequiredBy": ".requires", "UpheldBy": ".upholds"}
    return all(os.path.islink(os.path.join(unit_dir, t + suffix[k], name)) for k, t in targets)


def to_change(p):
    """The timers to arm (not enabled or not active) and to disarm.

    systemd recomputes every unit's UnitFileState on the first query after a
    daemon-reload (2 s for 1000 timers), so it is asked only about timers
    whose enablement symlinks are not all in place; ActiveState comes from one
    list-units call."""
    active = active_states(p["prefix"])
    unsure = [t for t in p["enabled"] + p["disabled"] if not linked_as_enabled(p["unit_dir"], t)]
    st = {t: {"UnitFileState": "enabled", "ActiveState": active.get(t, "inactive")} for t in p["enabled"] + p["disabled"]}
    for t, v in timer_states(unsure).items():
        st[t] = {"UnitFileState": v.get("UnitFileState", ""), "ActiveState": active.get(t, "inactive")}
    to_arm = [
        t for t in p["enabled"] if st.get(t, {}).get("UnitFileState") != "enabled" or st.get(t, {}).get("ActiveState") != "active"
    ]
    to_disarm = [
        t
        for t in p["disabled"]
        if st.get(t, {}).get("UnitFileState") == "enabled" or st.get(t, {}).get("ActiveState") in ("active", "activating")
    ]
    return to_arm, to_disarm


def new_result():
    """Every action's result before it runs: the lists RETURN says are always there."""
    return dict(changed=False, errors=[], written=[], removed=[], layout=[], moved=[], armed=[], disarmed=[])
