"""Run a whole study: check everything, prepare the data once, run every trial through one Ray
Tune run, then write and print the comparison.

    spec --(checks, data)--> PreparedData --(ray.put)--> trials (Tune + StudySearcher, or PBT)
         --(MLflow runs, settled as Tune ended them)--> report.write_report
         -> comparison.md/.csv, front.png, terminal table

``resume_study`` picks a study up again from its output folder after the driver died.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from polytask.data import Dataset, PreparedData, check_frames, load_datasets, prepare_data, train_texts
from polytask.encoders import load_tokenizer
from polytask.errors import Problem, StudyError, StudyInterrupted
from polytask.ops.credentials import mask_credentials
from polytask.ops.output import check_output_folder, make_output_folder
from polytask.ops.preflight import check_address, check_tracking
from polytask.ops.tracking import Tracking, end_study, log_study_metrics, reopen, settle_runs, start_study
from polytask.results.trivial import trivial_metrics
from polytask.schema import COMPLETED, DIVERGED, ERROR, INTERRUPTED, SPEC_FILE, STOPPED, STUDY_FILE, TRIAL, TRIAL_ID, reached_the_end
from polytask.spec import TEXT_ENCODERS, StudySpec, load_spec, resolve_training
from polytask.study import baselines, distill
from polytask.study.search import plan_trials
from polytask.training import frozen

if TYPE_CHECKING:
    from polytask.results.comparison import Comparison



@dataclass
class StudyResult:
    output: Path
    tracking: Tracking
    comparison: Comparison


def load_checked(spec: StudySpec) -> list[Dataset]:
    """Load and check the study's data; raises StudyError naming each bad field/row."""
    datasets = load_datasets(spec)
    problems = check_frames(spec, datasets)
    if problems:
        raise StudyError(problems)
    return datasets


def prepare(spec: StudySpec, datasets: list[Dataset] | None = None) -> PreparedData:
    """Load (unless given), check and encode the study's data; raises StudyError naming each
    bad field/row."""
    if datasets is None:
        datasets = load_checked(spec)
    tokenizer = None  # tabular and image encoders read no text
    if isinstance(spec.encoder, TEXT_ENCODERS):
        tokenizer = load_tokenizer(spec.encoder, train_texts(spec, datasets))
    return prepare_data(spec, datasets, tokenizer)


def preflight(spec: StudySpec, output: Path, address: str | None, overwrite: bool) -> list[Dataset]:
    """Everything checked before Ray starts or MLflow is written: the output folder, the
    tracking store, the cluster's address, the data. Returns the checked datasets."""
    check_output_folder(output, overwrite)
    check_tracking(spec.tracking.uri)
    check_address(address)
    return load_checked(spec)


def run_study(spec: StudySpec, output: Path | None = None, address: str | None = None, overwrite: bool = False, console: Console | None = None, verbose: bool = False) -> StudyResult:
    console = console or Console()
    _quiet_libraries()
    output = (output or spec.output_dir()).resolve()
    datasets = preflight(spec, output, address, overwrite)
    with _ray(address, verbose):
        _check_resources(spec)
        data = _prepare(spec, console, datasets)
        spec = _with_defaults(spec, data, console)
        make_output_folder(output, overwrite)
        tracking = start_study(spec, output)
        tracking = dataclasses.replace(tracking, tune_path=_join(spec.execution.storage or str(output / "tune"), f"{spec.name}-{tracking.parent_run_id[:8]}"))
        tracking.save(output)
        (output / SPEC_FILE).write_text(spec.to_yaml())
        log_study_metrics(tracking, trivial_metrics(data))  # the floor every strategy is read against (polytask.results.trivial)
        _teachers(spec, data, tracking, console, resume=False)
        _baselines(spec, data, tracking, console, resume=False)
        return _fit(_tuner(spec, data, tracking, console), _planned_trials(spec), spec, tracking, output, console)


def resume_study(output: Path, address: str | None = None, console: Console | None = None, verbose: bool = False) -> StudyResult:
    """Continue a study whose driver died: Tune restores its experiment (finished trials stay
    finished, interrupted ones continue from their last checkpoint, the searcher keeps its Optuna
    state), trials reopen their own MLflow runs, and the parent run is ended once more."""
    from ray import tune

    console = console or Console()
    _quiet_libraries()
    output = output.resolve()
    if not (output / STUDY_FILE).is_file():
        raise StudyError([Problem("OUTPUT", f"{output} holds no study (no {STUDY_FILE}); give the folder `polytask run` wrote to")])
    spec, tracking = load_spec(output / SPEC_FILE), Tracking.load(output)
    if not tracking.tune_path or not tune.Tuner.can_restore(tracking.tune_path):
        raise StudyError([Problem("OUTPUT", f"no Ray Tune experiment to resume at {tracking.tune_path or output / 'tune'}; run the study again with `polytask run --overwrite`")])
    check_tracking(tracking.uri)
    check_address(address)
    with _ray(address, verbose):
        _check_resources(spec)
        data = _prepare(spec, console)
        reopen(tracking)
        _teachers(spec, data, tracking, console, resume=True)
        _baselines(spec, data, tracking, console, resume=True)
        # Errored trials stay as they ended (recorded FAILED with their reason); unfinished ones go on.
        tuner = tune.Tuner.restore(tracking.tune_path, trainable=_trainable(spec, data, tracking), resume_unfinished=True, resume_errored=False)
        console.print(f"Resuming study '{spec.name}' from {tracking.tune_path}")
        return _fit(tuner, _planned_trials(spec), spec, tracking, output, console)


