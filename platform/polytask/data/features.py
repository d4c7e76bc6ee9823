"""Feature columns of tabular data, encoded with the train split's statistics."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from polytask.data.labels import normalise, numbers


@dataclass
class TabularFeatures:
    """The train split's statistics of the feature columns, applied to any split: categorical
    values to codes (1.. in sorted order of the train values; 0: missing or not in train),
    numeric values standardised with the mean and std of the train split's values (std 0: 1).

    A missing or infinite numeric value (which check_frames lets through only with
    ``data.missing: impute``) takes the train split's median of its column; each numeric column
    with such values in the train split also gets a 0/1 missing-indicator input, after the
    numeric columns (scikit-learn's ``SimpleImputer(strategy="median", add_indicator=True)``).
    Without imputation a missing value that reaches here is 0, the mean."""

    categorical_columns: list[str]
    vocabularies: list[dict[str, int]]
    numeric_columns: list[str]
    mean: np.ndarray
    std: np.ndarray
    median: np.ndarray | None = None  # per numeric column; None: no imputation
    indicators: list[str] = field(default_factory=list)  # numeric columns with a missing-indicator input

    @classmethod
    def fit(cls, categorical: list[str], numeric: list[str], train: pd.DataFrame, impute: bool = False) -> TabularFeatures:
        vocabularies = []
        for column in categorical:
            values = sorted({v for v in map(normalise, pd.unique(train[column])) if v is not None})
            vocabularies.append({v: code for code, v in enumerate(values, start=1)})
        values = _values(train, numeric)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: NaN, set to 0 below
            mean, std, median = np.nanmean(values, axis=0), np.nanstd(values, axis=0), np.nanmedian(values, axis=0) if values.size else np.zeros(values.shape[1])
        mean = np.nan_to_num(mean, nan=0.0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        if not impute:
            return cls(list(categorical), vocabularies, list(numeric), mean, std)
        indicators = [c for c, gap in zip(numeric, np.isnan(values).any(axis=0)) if gap]
        return cls(list(categorical), vocabularies, list(numeric), mean, std, np.nan_to_num(median, nan=0.0), indicators)

    @property
    def sizes(self) -> list[int]:
        return [len(v) + 1 for v in self.vocabularies]

    @property
    def numeric_width(self) -> int:
        """The numeric inputs per row: the numeric columns, then the missing-indicators."""
        return len(self.numeric_columns) + len(self.indicators)

    def categorical(self, frame: pd.DataFrame) -> np.ndarray:
        codes = np.zeros((len(frame), len(self.categorical_columns)), dtype=np.int64)
        for j, (column, vocabulary) in enumerate(zip(self.categorical_columns, self.vocabularies)):
            positions, uniques = pd.factorize(frame[column], use_na_sentinel=True)
            per_unique = np.array([vocabulary.get(normalise(u), 0) for u in uniques] + [0], dtype=np.int64)
            codes[:, j] = per_unique[positions]  # position -1 (missing) takes the appended 0
        return codes

    def numeric(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.numeric_width:
            return np.zeros((len(frame), 0), dtype=np.float32)
        values = _values(frame, self.numeric_columns)
        gaps = np.isnan(values)
        if self.median is not None:
            values = np.where(gaps, self.median, values)
        standardised = np.nan_to_num((values - self.mean) / self.std, nan=0.0)
        flags = [gaps[:, self.numeric_columns.index(c)] for c in self.indicators]
        return np.concatenate([standardised, np.stack(flags, axis=1) if flags else np.zeros((len(frame), 0))], axis=1).astype(np.float32)


def _values(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """float64 [N, len(columns)]; missing and infinite values NaN."""
    if not columns:
        return np.zeros((len(frame), 0))
    values = np.stack([numbers(frame[c]).to_numpy(np.float64) for c in columns], axis=1)
    return np.where(np.isinf(values), np.nan, values)
