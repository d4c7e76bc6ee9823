"""Check a study's datasets against its spec, then encode them once: labels per task type
(polytask.data.labels), and the inputs the encoder reads — token ids (polytask.data.text),
feature codes (polytask.data.features) or pixels.

With one dataset per task, the datasets' rows are concatenated; a row carries labels of its own
dataset's task only (the others are missing, masked like any missing label) and ``group`` says
which dataset it came from, so training can sample batches per task (polytask.data.sampling)
while validation and test stay per task: each task is scored on its own dataset's rows.

The result, :class:`PreparedData`, is plain numpy: the driver builds it once per study and Ray's
object store hands the same copy to every trial, so no trial re-reads or re-tokenises the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from polytask.data import labels as lab
from polytask.data.features import TabularFeatures
from polytask.data.sources import Dataset, tidy
from polytask.data.text import tokenise
from polytask.errors import Problem, closest, listing
from polytask.spec import IMAGE_ENCODERS, TEXT_ENCODERS, FilesSource, StudySpec, TabularEncoderSpec, VitEncoderSpec, describe_source
from polytask.tasks import IGNORE, TASK_TYPES, TaskInfo


@dataclass
class SplitArrays:
    labels: dict[str, np.ndarray]  # task -> encoded labels (polytask.data.labels), missing masked
    input_ids: np.ndarray | None = None  # text: int32 [N, longest], right-padded with pad_id
    lengths: np.ndarray | None = None  # text: int32 [N]
    frozen_hidden: np.ndarray | None = None  # text: float16 [N, longest, hidden]: see polytask.training.frozen
    # tabular: int64 [N, C], per data.categorical_columns the code of the value in the train
    # split's sorted values (1..), 0 for a missing value or one the train split lacks
    categorical: np.ndarray | None = None
    # tabular: float32 [N, F], the numeric columns standardised with train statistics (a missing
    # value imputed with the train median under data.missing: impute), then one 0/1
    # missing-indicator per numeric column with missing train values
    numeric: np.ndarray | None = None
    images: np.ndarray | None = None  # images: uint8 (0..255) or float32 (0..1) [N, C, H, W]
    group: np.ndarray | None = None  # one dataset per task: int64 [N], the index of the row's task
    token_tasks: tuple[str, ...] = ()  # tasks whose labels are per token, [N, longest]
    # distillation (train split): task -> float32 [N, C], a single-task teacher's class probabilities
    teacher: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        for rows in (self.lengths, self.categorical, self.images, *self.labels.values()):
            if rows is not None:
                return len(rows)
        return 0


@dataclass
class PreparedData:
    tasks: list[TaskInfo]
    splits: dict[str, SplitArrays]
    vocab_size: int = 0  # text
    pad_id: int = 0  # text
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> task -> labelled rows
    categorical_sizes: list[int] = field(default_factory=list)  # tabular: codes per categorical column, 0 included
    numeric_count: int = 0  # tabular: numeric inputs: the numeric columns, then any missing-indicators (data.missing: impute)
    image_shape: tuple[int, int, int] | None = None  # images: (channels, height, width)
    per_task_datasets: bool = False  # splits carry `group`: row -> task index

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]


def as_datasets(spec: StudySpec, data: list[Dataset] | dict[str, pd.DataFrame]) -> list[Dataset]:
    """A study's datasets; a bare ``{split: frame}`` is the one dataset of ``data.source``."""
    if isinstance(data, dict):
        return [tidy(spec, Dataset("data.source", spec.data.source, data, list(range(len(spec.tasks))), spec.data.text_column))]
    return data


# --------------------------------------------------------------------------- checks


def check_frames(spec: StudySpec, datasets: list[Dataset] | dict[str, pd.DataFrame]) -> list[Problem]:
    """Problems that would only surface mid-training, or never — missing columns, empty splits,
    numbers read as classes, labels outside the classes, non-numeric targets, missing numeric
    features (``data.missing: error``), a label's copy among the features, tags that do not fit
    the words, odd images — each naming the dataset, split, file, column and row. Datasets given
    as a bare ``{split: frame}`` are tidied first (label maps, ``data.missing: drop``)."""
    problems = []
    for dataset in as_datasets(spec, datasets):
        problems += _check_dataset(spec, dataset)
    return problems


# Cell values that files commonly use for "missing" beyond pandas' own NA markers
MISSING_MARKERS = {"?", "-", "--", ".", "n/a", "na", "missing", "unknown", "none", "not available", "*"}


