"""CAGrad: conflict-averse gradient descent.

Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
NeurIPS 2021, Algorithm 1. Around the mean gradient g0 = (1/K) sum_k g_k, CAGrad picks the
update in the ball ||d - g0|| <= c ||g0|| that maximises the worst task's improvement
min_k g_k . d. Its dual (the paper's Section 3.1) is, with phi = c^2 ||g0||^2 and g_w = sum_k w_k g_k,

    w* = argmin_{w in simplex} F(w) = g_w . g0 + sqrt(phi) ||g_w||,
    d  = g0 + sqrt(phi) / ||g_w*|| g_w*,

so the weights are 1/K + sqrt(phi) / ||g_w*|| w*. The official code then divides the update by
1 + c^2 (its default ``rescale=1``; 2 divides by 1 + c, 0 leaves it), which we keep as
``rescale`` with the same codes and default. c = 0 gives exactly the mean gradient. c = 0.5 is
the official code's default (its ``alpha``); the paper tunes c per benchmark, and its convergence
analysis gives convergence to a stationary point of the mean loss for 0 <= c < 1 (to a
Pareto-stationary point for c >= 1), so any c >= 0 is accepted.

Inner problem, solved accurately from the Gramian M. F depends on w only through the hull point
x = g_w: F = g0 . x + r ||x||, r = sqrt(phi). With ||x|| = min_{tau > 0} ||x||^2 / (2 tau) + tau / 2,

    min_w F = min_{tau > 0} [ min_{x in hull} g0 . x + r ||x||^2 / (2 tau) ] + r tau / 2,

a jointly convex problem whose inner minimum is the projection of -(tau / r) g0 onto the hull,
i.e. the min-norm point of the hull of the shifted gradients g_k + (tau / r) g0 (an exact MGDA
solve, :func:`~._solvers.min_norm_weights`, on their Gramian M + t (b 1^T + 1 b^T) + t^2 ||g0||^2
1 1^T with b = M 1/K and t = tau / r). The outer function of tau is convex with derivative
r/2 (1 - rho(tau)^2 / tau^2), rho(tau) = ||x(tau)||, so the optimal tau is the root of the
continuous, sign-changing rho(tau) - tau, found by bracketed root finding (Illinois variant of
regula falsi) to a relative 1e-14. At the root, w(tau) satisfies the KKT conditions of min F.

Deviations from the official code: it minimises F with scipy's SLSQP from the uniform weights (an
iterative solver with default tolerances) and adds 1e-8 inside the square root and to ||g_w||; we
solve the problem to machine precision and guard only the degenerate cases: g0 = 0, or an optimal
g_w that is 0 to within the Gramian's rounding (0 in the hull and c large), give d = g0, the limit
of the official formula. M is scaled by its largest diagonal entry first (w* does not depend on
the scale).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from ._solvers import min_norm_weights, symmetric
from .base import GradSpace, GramianAggregator

_ROOT_RTOL = 1e-14  # relative width of the bracket on tau at which the root search stops
_MAX_ROOT_STEPS = 200  # a guard: Illinois converges superlinearly, ~10-30 steps here
_NOISE = 1e-13  # w^T M w below this fraction of |w|^T |M| |w| is rounding noise


def cagrad_inner(gram: Tensor, c: float) -> tuple[Tensor, float, float]:
    """``(w*, r, rho*)`` for the normalised Gramian ``gram``: the minimiser of
    ``F(w) = w^T M u + r sqrt(w^T M w)`` on the simplex (u = 1/K, r = c ||g0||) and the norm of
    its hull point; rho* = 0 when the optimal hull point is 0."""
    m = symmetric(gram)
    k = m.shape[0]
    u = torch.full((k,), 1.0 / k, dtype=torch.float64)
    b = m @ u
    g0_sq = max((u @ b).item(), 0.0)
    r = c * math.sqrt(g0_sq)
    if r <= 0:
        return u, 0.0, 0.0

    def projection(tau: float) -> tuple[Tensor, float, bool]:
        """Weights and norm of the projection of -(tau / r) g0 onto the hull, and whether that
        norm is above the rounding noise of w^T M w (cancellation when the point is near 0)."""
        t = tau / r
        w = min_norm_weights(m + t * (b[:, None] + b[None, :]) + t * t * g0_sq)
        rho_sq = (w @ m @ w).item()
        return w, math.sqrt(max(rho_sq, 0.0)), rho_sq > _NOISE * (w.abs() @ m.abs() @ w.abs()).item()

    hi = math.sqrt(m.diagonal().max().item())  # rho(tau) <= the longest gradient <= hi
    w_hi, rho_hi, _ = projection(hi)
    if rho_hi - hi >= 0:
        return w_hi, r, rho_hi
    # Lower end of the bracket: rho(tau) - tau > 0. tau = 0 (the min-norm point of the hull) does
    # unless that point is 0 to rounding; then halve tau until rho(tau) > tau. If rho(tau) drowns
    # in rounding noise first, the optimal hull point is 0 to within what the Gramian resolves.
    lo, (w_lo, rho_lo, resolved) = 0.0, projection(0.0)
    if not resolved:
        lo = hi
        for _ in range(_MAX_ROOT_STEPS):  # rho(tau) -> 0 with tau, so noise is reached in ~30
            lo /= 2
            w_lo, rho_lo, resolved = projection(lo)
            if not resolved or rho_lo > lo:
                break
        if not (resolved and rho_lo > lo):
            return u, r, 0.0
    f_lo, f_hi = rho_lo - lo, rho_hi - hi
    w, rho, side = w_lo, rho_lo, 0
    for _ in range(_MAX_ROOT_STEPS):
        if hi - lo <= _ROOT_RTOL * hi:
            break
        tau = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        if not lo < tau < hi:
            tau = 0.5 * (lo + hi)
        w, rho, _ = projection(tau)
        f = rho - tau
        if f == 0:
            break
        if f > 0:
            lo, f_lo = tau, f
            if side == 1:
                f_hi /= 2  # Illinois: halve the stale end so the bracket shrinks from both sides
            side = 1
        else:
            hi, f_hi = tau, f
            if side == -1:
                f_lo /= 2
            side = -1
    return w, r, rho


class CAGrad(GramianAggregator):
    """Improve the worst task the most within a ball around the mean gradient."""

    name = "cagrad"
    paper = "Liu, Liu, Jin, Stone & Liu, Conflict-Averse Gradient Descent for Multi-task Learning, NeurIPS 2021"

    def __init__(self, num_tasks: int, c: float = 0.5, rescale: Literal[0, 1, 2] = 1, grad_space: GradSpace = "parameters") -> None:
        super().__init__(num_tasks)
        if not (math.isfinite(c) and c >= 0):
            raise ValueError(f"c must be a finite number >= 0, got {c!r}")
        if rescale not in (0, 1, 2):
            raise ValueError(f"rescale must be 0 (none), 1 (divide by 1 + c^2) or 2 (divide by 1 + c), got {rescale!r}")
        self.c = c
        self.rescale = rescale
        self.set_grad_space(grad_space)

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        k = self.num_tasks
        weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
        top = gram.diagonal().max().item()
        if self.c > 0 and top > 0 and torch.isfinite(gram).all():
            w, r, rho = cagrad_inner(gram / top, self.c)
            if rho > 0:
                weights = weights + (r / rho) * w
        divisor = {0: 1.0, 1: 1.0 + self.c**2, 2: 1.0 + self.c}[self.rescale]
        return (weights / divisor).to(dtype=gram.dtype, device=gram.device)
