"""RLW: the conformance suite, fresh reproducible simplex weights every step, their distribution."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting.rlw import RLW
from tests.weighting_support import F64, WeightingConformance, applied_weights


class TestConformance(WeightingConformance):
    name = "rlw"


def test_rlw_draws_fresh_simplex_weights_every_step_reproducibly():
    losses = torch.tensor([0.3, 1.2, 0.7, 2.0], dtype=F64)

    def draws(seed: int, count: int = 20) -> torch.Tensor:
        torch.manual_seed(seed)
        strategy = RLW(4)
        out = []
        for _ in range(count):
            applied = applied_weights(strategy, losses)
            assert torch.allclose(strategy.task_weights().double(), applied, rtol=1e-6)
            out.append(applied)
        return torch.stack(out)

    weights = draws(seed=0)
    assert (weights > 0).all()
    assert torch.allclose(weights.sum(dim=1), torch.ones(20, dtype=F64))
    assert ((weights[1:] - weights[:-1]).abs().amax(dim=1) > 1e-6).all()  # a new draw each step
    assert torch.equal(draws(seed=0), weights)  # the trial's seed replays them
    assert not torch.allclose(draws(seed=1), weights)


def test_rlw_weights_are_a_softmax_of_standard_normals():
    # log w_i - log w_j = n_i - n_j with n ~ N(0, I): mean 0, variance 2 (4000 draws: the
    # standard error of the variance is about 2 * sqrt(2 / 4000) = 0.045)
    torch.manual_seed(3)
    strategy = RLW(3)
    samples = torch.stack([applied_weights(strategy, torch.ones(3, dtype=F64)) for _ in range(4000)])
    differences = samples[:, 0].log() - samples[:, 1].log()
    assert abs(differences.mean().item()) < 0.1
    assert differences.var().item() == pytest.approx(2.0, abs=0.2)
    assert torch.allclose(samples.mean(dim=0), torch.full((3,), 1 / 3, dtype=F64), atol=0.02)
