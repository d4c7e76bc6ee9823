"""Scalarization with fixed task weights.

    L = sum_k w_k L_k,   w_k >= 0, not all zero

With weights tuned per study this is the baseline that Xin et al. ("Do Current Multi-Task
Optimization Methods in Deep Learning Even Help?", NeurIPS 2022) and Kurin et al. ("In Defense
of the Unitary Scalarization for Deep Multi-Task Learning", NeurIPS 2022) found to match most
specialised methods. The platform searches ``weights`` with Optuna; the strategy only applies them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .base import LossWeighting


class Scalarization(LossWeighting):
    """Weighted sum of the task losses with fixed, non-negative weights."""

    name = "scalarization"
    partial_steps = True
    paper = (
        "Xin et al., Do Current Multi-Task Optimization Methods in Deep Learning Even Help?, "
        "NeurIPS 2022"
    )

    def __init__(self, num_tasks: int, weights: Sequence[float] | None = None) -> None:
        super().__init__(num_tasks)
        values = [1.0] * num_tasks if weights is None else [float(w) for w in weights]
        if len(values) != num_tasks:
            raise ValueError(f"weights has {len(values)} entries for {num_tasks} tasks")
        if any(w < 0 for w in values) or not any(w > 0 for w in values):
            raise ValueError(f"weights must be non-negative and not all zero, got {values}")
        self.weights = values
        self.register_buffer("_w", torch.tensor(values), persistent=False)

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        return (self._w.to(losses.dtype) * losses).sum()

    def task_weights(self) -> Tensor:
        return self._w.clone()
