"""The checks a stranger's raw tabular files meet before anything trains (issue 16): numbers read
as classes, missing numeric features (refused, imputed or dropped), CSV options (delimiter,
header, missing-value markers, spaces), messages that name the right file and suggest the fix
(did-you-mean, label_map, plain words for a wrong type), a label's copy among the features, and
the per-task summary of `polytask validate`. Every case writes real files and reads them the way
`polytask validate` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from polytask.cli import app
from polytask.data import check_frames, load_datasets, prepare_data, summarise
from polytask.errors import StudyError, closest, listing
from polytask.spec import parse_spec
from polytask.training.model import build_encoder

N = 120


def people(count: int = N, seed: int = 0) -> pd.DataFrame:
    """A census-like table: a numeric feature, two categorical ones, a class label, a score."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, count)
    return pd.DataFrame({
        "age": age.astype(float),
        "sex": rng.choice(["Female", "Male"], count),
        "workclass": rng.choice(["Private", "State-gov", "Self-emp"], count),
        "income": np.where(rng.random(count) < 0.3, ">50K", "<=50K"),
        "score": np.round(age * 0.1 + rng.normal(size=count), 3),
    })


def write(folder: Path, **frames: pd.DataFrame) -> dict[str, str]:
    """Each split's frame as a CSV file in ``folder``; the source's file fields."""
    paths = {}
    for split, frame in frames.items():
        paths[split] = str(folder / f"{split}.csv")
        frame.to_csv(paths[split], index=False)
    return paths


def study(source: dict, tasks: list[dict] | None = None, **data) -> dict:
    return {
        "name": "checks",
        "data": {"source": {"kind": "files", **source}, "categorical_columns": ["sex", "workclass"], "numeric_columns": ["age"], "split": {"test": 0}, **data},
        "tasks": tasks or [{"name": "income", "label_column": "income"}, {"name": "score", "type": "regression", "label_column": "score"}],
        "encoder": {"kind": "tabular", "hidden": [8]},
        "candidates": [{"weighting": "equal"}],
    }


def problems(raw: dict) -> list[str]:
    """Every problem `polytask validate` would print, spec and data."""
    try:
        spec = parse_spec(raw)
        return [str(p) for p in check_frames(spec, load_datasets(spec))]
    except StudyError as exc:
        return [str(p) for p in exc.problems]


def validate(tmp_path: Path, raw: dict) -> tuple[int, str, str]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, " ".join(result.stderr.split()), result.stdout


# --------------------------------------------------------------------------- the listing helper


def test_a_listing_shows_at_most_ten_values():
    assert listing(["a", "b"]) == "'a', 'b'"
    assert listing([f"v{k}" for k in range(2000)]) == "'v0', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v8', 'v9', … and 1,990 more"
    assert listing(["age", "sex"], quote=False) == "age, sex"
    assert listing(range(12), limit=3, quote=False) == "0, 1, 2, … and 9 more"


def test_closest_prefers_a_match_but_for_case():
    assert closest("Sex", ["age", "sex", "six"]) == "sex"
    assert closest("incme", ["income", "age"]) == "income"
    assert closest("zzz", ["income", "age"]) is None


# --------------------------------------------------------------------------- numbers read as classes


def test_a_numeric_label_with_many_values_is_not_a_classification(tmp_path):
    train = people(2000).assign(decile=np.arange(2000) % 1000)
    test = people(200, seed=1).assign(decile=np.arange(1000, 1200))  # values the train split lacks
    raw = study(write(tmp_path, train=train, validation=train, test=test), [{"name": "decile", "label_column": "decile"}])
    expected = (
        "tasks[0].type: column 'decile' holds 1,000 distinct numbers (0 … 999) in the train split, too many to be classes of a classification task; "
        "if it is a quantity set tasks[0].type: regression, and if these are really classes list them in tasks[0].classes"
    )
    assert problems(raw) == [expected]
    code, message, _ = validate(tmp_path, raw)
    assert code == 2 and expected in message
    assert len(message) < 600  # no list of a thousand values, once or twice
    raw["tasks"][0]["type"] = "regression"
    assert problems(raw) == []


