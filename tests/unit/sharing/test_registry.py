"""The sharing registry: unknown names, and a test file per registered architecture that runs
the conformance suite (a new architecture without its tests fails here)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from polytask.strategies.sharing import SHARINGS, UnknownStrategyError, get_sharing_class
from tests.sharing_support import SharingConformance

ALL = sorted(SHARINGS)
HERE = Path(__file__).parent


def test_unknown_name_lists_known_ones_and_suggests():
    with pytest.raises(UnknownStrategyError) as info:
        get_sharing_class("hrad")
    message = str(info.value)
    assert "Did you mean 'hard'" in message
    for name in ALL:
        assert name in message


@pytest.mark.parametrize("name", ALL)
def test_every_architecture_has_its_own_test_file_running_the_conformance_suite(name):
    path = HERE / f"test_{name}.py"
    assert path.is_file(), f"sharing '{name}' has no test file {path.relative_to(HERE.parents[2])}"
    module = importlib.import_module(f"{__package__}.test_{name}")
    runs = [
        value
        for key, value in vars(module).items()
        if key.startswith("Test") and isinstance(value, type) and issubclass(value, SharingConformance) and value.name == name
    ]
    assert runs, f"{path.name} has no Test* class subclassing SharingConformance with name = {name!r}"
