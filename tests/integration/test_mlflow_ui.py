"""The MLflow UI shows a finished study, checked in a real headless browser: a tiny study runs end
to end with `polytask run`, `polytask ui` serves its store, and Debian's Chromium (driven by
Selenium through Debian's chromedriver, see tests/mlflow_ui.py) must list every trial's run and
draw a per-task metric's chart with the values MLflow holds. Chromium is installed from Debian
when missing; the tests are skipped, with the reason, only where it cannot be."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import yaml
from mlflow import MlflowClient

from tests.mlflow_ui import MlflowUi, chromium, distinct_colours, ensure_chromium, study_runs, study_ui
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]  # a first run may install Chromium (~100 MB)

METRIC = "val/sentiment/accuracy"  # a per-task metric, logged once per epoch
EPOCHS = 2


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory, text_data):
    """A finished study's output folder: equal weighting and PCGrad, one seed, 2 epochs of 4 steps."""
    reason = ensure_chromium()  # before the study: no study for nothing where there can be no browser
    if reason is not None:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("ui_study")
    raw = study_dict(text_data, name="ui-check", candidates=[{"weighting": "equal"}, {"weighting": "pcgrad"}], seeds=[0])
    raw["training"].update(epochs=EPOCHS, steps_per_epoch=4)
    spec = folder / "ui-check.yaml"
    spec.write_text(yaml.safe_dump(raw))
    # mlflow.set_tracking_uri (earlier tests) sets MLFLOW_TRACKING_URI, which `polytask run` reads
    # as --tracking-uri; RAY_ADDRESS would send the study to a cluster. Neither is meant here.
    env = {key: value for key, value in os.environ.items() if key not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    completed = subprocess.run(
        [sys.executable, "-m", "polytask", "run", str(spec), "--output", str(folder / "out")],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return folder / "out"


@pytest.fixture(scope="module")
def ui(finished_study):
    """The study's MLflow UI (`polytask ui` on a free port) in a headless Chromium; afterwards the
    UI must be stopped (nothing answers on its port)."""
    with study_ui(finished_study) as url, chromium() as driver:
        yield MlflowUi(driver, url)
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"the MLflow UI still answers on port {port}"


@pytest.fixture(scope="module")
def trials(finished_study):
    """The study's tracking record and its trials' runs, read from MLflow (not from the UI)."""
    tracking, runs = study_runs(finished_study)
    assert sorted(run.info.run_name for run in runs) == ["equal/seed0", "pcgrad/seed0"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    return tracking, runs


def assert_real_png(path, width: int = 1000):
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= width and image.height >= 500, (image.format, image.size)
    colours = distinct_colours(path)
    assert colours > 200, f"{path} looks blank: {colours} distinct colours"


def test_the_runs_list_shows_every_trial_of_the_study(ui, trials, tmp_path):
    tracking, runs = trials
    listed = ui.runs(tracking.experiment_id, {run.info.run_name for run in runs})
    shown = ui.screenshot(tmp_path / "mlflow-ui-runs.png")
    expected = {run.info.run_id: run.info.run_name for run in runs} | {tracking.parent_run_id: "ui-check"}
    # Every trial's run (and the study's parent run) is listed under its name, linking to its own page.
    assert listed == expected, f"the runs list shows {listed}, MLflow holds {expected}\n{ui.excerpt()}"
    assert_real_png(shown)


def test_a_per_task_metric_is_drawn_for_every_trial(ui, trials, tmp_path):
    tracking, runs = trials
    client = MlflowClient(tracking.uri)
    history = {run.info.run_name: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, METRIC)) for run in runs}
    assert all(len(points) == EPOCHS for points in history.values()), history
    chart = ui.metric_chart(tracking.experiment_id, METRIC, set(history))
    shown = ui.screenshot(tmp_path / "mlflow-ui-chart.png")
    context = f"chart {chart}\n{ui.excerpt()}"
    # The chart is titled with the metric and plots, per trial, exactly the points MLflow holds ...
    assert chart.title == METRIC
    for name, points in history.items():
        plotted = chart.traces.get(name, [])
        assert len(plotted) == len(points) and [v for point in plotted for v in point] == pytest.approx([v for point in points for v in point]), (
            f"{name}: plotted {plotted}, MLflow holds {points}\n{context}"
        )
    assert set(chart.traces) <= set(history) | {"ui-check"}, context
    # ... and drew them: one SVG polyline through each trial's epochs, a marker per point, a legend entry per trial.
    assert chart.lines >= len(history), context
    assert chart.points >= sum(len(points) for points in history.values()), context
    assert {f"{name} ({METRIC})" for name in history} <= set(chart.legend), context
    assert_real_png(shown)
