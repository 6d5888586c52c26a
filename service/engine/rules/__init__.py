"""The rules, one module per kind; importing this package registers every rule in RULES."""

from __future__ import annotations

import importlib
import pkgutil

from service.engine.registry import RULES, RuleSpec

# Every module of this package is a rule module: a new one registers itself without an edit
# here (the registry refuses a name registered twice).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["RULES", "RuleSpec"]