def test_a_multilabel_column_of_many_numbers_is_refused(tmp_path):
    train = people().assign(codes=[f"{k}|{k + 100}" for k in range(N)])
    raw = study(write(tmp_path, train=train, validation=train), [{"name": "codes", "type": "multilabel", "label_column": "codes"}])
    assert problems(raw) == [
        "tasks[0].type: column 'codes' holds 220 distinct numbers (0 … 219) in the train split, too many to be classes of a multilabel task; "
        "if these are really classes list them in tasks[0].classes"
    ]


def test_fifty_numbers_or_declared_classes_are_classes(tmp_path):
    train = people().assign(grade=np.arange(N) % 50)
    raw = study(write(tmp_path, train=train, validation=train), [{"name": "grade", "label_column": "grade"}])
    assert problems(raw) == []
    train = people().assign(grade=np.arange(N) % 60)
    raw = study(write(tmp_path, train=train, validation=train), [{"name": "grade", "label_column": "grade", "classes": [str(k) for k in range(60)]}])
    assert problems(raw) == []


def test_a_long_class_list_is_cut_to_ten_and_said_once(tmp_path):
    train = people(400).assign(city=[f"c{k:03d}" for k in np.arange(400) % 200])
    validation = train.assign(city="atlantis")
    test = train.assign(city="lemuria")
    raw = study(write(tmp_path, train=train, validation=validation, test=test), [{"name": "city", "label_column": "city"}])
    found = problems(raw)
    assert len(found) == 2
    assert found[0] == (
        "data (data.source: files validation.csv), validation split, column 'city', row 0: label 'atlantis' is not one of the classes seen in the train split "
        "['c000', 'c001', 'c002', 'c003', 'c004', 'c005', 'c006', 'c007', 'c008', 'c009', … and 190 more] (400 such rows); fix the rows or list the label in tasks[0].classes"
    )
    assert found[1] == (
        "data (data.source: files test.csv), test split, column 'city', row 0: label 'lemuria' is not one of the classes seen in the train split, "
        "listed above (400 such rows); fix the rows or list the label in tasks[0].classes"
    )


# --------------------------------------------------------------------------- missing numeric features


def gappy(tmp_path: Path) -> dict[str, str]:
    """age missing in train rows 3 and 7 (one empty, one '?' marker) and infinite in row 9 of validation."""
    train, validation = people(), people(40, seed=1)
    train["age"] = train["age"].astype(object)
    train.loc[3, "age"] = None
    train.loc[7, "age"] = "?"
    validation.loc[9, "age"] = np.inf
    return write(tmp_path, train=train, validation=validation)


def test_a_missing_numeric_feature_is_an_error_by_default(tmp_path):
    raw = study({**gappy(tmp_path), "na_values": ["?"]})
    expected = (
        "data (data.source: files train.csv), train split, column 'age', row 3: 2 rows have no value (missing or infinite, this one first; "
        "also 1 in the validation split of files validation.csv), but 'age' is in data.numeric_columns; fill them in, or set data.missing: impute "
        "(the train median plus a missing-indicator feature) or data.missing: drop (those rows dropped from every split)"
    )
    assert problems(raw) == [expected]
    code, message, _ = validate(tmp_path, raw)
    assert code == 2 and expected in message


def test_without_the_marker_a_question_mark_is_not_a_number(tmp_path):
    found = problems(study(gappy(tmp_path)))
    assert found[0] == (
        "data (data.source: files train.csv), train split, column 'age', row 7: value '?' is not a finite number (1 such rows), but 'age' is in "
        "data.numeric_columns; if '?' means a missing value, add it to data.source.na_values (and choose data.missing); else fix the rows or list "
        "the column in data.categorical_columns"
    )


