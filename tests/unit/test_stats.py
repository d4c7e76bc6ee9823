"""Every statistic in polytask.results.stats checked against numbers worked out by hand in the comments."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from polytask.results.stats import (
    Estimate,
    bootstrap_p_value,
    clearly_apart,
    clearly_better,
    delta_m_per_metric,
    delta_m_per_task,
    estimate,
    hypervolume,
    hypervolume_gain,
    hypervolume_ratio,
    mean_rank,
    non_dominated,
    oriented,
    reference_point,
    relative_change,
    welch_p_value,
)

nan = math.nan
approx = pytest.approx

# ------------------------------------------------------------------------------------------------
# estimate


def test_estimate_student_t_interval_by_hand():
    e = estimate([0.70, 0.74, 0.78])
    # mean = (0.70 + 0.74 + 0.78) / 3 = 2.22 / 3 = 0.74
    # deviations -0.04, 0, +0.04 -> sum of squares 0.0032; / (n - 1 = 2) = 0.0016 -> std = 0.04
    # standard error = 0.04 / sqrt(3) = 0.0230940
    # t_{0.975, 2} = 4.302653 (t table) -> half width = 4.302653 * 0.0230940 = 0.0993655
    assert (e.n, e.mean, e.std) == (3, approx(0.74), approx(0.04))
    assert e.half_width == approx(0.0993655, abs=1e-6)
    assert (e.ci_low, e.ci_high) == (approx(0.74 - 0.0993655, abs=1e-6), approx(0.74 + 0.0993655, abs=1e-6))


def test_estimate_other_confidence_and_nans_dropped():
    e = estimate([0.70, nan, 0.74, 0.78], confidence=0.90)
    # NaN dropped -> n = 3, same mean/std as above; t_{0.95, 2} = 2.919986 -> 2.919986 * 0.0230940 = 0.0674342
    assert (e.n, e.mean, e.std) == (3, approx(0.74), approx(0.04))
    assert e.half_width == approx(0.0674342, abs=1e-6)


def test_estimate_degenerate_sizes():
    one = estimate([0.5, nan])
    assert (one.n, one.mean) == (1, 0.5)
    assert all(math.isnan(v) for v in (one.std, one.ci_low, one.ci_high, one.half_width))
    none = estimate([])
    assert none.n == 0 and all(math.isnan(v) for v in (none.mean, none.std, none.ci_low, none.ci_high, none.half_width))
    # zero spread: std 0, interval collapses onto the mean
    flat = estimate([2.0, 2.0])
    assert (flat.std, flat.ci_low, flat.ci_high, flat.half_width) == (0.0, 2.0, 2.0, 0.0)
    with pytest.raises(ValueError):
        estimate([1.0, 2.0], confidence=1.0)


def test_estimate_is_frozen():
    e = Estimate(2, 1.0, 0.5, 0.0, 2.0)
    assert e.half_width == 1.0  # (2.0 - 0.0) / 2
    with pytest.raises(AttributeError):
        e.mean = 3.0  # type: ignore[misc]


# ------------------------------------------------------------------------------------------------
# relative change and Δm


def test_relative_change_signs():
    # higher is better: (0.80 - 0.75) / 0.75 * 100 = +6.667 %
    assert relative_change(0.80, 0.75, "max") == approx(6.666667, abs=1e-6)
    # lower is better: -(2.0 - 2.5) / 2.5 * 100 = +20 %
    assert relative_change(2.0, 2.5, "min") == approx(20.0)
    # worse error: -(3.0 - 2.5) / 2.5 * 100 = -20 %
    assert relative_change(3.0, 2.5, "min") == approx(-20.0)
    # negative baseline uses |baseline|: (-1 - (-2)) / |-2| * 100 = +50 % (higher, so better)
    assert relative_change(-1.0, -2.0, "max") == approx(50.0)


def test_relative_change_undefined_and_invalid():
    assert math.isnan(relative_change(0.5, 0.0, "max"))
    assert math.isnan(relative_change(nan, 0.5, "max"))
    with pytest.raises(ValueError):
        relative_change(0.5, 0.4, "maximise")


VALUES = {("A", "accuracy"): 0.80, ("A", "mae"): 2.0, ("B", "accuracy"): 0.60, ("C", "accuracy"): 0.9}
BASELINES = {("A", "accuracy"): 0.75, ("A", "mae"): 2.5, ("B", "accuracy"): 0.66}  # no baseline for C -> skipped
DIRECTIONS = {("A", "accuracy"): "max", ("A", "mae"): "min", ("B", "accuracy"): "max", ("C", "accuracy"): "max"}


def test_delta_m_per_metric_by_hand():
    # A/accuracy: (0.80 - 0.75) / 0.75 * 100 = +6.6667
    # A/mae (min): -(2.0 - 2.5) / 2.5 * 100 = +20.0
    # B/accuracy: (0.60 - 0.66) / 0.66 * 100 = -9.0909
    # mean of three: (6.6667 + 20.0 - 9.0909) / 3 = 17.5758 / 3 = +5.8586
    assert delta_m_per_metric(VALUES, BASELINES, DIRECTIONS) == approx(5.858586, abs=1e-6)


def test_delta_m_per_task_by_hand():
    # task A: (6.6667 + 20.0) / 2 = 13.3333; task B: -9.0909
    # mean of tasks: (13.3333 - 9.0909) / 2 = +2.1212  (differs from per-metric +5.8586)
    assert delta_m_per_task(VALUES, BASELINES, DIRECTIONS) == approx(2.121212, abs=1e-6)


def test_delta_m_skips_and_empty():
    # only C has a value but no baseline -> nothing left
    assert math.isnan(delta_m_per_metric({("C", "accuracy"): 0.9}, BASELINES, DIRECTIONS))
    assert math.isnan(delta_m_per_task({("C", "accuracy"): 0.9}, BASELINES, DIRECTIONS))
    # a NaN value is skipped: only B/accuracy remains -> -9.0909 either way
    values = {("A", "accuracy"): nan, ("B", "accuracy"): 0.60}
    assert delta_m_per_metric(values, BASELINES, DIRECTIONS) == approx(-9.090909, abs=1e-6)
    assert delta_m_per_task(values, BASELINES, DIRECTIONS) == approx(-9.090909, abs=1e-6)


# ------------------------------------------------------------------------------------------------
# mean rank


def test_mean_rank_with_tie_min_column_and_gap():
    scores = {
        "s1": {"acc": 0.9, "mae": 3.0, "f1": 0.5},
        "s2": {"acc": 0.8, "mae": 1.0, "f1": nan},
        "s3": {"acc": 0.8, "mae": 2.0, "f1": 0.7},
        "s4": {"acc": nan, "unranked": 1.0},
    }
    directions = {"acc": "max", "mae": "min", "f1": "max"}
    # acc (max): s1 0.9 -> 1; s2 and s3 tie at 0.8 for ranks 2 and 3 -> (2 + 3) / 2 = 2.5 each
    # mae (min): s2 1.0 -> 1; s3 2.0 -> 2; s1 3.0 -> 3
    # f1 (max): s3 0.7 -> 1; s1 0.5 -> 2; s2 missing
    # s1: (1 + 3 + 2) / 3 = 2.0; s2: (2.5 + 1) / 2 = 1.75; s3: (2.5 + 2 + 1) / 3 = 1.8333; s4: no ranked column -> nan
    ranks = mean_rank(scores, directions)
    assert ranks["s1"] == approx(2.0)
    assert ranks["s2"] == approx(1.75)
    assert ranks["s3"] == approx(5.5 / 3)
    assert math.isnan(ranks["s4"])
    assert set(ranks) == {"s1", "s2", "s3", "s4"}


# ------------------------------------------------------------------------------------------------
# Welch


def test_welch_by_hand():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    # a: mean 2.5, var = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3 -> var/n = 5/12 = 0.416667
    # b: mean 4.0, var = (4 + 0 + 4) / 2 = 4   -> var/n = 4/3 = 1.333333
    # t = (2.5 - 4.0) / sqrt(0.416667 + 1.333333) = -1.5 / sqrt(1.75) = -1.5 / 1.322876 = -1.133893
    # df = 1.75^2 / (0.416667^2 / 3 + 1.333333^2 / 2) = 3.0625 / (0.057870 + 0.888889) = 3.0625 / 0.946759 = 3.234719
    t, df = -1.133893, 3.234719
    expected = 2 * scipy_stats.t.sf(abs(t), df)
    assert welch_p_value(a, b) == approx(expected, rel=1e-5)
    assert welch_p_value(a, b) == approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
    assert welch_p_value(b, a) == approx(welch_p_value(a, b))


def test_welch_one_constant_side_closed_form():
    # a = [1, 1, 1]: mean 1, var 0; b = [1, 2, 3, nan]: NaN dropped, mean 2, var 1 -> var/n = 1/3
    # t = (1 - 2) / sqrt(1/3) = -sqrt(3); df = (1/3)^2 / ((1/3)^2 / 2) = 2
    # Student t with 2 df has sf(t) = (1 - t / sqrt(t^2 + 2)) / 2, so p = 1 - sqrt(3) / sqrt(5) = 1 - sqrt(0.6) = 0.225403
    assert welch_p_value([1.0, 1.0, 1.0], [1.0, 2.0, 3.0, nan]) == approx(1 - math.sqrt(0.6), rel=1e-9)


def test_welch_degenerate():
    assert math.isnan(welch_p_value([1.0], [1.0, 2.0]))
    assert math.isnan(welch_p_value([1.0, 2.0], [3.0, nan]))
    assert welch_p_value([1.0, 1.0], [1.0, 1.0, 1.0]) == 1.0  # both variances 0, equal means
    assert welch_p_value([1.0, 1.0], [2.0, 2.0]) == 0.0  # both variances 0, different means


# ------------------------------------------------------------------------------------------------
# bootstrap


def test_bootstrap_separated_samples_never_reach_the_observed_difference():
    a, b = [0.0, 0.1, 0.2, 0.3, 0.4], [10.0, 10.1, 10.2, 10.3, 10.4]
    # observed |diff| = 10; shifted to the pooled mean each sample spans 0.4, so no resampled |diff| exceeds 0.4
    # -> count 0 -> p = (0 + 1) / (10000 + 1)
    assert bootstrap_p_value(a, b) == approx(1 / 10_001)
    assert bootstrap_p_value(a, b) < 0.01


def test_bootstrap_identical_samples():
    a = [0.3, 0.5, 0.4, 0.6]
    # observed |diff| = 0; every resampled |diff| >= 0 -> count = 10000 -> p = 10001 / 10001 = 1
    assert bootstrap_p_value(a, list(a)) == 1.0


def test_bootstrap_exact_null_distribution():
    a, b = [0.0, 4.0], [1.0, 1.0]
    # means 2 and 1, observed |diff| = 1; pooled mean = 6 / 4 = 1.5
    # shifted a = a - 2 + 1.5 = [-0.5, 3.5]; shifted b = [1.5, 1.5] (every resample has mean 1.5)
    # resampled mean of a: -0.5 (prob 1/4), 1.5 (1/2), 3.5 (1/4) -> |diff| = 2, 0, 2 -> P(|diff| >= 1) = 1/2
    # with 10000 resamples the share has sd sqrt(0.25 / 10000) = 0.005; allow 4 sd
    assert bootstrap_p_value(a, b, resamples=10_000, seed=3) == approx(0.5, abs=0.02)


def test_bootstrap_exact_null_distribution_both_sides_shifted():
    a, b = [0.0, 4.0], [1.0, 2.0]
    # means 2 and 1.5, observed |diff| = 0.5; pooled mean = 7 / 4 = 1.75
    # shifted a = [-0.25, 3.75]: resampled mean -0.25 (1/4), 1.75 (1/2), 3.75 (1/4)
    # shifted b = [1.25, 2.25]:  resampled mean  1.25 (1/4), 1.75 (1/2), 2.25 (1/4)
    # a* = -0.25 or 3.75 (prob 1/2): |diff| >= 1.5 always; a* = 1.75 (prob 1/2): |diff| = 0.5, 0, 0.5 -> >= 0.5 with prob 1/2
    # P(|diff| >= 0.5) = 1/2 + 1/2 * 1/2 = 0.75 (sd of the share over 10000 resamples: sqrt(0.75 * 0.25 / 10000) = 0.0043)
    assert bootstrap_p_value(a, b, seed=11) == approx(0.75, abs=0.02)


def test_bootstrap_deterministic_per_seed_and_degenerate():
    a, b = [0.71, 0.74, 0.69, 0.75], [0.70, 0.72, 0.73, 0.68, nan]
    assert bootstrap_p_value(a, b, seed=7) == bootstrap_p_value(a, b, seed=7)
    assert len({bootstrap_p_value(a, b, resamples=500, seed=s) for s in range(5)}) > 1  # the seed matters
    assert math.isnan(bootstrap_p_value([1.0], [1.0, 2.0]))
    assert math.isnan(bootstrap_p_value([1.0, 2.0], [nan, 3.0]))
    with pytest.raises(ValueError):
        bootstrap_p_value(a, b, resamples=0)


# ------------------------------------------------------------------------------------------------
# orientation, domination, reference point


def test_oriented_negates_min_columns_without_mutating():
    points = np.array([[0.8, 2.0], [0.7, 1.0]])
    assert oriented(points, ["max", "min"]).tolist() == [[0.8, -2.0], [0.7, -1.0]]
    assert points.tolist() == [[0.8, 2.0], [0.7, 1.0]]
    with pytest.raises(ValueError):
        oriented(points, ["max", "up"])
    with pytest.raises(ValueError):
        oriented(points, ["max"])


def test_non_dominated_by_hand():
    points = np.array([[1, 3], [2, 2], [3, 1], [1, 1], [2, 2], [1, 2], [nan, 5]], dtype=float)
    # (1,1) < (2,2) everywhere -> dominated; (1,2) <= (1,3) with 2 < 3 -> dominated
    # the two (2,2) rows are equal, neither dominates -> both kept; the NaN row is False and dominates nothing
    assert non_dominated(points).tolist() == [True, True, True, False, True, False, False]
    assert non_dominated(np.empty((0, 2))).tolist() == []


def test_reference_point_by_hand():
    # ranges 3 - 1 = 2 in both columns -> 1 - 0.1 * 2 = 0.8
    assert reference_point(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])) == approx([0.8, 0.8])
    points = np.array([[1.0, 5.0, -5.0, 0.0], [2.0, 5.0, -5.0, 0.0], [nan, 0.0, 0.0, 9.0]])
    # NaN row ignored. col 0: 1 - 0.1 * (2 - 1) = 0.9; col 1 constant 5: 5 - 0.1 * |5| = 4.5
    # col 2 constant -5: -5 - 0.1 * |-5| = -5.5; col 3 constant 0: 0 - 0.1 * 1e-12 = -1e-13
    assert reference_point(points) == approx([0.9, 4.5, -5.5, -1e-13], abs=1e-15)
    assert reference_point(points, margin=0.5)[0] == approx(0.5)  # 1 - 0.5 * 1
    assert np.isnan(reference_point(np.array([[nan, 1.0]]))).all()


# ------------------------------------------------------------------------------------------------
# hypervolume
#
#   y
#   3 |###.
#   2 |###|###.
#   1 |###|###|###.
#   0 +---+---+---+ x     points (1,3), (2,2), (3,1); reference (0,0)
#     0   1   2   3       sweep from the right: 3*1 + 2*(2-1) + 1*(3-2) = 3 + 2 + 1 = 6

STAIRCASE = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
ORIGIN = np.zeros(2)


def test_hypervolume_2d_staircase():
    assert hypervolume(STAIRCASE, ORIGIN) == approx(6.0)
    assert hypervolume(STAIRCASE[::-1], ORIGIN) == approx(6.0)  # order does not matter
    # a dominated point (1,1), a NaN row and a point on the reference's boundary (0,5) change nothing
    extra = np.vstack([STAIRCASE, [[1.0, 1.0], [nan, 9.0], [0.0, 5.0]]])
    assert hypervolume(extra, ORIGIN) == approx(6.0)
    # reference (0.5, 0.5): 2.5*0.5 + 1.5*(2-1) + 0.5*(3-2) = 1.25 + 1.5 + 0.5 = 3.25
    assert hypervolume(STAIRCASE, np.array([0.5, 0.5])) == approx(3.25)
    assert hypervolume(np.empty((0, 2)), ORIGIN) == 0.0
    assert math.isnan(hypervolume(STAIRCASE, np.array([nan, 0.0])))


def test_hypervolume_1d():
    # the best point's distance to the reference: 3 - 0 = 3
    assert hypervolume(np.array([[3.0], [1.0], [-1.0]]), np.array([0.0])) == approx(3.0)


def test_hypervolume_3d_by_hand():
    origin = np.zeros(3)
    # single box 2 x 3 x 4 = 24
    assert hypervolume(np.array([[2.0, 3.0, 4.0]]), origin) == approx(24.0)
    # two boxes, inclusion-exclusion: 2*2*2 + 1*1*3 - min(2,1)*min(2,1)*min(2,3) = 8 + 3 - 2 = 9
    assert hypervolume(np.array([[2.0, 2.0, 2.0], [1.0, 1.0, 3.0]]), origin) == approx(9.0)
    # the 2-D staircase extruded to height 2: 6 * 2 = 12
    assert hypervolume(np.hstack([STAIRCASE, np.full((3, 1), 2.0)]), origin) == approx(12.0)
    # 4-D: (1,1,1,2) and (2,1,1,1) -> 2 + 2 - 1*1*1*1 = 3
    assert hypervolume(np.array([[1.0, 1.0, 1.0, 2.0], [2.0, 1.0, 1.0, 1.0]]), np.zeros(4)) == approx(3.0)


def _inclusion_exclusion(points: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume by inclusion-exclusion over all subsets: Σ_S (-1)^{|S|+1} Π_k (min_{i∈S} p_ik − r_k)."""
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(range(len(points)), size):
            total += (-1) ** (size + 1) * np.prod(points[list(subset)].min(axis=0) - reference)
    return total


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion_on_random_points(d):
    rng = np.random.default_rng(d)
    for _ in range(5):
        points = rng.uniform(0.1, 1.0, size=(6, d))
        assert hypervolume(points, np.zeros(d)) == approx(_inclusion_exclusion(points, np.zeros(d)), rel=1e-9)


