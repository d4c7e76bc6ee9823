"""The training loop of one trial: one readable loop for every strategy.

    batch -> model -> per-task losses (missing labels masked) -> weighting strategy
          -> gradients (gradients.backward) -> optimizer step
    each epoch: validation metrics, model selection on val/score, early stopping, a report
    (metrics + the state a retry continues from) that the caller turns into tune.report and
    MLflow points; the last epoch: a :class:`TrialOutcome` (final metrics, the selected
    model, a teacher's predictions), reported by its own call and returned.

Nothing here imports Ray or MLflow: ``Reporter`` is the seam (see polytask.study.trial).
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polytask.data import PreparedData, SplitArrays
from polytask.data.batches import TrainStream, eval_batches
from polytask.ops import faults
from polytask.schema import BEST_EPOCH, BEST_SCORE, EARLY_STOPPED, EPOCH, GLOBAL_STEP, SCORE, best_of, run_name, task_weight
from polytask.spec import StudySpec, weighting_kwargs
from polytask.spec.models import TrainingSpec
from polytask.strategies.weighting import Weighting, get_weighting
from polytask.tasks import TASK_TYPES, score
from polytask.training.gradients import backward
from polytask.training.model import MultiTaskModel, build_model


@dataclass(frozen=True)
class TrialPlan:
    """What one trial trains: a candidate of the study, a seed, and for a searched
    scalarization candidate the task weights Optuna proposed."""

    spec: StudySpec
    candidate: str
    seed: int
    weights: list[float] | None = None
    search_index: int | None = None  # 1-based number of a searched trial within its candidate
    teacher: bool = False  # a single-task teacher: its outcome carries its train-split predictions

    @property
    def run_name(self) -> str:
        return run_name(self.candidate, self.seed, self.search_index)

    def strategy_kwargs(self) -> dict[str, Any]:
        """Hyperparameters of the candidate's weighting strategy, task weights as a list."""
        kwargs = weighting_kwargs(self.spec.candidate(self.candidate), self.spec.task_names)
        if self.weights is not None:
            kwargs["weights"] = list(self.weights)
        return kwargs


@dataclass(frozen=True)
class TrialOutcome:
    """What a trial that trained to its last epoch leaves: that epoch's report (``metrics``),
    the selected epoch's trainable parameters (``selected_state``, see :func:`trainable_state`)
    and, for a distillation teacher, its class probabilities on the training split."""

    metrics: dict[str, float]
    selected_state: dict[str, Tensor]
    teacher_predictions: dict[str, Tensor] | None = None


class Reporter:
    """Where training reports to; the defaults ignore everything. ``epoch`` gets every epoch but
    the last, with the state a retry continues from (:func:`_retry_state`); ``final`` gets the
    last epoch, as the trial's outcome (a reporter that does not care sees it as an epoch)."""

    def step(self, step: int, metrics: dict[str, float]) -> None:
        """Every ``log_every_steps`` training steps (``step`` is 1-based)."""

    def epoch(self, epoch: int, metrics: dict[str, float], state: dict[str, Any] | None) -> None:
        """After each epoch but the last (``epoch`` is 1-based)."""

    def final(self, epoch: int, outcome: TrialOutcome) -> None:
        self.epoch(epoch, outcome.metrics, None)


class Diverged(RuntimeError):
    """A task loss became NaN or infinite; retrying from a checkpoint would not help. ``step``
    is the 1-based training step whose losses diverged, on MLflow's step axis."""

    def __init__(self, step: int, losses: dict[str, float]) -> None:
        super().__init__(f"diverged at step {step}: task losses {losses}")
        self.step = step
        self.losses = losses