def test_impute_fills_in_the_train_median_and_adds_an_indicator(tmp_path):
    raw = study({**gappy(tmp_path), "na_values": ["?"]}, missing="impute", numeric_columns=["age", "score2"])
    train = pd.read_csv(tmp_path / "train.csv", na_values=["?"]).assign(score2=lambda f: f["score"] * 2)
    validation = pd.read_csv(tmp_path / "validation.csv").assign(score2=lambda f: f["score"] * 2)
    raw["data"]["source"] = {"kind": "files", **write(tmp_path, train=train, validation=validation)}
    raw["tasks"] = raw["tasks"][:1]
    spec = parse_spec(raw)
    datasets = load_datasets(spec)
    assert check_frames(spec, datasets) == []
    data = prepare_data(spec, datasets, None)
    ages = train["age"].to_numpy(np.float64)
    known = ages[np.isfinite(ages)]
    mean, std, median = known.mean(), known.std(), np.median(known)
    assert data.numeric_count == 3  # age, score2, and the indicator of age (score2 has no gaps)
    numeric = data.splits["train"].numeric
    assert numeric.shape == (N, 3)
    np.testing.assert_allclose(numeric[[3, 7], 0], (median - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(numeric[0, 0], (ages[0] - mean) / std, rtol=1e-5)
    assert numeric[:, 2].tolist() == [1.0 if k in (3, 7) else 0.0 for k in range(N)]
    validation_numeric = data.splits["validation"].numeric
    np.testing.assert_allclose(validation_numeric[9, 0], (median - mean) / std, rtol=1e-5)  # infinite: imputed too
    assert validation_numeric[9, 2] == 1.0 and validation_numeric[:, 2].sum() == 1.0
    encoder = build_encoder(spec, data)
    assert encoder.numeric_count == 3 and encoder.input_dim == sum(e.embedding_dim for e in encoder.embeddings) + 3


def test_drop_removes_the_rows_from_every_split_and_counts_them(tmp_path):
    raw = study({**gappy(tmp_path), "na_values": ["?"]}, missing="drop")
    spec = parse_spec(raw)
    datasets = load_datasets(spec)
    assert datasets[0].dropped == {"train": 2, "validation": 1}
    assert check_frames(spec, datasets) == []
    data = prepare_data(spec, datasets, None)
    assert len(data.splits["train"]) == N - 2 and len(data.splits["validation"]) == 39
    assert data.numeric_count == 1 and np.isfinite(data.splits["train"].numeric).all()
    assert 3 not in datasets[0].frames["train"].index and 7 not in datasets[0].frames["train"].index
    code, message, _ = validate(tmp_path, raw)
    assert code == 0 and "dropped by data.missing: drop (rows without a value in a numeric column): train 2, validation 1" in message


def test_categorical_features_keep_code_zero_for_missing(tmp_path):
    train = people()
    train.loc[5, "sex"] = None
    raw = study(write(tmp_path, train=train, validation=train))
    spec = parse_spec(raw)
    data = prepare_data(spec, load_datasets(spec), None)
    assert data.splits["train"].categorical[5, 0] == 0 and (data.splits["train"].categorical[:5, 0] > 0).all()


# --------------------------------------------------------------------------- CSV options


def test_a_semicolon_file_read_with_commas_gets_one_message(tmp_path):
    people().to_csv(tmp_path / "train.csv", sep=";", index=False)
    people(40, seed=1).to_csv(tmp_path / "validation.csv", sep=";", index=False)
    raw = study({"train": str(tmp_path / "train.csv"), "validation": str(tmp_path / "validation.csv")})
    expected = (
        "data.source.delimiter: train.csv and validation.csv read with delimiter ',' give one column, 'age;sex;workclass;income;score', "
        "which looks like fields separated by ';'; set data.source.delimiter: ';'"
    )
    assert problems(raw) == [expected]
    code, message, _ = validate(tmp_path, raw)
    assert code == 2 and message.startswith("error: 1 problem") and expected in message
    raw["data"]["source"]["delimiter"] = ";"
    assert problems(raw) == []


def test_tsv_files_are_read_with_tabs(tmp_path):
    people().to_csv(tmp_path / "train.tsv", sep="\t", index=False)
    spec = parse_spec(study({"train": str(tmp_path / "train.tsv")}, split={"test": 0, "validation": 0.2}))
    datasets = load_datasets(spec)
    assert list(datasets[0].frames["train"].columns) == ["age", "sex", "workclass", "income", "score"]
    assert check_frames(spec, datasets) == []


def test_a_file_without_a_header_takes_column_names(tmp_path):
    people().to_csv(tmp_path / "train.data", index=False, header=False)
    names = ["age", "sex", "workclass", "income", "score"]
    raw = study({"train": str(tmp_path / "train.data"), "format": "csv", "header": False, "column_names": names}, split={"test": 0, "validation": 0.2})
    spec = parse_spec(raw)
    frames = load_datasets(spec)[0].frames
    assert sum(len(f) for f in frames.values()) == N  # the first line is a row, not a header
    assert list(frames["train"].columns) == names and frames["train"]["age"].dtype.kind == "f"
    raw["data"]["source"]["column_names"] = names[:4]
    assert problems(raw) == ["data.source.train: train.data has 5 fields per line, but column_names lists 4 names; give one name per field"]


def test_spaces_and_missing_markers_are_cleaned(tmp_path):
    (tmp_path / "train.csv").write_text("age, sex ,workclass,income,score\n39, Male, State-gov, <=50K, 1.5\n50, Female, ?, >50K , 2\n 28 ,Male,Private,<=50K,?\n")
    spec = parse_spec(study({"train": str(tmp_path / "train.csv"), "na_values": ["?"]}, split={"test": 0, "validation": 0.3}))
    frame = pd.concat(load_datasets(spec)[0].frames.values()).sort_index()
    assert list(frame.columns) == ["age", "sex", "workclass", "income", "score"]
    assert frame["sex"].tolist() == ["Male", "Female", "Male"] and frame["income"].tolist() == ["<=50K", ">50K", "<=50K"]
    assert frame["age"].tolist() == [39, 50, 28] and frame["age"].dtype.kind in "iuf"
    assert frame["workclass"].isna().tolist() == [False, True, False] and frame["score"].isna().tolist() == [False, False, True]
    raw = study({"train": str(tmp_path / "train.csv"), "strip_spaces": False}, split={"test": 0, "validation": 0.3})
    frame = pd.concat(load_datasets(parse_spec(raw))[0].frames.values()).sort_index()
    assert " sex " in frame.columns and frame["income"].tolist()[1] == " >50K "


def test_markers_and_spaces_apply_to_json_lines_too(tmp_path):
    rows = people(20).assign(sex=lambda f: " " + f["sex"] + " ")
    rows["age"] = rows["age"].astype(object)
    rows.loc[4, "age"] = "n/a"
    rows.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    spec = parse_spec(study({"train": str(tmp_path / "train.jsonl"), "na_values": ["n/a"]}, split={"test": 0, "validation": 0.2}, missing="impute"))
    datasets = load_datasets(spec)
    frame = pd.concat(datasets[0].frames.values()).sort_index()
    assert set(frame["sex"]) == {"Female", "Male"} and frame["age"].isna().tolist() == [k == 4 for k in range(20)]
    assert check_frames(spec, datasets) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ({"train": "t.jsonl", "delimiter": ";"}, ["data.source.delimiter: is an option of CSV files, and t.jsonl is read as json; remove it (na_values and strip_spaces apply to every format)"]),
        ({"train": "t.parquet", "header": False, "column_names": ["a"]}, [
            "data.source.header: is an option of CSV files, and t.parquet is read as parquet; remove it (na_values and strip_spaces apply to every format)",
            "data.source.column_names: is an option of CSV files, and t.parquet is read as parquet; remove it (na_values and strip_spaces apply to every format)",
        ]),
        ({"train": "t.csv", "column_names": ["a", "b"]}, ["data.source.column_names: names the columns of a file without a header row, but data.source.header is true; set data.source.header: false, or remove column_names to read the names from the first line"]),
        ({"train": "t.csv", "header": False}, ["data.source.header: false needs data.source.column_names: [name of the first column, ...]; list one name per field of a line"]),
        ({"train": "t.csv", "header": False, "column_names": ["a", "b", "a"]}, ["data.source.column_names: repeats 'a'; give each column its own name"]),
    ],
)
def test_csv_options_are_checked_in_the_spec(source, expected):
    with pytest.raises(StudyError) as info:
        parse_spec(study(source))
    assert [str(p) for p in info.value.problems] == expected


