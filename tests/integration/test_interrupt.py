"""Ctrl-C in the middle of a study: the driver stops its trials, records the interrupted one as
interrupted (never as "stopped by the scheduler", which would make a partial trial look like a
deliberate early stop), writes no comparison of a half-run study, says how to continue and
exits 130; `polytask resume` then finishes the study without training anything twice."""

from __future__ import annotations

import pytest
import yaml
from mlflow import MlflowClient

from polytask.ops.tracking import Tracking
from polytask.schema import COMPLETED, INTERRUPTED, OUTCOME, tag
from tests.processes import Study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

STEPS = 400  # per epoch: a few seconds on 2 cores, so Ctrl-C lands inside epoch 2


def test_ctrl_c_records_the_trial_as_interrupted_and_resume_finishes_the_study(tmp_path, text_data):
    raw = study_dict(text_data, candidates=[{"weighting": "equal"}], seeds=[0, 1], execution={"max_concurrent_trials": 1})
    raw["training"].update(epochs=3, steps_per_epoch=STEPS)
    spec = tmp_path / "interrupt.yaml"
    spec.write_text(yaml.safe_dump(raw))
    output = tmp_path / "out"

    first = Study("run", str(spec), "--output", str(output))
    try:
        first.wait_for("finished equal/seed0")
        first.wait_for("equal/seed1 epoch 1/3")
        first.interrupt()
        assert first.finish(timeout=180) == 130, first.log
    finally:
        if first.process.poll() is None:
            first.kill_all()
    assert "equal/seed1 epoch 3/3" not in first.log, "the trial ended before Ctrl-C; make epochs longer"
    assert f"polytask resume {output}" in first.log
    assert not (output / "comparison.md").exists()  # no answer from a half-run study

    tracking = Tracking.load(output)
    client = MlflowClient(tracking.uri)

    def runs() -> dict[str, object]:
        found = client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
        return {r.info.run_name: r for r in found}

    before = runs()
    assert (before["equal/seed0"].info.status, before["equal/seed0"].data.tags[tag(OUTCOME)]) == ("FINISHED", COMPLETED)
    assert (before["equal/seed1"].info.status, before["equal/seed1"].data.tags[tag(OUTCOME)]) == ("KILLED", INTERRUPTED)
    assert client.get_run(tracking.parent_run_id).info.status == "KILLED"

    second = Study("resume", str(output))
    assert second.finish() == 0, second.log
    after = runs()
    assert sorted(after) == ["equal/seed0", "equal/seed1"]
    assert {(r.info.status, r.data.tags[tag(OUTCOME)]) for r in after.values()} == {("FINISHED", COMPLETED)}
    assert after["equal/seed1"].info.run_id == before["equal/seed1"].info.run_id  # continued in its own run
    for name, run in after.items():
        history = [m.step for m in client.get_metric_history(run.info.run_id, "epoch")]
        assert history == [1, 2, 3], (name, history)
    assert client.get_run(tracking.parent_run_id).info.status == "FINISHED"
    assert (output / "comparison.md").is_file()
