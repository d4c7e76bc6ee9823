"""The weighting registry: unknown names, and a test file per registered method that runs the
conformance suite (a new method without its tests fails here)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from polytask.strategies.weighting import WEIGHTINGS, GramianAggregator, UnknownStrategyError, get_weighting
from tests.weighting_support import GramianConformance, WeightingConformance

ALL = sorted(WEIGHTINGS)
HERE = Path(__file__).parent


def test_unknown_name_lists_known_ones_and_suggests():
    with pytest.raises(UnknownStrategyError) as info:
        get_weighting("pcgard", 2)
    message = str(info.value)
    assert "Did you mean 'pcgrad'" in message
    for name in ALL:
        assert name in message


@pytest.mark.parametrize("name", ALL)
def test_every_method_has_its_own_test_file_running_the_conformance_suite(name):
    path = HERE / f"test_{name}.py"
    assert path.is_file(), f"weighting '{name}' has no test file {path.relative_to(HERE.parents[2])}"
    module = importlib.import_module(f"{__package__}.test_{name}")
    suite = GramianConformance if issubclass(WEIGHTINGS[name], GramianAggregator) else WeightingConformance
    runs = [
        value
        for key, value in vars(module).items()
        if key.startswith("Test") and isinstance(value, type) and issubclass(value, suite) and value.name == name
    ]
    assert runs, f"{path.name} has no Test* class subclassing {suite.__name__} with name = {name!r}"