# --------------------------------------------------------------------------- messages that help


def test_a_misspelled_column_gets_a_did_you_mean(tmp_path):
    raw = study(write(tmp_path, train=people(), validation=people(40, seed=1)), categorical_columns=["Sex"])
    assert problems(raw) == [
        "data.categorical_columns[0]: column 'Sex' is not in the train split of data.source: files train.csv (columns: age, sex, workclass, income, score); "
        "did you mean 'sex'? If not, remove it from data.categorical_columns or add it to the data (the validation split lacks it too)"
    ]


def test_a_column_listing_is_cut_to_ten(tmp_path):
    wide = people().assign(**{f"extra_{k:02d}": k for k in range(20)})
    raw = study(write(tmp_path, train=wide, validation=wide), numeric_columns=["agee"])
    assert problems(raw) == [
        "data.numeric_columns[0]: column 'agee' is not in the train split of data.source: files train.csv (columns: age, sex, workclass, income, score, "
        "extra_00, extra_01, extra_02, extra_03, extra_04, … and 15 more); did you mean 'age'? If not, remove it from data.numeric_columns or add it to the data "
        "(the validation split lacks it too)"
    ]


def test_a_problem_of_the_test_split_names_the_test_file(tmp_path):
    test = people(40, seed=2)
    test["score"] = test["score"].astype(object)
    test.loc[4, "score"] = "lots"
    raw = study(write(tmp_path, train=people(), validation=people(40, seed=1), test=test))
    assert problems(raw) == [
        "data (data.source: files test.csv), test split, column 'score', row 4: value 'lots' is not a finite number (1 such rows), but score is a regression task; "
        "fix the rows, or leave them empty where the row has no target"
    ]