def _header_is_data(ds: Dataset) -> bool:
    """Whether a CSV read with a header row took a row of data for the column names: some name
    is a number (pandas would otherwise name an unnamed column 'Unnamed: 3', never '72')."""
    if not isinstance(ds.source, FilesSource) or not ds.source.header or "train" not in ds.frames:
        return False
    return any(_is_number(str(name)) for name in ds.frames["train"].columns)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_dataset(spec: StudySpec, ds: Dataset) -> list[Problem]:
    problems: list[Problem] = []
    wanted = [*_input_columns(spec, ds), *((f"tasks[{i}].label_column", spec.tasks[i].label_column, f"set it to the column holding {spec.tasks[i].name}'s labels") for i in ds.tasks)]
    lacking: dict[tuple[str, str, str], list[str]] = {}  # (field, column, fix) -> splits without it
    for split, frame in ds.frames.items():
        if len(frame) == 0:
            problems.append(Problem(f"data ({ds.label_of(split)}), {split} split", "has no rows; check the source, the split fractions or max_examples"))
            continue
        for item in wanted:
            if item[1] not in frame:
                lacking.setdefault(item, []).append(split)
    for (field_name, column, fix), splits in lacking.items():  # one problem per column, however many splits lack it
        present = list(map(str, ds.frames[splits[0]].columns))
        close = closest(column, present)
        also = f" (the {' and '.join(splits[1:])} {'splits lack' if len(splits) > 2 else 'split lacks'} it too)" if len(splits) > 1 else ""
        fix = f"did you mean '{close}'? If not, {fix}" if close else fix
        problems.append(Problem(field_name, f"column '{column}' is not in the {splits[0]} split of {ds.label_of(splits[0])} (columns: {listing(present, quote=False)}); {fix}{also}"))
    if lacking and _header_is_data(ds):
        names = listing(list(map(str, ds.frames["train"].columns)), quote=False)
        problems.insert(0, Problem(f"{ds.where}.header", f"the first line of {describe_source(ds.source, 'train')} looks like a row of data, not column names ({names}): "
                                   f"set {ds.where}.header: false and name the columns in {ds.where}.column_names"))
    if problems:
        return problems
    if isinstance(spec.encoder, TabularEncoderSpec):
        problems += _check_numeric(spec, ds)
        problems += _check_label_copies(spec, ds)
    if isinstance(spec.encoder, IMAGE_ENCODERS):
        problems += _check_images(spec, ds)
    if isinstance(spec.encoder, TEXT_ENCODERS):
        problems += _check_texts(spec, ds)
    for i in ds.tasks:
        task = spec.tasks[i]
        train = ds.frames["train"][task.label_column]
        found = lab.check_numbers_as_classes(task, i, train)
        if found:  # the labels are a quantity: listing them as classes helps nobody
            problems += found
            continue
        classes = lab.classes_of(task, train)
        found = lab.check_class_count(task, i, classes, ds.at)
        if not found:
            for split, frame in ds.frames.items():
                found += lab.check_labels(task, i, classes, split, frame[task.label_column], ds.at, listed=bool(found), of=describe_source(ds.source, split))
        problems += found
    return problems


def _input_columns(spec: StudySpec, ds: Dataset) -> list[tuple[str, str, str]]:
    """(spec field, column, fix when it is missing) of every input column the encoder reads."""
    if isinstance(spec.encoder, TabularEncoderSpec):
        return [
            (f"data.{f}[{j}]", c, f"remove it from data.{f} or add it to the data")
            for f in ("categorical_columns", "numeric_columns")
            for j, c in enumerate(getattr(spec.data, f))
        ]
    fix = f"set it to the column holding the input, or map a column onto it with {ds.where}.columns"
    if isinstance(spec.encoder, IMAGE_ENCODERS):
        return [("data.image_column", spec.data.image_column, fix)]
    own = ds.where != "data.source" and spec.tasks[ds.tasks[0]].text_column is not None
    return [(f"tasks[{ds.tasks[0]}].text_column" if own else "data.text_column", ds.text_column, fix)]


