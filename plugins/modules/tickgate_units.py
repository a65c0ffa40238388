#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Batched systemd unit management for the tickgate role (one SSH round trip
per host instead of one per unit: see README "Benchmarks")."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tickgate_units
short_description: Validate, write, prune and arm tickgate's systemd units, and lay out its files, in one call each
description:
  - C(validate) renders nothing itself; it writes the given units that are
    new or changed (not installed in I(unit_dir) with this content) into a
    temporary directory under their real names, runs C(systemd-analyze verify)
    on them (batches side by side), checks every schedule with C(systemd-analyze calendar) and that
    job users and groups exist. It never changes the system.
  - C(layout) creates or fixes tickgate's directories (I(dirs)) and each
    job's state and data directory (I(job_dirs)), never following a link. A
    job state directory from before the trust boundary (owned by the job's
    user) is taken back first, then its files are sorted; tickgate's own
    regular files stay, everything else (the job's cursor, checkpoints) moves
    to the job's data directory. When anything changes, active tickgate
    timers are stopped first (C(write) starts them again).
  - C(write) writes changed units atomically, stops, disables and removes
    C(tickgate-*) units that are not given (prune), enables the timers in
    I(enabled) that are not enabled and active and disables those in
    I(disabled), runs one C(systemctl daemon-reload) for all of it, then
    starts and stops those timers; it never starts a job's service.
  - C(digest) changes nothing; it returns the sha256 of each installed
    C(tickgate-*) unit, so the controller sends only new or changed units.
  - C(host) first, given I(close) and a helper installed, closes the gate and
    waits for running jobs (I(drain)), as site.yml's deploy begins; then it
    creates or fixes the root-owned directories in I(dirs), writes
    I(files) (a file with C(force=false) only when missing), removes the
    paths in I(absent), and reports which of I(groups) and I(users) are
    missing or differ (C(fix_groups), C(fix_users)), for the play to fix with
    ansible.builtin.group and ansible.builtin.user.
  - C(host) with I(write_if_ready) then does C(write) (and I(reopen)) in the
    same round trip when nothing else must come first (every account exists,
    so it laid out too, and the helper and its shim are installed as
    wanted), and says so in C(wrote); otherwise the play's write step does it.
  - C(layout) given I(dir) also writes each job's notification targets file
    there (owner I(owner):I(group), mode 0600; the contents, I(secret_files),
    are no_log) and removes the C(*.json) files of jobs that have none now;
    given I(env_dir), the same for each job's environment file (I(env_files)).
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [validate, layout, write, digest, host]
  units:
    description: Unit file name to content.
    type: dict
    default: {}
  digests:
    description:
      - For write, every unit that should be installed (name to sha256 of its
        content). A unit not in I(units) must already be installed with that
        digest; a tickgate unit in neither is pruned.
      - For validate, the same; only units installed with another digest, or
        not at all, are verified (and schedules whose I(unit) is one of them);
        if I(units) lacks the content of one, nothing is checked and their
        names are returned as C(need).
    type: dict
    default: {}
  dir:
    description: For layout, the notification targets' directory.
    type: path
  owner:
    description: For layout, the targets files' owner.
    type: str
  group:
    description: For layout, the targets files' group.
    type: str
  secret_files:
    description: For layout, targets file name to content (never logged).
    type: dict
    default: {}
  env_dir:
    description: For layout, the jobs' environment files' directory (owned like the targets files).
    type: path
  env_files:
    description:
      - For layout, environment file name (C(JOB.json)) to content, a JSON object of the variables a job's command gets (never logged - a
        value may be a credential).
      - The other C(*.json) files in I(env_dir) are removed.
    type: dict
    default: {}
  files:
    description: For host, dicts with path, content, owner, group, mode and force (false - only when missing).
    type: list
    elements: dict
    default: []
  private_files:
    description:
      - For host, dicts with path, owner, group and mode of files whose content is secret (the fleet DSN files), written like I(files) but
        only when every account exists (C(private_done)), since their owners may be accounts this deploy creates.
      - Their contents are in I(private_contents); a trailing newline is added when missing.
    type: list
    elements: dict
    default: []
  private_contents:
    description: For host, each of I(private_files)' path to its content (never logged).
    type: dict
    default: {}
  job_files:
    description:
      - For host, the jobs' files (tickgate_job_files), dicts with path, owner, group and mode, their contents in I(job_contents); written
        like I(private_files) when every account exists and each path and its directory is a regular file, a directory or missing
        (C(job_files_done)); each one's directory is created or set to root's, 0755, as the role's copy tasks do.
      - The action plugin sends them only when they are small regular files; otherwise the role's copy tasks do it.
    type: list
    elements: dict
    default: []
  job_contents:
    description: For host, each of I(job_files)' path to its content, base64 (never logged, as a job's file may hold a credential).
    type: dict
    default: {}
  absent:
    description: For host, paths to remove (a file; missing is fine).
    type: list
    elements: path
    default: []
  groups:
    description: For host, system groups that must exist.
    type: list
    elements: str
    default: []
  helper:
    description:
      - For write, the installed helper, whose C(--version) is returned as C(helper_version).
      - For host, with I(helper_sha256), whether it is installed as that content,
        root's and mode 0755 is returned as C(helper_current).
    type: path
  helper_sha256:
    description: For host, the sha256 of the helper to install (the action plugin computes it from helper_src).
    type: str
  shim:
    description: For host, with I(shim_sha256), the installed tickgate-exec (the helper's start-up shim for non-root jobs), returned as
                 C(shim_current) like C(helper_current).
    type: path
  shim_sha256:
    description: For host, the sha256 of the tickgate-exec to install (the action plugin computes it from shim_src).
    type: str
  tick:
    description: For host, with I(tick_sha256), the installed tickgate-tick (the helper built for ticks alone, the ExecStart of jobs without
                 fleet coordination or notifications), returned as C(tick_current) like C(helper_current).
    type: path
  tick_sha256:
    description: For host, the sha256 of the tickgate-tick to install (the action plugin computes it from tick_src).
    type: str
  users:
    description: For host, dicts with name, shell and group (optional primary group) that must exist so.
    type: list
    elements: dict
    default: []
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
    description: For write, timer units to enable and start.
    type: list
    elements: str
    default: []
  disabled:
    description: For write, timer units to stop and disable.
    type: list
    elements: str
    default: []
  layout_dirs:
    description: For host, the layout's I(dirs); with I(layout_job_dirs), the host step also lays out when no account needs fixing (C(layout_done)).
    type: list
    elements: dict
  layout_job_dirs:
    description: For host, the layout's I(job_dirs).
    type: list
    elements: dict
  layout_dir:
    description: For host, the layout's I(dir) (the notification targets' directory).
    type: path
  layout_env_dir:
    description: For host, the layout's I(env_dir).
    type: path
  layout_owner:
    description: For host, the layout's I(owner).
    type: str
  layout_group:
    description: For host, the layout's I(group).
    type: str
  reopen:
    description: For write (and host with I(write_if_ready)), outside check mode, a command (argv) that reopens the gate once the units are
                 written; its failure fails the task.
    type: list
    elements: str
    default: []
  purge_dirs:
    description:
      - For write (and host when it writes), the directories whose entry
        for each gone job is removed after the units (C(tickgate_purge) -
        its state dir and data dir) - each job of I(absent_jobs) and each
        job whose units the write removed. Returned as C(purged).
    type: list
    elements: path
    default: []
  absent_jobs:
    description: With I(purge_dirs), the jobs the plan marks C(state=absent).
    type: list
    elements: str
    default: []
  reopen_if:
    description:
      - With I(reopen), a command (argv) run first; only when it exits 0 is the gate reopened. Otherwise the gate stays closed, its output
        is returned as C(reopen_deferred), and the task does not fail (site.yml's fleet schema check; the play's migrate and reopen tasks
        follow).
    type: list
    elements: str
    default: []
  close:
    description:
      - For host, a command (argv) that closes the gate, run first when its program exists (a helper is installed), outside check mode; its
        failure fails the task before anything changes.
    type: list
    elements: str
    default: []
  drain:
    description:
      - For host, after I(close), a C(tickgate drain --json) command (argv) that waits for running jobs. Exit 1 (jobs still running at its
        timeout) fails the task unless I(drain_stop_running); any other failure fails it.
    type: list
    elements: str
    default: []
  drain_stop_running:
    description: For host, stop the services of the jobs the drain found still running at its timeout instead of failing.
    type: bool
    default: false
  write_if_ready:
    description:
      - For host, then write the units as C(write) does (I(units), I(digests), I(enabled), I(disabled), I(helper), I(reopen)) when nothing
        else must come first (C(wrote)).
      - Give it only when the play has nothing else to do on the host between the two steps (no job files to copy; I(private_files) are
        written first).
    type: bool
    default: false
