"""The comparison table: Pareto fronts, aggregation over seeds, rendering."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from polytask.report import compare, pareto_front, to_frame, to_markdown
from polytask.spec import parse_spec


def test_pareto_front_of_known_points():
    frame = pd.DataFrame({"a": [0.9, 0.8, 0.7, 0.85, 0.9], "b": [0.6, 0.7, 0.65, 0.65, 0.5]}, index=list("pqrst"))
    # r is dominated by q (0.8 > 0.7, 0.7 > 0.65); t by p; s is dominated by nobody
    assert pareto_front(frame, ["a", "b"], ["max", "max"]) == ["p", "q", "s"]
    # minimising b instead: t (highest a, lowest b) dominates every other point
    assert pareto_front(frame, ["a", "b"], ["max", "min"]) == ["t"]


def trial(candidate, seed, subjectivity, sentiment, status="FINISHED", **extra):
    return {
        "run_name": f"{candidate}/seed{seed}", "candidate": candidate, "seed": seed, "status": status,
        "outcome": "completed" if status == "FINISHED" else "error", "reason": "" if status == "FINISHED" else "Traceback\nValueError: boom",
        "best/val/subjectivity/accuracy": subjectivity, "best/val/sentiment/accuracy": sentiment,
        "best/val/score": (subjectivity + sentiment) / 2, **extra,
    }


@pytest.fixture
def spec(make_study):
    return parse_spec(make_study(
        candidates=[{"weighting": "equal"}, {"weighting": "pcgrad"}, {"name": "tuned", "weighting": "scalarization", "search": {"trials": 3}}],
        seeds=[0, 1],
    ))


def test_compare_aggregates_seeds_and_keeps_the_tuned_front(spec):
    trials = pd.DataFrame([
        trial("equal", 0, 0.90, 0.70), trial("equal", 1, 0.94, 0.74),
        trial("pcgrad", 0, 0.95, 0.72), trial("pcgrad", 1, 0.0, 0.0, status="FAILED"),
        trial("tuned", 0, 0.96, 0.71, **{"weight.subjectivity": 1.5, "weight.sentiment": 0.5}),
        trial("tuned", 1, 0.93, 0.75, **{"weight.subjectivity": 0.6, "weight.sentiment": 1.4}),
        trial("tuned", 0, 0.92, 0.70, **{"weight.subjectivity": 1.0, "weight.sentiment": 1.0}),
    ])
    comparison = compare(spec, trials)
    rows = {r.label: r for r in comparison.rows}
    assert set(rows) == {"equal", "pcgrad", "tuned [1.50, 0.50]", "tuned [0.60, 1.40]"}
    equal = rows["equal"]
    assert equal.mean("best/val/subjectivity/accuracy") == pytest.approx(0.92)
    assert equal.std("best/val/subjectivity/accuracy") == pytest.approx(math.sqrt(2 * 0.02**2))  # sample std
    assert (rows["pcgrad"].trials, rows["pcgrad"].failed) == (1, 1)
    assert math.isnan(rows["pcgrad"].std("best/val/score"))
    assert comparison.best.label == "tuned [0.60, 1.40]"  # score 0.84, the highest
    markdown = to_markdown(comparison, spec)
    assert "| ★ tuned [0.60, 1.40] | 1 |" in markdown
    assert "| equal | 2 | 0.920 ± 0.028 |" in markdown
    assert "`pcgrad/seed1`: error — ValueError: boom" in markdown
    table = to_frame(comparison).set_index("candidate")
    assert table.loc["equal", "best/val/sentiment/accuracy mean"] == pytest.approx(0.72)
    assert bool(table.loc["tuned [0.60, 1.40]", "best"])
