#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""tickgate_units: see DOCUMENTATION. Its work is in module_utils; the action plugin of
the same name sends it only what the host lacks (one SSH round trip per
host instead of one per unit: docs/design/deploy-speed.md)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tickgate_units
short_description: Validate, write, prune and arm tickgate's systemd units in one call each
description:
- C(validate) renders nothing itself; it writes the given units that are new or changed (not installed in I(unit_dir)
  with this content) into a temporary directory under their real names, runs C(systemd-analyze verify) on them (batches
  side by side), checks every schedule with C(systemd-analyze calendar) and that job users and groups exist. It
  never changes the system.
- C(write) writes changed units atomically, stops, disables and removes C(tickgate-*) units that are not given (prune),
  enables the timers in I(enabled) that are not enabled and active and disables those in I(disabled), runs one C(systemctl
  daemon-reload) for all of it, then starts and stops those timers; it never starts a job's service.
- C(digest) changes nothing; it returns the sha256 of each installed C(tickgate-*) unit, so the controller sends
  only new or changed units.
options:
  action:
    description: What to do.
    type: str
    required: true
    choices:
    - validate
    - write
    - digest
  schedules:
    description: For validate, dicts with job and calendar.
    type: list
    elements: dict
    default: []
  singletons:
    description:
    - For validate, the floating singletons (C(singleton=fleet)), dicts with job, calendars (its OnCalendar= expressions)
      and min_gap (seconds). Over the next I(gap_iterations) elapses, two consecutive ones must be more than min_gap
      apart (twice the timer's random delay and accuracy), so that every host's tick of a slot starts before the
      next one. The result's C(timezone) and C(local_time_jobs) let the play check that the hosts of a job read
      its local-time schedule in one time zone.
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
extends_documentation_fragment:
- tickgate.tickgate.tickgate
- tickgate.tickgate.tickgate.write
author: tickgate developers (@tickgate)
"""

EXAMPLES = r"""
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
removed:
  description: unit files pruned (or that would be)
  type: list
  returned: always
armed:
  description: timers enabled/started
  type: list
  returned: always
disarmed:
  description: timers stopped/disabled
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
helper_version:
  description: what the helper's --version prints
  type: str
  returned: write with helper, and host when it wrote
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_unitfiles import (
    digests,
    elapses,
    host_timezone,
    new_result,
    singleton_intervals,
    validate,
)
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_gate import write_and_reopen, wrote_anything


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=["validate", "write", "digest"]),
            units=dict(type="dict", default={}),
            digests=dict(type="dict", default={}),
            unit_dir=dict(type="path", default="/etc/systemd/system"),
            prefix=dict(type="str", default="tickgate-"),
            schedules=dict(type="list", elements="dict", default=[]),
            singletons=dict(type="list", elements="dict", default=[]),
            gap_iterations=dict(type="int", default=50),
            accounts=dict(type="list", elements="dict", default=[]),
            ignore_missing=dict(type="list", elements="str", default=[]),
            enabled=dict(type="list", elements="str", default=[]),
            disabled=dict(type="list", elements="str", default=[]),
            helper=dict(type="path"),
            reopen=dict(type="list", elements="str", default=[]),
            reopen_if=dict(type="list", elements="str", default=[]),
            purge_dirs=dict(type="list", elements="path", default=[]),
            absent_jobs=dict(type="list", elements="str", default=[]),
            handover=dict(type="list", elements="dict"),
            handover_dir=dict(type="path", default="/etc/tickgate/handover"),
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
    except (RuntimeError, OSError, KeyError) as e:
        module.fail_json(msg="tickgate_units %s: %s" % (p["action"], e), **res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
