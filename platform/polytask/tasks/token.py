"""Token classification: BIO (IOB2) tagging of named entities or other spans.

Labels: int64 ``[N, L]``, aligned with the tokenised input: the tag index at the first
sub-word token of each word, ``IGNORE`` at every other position (later sub-words, special
tokens, padding). Outputs: logits ``[B, L, C]``, one distribution over the tags per token.
The word-level tag sequence of a row is therefore the tags at its present positions, in order.

* Loss: cross-entropy over the present positions (words), averaged over all of them in the
  batch; sub-words, special tokens and padding add nothing.
* Prediction: tag probabilities ``softmax(z)`` ``[B, L, C]``; the predicted tag is the argmax.
* Metrics (all higher is better), micro-averaged over every row:
  - entity level, as the CoNLL-2000 / CoNLL-2003 shared tasks' ``conlleval`` script scores
    them: chunks ``(type, start, end)`` are read from the gold and the predicted tag sequences
    with conlleval's rules (below); a predicted chunk is correct only when a gold chunk has the
    same type and both boundaries.
    ``precision = correct / predicted chunks``, ``recall = correct / gold chunks`` (each 0 when
    its denominator is), ``f1 = 2 P R / (P + R)`` (0 when P + R = 0);
  - ``accuracy``: token level, share of present positions whose predicted tag is the gold one.

conlleval's chunk rules for BIO tags: a chunk starts at ``B-X``, and at ``I-X`` when the
previous tag is ``O`` or of another type (an ``I-`` is not thrown away); it ends before ``O``,
before any ``B-``, and before a tag of another type. seqeval's default mode follows the same
rules. (conlleval: https://www.clips.uantwerpen.be/conll2000/chunking/output.html)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from .base import IGNORE, Metric, TaskInfo, TaskType, zero_loss


def _split(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``, ``"O"`` -> ``("O", "")``; ValueError for anything else."""
    if tag == "O":
        return "O", ""
    prefix, dash, kind = tag.partition("-")
    if prefix not in ("B", "I") or not dash or not kind:
        raise ValueError(f"tag {tag!r} is not a BIO tag: every tag must be 'O', 'B-<type>' or 'I-<type>' (e.g. 'B-PER', 'I-PER')")
    return prefix, kind


def check_bio(classes: Sequence[str]) -> None:
    """Reject a tag set the chunk metrics cannot read: ValueError naming the first bad tag."""
    if not classes:
        raise ValueError("a token classification task needs tags; got none (expected e.g. ['O', 'B-PER', 'I-PER'])")
    for tag in classes:
        if not isinstance(tag, str):
            raise ValueError(f"tag {tag!r} is not a BIO tag: every tag must be a string 'O', 'B-<type>' or 'I-<type>'")
        _split(tag)


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The chunks ``(type, start, end)`` of a BIO tag sequence, ``end`` inclusive, by conlleval's rules."""
    found: list[tuple[str, int, int]] = []
    kind, start = None, 0  # the open chunk's type (None: none open) and first position
    for i, tag in enumerate([*tags, "O"]):  # a final "O" closes the last chunk
        prefix, tag_kind = _split(tag)
        if kind is not None and (prefix != "I" or tag_kind != kind):
            found.append((kind, start, i - 1))
            kind = None
        if prefix == "B" or (prefix == "I" and kind is None):
            kind, start = tag_kind, i
    return found


def entity_counts(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> tuple[int, int, int]:
    """(correct, predicted, gold) chunk counts summed over the sentences."""
    correct = n_predicted = n_gold = 0
    for gold_tags, predicted_tags in zip(gold, predicted, strict=True):
        gold_chunks, predicted_chunks = set(chunks(gold_tags)), set(chunks(predicted_tags))
        correct += len(gold_chunks & predicted_chunks)
        n_predicted += len(predicted_chunks)
        n_gold += len(gold_chunks)
    return correct, n_predicted, n_gold


def tag_sequences(predictions: Tensor, labels: Tensor, task: TaskInfo) -> tuple[list[list[str]], list[list[str]]]:
    """Per row, the gold and the predicted (argmax) tags at the present positions, in order."""
    present = labels != IGNORE
    gold, predicted = labels.tolist(), predictions.argmax(dim=-1).tolist()
    keep = present.tolist()
    tags = task.classes
    gold_rows = [[tags[g] for g, k in zip(row, mask) if k] for row, mask in zip(gold, keep)]
    predicted_rows = [[tags[p] for p, k in zip(row, mask) if k] for row, mask in zip(predicted, keep)]
    return gold_rows, predicted_rows


def token_scores(predictions: Tensor, labels: Tensor, task: TaskInfo) -> dict[str, float]:
    """precision, recall, f1 (entity level) and accuracy (token level); see the module docstring."""
    gold, predicted = tag_sequences(predictions, labels, task)
    correct, n_predicted, n_gold = entity_counts(gold, predicted)
    precision = correct / n_predicted if n_predicted else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    words = sum(len(row) for row in gold)
    hits = sum(g == p for gold_row, predicted_row in zip(gold, predicted) for g, p in zip(gold_row, predicted_row))
    accuracy = hits / words if words else float("nan")
    return {"f1": f1, "precision": precision, "recall": recall, "accuracy": accuracy}


class TokenClassification(TaskType):
    """BIO tagging: a tag distribution per token, cross-entropy on words; conlleval's entity F1."""

    name = "token_classification"
    token_level = True
    metrics: ClassVar[dict[str, Metric]] = {
        name: Metric(name, "max", lambda p, y, t, name=name: token_scores(p, y, t)[name]) for name in ("f1", "precision", "recall", "accuracy")
    }
    default_metric = "f1"
    trivial_answer = "tagging every word O"

    def labelled_rows(self, labels: Tensor) -> Tensor:
        """Rows with at least one word: IGNORE marks sub-words and padding, not a missing label."""
        return self.present(labels).any(dim=1)

    def loss(self, outputs: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """Mean cross-entropy over the present positions; an exact 0 (in the graph) if none."""
        present = self.present(labels)
        if not present.any():
            return zero_loss(outputs)
        return F.cross_entropy(outputs[present].float(), labels[present])

    def predict(self, outputs: Tensor, task: TaskInfo) -> Tensor:
        """Tag probabilities ``[B, L, C]``."""
        return outputs.float().softmax(dim=-1)

    def metric_values(self, predictions: Tensor, labels: Tensor, task: TaskInfo) -> dict[str, float]:
        # the four metrics share one pass over the sentences
        return token_scores(predictions, labels, task)

    def trivial_predictions(self, train_labels: Tensor, labels: Tensor, task: TaskInfo) -> Tensor:
        """Every word outside any entity: tag "O" at every position (the most frequent train
        tag where the tag set has no "O"), so no chunk is predicted and entity F1 is 0."""
        if "O" in task.classes:
            tag = task.classes.index("O")
        else:
            tag = int(torch.bincount(train_labels[self.present(train_labels)].long(), minlength=len(task.classes)).argmax())
        predictions = torch.zeros(*labels.shape, len(task.classes))
        predictions[..., tag] = 1.0
        return predictions
