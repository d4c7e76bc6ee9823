"""Hard parameter sharing: every task reads the same encoder features.

Caruana, "Multitask Learning", Machine Learning 28, 1997. The encoder is shared whole; each task
has only its own head. This module is the identity on the features and owns no parameters.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from .base import Sharing


class HardSharing(Sharing):
    """One shared encoder; the features go to every task head unchanged."""

    name = "hard"
    paper = "Caruana, Multitask Learning, Machine Learning 1997"

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        return {task: features for task in self.tasks}

    def output_dim(self, task: str) -> int:
        return self.feature_dim

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return iter(())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.tasks:
            raise KeyError(task)
        return iter(())
