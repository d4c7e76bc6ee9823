"""What each trial of a study trains: the plan of candidate x seed, and for a searched
scalarization candidate the task weights Optuna proposes.

One Tune run holds the whole study, so all trials share one scheduler, one pool of reused actors
and one experiment folder (which ``polytask resume`` restores). Fixed candidates come from the
plan; for a searched candidate each trial asks Optuna for a point (ask/tell) and tells it the
result. Each searched candidate has its own multi-objective Optuna study, one objective per main
task (its primary validation metric at the selected epoch), so it yields a Pareto front. The
Optuna studies live in memory (pickled with Tune's searcher state, so a resumed study continues
them) or in an RDB (``optuna.storage``), where ``optuna-dashboard`` can watch them.

A trial's config carries the raw sampled weights (``sampled``); :func:`config_weights` scales
them. Population-based training mutates ``sampled`` between epochs (polytask.schedulers), so the
raw values are the one source of a trial's weights.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from typing import Any

import optuna
from ray.tune.search import Searcher

from polytask.spec import SearchSpec, StudySpec


@dataclass(frozen=True)
class PlannedTrial:
    candidate: str
    seed: int
    search_index: int | None = None  # 1-based, for trials whose weights Optuna proposes


def plan_trials(spec: StudySpec) -> list[PlannedTrial]:
    """Seed-major order, so every candidate has a first seed done before any has a second.
    A searched candidate has ``search.trials`` trials, seeds taken in turn."""
    plan = []
    for seed in spec.seeds:
        for c in spec.candidates:
            if c.search is None:
                plan.append(PlannedTrial(c.label, seed))
    for c in spec.candidates:
        if c.search is not None:
            plan += [PlannedTrial(c.label, spec.seeds[i % len(spec.seeds)], i + 1) for i in range(c.search.trials)]
    return plan


def objective_metrics(spec: StudySpec) -> tuple[list[str], list[str]]:
    """Optuna's objectives: each main (not auxiliary) task's primary metric, validation split,
    selected epoch."""
    return [f"best/val/{t.name}/{t.primary_metric}" for t in spec.main_tasks], [t.resolved_direction for t in spec.main_tasks]


def normalised_weights(raw: dict[str, float], task_names: list[str]) -> list[float]:
    """Scale sampled weights to sum to the number of tasks (equal weighting = all ones)."""
    values = [float(raw[t]) for t in task_names]
    total = sum(values)
    return [len(values) * v / total for v in values]


def config_weights(config: dict[str, Any], task_names: list[str]) -> list[float] | None:
    """A trial's task weights, from the raw values in its config; None for other candidates."""
    sampled = config.get("sampled")
    return None if not sampled else normalised_weights(sampled, task_names)


def optuna_study_name(study: str, candidate: str, parent_run_id: str) -> str:
    """One Optuna study per searched candidate and study run: a rerun never mixes its trials
    into an earlier run's search in a shared RDB."""
    return f"{study}.{candidate}.{parent_run_id[:8]}"


class WeightSearch:
    """Optuna's ask/tell over the raw task weights of one searched candidate."""

    def __init__(self, search: SearchSpec, name: str, task_names: list[str], metrics: list[str], directions: list[str], storage: str | None) -> None:
        self.task_names, self.metrics = task_names, metrics
        self.distributions = {t: optuna.distributions.FloatDistribution(search.low, search.high, log=True) for t in task_names}
        self.study = optuna.create_study(
            study_name=name,
            storage=storage,
            directions=directions,
            sampler=optuna.samplers.TPESampler(seed=search.seed),
            load_if_exists=True,  # a resumed study finds its own search again
        )
        self.pending: dict[str, int] = {}  # Tune trial id -> Optuna trial number

    def ask(self, trial_id: str, seed: int) -> dict[str, float]:
        trial = self.study.ask(self.distributions)
        trial.set_user_attr("tune_trial_id", trial_id)
        trial.set_user_attr("seed", seed)
        self.pending[trial_id] = trial.number
        return {t: float(trial.params[t]) for t in self.task_names}

    def tell(self, trial_id: str, result: dict | None, error: bool, finished: bool) -> None:
        """Complete when the trial trained to its end; pruned when a scheduler stopped it
        (its values are of an unfinished model); failed on an error or a divergence."""
        number = self.pending.pop(trial_id, None)
        if number is None:
            return
        values = [(result or {}).get(m) for m in self.metrics]
        usable = not error and all(v is not None and math.isfinite(v) for v in values) and not (result or {}).get("diverged")
        if not usable:
            self.study.tell(number, state=optuna.trial.TrialState.FAIL)
        elif not finished:
            self.study.tell(number, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(number, [float(v) for v in values])

    def forget_abandoned(self) -> None:
        """After a restore: trials asked after the searcher's last saved state were never run
        by the restored Tune run; mark them failed instead of leaving them RUNNING."""
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for trial in running:
            if trial.number not in self.pending.values():
                self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


class StudySearcher(Searcher):
    def __init__(self, spec: StudySpec, parent_run_id: str = "local") -> None:
        metrics, modes = objective_metrics(spec)
        super().__init__(metric=None, mode=None)
        self.task_names = spec.task_names
        self.epochs = spec.training.epochs
        self.plan = plan_trials(spec)
        self.next_index = 0
        self.routes: dict[str, str] = {}  # trial id -> searched candidate it belongs to
        directions = ["maximize" if m == "max" else "minimize" for m in modes]
        self.searches: dict[str, WeightSearch] = {
            c.label: WeightSearch(c.search, optuna_study_name(spec.name, c.label, parent_run_id), spec.task_names, metrics, directions, spec.optuna.storage)
            for c in spec.candidates
            if c.search is not None
        }

    @property
    def total(self) -> int:
        return len(self.plan)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the plan and the Optuna spaces are fixed by the study spec

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.next_index >= len(self.plan):
            return Searcher.FINISHED
        planned = self.plan[self.next_index]
        self.next_index += 1
        config: dict[str, Any] = {"candidate": planned.candidate, "seed": planned.seed}
        if planned.search_index is not None:
            config["search_index"] = planned.search_index
            config["sampled"] = self.searches[planned.candidate].ask(trial_id, planned.seed)
            self.routes[trial_id] = planned.candidate
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        candidate = self.routes.get(trial_id)
        if candidate is not None:
            finished = result is not None and (result.get("epoch", 0) >= self.epochs or bool(result.get("early_stopped")))
            self.searches[candidate].tell(trial_id, result, error, finished)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        for search in self.searches.values():
            search.forget_abandoned()
