"""Single-label classification.

Labels: int64 ``[N]``, the class index, ``IGNORE`` where the row has no label (the Rotten
Tomatoes plot rows have no sentiment). Outputs: logits ``[B, C]``.

* Loss: cross-entropy ``-log softmax(z)_y``, averaged over the labelled rows.
* Prediction: class probabilities ``softmax(z)`` ``[B, C]``; the predicted class is the argmax.
* Metrics (all higher is better):
  - ``accuracy``: share of rows whose argmax equals the label;
  - ``macro_f1``: unweighted mean over classes of ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``,
    over the classes that occur in the labels or the predictions;
  - ``roc_auc``: binary, the AUC of class 1's probability; more classes, the mean one-vs-rest
    AUC over the classes that occur (see ``ranking``).
* ``distillation_loss``: BAM!'s target (Clark et al. 2019, "BAM! Born-Again Multi-Task
  Networks for Natural Language Understanding").
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from .base import IGNORE, Metric, TaskInfo, TaskType, zero_loss
from .ranking import macro_roc_auc


def accuracy(predictions: Tensor, labels: Tensor, num_classes: int) -> float:
    return (predictions == labels).double().mean().item()


def f1_per_class(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    """``2 TP / (2 TP + FP + FN)`` per class; NaN for a class absent from both labels and
    predictions (F1 undefined there), which macro averages leave out."""
    tp, fp, fn = tp.double(), fp.double(), fn.double()
    denominator = 2 * tp + fp + fn
    return torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.nan)


def mean_f1(per_class: Tensor) -> float:
    """Mean over the defined classes; 0 when none is (scikit-learn's zero_division=0)."""
    defined = per_class[~per_class.isnan()]
    return float(defined.mean()) if len(defined) else 0.0


def macro_f1(predictions: Tensor, labels: Tensor, num_classes: int) -> float:
    """Unweighted mean of the per-class F1 over the classes present in labels or predictions."""
    predicted = F.one_hot(predictions.long(), num_classes).bool()
    gold = F.one_hot(labels.long(), num_classes).bool()
    tp = (predicted & gold).sum(dim=0)
    fp = (predicted & ~gold).sum(dim=0)
    fn = (~predicted & gold).sum(dim=0)
    # a class absent from both is left out, as scikit-learn's labels=present does
    return mean_f1(f1_per_class(tp, fp, fn))


class Classification(TaskType):
    """Single-label classification: linear head, cross-entropy; accuracy, macro-F1, ROC AUC."""

    name = "classification"
    metrics: ClassVar[dict[str, Metric]] = {
        "accuracy": Metric("accuracy", "max", lambda p, y, t: accuracy(p.argmax(dim=-1), y, p.shape[-1])),
        "macro_f1": Metric("macro_f1", "max", lambda p, y, t: macro_f1(p.argmax(dim=-1), y, p.shape[-1])),
        "roc_auc": Metric("roc_auc", "max", lambda p, y, t: macro_roc_auc(p, y)),
    }
    default_metric = "accuracy"
    trivial_answer = "predicting the majority class"

    def loss(self, outputs: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """Mean cross-entropy over labelled rows; an exact 0 (still in the graph) if none."""
        present = self.present(labels)
        if not present.any():
            return zero_loss(outputs)
        return F.cross_entropy(outputs[present].float(), labels[present])

    def distillation_loss(self, logits: Tensor, labels: Tensor, teacher: Tensor, gold_weight: float) -> Tensor:
        """Cross-entropy against ``gold_weight * one_hot(label) + (1 - gold_weight) * teacher``
        (BAM!'s target, Clark et al. 2019) over labelled rows; ``teacher`` holds the teacher's
        class probabilities."""
        present = labels != IGNORE
        if not present.any():
            return zero_loss(logits)
        gold = F.one_hot(labels[present], logits.shape[-1]).to(teacher.dtype)
        target = gold_weight * gold + (1.0 - gold_weight) * teacher[present]
        return -(target * F.log_softmax(logits[present].float(), dim=-1)).sum(dim=-1).mean()

    def predict(self, outputs: Tensor, task: TaskInfo) -> Tensor:
        """Class probabilities ``[B, C]``."""
        return outputs.float().softmax(dim=-1)

    def trivial_predictions(self, train_labels: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """The train split's class priors for every row: the argmax is the majority class (ties:
        the first class), and one score for all rows puts ROC AUC at 0.5."""
        return class_priors(train_labels, len(task.classes)).expand(labels.shape[0], -1)


def class_priors(labels: Tensor, num_classes: int) -> Tensor:
    """float32 ``[C]``: each class's share of the present labels (uniform when there are none)."""
    present = labels[labels != IGNORE].long()
    counts = torch.bincount(present, minlength=num_classes).float()
    return counts / counts.sum() if counts.sum() > 0 else torch.full((num_classes,), 1.0 / num_classes)
