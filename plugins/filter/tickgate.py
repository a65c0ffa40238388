# -*- coding: utf-8 -*-
"""Filters for the tickgate role.

systemd_exec_arg / systemd_exec_line: quote an argv so that systemd passes
every element to the process byte for byte (systemd.service(5) "COMMAND
LINES", systemd.unit(5) "SPECIFIERS"): each argument is double-quoted,
backslash and double quote are C-escaped, control characters become C
escapes, "%" becomes "%%" (specifiers) and "$" becomes "$$" (environment
variable substitution). An empty string becomes "" (an empty argument).

systemd_env_assignment: one Environment= assignment, quoted the same way
("%" -> "%%"; Environment= does not expand "$").

tickgate_normalize_jobs / tickgate_job_errors: resolve per-job defaults and
the mode's exit-code contract, and validate jobs with messages that name the
job and the field.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # unit tests run without ansible installed

    class AnsibleFilterError(Exception):
        pass


_C_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
}


def _quote(value, dollar):
    if not isinstance(value, str):
        raise AnsibleFilterError("systemd quoting expects a string, got %r" % (value,))
    out = []
    for ch in value:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif ch == "%":
            out.append("%%")
        elif ch == "$" and dollar:
            out.append("$$")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def systemd_exec_arg(value):
    """One ExecStart= argument, quoted so systemd passes it unchanged."""
    if not isinstance(value, str):
        raise AnsibleFilterError("an ExecStart= argument must be a string, got %r" % (value,))
    if "\x00" in value:
        raise AnsibleFilterError("an argument cannot contain a NUL byte: %r" % (value,))
    return _quote(value, dollar=True)


def systemd_exec_line(argv):
    """An argv list as an ExecStart= command line (no shell involved)."""
    if not isinstance(argv, (list, tuple)):
        raise AnsibleFilterError("systemd_exec_line expects a list, got %r" % (argv,))
    return " ".join(systemd_exec_arg(a) for a in argv)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def systemd_env_assignment(name, value):
    """A quoted Environment= assignment NAME=VALUE."""
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise AnsibleFilterError("invalid environment variable name %r" % (name,))
    value = "" if value is None else str(value)
    if "\x00" in value:
        raise AnsibleFilterError("environment value of %s contains a NUL byte" % name)
    return _quote(name + "=" + value, dollar=False)


# The job contract. Its cases live in helper/testdata/contract.json, which this
# role's tests and the helper's Go tests both run (test_contract.py).
_JOB_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_LOCK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")
_MAX_NAME = 200
# tickgate's own units (tickgate-NAME.service) that no job may take.
_RESERVED_JOBS = ("catch-up", "fleet-starts")
# Durations: a bare number of seconds, or NUMBER UNIT parts separated by
# spaces (helper/timespec); units that both systemd and the helper know.
_UNITS = {
    "us": 1e-6,
    "usec": 1e-6,
    "\u00b5s": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_BARE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?) *([a-z\u00b5]+) *")
_MAX_SECONDS = (2**63 - 1) / 1e9  # the helper counts nanoseconds in an int64
# Exit codes tickgate itself uses: a job's contract must not (helper/exitcode).
_RESERVED_CODES = {64: "usage error", 70: "could not record", 75: "skipped", 78: "gate unusable"}
_MODES = {
    "recurring": {"ok_codes": [0], "done_codes": [], "halt_codes": [], "halt_after": 0},
    # regluit's backfill contract: 3 = checkpoint (more to do), 0 = drained, 4 = halt.
    "drain": {"ok_codes": [3], "done_codes": [0], "halt_codes": [4], "halt_after": 1},
}
_SPECS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles", "tickgate", "meta", "argument_specs.yml")


@functools.lru_cache(maxsize=None)
def _known_fields():
    """The job fields meta/argument_specs.yml describes: one list of them.
    Read on first use, not at import: every play's worker that uses any of
    these filters imports this file (the C loader when there is one)."""
    with open(_SPECS, encoding="utf-8") as f:
        specs = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return frozenset(specs["argument_specs"]["main"]["options"]["tickgate_jobs"]["options"])


def _name_ok(regex, v):
    return isinstance(v, str) and len(v) <= _MAX_NAME and regex.fullmatch(v) is not None


def _span_seconds_strict(v):
    """Seconds in a duration of the contract's grammar, or None if it is not one."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        return None
    if not isinstance(v, str):
        return float(v) if 0 <= v <= _MAX_SECONDS else None
    rest = v.strip(" ")
    if _BARE.fullmatch(rest):
        total = float(rest)
    else:
        total = 0.0
        while rest:
            m = _PART.match(rest)
            if not m or m.group(2) not in _UNITS:
                return None
            total += float(m.group(1)) * _UNITS[m.group(2)]
            rest = rest[m.end() :]
        if not v.strip(" "):
            return None
    return total if total <= _MAX_SECONDS else None


def _is_span(v):
    return _span_seconds_strict(v) is not None


def _codes_ok(v):
    return isinstance(v, list) and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in v)


def _contract(job, mode):
    """The job's exit-code contract: its mode's, overridden field by field by
    the job's own values where they are well-formed (bad ones are reported by
    tickgate_job_errors)."""
    out = dict(_MODES.get(mode if isinstance(mode, str) else "recurring", _MODES["recurring"]))
    for f in ("ok_codes", "done_codes", "halt_codes"):
        if _codes_ok(job.get(f)):
            out[f] = job[f]
    ha = job.get("halt_after")
    if isinstance(ha, int) and not isinstance(ha, bool) and ha >= 0:
        out["halt_after"] = ha
    return out