author: tickgate developers (@tickgate)
"""

EXAMPLES = r"""
# The role calls it; these are its steps as roles/tickgate/tasks use them.
- name: Verify new units on the host
  tickgate.tickgate.tickgate_units:
    action: validate
    plan: "{{ __tickgate_plan.path }}"
    known_accounts: "{{ tickgate_users }}"
  check_mode: false

- name: Write units, prune, arm timers
  tickgate.tickgate.tickgate_units:
    action: write
    plan: "{{ __tickgate_plan.path }}"
    arm: true
    helper: /usr/bin/tickgate
"""

RETURN = r"""
errors:
  description: validate problems, each naming the job and field
  type: list
  returned: always
written:
  description: unit files written (or that would be)
  type: list
  returned: always
layout:
  description: directories created, fixed or migrated (or that would be)
  type: list
  returned: always
moved:
  description: job files moved from a state directory to the job's data directory
  type: list
  returned: always
removed:
  description: unit files pruned (or that would be)
  type: list
  returned: always
armed:
  description: timers enabled/started
  type: list
  returned: always
digests:
  description: sha256 of each installed unit
  type: dict
  returned: digest and validate with digests
need:
  description: for validate with digests, the changed units whose content is needed
  type: list
  returned: validate
files:
  description: files written or removed (or that would be)
  type: list
  returned: layout with dir, and host
