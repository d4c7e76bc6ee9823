"""Load: 16 concurrent trials logging to one `mlflow server` with a PostgreSQL backend (the
Debian packages, started by the test); every point is counted back. The trials are simulated
processes that log through polytask's own TrialRun exactly as a trial does (nested run, tags,
params, step points, epoch points, one batched flush per epoch, finish); see
benchmarks/tracking_load.py, which runs the full size and writes docs/reliability-tracking.md."""

from __future__ import annotations

import pytest

from benchmarks.tracking_load import Load, run_load
from polytask.ops.server import TrackingServer
from tests.postgres import postgres_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_sixteen_concurrent_trials_lose_and_double_no_point_on_postgresql(tmp_path):
    load = Load(writers=16, steps=20, metrics=20, steps_per_epoch=2)
    with postgres_server(database="mlflow") as url, TrackingServer(port=0, backend_store_uri=url, folder=tmp_path / "server") as server:
        result = run_load(server.uri, load, timeout=300)

    points = result["points"]
    print(f"\n16 writers on PostgreSQL: {points}; p50 {result['latency_p50_ms']:.0f} ms, p99 {result['latency_p99_ms']:.0f} ms, {result['points_per_s']:.0f} points/s")
    per_writer = load.steps * load.metrics + load.flushes * load.epoch_metrics
    assert points["runs"] == 16 and points["expected"] == 16 * per_writer
    assert points["lost"] == 0 and points["duplicated"] == 0 and points["unexpected"] == 0
    assert points["found"] == points["expected"] == result["points_sent"]
    assert result["statuses"] == {"FINISHED": 16}
    assert result["flushes"] == 16 * load.flushes  # every flush's latency was measured
    assert 0 < result["latency_p50_ms"] <= result["latency_p99_ms"] <= result["latency_max_ms"]
