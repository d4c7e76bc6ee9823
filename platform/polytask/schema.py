"""The vocabulary of a study's records: what study execution writes to MLflow, Tune and the
output folder, and what results read back. Both wings import it (polytask.results never
imports polytask.study), so a name is spelled once: a renamed key fails a test, not a report.

* **run names and labels** with their inverses (``equal/seed0``, ``single-task-<task>``,
  ``teacher-<task>``);
* **tags** of a nested run: :class:`TrialTags` (written once when the run is created, read by
  the comparison) and the keys set as a run ends (``outcome``, ``reason``, ...);
* **metric keys**: the validation score, epochs, and a task's weight — one spelling,
  ``weight/<task>``, namespaced by where it appears (``step/``, ``pbt/``, ``sampled/``; the
  MLflow param of a configured weight has the same key, in MLflow's params namespace);
* **phases, roles, outcomes**, and the one rule of a trial "trained to the end".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- phases and roles

# A trial's phase: a searched candidate's search trials, then its evaluation trials (the
# selected configuration on every seed); every other candidate's fixed trials.
SEARCH, EVALUATION, FIXED = "search", "evaluation", "fixed"
PHASES = (SEARCH, EVALUATION, FIXED)

# What a nested run is: a candidate's trial, a single-task baseline, a distillation teacher.
TRIAL, BASELINE, TEACHER = "trial", "baseline", "teacher"

# How a run ended (tag ``polytask.outcome``).
COMPLETED = "completed"  # trained to the end (or stopped by its own early stopping)
STOPPED = "stopped_by_scheduler"  # ASHA ended it early; its run is FINISHED, its metrics of a shorter training
DIVERGED = "diverged"  # a NaN/inf loss; FAILED
ERROR = "error"  # an exception; FAILED
INTERRUPTED = "stopped"  # Tune stopped its process or Ctrl-C; KILLED
RESTARTED = "restarted"  # an abandoned attempt, deleted when its retry started from scratch
LOST = "lost"  # its Tune trial never reported; FAILED
DUPLICATE = "duplicate"  # an empty second run left by a create_run sent again after its reply was lost; deleted

# --------------------------------------------------------------------------- names and labels

BASELINE_ROW = "single-task"  # the comparison's row of the single-task baselines
TRIVIAL = "trivial"  # the comparison's row of the trivial predictor, and its metrics' prefix
_BASELINE_PREFIX = f"{BASELINE_ROW}-"
_TEACHER_PREFIX = "teacher-"


def run_name(candidate: str, seed: int, search_index: int | None = None) -> str:
    """``candidate/seedN``, plus ``/trialK`` for the K-th searched trial of a candidate."""
    name = f"{candidate}/seed{seed}"
    return name if search_index is None else f"{name}/trial{search_index}"


def baseline_label(task: str) -> str:
    """The candidate label of ``task``'s single-task baseline."""
    return f"{_BASELINE_PREFIX}{task}"


def baseline_task(label: str) -> str:
    """The inverse of :func:`baseline_label`."""
    return _after(_BASELINE_PREFIX, label, "a single-task baseline's")


def teacher_label(task: str) -> str:
    """The candidate label of ``task``'s distillation teacher."""
    return f"{_TEACHER_PREFIX}{task}"


def teacher_task(label: str) -> str:
    """The inverse of :func:`teacher_label`."""
    return _after(_TEACHER_PREFIX, label, "a teacher's")


def _after(prefix: str, label: str, whose: str) -> str:
    if not label.startswith(prefix):
        raise ValueError(f"{label!r} is not {whose} label")
    return label[len(prefix) :]


# --------------------------------------------------------------------------- metric keys

SCORE = "val/score"  # the main tasks' primary validation metrics, oriented and averaged
EPOCH = "epoch"
GLOBAL_STEP = "global_step"
EARLY_STOPPED = "early_stopped"  # 1 in the last report of a trial its own patience ended
TRIAL_ID = "trial_id"  # Tune's, in every Tune result


def best_of(key: str) -> str:
    """The selected epoch's value of ``key`` (``best/val/score``, ``best/val/<task>/<metric>``)."""
    return f"best/{key}"


BEST_SCORE = best_of(SCORE)
BEST_EPOCH = best_of(EPOCH)


def task_weight(task: str) -> str:
    """The weight of ``task``: as applied (a metric each epoch) and as configured for a
    scalarization trial (an MLflow param of the same key)."""
    return f"weight/{task}"