fix_groups:
  description: groups missing on the host
  type: list
  returned: host
helper_version:
  description: what the helper's --version prints
  type: str
  returned: write with helper, and host when it wrote
helper_current:
  description: the helper is installed with the wanted content, owner and mode
  type: bool
  returned: host with helper
shim_current:
  description: tickgate-exec is installed with the wanted content, owner and mode
  type: bool
  returned: host with shim
tick_current:
  description: tickgate-tick is installed with the wanted content, owner and mode
  type: bool
  returned: host with tick
fix_users:
  description: users missing on the host or with another shell or primary group
  type: list
  returned: host
disarmed:
  description: timers stopped/disabled
  type: list
  returned: always
timezone:
  description: the host's time zone (/etc/localtime)
  type: str
  returned: validate
local_time_jobs:
  description: floating singletons whose schedule is read in the host's local time
  type: list
  returned: validate
singleton_intervals:
  description: each floating singleton's longest gap between two elapses in seconds (what the deploy registers)
  type: dict
  returned: validate
layout_done:
  description: the host step laid out too (every account existed)
  type: bool
  returned: host
job_files_done:
  description: the host step wrote (or found current) every one of job_files
  type: bool
  returned: host
private_done:
  description: the host step wrote (or found current) every one of private_files (every account existed)
  type: bool
  returned: host
purged:
  description: the gone jobs' directories removed (with purge_dirs; in check mode, those that would be)
  type: list
  returned: write with purge_dirs, and host when it wrote
reopened:
  description: the reopen command ran and succeeded
  type: bool
  returned: write with reopen, and host when it wrote
reopen_deferred:
  description: why the gate was not reopened (what reopen_if said)
  type: str
  returned: when reopen_if exited non-zero
wrote:
  description: for host with write_if_ready, it wrote the units (written, removed, armed, disarmed are the write's)
  type: bool
  returned: host
installed:
  description: for host with close, a helper was installed, so the gate was closed and drained (outside check mode)
  type: bool
  returned: host
stopped:
  description: services stopped at the drain timeout (drain_stop_running)
  type: list
  returned: host
"""

import base64
import concurrent.futures
import datetime
import grp
import hashlib
import json
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
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
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


def write_atomic(path, content, mode=0o644, uid=None, gid=None):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=d)
    try:
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if uid is not None:
            os.chown(tmp, uid, gid)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sha256_of(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


def binary_current(path, sha256):
    """Whether path is a regular file with content sha256, root's, mode 0755."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return (
        stat.S_ISREG(st.st_mode)
        and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o755)
        and sha256_of(path) == sha256
    )


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


def write_and_reopen(module, p, res):
    """write's work into res: the units, the helper's version, then the gate
    reopened with p["reopen"] (outside check mode), then the gone jobs'
    directories purged (with purge_dirs). Returns why the reopen or the
    purge failed ("" when neither did)."""
    res["written"], res["removed"], res["armed"], res["disarmed"] = write(module, p)
    if p["helper"]:
        res["helper_version"] = helper_version(p["helper"])
    failed = reopen(module, p, res)
    if p["purge_dirs"]:
        try:
            res["purged"] = purge(p, res["removed"], module.check_mode)
        except OSError as e:
            failed = "; ".join(x for x in (failed, "purging the gone jobs' directories failed: %s" % e) if x)
    return failed


