"""A real study across sharing strategies, with distillation and an auxiliary task: local Ray
runs the teachers and then every candidate through Ray Tune, trials log to an MLflow SQLite
store, and the assertions read MLflow and the report back."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CANDIDATES = [
    {"name": "hard", "weighting": "equal"},
    {"name": "distilled", "weighting": "equal", "distill": True},
    {"name": "mmoe", "weighting": "pcgrad", "sharing": {"name": "mmoe", "params": {"experts": 3, "expert_hidden": [16]}}},
    {"name": "ple", "weighting": "equal", "sharing": {"name": "ple", "params": {"shared_experts": 1, "task_experts": 1, "expert_hidden": [16]}}},
    {"name": "soft", "weighting": "uncertainty", "sharing": {"name": "soft", "params": {"strength": 0.01}}},
    {"name": "cross_stitch", "weighting": "mgda_ub", "sharing": {"name": "cross_stitch"}},
    {"name": "hierarchical", "weighting": "equal", "sharing": {"name": "hierarchical", "params": {"depths": {"subjectivity": 1, "sentiment": 2, "film": 1}}}},
    {"name": "lora", "weighting": "equal", "sharing": {"name": "lora", "params": {"rank": 2}}},
]
TASKS = ["subjectivity", "sentiment", "film"]


@pytest.fixture(scope="module")
def study(tmp_path_factory, text_data):
    """One tiny study: 8 candidates x 1 seed, 3 teachers first; 'film' (does the text say
    "film"?) is an auxiliary task."""
    folder = tmp_path_factory.mktemp("sharing_data")
    files = {}
    for split, path in text_data.items():
        frame = pd.read_csv(path)
        frame["film"] = frame["review"].str.contains(r"\bfilm\b").map({True: "yes", False: "no"})
        files[split] = folder / f"{split}.csv"
        frame.to_csv(files[split], index=False)
    raw = study_dict(files, candidates=CANDIDATES, seeds=[0])
    raw["tasks"].append({"name": "film", "label_column": "film", "auxiliary": True})
    raw["training"].update(epochs=2, steps_per_epoch=5, log_every_steps=5)
    spec = parse_spec(raw)
    result = run_study(spec, output=tmp_path_factory.mktemp("sharing_study") / "out")
    client = MlflowClient(result.tracking.uri)
    runs = client.search_runs([result.tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{result.tracking.parent_run_id}'")
    return spec, result, client, {r.info.run_name: r for r in runs}


def test_every_candidate_and_teacher_finishes_with_one_run(study):
    spec, result, client, runs = study
    assert sorted(runs) == sorted([f"{c['name']}/seed0" for c in CANDIDATES] + [f"teacher-{t}/seed0" for t in TASKS])
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    assert {r.data.tags["polytask.sharing"] for n, r in runs.items() if not n.startswith("teacher")} == {"hard", "mmoe", "ple", "soft", "cross_stitch", "hierarchical", "lora"}
    assert runs["mmoe/seed0"].data.params["sharing.params.experts"] == "3"
    roles = {n: r.data.tags["polytask.role"] for n, r in runs.items()}
    assert roles == {n: ("teacher" if n.startswith("teacher") else "trial") for n in runs}
    parent = client.get_run(result.tracking.parent_run_id)
    assert parent.data.metrics["trials/finished"] == len(CANDIDATES)  # teachers are not candidates


def test_teachers_are_single_task_and_the_student_anneals_towards_gold(study):
    spec, result, client, runs = study
    teacher = runs["teacher-sentiment/seed0"]
    assert "val/sentiment/accuracy" in teacher.data.metrics and "val/subjectivity/accuracy" not in teacher.data.metrics
    assert teacher.data.tags["polytask.sharing"] == "hard"
    history = client.get_metric_history(runs["distilled/seed0"].info.run_id, "step/distillation/gold_weight")
    # lambda = step / total steps (10): logged at steps 5 and 10 before each step's update
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(5, pytest.approx(0.4)), (10, pytest.approx(0.9))]
    assert runs["distilled/seed0"].data.tags["polytask.distilled"] == "true"
    assert client.get_metric_history(runs["hard/seed0"].info.run_id, "step/distillation/gold_weight") == []
    report = (result.output / "comparison.md").read_text()
    assert "## Single-task teachers (distillation)" in report and "teacher-film/seed0" in report


def test_the_auxiliary_task_is_trained_but_not_scored(study):
    spec, result, client, runs = study
    metrics = runs["hard/seed0"].data.metrics
    assert "val/film/accuracy" in metrics  # trained and evaluated
    main = [metrics[f"val/{t}/accuracy"] for t in ("subjectivity", "sentiment")]
    assert metrics["val/score"] == pytest.approx(sum(main) / 2)
    assert result.comparison.primary == ["best/val/subjectivity/accuracy", "best/val/sentiment/accuracy"]
    assert "Auxiliary tasks (trained, not in `val/score`, the search's objectives or the front): film." in (result.output / "comparison.md").read_text()


def test_costs_show_what_each_architecture_shares(study):
    spec, result, client, runs = study
    params = {name.split("/")[0]: {k.removeprefix("cost/params/"): v for k, v in r.data.metrics.items() if k.startswith("cost/params/")} for name, r in runs.items()}
    assert params["soft"]["shared"] == 0 and params["lora"]["shared"] == 0
    assert params["lora"]["frozen"] > 0 and params["lora"]["total"] < params["hard"]["total"]
    heads = sum(params["hard"][t] for t in TASKS)  # under hard sharing a task owns its head only
    assert params["soft"]["total"] == 3 * (params["hard"]["total"] - heads) + heads  # one encoder per task
    for name in ("hard", "mmoe", "ple", "cross_stitch", "hierarchical"):
        assert params[name]["shared"] > 0
        assert params[name]["total"] == params[name]["shared"] + sum(params[name][t] for t in TASKS)
    for run in runs.values():
        assert run.data.metrics["cost/step_time_ms"] > 0 and run.data.metrics["cost/peak_mem_mb"] > 0
    soft_penalty = client.get_metric_history(runs["soft/seed0"].info.run_id, "step/train/regularizer")
    assert soft_penalty and all(m.value >= 0 for m in soft_penalty)
    table = pd.read_csv(result.output / "comparison.csv")
    trained = table[table["kind"] != "trivial"]  # the trivial predictor's row shares nothing
    assert set(trained["sharing"]) == {"hard", "mmoe", "ple", "soft", "cross_stitch", "hierarchical", "lora"}
    assert (trained["cost/params/total mean"] > 0).all()
