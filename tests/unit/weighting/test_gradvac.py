"""GradVac: the conformance suite, PCGrad at zero targets, cosines raised to their targets, and
agreement with torchjd over several steps."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import GradVac

from polytask.strategies.weighting import PCGrad, get_weighting
from tests.weighting_support import GramianConformance, random_conflicting


class TestConformance(GramianConformance):
    name = "gradvac"


@pytest.mark.parametrize("seed", range(10))
def test_gradvac_with_zero_targets_is_pcgrad_for_two_tasks(seed):
    grads = random_conflicting(2, 40, seed)
    assert torch.allclose(get_weighting("gradvac", 2)(grads, torch.ones(2)), PCGrad(2)(grads, torch.ones(2)))


@pytest.mark.parametrize("seed", range(10))
def test_gradvac_raises_each_cosine_to_its_target(seed):
    grads = random_conflicting(2, 40, seed)
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    strategy = get_weighting("gradvac", 2, beta=0.25)
    targets = torch.tensor([[0.0, 0.3], [0.6, 0.0]], dtype=torch.float64)
    strategy.targets.copy_(targets)
    w = strategy.combine_weights(grads @ grads.T, torch.ones(2))  # float64, unlike the logged weights
    # for two tasks g_0' = g_0 + c_01 g_1 and g_1' = g_1 + c_10 g_0, so the weights are (1 + c_10, 1 + c_01)
    corrected = [grads[0] + (w[1] - 1) * grads[1], grads[1] + (w[0] - 1) * grads[0]]
    for i, j in ((0, 1), (1, 0)):
        reached = torch.nn.functional.cosine_similarity(corrected[i], grads[j], dim=0)
        assert reached.item() == pytest.approx(targets[i, j].item(), abs=1e-9)
        # then the targets move towards the measured cosine by beta
        assert strategy.targets[i, j].item() == pytest.approx(0.75 * targets[i, j].item() + 0.25 * cosine.item())


def test_gradvac_leaves_pairs_above_their_target_alone():
    grads = torch.tensor([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.1, 0.3, 1.0]], dtype=torch.float64)
    strategy = get_weighting("gradvac", 3)
    assert torch.allclose(strategy(grads, torch.ones(3)), grads.sum(dim=0))
    with pytest.raises(ValueError, match="beta"):
        get_weighting("gradvac", 2, beta=1.5)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_gradvac_agrees_with_torchjd_over_several_steps(k):
    # Same algorithm (torchjd's eps = 0 removes its denominator guard); both visit the other tasks
    # in the order of one randperm per task from the global generator, so seeded runs coincide.
    ours, theirs = get_weighting("gradvac", k, beta=0.3), GradVac(beta=0.3, eps=0.0)
    for t in range(4):
        grads = random_conflicting(k, 30, 10 * k + t)
        torch.manual_seed(t)
        mine = ours(grads, torch.ones(k))
        torch.manual_seed(t)
        assert torch.allclose(mine, theirs(grads), rtol=1e-9, atol=1e-12)
    assert ours.targets.abs().sum() > 0
