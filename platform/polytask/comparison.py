"""The comparison at the end of a study, computed from its MLflow runs (the single source of truth).

One row per strategy: a fixed candidate over its seeds; a tuned candidate (searched weights, or
every candidate's learning rate with ``comparison.tuning``) over the seeds of its evaluation
phase, its configuration selected on validation; the single-task baselines, one model per main
task and seed. Each row carries, over seeds (polytask.stats):

* every metric's mean, sample std and confidence interval (Student t);
* Δm% against the single-task baselines (Maninis et al., CVPR 2019; Vandenhende et al., TPAMI
  2021), averaged per task (the headline: a task with three metrics counts once) and per
  metric, each metric signed by its direction; on the test split at the selected checkpoint
  when every row has it, otherwise on validation (the report says which);
* its mean rank over the main tasks' primary metrics (same split);
* a p-value against tuned scalarization (Welch's t-test or a bootstrap test, on the per-seed
  Δm, or the per-seed validation score without baselines): the baseline every multi-task
  method must beat (Xin et al., NeurIPS 2022; Kurin et al., NeurIPS 2022);
* its hypervolume gain over the tuned-scalarization Pareto front (validation primary metrics,
  the space Optuna searched): 0 when every seed lies inside the region the front dominates.

Searched scalarization candidates also keep their search trials and Pareto front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from polytask import stats
from polytask.search import EVALUATION, SEARCH
from polytask.spec import StudySpec
from polytask.tasks import TASK_TYPES
from polytask.tracking import STOPPED, Tracking, trial_runs

MANY_TASKS = 4  # beyond this, the table shows each task's primary metric only (all are in trials.csv)
BASELINE = "single-task"
COST_COLUMNS = {  # column -> header
    "cost/step_time_ms": "step ms",
    "cost/backward_passes": "backward passes",
    "cost/peak_mem_mb": "peak MiB",
    "cost/params/total": "params",
    "cost/params/shared": "shared params",
}
SUMMED_COSTS = ("cost/step_time_ms", "cost/params/total")  # the single-task row: K models, so K times the cost


@dataclass
class Row:
    label: str
    candidate: str
    weighting: str
    trials: int
    failed: int
    sharing: str = "hard"
    family: str = ""
    kind: str = "strategy"  # strategy | front (one Pareto-optimal search trial) | baseline
    values: dict[str, list[float]] = field(default_factory=dict)  # column -> one value per seed
    note: str = ""
    best: bool = False
    delta_m_task: float = math.nan  # Δm%, averaged per task, then over tasks
    delta_m_metric: float = math.nan  # Δm%, averaged over every metric
    delta_m_seeds: list[float] = field(default_factory=list)  # per-seed Δm% (per task), the significance test's sample
    rank: float = math.nan
    p_value: float = math.nan
    hv_gain: float = math.nan

    def mean(self, column: str) -> float:
        values = self.values.get(column, [])
        return float(np.mean(values)) if values else math.nan

    def std(self, column: str) -> float:
        values = self.values.get(column, [])
        return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan

    def estimate(self, column: str, confidence: float = 0.95) -> stats.Estimate:
        return stats.estimate(self.values.get(column, []), confidence)


@dataclass
class Comparison:
    rows: list[Row]
    columns: list[str]  # metric keys shown, in order
    primary: list[str]  # the columns of each main task's primary validation metric
    trials: pd.DataFrame  # one row per nested run (trials, baselines, teachers)
    split: str = "val"  # where Δm and ranks are computed: "test" or "val"
    reference: str | None = None  # the tuned-scalarization row's label, the significance tests' reference
    fronts: dict[str, tuple[pd.DataFrame, list]] = field(default_factory=dict)  # candidate -> (search trials, Pareto-optimal index)
    dropped: list[str] = field(default_factory=list)  # tuned candidates whose search never completed

    @property
    def best(self) -> Row | None:
        return next((r for r in self.rows if r.best), None)

    def role(self, role: str) -> pd.DataFrame:
        return self.trials[self.trials["role"] == role] if len(self.trials) else self.trials


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
            "family": tags.get("polytask.family", ""),
            "sharing": tags.get("polytask.sharing", "hard"),
            "seed": int(tags.get("polytask.seed", -1)),
            "status": run.info.status,
            "role": tags.get("polytask.role", "trial"),
            "phase": tags.get("polytask.phase", "fixed"),
            "outcome": tags.get("polytask.outcome", ""),
            "reason": tags.get("polytask.reason", ""),
            "trial_id": tags.get("polytask.trial_id", ""),
            "selected_trial": tags.get("polytask.selected_trial", ""),
            "fingerprint": tags.get("polytask.fingerprint", ""),
            "reused_from": tags.get("polytask.reused_from", ""),
            "learning_rate": float(params.get("training.learning_rate", math.nan)),
            **{k: float(v) for k, v in params.items() if k.startswith("weight.")},
            **run.data.metrics,
        })
    frame = pd.DataFrame.from_records(records)
    return frame.sort_values(["role", "candidate", "seed", "run_name"]).reset_index(drop=True) if len(frame) else frame


def trained_to_the_end(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished trials, less those a scheduler (ASHA) stopped early: their metrics are of a
    shorter training, so they would drag a candidate's mean down. They are listed apart."""
    if not len(trials):
        return trials
    return trials[(trials["status"] == "FINISHED") & (trials["outcome"] != STOPPED)]


