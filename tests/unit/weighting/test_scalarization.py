"""Scalarization: the conformance suite, its fixed weights, bad weights rejected."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting import Scalarization
from tests.weighting_support import WeightingConformance


class TestConformance(WeightingConformance):
    name = "scalarization"


def test_scalarization_applies_its_weights():
    losses = torch.tensor([1.0, 2.0])
    assert Scalarization(2, weights=[0.25, 1.75])(losses).item() == pytest.approx(0.25 + 3.5)
    assert Scalarization(2, weights=[0.25, 1.75]).task_weights().tolist() == [0.25, 1.75]


@pytest.mark.parametrize("weights", [[1.0], [-1.0, 2.0], [0.0, 0.0]])
def test_scalarization_rejects_bad_weights(weights):
    with pytest.raises(ValueError):
        Scalarization(2, weights=weights)