def tickgate_job_errors(jobs, defaults=None, supervisor=None, fleet=False):
    """Every problem in a tickgate_jobs list, each naming the job and field.
    defaults are tickgate_job_defaults (a job's mode may come from them);
    supervisor is the account that owns tickgate's files (no job may run as
    it)."""
    defaults = defaults or {}
    errors = []
    if not isinstance(jobs, list):
        return ["tickgate_jobs: must be a list of job dicts, got %s" % type(jobs).__name__]
    seen = {}
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            errors.append("tickgate_jobs[%d]: must be a dict, got %s" % (i, type(job).__name__))
            continue
        name = job.get("name")
        label = "job %s" % name if isinstance(name, str) and name else "tickgate_jobs[%d]" % i

        def err(field, msg, label=label):
            errors.append("%s: %s: %s" % (label, field, msg))

        if not _name_ok(_JOB_NAME, name):
            err("name", "required, must match ^[a-z0-9][a-z0-9_.-]*$, at most %d characters (got %r)" % (_MAX_NAME, name))
        elif name in _RESERVED_JOBS:
            err("name", "%r is reserved: tickgate-%s.service is tickgate's own unit" % (name, name))
        elif name in seen:
            err("name", "duplicate of tickgate_jobs[%d]" % seen[name])
        else:
            seen[name] = i
        for key in sorted(set(job) - _known_fields(), key=str):
            near = difflib.get_close_matches(str(key), sorted(_known_fields()), n=1)
            err(key, "unknown field" + (" (did you mean %s?)" % near[0] if near else " (see meta/argument_specs.yml)"))
        state = job.get("state", "present")
        if state not in ("present", "absent"):
            err("state", "must be present or absent (got %r)" % (state,))
        if state == "absent":
            continue
        cmd = job.get("command")
        if isinstance(cmd, str):
            err("command", "must be an argv list, not a string (no shell is involved): write [%r, ...]" % cmd.split(" ")[0])
        elif not isinstance(cmd, list) or not cmd:
            err("command", "required: a non-empty argv list of strings")
        elif not all(isinstance(a, str) for a in cmd):
            err("command", "every argv element must be a string (quote numbers): %r" % (cmd,))
        elif cmd[0] == "":
            err("command", "the program (first element) must not be empty")
        elif any("\x00" in a for a in cmd):
            err("command", "an argument contains a NUL byte")
        sched = job.get("schedule")
        scheds = sched if isinstance(sched, list) else [sched]
        if sched is None or sched == [] or not all(isinstance(s, str) and s.strip() for s in scheds):
            err("schedule", "required: an OnCalendar expression or a list of them")
        for field in (
            "lock_wait",
            "expected_runtime",
            "timeout",
            "randomized_delay",
            "accuracy",
            "retry_delay",
            "retry_max_delay",
            "start_deadline",
        ):
            if job.get(field) is not None and not _is_span(job[field]):
                err(
                    field,
                    "not a time span (a number of seconds, or parts like 90s, 5min, 1h 30min; units us ms s min h d w): %r"
                    % (job[field],),
                )
        for field in ("ok_codes", "done_codes", "halt_codes", "retry_codes"):
            if job.get(field) is not None and not _codes_ok(job[field]):
                err(field, "must be a list of exit codes 0-255: %r" % (job[field],))
            elif job.get(field):
                for c in job[field]:
                    if c in _RESERVED_CODES:
                        err(
                            field,
                            "exit code %d is tickgate's own (%s); a job's command must not use it" % (c, _RESERVED_CODES[c]),
                        )
        ha = job.get("halt_after")
        if ha is not None and (not isinstance(ha, int) or isinstance(ha, bool) or ha < 0):
            err("halt_after", "must be a whole number >= 0: %r" % (ha,))
        mode = job.get("mode") or defaults.get("mode") or "recurring"
        if not isinstance(mode, str) or mode not in _MODES:
            err("mode", "must be recurring or drain (got %r)" % (mode,))
        if job.get("gate_fail", "closed") not in ("closed", "open"):
            err("gate_fail", "must be closed or open (got %r)" % (job.get("gate_fail"),))
        if job.get("io_class") not in (None, "realtime", "best-effort", "idle"):
            err("io_class", "must be realtime, best-effort or idle (got %r)" % (job.get("io_class"),))
        nice = job.get("nice")
        if nice is not None and (not isinstance(nice, int) or isinstance(nice, bool) or not -20 <= nice <= 19):
            err("nice", "must be a whole number from -20 to 19: %r" % (nice,))
        env = job.get("environment")
        if env is not None:
            if not isinstance(env, dict):
                err("environment", "must be a dict of NAME: value")
            else:
                for k in env:
                    if not isinstance(k, str) or not _ENV_NAME.match(k):
                        err("environment", "invalid variable name %r" % (k,))
                    elif k.startswith("TICKGATE_"):
                        err(
                            "environment",
                            "%s: TICKGATE_ variables are tickgate's own (the command gets them from its supervisor)" % k,
                        )
                    elif isinstance(env[k], (dict, list)):
                        err("environment", "%s: a value must be a string or a number, not a %s" % (k, type(env[k]).__name__))
                    elif "\x00" in str(env[k]):
                        err("environment", "%s: the value holds a NUL byte" % k)
        lock = job.get("lock")
        if lock is not None and lock != "" and not _name_ok(_LOCK_NAME, lock):
            err("lock", "must match ^[A-Za-z0-9][A-Za-z0-9_.@-]*$, at most %d characters (got %r)" % (_MAX_NAME, lock))
        rwp = job.get("read_write_paths")
        if rwp is not None and (not isinstance(rwp, list) or not all(isinstance(p, str) and p.startswith("/") for p in rwp)):
            err("read_write_paths", "must be a list of absolute paths: %r" % (rwp,))
        scope = job.get("lock_scope", "host")
        if scope not in ("host", "fleet"):
            err("lock_scope", "must be host or fleet (got %r)" % (scope,))
        elif scope == "fleet" and not fleet:
            err("lock_scope", "fleet needs tickgate_fleet_dsn (fleet coordination) on this host")
        if supervisor and supervisor in (job.get("user"), job.get("group")):
            field = "user" if job.get("user") == supervisor else "group"
            err(
                field,
                "%r is tickgate's supervisor account, which owns every job's state, locks and metrics: "
                "a job running as it could rewrite them; give the job its own user" % supervisor,
            )
        wd = job.get("working_directory")
        if wd is not None and (not isinstance(wd, str) or not wd.startswith("/")):
            err("working_directory", "must be an absolute path: %r" % (wd,))
        codes = {}
        resolved = _contract(job, mode)
        for f in ("ok_codes", "done_codes", "halt_codes"):
            for c in resolved[f]:
                if c in codes and codes[c] != f:
                    err(f, "exit code %d is also in %s" % (c, codes[c]))
                codes.setdefault(c, f)
        retry = job.get("retry_codes") if job.get("retry_codes") is not None else (defaults.get("retry_codes") or [])
        retries = job.get("retries") if job.get("retries") is not None else defaults.get("retries")
        if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or retries < 0):
            err("retries", "must be a whole number >= 0: %r" % (retries,))
        elif _codes_ok(retry):
            for c in retry:
                if c in codes:
                    err("retry_codes", "exit code %d is also in %s (an exit code means one thing)" % (c, codes[c]))
            if bool(retry) != bool(retries):
                err(
                    "retries" if retry else "retry_codes",
                    "retries and retry_codes go together (which exit codes are transient, and how many more attempts)",
                )
        for flag in ("enabled", "persistent", "fixed_random_delay"):
            if job.get(flag) is not None and not isinstance(job[flag], bool):
                err(flag, "must be true or false: %r" % (job[flag],))
        nt = job.get("notify")
        if nt is not None and not isinstance(nt, list):
            err("notify", "must be a list of targets like {webhook: URL} or {healthchecks: URL, on: every}")
        else:
            for i, t in enumerate(nt or []):
                for problem in _target_errors(t):
                    err("notify", "target %d: %s" % (i + 1, problem))
        hist = job.get("history")
        if hist is not None and (not isinstance(hist, int) or isinstance(hist, bool) or not 1 <= hist <= 1000):
            err("history", "must be a whole number from 1 to 1000: %r" % (hist,))
        if job.get("catch_up") not in (None, "none", "once"):
            err("catch_up", "must be none or once (got %r)" % (job.get("catch_up"),))
        sd = job.get("start_deadline")
        if sd and _is_span(sd):
            late = sum(
                _span_seconds_strict(v) or 0
                for v in (
                    job.get("randomized_delay", defaults.get("randomized_delay")) or 0,
                    job.get("accuracy", defaults.get("accuracy", "1min")) or 0,  # systemd's default AccuracySec=
                )
                if _is_span(v)
            )
            if _span_seconds_strict(sd) <= late:
                err(
                    "start_deadline",
                    "%s is not longer than randomized_delay + accuracy (%gs): a tick may start that late by design, "
                    "so it could never run" % (tickgate_span(sd), late),
                )
        rc = job.get("replaces_cron")
        if rc is not None:
            if not isinstance(rc, dict):
                err("replaces_cron", "must be {file: ABSOLUTE PATH, match: TEXT OF THE LINE} (got %r)" % (rc,))
            else:
                for k in sorted(set(rc) - {"file", "match"}):
                    err("replaces_cron", "unknown key %r (file and match are known)" % (k,))
                f, m = rc.get("file"), rc.get("match")
                if not isinstance(f, str) or not f.startswith("/") or "\n" in f:
                    err("replaces_cron", "file must be the crontab's absolute path (got %r)" % (f,))
                if not isinstance(m, str) or not m.strip() or "\n" in m:
                    err("replaces_cron", "match must be text of the one cron line the job replaces (got %r)" % (m,))
        for problem in _requires_errors(job, fleet):
            err("requires", problem)
        cuo = job.get("catch_up_on")
        if cuo is not None:
            if not isinstance(cuo, list) or not all(w in ("gate", "precondition") for w in cuo):
                err("catch_up_on", "must be a list of gate and precondition (got %r)" % (cuo,))
            elif "gate" not in cuo:
                err("catch_up_on", "gate skips always owe a run with catch_up: once; write [gate, precondition]")
            elif "precondition" in cuo and job.get("catch_up") != "once":
                err("catch_up_on", "precondition needs catch_up: once")
        single = job.get("singleton")
        if single is not None and not isinstance(single, bool) and single != "fleet":
            err("singleton", "must be true, false or fleet: %r" % (single,))
        elif single == "fleet" and not fleet:
            err("singleton", "fleet needs tickgate_fleet_dsn (fleet coordination) on this host")
    errors += _requires_graph_errors(jobs)
    return errors


