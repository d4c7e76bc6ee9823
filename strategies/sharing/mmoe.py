"""Multi-gate mixture-of-experts (MMoE) over the encoder's features.

Ma, Zhao, Yi, Chen, Hong, Chi, "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018. With ``x = encoder(batch)``, ``E`` expert networks
``f_e`` (MLPs, shared by all tasks) and one gate per task, ``g_k(x) = softmax(W_k x)`` over the
experts (``W_k: E x D``, no bias, as in the paper), task ``k``'s representation is
``h_k(x) = sum_e g_k(x)_e f_e(x)``; its head (the paper's tower) takes it from there.

Shared: the encoder and the experts. Private to task ``k``: its gate ``W_k``. The boundary is the
stacked expert outputs ``[B, E, H]`` and the gates' view of ``x`` (a :func:`tap`: ``x`` also feeds
the experts): every path from a shared parameter to a task's loss crosses exactly one of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import Backbone, Batch, SharedOutput, Sharing, mlp, tap, trainable


def check_experts(experts: int, expert_hidden: Sequence[int], dropout: float, what: str = "experts") -> None:
    """Shared by MMoE and PLE: an expert count (``what``), expert widths and a dropout rate."""
    if experts < 1:
        raise ValueError(f"{what} must be at least 1, got {experts}")
    if not expert_hidden or any(width < 1 for width in expert_hidden):
        raise ValueError(f"expert_hidden must list one or more positive widths (the last is the output size), got {list(expert_hidden)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def mix(gate: Tensor, experts: Tensor) -> Tensor:
    """``sum_e gate[..., e] * experts[..., e, :]``: ``[B, E] x [B, E, H] -> [B, H]``, and the
    same per token for token states (``[B, T, E] x [B, T, E, H] -> [B, T, H]``)."""
    return torch.einsum("...e,...eh->...h", gate, experts)


class MMoE(Sharing):
    """Shared experts over the encoder's features, mixed per task by its own softmax gate."""

    name = "mmoe"
    paper = "Ma et al., Modeling Task Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts, KDD 2018"
    summary = "shared experts over the encoder's features, mixed per task by a softmax gate"

    def __init__(self, tasks: Sequence[str], encoder: Backbone, experts: int = 8, expert_hidden: Sequence[int] = (64,), dropout: float = 0.0) -> None:
        super().__init__(tasks, encoder)
        self.check_params(self.tasks, experts=experts, expert_hidden=expert_hidden, dropout=dropout)
        self.experts, self.expert_hidden, self.dropout = experts, list(expert_hidden), dropout
        self.encoder = encoder
        self.expert_nets = nn.ModuleList(mlp(encoder.output_dim, self.expert_hidden, dropout) for _ in range(experts))
        self.gate_nets = nn.ModuleDict({task: nn.Linear(encoder.output_dim, experts, bias=False) for task in self.tasks})

    @classmethod
    def check_params(cls, tasks: Sequence[str], **params: Any) -> None:
        values = {n: p.default for n, p in cls.hyperparameters().items()} | params
        check_experts(values["experts"], values["expert_hidden"], values["dropout"])

    def forward(self, batch: Batch) -> SharedOutput:
        representations, boundary, _ = self._run(batch)
        return SharedOutput(representations, boundary)

    def gates(self, batch: Batch) -> dict[str, Tensor]:
        """Each task's gate ``[B, E]`` (a distribution over the experts per example)."""
        return self._run(batch)[2]

    def _run(self, batch: Batch) -> tuple[dict[str, Tensor], list[Tensor], dict[str, Tensor]]:
        x = self.encoder(batch)
        outputs = torch.stack([expert(x) for expert in self.expert_nets], dim=-2)  # [B, (T,) E, H]
        x_gates = tap(x)  # the gates' (private) reading of x, apart from the experts' (shared) one
        gates = {task: torch.softmax(self.gate_nets[task](x_gates), dim=-1) for task in self.tasks}
        representations = {task: mix(gates[task], outputs) for task in self.tasks}
        return representations, [x_gates, outputs], gates

    def output_dim(self, task: str) -> int:
        return self.expert_hidden[-1]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return trainable(p for module in (self.encoder, self.expert_nets) for p in module.parameters())

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        return trainable(self.gate_nets[task].parameters())
