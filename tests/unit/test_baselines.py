"""Single-task baselines: what their fingerprint depends on, and the cache that reuses them."""

from __future__ import annotations

import pandas as pd
import pytest

from polytask.baselines import BaselineCache, fingerprint
from polytask.spec import parse_spec
from polytask.study import prepare


@pytest.fixture(scope="module")
def base(text_data):
    from tests.support import study_dict

    raw = study_dict(text_data, comparison={"single_task_baselines": True})
    spec = parse_spec(raw)
    return raw, spec, prepare(spec)


def key_of(raw: dict, task: str = "sentiment", seed: int = 0) -> str:
    spec = parse_spec(raw)
    return fingerprint(spec, prepare(spec), task, seed)


def test_the_fingerprint_ignores_what_a_single_task_model_does_not_depend_on(base):
    raw, spec, data = base
    key = fingerprint(spec, data, "sentiment", 0)
    assert key == fingerprint(spec, data, "sentiment", 0) and len(key) == 64
    other_study = {**raw, "name": "other", "candidates": [{"weighting": "pcgrad"}], "seeds": [0, 5]}
    assert key_of(other_study) == key  # another study, other candidates: the same baseline
    assert key_of({**raw, "training": {**raw["training"], "log_every_steps": 3}}) == key


def test_the_fingerprint_changes_with_data_task_encoder_training_selection_and_seed(base, tmp_path):
    raw, spec, data = base
    key = fingerprint(spec, data, "sentiment", 0)
    assert fingerprint(spec, data, "sentiment", 1) != key
    assert fingerprint(spec, data, "subjectivity", 0) != key
    assert key_of({**raw, "training": {**raw["training"], "learning_rate": 1e-2}}) != key
    assert key_of({**raw, "encoder": {**raw["encoder"], "hidden_size": 48}}) != key
    assert key_of({**raw, "comparison": {"single_task_baselines": True, "selection": "last_epoch"}}) != key
    # one label changed in the training file: other data, another baseline
    frame = pd.read_csv(raw["data"]["source"]["train"])
    row = frame["sentiment"].first_valid_index()
    frame.loc[row, "sentiment"] = "rotten" if frame.loc[row, "sentiment"] == "fresh" else "fresh"
    frame.to_csv(tmp_path / "train.csv", index=False)
    changed = {**raw, "data": {**raw["data"], "source": {**raw["data"]["source"], "train": str(tmp_path / "train.csv")}}}
    assert key_of(changed) != key


def test_the_cache_keeps_one_record_per_fingerprint_and_survives_a_torn_file(tmp_path):
    cache = BaselineCache(tmp_path / "baselines")
    assert cache.get("abc") is None
    cache.put("abc", {"metrics": {"best/val/score": 0.8}})
    assert cache.get("abc") == {"metrics": {"best/val/score": 0.8}}
    assert [p.name for p in (tmp_path / "baselines").iterdir()] == ["abc.json"]  # no temporary file left
    (tmp_path / "baselines" / "torn.json").write_text('{"metrics": ')
    assert cache.get("torn") is None  # trained again rather than trusted
