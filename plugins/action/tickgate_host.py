# -*- coding: utf-8 -*-
# Copyright (c) 2026 tickgate developers; MIT License (see LICENSE)
"""Controller side of tickgate.tickgate.tickgate_host: the plan's units, jobs
and files become the module's arguments, only what the host lacks
(plugin_utils/tickgate_action.py)."""

from __future__ import annotations

from ansible_collections.tickgate.tickgate.plugins.plugin_utils.tickgate_action import PlanAction


class ActionModule(PlanAction):
    MODULE = "tickgate.tickgate.tickgate_host"
    ACTION = "host"
