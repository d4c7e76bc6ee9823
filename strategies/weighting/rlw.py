"""Random Loss Weighting (RLW).

Lin, Ye, Zhang & Tsang, "Reasonable Effectiveness of Random Weighting: A Litmus Test for
Multi-Task Learning", TMLR 2022. Every step draws fresh weights

    lambda_tilde ~ N(0, I_K),    w = softmax(lambda_tilde),    L = sum_k w_k L_k

(the paper studies several sampling distributions; the standard normal followed by a softmax is
the one it uses by default). The weights are a random point of the simplex, equal in
expectation, and independent of the losses and of the past.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LossWeighting


class RLW(LossWeighting):
    """Weight the tasks by a fresh softmax of standard normal draws at every step."""

    name = "rlw"
    partial_steps = True
    stochastic = True
    paper = (
        "Lin, Ye, Zhang & Tsang, Reasonable Effectiveness of Random Weighting: A Litmus Test for "
        "Multi-Task Learning, TMLR 2022"
    )

    def __init__(self, num_tasks: int) -> None:
        super().__init__(num_tasks)
        # the last draw, kept only so task_weights() reports what was applied
        self.register_buffer("_weights", torch.full((num_tasks,), 1.0 / num_tasks))

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        # Drawn on the CPU generator whatever the device: that is the generator the trial seeds
        # and checkpoints (torch.get_rng_state), so a resumed trial draws the same weights.
        weights = torch.softmax(torch.randn(self.num_tasks, dtype=torch.float64), dim=0)
        self._weights.copy_(weights)
        return (weights.to(losses) * losses).sum()

    def task_weights(self) -> Tensor:
        return self._weights.clone()

    def reset(self) -> None:
        self._weights.fill_(1.0 / self.num_tasks)
