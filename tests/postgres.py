"""A throwaway PostgreSQL server for tests, from the Debian packages (`apt-get install
postgresql`): initdb into a temporary folder, trust authentication, listening on 127.0.0.1 at a
free port, stopped and removed afterwards. PostgreSQL refuses to run as root, so as root the
server runs as the packages' `postgres` user."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from polytask.ops.server import free_port
from tests.debian import ensure_packages


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


@contextmanager
def postgres_server(database: str = "polytask") -> Iterator[str]:
    """Yield a SQLAlchemy URL (psycopg 3) of a fresh database on a server started for the test."""
    binaries = server_binaries()
    if binaries is None:
        reason = ensure_packages(["postgresql"], ["/usr/lib/postgresql/*/bin/pg_ctl"])
        binaries = server_binaries()
        if binaries is None:
            pytest.skip(reason or "PostgreSQL server binaries not installed (Debian: apt-get install postgresql)")
    as_root = os.geteuid() == 0
    runner = ["runuser", "-u", "postgres", "--"] if as_root else []
    # Its own folder under /tmp: the postgres user cannot enter pytest's root-only tmp folders.
    folder = Path(tempfile.mkdtemp(prefix="polytask-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if as_root:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    user = "postgres" if as_root else os.environ.get("USER", "postgres")
    subprocess.run([*runner, str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", user], check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={sockets}"
    subprocess.run([*runner, str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start"], check=True, capture_output=True)
    try:
        subprocess.run([*runner, str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database], check=True, capture_output=True)
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run([*runner, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
