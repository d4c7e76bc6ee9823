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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from polytask.data import labels as lab
from polytask.errors import Problem, StudyError, closest, listing
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
    dropped: dict[str, int] = field(default_factory=dict)  # split -> rows dropped by data.missing: drop

    @property
    def label(self) -> str:
        return self.label_of("train")

    def label_of(self, split: str) -> str:
        """The source as a message names it, by the file ``split`` is read from."""
        return f"{self.where}: {describe_source(self.source, split)}"

    def at(self, split: str, column: str, position: int) -> str:
        """A data location for messages; ``position`` -1: the whole column."""
        where = f"data ({self.label_of(split)}), {split} split, column '{column}'"
        return where if position < 0 else f"{where}, row {self.frames[split].index[position]}"


def load_datasets(spec: StudySpec) -> list[Dataset]:
    """The study's datasets: ``data.source`` for every task, or each task's own source, with
    label maps applied and, with ``data.missing: drop``, rows without numeric features dropped
    (see :func:`tidy`)."""
    data = spec.data
    if data.source is not None:
        return [tidy(spec, Dataset("data.source", data.source, load_splits(data), list(range(len(spec.tasks))), data.text_column))]
    return [tidy(spec, Dataset(f"tasks[{i}].source", t.source, load_splits(data, t.source, f"tasks[{i}].source"), [i], t.text_column or data.text_column)) for i, t in enumerate(spec.tasks)]


def tidy(spec: StudySpec, dataset: Dataset) -> Dataset:
    """What a spec asks to be done to the data before any check: each task's ``label_map``
    renames label values in every split, and ``data.missing: drop`` drops every row with a
    missing or infinite value in a numeric feature column (counted in ``dropped``)."""
    frames = dict(dataset.frames)
    for i in dataset.tasks:
        task = spec.tasks[i]
        if task.label_map and task.type in ("classification", "multilabel"):
            for split, frame in frames.items():
                if task.label_column in frame:
                    frames[split] = frame.assign(**{task.label_column: lab.relabelled(task, frame[task.label_column])})
    dropped = {}
    if spec.data.missing == "drop" and spec.data.numeric_columns:
        for split, frame in frames.items():
            gone = np.zeros(len(frame), dtype=bool)
            for column in spec.data.numeric_columns:
                if column in frame:
                    gone |= lab.missing_number(frame[column]).to_numpy()
            dropped[split] = int(gone.sum())
            frames[split] = frame[~gone]
    return Dataset(dataset.where, dataset.source, frames, dataset.tasks, dataset.text_column, dropped)


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
        hints = "".join(f"; did you mean '{closest(name, columns)}' for '{name}'?" for name in unknown if closest(name, columns))
        raise StudyError([Problem(f"{where}.columns", f"{describe_source(source)} has no column(s) [{listing(unknown)}] to rename (its columns: {listing(columns, quote=False)}){hints}; fix the mapping {{name in the source: name in the spec}}")])
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
    files = {s: getattr(source, s) for s in SPLITS if getattr(source, s) is not None}
    problems = [
        Problem(f"{where}.{s}", f"no such file: {path}; give a path relative to the spec file or an absolute one")
        for s, path in files.items()
        if not Path(path).is_file()
    ]
    if problems:
        raise StudyError(problems)
    formats = {s: source.format_of(path) for s, path in files.items()}
    unknown = [Problem(f"{where}.{s}", f"cannot tell the format of {files[s]}; set {where}.format to csv, json or parquet") for s, f in formats.items() if f is None]
    if unknown:
        raise StudyError(unknown)
    if len(set(formats.values())) > 1:
        raise StudyError([Problem(f"{where}.format", f"the split files mix formats {formats}; use one format")])
    fmt = next(iter(formats.values()))
    frames, one_column = {}, {}
    for split, path in files.items():
        try:
            frame = _read_csv(source, path, f"{where}.{split}") if fmt == "csv" else _read_other(fmt, path)
        except ValueError as exc:  # pandas' and pyarrow's parse errors
            hint = _delimiter_hint(source, path) if fmt == "csv" else None
            if hint:
                one_column[split] = hint
                continue
            text = " ".join(str(exc).split())
            fix = f"if the first line is not data, set {where}.comment to the character it starts with, or remove it" if "Expected" in text and fmt == "csv" else f"check the file or set {where}.format"
            raise StudyError([Problem(f"{where}.{split}", f"cannot read {path} as {fmt}: {text}; {fix}")]) from None
        frame = _cleaned(frame, source, fmt)
        hint = _delimiter_hint(source, path) if fmt == "csv" and source.header and frame.shape[1] == 1 else None
        if hint:
            one_column[split] = hint
        frames[split] = frame
    if one_column:  # one message for the source, however many of its files it concerns
        names = " and ".join(Path(files[s]).name for s in one_column)
        used, guess, sample = next(iter(one_column.values()))
        raise StudyError([Problem(
            f"{where}.delimiter",
            f"{names} read with delimiter {used!r} {'gives' if len(one_column) == 1 else 'give'} one column, {sample!r}, which looks like fields separated by {guess!r}; set {where}.delimiter: {guess!r}",
        )])
    return frames


