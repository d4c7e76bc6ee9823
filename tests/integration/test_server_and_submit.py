"""The cluster setup end to end on one machine: a real MLflow tracking server (`polytask server`'s
recipe) and a real Ray cluster with its dashboard; `polytask submit` runs a study there as a Ray
job that logs to the tracking server over HTTP. The spec is checked before anything is submitted,
the job's logs stream back, the trials run on the cluster, and stopping the server leaves no
process behind.

The tests share one server and one cluster (both start at once: ~15 s together) and run in file
order; the last one stops the server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from polytask.ops.server import TrackingServer, free_port
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(tracking server, Ray cluster, dashboard address).

    The cluster is made safe to run beside other Rays on this machine: its own dashboard-agent
    port (the default, 52365, may be taken: the job API then answers "No available agent"), and
    its own temp dir holding its own `ray_current_cluster` file — a job's supervisor sets the
    entrypoint's RAY_ADDRESS from that file, and the machine-wide /tmp/ray one names whichever Ray
    started last. The job's entrypoint runs with the raylet's environment, so the venv's
    `polytask` is put on PATH before the cluster starts."""
    import ray
    from ray.cluster_utils import Cluster

    server = TrackingServer(port=0, folder=tmp_path_factory.mktemp("mlflow-server"))
    server.start(wait=False)  # it starts while the cluster does
    temp_dir = tempfile.mkdtemp(prefix="polytask-ray-")  # short: Ray's socket paths must fit 107 bytes
    shared = Path(ray._private.utils.get_ray_address_file(None))
    previous = shared.read_text() if shared.exists() else None
    head = None
    try:
        port = free_port()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
            patch.delenv("RAY_ADDRESS", raising=False)
            node = {"num_cpus": 2, "include_dashboard": True, "dashboard_port": port, "dashboard_agent_listen_port": free_port(), "temp_dir": temp_dir}
            head = Cluster(initialize_head=True, head_node_args=node)
        ray._private.utils.write_ray_address(head.address, temp_dir)
        if previous is not None and shared.exists() and shared.read_text() == head.address:
            shared.write_text(previous)  # Cluster overwrote the machine-wide file: give it back
        server.wait_until_healthy()
        yield server, head, f"http://127.0.0.1:{port}"
    finally:
        if head is not None:
            head.shutdown()
        server.stop()
        shutil.rmtree(temp_dir, ignore_errors=True)


def submit(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    return subprocess.run([sys.executable, "-m", "polytask", "submit", *args], capture_output=True, text=True, timeout=240, env=env)


def submission_ids(address: str) -> set[str]:
    from ray.job_submission import JobSubmissionClient

    return {job.submission_id for job in JobSubmissionClient(address).list_jobs()}


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process in group ``pgid``, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, _, rest = stat.read_text().partition(" (")
            fields = rest.rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            members.append((int(pid), fields[0]))
    return members


def test_the_tracking_server_keeps_runs_and_artifacts_over_http(stack):
    from mlflow import MlflowClient

    server, _, _ = stack
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.uri) and server.port != 0
    assert len([m for m in group_members(server.process.pid) if m[1] != "Z"]) == 2  # mlflow and its one uvicorn worker
    client = MlflowClient(tracking_uri=server.uri)
    experiment = client.create_experiment("over-http")
    run = client.create_run(experiment, run_name="by-hand")
    client.log_metric(run.info.run_id, "val/sentiment/accuracy", 0.75, step=2)
    client.log_text(run.info.run_id, "hello", "notes/hello.txt")  # proxied to --artifacts-destination
    client.set_terminated(run.info.run_id)

    again = MlflowClient(tracking_uri=server.uri).get_run(run.info.run_id)
    assert again.data.metrics == {"val/sentiment/accuracy": 0.75} and again.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val/sentiment/accuracy")
    assert [(m.step, m.value) for m in history] == [(2, 0.75)]
    assert (server.folder / "mlflow.db").is_file()
    assert [p.read_text() for p in (server.folder / "artifacts").rglob("hello.txt")] == ["hello"]


def test_submit_runs_the_study_on_the_cluster_logging_to_the_tracking_server(stack, tmp_path, text_data):
    from mlflow import MlflowClient
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_actors

    server, head, address = stack
    working_dir = tmp_path / "project"
    (working_dir / "studies").mkdir(parents=True)
    (working_dir / "studies" / "tiny.yaml").write_text(yaml.safe_dump(study_dict(text_data, tracking={"uri": server.uri})))
    output = tmp_path / "out"

    completed = submit(str(working_dir / "studies" / "tiny.yaml"), "--address", address, "--working-dir", str(working_dir), "--output", str(output))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    job_id = re.search(r"Submitted job (\S+)", completed.stdout).group(1)
    assert job_id.startswith("polytask-tiny-")
    assert f"{address}/#/jobs/{job_id}" in completed.stdout
    assert f"polytask run studies/tiny.yaml --output {output}" in completed.stdout
    assert "Study 'tiny': 1 trials" in completed.stdout and f"MLflow {server.uri}" in completed.stdout  # the job's own output, streamed
    assert "[1/1] finished equal/seed0" in completed.stdout
    assert f"Job {job_id} SUCCEEDED" in completed.stdout
    assert (output / "comparison.md").is_file() and (output / "study.json").is_file()

    # The job's driver connected to this cluster (Ray sets RAY_ADDRESS for a job's entrypoint to
    # the cluster's GCS, and `polytask run` reads it) instead of starting a Ray of its own: Ray
    # knows the driver under the submission, and the trial's actor ran on this cluster's node.
    info = JobSubmissionClient(address).get_job_info(job_id)
    assert info.job_id is not None, "the job's driver never connected to the cluster"
    actors = list_actors(address=address, filters=[("job_id", "=", info.job_id)], detail=True)
    assert "ImplicitFunc" in {actor.class_name for actor in actors}  # Tune's function trainable
    assert {actor.node_id for actor in actors} == {head.head_node.node_id}

    # ... and the trial logged to the tracking server over HTTP.
    client = MlflowClient(tracking_uri=server.uri)
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.`polytask.study` = 'tiny'")
    trial = next(run for run in runs if run.info.run_name == "equal/seed0")
    assert trial.info.status == "FINISHED" and "val/sentiment/accuracy" in trial.data.metrics


def test_submit_refuses_a_bad_spec_before_submitting_anything(stack, tmp_path):
    _, _, address = stack
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ndata: {source: {kind: builtin, name: rotten_tomatoes}}\ntasks: []\nencoder: {kind: random}\ncandidates: [{weighting: nash}]\n")
    before = submission_ids(address)
    completed = submit(str(spec), "--address", address, "--working-dir", str(tmp_path))
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "candidates[0].weighting: unknown weighting strategy 'nash'" in completed.stderr
    assert "Submitted" not in completed.stdout
    assert submission_ids(address) == before


def test_stopping_the_tracking_server_leaves_no_process(stack):
    server, _, _ = stack
    pgid = server.process.pid
    server.stop()
    assert server.process.returncode is not None
    assert [m for m in group_members(pgid) if m[1] != "Z"] == []  # the uvicorn worker is gone too
