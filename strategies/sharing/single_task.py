"""The single-task baseline, inside one trial: K independent networks trained side by side.

Each task ``k`` has its own copy of the encoder and, optionally, its own MLP bottom on top
(``hidden``, the per-task counterpart of hard sharing's shared bottom):
``h_k(x) = head_k(bottom_k(encoder(x; theta_k)))``. Nothing ties the copies: soft sharing
(polytask.strategies.sharing.soft) with strength 0. The total loss ``sum_k L_k(theta_k)``
separates, so this trains K single-task models at once, except that model selection (the
checkpoint kept, the trial compared) uses the mean validation score over the tasks, and gradient
clipping, when set, scales all of them by one global norm. Frozen encoder parameters are stored
once and used by every copy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain

from torch import nn

from .base import Backbone, Batch, SharedOutput, mlp, trainable
from .soft import SoftSharing


class SingleTask(SoftSharing):
    """One independent encoder copy (+ MLP bottom) per task: no parameter shared, no penalty."""

    name = "single_task"
    paper = "baseline: one independent network per task (no sharing)"
    summary = "one independent encoder copy (+ optional MLP bottom) per task: K single-task models trained side by side"

    def __init__(self, tasks: Sequence[str], encoder: Backbone, hidden: Sequence[int] = (), dropout: float = 0.0) -> None:
        super().__init__(tasks, encoder, strength=0.0)
        self.hidden, self.dropout = list(hidden), dropout
        self.bottoms = nn.ModuleList(mlp(encoder.output_dim, self.hidden, dropout) for _ in self.tasks)

    def forward(self, batch: Batch) -> SharedOutput:
        representations = {task: bottom(encoder(batch)) for task, encoder, bottom in zip(self.tasks, self.encoders, self.bottoms)}
        return SharedOutput(representations, list(representations.values()))  # nothing shared: see SoftSharing

    def output_dim(self, task: str) -> int:
        return self.hidden[-1] if self.hidden else self._output_dim

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        index = self.tasks.index(task) if task in self.tasks else None
        if index is None:
            raise KeyError(task)
        return trainable(chain(self.encoders[index].parameters(), self.bottoms[index].parameters()))
