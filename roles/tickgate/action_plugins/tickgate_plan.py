# -*- coding: utf-8 -*-
"""tickgate_plan: resolve the jobs and render every unit on the controller,
in one step, into a plan file the later tickgate_units steps read.

Why an action plugin and not set_fact + a template lookup: with 1000 jobs,
ansible-core's template lookup deep-copies every variable of the host (the
job list included) before it renders, and a set_fact of the resolved jobs is
walked and tagged value by value; together they took 3.7 s of a 17 s
idempotent deploy. Here the jobs are resolved by the same filter functions,
the units are rendered by Jinja2 directly, and only a small summary becomes
a fact (README "Benchmarks").
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tickgate_plan
short_description: Resolve tickgate's jobs and render their units into a plan file (controller only)
description:
  - Runs on the controller, changes nothing anywhere. Resolves I(jobs) with
    I(job_defaults) and I(settings) (the C(tickgate_normalize_jobs) filter),
    renders each present job's service and timer from I(service_template) and
    I(timer_template) (and the catch-up service when a job has
    C(catch_up=once)) and writes all of it to a private file under
    ansible-core's local temp directory, removed when the run ends.
  - Templates see C(job), every variable of the host (resolved on first use),
    C(ansible_managed), and ansible.builtin's filters plus tickgate's.
options:
  jobs_var:
    description:
      - The name of the variable holding the job list (tickgate_jobs),
        templated by the action itself, not passed as an argument - a task's
        arguments travel back with its result, pickled, to ansible-playbook's
        main process (which handles every host's results one after another),
        and the job list is large.
    type: str
    required: true
  job_defaults: {description: tickgate_job_defaults, type: dict, required: true}
  settings: {description: What the resolved jobs need (paths, supervisor, fleet), type: dict, required: true}
  service_template: {description: Path of the service unit template, type: path, required: true}
  timer_template: {description: Path of the timer unit template, type: path, required: true}
  catch_up_template: {description: Path of the catch-up service template, type: path, required: true}
  files:
    description:
      - Host files rendered from templates into the plan too (path of the
        template as src, and dest, owner, group, mode, force); C(tickgate_units
        action=host) installs them.
    type: list
    elements: dict
    default: []
author: tickgate
"""

RETURN = r"""
ansible_facts:
  description: __tickgate_plan, a small summary - path (the plan file), jobs, present, units (counts)
  type: dict
  returned: success
"""

import json
import os
import sys
import tempfile
from collections.abc import Mapping

import jinja2
from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "filter_plugins"))
import tickgate as tg_filters  # noqa: E402  (the role's filter plugin, beside this file)


def _builtin_filters():
    """ansible.builtin's filters, for unit templates a user replaced."""
    out = {}
    for mod in ("core", "mathstuff", "urls", "urlsplit"):
        try:
            m = __import__("ansible.plugins.filter.%s" % mod, fromlist=["FilterModule"])
            out.update(m.FilterModule().filters())
        except Exception:  # pragma: no cover - a filter module this ansible-core lacks
            pass
    return out


class _HostVars(Mapping):
    """The host's variables for the templates, each templated by Ansible
    when a template first uses it (most templates use a handful)."""

    def __init__(self, templar, task_vars, extra):
        self._templar, self._vars, self._extra, self._done = templar, task_vars, extra, {}

    def __getitem__(self, key):
        if key in self._extra:
            return self._extra[key]
        if key not in self._done:
            if key not in self._vars:
                raise KeyError(key)
            self._done[key] = self._templar.template(self._vars[key])
        return self._done[key]

    def __contains__(self, key):
        return key in self._extra or key in self._vars

    def __iter__(self):
        return iter(set(self._extra) | set(self._vars))

    def __len__(self):
        return len(set(self._extra) | set(self._vars))


def _environment(searchpath):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(searchpath),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do"],
        autoescape=False,
    )
    env.filters.update(_builtin_filters())
    env.filters.update(tg_filters.FilterModule().filters())
    return env


