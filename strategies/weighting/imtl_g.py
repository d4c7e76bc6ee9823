"""IMTL-G: impartial gradient balancing, equal projections on every task's unit gradient.

Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning", ICLR 2021:
the gradient half, IMTL-G (IMTL-L, the loss half, is imtl_l.py). Find the update
g = sum_k alpha_k g_k with sum_k alpha_k = 1 whose projections onto all unit task gradients
u_k = g_k / ||g_k|| are equal:

    g . u_1 = g . u_k for every k,        in closed form:
    alpha_{2:K} = g_1 U^T (D U^T)^{-1},   alpha_1 = 1 - sum alpha_{2:K},
    D rows g_1 - g_k,  U rows u_1 - u_k   (k = 2..K)

We solve the same linear conditions from the Gramian M = G G^T, written without singling out
task 1 so that singular cases stay symmetric in the tasks. In the weights b_k = alpha_k ||g_k||
on the unit gradients, with C = (cosines of the task pairs) and J the all-ones matrix:

    (I - J/K) C b = 0          (C b)_k = g . u_k, all equal
    sum_k b_k / ||g_k|| = 1    i.e. sum_k alpha_k = 1

When the paper's D U^T is invertible the solution is unique and the same as the closed form
(the same conditions, eliminated differently). Otherwise we take the least-squares solution of least norm
(a pseudo-inverse with relative tolerance 1e-6: cosines from float32 gradients carry errors of
order 1e-7, so smaller singular values are numerical noise). Writing the system in b keeps its
entries within [-1, 1] whatever the norm ratios. A task with a zero gradient (below 1e-12 of the
largest norm) has no unit gradient: it gets weight 0 and stays out of the conditions; when all
gradients are zero the weights are uniform, 1/K (the update is zero either way).

The paper's Algorithm 1 takes the gradients with respect to the shared feature z, not the
shared parameters, for efficiency, so ``grad_space`` defaults to "representation"; the weights
alpha then scale the task losses for the backward pass through the encoder, as here.

Note that when the gradients are linearly dependent the impartial update may be zero: e.g.
three tasks whose gradients span a plane can only have equal projections at g = 0, which is what
the closed form gives there too. (torchjd's IMTLG generalises differently, alpha proportional to
M^+ ||g||: the same as ours for independent gradients, a least-squares compromise otherwise.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GradSpace, GramianAggregator

#: a gradient norm below this fraction of the largest counts as zero
_ZERO_NORM = 1e-12
#: singular values of the (cosine-scaled) system below this fraction of the largest are dropped
_RTOL = 1e-6


class IMTLG(GramianAggregator):
    """Combine the task gradients, weights summing to 1, so the update projects equally onto every task's gradient direction."""

    name = "imtl_g"
    paper = "Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, Towards Impartial Multi-task Learning, ICLR 2021"

    def __init__(self, num_tasks: int, grad_space: GradSpace = "representation") -> None:
        super().__init__(num_tasks)
        self.set_grad_space(grad_space)

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        k = self.num_tasks
        norms = gram.diagonal().clamp(min=0).sqrt()
        largest = norms.max()
        if not largest > 0:
            return torch.full((k,), 1.0 / k, dtype=gram.dtype, device=gram.device)
        active = (norms > _ZERO_NORM * largest).nonzero().flatten()
        n = norms[active] / largest  # the solution does not depend on the overall scale
        a = len(active)
        cosines = (gram[active][:, active] / largest**2 / (n[:, None] * n[None, :])).clamp(-1, 1)
        centre = torch.eye(a, dtype=gram.dtype, device=gram.device) - 1.0 / a
        system = torch.cat([centre @ cosines, (n.min() / n)[None, :]])
        rhs = torch.zeros(a + 1, dtype=gram.dtype, device=gram.device)
        rhs[a] = n.min()  # the last row, sum_k b_k / n_k = 1, multiplied by min n to keep it in [0, 1]
        unit_weights = torch.linalg.pinv(system, rtol=_RTOL) @ rhs
        weights = torch.zeros(k, dtype=gram.dtype, device=gram.device)
        weights[active] = unit_weights / n
        return weights