def compare(spec: StudySpec, trials: pd.DataFrame) -> Comparison:
    """Main tasks first (their primary metrics are the headline), auxiliary tasks after them."""
    ordered = spec.main_tasks + [t for t in spec.tasks if t.auxiliary]
    metrics = [(t.name, m) for t in ordered for m in (TASK_TYPES[t.type].metrics if len(ordered) <= MANY_TASKS else [t.primary_metric])]
    columns = [f"best/val/{task}/{m}" for task, m in metrics] + ["best/val/score"]
    columns += [f"test/{task}/{m}" for task, m in metrics if f"test/{task}/{m}" in trials]
    primary = [f"best/val/{t.name}/{t.primary_metric}" for t in spec.main_tasks]
    columns += [c for c in COST_COLUMNS if c in trials]
    comparison = Comparison([], columns, primary, trials)
    own = comparison.role("trial")
    completed = trained_to_the_end(own)
    for candidate in spec.candidates:
        mine = own[own["candidate"] == candidate.label] if len(own) else own
        done = completed[completed["candidate"] == candidate.label] if len(completed) else completed
        comparison.rows += _candidate_rows(spec, candidate.label, mine, done, comparison)
    baseline = _baseline_row(spec, comparison)
    if baseline is not None:
        comparison.rows.append(baseline)
    scored = [r for r in comparison.rows if r.kind != "baseline" and not math.isnan(r.mean("best/val/score"))]
    if scored:
        max(scored, key=lambda r: r.mean("best/val/score")).best = True
    _statistics(spec, comparison)
    return comparison


def _candidate_rows(spec: StudySpec, label: str, mine: pd.DataFrame, done: pd.DataFrame, comparison: Comparison) -> list[Row]:
    candidate = spec.candidate(label)
    failed = int((mine["status"] != "FINISHED").sum()) if len(mine) else 0  # not those a scheduler stopped
    common = {"candidate": label, "weighting": candidate.weighting, "sharing": spec.sharing_of(label).name}
    family = mine["family"].iloc[0] if len(mine) and "family" in mine else ""
    searched = done[done["phase"] == SEARCH] if len(done) else done
    if candidate.search is not None and len(searched):
        comparison.fronts[label] = (searched, pareto_front(searched, comparison.primary, [t.resolved_direction for t in spec.main_tasks]))
    if not spec.tuned(label):
        return [_row(Row(label, trials=len(done), failed=failed, family=family, **common), done, comparison.columns)]
    evaluated = done[done["phase"] == EVALUATION] if len(done) else done
    if len(evaluated) or spec.execution.scheduler.kind != "pbt":
        failed = int((mine[mine["phase"] == EVALUATION]["status"] != "FINISHED").sum()) if len(mine) else 0
        row = Row(label, trials=len(evaluated), failed=failed, family=family, **common, note=_selection_note(spec, label, mine, evaluated))
        if not len(searched):
            comparison.dropped.append(label)
        return [_row(row, evaluated, comparison.columns)]
    # PBT: the population is the search; its Pareto-optimal members, final weights shown
    rows = []
    for index in comparison.fronts.get(label, (None, []))[1]:
        trial = searched.loc[index]
        weights = ", ".join(f"{trial.get(f'weight/{t}', math.nan):.2f}" for t in spec.task_names)
        note = f"seed {trial['seed']}, Pareto-optimal of {len(searched)} (final PBT weights)" + (f" ({failed} failed)" if failed else "")
        rows.append(_row(Row(f"{label} [{weights}]", trials=1, failed=0, family=family, kind="front", note=note, **common), searched.loc[[index]], comparison.columns))
    return rows or [Row(label, trials=0, failed=failed, note="no completed trial", **common)]


