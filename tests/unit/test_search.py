"""The study searcher: the plan of trials and the Optuna search over task weights."""

from __future__ import annotations

import pytest
from ray.tune.search import Searcher

from polytask.search import StudySearcher, normalised_weights, plan_trials
from polytask.spec import parse_spec


@pytest.fixture
def spec(make_study):
    return parse_spec(make_study(
        candidates=[
            {"weighting": "equal"},
            {"weighting": "pcgrad"},
            {"name": "tuned", "weighting": "scalarization", "search": {"trials": 3, "low": 0.2, "high": 5.0}},
        ],
        seeds=[0, 1],
    ))


def test_plan_is_seed_major_with_searched_trials_after(spec):
    plan = [(p.candidate, p.seed, p.search_index) for p in plan_trials(spec)]
    assert plan == [
        ("equal", 0, None), ("pcgrad", 0, None), ("equal", 1, None), ("pcgrad", 1, None),
        ("tuned", 0, 1), ("tuned", 1, 2), ("tuned", 0, 3),
    ]


def test_weights_are_scaled_to_sum_to_the_task_count():
    assert normalised_weights({"a": 1.0, "b": 3.0}, ["a", "b"]) == [0.5, 1.5]
    assert normalised_weights({"a": 2.0, "b": 2.0, "c": 2.0}, ["a", "b", "c"]) == [1.0, 1.0, 1.0]


def test_searcher_suggests_the_plan_then_finishes_and_feeds_optuna(spec):
    searcher = StudySearcher(spec)
    configs = [searcher.suggest(f"t{i}") for i in range(7)]
    assert searcher.suggest("t7") == Searcher.FINISHED
    assert [c["candidate"] for c in configs] == ["equal", "pcgrad", "equal", "pcgrad", "tuned", "tuned", "tuned"]
    for config in configs[4:]:
        assert sum(config["weights"]) == pytest.approx(2.0)
        assert all(0.2 <= v <= 5.0 for v in config["sampled"].values())
    assert "weights" not in configs[0]
    for i, trial_id in enumerate(["t4", "t5", "t6"]):
        searcher.on_trial_complete(trial_id, {"best/val/subjectivity/accuracy": 0.9 + i / 100, "best/val/sentiment/accuracy": 0.7})
    searcher.on_trial_complete("t0", {"best/val/subjectivity/accuracy": 0.5})  # not routed to Optuna
    study = searcher.optuna["tuned"]._ot_study
    assert [t.values for t in study.trials] == [[0.9, 0.7], [0.91, 0.7], [0.92, 0.7]]
    assert study.directions[0].name == "MAXIMIZE" and len(study.directions) == 2


def test_searcher_state_survives_save_and_restore(spec, tmp_path):
    searcher = StudySearcher(spec)
    for i in range(5):
        searcher.suggest(f"t{i}")
    searcher.save(str(tmp_path / "state.pkl"))
    restored = StudySearcher(spec)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("t5")["candidate"] == "tuned"
    assert restored.suggest("t6")["search_index"] == 3
