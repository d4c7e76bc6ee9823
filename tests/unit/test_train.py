"""The training loop, without Ray: reports, model selection, early stopping, exact resume."""

from __future__ import annotations

import math

import pytest

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
    final = train(TrialPlan(spec, "pcgrad", seed=0), data, recorder)
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
    final = train(TrialPlan(spec, "equal", seed=0), data, recorder)
    assert [e for e, _, _ in recorder.epochs] == [1, 2, 3]
    assert final["best/epoch"] == 1
    assert "test/subjectivity/accuracy" in final


def test_searched_weights_reach_the_strategy(make_study):
    spec, data = setup(make_study, candidates=[{"name": "tuned", "weighting": "scalarization", "search": {"trials": 2}}])
    recorder = Recorder()
    final = train(TrialPlan(spec, "tuned", seed=0, weights=[0.4, 1.6]), data, recorder)
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
    assert info.value.step == 3
    assert math.isinf(info.value.losses["subjectivity"])
