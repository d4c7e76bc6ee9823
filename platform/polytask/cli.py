"""The ``polytask`` command: run, resume, submit, validate, report, strategies, ui, server, fetch.

Exit codes: 0 done; 1 the study ran but no trial finished; 2 a problem found before anything
started (bad spec, bad data, unreachable cluster or tracking server, an output folder that cannot
be written or whose disk is full) — the message names the field, value and fix
(docs/reliability-inputs.md lists every kind).
130 Ctrl-C stopped the trials (``polytask resume OUTPUT`` continues them).
``submit``: 0 the job succeeded, 1 it failed or was stopped, 130 Ctrl-C (the job goes on).
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from polytask import __version__
from polytask.errors import Problem, StudyError, StudyInterrupted
from polytask.ops.credentials import mask_credentials
from polytask.ops.server import client_host, serve, server_env
from polytask.schema import SPEC_FILE, STUDY_FILE

app = typer.Typer(
    name="polytask",
    help="Multi-task-learning studies: compare task weighting and sharing strategies on your data with Ray Tune, Optuna and MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Logs and CI are not terminals: give them room instead of rich's 80-column fallback.
console = Console(width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

SpecArg = Annotated[Path, typer.Argument(help="Study spec (YAML), e.g. studies/quickstart.yaml.", show_default=False)]
AddressOption = Annotated[Optional[str], typer.Option("--address", envvar="RAY_ADDRESS", help="Ray cluster to run on (default: a local Ray started for this study).")]
OutputArg = Annotated[Path, typer.Argument(help="A study's output folder (holds study.json and the MLflow store).", show_default=False)]


def _fail(error: StudyError) -> None:
    from rich.markup import escape

    errors.print(f"[red]error:[/red] {escape(error.render())}", highlight=False, markup=True)  # a value like [a, b] is not markup
    raise typer.Exit(error.exit_code)


@app.callback(invoke_without_command=True)
def _main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    if version:
        console.print(f"polytask {__version__}")
        raise typer.Exit()


@app.command()
def run(
    spec: SpecArg,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output folder (default: the spec's `output`, else runs/<name>).")] = None,
    address: AddressOption = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Where Ray Tune keeps trial results and checkpoints: a folder all nodes share, or s3://bucket/prefix (sets execution.storage; default <output>/tune).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking server, e.g. http://127.0.0.1:5000 (sets tracking.uri; default a SQLite store in the output folder).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the results already in the output folder (MLflow runs are kept).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the trials' own logs.")] = False,
) -> None:
    """Run a study: every candidate x seed as a Ray Tune trial, logged to MLflow, compared at the end."""
    from polytask.spec import load_spec, with_overrides
    from polytask.study.run import run_study

    try:
        study = with_overrides(load_spec(spec), storage=storage, tracking_uri=tracking_uri)
        result = run_study(study, output=output, address=address, overwrite=overwrite, console=console, verbose=verbose)
    except StudyError as exc:
        _fail(exc)
    except StudyInterrupted as exc:
        _interrupted(exc)
    _exit_for(result)


@app.command()
def resume(
    output: OutputArg,
    address: AddressOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the trials' own logs.")] = False,
) -> None:
    """Continue a study whose driver died: finished trials are kept, interrupted ones continue
    from their last checkpoint, the Optuna search goes on, and every trial keeps one MLflow run."""
    from polytask.study.run import resume_study

    try:
        result = resume_study(output, address=address, console=console, verbose=verbose)
    except StudyError as exc:
        _fail(exc)
    except StudyInterrupted as exc:
        _interrupted(exc)
    _exit_for(result)


def _interrupted(interruption: StudyInterrupted) -> None:
    from rich.markup import escape

    errors.print(f"[yellow]{escape(str(interruption))}[/yellow]", highlight=False, markup=True, soft_wrap=True)  # one line, to copy the command
    raise typer.Exit(interruption.exit_code)


def _exit_for(result) -> None:
    if result.comparison.best is None:
        errors.print("[red]no trial finished[/red]; see the failures above and in comparison.md")
        raise typer.Exit(1)


@app.command()
def validate(
    spec: SpecArg,
    data: Annotated[bool, typer.Option("--data/--no-data", help="Also load the data and check columns and labels.")] = True,
) -> None:
    """Check a study spec (and its data) without starting anything; print the resolved spec and,
    per task, what its data holds."""
    from polytask.data import check_frames, load_datasets, summarise
    from polytask.spec import load_spec, resolve_training
    from polytask.study.run import prepare

    try:
        study, train_rows = load_spec(spec), None
        if data:
            datasets = load_datasets(study)
            problems = check_frames(study, datasets)
            if problems:
                raise StudyError(problems, str(spec))
            train_rows = len(prepare(study, datasets).splits["train"])  # what the defaults depend on, encoded as a run encodes it
    except StudyError as exc:
        if exc.source is None:
            exc = StudyError(exc.problems, str(spec))
        _fail(exc)
    study, defaults = resolve_training(study, train_rows)
    console.print(study.to_yaml(), highlight=False, markup=False, end="")
    for line in defaults:
        errors.print(f"default: {line}", highlight=False, markup=False, soft_wrap=True)
    if data:
        summary = summarise(study, datasets)
        for dataset in summary["datasets"]:
            errors.print(f"[green]valid[/green]: {dataset['source']}: " + ", ".join(f"{k} {v:,} rows" for k, v in dataset["rows"].items()), highlight=False, soft_wrap=True)
            if dataset["dropped"]:
                counts = ", ".join(f"{k} {v:,}" for k, v in dataset["dropped"].items())
                errors.print(f"  dropped by data.missing: drop (rows without a value in a numeric column): {counts}", highlight=False, markup=False, soft_wrap=True)
        for task in summary["tasks"]:
            errors.print(f"  {_task_line(task)}", highlight=False, markup=False, soft_wrap=True)


def _task_line(task: dict) -> str:
    """One task of the validate summary: type, classes or range, missing labels per split."""
    if task["type"] == "regression":
        low, median, high = task["range"] or [float("nan")] * 3
        holds = f"targets min {low:.4g}, median {median:.4g}, max {high:.4g}"
    else:
        top = ", ".join(f"{c!r} {n:,}" for c, n in task["top"])
        holds = f"{task['classes']:,} classes, most frequent in train: {top}"
    missing = ", ".join(f"{split} {share:.0%}" for split, share in task["missing"].items())
    return f"tasks[{task['index']}] {task['name']} ({task['type']}, column '{task['column']}'): {holds}; labels missing: {missing}"


@app.command()
def strategies(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the registered weighting and sharing strategies, with papers and hyperparameters."""
    from polytask.strategies.registry import describe
    from polytask.strategies.sharing import SHARINGS
    from polytask.strategies.weighting import WEIGHTINGS

    weighting = [describe(cls) for cls in WEIGHTINGS.values()]
    sharing = [describe(cls) for cls in SHARINGS.values()]
    if as_json:
        print(json.dumps({"weighting": weighting, "sharing": sharing}, indent=2, default=str))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Weighting strategies")
    for column in ("name", "family", "hyperparameters (default)", "paper"):
        table.add_column(column)
    for item in weighting:
        table.add_row(item["name"], item["family"], escape(_hyperparameters(item)), item["paper"])
    console.print(table)
    table = Table(title="Sharing strategies")
    for column in ("name", "hyperparameters (default)", "paper"):
        table.add_column(column)
    for item in sharing:
        table.add_row(item["name"], escape(_hyperparameters(item)), item["paper"])
    console.print(table)