def build_weighting(plan: TrialPlan) -> Weighting:
    name = plan.spec.candidate(plan.candidate).weighting
    return get_weighting(name, len(plan.spec.tasks), **plan.strategy_kwargs())


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(plan: TrialPlan, data: PreparedData, reporter: Reporter, state: dict[str, Any] | None = None) -> TrialOutcome:
    """Train one trial to the end (or early stop) and return its outcome. ``state`` is a retry
    state from an earlier attempt of the same trial: training resumes after the epoch it was
    saved at."""
    spec, settings = plan.spec, plan.spec.training
    device = torch.device("cuda" if spec.resources.gpu > 0 and torch.cuda.is_available() else "cpu")
    seed_everything(plan.seed)
    model = build_model(spec, data, spec.sharing_of(plan.candidate)).to(device)
    weighting = build_weighting(plan).to(device)
    tasks = data.tasks
    stream = TrainStream(data.splits["train"], settings.batch_size, plan.seed, spec.sampling_of(plan.candidate), settings.epochs)
    steps_per_epoch = settings.steps_per_epoch or stream.steps_per_epoch
    optimizer = _optimizer(model, weighting, settings.learning_rate, settings.weight_decay)
    scheduler = _linear_warmup_decay(optimizer, settings.epochs * steps_per_epoch, settings.warmup_ratio)
    directions = {t.name: t.direction for t in tasks}
    counted = [t for t in tasks if not t.auxiliary]  # val/score: the main tasks only
    total_steps = settings.epochs * steps_per_epoch
    distill = _distillation_schedule(plan, data, total_steps)
    parameter_counts = {f"cost/params/{k}": v for k, v in model.parameter_counts().items()}
    autocast = autocast_context(device, settings.precision)

    start_epoch, global_step, bad_epochs = 0, 0, 0
    best: dict[str, Any] = {"score": -math.inf, "epoch": 0, "metrics": {}}
    best_model: dict[str, Tensor] = trainable_state(model)
    if state is not None:
        best, best_model, bad_epochs, start_epoch, global_step = _restore(state, model, optimizer, scheduler, weighting)

    for epoch in range(start_epoch, settings.epochs):
        faults.before_epoch(plan.run_name, epoch + 1)  # tests only: POLYTASK_FAULT, unset otherwise
        model.train()
        batches = stream.epoch(epoch, steps_per_epoch)
        epoch_losses, step_times, passes, global_step = _train_epoch(model, weighting, optimizer, scheduler, batches, tasks, settings, autocast, device, distill, reporter, global_step)
        weighting.on_epoch_end(epoch_losses.float())

        validation = evaluate(model, data.splits["validation"], data, settings.eval_batch_size, device, "val", settings.precision)
        val_score = score({t.name: TASK_TYPES[t.type].unitless(t.metric, validation[f"val/{t.name}/{t.metric}"], t) for t in counted}, directions)
        # selection on validation only: the best epoch so far, or with selection last_epoch each new one
        if val_score > best["score"] + settings.early_stopping.min_delta or spec.comparison.selection == "last_epoch":
            best = {"score": val_score, "epoch": epoch + 1, "metrics": validation}
            best_model = trainable_state(model)
            bad_epochs = 0
        else:
            bad_epochs += 1
        patience = settings.early_stopping.patience
        last = epoch + 1 == settings.epochs or (patience is not None and bad_epochs >= patience)

        batches = stream.task_batches(epoch, steps_per_epoch) if data.per_task_datasets else None
        metrics = _epoch_metrics(epoch, global_step, tasks, epoch_losses, batches, validation, val_score, best, weighting)
        metrics |= {"cost/step_time_ms": 1000 * float(np.mean(step_times)), "cost/backward_passes": passes, "cost/peak_mem_mb": peak_memory_mb(device), **parameter_counts}
        if not last:  # everything a retry needs to continue exactly where this epoch ended
            reporter.epoch(epoch + 1, metrics, _retry_state(epoch, global_step, model, optimizer, scheduler, weighting, best, best_model, bad_epochs))
            continue
        outcome = _outcome(plan, data, model, best_model, metrics, early_stopped=epoch + 1 < settings.epochs, device=device)
        reporter.final(epoch + 1, outcome)
        return outcome
    raise RuntimeError(f"{plan.run_name}: a retry state saved after the last epoch ({start_epoch} of {settings.epochs}); it has nothing left to train")


