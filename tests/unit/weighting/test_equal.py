"""Equal weighting: the conformance suite and the plain sum."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting import get_weighting
from tests.weighting_support import WeightingConformance


class TestConformance(WeightingConformance):
    name = "equal"


def test_equal_is_the_sum_of_losses():
    losses = torch.tensor([0.5, 2.0, 1.5])
    assert get_weighting("equal", 3)(losses).item() == pytest.approx(4.0)
