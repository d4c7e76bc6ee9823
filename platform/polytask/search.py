"""The study's Tune searcher: every candidate x seed, with Optuna choosing the task weights of
each searched scalarization candidate.

One Tune run holds the whole study, so all trials share one scheduler, one pool of reused actors
and one experiment folder (which ``Tuner.restore`` can resume). Fixed candidates come from a
plan; for a searched candidate each trial asks Ray Tune's ``OptunaSearch`` for a point and tells
it the result. The Optuna study is multi-objective, one objective per task (its primary
validation metric at the selected epoch), so the searched candidate yields a Pareto front.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

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


class StudySearcher(Searcher):
    def __init__(self, spec: StudySpec) -> None:
        metrics, modes = objective_metrics(spec)
        super().__init__(metric=None, mode=None)
        self.task_names = spec.task_names
        self.plan = plan_trials(spec)
        self.next_index = 0
        self.routes: dict[str, str] = {}  # trial id -> searched candidate it belongs to
        self.optuna: dict[str, OptunaSearch] = {
            c.label: _optuna_search(c.search, spec.task_names, metrics, modes)
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
            raw = self.optuna[planned.candidate].suggest(trial_id)
            self.routes[trial_id] = planned.candidate
            config["weights"] = normalised_weights(raw, self.task_names)
            config["sampled"] = {t: float(raw[t]) for t in self.task_names}
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        candidate = self.routes.get(trial_id)
        if candidate is not None:
            self.optuna[candidate].on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def _optuna_search(search: SearchSpec, task_names: list[str], metrics: list[str], modes: list[str]) -> OptunaSearch:
    import optuna

    space = {t: optuna.distributions.FloatDistribution(search.low, search.high, log=True) for t in task_names}
    sampler = optuna.samplers.TPESampler(seed=search.seed)
    if len(metrics) == 1:
        return OptunaSearch(space=space, metric=metrics[0], mode=modes[0], sampler=sampler)
    return OptunaSearch(space=space, metric=metrics, mode=modes, sampler=sampler)
