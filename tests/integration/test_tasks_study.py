"""Real studies over every task type and over one dataset per task: local Ray runs the trials
through Ray Tune, they log to an MLflow SQLite store, and the assertions read MLflow back."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from polytask.data.sampling import shares, whole_counts
from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.unit.test_task_data import all_types_study, per_task_study

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

POLICIES = ["proportional", "temperature", "annealed", "round_robin", "all"]
EPOCHS, STEPS = 3, 8


def finished_runs(result) -> dict:
    client = MlflowClient(result.tracking.uri)
    runs = client.search_runs([result.tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{result.tracking.parent_run_id}'")
    return client, {r.info.run_name: r for r in runs}


@pytest.fixture(scope="module")
def sampling_study(tmp_path_factory):
    """Sentiment and topic from two datasets (90 and 30 rows), one candidate per policy."""
    raw = per_task_study(tmp_path_factory.mktemp("per_task_data"))
    raw["candidates"] = [{"name": p, "weighting": "equal", "sampling": {"policy": p}} for p in POLICIES]
    raw["training"] = {"epochs": EPOCHS, "steps_per_epoch": STEPS, "batch_size": 8, "learning_rate": 3e-3, "log_every_steps": 4}
    spec = parse_spec(raw)
    result = run_study(spec, output=tmp_path_factory.mktemp("per_task_study") / "out")
    return spec, result, *finished_runs(result)


def test_every_policy_trains_and_scores_each_task_on_its_own_dataset(sampling_study):
    spec, result, client, runs = sampling_study
    assert sorted(runs) == sorted(f"{p}/seed0" for p in POLICIES)
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    for policy in POLICIES:
        run = runs[f"{policy}/seed0"]
        assert run.data.tags["polytask.sampling"] == policy and run.data.params["sampling.policy"] == policy
        metrics = run.data.metrics
        assert {"val/sentiment/accuracy", "val/topic/accuracy", "test/sentiment/accuracy", "test/topic/accuracy"} <= set(metrics)


def test_per_task_batch_counts_per_epoch_match_the_policy(sampling_study):
    spec, result, client, runs = sampling_study
    sizes = [72 - 18, 30 - 12]  # rows of each dataset's train split: 90 and 30, less 20% validation and 20% test
    for policy in POLICIES:
        run_id = runs[f"{policy}/seed0"].info.run_id
        counts = {task: [int(m.value) for m in sorted(client.get_metric_history(run_id, f"train/{task}/batches"), key=lambda m: m.step)] for task in ("sentiment", "topic")}
        for epoch in range(EPOCHS):
            observed = [counts["sentiment"][epoch], counts["topic"][epoch]]
            if policy == "all":
                expected = [STEPS, STEPS]
            elif policy == "round_robin":
                expected = np.bincount((epoch * STEPS + np.arange(STEPS)) % 2, minlength=2).tolist()
            else:
                expected = whole_counts(shares(spec.sampling_of(policy), sizes, epoch, EPOCHS), STEPS).tolist()
            assert observed == expected, (policy, epoch)
    # the policies differ where they should: proportional favours the larger dataset, annealing moves towards uniform
    first = lambda p: int(client.get_metric_history(runs[f"{p}/seed0"].info.run_id, "train/topic/batches")[0].value)
    assert first("proportional") == 2 and first("temperature") == 3 and first("round_robin") == 4


@pytest.fixture(scope="module")
def types_study(tmp_path_factory):
    """One dataset, four task types, two sharing strategies (MMoE mixes token states too) and a
    gradient aggregator."""
    raw = all_types_study(tmp_path_factory.mktemp("types_data"))
    raw["candidates"] = [
        {"name": "equal", "weighting": "equal"},
        {"name": "mmoe-mgda", "weighting": "mgda_ub", "sharing": {"name": "mmoe", "params": {"experts": 2, "expert_hidden": [16]}}},
    ]
    raw["training"] = {"epochs": 2, "steps_per_epoch": 6, "batch_size": 16, "learning_rate": 3e-3}
    raw["data"]["split"] = {"test": 0.2}
    spec = parse_spec(raw)
    result = run_study(spec, output=tmp_path_factory.mktemp("types_study") / "out")
    return spec, result, *finished_runs(result)


def test_every_task_type_is_trained_and_scored_with_its_metrics(types_study):
    spec, result, client, runs = types_study
    assert {r.info.status for r in runs.values()} == {"FINISHED"} and len(runs) == 2
    for run in runs.values():
        metrics = run.data.metrics
        for name in ("entities/f1", "entities/precision", "entities/recall", "topics/micro_f1", "topics/map", "score/mae", "score/rmse", "sentiment/accuracy"):
            assert f"val/{name}" in metrics and f"test/{name}" in metrics, name
            assert np.isfinite(metrics[f"val/{name}"])
        assert 0 <= metrics["val/entities/f1"] <= 1 and metrics["val/score/mae"] >= 0
    # val/score averages the primary metrics, the MAE negated (lower is better) and in target
    # standard deviations (logged as a param), so that units do not weigh
    run, std = runs["equal/seed0"].data.metrics, float(runs["equal/seed0"].data.params["target.score.std"])
    expected = np.mean([run["val/entities/f1"], run["val/topics/micro_f1"], -run["val/score/mae"] / std, run["val/sentiment/accuracy"]])
    assert run["val/score"] == pytest.approx(expected)
    report = (result.output / "comparison.md").read_text()
    assert "| score mae |" in report and "| entities f1 |" in report
