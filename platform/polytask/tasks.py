"""Task types: the head, the masked loss and the metrics of each kind of task.

Labels are integer tensors with ``IGNORE`` where a row has no label for the task (the Rotten
Tomatoes plot rows have no sentiment): those rows add nothing to the loss or the metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

IGNORE = -100  # label of a row that has no label for this task

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction
    compute: Callable[[Tensor, Tensor], float]  # (probabilities [N, C], labels [N]) -> value


def accuracy(predictions: Tensor, labels: Tensor, num_classes: int) -> float:
    return (predictions == labels).double().mean().item()


def macro_f1(predictions: Tensor, labels: Tensor, num_classes: int) -> float:
    """Unweighted mean of the per-class F1 over the classes present in labels or predictions."""
    scores = []
    for c in range(num_classes):
        tp = ((predictions == c) & (labels == c)).sum().item()
        fp = ((predictions == c) & (labels != c)).sum().item()
        fn = ((predictions != c) & (labels == c)).sum().item()
        if tp + fp + fn == 0:
            continue  # class absent from both: F1 undefined, left out as scikit-learn's labels=present does
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


def roc_auc(scores: Tensor, positive: Tensor) -> float:
    """Area under the ROC curve: the probability that a random positive row scores above a
    random negative one, ties counting half (the Mann-Whitney U statistic over average ranks).
    NaN when one of the two classes is absent."""
    positive = positive.bool()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores.double())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: Tensor) -> Tensor:
    """1-based ranks; tied values share the mean of their ranks."""
    _, inverse, counts = torch.unique(values, sorted=True, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()
    return ((last - counts + 1 + last) / 2)[inverse]


def macro_roc_auc(probabilities: Tensor, labels: Tensor) -> float:
    """Binary: the AUC of the second class's probability. More classes: the mean one-vs-rest AUC
    over the classes that occur (scikit-learn's ``multi_class="ovr", average="macro"``)."""
    if probabilities.shape[1] == 2:
        return roc_auc(probabilities[:, 1], labels == 1)
    values = [roc_auc(probabilities[:, c], labels == c) for c in range(probabilities.shape[1])]
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


class Classification:
    """Single-label classification: linear head, cross-entropy; accuracy, macro-F1, ROC AUC."""

    name = "classification"
    metrics: dict[str, Metric] = {
        "accuracy": Metric("accuracy", "max", lambda p, y: accuracy(p.argmax(dim=-1), y, p.shape[1])),
        "macro_f1": Metric("macro_f1", "max", lambda p, y: macro_f1(p.argmax(dim=-1), y, p.shape[1])),
        "roc_auc": Metric("roc_auc", "max", macro_roc_auc),
    }

    def head(self, in_dim: int, num_classes: int, dropout: float = 0.1) -> nn.Module:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_classes))

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy over labelled rows; an exact 0 (still in the graph) if none."""
        present = labels != IGNORE
        if not present.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[present], labels[present])

    def distillation_loss(self, logits: Tensor, labels: Tensor, teacher: Tensor, gold_weight: float) -> Tensor:
        """Cross-entropy against ``gold_weight * one_hot(label) + (1 - gold_weight) * teacher``
        (BAM!'s target, Clark et al. 2019) over labelled rows; ``teacher`` holds the teacher's
        class probabilities."""
        present = labels != IGNORE
        if not present.any():
            return logits.sum() * 0.0
        gold = F.one_hot(labels[present], logits.shape[-1]).to(teacher.dtype)
        target = gold_weight * gold + (1.0 - gold_weight) * teacher[present]
        return -(target * F.log_softmax(logits[present].float(), dim=-1)).sum(dim=-1).mean()

    def predict(self, logits: Tensor) -> Tensor:
        """Class probabilities ``[B, C]``."""
        return logits.float().softmax(dim=-1)

    def evaluate(self, probabilities: Tensor, labels: Tensor, num_classes: int) -> dict[str, float]:
        present = labels != IGNORE
        probabilities, labels = probabilities[present], labels[present]
        if labels.numel() == 0:
            return {}
        values = {name: m.compute(probabilities, labels) for name, m in self.metrics.items()}
        return {name: v for name, v in values.items() if v == v}  # NaN: undefined here (AUC with one class)


TASK_TYPES = {t.name: t for t in (Classification(),)}


def score(values: dict[str, float], directions: dict[str, Direction]) -> float:
    """The study's scalar summary: the mean over tasks of each primary metric, negated where
    lower is better, so that higher is always better. Used for early stopping, model selection
    and ranking; the per-task metrics stay the headline."""
    signed = [v if directions[k] == "max" else -v for k, v in values.items()]
    return float(torch.tensor(signed, dtype=torch.float64).mean())
