"""Weighting strategies: how task losses or task gradients become one update.

``WEIGHTINGS`` maps each registered name to its class; :func:`get_weighting` builds one by name.
"""

from __future__ import annotations

from typing import Any

from ..registry import UnknownStrategyError, lookup
from .base import GradientAggregator, GradSpace, LossWeighting, Weighting, describe, type_name
from .equal import Equal
from .pcgrad import PCGrad
from .scalarization import Scalarization
from .uncertainty import Uncertainty

WEIGHTINGS: dict[str, type[Weighting]] = {
    cls.name: cls for cls in (Equal, Scalarization, Uncertainty, PCGrad)
}


def get_weighting_class(name: str) -> type[Weighting]:
    return lookup(WEIGHTINGS, name, "weighting")


def get_weighting(name: str, num_tasks: int, **hyperparameters: Any) -> Weighting:
    return get_weighting_class(name)(num_tasks, **hyperparameters)


__all__ = [
    "WEIGHTINGS",
    "GradientAggregator",
    "GradSpace",
    "LossWeighting",
    "UnknownStrategyError",
    "Weighting",
    "describe",
    "get_weighting",
    "get_weighting_class",
    "type_name",
]
