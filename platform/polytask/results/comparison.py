"""The comparison at the end of a study, computed from its MLflow runs (the single source of truth).

One row per strategy: a fixed candidate over its seeds; a tuned candidate (searched weights, or
every candidate's learning rate with ``comparison.tuning``) over the seeds of its evaluation
phase, its configuration selected on validation; the single-task baselines, one model per main
task and seed. Each row carries, over seeds (polytask.results.stats):

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
  the space Optuna searched), measured from the trivial predictor's point: the share of the
  front's improvement over trivial that the strategy's seeds add; 0 when every seed lies inside
  the region the front dominates;
* ``params vs single-task``: the parameters each task's prediction depends on (shared + the
  task's own) over its single-task baseline's, averaged over the main tasks. Beyond 25% either
  way the row says that part of its Δm may be capacity rather than sharing.

The ``trivial`` row is the trivial predictor (polytask.results.trivial), logged on the parent run. A
strategy is *clearly above trivial* on a task when its mean beats the trivial value by more than
1% of it (0.005 at least) and by more than twice its std over seeds (stats.clearly_better). A
task on which no strategy is clearly above trivial is named in the warnings and left out of the
mean rank (its differences are noise); so is a study where no candidate learned anything.

Searched scalarization candidates also keep their search trials and Pareto front.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from polytask.ops.tracking import Tracking, trial_runs
from polytask.results import stats
from polytask.schema import (
    BASELINE,
    BASELINE_ROW,
    BEST_SCORE,
    EVALUATION,
    SEARCH,
    TRIAL,
    TRIVIAL,
    TrialTags,
    baseline_task,
    counts_in_means,
    params_column,
    run_outcome,
    task_weight,
)
from polytask.spec import StudySpec
from polytask.tasks import TASK_TYPES

LEGACY_WEIGHT_PARAM = "weight."  # a configured task weight's param in studies recorded before schema.task_weight
MANY_TASKS = 4  # beyond this, the table shows each task's primary metric only (all are in trials.csv)
CAPACITY_TOLERANCE = 0.25  # params vs single-task beyond 1 ± this: the row says Δm may be capacity
MIN_SEEDS = 3  # fewer seeds per strategy than this: a warning that they cannot separate strategies
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
    kind: str = "strategy"  # strategy | front (one Pareto-optimal search trial) | baseline | trivial
    values: dict[str, list[float]] = field(default_factory=dict)  # column -> one value per seed
    capacity: dict[str, list[float]] = field(default_factory=dict)  # main task -> parameters its prediction depends on, per seed
    note: str = ""
    best: bool = False
    delta_m_task: float = math.nan  # Δm%, averaged per task, then over tasks
    delta_m_metric: float = math.nan  # Δm%, averaged over every metric
    delta_m_seeds: list[float] = field(default_factory=list)  # per-seed Δm% (per task), the significance test's sample
    rank: float = math.nan
    p_value: float = math.nan
    hv_gain: float = math.nan
    params_ratio: float = math.nan  # params vs single-task (see the module docstring)
    learned: dict[str, bool] = field(default_factory=dict)  # main task -> clearly above the trivial predictor

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
    unlearned: list[str] = field(default_factory=list)  # main tasks no strategy is clearly above trivial on
    warnings: list[str] = field(default_factory=list)  # what makes a number not what it seems, for the terminal and the report

    @property
    def best(self) -> Row | None:
        return next((r for r in self.rows if r.best), None)

    def role(self, role: str) -> pd.DataFrame:
        return self.trials[self.trials["role"] == role] if len(self.trials) else self.trials


def collect_trials(tracking: Tracking) -> pd.DataFrame:
    """One row per nested run of the study: its tags (:class:`polytask.schema.TrialTags`), its
    configured task weights (``params.weight/<task>``) and its latest metric values."""
    records = []
    for run in trial_runs(tracking):
        tags, params = run.data.tags, run.data.params
        outcome, reason, trial_id = run_outcome(tags)
        weights = {params_column(task_weight(key.removeprefix(LEGACY_WEIGHT_PARAM))): float(value) for key, value in params.items() if key.startswith(LEGACY_WEIGHT_PARAM)}
        weights |= {params_column(key): float(value) for key, value in params.items() if key.startswith(task_weight(""))}
        records.append({
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            **dataclasses.asdict(TrialTags.from_mlflow(tags)),
            "status": run.info.status,
            "outcome": outcome,
            "reason": reason,
            "trial_id": trial_id,
            "learning_rate": float(params.get("training.learning_rate", math.nan)),
            **weights,
            **run.data.metrics,
        })
    frame = pd.DataFrame.from_records(records)
    return frame.sort_values(["role", "candidate", "seed", "run_name"]).reset_index(drop=True) if len(frame) else frame


def trained_to_the_end(trials: pd.DataFrame) -> pd.DataFrame:
    """Finished trials, less those a scheduler (ASHA) stopped early: their metrics are of a
    shorter training, so they would drag a candidate's mean down. They are listed apart."""
    if not len(trials):
        return trials
    return trials[[counts_in_means(status, outcome) for status, outcome in zip(trials["status"], trials["outcome"])]]


