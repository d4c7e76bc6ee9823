"""The training loop, without Ray: reports, model selection, early stopping, exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from polytask.data import check_frames, load_splits, prepare_data
from polytask.encoders import load_tokenizer
from polytask.spec import parse_spec
from polytask.tasks import Classification
from polytask.training.train import Diverged, TrialPlan, train
from tests.support import Recorder, study_dict


def setup(make_study, **overrides):
    spec = parse_spec(make_study(**overrides))
    frames = load_splits(spec.data)
    assert check_frames(spec, frames) == []
    data = prepare_data(spec, frames, load_tokenizer(spec.encoder, frames["train"]["review"].tolist()))
    return spec, data


@pytest.fixture(scope="module")
def three_epochs(text_data):
    raw = study_dict(text_data, candidates=[{"weighting": "uncertainty"}, {"weighting": "pcgrad"}])
    raw["training"].update(epochs=3, steps_per_epoch=10)
    spec = parse_spec(raw)
    frames = load_splits(spec.data)
    data = prepare_data(spec, frames, load_tokenizer(spec.encoder, frames["train"]["review"].tolist()))
    return spec, data


def test_reports_each_epoch_with_selection_and_test_at_the_end(three_epochs):
    spec, data = three_epochs
    recorder = Recorder()
    final = train(TrialPlan(spec, "pcgrad", seed=0), data, recorder).metrics
    assert [e for e, _, _ in recorder.epochs] == [1, 2, 3]
    assert [s is None for _, _, s in recorder.epochs] == [False, False, True]  # no checkpoint after the last
    for _, metrics, _ in recorder.epochs:
        for task in ("subjectivity", "sentiment"):
            assert 0.0 <= metrics[f"val/{task}/accuracy"] <= 1.0
            assert metrics[f"weight/{task}"] > 0
        assert metrics["cost/backward_passes"] == 2  # PCGrad in parameter space: one per task
        assert metrics["cost/step_time_ms"] > 0
    best_epoch = int(final["best/epoch"])
    at_best = recorder.epochs[best_epoch - 1][1]
    assert final["best/val/score"] == max(m["val/score"] for _, m, _ in recorder.epochs)
    assert final["best/val/sentiment/accuracy"] == at_best["val/sentiment/accuracy"]
    assert "test/sentiment/accuracy" in final and "test/sentiment/accuracy" not in recorder.epochs[0][1]
    assert [s for s, _ in recorder.steps] == [10, 20, 30]
    assert final["val/subjectivity/accuracy"] > 0.8  # the synthetic task is learnable


def test_the_outcome_is_the_selected_model_and_checkpoints_carry_retry_state_only(three_epochs):
    spec, data = three_epochs
    recorder = Recorder()
    outcome = train(TrialPlan(spec, "uncertainty", seed=2, teacher=True), data, recorder)
    assert recorder.outcome is outcome and outcome.metrics is recorder.epochs[-1][1]
    for _, _, state in recorder.epochs[:-1]:
        assert set(state) == {"epoch", "global_step", "model", "optimizer", "scheduler", "weighting", "best", "best_model", "bad_epochs", "torch_rng", "cuda_rng"}
    selected = int(outcome.metrics["best/epoch"])
    # the selected epoch's parameters: the best model a later retry state holds, or the last epoch's own
    expected = recorder.epochs[selected][2]["best_model"] if selected < 3 else outcome.selected_state
    assert outcome.selected_state.keys() == expected.keys()
    assert all(torch.equal(outcome.selected_state[k], expected[k]) for k in expected)
    # a teacher's predictions: class probabilities for every training row, from the selected model
    for task, probabilities in outcome.teacher_predictions.items():
        assert probabilities.shape == (len(data.splits["train"]), 2)
        assert torch.allclose(probabilities.sum(1), torch.ones(len(data.splits["train"])), atol=1e-5), task


def test_a_retry_state_after_the_last_epoch_is_refused(three_epochs):
    spec, data = three_epochs
    whole = Recorder()
    train(TrialPlan(spec, "pcgrad", seed=0), data, whole)
    state = {**whole.epochs[1][2], "epoch": 3}
    with pytest.raises(RuntimeError, match="nothing left to train"):
        train(TrialPlan(spec, "pcgrad", seed=0), data, Recorder(), state=state)


def test_resume_from_a_checkpoint_continues_exactly(three_epochs):
    spec, data = three_epochs
    plan = TrialPlan(spec, "uncertainty", seed=1)
    whole = Recorder()
    train(plan, data, whole)
    state = whole.epochs[0][2]
    resumed = Recorder()
    train(plan, data, resumed, state=state)
    assert [e for e, _, _ in resumed.epochs] == [2, 3]
    for (_, a, _), (_, b, _) in zip(whole.epochs[1:], resumed.epochs):
        for key in ("val/score", "val/sentiment/loss", "weight/sentiment", "train/subjectivity/loss", "test/sentiment/accuracy"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key


def test_early_stopping_ends_after_patience(make_study):
    raw = make_study()
    raw["training"].update(epochs=6, early_stopping={"patience": 2, "min_delta": 1.0})  # nothing improves by 1.0
    spec, data = setup(lambda **_: raw)
    recorder = Recorder()
    final = train(TrialPlan(spec, "equal", seed=0), data, recorder).metrics
    assert [e for e, _, _ in recorder.epochs] == [1, 2, 3]
    assert final["best/epoch"] == 1
    assert "test/subjectivity/accuracy" in final


def test_searched_weights_reach_the_strategy(make_study):
    spec, data = setup(make_study, candidates=[{"name": "tuned", "weighting": "scalarization", "search": {"trials": 2}}])
    recorder = Recorder()
    final = train(TrialPlan(spec, "tuned", seed=0, weights=[0.4, 1.6]), data, recorder).metrics
    assert (final["weight/subjectivity"], final["weight/sentiment"]) == pytest.approx((0.4, 1.6))


def test_non_finite_loss_stops_the_trial_as_diverged(make_study, monkeypatch):
    spec, data = setup(make_study)
    original = Classification.loss
    calls = {"n": 0}

    def exploding(self, logits, labels, task):
        calls["n"] += 1
        loss = original(self, logits, labels, task)
        return loss * math.inf if calls["n"] > 6 else loss  # step 4, first task

    monkeypatch.setattr(Classification, "loss", exploding)
    with pytest.raises(Diverged) as info:
        train(TrialPlan(spec, "equal", seed=0), data, Recorder())
    assert info.value.step == 4  # 1-based, on MLflow's step axis: the 4th step diverged
    assert math.isinf(info.value.losses["subjectivity"])


@pytest.mark.parametrize("name", ["uncertainty", "gradnorm"])
def test_a_strategys_own_parameters_follow_the_learning_rate_schedule(three_epochs, name):
    # The decision (polytask.training.train._optimizer): one schedule for every group, each at its own base rate.
    from polytask.strategies.weighting import get_weighting
    from polytask.training.model import build_model
    from polytask.training.train import _linear_warmup_decay, _optimizer

    spec, data = three_epochs
    model, weighting = build_model(spec, data, spec.sharing), get_weighting(name, 2, lr=0.05)
    optimizer = _optimizer(model, weighting, lr=1e-3, weight_decay=0.01)
    own = next(g for g in optimizer.param_groups if any(p is q for p in g["params"] for q in weighting.parameters()))
    scheduler = _linear_warmup_decay(optimizer, total_steps=20, warmup_ratio=0.25)
    factors = []
    for _ in range(20):
        factors.append(own["lr"] / 0.05)
        for group in optimizer.param_groups:
            assert group["lr"] / group["initial_lr"] == pytest.approx(factors[-1])
        optimizer.step()
        scheduler.step()
    assert factors[0] < factors[4] < factors[5] == 1.0 and 0 < factors[-1] < factors[5]  # warms up (5 steps), peaks, decays
