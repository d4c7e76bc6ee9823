"""The checks made before a study starts (polytask.ops.preflight, polytask.ops.output): each failure names the field,
the value and the fix; each passes on what a working study has."""

from __future__ import annotations

import errno
import http.server
import threading

import pytest

from polytask.errors import StudyError
from polytask.ops import output
from polytask.ops.output import check_output_folder
from polytask.ops.preflight import check_address, check_tracking
from polytask.spec import parse_spec
from tests.bad_inputs import closed_port


def message(call) -> str:
    with pytest.raises(StudyError) as info:
        call()
    assert len(info.value.problems) == 1
    return str(info.value.problems[0])


def test_an_output_folder_to_be_made_inside_a_writable_one_passes(tmp_path):
    check_output_folder(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()  # checked, not created


def test_an_output_folder_inside_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    text = message(lambda: check_output_folder(tmp_path / "f" / "out"))
    assert text.startswith(f"output: {tmp_path / 'f' / 'out'} would be inside {tmp_path / 'f'}, which is a file") and "--output" in text


def test_a_full_disk_is_refused(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 1024))
    assert "is on a full disk (1 KiB free" in message(lambda: check_output_folder(tmp_path / "out"))


def test_enospc_while_making_the_folder_is_said_plainly(tmp_path, monkeypatch):
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output, "_write_probe", full)
    text = message(lambda: output.make_output_folder(tmp_path / "out", overwrite=False))
    assert text == f"output: {tmp_path / 'out'} is on a full disk (No space left on device); free some space or choose another folder with --output"
    assert not (tmp_path / "out" / ".write-test").exists()


def test_tracking_uris():
    check_tracking(None)
    check_tracking("sqlite:///relative.db")
    port = closed_port()
    text = message(lambda: check_tracking(f"http://127.0.0.1:{port}"))
    assert text.startswith(f"tracking.uri: no MLflow tracking server answers at http://127.0.0.1:{port}") and "polytask server" in text
    text = message(lambda: check_tracking(f"postgresql://u:secret@127.0.0.1:{port}/db"))
    assert "u:***@" in text and "secret" not in text


def test_a_server_that_answers_anything_is_reachable():
    class NoHealth(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NoHealth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:  # a 404 on /health still answers: an HTTP server is there (a proxy, an older MLflow), so no problem
        assert check_tracking(f"http://127.0.0.1:{server.server_address[1]}") is None
    finally:
        server.shutdown()


def test_ray_addresses():
    for fine in (None, "", "auto", "local"):
        check_address(fine)
    assert "is not a Ray address" in message(lambda: check_address("head-without-port"))
    port = closed_port()
    text = message(lambda: check_address(f"ray://127.0.0.1:{port}"))
    assert text.startswith(f"--address: no Ray cluster answers at 'ray://127.0.0.1:{port}'") and "ray start --head" in text


@pytest.mark.parametrize("field, raw, shown", [
    ("output", {"output": "../out"}, "'../out'"),
    ("execution.storage", {"execution": {"storage": "a/../../tune"}}, "'a/../../tune'"),
    ("tracking.uri", {"tracking": {"uri": "sqlite:///../mlflow.db"}}, "'../mlflow.db'"),
])
def test_relative_write_paths_may_not_climb_out(make_study, field, raw, shown):
    with pytest.raises(StudyError) as info:
        parse_spec(make_study(**raw))
    (problem,) = info.value.problems
    assert problem.path == field and shown in problem.message and "without '..'" in problem.message


def test_absolute_and_plain_relative_write_paths_are_allowed(make_study):
    spec = parse_spec(make_study(output="runs/x", execution={"storage": "/mnt/shared/tune"}, tracking={"uri": "sqlite:////tmp/m.db"}))
    assert spec.execution.storage == "/mnt/shared/tune"


def test_a_folder_holding_a_study_is_refused_unless_overwritten(tmp_path):
    (tmp_path / "study.json").write_text("{}")
    text = message(lambda: check_output_folder(tmp_path))
    assert text.startswith(f"output: {tmp_path} already holds the results of a study") and "--overwrite" in text
    check_output_folder(tmp_path, overwrite=True)


def test_overwrite_removes_the_earlier_results_and_keeps_the_rest(tmp_path):
    for name in ("study.json", "spec.yaml", "comparison.md", "front.png", "mlflow.db"):
        (tmp_path / name).write_text("x")
    (tmp_path / "tune").mkdir()
    output.make_output_folder(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]  # the MLflow store keeps earlier runs
