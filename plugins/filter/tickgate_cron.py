# -*- coding: utf-8 -*-
"""tickgate_cron_grouped: the jobs `tickgate cron import` printed for each
host, split into what every host of a group has (for group_vars) and what
is each host's own (for host_vars), for playbooks/cron_import.yml.

A group takes the jobs that every one of its hosts has, identical; the
largest groups first, so a job lands in one group at most. A group whose
hosts were not all imported takes nothing (its group_vars would reach a host
that does not have the job)."""

from __future__ import annotations

import json
import re


def group_var(group):
    """The variable a group's imported jobs are in."""
    return "tickgate_imported_jobs_" + re.sub(r"[^a-z0-9_]", "_", group.lower())


def tickgate_cron_grouped(imports, groups):
    """imports: {host: [job, ...]}; groups: the inventory's groups
    ({name: [host, ...]}, as the groups variable has them). Returns
    {"groups": {group: [job, ...]}, "hosts": {host: {"jobs": [job, ...],
    "groups": [group, ...]}}}: each host's own jobs and the groups whose
    jobs it takes, in order."""
    key = {}
    left = {}
    for host, jobs in imports.items():
        left[host] = []
        for job in jobs or []:
            k = json.dumps(job, sort_keys=True)
            key[k] = job
            left[host].append(k)
    candidates = []
    for name, members in (groups or {}).items():
        members = sorted(set(members or []))
        if name in ("all", "ungrouped") or len(members) < 2 or any(m not in imports for m in members):
            continue
        candidates.append((-len(members), name, members))
    out = {"groups": {}, "hosts": {h: {"jobs": [], "groups": []} for h in imports}}
    for unused_size, name, members in sorted(candidates):
        common = [k for k in left[members[0]] if all(k in left[m] for m in members[1:])]
        if not common:
            continue
        out["groups"][name] = [key[k] for k in common]
        for m in members:
            left[m] = [k for k in left[m] if k not in common]
            out["hosts"][m]["groups"].append(name)
    for host, ks in left.items():
        out["hosts"][host]["jobs"] = [key[k] for k in ks]
    return out


def tickgate_cron_group_var(group):
    """The variable name a group's imported jobs are written under."""
    return group_var(group)


class FilterModule(object):
    def filters(self):
        return {"tickgate_cron_grouped": tickgate_cron_grouped, "tickgate_cron_group_var": tickgate_cron_group_var}
