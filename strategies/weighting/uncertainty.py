"""Uncertainty weighting (homoscedastic task uncertainty).

Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
Geometry and Semantics", CVPR 2018. Each task has a learnable log-variance s_k = log sigma_k^2:

    L = sum_k ( exp(-s_k) L_k + s_k ) / 2

(the paper's Gaussian-likelihood form, eq. 7, written with s_k for numerical stability; s_k = 0
initially, so training starts at half the equal-weighting objective). The effective weight of
task k is exp(-s_k) / 2. The s_k are trained with the model, by the same optimizer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import LossWeighting


class Uncertainty(LossWeighting):
    """Learn one log-variance per task; weight each loss by its precision."""

    name = "uncertainty"
    paper = (
        "Kendall, Gal & Cipolla, Multi-Task Learning Using Uncertainty to Weigh Losses for Scene "
        "Geometry and Semantics, CVPR 2018"
    )

    def __init__(self, num_tasks: int, lr: float | None = 1e-2) -> None:
        super().__init__(num_tasks)
        # Why not the model's learning rate by default: fine-tuning rates (1e-5 .. 1e-4) would
        # leave s_k essentially at 0 over a short study, i.e. equal weighting in disguise.
        self.lr = lr
        self.log_vars = nn.Parameter(torch.zeros(num_tasks))

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        s = self.log_vars.to(losses.dtype)
        return 0.5 * (torch.exp(-s) * losses + s).sum()

    def task_weights(self) -> Tensor:
        return 0.5 * torch.exp(-self.log_vars.detach())

    def learning_rate(self) -> float | None:
        return self.lr

    def reset(self) -> None:
        with torch.no_grad():
            self.log_vars.zero_()
