# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""The deploy's gate handling on a host: close and drain before anything changes, the write followed
by the reopen in the same round trip."""

from __future__ import annotations

import json
import os

from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_cron import give_back, hand_over, run_missed
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_sys import run
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_unitfiles import UNIT_RE, helper_version, purge, write


def write_and_reopen(module, p, res):
    """write's work into res: the units, the helper's version, then the gate
    reopened with p["reopen"] (outside check mode), then the gone jobs'
    directories purged (with purge_dirs). Returns why the reopen or the
    purge failed ("" when neither did)."""
    res["written"], res["removed"], res["armed"], res["disarmed"] = write(module, p)
    if p["helper"]:
        res["helper_version"] = helper_version(p["helper"])
    handed = handover(module, p, res)
    failed = reopen(module, p, res)
    if handed and res.get("reopened"):
        res["handover_started"] = run_missed(handed)
    if p["purge_dirs"]:
        try:
            res["purged"] = purge(p, res["removed"], module.check_mode)
        except OSError as e:
            failed = "; ".join(x for x in (failed, "purging the gone jobs' directories failed: %s" % e) if x)
    return failed


def handover(module, p, res):
    """The cron handover (replaces_cron) in the gate-closed window, the timers
    armed: lines handed over to jobs no longer listed put back, the enabled
    jobs' lines commented out. Returns what was handed over now."""
    if p.get("handover") is None:
        return []
    keep = {h["job"] for h in p["handover"]}
    res["cron_restored"], problems, diffs = give_back(keep, p["handover_dir"], module.check_mode)
    for w in problems:
        module.warn(w)
    handed, more = hand_over([h for h in p["handover"] if h.get("enabled", True)], p["handover_dir"], module.check_mode)
    res["cron_handed_over"] = [{"job": h["job"], "file": h["file"], "line": h["line"]} for h in handed]
    if diffs or more:
        res["diff"] = diffs + more
    return handed


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
    return bool(
        res["written"]
        or res["removed"]
        or res["armed"]
        or res["disarmed"]
        or res.get("purged")
        or res.get("cron_handed_over")
        or res.get("cron_restored")
    )


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
