"""The tickgate modules' code for the unit tests: the module_utils and the
three modules, importable from a checkout (through collections/, the link
to it) and from ansible-test's ansible_collections tree alike.

m reads a name from whichever of them defines it and sets it in every one
that has it, so a test that stubs a function (m.run = fake) replaces it
wherever the code looks it up."""

from __future__ import annotations

import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
if os.sep + "ansible_collections" + os.sep not in TOP + os.sep:
    sys.path.insert(0, os.path.join(TOP, "collections"))
# Where ansible_collections is importable from (a module run as a program
# needs it on PYTHONPATH).
COLLECTIONS_PATH = next(p for p in sys.path if os.path.isdir(os.path.join(p or ".", "ansible_collections", "tickgate")))

PKG = "ansible_collections.tickgate.tickgate.plugins"
UTILS = [
    importlib.import_module("%s.module_utils.%s" % (PKG, n))
    for n in ("tickgate_sys", "tickgate_unitfiles", "tickgate_cron", "tickgate_gate", "tickgate_layout", "tickgate_hoststep")
]
FRAGMENTS = importlib.import_module("%s.doc_fragments.tickgate" % PKG)
MODULES = {n: importlib.import_module("%s.modules.%s" % (PKG, n)) for n in ("tickgate_units", "tickgate_layout", "tickgate_host")}


class _Everywhere:
    def __getattr__(self, name):
        for mod in UTILS:
            if name in vars(mod):
                return vars(mod)[name]
        raise AttributeError(name)

    def __setattr__(self, name, value):
        hit = False
        for mod in UTILS:
            if name in vars(mod):
                setattr(mod, name, value)
                hit = True
        if not hit:
            raise AttributeError(name)


m = _Everywhere()
