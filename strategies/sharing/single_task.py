"""The single-task baseline, inside one trial: K independent networks trained side by side.

Each task ``k`` has its own copy of the encoder, ``h_k(x) = head_k(encoder(x; theta_k))``, and
nothing ties the copies: soft sharing (polytask.strategies.sharing.soft) with strength 0. The
total loss ``sum_k L_k(theta_k)`` separates, so this trains K single-task models at once,
except that model selection (the checkpoint kept, the trial compared) uses the mean validation
score over the tasks, and gradient clipping, when set, scales all of them by one global norm.
Frozen encoder parameters are stored once and used by every copy.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Backbone
from .soft import SoftSharing


class SingleTask(SoftSharing):
    """One independent encoder copy per task (no parameter shared, no penalty)."""

    name = "single_task"
    paper = "baseline: one independent network per task (no sharing)"
    summary = "one independent encoder copy per task: K single-task models trained side by side"

    def __init__(self, tasks: Sequence[str], encoder: Backbone) -> None:
        super().__init__(tasks, encoder, strength=0.0)
