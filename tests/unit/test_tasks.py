"""Single-label classification and the shared helpers: masked losses and metrics against
hand-computed values. The other task types: test_task_types.py."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from polytask.tasks import IGNORE, Classification, TaskInfo, accuracy, macro_f1, macro_roc_auc, roc_auc, score

BINARY = TaskInfo("sentiment", "classification", ["neg", "pos"], "accuracy", "max")
THREE = TaskInfo("topic", "classification", ["a", "b", "c"], "accuracy", "max")


def test_loss_ignores_rows_without_a_label():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    labels = torch.tensor([0, IGNORE, 1])
    expected = F.cross_entropy(logits[[0, 2]], labels[[0, 2]])
    assert Classification().loss(logits, labels, BINARY).item() == pytest.approx(expected.item())


def test_loss_of_a_batch_without_labels_is_zero_and_differentiable():
    logits = torch.randn(4, 3, requires_grad=True)
    loss = Classification().loss(logits, torch.full((4,), IGNORE), THREE)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros(4, 3))


def test_accuracy_and_macro_f1_by_hand():
    predictions = torch.tensor([0, 0, 1, 1, 2, 0])
    labels = torch.tensor([0, 1, 1, 1, 2, 2])
    assert accuracy(predictions, labels, 3) == pytest.approx(4 / 6)
    # class 0: tp 1 fp 2 fn 0 -> 2/4; class 1: tp 2 fp 0 fn 1 -> 4/5; class 2: tp 1 fp 0 fn 1 -> 2/3
    assert macro_f1(predictions, labels, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_evaluate_uses_labelled_rows_only():
    probabilities = torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])
    labels = torch.tensor([1, IGNORE, 0, IGNORE])
    values = Classification().evaluate(probabilities, labels, BINARY)
    assert values["accuracy"] == pytest.approx(0.5)
    assert values["roc_auc"] == pytest.approx(1.0)  # the positive row (0.8) above the negative one (0.6)
    assert Classification().evaluate(probabilities, torch.full((4,), IGNORE), BINARY) == {}


def test_roc_auc_by_hand_with_ties():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4])
    positive = torch.tensor([0, 0, 1, 1, 1])
    # pairs (pos, neg): 0.35>0.1 yes, 0.35>0.4 no, 0.8 > both, 0.4>0.1 yes, 0.4=0.4 half -> 4.5 / 6
    assert roc_auc(scores, positive) == pytest.approx(4.5 / 6)
    assert math.isnan(roc_auc(scores, torch.zeros(5)))


def test_multiclass_roc_auc_is_the_mean_one_vs_rest():
    probabilities = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 1, 2, 1])
    # class 0: pos 0.7 vs neg .2 .1 .5 -> 1; class 1: pos .5 .4 vs neg .2 .3 -> 1; class 2: pos .6 vs .1 .3 .1 -> 1
    assert macro_roc_auc(probabilities, labels) == pytest.approx(1.0)
    labels = torch.tensor([1, 0, 2, 1])
    # class 0: pos .2 vs neg .7 .1 .5 -> 1/3; class 1: pos .2 .4 vs neg .5 .3 -> 1/4; class 2: pos .6 vs .1 .3 .1 -> 1
    assert macro_roc_auc(probabilities, labels) == pytest.approx((1 / 3 + 1 / 4 + 1) / 3)


def test_distillation_target_mixes_gold_and_teacher():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, IGNORE])
    teacher = torch.tensor([[0.6, 0.4], [0.5, 0.5], [0.9, 0.1]])
    task = Classification()
    # gold weight 1: plain cross-entropy on the gold labels
    assert task.distillation_loss(logits, labels, teacher, 1.0).item() == pytest.approx(task.loss(logits, labels, BINARY).item())
    # gold weight 0: cross-entropy against the teacher's probabilities, labelled rows only
    log_p = torch.log_softmax(logits[:2], dim=-1)
    expected = -(teacher[:2] * log_p).sum(dim=-1).mean()
    assert task.distillation_loss(logits, labels, teacher, 0.0).item() == pytest.approx(expected.item())
    half = task.distillation_loss(logits, labels, teacher, 0.5).item()
    assert half == pytest.approx(0.5 * task.loss(logits, labels, BINARY).item() + 0.5 * expected.item())


def test_score_turns_every_metric_into_higher_is_better():
    assert score({"a": 0.9, "b": 0.7}, {"a": "max", "b": "max"}) == pytest.approx(0.8)
    assert score({"a": 0.9, "b": 0.5}, {"a": "max", "b": "min"}) == pytest.approx(0.2)
    assert not math.isnan(score({"a": 1.0}, {"a": "max"}))


def test_macro_f1_leaves_out_a_class_absent_from_labels_and_predictions():
    # class 0: tp 1 fp 1 fn 0 -> 2/3; class 1: tp 1 fp 0 fn 1 -> 2/3; class 2 absent: left out (counted as 0: 4/9)
    assert macro_f1(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), 3) == pytest.approx(2 / 3)


def test_evaluate_reads_the_argmax_of_the_probabilities():
    probabilities = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 2, 2, 1])
    values = Classification().evaluate(probabilities, labels, THREE)
    # argmax 0 1 2 0: right, wrong, right, wrong
    assert values["accuracy"] == pytest.approx(0.5)
    # class 0: tp 1 fp 1 fn 0 -> 2/3; class 1: tp 0 fp 1 fn 1 -> 0; class 2: tp 1 fp 0 fn 1 -> 2/3
    assert values["macro_f1"] == pytest.approx(4 / 9)


def test_val_score_reads_regression_errors_in_target_standard_deviations():
    from polytask.tasks import TASK_TYPES, TaskInfo

    task = TaskInfo("energy", "regression", [], "mae", "min", target_mean=-400.0, target_std=4.0)
    regression = TASK_TYPES["regression"]
    assert regression.unitless("mae", 2.0, task) == 0.5 and regression.unitless("rmse", 2.0, task) == 0.5
    assert regression.unitless("mse", 16.0, task) == 1.0 and regression.unitless("r2", 0.9, task) == 0.9
    accuracy = TaskInfo("kind", "classification", ["a", "b"], "accuracy", "max")
    assert TASK_TYPES["classification"].unitless("accuracy", 0.8, accuracy) == 0.8
    # an error of half a std and an accuracy of 0.8: score = (0.8 - 0.5) / 2
    assert score({"kind": 0.8, "energy": regression.unitless("mae", 2.0, task)}, {"kind": "max", "energy": "min"}) == pytest.approx(0.15)
