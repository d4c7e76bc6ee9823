"""Tracking faults against a real `mlflow server`. A create_run whose reply is lost leaves one run
(a proxy drops the reply). The tracking server restarted mid-study loses no point: a real study (4 trials) logs over HTTP
to a real `mlflow server` (SQLite store); once a trial has logged its first epoch the server's
whole process group is stopped, stays down for longer than polytask's old retry budget (~20 s)
tolerated, and is started again on the same port and store. The trials wait with their points
buffered (polytask.ops.tracking: retry window, back-off) and the study ends normally; then every
metric history of every trial is counted: each point once, none missing."""

from __future__ import annotations

import http.client
import http.server
import io
import json
import threading
import time

import pytest
from mlflow import MlflowClient
from rich.console import Console

from benchmarks.tracking_load import PointCount, count_points, restart_server
from polytask.ops.server import TrackingServer
from polytask.ops.tracking import Tracking, TrialRun
from polytask.spec import parse_spec
from polytask.study.run import run_study
from tests.support import study_dict

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

OUTAGE = 25.0  # seconds the server stays stopped, before the ~10 s it takes to start again
EPOCHS, STEPS_PER_EPOCH, LOG_EVERY = 4, 60, 5


def test_a_tracking_server_restarted_mid_study_loses_no_point(tmp_path, text_data):
    server = TrackingServer(port=0, folder=tmp_path / "mlflow").start()
    fault: dict = {}
    try:
        raw = study_dict(text_data, candidates=[{"weighting": "equal"}, {"weighting": "uncertainty"}], seeds=[0, 1], tracking={"uri": server.uri})
        raw["training"].update(epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, log_every_steps=LOG_EVERY)
        injector = threading.Thread(target=_restart_after_first_epoch, args=(server, fault), daemon=True)
        injector.start()
        result = run_study(parse_spec(raw), output=tmp_path / "out", console=Console(file=io.StringIO(), width=160))
        injector.join(timeout=120)
        assert "outage_s" in fault, fault

        client = MlflowClient(server.uri)
        tracking = result.tracking
        runs = client.search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'")
        assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
        assert {r.data.tags["polytask.outcome"] for r in runs} == {"completed"}
        assert client.get_run(tracking.parent_run_id).info.status == "FINISHED"
        assert (result.output / "comparison.md").exists()  # the report was written
        assert "report/comparison.md" in {a.path for a in client.list_artifacts(tracking.parent_run_id, "report")}

        total = PointCount()
        for run in runs:
            same_candidate = [r for r in runs if r.data.tags["polytask.candidate"] == run.data.tags["polytask.candidate"]]
            keys = {"epoch", "val/score", "val/sentiment/accuracy", "step/train/subjectivity/step_loss"}.union(*(r.data.metrics for r in same_candidate))
            total.add(count_points(client, run.info.run_id, {key: _expected_steps(key) for key in keys}))
    finally:
        server.stop()

    print(f"\nserver down {fault['outage_s']:.1f} s (stopped after {fault['stopped_at_s']:.1f} s): {total}")
    assert total.runs == 4 and total.expected > 4 * 30
    assert total.lost == 0 and total.duplicated == 0 and total.unexpected == 0 and total.found == total.expected
    assert fault["outage_s"] > 25


def _expected_steps(key: str) -> list[int]:
    """The steps a trial logs ``key`` at: step metrics every LOG_EVERY steps, test metrics once at
    the end, every other metric once per epoch."""
    if key.startswith("step/"):
        return list(range(LOG_EVERY, EPOCHS * STEPS_PER_EPOCH + 1, LOG_EVERY))
    if key.startswith("test/"):
        return [EPOCHS]
    return list(range(1, EPOCHS + 1))


def _restart_after_first_epoch(server: TrackingServer, fault: dict) -> None:
    """Once a trial run holds its first epoch's points, restart the server (OUTAGE s down)."""
    client, started = MlflowClient(server.uri), time.monotonic()
    while time.monotonic() - started < 300:
        try:
            experiment = client.get_experiment_by_name("tiny")
            if experiment is not None and any("val/score" in r.data.metrics for r in client.search_runs([experiment.experiment_id])):
                break
        except Exception:  # noqa: BLE001 (the server is busy starting the study: ask again)
            pass
        time.sleep(0.2)
    else:
        fault["error"] = "no trial logged an epoch within 300 s"
        return
    fault["stopped_at_s"] = time.monotonic() - started
    fault["outage_s"] = restart_server(server, OUTAGE)


class _DropFirstCreateReply(http.server.BaseHTTPRequestHandler):
    """A proxy in front of a real ``mlflow server``: every request goes through; the reply to the
    first ``runs/create`` is dropped after the server has created the run (the connection closes
    without an answer), as a network that loses a reply would."""

    upstream = ""
    creates: list[str] = []

    def do_GET(self):
        self._forward()

    def do_POST(self):
        self._forward()

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        host, port = self.upstream.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request(self.command, self.path, body, {k: v for k, v in self.headers.items() if k.lower() != "host"})
        reply = connection.getresponse()
        payload = reply.read()
        if self.path.endswith("/runs/create"):
            self.creates.append(json.loads(payload)["run"]["info"]["run_id"])
            if len(self.creates) == 1:
                self.close_connection = True  # the run exists; its caller never hears of it
                return
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_a_create_run_whose_reply_is_lost_leaves_one_run(tmp_path):
    server = TrackingServer(port=0, folder=tmp_path / "mlflow").start()
    _DropFirstCreateReply.upstream = server.uri.removeprefix("http://").rstrip("/")
    _DropFirstCreateReply.creates = []
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DropFirstCreateReply)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        direct = MlflowClient(server.uri)
        experiment = direct.create_experiment("lost-reply")
        parent = direct.create_run(experiment, run_name="study").info.run_id
        tracking = Tracking(uri=f"http://127.0.0.1:{proxy.server_address[1]}", experiment_id=experiment, parent_run_id=parent, study="study")
        run = TrialRun.open(tracking, trial_id="trial_1", run_name="equal/seed0", tags={}, params={"seed": 0}, resuming=False)

        assert len(_DropFirstCreateReply.creates) == 2  # the request was sent again and the store created a second run
        assert run.run_id == _DropFirstCreateReply.creates[1]
        live = direct.search_runs([experiment], filter_string="tags.`polytask.trial_id` = 'trial_1'")
        assert [r.info.run_id for r in live] == [run.run_id]  # one run for the trial
        lost = direct.get_run(_DropFirstCreateReply.creates[0])
        assert (lost.info.lifecycle_stage, lost.data.tags["polytask.outcome"]) == ("deleted", "duplicate")
        assert direct.get_run(run.run_id).data.params == {"seed": "0"}
    finally:
        proxy.shutdown()
        server.stop()
