"""The statistics of a fair comparison of multi-task-learning strategies.

Why this module exists: claims that one MTL optimiser beats another often vanish once runs are
compared fairly — same budget, several seeds, tuned baselines and honest error bars (Xin et al.,
"Do Current Multi-Task Optimization Methods in Deep Learning Even Help?", NeurIPS 2022; Kurin
et al., "In Defense of the Unitary Scalarization for Deep Multi-Task Learning", NeurIPS 2022).
Both papers also note that the summary number Δm is computed in incompatible ways across papers.
Every number a study reports therefore comes from one of the small, documented functions below.

The math, one idea per function:

* ``estimate``: mean x̄, sample std s (ddof = 1) and the Student-t interval of the mean,
  x̄ ± t_{(1+c)/2, n-1} · s / √n.
* ``relative_change``: Δ = (-1)^l · (v − b) / |b| · 100, l = 1 when lower is better (Maninis et al.,
  "Attentive Single-Tasking of Multiple Tasks", CVPR 2019; Vandenhende et al., "Multi-Task
  Learning for Dense Prediction Tasks: A Survey", TPAMI 2021, the Δm equation).
* ``delta_m_per_metric`` averages Δ over every (task, metric); ``delta_m_per_task`` averages Δ
  within each task first, then over tasks, so a task with three metrics does not count three times.
* ``mean_rank``: per column, rank strategies (1 = best, ties share the average rank), then average.
* ``welch_p_value``: Welch's unequal-variance t-test (Welch, Biometrika 1947),
  t = (x̄_a − x̄_b) / √(s_a²/n_a + s_b²/n_b), with the Welch–Satterthwaite degrees of freedom.
* ``bootstrap_p_value``: the bootstrap test of equal means (Efron & Tibshirani, "An Introduction
  to the Bootstrap", 1993, §16.4, Algorithm 16.2), both samples shifted to the pooled mean.
* ``clearly_better``: whether a strategy's mean over seeds beats the trivial predictor by more than
  1% (at least 0.005) and more than twice its std over seeds.
* ``oriented``, ``non_dominated``, ``reference_point``, ``hypervolume`` (Zitzler & Thiele,
  "Multiobjective Optimization Using Evolutionary Algorithms — A Comparative Case Study",
  PPSN 1998), ``hypervolume_gain`` and ``hypervolume_ratio``: comparisons of whole Pareto fronts.
  Points are rows, objectives are columns; after ``oriented`` every column is maximised.

Conventions: NaN inputs are dropped (a failed trial is absent, not zero); an undefined result is
``nan``, never an exception; a malformed argument (unknown direction, wrong shape) raises ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np
from scipy import stats as _scipy_stats

__all__ = [
    "Estimate",
    "bootstrap_p_value",
    "clearly_better",
    "delta_m_per_metric",
    "delta_m_per_task",
    "estimate",
    "hypervolume",
    "hypervolume_gain",
    "hypervolume_ratio",
    "mean_rank",
    "non_dominated",
    "oriented",
    "reference_point",
    "relative_change",
    "welch_p_value",
]

DIRECTIONS = ("max", "min")


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}")
    return direction


def _finite(values: Sequence[float]) -> np.ndarray:
    """The values as a flat float array with NaNs (and infinities) dropped."""
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]


# ---------------------------------------------------------------------------------------------
# One metric over seeds


@dataclass(frozen=True)
class Estimate:
    """Mean of ``n`` values, their sample std, and a two-sided confidence interval of the mean."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        """(ci_high − ci_low) / 2; nan when the interval is undefined (n < 2)."""
        return (self.ci_high - self.ci_low) / 2


def estimate(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean, sample std (ddof = 1) and the Student-t interval x̄ ± t_{(1+c)/2, n-1} · s / √n.

    NaNs are dropped first. n = 0 gives all-nan fields; n = 1 gives the mean, with std and the
    interval nan (one value says nothing about spread).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Estimate(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(_scipy_stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Estimate(n, mean, std, mean - half, mean + half)


# ---------------------------------------------------------------------------------------------
# Δm: relative change against single-task baselines


def relative_change(value: float, baseline: float, direction: str) -> float:
    """Percent change against a baseline, positive = better: (-1)^l · (value − baseline) / |baseline| · 100.

    l = 1 when lower is better (``direction="min"``), l = 0 for ``"max"``. A baseline of 0 gives
    nan: a change relative to zero has no finite size (and its sign would not say "better").
    Non-finite inputs also give nan.
    """
    sign = -1.0 if _check_direction(direction) == "min" else 1.0
    if baseline == 0 or not (math.isfinite(value) and math.isfinite(baseline)):
        return math.nan
    return sign * (value - baseline) / abs(baseline) * 100.0


def _changes(
    values: Mapping[tuple[str, str], float], baselines: Mapping[tuple[str, str], float], directions: Mapping[tuple[str, str], str]
) -> list[tuple[tuple[str, str], float]]:
    """(key, relative change) for every key of ``values`` also in ``baselines`` whose change is finite, sorted by key."""
    pairs = []
    for key in sorted(values):
        if key in baselines:
            change = relative_change(values[key], baselines[key], directions[key])
            if math.isfinite(change):
                pairs.append((key, change))
    return pairs


def delta_m_per_metric(values: Mapping[tuple[str, str], float], baselines: Mapping[tuple[str, str], float], directions: Mapping[tuple[str, str], str]) -> float:
    """Δm averaged over metrics: (1/K) Σ_k relative_change(v_k, b_k, direction_k), k over (task, metric) keys.

    Keys missing from ``baselines``, and keys whose change is not finite (NaN value, zero
    baseline), are skipped; nan when nothing is left.
    """
    changes = [change for _, change in _changes(values, baselines, directions)]
    return float(np.mean(changes)) if changes else math.nan


def delta_m_per_task(values: Mapping[tuple[str, str], float], baselines: Mapping[tuple[str, str], float], directions: Mapping[tuple[str, str], str]) -> float:
    """Δm averaged over tasks: (1/T) Σ_t (1/|M_t|) Σ_{m∈M_t} relative_change(v_tm, b_tm, direction_tm).

    Each task's metrics are averaged first, so every task weighs the same however many metrics it
    has. Skipping as in ``delta_m_per_metric``; a task with no usable metric is left out.
    """
    task_means = [np.mean([change for _, change in group]) for _, group in groupby(_changes(values, baselines, directions), key=lambda kc: kc[0][0])]
    return float(np.mean(task_means)) if task_means else math.nan


# ---------------------------------------------------------------------------------------------
# Did it learn? A strategy against the trivial predictor


def clearly_better(values: Sequence[float], reference: float, direction: str, relative: float = 0.01, floor: float = 0.005) -> bool:
    """Whether the values' mean beats ``reference`` (the trivial predictor) by a margin a
    person would call real: gain = ±(x̄ − reference) (+ for ``"max"``) must exceed
    max(relative · |reference|, floor, 2 s) with s the sample std over seeds (0 for one value).

    With accuracy 0.887 at the majority class that asks for more than 0.896; with ROC AUC (trivial
    0.5) more than 0.505; with an MAE it asks for a 1% lower error. NaNs are dropped; False when
    nothing is left or the reference is not finite.
    """
    x = _finite(values)
    if len(x) == 0 or not math.isfinite(reference):
        return False
    gain = (x.mean() - reference) * (1.0 if _check_direction(direction) == "max" else -1.0)
    spread = 2 * x.std(ddof=1) if len(x) > 1 else 0.0
    return bool(gain > max(relative * abs(reference), floor, spread))


def clearly_apart(a: Sequence[float], b: Sequence[float], relative: float = 0.01, floor: float = 0.005) -> bool:
    """Whether two strategies' per-seed values differ by more than seed noise: |ā − b̄| must
    exceed both 2 standard errors of the difference, 2·sqrt(s_a²/n_a + s_b²/n_b) (about a 95%
    z-interval; a one-seed side contributes 0), and max(relative · |b̄|, floor), the smallest
    difference a person would call real. NaNs are dropped; False when a side is empty."""
    x, y = _finite(a), _finite(b)
    if len(x) == 0 or len(y) == 0:
        return False
    error = math.sqrt(sum(v.var(ddof=1) / len(v) for v in (x, y) if len(v) > 1))
    return bool(abs(x.mean() - y.mean()) > max(2 * error, relative * abs(y.mean()), floor))


# ---------------------------------------------------------------------------------------------
# Ranks and significance


def mean_rank(scores: Mapping[str, Mapping[str, float]], directions: Mapping[str, str]) -> dict[str, float]:
    """Each strategy's mean rank over the columns named in ``directions`` (scores: strategy -> column -> value).

    Per column, the strategies with a finite value are ranked 1 = best (largest for ``"max"``,
    smallest for ``"min"``); ties share the average of the ranks they span (scipy's ``rankdata``
    'average'). A strategy's mean rank is over the columns it was ranked in; nan if none.
    Columns of ``scores`` not named in ``directions`` are ignored.
    """
    ranks: dict[str, list[float]] = {strategy: [] for strategy in scores}
    for column, direction in directions.items():
        sign = 1.0 if _check_direction(direction) == "min" else -1.0
        present = [(s, float(row[column])) for s, row in scores.items() if column in row and math.isfinite(float(row[column]))]
        if not present:
            continue
        column_ranks = _scipy_stats.rankdata([sign * value for _, value in present], method="average")
        for (strategy, _), rank in zip(present, column_ranks):
            ranks[strategy].append(float(rank))
    return {strategy: float(np.mean(r)) if r else math.nan for strategy, r in ranks.items()}


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test that mean(a) = mean(b), variances not assumed equal.

    t = (x̄_a − x̄_b) / √(s_a²/n_a + s_b²/n_b), ν = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a−1) + (s_b²/n_b)²/(n_b−1)),
    p = 2 · P(T_ν > |t|). NaNs are dropped; nan when either side has fewer than 2 values. When both
    variances are 0 the t statistic is 0/0: we return p = 1.0 if the two constants are equal (no
    evidence of a difference) and p = 0.0 if they differ (a certain difference).
    """
    x, y = _finite(a), _finite(b)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = float(x.mean() - y.mean())
    if va + vb == 0:
        return 1.0 if diff == 0 else 0.0
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    return float(min(1.0, 2 * _scipy_stats.t.sf(abs(t), df)))


