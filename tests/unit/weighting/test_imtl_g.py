"""IMTL-G: the conformance suite, equal projections on every task direction, the paper's closed
form, and torchjd's implementation where the definitions coincide (and where they do not)."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import IMTLG

from polytask.strategies.weighting import get_weighting
from tests.weighting_support import F64, GramianConformance, random_jacobian


class TestConformance(GramianConformance):
    name = "imtl_g"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_imtl_g_projects_equally_on_every_task_direction(k, seed):
    grads = random_jacobian(k, 30, seed) * (0.1 + 10 * torch.rand(k, 1, generator=torch.Generator().manual_seed(seed), dtype=F64))
    strategy = get_weighting("imtl_g", k)
    update = strategy(grads, torch.ones(k))
    projections = (grads / grads.norm(dim=1, keepdim=True)) @ update
    assert torch.allclose(projections, projections.mean().expand(k), rtol=1e-7)
    assert strategy.task_weights().sum().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_imtl_g_equals_the_papers_closed_form(seed):
    grads = random_jacobian(4, 30, seed)
    units = grads / grads.norm(dim=1, keepdim=True)
    d, u = grads[:1] - grads[1:], units[:1] - units[1:]
    rest = grads[0] @ u.T @ torch.linalg.inv(d @ u.T)  # alpha_{2:K} = g_1 U^T (D U^T)^{-1}
    alpha = torch.cat([1 - rest.sum(dim=0, keepdim=True), rest])
    strategy = get_weighting("imtl_g", 4)
    assert torch.allclose(strategy(grads, torch.ones(4)), alpha @ grads)
    assert torch.allclose(strategy.task_weights().double(), alpha, atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_imtl_g_agrees_with_torchjd_on_independent_gradients(seed):
    grads = random_jacobian(4, 30, seed)
    assert torch.allclose(get_weighting("imtl_g", 4)(grads, torch.ones(4)), IMTLG()(grads))


def test_imtl_g_on_dependent_gradients():
    # torchjd takes alpha proportional to M^+ ||g|| (least squares), we take the least-norm exact
    # solution of the paper's conditions: the same for independent gradients (above). A repeated
    # task keeps an equal-projection update in the affine hull: both find that same update.
    base = random_jacobian(2, 30, 0)
    repeated = torch.cat([base, base[:1]])
    assert torch.allclose(get_weighting("imtl_g", 3)(repeated, torch.ones(3)), IMTLG()(repeated))
    # Three gradients in a plane: equal projections on three directions force g = 0, the
    # paper's closed form gives 0 too; torchjd's least-squares direction is not impartial.
    planar = random_jacobian(3, 2, 1)
    ours = get_weighting("imtl_g", 3)(planar, torch.ones(3))
    assert ours.norm() < 1e-9 * planar.norm()
    units = planar / planar.norm(dim=1, keepdim=True)
    theirs = units @ IMTLG()(planar)
    assert (theirs.max() - theirs.min()) > 1e-3


def test_imtl_g_gives_a_zero_gradient_no_weight():
    grads = torch.cat([torch.zeros(1, 20, dtype=F64), random_jacobian(2, 20, 3)])
    strategy = get_weighting("imtl_g", 3)
    update = strategy(grads, torch.ones(3))
    weights = strategy.task_weights()
    assert weights[0] == 0 and weights.sum().item() == pytest.approx(1.0)
    assert torch.allclose(update, get_weighting("imtl_g", 2)(grads[1:], torch.ones(2)))