def _row(row: Row, trials: pd.DataFrame, columns: list[str]) -> Row:
    row.values = {c: [float(v) for v in trials[c].dropna()] for c in columns if c in trials}
    return row


def _selection_note(spec: StudySpec, label: str, mine: pd.DataFrame, evaluated: pd.DataFrame) -> str:
    """Which search trial was selected (best validation val/score), with its weights and learning rate."""
    searched = mine[mine["phase"] == SEARCH] if len(mine) else mine
    if not len(searched):
        return "no search trial completed: nothing to evaluate"
    if not len(evaluated):
        return f"{len(searched)} search trials; no evaluation trial finished"
    chosen = searched[searched["trial_id"] == evaluated["selected_trial"].iloc[0]]
    if not len(chosen):
        return f"selected on validation from {len(searched)} search trials"
    trial, parts = chosen.iloc[0], []
    if spec.candidate(label).search is not None:
        parts.append("weights [" + ", ".join(f"{trial.get(f'weight.{t}', math.nan):.2f}" for t in spec.task_names) + "]")
    if spec.comparison.tuning is not None:
        parts.append(f"lr {trial['learning_rate']:.2g}")
    return f"{' '.join(parts)}: {trial['run_name']}, best val/score of {len(searched)} search trials"


def _baseline_row(spec: StudySpec, comparison: Comparison) -> Row | None:
    """The single-task models as one row: per seed, each task's metrics from its own model;
    val/score the mean of theirs; costs summed over the K models (what training them costs)."""
    baselines = trained_to_the_end(comparison.role("baseline"))
    if not len(baselines):
        return None
    tasks = [t.name for t in spec.main_tasks]
    row = Row(BASELINE, BASELINE, "equal", 0, int((comparison.role("baseline")["status"] != "FINISHED").sum()), family="baseline", kind="baseline")
    for seed, group in baselines.groupby("seed"):
        by_task = {c.removeprefix(f"{BASELINE}-"): run for c, run in zip(group["candidate"], group.to_dict("records"))}
        if set(tasks) - set(by_task):
            continue  # a seed missing a task's model is left out
        row.trials += 1
        for column in comparison.columns:
            if column in SUMMED_COSTS:
                value = sum(float(r.get(column, math.nan)) for r in by_task.values())
            elif column == "best/val/score":
                value = float(np.mean([by_task[t].get(column, math.nan) for t in tasks]))
            else:
                task = column.split("/")[-2]
                value = float(by_task[task].get(column, math.nan)) if task in by_task else math.nan
            if not math.isnan(value):
                row.values.setdefault(column, []).append(value)
    reused = int((baselines["reused_from"] != "").sum()) if "reused_from" in baselines else 0
    row.note = f"one model per task and seed; costs summed over {len(tasks)} models" + (f"; {reused} of {len(baselines)} reused by fingerprint" if reused else "")
    return row if row.trials else None


# --------------------------------------------------------------------------- statistics