def bootstrap_p_value(a: Sequence[float], b: Sequence[float], resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided bootstrap test of equal means (Efron & Tibshirani 1993, §16.4).

    Both samples are shifted to the pooled mean z̄ (ã = a − ā + z̄, b̃ = b − b̄ + z̄) so the null
    holds, each is resampled with replacement ``resamples`` times, and
    p = (#{|mean(ã*) − mean(b̃*)| ≥ |ā − b̄|} + 1) / (resamples + 1).
    NaNs are dropped; nan when either side has fewer than 2 values. Deterministic for a ``seed``.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    x, y = _finite(a), _finite(b)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    observed = abs(x.mean() - y.mean())
    pooled = np.concatenate([x, y]).mean()
    x_null, y_null = x - x.mean() + pooled, y - y.mean() + pooled
    rng = np.random.default_rng(seed)
    x_means = x_null[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    y_means = y_null[rng.integers(0, len(y), size=(resamples, len(y)))].mean(axis=1)
    rounding = 1e-12 * (1.0 + float(np.abs(np.concatenate([x, y])).max()))  # resampled ties with the observed value count as ≥
    count = int(np.count_nonzero(np.abs(x_means - y_means) >= observed - rounding))
    return (count + 1) / (resamples + 1)


# ---------------------------------------------------------------------------------------------
# Pareto fronts and hypervolume (rows = points, columns = objectives, maximised)


def _points(points: np.ndarray, d: int | None = None) -> np.ndarray:
    """``points`` as a float (n, d) array; an empty input becomes (0, d) when d is known."""
    array = np.asarray(points, dtype=float)
    if array.size == 0 and d is not None:
        return array.reshape(0, d)
    if array.ndim != 2 or (d is not None and array.shape[1] != d):
        raise ValueError(f"points must be a 2-D array of shape (n, {d if d is not None else 'd'}), got shape {array.shape}")
    return array


def oriented(points: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """A copy of ``points`` with every ``"min"`` column multiplied by −1, so higher is better everywhere."""
    signs = np.array([-1.0 if _check_direction(d) == "min" else 1.0 for d in directions])
    return _points(points, len(signs)) * signs


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (points oriented: maximise every column).

    q dominates p when q ≥ p in every column and q > p in at least one. Equal rows do not dominate
    each other, so duplicates on the front are all kept. Rows with a NaN are False and dominate nothing.
    """
    p = _points(points)
    finite = np.isfinite(p).all(axis=1)
    q = p[finite]
    # dominates[j, i]: row j dominates row i
    dominates = (q[:, None, :] >= q[None, :, :]).all(axis=2) & (q[:, None, :] > q[None, :, :]).any(axis=2)
    mask = np.zeros(len(p), dtype=bool)
    mask[finite] = ~dominates.any(axis=0)
    return mask


def reference_point(points: np.ndarray, margin: float = 0.1) -> np.ndarray:
    """A reference point just below oriented points: per column, min − margin · (max − min).

    When a column's range is 0 (all points equal there) the offset is margin · max(|min|, 1e-12),
    so the reference stays strictly below the points on a scale of their own. Rows with a NaN are
    ignored; with no finite row every coordinate is nan. Compute it once over all strategies'
    points so that their hypervolumes share one reference.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    p = _points(points)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) == 0:
        return np.full(p.shape[1], np.nan)
    low, high = p.min(axis=0), p.max(axis=0)
    scale = np.where(high > low, high - low, np.maximum(np.abs(low), 1e-12))
    return low - margin * scale


def _hypervolume(p: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume of points all strictly above ``reference`` (d = 1 max, d = 2 sweep, d > 2 slicing)."""
    if len(p) == 0:
        return 0.0
    d = p.shape[1]
    if d == 1:
        return float(p[:, 0].max() - reference[0])
    if d == 2:
        # sweep x from right to left; each point that raises the staircase adds (x − r_x) · (y − y_top)
        order = np.lexsort((-p[:, 1], -p[:, 0]))
        volume, top = 0.0, reference[1]
        for x, y in p[order]:
            if y > top:
                volume += (x - reference[0]) * (y - top)
                top = y
        return volume
    # HSO slicing on the last column: between consecutive levels z_i > z_{i+1} the cross-section
    # is the (d−1)-volume dominated by the points whose last coordinate is ≥ z_i.
    p = p[non_dominated(p)]
    levels = np.unique(p[:, -1])[::-1]
    volume = 0.0
    for i, level in enumerate(levels):
        below = levels[i + 1] if i + 1 < len(levels) else reference[-1]
        volume += (level - below) * _hypervolume(p[p[:, -1] >= level, :-1], reference[:-1])
    return volume


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Exact hypervolume (Zitzler & Thiele 1998): the volume of ∪_p [reference, p] for oriented (maximised) points.

    Only points strictly better than ``reference`` in every coordinate contribute; rows with a NaN
    are ignored. Works in any dimension d ≥ 1 (d = 2 by a sweep, d > 2 by slicing, exact; meant for
    tens of points). nan when the reference has a non-finite coordinate.
    """
    r = np.asarray(reference, dtype=float).ravel()
    if not np.isfinite(r).all():
        return math.nan
    p = _points(points, len(r))
    p = p[np.isfinite(p).all(axis=1) & (p > r).all(axis=1)]
    return _hypervolume(p, r)


def hypervolume_gain(points: np.ndarray, front: np.ndarray, reference: np.ndarray) -> float:
    """What ``points`` add beyond ``front``: HV(front ∪ points) / HV(front) − 1.

    0 when every point lies in the region the front already dominates, > 0 when some point improves
    on the front somewhere. nan when HV(front) is 0 (or nan).
    """
    base = hypervolume(front, reference)
    if not base > 0:
        return math.nan
    d = len(np.asarray(reference, dtype=float).ravel())
    return hypervolume(np.vstack([_points(front, d), _points(points, d)]), reference) / base - 1.0


def hypervolume_ratio(points: np.ndarray, front: np.ndarray, reference: np.ndarray) -> float:
    """HV(points) / HV(front): 1 when ``points`` dominate as much as the front; nan when HV(front) is 0 (or nan)."""
    base = hypervolume(front, reference)
    if not base > 0:
        return math.nan
    return hypervolume(points, reference) / base
