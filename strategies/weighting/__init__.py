"""Weighting strategies: how task losses or task gradients become one update.

Every module in this package that defines a :class:`Weighting` subclass with a ``name`` is a
registered method: ``WEIGHTINGS`` maps each name to its class (found by importing the modules,
so a new method is one new file); :func:`get_weighting` builds one by name.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from ..registry import UnknownStrategyError, describe, lookup, type_name
from .base import GradientAggregator, GradSpace, LossWeighting, Weighting
from .equal import Equal
from .pcgrad import PCGrad
from .scalarization import Scalarization
from .uncertainty import Uncertainty


def _discover() -> dict[str, type[Weighting]]:
    found: dict[str, type[Weighting]] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_") or module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Weighting) and value.__module__ == module.__name__ and "name" in vars(value):
                if value.name in found:
                    raise RuntimeError(f"weighting name '{value.name}' is registered twice: {found[value.name]} and {value}")
                found[value.name] = value
    return found


WEIGHTINGS: dict[str, type[Weighting]] = _discover()


def get_weighting_class(name: str) -> type[Weighting]:
    return lookup(WEIGHTINGS, name, "weighting")


def get_weighting(name: str, num_tasks: int, **hyperparameters: Any) -> Weighting:
    return get_weighting_class(name)(num_tasks, **hyperparameters)


__all__ = [
    "WEIGHTINGS",
    "Equal",
    "GradientAggregator",
    "GradSpace",
    "LossWeighting",
    "PCGrad",
    "Scalarization",
    "Uncertainty",
    "UnknownStrategyError",
    "Weighting",
    "describe",
    "get_weighting",
    "get_weighting_class",
    "type_name",
]
