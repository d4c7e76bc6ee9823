"""Check raw splits against the spec, encode labels, and tokenise the texts once (text
encoders) or encode the feature columns once (tabular encoder).

The result, :class:`PreparedData`, is plain numpy: the driver builds it once per study and Ray's
object store hands the same copy to every trial, so no trial re-reads or re-tokenises the data.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from polytask.errors import Problem
from polytask.spec import StudySpec, TabularEncoderSpec, TaskSpec
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
    input_ids: np.ndarray | None  # text: int32 [N, max_length], right-padded with pad_id; tabular: None
    lengths: np.ndarray | None  # text: int32 [N]; tabular: None
    labels: dict[str, np.ndarray]  # task -> int64 [N], IGNORE where the row has no label
    frozen_hidden: np.ndarray | None = None  # float16 [N, max_length, hidden]: see polytask.frozen
    # tabular: int64 [N, C], per data.categorical_columns the code of the value in the train
    # split's sorted values (1..), 0 for a missing value or one the train split lacks
    categorical: np.ndarray | None = None
    numeric: np.ndarray | None = None  # tabular: float32 [N, F], standardised with train statistics, missing 0
    # distillation (train split): task -> float32 [N, C], a single-task teacher's class probabilities
    teacher: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        for rows in (self.lengths, self.categorical, self.numeric, *self.labels.values()):
            if rows is not None:
                return len(rows)
        return 0


@dataclass
class PreparedData:
    tasks: list[TaskInfo]
    splits: dict[str, SplitArrays]
    vocab_size: int  # text; 0 for tabular
    pad_id: int  # text; 0 for tabular
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> task -> labelled rows
    categorical_sizes: list[int] = field(default_factory=list)  # tabular: codes per categorical column, 0 included
    numeric_count: int = 0  # tabular: numeric columns

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]


def check_frames(spec: StudySpec, frames: dict[str, pd.DataFrame]) -> list[Problem]:
    """Problems that would only surface mid-training: missing columns, empty splits, labels
    outside the declared classes. Each names the split, column and row."""
    problems: list[Problem] = []
    tabular = isinstance(spec.encoder, TabularEncoderSpec)
    for split, frame in frames.items():
        if len(frame) == 0:
            problems.append(Problem(f"data: {split} split", "has no rows; check the source or the split fractions"))
            continue
        columns = list(frame.columns)
        if tabular:
            for field_name in ("categorical_columns", "numeric_columns"):
                for j, column in enumerate(getattr(spec.data, field_name)):
                    if column not in frame:
                        problems.append(Problem(f"data.{field_name}[{j}]", f"column '{column}' is not in the {split} split (columns: {', '.join(map(str, columns))}); remove it from data.{field_name} or add it to the data"))
        elif spec.data.text_column not in frame:
            problems.append(Problem("data.text_column", f"column '{spec.data.text_column}' is not in the {split} split (columns: {', '.join(map(str, columns))}); set it to the column holding the text"))
        for i, task in enumerate(spec.tasks):
            if task.label_column not in frame:
                problems.append(Problem(f"tasks[{i}].label_column", f"column '{task.label_column}' is not in the {split} split (columns: {', '.join(map(str, columns))}); set it to the column holding {task.name}'s labels"))
    if problems:
        return problems
    if tabular:
        problems += _check_numeric(spec.data.numeric_columns, frames)
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


def _check_numeric(columns: list[str], frames: dict[str, pd.DataFrame]) -> list[Problem]:
    """Each value of a numeric column is a finite number or missing."""
    problems = []
    for split, frame in frames.items():
        for column in columns:
            numbers = _numbers(frame[column])
            bad = ~_missing(frame[column]) & (numbers.isna() | np.isinf(numbers))
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                problems.append(Problem(
                    f"data: {split} split, column '{column}', row {row}",
                    f"value {frame[column].iloc[row]!r} is not a finite number ({int(bad.sum())} such rows), but '{column}' is in data.numeric_columns; fix the rows or list the column in data.categorical_columns",
                ))
    return problems


def prepare_data(spec: StudySpec, frames: dict[str, pd.DataFrame], tokenizer) -> PreparedData:
    """Encode labels, and tokenise (text encoders) or encode the feature columns (tabular; the
    tokenizer is not used and may be None); ``frames`` must have passed :func:`check_frames`."""
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
    tabular = isinstance(spec.encoder, TabularEncoderSpec)
    if tabular:
        features = _Features.fit(spec.data.categorical_columns, spec.data.numeric_columns, frames["train"])
    splits, counts = {}, {}
    for split, frame in frames.items():
        labels = _encode_labels(frame, tasks, spec.tasks)
        if tabular:
            splits[split] = SplitArrays(None, None, labels, categorical=features.categorical(frame), numeric=features.numeric(frame))
        else:
            splits[split] = SplitArrays(*_tokenise(frame[spec.data.text_column], tokenizer, spec.encoder.max_length), labels)
        counts[split] = {t: int((y != IGNORE).sum()) for t, y in labels.items()}
    if tabular:
        sizes, numeric_count = features.sizes, len(spec.data.numeric_columns)
        return PreparedData(tasks, splits, vocab_size=0, pad_id=0, label_counts=counts, categorical_sizes=sizes, numeric_count=numeric_count)
    return PreparedData(tasks=tasks, splits=splits, vocab_size=len(tokenizer), pad_id=int(tokenizer.pad_token_id), label_counts=counts)


def _tokenise(texts: pd.Series, tokenizer, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """input_ids int32 [N, longest], right-padded, and lengths int32 [N]."""
    encoded = tokenizer(texts.astype(str).tolist(), truncation=True, max_length=max_length)["input_ids"]
    lengths = np.array([len(ids) for ids in encoded], dtype=np.int32)
    input_ids = np.full((len(encoded), int(lengths.max())), tokenizer.pad_token_id, dtype=np.int32)
    for row, ids in enumerate(encoded):
        input_ids[row, : len(ids)] = ids
    return input_ids, lengths


def _encode_labels(frame: pd.DataFrame, tasks: list[TaskInfo], specs: list[TaskSpec]) -> dict[str, np.ndarray]:
    labels = {}
    for task, task_spec in zip(tasks, specs):
        index = {c: k for k, c in enumerate(task.classes)}
        values = _labels(frame[task_spec.label_column])
        labels[task.name] = values.map(lambda v: index.get(v, IGNORE) if isinstance(v, str) else IGNORE).to_numpy(np.int64)
    return labels


@dataclass
class _Features:
    """The train split's statistics of the feature columns, applied to any split: categorical
    values to codes (1.. in sorted order of the train values; 0: missing or not in train),
    numeric values standardised with the train mean and std (std 0: 1), missing ones 0."""

    categorical_columns: list[str]
    vocabularies: list[dict[str, int]]
    numeric_columns: list[str]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, categorical: list[str], numeric: list[str], train: pd.DataFrame) -> _Features:
        vocabularies = []
        for column in categorical:
            values = sorted({v for v in map(_normalise, pd.unique(train[column])) if v is not None})
            vocabularies.append({v: code for code, v in enumerate(values, start=1)})
        values = np.stack([_numbers(train[c]).to_numpy(np.float64) for c in numeric], axis=1) if numeric else np.zeros((len(train), 0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: mean NaN, set to 0 below
            mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        mean = np.nan_to_num(mean, nan=0.0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        return cls(list(categorical), vocabularies, list(numeric), mean, std)

    @property
    def sizes(self) -> list[int]:
        return [len(v) + 1 for v in self.vocabularies]

    def categorical(self, frame: pd.DataFrame) -> np.ndarray:
        codes = np.zeros((len(frame), len(self.categorical_columns)), dtype=np.int64)
        for j, (column, vocabulary) in enumerate(zip(self.categorical_columns, self.vocabularies)):
            positions, uniques = pd.factorize(frame[column], use_na_sentinel=True)
            per_unique = np.array([vocabulary.get(_normalise(u), 0) for u in uniques] + [0], dtype=np.int64)
            codes[:, j] = per_unique[positions]  # position -1 (missing) takes the appended 0
        return codes

    def numeric(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.numeric_columns:
            return np.zeros((len(frame), 0), dtype=np.float32)
        values = np.stack([_numbers(frame[c]).to_numpy(np.float64) for c in self.numeric_columns], axis=1)
        return np.nan_to_num((values - self.mean) / self.std, nan=0.0).astype(np.float32)


def _numbers(column: pd.Series) -> pd.Series:
    """float64 values; missing and non-numbers NaN."""
    return pd.to_numeric(column.where(~_missing(column)), errors="coerce").astype(np.float64)


def _missing(column: pd.Series) -> pd.Series:
    """Missing cells: NA, NaN, None, or empty / blank text."""
    missing = column.isna()
    if not pd.api.types.is_numeric_dtype(column):
        missing |= column.map(lambda v: isinstance(v, str) and not v.strip()).astype(bool)
    return missing


def task_classes(task: TaskSpec, train: pd.DataFrame) -> list[str]:
    """The declared classes, else the sorted label values of the train split."""
    return task.classes or sorted(set(_labels(train[task.label_column]).dropna()))


def _normalise(value) -> str | None:
    """A label or category as a string, missing as None: 1, 1.0 and "1" are the same value."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if text.strip() else None


def _labels(column: pd.Series) -> pd.Series:
    """Labels as strings, missing as None: 1, 1.0 and "1" are the same class."""
    return column.map(_normalise).astype(object)
