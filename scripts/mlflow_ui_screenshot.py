"""Screenshots of a finished study in the MLflow UI, taken by a real headless Chromium.

Starts ``polytask ui OUTPUT`` on a free port, opens the study's runs list (nested trial runs
expanded) and the chart of one per-task metric across every trial (full screen), checks that every
trial is listed and drawn, saves the screenshots and stops the UI. The docs' screenshots::

    .venv/bin/python scripts/mlflow_ui_screenshot.py runs/quickstart docs/mlflow-ui-chart.png --runs docs/mlflow-ui-runs.png

Needs Debian's ``chromium`` and ``chromium-driver`` (installed here when missing, as root with
apt-get) and Selenium (the ``dev`` extra). The browser code is shared with
``tests/integration/test_mlflow_ui.py``: it lives in ``tests/mlflow_ui.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.mlflow_ui

from tests.mlflow_ui import WAIT, WINDOW, MlflowUi, UiError, chromium, distinct_colours, ensure_chromium, study_runs, study_ui  # noqa: E402


def default_metric(output: Path, runs) -> str:
    """``val/<task>/<primary metric>`` of the task whose primary metric differs most between the
    trials' final values: the chart that shows most (the quickstart: ``val/sentiment/accuracy``)."""
    from polytask.spec import load_spec

    keys = [f"val/{task.name}/{task.primary_metric}" for task in load_spec(output / "spec.yaml").tasks]

    def spread(key: str) -> float:
        values = [run.data.metrics[key] for run in runs if key in run.data.metrics]
        return statistics.pstdev(values) if len(values) > 1 else -1.0

    return max(keys, key=spread)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Example: %(prog)s runs/quickstart docs/mlflow-ui-chart.png --runs docs/mlflow-ui-runs.png"
    )
    parser.add_argument("output", type=Path, help="a finished study's output folder (runs/<study>, with study.json)")
    parser.add_argument("png", type=Path, help="where to save the screenshot of the metric chart")
    parser.add_argument("--runs", type=Path, metavar="PNG", help="also save a screenshot of the runs list here")
    parser.add_argument("--metric", help="the metric to chart (default: val/<task>/<primary metric> of the task that differs most between trials)")
    parser.add_argument("--width", type=int, default=WINDOW[0], help="browser window width in pixels (default: %(default)s)")
    parser.add_argument(
        "--height", type=int, default=WINDOW[1], help="browser window height in pixels; taller when the runs list needs it (default: %(default)s)"
    )
    parser.add_argument("--timeout", type=float, default=WAIT, help="seconds to wait for each page element (default: %(default)s)")
    args = parser.parse_args(argv)

    if not (args.output / "study.json").is_file():
        parser.error(f"{args.output} holds no study (no study.json)")
    reason = ensure_chromium()
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    tracking, runs = study_runs(args.output)
    if not runs:
        print(f"error: the study in {args.output} has no trial runs in MLflow ({tracking.uri})", file=sys.stderr)
        return 1
    metric = args.metric or default_metric(args.output, runs)
    charted = {run.info.run_name for run in runs if metric in run.data.metrics}
    if not charted:
        print(f"error: no trial of the study logged {metric}", file=sys.stderr)
        return 1
    height = max(args.height, 400 + 31 * (len(runs) + 1))  # every row of the runs list in the window (the grid draws only what is visible)

    started = time.monotonic()
    try:
        with study_ui(args.output) as url, chromium(args.width, height) as driver:
            print(f"MLflow UI on {url}; experiment {tracking.experiment_id}, {len(runs)} trial runs")
            ui = MlflowUi(driver, url, timeout=args.timeout)
            listed = ui.runs(tracking.experiment_id, {run.info.run_name for run in runs})
            print(f"runs list: {len(listed)} runs listed ({', '.join(sorted(listed.values()))})")
            if args.runs is not None:
                ui.screenshot(args.runs)
                print(f"saved {args.runs} ({distinct_colours(args.runs)} colours)")
            driver.set_window_size(args.width, args.height)
            chart = ui.metric_chart(tracking.experiment_id, metric, charted)
            print(f"chart {metric}: {len(chart.traces)} traces, {chart.lines} lines and {chart.points} points drawn")
            ui.screenshot(args.png)
            print(f"saved {args.png} ({distinct_colours(args.png)} colours)")
    except (UiError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"done in {time.monotonic() - started:.0f} s; the MLflow UI is stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
