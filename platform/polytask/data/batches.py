"""Batches from prepared arrays: texts padded to the longest text in each batch (per-token
labels cut to the same width), images as float pixels, or a tabular split's feature codes and
numbers.

Training draws from endless streams of shuffled passes over the training rows — one stream, or
with one dataset per task one stream per task, chosen step by step by the sampling policy
(polytask.data.sampling). Epoch ``e`` with ``S`` steps takes steps ``e*S .. (e+1)*S - 1``; the
rows of every batch depend only on the trial seed, so a trial resumed from a checkpoint at
epoch ``e`` sees exactly the batches it would have.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from polytask.data.prepare import SplitArrays
from polytask.data.sampling import ALL, schedule
from polytask.spec.models import SamplingSpec

Batch = dict[str, Tensor]


def collate(split: SplitArrays, rows: np.ndarray) -> Batch:
    """Text rows: ``input_ids``, ``attention_mask`` (and ``frozen_hidden``); image rows:
    ``pixel_values`` float32 [B, C, H, W] in 0..1; tabular rows: ``categorical`` int64 [B, C]
    and ``numeric`` float32 [B, F]; all: ``labels/{task}`` and, when distilling,
    ``teacher/{task}`` (the teacher's class probabilities)."""
    width = int(split.lengths[rows].max()) if split.lengths is not None else None
    batch = {f"labels/{task}": torch.from_numpy(y[rows, :width] if task in split.token_tasks else y[rows]) for task, y in split.labels.items()}
    batch.update({f"teacher/{task}": torch.from_numpy(p[rows]) for task, p in (split.teacher or {}).items()})
    if split.images is not None:
        pixels = torch.from_numpy(split.images[rows])
        batch["pixel_values"] = pixels.float() / 255.0 if pixels.dtype == torch.uint8 else pixels
    elif split.input_ids is None:
        batch.update({"categorical": torch.from_numpy(split.categorical[rows]), "numeric": torch.from_numpy(split.numeric[rows])})
    else:
        input_ids = torch.from_numpy(split.input_ids[rows, :width].astype(np.int64))
        attention_mask = (torch.arange(width)[None, :] < torch.from_numpy(split.lengths[rows])[:, None]).long()
        batch.update({"input_ids": input_ids, "attention_mask": attention_mask})
        if split.frozen_hidden is not None:
            batch["frozen_hidden"] = torch.from_numpy(split.frozen_hidden[rows, :width].astype(np.float32))
    return batch


class _Rows:
    """An endless stream of shuffled passes over some rows, ``batch_size`` at a time (the
    remainder rows of a pass are left out)."""

    def __init__(self, rows: np.ndarray, batch_size: int, seed: list[int]) -> None:
        self.rows = rows
        self.batch_size = min(batch_size, len(rows))
        self.per_pass = len(rows) // self.batch_size
        self.seed = seed

    def batch(self, index: int) -> np.ndarray:
        pass_index, within = divmod(index, self.per_pass)
        order = np.random.default_rng([*self.seed, pass_index]).permutation(len(self.rows))
        return self.rows[order[within * self.batch_size : (within + 1) * self.batch_size]]


class TrainStream:
    def __init__(self, split: SplitArrays, batch_size: int, seed: int, sampling: SamplingSpec | None = None, epochs: int = 1) -> None:
        self.split = split
        self.sampling = sampling or SamplingSpec()
        self.epochs = epochs
        self.seed = seed
        if split.group is None:
            self.streams = [_Rows(np.arange(len(split)), batch_size, [seed])]
        else:
            groups = int(split.group.max()) + 1
            self.streams = [_Rows(np.flatnonzero(split.group == g), batch_size, [seed, g]) for g in range(groups)]
        self.sizes = [len(s.rows) for s in self.streams]
        # Default epoch: every training row once, in expectation (policy all: K batches a step).
        per_step = batch_size * (len(self.streams) if self._all else 1)
        self.steps_per_epoch = max(1, len(split) // per_step)

    @property
    def _all(self) -> bool:
        return len(self.streams) > 1 and self.sampling.policy == "all"

    def schedule(self, epoch: int, steps: int) -> np.ndarray:
        """The stream (task) of each step of the epoch; ALL: every stream."""
        if len(self.streams) == 1:
            return np.zeros(steps, dtype=np.int64)
        return schedule(self.sampling, self.sizes, steps, epoch, self.epochs, self.seed)

    def task_batches(self, epoch: int, steps: int) -> np.ndarray:
        """Batches each stream gives in the epoch: int64 [streams]."""
        tasks = self.schedule(epoch, steps)
        if self._all:
            return np.full(len(self.streams), steps, dtype=np.int64)
        return np.bincount(tasks, minlength=len(self.streams))

    def epoch(self, epoch: int, steps: int | None = None) -> Iterator[Batch]:
        steps = steps or self.steps_per_epoch
        used = sum((self.task_batches(e, steps) for e in range(epoch)), np.zeros(len(self.streams), dtype=np.int64))
        for task in self.schedule(epoch, steps):
            chosen = range(len(self.streams)) if task == ALL else [task]
            rows = np.concatenate([self.streams[g].batch(int(used[g])) for g in chosen])
            for g in chosen:
                used[g] += 1
            yield collate(self.split, rows)

    def rows(self, batch_index: int) -> np.ndarray:
        """Rows of batch ``batch_index`` of the single stream (one dataset)."""
        return self.streams[0].batch(batch_index)


def eval_batches(split: SplitArrays, batch_size: int) -> Iterator[tuple[np.ndarray, Batch]]:
    """Rows sorted by length where they have one (less padding), else in order, with their row
    indices to put results back."""
    order = np.arange(len(split)) if split.lengths is None else np.argsort(split.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, collate(split, rows)
