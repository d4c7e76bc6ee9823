"""The Ray Tune trainable: one trial = one candidate x seed, trained by polytask.train.

It connects the training loop to Tune (``tune.report`` with a checkpoint each epoch, resume from
``tune.get_checkpoint()`` when Tune retries a failed trial) and to MLflow (the trial's nested
run). A diverged trial (NaN/inf loss) ends normally with ``diverged = 1`` so Tune does not retry
it; any other error is recorded on the run and re-raised for Tune's retry policy.
"""

from __future__ import annotations

import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray import tune

from polytask.data import PreparedData
from polytask.spec import StudySpec
from polytask.strategies.weighting import get_weighting_class
from polytask.tracking import Tracking, TrialRun
from polytask.train import Diverged, TrialPlan, train

CHECKPOINT_FILE = "trial_state.pt"


@dataclass(frozen=True)
class StudyContext:
    """What every trial of a study shares; Tune places it in the object store once."""

    spec: StudySpec
    data: PreparedData
    tracking: Tracking


class TuneReporter:
    def __init__(self, run: TrialRun) -> None:
        self.run = run

    def step(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log({f"step/{k}": v for k, v in metrics.items()}, step)

    def epoch(self, epoch: int, metrics: dict[str, float], state: dict[str, Any] | None) -> None:
        self.run.log(metrics, epoch)
        self.run.flush()  # before tune.report: a trial Tune stops after this report has logged it
        if state is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            torch.save(state, Path(folder) / CHECKPOINT_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def run_trial(config: dict[str, Any], context: StudyContext) -> None:
    spec = context.spec
    plan = TrialPlan(spec, config["candidate"], int(config["seed"]), config.get("weights"), config.get("search_index"), teacher=bool(config.get("teacher")))
    torch.set_num_threads(max(1, int(spec.resources.cpu)))
    state = _load_checkpoint()
    run = TrialRun.open(
        context.tracking,
        trial_id=tune.get_context().get_trial_id(),
        run_name=plan.run_name,
        tags=_tags(spec, plan),
        params={**_params(spec, plan, config), **_target_scales(context.data)},
        resuming=state is not None,
    )
    try:
        train(plan, context.data, TuneReporter(run), state=state)
    except Diverged as exc:
        run.finish("FAILED", outcome="diverged", reason=str(exc))
        tune.report({"diverged": 1.0, "diverged_step": exc.step})
        return
    except Exception:
        run.finish("FAILED", outcome="error", reason=traceback.format_exc(limit=-8))
        raise
    except BaseException:  # Tune stopping the trial (SystemExit) or Ctrl-C
        run.finish("KILLED", outcome="stopped")
        raise
    run.finish("FINISHED", outcome="completed")


def _load_checkpoint() -> dict[str, Any] | None:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        # weights_only: a checkpoint is data, never code to run
        return torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True)


def _tags(spec: StudySpec, plan: TrialPlan) -> dict[str, str]:
    candidate = spec.candidate(plan.candidate)
    return {
        "polytask.candidate": plan.candidate,
        "polytask.strategy": candidate.weighting,
        "polytask.family": get_weighting_class(candidate.weighting).family,
        "polytask.sharing": spec.sharing_of(plan.candidate).name,
        "polytask.sampling": spec.sampling_of(plan.candidate).policy if spec.per_task_sources else "one dataset",
        "polytask.seed": str(plan.seed),
        "polytask.searched": str(candidate.search is not None).lower(),
        "polytask.role": "teacher" if plan.teacher else "trial",
        "polytask.distilled": str(candidate.distill).lower(),
    }


def _params(spec: StudySpec, plan: TrialPlan, config: dict[str, Any]) -> dict[str, Any]:
    candidate = spec.candidate(plan.candidate)
    params: dict[str, Any] = {"candidate": plan.candidate, "weighting": candidate.weighting, "seed": plan.seed}
    for key, value in plan.strategy_kwargs().items():
        if key == "weights":
            params.update({f"weight.{t}": float(w) for t, w in zip(spec.task_names, value)})
        else:
            params[f"weighting.{key}"] = value
    for task, raw in config.get("sampled", {}).items():
        params[f"sampled.{task}"] = raw
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
