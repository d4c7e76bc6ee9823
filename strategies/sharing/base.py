"""The sharing contract: what the tasks share between the encoder and the task heads.

A sharing module receives the encoder's features ``[B, D]`` and returns one representation per
task. It declares which of its parameters are shared by all tasks and which belong to one task,
so the training loop knows where per-task gradients must be computed (shared) and where each
task's own gradient goes unchanged (private).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

from torch import Tensor, nn


class Sharing(nn.Module):
    name: ClassVar[str]
    paper: ClassVar[str]

    def __init__(self, tasks: Sequence[str], feature_dim: int) -> None:
        super().__init__()
        if len(set(tasks)) != len(tasks) or not tasks:
            raise ValueError(f"tasks must be distinct and non-empty, got {list(tasks)}")
        self.tasks = list(tasks)
        self.feature_dim = feature_dim

    def forward(self, features: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_dim(self, task: str) -> int:
        """Size of the representation handed to ``task``'s head."""
        raise NotImplementedError

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        raise NotImplementedError

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        raise NotImplementedError
