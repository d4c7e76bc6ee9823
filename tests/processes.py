"""`polytask ...` as a user's terminal runs it: in a session of its own, its output collected
line by line, stopped by Ctrl-C (SIGINT to its process group) or killed with everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def session_processes(sid: int) -> list[int]:
    """PIDs whose session is ``sid`` (the driver's, started with start_new_session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid:  # after the command: state, ppid, pgrp, session
                pids.append(int(entry.name))
    return pids


class Study:
    """`polytask ...` in a session of its own, its output collected line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "polytask", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None and time.monotonic() < deadline, f"no {text!r} in:\n{self.log}"
            time.sleep(0.05)

    def finish(self, timeout: float = 600) -> int:
        """Wait for the command to exit; its exit code, its output read to the end."""
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return self.process.returncode

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the command's foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def kill_all(self) -> None:
        """SIGKILL the driver and everything in its session (the local Ray it started)."""
        sid = self.process.pid
        for pid in session_processes(sid):
            os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while session_processes(sid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not session_processes(sid), "processes of the killed study are still alive"