def _read_csv(source: FilesSource, path: str, where: str) -> pd.DataFrame:
    """A CSV file with pandas: delimiter, header / column_names and na_values from the spec,
    compression from the extension. A file without a single byte of data is an empty frame."""
    options = dict(sep=source.csv_delimiter(path), na_values=source.na_values or None, skipinitialspace=source.strip_spaces, comment=source.comment, low_memory=False)
    try:
        if source.header:
            return pd.read_csv(path, **options)
        frame = pd.read_csv(path, header=None, **options)
    except pd.errors.EmptyDataError:  # no rows and no header: check_frames says "has no rows"
        return pd.DataFrame(columns=source.column_names or [])
    names = source.column_names or []
    if frame.shape[1] != len(names):
        if frame.shape[1] == 1 and _delimiter_hint(source, path):
            raise ValueError("one column")  # the delimiter hint says what is wrong
        raise StudyError([Problem(where, f"{Path(path).name} has {frame.shape[1]} fields per line, but column_names lists {len(names)} names; give one name per field")])
    frame.columns = names
    return frame


def _read_other(fmt: str, path: str) -> pd.DataFrame:
    import datasets

    datasets.disable_progress_bars()
    try:
        return datasets.load_dataset(fmt, data_files={"data": path})["data"].to_pandas()
    except Exception as exc:  # datasets raises many kinds; an empty file is only "no data"
        if "corresponds to no data" in str(exc):  # a file with no rows: check_frames says so
            return pd.DataFrame()
        raise ValueError(str(exc)) from None


def _cleaned(frame: pd.DataFrame, source: FilesSource, fmt: str) -> pd.DataFrame:
    """``strip_spaces``: text cells and column names without surrounding whitespace;
    ``na_values``: those cells missing; a CSV text column that then holds only numbers becomes
    numeric, as pandas reads a column of numbers."""
    if source.strip_spaces:
        frame = frame.rename(columns=lambda c: c.strip() if isinstance(c, str) else c)
    markers = set(source.na_values)
    if not source.strip_spaces and not markers:
        return frame
    for column in frame.columns:
        values = frame[column]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        changed = values
        if source.strip_spaces:
            changed = changed.str.strip() if values.dtype != object else changed.map(lambda v: v.strip() if isinstance(v, str) else v)
        if markers:
            changed = changed.where(~changed.isin(markers))
        if fmt == "csv":
            try:
                changed = pd.to_numeric(changed)
            except (TypeError, ValueError):
                pass
        elif markers:
            changed = changed.infer_objects()
        frame[column] = changed
    return frame


SEPARATORS = (";", "\t", "|", ",")


def _delimiter_hint(source: FilesSource, path: str) -> tuple[str, str, str] | None:
    """(the delimiter used, the likely one, the first line) where a CSV file's first lines
    hold another separator the same number of times each: a ';' file read with ','."""
    lines = _first_lines(path, 2)
    if not lines:
        return None
    used = source.csv_delimiter(path)
    found = [(lines[0].count(c), c) for c in SEPARATORS if c != used and all(line.count(c) == lines[0].count(c) > 0 for line in lines)]
    if not found:
        return None
    guess = max(found)[1]
    return used, guess, lines[0] if len(lines[0]) <= 60 else lines[0][:57] + "..."


def _first_lines(path: str, count: int) -> list[str]:
    """The first non-empty lines of a (possibly compressed) text file."""
    import bz2
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(Path(path).suffix.lower(), open)
    lines: list[str] = []
    try:
        with opener(path, "rt", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    lines.append(line.strip("\r\n"))
                if len(lines) == count:
                    break
    except OSError:
        return []
    return lines


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
