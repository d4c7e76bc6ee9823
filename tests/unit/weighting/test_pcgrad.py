"""PCGrad: the conformance suite, Theorem 1's two-task guarantee, Algorithm 1 written on vectors,
the closed form, and agreement with torchjd."""

from __future__ import annotations

import math

import pytest
import torch

from polytask.strategies.weighting import PCGrad
from tests.weighting_support import GramianConformance, random_conflicting


class TestConformance(GramianConformance):
    name = "pcgrad"


@pytest.mark.parametrize("seed", range(20))
def test_pcgrad_two_task_update_agrees_with_both_gradients(seed):
    # Yu et al. 2020, Theorem 1's setting: for two tasks the projected sum never points against
    # either task's gradient.
    jacobian = random_conflicting(2, 40, seed)
    update = PCGrad(2)(jacobian, torch.ones(2))
    assert (jacobian @ update >= -1e-9).all()
    assert (jacobian[0] @ jacobian[1]) < 0  # the case is a real conflict


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("k", [3, 5])
def test_pcgrad_reports_the_weights_of_its_update(seed, k):
    jacobian = random_conflicting(k, 40, seed)
    strategy = PCGrad(k)
    update = strategy(jacobian, torch.ones(k))
    # the logged weights are float32
    assert torch.allclose(update, strategy.task_weights().to(jacobian.dtype) @ jacobian, rtol=1e-5, atol=1e-5)
    reference = _pcgrad_by_vectors(jacobian, seed)
    torch.manual_seed(seed)
    assert torch.allclose(PCGrad(k)(jacobian, torch.ones(k)), reference, atol=1e-9)


def _pcgrad_by_vectors(jacobian: torch.Tensor, seed: int) -> torch.Tensor:
    """Algorithm 1 of the paper, literally, on vectors (same task orders as the strategy)."""
    torch.manual_seed(seed)
    k = jacobian.shape[0]
    projected = []
    for i in range(k):
        g = jacobian[i].clone()
        for j in torch.randperm(k).tolist():
            if j == i:
                continue
            dot = g @ jacobian[j]
            if dot < 0:
                g = g - dot / (jacobian[j] @ jacobian[j]) * jacobian[j]
        projected.append(g)
    return torch.stack(projected).sum(dim=0)


def test_pcgrad_two_tasks_matches_the_closed_form():
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    update = PCGrad(2)(torch.stack([g1, g2]), torch.ones(2))
    # g1' = g1 - (g1.g2/|g2|^2) g2 = [0.5, 0.5]; g2' = g2 - (g2.g1/|g1|^2) g1 = [0, 1]
    assert torch.allclose(update, torch.tensor([0.5, 1.5], dtype=torch.float64))


def test_pcgrad_without_conflict_is_the_plain_sum():
    jacobian = torch.tensor([[1.0, 0.5, 0.0], [0.2, 1.0, 0.3], [0.0, 0.1, 2.0]])
    strategy = PCGrad(3)
    assert torch.allclose(strategy(jacobian, torch.ones(3)), jacobian.sum(dim=0))
    assert torch.allclose(strategy.task_weights(), torch.ones(3))


def test_pcgrad_grad_space_is_validated():
    assert PCGrad(2, grad_space="representation").grad_space == "representation"
    with pytest.raises(ValueError, match="grad_space"):
        PCGrad(2, grad_space="weights")


def test_pcgrad_ignores_zero_gradients():
    jacobian = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    update = PCGrad(2)(jacobian, torch.ones(2))
    assert torch.allclose(update, torch.tensor([1.0, -1.0]))
    assert not any(math.isnan(v) for v in update.tolist())


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_pcgrad_matches_torchjd(seed, k):
    # torchjd (an independent implementation) draws the same task orders from torch's RNG
    from torchjd.aggregation import PCGrad as TorchJDPCGrad

    jacobian = random_conflicting(k, 30, seed)
    torch.manual_seed(seed)
    ours = PCGrad(k)(jacobian, torch.ones(k, dtype=jacobian.dtype))
    torch.manual_seed(seed)
    assert torch.allclose(ours, TorchJDPCGrad()(jacobian), atol=1e-9)
