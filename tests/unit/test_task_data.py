"""Every task type through the data layer (labels encoded, sub-words aligned, missing labels
masked), one dataset per task, the tokenisation cache, and bad data caught before training
with the dataset, split, column and row named (CLI exit code 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from polytask.cli import app
from polytask.data import check_frames, load_datasets, prepare_data, train_texts
from polytask.data.batches import collate
from polytask.data.text import tokenise
from polytask.encoders import load_tokenizer
from polytask.spec import RandomEncoder, parse_spec
from polytask.tasks import IGNORE
from tests.support import synthetic_tagged_rows, synthetic_topic_rows

ENCODER = {"kind": "random", "hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 32, "vocab_size": 120, "max_length": 32}
TRAINING = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8}


def all_types_study(folder, frames: dict[str, pd.DataFrame] | None = None) -> dict:
    """One JSON-lines dataset with a label column for each of the four task types."""
    frames = frames or {"train": synthetic_tagged_rows(120, 1), "validation": synthetic_tagged_rows(40, 2)}
    paths = {}
    for split, frame in frames.items():
        paths[split] = str(folder / f"{split}.jsonl")
        frame.to_json(paths[split], orient="records", lines=True)
    return {
        "name": "types",
        "data": {"source": {"kind": "files", **paths}, "text_column": "words", "split": {"test": 0}},
        "tasks": [
            {"name": "entities", "type": "token_classification", "label_column": "tags"},
            {"name": "topics", "type": "multilabel", "label_column": "topics"},
            {"name": "score", "type": "regression", "label_column": "score"},
            {"name": "sentiment", "label_column": "sentiment"},
        ],
        "encoder": ENCODER,
        "candidates": [{"weighting": "equal"}],
        "training": TRAINING,
    }


def per_task_study(folder, sampling: dict | None = None) -> dict:
    """Two datasets: sentiment on synthetic reviews (CSV, 'words' joined), topic on a corpus
    whose text column is called 'body'."""
    reviews = synthetic_tagged_rows(90, 3)
    reviews["text"] = reviews["words"].map(" ".join)
    reviews[["text", "sentiment"]].to_csv(folder / "reviews.csv", index=False)
    synthetic_topic_rows(30, 4).to_csv(folder / "topics.csv", index=False)
    raw = {
        "name": "two-datasets",
        "data": {"split": {"validation": 0.2, "test": 0.2}},
        "tasks": [
            {"name": "sentiment", "label_column": "sentiment", "source": {"kind": "files", "train": str(folder / "reviews.csv")}},
            {"name": "topic", "label_column": "topic", "text_column": "body", "source": {"kind": "files", "train": str(folder / "topics.csv")}},
        ],
        "encoder": ENCODER,
        "candidates": [{"weighting": "equal"}],
        "training": TRAINING,
    }
    if sampling:
        raw["data"]["sampling"] = sampling
    return raw


def prepared(raw: dict):
    spec = parse_spec(raw)
    datasets = load_datasets(spec)
    assert check_frames(spec, datasets) == []
    tokenizer = load_tokenizer(spec.encoder, train_texts(spec, datasets))
    return spec, datasets, tokenizer, prepare_data(spec, datasets, tokenizer)


def test_every_task_type_is_encoded_and_aligned(tmp_path):
    frames = {"train": synthetic_tagged_rows(120, 1), "validation": synthetic_tagged_rows(40, 2)}
    frames["train"].loc[3, "score"] = None  # a row without a target
    frames["train"].loc[4, "topics"] = None  # a row without topics (missing, unlike "": no topic)
    spec, _, tokenizer, data = prepared(all_types_study(tmp_path, frames))
    tasks = {t.name: t for t in data.tasks}
    assert tasks["topics"].classes == ["food", "music", "sport"]
    assert tasks["entities"].classes == ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    assert tasks["score"].classes == [] and tasks["score"].metric == "mae" and tasks["entities"].metric == "f1"
    scores = frames["train"]["score"].dropna()
    assert tasks["score"].target_mean == pytest.approx(scores.mean()) and tasks["score"].target_std == pytest.approx(scores.std(ddof=0))
    train = data.splits["train"]
    assert np.isnan(train.labels["score"][3]) and train.labels["score"][0] == pytest.approx(frames["train"]["score"][0])
    assert (train.labels["topics"][4] == IGNORE).all()
    expected = [[int(c in t.split("|")) for c in ("food", "music", "sport")] for t in frames["train"]["topics"].fillna("")]
    assert np.array_equal(train.labels["topics"][np.arange(120) != 4], np.array(expected)[np.arange(120) != 4])
    # each word's tag sits on its first sub-word token; other positions are IGNORE
    classes = tasks["entities"].classes
    for row in range(10):
        ids = train.input_ids[row, : train.lengths[row]]
        encoding = tokenizer(frames["train"]["words"][row], is_split_into_words=True, truncation=True, max_length=32)
        assert ids.tolist() == encoding["input_ids"]
        word_ids = encoding.word_ids()
        for position, word in enumerate(word_ids):
            first = word is not None and (position == 0 or word_ids[position - 1] != word)
            expected_tag = classes.index(frames["train"]["tags"][row][word]) if first else IGNORE
            assert train.labels["entities"][row, position] == expected_tag
        assert (train.labels["entities"][row, train.lengths[row] :] == IGNORE).all()
    batch = collate(train, np.array([0, 1, 2]))
    assert batch["labels/entities"].shape == batch["input_ids"].shape  # cut to the batch's width
    assert batch["labels/score"].dtype.is_floating_point and batch["labels/topics"].shape == (3, 3)


def test_one_dataset_per_task_concatenates_rows_and_masks_the_other_task(tmp_path):
    spec, datasets, _, data = prepared(per_task_study(tmp_path, {"policy": "temperature", "alpha": 0.5}))
    assert [d.where for d in datasets] == ["tasks[0].source", "tasks[1].source"]
    assert data.per_task_datasets
    for name, split in data.splits.items():
        sizes = [len(d.frames[name]) for d in datasets]
        assert split.group.tolist() == [0] * sizes[0] + [1] * sizes[1]
        assert (split.labels["sentiment"][split.group == 1] == IGNORE).all()
        assert (split.labels["topic"][split.group == 0] == IGNORE).all()
        assert (split.labels["topic"][split.group == 1] != IGNORE).all()
        assert data.label_counts[name] == {"sentiment": sizes[0], "topic": sizes[1]}
    # the topic corpus's own text column ('body') was read
    topics = datasets[1].frames["train"]
    assert topics.columns.tolist() == ["body", "topic"] and len(topics) == 18


def test_a_source_column_mapping_renames_columns(tmp_path):
    raw = per_task_study(tmp_path)
    raw["tasks"][1]["text_column"] = None
    raw["tasks"][1]["source"]["columns"] = {"body": "text"}
    spec, datasets, _, _ = prepared(raw)
    assert "text" in datasets[1].frames["train"]
    raw["tasks"][1]["source"]["columns"] = {"bodie": "text"}
    with pytest.raises(Exception, match=r"tasks\[1\].source.columns: files topics.csv has no column\(s\) \['bodie'\]"):
        load_datasets(parse_spec(raw))


def test_one_task_per_step_needs_a_weighting_that_copes(tmp_path):
    from polytask.errors import StudyError

    raw = per_task_study(tmp_path)
    raw["candidates"] = [{"weighting": "famo"}, {"weighting": "mgda", "sampling": {"policy": "all"}}, {"weighting": "dwa"}]
    with pytest.raises(StudyError) as info:
        parse_spec(raw)
    assert [p.path for p in info.value.problems] == ["candidates[0].weighting"]
    assert "'famo' needs every task's loss in every step, but sampling policy 'proportional' trains one task's batch per step" in str(info.value)


def test_tokenisation_is_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))
    texts = ["a good film", "a dull film", "the story"]
    tokenizer = load_tokenizer(RandomEncoder(kind="random", vocab_size=100), texts)
    calls = []
    original = type(tokenizer).__call__

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", counting)
    first = tokenise(texts, tokenizer, 16)
    assert calls and len(list((tmp_path / "cache" / "tokenised").glob("*.arrow"))) == 1
    calls.clear()
    again = tokenise(texts, tokenizer, 16)
    assert calls == []  # read back from the cache file
    assert all(np.array_equal(a, b) for a, b in zip(first[:2], again[:2]))
    tokenise(texts, tokenizer, 8)  # another max length: tokenised again
    tokenise([*texts[:2], "the stories"], tokenizer, 16)  # other texts: tokenised again
    assert len(calls) == 2


# --------------------------------------------------------------------------- bad data, exit 2


def validate(tmp_path, raw: dict):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, " ".join(result.stderr.split())


def test_bad_data_non_numeric_regression_target(tmp_path):
    frames = {"train": synthetic_tagged_rows(60, 1), "validation": synthetic_tagged_rows(20, 2)}
    frames["train"]["score"] = frames["train"]["score"].astype(object)
    frames["train"].loc[7, "score"] = "n/a"
    code, message = validate(tmp_path, all_types_study(tmp_path, frames))
    assert code == 2
    assert ("data (data.source: files train.jsonl), train split, column 'score', row 7: value 'n/a' is not a finite number (1 such rows), "
            "but score is a regression task; fix the rows, or leave them empty where the row has no target") in message


def test_bad_data_tags_that_do_not_fit_the_words(tmp_path):
    frames = {"train": synthetic_tagged_rows(60, 1), "validation": synthetic_tagged_rows(20, 2)}
    frames["validation"].at[5, "tags"] = frames["validation"]["tags"][5][:-1]
    words = len(frames["validation"]["words"][5])
    code, message = validate(tmp_path, all_types_study(tmp_path, frames))
    assert code == 2
    assert (f"data (data.source: files validation.jsonl), validation split, column 'tags', row 5: {words - 1} tags for {words} words in 'words' "
            "(1 such rows); token_classification needs exactly one tag per word") in message


def test_bad_data_a_tag_outside_bio(tmp_path):
    frames = {"train": synthetic_tagged_rows(60, 1), "validation": synthetic_tagged_rows(20, 2)}
    frames["train"].at[2, "tags"] = ["PERSON"] * len(frames["train"]["words"][2])
    code, message = validate(tmp_path, all_types_study(tmp_path, frames))
    assert code == 2
    assert "data (data.source: files train.jsonl), train split, column 'tags':" in message and "'PERSON'" in message and "tasks[0].classes" in message


def test_bad_data_a_multilabel_label_outside_the_declared_classes(tmp_path):
    raw = all_types_study(tmp_path)
    raw["tasks"][1]["classes"] = ["music", "sport"]
    code, message = validate(tmp_path, raw)
    assert code == 2
    assert "data (data.source: files train.jsonl), train split, column 'topics', row" in message
    assert "label 'food' is not one of the classes declared in tasks[1].classes ['music', 'sport']" in message


def test_bad_data_a_missing_column_of_one_tasks_dataset(tmp_path):
    raw = per_task_study(tmp_path)
    raw["tasks"][1]["label_column"] = "topik"
    code, message = validate(tmp_path, raw)
    assert code == 2
    assert "tasks[1].label_column: column 'topik' is not in the train split of tasks[1].source: files topics.csv (columns: body, topic)" in message


def test_bad_data_an_empty_split(tmp_path):
    raw = per_task_study(tmp_path)
    pd.DataFrame({"body": [], "topic": []}).to_csv(tmp_path / "empty.csv", index=False)
    raw["tasks"][1]["source"]["validation"] = str(tmp_path / "empty.csv")
    code, message = validate(tmp_path, raw)
    assert code == 2
    assert "data (tasks[1].source: files empty.csv), validation split: has no rows; check the source, the split fractions or max_examples" in message


def test_a_resolved_spec_reads_back_as_itself(tmp_path):
    """spec.yaml in the output folder holds every default; `polytask report` parses it again."""
    for raw in (per_task_study(tmp_path, {"policy": "annealed"}), all_types_study(tmp_path)):
        spec = parse_spec(raw)
        assert parse_spec(yaml.safe_load(spec.to_yaml())) == spec


def test_every_builtin_name_the_spec_accepts_has_a_loader():
    import importlib
    from typing import get_args

    from polytask.data.sources import BUILTINS
    from polytask.spec import BuiltinSource

    assert set(get_args(BuiltinSource.model_fields["name"].annotation)) == set(BUILTINS)
    for module in BUILTINS.values():
        assert callable(importlib.import_module(f"polytask.data.{module}").load)