def reopen(module, p, res):
    """The gate reopened with p["reopen"] (outside check mode), if
    p["reopen_if"] (when given) exits 0. Returns why the reopen failed."""
    if p["reopen"] and not module.check_mode:
        if p["reopen_if"]:
            r = run(p["reopen_if"], check=False)
            if r.returncode != 0:
                # Not an error: the gate stays closed for the play's tasks.
                res["reopen_deferred"] = "%s (exit %d): %s" % (
                    " ".join(p["reopen_if"]),
                    r.returncode,
                    (r.stderr or r.stdout).strip(),
                )
                return ""
        r = run(p["reopen"], check=False)
        if r.returncode != 0:
            return "the units are written, but reopening the gate failed (%s, exit %d): %s" % (
                " ".join(p["reopen"]),
                r.returncode,
                (r.stderr or r.stdout).strip(),
            )
        res["reopened"] = True
    return ""


def wrote_anything(res):
    return bool(res["written"] or res["removed"] or res["armed"] or res["disarmed"] or res.get("purged"))


def helper_version(path):
    """What `tickgate --version` prints ("" when it cannot run)."""
    try:
        r = run([path, "--version"], check=False)
    except OSError:
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def notify(module, p):
    """Each job's targets file (0600, the supervisor's); others removed."""
    if not p["dir"] or not p["owner"]:
        raise RuntimeError("notify needs dir and owner")
    return secret_dir(module, p["dir"], p["secret_files"], p["owner"], p["group"])


def secret_dir(module, d, files, owner, group):
    """Each of files (name to content) in d, 0600 and owner's; the other
    *.json files there removed. For files only tickgate reads, whose content
    may be a secret: a job's notification targets, its environment."""
    check = module.check_mode
    changes = []
    uid, gid = _ids(owner, group, check)
    _ensure_dir(d, 0, 0, 0o755, check, changes)
    for name, content in sorted(files.items()):
        if "/" in name or not name.endswith(".json") or name.startswith("."):
            raise RuntimeError("%r is not a job's file name in %s" % (name, d))
        path = os.path.join(d, name)
        try:
            st = os.lstat(path)
            with open(path) as f:
                same = (
                    stat.S_ISREG(st.st_mode)
                    and f.read() == content
                    and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o600)
                )
        except FileNotFoundError:
            same = False
        if not same:
            changes.append(path)
            if not check:
                write_atomic(path, content, mode=0o600, uid=uid, gid=gid)
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        names = []
    for name in sorted(names):
        if name.endswith(".json") and name not in files:
            changes.append("remove %s" % os.path.join(d, name))
            if not check:
                os.unlink(os.path.join(d, name))
    return changes


def lay_out(module, p):
    """The layout, then (with p["dir"]) the notification targets and (with
    p["env_dir"]) the jobs' environment files in the same round trip: the
    layout's changes, what it moved, the files changed."""
    changes, moved = layout(module, p)
    files = notify(module, p) if p["dir"] else []
    if p.get("env_dir"):
        files += secret_dir(module, p["env_dir"], p.get("env_files") or {}, p["owner"], p["group"])
    return changes, moved, files


class GateError(Exception):
    """A close or drain step failed; stderr is the helper's."""

    def __init__(self, msg, stderr=""):
        super().__init__(msg)
        self.stderr = stderr


def close_and_drain(module, p):
    """site.yml's first steps on a host where a helper is installed (the
    close command's program exists): close the gate with the deploy's token,
    wait for running jobs, and with drain_stop_running stop the services of
    those still running at the timeout. Nothing runs in check mode. Returns
    (whether a helper was installed, the units stopped)."""
    if not p["close"]:
        return False, []
    if not os.path.exists(p["close"][0]):
        return False, []  # the first deploy on this host: no gate to close
    if module.check_mode:
        return True, []
    r = run(p["close"], check=False)
    if r.returncode != 0:
        raise GateError("closing the gate failed (exit %d): %s" % (r.returncode, " ".join(p["close"])), r.stderr)
    if not p["drain"]:
        return True, []
    r = run(p["drain"], check=False)
    if r.returncode == 0:
        return True, []
    if r.returncode != 1 or not p["drain_stop_running"]:
        raise GateError("waiting for running jobs failed (exit %d): %s" % (r.returncode, " ".join(p["drain"])), r.stderr)
    try:
        running = json.loads(r.stdout)["running"]
    except (ValueError, KeyError, TypeError) as e:
        raise GateError("the drain's output is not the JSON expected (%s): %r" % (e, r.stdout[:200]), r.stderr)
    stopped = []
    for job in sorted({x.get("job") or "" for x in running} - {""}):
        unit = "%s%s.service" % (p["prefix"], job)
        if not UNIT_RE.match(unit):
            raise GateError("the drain named a job that is no unit name: %r" % job, r.stderr)
        run(["systemctl", "stop", unit])
        stopped.append(unit)
    return True, stopped


