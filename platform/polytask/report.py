"""The study report: the comparison (polytask.comparison) rendered for people.

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
import tempfile
from pathlib import Path

import pandas as pd

from polytask import plots
from polytask.comparison import BASELINE, COST_COLUMNS, Comparison, Row, collect_trials, compare
from polytask.html_report import render_html
from polytask.server import mask_credentials
from polytask.spec import StudySpec, load_spec
from polytask.tracking import STOPPED, Tracking, client, retrying

REPORT_FILES = ("comparison.md", "comparison.html", "comparison.csv", "trials.csv", "front.png", "tasks.png", "weights.png", "cost.png")
QUALITY_COSTS = {"cost/step_time_ms": "step time (ms)", "cost/params/total": "trainable parameters"}


def write_report(spec: StudySpec, tracking: Tracking, output: Path) -> Comparison:
    """Build the comparison from MLflow, write the report into ``output`` and attach it to the parent run."""
    output.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:  # a figure with nothing to draw this time must not linger from an earlier report
        (output / name).unlink(missing_ok=True)
    comparison = compare(spec, collect_trials(tracking))
    figures = make_figures(spec, comparison, tracking, output)
    markdown = to_markdown(comparison, spec, figures)
    (output / "comparison.md").write_text(markdown)
    (output / "comparison.html").write_text(render_html(markdown, f"Study {spec.name}", figures))
    to_frame(comparison).to_csv(output / "comparison.csv", index=False)
    comparison.trials.to_csv(output / "trials.csv", index=False)
    mlflow = client(tracking.uri)
    for name in REPORT_FILES:
        if (output / name).exists():
            retrying(lambda: mlflow.log_artifact(tracking.parent_run_id, str(output / name), "report"))
    return comparison


def from_experiment(uri: str, experiment: str, run_id: str | None = None) -> tuple[StudySpec, Tracking]:
    """A study's spec and runs found in MLflow alone: the experiment's latest study parent run
    (or ``run_id``) and the ``spec.yaml`` stored on it."""
    from polytask.errors import Problem, StudyError

    mlflow = client(uri)
    found = retrying(lambda: mlflow.get_experiment_by_name(experiment))
    if found is None:
        names = [e.name for e in mlflow.search_experiments()]
        raise StudyError([Problem("--experiment", f"no experiment {experiment!r} at {mask_credentials(uri)}; experiments there: {', '.join(names) or 'none'}")])
    if run_id is None:
        parents = retrying(lambda: mlflow.search_runs([found.experiment_id], filter_string="tags.`polytask.kind` = 'study'", order_by=["attributes.start_time DESC"], max_results=1))
        if not parents:
            raise StudyError([Problem("--experiment", f"experiment {experiment!r} holds no polytask study run")])
        run_id = parents[0].info.run_id
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = mlflow.download_artifacts(run_id, "spec.yaml", folder)
        except Exception as exc:  # MLflow raises several types for a missing run or artifact
            raise StudyError([Problem("--run-id", f"run {run_id} has no spec.yaml artifact ({type(exc).__name__}); give a polytask study's parent run")]) from None
        spec = load_spec(path)
    return spec, Tracking(uri=uri, experiment_id=found.experiment_id, parent_run_id=run_id, study=spec.name)


# --------------------------------------------------------------------------- figures


def summaries(rows: list[Row], columns: list[str]) -> list[plots.StrategySummary]:
    """Each row's mean and CI per column, for the figures."""
    out = []
    for row in rows:
        points = {}
        for column in columns:
            e = row.estimate(column)
            points[column] = plots.Point(e.mean, e.ci_low, e.ci_high)
        out.append(plots.StrategySummary(row.label, points, {c: list(row.values.get(c, [])) for c in columns}))
    return out


def make_figures(spec: StudySpec, comparison: Comparison, tracking: Tracking, output: Path) -> list[Path]:
    tasks, primary = spec.main_tasks, comparison.primary
    names = [f"{t.name} {t.primary_metric} (val)" for t in tasks]
    directions = [t.resolved_direction for t in tasks]
    strategies = [r for r in comparison.rows if r.kind != "front"]
    title = f"{spec.name}:"
    figures = []
    reference = comparison.reference or next(iter(comparison.fronts), None)  # a tuned row is named after its candidate
    search, front = comparison.fronts.get(reference, (pd.DataFrame(columns=primary), []))
    figures.append(plots.plot_front(search, front, summaries(strategies, primary), primary, directions, names, output / "front.png",
                                    f"{title} tuned-scalarization front, strategy means (95% CI)"))
    split = "test" if comparison.split == "test" else "best/val"
    shown = [f"{split}/{t.name}/{t.primary_metric}" for t in tasks]
    baseline = next((r for r in comparison.rows if r.kind == "baseline"), None)
    figures.append(plots.plot_task_bars(summaries([r for r in strategies if r.kind != "baseline"], shown), shown,
                                        [f"{t.name} {t.primary_metric} ({comparison.split})" for t in tasks], output / "tasks.png",
                                        f"{title} per-task {comparison.split} metric, mean and 95% CI over seeds",
                                        {c: baseline.mean(c) for c in shown} if baseline else None))
    figures.append(plots.plot_weights_over_time(weight_histories(spec, comparison, tracking), output / "weights.png", f"{title} task weights during training (mean over seeds)"))
    figures.append(plots.plot_quality_vs_cost(summaries(strategies, ["best/val/score", *QUALITY_COSTS]), "best/val/score", "validation score",
                                              {c: n for c, n in QUALITY_COSTS.items() if c in comparison.columns}, output / "cost.png", f"{title} quality against cost"))
    return [f for f in figures if f is not None]