def _outcome(plan: TrialPlan, data: PreparedData, model: MultiTaskModel, best_model: dict[str, Tensor], metrics: dict[str, float], early_stopped: bool, device: torch.device) -> TrialOutcome:
    """The last epoch: the selected epoch's model answers for the trial from here on (its test
    metrics, a teacher's predictions)."""
    settings = plan.spec.training
    if early_stopped:
        metrics[EARLY_STOPPED] = 1.0  # by patience: a finished trial, not a cut-short one
    model.load_state_dict(best_model, strict=False)
    if settings.evaluate_test and "test" in data.splits:
        metrics.update(evaluate(model, data.splits["test"], data, settings.eval_batch_size, device, "test", settings.precision))
    # what the students learn from (polytask.study.distill)
    predictions = predict(model, data.splits["train"], data, settings.eval_batch_size, device, settings.precision) if plan.teacher else None
    return TrialOutcome(metrics, trainable_state(model), predictions)


def _train_epoch(model, weighting, optimizer, scheduler, batches, tasks, settings, autocast, device, distill, reporter: Reporter, global_step: int) -> tuple[Tensor, list[float], int, int]:
    """One epoch of training steps: each task's mean loss over the steps whose batch had its
    labels (with one dataset per task, a step trains the sampled task only), the steps' times,
    the backward passes of the last step, and the global step after the epoch."""
    loss_sums, loss_steps = torch.zeros(len(tasks), dtype=torch.float64), torch.zeros(len(tasks), dtype=torch.float64)
    step_times, passes = [], 0
    for batch in batches:
        labelled = torch.tensor([bool(TASK_TYPES[t.type].present(batch[f"labels/{t.name}"]).any()) for t in tasks], dtype=torch.float64)
        started = time.perf_counter()
        batch = {k: v.to(device) for k, v in batch.items()}
        gold_weight = distill(global_step)
        step = training_step(model, weighting, optimizer, batch, tasks, settings, autocast, global_step, gold_weight)
        losses, passes = step.losses, step.backward_passes
        scheduler.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        step_times.append(time.perf_counter() - started)
        loss_sums += losses.detach().double().cpu() * labelled
        loss_steps += labelled
        global_step += 1
        if global_step % settings.log_every_steps == 0:
            reporter.step(global_step, _step_metrics(tasks, step, weighting, gold_weight))
    return loss_sums / loss_steps.clamp(min=1), step_times, passes, global_step


