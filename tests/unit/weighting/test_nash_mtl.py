"""Nash-MTL: the conformance suite, the bargaining condition, scale invariance, clipping, a
cancelling pair, a bad max_norm."""

from __future__ import annotations

import math

import pytest
import torch

from polytask.strategies.weighting.nash_mtl import NashMTL
from tests.weighting_support import F64, GramianConformance, ones, random_conflicting, scaled_conflicting


class TestConformance(GramianConformance):
    name = "nash_mtl"


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_nash_mtl_weights_solve_the_bargaining_condition(k, seed):
    jacobian = scaled_conflicting(k, 30, seed) if seed % 2 else random_conflicting(k, 30, seed)
    gram = jacobian @ jacobian.T
    alpha = NashMTL(k, max_norm=0.0).combine_weights(gram, ones(k))
    assert (alpha > 0).all()
    assert torch.allclose(alpha * (gram @ alpha), ones(k), rtol=0, atol=1e-6)  # M alpha = 1 / alpha
    # hence every task improves (g_i . d = 1 / alpha_i > 0) and ||d||^2 = K
    assert (alpha @ gram @ alpha).item() == pytest.approx(k, rel=1e-6)


def test_nash_mtl_is_invariant_to_the_scale_of_each_task():
    jacobian = random_conflicting(3, 30, 1)
    update = NashMTL(3, max_norm=0.0)(jacobian, ones(3))
    rescaled = jacobian * torch.tensor([[100.0], [1e-3], [2.0]], dtype=F64)
    assert torch.allclose(NashMTL(3, max_norm=0.0)(rescaled, ones(3)), update, rtol=1e-8, atol=1e-10)


def test_nash_mtl_clips_the_update_norm():
    jacobian = random_conflicting(4, 30, 2)
    strategy = NashMTL(4)  # max_norm = 1, as in the official code
    assert strategy(jacobian, ones(4)).norm().item() == pytest.approx(1.0, rel=1e-9)  # sqrt(4) clipped to 1
    assert NashMTL(4, max_norm=3.0)(jacobian, ones(4)).norm().item() == pytest.approx(2.0, rel=1e-6)  # not clipped
    unclipped = NashMTL(4, max_norm=0.0).combine_weights(jacobian @ jacobian.T, ones(4))
    assert torch.allclose(strategy.task_weights(), (unclipped / 2).float())


def test_nash_mtl_with_a_cancelling_pair_still_bargains_for_the_other_task():
    # g0 = -g1: no bargaining solution for them (0 is in their hull); the ridge gives them large
    # equal weights that cancel, and task 2 gets its own solution alpha_2 ||g2||^2 = 1.
    jacobian = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]], dtype=F64)
    strategy = NashMTL(3, max_norm=0.0)
    update = strategy(jacobian, ones(3))
    assert torch.allclose(update, torch.tensor([0.0, 1.0], dtype=F64), atol=1e-9)
    weights = strategy.task_weights()
    assert weights[0] == weights[1] and weights[0] > 1e5
    assert weights[2].item() == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("max_norm", [-1.0, math.inf, math.nan])
def test_nash_mtl_rejects_a_bad_max_norm(max_norm):
    with pytest.raises(ValueError, match="max_norm"):
        NashMTL(2, max_norm=max_norm)
