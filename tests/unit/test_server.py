"""The MLflow tracking server recipe (command line, environment, stores, start and stop) and
`polytask submit`'s checks and job description, without Ray or a real `mlflow server`: stand-in
processes take the server's place."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from polytask.errors import StudyError
from polytask.ops import server
from polytask.ops.credentials import mask_credentials
from polytask.ops.jobs import EXCLUDES, connect, job_entrypoint, runtime_env
from polytask.ops.server import ServerError, TrackingServer, client_host, resolve_stores, server_command, server_env


@pytest.fixture(autouse=True)
def no_store_env(monkeypatch):
    for name in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_ARTIFACTS_DESTINATION", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"):
        monkeypatch.delenv(name, raising=False)


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_default_command_binds_to_localhost_with_one_worker_and_local_stores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = server_command()
    assert command[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert option(command, "--host") == "127.0.0.1"
    assert option(command, "--port") == "5000"
    assert option(command, "--workers") == "1"
    folder = tmp_path / "runs" / "mlflow-server"
    assert option(command, "--backend-store-uri") == f"sqlite:///{folder / 'mlflow.db'}"
    assert option(command, "--artifacts-destination") == str(folder / "artifacts")
    assert (folder / "artifacts").is_dir()  # created, so the server can write there at once
    assert "--serve-artifacts" not in command and "--no-serve-artifacts" not in command  # MLflow 3 serves artifacts by default


def test_the_environment_turns_job_execution_off_unless_set():
    env = server_env({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    assert server_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"})["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
    assert server_env()["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_environment_variables_override_the_local_stores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", "postgresql://mlflow:secret@db:5432/mlflow")
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DESTINATION", "s3://bucket/mlflow")
    command = server_command(host="0.0.0.0", port=8080)
    assert option(command, "--backend-store-uri") == "postgresql://mlflow:secret@db:5432/mlflow"
    assert option(command, "--artifacts-destination") == "s3://bucket/mlflow"
    assert option(command, "--host") == "0.0.0.0" and option(command, "--port") == "8080"
    assert not (tmp_path / "runs").exists()  # no local default needed, none created


def test_arguments_win_over_the_environment_and_each_store_falls_back_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_BACKEND_STORE_URI", "postgresql://u:p@db/mlflow")
    backend, artifacts = resolve_stores("sqlite:////data/x.db", None, folder=tmp_path / "srv")
    assert backend == "sqlite:////data/x.db"
    assert artifacts == str(tmp_path / "srv" / "artifacts")
    backend, artifacts = resolve_stores(None, "s3://b", folder=tmp_path / "other")
    assert backend == "postgresql://u:p@db/mlflow" and artifacts == "s3://b"


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        ("postgresql://mlflow:s3cret@db:5432/mlflow", "postgresql://mlflow:***@db:5432/mlflow"),
        ("postgresql+psycopg2://user:pa:ss@w@db.example.com/mlflow", "postgresql+psycopg2://user:***@db.example.com/mlflow"),
        ("mysql+pymysql://root:x@localhost/db?charset=utf8mb4", "mysql+pymysql://root:***@localhost/db?charset=utf8mb4"),
        ("postgresql://db/mlflow?user=mlflow&password=s3cret&sslmode=require", "postgresql://db/mlflow?user=mlflow&password=***&sslmode=require"),
        ("postgresql://mlflow@db/mlflow", "postgresql://mlflow@db/mlflow"),  # a user name alone is not a secret
        ("https://user:token@mlflow.example.com", "https://user:***@mlflow.example.com"),
        ("sqlite:////work/runs/mlflow-server/mlflow.db", "sqlite:////work/runs/mlflow-server/mlflow.db"),
        ("s3://bucket/mlflow", "s3://bucket/mlflow"),
        ("/work/runs/mlflow-server/artifacts", "/work/runs/mlflow-server/artifacts"),
        ("", ""),
    ],
)
def test_mask_credentials_hides_passwords_only(uri, masked):
    assert mask_credentials(uri) == masked
    assert "s3cret" not in mask_credentials(uri)


def test_clients_reach_a_wildcard_bind_on_localhost():
    assert client_host("0.0.0.0") == "127.0.0.1"
    assert client_host("127.0.0.1") == "127.0.0.1"
    assert client_host("10.1.2.3") == "10.1.2.3"


def test_the_job_runs_polytask_on_the_shipped_spec_with_quoted_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    entrypoint = job_entrypoint(Path("studies/my study.yaml"), output="out dir", storage="s3://b/tune", tracking_uri="http://mlflow:5000")
    assert shlex.split(entrypoint) == [
        "polytask", "run", "studies/my study.yaml",
        "--output", str(tmp_path / "out dir"),  # made absolute: the job runs in a copy of the working dir
        "--storage", "s3://b/tune",
        "--tracking-uri", "http://mlflow:5000",
    ]  # fmt: skip
    assert job_entrypoint(Path("s.yaml")) == "polytask run s.yaml"
    assert job_entrypoint(Path("s.yaml"), output="/shared/runs/x") == "polytask run s.yaml --output /shared/runs/x"


def test_the_working_dir_ships_without_environments_results_or_caches(tmp_path):
    env = runtime_env(tmp_path)
    assert env == {"working_dir": str(tmp_path), "excludes": EXCLUDES}
    assert {".git", ".venv", "runs", "**/__pycache__"} <= set(EXCLUDES)


@pytest.mark.parametrize(
    ("address", "says"),
    [
        (None, "no cluster given; pass --address"),
        ("", "no cluster given; pass --address"),
        ("ray://head:10001", "is a Ray Client address"),
    ],
)
def test_a_missing_or_wrong_kind_of_address_is_refused_before_any_request(address, says):
    with pytest.raises(StudyError) as error:
        connect(address)
    assert error.value.problems[0].path == "--address"
    assert says in error.value.problems[0].message
    assert "http://HEAD:8265" in error.value.problems[0].message


# A stand-in for `mlflow server` (which takes ~10 s to start): a leader that starts a child, as
# mlflow starts uvicorn, and prints both pids.
FAKE_SERVER = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print("pids", child.pid, flush=True)
    time.sleep(120)
""")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_server_that_exits_at_once_fails_with_the_tail_of_its_log(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "server_command", lambda *args: [sys.executable, "-c", "print('no such backend: nosuchdb://x'); raise SystemExit(3)"])
    with pytest.raises(ServerError) as error:
        TrackingServer(port=0, folder=tmp_path).start()
    message = str(error.value)
    assert message.startswith("mlflow server exited with code 3 before answering on http://127.0.0.1:")
    assert f"of {tmp_path / 'server.log'}:" in message and "no such backend: nosuchdb://x" in message