def test_test_labels_with_a_trailing_dot_suggest_a_label_map(tmp_path):
    test = people(40, seed=2)
    test["income"] = test["income"] + "."
    raw = study(write(tmp_path, train=people(), validation=people(40, seed=1), test=test))
    first = test["income"][0]
    mapping = {first: first[:-1], ({">50K.", "<=50K."} - {first}).pop(): ({">50K", "<=50K"} - {first[:-1]}).pop()}
    expected = (
        f"data (data.source: files test.csv), test split, column 'income', row 0: label {first!r} is not one of the classes seen in the train split "
        f"['<=50K', '>50K'] (40 such rows in the test split of files test.csv); it looks like {first[:-1]!r} with a trailing '.': "
        f"map it with tasks[0].label_map: {mapping}"
    )
    assert problems(raw) == [expected]
    code, message, _ = validate(tmp_path, raw)
    assert code == 2 and expected in message
    raw["tasks"][0]["label_map"] = {">50K.": ">50K", "<=50K.": "<=50K"}
    spec = parse_spec(raw)
    datasets = load_datasets(spec)
    assert check_frames(spec, datasets) == []
    data = prepare_data(spec, datasets, None)
    assert data.tasks[0].classes == ["<=50K", ">50K"]
    assert data.splits["test"].labels["income"].tolist() == [int(v == ">50K.") for v in test["income"]]


@pytest.mark.parametrize("spelling, how", [(" yes ", "with spaces around it"), ("YES", "in another case"), ("'Yes'.", "but for case, spaces or punctuation")])
def test_other_near_misses_suggest_a_label_map(tmp_path, spelling, how):
    train = people().assign(ok=np.where(np.arange(N) % 2, "yes", "no"))
    validation = people(10, seed=1).assign(ok=[spelling] + ["no"] * 9)
    raw = study(write(tmp_path, train=train, validation=validation), [{"name": "ok", "label_column": "ok"}])
    raw["data"]["source"]["strip_spaces"] = False  # keep " yes " as it is written
    found = problems(raw)
    assert len(found) == 1 and f"it looks like 'yes' {how}: map it with tasks[0].label_map: {{{spelling!r}: 'yes'}}" in found[0]


def test_a_multilabel_label_map_renames_members(tmp_path):
    train = people().assign(tags=np.where(np.arange(N) % 2, "red|blue", "blue"))
    validation = people(10, seed=1).assign(tags="Red|blue")
    tasks = [{"name": "tags", "type": "multilabel", "label_column": "tags"}]
    raw = study(write(tmp_path, train=train, validation=validation), tasks)
    found = problems(raw)
    assert len(found) == 1 and "label 'Red' is not one of the classes seen in the train split ['blue', 'red'] (10 such rows in the validation split of files validation.csv); it looks like 'red' in another case: map it with tasks[0].label_map: {'Red': 'red'}" in found[0]
    raw["tasks"][0]["label_map"] = {"Red": "red"}
    spec = parse_spec(raw)
    data = prepare_data(spec, load_datasets(spec), None)
    assert data.splits["validation"].labels["tags"].tolist() == [[1, 1]] * 10


