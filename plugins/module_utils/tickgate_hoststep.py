# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""The deploy's first round trip to a host (the tickgate_host module): close and drain, root's files and
the accounts check, the layout, the jobs' files and, when nothing else must come first, the write and
the reopen."""

from __future__ import annotations


from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_gate import (
    GateError,
    close_and_drain,
    write_and_reopen,
    wrote_anything,
)
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_layout import (
    host,
    lay_out,
    private_files,
    put_files,
    put_job_files,
)
from ansible_collections.tickgate.tickgate.plugins.module_utils.tickgate_sys import binary_current


def host_step(module, p, res):
    """The host action into res: site.yml's close and drain, root's files and
    the accounts check, the layout when every account exists, and with
    write_if_ready the write and the reopen when nothing else must come
    first. Returns why it failed ("" when it did not); res then still says
    whether the gate may be closed (installed)."""
    private = private_files(p)  # a missing content fails before the gate closes
    try:
        res["installed"], res["stopped"] = close_and_drain(module, p)
    except (GateError, RuntimeError, OSError) as e:
        # The gate may be closed now: site.yml's rescue says so.
        res.update(installed=True, stderr=getattr(e, "stderr", ""))
        return str(e)
    res["files"], res["fix_groups"], res["fix_users"] = host(module, p)
    for name in ("helper", "shim", "tick"):
        if p[name] and p[name + "_sha256"]:
            res[name + "_current"] = binary_current(p[name], p[name + "_sha256"])
    res["layout_done"] = p["layout_job_dirs"] is not None and not (res["fix_groups"] or res["fix_users"])
    if res["layout_done"]:
        # Every account the layout needs exists: lay out in this round
        # trip (configure.yml's layout step then skips).
        lp = dict(
            p,
            dirs=p["layout_dirs"],
            job_dirs=p["layout_job_dirs"],
            dir=p["layout_dir"],
            env_dir=p.get("layout_env_dir"),
            owner=p["layout_owner"],
            group=p["layout_group"],
        )
        res["layout"], res["moved"], files = lay_out(module, lp)
        res["files"] += files
        # The secret files and the jobs' files too: their owners exist now.
        put_files(private, module.check_mode, res["files"])
        res["job_files_done"] = put_job_files(p, module.check_mode, res["files"])
    else:
        res["job_files_done"] = False
    res["private_done"] = res["layout_done"]
    # Nothing else before the write (accounts, layout, binaries, files):
    # write and reopen now.
    res["wrote"] = bool(
        p["write_if_ready"]
        and res["layout_done"]
        and res["job_files_done"]
        and res.get("helper_current")
        and res.get("shim_current")
        and res.get("tick_current")
    )
    failed = write_and_reopen(module, p, res) if res["wrote"] else ""
    res["changed"] = bool(res["files"] or res["layout"] or res["moved"] or res["stopped"]) or wrote_anything(res)
    return failed
