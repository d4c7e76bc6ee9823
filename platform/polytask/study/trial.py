"""The Ray Tune trainable: one trial = one candidate x seed, trained by polytask.training.train.

It connects the training loop to Tune (``tune.report`` with a checkpoint each epoch but the
last, resume from ``tune.get_checkpoint()`` when Tune retries a failed trial, restores a study,
or PBT makes this trial continue another one's model) and to MLflow (the trial's nested run).
A checkpoint holds what a retry needs and nothing else; the trial's outcome goes to MLflow: the
selected model (``model/model.pt``, with ``comparison.register_models``) and a teacher's
train-split predictions (``teacher/predictions.pt``, read back by polytask.study.distill). A diverged trial
(NaN/inf loss) ends normally with ``diverged = 1`` so Tune does not retry it (its run FAILED,
tagged ``polytask.outcome = diverged`` and ``polytask.diverged_step``); any other error is
recorded on the run and re-raised for Tune's retry policy.

Nothing is done twice: a trial whose MLflow run already FINISHED as completed (the driver died
before Tune recorded it) reports the recorded metrics instead of training again, and a trial
continued from a checkpoint skips the MLflow points its run already holds.
"""

from __future__ import annotations

import math
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray import tune

from polytask.data import PreparedData
from polytask.ops.tracking import Tracking, TrialRun
from polytask.schema import (
    COMPLETED,
    DIVERGED,
    ERROR,
    FIXED,
    INTERRUPTED,
    MODEL_ARTIFACT,
    SCORE,
    TEACHER,
    TEACHER_ARTIFACT,
    TRIAL,
    TrialTags,
    pbt_key,
    sampled_key,
    step_key,
    task_weight,
)
from polytask.spec import StudySpec
from polytask.strategies.weighting import get_weighting_class
from polytask.study.search import LEARNING_RATE, config_weights
from polytask.training.train import Diverged, Reporter, TrialOutcome, TrialPlan, train

CHECKPOINT_FILE = "trial_state.pt"


@dataclass(frozen=True)
class StudyContext:
    """What every trial of a study shares; Tune places it in the object store once."""

    spec: StudySpec
    data: PreparedData
    tracking: Tracking