def _check_numeric(spec: StudySpec, ds: Dataset) -> list[Problem]:
    """Each value of a numeric column is a number or missing; with ``data.missing: error``, none
    is missing or infinite (one problem per column, at the first split that has such rows)."""
    problems = []
    for column in spec.data.numeric_columns:
        gaps: dict[str, np.ndarray] = {}
        for split, frame in ds.frames.items():
            values = frame[column]
            numbers = lab.numbers(values)
            absent = lab.missing(values).to_numpy()
            bad = ~absent & numbers.isna().to_numpy()
            if bad.any():
                position = int(np.flatnonzero(bad)[0])
                value = values.iloc[position]
                fix = "fix the rows or list the column in data.categorical_columns"
                if isinstance(ds.source, FilesSource) and str(value).strip().lower() in MISSING_MARKERS:  # a marker pandas does not know, such as '?'
                    fix = f"if {value!r} means a missing value, add it to {ds.where}.na_values (and choose data.missing); else {fix}"
                problems.append(Problem(
                    ds.at(split, column, position),
                    f"value {value!r} is not a finite number ({int(bad.sum()):,} such rows), but '{column}' is in data.numeric_columns; {fix}",
                ))
            gap = absent | np.isinf(numbers.to_numpy())
            if gap.any():
                gaps[split] = gap
        if gaps and spec.data.missing == "error":
            split, gap = next(iter(gaps.items()))
            also = "".join(f"; also {int(g.sum()):,} in the {s} split of {describe_source(ds.source, s)}" for s, g in list(gaps.items())[1:])
            problems.append(Problem(
                ds.at(split, column, int(np.flatnonzero(gap)[0])),
                f"{_rows(int(gap.sum()))} no value (missing or infinite, this one first{also}), but '{column}' is in data.numeric_columns; "
                "fill them in, or set data.missing: impute (the train median plus a missing-indicator feature) or data.missing: drop (those rows dropped from every split)",
            ))
    return problems


def _rows(count: int) -> str:
    return "1 row has" if count == 1 else f"{count:,} rows have"


COPY_CORRELATION = 0.9999  # a numeric feature this correlated with a regression label is a copy of it


def _check_label_copies(spec: StudySpec, ds: Dataset) -> list[Problem]:
    """No feature column gives a label away: identical to a label column on the labelled train
    rows, a one-to-one relabelling of a classification / multilabel label (of at most
    MAX_NUMBER_CLASSES values, on enough rows not to be chance), or for a regression label a numeric feature with
    |Pearson r| > COPY_CORRELATION. A repeated header (pandas reads `score`, `score.1`) is the
    usual cause."""
    train = ds.frames["train"]
    features = [(f"data.{f}[{j}]", f, c) for f in ("categorical_columns", "numeric_columns") for j, c in enumerate(getattr(spec.data, f))]
    coded = {column: _codes(train[column]) for _, _, column in features}  # per feature, computed once
    codes = {column: c for column, (c, _) in coded.items()}
    counts = {column: n for column, (_, n) in coded.items()}
    numeric = [c for c in spec.data.numeric_columns if c in codes]
    matrix = np.stack([lab.numbers(train[c]).to_numpy() for c in numeric], axis=1) if numeric else np.zeros((len(train), 0))
    problems = []
    for i in ds.tasks:
        task = spec.tasks[i]
        if TASK_TYPES[task.type].token_level:
            continue
        labelled = ~lab.missing(train[task.label_column]).to_numpy()
        if labelled.sum() < 2:
            continue
        label = train[task.label_column][labelled]
        label_codes, label_count = _codes(label)
        if label_count < 2:  # a constant gives nothing away (check_class_count speaks of it)
            continue
        correlations = dict(zip(numeric, _correlations(matrix[labelled], lab.numbers(label).to_numpy()))) if task.type == "regression" else {}
        for path, field_name, column in features:
            every = labelled.all()
            feature_codes = codes[column] if every else codes[column][labelled]
            how = None
            if (not every or counts[column] == label_count) and _one_to_one(feature_codes, label_codes, label_count):
                if _same_values(train[column][labelled], label):
                    how = "is identical to"
                elif task.type != "regression" and 2 <= label_count <= lab.MAX_NUMBER_CLASSES and _beyond_chance(label_codes):
                    how = f"is a one-to-one relabelling (each of its {label_count} values goes with one label) of"
            r = correlations.get(column) if field_name == "numeric_columns" else None
            if how is None and r is not None and abs(r) > COPY_CORRELATION:
                how = f"has correlation {r:.5f} with"
            if how is None:
                continue
            base = column.rsplit(".", 1)
            copy = f"looks like a second copy of '{task.label_column}' (a repeated header): it " if len(base) == 2 and base[0] == task.label_column and base[1].isdigit() else ""
            problems.append(Problem(path, f"'{column}' {copy}{how} the label column '{task.label_column}' of tasks[{i}] ({task.name}) on the labelled train rows, so it gives the label away; remove it from data.{field_name}"))
    return problems


