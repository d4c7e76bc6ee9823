"""The MLflow tracking server recipe: the one place that knows how polytask starts ``mlflow server``.

A study on one machine logs to a SQLite file in its output folder; a study on a Ray cluster logs
to a tracking server every node can reach (``tracking.uri: http://mlflow:5000`` or
``--tracking-uri``). ``polytask server`` starts that server; :class:`TrackingServer` starts one for
tests and scripts. The command is lean on purpose — measured on 2 cores: MLflow's defaults start 15
processes (~3 GiB); ``--workers 1`` with ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` starts 2
(~0.5 GiB) in ~9 s — and artifacts are proxied by the server (``--serve-artifacts``, MLflow 3's
default), so trials upload through HTTP and need no credentials for the artifact store.

Where runs are stored (each: the argument, else the environment variable, else the local default
under ``runs/mlflow-server/``, created on first use):

- backend store: ``MLFLOW_BACKEND_STORE_URI``, else ``sqlite:///runs/mlflow-server/mlflow.db``
  (absolute). A PostgreSQL store needs a driver in the server's environment: with SQLAlchemy 2.1
  (installed here) ``postgresql://user:password@host:5432/mlflow`` means psycopg 3
  (``pip install 'psycopg[binary]'``); ``postgresql+psycopg2://...`` selects ``psycopg2``
  (``pip install psycopg2-binary``).
- artifacts: ``MLFLOW_ARTIFACTS_DESTINATION``, else ``runs/mlflow-server/artifacts``. An S3 bucket
  (``s3://bucket/mlflow``) needs ``boto3`` and the usual ``AWS_*`` variables (or
  ``MLFLOW_S3_ENDPOINT_URL`` for MinIO).

Neither the PostgreSQL driver nor ``boto3`` is a polytask dependency; the container image installs them,
and Kubernetes passes both URIs from Secrets through the two environment variables. URIs are
printed with their password masked (:func:`polytask.ops.credentials.mask_credentials`); the server process itself receives
them on its command line, as ``mlflow server`` expects (so ``ps`` on that machine shows them: in a
pod, only to the pod).

Security: the server binds to 127.0.0.1 unless told otherwise and has no authentication; anyone who
can reach its port can read and write every run. Binding to ``0.0.0.0`` (a cluster, a pod) also
meets MLflow's Host-header check, which by default accepts only localhost and private IP addresses:
clients that use a DNS name (``http://mlflow:5000``) need ``MLFLOW_SERVER_ALLOWED_HOSTS=mlflow:5000,...``
in the server's environment (passed through unchanged).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_FOLDER = Path("runs/mlflow-server")
BACKEND_ENV = "MLFLOW_BACKEND_STORE_URI"
ARTIFACTS_ENV = "MLFLOW_ARTIFACTS_DESTINATION"
def resolve_stores(backend_store_uri: str | None = None, artifacts_destination: str | None = None, folder: Path | None = None) -> tuple[str, str]:
    """The backend store URI and the artifacts destination: each given value, else its environment
    variable, else the local default under ``folder`` (``runs/mlflow-server``), which is created."""
    backend = backend_store_uri or os.environ.get(BACKEND_ENV) or None
    artifacts = artifacts_destination or os.environ.get(ARTIFACTS_ENV) or None
    if backend is None or artifacts is None:
        root = (folder or DEFAULT_FOLDER).resolve()
        root.mkdir(parents=True, exist_ok=True)
        backend = backend or f"sqlite:///{root / 'mlflow.db'}"
        if artifacts is None:
            (root / "artifacts").mkdir(exist_ok=True)
            artifacts = str(root / "artifacts")
    return backend, artifacts


def server_command(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    workers: int = 1,
    folder: Path | None = None,
) -> list[str]:
    """The ``mlflow server`` command line (run it with :func:`server_env`). Stores left as None
    are resolved by :func:`resolve_stores`."""
    backend, artifacts = resolve_stores(backend_store_uri, artifacts_destination, folder)
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", host,
        "--port", str(port),
        "--workers", str(workers),
        "--backend-store-uri", backend,
        "--artifacts-destination", artifacts,
    ]  # fmt: skip


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``base`` (default: this process's) with MLflow's job-execution
    workers off unless ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` is already set (they serve MLflow's
    GenAI jobs, which polytask does not use, and cost ~10 processes)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return env


def wait_for_health(url: str, process: subprocess.Popen, timeout: float, what: str, log: Callable[[], str], started: float | None = None, poll: float = 0.25) -> None:
    """Wait until ``url``/health answers 200; :class:`ServerError` (with ``log()``) when the
    process exits first or ``timeout`` seconds pass from ``started`` (time.monotonic; default now)."""
    deadline = (time.monotonic() if started is None else started) + timeout
    while True:
        if process.poll() is not None:
            raise ServerError(f"{what} exited with code {process.returncode} before answering on {url}\n{log()}")
        if answers(f"{url}/health"):
            return
        if time.monotonic() > deadline:
            raise ServerError(f"{what} did not answer {url}/health within {timeout:g} s\n{log()}")
        time.sleep(poll)


def client_host(host: str) -> str:
    """The host a client on this machine uses to reach a server bound to ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "localhost") else host


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def stop_process_group(process: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """Stop ``process`` and everything in its process group (it was started with
    ``start_new_session=True``): SIGTERM, then SIGKILL for whatever is left after ``timeout``
    seconds. Returns the leader's exit code."""
    pgid = process.pid  # a session leader's group id is its pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()  # reap the leader: a zombie still counts as a group member
        if process.returncode is not None and not _group_alive(pgid):
            return process.returncode
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return process.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Orphans of the group are reparented to PID 1, which may never reap them (containers):
    # a group whose members are all zombies is gone.
    return any(state != "Z" for state in _group_states(pgid))


def _group_states(pgid: int) -> list[str]:
    """The states (``R``, ``S``, ``Z``...) of the processes in group ``pgid``, read from /proc."""
    if not Path("/proc/self/stat").exists():  # no /proc (macOS): trust killpg
        return ["?"]
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rpartition(")")[2].split()  # after "pid (comm)": state ppid pgrp
            if int(fields[2]) == pgid:
                states.append(fields[0])
    return states


def serve(command: list[str], env: dict[str, str], stop_timeout: float = 10.0, health_url: str | None = None, on_ready: Callable[[], None] | None = None) -> int:
    """Run a server in its own process group in the foreground until it exits, or until this
    process is told to stop (Ctrl-C, SIGTERM): then the whole group is stopped, so no server is left
    behind (``mlflow`` starts a uvicorn child). ``on_ready`` is called once, when ``health_url``
    first answers 200 (an MLflow server takes 10–30 s to start on 2 cores: a URL printed before
    would not answer). Returns the server's exit code, 0 when stopped."""
    process = subprocess.Popen(command, env=env, start_new_session=True)
    stopping: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    ready = health_url is None
    try:
        while not stopping:
            try:
                return process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if not ready and answers(health_url):
                    ready = True
                    if on_ready is not None:
                        on_ready()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop_process_group(process, stop_timeout)
        signal.signal(signal.SIGTERM, previous)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a local server: never through $http_proxy


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET url`` (a server's ``/health``) answers 200 within ``timeout`` seconds."""
    with contextlib.suppress(OSError, urllib.error.URLError):
        with _DIRECT.open(url, timeout=timeout) as response:
            return response.status == 200
    return False


class ServerError(RuntimeError):
    """The tracking server did not come up; the message ends with the tail of its log."""


class TrackingServer:
    """A local ``mlflow server`` for tests and scripts::

        with TrackingServer(port=0, folder=tmp_path) as server:
            MlflowClient(server.uri).create_experiment("x")

    Starts the server in its own session, waits until ``GET /health`` answers 200 (or raises
    :class:`ServerError` with the tail of the server's log), and on exit stops its whole process
    group. ``port=0`` picks a free port. The log goes to ``folder/server.log`` when a folder is
    given, else to a temporary file (``.log_path``)."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        backend_store_uri: str | None = None,
        artifacts_destination: str | None = None,
        folder: Path | None = None,
        workers: int = 1,
        start_timeout: float = 90.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.backend_store_uri = backend_store_uri
        self.artifacts_destination = artifacts_destination
        self.folder = Path(folder) if folder is not None else None
        self.workers = workers
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._log: IO[bytes] | None = None
        self._launched = 0.0

    @property
    def uri(self) -> str:
        return f"http://{client_host(self.host)}:{self.port}"

    def start(self, wait: bool = True) -> TrackingServer:
        """Start the server and wait until it answers; ``wait=False`` returns at once (do other
        work while it starts, then call :meth:`wait_until_healthy`)."""
        if self.process is not None:
            raise RuntimeError("the tracking server is already started")
        if self.port == 0:
            self.port = free_port(self.host)
        command = server_command(self.host, self.port, self.backend_store_uri, self.artifacts_destination, self.workers, self.folder)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._log = open(self.folder / "server.log", "wb")  # noqa: SIM115 (closed in stop)
        else:
            self._log = tempfile.NamedTemporaryFile(prefix="mlflow-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.log_path = Path(self._log.name)
        self.process = subprocess.Popen(command, env=server_env(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self._launched = time.monotonic()
        if wait:
            self.wait_until_healthy()
        return self

    def wait_until_healthy(self) -> None:
        """Return once ``GET /health`` answers 200; stop the server and raise :class:`ServerError`
        (with the tail of its log) if it exits first or does not answer within ``start_timeout``."""
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        if self.process is None:
            raise RuntimeError("the tracking server is not started")
        wait_for_health(self.uri, self.process, self.start_timeout, "mlflow server", self.log_tail, started=self._launched)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no server log)"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"last {len(text)} lines of {self.log_path}:\n" + "\n".join(text)

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process, self.stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
