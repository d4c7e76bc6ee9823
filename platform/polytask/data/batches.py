"""Batches from prepared arrays, padded to the longest text in each batch.

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
    lengths = split.lengths[rows]
    width = int(lengths.max())
    input_ids = torch.from_numpy(split.input_ids[rows, :width].astype(np.int64))
    attention_mask = (torch.arange(width)[None, :] < torch.from_numpy(lengths)[:, None]).long()
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    batch.update({f"labels/{task}": torch.from_numpy(y[rows]) for task, y in split.labels.items()})
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
    """Rows sorted by length (less padding), with their row indices to put results back."""
    order = np.argsort(split.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        yield rows, collate(split, rows)
