# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""Options the tickgate modules share (extends_documentation_fragment)."""

from __future__ import annotations


class ModuleDocFragment:
    # Where tickgate's units live (every module).
    DOCUMENTATION = r"""
options:
  unit_dir:
    description: Where units live.
    type: path
    default: /etc/systemd/system
  prefix:
    description: Units whose name starts with this are tickgate's (pruned when not given).
    type: str
    default: tickgate-
"""

    # The write: tickgate_units (action write) and tickgate_host (write_if_ready).
    WRITE = r"""
options:
  units:
    description: Unit file name to content.
    type: dict
    default: {}
  digests:
    description:
    - For write, every unit that should be installed (name to sha256 of its content). A unit not in I(units) must
      already be installed with that digest; a tickgate unit in neither is pruned.
    - For validate, the same; only units installed with another digest, or not at all, are verified (and schedules
      whose I(unit) is one of them); if I(units) lacks the content of one, nothing is checked and their names are
      returned as C(need).
    type: dict
    default: {}
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
  helper:
    description:
    - For write, the installed helper, whose C(--version) is returned as C(helper_version).
    - For host, with I(helper_sha256), whether it is installed as that content, root's and mode 0755 is returned as
      C(helper_current).
    type: path
  reopen:
    description: For write (and host with I(write_if_ready)), outside check mode, a command (argv) that reopens the
      gate once the units are written; its failure fails the task.
    type: list
    elements: str
    default: []
  reopen_if:
    description:
    - With I(reopen), a command (argv) run first; only when it exits 0 is the gate reopened. Otherwise the gate stays
      closed, its output is returned as C(reopen_deferred), and the task does not fail (site.yml's fleet schema check;
      the play's migrate and reopen tasks follow).
    type: list
    elements: str
    default: []
  purge_dirs:
    description:
    - For write (and host when it writes), the directories whose entry for each gone job is removed after the units
      (C(tickgate_purge) - its state dir and data dir) - each job of I(absent_jobs) and each job whose units the write
      removed. Returned as C(purged).
    type: list
    elements: path
    default: []
  absent_jobs:
    description: With I(purge_dirs), the jobs the plan marks C(state=absent).
    type: list
    elements: str
    default: []
  handover:
    description:
    - For write (and host when it writes), the present jobs that replace a cron entry (C(replaces_cron)), dicts
      with job, unit, file, match, enabled, catch_up and state (the job's state.json). After the units are written
      and armed and before the gate reopens, the line of each enabled one is commented out with a marker naming
      the job and recorded in I(handover_dir); a line handed over to a job not listed is put back. After the
      reopen, a job whose timer fired while the gate was closed after its handover is started once.
    - For validate, the same dicts; a match that finds no line (and none was handed over to the job) or more than
      one is an error.
    - Not given, cron entries are left alone.
    type: list
    elements: dict
  handover_dir:
    description: Where each handed-over cron line is recorded (JOB.json, root's).
    type: path
    default: /etc/tickgate/handover
"""

    # The notification targets and the jobs' environments: tickgate_layout and tickgate_host.
    TARGETS = r"""
options:
  secret_files:
    description: For layout, targets file name to content (never logged).
    type: dict
    default: {}
  env_files:
    description:
    - For layout, environment file name (C(JOB.json)) to content, a JSON object of the variables a job's command gets
      (never logged - a value may be a credential).
    - The other C(*.json) files in I(env_dir) are removed.
    type: dict
    default: {}
"""
