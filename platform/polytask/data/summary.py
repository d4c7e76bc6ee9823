"""What a study's data holds, per task, as plain data for `polytask validate` to print: the
task's type, its classes with the most frequent ones (or the range of its targets), the share
of rows without a label in each split, and the rows ``data.missing: drop`` dropped."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from polytask.data import labels as lab
from polytask.data.sources import Dataset
from polytask.spec import StudySpec

TOP = 5  # most frequent classes shown per task


def summarise(spec: StudySpec, datasets: list[Dataset]) -> dict[str, Any]:
    """``{"datasets": [...], "tasks": [...]}`` for checked datasets (see check_frames).

    Each dataset: ``source`` (as messages name it), ``rows`` and ``dropped`` per split. Each
    task: ``index``, ``name``, ``type``, ``column``, ``source``; classification, multilabel and
    token tasks ``classes`` (how many) and ``top`` ([class, train rows] for the TOP most
    frequent, most frequent first); regression ``range`` (min, median, max of the train
    targets); every task ``missing``: per split, the share of rows without a label."""
    out: dict[str, Any] = {"datasets": [], "tasks": []}
    for ds in datasets:
        out["datasets"].append({"source": ds.label, "rows": {s: len(f) for s, f in ds.frames.items()}, "dropped": dict(ds.dropped)})
        for i in ds.tasks:
            out["tasks"].append(_task(spec, i, ds))
    out["tasks"].sort(key=lambda t: t["index"])
    return out


def _task(spec: StudySpec, i: int, ds: Dataset) -> dict[str, Any]:
    task = spec.tasks[i]
    train = ds.frames["train"][task.label_column]
    item: dict[str, Any] = {"index": i, "name": task.name, "type": task.type, "column": task.label_column, "source": ds.label}
    if task.type == "regression":
        values = lab.numbers(train).dropna().to_numpy(np.float64)
        item["range"] = [float(values.min()), float(np.median(values)), float(values.max())] if len(values) else []
    else:
        counts = Counter(_members(task, train))
        item["classes"] = len(lab.classes_of(task, train))
        item["top"] = [[c, n] for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]
    item["missing"] = {split: _missing_share(task, frame[task.label_column]) for split, frame in ds.frames.items()}
    return item


def _members(task, column: pd.Series) -> list[str]:
    """Every label of the column: one per row (classification), one per member of a row's set
    (multilabel) or per word (tags)."""
    if task.type == "multilabel":
        return [v for labels in lab.label_sets(column, task.separator) if labels for v in labels]
    if task.type == "token_classification":
        return [t for tags in lab.tag_lists(column) if isinstance(tags, list) for t in tags]
    return list(lab.single_labels(column).dropna())


def _missing_share(task, column: pd.Series) -> float:
    if len(column) == 0:
        return 0.0
    if task.type == "regression":
        absent = lab.numbers(column).isna().to_numpy()
    elif task.type == "multilabel":
        absent = np.array([labels is None for labels in lab.label_sets(column, task.separator)])
    elif task.type == "token_classification":
        absent = np.array([not isinstance(tags, list) for tags in lab.tag_lists(column)])
    else:
        absent = lab.single_labels(column).isna().to_numpy()
    return float(absent.mean())
