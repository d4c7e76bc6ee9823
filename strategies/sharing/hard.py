"""Hard parameter sharing: one encoder (and optionally a shared MLP on top) for every task.

Caruana, "Multitask Learning", Machine Learning 28, 1997. The tasks share everything but their
heads: ``h_k(x) = head_k(bottom(encoder(x)))``. With ``hidden`` empty (the default) the bottom
is the identity, the usual "encoder + task heads"; the MMoE paper's *shared-bottom* baseline is
this with a hidden layer (Ma et al. 2018).
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Backbone, Batch, EverythingShared, SharedOutput, Sharing, mlp


class HardSharing(EverythingShared, Sharing):
    """One shared encoder (+ shared MLP bottom); the result goes to every task head."""

    name = "hard"
    paper = "Caruana, Multitask Learning, Machine Learning 1997"
    summary = "one shared encoder (+ optional shared MLP bottom), one head per task"

    def __init__(self, tasks: Sequence[str], encoder: Backbone, hidden: Sequence[int] = (), dropout: float = 0.0) -> None:
        super().__init__(tasks, encoder)
        self.hidden, self.dropout = list(hidden), dropout
        self.encoder = encoder
        self.bottom = mlp(encoder.output_dim, self.hidden, dropout)

    def forward(self, batch: Batch) -> SharedOutput:
        shared = self.bottom(self.encoder(batch))
        return SharedOutput({task: shared for task in self.tasks}, [shared])

    def output_dim(self, task: str) -> int:
        return self.hidden[-1] if self.hidden else self.encoder.output_dim

