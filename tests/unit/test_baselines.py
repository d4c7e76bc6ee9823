"""Single-task baselines: what their fingerprint depends on, and the cache that reuses them."""

from __future__ import annotations

import pandas as pd
import pytest

from polytask.data.prepare import PreparedData
from polytask.spec import parse_spec
from polytask.strategies.sharing import SHARINGS
from polytask.study.baselines import BaselineCache, fingerprint
from polytask.study.run import prepare
from polytask.study.single_task import single_task_sharing
from polytask.tasks import TaskInfo
from polytask.training.model import build_model


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
    assert key_of({**raw, "sharing": {"name": "hard", "params": {"hidden": [16]}}}) != key  # the layers between encoder and head
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


# The study's sharing for every architecture, with the hyperparameters that give it shared layers.
SHARING_CASES = {
    "hard": {"hidden": [16]},
    "single_task": {"hidden": [16]},
    "soft": {},
    "cross_stitch": {},
    "mmoe": {"experts": 3, "expert_hidden": [16]},
    "ple": {"levels": 1, "shared_experts": 2, "task_experts": 1, "expert_hidden": [16]},
    "hierarchical": {"depths": {"a": 1, "b": 2}},
    "lora": {"rank": 2},
}
# Where a task's share of the multi-task model cannot be built alone: a cross-stitch network's
# task reads every column (its single-task model is its own column, hard sharing); PLE's
# shared-expert gates of a lower level mix every task's experts (levels > 1 only).
NOT_EQUAL = {"cross_stitch"}


@pytest.mark.parametrize("name", sorted(SHARINGS))
def test_a_baseline_is_the_study_model_for_one_task(name):
    """Its parameters are those each task's prediction depends on in the multi-task model:
    shared + the task's own (head included), for every architecture but cross-stitch."""
    assert set(SHARING_CASES) == set(SHARINGS)  # a new architecture needs a case here
    tasks = [TaskInfo("a", "classification", ["x", "y"], "accuracy", "max"), TaskInfo("b", "classification", ["x", "y", "z"], "accuracy", "max")]
    spec = parse_spec({
        "name": "t", "data": {"source": {"kind": "files", "train": "x.csv"}, "categorical_columns": ["c"], "numeric_columns": ["n"]},
        "tasks": [{"name": "a", "label_column": "a"}, {"name": "b", "label_column": "b"}], "encoder": {"kind": "tabular", "hidden": [16, 16]},
        "heads": {"hidden": [8]}, "sharing": {"name": name, "params": SHARING_CASES[name]}, "candidates": [{"weighting": "equal"}],
    })
    counts = build_model(spec, PreparedData(tasks, {}, categorical_sizes=[5], numeric_count=1)).parameter_counts()
    for task in tasks:
        sharing = single_task_sharing(spec.sharing, spec.task_names, task.name)
        alone = build_model(spec, PreparedData([task], {}, categorical_sizes=[5], numeric_count=1), sharing).parameter_counts()
        if name in NOT_EQUAL:
            assert sharing.name == "hard" and alone["total"] < counts["shared"] + counts[task.name]
        else:
            assert sharing.name == name and alone["total"] == counts["shared"] + counts[task.name]
