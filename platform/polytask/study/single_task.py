"""A study reduced to one task, and a Tune run of such single-task models.

Two features train single-task models next to a study's candidates: distillation teachers
(polytask.study.distill) and single-task baselines (polytask.study.baselines). Both train *the study's own
model for one task*: the same encoder, the same layers between the encoder and the heads (the
study's ``sharing`` built for that task alone, hidden layers included: see
``Sharing.one_task``), the same head and training settings, through the same trainable as every
trial (polytask.study.trial.run_trial), in a Tune run of their own that ``polytask resume`` restores.
A single-task model therefore differs from the study's multi-task model only in what is shared,
so a comparison with it measures sharing, not capacity.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from rich.console import Console

from polytask.data import PreparedData, SplitArrays
from polytask.spec import CandidateSpec, StudySpec, sharing_kwargs
from polytask.spec.models import SharingSpec
from polytask.strategies.sharing import get_sharing_class


def single_task_spec(spec: StudySpec, task: str, label: str, seeds: list[int]) -> StudySpec:
    """The study reduced to ``task``: its sharing built for that task alone, one
    equal-weighting candidate ``label``."""
    only = next(t for t in spec.tasks if t.name == task).model_copy(update={"auxiliary": False})
    return spec.model_copy(update={
        "tasks": [only],
        "sharing": single_task_sharing(spec.sharing, spec.task_names, task),
        "candidates": [CandidateSpec(name=label, weighting="equal")],
        "seeds": seeds,
    })


def single_task_sharing(sharing: SharingSpec, tasks: list[str], task: str) -> SharingSpec:
    """``sharing`` (an architecture of the multi-task model over ``tasks``) for ``task`` alone."""
    name, params = get_sharing_class(sharing.name).one_task(tasks.index(task), **sharing_kwargs(sharing, tasks))
    return SharingSpec(name=name, params=params)


def single_task_data(data: PreparedData, task: str) -> PreparedData:
    """The same rows with only ``task``'s labels; with one dataset per task, only the rows of
    ``task``'s dataset (:func:`task_rows` maps them back)."""
    splits = {name: _one_task(split, task, data.task_names.index(task)) for name, split in data.splits.items()}
    return dataclasses.replace(data, tasks=[t for t in data.tasks if t.name == task], splits=splits, per_task_datasets=False)


def _one_task(split: SplitArrays, task: str, index: int) -> SplitArrays:
    reduced = dataclasses.replace(split, labels={task: split.labels[task]}, token_tasks=tuple(t for t in split.token_tasks if t == task), teacher=None)
    if split.group is None:
        return reduced
    rows = task_rows(split, index)
    for name in INPUT_ARRAYS:
        if getattr(split, name) is not None:
            setattr(reduced, name, getattr(split, name)[rows])
    reduced.labels = {task: split.labels[task][rows]}
    reduced.group = None
    return reduced


INPUT_ARRAYS = ("input_ids", "lengths", "frozen_hidden", "categorical", "numeric", "images")


def task_rows(split: SplitArrays, index: int) -> np.ndarray:
    """The rows of the study's split that a single-task model of task ``index`` sees, in its order."""
    return np.arange(len(split)) if split.group is None else np.flatnonzero(split.group == index)


def run_single_task(config: dict[str, Any], contexts: dict[str, Any]) -> None:
    """The Tune trainable: polytask.study.trial.run_trial on the reduced study of the trial's candidate
    (configs are grid-searched whole, under the key ``trial``)."""
    from polytask.study.trial import run_trial

    run_trial(config["trial"], contexts[config["trial"]["candidate"]])


def single_task_tuner(spec: StudySpec, contexts: dict[str, Any], configs: list[dict[str, Any]], path: str, console: Console, resume: bool):
    """A Tune run of one trial per config (each names its context by ``candidate``), restored
    when ``resume`` finds it at ``path``."""
    from ray import tune

    from polytask.study.progress import StudyProgress

    trainable = tune.with_resources(tune.with_parameters(run_single_task, contexts=contexts), {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    if resume and tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True)
    tasks = [t for context in contexts.values() for t in context.spec.task_names]
    shown = [f"val/{t.name}/{t.primary_metric}" for t in spec.tasks if t.name in tasks]
    storage, name = path.rsplit("/", 1)
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(configs)},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=spec.execution.max_concurrent_trials),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=spec.execution.max_retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[StudyProgress(len(configs), shown, spec.training.epochs, console, tasks)],
            verbose=0,
        ),
    )