def test_label_map_is_for_class_labels_only():
    with pytest.raises(StudyError) as info:
        parse_spec(study({"train": "t.csv"}, [{"name": "score", "type": "regression", "label_column": "score", "label_map": {"a": "b"}}]))
    assert [str(p) for p in info.value.problems] == ["tasks[0].label_map: renames class labels, and a regression task's labels are numbers; remove label_map"]


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"sharing": "mmoe"}, "sharing: 'mmoe' is a string, but sharing takes a mapping of fields: write `sharing: {name: mmoe}`"),
        ({"candidates": [{"weighting": "mmoe"}]}, "candidates[0].weighting: mmoe is a sharing strategy, not a weighting: write `sharing: {name: mmoe}`"),
        ({"sharing": {"name": "pcgrad"}}, "sharing.name: pcgrad is a weighting strategy, not a sharing: write `weighting: pcgrad` in a candidate"),
        ({"candidates": [{"weighting": "equal", "sharing": "ple"}]}, "candidates[0].sharing: 'ple' is a string, but sharing takes a mapping of fields: write `sharing: {name: ple}`"),
        ({"candidates": [{"name": "tuned", "weighting": "scalarization", "search": 8}]}, "candidates[0].search: 8 is an integer, but search takes a mapping of fields: write `search: {trials: 8}`"),
        ({"seeds": 3}, "seeds: 3 is an integer, but seeds takes a list: write `seeds: [3]`"),
        ({"seeds": ["a"]}, "seeds[0]: 'a' is a string, but each item of seeds takes an integer"),
        ({"candidates": "equal"}, "candidates: 'equal' is a string, but candidates takes a list of mappings"),
        ({"training": {"epochs": "three"}}, "training.epochs: 'three' is a string, but epochs takes an integer"),
        ({"training": {"epochs": 2.5}}, "training.epochs: 2.5 is a number with a fractional part, but epochs takes an integer"),
        ({"training": {"learning_rate": "fast"}}, "training.learning_rate: 'fast' is a string, but learning_rate takes a number"),
        ({"training": {"evaluate_test": "maybe"}}, "training.evaluate_test: 'maybe' is a string, but evaluate_test takes true or false"),
        ({"training": {"early_stopping": 3}}, "training.early_stopping: 3 is an integer, but early_stopping takes a mapping of fields: write `early_stopping: {patience: 3}`"),
        ({"description": 5}, "description: 5 is an integer, but description takes a string: write `description: '5'`"),
        ({"encoder": "tabular"}, "encoder: 'tabular' is a string, but encoder takes a mapping of fields: write `encoder: {kind: tabular}`"),
        ({"resources": {"cpu": None}}, "resources.cpu: is empty (null), but cpu takes a number"),
    ],
)
def test_a_wrong_type_is_said_in_plain_words(change, expected):
    raw = study({"train": "t.csv"})
    raw.update(change)
    with pytest.raises(StudyError) as info:
        parse_spec(raw)
    assert [str(p) for p in info.value.problems] == [expected]


def test_a_wrong_type_exits_2_through_the_cli(tmp_path):
    raw = study(write(tmp_path, train=people(), validation=people(40, seed=1)))
    raw["sharing"] = "mmoe"
    code, message, _ = validate(tmp_path, raw)
    assert code == 2 and "sharing: 'mmoe' is a string, but sharing takes a mapping of fields: write `sharing: {name: mmoe}`" in message


# --------------------------------------------------------------------------- a label among the features


def test_a_repeated_header_lets_no_copy_of_the_label_in(tmp_path):
    train = people()
    (tmp_path / "train.csv").write_text(train.assign(score2=train["score"]).to_csv(index=False).replace("score2", "score", 1))
    assert pd.read_csv(tmp_path / "train.csv").columns[-1] == "score.1"
    raw = study({"train": str(tmp_path / "train.csv")}, numeric_columns=["age", "score.1"], split={"test": 0, "validation": 0.2})
    expected = (
        "data.numeric_columns[1]: 'score.1' looks like a second copy of 'score' (a repeated header): it is identical to the label column 'score' "
        "of tasks[1] (score) on the labelled train rows, so it gives the label away; remove it from data.numeric_columns"
    )
    assert problems(raw) == [expected]
    code, message, _ = validate(tmp_path, raw)
    assert code == 2 and expected in message


