#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""tickgate_host: see DOCUMENTATION. Its work is in module_utils; the action plugin of
the same name sends it only what the host lacks (one SSH round trip per
host instead of one per unit: docs/design/deploy-speed.md)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tickgate_host
short_description: 'The deploy''s first round trip to a host: gate close and drain, root''s files, accounts, layout,
  and the write'
description:
- First, given I(close) and a helper installed, closes the gate and waits for running jobs (I(drain)), as site.yml's
  deploy begins; then it creates or fixes the root-owned directories in I(dirs), writes I(files) (a file with C(force=false)
  only when missing), removes the paths in I(absent), and reports which of I(groups) and I(users) are missing or
  differ (C(fix_groups), C(fix_users)), for the play to fix with ansible.builtin.group and ansible.builtin.user.
- With I(write_if_ready) then does C(write) (and I(reopen)) in the same round trip when nothing else must come first
  (every account exists, so it laid out too, and the helper and its shim are installed as wanted), and says so in
  C(wrote); otherwise the play's write step does it.
options:
  close:
    description:
    - For host, a command (argv) that closes the gate, run first when its program exists (a helper is installed),
      outside check mode; its failure fails the task before anything changes.
    type: list
    elements: str
    default: []
  drain:
    description:
    - For host, after I(close), a C(tickgate drain --json) command (argv) that waits for running jobs. Exit 1 (jobs
      still running at its timeout) fails the task unless I(drain_stop_running); any other failure fails it.
    type: list
    elements: str
    default: []
  drain_stop_running:
    description: For host, stop the services of the jobs the drain found still running at its timeout instead of
      failing.
    type: bool
    default: false
  dirs:
    description:
    - Root's directories to create or fix first (each C(path), C(owner), C(group), C(mode)), before I(files).
    type: list
    elements: dict
    default: []
  files:
    description: For host, dicts with path, content, owner, group, mode and force (false - only when missing).
    type: list
    elements: dict
    default: []
  private_files:
    description:
    - For host, dicts with path, owner, group and mode of files whose content is secret (the fleet DSN files), written
      like I(files) but only when every account exists (C(private_done)), since their owners may be accounts this
      deploy creates.
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
    - For host, the jobs' files (tickgate_job_files), dicts with path, owner, group and mode, their contents in
      I(job_contents); written like I(private_files) when every account exists and each path and its directory is
      a regular file, a directory or missing (C(job_files_done)); each one's directory is created or set to root's,
      0755, as the role's copy tasks do.
    - The action plugin sends them only when they are small regular files; otherwise the role's copy tasks do it.
    type: list
    elements: dict
    default: []
  job_contents:
    description: For host, each of I(job_files)' path to its content, base64 (never logged, as a job's file may
      hold a credential).
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
  users:
    description: For host, dicts with name, shell and group (optional primary group) that must exist so.
    type: list
    elements: dict
    default: []
  helper_sha256:
    description: For host, the sha256 of the helper to install (the action plugin computes it from helper_src).
    type: str
  shim:
    description: For host, with I(shim_sha256), the installed tickgate-exec (the helper's start-up shim for non-root
      jobs), returned as C(shim_current) like C(helper_current).
    type: path
  shim_sha256:
    description: For host, the sha256 of the tickgate-exec to install (the action plugin computes it from shim_src).
    type: str
  tick:
    description: For host, with I(tick_sha256), the installed tickgate-tick (the helper built for ticks alone, the
      ExecStart of jobs without fleet coordination or notifications), returned as C(tick_current) like C(helper_current).
    type: path
  tick_sha256:
    description: For host, the sha256 of the tickgate-tick to install (the action plugin computes it from tick_src).
    type: str
  layout_dirs:
    description: For host, the layout's I(dirs); with I(layout_job_dirs), the host step also lays out when no account
      needs fixing (C(layout_done)).
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
  write_if_ready:
    description:
    - For host, then write the units as C(write) does (I(units), I(digests), I(enabled), I(disabled), I(helper),
      I(reopen)) when nothing else must come first (C(wrote)).
    - Give it only when the play has nothing else to do on the host between the two steps (no job files to copy;
      I(private_files) are written first).
    type: bool
    default: false
extends_documentation_fragment:
- tickgate.tickgate.tickgate
- tickgate.tickgate.tickgate.write
- tickgate.tickgate.tickgate.targets
author: tickgate developers (@tickgate)
"""

EXAMPLES = r"""
- name: Close the gate, drain, install root's files, check accounts
  tickgate.tickgate.tickgate_host:
    close: [/usr/bin/tickgate, gate, close, --token, deploy-1, --reason, deploy-1]
    drain: [/usr/bin/tickgate, drain, --json, --timeout, 30min]
    write_if_ready: true
    reopen: [/usr/bin/tickgate, gate, open, --token, deploy-1]
    plan: "{{ __tickgate_plan.path }}"
    helper: /usr/bin/tickgate
    package: /srv/dist/tickgate_0.5.0_amd64.deb
    groups: [tickgate]
    users: [{name: tickgate, group: tickgate, shell: /usr/sbin/nologin}]
"""

RETURN = r"""
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
layout:
  description: directories created, fixed or migrated (or that would be)
  type: list
  returned: always
moved:
  description: job files moved from a state directory to the job's data directory
  type: list
  returned: always
files:
  description: files written or removed (or that would be)
  type: list
  returned: layout with dir, and host
fix_groups:
  description: groups missing on the host
  type: list
  returned: host
fix_users:
  description: users missing on the host or with another shell or primary group
  type: list
  returned: host
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_unitfiles import new_result
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_layout import LayoutError
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_hoststep import host_step


def main():
    module = AnsibleModule(
        argument_spec=dict(
            close=dict(type="list", elements="str", default=[]),
            drain=dict(type="list", elements="str", default=[]),
            drain_stop_running=dict(type="bool", default=False),
            files=dict(type="list", elements="dict", default=[]),
            dirs=dict(type="list", elements="dict", default=[]),
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
            layout_dirs=dict(type="list", elements="dict"),
            layout_job_dirs=dict(type="list", elements="dict"),
            layout_dir=dict(type="path"),
            layout_env_dir=dict(type="path"),
            layout_owner=dict(type="str"),
            layout_group=dict(type="str"),
            secret_files=dict(type="dict", default={}, no_log=True),
            env_files=dict(type="dict", default={}, no_log=True),
            unit_dir=dict(type="path", default="/etc/systemd/system"),
            prefix=dict(type="str", default="tickgate-"),
            units=dict(type="dict", default={}),
            digests=dict(type="dict", default={}),
            enabled=dict(type="list", elements="str", default=[]),
            disabled=dict(type="list", elements="str", default=[]),
            reopen=dict(type="list", elements="str", default=[]),
            reopen_if=dict(type="list", elements="str", default=[]),
            purge_dirs=dict(type="list", elements="path", default=[]),
            absent_jobs=dict(type="list", elements="str", default=[]),
            handover=dict(type="list", elements="dict"),
            handover_dir=dict(type="path", default="/etc/tickgate/handover"),
            write_if_ready=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    res = new_result()
    try:
        failed = host_step(module, p, res)
        if failed:
            module.fail_json(msg="tickgate_host: %s" % failed, **res)
    except (LayoutError, RuntimeError, OSError, KeyError) as e:
        module.fail_json(msg="tickgate_host: %s" % e, **res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
