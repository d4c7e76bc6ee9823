"""GLS: the conformance suite, the geometric mean and its gradient, finite where the plain product
is not, scale invariance of the direction."""

from __future__ import annotations

import math

import pytest
import torch

from polytask.strategies.weighting.gls import GLS
from tests.weighting_support import F64, WeightingConformance, applied_weights, combine


class TestConformance(WeightingConformance):
    name = "gls"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 2, 5])
def test_gls_is_the_geometric_mean_and_reports_its_gradient(k, seed):
    generator = torch.Generator().manual_seed(seed)
    losses = 0.05 + 3 * torch.rand(k, generator=generator, dtype=F64)
    strategy = GLS(k)
    x = losses.clone().requires_grad_(True)
    objective = strategy(x)
    geometric_mean = math.prod(losses.tolist()) ** (1 / k)
    assert objective.item() == pytest.approx(geometric_mean, rel=1e-12)
    (grad,) = torch.autograd.grad(objective, x)
    expected = geometric_mean / (k * losses)  # d/dL_k (prod L)^(1/K)
    assert torch.allclose(grad, expected, rtol=1e-10)
    assert torch.allclose(strategy.task_weights().double(), expected, rtol=1e-6)


def test_gls_is_finite_where_the_plain_product_is_not():
    small, large = torch.full((8,), 1e-6), torch.full((4,), 1e12)
    assert torch.prod(small) == 0 and torch.isinf(torch.prod(large))  # float32 under/overflows
    assert GLS(8)(small).item() == pytest.approx(1e-6, rel=1e-5)
    assert GLS(4)(large).item() == pytest.approx(1e12, rel=1e-5)
    assert torch.isfinite(applied_weights(GLS(8), small)).all()


def test_gls_update_direction_ignores_the_scale_of_each_loss():
    # (prod s_k L_k)^(1/K) = (prod s_k)^(1/K) (prod L_k)^(1/K): rescaling a task's loss (and with
    # it its gradient) rescales the update by a positive constant, nothing else
    generator = torch.Generator().manual_seed(4)
    jacobian = torch.randn(3, 7, generator=generator, dtype=F64)
    losses = 0.5 + torch.rand(3, generator=generator, dtype=F64)
    scales = torch.tensor([100.0, 0.01, 3.0], dtype=F64)
    plain = combine(GLS(3), jacobian, losses)
    scaled = combine(GLS(3), scales[:, None] * jacobian, scales * losses)
    assert torch.allclose(scaled, scales.prod() ** (1 / 3) * plain, rtol=1e-10)