def host(module, p):
    """Root's directories and files, and which accounts need fixing."""
    check, changes = module.check_mode, []
    for d in p["dirs"]:
        uid, gid = _ids(d["owner"], d.get("group"), check)
        parent = os.path.dirname(d["path"].rstrip("/"))
        if parent and not os.path.isdir(parent):
            changes.append("create %s" % parent)
            if not check:
                os.makedirs(parent, 0o755)  # as ansible.builtin.file does: root's, 0755
        _ensure_dir(d["path"], uid, gid, int(str(d["mode"]), 8), check, changes)
    put_files(p["files"], check, changes)
    for path in p["absent"]:
        if os.path.lexists(path):
            changes.append("remove %s" % path)
            if not check:
                os.unlink(path)
    fix_groups = []
    for g in p["groups"]:
        try:
            grp.getgrnam(g)
        except KeyError:
            fix_groups.append(g)
    fix_users = []
    for u in p["users"]:
        try:
            pw = pwd.getpwnam(u["name"])
        except KeyError:
            fix_users.append(u["name"])
            continue
        gid = None
        if u.get("group"):
            try:
                gid = grp.getgrnam(u["group"]).gr_gid
            except KeyError:
                gid = -1
        if pw.pw_shell != u.get("shell", pw.pw_shell) or (gid is not None and pw.pw_gid != gid):
            fix_users.append(u["name"])
    return changes, fix_groups, fix_users


def put_files(files, check, changes):
    """Write each of files (path, content, owner, group, mode, force) that
    differs in content, owner or mode, atomically; its path into changes."""
    for f in files:
        path, content = f["path"], f["content"]
        uid, gid = _ids(f.get("owner") or "root", f.get("group") or "root", check)
        mode = int(str(f.get("mode") or "0644"), 8)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not f.get("force", True):
            continue  # never overwrite an operator's file (the gate)
        if st is not None and stat.S_ISREG(st.st_mode):
            with open(path, "rb" if isinstance(content, bytes) else "r") as fh:
                same = fh.read() == content
            if same and (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, mode):
                continue
        elif st is not None:
            raise LayoutError("%s is not a regular file: tickgate will not replace it; move it away" % path)
        changes.append(path)
        if not check:
            write_atomic(path, content, mode=mode, uid=uid, gid=gid)


def private_files(p):
    """private_files with their contents (from the no_log private_contents),
    each ending in a newline."""
    out = []
    for f in p["private_files"]:
        content = p["private_contents"].get(f["path"])
        if content is None:
            raise LayoutError("private file %s has no content in private_contents" % f["path"])
        out.append(dict(f, content=content if content.endswith("\n") else content + "\n"))
    return out


def put_job_files(p, check, changes):
    """The jobs' files (job_files, contents base64) with their directories,
    as the role's copy tasks would write them. False, writing nothing, when
    one of them or its directory is anything but a regular file and a
    directory or missing (a link, a directory as dest): the copy tasks then
    handle it as ansible.builtin.file and copy do."""

    def plain(path, kind):
        return not os.path.lexists(path) or (not os.path.islink(path) and kind(path))

    for f in p["job_files"]:
        if (
            f["path"].endswith("/")
            or not plain(f["path"], os.path.isfile)
            or not plain(os.path.dirname(f["path"]), os.path.isdir)
        ):
            return False
    for d in sorted({os.path.dirname(f["path"]) for f in p["job_files"]}):
        parent = os.path.dirname(d.rstrip("/"))
        if parent and not os.path.isdir(parent):
            changes.append("create %s" % parent)
            if not check:
                os.makedirs(parent, 0o755)
        _ensure_dir(d, 0, 0, 0o755, check, changes)
    put_files([dict(f, content=base64.b64decode(p["job_contents"][f["path"]])) for f in p["job_files"]], check, changes)
    return True


def new_result():
    """Every action's result before it runs: the lists RETURN says are always there."""
    return dict(changed=False, errors=[], written=[], removed=[], layout=[], moved=[], armed=[], disarmed=[])


