"""Sharing strategies: which parameters the tasks share.

Every module in this package that defines a :class:`Sharing` subclass with a ``name`` is a
registered architecture: ``SHARINGS`` maps each name to its class (found by importing the
modules, so a new architecture is one new file).
"""

from __future__ import annotations

from ..registry import UnknownStrategyError, discover, lookup
from .base import Backbone, Batch, SharedOutput, Sharing, copy_trainable, mlp, tap
from .hard import HardSharing

SHARINGS: dict[str, type[Sharing]] = discover(__name__, __path__, Sharing, "sharing")


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
