"""The trivial predictor of every task type, on a small table worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from polytask.data.prepare import PreparedData, SplitArrays
from polytask.results.trivial import trivial_metrics
from polytask.tasks import IGNORE, TaskInfo

TASKS = [
    TaskInfo("kind", "classification", ["x", "y", "z"], "accuracy", "max"),
    TaskInfo("price", "regression", [], "mae", "min", target_mean=4.0, target_std=2.0),
    TaskInfo("topics", "multilabel", ["p", "q"], "micro_f1", "max"),
    TaskInfo("ner", "token_classification", ["B-X", "I-X", "O"], "f1", "max"),
    TaskInfo("side", "classification", ["a", "b"], "accuracy", "max", auxiliary=True),
]


def split(kind, price, topics, ner, side) -> SplitArrays:
    return SplitArrays(labels={"kind": np.array(kind), "price": np.array(price, dtype=np.float32), "topics": np.array(topics), "ner": np.array(ner), "side": np.array(side)})


@pytest.fixture
def data() -> PreparedData:
    train = split(
        kind=[0, 0, 1, 2, IGNORE],  # priors 0.5, 0.25, 0.25: the majority class is x
        price=[1.0, 2.0, 3.0, 10.0, math.nan],  # mean 4, median 2.5
        topics=[[1, 0], [1, 1], [1, 0], [0, 0], [IGNORE, IGNORE]],  # prevalence p 0.75, q 0.25: predict {p} for every row
        ner=[[0, 1, 2], [2, 2, IGNORE], [2, IGNORE, IGNORE], [0, 2, 2], [2, 2, 2]],
        side=[0, 1, 1, 1, 1],
    )
    validation = split(
        kind=[0, 1, 1, 2],
        price=[0.0, 2.0, 4.0, 6.0],
        topics=[[1, 0], [0, 1], [1, 1], [0, 0]],
        ner=[[0, 2, 2], [2, 2, 2], [0, 1, IGNORE], [2, 2, 2]],
        side=[1, 0, 0, 0],
    )
    return PreparedData(TASKS, {"train": train, "validation": validation})


def test_trivial_metrics_by_hand(data):
    got = trivial_metrics(data)
    # kind: x for every row; validation [x, y, y, z] → accuracy 1/4; F1 x = 2·1/(2·1 + 3 + 0) = 0.4, y and z 0 → macro 0.4/3; one score for all → AUC 0.5
    assert got["trivial/val/kind/accuracy"] == pytest.approx(0.25)
    assert got["trivial/val/kind/macro_f1"] == pytest.approx(0.4 / 3)
    assert got["trivial/val/kind/roc_auc"] == pytest.approx(0.5)
    # price: the median 2.5 for MAE → (2.5 + 0.5 + 1.5 + 3.5)/4 = 2.0; the mean 4 for MSE → (16 + 4 + 0 + 4)/4 = 6; R² = 1 − 24/20 = −0.2
    assert got["trivial/val/price/mae"] == pytest.approx(2.0)
    assert got["trivial/val/price/mse"] == pytest.approx(6.0)
    assert got["trivial/val/price/rmse"] == pytest.approx(math.sqrt(6.0))
    assert got["trivial/val/price/r2"] == pytest.approx(-0.2)
    # topics: {p} for every row against [{p}, {q}, {p, q}, {}] → TP 2, FP 2, FN 2 → micro F1 4/8
    assert got["trivial/val/topics/micro_f1"] == pytest.approx(0.5)
    # mAP with one score per class: the class's prevalence, p 2/4 and q 2/4
    assert got["trivial/val/topics/map"] == pytest.approx(0.5)
    # ner: "O" for every word → no chunk predicted (F1 0); 8 of the 11 words are O → accuracy 8/11
    assert got["trivial/val/ner/f1"] == 0.0 and got["trivial/val/ner/accuracy"] == pytest.approx(8 / 11)
    # auxiliary tasks are measured, but only the main tasks make the score: accuracy 0.25, −MAE/std = −2.0/2.0, micro F1 0.5, F1 0
    assert got["trivial/val/side/accuracy"] == pytest.approx(0.25)  # b for every row, against [b, a, a, a]
    assert got["trivial/val/score"] == pytest.approx((0.25 - 1.0 + 0.5 + 0.0) / 4)
    assert not any(k.startswith("trivial/test/") for k in got)  # no test split here


def test_a_tag_set_without_o_predicts_its_most_frequent_tag():
    tagger = TaskInfo("ner", "token_classification", ["B-X", "I-X"], "f1", "max")
    train = SplitArrays(labels={"ner": np.array([[0, 1, 1], [1, 1, IGNORE]])})
    validation = SplitArrays(labels={"ner": np.array([[1, 1, 0], [1, IGNORE, IGNORE]])})
    got = trivial_metrics(PreparedData([tagger], {"train": train, "validation": validation, "test": validation}))
    assert got["trivial/val/ner/accuracy"] == pytest.approx(3 / 4) and got["trivial/test/ner/accuracy"] == pytest.approx(3 / 4)
