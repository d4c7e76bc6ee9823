"""A trial's MLflow run across retries, against a real SQLite store: one run per trial, each
metric point once."""

from __future__ import annotations

from mlflow import MlflowClient

from polytask.tracking import Tracking, TrialRun


def _study(tmp_path) -> Tracking:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("retries", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="study")
    return Tracking(uri=uri, experiment_id=experiment, parent_run_id=parent.info.run_id, study="retries")


def _open(tracking: Tracking, resuming: bool) -> TrialRun:
    return TrialRun.open(tracking, "trial_a", "equal/seed0", tags={}, params={"seed": 0}, resuming=resuming)


def _trial_runs(tracking: Tracking):
    return MlflowClient(tracking.uri).search_runs(
        [tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'"
    )


def test_a_retry_from_a_checkpoint_continues_the_same_run(tmp_path):
    tracking = _study(tmp_path)
    first = _open(tracking, resuming=False)
    first.log({"epoch": 1.0}, 1)
    first.flush()
    second = _open(tracking, resuming=True)
    second.log({"epoch": 2.0}, 2)
    second.finish("FINISHED")

    assert second.run_id == first.run_id
    runs = _trial_runs(tracking)
    assert [r.info.status for r in runs] == ["FINISHED"]
    history = MlflowClient(tracking.uri).get_metric_history(first.run_id, "epoch")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0)]


def test_a_retry_from_scratch_replaces_the_abandoned_run(tmp_path):
    tracking = _study(tmp_path)
    first = _open(tracking, resuming=False)
    first.log({"epoch": 1.0}, 1)
    first.flush()
    second = _open(tracking, resuming=False)  # no checkpoint: epoch 1 is trained and logged again
    second.log({"epoch": 1.0}, 1)
    second.finish("FINISHED")

    assert second.run_id != first.run_id
    runs = _trial_runs(tracking)
    assert [r.info.run_id for r in runs] == [second.run_id]
    history = MlflowClient(tracking.uri).get_metric_history(second.run_id, "epoch")
    assert [(m.step, m.value) for m in history] == [(1, 1.0)]
    abandoned = MlflowClient(tracking.uri).get_run(first.run_id)
    assert abandoned.info.lifecycle_stage == "deleted"
    assert abandoned.data.tags["polytask.outcome"] == "restarted"
