"""The study report: the comparison (polytask.results.comparison) rendered for people.

Written at the end of every study and by ``polytask report`` (from an output folder, or from an
MLflow experiment alone): ``comparison.md`` and ``comparison.html`` (the same report, the HTML
self-contained with its figures), ``comparison.csv`` (every row's statistics), ``trials.csv``
(every run) and the figures ``front.png`` (the tuned-scalarization Pareto front with each
strategy's mean and 95% CI), ``tasks.png`` (per-task bars with CIs), ``weights.png`` (task weights
over training) and ``cost.png`` (quality against step time and parameters). All of them are
attached to the study's MLflow parent run under ``report/``; the terminal gets the headline.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from polytask.ops.records import attach_to_study, metric_histories, study_metrics
from polytask.ops.tracking import Tracking
from polytask.results import plots
from polytask.results.comparison import COST_COLUMNS, MIN_SEEDS, Comparison, Row, collect_trials, compare
from polytask.results.html_report import render_html
from polytask.schema import (
    BASELINE,
    BASELINE_ROW,
    BEST_SCORE,
    REPORT_FILES,
    SEARCH,
    STOPPED,
    TEACHER,
    TRIAL,
    TRIVIAL,
    params_column,
    step_key,
    task_weight,
    teacher_task,
)
from polytask.spec import StudySpec

QUALITY_COSTS = {"cost/step_time_ms": "step time (ms)", "cost/params/total": "trainable parameters"}


def write_report(spec: StudySpec, tracking: Tracking, output: Path) -> Comparison:
    """Build the comparison from MLflow, write the report into ``output`` and attach it to the parent run."""
    output.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:  # a figure with nothing to draw this time must not linger from an earlier report
        (output / name).unlink(missing_ok=True)
    comparison = compare(spec, collect_trials(tracking), study_metrics(tracking, f"{TRIVIAL}/"))
    figures = make_figures(spec, comparison, tracking, output)
    markdown = to_markdown(comparison, spec, figures)
    (output / "comparison.md").write_text(markdown)
    (output / "comparison.html").write_text(render_html(markdown, f"Study {spec.name}", figures))
    to_frame(comparison).to_csv(output / "comparison.csv", index=False)
    comparison.trials.to_csv(output / "trials.csv", index=False)
    attach_to_study(tracking, [output / name for name in REPORT_FILES], "report")
    return comparison


# --------------------------------------------------------------------------- figures




def summaries(rows: list[Row], columns: list[str]) -> list[plots.StrategySummary]:
    """Each row's mean and interval per column, for the figures: the 95% CI with three seeds or
    more, the min–max of the seeds with fewer (a 2-seed t-interval is 12.7 standard errors wide)."""
    out = []
    for row in rows:
        points = {}
        for column in columns:
            e, values = row.estimate(column), row.values.get(column, [])
            low, high = (e.ci_low, e.ci_high) if len(values) >= MIN_SEEDS or not values else (min(values), max(values))
            points[column] = plots.Point(e.mean, low, high)
        out.append(plots.StrategySummary(row.label, points, {c: list(row.values.get(c, [])) for c in columns}))
    return out


def interval_name(comparison: Comparison) -> str:
    """What the figures' error bars are: the 95% CI, or the min–max where a row has fewer than
    three seeds."""
    few = [r.trials for r in comparison.rows if r.kind in ("strategy", "baseline") and 0 < r.trials < MIN_SEEDS]
    return f"min–max over {max(few)} seed{'s' if max(few) > 1 else ''}" if few else "95% CI"


def make_figures(spec: StudySpec, comparison: Comparison, tracking: Tracking, output: Path) -> list[Path]:
    tasks, primary = spec.main_tasks, comparison.primary
    names = [f"{t.name} {t.primary_metric} (val)" for t in tasks]
    directions = [t.resolved_direction for t in tasks]
    strategies = [r for r in comparison.rows if r.kind not in ("front", "trivial")]
    title, interval = f"{spec.name}:", interval_name(comparison)
    figures = []
    reference = comparison.reference or next(iter(comparison.fronts), None)  # a tuned row is named after its candidate
    search, front = comparison.fronts.get(reference, (pd.DataFrame(columns=primary), []))
    front_title = f"{title} {reference}'s Pareto front and strategy means ({interval})" if reference else f"{title} strategy means ({interval})"
    figures.append(plots.plot_front(search, front, summaries(strategies, primary), primary, directions, names, output / "front.png", front_title))
    split = "test" if comparison.split == "test" else "best/val"
    shown = [f"{split}/{t.name}/{t.primary_metric}" for t in tasks]
    lines = {r.label: {c: r.mean(c) for c in shown} for r in comparison.rows if r.kind in ("baseline", "trivial")}
    figures.append(plots.plot_task_bars(summaries([r for r in strategies if r.kind != "baseline"], shown), shown,
                                        [f"{t.name} {t.primary_metric} ({comparison.split})" for t in tasks], output / "tasks.png",
                                        f"{title} per-task {comparison.split} metric, mean and {interval}", lines, interval=interval))
    figures.append(plots.plot_weights_over_time(weight_histories(spec, comparison, tracking), output / "weights.png", f"{title} task weights during training (mean over seeds)"))
    figures.append(plots.plot_quality_vs_cost(summaries(strategies, [BEST_SCORE, *QUALITY_COSTS]), BEST_SCORE, "validation score",
                                              {c: n for c, n in QUALITY_COSTS.items() if c in comparison.columns}, output / "cost.png",
                                              f"{title} quality ({interval}) against cost"))
    return [f for f in figures if f is not None]


def weight_histories(spec: StudySpec, comparison: Comparison, tracking: Tracking) -> dict[str, pd.DataFrame]:
    """Per strategy: each task's weight at each logged step (``step/weight/<task>``), mean over its runs."""
    trials = comparison.role(TRIAL)
    keys = {step_key(task_weight(t)): t for t in spec.task_names}
    histories = {}
    for row in comparison.rows:
        if row.kind != "strategy" or not len(trials):
            continue
        runs = trials[(trials["candidate"] == row.candidate) & (trials["phase"] != SEARCH) & (trials["status"] == "FINISHED")]
        series = []
        for run in metric_histories(tracking, runs["run_id"], keys).values():
            points = {keys[key]: values for key, values in run.items()}
            if any(points.values()):
                series.append(pd.DataFrame(points))
        if series:
            histories[row.label] = pd.concat(series).groupby(level=0).mean().sort_index()
    return histories


