"""Task adapters: one frozen encoder, per-task LoRA adapters in its trainable blocks.

LoRA: Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022. Every base
weight of the encoder is frozen; each linear layer ``W`` of its stages gets, per task ``k``, a
low-rank update, ``W x + (alpha / r) B_k A_k x``, and task ``k``'s representation is the encoder
run with task ``k``'s updates: ``h_k(x) = encoder_k(x)``. ``B_k`` starts at zero, so every task
starts from the base encoder.

No trainable parameter is shared: each task trains its own adapters only (a gradient aggregator
has nothing to combine). The cost is one encoder pass per task: the stem (everything below the
stages, frozen and adapter-free) runs once, the stages and the readout run K times.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch import Tensor, nn

from .base import Backbone, Batch, SharedOutput, Sharing, trainable


def adapter_owner(name: str) -> str | None:
    """The adapter a parameter belongs to, from its qualified name: adapters are kept in
    dictionaries keyed by adapter name (= task name) under a ``lora_*`` attribute
    (``...query.lora_A.<task>.weight``); None for any other parameter."""
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.startswith("lora_"):
            return parts[i + 1]
    return None


class TaskAdapters(Sharing):
    """A frozen encoder; each task's representation comes from its own LoRA adapters."""

    name = "lora"
    paper = "Hu et al., LoRA: Low-Rank Adaptation of Large Language Models, ICLR 2022"
    summary = "frozen encoder, one set of LoRA adapters per task (one encoder pass per task)"
    shares_parameters = False

    def __init__(self, tasks: Sequence[str], encoder: Backbone, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0) -> None:
        super().__init__(tasks, encoder)
        self.check_params(self.tasks, rank=rank, alpha=alpha, dropout=dropout)
        self.rank, self.alpha, self.dropout = rank, alpha, dropout
        self.encoder = encoder
        encoder.add_task_adapters(self.tasks, rank, alpha, dropout)
        stray = [n for n, p in encoder.named_parameters() if p.requires_grad and adapter_owner(n) not in self.tasks]
        if stray:
            raise ValueError(f"after adding task adapters, {len(stray)} trainable encoder parameter(s) belong to no task: {stray[:3]}")

    @classmethod
    def check_params(cls, tasks: Sequence[str], **params: Any) -> None:
        values = {n: p.default for n, p in cls.hyperparameters().items()} | params
        if values["rank"] < 1:
            raise ValueError(f"rank must be at least 1, got {values['rank']}")
        if values["alpha"] <= 0:
            raise ValueError(f"alpha must be positive, got {values['alpha']}")
        if not 0.0 <= values["dropout"] < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {values['dropout']}")

    def forward(self, batch: Batch) -> SharedOutput:
        stem = self.encoder.stem(batch)  # frozen and adapter-free: the same for every task
        representations: dict[str, Tensor] = {}
        for task in self.tasks:
            with self.encoder.task_adapter(task):
                hidden = stem
                for index in range(self.encoder.num_stages):
                    hidden = self.encoder.stage(index, hidden, batch)
                representations[task] = self.encoder.readout(hidden, batch)
        # Sharing ends where the tasks' computations part: at the stem's output (no trainable
        # parameter upstream, every adapter downstream).
        return SharedOutput(representations, [stem])

    def output_dim(self, task: str) -> int:
        return self.encoder.output_dim

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        # empty after __init__; anything unfrozen later outside the adapters feeds every task
        return (p for n, p in self.named_parameters() if p.requires_grad and adapter_owner(n) not in self.tasks)

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.tasks:
            raise KeyError(task)
        return trainable(p for n, p in self.named_parameters() if adapter_owner(n) == task)
