"""Progressive layered extraction (PLE), and its one-level case CGC, over the encoder's features.

Tang, Liu, Zhao, Gong, "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning (MTL)
Model for Personalized Recommendations", RecSys 2020. An extraction level has shared experts and,
per task, the task's own experts (MLPs). At level ``j`` task ``k``'s gate mixes its own experts
and the shared ones, ``h_k^j = softmax(W_k^j h_k^{j-1}) . [E_k^j(h_k^{j-1}), E_s^j(s^{j-1})]``
(no bias, as in the paper); below the last level a shared gate mixes *all* the level's experts,
``s^j = softmax(W_s^j s^{j-1}) . [E_1^j(h_1^{j-1}), ..., E_K^j(h_K^{j-1}), E_s^j(s^{j-1})]``.
Level 1 reads the encoder's features, ``h_k^0 = s^0 = x``; task ``k``'s representation is
``h_k^L``. ``levels=1`` is the paper's CGC (customized gate control).

Shared and private are decided by reachability, not by name: below the last level a task's
experts feed the shared gate, hence every task, so they are **shared** here (so are the task gates
below level ``L-1``, which feed those experts). Private to task ``k``: its experts and gate at the
last level and, with two levels or more, its gate at level ``L-1`` (its output ``h_k^{L-1}`` feeds
task ``k``'s last level only).

The boundary is where those private modules read shared tensors: always the last level's shared
expert outputs (read by the private gates only); with ``levels=1``, a tap of ``x`` (which the
shared experts read too); with two levels or more, taps of level ``L-1``'s task inputs (which that
level's task experts read too) and expert outputs (which its shared gate reads too), read by the
private gates of level ``L-1``. Every path from a shared parameter to a task's loss crosses
exactly one boundary tensor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .base import Backbone, Batch, SharedOutput, Sharing, mlp, tap, trainable
from .mmoe import check_experts, mix


class LevelGates(NamedTuple):
    """One extraction level's gates: per task ``[B, task_experts + shared_experts]`` (own experts
    first), and the shared gate ``[B, K * task_experts + shared_experts]`` (None at the last level)."""

    tasks: dict[str, Tensor]
    shared: Tensor | None


class Extraction(nn.Module):
    """One extraction network: shared experts, each task's experts and gate, and (below the last
    level) the shared gate."""

    def __init__(self, tasks: Sequence[str], in_dim: int, shared_experts: int, task_experts: int, hidden: Sequence[int], dropout: float, last: bool) -> None:
        super().__init__()
        self.shared_experts = nn.ModuleList(mlp(in_dim, hidden, dropout) for _ in range(shared_experts))
        self.task_experts = nn.ModuleDict({t: nn.ModuleList(mlp(in_dim, hidden, dropout) for _ in range(task_experts)) for t in tasks})
        self.task_gates = nn.ModuleDict({t: nn.Linear(in_dim, task_experts + shared_experts, bias=False) for t in tasks})
        self.shared_gate = None if last else nn.Linear(in_dim, len(tasks) * task_experts + shared_experts, bias=False)


def _stack(experts: nn.ModuleList, x: Tensor) -> Tensor:
    return torch.stack([expert(x) for expert in experts], dim=-2)  # [B, (T,) n, H]


class PLE(Sharing):
    """Shared and task-specific experts, mixed per task by gates, in ``levels`` stacked levels."""

    name = "ple"
    paper = "Tang et al., Progressive Layered Extraction (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized Recommendations, RecSys 2020"
    summary = "shared + per-task experts mixed by per-task gates, stacked in levels (levels=1: CGC)"

    def __init__(
        self,
        tasks: Sequence[str],
        encoder: Backbone,
        levels: int = 1,
        shared_experts: int = 2,
        task_experts: int = 2,
        expert_hidden: Sequence[int] = (64,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(tasks, encoder)
        self.check_params(self.tasks, levels=levels, shared_experts=shared_experts, task_experts=task_experts, expert_hidden=expert_hidden, dropout=dropout)
        self.levels, self.shared_experts, self.task_experts = levels, shared_experts, task_experts
        self.expert_hidden, self.dropout = list(expert_hidden), dropout
        self.encoder = encoder
        dims = [encoder.output_dim] + [self.expert_hidden[-1]] * (levels - 1)
        self.extraction = nn.ModuleList(
            Extraction(self.tasks, dim, shared_experts, task_experts, self.expert_hidden, dropout, last=j == levels - 1) for j, dim in enumerate(dims)
        )

    @classmethod
    def check_params(cls, tasks: Sequence[str], **params: Any) -> None:
        values = {n: p.default for n, p in cls.hyperparameters().items()} | params
        if values["levels"] < 1:
            raise ValueError(f"levels must be at least 1, got {values['levels']}")
        check_experts(values["shared_experts"], values["expert_hidden"], values["dropout"], "shared_experts")
        if values["task_experts"] < 1:
            raise ValueError(f"task_experts must be at least 1 (with none, use 'mmoe'), got {values['task_experts']}")

    def forward(self, batch: Batch) -> SharedOutput:
        representations, boundary, _ = self._run(batch)
        return SharedOutput(representations, boundary)

    def gates(self, batch: Batch) -> list[LevelGates]:
        """Every level's gates, lowest first (each row a distribution over the experts it mixes)."""
        return self._run(batch)[2]

    def _run(self, batch: Batch) -> tuple[dict[str, Tensor], list[Tensor], list[LevelGates]]:
        x = self.encoder(batch)
        shared_in, task_in = x, {t: x for t in self.tasks}
        boundary: list[Tensor] = []
        all_gates: list[LevelGates] = []
        for j, level in enumerate(self.extraction):
            last, private_gates = j == self.levels - 1, j == self.levels - 2
            if last and self.levels == 1:
                # CGC: x feeds the shared experts and the (private) task experts and gates
                x_private = tap(x)
                boundary.append(x_private)
                task_in = {t: x_private for t in self.tasks}
            shared_out = _stack(level.shared_experts, shared_in)
            task_out = {t: _stack(level.task_experts[t], task_in[t]) for t in self.tasks}
            shared_gate = None
            if level.shared_gate is not None:
                shared_gate = torch.softmax(level.shared_gate(shared_in), dim=-1)
                everything = torch.cat([task_out[t] for t in self.tasks] + [shared_out], dim=-2)
                shared_next = mix(shared_gate, everything)
            if last:
                boundary.append(shared_out)  # read by the private gates only
            elif private_gates:
                # these task gates are private, the tensors they read are also read by shared modules
                taps: dict[int, Tensor] = {}  # one tap per distinct input (at level 1 every task reads x)
                for t in self.tasks:
                    if id(task_in[t]) not in taps:
                        taps[id(task_in[t])] = tap(task_in[t])
                task_in = {t: taps[id(task_in[t])] for t in self.tasks}
                task_out = {t: tap(task_out[t]) for t in self.tasks}
                shared_out = tap(shared_out)
                boundary += list(taps.values()) + list(task_out.values()) + [shared_out]
            gates = {t: torch.softmax(level.task_gates[t](task_in[t]), dim=-1) for t in self.tasks}
            task_in = {t: mix(gates[t], torch.cat([task_out[t], shared_out], dim=-2)) for t in self.tasks}
            all_gates.append(LevelGates(gates, shared_gate))
            if not last:
                shared_in = shared_next
        return task_in, boundary, all_gates

    def output_dim(self, task: str) -> int:
        return self.expert_hidden[-1]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        top = self.extraction[-1]
        modules = [top.task_experts[task], top.task_gates[task]]
        if self.levels > 1:
            modules.append(self.extraction[-2].task_gates[task])
        return trainable(p for module in modules for p in module.parameters())

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        private = {id(p) for task in self.tasks for p in self.task_parameters(task)}
        return trainable(p for p in self.parameters() if id(p) not in private)