def metric_columns(spec: StudySpec, split: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(task, metric) -> (column, direction) for every metric of every main task; ``split`` is
    ``test`` or ``val`` (selected epoch). A task's primary metric takes the spec's direction."""
    prefix = "test" if split == "test" else "best/val"
    out = {}
    for t in spec.main_tasks:
        for metric, info in TASK_TYPES[t.type].metrics.items():
            direction = t.resolved_direction if metric == t.primary_metric else info.direction
            out[(t.name, metric)] = (f"{prefix}/{t.name}/{metric}", direction)
    return out


def _statistics(spec: StudySpec, comparison: Comparison) -> None:
    rows = [r for r in comparison.rows if r.kind != "front" and any(r.values.values())]
    baseline = next((r for r in rows if r.kind == "baseline"), None)
    comparison.split = "test" if rows and all(all(f"test/{t.name}/{t.primary_metric}" in r.values for t in spec.main_tasks) for r in rows) else "val"
    metrics = metric_columns(spec, comparison.split)
    directions = {key: direction for key, (_, direction) in metrics.items()}
    if baseline is not None:
        reference = {key: baseline.mean(column) for key, (column, _) in metrics.items()}
        for row in rows:
            means = {key: row.mean(column) for key, (column, _) in metrics.items()}
            row.delta_m_task = stats.delta_m_per_task(means, reference, directions)
            row.delta_m_metric = stats.delta_m_per_metric(means, reference, directions)
            seeds = len(row.values.get(metrics[next(iter(metrics))][0], []))
            per_seed = [{key: _at(row, column, i) for key, (column, _) in metrics.items()} for i in range(seeds)]
            row.delta_m_seeds = [stats.delta_m_per_task(values, reference, directions) for values in per_seed]
    primary = {t.name: metrics[(t.name, t.primary_metric)] for t in spec.main_tasks}
    ranks = stats.mean_rank({r.label: {c: r.mean(c) for c, _ in primary.values()} for r in rows}, dict(primary.values()))
    for row in rows:
        row.rank = ranks.get(row.label, math.nan)
    tuned = next((r for r in rows if r.weighting == "scalarization" and spec.candidate(r.candidate).search is not None and r.kind == "strategy"), None)
    if tuned is not None:
        comparison.reference = tuned.label
        test = stats.welch_p_value if spec.comparison.significance_test == "welch" else stats.bootstrap_p_value
        for row in rows:
            if row is not tuned:
                row.p_value = test(row.delta_m_seeds, tuned.delta_m_seeds) if baseline is not None else test(row.values.get("best/val/score", []), tuned.values.get("best/val/score", []))
        _hypervolumes(spec, comparison, rows, tuned.candidate)


def _at(row: Row, column: str, i: int) -> float:
    values = row.values.get(column, [])
    return values[i] if i < len(values) else math.nan


def _hypervolumes(spec: StudySpec, comparison: Comparison, rows: list[Row], tuned: str) -> None:
    """Each row's per-seed validation points against the tuned search's Pareto front."""
    if tuned not in comparison.fronts or len(comparison.primary) < 2:
        return
    searched, front = comparison.fronts[tuned]
    directions = [t.resolved_direction for t in spec.main_tasks]
    front_points = stats.oriented(searched.loc[front, comparison.primary].to_numpy(float), directions)
    points = {r.label: _points(r, comparison.primary, directions) for r in rows}
    reference = stats.reference_point(np.vstack([front_points, *[p for p in points.values() if p is not None]]))
    for row in rows:
        if points[row.label] is not None:
            row.hv_gain = stats.hypervolume_gain(points[row.label], front_points, reference)


def _points(row: Row, columns: list[str], directions: list[str]) -> np.ndarray | None:
    """The row's seeds as oriented points; None unless every column has a value per seed."""
    lengths = {len(row.values.get(c, [])) for c in columns}
    if len(lengths) != 1 or lengths == {0}:
        return None
    return stats.oriented(np.column_stack([row.values[c] for c in columns]), directions)


def pareto_front(frame: pd.DataFrame, columns: list[str], directions: list[str]) -> list:
    """Index labels of the non-dominated rows (all directions turned into 'higher is better')."""
    if len(frame) == 0 or any(c not in frame for c in columns):
        return []
    mask = stats.non_dominated(stats.oriented(frame[columns].to_numpy(dtype=float), directions))
    return [index for index, keep in zip(frame.index, mask) if keep]
