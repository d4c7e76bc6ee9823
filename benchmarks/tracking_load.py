"""Tracking under load and through a server restart: N concurrent trials logging to one
``mlflow server``; every point counted back.

    python benchmarks/tracking_load.py                         # 16 writers, PostgreSQL backend: the load figures
    python benchmarks/tracking_load.py --restart --outage 25   # the same, the server stopped mid-run and restarted
    python benchmarks/tracking_load.py --backend sqlite --writers 4 --steps 20    # a quick look

The backend store is a throwaway PostgreSQL server from the Debian packages (``apt-get install
postgresql``; started and removed here, as the tests do) or a SQLite file; the server is
polytask's recipe (:class:`polytask.ops.server.TrackingServer`, one worker). A real study of 16
concurrent trials would not fit a small machine, so each trial is simulated, faithfully on the
tracking side: a process that opens a nested run under one parent run with polytask's own
:class:`polytask.ops.tracking.TrialRun` (tags, params), logs ``--metrics`` step metrics at every
step and a handful of epoch metrics at every epoch end, flushes at every epoch end (one
``log_batch``, as :class:`polytask.study.trial.TuneReporter` does before ``tune.report``) and finishes
the run. It does no training, so the load is the worst case: every writer logs as fast as the
server answers (``--step-seconds`` adds a pause per step).

Measured: the latency of each flush (one batched write, from the writer's side) as p50 / p99 /
max, points per second over the logging phase, and then, read back through the MLflow API,
every metric history of every run: points expected, found, lost (expected (key, step) pairs
missing) and duplicated (a (key, step) pair held more than once). ``--restart`` stops the
server's whole process group once a quarter of the flushes are done, waits ``--outage`` seconds
and starts it again on the same port and store; the writers' flushes wait (polytask's retry
window, ``POLYTASK_TRACKING_RETRY_SECONDS``, 300 s by default) and nothing may be lost.

``--markdown FILE`` writes the figures as a Markdown table, with the command that produced them,
between the markers ``<!-- tracking_load.py: begin/end -->`` of FILE (the rest stays):
``--markdown docs/reliability-tracking.md`` updates that page. The functions here are also used by
tests/integration/test_tracking_load.py and test_tracking_faults.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class PointCount:
    """Metric points of some runs, counted against what was logged."""

    runs: int = 0
    expected: int = 0
    found: int = 0
    lost: int = 0  # expected (key, step) pairs that are missing
    duplicated: int = 0  # points beyond the first at one (key, step)
    unexpected: int = 0  # points at a (key, step) nobody logged

    def add(self, other: PointCount) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def count_points(mlflow, run_id: str, expected: dict[str, list[int]]) -> PointCount:
    """Read every metric history of run ``run_id`` (the keys ``expected`` names and any other the
    run holds) and count its points against ``expected`` (key -> the steps logged)."""
    count = PointCount(runs=1)
    keys = set(expected) | set(mlflow.get_run(run_id).data.metrics)
    for key in sorted(keys):
        got = Counter(m.step for m in mlflow.get_metric_history(run_id, key))
        want = Counter(expected.get(key, []))
        count.expected += sum(want.values())
        count.found += sum(got.values())
        count.lost += sum((want - got).values())
        count.duplicated += sum(n - 1 for n in got.values() if n > 1)
        count.unexpected += sum(n for step, n in got.items() if step not in want)
    return count


def restart_server(server, outage: float) -> float:
    """Stop ``server`` (a started TrackingServer: SIGTERM to its process group, as a pod's
    restart does), wait ``outage`` seconds, start it again on the same port and store and wait
    until it answers. Returns the seconds it was unreachable."""
    stopped = time.monotonic()
    server.stop()
    time.sleep(outage)
    server.process = None  # TrackingServer starts once; the port and the store stay as they were
    server.start()
    return time.monotonic() - stopped


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


# --- the simulated trials --------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    writers: int = 16
    steps: int = 50
    metrics: int = 20  # step metrics, each logged at every step
    steps_per_epoch: int = 2  # an epoch ends (epoch metrics, one flush) every this many steps
    epoch_metrics: int = 6
    step_seconds: float = 0.0

    def expected(self) -> dict[str, list[int]]:
        """What each writer logs: key -> steps."""
        steps = list(range(1, self.steps + 1))
        epochs = list(range(1, self.steps // self.steps_per_epoch + 1))
        return {**{key: steps for key in self.step_keys()}, **{key: epochs for key in self.epoch_keys()}}

    def step_keys(self) -> list[str]:
        return [f"step/train/task{k:02d}/step_loss" for k in range(self.metrics)]

    def epoch_keys(self) -> list[str]:
        return ["epoch", "val/score", *[f"val/task{k:02d}/accuracy" for k in range(self.epoch_metrics - 2)]]

    @property
    def flushes(self) -> int:
        return self.steps // self.steps_per_epoch


def _writer(index: int, tracking: dict, load: Load, start: multiprocessing.synchronize.Barrier, flushed, results) -> None:
    """One simulated trial (a process of its own, as a Ray trial actor is)."""
    from polytask.ops.tracking import Tracking, TrialRun

    try:
        run = TrialRun.open(
            Tracking(**tracking), trial_id=f"writer{index:02d}", run_name=f"load/seed{index}",
            tags={"polytask.candidate": "load", "polytask.seed": str(index)}, params={"seed": index, "writer": index}, resuming=False,
        )  # fmt: skip
        start.wait()
        latencies, began = [], time.perf_counter()
        for step in range(1, load.steps + 1):
            run.log({key: 1.0 / (step + k) for k, key in enumerate(load.step_keys())}, step)  # as TuneReporter.step
            if step % load.steps_per_epoch == 0:  # as TuneReporter.epoch: the epoch's metrics, then flush
                epoch = step // load.steps_per_epoch
                run.log({key: epoch if key == "epoch" else 0.5 + 0.001 * (epoch + k) for k, key in enumerate(load.epoch_keys())}, epoch)
                flush_started = time.perf_counter()
                run.flush()
                latencies.append(time.perf_counter() - flush_started)
                with flushed.get_lock():
                    flushed.value += 1
            if load.step_seconds:
                time.sleep(load.step_seconds)
        run.finish("FINISHED", outcome="completed")
        results.put({"index": index, "run_id": run.run_id, "latencies": latencies, "sent": run.sent, "retries": run.retries, "seconds": time.perf_counter() - began})
    except BaseException as exc:  # reported, never a silent hang of the parent
        start.abort()  # a writer that could not start releases the others (and the parent) at once
        results.put({"index": index, "error": f"{type(exc).__name__}: {exc}"})


def run_load(uri: str, load: Load, fault: Callable[[], float] | None = None, timeout: float = 900.0) -> dict:
    """Run ``load.writers`` simulated trials against the tracking server at ``uri``, then count
    every point they logged. ``fault()``, when given, runs once a quarter of all flushes are
    done (while the writers go on) and returns the outage in seconds. Returns the figures."""
    from mlflow import MlflowClient

    from polytask.ops.tracking import client, retrying

    mlflow = client(uri)
    experiment = retrying(lambda: mlflow.create_experiment(f"tracking-load-{time.time_ns()}"))
    parent = retrying(lambda: mlflow.create_run(experiment, run_name="tracking-load", tags={"polytask.kind": "study", "polytask.study": "tracking-load"}))
    tracking = {"uri": uri, "experiment_id": experiment, "parent_run_id": parent.info.run_id, "study": "tracking-load"}

    context = multiprocessing.get_context("fork")  # mlflow and polytask are imported already: the writers start in ~0.1 s
    start, flushed, results = context.Barrier(load.writers + 1), context.Value("i", 0), context.Queue()
    processes = [context.Process(target=_writer, args=(i, tracking, load, start, flushed, results), daemon=True) for i in range(load.writers)]
    for process in processes:
        process.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a writer failed to start: its error is reported below
        start.wait(timeout=timeout)
    began = time.perf_counter()
    outage = None
    if fault is not None and not start.broken:
        deadline = time.monotonic() + timeout
        while flushed.value < load.writers * load.flushes // 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        outage = fault()
    reports = [results.get(timeout=timeout) for _ in processes]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join(timeout=30)
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} writer(s) failed: {errors[:3]}")
    retrying(lambda: mlflow.set_terminated(parent.info.run_id, status="FINISHED"))

    counted, reader = PointCount(), MlflowClient(uri)
    for report in reports:
        counted.add(count_points(reader, report["run_id"], load.expected()))
    statuses = Counter(reader.get_run(r["run_id"]).info.status for r in reports)
    latencies = [s for r in reports for s in r["latencies"]]
    sent = sum(r["sent"] for r in reports)
    return {
        "load": asdict(load),
        "writers": load.writers,
        "flushes": len(latencies),
        "points_sent": sent,
        "points_per_s": sent / elapsed,
        "logging_s": elapsed,
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p99_ms": 1000 * percentile(latencies, 99),
        "latency_max_ms": 1000 * max(latencies),
        "retries": sum(r["retries"] for r in reports),
        "outage_s": outage,
        "statuses": dict(statuses),
        "points": asdict(counted),
    }


# --- the command -------------------------------------------------------------------------------


@contextlib.contextmanager
def backend_store(kind: str) -> Iterator[str]:
    """A backend store URI: a throwaway PostgreSQL database (tests/postgres.py) or a SQLite file."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tracking-load-") as folder:
            yield f"sqlite:///{folder}/mlflow.db"
        return
    sys.path.insert(0, str(REPO))
    from tests.postgres import postgres_server

    try:
        with postgres_server(database="mlflow") as url:
            yield url
    except Exception as exc:
        if type(exc).__name__ == "Skipped":  # pytest.skip outside pytest: say why and stop
            raise SystemExit(f"PostgreSQL is not available: {exc}") from None
        raise


