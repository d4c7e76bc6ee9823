"""Sharing strategies: which parameters the tasks share.

Every module in this package that defines a :class:`Sharing` subclass with a ``name`` is a
registered architecture: ``SHARINGS`` maps each name to its class (found by importing the
modules, so a new architecture is one new file).
"""

from __future__ import annotations

import importlib
import pkgutil

from ..registry import UnknownStrategyError, lookup
from .base import Backbone, Batch, SharedOutput, Sharing, copy_trainable, mlp, tap
from .hard import HardSharing


def _discover() -> dict[str, type[Sharing]]:
    found: dict[str, type[Sharing]] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_") or module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Sharing) and value.__module__ == module.__name__ and "name" in vars(value):
                if value.name in found:
                    raise RuntimeError(f"sharing name '{value.name}' is registered twice: {found[value.name]} and {value}")
                found[value.name] = value
    return found


SHARINGS: dict[str, type[Sharing]] = _discover()


def get_sharing_class(name: str) -> type[Sharing]:
    return lookup(SHARINGS, name, "sharing")


__all__ = [
    "SHARINGS",
    "Backbone",
    "Batch",
    "HardSharing",
    "SharedOutput",
    "Sharing",
    "UnknownStrategyError",
    "copy_trainable",
    "get_sharing_class",
    "mlp",
    "tap",
]