@contextlib.contextmanager
def _ray(address: str | None, verbose: bool):
    """A local Ray started for this study (address None), or the cluster at ``address``;
    left as found when Ray was already initialised (tests, notebooks)."""
    import ray

    started = not ray.is_initialized()
    if started:
        try:
            # "local": a new Ray for this study, never whatever cluster /tmp/ray last recorded
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=verbose, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise StudyError([Problem("--address", f"cannot connect to Ray at {address!r}: {exc}")]) from None
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _prepare(spec: StudySpec, console: Console, datasets: list[Dataset] | None = None) -> PreparedData:
    with console.status("Preparing data (load, check, tokenise)..."):
        data = prepare(spec, datasets)
    sizes = ", ".join(f"{name} {len(split)}" for name, split in data.splits.items())
    console.print(f"Data: {sizes} rows; tasks {', '.join(_describe(t) for t in data.tasks)}")
    if frozen.applies(spec):
        with console.status("Computing the frozen encoder layers once..."):
            console.print(frozen.precompute(spec, data))
    return data


def _with_defaults(spec: StudySpec, data: PreparedData, console: Console) -> StudySpec:
    """The spec with the training settings it left out filled in for its encoder and data
    (polytask.spec.defaults), each one said."""
    spec, notes = resolve_training(spec, len(data.splits["train"]))
    for note in notes:
        console.print(f"default: {note}", highlight=False, markup=False, soft_wrap=True)
    return spec


def _teachers(spec: StudySpec, data: PreparedData, tracking: Tracking, console: Console, resume: bool) -> None:
    if spec.distills:
        console.print(f"Distillation: {'resuming' if resume else 'training'} {len(spec.tasks)} single-task teacher(s) first")
        for task, outcome in distill.train_teachers(spec, data, tracking, console, resume).items():
            console.print(f"  teacher {task}: {outcome}")


def _baselines(spec: StudySpec, data: PreparedData, tracking: Tracking, console: Console, resume: bool) -> None:
    if spec.comparison.single_task_baselines:
        counts = baselines.run_baselines(spec, data, tracking, console, resume)
        console.print("Single-task baselines ready: " + ", ".join(f"{n} {what}" for what, n in counts.items() if n))


