"""Wall time and peak memory of the quickstart study, as a user runs it.

Runs ``polytask run studies/quickstart.yaml`` in a subprocess and samples, every 0.5 s, the
proportional set size (PSS: shared pages divided among the processes sharing them, so Ray's
shared-memory object store is not counted once per worker) summed over the whole process tree:
the driver, Ray's GCS and raylet, and the trial workers.

    python benchmarks/quickstart.py [--output runs/quickstart-bench]

Prints the study's own output, then one line: wall time, peak PSS of the tree, peak process count.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def children(pid: int) -> list[int]:
    found = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            for child in map(int, text):
                found += children(child)
    except OSError:
        pass
    return found


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(REPO / "studies" / "quickstart.yaml"))
    parser.add_argument("--output", default=str(REPO / "runs" / "quickstart-bench"))
    args = parser.parse_args()
    command = [sys.executable, "-m", "polytask", "run", args.spec, "--output", args.output, "--overwrite"]
    started = time.monotonic()
    process = subprocess.Popen(command)
    peak = {"pss": 0, "processes": 0}

    def sample() -> None:
        while process.poll() is None:
            tree = children(process.pid)
            peak["pss"] = max(peak["pss"], sum(pss_kib(p) for p in tree))
            peak["processes"] = max(peak["processes"], len(tree))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    wall = time.monotonic() - started
    sampler.join()
    print(f"quickstart: exit {code}, wall {wall:.0f} s ({wall / 60:.1f} min), peak memory {peak['pss'] / 2**20:.2f} GiB PSS over {peak['processes']} processes")
    sys.exit(code)


if __name__ == "__main__":
    main()