# --------------------------------------------------------------------------- text


def short(column: str) -> str:
    """``best/val/sentiment/accuracy`` -> ``sentiment accuracy``; keeps test/cost prefixes."""
    if column in COST_COLUMNS:
        return COST_COLUMNS[column]
    parts = column.split("/")
    if parts[:2] == ["best", "val"]:
        return " ".join(parts[2:])  # best/val/score -> "score"; best/val/score/mae (a task named score) -> "score mae"
    return " ".join(parts)


def cell(row: Row, column: str, digits: int = 3) -> str:
    mean, std = row.mean(column), row.std(column)
    if math.isnan(mean):
        return "—"
    if column.startswith("cost/params/"):
        return f"{mean / 1e6:.3f}M" if mean >= 1e5 else f"{mean:,.0f}"
    digits = 1 if column.startswith("cost/") else digits
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _digits(rows: list[Row], column: str) -> int:
    """3 decimals, or 4 where every spread over seeds is below 0.001 (ROC AUCs of large test
    sets), so that the differences the table is about are not rounded away."""
    spreads = [r.std(column) for r in rows if not math.isnan(r.std(column))]
    return 4 if spreads and max(spreads) < 0.001 else 3


def _signed(value: float, digits: int = 2) -> str:
    return "—" if math.isnan(value) else f"{value:+.{digits}f}"


def _p(value: float) -> str:
    return "—" if math.isnan(value) else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _number(value, digits: int = 3) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.{digits}f}"


NOT_LEARNED = "†"  # after a primary metric not clearly above the trivial predictor


def _ratio(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}×"


def _percent(value: float) -> str:
    return "—" if math.isnan(value) else f"{100 * value:+.2f}%"