def host_step(module, p, res):
    """The host action into res: site.yml's close and drain, root's files and
    the accounts check, the layout when every account exists, and with
    write_if_ready the write and the reopen when nothing else must come
    first. Returns why it failed ("" when it did not); res then still says
    whether the gate may be closed (installed)."""
    private = private_files(p)  # a missing content fails before the gate closes
    try:
        res["installed"], res["stopped"] = close_and_drain(module, p)
    except (GateError, RuntimeError, OSError) as e:
        # The gate may be closed now: site.yml's rescue says so.
        res.update(installed=True, stderr=getattr(e, "stderr", ""))
        return str(e)
    res["files"], res["fix_groups"], res["fix_users"] = host(module, p)
    for name in ("helper", "shim", "tick"):
        if p[name] and p[name + "_sha256"]:
            res[name + "_current"] = binary_current(p[name], p[name + "_sha256"])
    res["layout_done"] = p["layout_job_dirs"] is not None and not (res["fix_groups"] or res["fix_users"])
    if res["layout_done"]:
        # Every account the layout needs exists: lay out in this round
        # trip (configure.yml's layout step then skips).
        lp = dict(
            p,
            dirs=p["layout_dirs"],
            job_dirs=p["layout_job_dirs"],
            dir=p["layout_dir"],
            env_dir=p.get("layout_env_dir"),
            owner=p["layout_owner"],
            group=p["layout_group"],
        )
        res["layout"], res["moved"], files = lay_out(module, lp)
        res["files"] += files
        # The secret files and the jobs' files too: their owners exist now.
        put_files(private, module.check_mode, res["files"])
        res["job_files_done"] = put_job_files(p, module.check_mode, res["files"])
    else:
        res["job_files_done"] = False
    res["private_done"] = res["layout_done"]
    # Nothing else before the write (accounts, layout, binaries, files):
    # write and reopen now.
    res["wrote"] = bool(
        p["write_if_ready"]
        and res["layout_done"]
        and res["job_files_done"]
        and res.get("helper_current")
        and res.get("shim_current")
        and res.get("tick_current")
    )
    failed = write_and_reopen(module, p, res) if res["wrote"] else ""
    res["changed"] = bool(res["files"] or res["layout"] or res["moved"] or res["stopped"]) or wrote_anything(res)
    return failed


# tickgate's own files in a job's state directory (everything else there
# before the trust boundary was the job's).
TICKGATE_FILES = {"state.json", "state.json.corrupt", "done", "halted"}


def _ids(owner, group, check=False):
    """The uid and gid of owner (and group, else owner's). In check mode an
    account this deploy has not created yet (its task only said it would) is
    -1: every file or directory it would own then reads as to change."""
    try:
        uid = pwd.getpwnam(owner).pw_uid
        gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(owner).pw_gid
    except KeyError:
        if check:
            return -1, -1
        raise
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
    has already taken the directory back, so nothing can change under us.
    Nothing in it is trusted as it is: tickgate's own files are set aside to
    the job's data dir as NAME.untrusted and rebuilt from their validated
    fields (never a pid, never a control character); a marker always comes
    back (it stops the job until an operator clears it), whatever it held;
    everything else was the job's and moves to its data dir."""
    for name in sorted(os.listdir(state_dir)):
        path = os.path.join(state_dir, name)
        st = os.lstat(path)
        if name == ".state.lock" or name.startswith(".") and ".tmp-" in name:
            if stat.S_ISDIR(st.st_mode):
                continue
            changes.append("remove %s" % path)  # the helper recreates its lock; temps are leftovers
            if not check:
                os.unlink(path)
            continue
        plain = stat.S_ISREG(st.st_mode) and st.st_nlink == 1
        rebuilt = None
        if name in REBUILT and plain:
            try:
                rebuilt = REBUILT[name](job, _read_capped(path, MAX_REBUILD))
            except (OSError, ValueError):
                rebuilt = None
        if name in ("done", "halted") and rebuilt is None:
            # A marker that is not a plain file, or does not read: it still
            # stops the job.
            rebuilt = _marker(
                None, "a %s marker that could not be read (%s)" % (name, "not a plain file" if not plain else "unreadable")
            )
        # The job's data, or tickgate's file the job could have written:
        # set aside in the job's data dir.
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
        if rebuilt is not None:
            changes.append("rebuild %s from %s's validated fields" % (path, dest))
            if not check:
                write_atomic(path, rebuilt, mode=0o644, uid=uid, gid=gid)


# What is read of a file a job's user could have written, to rebuild it.
MAX_REBUILD = 1 << 20


def _read_capped(path, cap):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("not a regular file")
        data = f.read(cap + 1)
    if len(data) > cap:
        raise ValueError("larger than %d bytes" % cap)
    return data