@dataclass
class Figures:
    command: str
    backend: str
    results: list[dict] = field(default_factory=list)


def to_markdown(figures: Figures) -> str:
    header = "| run | writers | points (expected) | found | lost | duplicated | flushes | p50 ms | p99 ms | max ms | points/s | retries | outage s | runs |"
    lines = [header, "|" + "---|" * 14]
    for r in figures.results:
        p = r["points"]
        name = "server restarted" if r["outage_s"] is not None else "load"
        outage = f"{r['outage_s']:.1f}" if r["outage_s"] is not None else "-"
        statuses = ", ".join(f"{n} {s}" for s, n in r["statuses"].items())
        lines.append(
            f"| {name} | {r['writers']} | {p['expected']} | {p['found']} | {p['lost']} | {p['duplicated']} | {r['flushes']} | "
            f"{r['latency_p50_ms']:.0f} | {r['latency_p99_ms']:.0f} | {r['latency_max_ms']:.0f} | {r['points_per_s']:.0f} | {r['retries']} | {outage} | {statuses} |"
        )
    return f"Backend store: {figures.backend}. Produced by:\n\n```bash\n{figures.command}\n```\n\n" + "\n".join(lines) + "\n"


BEGIN, END = "<!-- tracking_load.py: begin -->", "<!-- tracking_load.py: end -->"


