"""The driver of a study is killed (SIGKILL, with the local Ray it started) mid-study, and
`polytask resume` finishes it: finished trials are not run again, the interrupted one continues
from its checkpoint, the Optuna search keeps its state, and MLflow ends with exactly one
FINISHED run per trial."""

from __future__ import annotations

import subprocess
import sys
import time

import optuna
import pytest
import yaml
from mlflow import MlflowClient

from polytask.ops.tracking import Tracking
from tests.processes import Study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

STEPS = 400  # per epoch: an epoch takes a few seconds on 2 cores (~6 ms a step), so the kill lands inside epoch 2


def test_a_killed_driver_resumes_without_rerunning_or_duplicating(tmp_path, text_data):
    optuna_db = f"sqlite:///{tmp_path / 'optuna.db'}"
    raw = study_dict(
        text_data,
        candidates=[{"weighting": "equal"}, {"name": "tuned", "weighting": "scalarization", "search": {"trials": 2}}],
        seeds=[0, 1],
        execution={"max_concurrent_trials": 1},
        optuna={"storage": optuna_db},
    )
    raw["training"].update(epochs=3, steps_per_epoch=STEPS)
    spec = tmp_path / "resume.yaml"
    spec.write_text(yaml.safe_dump(raw))
    output = tmp_path / "out"

    first = Study("run", str(spec), "--output", str(output))
    try:
        first.wait_for("finished equal/seed0")
        first.wait_for("equal/seed1 epoch 1/3")
        time.sleep(1.0)  # past the registration of epoch 1's checkpoint, well before epoch 2 ends
        assert "equal/seed1 epoch 2/3" not in first.log, "epoch 2 ended before the kill; make epochs longer"
    finally:
        first.kill_all()

    tracking = Tracking.load(output)
    client = MlflowClient(tracking.uri)

    def runs() -> dict[str, object]:
        found = client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
        names = [r.info.run_name for r in found]
        assert len(names) == len(set(names)), names
        return {r.info.run_name: r for r in found}

    before = runs()
    assert before["equal/seed0"].info.status == "FINISHED"
    assert before["equal/seed1"].info.status == "RUNNING"  # its driver died; nobody ended it

    second = Study("resume", str(output))
    assert second.finish() == 0, second.log
    assert "started  equal/seed0" not in second.log  # the finished trial did not train again

    after = runs()
    # the search's two trials, then its selected weights on both seeds (evaluation)
    assert sorted(after) == ["equal/seed0", "equal/seed1", "tuned/seed0", "tuned/seed0/trial1", "tuned/seed1", "tuned/seed1/trial2"]
    assert {r.info.status for r in after.values()} == {"FINISHED"}
    assert len({r.data.tags["polytask.trial_id"] for r in after.values()}) == 6
    # the finished trial's run was left as it was: same run, same end, each epoch logged once
    assert after["equal/seed0"].info.run_id == before["equal/seed0"].info.run_id
    assert after["equal/seed0"].info.end_time == before["equal/seed0"].info.end_time
    for name in after:
        history = [(m.step, m.value) for m in client.get_metric_history(after[name].info.run_id, "epoch")]
        assert history == [(1, 1.0), (2, 2.0), (3, 3.0)], (name, history)
    # the interrupted trial continued from its epoch-1 checkpoint in its own run
    assert after["equal/seed1"].info.run_id == before["equal/seed1"].info.run_id
    assert after["equal/seed1"].data.metrics["global_step"] == 3 * STEPS

    parent = client.get_run(tracking.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials/finished"] == 6
    # the Optuna search: its two trials, each told once, nothing left running
    study = optuna.load_study(study_name=f"tiny.tuned.{tracking.parent_run_id[:8]}", storage=optuna_db)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    assert (output / "comparison.md").is_file() and len((output / "trials.csv").read_text().strip().splitlines()) == 1 + 6


def test_resume_refuses_a_folder_without_a_study(tmp_path):
    result = subprocess.run([sys.executable, "-m", "polytask", "resume", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "holds no study" in result.stderr