def _render(env, name, context_vars):
    """Render template name with context_vars as the parent scope, without
    copying it (Template.render would make a dict of every variable)."""
    t = env.get_template(name)
    ctx = t.new_context(context_vars, shared=True)
    return "".join(t.root_render_func(ctx))


def render_units(jobs, service_template, timer_template, catch_up_template, host_vars):
    """Unit file name -> content for the present jobs (and the catch-up
    service when a job needs it)."""
    searchpath = []
    for p in (service_template, timer_template, catch_up_template):
        d = os.path.dirname(p)
        if d not in searchpath:
            searchpath.append(d)
    env = _environment(searchpath)
    units = {}

    class _Scope(Mapping):
        """job, then the host's variables."""

        def __init__(self, local):
            self.local = local

        def __getitem__(self, k):
            return self.local[k] if k in self.local else host_vars[k]

        def __contains__(self, k):
            return k in self.local or k in host_vars

        def __iter__(self):
            return iter(set(self.local) | set(host_vars))

        def __len__(self):
            return len(set(self.local) | set(host_vars))

    present = [j for j in jobs if j["state"] == "present"]
    sname, tname = os.path.basename(service_template), os.path.basename(timer_template)
    for job in present:
        try:
            scope = _Scope({"job": job})
            units[job["unit"] + ".service"] = _render(env, sname, scope).strip() + "\n"
            units[job["unit"] + ".timer"] = _render(env, tname, scope).strip() + "\n"
        except jinja2.TemplateError as e:
            raise AnsibleActionFail("job %s: rendering its units: %s" % (job["name"], e))
    catch_up = [j for j in present if j.get("catch_up") == "once"]
    if catch_up:
        try:
            scope = _Scope({"__tickgate_catch_up_env": catch_up[0]["env"]})
            units["tickgate-catch-up.service"] = _render(env, os.path.basename(catch_up_template), scope).strip() + "\n"
        except jinja2.TemplateError as e:
            raise AnsibleActionFail("tickgate-catch-up.service: rendering: %s" % e)
    return units


def _plain(v):
    """Ansible's tagged values as plain JSON types."""
    return json.loads(json.dumps(v, default=str))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        for k in ("jobs_var", "job_defaults", "settings", "service_template", "timer_template", "catch_up_template"):
            if k not in args:
                raise AnsibleActionFail("tickgate_plan: missing argument %s" % k)
        jobs = _plain(self._templar.template(task_vars.get(args["jobs_var"])))
        defaults = _plain(args["job_defaults"])
        settings = _plain(args["settings"])
        resolved = tg_filters.tickgate_normalize_jobs(jobs, defaults, settings)
        managed = task_vars.get("ansible_managed")
        managed = self._templar.template(managed) if managed is not None else C.config.get_config_value("DEFAULT_MANAGED_STR")
        host_vars = _HostVars(self._templar, task_vars, {"ansible_managed": managed})
        units = render_units(resolved, args["service_template"], args["timer_template"], args["catch_up_template"], host_vars)
        present = [j for j in resolved if j["state"] == "present"]
        files = []
        for spec in _plain(args.get("files") or []):
            src = spec.pop("src")
            env = _environment([os.path.dirname(src)])
            try:
                spec["content"] = _render(env, os.path.basename(src), host_vars)
            except (jinja2.TemplateError, OSError) as e:
                raise AnsibleActionFail("%s: rendering %s: %s" % (spec.get("path"), src, e))
            files.append(spec)
        plan = {"jobs": resolved, "units": units, "files": files}
        d = os.path.join(C.DEFAULT_LOCAL_TMP, "tickgate-plans")
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="%s." % task_vars.get("inventory_hostname", "host"), suffix=".json", dir=d)
        with os.fdopen(fd, "w") as f:
            json.dump(plan, f)
        result["changed"] = False
        result["ansible_facts"] = {
            "__tickgate_plan": {"path": path, "jobs": len(resolved), "present": len(present), "units": len(units)}
        }
        return result
