"""The comparison at the end of a study, read back from MLflow (the single source of truth).

Per fixed candidate: each task's validation metrics at the selected epoch, mean ± std over
seeds. Per searched scalarization candidate: its Pareto-optimal trials (no other trial of the
candidate is at least as good on every task and better on one), each with its weights. The best
row by mean ``val/score`` is starred. Saved as comparison.md, comparison.csv (the table),
trials.csv (every trial) and front.png; attached to the MLflow parent run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from polytask.spec import StudySpec
from polytask.tasks import TASK_TYPES
from polytask.tracking import STOPPED, Tracking, client, retrying, trial_runs

MANY_TASKS = 4  # beyond this, the table shows each task's primary metric only (all are in trials.csv)
COST_COLUMNS = {  # column -> header
    "cost/step_time_ms": "step ms",
    "cost/backward_passes": "backward passes",
    "cost/peak_mem_mb": "peak MiB",
    "cost/params/total": "params",
    "cost/params/shared": "shared params",
}


@dataclass
class Row:
    label: str
    candidate: str
    weighting: str
    trials: int
    failed: int
    sharing: str = "hard"
    values: dict[str, list[float]] = field(default_factory=dict)  # column -> one value per trial
    note: str = ""
    best: bool = False

    def mean(self, column: str) -> float:
        values = self.values.get(column, [])
        return float(np.mean(values)) if values else math.nan

    def std(self, column: str) -> float:
        values = self.values.get(column, [])
        return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


@dataclass
class Comparison:
    rows: list[Row]
    columns: list[str]  # metric keys shown, in order
    primary: list[str]  # the columns of each task's primary validation metric
    trials: pd.DataFrame  # one row per trial
    teachers: pd.DataFrame | None = None  # one row per distillation teacher

    @property
    def best(self) -> Row | None:
        return next((r for r in self.rows if r.best), None)


def collect_trials(tracking: Tracking) -> pd.DataFrame:
    """One row per nested run of the study: tags, params and latest metric values."""
    records = []
    for run in trial_runs(tracking):
        tags, params = run.data.tags, run.data.params
        records.append({
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "candidate": tags.get("polytask.candidate"),
            "weighting": tags.get("polytask.strategy"),
            "seed": int(tags.get("polytask.seed", -1)),
            "status": run.info.status,
            "role": tags.get("polytask.role", "trial"),
            "outcome": tags.get("polytask.outcome", ""),
            "reason": tags.get("polytask.reason", ""),
            **{k: float(v) for k, v in params.items() if k.startswith("weight.")},
            **run.data.metrics,
        })
    frame = pd.DataFrame.from_records(records)
    return frame.sort_values(["candidate", "seed", "run_name"]).reset_index(drop=True) if len(frame) else frame


def trained_to_the_end(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished trials, less those a scheduler (ASHA) stopped early: their metrics are of a
    shorter training, so they would drag a candidate's mean down. They are listed apart."""
    if not len(trials):
        return trials
    return trials[(trials["status"] == "FINISHED") & (trials["outcome"] != STOPPED)]


def compare(spec: StudySpec, trials: pd.DataFrame) -> Comparison:
    """Main tasks first (their primary metrics are the headline), auxiliary tasks after them.
    Distillation teachers are listed apart from the candidates."""
    is_teacher = trials["role"] == "teacher" if "role" in trials else pd.Series(False, index=trials.index)
    teachers, trials = trials[is_teacher], trials[~is_teacher]
    columns, primary = [], []
    ordered = spec.main_tasks + [t for t in spec.tasks if t.auxiliary]
    for t in ordered:  # every metric of a few tasks; with many, each task's primary metric only
        for metric in TASK_TYPES[t.type].metrics if len(ordered) <= MANY_TASKS else [t.primary_metric]:
            columns.append(f"best/val/{t.name}/{metric}")
    primary = [f"best/val/{t.name}/{t.primary_metric}" for t in spec.main_tasks]
    columns.append("best/val/score")
    columns += [f"test/{t.name}/{t.primary_metric}" for t in ordered if len(trials) and f"test/{t.name}/{t.primary_metric}" in trials]
    columns += [c for c in COST_COLUMNS if len(trials) and c in trials]
    completed = trained_to_the_end(trials)
    rows: list[Row] = []
    for candidate in spec.candidates:
        mine = trials[trials["candidate"] == candidate.label] if len(trials) else trials
        done = completed[completed["candidate"] == candidate.label] if len(completed) else completed
        failed = int((mine["status"] != "FINISHED").sum()) if len(mine) else 0  # not those a scheduler stopped
        if candidate.search is None:
            row = Row(candidate.label, candidate.label, candidate.weighting, len(done), failed, sharing=spec.sharing_of(candidate.label).name)
            row.values = {c: [float(v) for v in done[c].dropna()] for c in columns if c in done}
            rows.append(row)
            continue
        front = pareto_front(done, primary, [t.resolved_direction for t in spec.main_tasks])
        for index in front:
            trial = done.loc[index]
            # under PBT the weights evolved: show where they ended (the last weight/<task> point)
            evolved = spec.execution.scheduler.kind == "pbt"
            weights = ", ".join(f"{trial.get(f'weight/{t}' if evolved else f'weight.{t}', math.nan):.2f}" for t in spec.task_names)
            note = f"seed {trial['seed']}, Pareto-optimal of {len(done)}" + (" (final PBT weights)" if evolved else "") + (f" ({failed} failed)" if failed else "")
            row = Row(f"{candidate.label} [{weights}]", candidate.label, candidate.weighting, 1, 0, sharing=spec.sharing_of(candidate.label).name, note=note)
            row.values = {c: [float(trial[c])] for c in columns if c in trial and not pd.isna(trial[c])}
            rows.append(row)
        if not front:
            rows.append(Row(candidate.label, candidate.label, candidate.weighting, 0, failed, sharing=spec.sharing_of(candidate.label).name, note="no completed trial"))
    scored = [r for r in rows if not math.isnan(r.mean("best/val/score"))]
    if scored:
        max(scored, key=lambda r: r.mean("best/val/score")).best = True
    return Comparison(rows, columns, primary, trials, teachers)


