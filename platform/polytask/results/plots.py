"""The figures of a study's comparison report (PNG files, drawn headless with matplotlib's Agg).

Each function takes summaries the report has already computed (means, 95% confidence
intervals, per-seed values), writes one PNG and returns its path, or returns None when there is
nothing to draw. A strategy keeps one colour in every figure: colours follow the order of the
``strategies`` list (pass the strategies in the same order to every function), or an explicit
``colours`` mapping (label -> colour, see :func:`strategy_colours`).

- :func:`plot_front` — the headline figure. Every searched scalarization trial (grey dots), the
  Pareto front those trials trace (a black staircase) and each strategy's mean with its 95% CI on
  both axes, one panel per pair of tasks. Tuned scalarization is the baseline an MTL method has
  to beat (Xin et al., "Do Current Multi-Task Optimization Methods in Deep Learning Even Help?",
  NeurIPS 2022): a method is only interesting where its mean lies beyond the front.
- :func:`plot_task_bars` — each task on its own y scale, one bar per strategy, seeds as dots and
  reference lines (the single-task baseline dashed, the trivial predictor dotted): which strategy
  helps or hurts which task, whether it learnt anything at all, and whether the difference is
  larger than the spread over seeds. The y axes are zoomed to the data
  (not from 0), so small differences are visible; the labels say so.
- :func:`plot_weights_over_time` — the task weights a dynamic weighting strategy (uncertainty,
  FAMO, DWA, ...) chose during training: whether it settled, oscillated or starved a task.
- :func:`plot_quality_vs_cost` — quality against step time, parameters, memory: what a strategy's
  gain costs (PCGrad and MGDA need one backward pass per task; MMoE/PLE add parameters). Cost
  axes start at 0 (a linear one) so that a cost is read against nothing spent.

The error bars are what the caller puts in ``Point.low``/``high``: the report gives a 95% CI with
three seeds or more and the min–max of the seeds with fewer (two seeds make a t-interval 12.7
standard errors wide), and says which in the figure's title.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

DPI = 130
MAX_PAIRS = 6  # plot_front: at most this many pairs of tasks (the first ones, in task order)
FRONT_LABEL = "Pareto front of tuned scalarization"
SEARCH_LABEL = "search trials (tuned scalarization)"
ALL_TASKS_LABEL = "Pareto-optimal over all tasks"  # with 3+ tasks: on the front, but not on this pair's
SEEDS_LABEL = "individual seeds"
SEARCH_COLOUR = "0.72"  # light grey: kept out of the strategy palette
REFERENCE_STYLES = ("--", ":", "-.")  # plot_task_bars: the reference lines, in the order given
# tab10 without its grey (grey is the search trials'), then tab20b for long lists; cycles after.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#5254a3", "#8ca252", "#bd9e39", "#ad494a", "#a55194",
)
TASK_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#e41a1c", "#377eb8")
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class Point:
    """One strategy's summary on one metric column: the mean over seeds and its 95% CI
    (``low``/``high`` are nan when undefined, e.g. one seed: then no error bar is drawn)."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class StrategySummary:
    """One row of the comparison. ``seeds[column]`` lists the per-seed values; lists of
    different columns must be in the same seed order (plot_front pairs them up to scatter
    each seed at its (x, y))."""

    label: str
    points: dict[str, Point] = field(default_factory=dict)
    seeds: dict[str, list[float]] = field(default_factory=dict)


def strategy_colours(labels: Iterable[str]) -> dict[str, str]:
    """label -> colour, in order of first appearance. What every function uses by default
    (from the order of its ``strategies``); pass the result as ``colours=`` to keep a strategy's
    colour when a figure shows only some of the strategies."""
    colours: dict[str, str] = {}
    for label in labels:
        if label not in colours:
            colours[label] = PALETTE[len(colours) % len(PALETTE)]
    return colours


