"""Loss-variance weighting: the conformance suite, weights that are the normalised running standard
deviations, checked against a computation written here."""

from __future__ import annotations

import torch

from polytask.strategies.weighting.loss_variance import LossVariance
from tests.weighting_support import F64, WeightingConformance, applied_weights


class TestConformance(WeightingConformance):
    name = "loss_variance"


def test_loss_variance_weights_are_the_normalised_running_stds():
    generator = torch.Generator().manual_seed(0)
    spread = torch.tensor([0.1, 1.0, 3.0, 0.5], dtype=F64)
    history = 5 + spread * torch.randn(40, 4, generator=generator, dtype=F64)
    strategy = LossVariance(4)
    assert torch.allclose(strategy.task_weights(), torch.full((4,), 0.25))
    for n in range(1, 41):
        strategy.on_step_end(history[n - 1])
        if n < 2:
            expected = torch.full((4,), 0.25, dtype=F64)
        else:
            std = history[:n].std(dim=0)  # sample std, as the method states
            expected = std / std.sum()
        assert torch.allclose(strategy.task_weights().double(), expected, rtol=1e-5)
        assert torch.allclose(applied_weights(strategy, history[n - 1]), expected, rtol=1e-9)
    assert strategy.task_weights().argmax() == 2  # the noisiest task weighs most


def test_loss_variance_running_std_is_stable_over_a_long_run():
    # Welford's update keeps digits where sum(x^2) - n mean^2 would cancel (mean 1e4, std 1e-2)
    generator = torch.Generator().manual_seed(1)
    history = 1e4 + torch.tensor([1e-2, 3e-2], dtype=F64) * torch.randn(3000, 2, generator=generator, dtype=F64)
    strategy = LossVariance(2)
    for losses in history:
        strategy.on_step_end(losses)
    std = history.std(dim=0)
    assert torch.allclose(strategy.task_weights().double(), std / std.sum(), rtol=1e-5)


def test_loss_variance_is_equal_while_every_loss_is_constant():
    strategy = LossVariance(3)
    for _ in range(5):
        strategy.on_step_end(torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(strategy.task_weights(), torch.full((3,), 1 / 3))
    strategy.on_step_end(torch.tensor([1.0, 2.5, 3.0]))  # only task 1 has moved
    assert torch.allclose(strategy.task_weights(), torch.tensor([0.0, 1.0, 0.0]))
