"""MGDA: the minimum-norm point of the convex hull of the task gradients.

Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, after
Désidéri's multiple-gradient descent algorithm (2012). The update is the minimum-norm element of
the convex hull of the task gradients (the paper's Section 3.1):

    w* = argmin_{w >= 0, sum w = 1} || sum_k w_k g_k ||^2,        d = sum_k w*_k g_k

d is either zero (the point is Pareto-stationary) or a direction along which every task loss
decreases: g_i . d >= ||d||^2 for every task i (the KKT conditions of the problem).

The paper solves the problem with Frank-Wolfe (its Algorithm 2), which stops at a tolerance. We
solve it exactly from the Gramian, as a small non-negative least-squares problem
(:func:`~._solvers.min_norm_weights`), so the result does not depend on a stopping rule.

Gradient normalisation (``normalization``) is the official code's option, which its authors note
is "not included in the paper": the weights are those of the min-norm point of the normalised
gradients g_k / n_k, with n_k = 1 ("none"), ||g_k|| ("l2"), L_k ("loss") or L_k ||g_k||
("loss+"), and, as in the official training script, they then weight the original task losses,
so the update is sum_k w*_k g_k with the raw gradients. Default "none": it is the method of the
paper, the only option that keeps the guarantee g_i . d >= ||d||^2 (the other options mix
normalised weights with raw gradients), and the default of LibMTL and torchjd. A normaliser that
is zero or not finite (a zero gradient, a zero or negative loss) is replaced by 1.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ._solvers import min_norm_weights
from .base import GradSpace, GramianAggregator

Normalization = Literal["none", "l2", "loss", "loss+"]
NORMALIZATIONS = ("none", "l2", "loss", "loss+")


class MGDA(GramianAggregator):
    """Follow the minimum-norm point of the convex hull of the task gradients."""

    name = "mgda"
    paper = "Sener & Koltun, Multi-Task Learning as Multi-Objective Optimization, NeurIPS 2018"

    def __init__(self, num_tasks: int, normalization: Normalization = "none", grad_space: GradSpace = "parameters") -> None:
        super().__init__(num_tasks)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        self.normalization = normalization
        self.set_grad_space(grad_space)

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        scale = self._normalizers(gram, losses)
        return min_norm_weights(gram / scale[:, None] / scale[None, :])

    def _normalizers(self, gram: Tensor, losses: Tensor) -> Tensor:
        norms = gram.diagonal().clamp_min(0.0).sqrt()
        if self.normalization == "l2":
            scale = norms
        elif self.normalization == "loss":
            scale = losses
        elif self.normalization == "loss+":
            scale = losses * norms
        else:
            return torch.ones_like(norms)
        usable = torch.isfinite(scale) & (scale > 0)
        return torch.where(usable, scale, torch.ones_like(scale))
