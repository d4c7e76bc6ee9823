"""The report's figures: each writes a readable PNG, or None when there is nothing to draw;
the Pareto staircase's coordinates in every orientation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polytask.results.plots import (
    Point,
    StrategySummary,
    plot_front,
    plot_quality_vs_cost,
    plot_task_bars,
    plot_weights_over_time,
    staircase,
    strategy_colours,
)

COSTS = {"cost/step_time_ms": "step time (ms)", "cost/params/total": "trainable parameters"}


def columns(k: int) -> list[str]:
    return [f"best/val/t{i}/accuracy" for i in range(k)]


def summary(label: str, values: dict[str, list[float]]) -> StrategySummary:
    points = {}
    for column, seeds in values.items():
        mean = float(np.mean(seeds))
        half = 2.0 * float(np.std(seeds, ddof=1)) if len(seeds) > 1 else math.nan  # nan CI for one seed
        points[column] = Point(mean, mean - half, mean + half)
    return StrategySummary(label, points, {c: list(v) for c, v in values.items()})


def strategies(k: int) -> list[StrategySummary]:
    rng = np.random.default_rng(k)
    rows = []
    for n, (label, shift, seeds) in enumerate([("equal", 0.0, 3), ("pcgrad", 0.02, 3), ("tuned [0.63, 1.37]", 0.03, 3), ("single-task", -0.01, 1)]):
        values = {c: list(0.8 + shift + rng.normal(0, 0.01, seeds)) for c in columns(k)}
        values["best/val/score"] = [float(np.mean([values[c][s] for c in columns(k)])) for s in range(seeds)]
        values["cost/step_time_ms"] = list(12.0 * (1 + n) + rng.normal(0, 0.5, seeds))
        values["cost/params/total"] = [1e4 * 30**n] * seeds  # spans > 10x: log axis
        rows.append(summary(label, values))
    return rows


def search(k: int, n: int = 25) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    w = rng.uniform(0, 1, n)
    data = {c: 0.75 + 0.1 * (w if i == 0 else 1 - w if i == 1 else rng.uniform(0, 1, n)) + rng.normal(0, 0.005, n) for i, c in enumerate(columns(k))}
    return pd.DataFrame(data, index=range(100, 100 + n))


def front_of(frame: pd.DataFrame) -> list[int]:
    points = frame.to_numpy()
    return [frame.index[i] for i, p in enumerate(points) if not any((q >= p).all() and (q > p).any() for q in points)]


def assert_png(path, colours: list[str] = ()) -> None:
    """A readable PNG of a plausible size, not blank, showing each of ``colours`` somewhere."""
    assert path is not None and path.exists()
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        assert width >= 400 and height >= 300
        pixels = {tuple(c[1][:3]) for c in image.convert("RGB").getcolors(maxcolors=width * height)}
    assert len(pixels) > 20
    for colour in colours:
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert rgb in pixels, colour


@pytest.mark.parametrize("directions", [["max", "max"], ["min", "max"], ["max", "min"], ["min", "min"]])
def test_staircase_of_a_single_point_is_that_point(directions):
    xs, ys = staircase([0.5], [0.7], directions)
    assert xs.tolist() == [0.5] and ys.tolist() == [0.7]


def test_staircase_maximise_both():
    # (1.5, 1.5) is dominated by (2, 2); the front sorted by x: (1,3), (2,2), (3,1)
    xs, ys = staircase([2, 1.5, 3, 1], [2, 1.5, 1, 3], ["max", "max"])
    assert xs.tolist() == [1, 1, 2, 2, 3]
    assert ys.tolist() == [3, 2, 2, 1, 1]


def test_staircase_minimise_x():
    # x is a loss (lower is better): (2.5, 2) is dominated by (2, 3); (1, 1) and (2, 3) trade off.
    # What they dominate is x >= 1 and y <= 1, or x >= 2 and y <= 3: the boundary runs from
    # (2, 3) down to (2, 1), then left to (1, 1).
    xs, ys = staircase([1, 2, 2.5], [1, 3, 2], ["min", "max"])
    assert xs.tolist() == [2, 2, 1]
    assert ys.tolist() == [3, 1, 1]


def test_staircase_minimise_both_ignores_nan_and_duplicates():
    xs, ys = staircase([1, 3, 2, 3, 2, math.nan], [3, 1, 2, 3, 2, 0], ["min", "min"])
    assert xs.tolist() == [3, 3, 2, 2, 1]
    assert ys.tolist() == [1, 2, 2, 3, 3]
    assert staircase([math.nan], [1.0], ["max", "max"])[0].size == 0


def test_strategy_colours_follow_the_order_of_first_appearance():
    colours = strategy_colours(["equal", "pcgrad", "equal", "tuned"])
    assert list(colours) == ["equal", "pcgrad", "tuned"]
    assert len(set(colours.values())) == 3
    assert strategy_colours(["equal", "pcgrad"]) == {k: colours[k] for k in ("equal", "pcgrad")}


@pytest.mark.parametrize("k", [2, 3])
def test_plot_front_draws_every_strategy_in_its_colour(tmp_path, k):
    frame, rows = search(k), strategies(k)
    directions = ["max"] * (k - 1) + ["min"]
    path = plot_front(frame, front_of(frame), rows, columns(k), directions, [f"task {i} accuracy" for i in range(k)], tmp_path / "front.png", "front")
    assert path == tmp_path / "front.png"
    assert_png(path, list(strategy_colours(r.label for r in rows).values()))


def test_plot_front_has_nothing_to_draw(tmp_path):
    rows = strategies(2)
    assert plot_front(search(2), [100], rows, columns(1), ["max"], ["a"], tmp_path / "a.png", "one task") is None
    no_means = [StrategySummary("equal", {c: Point(math.nan, math.nan, math.nan) for c in columns(2)}, {})]
    assert plot_front(pd.DataFrame(), [], no_means, columns(2), ["max", "max"], ["a", "b"], tmp_path / "b.png", "empty") is None
    assert plot_front(search(2).drop(columns=columns(2)[1]), [], [], columns(2), ["max", "max"], ["a", "b"], tmp_path / "c.png", "no column") is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("k", [2, 3])
def test_plot_task_bars(tmp_path, k):
    rows = strategies(k)
    path = plot_task_bars(rows, columns(k), [f"task {i}" for i in range(k)], tmp_path / "bars.png", "per task", references={"single-task": {columns(k)[0]: 0.8}, "trivial": {columns(k)[0]: 0.5}})
    assert_png(path, list(strategy_colours(r.label for r in rows).values()))


def test_plot_task_bars_without_values(tmp_path):
    rows = [StrategySummary("equal", {"best/val/t0/accuracy": Point(math.nan, math.nan, math.nan)}, {})]
    assert plot_task_bars(rows, columns(2), ["a", "b"], tmp_path / "bars.png", "empty") is None
    assert plot_task_bars(strategies(2), [], [], tmp_path / "bars.png", "no column") is None


def test_plot_weights_over_time(tmp_path):
    steps = np.arange(0, 500, 25)
    histories = {
        "uncertainty": pd.DataFrame({"t0": 1 + 0.5 * np.sin(steps / 100), "t1": np.exp(-steps / 300)}, index=steps),
        "famo": pd.DataFrame({"t1": np.full(len(steps), 0.5), "t2": 0.5 + 0.1 * np.cos(steps / 50)}, index=steps),
        "dwa": pd.DataFrame({"t0": [1.0]}, index=[0]),  # one step: a marker
    }
    assert_png(plot_weights_over_time(histories, tmp_path / "weights.png", "task weights"))
    assert plot_weights_over_time({}, tmp_path / "none.png", "none") is None
    assert plot_weights_over_time({"equal": pd.DataFrame({"t0": [math.nan]}, index=[0])}, tmp_path / "nan.png", "nan") is None


def test_plot_quality_vs_cost(tmp_path):
    rows = strategies(2)
    path = plot_quality_vs_cost(rows, "best/val/score", "validation score", {**COSTS, "cost/peak_mem_mb": "peak memory (MiB)"}, tmp_path / "cost.png", "cost")
    assert_png(path, list(strategy_colours(r.label for r in rows).values()))


def test_plot_quality_vs_cost_without_costs(tmp_path):
    rows = [StrategySummary(r.label, {"best/val/score": r.points["best/val/score"]}, {}) for r in strategies(2)]
    assert plot_quality_vs_cost(rows, "best/val/score", "score", COSTS, tmp_path / "cost.png", "cost") is None
    assert plot_quality_vs_cost(strategies(2), "best/val/missing", "score", COSTS, tmp_path / "cost.png", "no quality") is None


def test_a_linear_cost_axis_starts_at_zero(tmp_path, monkeypatch):
    """Step times of 12–50 ms drawn on an axis from 0, never from below it (margins once took it to −40 ms);
    parameter counts spanning more than 10x stay on a log axis."""
    from polytask.results import plots

    limits = {}

    def keep_limits(fig, path):
        limits.update({ax.get_xlabel(): (ax.get_xlim(), ax.get_xscale()) for ax in fig.axes if ax.get_xlabel()})
        return path

    monkeypatch.setattr(plots, "_save", keep_limits)
    plot_quality_vs_cost(strategies(2), "best/val/score", "validation score", COSTS, tmp_path / "cost.png", "cost")
    (low, high), scale = limits["step time (ms)"]
    assert scale == "linear" and low == 0.0 and high > 48
    assert limits["trainable parameters"][1] == "log"
