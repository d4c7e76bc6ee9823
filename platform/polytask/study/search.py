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
them. Population-based training mutates ``sampled`` between epochs (polytask.study.schedulers), so the
raw values are the one source of a trial's weights.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from typing import Any

import optuna
from ray.tune.search import Searcher

from polytask.schema import BEST_SCORE, EVALUATION, FIXED, SEARCH, reached_the_end
from polytask.spec import StudySpec


@dataclass(frozen=True)
class PlannedTrial:
    candidate: str
    seed: int
    search_index: int | None = None  # 1-based, for trials whose configuration Optuna proposes
    phase: str = FIXED  # fixed: a candidate as specified; search / evaluation: see plan_trials


def plan_trials(spec: StudySpec) -> list[PlannedTrial]:
    """Seed-major order, so every candidate has a first seed done before any has a second.

    A tuned candidate (``spec.tuned``) first has its search trials (``search.trials``, or
    ``comparison.tuning.trials`` for every candidate), seeds taken in turn; then its selected
    configuration (best validation ``val/score``) is evaluated on every seed. Under PBT the
    search trials are the population and there is no evaluation phase.
    """
    plan = []
    for seed in spec.seeds:
        plan += [PlannedTrial(c.label, seed) for c in spec.candidates if not spec.tuned(c.label)]
    tuned = [c.label for c in spec.candidates if spec.tuned(c.label)]
    for label in tuned:
        plan += [PlannedTrial(label, spec.seeds[i % len(spec.seeds)], i + 1, SEARCH) for i in range(search_trials(spec, label))]
    if spec.execution.scheduler.kind != "pbt":
        plan += [PlannedTrial(label, seed, phase=EVALUATION) for seed in spec.seeds for label in tuned]
    return plan


def search_trials(spec: StudySpec, label: str) -> int:
    tuning, search = spec.comparison.tuning, spec.candidate(label).search
    return tuning.trials if tuning is not None else search.trials


SELECTION_METRIC = BEST_SCORE  # what picks a tuned candidate's configuration: validation only
LEARNING_RATE = "learning_rate"


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


class ConfigSearch:
    """Optuna's ask/tell over one tuned candidate's configuration: its raw task weights (a
    searched scalarization; one objective per main task, so a Pareto front) and/or its learning
    rate (``comparison.tuning``; a candidate without searched weights has the single objective
    ``best/val/score``). Each trial records its validation ``val/score``: :meth:`selected`
    picks the best one, on validation only."""

    def __init__(self, spec: StudySpec, label: str, name: str) -> None:
        candidate, tuning = spec.candidate(label), spec.comparison.tuning
        self.task_names = spec.task_names
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {}
        if candidate.search is not None:
            search = candidate.search
            self.distributions.update({t: optuna.distributions.FloatDistribution(search.low, search.high, log=True) for t in spec.task_names})
            self.metrics, modes = objective_metrics(spec)
        else:
            self.metrics, modes = [SELECTION_METRIC], ["max"]
        if tuning is not None:
            self.distributions[LEARNING_RATE] = optuna.distributions.FloatDistribution(*tuning.learning_rate, log=True)
        seed = candidate.search.seed if candidate.search is not None else tuning.seed
        self.study = optuna.create_study(
            study_name=name,
            storage=spec.optuna.storage,
            directions=["maximize" if m == "max" else "minimize" for m in modes],
            sampler=optuna.samplers.TPESampler(seed=seed),
            load_if_exists=True,  # a resumed study finds its own search again
        )
        self.pending: dict[str, int] = {}  # Tune trial id -> Optuna trial number
        self.val_scores: dict[int, float] = {}  # Optuna trial number -> validation val/score, completed trials

    def ask(self, trial_id: str, seed: int) -> dict[str, Any]:
        trial = self.study.ask(self.distributions)
        trial.set_user_attr("tune_trial_id", trial_id)
        trial.set_user_attr("seed", seed)
        self.pending[trial_id] = trial.number
        return self._config(trial.params)

    def _config(self, params: dict[str, float]) -> dict[str, Any]:
        """Trial config entries: ``sampled`` raw weights, ``learning_rate``."""
        config: dict[str, Any] = {}
        if self.task_names[0] in params:
            config["sampled"] = {t: float(params[t]) for t in self.task_names}
        if LEARNING_RATE in params:
            config[LEARNING_RATE] = float(params[LEARNING_RATE])
        return config

    def tell(self, trial_id: str, result: dict | None, error: bool, finished: bool) -> None:
        """Complete when the trial trained to its end; pruned when a scheduler stopped it
        (its values are of an unfinished model); failed on an error or a divergence."""
        number = self.pending.pop(trial_id, None)
        if number is None:
            return
        result = result or {}
        values = [result.get(m) for m in self.metrics]
        usable = not error and all(v is not None and math.isfinite(v) for v in values) and not result.get("diverged")
        if not usable:
            self.study.tell(number, state=optuna.trial.TrialState.FAIL)
        elif not finished:
            self.study.tell(number, state=optuna.trial.TrialState.PRUNED)
        else:
            self.val_scores[number] = float(result.get(SELECTION_METRIC, math.nan))
            self.study.tell(number, [float(v) for v in values])

    def selected(self) -> tuple[str, dict[str, Any]] | None:
        """The completed trial with the best validation val/score (the earliest on a tie): its
        Tune trial id and config; None when no trial completed."""
        scored = {n: v for n, v in self.val_scores.items() if math.isfinite(v)}
        if not scored:
            return None
        number = max(scored, key=lambda n: (scored[n], -n))
        trial = self.study.trials[number]
        return trial.user_attrs["tune_trial_id"], self._config(trial.params)

    def forget_abandoned(self) -> None:
        """After a restore: trials asked after the searcher's last saved state were never run
        by the restored Tune run; mark them failed instead of leaving them RUNNING."""
        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for trial in running:
            if trial.number not in self.pending.values():
                self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


