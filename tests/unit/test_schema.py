"""The vocabulary writers and readers share (polytask.schema): labels and their inverses, the
tags a run is created with, and the one rule of a trial trained to the end."""

from __future__ import annotations

import pytest

from polytask import schema
from polytask.schema import TrialTags


@pytest.mark.parametrize("task", ["sentiment", "single-task-x", "a/b", "teacher-y"])
def test_labels_and_their_inverses(task):
    assert schema.baseline_task(schema.baseline_label(task)) == task
    assert schema.teacher_task(schema.teacher_label(task)) == task
    assert schema.baseline_label(task) != schema.teacher_label(task)


def test_an_inverse_refuses_what_is_not_its_label():
    with pytest.raises(ValueError, match="not a single-task baseline"):
        schema.baseline_task(schema.teacher_label("sentiment"))
    with pytest.raises(ValueError, match="not a teacher"):
        schema.teacher_task("equal")


def test_run_names():
    assert schema.run_name("equal", 0) == "equal/seed0"
    assert schema.run_name("tuned", 2, 7) == "tuned/seed2/trial7"


def test_one_spelling_of_a_task_weight_in_every_namespace():
    key = schema.task_weight("sentiment")
    assert key == "weight/sentiment"
    assert [schema.step_key(key), schema.pbt_key(key), schema.sampled_key(key), schema.params_column(key)] == [
        "step/weight/sentiment", "pbt/weight/sentiment", "sampled/weight/sentiment", "params.weight/sentiment"]
    assert schema.BEST_SCORE == "best/val/score"


def test_trial_tags_round_trip_through_mlflow_strings():
    tags = TrialTags(candidate="tuned", strategy="scalarization", family="loss", sharing="mmoe", seed=3, phase=schema.SEARCH,
                     sampling="one dataset", searched=True, distilled=False, selected_trial="abc")
    written = tags.to_mlflow()
    assert written["polytask.seed"] == "3" and written["polytask.searched"] == "true" and written["polytask.distilled"] == "false"
    assert "polytask.fingerprint" not in written  # empty values are not written
    assert all(isinstance(v, str) for v in written.values())
    assert TrialTags.from_mlflow({**written, "mlflow.runName": "x", "polytask.outcome": "completed"}) == tags


def test_a_run_without_tags_reads_as_the_defaults():
    assert TrialTags.from_mlflow({}) == TrialTags()
    assert (TrialTags().role, TrialTags().phase, TrialTags().sharing) == (schema.TRIAL, schema.FIXED, "hard")
    assert schema.run_outcome({"polytask.outcome": schema.DIVERGED}) == (schema.DIVERGED, "", "")


@pytest.mark.parametrize(("result", "expected"), [
    ({"epoch": 5}, True),
    ({"epoch": 6}, True),
    ({"epoch": 2, "early_stopped": 1.0}, True),  # its own patience ended it: a whole training
    ({"epoch": 2}, False),  # a scheduler cut it short
    ({}, False),
])
def test_reached_the_end(result, expected):
    assert schema.reached_the_end(result, epochs=5) is expected


def test_only_finished_runs_not_cut_short_count_in_means():
    assert schema.counts_in_means("FINISHED", schema.COMPLETED)
    assert not schema.counts_in_means("FINISHED", schema.STOPPED)
    assert not schema.counts_in_means("FAILED", schema.DIVERGED)
    assert not schema.counts_in_means("KILLED", schema.INTERRUPTED)
