"""Training defaults per encoder kind (polytask.spec.defaults): a spec without a learning rate or
epochs gets its kind's values, a small table trains for at least the kind's minimum steps, and
every value filled in is said, with where it came from."""

from __future__ import annotations

import math

import pytest

from polytask.spec import parse_spec, resolve_training
from polytask.spec.defaults import DEFAULTS, MAX_EPOCHS
from tests.support import study_dict

FILES = {split: f"/data/{split}.csv" for split in ("train", "validation", "test")}


def spec_without(*fields: str, **training):
    raw = study_dict(FILES)
    for field in fields:
        raw["training"].pop(field)
    raw["training"].pop("steps_per_epoch")  # one pass over the rows, as a user's study has
    raw["training"].update(training)
    return parse_spec(raw)


def test_a_spec_that_leaves_them_out_reads_none_until_resolved():
    spec = spec_without("learning_rate", "epochs")
    assert spec.training.learning_rate is None and spec.training.epochs is None


@pytest.mark.parametrize("kind", sorted(DEFAULTS))
def test_each_kind_gets_its_own_learning_rate(kind):
    spec = spec_without("learning_rate")
    spec = spec.model_copy(update={"encoder": spec.encoder.model_copy(update={"kind": kind})})
    resolved, notes = resolve_training(spec, train_rows=100_000)
    assert resolved.training.learning_rate == DEFAULTS[kind].learning_rate
    assert any(note.startswith(f"training.learning_rate: {DEFAULTS[kind].learning_rate:g}") and kind in note for note in notes)


def test_the_defaults_differ_by_an_order_of_magnitude_where_the_sweep_found_it():
    # the regression of the issue: one transformer rate (5e-5) for a table trained it to chance
    assert DEFAULTS["tabular"].learning_rate >= 10 * 5e-5 and DEFAULTS["pretrained"].learning_rate < DEFAULTS["cnn"].learning_rate


def test_a_large_table_trains_for_the_kinds_epochs():
    spec = spec_without("learning_rate", "epochs")  # random encoder, batch 16
    rows = 16 * DEFAULTS["random"].min_steps  # min_steps in one epoch already
    resolved, notes = resolve_training(spec, rows)
    assert resolved.training.epochs == DEFAULTS["random"].epochs
    assert any(note.startswith(f"training.epochs: {DEFAULTS['random'].epochs}") for note in notes)


def test_a_small_table_trains_for_at_least_the_minimum_steps():
    spec = spec_without("epochs")
    per_epoch = 7  # 112 rows at batch 16
    resolved, notes = resolve_training(spec, 112)
    expected = max(DEFAULTS["random"].epochs, math.ceil(DEFAULTS["random"].min_steps / per_epoch))
    assert resolved.training.epochs == expected and expected * per_epoch >= DEFAULTS["random"].min_steps
    assert any(f"at least {DEFAULTS['random'].min_steps} steps at {per_epoch} per epoch" in note for note in notes)
    assert resolved.training.learning_rate == spec.training.learning_rate  # given: kept, and nothing said about it
    assert not any(note.startswith("training.learning_rate") for note in notes)


def test_the_minimum_steps_never_ask_for_more_than_max_epochs():
    resolved, _ = resolve_training(spec_without("epochs"), train_rows=16)  # one step an epoch
    assert resolved.training.epochs == MAX_EPOCHS


def test_explicit_epochs_are_kept_and_too_few_steps_are_warned_about():
    spec = spec_without(epochs=2)
    resolved, notes = resolve_training(spec, 160)  # 10 steps an epoch, 20 in all
    assert resolved.training.epochs == 2
    (note,) = notes
    assert "20 steps in all" in note and str(DEFAULTS["random"].min_steps) in note and "raise training.epochs" in note


def test_given_values_enough_steps_nothing_is_said():
    spec = spec_without(epochs=DEFAULTS["random"].min_steps)  # min_steps epochs of one step or more
    resolved, notes = resolve_training(spec, 16)
    assert resolved == spec and notes == []


def test_before_the_data_is_loaded_the_epochs_wait_for_the_row_count():
    resolved, notes = resolve_training(spec_without("learning_rate", "epochs"), None)
    assert resolved.training.epochs is None and resolved.training.learning_rate == DEFAULTS["random"].learning_rate
    assert any("once the data is loaded" in note for note in notes)
