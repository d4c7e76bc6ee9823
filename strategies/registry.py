"""What the weighting and sharing registries share: name -> class lookup, descriptions."""

from __future__ import annotations

import difflib
import importlib
import inspect
import pkgutil
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


class UnknownStrategyError(KeyError):
    """A strategy name that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


def discover(package: str, path: Iterable[str], base: type[T], kind: str) -> dict[str, type[T]]:
    """Every ``base`` subclass with its own ``name`` defined in a module of the package (modules
    named ``base`` or starting with ``_`` are skipped): name -> class, found by importing them,
    so a new strategy is one new file."""
    found: dict[str, type[T]] = {}
    for module_info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if module_info.name.startswith("_") or module_info.name == "base":
            continue
        module = importlib.import_module(f"{package}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, base) and value.__module__ == module.__name__ and "name" in vars(value):
                if value.name in found:
                    raise RuntimeError(f"{kind} name '{value.name}' is registered twice: {found[value.name]} and {value}")
                found[value.name] = value
    return found


def lookup(registry: dict[str, T], name: str, kind: str) -> T:
    try:
        return registry[name]
    except KeyError:
        close = difflib.get_close_matches(name, registry, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        known = ", ".join(sorted(registry))
        raise UnknownStrategyError(f"unknown {kind} strategy '{name}'. Known: {known}.{hint}") from None


def describe(cls: Any) -> dict[str, Any]:
    """A JSON-friendly description of a strategy class (weighting or sharing), for
    ``polytask strategies``."""
    hints = typing.get_type_hints(cls.__init__)
    hparams = {
        name: {"type": type_name(hints.get(name)), "default": param.default}
        for name, param in cls.hyperparameters().items()
    }
    return {
        "name": cls.name,
        "family": getattr(cls, "family", "sharing"),
        "paper": cls.paper,
        "summary": (inspect.getdoc(cls) or "").splitlines()[0],
        "hyperparameters": hparams,
    }


def type_name(annotation: Any) -> str:
    """``float``, ``Sequence[float] | None``, ``Literal['a', 'b']``: a type as a user writes it."""
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("collections.abc.", "")