def headline(comparison: Comparison, spec: StudySpec) -> tuple[list[str], list[list[str]]]:
    """The comparison table: headers and one row of cells per strategy."""
    split = "test" if comparison.split == "test" else "best/val"
    tasks = [f"{split}/{t.name}/{t.primary_metric}" for t in spec.main_tasks]
    costs = [c for c in ("cost/step_time_ms", "cost/params/total") if c in comparison.columns]
    has_baseline = any(r.kind == "baseline" for r in comparison.rows)
    headers = ["strategy", "seeds"] + [f"{short(c)}" for c in tasks] + ["val score"]
    headers += ["Δm% (per task)", "Δm% (per metric)", "params vs single-task"] if has_baseline else []
    headers += ["mean rank"] + ([f"p vs {comparison.reference}", "HV gain vs front"] if comparison.reference else []) + [short(c) for c in costs]
    digits = {c: _digits(comparison.rows, c) for c in tasks + [BEST_SCORE]}
    body = []
    for row in comparison.rows:
        measured = row.kind != "trivial"
        cells = [("★ " if row.best else "") + row.label, (f"{row.trials}" + (f" ({row.failed} failed)" if row.failed else "")) if measured else "—"]
        cells += [cell(row, c, digits[c]) + (f" {NOT_LEARNED}" if row.learned.get(t.name) is False else "") for c, t in zip(tasks, spec.main_tasks)]
        cells += [cell(row, BEST_SCORE, digits[BEST_SCORE])]
        cells += [_signed(row.delta_m_task), _signed(row.delta_m_metric), _ratio(row.params_ratio)] if has_baseline else []
        cells += [_number(row.rank, 2)]
        if comparison.reference:
            cells += ["(reference)" if row.label == comparison.reference else _p(row.p_value), _percent(row.hv_gain)]
        cells += [cell(row, c) for c in costs]
        body.append(cells)
    return headers, body


def legend(comparison: Comparison) -> list[str]:
    """What the table's marks mean, and its warnings: lines for the terminal and the report."""
    lines = []
    if any(False in r.learned.values() for r in comparison.rows):
        lines.append(f"{NOT_LEARNED} not clearly above the trivial predictor (the `{TRIVIAL}` row): more than 1% and 2 std over seeds better is needed.")
    return lines + [f"Warning: {w}" for w in comparison.warnings]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    clean = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers), *("| " + " | ".join(r) + " |" for r in clean)]


