"""The study searcher: the plan of trials and the Optuna search over task weights."""

from __future__ import annotations

import pytest
from ray.tune.search import Searcher

from polytask.spec import parse_spec
from polytask.study.search import StudySearcher, config_weights, normalised_weights, plan_trials


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
    plan = [(p.candidate, p.seed, p.search_index, p.phase) for p in plan_trials(spec)]
    assert plan == [
        ("equal", 0, None, "fixed"), ("pcgrad", 0, None, "fixed"), ("equal", 1, None, "fixed"), ("pcgrad", 1, None, "fixed"),
        ("tuned", 0, 1, "search"), ("tuned", 1, 2, "search"), ("tuned", 0, 3, "search"),
        ("tuned", 0, None, "evaluation"), ("tuned", 1, None, "evaluation"),
    ]


def test_weights_are_scaled_to_sum_to_the_task_count():
    assert normalised_weights({"a": 1.0, "b": 3.0}, ["a", "b"]) == [0.5, 1.5]
    assert normalised_weights({"a": 2.0, "b": 2.0, "c": 2.0}, ["a", "b", "c"]) == [1.0, 1.0, 1.0]


def final(sub: float, sent: float = 0.7, epoch: int = 2, **extra) -> dict:
    """A trial's last result as Tune passes it to the searcher (the tiny study trains 2 epochs)."""
    return {"best/val/subjectivity/accuracy": sub, "best/val/sentiment/accuracy": sent, "best/val/score": (sub + sent) / 2, "epoch": epoch, **extra}


def test_searcher_suggests_the_plan_then_finishes_and_feeds_optuna(spec):
    searcher = StudySearcher(spec)
    configs = [searcher.suggest(f"t{i}") for i in range(7)]
    assert searcher.suggest("t7") is None  # the evaluation trials wait for the search to end
    assert [c["candidate"] for c in configs] == ["equal", "pcgrad", "equal", "pcgrad", "tuned", "tuned", "tuned"]
    for config in configs[4:]:
        assert sum(config_weights(config, spec.task_names)) == pytest.approx(2.0)
        assert all(0.2 <= v <= 5.0 for v in config["sampled"].values())
    assert config_weights(configs[0], spec.task_names) is None
    for i, trial_id in enumerate(["t4", "t5", "t6"]):
        searcher.on_trial_complete(trial_id, final(0.9 + i / 100))
    searcher.on_trial_complete("t0", {"best/val/subjectivity/accuracy": 0.5})  # not routed to Optuna
    study = searcher.searches["tuned"].study
    assert [t.values for t in study.trials] == [[0.9, 0.7], [0.91, 0.7], [0.92, 0.7]]
    assert [t.params == configs[4 + i]["sampled"] for i, t in enumerate(study.trials)] == [True] * 3
    assert [t.user_attrs["tune_trial_id"] for t in study.trials] == ["t4", "t5", "t6"]
    assert study.directions[0].name == "MAXIMIZE" and len(study.directions) == 2
    evaluation = [searcher.suggest("t7"), searcher.suggest("t8")]
    assert searcher.suggest("t9") == Searcher.FINISHED
    # the best validation val/score (t6) is trained on every seed, with its own weights
    assert [(c["phase"], c["seed"], c["selected_trial"]) for c in evaluation] == [("evaluation", 0, "t6"), ("evaluation", 1, "t6")]
    assert all(c["sampled"] == configs[6]["sampled"] for c in evaluation)


def test_a_candidate_whose_search_never_completed_is_dropped_not_awaited(spec):
    searcher = StudySearcher(spec)
    for i in range(7):
        searcher.suggest(f"t{i}")
    for trial_id in ["t4", "t5", "t6"]:
        searcher.on_trial_complete(trial_id, None, error=True)
    assert searcher.suggest("t7") == Searcher.FINISHED
    assert "no search trial completed" in searcher.dropped["tuned"]