class StudySearcher(Searcher):
    """Hands Tune the study's planned trials in order. A tuned candidate's evaluation trials
    wait until all its search trials have ended (``suggest`` returns None meanwhile, and Tune
    asks again); they are dropped, and listed in ``dropped``, when none of them completed."""

    def __init__(self, spec: StudySpec, parent_run_id: str = "local") -> None:
        super().__init__(metric=None, mode=None)
        self.epochs = spec.training.epochs
        self.plan = plan_trials(spec)
        self.remaining = list(self.plan)
        self.routes: dict[str, str] = {}  # search trial id -> its candidate, until it ends
        self.dropped: dict[str, str] = {}  # candidate -> why it has no evaluation trials
        self.searches: dict[str, ConfigSearch] = {
            c.label: ConfigSearch(spec, c.label, optuna_study_name(spec.name, c.label, parent_run_id)) for c in spec.candidates if spec.tuned(c.label)
        }

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the plan and the Optuna spaces are fixed by the study spec

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        for planned in list(self.remaining):
            config = self._config(planned, trial_id)
            if config is WAIT:
                continue
            self.remaining.remove(planned)
            if config is not None:
                return config
        return Searcher.FINISHED if not self.remaining else None

    def _config(self, planned: PlannedTrial, trial_id: str) -> dict[str, Any] | None | object:
        """The trial's config; WAIT when it cannot start yet; None when it is dropped."""
        config: dict[str, Any] = {"candidate": planned.candidate, "seed": planned.seed, "phase": planned.phase}
        if planned.phase == SEARCH:
            config |= {"search_index": planned.search_index, **self.searches[planned.candidate].ask(trial_id, planned.seed)}
            self.routes[trial_id] = planned.candidate
        elif planned.phase == EVALUATION:
            searching = any(p.candidate == planned.candidate and p.phase == SEARCH for p in self.remaining)
            if searching or planned.candidate in self.routes.values():
                return WAIT
            selected = self.searches[planned.candidate].selected()
            if selected is None:
                self.dropped[planned.candidate] = "no search trial completed, so there is no configuration to evaluate"
                return None
            config |= {"selected_trial": selected[0], **selected[1]}
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        candidate = self.routes.pop(trial_id, None)
        if candidate is not None:
            finished = result is not None and reached_the_end(result, self.epochs)
            self.searches[candidate].tell(trial_id, result, error, finished)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
        for search in self.searches.values():
            search.forget_abandoned()


WAIT = object()  # StudySearcher._config: not yet
