"""What every task type provides: the task's description, the metric record, the base class
and the study's scalar summary.

A task type turns the encoder's representation into outputs (``head``), trains them with a
loss that skips missing labels (``loss``), turns outputs into what the metrics read
(``predict``) and scores those against the labels (``evaluate``). Missing labels are the
norm in a multi-task study (a row labelled for one task often has no label for another), so
every loss is a mean over the label entries that are present and every metric reads the
labelled rows only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

IGNORE = -100  # integer label of an entry that is missing (PyTorch's cross-entropy ignore_index)

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class TaskInfo:
    """One task as the prepared data describe it."""

    name: str
    type: str  # key of TASK_TYPES
    # classification / multilabel: the label names; token_classification: the BIO tags
    # ("O", "B-PER", ...); regression: []
    classes: list[str]
    metric: str  # primary metric
    direction: Direction
    auxiliary: bool = False  # trained, but not part of val/score or the comparison's headline
    # regression: the train split's mean and standard deviation (> 0) of the target; the loss
    # reads standardised targets, predictions and metrics are in the original units
    target_mean: float = 0.0
    target_std: float = 1.0


@dataclass(frozen=True)
class Metric:
    name: str
    direction: Direction
    # (predictions from TaskType.predict, labels, task) on the labelled rows only -> value;
    # NaN where the metric is undefined on these rows
    compute: Callable[[Tensor, Tensor, TaskInfo], float]


class TaskType(ABC):
    """Base class of the task types; ``TASK_TYPES`` holds one instance of each."""

    name: ClassVar[str]
    metrics: ClassVar[dict[str, Metric]]
    default_metric: ClassVar[str]
    trivial_answer: ClassVar[str]  # what trivial_predictions answers, in words ("predicting the majority class")
    token_level: ClassVar[bool] = False  # labels [N, L] and outputs [B, L, C]: one label per token

    def output_size(self, task: TaskInfo) -> int:
        """Width of the head's last layer: one logit per class (or tag) unless a type says otherwise."""
        return len(task.classes)

    def head(self, in_dim: int, task: TaskInfo, dropout: float = 0.1) -> nn.Module:
        """Dropout, then a linear layer; ``nn.Linear`` maps the last dimension, so the same head
        serves ``[B, D]`` (one representation per row) and ``[B, L, D]`` (one per token)."""
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, self.output_size(task)))

    def unitless(self, metric: str, value: float, task: TaskInfo) -> float:
        """``value`` of ``metric`` on a scale that does not depend on the task's units, for
        :func:`score` to average across tasks (regression errors: in target standard
        deviations). Scores, rates and probabilities are unitless already."""
        return value

    def present(self, labels: Tensor) -> Tensor:
        """Boolean, ``labels``' shape: which label entries are given."""
        return labels != IGNORE

    def labelled_rows(self, labels: Tensor) -> Tensor:
        """Boolean ``[N]``: the rows the metrics read. Default: rows whose every entry is present."""
        present = self.present(labels)
        return present.reshape(present.shape[0], -1).all(dim=1)

    @abstractmethod
    def loss(self, outputs: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """Mean over the present label entries; an exact 0 still in the graph when none."""

    @abstractmethod
    def predict(self, outputs: Tensor, task: TaskInfo) -> Tensor:
        """What ``evaluate`` reads: float32, on ``outputs``' device."""

    def evaluate(self, predictions: Tensor, labels: Tensor, task: TaskInfo) -> dict[str, float]:
        """Every metric of the type on the labelled rows; ``{}`` when there are none. NaN values
        (undefined here, e.g. ROC AUC with one class) are left out rather than reported."""
        rows = self.labelled_rows(labels)
        if not bool(rows.any()):
            return {}
        # metrics are read-only: no graph, whatever the caller's grad mode
        values = self.metric_values(predictions[rows].detach(), labels[rows], task)
        return {name: v for name, v in values.items() if v == v}

    def metric_values(self, predictions: Tensor, labels: Tensor, task: TaskInfo) -> dict[str, float]:
        """All metrics on rows that are all labelled; a type whose metrics share work overrides it."""
        return {name: m.compute(predictions, labels, task) for name, m in self.metrics.items()}

    @abstractmethod
    def trivial_predictions(self, train_labels: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """What a predictor that never reads the input answers for the rows of ``labels``,
        learnt from ``train_labels`` alone (the train split's class priors, mean, ...), in the
        form :meth:`predict` gives: the floor a trained model must clear to have learnt anything."""

    def trivial_metrics(self, train_labels: Tensor, labels: Tensor, task: TaskInfo) -> dict[str, float]:
        """Every metric of :meth:`trivial_predictions` on ``labels`` (``{}`` without labelled rows)."""
        return self.evaluate(self.trivial_predictions(train_labels, labels, task), labels, task)


def zero_loss(outputs: Tensor) -> Tensor:
    """An exact 0 that is still a function of ``outputs``: backward() accepts it and leaves
    zero gradients, so a batch without labels for a task needs no special case upstream."""
    return outputs.sum() * 0.0


def score(values: dict[str, float], directions: dict[str, Direction]) -> float:
    """The study's scalar summary: the mean over tasks of each primary metric (made unitless
    by :meth:`TaskType.unitless`), negated where lower is better, so that higher is always
    better. Used for early stopping, model selection and ranking; the per-task metrics stay the
    headline."""
    signed = [v if directions[k] == "max" else -v for k, v in values.items()]
    return float(torch.tensor(signed, dtype=torch.float64).mean())
