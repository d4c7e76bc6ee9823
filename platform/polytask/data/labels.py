"""Label columns checked and encoded per task type (polytask.tasks documents each encoding).

* classification: one label per row -> int64 [N], the class index or IGNORE;
* multilabel: a set of labels per row, written as a list or as one string joined by the
  task's ``separator`` -> int64 [N, C] multi-hot, IGNORE on every entry of a row without labels
  (an empty list or an empty string is a row with no positive label, not a missing one);
* regression: a number per row -> float32 [N] in the source's units, NaN where missing;
* token_classification: a list of BIO tags per row, one per word of the row's text (a list of
  words) -> tag indices per word, aligned to sub-word tokens in polytask.data.text.

Each check returns the problems of one column of one split; a location names the dataset, the
split, the column and the row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from polytask.errors import Problem, listing
from polytask.spec import TaskSpec
from polytask.tasks import IGNORE, check_bio

Where = Callable[[str, str, int], str]  # (split, column, position) -> "data (...), split, column, row"


def normalise(value) -> str | None:
    """A label or category as a string, missing as None: 1, 1.0 and "1" are the same value."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return text if text.strip() else None


def single_labels(column: pd.Series) -> pd.Series:
    """Labels as strings, missing as None."""
    return column.map(normalise).astype(object)


def label_sets(column: pd.Series, separator: str) -> list[list[str] | None]:
    """Each row's labels (multilabel): a list/array of labels or a string joined by
    ``separator``; None where missing."""
    out: list[list[str] | None] = []
    for value in column:
        if isinstance(value, (list, tuple, np.ndarray)):
            out.append([v for v in map(normalise, value) if v is not None])
        elif normalise(value) is None:
            out.append([] if isinstance(value, str) else None)  # "": no positive label
        else:
            out.append([part.strip() for part in str(value).split(separator) if part.strip()])
    return out


def tag_lists(column: pd.Series) -> list[list[str] | None]:
    """Each row's tags (token classification): a list/array of strings; None where missing."""
    return [None if _missing_cell(v) else [str(t) for t in v] if _is_sequence(v) else v for v in column]


def numbers(column: pd.Series) -> pd.Series:
    """float64 values; missing and non-numbers NaN."""
    return pd.to_numeric(column.where(~missing(column)), errors="coerce").astype(np.float64)


def missing(column: pd.Series) -> pd.Series:
    """Missing cells: NA, NaN, None, or empty / blank text."""
    if column.dtype.kind in "biufcmM":  # numbers, booleans, dates: only NaN / NaT is missing
        return column.isna()
    return column.map(_missing_cell).astype(bool)


def missing_number(column: pd.Series) -> pd.Series:
    """Cells of a numeric column without a usable value: missing, or infinite (a cell that is
    not a number at all is neither; check_frames reports it)."""
    return missing(column) | np.isinf(numbers(column))


def relabelled(task: TaskSpec, column: pd.Series) -> pd.Series:
    """``column`` with ``task.label_map`` applied to each label (each member of a multilabel
    row's set, kept as a list or re-joined with the separator)."""
    rename = task.label_map

    def one(value):
        text = normalise(value)
        return rename.get(text, value) if text is not None else value

    def row(value):
        if isinstance(value, (list, tuple, np.ndarray)):
            return [rename.get(v, v) if v is not None else v for v in map(normalise, value)]
        if normalise(value) is None:
            return value
        return task.separator.join(rename.get(part.strip(), part.strip()) for part in str(value).split(task.separator))

    return column.map(row if task.type == "multilabel" else one).astype(object)