def weight_histories(spec: StudySpec, comparison: Comparison, tracking: Tracking) -> dict[str, pd.DataFrame]:
    """Per strategy: each task's weight at each logged step (``step/weight/<task>``), mean over its runs."""
    mlflow = client(tracking.uri)
    trials = comparison.role("trial")
    histories = {}
    for row in comparison.rows:
        if row.kind != "strategy" or not len(trials):
            continue
        runs = trials[(trials["candidate"] == row.candidate) & (trials["phase"] != "search") & (trials["status"] == "FINISHED")]
        series = []
        for run_id in runs["run_id"]:
            points = {t: {m.step: m.value for m in retrying(lambda: mlflow.get_metric_history(run_id, f"step/weight/{t}"))} for t in spec.task_names}
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


def headline(comparison: Comparison, spec: StudySpec) -> tuple[list[str], list[list[str]]]:
    """The comparison table: headers and one row of cells per strategy."""
    split = "test" if comparison.split == "test" else "best/val"
    tasks = [f"{split}/{t.name}/{t.primary_metric}" for t in spec.main_tasks]
    costs = [c for c in ("cost/step_time_ms", "cost/params/total") if c in comparison.columns]
    has_baseline = any(r.kind == "baseline" for r in comparison.rows)
    headers = ["strategy", "seeds"] + [f"{short(c)}" for c in tasks] + ["val score"]
    headers += ["Δm% (per task)", "Δm% (per metric)"] if has_baseline else []
    headers += ["mean rank"] + ([f"p vs {comparison.reference}", "HV gain vs front"] if comparison.reference else []) + [short(c) for c in costs]
    digits = {c: _digits(comparison.rows, c) for c in tasks + ["best/val/score"]}
    body = []
    for row in comparison.rows:
        cells = [("★ " if row.best else "") + row.label, f"{row.trials}" + (f" ({row.failed} failed)" if row.failed else "")]
        cells += [cell(row, c, digits[c]) for c in tasks + ["best/val/score"]]
        cells += [_signed(row.delta_m_task), _signed(row.delta_m_metric)] if has_baseline else []
        cells += [_number(row.rank, 2)]
        if comparison.reference:
            cells += ["(reference)" if row.label == comparison.reference else _p(row.p_value), _number(row.hv_gain)]
        cells += [cell(row, c) for c in costs]
        body.append(cells)
    return headers, body


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
            f"- **Δm%** against the single-task baselines (one model per main task and seed, same encoder, training settings and budget), on {comparison.split}: "
            "for each metric (−1)^l · (M − M_single) / M_single · 100 with l = 1 where lower is better, of the seed means. "
            "*Per task* (the headline) averages each task's metrics first, then the tasks; *per metric* averages all metrics alike."
        )
    out.append(f"- **Mean rank** over the main tasks' primary metrics ({comparison.split}), 1 = best, ties averaged.")
    if comparison.reference:
        sample = "each seed's Δm% (per task)" if any(r.kind == "baseline" for r in comparison.rows) else "each seed's validation score"
        out.append(f"- **p vs {comparison.reference}**: two-sided {test} of {sample} against tuned scalarization's; not corrected for multiple comparisons.")
        out.append(
            f"- **HV gain vs front**: HV(front ∪ the strategy's seeds) / HV(front) − 1 on the validation primary metrics, the front being {comparison.reference}'s Pareto-optimal search trials; "
            "reference point 10% beyond the worst value of each metric. 0: no seed improves on the front anywhere."
        )
    out.append(f"- **Confidence intervals**: {confidence}, Student t over seeds; with one seed there is none.")
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
            weights = ", ".join(f"{trial.get(f'weight.{t}', math.nan):.2f}" for t in spec.task_names)
            rows.append([trial["run_name"], f"[{weights}]"] + [_number(trial.get(c)) for c in comparison.primary + ["best/val/score"]])
        lines += _table(["trial", "weights"] + [short(c) for c in comparison.primary + ["best/val/score"]], rows)
    return lines


def _baselines(comparison: Comparison) -> list[str]:
    runs = comparison.role("baseline")
    if not len(runs):
        return []
    lines = ["", "## Single-task baselines", "", "Reused when the data, task, encoder, training settings, selection rule and seed have the same fingerprint.", ""]
    rows = [[r["run_name"], r["status"], r["fingerprint"][:12], r["reused_from"] or "trained in this study"] for r in runs.to_dict("records")]
    return lines + _table(["run", "status", "fingerprint", "source"], rows)


def _apart(comparison: Comparison, spec: StudySpec) -> list[str]:
    lines = []
    teachers = comparison.role("teacher")
    if len(teachers):
        lines += ["", "## Single-task teachers (distillation)", ""]
        rows = []
        for teacher in teachers.to_dict("records"):
            task = next(t for t in spec.tasks if teacher["candidate"] == f"teacher-{t.name}")
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
                  "best": row.best, "delta_m_per_task": row.delta_m_task, "delta_m_per_metric": row.delta_m_metric, "mean_rank": row.rank,
                  "p_vs_tuned": row.p_value, "hv_gain": row.hv_gain, "note": row.note}
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
    if any(r.label == BASELINE for r in comparison.rows):
        console.print("Δm%: average relative change against the single-task baselines, per task (headline) and per metric; > 0 is better.")