def compare(spec: StudySpec, trials: pd.DataFrame, trivial: dict[str, float] | None = None) -> Comparison:
    """Main tasks first (their primary metrics are the headline), auxiliary tasks after them.
    ``trivial``: the trivial predictor's metrics as the study logged them (polytask.results.trivial);
    None or empty for a study from before they were logged (then no trivial row and no warnings)."""
    ordered = spec.main_tasks + [t for t in spec.tasks if t.auxiliary]
    metrics = [(t.name, m) for t in ordered for m in (TASK_TYPES[t.type].metrics if len(ordered) <= MANY_TASKS else [t.primary_metric])]
    columns = [f"best/val/{task}/{m}" for task, m in metrics] + [BEST_SCORE]
    columns += [f"test/{task}/{m}" for task, m in metrics if f"test/{task}/{m}" in trials]
    primary = [f"best/val/{t.name}/{t.primary_metric}" for t in spec.main_tasks]
    columns += [c for c in COST_COLUMNS if c in trials]
    comparison = Comparison([], columns, primary, trials)
    own = comparison.role(TRIAL)
    completed = trained_to_the_end(own)
    for candidate in spec.candidates:
        mine = own[own["candidate"] == candidate.label] if len(own) else own
        done = completed[completed["candidate"] == candidate.label] if len(completed) else completed
        comparison.rows += _candidate_rows(spec, candidate.label, mine, done, comparison)
    baseline = _baseline_row(spec, comparison)
    if baseline is not None:
        comparison.rows.append(baseline)
    if trivial:
        comparison.rows.append(_trivial_row(trivial, comparison.columns))
    scored = [r for r in comparison.rows if r.kind in ("strategy", "front") and not math.isnan(r.mean(BEST_SCORE))]
    if scored:
        max(scored, key=lambda r: r.mean(BEST_SCORE)).best = True
    _statistics(spec, comparison)
    few = [r.trials for r in comparison.rows if r.kind == "strategy" and 0 < r.trials < MIN_SEEDS]
    if few:
        comparison.warnings.append(
            f"{min(few)} seed{'s' if min(few) > 1 else ''} for some strategies: too few to separate strategies "
            f"(confidence intervals and p-values need {MIN_SEEDS} or more; the figures show the seeds' min–max); add seeds"
        )
    return comparison