def _hyperparameters(item: dict) -> str:
    return ", ".join(f"{k}: {v['type']} = {v['default']!r}" for k, v in item["hyperparameters"].items()) or "—"


@app.command()
def report(
    output: Annotated[Optional[Path], typer.Argument(help="A study's output folder (holds study.json); leave out with --experiment.", show_default=False)] = None,
    experiment: Annotated[Optional[str], typer.Option("--experiment", help="Rebuild from an MLflow experiment alone (its latest study run, or --run-id) instead of an output folder.", show_default=False)] = None,
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="With --experiment: the MLflow tracking URI (default: $MLFLOW_TRACKING_URI).", show_default=False)] = None,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="With --experiment: the study's parent run (default: the latest).", show_default=False)] = None,
    to: Annotated[Optional[Path], typer.Option("--to", help="Folder for the report files (default: the output folder; with --experiment, runs/<study>-<run>).", show_default=False)] = None,
) -> None:
    """Rebuild a study's report (Markdown, HTML, CSV, figures) from its MLflow runs, and attach it to the study's parent run."""
    from polytask.ops.records import find_study
    from polytask.ops.tracking import Tracking
    from polytask.results.report import print_table, write_report
    from polytask.spec import load_spec

    if (output is None) == (experiment is None):
        _fail(StudyError([Problem("OUTPUT", "give a study's output folder, or --experiment NAME (with --tracking-uri) to read MLflow alone, not both")]))
    try:
        if experiment is not None:
            if not tracking_uri:
                _fail(StudyError([Problem("--tracking-uri", "--experiment needs the MLflow tracking URI: pass --tracking-uri or set MLFLOW_TRACKING_URI")]))
            study, tracking = find_study(tracking_uri, experiment, run_id)
            folder = to or Path("runs") / f"{study.name}-{tracking.parent_run_id[:8]}"
        else:
            if not (output / STUDY_FILE).is_file():
                _fail(StudyError([_no_study(output)]))
            tracking, study, folder = Tracking.load(output), load_spec(output / SPEC_FILE), to or output
    except StudyError as exc:
        _fail(exc)
    comparison = write_report(study, tracking, folder)
    print_table(comparison, study, console)
    console.print(f"Report: {folder / 'comparison.md'} and {folder / 'comparison.html'} (also on MLflow run {tracking.parent_run_id[:8]}, artifacts report/)", soft_wrap=True)


