"""Soft parameter sharing: one encoder per task, kept close to the others by a penalty.

Duong, Cohn, Bird and Cook, "Low Resource Dependency Parsing: Cross-lingual Parameter Sharing in
a Neural Network Parser", ACL 2015. Each task ``k`` has its own copy ``theta_k`` of the encoder,
``h_k(x) = head_k(encoder(x; theta_k))``, and the objective gains

    strength * sum_k ||theta_k - theta_bar||^2,   theta_bar = (1/K) sum_k theta_k,

summed over corresponding trainable parameters of the copies. Duong et al. penalise
``||theta_1 - theta_2||^2`` between two parsers; for K = 2 the sum above is half of that, and
for more tasks it pulls every copy toward their mean (its gradient on ``theta_k`` is
``2 * strength * (theta_k - theta_bar)``). The copies start equal, so the penalty starts at 0.

Frozen encoder parameters (a pretrained bottom) are stored once and used by every copy; only
the trainable ones are copied. No parameter is reached by two tasks' losses, so nothing is
shared in the contract's sense: every trainable parameter is private to its task.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import Backbone, Batch, SharedOutput, Sharing, copy_trainable, trainable


class SoftSharing(Sharing):
    """One encoder copy per task, an L2 penalty pulling the copies toward their mean."""

    name = "soft"
    paper = "Duong et al., Low Resource Dependency Parsing: Cross-lingual Parameter Sharing in a Neural Network Parser, ACL 2015"
    summary = "one encoder copy per task; strength * sum_k ||theta_k - mean||^2 keeps the copies close"
    shares_parameters = False

    def __init__(self, tasks: Sequence[str], encoder: Backbone, strength: float = 1e-3) -> None:
        super().__init__(tasks, encoder)
        self.check_params(self.tasks, strength=strength)
        self.strength = strength
        self._output_dim = encoder.output_dim
        # Task order; the first task keeps the encoder it was given. A ModuleList, not a
        # ModuleDict: task names need not be valid module names.
        self.encoders = nn.ModuleList([encoder] + [copy_trainable(encoder) for _ in self.tasks[1:]])

    @classmethod
    def check_params(cls, tasks: Sequence[str], **params: Any) -> None:
        strength = params.get("strength", 0.0)
        if not math.isfinite(strength) or strength < 0:
            raise ValueError(f"strength must be a finite number >= 0, got {strength}")

    def forward(self, batch: Batch) -> SharedOutput:
        representations = {task: encoder(batch) for task, encoder in zip(self.tasks, self.encoders)}
        # Nothing trainable is shared, so no tensor is where shared training ends; the gradient
        # engine sees no shared parameters and runs one backward pass of the summed losses,
        # never differentiating against the boundary. We hand it the per-task representations
        # (each read by one task only; none computed from another).
        return SharedOutput(representations, list(representations.values()))

    def output_dim(self, task: str) -> int:
        return self._output_dim

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.tasks:
            raise KeyError(task)
        return trainable(self.encoders[self.tasks.index(task)].parameters())

    def regularizer(self) -> Tensor | None:
        if self.strength == 0:
            return None
        copies = [list(trainable(encoder.parameters())) for encoder in self.encoders]
        if not copies[0]:
            return None
        total = None
        for corresponding in zip(*copies):  # the same parameter in every copy
            # Offsets from the first copy: the spread is the same, and exactly 0 for equal
            # copies (a mean of equal floats need not equal them).
            offsets = torch.stack([p - corresponding[0] for p in corresponding])
            term = (offsets - offsets.mean(dim=0)).pow(2).sum()
            total = term if total is None else total + term
        return self.strength * total