def _candidate_rows(spec: StudySpec, label: str, mine: pd.DataFrame, done: pd.DataFrame, comparison: Comparison) -> list[Row]:
    candidate, tasks = spec.candidate(label), [t.name for t in spec.main_tasks]
    failed = int((mine["status"] != "FINISHED").sum()) if len(mine) else 0  # not those a scheduler stopped
    common = {"candidate": label, "weighting": candidate.weighting, "sharing": spec.sharing_of(label).name}
    family = mine["family"].iloc[0] if len(mine) and "family" in mine else ""
    searched = done[done["phase"] == SEARCH] if len(done) else done
    if candidate.search is not None and len(searched):
        comparison.fronts[label] = (searched, pareto_front(searched, comparison.primary, [t.resolved_direction for t in spec.main_tasks]))
    if not spec.tuned(label):
        return [_row(Row(label, trials=len(done), failed=failed, family=family, **common), done, comparison.columns, tasks)]
    evaluated = done[done["phase"] == EVALUATION] if len(done) else done
    if len(evaluated) or spec.execution.scheduler.kind != "pbt":
        failed = int((mine[mine["phase"] == EVALUATION]["status"] != "FINISHED").sum()) if len(mine) else 0
        row = Row(label, trials=len(evaluated), failed=failed, family=family, **common, note=_selection_note(spec, label, mine, evaluated))
        if not len(searched):
            comparison.dropped.append(label)
        return [_row(row, evaluated, comparison.columns, tasks)]
    # PBT: the population is the search; its Pareto-optimal members, final weights shown
    rows = []
    for index in comparison.fronts.get(label, (None, []))[1]:
        trial = searched.loc[index]
        weights = ", ".join(f"{trial[task_weight(t)]:.2f}" for t in spec.task_names)
        note = f"seed {trial['seed']}, Pareto-optimal of {len(searched)} (final PBT weights)" + (f" ({failed} failed)" if failed else "")
        rows.append(_row(Row(f"{label} [{weights}]", trials=1, failed=0, family=family, kind="front", note=note, **common), searched.loc[[index]], comparison.columns, tasks))
    return rows or [Row(label, trials=0, failed=failed, note="no completed trial", **common)]


def _row(row: Row, trials: pd.DataFrame, columns: list[str], tasks: list[str]) -> Row:
    row.values = {c: [float(v) for v in trials[c].dropna()] for c in columns if c in trials}
    if "cost/params/shared" in trials:
        row.capacity = {t: [float(v) for v in (trials["cost/params/shared"] + trials[f"cost/params/{t}"]).dropna()] for t in tasks if f"cost/params/{t}" in trials}
    return row


def _trivial_row(trivial: dict[str, float], columns: list[str]) -> Row:
    """The trivial predictor as a row: its validation metrics under the ``best/val/`` columns,
    its test metrics under the ``test/`` ones; one value each (it has no seeds)."""
    row = Row(TRIVIAL, TRIVIAL, "none", 0, 0, sharing="none", kind="trivial", note="predicts without reading the input (majority class, train mean or median, all-O): the floor a strategy must clear")
    for column in columns:
        key = f"trivial/val/{column.removeprefix('best/val/')}" if column.startswith("best/val/") else f"trivial/{column}" if column.startswith("test/") else None
        if key in trivial:
            row.values[column] = [float(trivial[key])]
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
        parts.append("weights [" + ", ".join(f"{trial[params_column(task_weight(t))]:.2f}" for t in spec.task_names) + "]")
    if spec.comparison.tuning is not None:
        parts.append(f"lr {trial['learning_rate']:.2g}")
    return f"{' '.join(parts)}: {trial['run_name']}, best val/score of {len(searched)} search trials"


