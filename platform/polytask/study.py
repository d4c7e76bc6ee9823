"""Run a whole study: check everything, prepare the data once, run every trial through one Ray
Tune run, then write and print the comparison.

    spec --(checks, data)--> PreparedData --(ray.put)--> trials (Tune + StudySearcher)
         --(MLflow runs)--> report.write_report -> comparison.md/.csv, front.png, terminal table
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from polytask import distill, frozen
from polytask.data import PreparedData, check_frames, load_datasets, prepare_data, train_texts
from polytask.encoders import load_tokenizer
from polytask.errors import Problem, StudyError
from polytask.spec import TEXT_ENCODERS, StudySpec
from polytask.tracking import Tracking, start_study

if TYPE_CHECKING:
    from polytask.report import Comparison

RESULT_FILES = ("study.json", "spec.yaml", "comparison.md", "comparison.csv", "trials.csv", "front.png")


@dataclass
class StudyResult:
    output: Path
    tracking: Tracking
    comparison: Comparison


def prepare(spec: StudySpec) -> PreparedData:
    """Load, check and encode the study's data; raises StudyError naming each bad field/row."""
    datasets = load_datasets(spec)
    problems = check_frames(spec, datasets)
    if problems:
        raise StudyError(problems)
    tokenizer = None  # tabular and image encoders read no text
    if isinstance(spec.encoder, TEXT_ENCODERS):
        tokenizer = load_tokenizer(spec.encoder, train_texts(spec, datasets))
    return prepare_data(spec, datasets, tokenizer)


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse to mix two studies' results in one folder (before any work is done)."""
    if (output / "study.json").exists() and not overwrite:
        raise StudyError([Problem("output", f"{output} already holds the results of a study; pass --overwrite to replace them (earlier MLflow runs are kept) or choose another folder with --output")])


def make_output(output: Path, overwrite: bool) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise StudyError([Problem("output", f"cannot write to {output}: {exc.strerror}; choose a writable folder with --output")]) from None
    if overwrite:
        shutil.rmtree(output / "tune", ignore_errors=True)
        for name in RESULT_FILES:
            (output / name).unlink(missing_ok=True)


def run_study(spec: StudySpec, output: Path | None = None, address: str | None = None, overwrite: bool = False, console: Console | None = None, verbose: bool = False) -> StudyResult:
    import ray

    from polytask.report import print_table, write_report

    console = console or Console()
    _quiet_libraries()
    output = (output or spec.output_dir()).resolve()
    check_output(output, overwrite)
    started_ray = not ray.is_initialized()
    if started_ray:
        try:
            # "local": a new Ray for this study, never whatever cluster /tmp/ray last recorded
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=verbose, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise StudyError([Problem("--address", f"cannot connect to Ray at {address!r}: {exc}")]) from None
    try:
        _check_resources(spec, ray.cluster_resources())
        with console.status("Preparing data (load, check, tokenise)..."):
            data = prepare(spec)
        make_output(output, overwrite)
        sizes = ", ".join(f"{name} {len(split)}" for name, split in data.splits.items())
        console.print(f"Data: {sizes} rows; tasks {', '.join(_describe(t) for t in data.tasks)}")
        if frozen.applies(spec):
            with console.status("Computing the frozen encoder layers once..."):
                console.print(frozen.precompute(spec, data))

        tracking = start_study(spec, output)
        tracking.save(output)
        (output / "spec.yaml").write_text(spec.to_yaml())
        if spec.distills:
            console.print(f"Distillation: training {len(spec.tasks)} single-task teacher(s) first")
            for task, outcome in distill.train_teachers(spec, data, tracking, output, console).items():
                console.print(f"  teacher {task}: {outcome}")
        tuner, total = _tuner(spec, data, tracking, output, console)
        console.print(f"Study '{spec.name}': {total} trials; MLflow {tracking.uri} (run {tracking.parent_run_id[:8]}); output {output}")
        try:
            tuner.fit()
            comparison = write_report(spec, tracking, output)
        except BaseException as exc:
            _end_parent(tracking, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        statuses = comparison.trials["status"].tolist() if len(comparison.trials) else []
        finished, failed = statuses.count("FINISHED"), statuses.count("FAILED")
        # KILLED: the study was interrupted before every planned trial ended
        status = "KILLED" if finished + failed < total else "FINISHED" if finished else "FAILED"
        _end_parent(tracking, status, finished=finished, failed=failed, total=total)
        print_table(comparison, spec, console)
        console.print(f"Report: {output / 'comparison.md'}   MLflow UI: polytask ui {output}")
        return StudyResult(output, tracking, comparison)
    finally:
        if started_ray:
            ray.shutdown()


def _tuner(spec: StudySpec, data: PreparedData, tracking: Tracking, output: Path, console: Console):
    """One Tune run for the whole study: every planned trial, actors reused, one checkpoint kept
    per trial, failed trials retried from it. Returns the Tuner and the number of trials."""
    from ray import tune

    from polytask.progress import StudyProgress
    from polytask.search import StudySearcher, objective_metrics
    from polytask.trial import StudyContext, run_trial

    searcher = StudySearcher(spec)
    shown = [metric.removeprefix("best/") for metric in objective_metrics(spec)[0]]
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, context=StudyContext(spec, data, tracking)),  # one copy in the object store
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=searcher.total,
            reuse_actors=True,
            max_concurrent_trials=spec.execution.max_concurrent_trials,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(output / "tune"),
            failure_config=tune.FailureConfig(max_failures=spec.execution.max_retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[StudyProgress(searcher.total, shown, spec.training.epochs, console)],
            verbose=0,
        ),
    )
    return tuner, searcher.total


def _describe(task) -> str:
    if task.type == "regression":
        return f"{task.name} (regression)"
    kind = {"classification": "classes", "multilabel": "labels", "token_classification": "tags"}[task.type]
    return f"{task.name} ({len(task.classes)} {kind})"


def _quiet_libraries() -> None:
    """polytask prints its own progress (polytask.progress); keep the libraries' chatter out."""
    import logging

    import mlflow  # noqa: F401  (configures its loggers on import; lower them afterwards)
    import optuna
    import transformers

    # Tune: the legacy reporter at verbose=0 prints nothing (the new one still draws a box), and
    # no warning on each forced experiment snapshot (one per checkpoint with num_to_keep set).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def _check_resources(spec: StudySpec, cluster: dict[str, float]) -> None:
    problems = []
    cpus, gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    if spec.resources.cpu > cpus:
        problems.append(Problem("resources.cpu", f"a trial asks for {spec.resources.cpu} CPUs but the Ray cluster has {cpus:g}; lower it"))
    if spec.resources.gpu > gpus:
        problems.append(Problem("resources.gpu", f"a trial asks for {spec.resources.gpu} GPUs but the Ray cluster has {gpus:g}; set resources.gpu: 0 or run on a cluster with GPUs"))
    if problems:
        raise StudyError(problems)


def _end_parent(tracking: Tracking, status: str, **counts: int) -> None:
    from polytask.tracking import client, retrying

    mlflow = client(tracking.uri)
    for key, value in counts.items():
        retrying(lambda: mlflow.log_metric(tracking.parent_run_id, f"trials/{key}", value))
    retrying(lambda: mlflow.set_terminated(tracking.parent_run_id, status=status))
