"""Batches from prepared arrays: texts padded to the longest text in each batch, or a tabular
split's feature codes and numbers.

Training draws from an endless stream of shuffled passes over the training rows; epoch ``e``
with ``S`` steps takes batches ``e*S .. (e+1)*S - 1`` of it. The order depends only on the trial
seed, so a trial resumed from a checkpoint at epoch ``e`` sees exactly the batches it would have.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from polytask.data.prepare import SplitArrays

Batch = dict[str, Tensor]


def collate(split: SplitArrays, rows: np.ndarray) -> Batch:
    """Text rows: ``input_ids``, ``attention_mask`` (and ``frozen_hidden``); tabular rows:
    ``categorical`` int64 [B, C] and ``numeric`` float32 [B, F]; both: ``labels/{task}`` and,
    when distilling, ``teacher/{task}`` (the teacher's class probabilities)."""
    batch = {f"labels/{task}": torch.from_numpy(y[rows]) for task, y in split.labels.items()}
    batch.update({f"teacher/{task}": torch.from_numpy(p[rows]) for task, p in (split.teacher or {}).items()})
    if split.input_ids is None:
        batch.update({"categorical": torch.from_numpy(split.categorical[rows]), "numeric": torch.from_numpy(split.numeric[rows])})
        return batch
    lengths = split.lengths[rows]
    width = int(lengths.max())
    input_ids = torch.from_numpy(split.input_ids[rows, :width].astype(np.int64))
    attention_mask = (torch.arange(width)[None, :] < torch.from_numpy(lengths)[:, None]).long()
    batch.update({"input_ids": input_ids, "attention_mask": attention_mask})
    if split.frozen_hidden is not None:
        batch["frozen_hidden"] = torch.from_numpy(split.frozen_hidden[rows, :width].astype(np.float32))
    return batch


class TrainStream:
    def __init__(self, split: SplitArrays, batch_size: int, seed: int) -> None:
        self.split = split
        self.batch_size = min(batch_size, len(split))
        self.per_pass = len(split) // self.batch_size  # the remainder rows of a pass are left out
        self.seed = seed

    def epoch(self, epoch: int, steps: int | None) -> Iterator[Batch]:
        steps = steps or self.per_pass
        for b in range(epoch * steps, (epoch + 1) * steps):
            yield collate(self.split, self.rows(b))

    def rows(self, batch_index: int) -> np.ndarray:
        pass_index, within = divmod(batch_index, self.per_pass)
        order = np.random.default_rng([self.seed, pass_index]).permutation(len(self.split))
        return order[within * self.batch_size : (within + 1) * self.batch_size]


def eval_batches(split: SplitArrays, batch_size: int) -> Iterator[tuple[np.ndarray, Batch]]:
    """Rows sorted by length where they have one (less padding), else in order, with their row
    indices to put results back."""
    order = np.arange(len(split)) if split.lengths is None else np.argsort(split.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, collate(split, rows)
