"""Ranking metrics: ROC AUC and average precision of a score against binary labels.

* ROC AUC = P(score of a random positive > score of a random negative), ties counting half;
  computed as the Mann-Whitney U statistic over average ranks:
  ``(sum of the positives' ranks - P (P + 1) / 2) / (P N)``.
* Average precision, scikit-learn's ``average_precision_score`` definition (no interpolation):
  ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds taken from the highest
  down, where ``P_n`` and ``R_n`` are the precision and recall of predicting positive every row
  scoring at least the n-th threshold, and ``R_0 = 0``. Tied scores enter together, at one
  threshold (https://scikit-learn.org/stable/modules/generated/sklearn.metrics.average_precision_score.html).
"""

from __future__ import annotations

import torch
from torch import Tensor


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


def average_precision(scores: Tensor, positive: Tensor) -> float:
    """``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds (see the module docstring);
    NaN when there is no positive (recall undefined)."""
    positive = positive.bool().flatten()
    n_pos = int(positive.sum())
    if n_pos == 0:
        return float("nan")
    scores = scores.double().flatten()
    order = torch.argsort(scores, descending=True, stable=True)
    scores, hits = scores[order], positive[order].double()
    # one operating point per distinct score: the last row of each run of equal scores, so that
    # tied rows are always predicted positive together (scikit-learn's threshold handling)
    last_of_run = torch.ones_like(scores, dtype=torch.bool)
    last_of_run[:-1] = scores[1:] != scores[:-1]
    tp = hits.cumsum(0)[last_of_run]
    predicted = torch.arange(1, len(scores) + 1, dtype=torch.float64)[last_of_run]
    precision, recall = tp / predicted, tp / n_pos
    gain = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((gain * precision).sum())
