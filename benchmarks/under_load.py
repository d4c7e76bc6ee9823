"""Timing-sensitive tests run beside a CPU burner: does what a study records depend on how busy
the machine is?

    python benchmarks/under_load.py                         # the scheduler, resume and fault tests, 3 rounds
    python benchmarks/under_load.py --rounds 5 --burners-per-core 2 -- tests/integration/test_schedulers.py

Starts ``--burners-per-core`` busy processes per core (pure Python loops at niceness ``--nice``,
default 15: the niceness Ray gives its worker processes, so a burner competes with a trial as
another study's trial would; at 0 the trials, niced by Ray, get almost no CPU), runs the given tests ``--rounds`` times with pytest while they burn, stops the
burners (by their own PIDs: nothing else is touched) and prints one line per round and a
summary (rounds passed, the failed test ids). Exit code 1 when any round failed. Long: every
round is a full run of the tests on a machine with a third of its CPU; run on purpose, not in CI.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time

DEFAULT_TESTS = [
    "tests/integration/test_schedulers.py",
    "tests/integration/test_resume.py",
    "tests/integration/test_faults.py",
]


def burn(niceness: int) -> None:
    os.nice(niceness)
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="how many times to run the tests (default 3)")
    parser.add_argument("--burners-per-core", type=int, default=2, help="busy processes per CPU core (default 2)")
    parser.add_argument("--nice", type=int, default=15, help="the burners' niceness (default 15, as Ray's workers)")
    parser.add_argument("tests", nargs="*", default=DEFAULT_TESTS, help="pytest paths or node ids (default: scheduler, resume and fault tests)")
    args = parser.parse_args()

    # SIGTERM (and SIGINT, ignored in a background job) ends the rounds through the finally below,
    # so no burner outlives this script
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    burners = [multiprocessing.Process(target=burn, args=(args.nice,), daemon=True) for _ in range(args.burners_per_core * (os.cpu_count() or 1))]
    for process in burners:
        process.start()
    print(f"{len(burners)} burners (nice {args.nice}) on {os.cpu_count()} cores; {args.rounds} rounds of {' '.join(args.tests)}", flush=True)
    failures: list[list[str]] = []
    try:
        for round_ in range(1, args.rounds + 1):
            started = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.tests], capture_output=True, text=True)
            failed = re.findall(r"^FAILED (\S+)", result.stdout, flags=re.MULTILINE)
            summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
            print(f"round {round_}: {summary} ({time.monotonic() - started:.0f} s)", flush=True)
            failures.append(failed if result.returncode == 0 or failed else [f"exit {result.returncode}"])
    finally:
        for process in burners:
            process.terminate()
        for process in burners:
            process.join()
    bad = [f for f in failures if f]
    print(f"{len(failures) - len(bad)} of {len(failures)} rounds passed" + (f"; failed: {sorted({t for f in bad for t in f})}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