def _fit(tuner, total: int, spec: StudySpec, tracking: Tracking, output: Path, console: Console) -> StudyResult:
    """Run the trials, settle their MLflow runs, write the report, end the parent run."""
    from polytask.results.report import print_table, write_report

    scheduler = spec.execution.scheduler.kind
    console.print(f"Study '{spec.name}': {total} trials ({scheduler}); MLflow {mask_credentials(tracking.uri)} (run {tracking.parent_run_id[:8]}); output {output}")
    try:
        results = tuner.fit()
        outcomes = _outcomes(results, spec.training.epochs)
        settle_runs(tracking, outcomes)
        # Tune was interrupted (Ctrl-C, SIGUSR1): a trial it never ended, or one cut off mid-training
        if results.num_terminated + results.num_errors < len(results) or any(o[1] == INTERRUPTED for o in outcomes.values()):
            # no comparison of a half-run study: it would read as the answer
            raise StudyInterrupted(output, sum(o == ("FINISHED", COMPLETED) for o in outcomes.values()), total)
        comparison = write_report(spec, tracking, output)
    except BaseException as exc:
        end_study(tracking, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    trials = comparison.trials
    statuses = trials[trials["role"] == TRIAL]["status"].tolist() if len(trials) else []
    finished, failed = statuses.count("FINISHED"), statuses.count("FAILED")
    total -= len(spec.seeds) * len(comparison.dropped)  # evaluation trials of a candidate whose search never completed
    # KILLED: the study was interrupted before every planned trial ended
    status = "KILLED" if finished + failed < total else "FINISHED" if finished else "FAILED"
    end_study(tracking, status, finished=finished, failed=failed, total=total)
    print_table(comparison, spec, console)
    if spec.comparison.register_models:
        from polytask.results.registry import register_best_models

        for name, version in register_best_models(spec, comparison, tracking).items():
            console.print(f"Model registry: {name} version {version}")
    console.print(f"Report: {output / 'comparison.md'} and {output / 'comparison.html'}", highlight=False, soft_wrap=True)
    console.print(f"MLflow UI: polytask ui {output}", highlight=False, soft_wrap=True)  # one line, to copy whole
    return StudyResult(output, tracking, comparison)


def _outcomes(results, epochs: int) -> dict[str, tuple[str, str]]:
    """Tune trial id -> (MLflow status, outcome) as each trial ended in Tune."""
    outcomes = {}
    for result in results:
        metrics = result.metrics or {}
        if TRIAL_ID not in metrics:
            continue  # never reported: its run (if any) is settled as lost
        if result.error is not None:
            outcomes[metrics[TRIAL_ID]] = ("FAILED", ERROR)
        elif metrics.get("diverged"):
            outcomes[metrics[TRIAL_ID]] = ("FAILED", DIVERGED)
        elif not reached_the_end(metrics, epochs):
            # Tune marks the last result of a trial it stopped on a scheduler's decision done;
            # a trial cut off by Ctrl-C in the driver never got that far
            outcomes[metrics[TRIAL_ID]] = ("FINISHED", STOPPED) if metrics.get("done") else ("KILLED", INTERRUPTED)
        else:
            outcomes[metrics[TRIAL_ID]] = ("FINISHED", COMPLETED)
    return outcomes


def _trainable(spec: StudySpec, data: PreparedData, tracking: Tracking):
    from ray import tune

    from polytask.study.trial import StudyContext, run_trial

    return tune.with_resources(
        tune.with_parameters(run_trial, context=StudyContext(spec, data, tracking)),  # one copy in the object store
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )


def _planned_trials(spec: StudySpec) -> int:
    return spec.candidates[0].search.trials if spec.execution.scheduler.kind == "pbt" else len(plan_trials(spec))


def _tuner(spec: StudySpec, data: PreparedData, tracking: Tracking, console: Console):
    """One Tune run for the whole study: every planned trial, actors reused, checkpoints kept
    per trial, failed trials retried from them."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from polytask.study.progress import StudyProgress
    from polytask.study.schedulers import make_scheduler, pbt_param_space
    from polytask.study.search import StudySearcher, objective_metrics

    shown = [metric.removeprefix("best/") for metric in objective_metrics(spec)[0]]
    total = _planned_trials(spec)
    if spec.execution.scheduler.kind == "pbt":  # PBT replaces the searcher (Tune allows no search algorithm with it)
        param_space, num_samples = pbt_param_space(spec), 1  # a grid over the members
        search_alg = BasicVariantGenerator(random_state=spec.candidates[0].search.seed)
        keep = 4  # PBT copies other members' checkpoints: keep a few, not only the latest
    else:
        param_space, num_samples, search_alg, keep = None, total, StudySearcher(spec, tracking.parent_run_id), 1
    storage, name = tracking.tune_path.rsplit("/", 1)
    return tune.Tuner(
        _trainable(spec, data, tracking),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            scheduler=make_scheduler(spec),
            num_samples=num_samples,
            reuse_actors=True,
            max_concurrent_trials=spec.execution.max_concurrent_trials,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=spec.execution.max_retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=keep),
            callbacks=[StudyProgress(total, shown, spec.training.epochs, console, spec.task_names)],
            verbose=0,
        ),
    )


def _join(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}"


def _describe(task) -> str:
    if task.type == "regression":
        return f"{task.name} (regression)"
    kind = {"classification": "classes", "multilabel": "labels", "token_classification": "tags"}[task.type]
    return f"{task.name} ({len(task.classes)} {kind})"


def _quiet_libraries() -> None:
    """polytask prints its own progress (polytask.study.progress); keep the libraries' chatter out."""
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
    # PBT: a trial continuing another member's checkpoint has no result.json of its own to fetch
    logging.getLogger("ray.tune.logger.logger").setLevel(logging.ERROR)


def _check_resources(spec: StudySpec) -> None:
    import ray

    cluster = ray.cluster_resources()
    problems = []
    cpus, gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    if spec.resources.cpu > cpus:
        problems.append(Problem("resources.cpu", f"{spec.resources.cpu:g} CPU(s) per trial, but the Ray cluster has {cpus:g}; lower it to {cpus:g} or less, or run on a larger cluster (--address)"))
    if spec.resources.gpu > gpus:
        problems.append(Problem("resources.gpu", f"{spec.resources.gpu:g} GPU(s) per trial, but the Ray cluster has {gpus:g}; set resources.gpu: 0 (trials train on the CPU) or run on a cluster with GPUs (--address)"))
    if problems:
        raise StudyError(problems)