# A check command's timeout: at most this many seconds (helper/require).
_MAX_CHECK_TIMEOUT = 600


def _requires_errors(job, fleet):
    """Problems of one job's requires: list, each as the helper reads it
    (helper/require)."""
    reqs = job.get("requires")
    if reqs is None:
        return []
    if not isinstance(reqs, list):
        return ["must be a list of {command: [ARGV], timeout: SPAN} and {job: NAME, succeeded_within: SPAN, scope: host|fleet}"]
    out = []
    for i, q in enumerate(reqs, 1):
        if not isinstance(q, dict):
            out.append(
                "item %d: must be a dict like {command: [/usr/bin/pg_isready, -q]} or {job: NAME, succeeded_within: 6h}" % i
            )
            continue
        if ("command" in q) == ("job" in q):
            out.append("item %d: give command or job (exactly one)" % i)
            continue
        if "command" in q:
            extra = sorted(set(q) - {"command", "timeout"}, key=str)
            cmd = q["command"]
            if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
                out.append("item %d: command: a non-empty argv list of strings" % i)
            elif not cmd[0].startswith("/"):
                out.append(
                    "item %d: command: %r is not an absolute path (a check runs no shell and no PATH lookup)" % (i, cmd[0])
                )
            elif any("\x00" in a for a in cmd):
                out.append("item %d: command: an argument contains a NUL byte" % i)
            t = q.get("timeout")
            if t is not None and (not _is_span(t) or not 0 < _span_seconds_strict(t) <= _MAX_CHECK_TIMEOUT):
                out.append("item %d: timeout: must be a time span above 0 and at most 10min: %r" % (i, t))
        else:
            extra = sorted(set(q) - {"job", "succeeded_within", "scope"}, key=str)
            name = q["job"]
            if not _name_ok(_JOB_NAME, name):
                out.append("item %d: job: must be a job name (got %r)" % (i, name))
            elif name == job.get("name"):
                out.append("item %d: job: a job cannot require its own success" % i)
            w = q.get("succeeded_within")
            if w is None:
                out.append("item %d: succeeded_within is required (how recent %s's last success must be)" % (i, name))
            elif not _is_span(w) or not _span_seconds_strict(w) > 0:
                out.append("item %d: succeeded_within: must be a time span above 0: %r" % (i, w))
            scope = q.get("scope", "host")
            if scope not in ("host", "fleet"):
                out.append("item %d: scope: must be host or fleet (got %r)" % (i, scope))
            elif scope == "fleet" and not fleet:
                out.append("item %d: scope fleet needs tickgate_fleet_dsn (fleet coordination) on this host" % i)
        if extra:
            out.append("item %d: unknown key(s) %s" % (i, ", ".join(map(str, extra))))
    return out


