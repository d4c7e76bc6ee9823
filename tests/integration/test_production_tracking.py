"""The production tracking recipe, for real: `polytask server`'s MLflow with a PostgreSQL backend
(the Debian packages, started by the test) and an S3-compatible artifact store (moto's server,
standing in for the bucket), both given through the environment as the Kubernetes Deployment
gives them. A study logs over HTTP; its runs land in PostgreSQL and its report in the bucket."""

from __future__ import annotations

import io

import pytest
import sqlalchemy
from mlflow import MlflowClient
from rich.console import Console

from polytask.ops.server import TrackingServer
from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.postgres import postgres_server
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_a_study_logs_to_mlflow_on_postgresql_with_artifacts_in_s3(tmp_path, text_data, s3_bucket, monkeypatch):
    s3_bucket.create_bucket(Bucket="mlflow-artifacts")
    with postgres_server(database="mlflow") as url:
        monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", url)
        monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", "s3://mlflow-artifacts")
        with TrackingServer(port=0, folder=tmp_path / "server") as server:
            raw = study_dict(text_data, candidates=[{"weighting": "equal"}, {"weighting": "pcgrad"}], tracking={"uri": server.uri})
            result = run_study(parse_spec(raw), output=tmp_path / "out", console=Console(file=io.StringIO(), width=160))

            tracking = result.tracking
            client = MlflowClient(server.uri)
            runs = client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
            assert sorted(r.info.run_name for r in runs) == ["equal/seed0", "pcgrad/seed0"]
            assert {r.info.status for r in runs} == {"FINISHED"}
            assert client.get_run(tracking.parent_run_id).info.status == "FINISHED"

        # the runs are rows in PostgreSQL, the report is objects in the bucket
        with sqlalchemy.create_engine(url).connect() as db:
            names = {row[0] for row in db.execute(sqlalchemy.text("select name from runs"))}
        assert {"equal/seed0", "pcgrad/seed0", "tiny"} <= names
        keys = [o["Key"] for o in s3_bucket.list_objects_v2(Bucket="mlflow-artifacts")["Contents"]]
        assert any(k.endswith("report/comparison.md") for k in keys), keys
