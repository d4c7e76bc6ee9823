"""Single-task teachers for distillation: Clark et al., "BAM! Born-Again Multi-Task Networks for
Natural Language Understanding", ACL 2019.

When a candidate sets ``distill``, the study first trains one teacher per task: the study's
own model for that task alone (polytask.study.single_task), its training settings, seed
``distillation.teacher_seed``. Teachers are ordinary trials of a first Tune run (nested MLflow
runs ``teacher-<task>/seed<N>``, tagged ``polytask.role = teacher``); each one's selected epoch
predicts the whole training split, and those class probabilities are an artifact of its run
(``teacher/predictions.pt``: MLflow's store, so this works on a cluster too, and a resumed
study reads a finished teacher's instead of training it again). The students then train on
``lambda * gold + (1 - lambda) * teacher`` targets (polytask.training.train).

A teacher that fails is reported; its task is then trained on the gold labels alone.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console

from polytask.data import PreparedData, SplitArrays
from polytask.ops.tracking import Tracking, read_tensors, trial_runs
from polytask.schema import COMPLETED, TEACHER, TEACHER_ARTIFACT, TrialTags, run_outcome, teacher_label, teacher_task
from polytask.spec import StudySpec
from polytask.study.single_task import single_task_data, single_task_spec, single_task_tuner, task_rows


def train_teachers(spec: StudySpec, data: PreparedData, tracking: Tracking, console: Console, resume: bool = False) -> dict[str, str]:
    """Train every task's teacher and attach their train-split predictions to ``data``.
    Returns task -> outcome ("ok" or why the task has no teacher). ``resume``: restore the
    teachers' Tune run of a resumed study (finished teachers are not trained again)."""
    from polytask.study.trial import StudyContext

    tasks, seed = spec.task_names, spec.distillation.teacher_seed
    contexts = {teacher_label(task): StudyContext(single_task_spec(spec, task, teacher_label(task), [seed]), single_task_data(data, task), tracking) for task in tasks}
    configs = [{"candidate": label, "seed": seed, "role": TEACHER} for label in contexts]
    return _collect(single_task_tuner(spec, contexts, configs, f"{tracking.tune_path}-teachers", console, resume), data, tasks, tracking)


def _collect(tuner, data: PreparedData, tasks: list[str], tracking: Tracking) -> dict[str, str]:
    errors = {teacher_task(r.config["trial"]["candidate"]): r.error for r in tuner.fit()}
    runs = {}
    for run in trial_runs(tracking):
        tags = TrialTags.from_mlflow(run.data.tags)
        if tags.role == TEACHER and run.info.status == "FINISHED" and run_outcome(run.data.tags)[0] == COMPLETED:
            runs[teacher_task(tags.candidate)] = run.info.run_id
    predictions: dict[str, np.ndarray] = {}
    outcomes: dict[str, str] = {}
    for task in tasks:
        if task not in runs:
            error = errors.get(task)
            outcomes[task] = f"teacher failed ({type(error).__name__ if error else 'no predictions'}); trained on gold labels only"
            continue
        predictions[task] = read_tensors(tracking, runs[task], *TEACHER_ARTIFACT)[task].numpy().astype("float32")
        outcomes[task] = "ok"
    train = data.splits["train"]
    train.teacher = {task: onto_student_rows(train, tasks.index(task), p) for task, p in predictions.items()} or None
    return outcomes


def onto_student_rows(split: SplitArrays, index: int, predictions: np.ndarray) -> np.ndarray:
    """A teacher's predictions (its rows, its order) as an array over the student's rows; the
    other tasks' rows get zeros, never read (their labels for this task are missing)."""
    out = np.zeros((len(split), predictions.shape[1]), dtype=np.float32)
    out[task_rows(split, index)] = predictions
    return out
