"""Multilabel, regression and token classification (and what every task type shares): masked
losses and metrics against hand-computed values, and against scikit-learn and seqeval as
independent implementations on random data."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch.nn import functional as F

from polytask.tasks import IGNORE, TASK_TYPES, Multilabel, Regression, TaskInfo, TokenClassification, average_precision, check_bio, chunks

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TASKS = {
    "classification": TaskInfo("topic", "classification", ["a", "b", "c"], "accuracy", "max"),
    "multilabel": TaskInfo("genres", "multilabel", ["drama", "comedy", "horror", "war"], "micro_f1", "max"),
    "regression": TaskInfo("price", "regression", [], "mae", "min", target_mean=100.0, target_std=10.0),
    "token_classification": TaskInfo("ner", "token_classification", TAGS, "f1", "max"),
}
B, L, D = 3, 6, 8


def random_labels(kind: str, generator: torch.Generator) -> torch.Tensor:
    """A batch's labels with some entries missing."""
    if kind == "classification":
        return torch.tensor([2, IGNORE, 0])
    if kind == "multilabel":
        return torch.tensor([[1, 0, IGNORE, 1], [IGNORE] * 4, [0, 1, 1, 0]])
    if kind == "regression":
        return torch.tensor([103.0, float("nan"), 85.0])
    labels = torch.randint(0, len(TAGS), (B, L), generator=generator)
    labels[:, 0] = IGNORE  # [CLS]
    labels[:, 2] = IGNORE  # a later sub-word
    labels[1] = IGNORE  # a row without words
    return labels


def missing_labels(kind: str) -> torch.Tensor:
    if kind == "regression":
        return torch.full((B,), float("nan"))
    if kind == "multilabel":
        return torch.full((B, 4), IGNORE)
    if kind == "token_classification":
        return torch.full((B, L), IGNORE)
    return torch.full((B,), IGNORE)