def _missing_cell(value) -> bool:
    if _is_sequence(value):
        return False
    if isinstance(value, str):
        return not value.strip()
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _is_sequence(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def classes_of(task: TaskSpec, train: pd.Series) -> list[str]:
    """The declared classes, else the sorted labels of the train split (none for regression)."""
    if task.type == "regression":
        return []
    if task.classes:
        return list(task.classes)
    if task.type == "multilabel":
        return sorted({label for labels in label_sets(train, task.separator) if labels for label in labels})
    if task.type == "token_classification":
        return sorted({tag for tags in tag_lists(train) if isinstance(tags, list) for tag in tags})
    return sorted(set(single_labels(train).dropna()))


MAX_NUMBER_CLASSES = 50  # more distinct numbers than this are a quantity, unless classes are declared


def check_numbers_as_classes(task: TaskSpec, index: int, train: pd.Series) -> list[Problem]:
    """A classification / multilabel column of numbers with more than MAX_NUMBER_CLASSES
    distinct values in the train split is a quantity read as classes (unless ``classes`` says
    otherwise)."""
    if task.classes or task.type not in ("classification", "multilabel"):
        return []
    if task.type == "multilabel":
        values = {v for labels in label_sets(train, task.separator) if labels for v in labels}
    else:
        values = {v for v in map(normalise, pd.unique(train)) if v is not None}
    if len(values) <= MAX_NUMBER_CLASSES:
        return []
    try:
        as_numbers = sorted((float(v), v) for v in values)
    except ValueError:  # some label is not a number: they are names
        return []
    quantity = f"if it is a quantity set tasks[{index}].type: regression, and if" if task.type == "classification" else "if"
    return [Problem(
        f"tasks[{index}].type",
        f"column '{task.label_column}' holds {len(values):,} distinct numbers ({as_numbers[0][1]} … {as_numbers[-1][1]}) in the train split, too many to be classes "
        f"of a {task.type} task; {quantity} these are really classes list them in tasks[{index}].classes",
    )]


def near_miss(label: str, classes: list[str] | dict[str, list[str]]) -> tuple[str, str] | None:
    """(the class ``label`` looks like, how it differs) where the two are the same after
    stripping spaces, quotes and a trailing '.', and case-folding: ``'>50K.'`` and ``'>50K'``.
    ``classes``: a list, or :func:`loose_index` of one."""
    index = classes if isinstance(classes, dict) else loose_index(classes)
    matches = index.get(_loose(label), [])
    if len(matches) != 1:
        return None
    c = matches[0]
    if label == c + ".":
        how = "with a trailing '.'"
    elif label.strip() == c:
        how = "with spaces around it"
    elif label.casefold() == c.casefold():
        how = "in another case"
    else:
        how = "but for case, spaces or punctuation"
    return c, how


def loose_index(classes: list[str]) -> dict[str, list[str]]:
    """The classes by their loose spelling (see :func:`near_miss`)."""
    index: dict[str, list[str]] = {}
    for c in classes:
        index.setdefault(_loose(c), []).append(c)
    return index


def _loose(text: str) -> str:
    return "".join(text.split()).strip("'\"").rstrip(".").strip("'\"").casefold()


def _label_map_hint(index: int, first: str, outside: list[str], classes: list[str]) -> str | None:
    """``it looks like '>50K' with a trailing '.': map it with tasks[0].label_map: {...}``, or
    None when ``first`` looks like no class."""
    spellings = loose_index(classes)
    found = near_miss(first, spellings)
    if found is None:
        return None
    pairs = {v: m[0] for v in dict.fromkeys([first, *outside]) if (m := near_miss(v, spellings))}
    shown = [f"{k!r}: {v!r}" for k, v in list(pairs.items())[:10]]
    more = f", … and {len(pairs) - 10:,} more" if len(pairs) > 10 else ""
    return f"it looks like {found[0]!r} {found[1]}: map it with tasks[{index}].label_map: {{{', '.join(shown)}{more}}}"


def check_labels(task: TaskSpec, index: int, classes: list[str], split: str, column: pd.Series, where: Where, listed: bool = False, of: str = "") -> list[Problem]:
    """Problems of task ``index``'s label column in one split. ``listed``: an earlier message
    listed the classes already (none is listed twice); ``of``: the split's source in a few
    words (``files adult.test``)."""
    name = task.label_column
    shown = ", listed above" if listed else f" [{listing(classes)}]"
    declared = f"declared in tasks[{index}].classes" if task.classes else "seen in the train split"
    fix = f"fix the rows or list the label in tasks[{index}].classes"

    def first(bad: np.ndarray, message: str) -> list[Problem]:
        position = int(np.flatnonzero(bad)[0])
        return [Problem(where(split, name, position), message.format(value=column.iloc[position], count=int(bad.sum())))]

    if task.type == "regression":
        values = numbers(column)
        bad = (~missing(column) & (values.isna() | np.isinf(values))).to_numpy()
        if bad.any():
            return first(bad, f"value {{value!r}} is not a finite number ({{count}} such rows), but {task.name} is a regression task; fix the rows, or leave them empty where the row has no target")
        if values.notna().sum() == 0:
            return [Problem(where(split, name, -1), f"has no targets for task {task.name}")]
        if split == "train" and values.nunique() < 2:
            return [Problem(where(split, name, -1), f"every target of task {task.name} is {values.dropna().iloc[0]!r}; a regression task needs varying targets")]
        return []
    if task.type == "token_classification":
        rows = tag_lists(column)
        not_list = np.array([r is not None and not isinstance(r, list) for r in rows])
        if not_list.any():
            return first(not_list, "{value!r} is not a list of tags ({count} such rows); token_classification reads one tag per word, e.g. [\"B-PER\", \"I-PER\", \"O\"] (JSON or Parquet lists)")
        if split == "train" and not task.classes:
            try:
                check_bio(classes)
            except ValueError as exc:
                return [Problem(where(split, name, -1), f"{exc}; fix the tags or declare them in tasks[{index}].classes")]
        return _check_members(rows, classes, ("tag", "tags"), task.name, f"{declared}{shown}", fix, lambda position: where(split, name, position))
    if task.type == "multilabel":
        rows = label_sets(column, task.separator)
        hint = lambda first, others, count: _hint(index, first, others, classes, count, split, of)  # noqa: E731
        return _check_members(rows, classes, ("label", "classes"), task.name, f"{declared}{shown}", fix, lambda position: where(split, name, position), hint)
    labels = single_labels(column)
    outside = (labels.notna() & ~labels.isin(classes)).to_numpy()
    if outside.any():
        position = int(np.flatnonzero(outside)[0])
        first, count = labels.iloc[position], int(outside.sum())
        hint = _hint(index, first, list(pd.unique(labels[outside])), classes, count, split, of)
        return [Problem(where(split, name, position), f"label {first!r} is not one of the classes {declared}{shown} {hint or f'({count:,} such rows); {fix}'}")]
    if labels.notna().sum() == 0:
        return [Problem(where(split, name, -1), f"has no labels for task {task.name}")]
    return []


def _hint(index: int, first: str, outside: list[str], classes: list[str], count: int, split: str, of: str) -> str | None:
    """The count and the label_map fix where the outside labels look like classes."""
    mapping = _label_map_hint(index, first, outside, classes)
    where = f" in the {split} split of {of}" if of else ""
    return f"({count:,} such rows{where}); {mapping}" if mapping else None


def _check_members(rows: list[list[str] | None], classes: list[str], nouns: tuple[str, str], task: str, declared: str, fix: str, at: Callable[[int], str], hint: Callable | None = None) -> list[Problem]:
    """Every member of every row's list (tags, labels) is a known class; some row has a list."""
    known = set(classes)
    outside = np.array([r is not None and any(v not in known for v in r) for r in rows])
    if outside.any():
        position = int(np.flatnonzero(outside)[0])
        value = next(v for v in rows[position] if v not in known)
        count = int(outside.sum())
        said = hint(value, sorted({v for r in rows if r for v in r if v not in known}), count) if hint else None
        return [Problem(at(position), f"{nouns[0]} {value!r} is not one of the {nouns[1]} {declared} {said or f'({count:,} such rows); {fix}'}")]
    if all(r is None for r in rows):
        return [Problem(at(-1), f"has no {nouns[0]}s for task {task}")]
    return []


def check_class_count(task: TaskSpec, index: int, classes: list[str], where: Where) -> list[Problem]:
    """Classification needs two classes; multilabel and tagging one."""
    needed = 2 if task.type == "classification" else 1
    if task.type == "regression" or len(classes) >= needed:
        return []
    return [Problem(where("train", task.label_column, -1), f"has {len(classes)} distinct label(s) [{listing(classes)}] for tasks[{index}] ({task.name}); {task.type} needs at least {needed}; label more rows or check tasks[{index}].label_column")]


def encode(task: TaskSpec, classes: list[str], column: pd.Series) -> np.ndarray:
    """Row-level encodings (token tags: per word, see :func:`encode_tags`)."""
    index = {c: k for k, c in enumerate(classes)}
    if task.type == "regression":
        return numbers(column).to_numpy(np.float32)
    if task.type == "multilabel":
        out = np.zeros((len(column), len(classes)), dtype=np.int64)
        for row, labels in enumerate(label_sets(column, task.separator)):
            if labels is None:
                out[row] = IGNORE
            else:
                out[row, [index[v] for v in labels]] = 1
        return out
    return single_labels(column).map(lambda v: index.get(v, IGNORE) if isinstance(v, str) else IGNORE).to_numpy(np.int64)


def encode_tags(classes: list[str], column: pd.Series, word_ids: np.ndarray) -> np.ndarray:
    """int64 [N, W]: each word's tag index at its first sub-word token, IGNORE at every other
    position (later sub-words, special tokens, padding, a row without tags). ``word_ids``:
    int32 [N, W], the word each token comes from, -1 for none."""
    index = {c: k for k, c in enumerate(classes)}
    out = np.full(word_ids.shape, IGNORE, dtype=np.int64)
    for row, tags in enumerate(tag_lists(column)):
        if not tags:
            continue
        words = word_ids[row]
        first = np.flatnonzero((words >= 0) & (np.r_[-1, words[:-1]] != words))
        out[row, first] = [index[tags[w]] for w in words[first]]
    return out


def missing_value(task_type: str, shape: Sequence[int]) -> np.ndarray:
    """The encoding of rows without this task's label (rows of another task's dataset)."""
    if task_type == "regression":
        return np.full(shape, np.nan, dtype=np.float32)
    return np.full(shape, IGNORE, dtype=np.int64)


def labelled_rows(encoded: np.ndarray) -> np.ndarray:
    """bool [N]: rows with at least one label entry of the task."""
    if encoded.dtype.kind == "f":
        return ~np.isnan(encoded)
    given = encoded != IGNORE
    return given if given.ndim == 1 else given.any(axis=1)