def _baseline_row(spec: StudySpec, comparison: Comparison) -> Row | None:
    """The single-task models as one row: per seed, each task's metrics from its own model;
    val/score the mean of theirs; costs summed over the K models (what training them costs)."""
    baselines = trained_to_the_end(comparison.role(BASELINE))
    if not len(baselines):
        return None
    tasks = [t.name for t in spec.main_tasks]
    row = Row(BASELINE_ROW, BASELINE_ROW, "equal", 0, int((comparison.role(BASELINE)["status"] != "FINISHED").sum()), family=BASELINE, kind="baseline")
    for seed, group in baselines.groupby("seed"):
        by_task = {baseline_task(c): run for c, run in zip(group["candidate"], group.to_dict("records"))}
        if set(tasks) - set(by_task):
            continue  # a seed missing a task's model is left out
        row.trials += 1
        for column in comparison.columns:
            if column in SUMMED_COSTS:
                value = sum(float(r.get(column, math.nan)) for r in by_task.values())
            elif column == BEST_SCORE:
                value = float(np.mean([by_task[t].get(column, math.nan) for t in tasks]))
            else:
                task = column.split("/")[-2]
                value = float(by_task[task].get(column, math.nan)) if task in by_task else math.nan
            if not math.isnan(value):
                row.values.setdefault(column, []).append(value)
        for task in tasks:
            row.capacity.setdefault(task, []).append(float(by_task[task].get("cost/params/total", math.nan)))
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
    trivial = next((r for r in rows if r.kind == "trivial"), None)
    measured = [r for r in rows if r.kind != "trivial"]
    comparison.split = "test" if measured and all(all(f"test/{t.name}/{t.primary_metric}" in r.values for t in spec.main_tasks) for r in measured) else "val"
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
        _capacity(spec, comparison, baseline)
    primary = {t.name: metrics[(t.name, t.primary_metric)] for t in spec.main_tasks}
    if trivial is not None:
        _did_it_learn(spec, comparison, trivial, primary)
    if baseline is not None:
        _within_noise(spec, comparison, baseline, primary)
    ranked = {t: primary[t] for t in primary if t not in comparison.unlearned} or primary
    ranks = stats.mean_rank({r.label: {c: r.mean(c) for c, _ in ranked.values()} for r in measured}, dict(ranked.values()))
    for row in measured:
        row.rank = ranks.get(row.label, math.nan)
    tuned = next((r for r in rows if r.weighting == "scalarization" and spec.candidate(r.candidate).search is not None and r.kind == "strategy"), None)
    if tuned is not None:
        comparison.reference = tuned.label
        test = stats.welch_p_value if spec.comparison.significance_test == "welch" else stats.bootstrap_p_value
        for row in measured:
            if row is not tuned:
                row.p_value = test(row.delta_m_seeds, tuned.delta_m_seeds) if baseline is not None else test(row.values.get(BEST_SCORE, []), tuned.values.get(BEST_SCORE, []))
        _hypervolumes(spec, comparison, measured, tuned.candidate, trivial)


def _capacity(spec: StudySpec, comparison: Comparison, baseline: Row) -> None:
    """params vs single-task for every row, and a note where it is more than 25% off."""
    reference = {task: float(np.mean(v)) for task, v in baseline.capacity.items() if v and np.isfinite(v).all()}
    for row in comparison.rows:
        ratios = [float(np.mean(row.capacity[t])) / reference[t] for t in reference if row.capacity.get(t) and reference[t] > 0]
        if not ratios or row.kind == "trivial":
            continue
        row.params_ratio = float(np.mean(ratios))
        if abs(row.params_ratio - 1) > CAPACITY_TOLERANCE:
            note = (f"each task's prediction depends on {row.params_ratio:.2f}x the parameters of its single-task baseline, "
                    "so part of its Δm may be capacity rather than sharing")
            row.note = f"{row.note}; {note}" if row.note else note


