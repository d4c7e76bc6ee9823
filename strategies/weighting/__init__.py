"""Weighting strategies: how task losses or task gradients become one update.

Every module in this package that defines a :class:`Weighting` subclass with a ``name`` is a
registered method: ``WEIGHTINGS`` maps each name to its class (found by importing the modules,
so a new method is one new file); :func:`get_weighting` builds one by name.
"""

from __future__ import annotations

from typing import Any

from ..registry import UnknownStrategyError, describe, discover, lookup, type_name
from .base import GradientAggregator, GradSpace, GramianAggregator, JacobianAggregator, LossWeighting, Weighting
from .equal import Equal
from .pcgrad import PCGrad
from .scalarization import Scalarization
from .uncertainty import Uncertainty

WEIGHTINGS: dict[str, type[Weighting]] = discover(__name__, __path__, Weighting, "weighting")


def get_weighting_class(name: str) -> type[Weighting]:
    return lookup(WEIGHTINGS, name, "weighting")


def get_weighting(name: str, num_tasks: int, **hyperparameters: Any) -> Weighting:
    return get_weighting_class(name)(num_tasks, **hyperparameters)


__all__ = [
    "WEIGHTINGS",
    "Equal",
    "GradientAggregator",
    "GradSpace",
    "GramianAggregator",
    "JacobianAggregator",
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
