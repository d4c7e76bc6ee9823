"""UPGrad: the conformance suite, no conflict with any task, agreement with torchjd, the mean when
nothing conflicts, scale invariance."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import UPGrad as TorchjdUPGrad
from torchjd.linalg import QuadprogProjector

from polytask.strategies.weighting.upgrad import UPGrad
from tests.weighting_support import F64, GramianConformance, ones, random_conflicting, scaled_conflicting


class TestConformance(GramianConformance):
    name = "upgrad"


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_upgrad_update_conflicts_with_no_task(k, seed):
    jacobian = scaled_conflicting(k, 20, seed) if seed % 3 == 0 else random_conflicting(k, 20, seed)
    update = UPGrad(k)(jacobian, ones(k))
    inner = jacobian @ update
    tolerance = 1e-10 * jacobian.norm(dim=1) * update.norm()
    assert (inner >= -tolerance).all()
    assert update.norm() > 0


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_upgrad_matches_torchjd(k, seed):
    jacobian = random_conflicting(k, 20, seed)
    ours = UPGrad(k)(jacobian, ones(k))
    # torchjd with its Gramian regularisation made negligible: the same problem, another solver
    exact = TorchjdUPGrad(projector=QuadprogProjector(norm_eps=0.0, reg_eps=1e-12))(jacobian)
    assert torch.allclose(ours, exact, rtol=1e-7, atol=1e-9 * exact.norm().item())
    # with its defaults (reg_eps = 1e-4 on the trace-normalised Gramian) it moves by ~1e-3
    default = TorchjdUPGrad()(jacobian)
    assert (ours - default).norm() <= 0.05 * default.norm()


def test_upgrad_is_the_mean_when_nothing_conflicts():
    jacobian = torch.tensor([[1.0, 0.5, 0.0], [0.2, 1.0, 0.3], [0.0, 0.1, 2.0]], dtype=F64)
    strategy = UPGrad(3)
    assert torch.allclose(strategy(jacobian, ones(3)), jacobian.mean(dim=0))
    assert torch.allclose(strategy.task_weights(), torch.full((3,), 1 / 3))


def test_upgrad_does_not_collapse_to_the_mean_for_small_gradients():
    # torchjd treats ||J||_F^2 < norm_eps = 1e-4 as zero (then UPGrad is the mean); the method is
    # scale-invariant and so are we
    jacobian = random_conflicting(3, 20, 0)
    small = 1e-4 * jacobian
    weights = UPGrad(3).combine_weights(small @ small.T, ones(3))
    assert torch.allclose(weights, UPGrad(3).combine_weights(jacobian @ jacobian.T, ones(3)), rtol=1e-9)
    assert not torch.allclose(weights, torch.full((3,), 1 / 3, dtype=F64), atol=1e-3)
