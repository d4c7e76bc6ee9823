"""Regression: one real-valued target per row.

Labels: float32 ``[N]`` in the target's original units, NaN where the row has no label.
Outputs: ``[B, 1]``.

The head learns the standardised target ``z = (y - mean) / std``, with the train split's mean
and standard deviation (``TaskInfo.target_mean``, ``target_std``): standardising the target is
the usual practice, so that the loss has the scale of a classification loss whatever the
target's units, and the learning rate and the task weights mean the same for every task.

* Loss: mean squared error ``mean (o - z)^2`` between ``outputs[:, 0]`` and the standardised
  target, over the labelled rows.
* Prediction: ``outputs[:, 0] * std + mean``, back in the original units ``[B]``.
* Metrics, in the original units, on the labelled rows (``e = prediction - y``):
  - ``mae`` = ``mean |e|`` (lower is better; the default);
  - ``mse`` = ``mean e^2`` and ``rmse`` = ``sqrt(mse)`` (lower is better);
  - ``r2``, the coefficient of determination ``1 - sum e^2 / sum (y - mean(y))^2`` (higher is
    better); NaN, so left out, when the labels are constant.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from .base import Metric, TaskInfo, TaskType, zero_loss


def _errors(predictions: Tensor, labels: Tensor) -> Tensor:
    return predictions.double() - labels.double()


def mse(predictions: Tensor, labels: Tensor) -> float:
    return float(_errors(predictions, labels).square().mean())


def mae(predictions: Tensor, labels: Tensor) -> float:
    return float(_errors(predictions, labels).abs().mean())


def rmse(predictions: Tensor, labels: Tensor) -> float:
    return math.sqrt(mse(predictions, labels))


def r2(predictions: Tensor, labels: Tensor) -> float:
    labels = labels.double()
    total = (labels - labels.mean()).square().sum()
    if total == 0:
        return float("nan")  # constant labels: nothing to explain
    return float(1 - _errors(predictions, labels).square().sum() / total)


def _check_scale(task: TaskInfo) -> None:
    if not (math.isfinite(task.target_mean) and math.isfinite(task.target_std) and task.target_std > 0):
        raise ValueError(f"task {task.name}: target_std must be a finite number > 0 and target_mean finite, got mean {task.target_mean}, std {task.target_std}")


class Regression(TaskType):
    """Regression: one output, MSE on the standardised target; MAE, MSE, RMSE, R² in original units."""

    name = "regression"
    metrics: ClassVar[dict[str, Metric]] = {
        "mae": Metric("mae", "min", lambda p, y, t: mae(p, y)),
        "mse": Metric("mse", "min", lambda p, y, t: mse(p, y)),
        "rmse": Metric("rmse", "min", lambda p, y, t: rmse(p, y)),
        "r2": Metric("r2", "max", lambda p, y, t: r2(p, y)),
    }
    default_metric = "mae"
    trivial_answer = "predicting the train mean (median for MAE)"

    def output_size(self, task: TaskInfo) -> int:
        return 1

    def present(self, labels: Tensor) -> Tensor:
        return ~torch.isnan(labels)

    def unitless(self, metric: str, value: float, task: TaskInfo) -> float:
        """Errors in train-split standard deviations of the target (MSE in variances), so that
        tasks in hartree and in bohr² weigh alike in ``val/score``; R² is unitless."""
        power = {"mae": 1, "rmse": 1, "mse": 2}.get(metric, 0)
        return value / task.target_std**power

    def loss(self, outputs: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """MSE against the standardised target over the labelled rows; an exact 0 (in the graph) if none."""
        _check_scale(task)
        present = self.present(labels)
        if not present.any():
            return zero_loss(outputs)
        target = (labels[present].float() - task.target_mean) / task.target_std
        return F.mse_loss(outputs[:, 0][present].float(), target)

    def predict(self, outputs: Tensor, task: TaskInfo) -> Tensor:
        """The prediction in the target's original units ``[B]``."""
        _check_scale(task)
        return outputs[:, 0].float() * task.target_std + task.target_mean

    def trivial_predictions(self, train_labels: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """The train split's mean target for every row (the constant of least squared error)."""
        present = train_labels[self.present(train_labels)].double()
        return torch.full(labels.shape[:1], float(present.mean()) if len(present) else 0.0)

    def trivial_metrics(self, train_labels: Tensor, labels: Tensor, task: TaskInfo) -> dict[str, float]:
        """Each metric of its best constant: MAE of the train median, the others of the mean."""
        values = super().trivial_metrics(train_labels, labels, task)
        present = train_labels[self.present(train_labels)].double()
        if "mae" in values and len(present):
            median = torch.full(labels.shape[:1], float(present.quantile(0.5)))  # the midpoint of the two middle values
            values["mae"] = self.evaluate(median, labels, task)["mae"]
        return values