# The helper's rule for text a job could have written (helper/textsafe):
# C0 and C1 controls, DEL, bidi controls and line separators are escaped.
_ESC_NAMED = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_ESC_BIDI = {0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def printable(s, cap=1000):
    """s with every unsafe character escaped (as \\x1b, \\u202e), at most
    cap characters; anything but a string is ""."""
    if not isinstance(s, str):
        return ""
    out = []
    for ch in s[:cap]:
        o = ord(ch)
        if ch in _ESC_NAMED:
            out.append(_ESC_NAMED[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif 0x80 <= o <= 0x9F or o in _ESC_BIDI:
            out.append("\\u%04x" % o)
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _time(v):
    """An RFC 3339 time as the helper writes it, or None."""
    if not isinstance(v, str) or len(v) > 40:
        return None
    try:
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _count(v, top=10**12):
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= top else 0


_RESULTS = ("success", "failed", "skipped", "done", "halted", "interrupted")
_LOCK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,199}$")
_RUN_ID_RE = re.compile(r"^[0-9a-f]{1,32}$")


def _run(r):
    """One run (the latest tick, the last run, a history entry) from its
    validated fields; a run recorded as running is interrupted now."""
    if not isinstance(r, dict):
        return None
    result = r.get("result")
    reason = printable(r.get("reason"))
    if result == "running":
        result, reason = "interrupted", "recorded as running when tickgate was upgraded"
    elif result not in _RESULTS:
        return None
    code = r.get("exit_code")
    dur = r.get("duration_seconds")
    out = {
        "run_id": r.get("run_id") if isinstance(r.get("run_id"), str) and _RUN_ID_RE.match(r["run_id"]) else "",
        "result": result,
        "reason": reason,
        "started_at": _time(r.get("started_at")),
        "finished_at": _time(r.get("finished_at")),
        "duration_seconds": (
            float(dur) if isinstance(dur, (int, float)) and not isinstance(dur, bool) and 0 <= dur < 10**10 else 0
        ),
        "exit_code": code if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 255 else None,
    }
    if isinstance(r.get("attempt"), int) and not isinstance(r["attempt"], bool) and 0 < r["attempt"] <= 1000:
        out["attempt"] = r["attempt"]
    return out


def rebuild_state(job, data):
    """state.json rebuilt from the validated fields of a file the job's user
    could have written: the counters, the last success, the latest tick and
    run, the history; no pid, no schedule cache (the next tick asks
    systemd again), every text escaped. Raises ValueError when it does not
    parse: it is then only set aside, and the job starts a new record."""
    doc = json.loads(data.decode("utf-8", "replace"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    lock = doc.get("lock") if isinstance(doc.get("lock"), str) and _LOCK_RE.match(doc["lock"]) else job
    out = {"job": job, "lock": lock}
    latest = _run(doc) or {
        "run_id": "",
        "result": "",
        "reason": "",
        "started_at": None,
        "finished_at": None,
        "duration_seconds": 0,
        "exit_code": None,
    }
    out.update(latest)
    out["last_success_at"] = _time(doc.get("last_success_at"))
    out["consecutive_failures"] = _count(doc.get("consecutive_failures"), 10**6)
    out["pid"] = 0
    out["last_run"] = _run(doc.get("last_run"))
    skip = doc.get("last_skip")
    at = _time(skip.get("at")) if isinstance(skip, dict) else None
    out["last_skip"] = {"at": at, "reason": printable(skip.get("reason"))} if at else None
    for k in ("runs_total", "failures_total", "skips_total", "retries_total"):
        out[k] = _count(doc.get(k))
    cu = doc.get("catch_up")
    slot = _time(cu.get("slot")) if isinstance(cu, dict) else None
    if slot:
        out["catch_up"] = {"slot": slot, "reason": printable(cu.get("reason"))}
    out["updated_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    hist = doc.get("history") if isinstance(doc.get("history"), list) else []
    runs = [r for r in (_run(x) for x in hist[-1000:]) if r is not None]
    if runs:
        out["history"] = runs  # the last key, as the helper keeps it
    return json.dumps(out, indent=2) + "\n"


def _marker(m, why=None):
    """A done/halted marker from its validated fields (it stops the job
    whatever it held)."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if why is not None or not isinstance(m, dict):
        reason = "marker from before the upgrade: " + (why or "it did not parse")
        return json.dumps({"at": now, "reason": reason, "exit_code": None, "run_id": ""}, indent=2) + "\n"
    code = m.get("exit_code")
    return (
        json.dumps(
            {
                "at": _time(m.get("at")) or now,
                "reason": printable(m.get("reason")),
                "exit_code": code if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 255 else None,
                "run_id": m.get("run_id") if isinstance(m.get("run_id"), str) and _RUN_ID_RE.match(m["run_id"]) else "",
            },
            indent=2,
        )
        + "\n"
    )


def rebuild_marker(job, data):
    try:
        m = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        return _marker(None)
    return _marker(m)


REBUILT = {"state.json": rebuild_state, "done": rebuild_marker, "halted": rebuild_marker}


def layout(module, p):
    plans = []
    for d in p["dirs"]:
        uid, gid = _ids(d["owner"], d.get("group"), module.check_mode)
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
    sup_uid, sup_gid = _ids(j["supervisor"], j.get("group"), check)
    user_uid, user_gid = _ids(j.get("user") or "root", j.get("user_group"), check)
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=["validate", "layout", "write", "digest", "host"]),
            units=dict(type="dict", default={}),
            digests=dict(type="dict", default={}),
            dir=dict(type="path"),
            owner=dict(type="str"),
            group=dict(type="str"),
            secret_files=dict(type="dict", default={}, no_log=True),
            env_dir=dict(type="path"),
            env_files=dict(type="dict", default={}, no_log=True),
            files=dict(type="list", elements="dict", default=[]),
            private_files=dict(type="list", elements="dict", default=[]),
            private_contents=dict(type="dict", default={}, no_log=True),
            job_files=dict(type="list", elements="dict", default=[]),
            job_contents=dict(type="dict", default={}, no_log=True),
            absent=dict(type="list", elements="path", default=[]),
            groups=dict(type="list", elements="str", default=[]),
            users=dict(type="list", elements="dict", default=[]),
            helper=dict(type="path"),
            helper_sha256=dict(type="str"),
            shim=dict(type="path"),
            shim_sha256=dict(type="str"),
            tick=dict(type="path"),
            tick_sha256=dict(type="str"),
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
            # host: the layout's dirs, job_dirs, dir, owner and group, done in
            # the same round trip when every account exists.
            layout_dirs=dict(type="list", elements="dict"),
            layout_job_dirs=dict(type="list", elements="dict"),
            layout_dir=dict(type="path"),
            layout_env_dir=dict(type="path"),
            layout_owner=dict(type="str"),
            layout_group=dict(type="str"),
            # write: the command that reopens the gate once the units are
            # written (site.yml's, when nothing else must come first).
            reopen=dict(type="list", elements="str", default=[]),
            reopen_if=dict(type="list", elements="str", default=[]),
            # write: tickgate_purge, after the units.
            purge_dirs=dict(type="list", elements="path", default=[]),
            absent_jobs=dict(type="list", elements="str", default=[]),
            # host: site.yml's gate close and drain, run first when the
            # helper is installed, in this round trip.
            close=dict(type="list", elements="str", default=[]),
            drain=dict(type="list", elements="str", default=[]),
            drain_stop_running=dict(type="bool", default=False),
            # host: then write (and reopen), in this round trip, when nothing
            # else must come first.
            write_if_ready=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    res = new_result()
    try:
        if p["action"] == "validate":
            res["errors"], res["need"], res["digests"] = validate(module, p)
            if res["need"]:
                module.exit_json(**res)
            res["timezone"] = host_timezone()
            res["local_time_jobs"] = sorted(sg["job"] for sg in p["singletons"] if elapses(sg["calendars"], 1)[1])
            res["singleton_intervals"] = singleton_intervals(p["singletons"], p["gap_iterations"])
            if res["errors"]:
                module.fail_json(
                    msg="tickgate preflight: %d problem(s):\n%s" % (len(res["errors"]), "\n".join(res["errors"])), **res
                )
        elif p["action"] == "write":
            failed = write_and_reopen(module, p, res)
            res["changed"] = wrote_anything(res)
            if failed:
                module.fail_json(msg="tickgate_units write: %s" % failed, **res)
        elif p["action"] == "digest":
            res["digests"] = digests(p["unit_dir"], p["prefix"])
        elif p["action"] == "host":
            failed = host_step(module, p, res)
            if failed:
                module.fail_json(msg="tickgate_units host: %s" % failed, **res)
        elif p["action"] == "layout":
            res["layout"], res["moved"], res["files"] = lay_out(module, p)
            res["changed"] = bool(res["layout"] or res["moved"] or res["files"])
    except LayoutError as e:
        module.fail_json(msg="tickgate_units %s: %s" % (p["action"], e), **res)
    except (RuntimeError, OSError, KeyError) as e:
        module.fail_json(msg="tickgate_units %s: %s" % (p["action"], e), **res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