def step_key(key: str) -> str:
    """``key`` logged every ``log_every_steps`` training steps (MLflow step = global step)."""
    return f"step/{key}"


def pbt_key(key: str) -> str:
    """``key`` as population-based training set it when the trial continued another member."""
    return f"pbt/{key}"


def sampled_key(key: str) -> str:
    """The raw value Optuna sampled for ``key`` (a task weight before normalisation), a param."""
    return f"sampled/{key}"


def params_column(key: str) -> str:
    """The column of MLflow param ``key`` in a frame of runs, as ``mlflow.search_runs`` names it."""
    return f"params.{key}"


# --------------------------------------------------------------------------- tags

TAG_PREFIX = "polytask."
# keys set on a run as it runs and ends (with the prefix, by TrialRun.set_tags / finish)
OUTCOME, REASON, TRIAL_ID_TAG, DIVERGED_STEP, SELECTED_TRIAL = "outcome", "reason", "trial_id", "diverged_step", "selected_trial"
STUDY_TAG, KIND_TAG = "study", "kind"  # on the study's parent run: polytask.study = name, polytask.kind = "study"


def tag(key: str) -> str:
    """The MLflow tag name of a polytask ``key``."""
    return f"{TAG_PREFIX}{key}"


@dataclass(frozen=True)
class TrialTags:
    """The tags a nested run is created with (``polytask.<field>``): what it trains, for the
    MLflow UI's filters and for the comparison. The defaults are what a reader assumes of a
    run that lacks a tag."""

    candidate: str | None = None
    strategy: str | None = None
    family: str = ""  # loss, gradient, sharing, baseline or teacher
    sharing: str = "hard"
    seed: int = -1
    role: str = TRIAL
    phase: str = FIXED
    sampling: str = ""  # with one dataset per task, the sampling policy
    searched: bool = False
    distilled: bool = False
    selected_trial: str = ""  # an evaluation trial: the search trial whose configuration it trains
    fingerprint: str = ""  # a baseline: its cache key (polytask.study.baselines)
    reused_from: str = ""  # a reused baseline: the run it was trained in

    def to_mlflow(self) -> dict[str, str]:
        """Tag name -> value; empty values are not written."""
        out = {}
        for name, value in dataclasses.asdict(self).items():
            text = str(value).lower() if isinstance(value, bool) else str(value) if value is not None else ""
            if text:
                out[tag(name)] = text
        return out

    @classmethod
    def from_mlflow(cls, tags: Mapping[str, str]) -> TrialTags:
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            text = tags.get(tag(field.name))
            if text is None:
                continue
            values[field.name] = int(text) if field.name == "seed" else text == "true" if field.type == "bool" else text
        return cls(**values)


def run_outcome(tags: Mapping[str, str]) -> tuple[str, str, str]:
    """A run's (outcome, reason, Tune trial id) tags; empty where not set."""
    return tags.get(tag(OUTCOME), ""), tags.get(tag(REASON), ""), tags.get(tag(TRIAL_ID_TAG), "")


# --------------------------------------------------------------------------- trained to the end


def reached_the_end(result: Mapping[str, Any], epochs: int) -> bool:
    """A trial's last Tune result says it trained every epoch, or stopped by its own early
    stopping: its metrics are those of a whole training. Otherwise a scheduler cut it short."""
    return result.get(EPOCH, 0) >= epochs or bool(result.get(EARLY_STOPPED))


def counts_in_means(status: str, outcome: str) -> bool:
    """A recorded run whose metrics enter a candidate's mean: finished, and not cut short by the
    scheduler (its outcome was decided by :func:`reached_the_end`)."""
    return status == "FINISHED" and outcome != STOPPED


# --------------------------------------------------------------------------- artifacts

# of a nested run, as (folder, file): written by the trial from its outcome
MODEL_ARTIFACT = ("model", "model.pt")  # the selected model's trainable parameters (comparison.register_models)
TEACHER_ARTIFACT = ("teacher", "predictions.pt")  # a teacher's class probabilities on the training split

# --------------------------------------------------------------------------- the output folder

STUDY_FILE = "study.json"  # where the study's MLflow store and Tune run are (ops.tracking.Tracking)
SPEC_FILE = "spec.yaml"  # the spec as run, defaults resolved
REPORT_FILES = ("comparison.md", "comparison.html", "comparison.csv", "trials.csv", "front.png", "tasks.png", "weights.png", "cost.png")
