"""Single-task teachers for distillation: Clark et al., "BAM! Born-Again Multi-Task Networks for
Natural Language Understanding", ACL 2019.

When a candidate sets ``distill``, the study first trains one teacher per task: the study's
encoder under hard sharing with that task alone, its training settings, seed
``distillation.teacher_seed``. Teachers are ordinary trials of a first Tune run (nested MLflow
runs ``teacher-<task>/seed<N>``, tagged ``polytask.role = teacher``); each one's selected epoch
predicts the whole training split, and those class probabilities travel back to the driver in
the teacher's final checkpoint (Ray's storage, so this works on a cluster too). The students
then train on ``lambda * gold + (1 - lambda) * teacher`` targets (polytask.train).

A teacher that fails is reported; its task is then trained on the gold labels alone.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from polytask.data import PreparedData, SplitArrays
from polytask.spec import CandidateSpec, StudySpec
from polytask.spec.models import SharingSpec
from polytask.tracking import Tracking


def teacher_label(task: str) -> str:
    return f"teacher-{task}"


def teacher_spec(spec: StudySpec, task: str) -> StudySpec:
    """The study reduced to one task, hard sharing, equal weighting, the teacher seed."""
    only = next(t for t in spec.tasks if t.name == task).model_copy(update={"auxiliary": False})
    return spec.model_copy(update={
        "tasks": [only],
        "sharing": SharingSpec(),
        "candidates": [CandidateSpec(name=teacher_label(task), weighting="equal")],
        "seeds": [spec.distillation.teacher_seed],
    })


def teacher_data(data: PreparedData, task: str) -> PreparedData:
    """The same rows with only ``task``'s labels; with one dataset per task, only the rows of
    ``task``'s dataset (:func:`student_rows` maps them back)."""
    splits = {name: _one_task(split, task, data.task_names.index(task)) for name, split in data.splits.items()}
    return dataclasses.replace(data, tasks=[t for t in data.tasks if t.name == task], splits=splits, per_task_datasets=False)


def _one_task(split: SplitArrays, task: str, index: int) -> SplitArrays:
    reduced = dataclasses.replace(split, labels={task: split.labels[task]}, token_tasks=tuple(t for t in split.token_tasks if t == task))
    if split.group is None:
        return reduced
    rows = student_rows(split, index)
    for name in ("input_ids", "lengths", "frozen_hidden", "categorical", "numeric", "images"):
        if getattr(split, name) is not None:
            setattr(reduced, name, getattr(split, name)[rows])
    reduced.labels = {task: split.labels[task][rows]}
    reduced.group = None
    return reduced


def student_rows(split: SplitArrays, index: int) -> np.ndarray:
    """The rows of the study's split that a teacher of task ``index`` sees, in its order."""
    return np.arange(len(split)) if split.group is None else np.flatnonzero(split.group == index)


def run_teacher(config: dict[str, Any], contexts: dict[str, Any]) -> None:
    """The Tune trainable of a teacher: polytask.trial.run_trial on the task's reduced study."""
    from polytask.trial import run_trial

    run_trial(config, contexts[config["candidate"]])


def train_teachers(spec: StudySpec, data: PreparedData, tracking: Tracking, console: Console, resume: bool = False) -> dict[str, str]:
    """Train every task's teacher and attach their train-split predictions to ``data``.
    Returns task -> outcome ("ok" or why the task has no teacher). ``resume``: restore the
    teachers' Tune run of a resumed study (finished teachers are not trained again)."""
    from ray import tune

    from polytask.progress import StudyProgress
    from polytask.trial import StudyContext

    tasks = spec.task_names
    contexts = {teacher_label(task): StudyContext(teacher_spec(spec, task), teacher_data(data, task), tracking) for task in tasks}
    trainable = tune.with_resources(tune.with_parameters(run_teacher, contexts=contexts), {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    shown = [f"val/{t.name}/{t.primary_metric}" for t in spec.tasks]
    path = f"{tracking.tune_path}-teachers"
    if resume and tune.Tuner.can_restore(path):
        return _collect(tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True), data, tasks)
    storage, name = path.rsplit("/", 1)
    tuner = tune.Tuner(
        trainable,
        param_space={
            "candidate": tune.grid_search(list(contexts)),
            "seed": spec.distillation.teacher_seed,
            "teacher": True,
        },
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=spec.execution.max_concurrent_trials),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=spec.execution.max_retries),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[StudyProgress(len(tasks), shown, spec.training.epochs, console, tasks)],
            verbose=0,
        ),
    )
    return _collect(tuner, data, tasks)


def _collect(tuner, data: PreparedData, tasks: list[str]) -> dict[str, str]:
    from polytask.trial import CHECKPOINT_FILE

    predictions: dict[str, torch.Tensor] = {}
    outcomes: dict[str, str] = {}
    task_of = {teacher_label(task): task for task in tasks}
    for result in tuner.fit():
        task = task_of[result.config["candidate"]]
        if result.error is not None or result.checkpoint is None:
            outcomes[task] = f"teacher failed ({type(result.error).__name__ if result.error else 'no predictions'}); trained on gold labels only"
            continue
        with result.checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True)
        predictions[task] = state["teacher_predictions"][task].numpy().astype("float32")
        outcomes[task] = "ok"
    train = data.splits["train"]
    train.teacher = {task: onto_student_rows(train, tasks.index(task), p) for task, p in predictions.items()} or None
    return outcomes


def onto_student_rows(split: SplitArrays, index: int, predictions: np.ndarray) -> np.ndarray:
    """A teacher's predictions (its rows, its order) as an array over the student's rows; the
    other tasks' rows get zeros, never read (their labels for this task are missing)."""
    out = np.zeros((len(split), predictions.shape[1]), dtype=np.float32)
    out[student_rows(split, index)] = predictions
    return out