def _requires_graph_errors(jobs):
    """A host-scope dependency on a job this host does not have, and cycles
    of dependencies (a job that, through others, requires itself never
    runs first)."""
    present = {j.get("name"): j for j in jobs if isinstance(j, dict) and j.get("state", "present") == "present"}
    edges = {}
    out = []
    for name, j in present.items():
        reqs = j.get("requires")
        if not isinstance(reqs, list):
            continue
        for q in reqs:
            if not isinstance(q, dict) or not isinstance(q.get("job"), str):
                continue
            dep = q["job"]
            if q.get("scope", "host") == "host" and dep not in present and dep != name:
                out.append(
                    "job %s: requires: job %s is not a job of this host (scope host reads this host's state of it)" % (name, dep)
                )
            if dep in present:
                edges.setdefault(name, []).append(dep)
    # Cycles, each reported once, named in order from its first job.
    seen_cycles = set()
    for start in sorted(edges, key=str):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in edges.get(node, []):
                if nxt == start:
                    key = frozenset(path)
                    if key not in seen_cycles:
                        seen_cycles.add(key)
                        out.append("job %s: requires: a cycle of dependencies: %s" % (start, " -> ".join(path + [start])))
                elif nxt not in path and nxt in edges:
                    stack.append((nxt, path + [nxt]))
    return out


# A lock group's size: at most this many slots (helper/lockgroup MaxSlots).
_MAX_SLOTS = 64


def tickgate_lock_group_errors(groups, jobs=None):
    """Problems of tickgate_lock_groups ({NAME: {slots: N}}). (jobs is kept
    for the callers: a group's size applies to host and fleet scope alike.)"""
    if groups is None:
        return []
    if not isinstance(groups, dict):
        return ["tickgate_lock_groups: must be a dict like {api: {slots: 2}}"]
    out = []
    for name, g in groups.items():
        label = "tickgate_lock_groups: %s" % name
        if not _name_ok(_LOCK_NAME, name):
            out.append("%s: not a lock group name (^[A-Za-z0-9][A-Za-z0-9_.@-]*$)" % label)
            continue
        if not isinstance(g, dict):
            out.append("%s: must be a dict like {slots: 2}" % label)
            continue
        for k in sorted(set(g) - {"slots"}, key=str):
            out.append("%s: unknown key %r (slots is known)" % (label, k))
        n = g.get("slots")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_SLOTS:
            out.append("%s: slots: a whole number from 1 to %d: %r" % (label, _MAX_SLOTS, n))
    return out


def tickgate_fleet_blackout_errors(hostvars, hosts):
    """With fleet coordination the play's blackout windows are stored in the
    fleet database for every fleet tick: its fleet hosts must have the same
    tickgate_blackouts."""
    seen = {}
    for h in hosts:
        hv = hostvars[h]
        if not hv.get("tickgate_fleet_dsn"):
            continue
        ws = hv.get("tickgate_blackouts") or []
        try:
            key = json.dumps([_blackout_doc(w) for w in ws], sort_keys=True)
        except (KeyError, TypeError, AnsibleFilterError):
            continue  # reported by the host's own check
        seen.setdefault(key, []).append(h)
    if len(seen) <= 1:
        return []
    return [
        "tickgate_blackouts: the fleet's hosts have %d different lists (%s); the fleet database holds one: give them one list (group_vars)"
        % (len(seen), "; ".join(", ".join(sorted(hs)) for hs in sorted(seen.values())))
    ]


def tickgate_lock_slot_errors(hostvars, hosts):
    """A lock group's size must be the same on every host of the play that
    sizes it."""
    sizes = {}
    for h in hosts:
        groups = hostvars[h].get("tickgate_lock_groups") or {}
        if not isinstance(groups, dict):
            continue
        for name, g in groups.items():
            if isinstance(g, dict):
                sizes.setdefault(name, {}).setdefault(g.get("slots"), []).append(h)
    return [
        "lock group %s: slots differ across hosts (%s); give it one size (group_vars)"
        % (name, "; ".join("%s: %s" % (n, ", ".join(sorted(hs))) for n, hs in sorted(by.items(), key=lambda kv: str(kv[0]))))
        for name, by in sorted(sizes.items())
        if len(by) > 1
    ]


_BLACKOUT_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")


def tickgate_blackout_errors(blackouts, jobs=None):
    """Problems of tickgate_blackouts, each naming the window and field.
    jobs (tickgate_jobs) is for windows that name jobs: each must be one."""
    if blackouts is None:
        return []
    if not isinstance(blackouts, list):
        return ["tickgate_blackouts: must be a list of {name, calendar, duration, all|locks|jobs}"]
    names = {j.get("name") for j in (jobs or []) if isinstance(j, dict)}
    out, seen = [], set()
    for i, w in enumerate(blackouts, 1):
        if not isinstance(w, dict):
            out.append(
                "tickgate_blackouts[%d]: must be a dict like {name: db-maint, calendar: 'Sat *-*-* 02:00', duration: 2h, locks: [billing]}"
                % i
            )
            continue
        name = w.get("name")
        label = "tickgate_blackouts: window %s" % name if isinstance(name, str) and name else "tickgate_blackouts[%d]" % i
        if not isinstance(name, str) or not _BLACKOUT_NAME.match(name):
            out.append("%s: name: required, lower-case letters, digits, - and _ (at most 64): %r" % (label, name))
        elif name in seen:
            out.append("%s: name: given twice" % label)
        seen.add(name)
        for k in sorted(set(w) - {"name", "calendar", "duration", "all", "locks", "jobs"}, key=str):
            out.append("%s: unknown key %r" % (label, k))
        cal = w.get("calendar")
        if not isinstance(cal, str) or not cal.strip() or "\n" in cal:
            out.append("%s: calendar: required, an OnCalendar expression of when the window opens" % label)
        d = w.get("duration")
        if d is None or not _is_span(d) or not _span_seconds_strict(d) > 0:
            out.append("%s: duration: required, a time span above 0 (like 2h): %r" % (label, d))
        scopes = [k for k in ("all", "locks", "jobs") if w.get(k) not in (None, False, [])]
        if len(scopes) != 1:
            out.append("%s: give exactly one of all: true, locks: [GROUP...], jobs: [JOB...]" % label)
        if "all" in w and not isinstance(w["all"], bool):
            out.append("%s: all: must be true or false" % label)
        for k, regex, what in (("locks", _LOCK_NAME, "lock group"), ("jobs", _JOB_NAME, "job")):
            v = w.get(k)
            if v is None:
                continue
            if not isinstance(v, list) or not all(_name_ok(regex, x) for x in v):
                out.append("%s: %s: must be a list of %s names: %r" % (label, k, what, v))
            elif k == "jobs" and jobs is not None:
                for x in v:
                    if x not in names:
                        out.append("%s: jobs: %s is not a job of this host" % (label, x))
    return out


