"""The task-weight search kept in PostgreSQL (`optuna.storage: postgresql://...`), the server
started from the Debian packages for the test: a real study's Optuna trials are there, each
complete with both objectives and tied to its Tune trial and MLflow run."""

from __future__ import annotations

import io

import optuna
import pytest
from mlflow import MlflowClient
from rich.console import Console

from polytask.schema import sampled_key, task_weight
from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.postgres import postgres_server
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_the_weight_search_lives_in_postgresql(tmp_path, text_data):
    with postgres_server() as url:
        raw = study_dict(text_data, candidates=[{"name": "tuned", "weighting": "scalarization", "search": {"trials": 3}}], optuna={"storage": url})
        result = run_study(parse_spec(raw), output=tmp_path / "out", console=Console(file=io.StringIO(), width=160))

        tracking = result.tracking
        study = optuna.load_study(study_name=f"tiny.tuned.{tracking.parent_run_id[:8]}", storage=url)
        assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
        runs = MlflowClient(tracking.uri).search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
        by_trial = {r.data.tags["polytask.trial_id"]: r for r in runs}
        for trial in study.trials:
            run = by_trial[trial.user_attrs["tune_trial_id"]]
            assert trial.values == [run.data.metrics["best/val/subjectivity/accuracy"], run.data.metrics["best/val/sentiment/accuracy"]]
            assert {t: float(run.data.params[sampled_key(task_weight(t))]) for t in ("subjectivity", "sentiment")} == pytest.approx(trial.params)
