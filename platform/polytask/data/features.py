"""Feature columns of tabular data, encoded with the train split's statistics."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from polytask.data.labels import normalise, numbers


@dataclass
class TabularFeatures:
    """The train split's statistics of the feature columns, applied to any split: categorical
    values to codes (1.. in sorted order of the train values; 0: missing or not in train),
    numeric values standardised with the train mean and std (std 0: 1), missing ones 0."""

    categorical_columns: list[str]
    vocabularies: list[dict[str, int]]
    numeric_columns: list[str]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, categorical: list[str], numeric: list[str], train: pd.DataFrame) -> TabularFeatures:
        vocabularies = []
        for column in categorical:
            values = sorted({v for v in map(normalise, pd.unique(train[column])) if v is not None})
            vocabularies.append({v: code for code, v in enumerate(values, start=1)})
        values = np.stack([numbers(train[c]).to_numpy(np.float64) for c in numeric], axis=1) if numeric else np.zeros((len(train), 0))
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
            per_unique = np.array([vocabulary.get(normalise(u), 0) for u in uniques] + [0], dtype=np.int64)
            codes[:, j] = per_unique[positions]  # position -1 (missing) takes the appended 0
        return codes

    def numeric(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.numeric_columns:
            return np.zeros((len(frame), 0), dtype=np.float32)
        values = np.stack([numbers(frame[c]).to_numpy(np.float64) for c in self.numeric_columns], axis=1)
        return np.nan_to_num((values - self.mean) / self.std, nan=0.0).astype(np.float32)
