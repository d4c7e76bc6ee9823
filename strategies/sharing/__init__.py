"""Sharing strategies: which parameters the tasks share.

``SHARINGS`` maps each registered name to its class.
"""

from __future__ import annotations

from ..registry import UnknownStrategyError, lookup
from .base import Sharing
from .hard import HardSharing

SHARINGS: dict[str, type[Sharing]] = {cls.name: cls for cls in (HardSharing,)}


def get_sharing_class(name: str) -> type[Sharing]:
    return lookup(SHARINGS, name, "sharing")


__all__ = ["SHARINGS", "HardSharing", "Sharing", "UnknownStrategyError", "get_sharing_class"]