def _blackout_doc(w):
    """One window as the helper reads it (durations as spans)."""
    out = {"name": w["name"], "calendar": w["calendar"], "duration": tickgate_span(w["duration"])}
    for k in ("locks", "jobs"):
        if w.get(k):
            out[k] = list(w[k])
    if w.get("all"):
        out["all"] = True
    return out


def _blackout_applies(w, job):
    return bool(w.get("all")) or job["name"] in (w.get("jobs") or []) or job["lock"] in (w.get("locks") or [])


def tickgate_blackouts_json(blackouts):
    """The host's blackouts.json (beside the gate file): every window, for
    `gate show`, `status`, `gate check` and `catch-up`."""
    return json.dumps([_blackout_doc(w) for w in blackouts or []], indent=2, sort_keys=True) + "\n"


def _on_key(k):
    """Whether k is a bare on: key as Ansible hands it over: YAML 1.1 reads
    `on` as the boolean true, and a JSON round trip (the plan) makes that
    the string "true"."""
    return k is True or k == "true"


def _target(t):
    """A notification target as the user meant it. Ansible reads inventory
    YAML as YAML 1.1, where a bare on: key is the boolean true: `on: every`,
    as the docs write it, arrives as {True: "every"}. That key is on."""
    if isinstance(t, dict) and any(_on_key(k) for k in t) and "on" not in t:
        t = {("on" if _on_key(k) else k): v for k, v in t.items()}
    return t


def _target_errors(t):
    """Problems of one notification target ({webhook: URL} or
    {healthchecks: URL}, optional on: transitions|every). A URL may hold a
    secret: it is never echoed."""
    if not isinstance(t, dict):
        return ["must be a dict like {webhook: URL} or {healthchecks: URL, on: every}"]
    if any(_on_key(k) for k in t) and "on" in t:
        return ['on: given twice (a bare on: key, which YAML 1.1 reads as true, and a quoted "on":)']
    t = _target(t)
    kinds = [k for k in ("webhook", "healthchecks") if k in t]
    out = []
    if len(kinds) != 1:
        out.append("needs exactly one of webhook or healthchecks")
    else:
        u = t[kinds[0]]
        if not isinstance(u, str) or not re.match(r"^https?://[^/\s]+", u) or any(c.isspace() for c in u):
            out.append("%s: not an http(s) URL (the value is not shown: it may hold a secret)" % kinds[0])
    if t.get("on", "transitions") not in ("transitions", "every"):
        out.append("on: must be transitions or every")
    extra = sorted(set(t) - {"webhook", "healthchecks", "on"}, key=str)
    if extra:
        out.append("unknown key(s) %s" % ", ".join(map(str, extra)))
    return out


def tickgate_target_errors(targets):
    """Problems of tickgate_notify, the host-wide default targets."""
    if not isinstance(targets, list):
        return ["tickgate_notify: must be a list of targets like {webhook: URL}"]
    return ["tickgate_notify: target %d: %s" % (i + 1, p) for i, t in enumerate(targets) for p in _target_errors(t)]


def _targets(job, defaults):
    """A job's notification targets in the helper's form (its own, or the
    host-wide default tickgate_notify)."""
    raw = job.get("notify")
    if raw is None:
        raw = defaults.get("notify") or []
    out = []
    for t in raw:
        t = _target(t)
        kind = "webhook" if "webhook" in t else "healthchecks"
        out.append({"kind": kind, "url": t[kind], "on": t.get("on", "transitions")})
    return out


def _require_arg(q):
    """One requirement as the helper's --requires reads it."""
    if "command" in q:
        out = {"command": list(q["command"])}
        if q.get("timeout") is not None:
            out["timeout"] = tickgate_span(q["timeout"])
        return out
    return {"job": q["job"], "succeeded_within": tickgate_span(q["succeeded_within"]), "scope": q.get("scope", "host")}


def span_seconds(value):
    """Seconds in a time span of the job contract (a bare number is seconds)."""
    seconds = _span_seconds_strict(value)
    if seconds is None:
        raise AnsibleFilterError("not a time span of the job contract: %r" % (value,))
    return seconds


def _codes(v):
    return ",".join(str(c) for c in v)


