"""Cross-stitch networks: one encoder column per task, mixed after every stage.

Misra, Shrivastava, Gupta and Hebert, "Cross-stitch Networks for Multi-task Learning", CVPR
2016. Each task ``k`` has its own copy (column) of the encoder. After stage ``i`` the K columns'
hidden states ``x_1 .. x_K`` are replaced by learned linear combinations (a cross-stitch unit)

    x~_k = sum_j alpha^i_{kj} x_j,        alpha^i a learnable K x K matrix per stage,

which feed stage ``i + 1`` of each column; task ``k``'s representation is column ``k``'s readout
of its last stitched state. As in the paper, ``alpha^i`` starts as a convex mix that favours the
column's own task: ``init_self`` on the diagonal, ``(1 - init_self) / (K - 1)`` elsewhere (the
paper's ``alpha_S`` and ``alpha_D``). With ``init_self = 1`` the units start as the identity and
the network starts as K separate networks; the data decides how much to share. (The paper also
trains alpha with a larger learning rate; here it shares the optimizer of everything else.)

Each column starts from the same encoder weights (frozen ones stored once); the stems are not
stitched, only the stages. Once stitched, every column reaches every task's loss, so all column
parameters and every alpha are shared; nothing here is private to a task (the heads are).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from .base import Backbone, Batch, EverythingShared, SharedOutput, Sharing, copy_trainable


class CrossStitch(EverythingShared, Sharing):
    """One encoder column per task; learned K x K mixes of the columns after every stage."""

    name = "cross_stitch"
    paper = "Misra et al., Cross-stitch Networks for Multi-task Learning, CVPR 2016"
    summary = "one encoder column per task, hidden states mixed by a learned K x K cross-stitch unit after each stage"

    def __init__(self, tasks: Sequence[str], encoder: Backbone, init_self: float = 0.9) -> None:
        super().__init__(tasks, encoder)
        self.check_params(self.tasks, init_self=init_self)
        if encoder.num_stages == 0:
            raise ValueError("cross-stitch mixes the task columns after each encoder stage, and this encoder has none: give a text encoder trainable_layers > 0, or a tabular one hidden layers")
        self.init_self = init_self
        self._output_dim = encoder.output_dim
        k = len(self.tasks)
        self.columns = nn.ModuleList([encoder] + [copy_trainable(encoder) for _ in self.tasks[1:]])
        eye = torch.eye(k)
        init = init_self * eye + (1 - init_self) / (k - 1) * (1 - eye)
        self.alphas = nn.ParameterList(nn.Parameter(init.clone()) for _ in range(encoder.num_stages))

    @classmethod
    def check_params(cls, tasks: Sequence[str], **params: Any) -> None:
        if len(tasks) < 2:
            raise ValueError(f"cross-stitch mixes two or more task columns, got {len(tasks)} task(s); use 'hard' or 'single_task' for one task")
        init_self = params.get("init_self", 0.9)
        if not 0.0 <= init_self <= 1.0:
            raise ValueError(f"init_self must be in [0, 1] (the diagonal of a convex mix of the columns), got {init_self}")

    @classmethod
    def one_task(cls, index: int, **params: Any) -> tuple[str, dict[str, Any]]:
        """One task's cross-stitch network is its own column, with nothing to mix: hard sharing."""
        return "hard", {}

    def forward(self, batch: Batch) -> SharedOutput:
        hidden = [column.stem(batch) for column in self.columns]
        for i, alpha in enumerate(self.alphas):
            stacked = torch.stack([column.stage(i, h, batch) for column, h in zip(self.columns, hidden)])  # [K, ...]
            hidden = list(torch.einsum("kj,j...->k...", alpha.to(stacked.dtype), stacked).unbind(0))
        # Boundary: the K states after the last stitch. Every parameter here (columns, alphas)
        # lies upstream of them; state k is read by column k's readout and task k's head only,
        # which hold no shared parameter; no state is computed from another (each comes out of
        # the same mix, in parallel).
        representations = {task: column.readout(h, batch) for task, column, h in zip(self.tasks, self.columns, hidden)}
        return SharedOutput(representations, hidden)

    def no_decay_parameters(self) -> Iterator[nn.Parameter]:
        return iter(self.alphas)  # decaying them would shrink every column's activations

    def output_dim(self, task: str) -> int:
        return self._output_dim

