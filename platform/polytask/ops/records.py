"""What the results wing reads from a study's MLflow records, and what it writes back (the
report, registered models): one module for those calls, so polytask.results renders and never
talks to MLflow itself.
(Study execution writes through polytask.ops.tracking.)
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from polytask.errors import Problem, StudyError
from polytask.ops.credentials import mask_credentials
from polytask.ops.tracking import Tracking, client, retrying
from polytask.schema import KIND_TAG, SPEC_FILE, tag
from polytask.spec import StudySpec, load_spec


def find_study(uri: str, experiment: str, run_id: str | None = None) -> tuple[StudySpec, Tracking]:
    """A study's spec and runs found in MLflow alone: the experiment's latest study parent run
    (or ``run_id``) and the spec stored on it."""
    mlflow = client(uri)
    found = retrying(lambda: mlflow.get_experiment_by_name(experiment))
    if found is None:
        names = [e.name for e in mlflow.search_experiments()]
        raise StudyError([Problem("--experiment", f"no experiment {experiment!r} at {mask_credentials(uri)}; experiments there: {', '.join(names) or 'none'}")])
    if run_id is None:
        parents = retrying(lambda: mlflow.search_runs([found.experiment_id], filter_string=f"tags.`{tag(KIND_TAG)}` = 'study'", order_by=["attributes.start_time DESC"], max_results=1))
        if not parents:
            raise StudyError([Problem("--experiment", f"experiment {experiment!r} holds no polytask study run")])
        run_id = parents[0].info.run_id
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = mlflow.download_artifacts(run_id, SPEC_FILE, folder)
        except Exception as exc:  # MLflow raises several types for a missing run or artifact
            raise StudyError([Problem("--run-id", f"run {run_id} has no {SPEC_FILE} artifact ({type(exc).__name__}); give a polytask study's parent run")]) from None
        spec = load_spec(path)
    return spec, Tracking(uri=uri, experiment_id=found.experiment_id, parent_run_id=run_id, study=spec.name)


def study_metrics(tracking: Tracking, prefix: str) -> dict[str, float]:
    """The metrics starting with ``prefix`` on the study's parent run."""
    metrics = retrying(lambda: client(tracking.uri).get_run(tracking.parent_run_id)).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith(prefix)}


def metric_histories(tracking: Tracking, run_ids: Iterable[str], keys: Iterable[str]) -> dict[str, dict[str, dict[int, float]]]:
    """Each key's points on each run: run id -> key -> {step: value} (empty for a key never logged)."""
    mlflow, keys = client(tracking.uri), list(keys)
    return {run_id: {key: {m.step: m.value for m in retrying(lambda: mlflow.get_metric_history(run_id, key))} for key in keys} for run_id in run_ids}


def attach_to_study(tracking: Tracking, files: Iterable[Path], folder: str) -> None:
    """Copy ``files`` (those that exist) to the study's parent run, under ``folder``."""
    mlflow = client(tracking.uri)
    for path in files:
        if path.exists():
            retrying(lambda: mlflow.log_artifact(tracking.parent_run_id, str(path), folder))


def register_version(tracking: Tracking, name: str, description: str, run_id: str, artifact: str, tags: dict[str, str]) -> str:
    """A new version of registered model ``name`` (created if new) from a run's ``artifact``
    folder; returns the version."""
    from mlflow.exceptions import MlflowException

    mlflow = client(tracking.uri)
    try:
        retrying(lambda: mlflow.create_registered_model(name, description=description))
    except MlflowException as exc:
        if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
            raise
    return retrying(lambda: mlflow.create_model_version(name, f"runs:/{run_id}/{artifact}", run_id=run_id, tags=tags)).version
