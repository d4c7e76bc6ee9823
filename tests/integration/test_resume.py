"""A trial whose worker process dies is retried by Tune from its last checkpoint, not from the
start, and keeps its one MLflow run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from polytask.ops.tracking import Tracking
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def trial_workers() -> list[int]:
    """PIDs of Ray actors running a Tune function trainable (process title ray::ImplicitFunc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::ImplicitFunc"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_killed_trial_resumes_from_its_checkpoint(tmp_path, text_data):
    raw = study_dict(text_data)
    raw["training"].update(epochs=3, steps_per_epoch=400)  # about 5 s per epoch on 2 cores
    raw["execution"] = {"max_retries": 2}
    spec = tmp_path / "resume.yaml"
    spec.write_text(yaml.safe_dump(raw))
    output = tmp_path / "out"
    study = subprocess.Popen(
        [sys.executable, "-m", "polytask", "run", str(spec), "--output", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []  # the study's output so far, appended line by line as it arrives

    def read_output() -> None:
        for line in study.stdout:
            lines.append(line)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        # The driver prints the epoch line when it receives epoch 1's result, then registers the
        # checkpoint that came with it (an idle-actor call, milliseconds). A kill before that
        # registration would rightly restart from scratch, so wait past it, but not past epoch 2.
        deadline = time.monotonic() + 300
        while not any("equal/seed0 epoch 1/3" in line for line in lines):
            assert study.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        time.sleep(1.0)
        assert not any("epoch 2/3" in line for line in lines), "epoch 2 ended before the kill; make epochs longer"
        workers = trial_workers()
        assert len(workers) == 1
        os.kill(workers[0], signal.SIGKILL)  # mid-way through epoch 2
        study.wait(timeout=400)
        reader.join(timeout=10)
    finally:
        if study.poll() is None:
            study.kill()
    log = "".join(lines)
    assert study.returncode == 0, log
    assert "retrying equal/seed0 from its last checkpoint" in log

    tracking = Tracking.load(output)
    client = MlflowClient(tracking.uri)
    runs = client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    epochs = [(m.step, m.value) for m in client.get_metric_history(runs[0].info.run_id, "epoch")]
    # resumed after epoch 1: a restart from scratch would have logged epoch 1 twice
    assert epochs == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert runs[0].data.metrics["global_step"] == 3 * 400
