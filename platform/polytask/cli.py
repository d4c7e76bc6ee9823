"""The ``polytask`` command: run, validate, report, strategies, ui, fetch.

Exit codes: 0 done; 1 the study ran but no trial finished; 2 a problem found before anything
started (bad spec, bad data, unreachable cluster) — the message names the field, value and fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from polytask import __version__
from polytask.errors import Problem, StudyError

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
OutputArg = Annotated[Path, typer.Argument(help="A study's output folder (holds study.json and the MLflow store).", show_default=False)]


def _fail(error: StudyError) -> None:
    errors.print(f"[red]error:[/red] {error.render()}", highlight=False, markup=True)
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
    address: Annotated[Optional[str], typer.Option("--address", envvar="RAY_ADDRESS", help="Ray cluster to run on (default: a local Ray started for this study).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the results already in the output folder (MLflow runs are kept).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the trials' own logs.")] = False,
) -> None:
    """Run a study: every candidate x seed as a Ray Tune trial, logged to MLflow, compared at the end."""
    from polytask.spec import load_spec
    from polytask.study import run_study

    try:
        study = load_spec(spec)
        result = run_study(study, output=output, address=address, overwrite=overwrite, console=console, verbose=verbose)
    except StudyError as exc:
        _fail(exc)
    if result.comparison.best is None:
        errors.print("[red]no trial finished[/red]; see the failures above and in comparison.md")
        raise typer.Exit(1)


@app.command()
def validate(
    spec: SpecArg,
    data: Annotated[bool, typer.Option("--data/--no-data", help="Also load the data and check columns and labels.")] = True,
) -> None:
    """Check a study spec (and its data) without starting anything; print the resolved spec."""
    from polytask.data import check_frames, load_datasets
    from polytask.spec import load_spec

    try:
        study = load_spec(spec)
        if data:
            datasets = load_datasets(study)
            problems = check_frames(study, datasets)
            if problems:
                raise StudyError(problems, str(spec))
    except StudyError as exc:
        if exc.source is None:
            exc = StudyError(exc.problems, str(spec))
        _fail(exc)
    console.print(study.to_yaml(), highlight=False, markup=False, end="")
    if data:
        for dataset in datasets:
            errors.print(f"[green]valid[/green]: {dataset.label}: " + ", ".join(f"{k} {len(v)} rows" for k, v in dataset.frames.items()))


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
def report(output: OutputArg) -> None:
    """Rebuild a study's comparison (table, CSV, plot) from its MLflow runs."""
    from polytask.report import print_table, write_report
    from polytask.spec import load_spec
    from polytask.tracking import Tracking

    if not (output / "study.json").is_file():
        _fail(StudyError([_no_study(output)]))
    tracking = Tracking.load(output)
    study = load_spec(output / "spec.yaml")
    comparison = write_report(study, tracking, output)
    print_table(comparison, study, console)
    console.print(f"Report: {output / 'comparison.md'}")


@app.command()
def ui(
    output: OutputArg,
    host: Annotated[str, typer.Option(help="Interface to bind; keep 127.0.0.1 unless others must reach it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
) -> None:
    """Open the MLflow UI on a study's tracking store."""
    from polytask.tracking import Tracking

    if not (output / "study.json").is_file():
        _fail(StudyError([_no_study(output)]))
    tracking = Tracking.load(output)
    console.print(f"MLflow UI on http://{host}:{port} (store {tracking.uri}); Ctrl-C stops it")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking.uri, "--host", host, "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # The UI runs in its own process group (mlflow starts a uvicorn child): stopping this command,
    # by Ctrl-C or SIGTERM, stops the whole group instead of leaving the server behind.
    server = subprocess.Popen(command, env=env, start_new_session=True)
    stopping = []

    def stop(*_: object) -> None:  # only signals the group: the main thread's wait() returns
        stopping.append(True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        stop()
        code = server.wait()
    raise typer.Exit(0 if stopping else code)


@app.command()
def fetch(names: Annotated[Optional[list[str]], typer.Argument(help="Artifacts to fetch (default: all).", show_default=False)] = None) -> None:
    """Download pinned data and weights into the cache (for offline use later)."""
    from polytask.artifacts import ARTIFACTS, ArtifactError, cache_root
    from polytask.artifacts import fetch as fetch_artifact

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