def pareto_front(frame: pd.DataFrame, columns: list[str], directions: list[str]) -> list:
    """Index labels of the non-dominated rows (all directions turned into 'higher is better')."""
    if len(frame) == 0 or any(c not in frame for c in columns):
        return []
    signs = np.array([1.0 if d == "max" else -1.0 for d in directions])
    points = frame[columns].to_numpy(dtype=float) * signs
    keep = []
    for i, p in enumerate(points):
        if np.isnan(p).any():
            continue
        dominated = any(
            np.all(q >= p) and np.any(q > p) for j, q in enumerate(points) if j != i and not np.isnan(q).any()
        )
        if not dominated:
            keep.append(frame.index[i])
    return keep


# --------------------------------------------------------------------------- rendering


def short(column: str) -> str:
    """``best/val/sentiment/accuracy`` -> ``sentiment accuracy``; keeps test/cost prefixes."""
    if column in COST_COLUMNS:
        return COST_COLUMNS[column]
    parts = column.split("/")
    if parts[:2] == ["best", "val"]:
        return " ".join(parts[2:])  # best/val/score -> "score"; best/val/score/mae (a task named score) -> "score mae"
    return " ".join(parts)


def cell(row: Row, column: str) -> str:
    mean, std = row.mean(column), row.std(column)
    if math.isnan(mean):
        return "—"
    if column.startswith("cost/params/"):
        return f"{mean / 1e6:.3f}M" if mean >= 1e5 else f"{mean:,.0f}"
    digits = 1 if column.startswith("cost/") else 3
    return f"{mean:.{digits}f}" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def to_markdown(comparison: Comparison, spec: StudySpec) -> str:
    headers = ["candidate", "trials"] + [short(c) for c in comparison.columns] + ["note"]
    lines = [
        f"# Study `{spec.name}`",
        "",
        "Validation metrics at each trial's selected epoch (best `val/score`), mean ± std over seeds.",
        "Searched scalarization: its Pareto-optimal trials, with weights in task order "
        f"({', '.join(spec.task_names)}). ★ best mean `val/score` (mean of the main tasks' primary metrics).",
        *([f"Auxiliary tasks (trained, not in `val/score`, the search's objectives or the front): {', '.join(t.name for t in spec.tasks if t.auxiliary)}."] if any(t.auxiliary for t in spec.tasks) else []),
        "Costs: step time and peak memory per trial; parameters are trainable ones, `shared` those two or more tasks' losses reach.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for row in comparison.rows:
        label = f"★ {row.label}" if row.best else row.label
        failed = f" ({row.failed} failed)" if row.failed else ""
        cells = [label, f"{row.trials}{failed}"] + [cell(row, c) for c in comparison.columns] + [row.note]
        lines.append("| " + " | ".join(cells) + " |")
    if comparison.teachers is not None and len(comparison.teachers):
        lines += ["", "## Single-task teachers (distillation)", "", "| teacher | status | validation, selected epoch | test |", "|---|---|---|---|"]
        for _, teacher in comparison.teachers.iterrows():
            task = next(t for t in spec.tasks if teacher["candidate"] == f"teacher-{t.name}")
            val, test = (teacher.get(f"{split}/{task.name}/{task.primary_metric}") for split in ("best/val", "test"))
            lines.append(f"| {teacher['run_name']} | {teacher['status']} | {task.primary_metric} {_number(val)} | {_number(test)} |")
    stopped = comparison.trials[comparison.trials["outcome"] == STOPPED] if len(comparison.trials) else []
    if len(stopped):
        lines += ["", f"Stopped early by the scheduler ({spec.execution.scheduler.kind}), left out of the means: " + ", ".join(f"`{r.run_name}` (epoch {int(r.epoch)})" for r in stopped.itertuples())]
    failures = comparison.trials[comparison.trials["status"] != "FINISHED"] if len(comparison.trials) else []
    if len(failures):
        lines += ["", "## Trials that did not finish", ""]
        lines += [f"- `{r.run_name}`: {r.outcome or r.status} — {str(r.reason).strip().splitlines()[-1] if r.reason else ''}" for r in failures.itertuples()]
    return "\n".join(lines) + "\n"


def _number(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.3f}"


def to_frame(comparison: Comparison) -> pd.DataFrame:
    records = []
    for row in comparison.rows:
        record = {"candidate": row.label, "sharing": row.sharing, "weighting": row.weighting, "trials": row.trials, "failed": row.failed, "best": row.best, "note": row.note}
        for column in comparison.columns:
            record[f"{column} mean"] = row.mean(column)
            record[f"{column} std"] = row.std(column)
        records.append(record)
    return pd.DataFrame.from_records(records)


def print_table(comparison: Comparison, spec: StudySpec, console) -> None:
    from rich.table import Table

    shown = comparison.primary + ["best/val/score"] + [c for c in comparison.columns if c.startswith("test/")]
    shown += [c for c in ("cost/step_time_ms", "cost/params/total") if c in comparison.columns]
    title = f"polytask study '{spec.name}' — validation at the selected epoch, mean ± std over seeds"
    table = Table(title=title)
    trials = {row.label: f"{row.trials}" + (f" ({row.failed} failed)" if row.failed else "") for row in comparison.rows}
    if (len(shown) + 2) * 12 <= console.width:  # one row per candidate
        table.add_column("candidate")
        table.add_column("trials", justify="right")
        for column in shown:
            table.add_column(short(column), justify="right")
        for row in comparison.rows:
            table.add_row(("★ " if row.best else "") + row.label, trials[row.label], *[cell(row, c) for c in shown], style="bold green" if row.best else None)
    else:  # too many metrics for the terminal: one column per candidate instead
        table.add_column("")
        for row in comparison.rows:
            table.add_column(("★ " if row.best else "") + row.label, justify="right", style="bold green" if row.best else None)
        table.add_row("trials", *[trials[row.label] for row in comparison.rows])
        for column in shown:
            table.add_row(short(column), *[cell(row, column) for row in comparison.rows])
    console.print(table)


def plot_front(comparison: Comparison, spec: StudySpec, path: Path) -> Path | None:
    """Searched trials (grey), their Pareto front (line) and each fixed candidate's mean ± std,
    on each pair of tasks' primary metrics. None for a single-task study."""
    done = trained_to_the_end(comparison.trials)
    tasks = spec.main_tasks
    if len(tasks) < 2 or not len(done):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(i, j) for i in range(len(tasks)) for j in range(i + 1, len(tasks))][:6]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.6), squeeze=False)
    searched = [c.label for c in spec.candidates if c.search is not None]
    for ax, (i, j) in zip(axes[0], pairs):
        x, y = comparison.primary[i], comparison.primary[j]
        for label in searched:
            pts = done[done["candidate"] == label]
            if x in pts and y in pts:
                ax.scatter(pts[x], pts[y], s=18, color="0.6", label=f"{label}: searched weights")
                front = pareto_front(pts, [x, y], [tasks[i].resolved_direction, tasks[j].resolved_direction])
                line = pts.loc[front].sort_values(x)
                ax.plot(line[x], line[y], "-o", color="black", ms=5, label=f"{label}: Pareto front")
        for k, row in enumerate(r for r in comparison.rows if r.candidate not in searched):
            if math.isnan(row.mean(x)) or math.isnan(row.mean(y)):
                continue
            xerr = None if math.isnan(row.std(x)) else row.std(x)
            yerr = None if math.isnan(row.std(y)) else row.std(y)
            ax.errorbar(row.mean(x), row.mean(y), xerr=xerr, yerr=yerr, fmt="s", ms=7, capsize=3, color=f"C{k}", label=row.label)
        ax.set_xlabel(short(x))
        ax.set_ylabel(short(y))
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=min(3, len(unique)), frameon=False)
    fig.suptitle(f"{spec.name}: validation metric at the selected epoch")
    fig.tight_layout(rect=(0, 0.06 * (1 + (len(unique) - 1) // 3), 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def write_report(spec: StudySpec, tracking: Tracking, output: Path) -> Comparison:
    """Build the comparison from MLflow, write it to ``output`` and attach it to the parent run."""
    comparison = compare(spec, collect_trials(tracking))
    files = [output / "comparison.md", output / "comparison.csv", output / "trials.csv"]
    files[0].write_text(to_markdown(comparison, spec))
    to_frame(comparison).to_csv(files[1], index=False)
    comparison.trials.to_csv(files[2], index=False)
    figure = plot_front(comparison, spec, output / "front.png")
    mlflow = client(tracking.uri)
    for path in files + ([figure] if figure else []):
        retrying(lambda: mlflow.log_artifact(tracking.parent_run_id, str(path), "report"))
    return comparison