def _restore(state: dict[str, Any], model, optimizer, scheduler, weighting) -> tuple[dict[str, Any], dict[str, Tensor], int, int, int]:
    """Load an earlier attempt's checkpoint (written by :func:`_retry_state`) into the trial's
    objects; returns best, best_model, bad_epochs, the epoch to start at and the global step."""
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    weighting.load_state_dict(state["weighting"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["best"], state["best_model"], state["bad_epochs"], state["epoch"], state["global_step"]


def _retry_state(epoch: int, global_step: int, model, optimizer, scheduler, weighting, best: dict[str, Any], best_model: dict[str, Tensor], bad_epochs: int) -> dict[str, Any]:
    """Everything a retry needs to continue where ``epoch`` ended (read back by :func:`_restore`)."""
    return {
        "epoch": epoch + 1,
        "global_step": global_step,
        "model": trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "weighting": weighting.state_dict(),
        "best": best,
        "best_model": best_model,
        "bad_epochs": bad_epochs,
        "torch_rng": torch.get_rng_state(),
        # dropout on a GPU draws from the CUDA generators: without them a retry would not continue exactly
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _epoch_metrics(epoch: int, global_step: int, tasks, epoch_losses: Tensor, batches, validation: dict[str, float], val_score: float, best: dict[str, Any], weighting) -> dict[str, float]:
    """One epoch's report: train losses (and, with one dataset per task, each task's batch
    count), validation, the selected epoch's ``best/...`` metrics and the task weights."""
    return {
        EPOCH: epoch + 1,
        GLOBAL_STEP: global_step,
        **{f"train/{t.name}/loss": float(v) for t, v in zip(tasks, epoch_losses)},
        **({f"train/{t.name}/batches": int(n) for t, n in zip(tasks, batches)} if batches is not None else {}),
        **validation,
        SCORE: val_score,
        **{best_of(k): v for k, v in best["metrics"].items()},
        BEST_SCORE: best["score"],
        BEST_EPOCH: best["epoch"],
        **{task_weight(t.name): float(w) for t, w in zip(tasks, weighting.task_weights())},
    }


@dataclass(frozen=True)
class StepResult:
    losses: Tensor  # [K], detached
    backward_passes: int  # through the shared part
    regularizer: float | None  # the sharing's own term (soft sharing's penalty), if any


def training_step(
    model: MultiTaskModel,
    weighting: Weighting,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, Tensor],
    tasks: Sequence[Any],
    settings: TrainingSpec,
    autocast: torch.autocast,
    step: int,
    gold_weight: float | None = None,
) -> StepResult:
    """One optimizer step on one batch, the ``step``-th (0-based) of the trial. ``tasks`` carry ``name`` and ``type``; ``gold_weight``
    (distillation only) is BAM!'s lambda. Benchmarks call this too, so they time exactly what
    trials run."""
    with autocast:
        boundary, losses = task_losses(model, batch, tasks, gold_weight)
    if not torch.isfinite(losses).all():
        raise Diverged(step + 1, {t.name: float(v) for t, v in zip(tasks, losses.detach())})
    optimizer.zero_grad(set_to_none=True)
    passes = backward(weighting, losses, model, boundary, settings.gradient_method)
    regularizer = model.sharing.regularizer()  # added as is, outside the task weighting
    if regularizer is not None:
        regularizer.backward()
    if settings.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
    optimizer.step()
    if weighting.loss_after_step:  # FAMO: the same batch's losses, after the update
        with torch.no_grad(), autocast:
            weighting.on_step_end(task_losses(model, batch, tasks, gold_weight)[1])
    else:
        weighting.on_step_end(losses.detach())
    return StepResult(losses.detach(), passes, None if regularizer is None else float(regularizer.detach()))


def task_losses(model: MultiTaskModel, batch: dict[str, Tensor], tasks, gold_weight: float | None = None) -> tuple[list[Tensor], Tensor]:
    """The boundary of the shared computation and the task losses ``[K]`` (missing labels
    masked) of one batch. With ``gold_weight`` set, a task whose teacher's predictions the
    batch carries is trained on BAM!'s mixed target instead of the gold label alone."""
    boundary, logits = model(batch)
    losses = []
    for t in tasks:
        task_type, labels, teacher = TASK_TYPES[t.type], batch[f"labels/{t.name}"], batch.get(f"teacher/{t.name}")
        if gold_weight is None or teacher is None:
            losses.append(task_type.loss(logits[t.name], labels, t).float())
        else:
            losses.append(task_type.distillation_loss(logits[t.name], labels, teacher, gold_weight).float())
    return boundary, torch.stack(losses)


def _distillation_schedule(plan: TrialPlan, data: PreparedData, total_steps: int) -> Callable[[int], float | None]:
    """Step -> BAM!'s lambda (the gold label's share of the target); None when the candidate
    does not distil. Teacher annealing: lambda = step / total steps, else 0 (teacher only)."""
    if not plan.spec.candidate(plan.candidate).distill:
        return lambda step: None
    if data.splits["train"].teacher is None:
        raise RuntimeError(f"candidate {plan.candidate} distils but the data carry no teacher predictions (the study trains the teachers first)")
    if not plan.spec.distillation.annealing:
        return lambda step: 0.0
    return lambda step: step / max(1, total_steps)


def autocast_context(device: torch.device, precision: str) -> torch.autocast:
    """bfloat16 autocast where asked for, or on ``auto`` where the GPU supports it; parameters,
    gradients and optimizer state stay float32 (no loss scaling needed with bfloat16)."""
    wanted = precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=wanted)


@torch.no_grad()
def evaluate(
    model: MultiTaskModel, split: SplitArrays, data: PreparedData, batch_size: int, device: torch.device, prefix: str, precision: str = "fp32"
) -> dict[str, float]:
    """``{prefix}/{task}/{metric}`` and ``{prefix}/{task}/loss`` over the whole split."""
    loss_sums = {t.name: 0.0 for t in data.tasks}

    entries = {t.name: 0 for t in data.tasks}

    def add_losses(outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> None:
        for t in data.tasks:
            labels, task_type = batch[f"labels/{t.name}"], TASK_TYPES[t.type]
            count = int(task_type.present(labels).sum())  # the loss is a mean over present entries
            loss_sums[t.name] += float(task_type.loss(outputs[t.name], labels, t)) * count
            entries[t.name] += count

    predictions = predict(model, split, data, batch_size, device, precision, add_losses)
    out = {}
    for t in data.tasks:
        labels = torch.tensor(split.labels[t.name])  # a copy: arrays from the object store are read-only
        for name, value in TASK_TYPES[t.type].evaluate(predictions[t.name], labels, t).items():
            out[f"{prefix}/{t.name}/{name}"] = value
        out[f"{prefix}/{t.name}/loss"] = loss_sums[t.name] / max(1, entries[t.name])
    return out


@torch.no_grad()
def predict(
    model: MultiTaskModel,
    split: SplitArrays,
    data: PreparedData,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
    each_batch: Callable[[dict[str, Tensor], dict[str, Tensor]], None] | None = None,
) -> dict[str, Tensor]:
    """Each task's predictions (``TaskType.predict``: class probabilities ``[N, C]``, values
    ``[N]``, per-token probabilities ``[N, longest, C]``) for every row of the split, in row
    order; ``each_batch(outputs, batch)`` sees every batch on the way."""
    model.eval()
    predictions: dict[str, Tensor] = {}
    longest = split.input_ids.shape[1] if split.input_ids is not None else 0
    for rows, batch in eval_batches(split, batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast_context(device, precision):
            _, outputs = model(batch)
        for t in data.tasks:
            values = TASK_TYPES[t.type].predict(outputs[t.name], t).float().cpu()
            if t.name not in predictions:  # per token: padded to the split's longest row
                shape = (len(split), longest, *values.shape[2:]) if TASK_TYPES[t.type].token_level else (len(split), *values.shape[1:])
                predictions[t.name] = torch.zeros(shape)
            if TASK_TYPES[t.type].token_level:
                predictions[t.name][torch.from_numpy(rows), : values.shape[1]] = values
            else:
                predictions[t.name][torch.from_numpy(rows)] = values
        if each_batch is not None:
            each_batch(outputs, batch)
    return predictions


def trainable_state(model: torch.nn.Module) -> dict[str, Tensor]:
    """Copies of the trained parameters; frozen ones are rebuilt from the encoder's weights."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated GPU memory, or on CPU the peak resident memory of the trial's process
    (a reused actor's peak covers the trials it ran before)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _step_metrics(tasks, step: StepResult, weighting: Weighting, gold_weight: float | None) -> dict[str, float]:
    out = {f"train/{t.name}/step_loss": float(v) for t, v in zip(tasks, step.losses)}
    out.update({task_weight(t.name): float(w) for t, w in zip(tasks, weighting.task_weights())})
    out["cost/backward_passes"] = step.backward_passes
    if step.regularizer is not None:
        out["train/regularizer"] = step.regularizer
    if gold_weight is not None:
        out["distillation/gold_weight"] = gold_weight
    return out


def _optimizer(model: MultiTaskModel, weighting: Weighting, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW over the model's trainable parameters and the weighting strategy's own (uncertainty's
    log-variances, GradNorm's weights, ...), those at ``weighting.learning_rate()``.

    The strategy's parameters follow the learning-rate schedule too (:func:`_linear_warmup_decay`
    scales every group by the same factor), as in LibMTL, where they share the model's optimizer
    and scheduler: the balancing warms up and settles with the model it balances, and a schedule
    that decays to 0 freezes the weights at the end along with everything else. GradNorm's ``lr``
    (Chen et al. 2018 tune it for a constant rate) is therefore its rate at the schedule's peak.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    exempt = {id(p) for p in model.sharing.no_decay_parameters()}
    decayed = [p for p in params if p.dim() >= 2 and id(p) not in exempt]
    groups = [
        # No decay on biases and norm scales, as in BERT fine-tuning, nor where the sharing says.
        {"params": decayed, "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2 or id(p) in exempt], "weight_decay": 0.0},
    ]
    own = [p for p in weighting.parameters() if p.requires_grad]
    if own:
        groups.append({"params": own, "weight_decay": 0.0, "lr": weighting.learning_rate() or lr})
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)


def _linear_warmup_decay(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


__all__ = ["Diverged", "Reporter", "StepResult", "TrialOutcome", "TrialPlan", "autocast_context", "build_weighting", "evaluate", "predict", "task_losses", "train", "training_step"]