def write_markdown(path: Path, table: str) -> None:
    """Put ``table`` between the BEGIN and END markers of ``path`` (the rest of the page stays as
    it is); a page without the markers gets them, with the table, at its end."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{table}{END}"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        text = head + block + rest.partition(END)[2]
    else:
        text = f"{text.rstrip()}\n\n{block}\n" if text else f"{block}\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres", help="the server's backend store (default: a throwaway PostgreSQL)")
    parser.add_argument("--writers", type=int, default=16, help="concurrent simulated trials (default 16)")
    parser.add_argument("--steps", type=int, default=50, help="training steps each writer logs (default 50)")
    parser.add_argument("--metrics", type=int, default=20, help="step metrics logged at every step (default 20)")
    parser.add_argument("--steps-per-epoch", type=int, default=2, help="an epoch (epoch metrics + one flush) every this many steps (default 2)")
    parser.add_argument("--step-seconds", type=float, default=0.0, help="pause per step, standing in for training (default 0: as fast as the server answers)")
    parser.add_argument("--restart", action="store_true", help="also run the load once more with the server stopped and restarted mid-run")
    parser.add_argument("--outage", type=float, default=25.0, help="seconds the server stays down before it is restarted (default 25)")
    parser.add_argument("--server-workers", type=int, default=1, help="mlflow server --workers (default 1, polytask's recipe)")
    parser.add_argument("--markdown", type=Path, help="write the figures as a Markdown table to this file")
    parser.add_argument("--json", type=Path, help="write the raw figures to this file")
    args = parser.parse_args(argv)

    from polytask.ops.credentials import mask_credentials
    from polytask.ops.server import TrackingServer

    load = Load(writers=args.writers, steps=args.steps, metrics=args.metrics, steps_per_epoch=args.steps_per_epoch, step_seconds=args.step_seconds)
    command = "python benchmarks/tracking_load.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    figures = Figures(command=command.strip(), backend="PostgreSQL (Debian packages)" if args.backend == "postgres" else "SQLite")
    with backend_store(args.backend) as store, tempfile.TemporaryDirectory(prefix="tracking-load-server-") as folder:
        server = TrackingServer(port=0, backend_store_uri=store, folder=Path(folder), workers=args.server_workers)
        with server:
            print(f"mlflow server on {server.uri}, backend {mask_credentials(store)}; {load.writers} writers x {load.steps} steps x {load.metrics} metrics", flush=True)
            for restart in [False, True] if args.restart else [False]:
                fault = (lambda: restart_server(server, args.outage)) if restart else None
                result = run_load(server.uri, load, fault)
                figures.results.append(result)
                print(json.dumps(result, indent=2), flush=True)
    table = to_markdown(figures)
    print(table)
    if args.markdown:
        write_markdown(args.markdown, table)
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    if any(r["points"]["lost"] or r["points"]["duplicated"] for r in figures.results):
        raise SystemExit("points were lost or duplicated")


if __name__ == "__main__":
    main()
