"""Dynamic Weight Average (DWA).

Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019, eq. 7.
With L_k(t) the mean training loss of task k over epoch t and temperature T,

    r_k(t-1) = L_k(t-1) / L_k(t-2)
    w_k(t)   = K exp(r_k(t-1) / T) / sum_i exp(r_i(t-1) / T)
    L        = sum_k w_k(t) L_k

and w_k(t) = 1 for the first two epochs (no ratio exists yet). The weights sum to K; a task
whose loss fell least over the last epoch gets the largest weight. The weights change only in
``on_epoch_end``, which receives the epoch means from the training loop.

Guard beyond the paper: a previous epoch mean of exactly zero would divide by zero; the
denominator is clamped to the smallest positive float64 (the task then dominates, as the
paper's limit would have it, instead of producing NaN).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import LossWeighting


class DWA(LossWeighting):
    """Weight tasks by a softmax of how slowly each loss fell over the last epoch."""

    name = "dwa"
    partial_steps = True
    paper = "Liu, Johns & Davison, End-to-End Multi-Task Learning with Attention, CVPR 2019"

    def __init__(self, num_tasks: int, temperature: float = 2.0) -> None:
        super().__init__(num_tasks)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number above 0, got {temperature!r}")
        self.temperature = temperature
        # rows: mean losses of the epoch before last, and of the last epoch
        self.register_buffer("_epoch_losses", torch.zeros(2, num_tasks, dtype=torch.float64))
        self.register_buffer("_epochs", torch.zeros((), dtype=torch.long))
        self.register_buffer("_weights", torch.ones(num_tasks))

    def forward(self, losses: Tensor) -> Tensor:
        self._check_losses(losses)
        return (self._weights.to(losses) * losses).sum()

    def on_epoch_end(self, epoch_losses: Tensor) -> None:
        self._check_losses(epoch_losses)
        self._epoch_losses[0] = self._epoch_losses[1]
        self._epoch_losses[1] = epoch_losses.detach().to(self._epoch_losses)
        self._epochs += 1
        if self._epochs < 2:
            return
        previous = self._epoch_losses[0].clamp_min(torch.finfo(torch.float64).tiny)
        ratios = self._epoch_losses[1] / previous
        self._weights.copy_(self.num_tasks * torch.softmax(ratios / self.temperature, dim=0))

    def task_weights(self) -> Tensor:
        return self._weights.clone()

    def reset(self) -> None:
        self._epoch_losses.zero_()
        self._epochs.zero_()
        self._weights.fill_(1.0)
