"""Task types: masked losses and metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from polytask.tasks import IGNORE, Classification, accuracy, macro_f1, score


def test_loss_ignores_rows_without_a_label():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    labels = torch.tensor([0, IGNORE, 1])
    expected = F.cross_entropy(logits[[0, 2]], labels[[0, 2]])
    assert Classification().loss(logits, labels).item() == pytest.approx(expected.item())


def test_loss_of_a_batch_without_labels_is_zero_and_differentiable():
    logits = torch.randn(4, 3, requires_grad=True)
    loss = Classification().loss(logits, torch.full((4,), IGNORE))
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
    predictions = torch.tensor([1, 0, 1, 1])
    labels = torch.tensor([1, IGNORE, 0, IGNORE])
    values = Classification().evaluate(predictions, labels, 2)
    assert values["accuracy"] == pytest.approx(0.5)
    assert Classification().evaluate(predictions, torch.full((4,), IGNORE), 2) == {}


def test_score_turns_every_metric_into_higher_is_better():
    assert score({"a": 0.9, "b": 0.7}, {"a": "max", "b": "max"}) == pytest.approx(0.8)
    assert score({"a": 0.9, "b": 0.5}, {"a": "max", "b": "min"}) == pytest.approx(0.2)
    assert not math.isnan(score({"a": 1.0}, {"a": "max"}))
