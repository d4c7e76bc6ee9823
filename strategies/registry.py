"""Name -> class lookup shared by the weighting and sharing registries."""

from __future__ import annotations

import difflib
from typing import TypeVar

T = TypeVar("T")


class UnknownStrategyError(KeyError):
    """A strategy name that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


def lookup(registry: dict[str, T], name: str, kind: str) -> T:
    try:
        return registry[name]
    except KeyError:
        close = difflib.get_close_matches(name, registry, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        known = ", ".join(sorted(registry))
        raise UnknownStrategyError(f"unknown {kind} strategy '{name}'. Known: {known}.{hint}") from None
