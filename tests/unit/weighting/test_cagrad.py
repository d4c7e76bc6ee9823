"""CAGrad: the conformance suite, the inner problem against a fine grid, its optimality conditions
and random simplex points, and the update against Algorithm 1 solved by scipy's SLSQP (no
code shared with ours)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from polytask.strategies.weighting.cagrad import CAGrad, cagrad_inner
from tests.weighting_support import F64, GramianConformance, gen, ones, random_conflicting, random_jacobian, simplex_points


class TestConformance(GramianConformance):
    name = "cagrad"


def cagrad_objective(w: torch.Tensor, gram: torch.Tensor, r: float) -> torch.Tensor:
    """F(w) = g_w . g0 + r ||g_w|| for one or many w (rows)."""
    u = torch.full((gram.shape[0],), 1 / gram.shape[0], dtype=F64)
    w = w.reshape(-1, gram.shape[0])
    return w @ gram @ u + r * torch.einsum("ni,ij,nj->n", w, gram, w).clamp_min(0).sqrt()


def cagrad_by_slsqp(jacobian: torch.Tensor, c: float, rescale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1 of Liu et al. solved independently of our code: the inner problem
    min_{w in simplex} g_w . g0 + sqrt(phi) ||g_w||, phi = c^2 ||g0||^2, on the raw gradients in
    numpy, by scipy's SLSQP (the official code's choice of solver) with a tight tolerance from
    several starts, keeping the best; then d = g0 + sqrt(phi) / ||g_w|| g_w, divided by 1 (rescale
    0), 1 + c^2 (1) or 1 + c (2). Returns (d, w)."""
    g = jacobian.numpy()
    k = g.shape[0]
    g0 = g.mean(axis=0)
    r = c * np.linalg.norm(g0)

    def objective(w):
        x = w @ g
        return x @ g0 + r * np.linalg.norm(x)

    def gradient(w):
        x = w @ g
        return g @ g0 + r * (g @ x) / np.linalg.norm(x)

    starts = [np.full(k, 1 / k), *(0.9 * np.eye(k) + 0.1 / k), *np.random.default_rng(0).dirichlet(np.ones(k), 3)]
    simplex = [{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(k)}]
    solutions = [
        minimize(objective, w0, jac=gradient, method="SLSQP", bounds=[(0, 1)] * k, constraints=simplex, options={"ftol": 1e-16, "maxiter": 1000})
        for w0 in starts
    ]
    w = min(solutions, key=lambda solution: solution.fun).x
    x = w @ g
    d = (g0 + r / np.linalg.norm(x) * x) / {0: 1.0, 1: 1 + c**2, 2: 1 + c}[rescale]
    return torch.from_numpy(d), torch.from_numpy(w)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_cagrad_with_c_zero_is_exactly_the_mean_gradient(k):
    jacobian = torch.randn(k, 20, generator=gen(k), dtype=F64)
    strategy = CAGrad(k, c=0.0)
    update = strategy(jacobian, ones(k))
    assert torch.equal(strategy.task_weights(), torch.full((k,), 1 / k))
    assert torch.allclose(update, jacobian.mean(dim=0), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("c", [0.1, 0.5, 0.9, 2.0])
def test_cagrad_two_tasks_beats_a_fine_grid_on_the_simplex(c, seed):
    jacobian = random_conflicting(2, 10, seed)
    gram = jacobian @ jacobian.T
    gram = gram / gram.diagonal().max()
    w, r, rho = cagrad_inner(gram, c)
    grid = torch.linspace(0, 1, 20001, dtype=F64)
    values = cagrad_objective(torch.stack([grid, 1 - grid], dim=1), gram, r)
    ours = cagrad_objective(w, gram, r).item()
    assert ours <= values.min().item() + 1e-12
    # and the grid's best point is next to ours (F is strictly convex here: the gradients are independent)
    assert abs(grid[values.argmin()].item() - w[0].item()) <= 2e-4


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_cagrad_three_tasks_satisfies_the_inner_optimality_conditions(c, seed):
    jacobian = random_conflicting(3, 10, seed)
    gram = jacobian @ jacobian.T
    gram = gram / gram.diagonal().max()
    w, r, rho = cagrad_inner(gram, c)
    assert (w >= 0).all() and w.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert rho == pytest.approx(math.sqrt(w @ gram @ w), rel=1e-12)
    # KKT on the simplex: grad F = M u + r M w / ||g_w|| equals lambda on the support, >= lambda off it
    grad = gram @ torch.full((3,), 1 / 3, dtype=F64) + r * gram @ w / rho
    lam = (grad @ w).item()
    assert torch.allclose(grad[w > 1e-10], torch.full((int((w > 1e-10).sum()),), lam, dtype=F64), atol=1e-9)
    assert (grad >= lam - 1e-9).all()
    # and no random point of the simplex does better
    others = simplex_points(2000, 3, seed)
    assert cagrad_objective(w, gram, r).item() <= cagrad_objective(others, gram, r).min().item() + 1e-12


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("rescale", [0, 1, 2])
def test_cagrad_update_follows_algorithm_1(rescale, seed):
    k, c = 3 + seed % 3, 0.5
    jacobian = random_conflicting(k, 15, seed)
    update = CAGrad(k, c=c, rescale=rescale)(jacobian, ones(k))
    expected, _ = cagrad_by_slsqp(jacobian, c, rescale)
    assert torch.allclose(update, expected, rtol=1e-8, atol=1e-12)
    # the paper's guarantee: within the ball, the worst task improves more than with g0
    g0 = jacobian.mean(dim=0)
    assert (jacobian @ expected).min() >= (jacobian @ g0).min() / {0: 1.0, 1: 1 + c**2, 2: 1 + c}[rescale] - 1e-12


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("c", [0.2, 0.5, 0.9, 2.0])
def test_cagrad_agrees_with_the_independent_solver_when_several_tasks_share_the_weight(c, seed):
    # standard-normal gradients in few dimensions: the optimal w often has three or more tasks
    # in its support (not only the conflicting pair), where the inner problem is hardest
    k = 3 + seed % 3
    jacobian = random_jacobian(k, 6, seed)
    expected, oracle_w = cagrad_by_slsqp(jacobian, c, rescale=0)
    assert torch.allclose(CAGrad(k, c=c, rescale=0)(jacobian, ones(k)), expected, rtol=1e-6, atol=1e-9)
    # and our inner solution is at least as good as SLSQP's on the problem we solve
    gram = jacobian @ jacobian.T
    gram = gram / gram.diagonal().max()
    w, r, _ = cagrad_inner(gram, c)
    assert cagrad_objective(w, gram, r).item() <= cagrad_objective(oracle_w, gram, r).item() + 1e-12


def test_cagrad_with_zero_in_the_hull_matches_the_closed_form():
    # g1 = (1, 0), g2 = (-2, 0): g0 = (-0.5, 0), hull = the segment [-2, 1] on the axis, which holds
    # 0. F(x) = g0 . x + c ||g0|| ||x|| is -0.25 x at x = g1 for c = 0.5 (optimal: w* = (1, 0)),
    # so d = g0 + 0.25 (1, 0) = (-0.25, 0), / (1 + c^2). For c = 2 F >= 0 on the hull: x* = 0, d = g0.
    jacobian = torch.tensor([[1.0, 0.0], [-2.0, 0.0]], dtype=F64)
    strategy = CAGrad(2, c=0.5)
    assert torch.allclose(strategy(jacobian, ones(2)), torch.tensor([-0.2, 0.0], dtype=F64), atol=1e-12)
    assert torch.allclose(strategy.task_weights(), torch.tensor([0.6, 0.4]))
    strategy = CAGrad(2, c=2.0)
    assert torch.allclose(strategy(jacobian, ones(2)), torch.tensor([-0.1, 0.0], dtype=F64), atol=1e-12)
    assert torch.allclose(strategy.task_weights(), torch.tensor([0.1, 0.1]))


@pytest.mark.parametrize("kwargs", [{"c": -0.1}, {"c": math.nan}, {"rescale": 3}])
def test_cagrad_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CAGrad(2, **kwargs)
