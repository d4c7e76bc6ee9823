"""Debian packages the tests need (Chromium, PostgreSQL), installed on demand.

A fresh CI machine runs ``bash scripts/install.sh && .venv/bin/python -m pytest`` as root with
Debian's apt reachable, so a test that needs a program from a Debian package installs it itself;
it is skipped, with the reason, only where it cannot be installed (not root, no apt-get, apt-get
failed). Installs are serialised by a file lock, so parallel test sessions do not collide (apt's
own dpkg lock is waited for too, rather than failing at once).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from filelock import FileLock

LOCK = Path(tempfile.gettempdir()) / "polytask-apt-get.lock"
SEARCHED = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")  # where Debian puts programs, when PATH lacks them
APT_TIMEOUT = 1800  # seconds; Chromium is ~100 MB to download and unpack


def found(binary: str) -> bool:
    """Whether ``binary`` is installed: a name looked up on PATH and in /usr/bin, /usr/sbin...,
    or an absolute path, which may be a glob (``/usr/lib/postgresql/*/bin/pg_ctl``)."""
    if os.path.isabs(binary):
        return any(os.access(path, os.X_OK) for path in glob.glob(binary))
    return shutil.which(binary) is not None or any(os.access(os.path.join(folder, binary), os.X_OK) for folder in SEARCHED)


def ensure_packages(packages: list[str], binaries: list[str]) -> str | None:
    """Make sure every one of ``binaries`` is installed, installing the Debian ``packages`` that
    provide them when one is missing. Returns None when they are all there (now), else why not,
    worded for ``pytest.skip``."""
    if all(found(binary) for binary in binaries):
        return None
    missing = ", ".join(binary for binary in binaries if not found(binary))
    cannot = f"{missing} not installed and cannot be (Debian: apt-get install {' '.join(packages)})"
    if os.geteuid() != 0:
        return f"{cannot}: not root"
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return f"{cannot}: no apt-get"
    with FileLock(str(LOCK), timeout=APT_TIMEOUT):
        if all(found(binary) for binary in binaries):  # another session installed them meanwhile
            return None
        failure = _apt_get(apt_get, "install", "-y", "--no-install-recommends", *packages)
        if failure is not None:  # most often stale package lists (404s, "Unable to locate package"): refresh them once
            failure = _apt_get(apt_get, "update") or _apt_get(apt_get, "install", "-y", "--no-install-recommends", *packages)
    if failure is not None:
        return f"{cannot}: apt-get failed: {failure}"
    if not all(found(binary) for binary in binaries):
        still = ", ".join(binary for binary in binaries if not found(binary))
        return f"{cannot}: apt-get installed {' '.join(packages)} but {still} is still missing"
    return None


def _apt_get(apt_get: str, *args: str) -> str | None:
    """Run ``apt-get args``; None when it succeeds, else the last line it printed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = [apt_get, "-o", "DPkg::Lock::Timeout=600", "-q", *args]
    try:
        completed = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=APT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"apt-get {args[0]} did not finish within {APT_TIMEOUT} s"
    if completed.returncode == 0:
        return None
    lines = [line for line in (completed.stderr + "\n" + completed.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or [f"exit code {completed.returncode}"])[-1].strip()
