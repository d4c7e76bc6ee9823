"""Nash-MTL: the Nash bargaining solution between the tasks.

Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, "Multi-Task Learning as a
Bargaining Game", ICML 2022. The update d = sum_k alpha_k g_k maximises sum_k log(g_k . d) over a
ball; its weights alpha > 0 solve (the paper's Section 3, Algorithm 1)

    G G^T alpha = 1 / alpha        (elementwise: alpha_i (M alpha)_i = 1 for every task i).

Consequences used below: g_i . d = 1 / alpha_i > 0 (every task improves), ||d||^2 = sum_i
alpha_i (M alpha)_i = K, and d does not change when a task's gradient is rescaled
(g_i -> s g_i gives alpha_i -> alpha_i / s).

Solver. The condition is the stationarity condition of the strictly convex

    f(alpha) = 1/2 alpha^T M alpha - sum_i log alpha_i        on alpha > 0,

minimised by damped Newton (Nesterov, "Introductory Lectures on Convex Optimization", 4.1.5):
f is self-concordant (a convex quadratic plus logarithmic barriers), so the step
alpha <- alpha + Delta / (1 + lambda), with lambda the Newton decrement, stays in alpha > 0 and
decreases f by at least lambda - log(1 + lambda); once lambda < 1/4, full steps converge
quadratically. We stop at lambda < 1e-10, or when a full step fails to shrink lambda (rounding).
Before solving we rescale to the unit-diagonal matrix C = D M D, D = diag(M)^(-1/2): exact
(alpha = D beta, where C beta = 1 / beta), and it removes the tasks' gradient scales from the
numerics.

Existence. A solution exists iff no non-zero beta >= 0 has C beta = 0, i.e. iff 0 is not in the
convex hull of the gradients (a zero gradient, two opposite ones: a Pareto-stationary point,
where f is unbounded below). We therefore add 1e-12 I to C: this changes nothing measurable
otherwise (the condition holds to a relative 1e-12 beta_i^2) and, in the degenerate case, gives
large finite weights (~1e6 / ||g_i||) to the tasks whose gradients cancel, their part of the
update near zero, while the other tasks bargain as usual. A task with an exactly zero gradient
cannot satisfy its condition at all and gets weight 0 (its gradient contributes nothing).

Deviations from the official code, which solves the condition approximately by a sequence of
convex programs (cvxpy/ECOS, at most 20 iterations, warm-started from the previous step):

* We solve it exactly (to the Newton tolerance) from scratch each step, so no solver state and no
  ``optim_niter``; warm starts would only change the solver's path, not the solution.
* The official code divides the Gramian by its Frobenius norm for the solver but puts the factor
  back inside the constraint, so its alpha solves the same condition on the raw Gramian: the
  normalisation is numerical only, as our diagonal rescaling is. Nothing to expose.
* ``update_weights_every`` (official default 1: re-solve every step) is not kept: it only saves
  the solver's time, which is negligible here, while the Jacobian is computed every step anyway.
* ``max_norm`` (official default 1.0) is kept: the official code clips the norm of the shared
  parameters' gradient to it (``clip_grad_norm_``); we scale the weights so that ||d|| <= max_norm,
  the same thing for the combined gradient (in "representation" space, the gradient with respect
  to the shared features). Since ||d|| = sqrt(K) exactly, the default makes every update of a
  K >= 2 task model have norm 1: the learning rate sets the step length. ``max_norm = 0`` turns
  clipping off; then the reported weights satisfy the bargaining condition.
* The task heads. The official code weights their gradients by alpha too: ``get_weighted_loss``
  returns ``sum_i losses[i] * alpha[i]`` and ``backward`` calls ``loss.backward()`` on it, so the
  alpha-weighted sum is backpropagated through the whole network, heads included; it then clips
  only the shared parameters' gradient (github.com/AvivNavon/nash-mtl, commit cce1840,
  methods/weight_methods.py lines 242, 266 and 270; the ``task_specific_parameters`` its trainers
  pass are not used). Here, as for every gradient aggregator (polytask.strategies.weighting.base),
  each task's private parameters get that task's own, unweighted gradient: alpha weights the
  shared part only, and a head's step does not shrink or grow with its task's bargaining weight.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._solvers import ZERO_GRADIENT, symmetric
from .base import GradSpace, GramianAggregator

_RIDGE = 1e-12  # added to the unit-diagonal Gramian: makes the problem solvable when 0 is in the hull
_DECREMENT_TOL = 1e-10  # Newton decrement at which we stop
_MAX_NEWTON_STEPS = 500  # a guard: ~10 steps usually, ~60 in the degenerate case


def bargaining_weights(gram: Tensor) -> Tensor:
    """alpha > 0 with ``gram @ alpha = 1 / alpha`` (zero for tasks with a zero gradient)."""
    m = symmetric(gram)
    k = m.shape[0]
    diag = m.diagonal()
    top = diag.max().item()
    alpha = torch.zeros(k, dtype=torch.float64)
    if not (top > 0 and torch.isfinite(m).all()):
        return alpha
    live = (diag > ZERO_GRADIENT * top).nonzero().flatten()
    inv_norm = diag[live].rsqrt()
    unit = m[live][:, live] * inv_norm[:, None] * inv_norm[None, :] + _RIDGE * torch.eye(len(live), dtype=torch.float64)
    alpha[live] = inv_norm * _damped_newton(unit)
    return alpha


def _damped_newton(c: Tensor) -> Tensor:
    """argmin_{beta > 0} 1/2 beta^T C beta - sum log beta for C positive definite."""
    ones = torch.ones(c.shape[0], dtype=torch.float64)
    # start at the minimiser of f along the ray t * 1
    beta = ones * math.sqrt(c.shape[0] / max((ones @ c @ ones).item(), _RIDGE))
    previous = math.inf
    for _ in range(_MAX_NEWTON_STEPS):
        grad = c @ beta - 1.0 / beta
        hessian = c + torch.diag(beta.pow(-2))
        delta = -torch.linalg.solve(hessian, grad)
        decrement = math.sqrt(max(-(grad @ delta).item(), 0.0))
        if decrement < 0.25 and decrement >= previous:
            # Full steps shrink the decrement quadratically; when one does not, rounding has the
            # last word (the degenerate case: beta ~ 1e6 on a ridge of 1e-12). Stop there.
            break
        # |delta_i| / beta_i <= decrement (the Hessian dominates diag(1 / beta^2)), so both steps
        # keep beta > 0: the damped one moves less than 1 in that norm, the full one is taken
        # only when the decrement is below 1/4.
        if decrement < 0.25:
            beta, previous = beta + delta, decrement
        else:
            beta = beta + delta / (1.0 + decrement)
        if decrement < _DECREMENT_TOL:
            break
    return beta


class NashMTL(GramianAggregator):
    """Weights from the Nash bargaining solution: G G^T alpha = 1/alpha, every task gains."""

    name = "nash_mtl"
    paper = (
        "Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, Multi-Task Learning as a "
        "Bargaining Game, ICML 2022"
    )

    def __init__(self, num_tasks: int, max_norm: float = 1.0, grad_space: GradSpace = "parameters") -> None:
        super().__init__(num_tasks)
        if not (math.isfinite(max_norm) and max_norm >= 0):
            raise ValueError(f"max_norm must be a finite number >= 0 (0 turns clipping off), got {max_norm!r}")
        self.max_norm = max_norm
        self.set_grad_space(grad_space)

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        alpha = bargaining_weights(gram)
        if self.max_norm > 0:
            norm = math.sqrt(max((alpha @ symmetric(gram) @ alpha).item(), 0.0))
            if norm > self.max_norm:
                alpha = alpha * (self.max_norm / norm)
        return alpha.to(dtype=gram.dtype, device=gram.device)
