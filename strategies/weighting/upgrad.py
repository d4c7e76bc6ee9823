"""UPGrad: project each task gradient onto the dual cone of all of them, then average.

Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024 (arXiv 2406.16232),
Section 3. With J the Jacobian (rows g_k) and M = J J^T, the dual cone of the rows is
{x : J x >= 0}: the directions that conflict with no task. The projection of J^T u onto it is
J^T v with (their Proposition 1)

    v = argmin_{v >= u} v^T M v,

so for each task i, v^i solves that problem with u = e_i, and the update is the mean of the
projected gradients (the uniform preference vector):

    d = (1/K) sum_i J^T v^i,        weights w = (1/K) sum_i v^i.

d lies in the dual cone (J d >= 0: no task's loss increases to first order) and, for
non-conflicting gradients (all v^i = e_i), it is the plain mean.

Computation. The dual cone depends only on the directions of the rows, so we solve on the unit
rows g_j / ||g_j||, Gramian C = D M D with D = diag(M)^(-1/2): there the projection of g_i is
||g_i|| Jhat^T vt^i with vt^i = argmin_{v >= e_i} v^T C v, and back in the original rows the
weights are w_j = (1/K) sum_i ||g_i|| vt^i_j / ||g_j||. This is exact, and it keeps the cone's
constraints from a gradient of norm 1e-8 as sharp as those from one of norm 1e4 (on M itself
they would be 1e-24 of the largest entries, below any solver's tolerance). Each vt^i comes from
an exact active-set solve (:func:`~._solvers.bounded_qp`; the problem is a non-negative
least-squares one, min ||Jhat^T (e_i + y)||^2 over y >= 0). A zero gradient constrains nothing:
it is left out of every problem, and its own projection is 0 whatever its weight (we report 1/K,
what its problem v >= e_i gives). All-zero gradients: uniform weights 1/K.

Deviation from torchjd (the authors' library): its projector divides M by trace(M), replaces M
by 0 when trace(M) < norm_eps = 1e-4, and adds reg_eps = 1e-4 to the diagonal, because the
quadprog solver it calls needs a positive definite matrix. We need neither: our solver accepts a
singular matrix and the rescaling above is exact, whereas (a) reg_eps shifts every projection by
a relative ~1e-4..1e-3, and (b) norm_eps makes UPGrad silently the mean whenever the gradients
are small (||J||_F^2 < 1e-4, common late in training). So no hyperparameter for either.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._solvers import ZERO_GRADIENT, bounded_qp, symmetric
from .base import GradSpace, GramianAggregator


class UPGrad(GramianAggregator):
    """Average of the task gradients, each projected onto the cone of non-conflicting directions."""

    name = "upgrad"
    paper = "Quinton & Rey, Jacobian Descent for Multi-Objective Optimization, arXiv 2406.16232 2024"

    def __init__(self, num_tasks: int, grad_space: GradSpace = "parameters") -> None:
        super().__init__(num_tasks)
        self.set_grad_space(grad_space)

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        k = self.num_tasks
        m = symmetric(gram)
        weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
        diag = m.diagonal()
        top = diag.max().item()
        if not (top > 0 and torch.isfinite(m).all()):
            return weights.to(dtype=gram.dtype, device=gram.device)
        live = (diag > ZERO_GRADIENT * top).nonzero().flatten()
        norms = diag[live].sqrt()
        unit = m[live][:, live] / norms[:, None] / norms[None, :]
        n = len(live)
        zero, eye = torch.zeros(n, dtype=torch.float64), torch.eye(n, dtype=torch.float64)
        # row i: ||g_i|| vt^i; the sum over i, divided by ||g_j||, gives the weights
        projections = torch.stack([norms[i] * bounded_qp(unit, zero, eye[i]) for i in range(n)])
        weights[live] = projections.sum(dim=0) / norms / k
        return weights.to(dtype=gram.dtype, device=gram.device)