def _did_it_learn(spec: StudySpec, comparison: Comparison, trivial: Row, primary: dict[str, tuple[str, str]]) -> None:
    """Which rows are clearly above the trivial predictor on each main task's primary metric
    (comparison split); warnings for a task no strategy clears, and for a study where no
    candidate cleared any."""
    strategies = [r for r in comparison.rows if r.kind in ("strategy", "front") and r.trials]
    for row in comparison.rows:
        if row.kind in ("strategy", "front", "baseline"):
            row.learned = {t: stats.clearly_better(row.values.get(column, []), trivial.mean(column), direction) for t, (column, direction) in primary.items()}
    for task in spec.main_tasks:
        column, _ = primary[task.name]
        if not strategies or any(r.learned.get(task.name) for r in strategies):
            continue
        comparison.unlearned.append(task.name)
        baseline = next((r for r in comparison.rows if r.kind == "baseline"), None)
        also = " The single-task baseline is above it, so the multi-task models lose what one task alone learns." if baseline is not None and baseline.learned.get(task.name) else ""
        comparison.warnings.append(
            f"task {task.name}: no strategy is clearly above {TASK_TYPES[task.type].trivial_answer} "
            f"({comparison.split} {task.primary_metric} {trivial.mean(column):.3f}); its differences are noise, and it is left out of the mean rank.{also}"
        )
    if strategies and len(comparison.unlearned) == len(spec.main_tasks):
        steps = comparison.trials["global_step"].dropna() if "global_step" in comparison.trials else pd.Series(dtype=float)
        budget = f"{spec.training.epochs} epochs" + (f", {int(steps.median())} steps" if len(steps) else "")
        comparison.warnings.append(
            f"no candidate learned anything beyond the trivial predictor on any task: the training may train nothing "
            f"(learning rate {spec.training.learning_rate:g}, {budget}). Check training.learning_rate (docs/defaults.md) and training.epochs, "
            f"or whether the inputs carry information about the labels."
        )


def _within_noise(spec: StudySpec, comparison: Comparison, baseline: Row, primary: dict[str, tuple[str, str]]) -> None:
    """A warning when no strategy's primary metric is clearly apart from the single-task
    baseline's on any learned task (stats.clearly_apart): then the Δm% column ranks seed noise."""
    strategies = [r for r in comparison.rows if r.kind in ("strategy", "front") and r.trials > 1]
    tasks = [t for t in primary if t not in comparison.unlearned]
    if baseline.trials < 2 or not strategies or not tasks:
        return  # one seed has no noise estimate: the few-seeds warning speaks for it
    if any(stats.clearly_apart(r.values.get(primary[t][0], []), baseline.values.get(primary[t][0], [])) for r in strategies for t in tasks):
        return
    spread = [r.delta_m_task for r in strategies if math.isfinite(r.delta_m_task)]
    span = f" (Δm% from {min(spread):+.2f} to {max(spread):+.2f})" if spread else ""
    comparison.warnings.append(
        f"no strategy is clearly better or worse than the single-task baselines on any task{span}: each difference is within "
        f"seed noise (2 standard errors over {baseline.trials} seeds, or under 1%), so the Δm% and rank order may not repeat with other seeds; add seeds"
    )


def _at(row: Row, column: str, i: int) -> float:
    values = row.values.get(column, [])
    return values[i] if i < len(values) else math.nan


def _hypervolumes(spec: StudySpec, comparison: Comparison, rows: list[Row], tuned: str, trivial: Row | None) -> None:
    """Each row's per-seed validation points against the tuned search's Pareto front, from the
    trivial predictor's point: a gain is a share of the front's improvement over trivial, so a
    difference of 0.001 on metrics 0.4 above trivial reads as about 0.25%, not as much as the
    front's whole spread (without a trivial point, e.g. an older study: 10% beyond the worst
    point, as stats.reference_point)."""
    if tuned not in comparison.fronts or len(comparison.primary) < 2:
        return
    searched, front = comparison.fronts[tuned]
    directions = [t.resolved_direction for t in spec.main_tasks]
    front_points = stats.oriented(searched.loc[front, comparison.primary].to_numpy(float), directions)
    points = {r.label: _points(r, comparison.primary, directions) for r in rows}
    origin = _points(trivial, comparison.primary, directions) if trivial is not None else None
    if origin is not None and (front_points > origin).all(axis=1).any():
        reference = origin[0]
    else:
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
