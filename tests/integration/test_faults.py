"""Faults a study survives (issue 8), injected into real tiny studies; each test prints the
numbers quoted in docs/reliability-faults.md (run with ``-s`` to see them).

1. One study, four candidates, three faults at once:
   - ``exploding``: uncertainty weighting with an absurd learning rate for its log-variances
     (``lr: 1e6``, a real hyperparameter, no test code) -> the task weights overflow, the model's
     parameters become NaN and the next step's losses are NaN -> the trial ends *diverged* at a
     known step, with no retry;
   - ``dwa/seed0`` raises once before epoch 2 (``POLYTASK_FAULT`` with a marker file,
     polytask.ops.faults) -> retried from its epoch-1 checkpoint in the same MLflow run, finishes;
   - ``rlw/seed0`` raises before epoch 2 on every attempt -> ``max_retries + 1`` attempts, then
     FAILED with its reason;
   - ``equal/seed0`` finishes untouched, and the report lists the two that did not finish.
   Credentials placed in the environment (where they belong) appear nowhere in what it wrote.
2. A 2-node ``ray.cluster_utils.Cluster``: the worker node is removed while a trial trains on it;
   the trial is retried from its checkpoint on the head node and finishes.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
import ray
from mlflow import MlflowClient
from ray.cluster_utils import Cluster
from rich.console import Console

from polytask.ops.tracking import Tracking, retrying
from polytask.spec import parse_spec
from polytask.study.run import prepare, run_study
from polytask.training.train import Diverged, TrialPlan, train
from tests.support import Recorder, study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SECRETS = {"MLFLOW_TRACKING_PASSWORD": "s3cret-mlflow", "AWS_SECRET_ACCESS_KEY": "s3cret-aws", "PGPASSWORD": "s3cret-pg"}


def nested_runs(tracking: Tracking) -> tuple[MlflowClient, dict]:
    client = MlflowClient(tracking.uri)
    runs = client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
    by_name = {r.info.run_name: r for r in runs}
    assert len(by_name) == len(runs), "a trial has two runs"
    return client, by_name


def history(client: MlflowClient, run, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))


def tune_failures(tracking: Tracking) -> dict[str, int]:
    """Run name -> how many times Tune saw the trial fail (its experiment state)."""
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(tracking.tune_path).trials
    return {f"{t.config['candidate']}/seed{t.config['seed']}": t.num_failures for t in trials}


def test_divergence_a_transient_and_a_permanent_error_in_one_study(tmp_path, text_data, monkeypatch):
    assert not ray.is_initialized()  # the study starts its own Ray, which inherits this environment
    marker = tmp_path / "fault-once"
    marker.touch()
    monkeypatch.setenv("POLYTASK_FAULT", f"raise:dwa/seed0:1:{marker};raise:rlw/seed0:1")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    raw = study_dict(
        text_data,
        candidates=[{"weighting": "equal"}, {"name": "exploding", "weighting": "uncertainty", "params": {"lr": 1e6}}, {"weighting": "dwa"}, {"weighting": "rlw"}],
        execution={"max_retries": 1},
    )
    raw["training"].update(epochs=2, steps_per_epoch=6, log_every_steps=1)
    spec = parse_spec(raw)

    # Where the diverging candidate diverges, found in-process: the study must agree exactly.
    with pytest.raises(Diverged) as expected:
        train(TrialPlan(spec, "exploding", 0), prepare(spec), Recorder())
    assert expected.value.step <= 6  # within epoch 1: no checkpoint to retry from, nothing to retry

    out = io.StringIO()
    started = time.monotonic()
    result = run_study(spec, output=tmp_path / "out", console=Console(file=out, width=200))
    elapsed = time.monotonic() - started
    log = out.getvalue()
    client, runs = nested_runs(result.tracking)
    failures = tune_failures(result.tracking)
    assert sorted(runs) == ["dwa/seed0", "equal/seed0", "exploding/seed0", "rlw/seed0"]

    # diverged: FAILED once, with its step; not retried; the others went on
    exploding = runs["exploding/seed0"]
    assert (exploding.info.status, exploding.data.tags["polytask.outcome"]) == ("FAILED", "diverged")
    assert exploding.data.tags["polytask.diverged_step"] == str(expected.value.step)
    assert f"diverged at step {expected.value.step}" in exploding.data.tags["polytask.reason"]
    assert failures["exploding/seed0"] == 0 and "retrying exploding" not in log
    assert f"diverged exploding/seed0 at step {expected.value.step}" in log
    steps_before = [s for s, _ in history(client, exploding, "step/train/subjectivity/step_loss")]
    assert steps_before == list(range(1, expected.value.step))  # every step before it (1-based, as MLflow's), once

    # transient error: one retry from the epoch-1 checkpoint, same run, every point once
    dwa = runs["dwa/seed0"]
    assert (dwa.info.status, dwa.data.tags["polytask.outcome"]) == ("FINISHED", "completed")
    assert failures["dwa/seed0"] == 1 and log.count("retrying dwa/seed0 from its last checkpoint") == 1
    assert not marker.exists()
    assert history(client, dwa, "epoch") == [(1, 1.0), (2, 2.0)]
    assert [s for s, _ in history(client, dwa, "step/train/subjectivity/step_loss")] == list(range(1, 13))

    # permanent error: max_retries + 1 attempts, then FAILED with its reason
    rlw = runs["rlw/seed0"]
    assert (rlw.info.status, rlw.data.tags["polytask.outcome"]) == ("FAILED", "error")
    assert "InjectedFault" in rlw.data.tags["polytask.reason"]
    assert failures["rlw/seed0"] == spec.execution.max_retries + 1
    assert log.count("retrying rlw/seed0") == spec.execution.max_retries and "failed rlw/seed0" in log
    assert history(client, rlw, "epoch") == [(1, 1.0)]  # epoch 1 once, though two attempts passed it
    assert [s for s, _ in history(client, rlw, "step/train/subjectivity/step_loss")] == list(range(1, 7))

    # the healthy trial, the study, the report
    equal = runs["equal/seed0"]
    assert (equal.info.status, equal.data.tags["polytask.outcome"]) == ("FINISHED", "completed") and failures["equal/seed0"] == 0
    parent = client.get_run(result.tracking.parent_run_id)
    assert parent.info.status == "FINISHED" and (parent.data.metrics["trials/finished"], parent.data.metrics["trials/failed"]) == (2, 2)
    report = (result.output / "comparison.md").read_text()
    section = report.split("## Trials that did not finish", 1)[1]
    assert "`exploding/seed0`: diverged" in section and "`rlw/seed0`: error" in section and "InjectedFault" in section

    # credentials in the environment reach nothing polytask printed, wrote or logged
    written = [p for p in result.output.rglob("*") if p.is_file() and p.suffix in {".md", ".csv", ".html", ".json", ".yaml", ".txt", ".log"}]
    written += [p for p in Path(result.tracking.tune_path).rglob("*") if p.is_file() and p.suffix in {".json", ".csv", ".txt", ".log", ".pkl"}]
    recorded = [log] + [p.read_bytes().decode("utf-8", "replace") for p in written]
    recorded += [repr((r.data.params, r.data.tags)) for r in [*runs.values(), parent]]
    for secret in SECRETS.values():
        assert not any(secret in text for text in recorded), secret
    def epoch_gap(run) -> float:  # seconds between the epoch-1 and epoch-2 points
        times = {m.step: m.timestamp / 1000 for m in client.get_metric_history(run.info.run_id, "epoch")}
        return times[2] - times[1]

    print(
        f"\nfaults study: {elapsed:.1f} s; Tune failures {failures}; diverged at step {expected.value.step}; "
        f"epoch 1 -> 2: equal {epoch_gap(equal):.1f} s, dwa (with its retry) {epoch_gap(dwa):.1f} s; "
        f"dwa epochs {history(client, dwa, 'epoch')}; rlw epochs {history(client, rlw, 'epoch')}; scanned {len(written)} files"
    )


@pytest.fixture
def head_and_worker():
    """Head and one worker node, 1 CPU each: a 1-CPU trial on each."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster, worker
    finally:
        cluster.shutdown()


