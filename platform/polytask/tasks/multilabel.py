"""Multi-label classification: each row may carry any number of the C labels.

Labels: int64 ``[N, C]``, 1 / 0 per class, ``IGNORE`` where that entry is missing (a row with
no label for the task is all ``IGNORE``). Outputs: logits ``[B, C]``, one per class.

* Loss: binary cross-entropy with logits,
  ``-(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z)))``, averaged over the present entries.
* Prediction: per-class probabilities ``sigmoid(z)`` ``[B, C]``; a class is predicted positive
  when its probability exceeds 0.5 (logit > 0).
* Metrics, on the rows whose every entry is present (a partly labelled row has no complete
  gold label set to compare with), all higher is better:
  - ``micro_f1``: ``2 TP / (2 TP + FP + FN)`` with the counts summed over all classes; 0 when
    there is no gold and no predicted positive at all (scikit-learn's zero_division=0);
  - ``macro_f1``: the unweighted mean over classes of the per-class F1, over the classes with at
    least one gold or predicted positive (as the single-label macro_f1 treats absent classes);
  - ``map``: mean average precision, the mean over classes with at least one gold positive of
    scikit-learn's ``average_precision_score`` (see ``ranking.average_precision``).
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor
from torch.nn import functional as F

from .base import Metric, TaskInfo, TaskType, zero_loss
from .classification import f1_per_class, mean_f1
from .ranking import average_precision

THRESHOLD = 0.5


def _counts(probabilities: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class TP, FP, FN ``[C]`` at the 0.5 threshold."""
    predicted, gold = probabilities > THRESHOLD, labels == 1
    return (predicted & gold).sum(dim=0), (predicted & ~gold).sum(dim=0), (~predicted & gold).sum(dim=0)


def micro_f1(probabilities: Tensor, labels: Tensor) -> float:
    tp, fp, fn = (c.sum() for c in _counts(probabilities, labels))
    return mean_f1(f1_per_class(tp.reshape(1), fp.reshape(1), fn.reshape(1)))


def multilabel_macro_f1(probabilities: Tensor, labels: Tensor) -> float:
    return mean_f1(f1_per_class(*_counts(probabilities, labels)))


def mean_average_precision(probabilities: Tensor, labels: Tensor) -> float:
    """Mean of the per-class average precision over classes with a positive; NaN if none has."""
    values = [average_precision(probabilities[:, c], labels[:, c] == 1) for c in range(labels.shape[1])]
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


class Multilabel(TaskType):
    """Multi-label classification: one logit per class, binary cross-entropy; micro/macro F1, mAP."""

    name = "multilabel"
    metrics: ClassVar[dict[str, Metric]] = {
        "micro_f1": Metric("micro_f1", "max", lambda p, y, t: micro_f1(p, y)),
        "macro_f1": Metric("macro_f1", "max", lambda p, y, t: multilabel_macro_f1(p, y)),
        "map": Metric("map", "max", lambda p, y, t: mean_average_precision(p, y)),
    }
    default_metric = "micro_f1"
    trivial_answer = "predicting each label's train prevalence"

    def loss(self, outputs: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """Mean binary cross-entropy over the present entries; an exact 0 (in the graph) if none."""
        present = self.present(labels)
        if not present.any():
            return zero_loss(outputs)
        return F.binary_cross_entropy_with_logits(outputs[present].float(), labels[present].float())

    def predict(self, outputs: Tensor, task: TaskInfo) -> Tensor:
        """Per-class probabilities ``[B, C]``."""
        return outputs.float().sigmoid()

    def trivial_predictions(self, train_labels: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """Each class's train-split prevalence for every row: a class is predicted positive
        for all rows when more than half the train rows carry it, for none otherwise."""
        present = self.present(train_labels)
        positives = ((train_labels == 1) & present).sum(dim=0).float()
        prevalence = positives / present.sum(dim=0).clamp(min=1).float()
        return prevalence.expand(labels.shape[0], -1)