def _codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Each row's value as a code, missing a value of its own (1, 1.0 and "1" share a code),
    and how many distinct values the column holds."""
    positions, uniques = pd.factorize(column, use_na_sentinel=True)
    absent = bool((positions < 0).any())
    if column.dtype.kind in "biuf":  # distinct numbers are distinct values
        return np.where(positions < 0, len(uniques), positions), len(uniques) + absent
    index: dict = {}
    per_unique = [index.setdefault(lab.normalise(u), len(index)) for u in uniques]
    blank = None in index  # blank text is missing too
    codes = np.array([*per_unique, index.setdefault(None, len(index))], dtype=np.int64)[positions]  # -1 (missing): the last
    return codes, len(index) if absent or blank else len(index) - 1


CHANCE = 1e-6  # a relabelling less likely than this by chance is taken for a copy


def _beyond_chance(codes: np.ndarray) -> bool:
    """Whether a column independent of the label, with the label's value counts, would line up
    with it one-to-one with probability below CHANCE: ``K! * prod(n_k!) / n!`` (a few rows, or
    a few distinct records repeated, line up by chance)."""
    counts = np.bincount(codes)
    counts = counts[counts > 0]
    log_p = math.lgamma(len(counts) + 1) + sum(math.lgamma(c + 1) for c in counts) - math.lgamma(counts.sum() + 1)
    return log_p < math.log(CHANCE)


def _one_to_one(a: np.ndarray, b: np.ndarray, b_count: int) -> bool:
    """Whether each value of ``a`` goes with one value of ``b`` and each of ``b`` with one of ``a``."""
    if len(np.unique(a)) != b_count:
        return False
    return len(np.unique(a.astype(np.int64) * (int(b.max()) + 1) + b)) == b_count


def _same_values(feature: pd.Series, label: pd.Series) -> bool:
    return bool((lab.single_labels(feature).fillna("\0").to_numpy() == lab.single_labels(label).fillna("\0").to_numpy()).all())


def _correlations(x: np.ndarray, y: np.ndarray) -> list[float | None]:
    """Pearson's r of each column of ``x`` [N, F] with ``y`` [N], over the rows where both are
    finite (None: fewer than 3 such rows, or a constant)."""
    out: list[float | None] = []
    finite = np.isfinite(x) & np.isfinite(y)[:, None]
    for j in range(x.shape[1]):
        rows = finite[:, j]
        if rows.sum() < 3:
            out.append(None)
            continue
        a, b = x[rows, j], y[rows]
        a, b = a - a.mean(), b - b.mean()
        scale = np.sqrt((a * a).sum() * (b * b).sum())
        out.append(float((a * b).sum() / scale) if scale > 0 else None)
    return out


def _check_texts(spec: StudySpec, ds: Dataset) -> list[Problem]:
    """A text column holds strings, or lists of words — the latter where a token task reads it,
    with exactly one tag per word."""
    column = ds.text_column
    token_tasks = [i for i in ds.tasks if TASK_TYPES[spec.tasks[i].type].token_level]
    for split, frame in ds.frames.items():
        values = frame[column]
        is_list = values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).to_numpy()
        if token_tasks and not is_list.all():
            position = int(np.flatnonzero(~is_list)[0])
            name = spec.tasks[token_tasks[0]].name
            return [Problem(ds.at(split, column, position), f"{values.iloc[position]!r} is not a list of words, but token task {name} tags the words of this column; store each text as a list of words (JSON or Parquet lists)")]
        if is_list.any() and not is_list.all():
            position = int(np.flatnonzero(~is_list)[0])
            return [Problem(ds.at(split, column, position), f"{values.iloc[position]!r} is a string where other rows hold lists of words; use one form for the whole column")]
        if not is_list.any() and lab.missing(values).any():
            position = int(np.flatnonzero(lab.missing(values).to_numpy())[0])
            return [Problem(ds.at(split, column, position), f"has no text ({int(lab.missing(values).sum())} such rows); drop those rows or fill them in")]
        for i in token_tasks:
            tags = lab.tag_lists(frame[spec.tasks[i].label_column])
            mismatch = np.array([isinstance(t, list) and len(t) != len(w) for t, w in zip(tags, values)])
            if mismatch.any():
                position = int(np.flatnonzero(mismatch)[0])
                return [Problem(
                    ds.at(split, spec.tasks[i].label_column, position),
                    f"{len(tags[position])} tags for {len(values.iloc[position])} words in '{column}' ({int(mismatch.sum())} such rows); token_classification needs exactly one tag per word",
                )]
    return []


def _check_images(spec: StudySpec, ds: Dataset) -> list[Problem]:
    """Every image is an array of numbers, [H, W] or [C, H, W], all of one shape (square, in
    whole patches, for a ViT)."""
    column, expected = spec.data.image_column, None
    for split, frame in ds.frames.items():
        for position, value in enumerate(frame[column]):
            try:
                array = _pixels(value).astype(np.float32)
            except (TypeError, ValueError):
                array = None
            if array is None or array.ndim not in (2, 3) or not np.isfinite(array).all():
                return [Problem(ds.at(split, column, position), f"is not an image (an array [height, width] or [channels, height, width] of finite numbers): {type(value).__name__}; fix the row")]
            shape = array.shape if array.ndim == 3 else (1, *array.shape)
            expected = expected or shape
            if shape != expected:
                return [Problem(ds.at(split, column, position), f"has shape {shape} (channels, height, width), but the first image has {expected}; every image of a study must have one size")]
    enc = spec.encoder
    if isinstance(enc, VitEncoderSpec) and expected and (expected[1] != expected[2] or expected[1] % enc.patch_size):
        return [Problem("encoder.patch_size", f"a vit encoder cuts square images into patches of {enc.patch_size} pixels, but the images are {expected[1]}x{expected[2]}; choose a patch size that divides the side, or a cnn encoder")]
    return []


# --------------------------------------------------------------------------- encoding


def prepare_data(spec: StudySpec, datasets: list[Dataset] | dict[str, pd.DataFrame], tokenizer) -> PreparedData:
    """Encode labels and inputs; ``datasets`` must have passed :func:`check_frames`. The
    tokenizer is used by text encoders only (None otherwise)."""
    datasets = as_datasets(spec, datasets)
    per_task = spec.per_task_sources
    if per_task:  # a row without its task's label carries nothing
        datasets = [_labelled_only(spec, ds) for ds in datasets]
    owner = {i: ds for ds in datasets for i in ds.tasks}
    tasks = [_task_info(spec, i, owner[i].frames["train"][t.label_column]) for i, t in enumerate(spec.tasks)]
    encoder = spec.encoder
    features = None
    if isinstance(encoder, TabularEncoderSpec):
        train = pd.concat([ds.frames["train"] for ds in datasets])
        features = TabularFeatures.fit(spec.data.categorical_columns, spec.data.numeric_columns, train, impute=spec.data.missing == "impute")
    token_tasks = tuple(t.name for t in tasks if TASK_TYPES[t.type].token_level)
    splits = {}
    for split in datasets[0].frames:
        parts = [_encode(spec, ds, split, tasks, tokenizer, features) for ds in datasets]
        splits[split] = _concatenate(parts, tasks, tokenizer, token_tasks, per_task)
    counts = {split: {t: int(lab.labelled_rows(y).sum()) for t, y in arrays.labels.items()} for split, arrays in splits.items()}
    prepared = PreparedData(tasks, splits, label_counts=counts, per_task_datasets=per_task)
    if features is not None:
        prepared.categorical_sizes, prepared.numeric_count = features.sizes, features.numeric_width
    elif isinstance(encoder, IMAGE_ENCODERS):
        prepared.image_shape = tuple(splits["train"].images.shape[1:])
    else:
        prepared.vocab_size, prepared.pad_id = len(tokenizer), int(tokenizer.pad_token_id)
    return prepared


def train_texts(spec: StudySpec, datasets: list[Dataset]) -> list[str]:
    """Every training text as one string (what a random encoder's tokenizer learns from)."""
    texts = []
    for ds in datasets:
        texts += [" ".join(map(str, t)) if isinstance(t, (list, tuple, np.ndarray)) else str(t) for t in ds.frames["train"][ds.text_column]]
    return texts


def _labelled_only(spec: StudySpec, ds: Dataset) -> Dataset:
    task = spec.tasks[ds.tasks[0]]
    frames = {}
    for split, frame in ds.frames.items():
        encoded = lab.encode(task, lab.classes_of(task, ds.frames["train"][task.label_column]), frame[task.label_column]) if task.type != "token_classification" else None
        keep = lab.labelled_rows(encoded) if encoded is not None else np.array([isinstance(t, list) for t in lab.tag_lists(frame[task.label_column])])
        frames[split] = frame[keep]
    return Dataset(ds.where, ds.source, frames, ds.tasks, ds.text_column, ds.dropped)


def _task_info(spec: StudySpec, i: int, train: pd.Series) -> TaskInfo:
    t = spec.tasks[i]
    info = dict(name=t.name, type=t.type, classes=lab.classes_of(t, train), metric=t.primary_metric, direction=t.resolved_direction, auxiliary=t.auxiliary)
    if t.type == "regression":
        values = lab.numbers(train).dropna().to_numpy(np.float64)
        info.update(target_mean=float(values.mean()), target_std=float(values.std()) or 1.0)
    return TaskInfo(**info)


@dataclass
class _Part:
    """One dataset's share of a split."""

    rows: int
    labels: dict[str, np.ndarray]  # its own tasks only
    inputs: dict[str, np.ndarray]


def _encode(spec: StudySpec, ds: Dataset, split: str, tasks: list[TaskInfo], tokenizer, features: TabularFeatures | None) -> _Part:
    frame = ds.frames[split]
    inputs: dict[str, np.ndarray] = {}
    word_ids = None
    if features is not None:
        inputs = {"categorical": features.categorical(frame), "numeric": features.numeric(frame)}
    elif isinstance(spec.encoder, IMAGE_ENCODERS):
        inputs = {"images": _stack_images(frame[spec.data.image_column])}
    else:
        texts = frame[ds.text_column].tolist()
        texts = [list(map(str, t)) for t in texts] if texts and isinstance(texts[0], (list, tuple, np.ndarray)) else [str(t) for t in texts]
        input_ids, lengths, word_ids = tokenise(texts, tokenizer, spec.encoder.max_length)
        inputs = {"input_ids": input_ids, "lengths": lengths}
    encoded = {}
    for i in ds.tasks:
        task, info = spec.tasks[i], tasks[i]
        column = frame[task.label_column]
        encoded[task.name] = lab.encode_tags(info.classes, column, word_ids) if TASK_TYPES[task.type].token_level else lab.encode(task, info.classes, column)
    return _Part(len(frame), encoded, inputs)


def _pixels(value) -> np.ndarray:
    """An image cell as one array: nested lists, or (from Parquet / Arrow) arrays of row arrays."""
    array = np.asarray(value)
    while array.dtype == object and array.size:
        array = np.stack([np.asarray(part) for part in array])
    return array


def _stack_images(column: pd.Series) -> np.ndarray:
    """[N, C, H, W]: integer pixels (0..255) as uint8, others as float32 (taken to be in 0..1)."""
    arrays = [_pixels(v) for v in column]
    images = np.stack([a if a.ndim == 3 else a[None] for a in arrays])
    return images.astype(np.uint8 if images.dtype.kind in "ui" else np.float32)


def _concatenate(parts: Sequence[_Part], tasks: list[TaskInfo], tokenizer, token_tasks: tuple[str, ...], per_task: bool) -> SplitArrays:
    """One split's arrays from its datasets' parts, padding token ids and per-token labels to
    the longest row and marking every task's labels missing on the other datasets' rows."""
    width = max((p.inputs["input_ids"].shape[1] for p in parts if "input_ids" in p.inputs), default=0)

    def padded(array: np.ndarray, fill) -> np.ndarray:
        out = np.full((array.shape[0], width), fill, dtype=array.dtype)
        out[:, : array.shape[1]] = array
        return out

    arrays = SplitArrays(labels={}, token_tasks=token_tasks)
    for key in parts[0].inputs:
        values = [p.inputs[key] for p in parts]
        if key == "input_ids":
            values = [padded(v, tokenizer.pad_token_id) for v in values]
        setattr(arrays, key, np.concatenate(values))
    for task in tasks:
        pieces = []
        for part in parts:
            own = part.labels.get(task.name)
            if own is not None and task.name in token_tasks:
                own = padded(own, IGNORE)
            if own is None:
                shape = (part.rows, width) if task.name in token_tasks else (part.rows, len(task.classes)) if task.type == "multilabel" else (part.rows,)
                own = lab.missing_value(task.type, shape)
            pieces.append(own)
        arrays.labels[task.name] = np.concatenate(pieces)
    if per_task:
        arrays.group = np.concatenate([np.full(p.rows, g, dtype=np.int64) for g, p in enumerate(parts)])
    return arrays


__all__ = ["PreparedData", "SplitArrays", "TaskInfo", "as_datasets", "check_frames", "prepare_data", "train_texts"]