def test_a_relabelled_class_label_is_not_a_feature(tmp_path):
    train = people().assign(rich=lambda f: np.where(f["income"] == ">50K", "yes", "no"))
    train.loc[2, "income"] = None  # an unlabelled row may differ
    train.loc[2, "rich"] = "maybe"
    raw = study(write(tmp_path, train=train, validation=train), categorical_columns=["sex", "rich"])
    assert problems(raw) == [
        "data.categorical_columns[1]: 'rich' is a one-to-one relabelling (each of its 2 values goes with one label) of the label column 'income' of tasks[0] (income) "
        "on the labelled train rows, so it gives the label away; remove it from data.categorical_columns"
    ]
    few = train.iloc[:12]  # on a dozen rows a two-valued column lines up with the label by chance
    raw = study(write(tmp_path, train=few, validation=few), categorical_columns=["sex", "rich"])
    assert problems(raw) == []


def test_a_numeric_feature_this_correlated_with_a_target_is_a_copy(tmp_path):
    train = people().assign(score_f=lambda f: f["score"] * 9 / 5 + 32)
    raw = study(write(tmp_path, train=train, validation=train), numeric_columns=["age", "score_f"])
    found = problems(raw)
    assert found == [
        "data.numeric_columns[1]: 'score_f' has correlation 1.00000 with the label column 'score' of tasks[1] (score) on the labelled train rows, "
        "so it gives the label away; remove it from data.numeric_columns"
    ]
    noisy = train.assign(score_f=train["score"] + np.random.default_rng(0).normal(size=N) * 0.5)
    raw = study(write(tmp_path, train=noisy, validation=noisy), numeric_columns=["age", "score_f"])
    assert problems(raw) == []  # informative, not a copy


# --------------------------------------------------------------------------- the validate summary


def test_the_summary_says_what_each_task_holds(tmp_path):
    train, validation = people(), people(40, seed=1)
    train.loc[:11, "income"] = None  # 12 of 120 rows without a label
    validation.loc[:3, "score"] = None
    raw = study({**write(tmp_path, train=train, validation=validation)})
    spec = parse_spec(raw)
    summary = summarise(spec, load_datasets(spec))
    counts = train["income"].value_counts()
    assert summary["datasets"] == [{"source": "data.source: files train.csv", "rows": {"train": N, "validation": 40}, "dropped": {}}]
    income, score = summary["tasks"]
    assert income == {
        "index": 0, "name": "income", "type": "classification", "column": "income", "source": "data.source: files train.csv", "classes": 2,
        "top": [[counts.index[0], int(counts.iloc[0])], [counts.index[1], int(counts.iloc[1])]], "missing": {"train": 0.1, "validation": 0.0},
    }
    assert score["range"] == pytest.approx([train["score"].min(), train["score"].median(), train["score"].max()])
    assert score["missing"] == {"train": 0.0, "validation": 0.1}
    code, message, stdout = validate(tmp_path, raw)
    assert code == 0 and yaml.safe_load(stdout)["data"]["missing"] == "error"
    assert (f"tasks[0] income (classification, column 'income'): 2 classes, most frequent in train: {counts.index[0]!r} {counts.iloc[0]}, "
            f"{counts.index[1]!r} {counts.iloc[1]}; labels missing: train 10%, validation 0%") in message
    assert f"tasks[1] score (regression, column 'score'): targets min {train['score'].min():.4g}, median {train['score'].median():.4g}, max {train['score'].max():.4g}; labels missing: train 0%, validation 10%" in message


def test_the_summary_shows_the_five_most_frequent_classes(tmp_path):
    train = people(210).assign(colour=[c for k, c in enumerate("abcdefg") for _ in range(30 - 2 * k)] + ["a"] * 42)
    raw = study(write(tmp_path, train=train, validation=train), [{"name": "colour", "label_column": "colour"}])
    spec = parse_spec(raw)
    task = summarise(spec, load_datasets(spec))["tasks"][0]
    assert task["classes"] == 7 and task["top"] == [["a", 72], ["b", 28], ["c", 26], ["d", 24], ["e", 22]]


# --------------------------------------------------------------------------- a raw public table end to end


ADULT_COLUMNS = ["age", "workclass", "sex", "hours", "income"]