def to_markdown(comparison: Comparison, spec: StudySpec, figures: list[Path] | None = None) -> str:
    confidence = f"{spec.comparison.confidence:.0%}"
    split_words = "the test split, at the checkpoint selected on validation" if comparison.split == "test" else "the validation split, at the selected checkpoint (no test split)"
    headers, rows = headline(comparison, spec)
    lines = [f"# Study `{spec.name}`", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    lines += [
        f"Tasks: {', '.join(t.name + (' (auxiliary)' if t.auxiliary else '') for t in spec.tasks)}; seeds {', '.join(map(str, spec.seeds))}. "
        f"Per-task metrics on {split_words}; mean ± std over seeds. ★ best mean validation score.",
        *([f"Auxiliary tasks (trained, not in `val/score`, the search's objectives or the front): {', '.join(t.name for t in spec.tasks if t.auxiliary)}."] if any(t.auxiliary for t in spec.tasks) else []),
        "",
        *_table(headers, rows),
        "",
        *[f"**{line}**" if line.startswith("Warning") else line for line in legend(comparison)],
        "",
        *[f"- `{r.label}`: {r.note}" for r in comparison.rows if r.note],
        "",
        "## How each number was made",
        "",
        *_method(comparison, spec, confidence),
    ]
    lines += ["", "## All metrics, per strategy", "", f"Mean ± std and the {confidence} confidence interval over seeds (Student t); validation at the selected epoch, test at the same checkpoint.", ""]
    detail = [[r.label, str(r.trials)] + [_interval(r, c, spec.comparison.confidence) for c in comparison.columns if not c.startswith("cost/")] for r in comparison.rows]
    lines += _table(["strategy", "seeds"] + [short(c) for c in comparison.columns if not c.startswith("cost/")], detail)
    lines += _fronts(comparison, spec)
    lines += _baselines(comparison)
    if figures:
        lines += ["", "## Figures", ""] + [f"![{f.stem}]({f.name})" for f in figures]
    lines += _apart(comparison, spec)
    return "\n".join(lines) + "\n"


def _method(comparison: Comparison, spec: StudySpec, confidence: str) -> list[str]:
    selection = "the epoch with the best validation score" if spec.comparison.selection == "best_epoch" else "the last epoch"
    test = "Welch's t-test" if spec.comparison.significance_test == "welch" else "a bootstrap test (10,000 resamples)"
    out = [
        f"- **Model selection, validation only.** Each trial answers with {selection}; its test metrics are those of that checkpoint. "
        "A tuned candidate's configuration is the search trial with the best validation score, then trained again on every seed (its evaluation trials); test data never chooses anything.",
        "- **Validation score** (`val/score`): the mean over the main tasks of each primary metric, oriented so higher is better (regression errors in target standard deviations).",
    ]
    if spec.comparison.tuning is not None:
        tuning = spec.comparison.tuning
        out.append(f"- **Equal tuning budget.** Every candidate had {tuning.trials} search trials, learning rate drawn log-uniformly in [{tuning.learning_rate[0]:g}, {tuning.learning_rate[1]:g}] by Optuna (TPE), before its evaluation over seeds.")
    else:
        out.append("- **Tuning budget.** Only searched candidates were tuned (`search.trials`); the others ran with the spec's settings. `comparison.tuning` gives every candidate the same budget.")
    if any(r.kind == "baseline" for r in comparison.rows):
        out.append(
            f"- **Δm%** against the single-task baselines (one model per main task and seed: the study's own model for that task alone — "
            f"same encoder, same layers between encoder and head, same head, training settings and budget), on {comparison.split}: "
            "for each metric (−1)^l · (M − M_single) / M_single · 100 with l = 1 where lower is better, of the seed means. "
            "*Per task* (the headline) averages each task's metrics first, then the tasks; *per metric* averages all metrics alike."
        )
        out.append(
            "- **params vs single-task**: the parameters each task's prediction depends on (shared + the task's own) over its single-task baseline's, "
            "averaged over the tasks; beyond 0.75–1.25× part of a Δm may be capacity rather than sharing (the row's note says so)."
        )
    if any(r.kind == "trivial" for r in comparison.rows):
        out.append(
            f"- **trivial**: what a predictor that never reads the input scores (majority class, train mean or median, all-O), on validation and test. "
            f"A strategy is *clearly above* it on a task when its mean is better by more than 1% of it (0.005 at least) and by more than twice its std over seeds; "
            f"{NOT_LEARNED} marks a primary metric that is not."
        )
    ranked = "the main tasks' primary metrics" + (f" but {', '.join(comparison.unlearned)} (no strategy above trivial)" if comparison.unlearned and len(comparison.unlearned) < len(spec.main_tasks) else "")
    out.append(f"- **Mean rank** over {ranked} ({comparison.split}), 1 = best, ties averaged.")
    if comparison.reference:
        sample = "each seed's Δm% (per task)" if any(r.kind == "baseline" for r in comparison.rows) else "each seed's validation score"
        out.append(f"- **p vs {comparison.reference}**: two-sided {test} of {sample} against tuned scalarization's; not corrected for multiple comparisons.")
        origin = "the trivial predictor's point, so a gain is a share of the front's improvement over trivial" if any(r.kind == "trivial" for r in comparison.rows) else "10% beyond the worst value of each metric"
        out.append(
            f"- **HV gain vs front**: HV(front ∪ the strategy's seeds) / HV(front) − 1, in %, on the validation primary metrics, the front being {comparison.reference}'s Pareto-optimal search trials; "
            f"measured from {origin}. 0: no seed improves on the front anywhere."
        )
    out.append(f"- **Confidence intervals**: {confidence}, Student t over seeds; with one seed there is none. With fewer than {MIN_SEEDS} seeds the figures show the seeds' min–max instead.")
    return out


def _interval(row: Row, column: str, confidence: float) -> str:
    e = row.estimate(column, confidence)
    if math.isnan(e.mean):
        return "—"
    return f"{e.mean:.3f}" if math.isnan(e.std) else f"{e.mean:.3f} ± {e.std:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"


def _fronts(comparison: Comparison, spec: StudySpec) -> list[str]:
    lines = []
    for label, (searched, front) in comparison.fronts.items():
        lines += ["", f"## `{label}`: Pareto-optimal search trials ({len(front)} of {len(searched)})", "",
                  f"Weights in task order ({', '.join(spec.task_names)}), scaled to sum to {len(spec.task_names)}; validation at the selected epoch.", ""]
        rows = []
        for index in front:
            trial = searched.loc[index]
            weights = ", ".join(f"{trial[params_column(task_weight(t))]:.2f}" for t in spec.task_names)
            rows.append([trial["run_name"], f"[{weights}]"] + [_number(trial.get(c)) for c in comparison.primary + [BEST_SCORE]])
        lines += _table(["trial", "weights"] + [short(c) for c in comparison.primary + [BEST_SCORE]], rows)
    return lines


def _baselines(comparison: Comparison) -> list[str]:
    runs = comparison.role(BASELINE)
    if not len(runs):
        return []
    lines = ["", "## Single-task baselines", "", "Reused when the data, task, encoder, training settings, selection rule and seed have the same fingerprint.", ""]
    rows = [[r["run_name"], r["status"], r["fingerprint"][:12], r["reused_from"] or "trained in this study"] for r in runs.to_dict("records")]
    return lines + _table(["run", "status", "fingerprint", "source"], rows)


def _apart(comparison: Comparison, spec: StudySpec) -> list[str]:
    lines = []
    teachers = comparison.role(TEACHER)
    if len(teachers):
        lines += ["", "## Single-task teachers (distillation)", ""]
        rows = []
        for teacher in teachers.to_dict("records"):
            task = next(t for t in spec.tasks if t.name == teacher_task(teacher["candidate"]))
            rows.append([teacher["run_name"], teacher["status"], f"{task.primary_metric} {_number(teacher.get(f'best/val/{task.name}/{task.primary_metric}'))}", _number(teacher.get(f"test/{task.name}/{task.primary_metric}"))])
        lines += _table(["teacher", "status", "validation, selected epoch", "test"], rows)
    trials = comparison.trials
    stopped = trials[trials["outcome"] == STOPPED] if len(trials) else []
    if len(stopped):
        lines += ["", f"Stopped early by the scheduler ({spec.execution.scheduler.kind}), left out of the means: " + ", ".join(f"`{r.run_name}` (epoch {int(r.epoch)})" for r in stopped.itertuples())]
    for label in comparison.dropped:
        lines += ["", f"`{label}` has no evaluation trials: none of its search trials completed."]
    failures = trials[trials["status"] != "FINISHED"] if len(trials) else []
    if len(failures):
        lines += ["", "## Trials that did not finish", ""]
        lines += [f"- `{r.run_name}`: {r.outcome or r.status} — {str(r.reason).strip().splitlines()[-1] if r.reason else ''}" for r in failures.itertuples()]
    return lines


def to_frame(comparison: Comparison) -> pd.DataFrame:
    records = []
    for row in comparison.rows:
        record = {"strategy": row.label, "kind": row.kind, "sharing": row.sharing, "weighting": row.weighting, "family": row.family, "seeds": row.trials, "failed": row.failed,
                  "best": row.best, "delta_m_per_task": row.delta_m_task, "delta_m_per_metric": row.delta_m_metric, "params_vs_single_task": row.params_ratio,
                  "mean_rank": row.rank, "p_vs_tuned": row.p_value, "hv_gain": row.hv_gain,
                  "not_above_trivial": ",".join(t for t, learned in row.learned.items() if not learned), "note": row.note}
        for column in comparison.columns:
            e = row.estimate(column)
            record |= {f"{column} mean": e.mean, f"{column} std": e.std, f"{column} ci_low": e.ci_low, f"{column} ci_high": e.ci_high}
        records.append(record)
    return pd.DataFrame.from_records(records)


def print_table(comparison: Comparison, spec: StudySpec, console) -> None:
    from rich.table import Table

    headers, rows = headline(comparison, spec)
    title = f"polytask study '{spec.name}' — {comparison.split} metrics at the checkpoint selected on validation, mean ± std over seeds"
    table = Table(title=title)
    best = [r.best for r in comparison.rows]
    widths = [max(len(h), *(len(cells[i]) for cells in rows)) for i, h in enumerate(headers)]
    if sum(widths) + 3 * len(widths) + 1 <= console.width:  # one row per strategy, no cell wrapped
        for i, header in enumerate(headers):
            table.add_column(header, justify="left" if i == 0 else "right")
        for cells, is_best in zip(rows, best):
            table.add_row(*cells, style="bold green" if is_best else None)
    else:  # too wide for the terminal: one column per strategy instead
        table.add_column("")
        for cells, is_best in zip(rows, best):
            table.add_column(cells[0], justify="right", style="bold green" if is_best else None)
        for i, header in enumerate(headers[1:], start=1):
            table.add_row(header, *[cells[i] for cells in rows])
    console.print(table)
    if any(r.label == BASELINE_ROW for r in comparison.rows):
        console.print("Δm%: average relative change against the single-task baselines, per task (headline) and per metric; > 0 is better.")
    for line in legend(comparison):
        console.print(line, style="bold yellow" if line.startswith("Warning") else None, highlight=False, markup=False, soft_wrap=True)
