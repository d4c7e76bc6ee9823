"""Honest answers in real studies: the single-task baselines are the study's own model for one
task (its layers between encoder and heads included), the trivial predictor is logged and shown,
and a candidate's capacity against the baselines is read back from MLflow."""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow import MlflowClient

from polytask.ops.tracking import trial_runs
from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
TASKS = ("subjectivity", "sentiment")
SHARINGS = {  # the study's sharing: layers between the encoder and the heads a baseline must have too
    "hard": {"name": "hard", "params": {"hidden": [24]}},
    "mmoe": {"name": "mmoe", "params": {"experts": 3, "expert_hidden": [16]}},
}


@pytest.fixture(scope="module", params=sorted(SHARINGS))
def study(request, tmp_path_factory, text_data):
    root = tmp_path_factory.mktemp(f"honest-{request.param}")
    spec = parse_spec(study_dict(
        text_data, name=f"honest-{request.param}", sharing=SHARINGS[request.param],
        candidates=[{"weighting": "equal"}, {"name": "wide", "sharing": {"name": "mmoe", "params": {"experts": 6, "expert_hidden": [48]}}}],
        comparison={"single_task_baselines": True, "baseline_cache": str(root / "baselines")},
    ))
    return request.param, run_study(spec, output=root / "out")


def test_a_baseline_has_the_parameters_each_task_reaches_in_the_study_model(study):
    sharing, result = study
    runs = trial_runs(result.tracking)
    equal = next(r.data.metrics for r in runs if r.data.tags["polytask.candidate"] == "equal")
    for task in TASKS:
        baseline = next(r for r in runs if r.data.tags["polytask.role"] == "baseline" and r.data.tags["polytask.candidate"] == f"single-task-{task}")
        assert baseline.data.tags["polytask.sharing"] == sharing
        assert baseline.data.metrics["cost/params/total"] == equal["cost/params/shared"] + equal[f"cost/params/{task}"]
    table = pd.read_csv(result.output / "comparison.csv").set_index("strategy")
    assert table.loc["equal", "params_vs_single_task"] == pytest.approx(1.0)
    # six experts of 48 units against the study's own layers: more than 25% more parameters per task, and the note says so
    assert table.loc["wide", "params_vs_single_task"] > 1.25 and "part of its Δm may be capacity" in table.loc["wide", "note"]


def test_the_trivial_predictor_is_logged_and_is_a_row_of_the_report(study, text_data):
    _, result = study
    metrics = MlflowClient(result.tracking.uri).get_run(result.tracking.parent_run_id).data.metrics
    for split, prefix in (("validation", "val"), ("test", "test")):
        frame = pd.read_csv(text_data[split])
        for task, column in (("subjectivity", "kind"), ("sentiment", "sentiment")):
            train = pd.read_csv(text_data["train"])[column].dropna()
            majority = train.value_counts().sort_index().idxmax()  # ties: the first class in sorted order, as the encoding
            assert metrics[f"trivial/{prefix}/{task}/accuracy"] == pytest.approx((frame[column].dropna() == majority).mean())
            assert metrics[f"trivial/{prefix}/{task}/roc_auc"] == pytest.approx(0.5)
    table = pd.read_csv(result.output / "comparison.csv").set_index("strategy")
    assert table.loc["trivial", "kind"] == "trivial"
    assert table.loc["trivial", "test/subjectivity/accuracy mean"] == pytest.approx(metrics["trivial/test/subjectivity/accuracy"])
    assert "| trivial | — |" in (result.output / "comparison.md").read_text()
