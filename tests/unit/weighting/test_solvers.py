"""The exact K x K solvers the Gramian-based aggregators share (strategies/weighting/_solvers.py):
each result checked against its optimality conditions or a brute-force solver written here, on
seeded random inputs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from polytask.strategies.weighting._solvers import bounded_qp, min_norm_weights, nonneg_qp
from tests.weighting_support import F64, brute_force_min_norm, gen, ones


def brute_force_qp(quad: torch.Tensor, lin: torch.Tensor, lower: torch.Tensor) -> tuple[float, torch.Tensor]:
    """min 1/2 x^T Q x + c^T x s.t. x >= lower, by enumerating every set of free variables: the
    others sit at their bound, the free ones solve the stationarity equations (least squares, so
    a singular block still gives a point of the affine solution set), and the feasible candidate
    of lowest objective is optimal: the optimum's own free set is among those enumerated."""
    k = lin.shape[0]
    best_value, best = math.inf, None
    for size in range(k + 1):
        for free in itertools.combinations(range(k), size):
            x = lower.clone()
            if free:
                f = list(free)
                rhs = -(lin[f] + quad[f][:, [i for i in range(k) if i not in free]] @ lower[[i for i in range(k) if i not in free]])
                x[f] = torch.linalg.lstsq(quad[f][:, f], rhs.unsqueeze(1), driver="gelsd").solution.squeeze(1)
            if (x < lower - 1e-12).any():
                continue
            value = (0.5 * x @ quad @ x + lin @ x).item()
            if best is None or value < best_value - 1e-14 * (1 + abs(best_value)):
                best_value, best = value, x
    return best_value, best


def assert_kkt_bounded(quad, lin, lower, x, rtol=1e-9):
    """x >= lower, gradient >= 0 where x sits at its bound, = 0 where it is above it."""
    grad = quad @ x + lin
    scale = rtol * (quad.abs().max() * x.abs().max() + lin.abs().max() + 1)
    assert (x >= lower).all()
    assert (grad >= -scale).all()
    assert ((x - lower) * grad).abs().max() <= scale * (1 + (x - lower).abs().max())


@pytest.mark.parametrize("seed", range(40))
def test_bounded_qp_with_positive_definite_q_is_the_brute_force_optimum(seed):
    g = gen(seed)
    k = 1 + seed % 6
    a = torch.randn(k + 2, k, generator=g, dtype=F64)
    quad = a.T @ a
    lin = 3 * torch.randn(k, generator=g, dtype=F64)
    lower = torch.randn(k, generator=g, dtype=F64) * (seed % 2)  # half the cases: x >= 0
    x = bounded_qp(quad, lin, lower)
    assert_kkt_bounded(quad, lin, lower, x)
    _, expected = brute_force_qp(quad, lin, lower)
    assert torch.allclose(x, expected, rtol=1e-8, atol=1e-9)


def test_bounded_qp_cases_above_mix_active_and_free_bounds():
    # the random cases are not all interior or all at the bounds
    mixed = 0
    for seed in range(40):
        g = gen(seed)
        k = 1 + seed % 6
        a = torch.randn(k + 2, k, generator=g, dtype=F64)
        lin = 3 * torch.randn(k, generator=g, dtype=F64)
        lower = torch.randn(k, generator=g, dtype=F64) * (seed % 2)
        x = bounded_qp(a.T @ a, lin, lower)
        mixed += bool(0 < (x > lower + 1e-12).sum() < k)
    assert mixed >= 10


@pytest.mark.parametrize("seed", range(40))
def test_nonneg_qp_in_least_squares_form_with_singular_q_reaches_the_optimum(seed):
    # Q = A^T A of rank < K (duplicate, collinear or too many columns), q = -A^T b: the form of
    # every Gramian problem. The optimum may not be unique, its value is.
    g = gen(seed)
    k = 2 + seed % 5
    rank = 1 + seed % (k - 1) if k > 2 else 1
    a = torch.randn(rank, k, generator=g, dtype=F64)
    if seed % 3 == 0:
        a[:, -1] = a[:, 0]  # a duplicated column
    b = torch.randn(rank, generator=g, dtype=F64)
    quad, lin = a.T @ a, -a.T @ b
    y = nonneg_qp(quad, lin)
    assert_kkt_bounded(quad, lin, torch.zeros(k, dtype=F64), y)
    best, _ = brute_force_qp(quad, lin, torch.zeros(k, dtype=F64))
    assert (0.5 * y @ quad @ y + lin @ y).item() == pytest.approx(best, rel=1e-9, abs=1e-12)


def test_nonneg_qp_follows_null_directions_of_a_bounded_singular_problem():
    # 1/2 (y0 + y1)^2 - y0 - 1.5 y1: not least-squares form (q is not in the range of Q); the
    # restricted problem on {0, 1} has no minimiser, the bounded one is at y = (0, 1.5).
    quad = torch.ones(2, 2, dtype=F64)
    y = nonneg_qp(quad, torch.tensor([-1.0, -1.5], dtype=F64))
    assert torch.allclose(y, torch.tensor([0.0, 1.5], dtype=F64))
    # the textbook MGDA reduction min 1/2 z^T M z - 1^T z, three gradients in a plane (M singular)
    jacobian = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=F64)
    z = nonneg_qp(jacobian @ jacobian.T, -ones(3))
    assert_kkt_bounded(jacobian @ jacobian.T, -ones(3), torch.zeros(3, dtype=F64), z)
    assert torch.allclose(z / z.sum(), torch.tensor([0.5, 0.5, 0.0], dtype=F64))


@pytest.mark.parametrize(
    "quad, lin",
    [
        ([[0.0, 0.0], [0.0, 0.0]], [-1.0, 1.0]),  # linear and decreasing in y0
        ([[1.0, -1.0], [-1.0, 1.0]], [-1.0, -1.0]),  # textbook MGDA reduction with 0 in the hull
    ],
)
def test_nonneg_qp_rejects_unbounded_problems(quad, lin):
    with pytest.raises(ValueError, match="unbounded"):
        nonneg_qp(torch.tensor(quad, dtype=F64), torch.tensor(lin, dtype=F64))


@pytest.mark.parametrize("seed", range(30))
def test_min_norm_weights_are_the_brute_force_minimum_norm_point(seed):
    k = 2 + seed % 5
    p = 3 if seed % 3 == 0 else 20  # a third of the cases: K > P possible, affinely dependent rows
    jacobian = torch.randn(k, p, generator=gen(seed), dtype=F64)
    gram = jacobian @ jacobian.T
    w = min_norm_weights(gram)
    assert (w >= 0).all() and w.sum().item() == pytest.approx(1.0, abs=1e-12)
    best, expected = brute_force_min_norm(gram)
    assert (w @ gram @ w).item() == pytest.approx(best, rel=1e-9, abs=1e-13)
    assert torch.allclose(w @ jacobian, expected @ jacobian, atol=1e-7)  # the point is unique
