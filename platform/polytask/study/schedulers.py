"""Ray Tune trial schedulers for a study (``execution.scheduler``; the math is in its docstring).

Both ASHA and PBT judge trials on ``val/score``: the main tasks' primary validation metrics,
each turned "higher is better" and unitless (polytask.tasks.score), averaged. A per-task metric
would favour one task; Optuna's objectives stay per task, but a scheduler needs one number.
"""

from __future__ import annotations

import functools
from typing import Any

from ray import tune
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, PopulationBasedTraining, TrialScheduler

from polytask.schema import EPOCH, SCORE
from polytask.spec import StudySpec


def make_scheduler(spec: StudySpec) -> TrialScheduler:
    settings = spec.execution.scheduler
    if settings.kind == "asha":
        return AsyncHyperBandScheduler(
            time_attr=EPOCH,
            metric=SCORE,
            mode="max",
            max_t=spec.training.epochs,
            grace_period=settings.grace_period,
            reduction_factor=settings.reduction_factor,
        )
    if settings.kind == "pbt":
        search = spec.candidates[0].search
        return PopulationBasedTraining(
            time_attr=EPOCH,
            metric=SCORE,
            mode="max",
            perturbation_interval=settings.perturbation_interval,
            quantile_fraction=settings.quantile_fraction,
            resample_probability=settings.resample_probability,
            synch=settings.synchronous,
            hyperparam_mutations={"sampled": {t: tune.loguniform(search.low, search.high) for t in spec.task_names}},
            custom_explore_fn=functools.partial(clip_weights, low=search.low, high=search.high),
            require_attrs=False,  # a diverged trial's last report has no epoch
        )
    return FIFOScheduler()


def clip_weights(config: dict[str, Any], low: float, high: float) -> dict[str, Any]:
    """PBT multiplies a raw weight by 0.8 or 1.2 without bounds; keep it in the spec's [low, high]."""
    config["sampled"] = {t: min(max(float(v), low), high) for t, v in config["sampled"].items()}
    return config


def pbt_param_space(spec: StudySpec) -> dict[str, Any]:
    """The population of a PBT study: ``search.trials`` members of its one candidate, seeds in
    turn, each member's first raw weights drawn log-uniformly from [low, high] (PBT then evolves
    them; the searcher's Optuna does not combine with PBT)."""
    candidate = spec.candidates[0]
    search, seeds = candidate.search, list(spec.seeds)
    return {
        "candidate": candidate.label,
        "phase": "search",
        "search_index": tune.grid_search(list(range(1, search.trials + 1))),
        "seed": tune.sample_from(lambda config: seeds[(config["search_index"] - 1) % len(seeds)]),
        "sampled": {t: tune.loguniform(search.low, search.high) for t in spec.task_names},
    }