def adult_like(folder: Path) -> dict:
    """Files shaped like UCI Adult: no header, ', ' between fields, '?' for missing, a test
    file opening with a line that is not data and labels ending in '.'."""
    rng = np.random.default_rng(3)

    def lines(count: int, dot: str) -> list[str]:
        out = []
        for k in range(count):
            age = "?" if k % 17 == 5 else str(rng.integers(18, 90))
            out.append(", ".join([age, str(rng.choice(["Private", "State-gov", "?"])), str(rng.choice(["Male", "Female"])), str(rng.integers(10, 60)), str(rng.choice(["<=50K", ">50K"])) + dot]))
        return out

    (folder / "adult.data").write_text("\n".join(lines(200, "")) + "\n")
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(lines(60, ".")) + "\n")
    source = {"train": str(folder / "adult.data"), "test": str(folder / "adult.test"), "format": "csv", "header": False, "column_names": ADULT_COLUMNS, "na_values": ["?"]}
    return study(source, [{"name": "income", "label_column": "income"}], categorical_columns=["workclass", "sex"], numeric_columns=["age", "hours"], split={"validation": 0.1})


def test_a_raw_table_reads_with_its_file_options(tmp_path):
    raw = adult_like(tmp_path)
    found = problems(raw)
    assert found == [
        f"data.source.test: cannot read {tmp_path / 'adult.test'} as csv: Error tokenizing data. C error: Expected 1 fields in line 2, saw 5; "
        "if the first line is not data, set data.source.comment to the character it starts with, or remove it"
    ]
    raw["data"]["source"]["comment"] = "|"
    found = problems(raw)
    assert len(found) == 2
    assert found[0].startswith("data (data.source: files adult.data), train split, column 'age', row 5: ") and "data.missing: impute" in found[0]
    assert "(60 such rows in the test split of files adult.test); it looks like " in found[1] and "tasks[0].label_map: {" in found[1]
    raw["data"]["missing"] = "impute"
    raw["tasks"][0]["label_map"] = {">50K.": ">50K", "<=50K.": "<=50K"}
    spec = parse_spec(raw)
    datasets = load_datasets(spec)
    assert check_frames(spec, datasets) == []
    frames = datasets[0].frames
    assert {k: len(v) for k, v in frames.items()} == {"train": 180, "validation": 20, "test": 60}
    assert set(frames["test"]["income"]) == {"<=50K", ">50K"} and frames["train"]["workclass"].isna().any()
    data = prepare_data(spec, datasets, None)
    assert data.numeric_count == 3  # age, hours and age's missing-indicator
    assert data.categorical_sizes == [3, 3]  # Private, State-gov (+ 0: missing); Female, Male (+ 0)


def test_a_label_map_may_name_numeric_labels(tmp_path):
    train = people().assign(rich=lambda f: (f["income"] == ">50K").astype(int))
    raw = study(write(tmp_path, train=train, validation=train), [{"name": "rich", "label_column": "rich", "label_map": {0: "no", 1: "yes"}}])
    spec = parse_spec(raw)
    assert spec.tasks[0].label_map == {"0": "no", "1": "yes"}
    data = prepare_data(spec, load_datasets(spec), None)
    assert data.tasks[0].classes == ["no", "yes"] and data.splits["train"].labels["rich"].tolist() == train["rich"].tolist()


def test_a_file_without_a_header_row_read_with_one_is_told_so(tmp_path):
    raw = adult_like(tmp_path)
    raw["data"]["source"].update(header=True, column_names=None, comment="|")
    found = problems(raw)
    first_line = (tmp_path / "adult.data").read_text().splitlines()[0].split(",")
    assert found[0] == (
        f"data.source.header: the first line of files adult.data looks like a row of data, not column names ({', '.join(v.strip() for v in first_line)}): "
        "set data.source.header: false and name the columns in data.source.column_names"
    )
    assert all("is not in the train split" in p for p in found[1:]) and len(found) == 1 + 5  # age, hours, workclass, sex, income


def test_named_columns_that_are_missing_are_not_taken_for_a_missing_header(tmp_path):
    raw = study(write(tmp_path, train=people(), validation=people(seed=1)), [{"name": "income", "label_column": "Income"}])
    assert not any(p.startswith("data.source.header") for p in problems(raw))
