"""Real studies: a local Ray runs every trial through Ray Tune with OptunaSearch choosing the
tuned weights, trials log to an MLflow SQLite store, and the assertions read MLflow back."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from polytask.ops.tracking import Tracking
from polytask.schema import sampled_key, task_weight
from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CANDIDATES = [
    {"weighting": "equal"},
    {"weighting": "uncertainty"},
    {"weighting": "pcgrad"},
    {"weighting": "mgda_ub"},
    {"name": "tuned", "weighting": "scalarization", "search": {"trials": 3, "low": 0.2, "high": 5.0}},
]


@pytest.fixture(scope="module")
def study(tmp_path_factory, text_data, tiny_pretrained):
    """One tiny study, run once for the module: 4 candidates x 2 seeds + 3 Optuna trials, on a
    'pretrained' encoder with its frozen layers cached."""
    raw = study_dict(text_data, candidates=CANDIDATES, seeds=[0, 1])
    raw["encoder"] = {"kind": "pretrained", "name": str(tiny_pretrained), "trainable_layers": 1, "max_length": 32}
    spec = parse_spec(raw)
    output = tmp_path_factory.mktemp("study") / "out"
    result = run_study(spec, output=output)
    return spec, result


def nested_runs(tracking: Tracking):
    client = MlflowClient(tracking.uri)
    return client, client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")


def test_mlflow_has_one_parent_and_one_nested_run_per_trial(study):
    spec, result = study
    client, runs = nested_runs(result.tracking)
    assert sorted(r.info.run_name for r in runs) == sorted(
        [f"{c}/seed{s}" for c in ("equal", "uncertainty", "pcgrad", "mgda_ub") for s in (0, 1)]
        + ["tuned/seed0/trial1", "tuned/seed1/trial2", "tuned/seed0/trial3", "tuned/seed0", "tuned/seed1"]
    )
    assert {r.info.status for r in runs} == {"FINISHED"}
    parents = client.search_runs([result.tracking.experiment_id], filter_string="tags.`polytask.kind` = 'study'")
    assert [p.info.run_id for p in parents] == [result.tracking.parent_run_id]
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["trials/finished"] == 13
    for run in runs:
        tags = run.data.tags
        assert tags["polytask.study"] == "tiny"
        assert tags["polytask.strategy"] in ("equal", "uncertainty", "pcgrad", "mgda_ub", "scalarization")
        assert run.info.run_name.startswith(f"{tags['polytask.candidate']}/seed{tags['polytask.seed']}")


def test_every_validation_metric_has_a_per_epoch_history(study):
    spec, result = study
    client, runs = nested_runs(result.tracking)
    for run in runs:
        for task in spec.task_names:
            for metric in ("accuracy", "macro_f1", "loss"):
                history = client.get_metric_history(run.info.run_id, f"val/{task}/{metric}")
                assert [m.step for m in history] == [1, 2]
        weights = client.get_metric_history(run.info.run_id, "step/weight/sentiment")
        assert [m.step for m in weights] == [10]  # 12 steps, a point every 10
        passes = client.get_metric_history(run.info.run_id, "step/cost/backward_passes")
        expected = {"pcgrad": 2, "mgda_ub": 1}.get(run.data.tags["polytask.strategy"], 1)
        assert [(m.step, m.value) for m in passes] == [(10, expected)]
        assert "cost/step_time_ms" in run.data.metrics and "test/sentiment/accuracy" in run.data.metrics


def test_optuna_weights_are_logged_and_normalised(study):
    _, result = study
    _, runs = nested_runs(result.tracking)
    tuned = [r for r in runs if r.data.tags["polytask.candidate"] == "tuned" and r.data.tags["polytask.phase"] == "search"]
    assert len(tuned) == 3
    weights = {tuple(round(float(r.data.params[task_weight(t)]), 6) for t in ("subjectivity", "sentiment")) for r in tuned}
    assert len(weights) == 3  # three different proposals
    for pair in weights:
        assert sum(pair) == pytest.approx(2.0, abs=1e-5)
    for run in tuned:
        sampled = [float(run.data.params[sampled_key(task_weight(t))]) for t in ("subjectivity", "sentiment")]
        assert all(0.2 <= v <= 5.0 for v in sampled)
        assert run.data.metrics[task_weight("sentiment")] == pytest.approx(float(run.data.params[task_weight("sentiment")]))


def test_the_printed_table_agrees_with_mlflow(study, monkeypatch):
    spec, result = study
    import mlflow

    # set_tracking_uri also sets MLFLOW_TRACKING_URI, which `polytask run` subprocesses of later
    # tests would inherit (it is what --tracking-uri defaults to): undo it after this test
    monkeypatch.setenv("MLFLOW_TRACKING_URI", result.tracking.uri)
    mlflow.set_tracking_uri(result.tracking.uri)
    runs = mlflow.search_runs(experiment_ids=[result.tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{result.tracking.parent_run_id}'")
    table = pd.read_csv(result.output / "comparison.csv").set_index("strategy")
    runs = runs[runs["tags.polytask.phase"] != "search"]  # a tuned row is its evaluation trials
    for candidate in ("equal", "uncertainty", "pcgrad", "tuned"):
        mine = runs[runs["tags.polytask.candidate"] == candidate]
        assert table.loc[candidate, "seeds"] == len(mine) == 2
        for column in ("best/val/subjectivity/accuracy", "best/val/sentiment/accuracy", "best/val/score", "test/sentiment/accuracy"):
            assert table.loc[candidate, f"{column} mean"] == pytest.approx(mine[f"metrics.{column}"].mean())
            assert table.loc[candidate, f"{column} std"] == pytest.approx(mine[f"metrics.{column}"].std())
    assert table["best"].sum() == 1
    assert table.loc[table["best"], "best/val/score mean"].item() == table["best/val/score mean"].max()


def test_report_files_and_artifacts(study):
    _, result = study
    output = result.output
    for name in ("comparison.md", "comparison.html", "comparison.csv", "trials.csv", "front.png", "tasks.png", "weights.png", "cost.png", "study.json", "spec.yaml"):
        assert (output / name).is_file(), name
    assert "★" in (output / "comparison.md").read_text()
    client = MlflowClient(result.tracking.uri)
    listed = {a.path for a in client.list_artifacts(result.tracking.parent_run_id, "report")}
    assert listed == {f"report/{name}" for name in ("comparison.md", "comparison.html", "comparison.csv", "trials.csv", "front.png", "tasks.png", "weights.png", "cost.png")}
    assert any(a.path == "spec.yaml" for a in client.list_artifacts(result.tracking.parent_run_id))


def test_report_command_rebuilds_the_table_from_mlflow_alone(study, tmp_path):
    _, result = study
    copy = tmp_path / "copy"
    shutil.copytree(result.output, copy, ignore=shutil.ignore_patterns("comparison.*", "trials.csv", "*.png", "tune"))
    completed = subprocess.run([sys.executable, "-m", "polytask", "report", str(copy)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    before = pd.read_csv(result.output / "comparison.csv")
    after = pd.read_csv(copy / "comparison.csv")
    pd.testing.assert_frame_equal(before, after)


def test_a_rerun_into_the_same_output_is_refused(study):
    spec, result = study
    from polytask.errors import StudyError

    with pytest.raises(StudyError, match="already holds the results of a study; pass --overwrite"):
        run_study(spec, output=result.output)


def test_failing_trials_are_recorded_with_their_reason_and_the_study_ends(tmp_path, text_data, tiny_pretrained):
    """Weights missing from the encoder folder: the driver (tokenizer only) starts the study,
    every trial fails, is retried once by Tune, and ends FAILED in MLflow with the error."""
    broken = tmp_path / "broken_encoder"
    shutil.copytree(tiny_pretrained, broken)
    (broken / "model.safetensors").unlink()
    raw = study_dict(text_data, candidates=[{"weighting": "equal"}, {"weighting": "pcgrad"}])
    raw["encoder"] = {"kind": "pretrained", "name": str(broken), "trainable_layers": 1, "cache_frozen_layers": False, "max_length": 32}
    raw["execution"] = {"max_retries": 1}
    spec_path = tmp_path / "broken.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    completed = subprocess.run(
        [sys.executable, "-m", "polytask", "run", str(spec_path), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "failed equal/seed0" in completed.stdout and "failed pcgrad/seed0" in completed.stdout
    assert "retrying equal/seed0" in completed.stdout
    tracking = Tracking.load(tmp_path / "out")
    client, runs = nested_runs(tracking)
    assert sorted(r.info.run_name for r in runs) == ["equal/seed0", "pcgrad/seed0"]  # a retry reuses its run
    for run in runs:
        assert run.info.status == "FAILED"
        assert "model.safetensors" in run.data.tags["polytask.reason"] or "no file named" in run.data.tags["polytask.reason"].lower()
    assert client.get_run(tracking.parent_run_id).info.status == "FAILED"
    assert "## Trials that did not finish" in (tmp_path / "out" / "comparison.md").read_text()


def test_ui_command_serves_the_study(study):
    """`polytask ui` starts a real MLflow UI on 127.0.0.1 that lists the study's runs, and says
    it is ready only once the server answers."""
    import json
    import socket
    import urllib.request

    from polytask.ops.server import answers, free_port

    _, result = study
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "polytask", "ui", str(result.output), "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = [process.stdout.readline()]
        assert lines[0].startswith(f"Starting the MLflow UI on http://127.0.0.1:{port}"), lines
        while not lines[-1].startswith("MLflow UI ready"):  # the module's timeout ends a server that never comes up
            lines.append(process.stdout.readline())
            assert lines[-1] or process.poll() is None, "".join(lines)
        assert answers(f"http://127.0.0.1:{port}/health")  # "ready" means it answers now
        assert f"http://127.0.0.1:{port}/#/experiments/{result.tracking.experiment_id}/runs" in lines[-1]
        body = json.dumps({"experiment_ids": [result.tracking.experiment_id], "max_results": 100}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            runs = json.load(response)["runs"]
        assert len(runs) == 14  # the parent and its thirteen trials
    finally:
        process.terminate()
        process.wait(timeout=60)
    with socket.socket() as probe:  # stopping the command stopped the server it started
        assert probe.connect_ex(("127.0.0.1", port)) != 0
