"""A trial's MLflow run across retries, against a real SQLite store: one run per trial, each
metric point once — also when the store fails for a while (a tracking server restarting)."""

from __future__ import annotations

import os

import pytest
from mlflow import MlflowClient

from polytask.ops.tracking import RETRY_ENV, Tracking, TrialRun, retry_seconds, retrying, transient


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


# --- surviving a tracking server that is down: retry window, buffer, no lost or doubled point ---


class ServerDown(Exception):
    """What MLflow raises when the server cannot be reached (its message, shortened)."""

    def __init__(self) -> None:
        super().__init__("API request to http://127.0.0.1:5000/api/2.0/mlflow/runs/log-batch failed with exception "
                         "HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded (Caused by NewConnectionError: "
                         "Failed to establish a new connection: [Errno 111] Connection refused)")  # fmt: skip


class Clock:
    """A fake monotonic clock that the fake sleep advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def _failing(failures: int, error=ServerDown):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= failures:
            raise error()
        return "ok"

    return call, calls


def test_transient_errors_are_told_from_the_others():
    import sqlite3

    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE

    assert transient(ServerDown())
    assert transient(sqlite3.OperationalError("database is locked"))
    assert transient(MlflowException("too many 503 error responses"))
    assert transient(MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE))
    assert not transient(MlflowException("Run 'abc' not found", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not transient(MlflowException("Invalid value 5029 for parameter 'step'", error_code=INVALID_PARAMETER_VALUE))
    assert not transient(ValueError("bad metric"))


def test_retrying_outlasts_an_outage_with_capped_jittered_back_off():
    clock = Clock()
    call, calls = _failing(12)
    assert retrying(call, window=300, first_delay=0.25, max_delay=10, sleep=clock.sleep, clock=clock) == "ok"
    assert len(calls) == 13 and len(clock.pauses) == 12
    ceilings = [min(0.25 * 2**k, 10) for k in range(12)]  # 0.25, 0.5, ... 8, 10, 10, ...
    assert all(ceiling / 2 <= pause <= ceiling for pause, ceiling in zip(clock.pauses, ceilings)), clock.pauses
    assert max(clock.pauses) <= 10 and 20 < clock.now < 300  # longer than the old ~20 s, within the window


def test_retrying_gives_up_after_its_window_and_at_once_on_other_errors():
    clock = Clock()
    call, calls = _failing(10**6)
    with pytest.raises(ServerDown):
        retrying(call, window=60, sleep=clock.sleep, clock=clock)
    assert clock.now == pytest.approx(60) and len(calls) > 8  # the last pause ends at the deadline, then one more try

    call, calls = _failing(1, error=lambda: ValueError("not transient"))
    with pytest.raises(ValueError):
        retrying(call, sleep=clock.sleep, clock=clock)
    assert len(calls) == 1


def test_the_window_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(RETRY_ENV, "7.5")
    assert retry_seconds() == 7.5
    monkeypatch.delenv(RETRY_ENV)
    assert retry_seconds() == 300


class FlakyClient:
    """Wraps a real MlflowClient; its next ``failures`` log_batch calls fail, either before the
    store is reached (``delivered=False``: the server is down) or after it stored the batch
    (``delivered=True``: the answer was lost)."""

    def __init__(self, real, failures: int, delivered: bool) -> None:
        self.real, self.failures, self.delivered = real, failures, delivered
        self.batches: list[list] = []

    def log_batch(self, run_id, metrics=(), **kwargs):
        self.batches.append(list(metrics))
        if self.failures > 0:
            self.failures -= 1
            if self.delivered:
                self.real.log_batch(run_id, metrics=metrics, **kwargs)
            raise ServerDown()
        return self.real.log_batch(run_id, metrics=metrics, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.parametrize("delivered", [False, True], ids=["server-down", "answer-lost"])
def test_a_trial_run_keeps_its_points_through_failures_and_stores_each_once(tmp_path, monkeypatch, delivered):
    monkeypatch.setattr("polytask.ops.tracking._pause", lambda seconds: None)
    tracking = _study(tmp_path)
    run = _open(tracking, resuming=False)
    flaky = run.mlflow = FlakyClient(run.mlflow, failures=5, delivered=delivered)
    for step in range(1, 401):  # 400 steps x 3 metrics: two batches (1000 + 200 points)
        run.log({"step/loss": 1.0 / step, "step/weight/a": 0.5, "step/weight/b": 0.5}, step)
    assert run.pending == 1200 and run.sent == 0
    run.flush()

    assert run.pending == 0 and run.sent == 1200 and run.retries == 5
    assert [len(b) for b in flaky.batches] == [1000] * 6 + [200]
    assert all(b == flaky.batches[0] for b in flaky.batches[:6])  # the same points, timestamps included, sent again
    history = MlflowClient(tracking.uri).get_metric_history(run.run_id, "step/loss")
    assert [m.step for m in history] == list(range(1, 401))  # none lost, none twice
    run.finish("FINISHED")
    assert MlflowClient(tracking.uri).get_run(run.run_id).info.status == "FINISHED"


def test_a_flush_that_gives_up_keeps_the_points_for_the_next_one(tmp_path, monkeypatch):
    monkeypatch.setattr("polytask.ops.tracking._pause", lambda seconds: None)
    monkeypatch.setenv(RETRY_ENV, "0")
    tracking = _study(tmp_path)
    run = _open(tracking, resuming=False)
    run.mlflow = FlakyClient(run.mlflow, failures=1, delivered=False)
    run.log({"val/a/accuracy": 0.5}, 1)
    with pytest.raises(ServerDown):
        run.flush()
    assert run.pending == 1 and run.sent == 0
    run.log({"val/a/accuracy": 0.6}, 2)
    run.flush()
    assert run.pending == 0 and run.sent == 2
    history = MlflowClient(tracking.uri).get_metric_history(run.run_id, "val/a/accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.6)]


def test_an_http_client_leaves_the_long_retries_to_polytask(monkeypatch):
    from polytask.ops.tracking import HTTP_RETRIES, client

    for key in HTTP_RETRIES:
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)  # restored (removed) after the test
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "3")  # a user's own setting stays
    client("http://127.0.0.1:1")

    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2" and os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "3"


def test_a_member_continuing_an_older_checkpoint_logs_its_new_trajectory(tmp_path, monkeypatch):
    # PBT on a busy machine: this member last reported epoch 3, then continues another member's
    # epoch-2 checkpoint with new weights; its epoch 3 must be logged again, not skipped.
    from polytask.study import trial

    monkeypatch.setattr(trial.tune, "report", lambda metrics, checkpoint=None: None)
    tracking = _study(tmp_path)
    first = _open(tracking, resuming=False)
    for epoch in (1, 2, 3):
        first.log({"epoch": float(epoch), "weight/a": 1.0}, epoch)
    first.flush()
    member = _open(tracking, resuming=True)
    assert member.logged_epoch == 3
    member.rewind(epoch=2, step=20)
    assert (member.logged_epoch, member.logged_step) == (2, 0)  # never forward: its own step count was 0
    reporter = trial.TuneReporter(member, "trial_a")
    reporter.epoch(3, {"epoch": 3.0, "weight/a": 0.5}, state={"epoch": 3})
    reporter.epoch(2, {"epoch": 2.0, "weight/a": 0.5}, state={"epoch": 2})  # at or before the checkpoint: held already
    history = [(m.step, m.value) for m in MlflowClient(tracking.uri).get_metric_history(member.run_id, "weight/a")]
    assert sorted(history) == [(1, 1.0), (2, 1.0), (3, 0.5), (3, 1.0)]  # the abandoned epoch 3 and the new one


def test_configured_weights_read_back_under_one_name_also_from_older_studies(tmp_path):
    from polytask.results.comparison import collect_trials

    tracking = _study(tmp_path)
    TrialRun.open(tracking, "new", "tuned/seed0/trial1", tags={}, params={"weight/a": 0.5}, resuming=False)
    TrialRun.open(tracking, "old", "tuned/seed0/trial2", tags={}, params={"weight.a": 1.5}, resuming=False)  # before schema.task_weight
    frame = collect_trials(tracking).set_index("trial_id")
    assert frame.loc["new", "params.weight/a"] == 0.5 and frame.loc["old", "params.weight/a"] == 1.5
