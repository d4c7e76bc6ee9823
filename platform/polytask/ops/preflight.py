"""Checks of the world a study needs, made before anything starts: the tracking store and the
Ray cluster answer (the output folder: polytask.ops.output). Each failure is a
:class:`StudyError` naming the field, the value and the fix (exit code 2, no trial started,
nothing written to MLflow); each check takes at most a few seconds.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from polytask.errors import Problem, StudyError

TIMEOUT_S = 3.0  # a server that answers at all answers within this


def check_tracking(uri: str | None) -> None:
    """An MLflow tracking server (http, https) or database (postgresql, mysql) at ``uri``
    answers; a SQLite store's folder exists. None: the default store in the output folder."""
    if not uri:
        return
    from polytask.ops.credentials import mask_credentials

    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.split("+", 1)[0]
    shown = mask_credentials(uri)
    fix = "start one (polytask server) or fix tracking.uri / --tracking-uri / MLFLOW_TRACKING_URI"
    if scheme in ("http", "https"):
        try:
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=TIMEOUT_S).close()
        except urllib.error.HTTPError:
            return  # it answered (a proxy or an older server without /health): reachable
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StudyError([Problem("tracking.uri", f"no MLflow tracking server answers at {shown} ({reason}); {fix}")]) from None
    elif scheme in ("postgresql", "mysql"):
        port = parsed.port or {"postgresql": 5432, "mysql": 3306}[scheme]
        _connect("tracking.uri", shown, parsed.hostname or "localhost", port, f"no database answers at {shown}", fix)
    elif scheme == "sqlite":
        path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path  # sqlite:///rel, sqlite:////abs
        folder = Path(path).parent if path and path != ":memory:" else None
        if folder is not None and not folder.resolve().is_dir():
            raise StudyError([Problem("tracking.uri", f"{shown}: the folder {folder.resolve()} does not exist; create it or fix tracking.uri / --tracking-uri")])


def check_address(address: str | None) -> None:
    """Something listens at a Ray cluster's address (``host:port`` or ``ray://host:port``), so
    an unreachable cluster is said in seconds rather than after ray.init's long retries."""
    if not address or address in ("auto", "local"):
        return
    parsed = urllib.parse.urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parsed.hostname, parsed.port or (10001 if address.startswith("ray://") else None)  # Ray Client's port
    except ValueError:
        host = port = None
    if not host or not port:
        raise StudyError([Problem("--address", f"{address!r} is not a Ray address; give host:port of the head's GCS (e.g. 10.0.0.5:6379), ray://host:10001, or leave it out for a local Ray")])
    fix = "start the cluster (ray start --head) or fix --address / RAY_ADDRESS"
    _connect("--address", address, host, port, f"no Ray cluster answers at {address!r}", fix)


def _connect(field: str, shown: str, host: str, port: int, what: str, fix: str) -> None:
    try:
        socket.create_connection((host, port), timeout=TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StudyError([Problem(field, f"{what} ({reason}); {fix}")]) from None
