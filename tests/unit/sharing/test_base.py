"""The sharing contract's base class is abstract: an architecture must implement forward,
output_dim, shared_parameters and task_parameters."""

from __future__ import annotations

import pytest

from polytask.strategies.sharing import Sharing
from tests.sharing_support import TASKS, ToyEncoder


def test_the_base_cannot_be_instantiated():
    with pytest.raises(TypeError, match="abstract"):
        Sharing(TASKS, ToyEncoder())


def test_an_architecture_missing_a_method_cannot_be_instantiated():
    class NoPartition(Sharing):
        def forward(self, batch):
            raise AssertionError("never called")

        def output_dim(self, task):
            return 6

    with pytest.raises(TypeError, match="shared_parameters") as info:
        NoPartition(TASKS, ToyEncoder())
    assert "task_parameters" in str(info.value)
