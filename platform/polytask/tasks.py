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
    compute: Callable[[Tensor, Tensor, int], float]  # (predictions, labels, num_classes) -> value


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


class Classification:
    """Single-label classification: linear head, cross-entropy, accuracy or macro-F1."""

    name = "classification"
    metrics: dict[str, Metric] = {
        "accuracy": Metric("accuracy", "max", accuracy),
        "macro_f1": Metric("macro_f1", "max", macro_f1),
    }

    def head(self, in_dim: int, num_classes: int, dropout: float = 0.1) -> nn.Module:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_classes))

    def loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy over labelled rows; an exact 0 (still in the graph) if none."""
        present = labels != IGNORE
        if not present.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[present], labels[present])

    def predict(self, logits: Tensor) -> Tensor:
        return logits.argmax(dim=-1)

    def evaluate(self, predictions: Tensor, labels: Tensor, num_classes: int) -> dict[str, float]:
        present = labels != IGNORE
        predictions, labels = predictions[present], labels[present]
        if labels.numel() == 0:
            return {}
        return {name: m.compute(predictions, labels, num_classes) for name, m in self.metrics.items()}


TASK_TYPES = {t.name: t for t in (Classification(),)}


def score(values: dict[str, float], directions: dict[str, Direction]) -> float:
    """The study's scalar summary: the mean over tasks of each primary metric, negated where
    lower is better, so that higher is always better. Used for early stopping, model selection
    and ranking; the per-task metrics stay the headline."""
    signed = [v if directions[k] == "max" else -v for k, v in values.items()]
    return float(torch.tensor(signed, dtype=torch.float64).mean())
