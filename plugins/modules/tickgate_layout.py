#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""tickgate_layout: see DOCUMENTATION. Its work is in module_utils; the action plugin of
the same name sends it only what the host lacks (one SSH round trip per
host instead of one per unit: docs/design/deploy-speed.md)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tickgate_layout
short_description: Lay out tickgate's directories, each job's state and data dir, notification targets and job environments
description:
- Creates or fixes tickgate's directories (I(dirs)) and each job's state and data directory (I(job_dirs)), never
  following a link. A job state directory from before the trust boundary (owned by the job's user) is taken back
  first, then its files are sorted; tickgate's own regular files stay, everything else (the job's cursor, checkpoints)
  moves to the job's data directory. When anything changes, active tickgate timers are stopped first (C(write) starts
  them again).
- Given I(dir) also writes each job's notification targets file there (owner I(owner):I(group), mode 0600; the contents,
  I(secret_files), are no_log) and removes the C(*.json) files of jobs that have none now; given I(env_dir), the
  same for each job's environment file (I(env_files)).
options:
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
  dir:
    description: For layout, the notification targets' directory.
    type: path
  owner:
    description: For layout, the targets files' owner.
    type: str
  group:
    description: For layout, the targets files' group.
    type: str
  env_dir:
    description: For layout, the jobs' environment files' directory (owned like the targets files).
    type: path
extends_documentation_fragment:
- tickgate.tickgate.tickgate
- tickgate.tickgate.tickgate.targets
author: tickgate developers (@tickgate)
"""

EXAMPLES = r"""
- name: Lay out directories, state and data dirs, notify targets
  tickgate.tickgate.tickgate_layout:
    plan: "{{ __tickgate_plan.path }}"
    layout:
      supervisor: tickgate
      group: tickgate
      dir: /etc/tickgate/notify
      env_dir: /etc/tickgate/env
      owner: tickgate
      dirs:
        - {path: /var/lib/tickgate, owner: tickgate, group: tickgate, mode: "0755"}
"""

RETURN = r"""
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_unitfiles import new_result
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_layout import LayoutError, lay_out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dirs=dict(type="list", elements="dict", default=[]),
            job_dirs=dict(type="list", elements="dict", default=[]),
            dir=dict(type="path"),
            owner=dict(type="str"),
            group=dict(type="str"),
            secret_files=dict(type="dict", default={}, no_log=True),
            env_dir=dict(type="path"),
            env_files=dict(type="dict", default={}, no_log=True),
            unit_dir=dict(type="path", default="/etc/systemd/system"),
            prefix=dict(type="str", default="tickgate-"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    res = new_result()
    try:
        res["layout"], res["moved"], res["files"] = lay_out(module, p)
        res["changed"] = bool(res["layout"] or res["moved"] or res["files"])
    except (LayoutError, RuntimeError, OSError, KeyError) as e:
        module.fail_json(msg="tickgate_layout: %s" % e, **res)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
