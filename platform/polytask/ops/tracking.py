"""MLflow: one parent run per study, one nested run per trial, metrics logged in batches.

The driver opens the experiment and the parent run; each trial opens (or, when Tune retries it
from a checkpoint, re-opens) its own nested run, found by the tag ``polytask.trial_id``, so a
retried trial keeps one run instead of leaving a dead one behind.

Every call to the store goes through :func:`retrying`: a SQLite store shared by concurrent trials
answers "database is locked" now and then, and a tracking server may restart (``mlflow server``
takes ~10 s to come back, more on a loaded machine). A transient failure is retried with capped
exponential back-off and jitter for up to ``POLYTASK_TRACKING_RETRY_SECONDS`` (300 s by default)
from the first attempt; then, or at once for any other error, the error is raised. Over HTTP each
attempt is one MLflow client call, which itself retries a refused connection: MLflow's default
(7 retries, pauses 0, 4, 8, ... 120 s: ~4 min) would notice a server that is back only up to a
minute or two later, so :func:`client` sets ``MLFLOW_HTTP_REQUEST_MAX_RETRIES=2`` and
``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=1`` (pauses 0, 2 s) in this process's environment unless
they are set already, and this module's loop, whose pauses stop growing at 10 s, does the rest.

A trial's metric points wait in :class:`TrialRun`'s buffer until a batch is acknowledged; a
failed batch stays buffered and is sent again, whole, with the same points. Sending it again
cannot duplicate a point that already arrived (the request reached the server but its answer
was lost): each point carries the timestamp it was given when it was logged, and MLflow's SQL
stores (SQLite, PostgreSQL, MySQL; directly or behind ``mlflow server``) key a point by (run,
key, step, timestamp, value) and skip one they already hold. MLflow's file store (``./mlruns``)
does not (polytask's default store is SQLite). ``TrialRun.sent`` counts the points acknowledged.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from polytask.schema import COMPLETED, DUPLICATE, KIND_TAG, LOST, OUTCOME, RESTARTED, SPEC_FILE, STUDY_FILE, STUDY_TAG, TRIAL_ID_TAG, step_key, tag
from polytask.spec import StudySpec

T = TypeVar("T")
PARAM_BATCH = 100  # MLflow's limit of params per log_batch call
METRIC_BATCH = 1000  # and of metrics


@dataclass(frozen=True)
class Tracking:
    """Where a study's runs live; saved as ``study.json`` in the output folder."""

    uri: str
    experiment_id: str
    parent_run_id: str
    study: str
    tune_path: str = ""  # Ray Tune's experiment folder or URI (what `polytask resume` restores)

    def save(self, output: Path) -> None:
        (output / STUDY_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, output: Path) -> Tracking:
        return cls(**json.loads((output / STUDY_FILE).read_text()))


def default_uri(output: Path) -> str:
    return f"sqlite:///{output / 'mlflow.db'}"


HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}  # module notes


def client(uri: str):
    from mlflow import MlflowClient

    if uri.startswith(("http:", "https:")):
        for key, value in HTTP_RETRIES.items():
            os.environ.setdefault(key, value)  # MLflow reads them at each request
    return MlflowClient(tracking_uri=uri)


RETRY_ENV = "POLYTASK_TRACKING_RETRY_SECONDS"
RETRY_SECONDS = 300.0  # how long a write is retried from its first attempt (a server restart, a long lock)
FIRST_DELAY = 0.25  # seconds before the first retry; doubled after each failure...
MAX_DELAY = 10.0  # ...up to this, so a server that is back is found within ~10 s
TRANSIENT = (
    "is locked",  # SQLite shared by concurrent writers
    "connection refused", "connection reset", "connection aborted", "remotedisconnected", "max retries exceeded",
    "failed to establish a new connection", "timed out", "temporarily_unavailable", "server closed the connection",
    "bad gateway", "service unavailable", "gateway timeout", "too many requests",
)  # fmt: skip
TRANSIENT_STATUS = re.compile(r"\b(429|502|503|504)\b")  # HTTP statuses a restarting server or a proxy in front of it answers


