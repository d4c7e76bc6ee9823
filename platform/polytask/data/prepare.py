"""Check raw splits against the spec, encode labels, tokenise once.

The result, :class:`PreparedData`, is plain numpy: the driver builds it once per study and Ray's
object store hands the same copy to every trial, so no trial re-reads or re-tokenises the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from polytask.errors import Problem
from polytask.spec import StudySpec, TaskSpec
from polytask.tasks import IGNORE, Direction


@dataclass(frozen=True)
class TaskInfo:
    name: str
    type: str
    classes: list[str]
    metric: str  # primary metric
    direction: Direction
    auxiliary: bool = False  # trained, but not part of val/score or the comparison's headline


@dataclass
class SplitArrays:
    input_ids: np.ndarray  # int32 [N, max_length], right-padded with pad_id
    lengths: np.ndarray  # int32 [N]
    labels: dict[str, np.ndarray]  # task -> int64 [N], IGNORE where the row has no label
    frozen_hidden: np.ndarray | None = None  # float16 [N, max_length, hidden]: see polytask.frozen

    def __len__(self) -> int:
        return len(self.lengths)


@dataclass
class PreparedData:
    tasks: list[TaskInfo]
    splits: dict[str, SplitArrays]
    vocab_size: int
    pad_id: int
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> task -> labelled rows

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]


def check_frames(spec: StudySpec, frames: dict[str, pd.DataFrame]) -> list[Problem]:
    """Problems that would only surface mid-training: missing columns, empty splits, labels
    outside the declared classes. Each names the split, column and row."""
    problems: list[Problem] = []
    for split, frame in frames.items():
        if len(frame) == 0:
            problems.append(Problem(f"data: {split} split", "has no rows; check the source or the split fractions"))
            continue
        columns = list(frame.columns)
        if spec.data.text_column not in frame:
            problems.append(Problem("data.text_column", f"column '{spec.data.text_column}' is not in the {split} split (columns: {', '.join(map(str, columns))}); set it to the column holding the text"))
        for i, task in enumerate(spec.tasks):
            if task.label_column not in frame:
                problems.append(Problem(f"tasks[{i}].label_column", f"column '{task.label_column}' is not in the {split} split (columns: {', '.join(map(str, columns))}); set it to the column holding {task.name}'s labels"))
    if problems:
        return problems
    for i, task in enumerate(spec.tasks):
        classes = task_classes(task, frames["train"])
        if len(classes) < 2:
            problems.append(Problem(f"tasks[{i}]", f"the train split has {len(classes)} distinct label(s) {classes} in column '{task.label_column}'; classification needs at least two"))
            continue
        for split, frame in frames.items():
            labels = _labels(frame[task.label_column])
            outside = labels.notna() & ~labels.isin(classes)
            if outside.any():
                row = int(np.flatnonzero(outside.to_numpy())[0])
                source = "declared in tasks[{}].classes".format(i) if task.classes else "seen in the train split"
                problems.append(Problem(
                    f"data: {split} split, column '{task.label_column}', row {row}",
                    f"label {labels.iloc[row]!r} is not one of the classes {source} {classes} ({int(outside.sum())} such rows); fix the rows or list the label in tasks[{i}].classes",
                ))
            if labels.notna().sum() == 0:
                problems.append(Problem(f"data: {split} split, column '{task.label_column}'", f"has no labels for task {task.name}"))
    return problems


def prepare_data(spec: StudySpec, frames: dict[str, pd.DataFrame], tokenizer) -> PreparedData:
    """Encode labels and tokenise; ``frames`` must have passed :func:`check_frames`."""
    tasks = [
        TaskInfo(
            name=t.name,
            type=t.type,
            classes=task_classes(t, frames["train"]),
            metric=t.metric,
            direction=t.resolved_direction,
            auxiliary=t.auxiliary,
        )
        for t in spec.tasks
    ]
    max_length = spec.encoder.max_length
    splits, counts = {}, {}
    for split, frame in frames.items():
        encoded = tokenizer(frame[spec.data.text_column].astype(str).tolist(), truncation=True, max_length=max_length)["input_ids"]
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int32)
        input_ids = np.full((len(encoded), int(lengths.max())), tokenizer.pad_token_id, dtype=np.int32)
        for row, ids in enumerate(encoded):
            input_ids[row, : len(ids)] = ids
        labels = {}
        for task, task_spec in zip(tasks, spec.tasks):
            index = {c: k for k, c in enumerate(task.classes)}
            values = _labels(frame[task_spec.label_column])
            labels[task.name] = values.map(lambda v: index.get(v, IGNORE) if isinstance(v, str) else IGNORE).to_numpy(np.int64)
        splits[split] = SplitArrays(input_ids, lengths, labels)
        counts[split] = {t: int((y != IGNORE).sum()) for t, y in labels.items()}
    return PreparedData(tasks=tasks, splits=splits, vocab_size=len(tokenizer), pad_id=int(tokenizer.pad_token_id), label_counts=counts)


def task_classes(task: TaskSpec, train: pd.DataFrame) -> list[str]:
    """The declared classes, else the sorted label values of the train split."""
    return task.classes or sorted(set(_labels(train[task.label_column]).dropna()))


def _labels(column: pd.Series) -> pd.Series:
    """Labels as strings, missing as None: 1, 1.0 and "1" are the same class."""

    def normalise(value):
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value)
        return text if text.strip() else None

    return column.map(normalise).astype(object)