def test_a_trial_on_a_removed_node_is_rescheduled_from_its_checkpoint(tmp_path, text_data, head_and_worker):
    cluster, worker = head_and_worker
    raw = study_dict(
        text_data,
        candidates=[{"weighting": "equal"}, {"weighting": "uncertainty"}],  # two trials, one per node
        execution={"max_retries": 1, "storage": str(tmp_path / "shared")},
    )
    epochs, steps = 3, 300
    raw["training"].update(epochs=epochs, steps_per_epoch=steps)  # a few seconds per epoch
    output = tmp_path / "out"
    out = io.StringIO()
    seen: dict = {}

    def remove_worker_mid_trial() -> None:
        """Once a trial on the worker node has reported epoch 1 (and Tune has its checkpoint),
        remove that node, mid-way through epoch 2."""
        try:
            deadline = time.monotonic() + 300
            while not (output / "study.json").exists():
                assert time.monotonic() < deadline
                time.sleep(0.2)
            tracking = Tracking.load(output)
            client = MlflowClient(tracking.uri)
            while "name" not in seen:
                assert time.monotonic() < deadline, "no trial started on the worker node"
                runs = retrying(lambda: client.search_runs([tracking.experiment_id], filter_string=f"tags.`polytask.node` = '{worker.node_id}'"))
                if runs:
                    seen["name"] = runs[0].info.run_name
                time.sleep(0.2)
            while f"{seen['name']} epoch 1/{epochs}" not in out.getvalue():
                assert time.monotonic() < deadline, "the worker's trial never finished epoch 1"
                time.sleep(0.05)
            time.sleep(1.0)  # the driver registers the checkpoint that came with epoch 1
            seen["early"] = f"{seen['name']} epoch 2/{epochs}" in out.getvalue()
            seen["removed_at"] = time.time()
            cluster.remove_node(worker)
        except BaseException as exc:  # reported by the test
            seen["error"] = exc

    watcher = threading.Thread(target=remove_worker_mid_trial, daemon=True)
    watcher.start()
    started = time.monotonic()
    result = run_study(parse_spec(raw), output=output, address=cluster.address, console=Console(file=out, width=200))
    elapsed = time.monotonic() - started
    watcher.join(timeout=30)
    log = out.getvalue()
    assert "error" not in seen, seen.get("error")
    assert not seen["early"], "epoch 2 ended before the node was removed; make epochs longer"
    moved = seen["name"]
    assert f"retrying {moved} from its last checkpoint" in log, log

    client, runs = nested_runs(result.tracking)
    assert sorted(runs) == ["equal/seed0", "uncertainty/seed0"]
    for run in runs.values():  # every planned trial: one run, FINISHED, each epoch and step point once
        assert (run.info.status, run.data.tags["polytask.outcome"]) == ("FINISHED", "completed")
        assert history(client, run, "epoch") == [(e, float(e)) for e in range(1, epochs + 1)]
        logged = [s for s, _ in history(client, run, "step/train/subjectivity/step_loss")]
        assert logged == list(range(10, epochs * steps + 1, 10))  # log_every_steps 10: none lost, none twice
    run = runs[moved]
    assert run.data.tags["polytask.node"] != worker.node_id  # finished on the head node
    assert tune_failures(result.tracking)[moved] == 1
    epoch_times = {m.step: m.timestamp / 1000 for m in client.get_metric_history(run.info.run_id, "epoch")}
    recovered = epoch_times[2] - seen["removed_at"]
    print(f"\nnode removal: {elapsed:.1f} s study; {moved} moved; epoch 2 logged {recovered:.1f} s after the node was removed; Tune failures {tune_failures(result.tracking)}")
