"""DB-MTL: the conformance suite, its equations step by step, loss-scale invariance, magnitude
balancing, and bad inputs."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting import get_weighting
from tests.weighting_support import WeightingConformance, positive, random_jacobian, step


class TestConformance(WeightingConformance):
    name = "db_mtl"


def test_db_mtl_follows_its_equations_step_by_step():
    k, eps, beta, beta_sigma = 3, 1e-8, 0.8, 0.5
    strategy = get_weighting("db_mtl", k, beta=beta, beta_sigma=beta_sigma)
    ema = torch.zeros(k, 15, dtype=torch.float64)
    for t in range(1, 6):
        grads, losses = random_jacobian(k, 15, t), positive(k, t) * 10.0**t
        update = step(strategy, grads, losses)
        log_grads = torch.stack([grads[i] / (losses[i] + eps) for i in range(k)])  # d log(L + eps)
        rate = beta / t**beta_sigma
        ema = rate * ema + (1 - rate) * log_grads
        norms = ema.norm(dim=1)
        expected = sum(norms.max() / norms[i] * ema[i] for i in range(k))
        assert torch.allclose(update, expected, rtol=1e-9)
        assert torch.allclose(strategy.task_weights().double(), norms.max() / norms * (1 - rate) / (losses + eps), rtol=1e-5)


def test_db_mtl_is_invariant_to_each_loss_scale():
    # The log transform: scaling task 1's loss by 1000 scales its gradient too, and log cancels both.
    grads, losses = random_jacobian(3, 15, 0), positive(3, 0)
    scaled_grads, scaled_losses = grads.clone(), losses.clone()
    scaled_grads[1] *= 1000
    scaled_losses[1] *= 1000
    plain, scaled = get_weighting("db_mtl", 3), get_weighting("db_mtl", 3)
    for _ in range(3):
        assert torch.allclose(step(plain, grads, losses), step(scaled, scaled_grads, scaled_losses), rtol=1e-6)


def test_db_mtl_every_task_contributes_the_largest_norm():
    # with beta = 0 there is no history: the update is sum_k max_j ||h_j|| h_k / ||h_k||
    grads, losses = random_jacobian(3, 15, 1), positive(3, 1)
    update = get_weighting("db_mtl", 3, beta=0.0)(grads, losses)
    log_grads = grads / losses[:, None]
    units = log_grads / log_grads.norm(dim=1, keepdim=True)
    assert torch.allclose(update, log_grads.norm(dim=1).max() * units.sum(dim=0))


def test_db_mtl_rejects_a_jacobian_of_another_width_and_bad_hyperparameters():
    strategy = get_weighting("db_mtl", 2)
    strategy(random_jacobian(2, 5, 0), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="5"):
        strategy(random_jacobian(2, 6, 0), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="beta"):
        get_weighting("db_mtl", 2, beta=1.0)
    with pytest.raises(ValueError, match="beta_sigma"):
        get_weighting("db_mtl", 2, beta_sigma=-0.5)
