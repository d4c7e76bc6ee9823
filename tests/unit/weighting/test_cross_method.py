"""Degenerate inputs across the Gramian-based aggregators built on the exact solvers (MGDA,
MGDA-UB, UPGrad, Nash-MTL, CAGrad): finite results, no false 'unbounded', no update at
Pareto-stationary points, duplicated tasks."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting import WEIGHTINGS, GramianAggregator, get_weighting
from tests.weighting_support import F64, gen, ones, random_conflicting

OURS = ["mgda", "mgda_ub", "upgrad", "nash_mtl", "cagrad"]


DEGENERATE = {
    "all zero": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    "one zero": [[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.5, 1.0]],
    "duplicated": [[1.0, 2.0, 0.0], [1.0, 2.0, 0.0], [-1.0, 0.5, 1.0]],
    "collinear": [[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.5, 1.0, 0.0]],
    "opposite": [[1.0, 2.0, 0.0], [-1.0, -2.0, 0.0], [0.0, 1.0, 1.0]],
    "more tasks than dimensions": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, -1.0, 0.0]],
    "tiny and huge": [[1e-8, 0.0, 0.0], [0.0, 1e4, 0.0], [-1e-8, 1e-8, 1e-8]],
}


@pytest.mark.parametrize("case", sorted(DEGENERATE))
@pytest.mark.parametrize("name", OURS)
def test_degenerate_gradients_give_finite_results(name, case):
    jacobian = torch.tensor(DEGENERATE[case], dtype=F64)
    strategy = get_weighting(name, 3)
    update = strategy(jacobian, ones(3))
    assert torch.isfinite(update).all() and torch.isfinite(strategy.task_weights()).all()
    assert update.norm() <= 1e3 * jacobian.norm() + 1e-12
    for scale in (1e-8, 1e4):  # the same directions at extreme scales
        assert torch.isfinite(get_weighting(name, 3)(scale * jacobian, ones(3))).all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", OURS)
def test_nearly_opposite_gradients_are_not_mistaken_for_an_unbounded_problem(name, seed):
    # g0 + g1 ~ 1e-9: the curvature along it (1e-18) is below the Gramian's rounding, while the
    # slope is not. The problems are bounded (least-squares form); the solver must not raise.
    jacobian = torch.randn(3, 3, generator=gen(seed), dtype=F64)
    jacobian[1] = -jacobian[0] + 1e-9 * torch.randn(3, generator=gen(100 + seed), dtype=F64)
    strategy = get_weighting(name, 3)
    update = strategy(jacobian, ones(3))
    assert torch.isfinite(update).all() and torch.isfinite(strategy.task_weights()).all()


@pytest.mark.parametrize("name", OURS)
def test_pareto_stationary_points_give_no_update(name):
    # 0 in the convex hull: no direction improves every task. MGDA and UPGrad return exactly 0;
    # Nash-MTL's weights grow large on gradients that cancel; CAGrad (c = 0.5 < 1) still moves.
    jacobian = torch.tensor(DEGENERATE["opposite"][:2], dtype=F64)
    update = get_weighting(name, 2)(jacobian, ones(2))
    assert torch.isfinite(update).all()
    if name != "cagrad":
        assert update.norm() <= 1e-6


@pytest.mark.parametrize("name", OURS)
def test_duplicating_a_task_keeps_the_update_finite_and_consistent(name):
    # the min-norm point of the hull does not change; the dual cone does not either
    jacobian = random_conflicting(2, 10, 3)
    doubled = torch.cat([jacobian, jacobian[:1]])
    single = get_weighting(name, 2)(jacobian, ones(2))
    twice = get_weighting(name, 3)(doubled, ones(3))
    assert torch.isfinite(twice).all()
    if name in ("mgda", "mgda_ub"):
        assert torch.allclose(single, twice, atol=1e-10)
    if name == "upgrad":  # the dual cone is the same: still no conflict
        assert (doubled @ twice >= -1e-10 * twice.norm()).all()


def test_every_method_here_is_registered_and_gramian_based():
    for name in OURS:
        assert issubclass(WEIGHTINGS[name], GramianAggregator)
