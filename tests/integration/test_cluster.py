"""A study on a 2-node Ray cluster built in-process (ray.cluster_utils.Cluster, one fake GPU per
node), logging over HTTP to a real `mlflow server`: trials land on both nodes, `gpu: 0.5`
trials share a GPU two at a time, and every trial's metrics reach the tracking server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from mlflow import MlflowClient
from ray.cluster_utils import Cluster
from rich.console import Console

from polytask.ops.server import TrackingServer
from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture
def two_nodes():
    """Head and one worker node, 2 CPUs and 1 (fake) GPU each. CUDA is absent on this machine,
    so the trials Ray gives a GPU train on the CPU (train.py falls back where none is visible)."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 1})
    try:
        cluster.add_node(num_cpus=2, num_gpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


def test_trials_spread_over_two_nodes_pack_two_per_gpu_and_log_over_http(tmp_path, text_data, two_nodes):
    with TrackingServer(port=0, folder=tmp_path / "mlflow") as server:
        raw = study_dict(
            text_data,
            candidates=[{"weighting": "equal"}, {"weighting": "uncertainty"}],
            seeds=[0, 1],  # 4 trials for the 4 slots: 2 nodes x 1 GPU / 0.5
            resources={"cpu": 0.5, "gpu": 0.5},
            tracking={"uri": server.uri},
            execution={"storage": str(tmp_path / "shared")},
        )
        raw["training"].update(epochs=2, steps_per_epoch=200)  # long enough to outlast the actors' start-up
        result = run_study(parse_spec(raw), output=tmp_path / "out", address=two_nodes.address, console=Console(file=io.StringIO(), width=160))

        client = MlflowClient(server.uri)
        tracking = result.tracking
        assert tracking.uri == server.uri and tracking.tune_path.startswith(str(tmp_path / "shared"))
        runs = client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
        assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}

        # every trial's metrics arrived over HTTP, each epoch once
        for run in runs:
            assert [m.step for m in client.get_metric_history(run.info.run_id, "val/sentiment/accuracy")] == [1, 2]
            assert "test/subjectivity/accuracy" in run.data.metrics and run.data.tags["polytask.device"] == "cpu"
        assert {a.path for a in client.list_artifacts(tracking.parent_run_id, "report")} >= {"report/comparison.md", "report/trials.csv"}

        # placed on both nodes, each trial given its node's one GPU
        node_ids = {node["NodeID"] for node in _alive_nodes(two_nodes)}
        assert {r.data.tags["polytask.node"] for r in runs} == node_ids
        assert {r.data.tags["polytask.gpus"] for r in runs} == {"0"}
        # gpu: 0.5 -> two trials at once on one GPU: on some node two runs overlap in time
        spans = sorted((r.data.tags["polytask.node"][:6], r.info.start_time % 10**6, r.info.end_time % 10**6) for r in runs)
        assert any(_overlap(a, b) for a in runs for b in runs if a is not b and a.data.tags["polytask.node"] == b.data.tags["polytask.node"]), spans
        assert (Path(tracking.tune_path) / "experiment_state.json").exists() or any(Path(tracking.tune_path).glob("experiment_state*.json"))


def _alive_nodes(cluster: Cluster) -> list[dict]:
    import ray

    ray.init(address=cluster.address)
    try:
        return [node for node in ray.nodes() if node["Alive"]]
    finally:
        ray.shutdown()


def _overlap(a, b) -> bool:
    return a.info.start_time < b.info.end_time and b.info.start_time < a.info.end_time
