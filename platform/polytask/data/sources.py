"""Raw splits (pandas frames) from the sources a spec names: a built-in pinned dataset, local
files, or a Hugging Face hub dataset, with the source's column mapping applied. Splits a source
lacks are held out of train, seeded by the spec's ``split.seed`` so that every trial of a study
sees the same rows.

A study reads one dataset (``data.source``, every task's labels in its columns) or one per task
(``tasks[i].source``): :func:`load_datasets` returns them as :class:`Dataset` s either way.
Frames keep the source's row numbers as their index (held-out rows keep their train row
numbers), so that an error names a row the user can find.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from polytask.errors import Problem, StudyError
from polytask.spec import BuiltinSource, DataSpec, FilesSource, HubSource, StudySpec, describe_source
from polytask.spec.models import Source

SPLITS = ("train", "validation", "test")

# builtin name -> module of polytask.data whose load() returns {"train": ..., ["test": ...]}
BUILTINS = {
    "rotten_tomatoes": "rotten_tomatoes",
    "presidential_debates": "debates",
    "census_income": "census",
    "multi_fashion": "multi_fashion",
    "qm9": "qm9",
}


@dataclass
class Dataset:
    """One source's splits and the tasks it labels."""

    where: str  # the spec field naming the source: "data.source" or "tasks[1].source"
    source: Source
    frames: dict[str, pd.DataFrame]
    tasks: list[int]  # indices into spec.tasks
    text_column: str

    @property
    def label(self) -> str:
        return f"{self.where}: {describe_source(self.source)}"

    def at(self, split: str, column: str, position: int) -> str:
        """A data location for messages; ``position`` -1: the whole column."""
        where = f"data ({self.label}), {split} split, column '{column}'"
        return where if position < 0 else f"{where}, row {self.frames[split].index[position]}"


def load_datasets(spec: StudySpec) -> list[Dataset]:
    """The study's datasets: ``data.source`` for every task, or each task's own source."""
    data = spec.data
    if data.source is not None:
        return [Dataset("data.source", data.source, load_splits(data), list(range(len(spec.tasks))), data.text_column)]
    return [Dataset(f"tasks[{i}].source", t.source, load_splits(data, t.source, f"tasks[{i}].source"), [i], t.text_column or data.text_column) for i, t in enumerate(spec.tasks)]


def load_splits(data: DataSpec, source: Source | None = None, where: str = "data.source") -> dict[str, pd.DataFrame]:
    """``{"train": ..., "validation": ..., "test": ...}`` of ``source`` (default
    ``data.source``); "test" absent when the source has none and ``split.test`` is 0. Each
    split is limited to ``max_examples``."""
    source = source or data.source
    if isinstance(source, BuiltinSource):
        given = importlib.import_module(f"polytask.data.{BUILTINS[source.name]}").load()
    elif isinstance(source, FilesSource):
        given = _load_files(source, where)
    else:
        given = _load_hub(source)
    given = _renamed(given, source, where)
    splits = _hold_out(given, data)
    for name, limit in data.max_examples.model_dump().items():
        if limit is not None and name in splits and len(splits[name]) > limit:
            splits[name] = splits[name].sample(n=limit, random_state=data.split.seed).sort_index()
    return splits


def _renamed(given: dict[str, pd.DataFrame], source: Source, where: str) -> dict[str, pd.DataFrame]:
    if not source.columns:
        return given
    columns = list(given["train"].columns)
    unknown = [name for name in source.columns if name not in columns]
    if unknown:
        raise StudyError([Problem(f"{where}.columns", f"{describe_source(source)} has no column(s) {unknown} to rename (its columns: {', '.join(map(str, columns))}); fix the mapping {{name in the source: name in the spec}}")])
    return {split: frame.rename(columns=source.columns) for split, frame in given.items()}


def _hold_out(given: dict[str, pd.DataFrame], data: DataSpec) -> dict[str, pd.DataFrame]:
    train = given["train"]
    wanted = [s for s in ("validation", "test") if s not in given and (s == "validation" or data.split.test > 0)]
    if not wanted:
        return dict(given)
    order = np.random.default_rng(data.split.seed).permutation(len(train))
    splits = {k: v for k, v in given.items() if k != "train"}
    start = 0
    for name in wanted:
        size = int(round(len(train) * getattr(data.split, name)))
        splits[name] = train.iloc[np.sort(order[start : start + size])]
        start += size
    splits["train"] = train.iloc[np.sort(order[start:])]
    return {s: splits[s] for s in SPLITS if s in splits}


def _load_files(source: FilesSource, where: str) -> dict[str, pd.DataFrame]:
    import datasets

    datasets.disable_progress_bars()
    files = {s: getattr(source, s) for s in SPLITS if getattr(source, s) is not None}
    problems = [
        Problem(f"{where}.{s}", f"no such file: {path}; give a path relative to the spec file or an absolute one")
        for s, path in files.items()
        if not Path(path).is_file()
    ]
    if problems:
        raise StudyError(problems)
    formats = {s: source.format or _format_of(path) for s, path in files.items()}
    unknown = [Problem(f"{where}.{s}", f"cannot tell the format of {files[s]}; set {where}.format to csv, json or parquet") for s, f in formats.items() if f is None]
    if unknown:
        raise StudyError(unknown)
    if len(set(formats.values())) > 1:
        raise StudyError([Problem(f"{where}.format", f"the split files mix formats {formats}; use one format")])
    builder = next(iter(formats.values()))
    frames = {}
    for split, path in files.items():
        try:
            frames[split] = datasets.load_dataset(builder, data_files={split: path})[split].to_pandas()
        except Exception as exc:  # datasets raises many kinds; an empty file is only "no data"
            if "corresponds to no data" in str(exc):  # a file with no rows: check_frames says so
                frames[split] = pd.DataFrame()
                continue
            raise StudyError([Problem(f"{where}.{split}", f"cannot read {path} as {builder}: {exc}; check the file or set {where}.format")]) from None
    return frames


def _format_of(path: str) -> str | None:
    suffixes = "".join(Path(path).suffixes).lower()
    for fmt, endings in (("csv", (".csv", ".csv.gz", ".csv.bz2")), ("json", (".json", ".jsonl", ".json.gz", ".jsonl.gz")), ("parquet", (".parquet",))):
        if suffixes.endswith(endings):
            return fmt
    return None


def _load_hub(source: HubSource) -> dict[str, pd.DataFrame]:
    import datasets

    datasets.disable_progress_bars()
    wanted = {"train": source.train_split, "validation": source.validation_split, "test": source.test_split}
    try:
        loaded = datasets.load_dataset(source.name, source.config, revision=source.revision)
    except Exception as exc:  # the hub raises many kinds: offline, not found, gated
        raise StudyError([Problem("data.source.name", f"cannot load hub dataset '{source.name}': {exc}. Where the hub cannot be reached, export the data to files and use kind: files")]) from None
    missing = [Problem(f"data.source.{k}_split", f"hub dataset '{source.name}' has no split '{v}' (it has {sorted(loaded)})") for k, v in wanted.items() if v is not None and v not in loaded and k == "train"]
    if missing:
        raise StudyError(missing)
    return {k: loaded[v].to_pandas() for k, v in wanted.items() if v is not None and v in loaded}