def retry_seconds() -> float:
    """The retry window: ``POLYTASK_TRACKING_RETRY_SECONDS``, else 300 s. Read at each call, in
    the process that writes: trials on a local Ray inherit the driver's environment; on a cluster
    set it on the nodes (or in the job's ``runtime_env``)."""
    value = os.environ.get(RETRY_ENV, "").strip()
    return float(value) if value else RETRY_SECONDS


def transient(exc: BaseException) -> bool:
    """Whether a store error may pass if the call is made again: a locked SQLite database, a
    tracking server that cannot be reached or answers 429/502/503/504. MLflow wraps these in
    several types (``MlflowException``, ``requests`` and ``sqlalchemy`` errors), so the type's
    name and the message are read."""
    if "Connection" in type(exc).__name__ or "Timeout" in type(exc).__name__:
        return True
    if getattr(exc, "error_code", None) in ("TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"):
        return True
    text = str(exc).lower()
    return any(marker in text for marker in TRANSIENT) or TRANSIENT_STATUS.search(text) is not None


def retrying(
    call: Callable[[], T],
    window: float | None = None,
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
    on_retry: Callable[[BaseException, float], None] | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``call()``, made again after each transient failure (:func:`transient`) until it succeeds
    or ``window`` seconds (default :func:`retry_seconds`) have passed since the first attempt;
    then the last error is raised (an attempt under way at the deadline is waited for). Any
    other error is raised at once. The pause between attempts doubles from ``first_delay`` up to
    ``max_delay``, each drawn between half and all of that ("equal jitter"), so trials that lost
    the server together do not come back in lockstep. ``on_retry(error, pause)`` is told of
    each retry."""
    delay, deadline = first_delay, clock() + (retry_seconds() if window is None else window)
    while True:
        try:
            return call()
        except Exception as exc:
            now = clock()
            if not transient(exc) or now >= deadline:
                raise
            pause = min(random.uniform(delay / 2, delay), max(deadline - now, 0.0))
            if on_retry is not None:
                on_retry(exc, pause)
            (sleep or _pause)(pause)
            delay = min(delay * 2, max_delay)


def _pause(seconds: float) -> None:
    """How :func:`retrying` waits by default (a test replaces it)."""
    time.sleep(seconds)


def start_study(spec: StudySpec, output: Path) -> Tracking:
    """Create (or reuse) the experiment and open the study's parent run."""
    uri = spec.tracking.uri or default_uri(output)
    mlflow = client(uri)
    name = spec.tracking.experiment or spec.name
    experiment = retrying(lambda: mlflow.get_experiment_by_name(name))
    if experiment is None:
        artifacts = (output / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite:") else None
        experiment_id = retrying(lambda: mlflow.create_experiment(name, artifact_location=artifacts))
    else:
        experiment_id = experiment.experiment_id
    run = retrying(lambda: mlflow.create_run(experiment_id, run_name=spec.name, tags={tag(STUDY_TAG): spec.name, tag(KIND_TAG): "study"}))
    params = {
        "tasks": ",".join(spec.task_names),
        "candidates": ",".join(c.label for c in spec.candidates),
        "seeds": ",".join(map(str, spec.seeds)),
        "encoder": getattr(spec.encoder, "name", spec.encoder.kind),
        "sharing": ",".join(dict.fromkeys(spec.sharing_of(c.label).name for c in spec.candidates)),
    }
    log_params(mlflow, run.info.run_id, params)
    retrying(lambda: mlflow.log_text(run.info.run_id, spec.to_yaml(), SPEC_FILE))
    return Tracking(uri=uri, experiment_id=experiment_id, parent_run_id=run.info.run_id, study=spec.name)


def log_study_metrics(tracking: Tracking, values: dict[str, float]) -> None:
    """Metrics of the whole study on its parent run, as one batch with one timestamp (so a batch
    resent after an outage is stored once)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(key, float(value), now, 0) for key, value in values.items() if math.isfinite(float(value))]
    for start in range(0, len(metrics), METRIC_BATCH):
        retrying(lambda: client(tracking.uri).log_batch(tracking.parent_run_id, metrics=metrics[start : start + METRIC_BATCH]))


def end_study(tracking: Tracking, status: str, **counts: int) -> None:
    """End the study's parent run with ``status``; ``counts`` become its ``trials/<key>`` metrics."""
    log_study_metrics(tracking, {f"trials/{key}": value for key, value in counts.items()})
    retrying(lambda: client(tracking.uri).set_terminated(tracking.parent_run_id, status=status))


def reopen(tracking: Tracking) -> None:
    """The parent run of a study being resumed is running again."""
    retrying(lambda: client(tracking.uri).update_run(tracking.parent_run_id, status="RUNNING"))


def log_params(mlflow, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), PARAM_BATCH):
        retrying(lambda: mlflow.log_batch(run_id, params=items[start : start + PARAM_BATCH]))


class TrialRun:
    """The nested MLflow run of one Tune trial. Metrics are buffered and sent in batches of up
    to 1000 points by :meth:`flush`; a batch leaves the buffer only once the store acknowledged
    it, so a tracking server that is down (for up to the retry window, see :func:`retrying`)
    delays the trial but loses no point, and a batch sent again duplicates none (module notes).

    ``logged_epoch`` / ``logged_step``: the last epoch and training step the run holds points of
    (0 for a new run). ``completed``: for a run that already FINISHED as completed, its final
    metrics; None otherwise. ``sent``: the points this object had acknowledged; ``retries``: the
    transient failures its writes met (each followed by a retry).
    """

    def __init__(self, tracking: Tracking, run_id: str, logged: dict[str, float] | None = None, completed: bool = False) -> None:
        self.run_id = run_id
        self.mlflow = client(tracking.uri)
        self._buffer: list[Any] = []
        self.sent = 0
        self.retries = 0
        logged = logged or {}
        self.logged_epoch = int(logged.get("epoch", 0))
        self.logged_step = int(logged.get("global_step", 0))
        self.completed = {k: v for k, v in logged.items() if not k.startswith(step_key(""))} if completed else None

    @classmethod
    def open(
        cls, tracking: Tracking, trial_id: str, run_name: str, tags: dict[str, str], params: dict[str, Any], resuming: bool
    ) -> TrialRun:
        """The trial's run: continued when ``resuming`` from a checkpoint, otherwise a new one.

        A retry that starts from scratch (its worker died before Tune registered any checkpoint)
        would log its first epochs a second time into the old run; instead the abandoned attempt
        is deleted (restorable from MLflow's trash) so each trial keeps one run with each point once.
        A ``create_run`` whose reply is lost is sent again (by MLflow's HTTP retries or
        :func:`retrying`) and the store may then hold two runs for the trial: the one not
        returned is deleted too.
        """
        mlflow = client(tracking.uri)
        found = _runs_of_trial(mlflow, tracking, trial_id)
        if found and found[0].info.status == "FINISHED" and found[0].data.tags.get(tag(OUTCOME)) == COMPLETED:
            return cls(tracking, found[0].info.run_id, found[0].data.metrics, completed=True)
        if found and resuming:
            run_id = found[0].info.run_id
            retrying(lambda: mlflow.update_run(run_id, status="RUNNING"))
            return cls(tracking, run_id, found[0].data.metrics)
        for stale in found:
            retrying(lambda: mlflow.set_tag(stale.info.run_id, tag(OUTCOME), RESTARTED))
            retrying(lambda: mlflow.delete_run(stale.info.run_id))
        all_tags = {**tags, "mlflow.parentRunId": tracking.parent_run_id, tag(TRIAL_ID_TAG): trial_id, tag(STUDY_TAG): tracking.study}
        run = retrying(lambda: mlflow.create_run(tracking.experiment_id, run_name=run_name, tags=all_tags))
        for duplicate in _runs_of_trial(mlflow, tracking, trial_id):
            if duplicate.info.run_id != run.info.run_id:
                retrying(lambda: mlflow.set_tag(duplicate.info.run_id, tag(OUTCOME), DUPLICATE))
                retrying(lambda: mlflow.delete_run(duplicate.info.run_id))
        log_params(mlflow, run.info.run_id, params)
        return cls(tracking, run.info.run_id)

    def rewind(self, epoch: int, step: int) -> None:
        """Points after ``epoch`` / training ``step`` are logged again (they belong to a trajectory
        the trial left); an epoch the run already holds then has a second point, the later one."""
        self.logged_epoch, self.logged_step = min(self.logged_epoch, epoch), min(self.logged_step, step)

    def log(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer += [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and math.isfinite(float(v))]

    @property
    def pending(self) -> int:
        """Points logged but not yet acknowledged by the store."""
        return len(self._buffer)

    def flush(self) -> None:
        """Send the buffered points, in order, in batches; return once the store holds them all.
        A batch that fails stays in the buffer (the error is raised once the retry window is over,
        and a later flush sends it again)."""
        while self._buffer:
            chunk = self._buffer[:METRIC_BATCH]
            self._retrying(lambda: self.mlflow.log_batch(self.run_id, metrics=chunk))
            del self._buffer[: len(chunk)]
            self.sent += len(chunk)

    def _retrying(self, call: Callable[[], T]) -> T:
        return retrying(call, on_retry=self._count_retry)

    def _count_retry(self, _error: BaseException, _pause: float) -> None:
        self.retries += 1

    def log_tensors(self, folder: str, name: str, tensors: dict[str, Any]) -> None:
        """``tensors`` (a dict of tensors) as the run's artifact ``folder/name``, written with
        ``torch.save`` (read back with ``weights_only=True``: data, never code)."""
        import tempfile

        import torch

        with tempfile.TemporaryDirectory() as local:
            torch.save(tensors, Path(local) / name)
            self._retrying(lambda: self.mlflow.log_artifacts(self.run_id, local, folder))

    def set_tags(self, tags: dict[str, str]) -> None:
        """Tags ``polytask.<key>``."""
        set_tags(self.mlflow, self.run_id, tags)

    def finish(self, status: str, **tags: str) -> None:
        self.flush()
        self.set_tags(tags)
        self._retrying(lambda: self.mlflow.set_terminated(self.run_id, status=status))


def _runs_of_trial(mlflow, tracking: Tracking, trial_id: str) -> list[Any]:
    """The study's live (not deleted) nested runs tagged with Tune trial ``trial_id``."""
    return list(retrying(lambda: mlflow.search_runs(
        [tracking.experiment_id],
        filter_string=f"tags.`{tag(TRIAL_ID_TAG)}` = '{trial_id}' and tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'",
    )))


def set_tags(mlflow, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    if tags:
        retrying(lambda: mlflow.log_batch(run_id, tags=[RunTag(tag(k), str(v)[:5000]) for k, v in tags.items()]))


def read_tensors(tracking: Tracking, run_id: str, folder: str, name: str) -> dict[str, Any]:
    """A run's artifact ``folder/name`` written by :meth:`TrialRun.log_tensors`."""
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as local:
        path = retrying(lambda: client(tracking.uri).download_artifacts(run_id, f"{folder}/{name}", local))
        return torch.load(path, weights_only=True)


def trial_runs(tracking: Tracking) -> list[Any]:
    """The study's nested runs (trials and teachers), deleted ones left out, every page."""
    mlflow = client(tracking.uri)
    runs, token = [], None
    while True:
        page = retrying(lambda: mlflow.search_runs(
            [tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'", max_results=1000, page_token=token
        ))
        runs += list(page)
        token = page.token
        if not token:
            return runs


def settle_runs(tracking: Tracking, outcomes: dict[str, tuple[str, str]]) -> None:
    """End every trial run the way its Tune trial ended: ``outcomes`` maps a Tune trial id to
    (MLflow status, outcome tag). Runs a trial could not end itself (a scheduler stopped it
    while it waited on Tune; its worker died for good) are ended here, so none stays RUNNING."""
    mlflow = client(tracking.uri)
    for run in trial_runs(tracking):
        trial_id = run.data.tags.get(tag(TRIAL_ID_TAG))
        status, outcome = outcomes.get(trial_id, ("FAILED", LOST))
        current = (run.info.status, run.data.tags.get(tag(OUTCOME)))
        if current == (status, outcome) or (run.info.status != "RUNNING" and trial_id not in outcomes):
            continue
        set_tags(mlflow, run.info.run_id, {OUTCOME: outcome})
        retrying(lambda: mlflow.set_terminated(run.info.run_id, status=status))
