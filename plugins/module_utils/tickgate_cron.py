# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""The handover of a cron entry to the tickgate job that replaces it (replaces_cron): the preflight's check
that the match finds exactly one line, the deploy's commenting out of that line (in the gate-closed window,
after the job's timer is armed, before the gate reopens), a run for a slot the closed gate skipped after
the handover, and putting the line back when the job goes.

A handed-over line is commented with a marker naming the job; what was handed over is recorded in
HANDOVER_DIR/JOB.json (root's), which is what a later deploy puts back."""

from __future__ import annotations

import datetime
import json
import os
import re
import time

from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_sys import run, write_atomic

JOB_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def marker(job):
    """What a handed-over line starts with."""
    return "# tickgate(%s): " % job


def _read(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return f.read().split("\n")


def matches(lines, match):
    """The indexes of the active (not commented) lines that contain match."""
    return [i for i, l in enumerate(lines) if match in l and not l.lstrip().startswith("#")]


MARKED_RE = re.compile(r"^# tickgate\(([a-z0-9][a-z0-9_.-]*)\): (.*)$")


def handed(lines, match):
    """The indexes of the lines tickgate commented out (for any job) whose original contains match: the
    jobs of one run-parts directory replace its one line together."""
    out = []
    for i, l in enumerate(lines):
        m = MARKED_RE.match(l)
        if m and match in m.group(2):
            out.append(i)
    return out


def check(handovers):
    """The preflight's problems with each handover: the file is unreadable, or the match finds no line (and
    none was handed over to the job before) or more than one."""
    errors = []
    for h in handovers:
        where = "job %s: replaces_cron: %s" % (h["job"], h["file"])
        try:
            lines = _read(h["file"])
        except OSError as e:
            errors.append("%s: %s" % (where, e.strerror or e))
            continue
        found = matches(lines, h["match"])
        if len(found) > 1:
            errors.append(
                "%s: %r matches %d lines (%s): name the one line the job replaces"
                % (where, h["match"], len(found), ", ".join(str(i + 1) for i in found))
            )
        elif not found and not handed(lines, h["match"]):
            errors.append("%s: %r matches no line" % (where, h["match"]))
    return errors


def _write(path, lines):
    """path's new content, atomically (write_atomic: a temp file beside it, fsynced, renamed over it), with
    its owner and mode kept, then the directory fsynced: cron sees the file's and the directory's times
    change, and the edit survives a crash."""
    st = os.stat(path)
    write_atomic(path, "\n".join(lines).encode("utf-8", "surrogateescape"), st.st_mode & 0o7777, st.st_uid, st.st_gid)
    dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _outside_cron_load():
    """Waits, if needed, until the edit cannot share a second with cron's per-minute load: cron compares
    whole-second modification times, and a change in the very second it loaded would go unseen."""
    into = time.time() % 60
    if into < 2:
        time.sleep(2 - into)


def hand_over(handovers, registry, check_mode):
    """Comments out each handover's line, once (a line handed over before is left as it is; a line another
    job took over - one run-parts line for its directory's jobs - is recorded for this job too), and records
    it in registry/JOB.json. Returns (the handovers made now: [{job, file, line, at, ...}], diffs)."""
    by_file = {}
    for h in handovers:
        by_file.setdefault(h["file"], []).append(h)
    out, diffs = [], []
    for path, hs in sorted(by_file.items()):
        lines = _read(path)
        before = list(lines)
        todo, shared = [], []  # (handover, line index, the line before tickgate commented it)
        for h in hs:
            found = matches(lines, h["match"])
            if len(found) > 1:
                raise RuntimeError("job %s: replaces_cron: %s: %r matches %d lines" % (h["job"], path, h["match"], len(found)))
            if found:
                i = found[0]
                todo.append((h, i, lines[i]))
                lines[i] = marker(h["job"]) + lines[i]
                continue
            # Handed over before, to this job or (a run-parts line) to
            # another of its directory: recorded for this job too, once.
            was = handed(lines, h["match"])
            if was and not os.path.exists(os.path.join(registry, h["job"] + ".json")):
                shared.append((h, was[0], MARKED_RE.match(lines[was[0]]).group(2)))
        if not todo and not shared:
            continue
        if todo:
            diffs.append({"before": "\n".join(before), "after": "\n".join(lines), "before_header": path, "after_header": path})
        if check_mode:
            out += [dict(h, line=original, at=None) for h, i, original in todo]
            continue
        if todo:
            _outside_cron_load()
        at = time.time()  # the handover: slots due by now were cron's
        if todo:
            _write(path, lines)
        os.makedirs(registry, mode=0o755, exist_ok=True)
        for h, i, original in todo + shared:
            rec = {"job": h["job"], "file": path, "line": original, "marker": lines[i], "at": at}
            write_atomic(os.path.join(registry, h["job"] + ".json"), json.dumps(rec))
        out += [dict(h, line=original, at=at) for h, i, original in todo]
    return out, diffs


def give_back(keep, registry, check_mode):
    """Puts back each line handed over to a job not in keep (the job is gone, or no longer replaces cron)
    and forgets it. Returns (restored: [{job, file, line}], problems, diffs)."""
    restored, problems, diffs = [], [], []
    try:
        names = sorted(os.listdir(registry))
    except FileNotFoundError:
        return restored, problems, diffs
    recs = {}
    for n in names:
        job = n[: -len(".json")] if n.endswith(".json") else ""
        if not JOB_RE.match(job):
            continue
        try:
            with open(os.path.join(registry, n)) as f:
                recs[job] = json.load(f)
        except (OSError, ValueError) as e:
            problems.append("job %s: its handover record %s: %s" % (job, os.path.join(registry, n), e))
    for job, rec in sorted(recs.items()):
        if job in keep:
            continue
        path = os.path.join(registry, job + ".json")
        kept_too = [
            j for j, r in recs.items() if j in keep and r.get("file") == rec.get("file") and r.get("marker") == rec.get("marker")
        ]
        try:
            lines = _read(rec["file"])
        except (OSError, KeyError) as e:
            problems.append("job %s: the cron line it replaced could not be put back: %s" % (job, e))
            continue
        if kept_too:
            pass  # the line stays with the jobs that still replace it
        elif rec["marker"] not in lines:
            problems.append(
                "job %s: %s no longer holds the line tickgate commented out; not put back: %s" % (job, rec["file"], rec["line"])
            )
        else:
            before = list(lines)
            lines[lines.index(rec["marker"])] = rec["line"]
            diffs.append(
                {
                    "before": "\n".join(before),
                    "after": "\n".join(lines),
                    "before_header": rec["file"],
                    "after_header": rec["file"],
                }
            )
            if not check_mode:
                _outside_cron_load()
                _write(rec["file"], lines)
            restored.append({"job": job, "file": rec["file"], "line": rec["line"]})
        if not check_mode:
            os.unlink(path)
    return restored, problems, diffs


def run_missed(done):
    """After the reopen: a job whose timer fired after its handover while the deploy still held the gate
    closed skipped that slot, which cron no longer ran either: it runs once now. (A job with catch_up: once
    owes it already; tickgate catch-up runs it.) Returns the units started."""
    started = []
    for h in done:
        if h.get("catch_up") or not h.get("at"):
            continue
        try:
            with open(h["state"]) as f:
                st = json.load(f)
        except (OSError, ValueError):
            continue
        if st.get("result") != "skipped" or not str(st.get("reason", "")).startswith("gate-closed"):
            continue
        t = _epoch(st.get("started_at"))
        if t is None or t < h["at"]:
            continue
        run(["systemctl", "start", "--no-block", h["unit"] + ".service"])
        started.append(h["unit"] + ".service")
    return started


def _epoch(v):
    """An RFC 3339 time as the helper writes it, in seconds since the epoch, or None (as
    tickgate_layout's _time reads it)."""
    if not isinstance(v, str) or len(v) > 40:
        return None
    try:
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.timestamp() if t.tzinfo is not None else None
