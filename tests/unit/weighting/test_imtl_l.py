"""IMTL-L: the conformance suite, the objective and its gradients, the optimum, its own learning
rate."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting.imtl_l import IMTLL
from tests.weighting_support import WeightingConformance


class TestConformance(WeightingConformance):
    name = "imtl_l"


def test_imtl_l_objective_and_gradients():
    strategy = IMTLL(3)
    s = torch.tensor([0.3, -1.2, 0.0])
    with torch.no_grad():
        strategy.scales.copy_(s)
    losses = torch.tensor([2.0, 0.4, 1.1], requires_grad=True)
    objective = strategy(losses)
    assert objective.item() == pytest.approx((torch.exp(s) * losses.detach() - s).sum().item())
    objective.backward()
    assert torch.allclose(losses.grad, torch.exp(s))
    assert torch.allclose(strategy.task_weights(), torch.exp(s))
    assert torch.allclose(strategy.scales.grad, torch.exp(s) * losses.detach() - 1)


def test_imtl_l_optimum_brings_every_scaled_loss_to_one():
    generator = torch.Generator().manual_seed(5)
    losses = torch.exp(torch.empty(5).uniform_(-4, 3, generator=generator))  # 0.02 .. 20
    strategy = IMTLL(5)
    optimizer = torch.optim.SGD(strategy.parameters(), lr=0.05)
    for _ in range(1500):
        optimizer.zero_grad()
        strategy(losses).backward()
        optimizer.step()
    assert torch.allclose(strategy.scales.detach(), -losses.log(), atol=1e-4)
    assert torch.allclose(strategy.task_weights() * losses, torch.ones(5), atol=1e-4)


def test_imtl_l_has_its_own_learning_rate():
    assert IMTLL(2).learning_rate() == 1e-2
    assert IMTLL(2, lr=None).learning_rate() is None
    assert IMTLL(2, lr=0.1).learning_rate() == 0.1


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": -0.1}, "lr"),
    ],
)
def test_bad_hyperparameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name) as info:
        IMTLL(2, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)
