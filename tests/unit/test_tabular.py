"""Tabular data and the tabular encoder: feature codes and standardisation from the train split,
bad data and bad specs caught before training, the encoder as a Backbone under the sharing
conformance checks, and a whole trial that learns two feature rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from polytask.data import check_frames, load_splits, prepare_data
from polytask.data.batches import collate, eval_batches
from polytask.encoders import TabularEncoder, embedding_size
from polytask.errors import StudyError
from polytask.spec import parse_spec
from polytask.strategies.sharing import HardSharing
from polytask.training.model import build_encoder
from polytask.training.train import TrialPlan, train
from tests.sharing_support import TASKS, check_all
from tests.support import Recorder


def tabular_study(**data) -> dict:
    return {
        "name": "tab",
        "data": {"source": {"kind": "files", "train": "train.csv", "validation": "validation.csv"}, "categorical_columns": ["color", "code"], "numeric_columns": ["n"], **data},
        "tasks": [{"name": "first", "label_column": "y"}, {"name": "second", "label_column": "z"}],
        "encoder": {"kind": "tabular", "hidden": [8]},
        "candidates": [{"weighting": "equal"}],
    }


def small_frames() -> dict[str, pd.DataFrame]:
    train = pd.DataFrame({
        "color": ["red", "blue", "red", "green"],
        "code": [2, 1, 1, 2],
        "n": [1.0, 3.0, 4.0, 5.0],
        "y": ["a", "b", "a", "b"],
        "z": ["u", "u", "v", "v"],
    })
    validation = pd.DataFrame({
        "color": ["blue", "purple", None],  # purple: not in train; None: missing
        "code": [1.0, None, 2.0],  # floats here (a missing value), ints in train: the same codes
        "n": [3.0, 6.0, 7.0],  # a missing value is an error (data.missing; see test_data_checks.py)
        "y": ["a", "b", "a"],
        "z": ["u", "v", "u"],
    })
    return {"train": train, "validation": validation}


def prepared(frames=None, **data):
    spec = parse_spec(tabular_study(**data))
    frames = frames or small_frames()
    assert check_frames(spec, frames) == []
    return spec, prepare_data(spec, frames, None)


def test_codes_come_from_the_sorted_train_values_zero_for_missing_or_unseen():
    _, data = prepared()
    assert data.categorical_sizes == [4, 3]  # blue, green, red + 0; "1", "2" + 0
    assert data.splits["train"].categorical.tolist() == [[3, 2], [1, 1], [3, 1], [2, 2]]
    assert data.splits["validation"].categorical.tolist() == [[1, 1], [0, 0], [0, 2]]
    assert data.splits["train"].categorical.dtype == np.int64
    assert data.splits["train"].input_ids is None and data.vocab_size == 0


def test_numbers_are_standardised_with_train_statistics():
    _, data = prepared()
    train = np.array([1.0, 3.0, 4.0, 5.0])
    mean, std = train.mean(), train.std()
    assert data.numeric_count == 1
    assert data.splits["train"].numeric.dtype == np.float32
    np.testing.assert_allclose(data.splits["train"].numeric[:, 0], (train - mean) / std, rtol=1e-6)
    np.testing.assert_allclose(data.splits["validation"].numeric[:, 0], (np.array([3.0, 6.0, 7.0]) - mean) / std, rtol=1e-6)


def test_batches_of_tabular_rows():
    _, data = prepared()
    split = data.splits["validation"]
    assert len(split) == 3
    batch = collate(split, np.array([2, 0]))
    assert set(batch) == {"categorical", "numeric", "labels/first", "labels/second"}
    assert batch["categorical"].dtype == torch.int64 and batch["categorical"].tolist() == [[0, 2], [1, 1]]
    assert batch["numeric"].shape == (2, 1) and batch["labels/first"].tolist() == [0, 0]
    assert [rows.tolist() for rows, _ in eval_batches(split, 2)] == [[0, 1], [2]]


def test_a_missing_feature_column_names_split_and_column():
    frames = small_frames()
    frames["validation"] = frames["validation"].drop(columns="code")
    problems = [str(p) for p in check_frames(parse_spec(tabular_study()), frames)]
    assert len(problems) == 1
    assert problems[0] == "data.categorical_columns[1]: column 'code' is not in the validation split of data.source: files validation.csv (columns: color, n, y, z); remove it from data.categorical_columns or add it to the data"


def test_a_non_number_in_a_numeric_column_names_split_column_row_and_value():
    frames = small_frames()
    frames["validation"]["n"] = ["3.5", "6", "seven"]  # "3.5" is a number
    problems = [str(p) for p in check_frames(parse_spec(tabular_study()), frames)]
    assert problems == [
        "data (data.source: files validation.csv), validation split, column 'n', row 2: value 'seven' is not a finite number (1 such rows), but 'n' is in data.numeric_columns; "
        "fix the rows or list the column in data.categorical_columns"
    ]


def test_a_text_column_is_not_required_of_tabular_data():
    spec = parse_spec(tabular_study())
    assert "text" not in small_frames()["train"] and spec.data.text_column == "text"
    assert check_frames(spec, small_frames()) == []


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"categorical_columns": [], "numeric_columns": []}, "data.categorical_columns: a tabular encoder needs at least one feature column"),
        ({"categorical_columns": ["color", "code", "color"]}, "data.categorical_columns[2]: 'color' repeats data.categorical_columns[0]; each must be unique"),
        ({"numeric_columns": ["n", "code"]}, "data.numeric_columns[1]: 'code' is also data.categorical_columns[1]; a column is either categorical or numeric"),
        ({"numeric_columns": ["n", "y"]}, "data.numeric_columns[1]: 'y' is the label column of tasks[0] (first); a feature must not be a label"),
    ],
)
def test_bad_feature_columns_are_spec_errors(data, expected):
    with pytest.raises(StudyError) as info:
        parse_spec(tabular_study(**data))
    assert [str(p) for p in info.value.problems][0].startswith(expected)


def test_feature_columns_with_a_text_encoder_are_an_error():
    raw = tabular_study()
    raw["encoder"] = {"kind": "random"}
    with pytest.raises(StudyError) as info:
        parse_spec(raw)
    assert [str(p) for p in info.value.problems] == [
        f"data.{field}: {columns} are read only by a tabular encoder, and encoder kind 'random' reads data.text_column; remove data.{field} or set encoder.kind: tabular"
        for field, columns in (("categorical_columns", ["color", "code"]), ("numeric_columns", ["n"]))
    ]


def test_embedding_widths_follow_the_rule_of_thumb_or_the_spec():
    assert [embedding_size(n) for n in (2, 3, 52, 10**6)] == [2, 3, 15, 600]
    spec, data = prepared()
    encoder = build_encoder(spec, data)
    assert [e.embedding_dim for e in encoder.embeddings] == [3, 3]
    assert (encoder.input_dim, encoder.output_dim, encoder.num_stages) == (7, 8, 1)
    raw = tabular_study()
    raw["encoder"] = {"kind": "tabular", "embedding_dim": 5}
    encoder = build_encoder(parse_spec(raw), data)
    assert (encoder.input_dim, encoder.output_dim, encoder.num_stages) == (11, 11, 0)


def tabular_batch(hidden=(6, 4)) -> tuple[TabularEncoder, dict]:
    _, data = prepared()
    torch.manual_seed(0)
    return TabularEncoder(data.categorical_sizes, data.numeric_count, hidden=hidden), collate(data.splits["validation"], np.arange(3))


@pytest.mark.parametrize("hidden", [(), (6, 4)])
def test_the_encoder_is_stem_stages_readout(hidden):
    encoder, batch = tabular_batch(hidden)
    hidden_state = encoder.stem(batch)
    assert hidden_state.shape == (3, encoder.input_dim)
    for index in range(encoder.num_stages):
        hidden_state = encoder.stage(index, hidden_state, batch)
    staged = encoder.readout(hidden_state, batch)
    assert staged.shape == (3, encoder.output_dim)
    assert torch.equal(staged, encoder(batch))


@pytest.mark.parametrize("hidden", [(), (6, 4)])
def test_hard_sharing_over_the_tabular_encoder_conforms(hidden):
    encoder, batch = tabular_batch(hidden)
    check_all(HardSharing(TASKS, encoder, hidden=[4]), batch)


def rule_rows(count: int, seed: int) -> pd.DataFrame:
    """first: whether x > 0 (a numeric rule); second: whether color is red or yellow (a
    categorical rule); noise: a column the labels ignore."""
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue", "yellow"], count)
    x = rng.normal(size=count) * 10 + 3
    return pd.DataFrame({
        "color": color,
        "noise": rng.choice(["p", "q", "r"], count),
        "x": x,
        "y": np.where(x > 3, "high", "low"),
        "z": np.where(np.isin(color, ["red", "yellow"]), "warm", "cold"),
    })


def test_a_trial_learns_both_feature_rules(tmp_path):
    for split, (count, seed) in {"train": (600, 1), "validation": (200, 2), "test": (200, 3)}.items():
        rule_rows(count, seed).to_csv(tmp_path / f"{split}.csv", index=False)
    raw = tabular_study(
        source={"kind": "files", **{s: str(tmp_path / f"{s}.csv") for s in ("train", "validation", "test")}},
        categorical_columns=["color", "noise"],
        numeric_columns=["x"],
    )
    raw["encoder"] = {"kind": "tabular", "hidden": [16]}
    raw["training"] = {"epochs": 2, "steps_per_epoch": 40, "batch_size": 32, "learning_rate": 1e-2, "warmup_ratio": 0.0}
    spec = parse_spec(raw)
    frames = load_splits(spec.data)
    assert check_frames(spec, frames) == []
    data = prepare_data(spec, frames, None)
    final = train(TrialPlan(spec, "equal", seed=0), data, Recorder()).metrics
    validation = frames["validation"]
    for task, column in (("first", "y"), ("second", "z")):
        majority = validation[column].value_counts(normalize=True).max()
        assert majority < 0.6
        assert final[f"val/{task}/accuracy"] > 0.9, (task, final[f"val/{task}/accuracy"])
    assert "test/first/accuracy" in final


def test_study_prepare_needs_no_tokenizer(tmp_path):
    from polytask.study.run import prepare

    for split, frame in small_frames().items():
        frame.to_csv(tmp_path / f"{split}.csv", index=False)
    raw = tabular_study(source={"kind": "files", "train": str(tmp_path / "train.csv"), "validation": str(tmp_path / "validation.csv")}, split={"test": 0})
    data = prepare(parse_spec(raw))
    assert data.categorical_sizes == [4, 3] and data.splits["validation"].categorical.tolist() == [[1, 1], [0, 0], [0, 2]]
