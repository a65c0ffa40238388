# -*- coding: utf-8 -*-
"""tickgate_plan: the preflight's controller-side checks of one host, then
its jobs resolved and every unit rendered, into a plan file the later
tickgate_units steps read. One task, not two: each task costs every host a
worker process on the controller (docs/design/deploy-speed.md), and the job list is
templated once for both.

The checks, in order: the job list (one line per problem, naming host, job
and field) and the role's variables against meta/argument_specs.yml. Its
result's "armed" summarises the host's armed jobs for the check across hosts
that each singleton job is armed on exactly one (preflight.yml, after every
host's result is registered: reading another host's job list from hostvars
templates all of it, in every host's worker). Why not ansible.builtin.assert
and ansible.builtin.validate_argument_spec: validate_argument_spec
deep-copies the templated variables (the job list included) value by value:
0.11 s of its 0.26 s per host at 300 jobs. Here the variables are templated
once, made plain Python values, and handed to the same validator
ansible-core uses (ArgumentSpecValidator, with the role spec's semantics).

Why an action plugin and not set_fact + a template lookup: with 1000 jobs,
ansible-core's template lookup deep-copies every variable of the host (the
job list included) before it renders, and a set_fact of the resolved jobs is
walked and tagged value by value; together they took 3.7 s of a 17 s
idempotent deploy. Here the jobs are resolved by the same filter functions,
the units are rendered by Jinja2 directly, and only a small summary becomes
a fact (docs/design/deploy-speed.md).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping

import jinja2
import yaml
from ansible import constants as C
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "filter"))
import tickgate as tg_filters  # noqa: E402  (the collection's filter plugin)


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
    jobs = values.get("tickgate_jobs")
    errors += tg_filters.tickgate_lock_group_errors(values.get("tickgate_lock_groups"), jobs if isinstance(jobs, list) else None)
    errors += tg_filters.tickgate_blackout_errors(values.get("tickgate_blackouts"), jobs if isinstance(jobs, list) else None)
    insecure = str(values.get("tickgate_fleet_insecure", False)).lower() in ("true", "yes", "on", "1")
    for var in ("tickgate_fleet_dsn", "tickgate_fleet_admin_dsn"):
        errors += tg_filters.tickgate_dsn_errors(values.get(var) or "", var, insecure)
    errors += tg_filters.tickgate_fleet_setting_errors(values)
    if errors:
        return "host %s: %s" % (host, " | ".join(errors))
    result = ArgumentSpecValidator(spec).validate(values, validate_role_argument_spec=True)
    messages = result.error_messages + unconverted(values, spec)
    if messages:
        return "Validation of arguments failed:\n%s" % "\n".join(messages)
    return ""


# The strings (any case) that ansible.builtin.bool, which the role applies
# to its boolean variables, reads as true or false: `-e tickgate_purge=true`
# passes a string.
BOOL_WORDS = {"yes", "on", "true", "1", "no", "off", "false", "0"}


def unconverted(values, spec):
    """What the validator accepts only by converting it: the role reads its
    variables as given, not as converted, so a list where a string belongs
    would fail later, in a template or on the host with its gate closed.
    Numbers stay allowed for strings (durations in seconds, names that are
    digits); a boolean may be a string the role's `| bool` reads the same
    way as the validator (not "y" or "t", which the validator takes and
    ansible.builtin.bool does not)."""
    out = []
    for name, opt in spec.items():
        if name not in values:
            continue
        v, kind = values[name], opt.get("type", "str")
        if kind == "bool":
            if not (
                isinstance(v, bool) or (isinstance(v, str) and v.lower() in BOOL_WORDS) or (isinstance(v, int) and v in (0, 1))
            ):
                out.append("%s: must be true or false (or yes/no, on/off, 1/0), not %r" % (name, v))
        elif kind in ("str", "path") and (v is None or isinstance(v, (bool, list, dict))):
            out.append("%s: must be a string, not %s" % (name, "null" if v is None else type(v).__name__))
    return out


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


# The catch-up's timer, beside the catch-up service's template.
CATCH_UP_TIMER = "tickgate-catch-up.timer.j2"
# The fleet starts' service and timer (templates beside it too).
FLEET_STARTS = "tickgate-fleet-starts"


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
    # Fleet starts (tickgate start --fleet) reach a host through a timer
    # that asks the fleet database for them.
    floating = [j for j in present if j.get("singleton") == "fleet"]
    if floating:
        try:
            scope = _Scope({"__tickgate_fleet_env": floating[0]["env"]})
            units["tickgate-fleet-starts.service"] = _render(env, FLEET_STARTS + ".service.j2", scope).strip() + "\n"
            units["tickgate-fleet-starts.timer"] = _render(env, FLEET_STARTS + ".timer.j2", _Scope({})).strip() + "\n"
        except jinja2.TemplateError as e:
            raise AnsibleActionFail("tickgate-fleet-starts units: rendering: %s" % e)
    # No gate reopens when a blackout window closes or a precondition holds
    # again: a timer starts the catch-up (which starts nothing when nothing
    # is owed, or the gate, a window or a precondition still stops it).
    if any(j.get("blackout_windows") or "precondition" in (j.get("catch_up_on") or []) for j in catch_up):
        try:
            units["tickgate-catch-up.timer"] = _render(env, CATCH_UP_TIMER, _Scope({})).strip() + "\n"
        except jinja2.TemplateError as e:
            raise AnsibleActionFail("tickgate-catch-up.timer: rendering: %s" % e)
    return units


def _plain(v):
    """Ansible's tagged values as plain JSON types."""
    return json.loads(json.dumps(v, default=str))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        for k in ("spec_file", "inputs_var"):
            if k not in args:
                raise AnsibleActionFail("tickgate_plan: missing argument %s" % k)
        spec = _spec(args["spec_file"])
        values = plain(self._templar.template({k: task_vars[k] for k in spec if k in task_vars}))
        result["changed"] = False
        msg = check(task_vars.get("inventory_hostname"), values, spec)
        if msg:
            result["failed"] = True
            result["msg"] = msg
            return result
        result["armed"] = tg_filters.tickgate_armed(values.get("tickgate_jobs"))
        # Each floating singleton's schedule, as the deploy registers it.
        result["schedules"] = {
            j["name"]: tg_filters.schedule_hash(j.get("schedule"))
            for j in (values.get("tickgate_jobs") or [])
            if isinstance(j, dict) and j.get("singleton") == "fleet" and j.get("state", "present") == "present"
        }
        # The checked values, as JSON will store them in the plan.
        jobs = _plain(values.get("tickgate_jobs"))
        defaults = _plain(values.get("tickgate_job_defaults"))
        inputs = _plain(self._templar.template(task_vars[args["inputs_var"]]))
        for k in ("settings", "service_template", "timer_template", "catch_up_template"):
            if k not in inputs:
                raise AnsibleActionFail("tickgate_plan: %s has no %s" % (args["inputs_var"], k))
        settings = inputs["settings"]
        # Where the helper comes from: without a package or a prebuilt
        # binary, the deploy builds one, which needs a checkout's script.
        src = inputs.get("helper_source") or {}
        if src and not src.get("package") and not src.get("binary_src") and not os.path.isfile(src.get("build_script", "")):
            result["failed"] = True
            result["msg"] = (
                "%s: no helper to install: set tickgate_package (the .deb from make dist) or tickgate_binary_src; "
                "%s is missing (an installed collection carries no Go sources to build from)"
                % (task_vars.get("inventory_hostname"), src.get("build_script"))
            )
            return result
        resolved = tg_filters.tickgate_normalize_jobs(jobs, defaults, settings)
        managed = task_vars.get("ansible_managed")
        managed = self._templar.template(managed) if managed is not None else C.config.get_config_value("DEFAULT_MANAGED_STR")
        host_vars = _HostVars(self._templar, task_vars, {"ansible_managed": managed})
        units = render_units(
            resolved, inputs["service_template"], inputs["timer_template"], inputs["catch_up_template"], host_vars
        )
        present = [j for j in resolved if j["state"] == "present"]
        files = []
        for f in inputs.get("files") or []:
            src = f.pop("src")
            env = _environment([os.path.dirname(src)])
            try:
                f["content"] = _render(env, os.path.basename(src), host_vars)
            except (jinja2.TemplateError, OSError) as e:
                raise AnsibleActionFail("%s: rendering %s: %s" % (f.get("path"), src, e))
            files.append(f)
        plan = {"jobs": resolved, "units": units, "files": files}
        d = os.path.join(C.DEFAULT_LOCAL_TMP, "tickgate-plans")
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="%s." % task_vars.get("inventory_hostname", "host"), suffix=".json", dir=d)
        with os.fdopen(fd, "w") as out:
            json.dump(plan, out)
        result["ansible_facts"] = {
            "__tickgate_plan": {"path": path, "jobs": len(resolved), "present": len(present), "units": len(units)}
        }
        return result