def test_hypervolume_gain_by_hand():
    # (2.5, 2.5) dominates the box [0, 2.5] x [0, 2.5]; what sticks out of the staircase is
    #   x in [1, 2],   y in [2, 2.5]: 1.0 * 0.5 = 0.5
    #   x in [2, 2.5], y in [1, 2.5]: 0.5 * 1.5 = 0.75
    # -> HV(union) = 6 + 1.25 = 7.25 -> gain 1.25 / 6 = 0.208333
    assert hypervolume_gain(np.array([[2.5, 2.5]]), STAIRCASE, ORIGIN) == approx(1.25 / 6)
    # (2.5, 1.5) only fills the notch between (2,2) and (3,1): [2, 2.5] x [1, 1.5] = 0.5 * 0.5 = 0.25 -> gain 0.25 / 6
    assert hypervolume_gain(np.array([[2.5, 1.5]]), STAIRCASE, ORIGIN) == approx(0.25 / 6)
    # (4, 0.5) adds [3, 4] x [0, 0.5] = 0.5 -> gain 0.5 / 6
    assert hypervolume_gain(np.array([[4.0, 0.5]]), STAIRCASE, ORIGIN) == approx(0.5 / 6)
    # points inside the dominated region add nothing
    assert hypervolume_gain(np.array([[1.5, 1.5], [2.0, 2.0]]), STAIRCASE, ORIGIN) == 0.0
    assert hypervolume_gain(np.empty((0, 2)), STAIRCASE, ORIGIN) == 0.0
    # a front entirely at or below the reference has HV 0 -> nan
    assert math.isnan(hypervolume_gain(np.array([[1.0, 1.0]]), np.array([[0.0, 3.0]]), ORIGIN))


