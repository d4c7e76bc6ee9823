"""Hierarchical sharing: each task reads the shared encoder at its own depth.

Søgaard and Goldberg, "Deep multi-task learning with low level tasks supervised at lower
layers", ACL 2016. One encoder, ``h^0 = stem(x)``, ``h^{i+1} = stage_i(h^i)``; task ``k`` is
supervised at depth ``d_k``: ``y_k = head_k(readout(h^{d_k}))``. A low-level task (POS tagging
in the paper) read low sharpens the layers that a higher-level task (chunking, CCG) builds on,
and its loss does not reach the layers above it. ``depths`` gives ``d_k`` per task, in task
order (a spec may write a mapping task -> depth); 0 reads the stem's output, the encoder's
``num_stages`` (the default, for every task) its top, which is then hard sharing.

Stage ``i`` is reached by the tasks with ``d_k > i``: it is shared when two or more tasks reach
it, private to the deepest task when only that one does. The stem is reached by every task.
Stages at or above the largest depth are never run; their parameters are frozen
(``requires_grad_(False)``), so they are neither shared nor private and no optimizer touches
them. The encoder's readout is taken to have no trainable parameters (pooling, or the
identity); task ``k``'s head gets features of the encoder's ``width(d_k)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch import Tensor, nn

from .base import Backbone, Batch, SharedOutput, Sharing, tap, trainable


class Hierarchical(Sharing):
    """One encoder; each task's head reads it at the task's own depth."""

    name = "hierarchical"
    paper = "Søgaard & Goldberg, Deep multi-task learning with low level tasks supervised at lower layers, ACL 2016"
    summary = "one encoder, each task supervised at its own depth (low-level tasks read lower stages)"
    per_task_hyperparameters = ("depths",)

    def __init__(self, tasks: Sequence[str], encoder: Backbone, depths: Sequence[int] | None = None) -> None:
        super().__init__(tasks, encoder)
        self.check_params(self.tasks, depths=depths)
        self.depths = None if depths is None else list(depths)
        self.encoder = encoder
        stages = encoder.num_stages
        self.task_depth = dict(zip(self.tasks, self.depths if self.depths is not None else [stages] * len(self.tasks)))
        too_deep = {t: d for t, d in self.task_depth.items() if d > stages}
        if too_deep:
            listing = ", ".join(f"'{t}' at {d}" for t, d in too_deep.items())
            raise ValueError(f"depths: {listing}, but the encoder has {stages} stages (depths run from 0, the stem's output, to {stages})")
        self._stage_modules: list[nn.Module] = list(encoder.stage_modules())
        ordered = sorted(self.task_depth.values(), reverse=True)
        self.top = ordered[0]  # stages from here up are never run
        # The shared part is the stem and the stages reached by two or more tasks: stages below
        # the second-largest depth (the stem alone when that is 0). One task: nothing is shared.
        self.shared_depth = ordered[1] if len(ordered) > 1 else None
        for module in self._stage_modules[self.top :]:
            module.requires_grad_(False)

    @classmethod
    def check_params(cls, tasks: Sequence[str], **params: Any) -> None:
        depths = params.get("depths")
        if depths is None:
            return
        if len(depths) != len(tasks):
            raise ValueError(f"depths: one depth per task is needed ({len(tasks)}: {', '.join(tasks)}), got {len(depths)}")
        negative = [f"'{t}' at {d}" for t, d in zip(tasks, depths) if d < 0]
        if negative:
            raise ValueError(f"depths must be >= 0 (0 reads the stem's output), got {', '.join(negative)}")

    def forward(self, batch: Batch) -> SharedOutput:
        # Boundary rule. The shared computation ends at h^s, s = the second-largest depth
        # (output of the last stage two tasks reach; the stem's output if s = 0). Everything
        # that reads h^s is private: the readout of the tasks at depth s and stage s, which only
        # the deepest task reaches. A task read lower, at d < s, reads h^d, which the shared
        # stage d reads too: it reads it through tap(h^d), and the tap joins the boundary. So
        # the boundary is {tap(h^d) : d < s a task's depth} + {h^s}: every shared parameter
        # upstream, every private one (stages >= s, heads) downstream, and no boundary tensor
        # computed from another (h^s is computed from h^d, not from its tap).
        depth_of = set(self.task_depth.values())
        read: dict[int, Tensor] = {}
        boundary: list[Tensor] = []
        hidden = self.encoder.stem(batch)
        for depth in range(self.top + 1):
            if depth > 0:
                hidden = self.encoder.stage(depth - 1, hidden, batch)
            if depth in depth_of:
                if self.shared_depth is not None and depth < self.shared_depth:
                    read[depth] = tap(hidden)
                    boundary.append(read[depth])
                else:
                    read[depth] = hidden
            if depth == self.shared_depth:
                boundary.append(hidden)
        features = {depth: self.encoder.readout(h, batch) for depth, h in read.items()}
        representations = {task: features[self.task_depth[task]] for task in self.tasks}
        if self.shared_depth is None:  # one task: nothing shared, as in soft sharing
            boundary = list(representations.values())
        return SharedOutput(representations, boundary)

    def output_dim(self, task: str) -> int:
        return self.encoder.width(self.task_depth[task])

    def _reached_by(self, index: int) -> list[str]:
        return [t for t, d in self.task_depth.items() if d > index]

    def _stage_parameters(self) -> set[int]:
        return {id(p) for module in self._stage_modules for p in module.parameters()}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        if self.shared_depth is None:
            return iter(())
        staged = self._stage_parameters()
        stem = [p for p in self.encoder.parameters() if id(p) not in staged]  # stem (and readout): every task
        stages = [p for i, m in enumerate(self._stage_modules) if len(self._reached_by(i)) >= 2 for p in m.parameters()]
        return trainable(iter(stem + stages))

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.tasks:
            raise KeyError(task)
        if self.shared_depth is None:
            return trainable(self.encoder.parameters())
        return trainable(p for i, m in enumerate(self._stage_modules) if self._reached_by(i) == [task] for p in m.parameters())