def test_a_server_that_never_answers_times_out_and_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(server, "server_command", lambda *args: [sys.executable, "-c", FAKE_SERVER])
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"did not answer http://127\.0\.0\.1:\d+/health within 1\.5 s"):
        TrackingServer(port=0, folder=tmp_path, start_timeout=1.5).start()
    assert time.monotonic() - started < 15
    child = int((tmp_path / "server.log").read_text().split()[1])
    assert not alive(child)  # the server's whole process group was stopped


def test_serve_stops_the_whole_group_on_sigterm(tmp_path):
    """What `polytask ui` and `polytask server` do when stopped: no server is left behind."""
    script = f"import sys; from polytask.ops.server import serve; sys.exit(serve([sys.executable, '-c', {FAKE_SERVER!r}], {{}}, stop_timeout=5))"
    foreground = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(foreground.stdout.readline().split()[1])
        assert alive(child)
        os.kill(foreground.pid, signal.SIGTERM)
        assert foreground.wait(timeout=15) == 0
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child)
    finally:
        foreground.kill()


def test_submit_checks_the_spec_and_the_working_dir_before_contacting_the_cluster(tmp_path, text_data):
    import yaml

    from polytask.ops.jobs import submit_study
    from tests.support import study_dict

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(study_dict(text_data, candidates=[{"weighting": "nash"}])))
    with pytest.raises(StudyError) as error:  # no address either: the spec is checked first
        submit_study(bad, None, working_dir=tmp_path)
    assert "candidates[0].weighting: unknown weighting strategy 'nash'" in str(error.value)

    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(study_dict(text_data)))
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(StudyError) as error:
        submit_study(good, "http://127.0.0.1:9", working_dir=tmp_path / "elsewhere")
    assert error.value.problems[0].path == "SPEC"
    assert f"is not inside the working directory {tmp_path / 'elsewhere'}" in error.value.problems[0].message


def test_submit_to_an_unreachable_address_exits_2_naming_the_option(tmp_path, text_data, monkeypatch):
    import yaml
    from typer.testing import CliRunner

    from polytask.cli import app
    from polytask.ops.server import free_port
    from tests.support import study_dict

    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(study_dict(text_data)))
    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(app, ["submit", str(spec), "--address", address, "--working-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert f"--address: cannot reach a Ray dashboard at '{address}' (connection refused or host unknown)" in message
    assert "http://HEAD:8265" in message

    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", address)  # as Ray's own job CLI reads it
    result = CliRunner().invoke(app, ["submit", str(spec), "--working-dir", str(tmp_path)])
    assert result.exit_code == 2 and address in result.stderr
