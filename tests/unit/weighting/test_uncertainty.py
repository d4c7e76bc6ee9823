"""Uncertainty weighting (Kendall et al.): the conformance suite, the objective and its gradients,
the optimum."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting import Uncertainty
from tests.weighting_support import WeightingConformance


class TestConformance(WeightingConformance):
    name = "uncertainty"


def test_uncertainty_objective_and_gradients_follow_kendall():
    strategy = Uncertainty(2)
    with torch.no_grad():
        strategy.log_vars.copy_(torch.tensor([0.5, -1.0]))
    losses = torch.tensor([2.0, 0.3], requires_grad=True)
    objective = strategy(losses)
    s = torch.tensor([0.5, -1.0])
    expected = 0.5 * (torch.exp(-s) * losses.detach() + s).sum()
    assert objective.item() == pytest.approx(expected.item())
    objective.backward()
    # dL/dL_k = exp(-s_k)/2 (the reported weight); dL/ds_k = (1 - exp(-s_k) L_k)/2
    assert torch.allclose(losses.grad, 0.5 * torch.exp(-s))
    assert torch.allclose(strategy.task_weights(), 0.5 * torch.exp(-s))
    assert torch.allclose(strategy.log_vars.grad, 0.5 * (1 - torch.exp(-s) * losses.detach()))


def test_uncertainty_optimum_is_the_log_loss():
    # Minimising over s_k for fixed L_k gives s_k = log L_k: low-loss tasks get large weights.
    strategy = Uncertainty(2)
    losses = torch.tensor([4.0, 0.25])
    optimizer = torch.optim.SGD(strategy.parameters(), lr=0.5)
    for _ in range(500):
        optimizer.zero_grad()
        strategy(losses).backward()
        optimizer.step()
    assert torch.allclose(strategy.log_vars.detach(), losses.log(), atol=1e-3)
