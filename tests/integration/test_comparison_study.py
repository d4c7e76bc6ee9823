"""Fair comparisons in real studies: single-task baselines trained once and reused by
fingerprint, tuned candidates selected on validation and evaluated on every seed, an equal
tuning budget, and the report rebuilt from MLflow alone — read back from MLflow and recomputed."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from polytask.ops.tracking import trial_runs
from polytask.schema import task_weight
from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
TASKS = ("subjectivity", "sentiment")


@pytest.fixture(scope="module")
def studies(tmp_path_factory, text_data):
    """Study A trains the baselines; study B (other candidates, an equal tuning budget) reuses them."""
    root = tmp_path_factory.mktemp("comparison")
    comparison = {"single_task_baselines": True, "baseline_cache": str(root / "baselines")}
    first = parse_spec(study_dict(
        text_data, name="first", seeds=[0, 1], comparison=comparison,
        candidates=[{"weighting": "equal"}, {"weighting": "pcgrad"}, {"name": "tuned", "weighting": "scalarization", "search": {"trials": 3}}],
    ))
    second = parse_spec(study_dict(
        text_data, name="second", seeds=[0, 1], comparison={**comparison, "tuning": {"trials": 2, "learning_rate": [1e-3, 1e-2]}, "register_models": True},
        candidates=[{"weighting": "equal"}, {"name": "tuned", "weighting": "scalarization", "search": {"trials": 2}}],
    ))
    return run_study(first, output=root / "first"), run_study(second, output=root / "second"), root


def runs_of(result) -> list:
    return trial_runs(result.tracking)


def test_baselines_are_one_model_per_task_and_seed_then_reused_by_fingerprint(studies):
    first, second, root = studies
    trained = [r for r in runs_of(first) if r.data.tags["polytask.role"] == "baseline"]
    assert sorted(r.info.run_name for r in trained) == sorted(f"single-task-{t}/seed{s}" for t in TASKS for s in (0, 1))
    assert all(r.info.status == "FINISHED" and "polytask.reused_from" not in r.data.tags for r in trained)
    assert len(list((root / "baselines").glob("*.json"))) == 4
    for run in trained:  # each model has its own task's metrics only
        other = next(t for t in TASKS if not run.info.run_name.startswith(f"single-task-{t}/"))
        assert not any(f"/{other}/" in key for key in run.data.metrics)
    reused = {r.info.run_name: r for r in runs_of(second) if r.data.tags["polytask.role"] == "baseline"}
    assert set(reused) == {r.info.run_name for r in trained}
    for run in trained:  # same fingerprint, same numbers, and the new run says where they came from
        twin = reused[run.info.run_name]
        assert twin.data.tags["polytask.fingerprint"] == run.data.tags["polytask.fingerprint"]
        assert twin.data.tags["polytask.reused_from"].startswith(f"first {run.info.run_name}")
        assert {k: v for k, v in twin.data.metrics.items() if k.startswith("best/")} == {k: v for k, v in run.data.metrics.items() if k.startswith("best/")}
    record = json.loads(next((root / "baselines").glob("*.json")).read_text())
    assert record["source"]["study"] == "first" and "best/val/score" in record["metrics"]


def test_a_tuned_candidate_is_selected_on_validation_then_evaluated_on_every_seed(studies):
    first, _, _ = studies
    runs = [r for r in runs_of(first) if r.data.tags.get("polytask.candidate") == "tuned"]
    search = {r.data.tags["polytask.trial_id"]: r for r in runs if r.data.tags["polytask.phase"] == "search"}
    evaluation = [r for r in runs if r.data.tags["polytask.phase"] == "evaluation"]
    assert len(search) == 3 and sorted(r.info.run_name for r in evaluation) == ["tuned/seed0", "tuned/seed1"]
    (best,) = {r.data.tags["polytask.selected_trial"] for r in evaluation}
    assert search[best].data.metrics["best/val/score"] == max(r.data.metrics["best/val/score"] for r in search.values())  # validation only
    for run in evaluation:
        assert {t: run.data.params[task_weight(t)] for t in TASKS} == {t: search[best].data.params[task_weight(t)] for t in TASKS}
        assert run.data.tags["polytask.family"] == "loss" and run.data.params["weighting"] == "scalarization"


def test_an_equal_tuning_budget_searches_every_candidates_learning_rate(studies):
    _, second, _ = studies
    runs = [r for r in runs_of(second) if r.data.tags["polytask.role"] == "trial"]
    for candidate in ("equal", "tuned"):
        search = {r.data.tags["polytask.trial_id"]: r for r in runs if r.data.tags["polytask.candidate"] == candidate and r.data.tags["polytask.phase"] == "search"}
        evaluation = [r for r in runs if r.data.tags["polytask.candidate"] == candidate and r.data.tags["polytask.phase"] == "evaluation"]
        assert len(search) == 2 and len(evaluation) == 2  # the same budget for both
        rates = {k: float(r.data.params["training.learning_rate"]) for k, r in search.items()}
        assert all(1e-3 <= v <= 1e-2 for v in rates.values()) and len(set(rates.values())) == 2
        (best,) = {r.data.tags["polytask.selected_trial"] for r in evaluation}
        assert search[best].data.metrics["best/val/score"] == max(r.data.metrics["best/val/score"] for r in search.values())
        assert {float(r.data.params["training.learning_rate"]) for r in evaluation} == {rates[best]}


def test_the_report_numbers_are_recomputed_from_mlflow(studies):
    """Δm per task for `equal`, recomputed here from the runs' test metrics and the baselines'."""
    first, _, _ = studies
    table = pd.read_csv(first.output / "comparison.csv").set_index("strategy")
    runs = runs_of(first)

    def test_means(predicate, task):
        return {m: np.mean([r.data.metrics[f"test/{task}/{m}"] for r in runs if predicate(r)]) for m in ("accuracy", "macro_f1", "roc_auc")}

    changes = []
    for task in TASKS:
        ours = test_means(lambda r: r.data.tags["polytask.candidate"] == "equal", task)
        single = test_means(lambda r: r.data.tags["polytask.candidate"] == f"single-task-{task}", task)
        changes.append(np.mean([(ours[m] - single[m]) / abs(single[m]) * 100 for m in ours if single[m] != 0]))
    assert table.loc["equal", "delta_m_per_task"] == pytest.approx(np.mean(changes))
    assert table.loc["single-task", "delta_m_per_task"] == pytest.approx(0.0)
    assert table.loc["tuned", "seeds"] == 2 and not math.isnan(table.loc["equal", "p_vs_tuned"])
    assert table.loc["equal", "mean_rank"] >= 1 and table.loc["tuned", "hv_gain"] >= 0
    for name in ("comparison.md", "comparison.html", "front.png", "tasks.png", "weights.png", "cost.png"):
        assert (first.output / name).stat().st_size > 0, name
    html = (first.output / "comparison.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "Δm% (per task)" in html
    listed = {a.path for a in MlflowClient(first.tracking.uri).list_artifacts(first.tracking.parent_run_id, "report")}
    assert {"report/comparison.html", "report/front.png", "report/weights.png"} <= listed


def test_polytask_report_rebuilds_from_an_mlflow_experiment_alone(studies, tmp_path, monkeypatch):
    first, _, _ = studies
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    command = [sys.executable, "-m", "polytask", "report", "--experiment", "first", "--tracking-uri", first.tracking.uri, "--to", str(tmp_path / "again")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    original = pd.read_csv(first.output / "comparison.csv").set_index("strategy")
    rebuilt = pd.read_csv(tmp_path / "again" / "comparison.csv").set_index("strategy")
    pd.testing.assert_frame_equal(rebuilt, original)
    assert "Δm%" in done.stdout
    missing = subprocess.run([*command[:5], "nope", *command[6:]], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no experiment 'nope'" in missing.stderr and "first" in missing.stderr


def test_each_strategys_best_model_is_registered(studies):
    """register_models: the finished (not search) run with the best validation score of each
    strategy becomes a version of <study>.<strategy>, its model/ artifact the trained parameters."""
    import torch

    _, second, _ = studies
    client = MlflowClient(second.tracking.uri)
    runs = [r for r in runs_of(second) if r.data.tags["polytask.role"] == "trial" and r.data.tags["polytask.phase"] == "evaluation"]
    for strategy in ("equal", "tuned"):
        (version,) = client.search_model_versions(f"name = 'second.{strategy}'")
        mine = [r for r in runs if r.data.tags["polytask.candidate"] == strategy]
        best = max(mine, key=lambda r: r.data.metrics["best/val/score"])
        assert version.run_id == best.info.run_id and version.tags["polytask.seed"] == best.data.tags["polytask.seed"]
        state = torch.load(client.download_artifacts(version.run_id, "model/model.pt"), weights_only=True)
        assert any(name.startswith("heads.") for name in state) and all(isinstance(t, torch.Tensor) for t in state.values())
    assert not client.search_registered_models("name = 'first.equal'")  # only where the spec asks for it
