"""GradDrop: the conformance suite, one sign per element, the purity as probability, the leak, and
agreement with torchjd on the same draws."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import GradDrop

from polytask.strategies.weighting import get_weighting
from tests.weighting_support import WeightingConformance, random_conflicting, random_jacobian


class TestConformance(WeightingConformance):
    name = "graddrop"


@pytest.mark.parametrize("seed", range(5))
def test_graddrop_keeps_one_sign_per_element(seed):
    grads = random_jacobian(4, 300, seed)
    torch.manual_seed(seed)
    strategy = get_weighting("graddrop", 4)
    update = strategy(grads, torch.ones(4, dtype=torch.float64))
    positives, negatives = grads.clamp(min=0).sum(dim=0), grads.clamp(max=0).sum(dim=0)
    # each element of the update is all of its positive part or all of its negative part
    took_positive = torch.isclose(update, positives)
    assert (took_positive | torch.isclose(update, negatives)).all()
    assert took_positive.any() and (~took_positive).any()
    # the reported weights are the kept share of each task's squared gradient mass
    kept = torch.where(took_positive, grads.clamp(min=0), grads.clamp(max=0))
    assert torch.allclose(strategy.task_weights().double(), kept.square().sum(1) / grads.square().sum(1), rtol=1e-5)


def test_graddrop_drops_nothing_when_the_signs_agree():
    magnitudes = random_jacobian(3, 200, 1).abs()
    signs = torch.where(random_jacobian(1, 200, 2) > 0, 1.0, -1.0).double()
    grads = magnitudes * signs  # every task has the same sign at each element
    strategy = get_weighting("graddrop", 3)
    assert torch.equal(strategy(grads, torch.ones(3, dtype=torch.float64)), grads.sum(dim=0))
    assert torch.equal(strategy.task_weights(), torch.ones(3))


def test_graddrop_keeps_a_sign_with_probability_equal_to_its_purity():
    # at every element task 0 pushes +3 and task 1 pushes -1: P = (1 + 2/4) / 2 = 0.75
    n = 20000
    grads = torch.tensor([[3.0], [-1.0]], dtype=torch.float64).expand(2, n)
    torch.manual_seed(0)
    update = get_weighting("graddrop", 2)(grads, torch.ones(2, dtype=torch.float64))
    assert set(update.unique().tolist()) == {3.0, -1.0}
    share = (update > 0).double().mean().item()
    assert share == pytest.approx(0.75, abs=0.015)  # 5 standard deviations


def test_graddrop_leak_lets_a_task_through():
    grads = random_conflicting(2, 500, 3)
    torch.manual_seed(0)
    update = get_weighting("graddrop", 2, leak=[1.0, 0.0])(grads, torch.ones(2, dtype=torch.float64))
    # task 0 always passes; task 1 passes only where it agrees with the sign kept
    residual = update - grads[0]
    assert torch.all((residual == 0) | torch.isclose(residual, grads[1]))
    assert get_weighting("graddrop", 2, leak=1.0)(grads, torch.ones(2, dtype=torch.float64)).allclose(grads.sum(0))
    for bad in (1.5, [0.1], [-0.1, 0.0]):
        with pytest.raises(ValueError, match="leak"):
            get_weighting("graddrop", 2, leak=bad)


@pytest.mark.parametrize("seed", range(3))
def test_graddrop_agrees_with_torchjd_on_the_same_draws(seed):
    grads = random_jacobian(3, 64, seed)
    leak = torch.tensor([0.0, 0.3, 0.0], dtype=torch.float64)
    torch.manual_seed(seed)
    ours = get_weighting("graddrop", 3, leak=leak.tolist())(grads, torch.ones(3, dtype=torch.float64))
    torch.manual_seed(seed)  # both draw one uniform per element from the global generator
    theirs = GradDrop(leak=leak)(grads)
    assert torch.allclose(ours, theirs)
