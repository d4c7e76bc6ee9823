"""Every registered weighting strategy trains the real (tiny) model through the one loop, and
its task weights and backward-pass cost reach the step-level metrics."""

from __future__ import annotations

import math

import pytest
import torch

from polytask.data import load_splits, prepare_data
from polytask.encoders import load_tokenizer
from polytask.spec import parse_spec
from polytask.strategies.weighting import WEIGHTINGS, GradientAggregator
from polytask.training.train import TrialPlan, train
from tests.support import Recorder, study_dict

TASKS = ("subjectivity", "sentiment")


@pytest.fixture(scope="module")
def every_strategy(text_data):
    raw = study_dict(text_data, candidates=[{"weighting": name} for name in sorted(WEIGHTINGS)])
    raw["training"].update(epochs=1, steps_per_epoch=4, log_every_steps=2, evaluate_test=False)
    spec = parse_spec(raw)
    frames = load_splits(spec.data)
    data = prepare_data(spec, frames, load_tokenizer(spec.encoder, frames["train"]["review"].tolist()))
    return spec, data


def expected_passes(name: str) -> int:
    cls = WEIGHTINGS[name]
    if not issubclass(cls, GradientAggregator):
        return 1
    return 1 if cls(len(TASKS)).grad_space == "representation" else len(TASKS)


@pytest.mark.parametrize("name", sorted(WEIGHTINGS))
def test_trains_and_logs_weights_and_cost_each_step_interval(every_strategy, name):
    spec, data = every_strategy
    recorder = Recorder()
    final = train(TrialPlan(spec, name, seed=0), data, recorder).metrics
    assert [s for s, _ in recorder.steps] == [2, 4]
    for _, metrics in recorder.steps:
        weights = [metrics[f"weight/{task}"] for task in TASKS]
        assert all(math.isfinite(w) and w >= 0 for w in weights) and sum(weights) > 0
        assert metrics["cost/backward_passes"] == expected_passes(name)
    assert math.isfinite(final["val/score"])


def test_batched_vjps_train_like_sequential_ones(every_strategy):
    # vmap over the backward pass of a real BERT encoder: same gradients, so the same model
    spec, data = every_strategy
    results = {}
    for method in ("sequential", "batched"):
        plan = TrialPlan(spec.model_copy(update={"training": spec.training.model_copy(update={"gradient_method": method})}), "mgda", seed=0)
        results[method] = train(plan, data, Recorder()).metrics
    for task in TASKS:
        assert results["batched"][f"val/{task}/loss"] == pytest.approx(results["sequential"][f"val/{task}/loss"], rel=1e-4)


def test_famo_sees_the_losses_after_the_step(every_strategy, monkeypatch):
    spec, data = every_strategy
    seen: list[torch.Tensor] = []
    famo = WEIGHTINGS["famo"]
    original = famo.on_step_end
    monkeypatch.setattr(famo, "on_step_end", lambda self, losses: (seen.append(losses.clone()), original(self, losses))[1])
    recorder = Recorder()
    train(TrialPlan(spec, "famo", seed=0), data, recorder)
    step_losses = [torch.tensor([m[f"train/{t}/step_loss"] for t in TASKS]) for _, m in recorder.steps]
    # the losses FAMO was given at steps 2 and 4 are the re-evaluated ones, not the ones logged
    assert len(seen) == 4
    for logged, given in zip(step_losses, seen[1::2]):
        assert not torch.allclose(logged, given)