def by_hand(kind: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss over the present entries only, computed on the filtered tensors."""
    if kind == "classification":
        return F.cross_entropy(outputs[[0, 2]], labels[[0, 2]])
    if kind == "multilabel":
        present = labels != IGNORE
        return F.binary_cross_entropy_with_logits(outputs[present], labels[present].float())
    if kind == "regression":
        return F.mse_loss(outputs[[0, 2], 0], (labels[[0, 2]] - 100.0) / 10.0)
    present = labels != IGNORE
    return F.cross_entropy(outputs[present], labels[present])


def missing_mask(kind: str, labels: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """Which output entries only missing labels reach, broadcast to the outputs' shape."""
    if kind == "regression":
        return labels.isnan()[:, None].expand_as(outputs)
    if kind == "multilabel":
        return labels == IGNORE
    return (labels == IGNORE)[..., None].expand_as(outputs)


def head_input(kind: str) -> torch.Tensor:
    return torch.randn(B, L, D) if TASK_TYPES[kind].token_level else torch.randn(B, D)


# --- what every type shares -------------------------------------------------------------


def test_every_type_is_registered_under_its_name_with_a_default_metric():
    assert set(TASK_TYPES) == {"classification", "multilabel", "regression", "token_classification"}
    for name, task_type in TASK_TYPES.items():
        assert task_type.name == name
        assert task_type.default_metric in task_type.metrics
        assert all(m.name == key and m.direction in ("max", "min") for key, m in task_type.metrics.items())


@pytest.mark.parametrize("kind", list(TASKS))
def test_head_outputs_what_loss_and_predict_expect(kind):
    task_type, task = TASK_TYPES[kind], TASKS[kind]
    torch.manual_seed(0)
    head = task_type.head(D, task, dropout=0.1)
    outputs = head(head_input(kind))
    expected = {"classification": (B, 3), "multilabel": (B, 4), "regression": (B, 1), "token_classification": (B, L, len(TAGS))}[kind]
    assert outputs.shape == expected
    labels = random_labels(kind, torch.Generator().manual_seed(0))
    loss = task_type.loss(outputs, labels, task)
    assert loss.shape == () and torch.isfinite(loss)
    predictions = task_type.predict(outputs, task)
    assert predictions.dtype == torch.float32
    assert predictions.shape == (expected[:1] if kind == "regression" else expected)
    assert set(task_type.evaluate(predictions, labels, task)) <= set(task_type.metrics)


@pytest.mark.parametrize("kind", list(TASKS))
def test_missing_labels_add_nothing_to_the_loss_and_get_no_gradient(kind):
    task_type, task = TASK_TYPES[kind], TASKS[kind]
    generator = torch.Generator().manual_seed(1)
    outputs = TASK_TYPES[kind].head(D, task, dropout=0.0)(head_input(kind)).detach().requires_grad_()
    labels = random_labels(kind, generator)
    loss = task_type.loss(outputs, labels, task)
    assert loss.item() == pytest.approx(by_hand(kind, outputs.detach(), labels).item(), rel=1e-6)
    loss.backward()
    missing = missing_mask(kind, labels, outputs)
    assert missing.any() and (~missing).any()
    assert torch.equal(outputs.grad[missing], torch.zeros(int(missing.sum())))
    assert outputs.grad[~missing].abs().sum() > 0


@pytest.mark.parametrize("kind", list(TASKS))
def test_a_batch_without_labels_gives_an_exact_zero_that_backward_accepts(kind):
    task_type, task = TASK_TYPES[kind], TASKS[kind]
    outputs = task_type.head(D, task)(head_input(kind)).detach().requires_grad_()
    loss = task_type.loss(outputs, missing_labels(kind), task)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(outputs.grad, torch.zeros_like(outputs))
    assert task_type.evaluate(task_type.predict(outputs.detach(), task), missing_labels(kind), task) == {}


# --- multilabel -------------------------------------------------------------------------

# 4 rows x 4 classes; predicted positive: probability > 0.5
ML_PROBABILITIES = torch.tensor(
    [
        [0.9, 0.2, 0.6, 0.1],  # predicted 1 0 1 0
        [0.4, 0.7, 0.1, 0.2],  # predicted 0 1 0 0
        [0.8, 0.3, 0.6, 0.3],  # predicted 1 0 1 0
        [0.1, 0.6, 0.2, 0.4],  # predicted 0 1 0 0
    ]
)
ML_LABELS = torch.tensor([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])


def test_multilabel_f1_and_map_by_hand():
    values = Multilabel().evaluate(ML_PROBABILITIES, ML_LABELS, TASKS["multilabel"])
    # class 0: predicted {0, 2}, gold {0, 1}: tp 1 fp 1 fn 1 -> F1 2/4
    # class 1: predicted {1, 3}, gold {1, 3}: tp 2 -> F1 1
    # class 2: predicted {0, 2}, gold {0}: tp 1 fp 1 fn 0 -> F1 2/3
    # class 3: no gold and no predicted positive -> left out of the macro average
    # micro: tp 4 fp 2 fn 1 -> 8 / 11
    assert values["micro_f1"] == pytest.approx(8 / 11)
    assert values["macro_f1"] == pytest.approx((0.5 + 1 + 2 / 3) / 3)
    # AP, thresholds from the highest score down, sum of (recall gain) x precision:
    # class 0: 0.9+ 0.8- 0.4+ 0.1- -> 1/2 x 1 + 1/2 x 2/3 = 5/6
    # class 1: 0.7+ 0.6+ 0.3- 0.2- -> 1
    # class 2: rows 0 (+) and 2 (-) tie at 0.6 and enter together: 1 x 1/2 = 1/2 (1 if the tie were split, positive first)
    # class 3: no positive -> left out
    assert values["map"] == pytest.approx((5 / 6 + 1 + 0.5) / 3)


def test_multilabel_metrics_read_only_rows_with_every_entry_present():
    probabilities = torch.cat([ML_PROBABILITIES, torch.tensor([[0.9, 0.9, 0.9, 0.9], [0.9, 0.9, 0.9, 0.9]])])
    labels = torch.cat([ML_LABELS, torch.tensor([[0, IGNORE, 0, 0], [IGNORE] * 4])])
    with_partial = Multilabel().evaluate(probabilities, labels, TASKS["multilabel"])
    assert with_partial == pytest.approx(Multilabel().evaluate(ML_PROBABILITIES, ML_LABELS, TASKS["multilabel"]))


def test_multilabel_threshold_is_strictly_above_one_half():
    values = Multilabel().evaluate(torch.tensor([[0.5, 0.6]]), torch.tensor([[1, 1]]), TaskInfo("t", "multilabel", ["a", "b"], "micro_f1", "max"))
    # class a at exactly 0.5 is not predicted: tp 1 fn 1 -> micro 2/3; macro (0 + 1) / 2
    assert values["micro_f1"] == pytest.approx(2 / 3)
    assert values["macro_f1"] == pytest.approx(0.5)


def test_multilabel_f1_matches_scikit_learn_on_random_data():
    from sklearn.metrics import f1_score

    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        labels = (torch.rand(60, 6, generator=generator) < 0.3).long()
        labels[:6] = torch.eye(6, dtype=torch.long)  # every class occurs
        probabilities = torch.rand(60, 6, generator=generator)
        values = Multilabel().evaluate(probabilities, labels, TaskInfo("t", "multilabel", list("abcdef"), "micro_f1", "max"))
        predicted = (probabilities > 0.5).long().numpy()
        assert values["micro_f1"] == pytest.approx(f1_score(labels.numpy(), predicted, average="micro"))
        assert values["macro_f1"] == pytest.approx(f1_score(labels.numpy(), predicted, average="macro"))


def test_map_matches_scikit_learn_on_random_data_with_ties():
    from sklearn.metrics import average_precision_score

    generator = torch.Generator().manual_seed(3)
    for _ in range(5):
        labels = (torch.rand(50, 5, generator=generator) < 0.4).long()
        labels[:5] = torch.eye(5, dtype=torch.long)
        probabilities = torch.randint(0, 5, (50, 5), generator=generator) / 4  # five levels: many ties
        expected = sum(average_precision_score(labels[:, c].numpy(), probabilities[:, c].numpy()) for c in range(5)) / 5
        values = Multilabel().evaluate(probabilities, labels, TaskInfo("t", "multilabel", list("abcde"), "map", "max"))
        assert values["map"] == pytest.approx(expected)
    assert math.isnan(average_precision(torch.tensor([0.3, 0.7]), torch.tensor([0, 0])))


# --- regression -------------------------------------------------------------------------


def test_regression_trains_on_standardised_targets_and_predicts_original_units():
    task, regression = TASKS["regression"], Regression()  # mean 100, std 10
    labels = torch.tensor([110.0, 85.0, float("nan")])
    standardised = torch.tensor([[1.0], [-1.5], [7.0]])
    assert regression.loss(standardised, labels, task).item() == 0.0
    # off by 0.2 and 0.4 standard deviations: (0.04 + 0.16) / 2
    assert regression.loss(standardised + torch.tensor([[0.2], [-0.4], [0.0]]), labels, task).item() == pytest.approx(0.1)
    assert torch.allclose(regression.predict(standardised, task), torch.tensor([110.0, 85.0, 170.0]))


def test_regression_metrics_by_hand_in_original_units():
    task = TASKS["regression"]  # mean 100, std 10
    outputs = torch.tensor([[0.5], [-1.0], [2.0], [0.0]])
    labels = torch.tensor([103.0, 94.0, float("nan"), 97.0])
    predictions = Regression().predict(outputs, task)  # 105 90 120 100
    values = Regression().evaluate(predictions, labels, task)
    # errors on the labelled rows: 2, -4, 3
    assert values["mae"] == pytest.approx(3.0)
    assert values["mse"] == pytest.approx(29 / 3)
    assert values["rmse"] == pytest.approx(math.sqrt(29 / 3))
    # labels 103 94 97, mean 98: total sum of squares 25 + 16 + 1 = 42; residual 29
    assert values["r2"] == pytest.approx(1 - 29 / 42)
    # the loss reads the same errors in standard deviations: (0.2^2 + 0.4^2 + 0.3^2) / 3
    assert Regression().loss(outputs, labels, task).item() == pytest.approx(0.29 / 3)


def test_regression_r2_is_left_out_when_the_labels_are_constant():
    task = TASKS["regression"]
    values = Regression().evaluate(torch.tensor([99.0, 102.0]), torch.tensor([100.0, 100.0]), task)
    assert "r2" not in values
    assert values["mae"] == pytest.approx(1.5)


def test_regression_metrics_match_scikit_learn():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    generator = torch.Generator().manual_seed(4)
    labels, predictions = torch.randn(40, generator=generator) * 7 + 3, torch.randn(40, generator=generator) * 7 + 3
    values = Regression().evaluate(predictions, labels, TASKS["regression"])
    assert values["mae"] == pytest.approx(mean_absolute_error(labels.numpy(), predictions.numpy()), rel=1e-5)
    assert values["mse"] == pytest.approx(mean_squared_error(labels.numpy(), predictions.numpy()), rel=1e-5)
    assert values["r2"] == pytest.approx(r2_score(labels.numpy(), predictions.numpy()), rel=1e-5)


def test_regression_rejects_a_zero_standard_deviation():
    task = TaskInfo("price", "regression", [], "mae", "min", target_mean=1.0, target_std=0.0)
    with pytest.raises(ValueError, match="target_std"):
        Regression().loss(torch.zeros(2, 1), torch.zeros(2), task)


# --- token classification ---------------------------------------------------------------


def encode(gold: list[list[str]], predicted: list[list[str]], length: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels [N, L] and logits [N, L, C] as the data layer and the model produce them: [CLS] at
    0, each word's tag at its first sub-word, IGNORE at a random later sub-word and the padding.
    At every IGNORE position the logits favour a random tag, which the metrics must not read."""
    rng = random.Random(seed)
    labels = torch.full((len(gold), length), IGNORE)
    logits = torch.zeros(len(gold), length, len(TAGS))
    for i, (gold_row, predicted_row) in enumerate(zip(gold, predicted)):
        logits[i, :, :] = F.one_hot(torch.tensor([rng.randrange(len(TAGS)) for _ in range(length)]), len(TAGS)) * 5.0
        position = 1
        for g, p in zip(gold_row, predicted_row):
            labels[i, position] = TAGS.index(g)
            logits[i, position] = F.one_hot(torch.tensor(TAGS.index(p)), len(TAGS)) * 5.0
            position += 1 + (rng.random() < 0.4)  # sometimes a second sub-word, IGNORE
        assert position <= length
    return labels, logits


SENTENCES = [
    # gold                                     predicted
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "O", "O", "B-LOC"]),  # PER 0-1 cut short (wrong boundary); LOC right
    (["B-LOC", "O", "B-PER"], ["B-PER", "O", "O"]),  # LOC 0 tagged PER (wrong type); PER 2 missed
    (["O", "O", "O", "B-PER", "I-PER"], ["O", "I-LOC", "O", "B-PER", "I-PER"]),  # I-LOC after O: spurious LOC 1; PER right
    (["O", "B-LOC", "I-LOC"], ["O", "I-LOC", "I-LOC"]),  # I-LOC after O opens LOC 1-2: right
    (["B-PER"], ["O"]),  # missed
]


def test_chunks_follow_conlleval():
    assert chunks(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    assert chunks(["O", "I-LOC", "I-LOC", "O"]) == [("LOC", 1, 2)]  # I- after O starts a chunk
    assert chunks(["B-PER", "I-LOC", "B-LOC", "B-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1), ("LOC", 2, 2), ("LOC", 3, 3)]
    assert chunks(["I-PER", "I-PER"]) == [("PER", 0, 1)]
    assert chunks([]) == []


def test_token_metrics_by_hand():
    labels, logits = encode([g for g, _ in SENTENCES], [p for _, p in SENTENCES])
    task, token = TASKS["token_classification"], TokenClassification()
    values = token.evaluate(token.predict(logits, task), labels, task)
    # gold chunks 2 + 2 + 1 + 1 + 1 = 7; predicted 2 + 1 + 2 + 1 + 0 = 6; correct 1 + 0 + 1 + 1 + 0 = 3
    assert values["precision"] == pytest.approx(3 / 6)
    assert values["recall"] == pytest.approx(3 / 7)
    assert values["f1"] == pytest.approx(2 * (1 / 2) * (3 / 7) / (1 / 2 + 3 / 7))  # 6/13
    # words right: 3/4, 1/3, 4/5, 2/3, 0/1 -> 10 of 16
    assert values["accuracy"] == pytest.approx(10 / 16)


def test_token_metrics_ignore_sub_words_and_rows_without_words():
    labels, logits = encode([g for g, _ in SENTENCES], [p for _, p in SENTENCES])
    task, token = TASKS["token_classification"], TokenClassification()
    reference = token.evaluate(token.predict(logits, task), labels, task)
    shuffled = logits.clone()
    ignored = labels == IGNORE
    shuffled[ignored] = torch.randn(int(ignored.sum()), len(TAGS)) * 10  # other predictions where no word starts
    padded_labels = torch.cat([labels, torch.full((1, labels.shape[1]), IGNORE)])  # a row without words
    padded_logits = torch.cat([shuffled, torch.randn(1, *logits.shape[1:])])
    assert token.evaluate(token.predict(padded_logits, task), padded_labels, task) == pytest.approx(reference)


def test_token_metrics_match_seqeval_on_random_sequences():
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = random.Random(5)
    gold = [[rng.choice(TAGS) for _ in range(rng.randint(1, 8))] for _ in range(200)]  # I- after O and after another type included
    predicted = [[tag if rng.random() < 0.6 else rng.choice(TAGS) for tag in row] for row in gold]
    assert any(a == "O" and b.startswith("I-") for row in gold for a, b in zip(row, row[1:]))
    labels, logits = encode(gold, predicted, length=18, seed=6)
    task, token = TASKS["token_classification"], TokenClassification()
    values = token.evaluate(token.predict(logits, task), labels, task)
    assert values["precision"] == pytest.approx(precision_score(gold, predicted))
    assert values["recall"] == pytest.approx(recall_score(gold, predicted))
    assert values["f1"] == pytest.approx(f1_score(gold, predicted))
    assert values["accuracy"] == pytest.approx(sum(g == p for a, b in zip(gold, predicted) for g, p in zip(a, b)) / sum(map(len, gold)))


def test_token_f1_is_zero_without_any_correct_chunk():
    labels, logits = encode([["B-PER", "O"]], [["O", "B-LOC"]])
    task, token = TASKS["token_classification"], TokenClassification()
    values = token.evaluate(token.predict(logits, task), labels, task)
    assert (values["precision"], values["recall"], values["f1"], values["accuracy"]) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("bad", ["PER", "B_PER", "X-PER", "B-", "o"])
def test_check_bio_rejects_a_tag_that_is_not_bio_naming_it(bad):
    with pytest.raises(ValueError, match=repr(bad)):
        check_bio(["O", "B-PER", "I-PER", bad])


def test_check_bio_accepts_bio_tags():
    check_bio(["O", "B-PER", "I-PER"])
    check_bio(TAGS)
    with pytest.raises(ValueError, match="no"):
        check_bio([])
