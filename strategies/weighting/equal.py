"""Equal weighting: the plain sum of task losses.

    L = sum_k L_k

The baseline every method is measured against (called EW in LibMTL; Lin et al., "Reasonable
Effectiveness of Random Weighting", TMLR 2022, use it as the reference point).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LossWeighting


class Equal(LossWeighting):
    """Sum of the task losses, every weight 1."""

    name = "equal"
    partial_steps = True
    paper = "Caruana, Multitask Learning, Machine Learning 1997 (the unweighted sum)"

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        return losses.sum()

    def task_weights(self) -> Tensor:
        return torch.ones(self.num_tasks)