def tickgate_normalize_jobs(jobs, defaults, settings):
    """Jobs with every field resolved from the job, the defaults and the
    mode, plus what the unit templates need: argv (the helper's command line
    followed by the job's), env, rw_paths and the stop/runtime limits.

    settings: bin, state_dir, lock_dir, gate, metrics_dir, data_dir,
    supervisor, kill_after.
    """
    out = []
    for job in jobs:
        j = dict(defaults)
        j.update({k: v for k, v in job.items() if v is not None})
        j.setdefault("state", "present")
        j.update(_contract(job, j.get("mode") or "recurring"))
        if not j.get("lock"):
            j["lock"] = j["name"]
        if isinstance(j.get("schedule"), str):
            j["schedule"] = [j["schedule"]]
        j["unit"] = "tickgate-%s" % j["name"]
        if isinstance(j.get("replaces_cron"), dict):
            # The cron line this job takes over (the deploy's handover),
            # and where the job's state is, to see its first ticks.
            j["handover"] = {
                "job": j["name"],
                "unit": j["unit"],
                "file": j["replaces_cron"]["file"],
                "match": j["replaces_cron"]["match"],
                "catch_up": j.get("catch_up") == "once",
                "state": os.path.join(settings.get("state_dir") or "/var/lib/tickgate", j["name"], "state.json"),
            }
        if j["state"] == "absent":
            out.append(j)
            continue
        kill_after = settings.get("kill_after") or "10s"
        j["notify_targets"] = _targets(job, {"notify": settings.get("notify")})
        # A tick that needs neither the fleet nor notifications runs on the
        # helper's tick-only build (tickgate-tick: no PostgreSQL driver or
        # HTTP client to initialise, ~0.7 ms less per tick); the others on
        # the full helper, which the tick-only build would hand them to.
        tick_only = settings.get("tick_bin") and not settings.get("fleet") and not j["notify_targets"]
        argv = [
            settings["tick_bin"] if tick_only else settings["bin"],
            "run",
            "--lock",
            j["lock"],
            "--ok-codes",
            _codes(j["ok_codes"]),
            "--done-codes",
            _codes(j["done_codes"]),
            "--halt-codes",
            _codes(j["halt_codes"]),
            "--halt-after",
            str(j["halt_after"]),
            "--gate-fail",
            j.get("gate_fail") or "closed",
            "--kill-after",
            tickgate_span(kill_after),
        ]
        for flag, field in (("--lock-wait", "lock_wait"), ("--expected-runtime", "expected_runtime"), ("--timeout", "timeout")):
            if j.get(field):
                argv += [flag, tickgate_span(j[field])]
        if j.get("retries"):
            argv += ["--retry-codes", _codes(j["retry_codes"]), "--retries", str(j["retries"])]
            argv += ["--retry-delay", tickgate_span(j.get("retry_delay") or 0)]
            if j.get("retry_max_delay"):
                argv += ["--retry-max-delay", tickgate_span(j["retry_max_delay"])]
        # The helper stays the supervisor; only the command runs as the job's
        # user (docs/security.md). A root job's unit runs as root.
        j["nonroot"] = bool(j.get("user")) and j["user"] != "root"
        if j["nonroot"]:
            argv += ["--user", j["user"]]
            if j.get("group"):
                argv += ["--group", j["group"]]
        if j.get("working_directory"):
            argv += ["--workdir", j["working_directory"]]
        if settings.get("fleet"):
            # With fleet coordination every job obeys the fleet gate too.
            argv += ["--lock-scope", "fleet"] if j.get("lock_scope") == "fleet" else ["--fleet"]
            if j.get("singleton") == "fleet":
                argv += ["--singleton", "fleet"]
                # Every host's tick of a slot must start before the next
                # slot: the deploy checks the schedule against this.
                j["singleton_min_gap"] = 2 * (span_seconds(j.get("randomized_delay") or 0) + span_seconds(j.get("accuracy") or 0))
                # What the deploy registers in the fleet database: a claim
                # by another schedule is refused (helper/fleet ScheduleHash).
                j["schedule_hash"] = schedule_hash(j["schedule"])
            if j.get("lock_scope") == "fleet":
                # systemd kills a frozen holder's unit before its lease can
                # end (docs/fleet.md).
                j["watchdog_sec"] = "%dms" % (span_seconds(settings.get("fleet_lease_ttl") or "30s") * 1000 // 6)
        if j.get("history") and j["history"] != 50:
            argv += ["--history", str(j["history"])]
        if j.get("start_deadline"):
            argv += ["--start-deadline", tickgate_span(j["start_deadline"])]
        if j.get("catch_up") == "once":
            argv += ["--catch-up", "once"]
            if "precondition" in (j.get("catch_up_on") or []):
                argv += ["--catch-up-on", "gate,precondition"]
        # The blackout windows that cover this job (by its name or its lock
        # group, or all), with their calendars for the deploy's check.
        slots = ((settings.get("lock_groups") or {}).get(j["lock"]) or {}).get("slots") or 1
        if slots > 1:
            argv += ["--lock-slots", str(slots)]
        j["blackout_windows"] = [_blackout_doc(w) for w in settings.get("blackouts") or [] if _blackout_applies(w, j)]
        if j["blackout_windows"]:
            argv += [
                "--blackouts",
                json.dumps(
                    [{k: w[k] for k in ("name", "calendar", "duration")} for w in j["blackout_windows"]], separators=(",", ":")
                ),
            ]
        if j.get("requires"):
            argv += ["--requires", json.dumps([_require_arg(q) for q in j["requires"]], separators=(",", ":"))]
        # The timer's own schedule: the helper knows from it when a tick was
        # due and when the next is (deadlines, catch-up, floating
        # singletons, late jobs, tickgate_next_run_timestamp_seconds).
        for s in j["schedule"]:
            argv += ["--schedule", s]
        if j.get("environment"):
            j["env_file"] = "%s/%s.json" % (settings["env_dir"].rstrip("/"), j["name"])
            argv += ["--env-file", j["env_file"]]
        j["argv"] = argv + [j["name"], "--"] + list(j["command"])
        env = [
            ["TICKGATE_STATE_ROOT", settings["state_dir"]],
            ["TICKGATE_LOCK_DIR", settings["lock_dir"]],
            ["TICKGATE_GATE", settings["gate"]],
            ["TICKGATE_DATA_ROOT", settings["data_dir"]],
            ["TICKGATE_SUPERVISOR", settings["supervisor"]],
        ]
        if settings.get("metrics_dir"):
            env.append(["TICKGATE_METRICS_DIR", settings["metrics_dir"]])
        if settings.get("fleet"):
            env += [
                ["TICKGATE_FLEET_DSN_FILE", settings["fleet_dsn_file"]],
                ["TICKGATE_FLEET_TIMEOUT", tickgate_span(settings["fleet_timeout"])],
                ["TICKGATE_FLEET_HOST", settings.get("fleet_host") or ""],
                ["TICKGATE_FLEET_MAX_SKEW", tickgate_span(settings.get("fleet_max_skew") or "5s")],
                ["TICKGATE_FLEET_LEASE_TTL", tickgate_span(settings.get("fleet_lease_ttl") or "30s")],
            ]
            if settings.get("fleet_insecure"):
                env.append(["TICKGATE_FLEET_INSECURE", "true"])
        if settings.get("notify_dir"):
            env.append(["TICKGATE_NOTIFY_DIR", settings["notify_dir"]])
        # The unit's Environment= is the helper's own: only tickgate's
        # settings. The job's variables go to its command alone, through a
        # file only tickgate reads (--env-file; docs/security.md).
        j["env"] = env
        j["env_vars"] = _env_vars(j.get("environment"))
        j["state_path"] = "%s/%s" % (settings["state_dir"].rstrip("/"), j["name"])
        j["data_path"] = "%s/%s" % (settings["data_dir"].rstrip("/"), j["name"])
        rw = [j["state_path"], settings["lock_dir"], j["data_path"]]
        if settings.get("metrics_dir"):
            rw.append(settings["metrics_dir"])
        j["rw_paths"] = rw + list(j.get("read_write_paths") or [])
        j["stop_timeout"] = "%gs" % (span_seconds(kill_after) + 20)
        if j.get("timeout"):
            # The backstop covers every attempt and the longest waits between them.
            attempts = 1 + (j.get("retries") or 0)
            waits = 0
            if j.get("retries"):
                delay = span_seconds(j.get("retry_delay") or 0)
                cap = span_seconds(j.get("retry_max_delay") or 0) or 16 * delay
                waits = sum(min(delay * 2**i, cap) for i in range(j["retries"]))
            j["runtime_max"] = "%gs" % (attempts * (span_seconds(j["timeout"]) + span_seconds(kill_after)) + waits + 30)
        out.append(j)
    return out


def _env_vars(env):
    """A job's environment as the helper reads it: names to strings (a
    number or boolean as YAML gave it, written out; null is empty)."""
    return {k: "" if v is None else str(v) for k, v in sorted((env or {}).items())}


def schedule_hash(schedule):
    """A floating singleton's schedule as the fleet database knows it: the
    SHA-256 of its OnCalendar= lines joined by newlines (the helper's
    fleet.ScheduleHash)."""
    lines = [schedule] if isinstance(schedule, str) else list(schedule or [])
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def tickgate_dsn_user(dsn):
    """The login role a DSN connects as (a libpq URL or key=value), "" when
    it names none."""
    if not isinstance(dsn, str) or not dsn.strip():
        return ""
    dsn = dsn.strip()
    if dsn.startswith(("postgres://", "postgresql://")):
        u = urlsplit(dsn)
        if u.username:
            return unquote(u.username)
        return (parse_qs(u.query).get("user") or [""])[0]
    for part in re.findall(r"(\w+)\s*=\s*('(?:[^'\\\\]|\\\\.)*'|\S+)", dsn):
        if part[0] == "user":
            return part[1].strip("'")
    return ""


def tickgate_dsn_errors(dsn, variable, insecure=False):
    """Problems of a fleet DSN, naming the variable (never its value: it
    holds a password): a user to map to the host, and sslmode=verify-full
    (unless tickgate_fleet_insecure)."""
    if not dsn or not isinstance(dsn, str):
        return []  # (the argument spec says what a DSN must be)
    errors = []
    if not tickgate_dsn_user(dsn):
        errors.append("%s: names no user (the deploy maps each host to the login role its ticks connect as)" % variable)
    mode = ""
    if dsn.strip().startswith(("postgres://", "postgresql://")):
        mode = (parse_qs(urlsplit(dsn.strip()).query).get("sslmode") or [""])[0]
    else:
        m = re.search(r"(?:^|\s)sslmode\s*=\s*'?(\S+?)'?(?:\s|$)", dsn)
        mode = m.group(1) if m else ""
    if mode != "verify-full" and not insecure:
        errors.append(
            "%s: sslmode is %s, not verify-full: the helper refuses a fleet database it cannot verify "
            "(set sslmode=verify-full and sslrootcert, e.g. /etc/tickgate/fleet-ca.crt from tickgate_fleet_ca_file; "
            "or tickgate_fleet_insecure: true)" % (variable, mode or "unset (pgx's prefer: no check, plaintext fallback)")
        )
    return errors


_FLEET_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def tickgate_fleet_setting_errors(values):
    """Problems of the fleet settings other than the DSNs, naming the
    variable: the lease TTL (6s to 1h, as the helper checks: its watchdog is
    a sixth of it), the skew bound and the timeout (positive spans), the
    host name (what records, leases and the host mapping carry)."""
    if not (isinstance(values.get("tickgate_fleet_dsn"), str) and values["tickgate_fleet_dsn"]):
        return []  # (no fleet; or the argument spec says what a DSN must be)
    errors = []
    for var, lo, hi in (
        ("tickgate_fleet_lease_ttl", 6, 3600),
        ("tickgate_fleet_max_skew", 0.001, 3600),
        ("tickgate_fleet_timeout", 0.001, 300),
    ):
        if var not in values:
            continue
        secs = _span_seconds_strict(values[var])
        if secs is None:
            errors.append("%s: %r is not a time span (e.g. 30s, 1min)" % (var, values[var]))
        elif not lo <= secs <= hi:
            errors.append("%s: %s is outside %gs to %gs" % (var, tickgate_span(values[var]), lo, hi))
    host = values.get("tickgate_fleet_host")
    if host is not None and not (isinstance(host, str) and _FLEET_HOST.fullmatch(host)):
        errors.append("tickgate_fleet_host: %r is not a host name (letters, digits, '.', '_', '-'; at most 63)" % (host,))
    return errors


def tickgate_fleet_registration(hostvars, hosts):
    """What `tickgate fleet migrate --register` is given for hosts (as JSON):
    each host's fleet name and the login role of its tickgate_fleet_dsn, and
    each floating singleton's schedule hash and interval (the longest gap
    between its elapses, from the host's validate step)."""
    reg = {"hosts": {}, "singletons": {}}
    for h in hosts:
        hv = hostvars[h]
        if not hv.get("tickgate_fleet_dsn"):
            continue
        # The fleet's blackout windows are the play's (its fleet hosts all
        # have the same: tickgate_fleet_blackout_errors).
        if "blackouts" not in reg:
            reg["blackouts"] = [_blackout_doc(w) for w in hv.get("tickgate_blackouts") or []]
        reg["hosts"][hv.get("tickgate_fleet_host") or h] = tickgate_dsn_user(hv.get("tickgate_fleet_dsn"))
        checked = hv.get("__tickgate_checked") or {}
        intervals = (hv.get("__tickgate_validated") or {}).get("singleton_intervals") or {}
        for job, sched in (checked.get("schedules") or {}).items():
            if job in intervals:
                reg["singletons"][job] = {"schedule": sched, "interval": intervals[job]}
    return reg


def _armed(job):
    return isinstance(job, dict) and job.get("state", "present") == "present" and job.get("enabled", True)


def tickgate_armed(jobs):
    """What the cross-host singleton check needs of one host's job list, in
    one short string: each job present and enabled, as NAME (no singleton),
    NAME:1 (singleton) or NAME:fleet (floating singleton), space-separated
    (job names have neither). tickgate_plan registers it per host, so the
    check reads a string per host instead of templating every host's whole
    job list in every host's worker (hosts x hosts job lists)."""
    out = []
    for job in jobs or []:
        if not _armed(job):
            continue
        sg = job.get("singleton")
        out.append(
            "%s%s" % (job.get("name"), (":fleet:" + schedule_hash(job.get("schedule"))) if sg == "fleet" else ":1" if sg else "")
        )
    return " ".join(out)


def _armed_jobs(summary):
    jobs = []
    for tok in (summary or "").split():
        name, _sep, sg = tok.partition(":")
        kind, _sep, sched = sg.partition(":")
        jobs.append({"name": name, "singleton": "fleet" if kind == "fleet" else bool(kind), "schedule": sched})
    return jobs


def tickgate_singleton_errors(hostvars, hosts, result_var="__tickgate_checked"):
    """Each singleton job must be present and enabled on exactly one host; a
    floating singleton (singleton: fleet) must say so on every host that arms
    it, or a host that does not would run every slot besides. Reads each
    host's tickgate_armed summary (the "armed" of its tickgate_plan result)."""
    armed = {h: _armed_jobs((hostvars[h].get(result_var) or {}).get("armed")) for h in hosts}
    where, floating, schedules = {}, {}, {}
    for h in hosts:
        for job in armed[h]:
            if job["singleton"] == "fleet":
                floating.setdefault(job["name"], set()).add(h)
                schedules.setdefault(job["name"], {}).setdefault(job["schedule"], []).append(h)
            elif job["singleton"]:
                where.setdefault(job["name"], []).append(h)
    # A job marked singleton on one host only counts everywhere it is armed.
    errors = []
    for h in hosts:
        for job in armed[h]:
            if job["singleton"] == "fleet":
                continue
            name = job["name"]
            if name in floating:
                errors.append(
                    "job %s: singleton: fleet on %s but %s on %s; every host that arms a floating singleton must say "
                    "singleton: fleet"
                    % (name, ", ".join(sorted(floating[name])), "singleton" if job["singleton"] else "not a singleton", h)
                )
            elif not job["singleton"] and name in where and h not in where[name]:
                where[name].append(h)
    for name, by in sorted(schedules.items()):
        if len(by) > 1:
            errors.append(
                "job %s: singleton: fleet with %d different schedules across its hosts (%s); every host of a floating "
                "singleton must arm one schedule, or two could each run their own slots"
                % (name, len(by), "; ".join(sorted(", ".join(sorted(hs)) for hs in by.values())))
            )
    return errors + [
        "job %s: singleton: armed on %d hosts (%s); it must be present and enabled on exactly one"
        % (name, len(hs), ", ".join(sorted(hs)))
        for name, hs in sorted(where.items())
        if len(hs) != 1
    ]


def tickgate_singleton_tz_errors(hostvars, hosts, result_var="__tickgate_validated"):
    """The hosts of a floating singleton whose schedule is in local time must
    share one time zone: a slot is named by its UTC time, so hosts in two
    zones would each see slots of their own and both run."""
    zones = {}
    for h in hosts:
        res = hostvars[h].get(result_var) or {}
        for job in res.get("local_time_jobs") or []:
            zones.setdefault(job, {}).setdefault(res.get("timezone"), []).append(h)
    return [
        "job %s: singleton: fleet with a schedule in local time, but its hosts are in %d time zones (%s); "
        "put them in one zone or name the zone in the schedule (e.g. '*-*-* 03:00 UTC')"
        % (job, len(z), "; ".join("%s: %s" % (tz, ", ".join(sorted(hs))) for tz, hs in sorted(z.items())))
        for job, z in sorted(zones.items())
        if len(z) > 1
    ]


def tickgate_span(value):
    """A time span for systemd and the helper: numbers are seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "%gs" % value
    return str(value).strip()


class FilterModule(object):
    def filters(self):
        return {
            "systemd_exec_arg": systemd_exec_arg,
            "systemd_exec_line": systemd_exec_line,
            "systemd_env_assignment": systemd_env_assignment,
            "tickgate_job_errors": tickgate_job_errors,
            "tickgate_normalize_jobs": tickgate_normalize_jobs,
            "tickgate_span": tickgate_span,
            "tickgate_armed": tickgate_armed,
            "tickgate_singleton_errors": tickgate_singleton_errors,
            "tickgate_singleton_tz_errors": tickgate_singleton_tz_errors,
            "tickgate_dsn_user": tickgate_dsn_user,
            "tickgate_dsn_errors": tickgate_dsn_errors,
            "tickgate_fleet_registration": tickgate_fleet_registration,
            "tickgate_target_errors": tickgate_target_errors,
            "tickgate_blackout_errors": tickgate_blackout_errors,
            "tickgate_lock_group_errors": tickgate_lock_group_errors,
            "tickgate_lock_slot_errors": tickgate_lock_slot_errors,
            "tickgate_fleet_blackout_errors": tickgate_fleet_blackout_errors,
            "tickgate_blackouts_json": tickgate_blackouts_json,
        }
