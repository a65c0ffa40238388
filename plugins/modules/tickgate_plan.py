#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""tickgate_plan is an action plugin (plugins/action/tickgate_plan.py): it
runs on the controller alone. This file only documents it, for ansible-doc."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tickgate_plan
short_description: Check a host's tickgate variables, resolve its jobs and render their units into a plan file (controller only)
description:
  - Runs on the controller, changes nothing anywhere.
  - First the checks; it fails at the first one that finds a problem, with
    its message, and writes no plan.
  - 1. the job list and C(tickgate_notify) (the C(tickgate_job_errors) and
    C(tickgate_target_errors) filters), one line per problem naming the
    host, the job and the field;
  - 2. every option of I(spec_file)'s C(argument_specs.main) against the
    host's variables, as C(ansible.builtin.validate_argument_spec) does.
  - Then the plan. Resolves the job list (C(tickgate_jobs)) with
    C(tickgate_job_defaults) and the I(inputs_var)'s C(settings) (the
    C(tickgate_normalize_jobs) filter), renders each present job's service
    and timer from its C(service_template) and C(timer_template) (and the
    catch-up service when a job has
    C(catch_up=once)) and writes all of it to a private file under
    ansible-core's local temp directory, removed when the run ends.
  - Templates see C(job), every variable of the host (resolved on first use),
    C(ansible_managed), and ansible.builtin's filters plus tickgate's.
options:
  spec_file:
    description:
      - The role's meta/argument_specs.yml. Its C(main) options are the
        variables checked, templated by the action itself (the job list,
        C(tickgate_jobs), among them), not passed as arguments - a task's
        arguments travel back with its result, pickled, to
        ansible-playbook's main process (which handles every host's results
        one after another), and the job list is large.
    type: path
    required: true
  inputs_var:
    description:
      - The name of the variable holding the plan's other inputs, templated
        by the action once the checks passed (a variable of the wrong type
        then fails as the check says, not in the templating of a task
        argument) - a dict of
      - C(settings), what the resolved jobs need (paths, supervisor, fleet);
      - C(service_template), C(timer_template) and C(catch_up_template), the
        paths of the unit templates;
      - C(files), host files rendered from templates into the plan too (path
        of the template as src, and path, owner, group, mode);
        C(tickgate_units action=host) installs them.
    type: str
    required: true
author: tickgate developers (@tickgate)
"""

EXAMPLES = r"""
- name: Check variables and plan the units
  tickgate.tickgate.tickgate_plan:
    spec_file: "{{ role_path }}/meta/argument_specs.yml"
    inputs_var: __tickgate_plan_inputs
  check_mode: false
  register: __tickgate_checked
"""

RETURN = r"""
armed:
  description: the host's jobs that are present and enabled, with their C(singleton) (the C(tickgate_armed) filter), which the
               C(tickgate_singleton_errors) filter reads across the play's hosts
  type: str
  returned: success
ansible_facts:
  description: __tickgate_plan, a small summary - path (the plan file), jobs, present, units (counts)
  type: dict
  returned: success
"""