class TuneReporter(Reporter):
    """Training's reports to MLflow and Tune. Points at or before the run's ``logged_epoch`` /
    ``logged_step`` are in MLflow already (an earlier attempt logged them after its last
    checkpoint) and go to Tune only. ``register_model``: the outcome's selected model is logged
    to the run (for the model registry, polytask.results.registry)."""

    def __init__(self, run: TrialRun, trial_id: str, register_model: bool = False) -> None:
        self.run = run
        self.trial_id = trial_id
        self.register_model = register_model

    def step(self, step: int, metrics: dict[str, float]) -> None:
        if step > self.run.logged_step:
            self.run.log({step_key(k): v for k, v in metrics.items()}, step)

    def epoch(self, epoch: int, metrics: dict[str, float], state: dict[str, Any] | None) -> None:
        self._log(epoch, metrics)
        assert state is not None, "every epoch but the last carries a retry state"
        with tempfile.TemporaryDirectory() as folder:
            torch.save({**state, "trial_id": self.trial_id}, Path(folder) / CHECKPOINT_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    def final(self, epoch: int, outcome: TrialOutcome) -> None:
        self._log(epoch, outcome.metrics)
        if self.register_model:
            self.run.log_tensors(*MODEL_ARTIFACT, outcome.selected_state)
        if outcome.teacher_predictions is not None:
            self.run.log_tensors(*TEACHER_ARTIFACT, outcome.teacher_predictions)
        tune.report(outcome.metrics)  # no checkpoint: a retry after this report repeats the last epoch

    def _log(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch > self.run.logged_epoch:
            self.run.log(metrics, epoch)
            self.run.flush()  # before tune.report: a trial Tune stops after this report has logged it


def run_trial(config: dict[str, Any], context: StudyContext) -> None:
    spec = context.spec
    if LEARNING_RATE in config:  # tuned (comparison.tuning): this trial's own learning rate
        spec = spec.model_copy(update={"training": spec.training.model_copy(update={"learning_rate": float(config[LEARNING_RATE])})})
    weights = config_weights(config, spec.task_names)
    plan = TrialPlan(spec, config["candidate"], int(config["seed"]), weights, config.get("search_index"), teacher=config.get("role") == TEACHER)
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    trial_id = tune.get_context().get_trial_id()
    state = _load_checkpoint()
    run = TrialRun.open(
        context.tracking,
        trial_id=trial_id,
        run_name=plan.run_name,
        tags=_tags(spec, plan, config),
        params={**_params(spec, plan, config), **_target_scales(context.data)},
        resuming=state is not None,
    )
    if run.completed is not None:
        tune.report(run.completed)  # trained to the end by an earlier attempt (its outcome in MLflow): not again
        return
    run.set_tags(_placement())
    if state is not None and state.get("trial_id", trial_id) != trial_id:  # PBT: continues another member's model
        # from the other member's epoch, which may be earlier than this run's last point (on a busy
        # machine PBT can hand over a checkpoint older than the epoch this member last reported):
        # what follows is a new trajectory, logged from that epoch on
        run.rewind(state["epoch"], state["global_step"])
        run.log({pbt_key("copied"): 1.0, **{pbt_key(task_weight(t)): w for t, w in zip(spec.task_names, weights or [])}}, state["epoch"])
        run.set_tags({"pbt.copied_from": state["trial_id"]})
    try:
        train(plan, context.data, TuneReporter(run, trial_id, spec.comparison.register_models), state=state)
    except Diverged as exc:
        run.finish("FAILED", outcome=DIVERGED, reason=str(exc), diverged_step=str(exc.step))
        # val/score: the metric a scheduler expects in every result (Tune checks)
        tune.report({"diverged": 1.0, "diverged_step": exc.step, SCORE: -math.inf})
        return
    except Exception:
        run.finish("FAILED", outcome=ERROR, reason=traceback.format_exc(limit=-8))
        raise
    except SystemExit:
        # Tune stopped the trial (a scheduler's decision, the end of a PBT member, Ctrl-C in the
        # driver): only the driver knows which, and it ends the run (settle_runs). Ending it here
        # too raced with the driver: Tune does not wait for this thread, so on a busy machine
        # this write could land after the driver's and leave a scheduler-stopped run KILLED.
        # Every point is in MLflow already (flushed before each tune.report).
        raise
    except BaseException:  # Ctrl-C in this process
        run.finish("KILLED", outcome=INTERRUPTED)
        raise
    run.finish("FINISHED", outcome=COMPLETED)


def _placement() -> dict[str, str]:
    """Where the trial runs: its Ray node and the GPUs Ray gave it (empty on CPU)."""
    import ray

    context = ray.get_runtime_context()
    gpus = context.get_accelerator_ids().get("GPU", [])
    return {"node": context.get_node_id(), "gpus": ",".join(map(str, gpus)), "device": "cuda" if torch.cuda.is_available() and gpus else "cpu"}


def _load_checkpoint() -> dict[str, Any] | None:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        # weights_only: a checkpoint is data, never code to run
        return torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True)


def _tags(spec: StudySpec, plan: TrialPlan, config: dict[str, Any]) -> dict[str, str]:
    candidate, role = spec.candidate(plan.candidate), config.get("role", TRIAL)
    return TrialTags(
        candidate=plan.candidate,
        strategy=candidate.weighting,
        family=family(spec, plan.candidate) if role == TRIAL else role,
        sharing=spec.sharing_of(plan.candidate).name,
        seed=plan.seed,
        role=role,
        phase=config.get("phase", FIXED),
        sampling=spec.sampling_of(plan.candidate).policy if spec.per_task_sources else "one dataset",
        searched=candidate.search is not None,
        distilled=candidate.distill,
        selected_trial=config.get("selected_trial", ""),
        fingerprint=config.get("fingerprint", ""),
    ).to_mlflow()


def family(spec: StudySpec, label: str) -> str:
    """What a candidate varies, for the MLflow UI's filters: ``sharing`` when it is an
    architecture under equal weighting, else its weighting's family (``loss`` or ``gradient``)."""
    candidate = spec.candidate(label)
    if candidate.weighting == "equal" and spec.sharing_of(label).name != "hard":
        return "sharing"
    return get_weighting_class(candidate.weighting).family


def _params(spec: StudySpec, plan: TrialPlan, config: dict[str, Any]) -> dict[str, Any]:
    candidate = spec.candidate(plan.candidate)
    params: dict[str, Any] = {"candidate": plan.candidate, "weighting": candidate.weighting, "seed": plan.seed}
    for key, value in plan.strategy_kwargs().items():
        if key == "weights":
            params.update({task_weight(t): float(w) for t, w in zip(spec.task_names, value)})
        else:
            params[f"weighting.{key}"] = value
    for task, raw in config.get("sampled", {}).items():
        params[sampled_key(task_weight(task))] = raw
    params.update(_flat("training", spec.training.model_dump()))
    params.update(_flat("encoder", spec.encoder.model_dump()))
    params.update(_flat("sharing", spec.sharing_of(plan.candidate).model_dump()))
    params["heads.hidden"] = spec.heads.hidden
    if spec.per_task_sources:
        params.update(_flat("sampling", spec.sampling_of(plan.candidate).model_dump()))
    return params


def _target_scales(data: PreparedData) -> dict[str, float]:
    """Each regression target's train-split mean and std: the units of its metrics and the
    scale val/score divides its errors by."""
    out: dict[str, float] = {}
    for t in data.tasks:
        if t.type == "regression":
            out[f"target.{t.name}.mean"], out[f"target.{t.name}.std"] = t.target_mean, t.target_std
    return out


def _flat(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"prefix.a.b": 1}: MLflow params are flat."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            out.update(_flat(f"{prefix}.{key}", value))
        else:
            out[f"{prefix}.{key}"] = value
    return out