def test_an_equal_tuning_budget_searches_every_candidates_learning_rate(make_study):
    """comparison.tuning: each candidate gets the same number of search trials, the learning
    rate drawn in [low, high]; a fixed strategy's search has the single objective val/score."""
    spec = parse_spec(make_study(
        candidates=[{"weighting": "equal"}, {"name": "tuned", "weighting": "scalarization", "search": {"trials": 2}}],
        seeds=[0, 1],
        comparison={"tuning": {"trials": 2, "learning_rate": [1e-4, 1e-2]}},
    ))
    plan = [(p.candidate, p.phase) for p in plan_trials(spec)]
    assert plan.count(("equal", "search")) == plan.count(("tuned", "search")) == 2
    assert plan.count(("equal", "evaluation")) == plan.count(("tuned", "evaluation")) == 2
    searcher = StudySearcher(spec)
    configs = [searcher.suggest(f"t{i}") for i in range(4)]
    assert all(1e-4 <= c["learning_rate"] <= 1e-2 for c in configs)
    assert ["sampled" in c for c in configs] == [False, False, True, True]
    assert len(searcher.searches["equal"].study.directions) == 1
    searcher.on_trial_complete("t0", final(0.6))
    searcher.on_trial_complete("t1", final(0.8))
    selected = searcher.suggest("t4")
    assert (selected["candidate"], selected["learning_rate"]) == ("equal", configs[1]["learning_rate"])


def test_stopped_diverged_and_errored_trials_are_not_told_as_complete(spec):
    import optuna

    searcher = StudySearcher(spec)
    for i in range(7):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t4", final(0.8, epoch=1))  # ASHA stopped it after epoch 1 of 2
    searcher.on_trial_complete("t5", final(0.8, epoch=1, diverged=1.0))
    searcher.on_trial_complete("t6", None, error=True)
    states = [t.state for t in searcher.searches["tuned"].study.trials]
    assert states == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.FAIL]
    searcher = StudySearcher(spec)
    for i in range(5):
        searcher.suggest(f"t{i}")
    searcher.on_trial_complete("t4", final(0.8, epoch=1, early_stopped=1.0))  # patience: finished
    assert searcher.searches["tuned"].study.trials[0].values == [0.8, 0.7]


def test_searcher_state_survives_save_and_restore(spec, tmp_path):
    searcher = StudySearcher(spec)
    for i in range(5):
        searcher.suggest(f"t{i}")
    searcher.save(str(tmp_path / "state.pkl"))
    restored = StudySearcher(spec)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("t5")["candidate"] == "tuned"
    assert restored.suggest("t6")["search_index"] == 3
    restored.on_trial_complete("t4", final(0.9))  # asked before the save, told after the restore
    assert restored.searches["tuned"].study.trials[0].values == [0.9, 0.7]


def test_an_rdb_storage_holds_the_search_across_a_restore(make_study, tmp_path):
    """optuna.storage: the search lives in SQLite (what optuna-dashboard reads). A trial asked
    after the searcher's last saved state was never run by the restored Tune run: it is failed,
    not left RUNNING."""
    import optuna

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    spec = parse_spec(make_study(candidates=[{"name": "tuned", "weighting": "scalarization", "search": {"trials": 3}}], optuna={"storage": url}))
    searcher = StudySearcher(spec, parent_run_id="abcdef123456")
    searcher.suggest("t0")
    searcher.on_trial_complete("t0", final(0.9))
    searcher.save(str(tmp_path / "state.pkl"))
    searcher.suggest("t1")  # asked, then the driver died before the next save
    restored = StudySearcher(spec, parent_run_id="abcdef123456")
    restored.restore(str(tmp_path / "state.pkl"))
    study = optuna.load_study(study_name="tiny.tuned.abcdef12", storage=url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]
    assert study.trials[0].values == [0.9, 0.7]
    assert restored.suggest("t1b")["search_index"] == 2
    assert len(optuna.load_study(study_name="tiny.tuned.abcdef12", storage=url).trials) == 3