def staircase(xs: Sequence[float], ys: Sequence[float], directions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the step line through the 2-D Pareto front of the points (x, y).

    ``directions`` ("max"/"min" for x and y) orient the axes: in maximise/maximise the front
    points are sorted by x ascending (so y descends) and joined by vertical-then-horizontal
    steps, (x1, y1) -> (x1, y2) -> (x2, y2) -> ..., the boundary of the region the front
    dominates. A "min" axis is flipped, the staircase built, and flipped back. Points that are
    dominated in 2-D (or duplicates, or nan) are left out. Empty arrays for no finite point.
    """
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    sx, sy = (1.0 if d == "max" else -1.0 for d in directions)
    u, v = x[finite] * sx, y[finite] * sy
    kept: list[int] = []
    best = -math.inf
    for i in np.lexsort((-v, -u)):  # u descending, ties by v descending
        if v[i] > best:  # not dominated by any point of larger (or equal) u
            kept.append(int(i))
            best = v[i]
    kept.reverse()  # u ascending, v descending
    if not kept:
        return np.array([]), np.array([])
    us, vs = [u[kept[0]]], [v[kept[0]]]
    for previous, current in zip(kept, kept[1:]):
        us += [u[previous], u[current]]
        vs += [v[current], v[current]]
    return np.array(us) * sx, np.array(vs) * sy


def _strategy_points(ax, strategies: list[StrategySummary], x: str, y: str, colours: Mapping[str, str], handles: dict[str, object]) -> None:
    """Each strategy's mean on the (x, y) panel with its interval bars, and its seeds as faint diamonds."""
    for strategy in strategies:
        means = _means(strategy, x, y)
        if not means:
            continue
        colour = colours.get(strategy.label, "black")
        seeds_x, seeds_y = strategy.seeds.get(x, []), strategy.seeds.get(y, [])
        if len(seeds_x) == len(seeds_y) and len(seeds_x) > 1:
            ax.scatter(seeds_x, seeds_y, s=13, marker="D", color=colour, alpha=0.4, edgecolors="none", zorder=4)
            handles.setdefault(SEEDS_LABEL, ax.scatter([], [], s=13, marker="D", color="0.3", alpha=0.5, edgecolors="none"))
        handles[strategy.label] = ax.errorbar(
            *means, xerr=_err(strategy.points[x]), yerr=_err(strategy.points[y]),
            fmt="o", ms=7, mec="white", mew=0.8, capsize=3, elinewidth=1.2, color=colour, zorder=5,
        )


def plot_front(
    search: pd.DataFrame | None,
    front: list[int] | pd.Index,
    strategies: list[StrategySummary],
    columns: list[str],
    directions: list[str],
    names: list[str],
    path: Path,
    title: str,
    *,
    colours: Mapping[str, str] | None = None,
) -> Path | None:
    """The tuned-scalarization Pareto front against every strategy, per pair of tasks.

    ``search``: one row per searched trial (with ``columns``); ``front``: index labels of its
    Pareto-optimal rows (labels not in ``search`` are ignored). ``columns[i]``: task i's primary
    validation metric, ``names[i]`` its axis label, ``directions[i]`` "max" or "min".
    Two tasks give one panel; more give one panel per pair (the first ``MAX_PAIRS`` pairs in task
    order) on a grid. On each: search trials as grey dots, the staircase through the front points
    that are non-dominated on that pair (with more than two tasks, the other Pareto-optimal
    trials as hollow black circles), each strategy's mean with 95% CI bars on both axes and its
    seeds as faint diamonds, and "better" arrows in the corner the directions point to.

    Returns None when there are fewer than 2 columns, or when no pair has a searched trial or a
    strategy mean with finite values on both of its columns.
    """
    if len(columns) < 2:
        return None
    search = search if search is not None else pd.DataFrame()
    front = [label for label in front if label in search.index]
    colours = dict(colours) if colours is not None else strategy_colours(s.label for s in strategies)
    pairs = [(i, j) for i in range(len(columns)) for j in range(i + 1, len(columns))][:MAX_PAIRS]
    pairs = [(i, j) for i, j in pairs if _search_xy(search, columns[i], columns[j])[0].size or any(_means(s, columns[i], columns[j]) for s in strategies)]
    if not pairs:
        return None
    plt_figure = _figure_api()
    rows, cols = _grid(len(pairs), square=True)
    with _style():
        fig = plt_figure(figsize=(4.6 * cols + (0 if rows * cols > len(pairs) else 2.4), 4.1 * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        handles: dict[str, object] = {}
        for ax, (i, j) in zip(axes, pairs):
            x, y = columns[i], columns[j]
            sx, sy = _search_xy(search, x, y)
            if sx.size:
                handles[SEARCH_LABEL] = ax.scatter(sx, sy, s=14, color=SEARCH_COLOUR, edgecolors="none", zorder=1)
            fx, fy = _search_xy(search.loc[front] if front else search.iloc[:0], x, y)
            if fx.size:
                lx, ly = staircase(fx, fy, [directions[i], directions[j]])
                (handles[FRONT_LABEL],) = ax.plot(lx, ly, "-", color="black", lw=1.4, zorder=2)
                ax.scatter(lx[::2], ly[::2], s=22, color="black", zorder=3)  # the front points: every other vertex of the staircase
                on_line = set(zip(lx[::2].tolist(), ly[::2].tolist()))
                off = [(a, b) for a, b in zip(fx.tolist(), fy.tolist()) if (a, b) not in on_line]
                if off:
                    handles[ALL_TASKS_LABEL] = ax.scatter(*zip(*off), s=26, facecolors="none", edgecolors="black", linewidths=0.9, zorder=3)
            _strategy_points(ax, strategies, x, y, colours, handles)
            ax.set_xlabel(names[i])
            ax.set_ylabel(names[j])
            ax.grid(alpha=0.25)
            ax.margins(0.08)
            _better(ax, directions[i], directions[j])
        spare = axes[len(pairs):]
        for ax in spare:
            ax.axis("off")
        order = [SEARCH_LABEL, FRONT_LABEL, ALL_TASKS_LABEL] + [s.label for s in strategies] + [SEEDS_LABEL]
        shown = [label for label in order if label in handles]
        if len(spare):  # an empty grid cell: the legend goes there
            spare[0].legend([handles[k] for k in shown], shown, loc="center", frameon=False)
        else:
            fig.legend([handles[k] for k in shown], shown, loc="outside right center", frameon=False)
        fig.suptitle(title)
        return _save(fig, path)


def plot_task_bars(
    strategies: list[StrategySummary],
    columns: list[str],
    names: list[str],
    path: Path,
    title: str,
    references: Mapping[str, Mapping[str, float]] | None = None,
    *,
    colours: Mapping[str, str] | None = None,
    interval: str = "95% CI",
) -> Path | None:
    """One panel per task column (each on its own y scale), one bar per strategy at its mean
    with its interval (``interval`` names it on the y axis) as an error bar and each seed as a
    dot; each reference (``references[label][column]``: "single-task", the single-task mean;
    "trivial", the trivial predictor) as a labelled horizontal line, dashed, dotted, ... in that
    order. The y axes are zoomed to the data, not from 0 (the y label says so), so bar heights
    are not proportional to the values.

    A strategy without a value on a column keeps its place (no bar), so bars line up across
    panels. Columns without any finite mean are left out; returns None when none is left.
    """
    references = references or {}
    colours = dict(colours) if colours is not None else strategy_colours(s.label for s in strategies)
    shown = [(c, n) for c, n in zip(columns, names) if any(_finite_mean(s, c) for s in strategies)]
    if not shown:
        return None
    from matplotlib.colors import to_rgba

    plt_figure = _figure_api()
    rows, cols = _grid(len(shown))
    width = max(3.2, 0.5 * len(strategies) + 1.4)
    positions = np.arange(len(strategies))
    with _style():
        fig = plt_figure(figsize=(width * cols, 3.9 * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for k, (ax, (column, name)) in enumerate(zip(axes, shown)):
            values: list[float] = []
            for position, strategy in zip(positions, strategies):
                if not _finite_mean(strategy, column):
                    continue
                point, colour = strategy.points[column], colours.get(strategy.label, "black")
                ax.bar(position, point.mean, width=0.7, facecolor=to_rgba(colour, 0.55), edgecolor=colour, linewidth=1.2, zorder=2)
                error = _err(point)
                if error is not None:
                    ax.errorbar(position, point.mean, yerr=error, fmt="none", ecolor="black", capsize=4, elinewidth=1.1, zorder=3)
                    values += [point.low, point.high]
                seeds = [v for v in strategy.seeds.get(column, []) if np.isfinite(v)]
                if len(seeds) > 1:
                    jitter = np.linspace(-0.15, 0.15, len(seeds))
                    ax.scatter(position + jitter, seeds, s=11, color="black", alpha=0.55, edgecolors="none", zorder=4)
                values += [point.mean, *seeds]
            for (label, levels), style in zip(references.items(), REFERENCE_STYLES):
                level = levels.get(column)
                if level is not None and np.isfinite(level):
                    ax.axhline(level, ls=style, color="0.25", lw=1.2, zorder=1)
                    ax.annotate(label, xy=(1.0, level), xycoords=("axes fraction", "data"), xytext=(0, 2), textcoords="offset points",
                                ha="right", va="bottom", fontsize=8, color="0.25")
                    values.append(level)
            ax.set_ylim(*_zoom(values))
            ax.set_xticks(positions, [s.label for s in strategies], rotation=30, ha="right")
            ax.set_title(name)
            ax.grid(axis="y", alpha=0.25, zorder=0)
            if k % cols == 0:
                ax.set_ylabel(f"mean, {interval} (axis not from 0)")
        for ax in axes[len(shown):]:
            ax.axis("off")
        fig.suptitle(title)
        return _save(fig, path)


def plot_weights_over_time(histories: dict[str, pd.DataFrame], path: Path, title: str) -> Path | None:
    """The task weights each strategy chose during training: one small panel per strategy (in
    the order of ``histories``, on a grid sharing the x axis), one line per task, a task in the
    same colour in every panel. ``histories[label]``: index = training step, columns = task
    names, values = the weight (mean over seeds) at that step.

    Returns None when ``histories`` is empty or no frame has a finite value.
    """
    frames = {label: _numeric(frame) for label, frame in histories.items() if frame is not None}
    frames = {label: frame for label, frame in frames.items() if frame.notna().any().any()}
    if not frames:
        return None
    tasks: list[str] = []
    for frame in frames.values():
        tasks += [str(t) for t in frame.columns if str(t) not in tasks]
    task_colour = {task: TASK_PALETTE[k % len(TASK_PALETTE)] for k, task in enumerate(tasks)}
    plt_figure = _figure_api()
    rows, cols = _grid(len(frames))
    with _style():
        fig = plt_figure(figsize=(4.0 * cols + 1.6, 2.9 * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
        handles: dict[str, object] = {}
        for k, (ax, (label, frame)) in enumerate(zip(axes, frames.items())):
            for task in frame.columns:
                series = frame[task].dropna()
                if len(series):
                    (handles[str(task)],) = ax.plot(series.index, series.to_numpy(), color=task_colour[str(task)], lw=1.4,
                                                    marker="o" if len(series) == 1 else None, ms=4)
            ax.set_title(label)
            ax.grid(alpha=0.25)
            if k % cols == 0:
                ax.set_ylabel("task weight")
            if k + cols >= len(frames):  # the lowest panel of its column
                ax.set_xlabel("training step")
                ax.xaxis.set_tick_params(labelbottom=True)
        for ax in axes[len(frames):]:
            ax.axis("off")
        fig.legend([handles[t] for t in tasks if t in handles], [t for t in tasks if t in handles], loc="outside right center", frameon=False, title="task")
        fig.suptitle(title)
        return _save(fig, path)


def plot_quality_vs_cost(
    strategies: list[StrategySummary],
    quality: str,
    quality_name: str,
    costs: dict[str, str],
    path: Path,
    title: str,
    *,
    colours: Mapping[str, str] | None = None,
) -> Path | None:
    """Quality against cost: one panel per cost column (``costs``: column -> axis label) that
    some strategy has a finite mean on (together with a finite ``quality`` mean); x = the cost's
    mean, y = the quality's mean with its 95% CI (x CI too where defined), each point labelled
    with its strategy. The x axis is logarithmic when the costs are all positive and span more
    than 10x (typical of parameter counts).

    Returns None when no cost column has data.
    """
    colours = dict(colours) if colours is not None else strategy_colours(s.label for s in strategies)
    panels = [(c, n, [s for s in strategies if _means(s, c, quality)]) for c, n in costs.items()]
    panels = [(c, n, members) for c, n, members in panels if members]
    if not panels:
        return None
    plt_figure = _figure_api()
    rows, cols = _grid(len(panels))
    with _style():
        fig = plt_figure(figsize=(4.8 * cols, 4.0 * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for k, (ax, (column, name, members)) in enumerate(zip(axes, panels)):
            xs = np.array([s.points[column].mean for s in members])
            for strategy in members:
                colour = colours.get(strategy.label, "black")
                ax.errorbar(strategy.points[column].mean, strategy.points[quality].mean, xerr=_err(strategy.points[column]),
                            yerr=_err(strategy.points[quality]), fmt="o", ms=7, mec="white", mew=0.8, capsize=3, color=colour, zorder=3)
            ax.margins(0.15)
            if (xs > 0).all() and xs.max() > 10 * xs.min():
                ax.set_xscale("log")
            else:
                ax.set_xlim(left=0)  # a cost is read against nothing spent
            _label_points(ax, xs, [s.points[quality].mean for s in members], [s.label for s in members], [colours.get(s.label, "black") for s in members])
            ax.set_xlabel(name)
            if k % cols == 0:
                ax.set_ylabel(quality_name)
            ax.grid(alpha=0.25)
        for ax in axes[len(panels):]:
            ax.axis("off")
        fig.suptitle(title)
        return _save(fig, path)


# --------------------------------------------------------------------------- helpers


def _figure_api():
    """A figure factory on the Agg canvas. Figures are made with ``matplotlib.figure.Figure``,
    not pyplot, so nothing is registered in pyplot's global figure list (nothing to close, no
    leak when called in a loop or from threads) and the caller's backend is left as it is."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def figure(**kwargs):
        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)
        return fig

    return figure


def _style():
    import matplotlib

    return matplotlib.rc_context(STYLE)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png", facecolor="white")
    fig.clear()
    return path


def _grid(n: int, square: bool = False) -> tuple[int, int]:
    """(rows, columns) for n panels: a single row up to 3 (unless ``square``), else near-square."""
    if n <= (2 if square else 3):
        return 1, n
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def _finite_mean(strategy: StrategySummary, column: str) -> bool:
    point = strategy.points.get(column)
    return point is not None and np.isfinite(point.mean)


def _means(strategy: StrategySummary, x: str, y: str) -> tuple[float, float] | None:
    if _finite_mean(strategy, x) and _finite_mean(strategy, y):
        return strategy.points[x].mean, strategy.points[y].mean
    return None


def _err(point: Point) -> list[list[float]] | None:
    """Asymmetric error bar [[below], [above]] from the CI; None when a bound is not finite."""
    if not (np.isfinite(point.low) and np.isfinite(point.high)):
        return None
    return [[max(point.mean - point.low, 0.0)], [max(point.high - point.mean, 0.0)]]


def _search_xy(search: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    if x not in search or y not in search or not len(search):
        return np.array([]), np.array([])
    values = search[[x, y]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values).all(axis=1)]
    return values[:, 0], values[:, 1]


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.apply(pd.to_numeric, errors="coerce")
    return frame.sort_index()


def _zoom(values: list[float]) -> tuple[float, float]:
    """y limits around the values with a 12% margin (not from 0)."""
    finite = [v for v in values if np.isfinite(v)]
    low, high = min(finite), max(finite)
    span = high - low or (abs(high) * 0.05 or 1.0)
    return low - 0.12 * span, high + 0.12 * span


def _better(ax, x_direction: str, y_direction: str) -> None:
    """'better' with arrows, in the corner both directions point to (beyond the front, so
    usually empty)."""
    right, top = x_direction == "max", y_direction == "max"
    text = f"better {'→' if right else '←'} {'↑' if top else '↓'}"
    ax.text(0.98 if right else 0.02, 0.97 if top else 0.03, text, transform=ax.transAxes, ha="right" if right else "left", va="top" if top else "bottom",
            fontsize=8.5, color="0.3", bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "0.8", "alpha": 0.8}, zorder=6)


# candidate label offsets (points): right-above, right-below, left-above, left-below, then farther out
_OFFSETS = [(6, 5), (6, -5), (-6, 5), (-6, -5), (6, 16), (6, -16), (-6, 16), (-6, -16), (0, 26), (0, -26)]


def _label_points(ax, xs, ys, labels, colours) -> None:
    """Annotate each point with its label, trying a few offsets so that labels overlap less
    (a greedy check of approximate text boxes in display space)."""
    scale = ax.figure.dpi / 72.0
    ax.get_xlim(), ax.get_ylim()  # finalise autoscaling before reading the transform
    anchors = ax.transData.transform(np.column_stack([xs, ys]))
    placed: list[tuple[float, float, float, float]] = []
    for x, y, (px, py), label, colour in zip(xs, ys, anchors, labels, colours):
        width, height = (len(label) * 5.4 + 2) * scale, 11 * scale
        choice, box = _OFFSETS[0], None
        for dx, dy in _OFFSETS:
            x0 = px + dx * scale - (width if dx < 0 else 0)
            y0 = py + dy * scale - (height if dy < 0 else 0)
            candidate = (x0, y0, x0 + width, y0 + height)
            if not any(_overlap(candidate, other) for other in placed):
                choice, box = (dx, dy), candidate
                break
        if box is None:
            x0 = px + choice[0] * scale
            y0 = py + choice[1] * scale
            box = (x0, y0, x0 + width, y0 + height)
        placed.append(box)
        ax.annotate(label, xy=(x, y), xytext=choice, textcoords="offset points", fontsize=8, color=colour,
                    ha="right" if choice[0] < 0 else "left", va="top" if choice[1] < 0 else "bottom")


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