def test_hypervolume_ratio_by_hand():
    # HV((2,2)) = 2 * 2 = 4 against 6 -> 2/3
    assert hypervolume_ratio(np.array([[2.0, 2.0]]), STAIRCASE, ORIGIN) == approx(4 / 6)
    assert hypervolume_ratio(STAIRCASE, STAIRCASE, ORIGIN) == approx(1.0)
    # (2.5, 2.5) alone: 6.25 / 6
    assert hypervolume_ratio(np.array([[2.5, 2.5]]), STAIRCASE, ORIGIN) == approx(6.25 / 6)
    assert math.isnan(hypervolume_ratio(STAIRCASE, np.array([[-1.0, 2.0]]), ORIGIN))


def test_clearly_better_asks_for_one_percent_and_two_std():
    # accuracy at the majority class 0.887: the margin is max(0.01 · 0.887, 0.005, 2 s)
    assert not clearly_better([0.887, 0.887, 0.887], 0.887, "max")  # equal to trivial
    assert not clearly_better([0.895], 0.887, "max")  # +0.008 < 0.00887
    assert clearly_better([0.897], 0.887, "max")  # +0.010 > 0.00887 (one value: no spread)
    # [0.88, 0.92]: mean 0.90 (+0.013), s = 0.02828 → 2 s = 0.0566 swamps the gain
    assert not clearly_better([0.88, 0.92], 0.887, "max")
    # ROC AUC at 0.5: more than 0.505 is needed (the floor and 1% coincide)
    assert clearly_better([0.51, 0.511], 0.5, "max") and not clearly_better([0.504], 0.5, "max")
    # lower is better: an MAE 1% below the trivial median's
    assert clearly_better([9.8], 10.0, "min") and not clearly_better([9.95], 10.0, "min") and not clearly_better([10.5], 10.0, "min")
    # R² near 0: the 0.005 floor holds
    assert not clearly_better([0.004], 0.0, "max") and clearly_better([0.006], 0.0, "max")


def test_clearly_better_undefined_inputs():
    assert not clearly_better([], 0.5, "max") and not clearly_better([math.nan], 0.5, "max")
    assert not clearly_better([0.9], math.nan, "max")
    with pytest.raises(ValueError):
        clearly_better([0.9], 0.5, "up")


def test_clearly_apart_needs_two_standard_errors_and_one_percent():
    # [0.80, 0.84] vs [0.70, 0.70]: diff 0.12, SE = sqrt(0.0008 / 2) = 0.02 → 2 SE 0.04 < 0.12
    assert clearly_apart([0.80, 0.84], [0.70, 0.70])
    # [0.70, 0.80] vs [0.70, 0.70]: diff 0.05, SE = sqrt(0.005 / 2) = 0.05 → 2 SE 0.10 > 0.05
    assert not clearly_apart([0.70, 0.80], [0.70, 0.70])
    # no spread, but under 1% of 0.70 (0.007): not apart; 0.71 is (0.01 > 0.007)
    assert not clearly_apart([0.705, 0.705], [0.70, 0.70]) and clearly_apart([0.71, 0.71], [0.70, 0.70])
    assert not clearly_apart([], [0.7]) and not clearly_apart([float("nan")], [0.7])
