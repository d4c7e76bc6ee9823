"""The comparison (rows, baselines, Δm, ranks, p-values, hypervolume) and its rendering, on
runs written by hand; every expected number is worked out in the comments."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as scipy_stats

from polytask.results import stats
from polytask.results.comparison import compare, pareto_front
from polytask.results.report import headline, to_frame, to_markdown
from polytask.schema import params_column, task_weight
from polytask.spec import parse_spec

SUBJ, RATING = "subjectivity", "rating"


def test_pareto_front_of_known_points():
    frame = pd.DataFrame({"a": [0.9, 0.8, 0.7, 0.85, 0.9], "b": [0.6, 0.7, 0.65, 0.65, 0.5]}, index=list("pqrst"))
    # r is dominated by q (0.8 > 0.7, 0.7 > 0.65); t by p; s is dominated by nobody
    assert pareto_front(frame, ["a", "b"], ["max", "max"]) == ["p", "q", "s"]
    # minimising b instead: t (highest a, lowest b) dominates every other point
    assert pareto_front(frame, ["a", "b"], ["max", "min"]) == ["t"]


def run(candidate, seed, role="trial", phase="fixed", status="FINISHED", val=None, test=None, **extra):
    """One nested run as collect_trials returns it. ``val`` / ``test``: (accuracy, macro_f1, mae)."""
    record = {
        "run_name": f"{candidate}/seed{seed}", "candidate": candidate, "seed": seed, "status": status, "role": role, "phase": phase,
        "outcome": "completed" if status == "FINISHED" else "error", "reason": "" if status == "FINISHED" else "Traceback\nValueError: boom",
        "trial_id": f"{candidate}-{seed}-{phase}", "selected_trial": "", "fingerprint": "", "reused_from": "", "learning_rate": 1e-3, **extra,
    }
    for prefix, values in (("best/val", val), ("test", test)):
        if values is not None:
            accuracy, f1, mae = values
            record |= {f"{prefix}/{SUBJ}/accuracy": accuracy, f"{prefix}/{SUBJ}/macro_f1": f1, f"{prefix}/{RATING}/mae": mae}
    if val is not None:
        record["best/val/score"] = (val[0] - val[2]) / 2
    return record


def single_task(seed, accuracy, f1, mae):
    """A seed's two single-task models; each carries its own task's metrics only."""
    subj = run(f"single-task-{SUBJ}", seed, role="baseline", **{"cost/step_time_ms": 10.0, "cost/params/total": 100.0})
    rating = run(f"single-task-{RATING}", seed, role="baseline", **{"cost/step_time_ms": 20.0, "cost/params/total": 200.0})
    for prefix in ("best/val", "test"):
        subj |= {f"{prefix}/{SUBJ}/accuracy": accuracy, f"{prefix}/{SUBJ}/macro_f1": f1}
        rating |= {f"{prefix}/{RATING}/mae": mae}
    subj["best/val/score"], rating["best/val/score"] = accuracy, -mae
    return [subj, rating]


@pytest.fixture
def spec(make_study):
    return parse_spec(make_study(
        tasks=[{"name": SUBJ, "label_column": "kind"}, {"name": RATING, "label_column": "sentiment", "type": "regression"}],
        candidates=[{"weighting": "equal"}, {"weighting": "pcgrad"}, {"name": "tuned", "weighting": "scalarization", "search": {"trials": 3}}],
        seeds=[0, 1],
        comparison={"single_task_baselines": True},
    ))


@pytest.fixture
def trials():
    weights = {"s1": (1.5, 0.5), "s2": (0.6, 1.4), "s3": (1.0, 1.0)}
    searched = [  # validation (accuracy, mae): s3 is dominated by s1 (0.80 > 0.78 and 2.2 < 2.6)
        run("tuned", i % 2, phase="search", val=(acc, 0.7, mae), test=(acc, 0.7, mae), trial_id=name, run_name=f"tuned/seed{i % 2}/trial{i + 1}",
            **{params_column(task_weight("subjectivity")): weights[name][0], params_column(task_weight("rating")): weights[name][1]})
        for i, (name, acc, mae) in enumerate([("s1", 0.80, 2.2), ("s2", 0.85, 2.5), ("s3", 0.78, 2.6)])
    ]
    return pd.DataFrame([
        *single_task(0, 0.80, 0.70, 2.0), *single_task(1, 0.80, 0.70, 2.0),
        run("equal", 0, val=(0.86, 0.7, 2.0), test=(0.84, 0.70, 1.8)), run("equal", 1, val=(0.84, 0.7, 2.1), test=(0.88, 0.70, 1.6)),
        run("pcgrad", 0, val=(0.86, 0.7, 2.1), test=(0.86, 0.70, 2.1)), run("pcgrad", 1, val=(0.86, 0.7, 2.1), test=(0.86, 0.70, 2.1)),
        run("pcgrad", 2, status="FAILED"),
        *searched,
        run("tuned", 0, phase="evaluation", val=(0.79, 0.7, 2.3), test=(0.80, 0.70, 2.0), selected_trial="s1"),
        run("tuned", 1, phase="evaluation", val=(0.80, 0.7, 2.2), test=(0.82, 0.70, 1.9), selected_trial="s1"),
    ])


def test_rows_over_seeds_with_the_single_task_baseline_and_the_tuned_evaluation(spec, trials):
    comparison = compare(spec, trials)
    rows = {r.label: r for r in comparison.rows}
    assert list(rows) == ["equal", "pcgrad", "tuned", "single-task"]
    assert comparison.split == "test" and comparison.reference == "tuned"
    assert (rows["pcgrad"].trials, rows["pcgrad"].failed) == (2, 1)
    # tuned: its two evaluation trials, not its three search trials
    assert rows["tuned"].values[f"test/{SUBJ}/accuracy"] == [0.80, 0.82]
    assert rows["tuned"].note.startswith("weights [1.50, 0.50]: tuned/seed0/trial1, best val/score of 3 search trials")
    # the single-task row: each task from its own model; costs summed over the 2 models
    single = rows["single-task"]
    assert single.values[f"test/{RATING}/mae"] == [2.0, 2.0] and single.values["cost/step_time_ms"] == [30.0, 30.0]
    assert single.values["cost/params/total"] == [300.0, 300.0]
    assert single.values["best/val/score"] == [pytest.approx((0.80 - 2.0) / 2)] * 2
    # the front of the search on validation: s1 and s2
    searched, front = comparison.fronts["tuned"]
    assert list(searched.loc[front, "trial_id"]) == ["s1", "s2"]


def test_confidence_interval_over_seeds(spec, trials):
    equal = next(r for r in compare(spec, trials).rows if r.label == "equal")
    e = equal.estimate(f"test/{SUBJ}/accuracy")
    # [0.84, 0.88]: mean 0.86, std 0.02·√2 = 0.028284; t(0.975, 1) = 12.7062 → half width 12.7062 · 0.028284 / √2 = 0.254124
    assert (e.n, e.mean, e.std) == (2, pytest.approx(0.86), pytest.approx(0.0282843, abs=1e-6))
    assert (e.ci_low, e.ci_high) == (pytest.approx(0.86 - 0.254124, abs=1e-5), pytest.approx(0.86 + 0.254124, abs=1e-5))


def test_delta_m_per_task_and_per_metric_with_mixed_directions(spec, trials):
    rows = {r.label: r for r in compare(spec, trials).rows}
    equal = rows["equal"]
    # test means against the single-task means: accuracy 0.86 vs 0.80 → +7.5%; macro_f1 0.70 vs 0.70 → 0%;
    # mae (lower is better) 1.7 vs 2.0 → −(1.7 − 2.0)/2.0 = +15%
    # per task: subjectivity (7.5 + 0)/2 = 3.75, rating 15 → (3.75 + 15)/2 = 9.375; per metric: (7.5 + 0 + 15)/3 = 7.5
    assert equal.delta_m_task == pytest.approx(9.375)
    assert equal.delta_m_metric == pytest.approx(7.5)
    # per seed (per task): seed 0 acc 0.84 → +5%, f1 0, mae 1.8 → +10% → (2.5 + 10)/2 = 6.25; seed 1 acc +10%, mae 1.6 → +20% → (5 + 20)/2 = 12.5
    assert equal.delta_m_seeds == pytest.approx([6.25, 12.5])
    # tuned: seed 0 all equal → 0; seed 1 acc 0.82 → +2.5%, mae 1.9 → +5% → (1.25 + 5)/2 = 3.125
    assert rows["tuned"].delta_m_seeds == pytest.approx([0.0, 3.125])
    assert rows["single-task"].delta_m_task == pytest.approx(0.0)


def test_mean_rank_and_p_value_against_tuned_scalarization(spec, trials):
    rows = {r.label: r for r in compare(spec, trials).rows}
    # test accuracy means: equal 0.86, pcgrad 0.86 (tie → 1.5 each), tuned 0.81 → 3, single 0.80 → 4
    # test mae means (lower better): equal 1.7 → 1, tuned 1.95 → 2, single 2.0 → 3, pcgrad 2.1 → 4
    assert {k: r.rank for k, r in rows.items()} == {"equal": 1.25, "pcgrad": 2.75, "tuned": 2.5, "single-task": 3.5}
    # Welch on the per-seed Δm: equal [6.25, 12.5] vs tuned [0, 3.125]; means 9.375 and 1.5625, variances 19.53125 and 4.8828125
    # t = 7.8125 / √(19.53125/2 + 4.8828125/2) = 7.8125 / 3.49386 = 2.23607; df = 12.20703² / (9.765625²/1 + 2.44140625²/1) = 1.47059
    t, df = 7.8125 / math.sqrt(19.53125 / 2 + 4.8828125 / 2), (19.53125 / 2 + 4.8828125 / 2) ** 2 / ((19.53125 / 2) ** 2 + (4.8828125 / 2) ** 2)
    assert t == pytest.approx(2.23607, abs=1e-5) and df == pytest.approx(1.47059, abs=1e-5)
    assert rows["equal"].p_value == pytest.approx(2 * scipy_stats.t.sf(t, df))
    assert math.isnan(rows["tuned"].p_value)  # the reference itself


def test_hypervolume_gain_over_the_tuned_front(spec, trials):
    rows = {r.label: r for r in compare(spec, trials).rows}
    # tuned's evaluation seeds (0.79, 2.3) and (0.80, 2.2) lie inside what s1 = (0.80, 2.2) dominates → no gain
    assert rows["tuned"].hv_gain == 0.0
    # equal's seeds (0.86, 2.0), (0.84, 2.1) beat the whole front on both metrics → a positive gain
    assert rows["equal"].hv_gain > 0
    # the same gain computed directly: points oriented (accuracy, −mae), the reference from every row's seeds and the front
    front = stats.oriented([[0.80, 2.2], [0.85, 2.5]], ["max", "min"])
    every = stats.oriented([[0.80, 2.2], [0.85, 2.5], [0.86, 2.0], [0.84, 2.1], [0.86, 2.1], [0.86, 2.1], [0.79, 2.3], [0.80, 2.2], [0.80, 2.0], [0.80, 2.0]], ["max", "min"])
    reference = stats.reference_point(every)
    expected = stats.hypervolume_gain(stats.oriented([[0.86, 2.0], [0.84, 2.1]], ["max", "min"]), front, reference)
    assert rows["equal"].hv_gain == pytest.approx(expected)


def test_a_tuned_candidate_without_a_completed_search_is_reported_as_dropped(spec, trials):
    kept = trials[~((trials["candidate"] == "tuned"))]
    failed = pd.DataFrame([run("tuned", 0, phase="search", status="FAILED")])
    comparison = compare(spec, pd.concat([kept, failed], ignore_index=True))
    assert comparison.dropped == ["tuned"] and comparison.reference is None
    assert "`tuned` has no evaluation trials" in to_markdown(comparison, spec)


def test_markdown_and_csv_say_how_each_number_was_made(spec, trials):
    comparison = compare(spec, trials)
    markdown = to_markdown(comparison, spec)
    headers, body = headline(comparison, spec)
    assert headers[:4] == ["strategy", "seeds", f"test {SUBJ} accuracy", f"test {RATING} mae"]
    assert "Δm% (per task)" in headers and "p vs tuned" in headers and "HV gain vs front" in headers
    equal = next(cells for cells in body if cells[0].endswith("equal"))
    assert equal[1] == "2" and equal[2] == "0.860 ± 0.028" and "+9.37" in equal and "+7.50" in equal
    assert "| pcgrad | 2 (1 failed) |" in markdown and "(reference)" in markdown
    assert "Model selection, validation only" in markdown and "test data never chooses anything" in markdown
    assert "## `tuned`: Pareto-optimal search trials (2 of 3)" in markdown and "[1.50, 0.50]" in markdown
    assert "`pcgrad/seed2`: error — ValueError: boom" in markdown
    assert "0.860 ± 0.028 [0.606, 1.114]" in markdown  # mean ± std [95% CI] in the detail table
    table = to_frame(comparison).set_index("strategy")
    assert table.loc["equal", "delta_m_per_task"] == pytest.approx(9.375)
    assert table.loc["equal", f"test/{SUBJ}/accuracy ci_low"] == pytest.approx(0.605876, abs=1e-5)
    assert bool(table.loc["equal", "best"])  # best mean validation score: (0.85 − 2.05)/2 = −0.6 beats the others


# --------------------------------------------------------------------------- did it learn? capacity


def trivial_metrics(test_accuracy=0.86, test_mae=3.0):
    """The trivial predictor as the study logs it: validation (0.6, 0.375, 3.0), test as given."""
    return {
        f"trivial/val/{SUBJ}/accuracy": 0.6, f"trivial/val/{SUBJ}/macro_f1": 0.375, f"trivial/val/{RATING}/mae": 3.0, "trivial/val/score": -1.2,
        f"trivial/test/{SUBJ}/accuracy": test_accuracy, f"trivial/test/{SUBJ}/macro_f1": 0.375, f"trivial/test/{RATING}/mae": test_mae,
    }


def test_the_trivial_row_and_a_task_no_strategy_learns(spec, trials):
    comparison = compare(spec, trials, trivial_metrics())
    rows = {r.label: r for r in comparison.rows}
    trivial = rows["trivial"]
    assert trivial.kind == "trivial" and trivial.values[f"test/{SUBJ}/accuracy"] == [0.86] and trivial.values[f"best/val/{RATING}/mae"] == [3.0]
    assert math.isnan(trivial.rank) and not trivial.best and math.isnan(trivial.p_value)
    # test accuracy: equal [0.84, 0.88] (mean 0.86), pcgrad 0.86, tuned 0.81 — none beats 0.86 by 1% (0.0086), so subjectivity learnt nothing
    # test mae (lower better): equal 1.7 (std 0.141: 2 std 0.28 < 1.3), pcgrad 2.1, tuned 1.95 — all clearly below 3.0
    assert {k: r.learned for k, r in rows.items() if r.learned} == {
        "equal": {SUBJ: False, RATING: True}, "pcgrad": {SUBJ: False, RATING: True}, "tuned": {SUBJ: False, RATING: True}, "single-task": {SUBJ: False, RATING: True},
    }
    assert comparison.unlearned == [SUBJ]
    assert comparison.warnings[0] == (f"task {SUBJ}: no strategy is clearly above predicting the majority class (test accuracy 0.860); "
                                      "its differences are noise, and it is left out of the mean rank.")
    # the mean rank is over rating's mae alone: equal 1.7 → 1, tuned 1.95 → 2, single 2.0 → 3, pcgrad 2.1 → 4
    assert {k: r.rank for k, r in rows.items() if k != "trivial"} == {"equal": 1.0, "pcgrad": 4.0, "tuned": 2.0, "single-task": 3.0}
    headers, body = headline(comparison, spec)
    cells = {c[0].removeprefix("★ "): c for c in body}
    assert cells["equal"][2] == "0.860 ± 0.028 †" and cells["equal"][3] == "1.700 ± 0.141"
    assert cells["trivial"][1:4] == ["—", "0.860", "3.000"]
    markdown = to_markdown(comparison, spec)
    assert "† not clearly above the trivial predictor" in markdown and f"**Warning: task {SUBJ}: no strategy" in markdown
    assert f"but {SUBJ} (no strategy above trivial)" in markdown
    assert to_frame(comparison).set_index("strategy").loc["equal", "not_above_trivial"] == SUBJ


def test_a_study_where_no_candidate_learns_anything_says_so(spec, trials):
    comparison = compare(spec, trials, trivial_metrics(test_accuracy=0.9, test_mae=1.0))
    assert comparison.unlearned == [SUBJ, RATING]
    assert any(w.startswith("no candidate learned anything beyond the trivial predictor on any task") and "learning rate" in w for w in comparison.warnings)
    assert comparison.best is not None  # the best validation score is still marked; the warning says what it is worth


def test_two_seeds_are_too_few_to_separate_strategies(spec, trials):
    warnings = compare(spec, trials).warnings
    assert any(w.startswith("2 seeds for some strategies: too few to separate strategies") for w in warnings)


def test_hypervolume_is_measured_from_the_trivial_point(spec, trials):
    rows = {r.label: r for r in compare(spec, trials, trivial_metrics()).rows}
    # validation, oriented (accuracy, −mae): the front s1 (0.80, 2.2), s2 (0.85, 2.5); the trivial point (0.6, 3.0)
    front = stats.oriented([[0.80, 2.2], [0.85, 2.5]], ["max", "min"])
    origin = stats.oriented([[0.6, 3.0]], ["max", "min"])[0]
    expected = stats.hypervolume_gain(stats.oriented([[0.86, 2.0], [0.84, 2.1]], ["max", "min"]), front, origin)
    assert rows["equal"].hv_gain == pytest.approx(expected)
    # by hand: HV(front) = 0.20·0.8 + 0.05·0.5 = 0.185; equal's (0.86, −2.0) dominates both: 0.26·1.0 = 0.26 → 0.26/0.185 − 1
    assert expected == pytest.approx(0.26 / 0.185 - 1)
    assert rows["tuned"].hv_gain == 0.0


def test_params_vs_single_task_flags_a_capacity_difference(spec, trials):
    # baselines: subjectivity 100 parameters, rating 200. equal: shared 80 + own 20 → 100 (1.0×) and 80 + 40 → 120 (0.6×): 0.8×
    # pcgrad: shared 150 + own 50 → 200 (2.0×) and 200 (1.0×): 1.5×, more than 25% off
    capacities = {"equal": (80.0, 20.0, 40.0), "pcgrad": (150.0, 50.0, 50.0), "tuned": (100.0, 0.0, 100.0)}
    trials = trials.copy()
    for candidate, (shared, subj, rating) in capacities.items():
        mine = trials["candidate"] == candidate
        trials.loc[mine, "cost/params/shared"], trials.loc[mine, f"cost/params/{SUBJ}"], trials.loc[mine, f"cost/params/{RATING}"] = shared, subj, rating
    rows = {r.label: r for r in compare(spec, trials).rows}
    assert rows["equal"].params_ratio == pytest.approx(0.8) and "capacity" not in rows["equal"].note
    assert rows["pcgrad"].params_ratio == pytest.approx(1.5)
    assert "each task's prediction depends on 1.50x the parameters of its single-task baseline" in rows["pcgrad"].note
    assert rows["single-task"].params_ratio == pytest.approx(1.0) and rows["tuned"].params_ratio == pytest.approx(1.0)
    headers, body = headline(compare(spec, trials), spec)
    column = headers.index("params vs single-task")
    assert {c[0].removeprefix("★ "): c[column] for c in body}["pcgrad"] == "1.50×"


def test_differences_within_seed_noise_are_called_so(spec, trials):
    # every strategy's test metrics moved to within noise of the single-task baselines (0.80, 2.0):
    # accuracy 0.79 / 0.83 (mean 0.81, 2 SE = 0.04 > 0.01) and mae 1.9 / 2.1 (2 SE = 0.2 > 0)
    trials = trials.copy()
    strategies = trials["role"] == "trial"
    for seed, (accuracy, mae) in enumerate([(0.79, 1.9), (0.83, 2.1)]):
        mine = strategies & (trials["seed"] == seed)
        trials.loc[mine, f"test/{SUBJ}/accuracy"], trials.loc[mine, f"test/{RATING}/mae"] = accuracy, mae
    warnings = compare(spec, trials).warnings
    (noise,) = [w for w in warnings if w.startswith("no strategy is clearly better or worse than the single-task baselines")]
    assert "within seed noise (2 standard errors over 2 seeds, or under 1%)" in noise and "Δm% from" in noise


def test_a_difference_beyond_seed_noise_is_not_called_noise(spec, trials):
    # equal's test accuracy 0.84 / 0.88 is 0.06 above the baselines' 0.80, beyond 2 SE (0.04)
    assert not any("within seed noise" in w for w in compare(spec, trials).warnings)
