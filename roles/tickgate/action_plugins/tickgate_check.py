# -*- coding: utf-8 -*-
"""tickgate_check: the preflight's controller-side checks of one host, in
order, in one task: the job list (one line per problem, naming host, job and
field) and the role's variables against meta/argument_specs.yml. Its result's
"armed" summarises the host's armed jobs for the check across hosts that
each singleton job is armed on exactly one (preflight.yml, after every host's
result is registered: reading another host's job list from hostvars templates
all of it, in every host's worker).

Why an action plugin and not ansible.builtin.assert and
ansible.builtin.validate_argument_spec: every task costs each host a worker
process on the controller, and validate_argument_spec deep-copies the
templated variables (the job list included) value by value: 0.11 s of its
0.26 s per host at 300 jobs. Here the variables are templated once, made
plain Python values, and handed to the same validator ansible-core uses
(ArgumentSpecValidator, with the role spec's semantics).
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tickgate_check
short_description: The tickgate preflight's controller-side checks of one host (changes nothing)
description:
  - Fails at the first check that finds a problem, with its message; the
    later checks do not run.
  - 1. the job list and C(tickgate_notify) (the C(tickgate_job_errors) and
    C(tickgate_target_errors) filters), one line per problem naming the
    host, the job and the field;
  - 2. every option of I(spec_file)'s C(argument_specs.main) against the
    host's variables, as C(ansible.builtin.validate_argument_spec) does;
  - When both pass, returns C(armed), the host's jobs that are present and
    enabled with their C(singleton) (the C(tickgate_armed) filter), which
    the C(tickgate_singleton_errors) filter reads across the play's hosts.
options:
  spec_file: {description: The role's meta/argument_specs.yml, type: path, required: true}
author: tickgate
"""

RETURN = r"""
armed: {description: the host's armed jobs, as the tickgate_armed filter gives them, type: str, returned: success}
"""

import os
import sys

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "filter_plugins"))
import tickgate as tg_filters  # noqa: E402  (the role's filter plugin, beside this file)


def _spec(path):
    """The main entry point's options."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["argument_specs"]["main"]["options"]


def plain(v):
    """v as plain Python values (ansible-core's templated values are tagged
    subclasses, which copy.deepcopy walks slowly)."""
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, dict):
        return {plain(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def check(host, values, spec):
    """The first check's problems, as the task's message ('' if none)."""
    errors = tg_filters.tickgate_job_errors(
        values.get("tickgate_jobs"),
        values.get("tickgate_job_defaults"),
        values.get("tickgate_supervisor_user"),
        len(values.get("tickgate_fleet_dsn") or "") > 0,
    ) + tg_filters.tickgate_target_errors(values.get("tickgate_notify", []))
    if errors:
        return "host %s: %s" % (host, " | ".join(errors))
    result = ArgumentSpecValidator(spec).validate(values, validate_role_argument_spec=True)
    if result.error_messages:
        return "Validation of arguments failed:\n%s" % "\n".join(result.error_messages)
    return ""


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        spec = _spec(self._task.args["spec_file"])
        values = plain(self._templar.template({k: task_vars[k] for k in spec if k in task_vars}))
        msg = check(task_vars.get("inventory_hostname"), values, spec)
        result["changed"] = False
        if msg:
            result["failed"] = True
            result["msg"] = msg
        else:
            result["armed"] = tg_filters.tickgate_armed(values.get("tickgate_jobs"))
        return result