@app.command()
def ui(
    output: OutputArg,
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless others must reach it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on a study's tracking store."""
    from polytask.ops.tracking import Tracking

    if not (output / STUDY_FILE).is_file():
        _fail(StudyError([_no_study(output)]))
    tracking = Tracking.load(output)
    # MLflow 3 opens an experiment in its GenAI view unless asked for the machine-learning one
    base = f"http://{client_host(host)}:{port}"
    runs = f"{base}/#/experiments/{tracking.experiment_id}/runs?workflowType=machine_learning"
    console.print(f"Starting the MLflow UI on http://{host}:{port} (store {mask_credentials(tracking.uri)}); Ctrl-C stops it", highlight=False, soft_wrap=True)

    def ready() -> None:  # printed once it answers: the server takes 10-30 s to start on 2 cores
        console.print(f"MLflow UI ready: this study's runs: {runs}", highlight=False, soft_wrap=True)

    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking.uri, "--host", host, "--port", str(port), "--workers", "1"]
    raise typer.Exit(serve(command, server_env(), health_url=f"{base}/health", on_ready=ready))


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless other machines (a cluster's nodes) must reach it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the tracking server.")] = 5000,
    backend_store_uri: Annotated[Optional[str], typer.Option("--backend-store-uri", help="Where runs are stored (default: $MLFLOW_BACKEND_STORE_URI, else sqlite:///runs/mlflow-server/mlflow.db); postgresql://... needs psycopg (or postgresql+psycopg2://... and psycopg2).", show_default=False)] = None,
    artifacts_destination: Annotated[Optional[str], typer.Option("--artifacts-destination", help="Where artifacts are stored (default: $MLFLOW_ARTIFACTS_DESTINATION, else runs/mlflow-server/artifacts); s3://... needs boto3.", show_default=False)] = None,
) -> None:
    """Start an MLflow tracking server that studies on a Ray cluster can log to (tracking.uri)."""
    from polytask.ops.server import resolve_stores, server_command

    backend, artifacts = resolve_stores(backend_store_uri, artifacts_destination)
    reachable = socket.gethostname() if host in ("0.0.0.0", "::") else host  # what clients should use
    url = f"http://{reachable}:{port}"
    console.print(
        f"MLflow tracking server on http://{host}:{port} (store {mask_credentials(backend)}, artifacts {mask_credentials(artifacts)}); "
        f"studies log to it with tracking.uri or --tracking-uri {url}; Ctrl-C stops it",
        highlight=False, markup=False, soft_wrap=True,
    )  # fmt: skip
    raise typer.Exit(serve(server_command(host, port, backend, artifacts), server_env()))


@app.command()
def submit(
    spec: SpecArg,
    address: Annotated[Optional[str], typer.Option("--address", envvar=["RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"], help="The Ray dashboard of the cluster, e.g. http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS).", show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output folder on the cluster's shared storage (a relative one is made absolute here).", show_default=False)] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Passed to `polytask run --storage`.", show_default=False)] = None,
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", help="Passed to `polytask run --tracking-uri`: an MLflow server the cluster reaches (polytask server).", show_default=False)] = None,
    working_dir: Annotated[Path, typer.Option("--working-dir", help="Folder shipped with the job; must hold the spec (and data it names by relative paths).")] = Path("."),
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Stream the job's logs until it ends (--no-wait: submit and return).")] = True,
) -> None:
    """Run a study on a Ray cluster as a Ray job: the spec is checked here, the working directory shipped, the logs streamed."""
    from polytask.ops.jobs import submit_study

    try:
        code = submit_study(spec, address, output=output, storage=storage, tracking_uri=tracking_uri, working_dir=working_dir, wait=wait, console=console)
    except StudyError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command()
def fetch(names: Annotated[Optional[list[str]], typer.Argument(help="Artifacts to fetch (default: all).", show_default=False)] = None) -> None:
    """Download pinned data and weights into the cache (for offline use later)."""
    from polytask.ops.artifacts import ARTIFACTS, ArtifactError, cache_root
    from polytask.ops.artifacts import fetch as fetch_artifact

    for name in names or list(ARTIFACTS):
        try:
            path = fetch_artifact(name)
        except ArtifactError as exc:
            errors.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        console.print(f"{name}: {path}", soft_wrap=True, highlight=False)
    console.print(f"cache: {cache_root()}")


def _no_study(output: Path) -> Problem:
    return Problem("OUTPUT", f"{output} holds no study (no study.json); give the folder `polytask run` wrote to")
