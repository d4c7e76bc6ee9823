"""The platform's overhead, and its scaling on a 2-node local Ray cluster, side by side in one run.

    python benchmarks/distributed.py                  # full size: about 9-10 min on 2 idle cores
    python benchmarks/distributed.py --quick          # smoke run: about 3-4 min
    python benchmarks/distributed.py --parts overhead --trials 8 --steps 80

Every study is built here, in code: synthetic two-task text (subjectivity on every row,
sentiment missing on a third of them, as in the quickstart) and a randomly initialised BERT
(hidden 128, 2 layers), so nothing is downloaded. One candidate (equal weighting) over N seeds:
N identical-cost trials, one CPU and one torch thread each.

1. ``loop``: the data prepared once (``polytask.study.run.prepare``), then every planned trial
   trained back to back by ``polytask.training.train.train`` with a reporter that does nothing, one torch
   thread, after one untimed warm-up training. Sum of the trainings: T_loop.
2. ``study, 1 at a time``: the same trials through ``polytask.study.run.run_study`` on a local Ray
   (``max_concurrent_trials: 1``; the study reuses actors). Its one-off parts are timed apart by
   wrapping, in this process only, the functions run_study calls: ``ray.init`` (called here
   first, with run_study's arguments), ``prepare``, ``start_study`` (MLflow parent run),
   ``settle_runs``, ``write_report`` + ``print_table``, and ``Tuner.fit`` (the trials phase,
   T_fit). Overhead per trial = (T_fit - T_loop) / N. Each trial's span is read back from its
   MLflow run (created just before ``train``, ended just after), which splits T_fit - T_loop
   exactly into the actor's start, its warm-up (first trial beyond its loop time), the gaps
   between trials on the reused actor, the later trials' own extra work (MLflow, checkpoints)
   and the tail; without the once-per-actor start and warm-up, the rest per trial is the
   overhead a trial costs on a reused actor.
3. ``study, C at a time`` (C = ``--concurrency``, 2): the same, ``max_concurrent_trials: C``.
   Throughput = ideal / T_fit, ideal = (sum of the trials' durations in this study) / C; also
   without the actors' start, and against T_loop / C.
4. ``scaling``: longer CPU-bound trials, the same study (2 at a time) on a
   ``ray.cluster_utils.Cluster`` of one node with 1 CPU, then of two nodes with 1 CPU each (two
   raylets on this machine). Speed-up = T_fit(1 node) / T_fit(2 nodes); trials per node from the
   runs' ``polytask.node`` tags, else from the trial actors' nodes in Ray's actor table.

Prints Markdown tables to paste into docs/distributed-benchmarks.md and writes the raw numbers to
``<output>/results.json``. The driver, Ray's GCS and raylets and MLflow's SQLite writes share
the machine's cores with the trials: on 2 cores the 2-node cluster cannot reach 2x.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.console import Console

import polytask.results.report
import polytask.study.run
from polytask.ops.server import free_port
from polytask.spec import StudySpec
from polytask.study.run import prepare, run_study
from polytask.study.search import plan_trials
from polytask.training.train import Reporter, TrialPlan, train

REPO = Path(__file__).resolve().parents[1]
ENCODER = {"kind": "random", "hidden_size": 128, "layers": 2, "heads": 2, "intermediate_size": 256, "vocab_size": 500, "max_length": 32}
ROWS = {"train": 800, "validation": 200, "test": 200}
WORDS = {
    "fresh": ["good", "great", "excellent", "moving", "brilliant", "delightful"],
    "rotten": ["bad", "awful", "boring", "dull", "clumsy", "tedious"],
    "plot": ["follows", "young", "family", "town", "journey", "discovers", "secret", "war"],
    "filler": ["the", "a", "film", "movie", "this", "is", "and", "with", "of", "actor", "scene", "story"],
}


# --------------------------------------------------------------------------- the study


def write_data(folder: Path) -> dict[str, Path]:
    """Synthetic reviews and plot summaries: ``kind`` (review/plot) on every row, ``sentiment``
    (fresh/rotten) on reviews only, each shown by a few words."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for seed, (split, count) in enumerate(ROWS.items()):
        rng, rows = random.Random(seed), []
        for _ in range(count):
            if rng.random() < 0.3:
                words, kind, sentiment = rng.choices(WORDS["plot"], k=6) + rng.choices(WORDS["filler"], k=6), "plot", None
            else:
                sentiment = "fresh" if rng.random() < 0.55 else "rotten"
                words, kind = rng.choices(WORDS[sentiment], k=2) + rng.choices(WORDS["filler"], k=5), "review"
            rng.shuffle(words)
            rows.append({"review": " ".join(words), "kind": kind, "sentiment": sentiment})
        paths[split] = folder / f"{split}.csv"
        pd.DataFrame(rows).to_csv(paths[split], index=False)
    return paths


def make_spec(name: str, data: dict[str, Path], trials: int, steps: int, concurrency: int) -> StudySpec:
    """N trials = one candidate (equal weighting) x N seeds, two epochs of steps / 2 each."""
    return StudySpec.model_validate({
        "name": name,
        "data": {"source": {"kind": "files", **{split: str(path) for split, path in data.items()}}, "text_column": "review"},
        "tasks": [{"name": "subjectivity", "label_column": "kind"}, {"name": "sentiment", "label_column": "sentiment"}],
        "encoder": ENCODER,
        "candidates": [{"weighting": "equal"}],
        "seeds": list(range(trials)),
        "training": {"epochs": 2, "steps_per_epoch": max(1, steps // 2), "batch_size": 32, "eval_batch_size": 128, "learning_rate": 3e-3},
        "resources": {"cpu": 1},
        "execution": {"max_concurrent_trials": concurrency},
    })


# --------------------------------------------------------------------------- 1. the plain loop


def plain_loop(spec: StudySpec) -> dict[str, Any]:
    """Every planned trial trained back to back in this process, one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.perf_counter()
        data = prepare(spec)
        prepare_s = time.perf_counter() - started
        planned = plan_trials(spec)
        warm = spec.model_copy(update={"training": spec.training.model_copy(update={"epochs": 1, "steps_per_epoch": 2})})
        train(TrialPlan(warm, planned[0].candidate, planned[0].seed), data, Reporter())  # lazy initialisation, untimed
        seconds = {}
        for p in planned:
            started = time.perf_counter()
            train(TrialPlan(spec, p.candidate, p.seed, search_index=p.search_index), data, Reporter())
            seconds[p.seed] = time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)
    return {"prepare_s": prepare_s, "train_s": seconds, "total_s": sum(seconds.values())}


# --------------------------------------------------------------------------- 2-4. studies


class Phases:
    """Times the parts of run_study by wrapping, in this process only, the functions it calls.
    A function that is no longer there is skipped (its time then shows under "other")."""

    HOOKS = [
        ("prepare", polytask.study.run, "prepare"),
        ("parent_run", polytask.study.run, "start_study"),
        ("settle", polytask.study.run, "settle_runs"),
        ("report", polytask.results.report, "write_report"),
        ("report", polytask.results.report, "print_table"),
    ]

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.fit_window: tuple[float, float] | None = None  # wall clock (time.time) of Tuner.fit
        self.missing: list[str] = []
        self._saved: list[tuple[Any, str, Any]] = []

    def _wrap(self, label: str, function):
        def timed(*args, **kwargs):
            started, wall = time.perf_counter(), time.time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                if label == "trials":
                    self.fit_window = (wall, time.time())

        return timed

    def __enter__(self) -> Phases:
        from ray import tune

        for label, owner, name in [*self.HOOKS, ("trials", tune.Tuner, "fit")]:
            original = getattr(owner, name, None)
            if original is None:
                self.missing.append(f"{owner.__name__}.{name}")
                continue
            self._saved.append((owner, name, original))
            setattr(owner, name, self._wrap(label, original))
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)


@dataclass
class Span:
    """One trial as its MLflow run saw it: seconds from Tuner.fit's start to the run's start and
    end (the trial's ``train`` plus its own MLflow and checkpoint writes), the actor's process
    and its node."""

    seed: int
    start: float
    end: float
    pid: int | None
    node: str | None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class StudyRun:
    label: str
    trials: int
    concurrency: int
    nodes: int = 0  # 0: a local Ray, not a Cluster
    cluster_start_s: float = 0.0
    ray_init_s: float = 0.0
    wall_s: float = 0.0  # run_study, call to return (Ray already started)
    phases: dict[str, float] = field(default_factory=dict)
    fit_s: float = 0.0  # the trials phase: Tuner.fit
    spans: list[Span] = field(default_factory=list)  # in order of start
    statuses: dict[str, int] = field(default_factory=dict)
    missing_hooks: list[str] = field(default_factory=list)

    @property
    def first_start(self) -> float:
        """Tuner.fit start -> the first trial's run starts: Tune's start, the first actor's
        process start (imports) and the study context's transfer."""
        return self.spans[0].start if self.spans else float("nan")

    @property
    def busy(self) -> float:
        return sum(s.duration for s in self.spans)

    @property
    def actors(self) -> int:
        return len({s.pid for s in self.spans if s.pid is not None})

    def gaps(self) -> list[float]:
        """One actor's previous trial's end -> its next trial's start (reused actors)."""
        out, last = [], {}
        for s in self.spans:
            if s.pid is not None and s.pid in last:
                out.append(s.start - last[s.pid])
            last[s.pid] = s.end
        return out

    def per_node(self) -> dict[str, int]:
        names: dict[str, str] = {}  # node id -> "node 1", "node 2" in order of first use
        counts: dict[str, int] = {}
        for s in self.spans:
            name = names.setdefault(s.node, f"node {len(names) + 1}") if s.node else "unknown"
            counts[name] = counts.get(name, 0) + 1
        return counts


def measured_study(spec: StudySpec, output: Path, label: str, nodes: int = 0, verbose: bool = False) -> StudyRun:
    """run_study on a fresh local Ray (nodes = 0) or on a fresh ray.cluster_utils.Cluster of
    ``nodes`` nodes with 1 CPU each; the one-off parts timed apart."""
    import ray

    shutil.rmtree(output, ignore_errors=True)
    record = StudyRun(label, len(plan_trials(spec)), spec.execution.max_concurrent_trials or 0, nodes)
    cluster = None
    try:
        started = time.perf_counter()
        if nodes:
            cluster = start_cluster(nodes)
            record.cluster_start_s = time.perf_counter() - started
        address = cluster.address if cluster else "local"
        started = time.perf_counter()
        ray.init(address=address, include_dashboard=False, log_to_driver=verbose, logging_level="WARNING")  # as run_study does
        record.ray_init_s = time.perf_counter() - started
        console = Console() if verbose else Console(quiet=True)
        with Phases() as phases:
            started = time.perf_counter()
            result = run_study(spec, output=output, address=cluster.address if cluster else None, overwrite=True, console=console)
            record.wall_s = time.perf_counter() - started
        record.phases = dict(phases.seconds)
        record.phases["other"] = record.wall_s - sum(phases.seconds.values())
        record.fit_s = phases.seconds.get("trials", float("nan"))
        record.missing_hooks = phases.missing
        actor_nodes = _actor_nodes()
        _read_trials(record, result.tracking, output, phases.fit_window, actor_nodes)
    finally:
        ray.shutdown()
        if cluster is not None:
            with _address_file_kept():  # shutdown deletes it
                cluster.shutdown()
    return record


def start_cluster(nodes: int):
    """A ray.cluster_utils.Cluster of ``nodes`` nodes with 1 CPU each, on this machine. The head's
    API server gets a free port (8265 may be another Ray's), and the "current cluster" address
    file that ``ray.init(address="auto")`` reads is left as it was, for other Ray users here."""
    from ray.cluster_utils import Cluster

    port = free_port()
    with _address_file_kept():
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "dashboard_port": port})
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
    return cluster


@contextlib.contextmanager
def _address_file_kept():
    """Restore /tmp/ray/ray_current_cluster (which a Cluster's head overwrites) afterwards."""
    path = Path("/tmp/ray/ray_current_cluster")
    try:
        from ray._common.utils import get_ray_address_file

        path = Path(get_ray_address_file(None))
    except ImportError:
        pass
    before = path.read_text() if path.is_file() else None
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(before)


def _actor_nodes() -> dict[int, str]:
    """pid -> node id of every actor this Ray has run, dead ones included (the trial actors),
    from the GCS of the Ray this process is connected to (Ray's private ``state.actors``: the
    public state API needs the dashboard, which studies start without)."""
    try:
        from ray._private import state

        return {a["Pid"]: a["Address"]["NodeID"] for a in state.actors().values() if a.get("Pid")}
    except Exception as exc:  # a convenience here, not the measurement
        print(f"  (no actor table: {exc!r})", file=sys.stderr)
        return {}


def _read_trials(record: StudyRun, tracking, output: Path, fit_window: tuple[float, float] | None, actor_nodes: dict[int, str]) -> None:
    """Each trial's span from its MLflow run; its actor (pid) from Tune's result.json files;
    its node from the run's ``polytask.node`` tag where trials set one, else the actor's node."""
    from polytask.ops.tracking import client

    runs = client(tracking.uri).search_runs([tracking.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{tracking.parent_run_id}'", max_results=10_000)
    pids = {}  # Tune trial id -> pid of the actor that ran it
    for path in output.rglob("result.json"):
        lines = path.read_text().splitlines()
        if lines:
            last = json.loads(lines[-1])
            pids[last.get("trial_id")] = last.get("pid")
    origin = fit_window[0] if fit_window else 0.0
    for run in runs:
        record.statuses[run.info.status] = record.statuses.get(run.info.status, 0) + 1
        if run.info.end_time is None:
            continue
        pid = pids.get(run.data.tags.get("polytask.trial_id"))
        node = run.data.tags.get("polytask.node") or actor_nodes.get(pid)
        record.spans.append(Span(int(run.data.tags.get("polytask.seed", -1)), run.info.start_time / 1000 - origin, run.info.end_time / 1000 - origin, pid, node))
    record.spans.sort(key=lambda span: span.start)


# --------------------------------------------------------------------------- the tables


def _s(value: float) -> str:
    return f"{value:.1f} s"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def overhead_parts(loop: dict[str, Any], one: StudyRun) -> dict[str, float]:
    """T_fit - T_loop of the one-at-a-time study, split exactly (one actor runs the trials one
    after another, so T_fit = start + durations + gaps + tail):

    * ``start``: Tuner.fit's start -> the first trial's run starts (Tune, the actor's process);
    * ``warmup``: each actor's first trial beyond its loop time (imports and lazy initialisation
      on first use, which the warmed-up loop does not pay);
    * ``gaps``: between trials on a reused actor (Tune's bookkeeping, the actor's reset);
    * ``extra``: every later trial beyond its loop time (its MLflow run and checkpoints);
    * ``tail``: the last trial's end -> Tuner.fit returns.

    ``one_off`` = start + warmup is paid once per actor; ``steady`` is the rest per trial."""
    n, seconds = one.trials, loop["train_s"]
    first_of_actor, seen = set(), set()
    for i, span in enumerate(one.spans):
        if span.pid not in seen:
            first_of_actor.add(i)
            seen.add(span.pid)
    beyond = [(i, span.duration - seconds[span.seed]) for i, span in enumerate(one.spans) if span.seed in seconds]
    later = [extra for i, extra in beyond if i not in first_of_actor]
    parts = {
        "per_trial": (one.fit_s - loop["total_s"]) / n,
        "start": one.first_start,
        "warmup": sum(extra for i, extra in beyond if i in first_of_actor),
        "gaps": sum(one.gaps()),
        "gap_median": _median(one.gaps()),
        "extra": sum(later),
        "extra_median": _median(later),
        "tail": one.fit_s - max((s.end for s in one.spans), default=float("nan")),
    }
    parts["one_off"] = parts["start"] + parts["warmup"]
    parts["steady"] = (one.fit_s - loop["total_s"] - parts["one_off"]) / n
    return parts


def throughput(two: StudyRun) -> dict[str, float]:
    ideal = two.busy / two.concurrency
    return {"ideal": ideal, "efficiency": ideal / two.fit_s, "after_start": ideal / (two.fit_s - two.first_start)}


def overhead_table(loop: dict[str, Any], one: StudyRun, two: StudyRun | None) -> str:
    n, t_loop = one.trials, loop["total_s"]
    o, p = overhead_parts(loop, one), one.phases
    rows = [
        ("trials", f"{n} (1 candidate x {n} seeds), 1 CPU and 1 torch thread each"),
        ("**plain loop**: sum of the `train()` calls, T_loop", f"{_s(t_loop)} ({t_loop / n:.2f} s a trial; data preparation {_s(loop['prepare_s'])} more)"),
        ("**study, 1 at a time**: `run_study` wall time", f"{_s(one.wall_s)}, after `ray.init` {_s(one.ray_init_s)}"),
        ("one-off parts of it: data preparation / MLflow parent run / settling runs + report / other", f"{p.get('prepare', 0):.1f} / {p.get('parent_run', 0):.1f} / {p.get('settle', 0) + p.get('report', 0):.1f} / {p.get('other', 0):.1f} s"),
        ("trials phase (`Tuner.fit`), T_fit", _s(one.fit_s)),
        ("**overhead per trial**, (T_fit - T_loop) / N", f"**{o['per_trial']:.2f} s**"),
        ("= the actor's start: `Tuner.fit` start -> first trial's MLflow run starts (once per actor)", _s(o["start"])),
        ("+ the actor's warm-up: its first trial beyond its loop time (once per actor)", _s(o["warmup"])),
        (f"+ gaps between trials on the reused actor, {max(0, n - one.actors)} of them (median)", f"{_s(o['gaps'])} ({o['gap_median']:.2f} s)"),
        ("+ later trials beyond their loop time: MLflow run, checkpoints (median)", f"{_s(o['extra'])} ({o['extra_median']:.2f} s)"),
        ("+ last trial's end -> `Tuner.fit` returns", _s(o["tail"])),
        ("**overhead per trial, reused actor** (without the once-per-actor start and warm-up)", f"**{o['steady']:.2f} s**"),
        ("trial actors (processes)", str(one.actors)),
        ("whole study / plain loop, (`ray.init` + `run_study`) / T_loop", f"{(one.ray_init_s + one.wall_s) / t_loop:.2f}x"),
    ]
    if two is not None:
        c, t = two.concurrency, throughput(two)
        rows += [
            (f"**study, {c} at a time**: `run_study` wall time", f"{_s(two.wall_s)}, after `ray.init` {_s(two.ray_init_s)}"),
            ("trials phase (`Tuner.fit`), T_fit", _s(two.fit_s)),
            (f"ideal: sum of the trials' durations in this study / {c}", f"{_s(t['ideal'])} (a trial: {two.busy / max(1, len(two.spans)):.2f} s here, {t_loop / n:.2f} s alone in the loop)"),
            ("**throughput**, ideal / T_fit", f"**{t['efficiency']:.0%}**"),
            ("the same without the actors' start, ideal / (T_fit - first trial's start)", f"{t['after_start']:.0%}"),
            (f"against the plain loop, (T_loop / {c}) / T_fit", f"{t_loop / c / two.fit_s:.0%}"),
            ("trial actors (processes)", str(two.actors)),
        ]
    return "| quantity | measured |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def scaling_table(runs: list[StudyRun]) -> str:
    by_nodes: dict[int, list[StudyRun]] = {}
    for r in runs:
        by_nodes.setdefault(r.nodes, []).append(r)
    columns = sorted(by_nodes)
    names = {1: "1 node, 1 CPU", 2: "2 nodes, 1 + 1 CPU"}
    rows = [
        ("trials", lambda r: str(r.trials)),
        ("cluster start (head, nodes)", lambda r: _s(r.cluster_start_s)),
        ("`ray.init` (the driver connects)", lambda r: _s(r.ray_init_s)),
        ("`run_study` wall time", lambda r: _s(r.wall_s)),
        ("trials phase (`Tuner.fit`), T_fit", lambda r: _s(r.fit_s)),
        ("first trial's start after `Tuner.fit` starts", lambda r: _s(r.first_start)),
        ("sum of the trials' durations (MLflow runs)", lambda r: _s(r.busy)),
        ("a trial's duration (mean)", lambda r: f"{r.busy / max(1, len(r.spans)):.2f} s"),
        ("trials per node", lambda r: ", ".join(f"{k}: {v}" for k, v in sorted(r.per_node().items()))),
        ("trial actors (processes)", lambda r: str(r.actors)),
    ]
    lines = ["| | " + " | ".join(names.get(n, f"{n} nodes") for n in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(" / ".join(value(r) for r in by_nodes[n]) for n in columns) + " |" for label, value in rows]
    if 1 in by_nodes and 2 in by_nodes:
        fit, wall = speedup(runs), _median([r.wall_s for r in by_nodes[1]]) / _median([r.wall_s for r in by_nodes[2]])
        steady = _median([r.fit_s - r.first_start for r in by_nodes[1]]) / _median([r.fit_s - r.first_start for r in by_nodes[2]])
        lines.append(f"| **speed-up**, T_fit(1 node) / T_fit(2 nodes) | | **{fit:.2f}x** |")
        lines.append(f"| speed-up of `run_study` wall time; of T_fit without the actors' start | | {wall:.2f}x; {steady:.2f}x |")
    return "\n".join(lines)


def speedup(runs: list[StudyRun]) -> float:
    """Median T_fit on 1 node over median T_fit on 2 nodes."""
    return _median([r.fit_s for r in runs if r.nodes == 1]) / _median([r.fit_s for r in runs if r.nodes == 2])


def targets_table(loop, one: StudyRun | None, two: StudyRun | None, scaling: list[StudyRun]) -> str:
    rows = []
    if loop and one:
        o = overhead_parts(loop, one)
        rows.append(("per-trial overhead, (T_fit - T_loop) / N", "<= 1.5 s", f"{o['per_trial']:.2f} s", o["per_trial"] <= 1.5))
        rows.append(("the same on a reused actor (once-per-actor start and warm-up apart)", "<= 1.5 s", f"{o['steady']:.2f} s (+ {o['one_off']:.1f} s once per actor)", o["steady"] <= 1.5))
    if two:
        t = throughput(two)
        rows.append((f"study throughput, {two.concurrency} at a time", ">= 90% of ideal", f"{t['efficiency']:.0%} ({t['after_start']:.0%} without the actors' start)", t["efficiency"] >= 0.9))
    if any(r.nodes == 1 for r in scaling) and any(r.nodes == 2 for r in scaling):
        rows.append(("2-node speed-up, CPU-bound trials", ">= 1.7x", f"{speedup(scaling):.2f}x", speedup(scaling) >= 1.7))
    return "| target | goal | measured | met |\n|---|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} | {'yes' if d else 'no'} |" for a, b, c, d in rows)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["overhead", "scaling"], default=["overhead", "scaling"], help="what to measure (default: both)")
    parser.add_argument("--trials", type=int, default=8, help="trials of the overhead studies (default 8)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per trial in the overhead studies (default 300, about 10 s a trial on one core)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at a time in the throughput study (default 2)")
    parser.add_argument("--scaling-trials", type=int, default=12, help="trials of the scaling studies (default 12)")
    parser.add_argument("--scaling-steps", type=int, default=400, help="training steps per trial in the scaling studies (default 400, about 13 s a trial on one core)")
    parser.add_argument("--repeats", type=int, default=1, help="scaling: run 1 node and 2 nodes this many times each, alternating (default 1)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 trials of 20 steps, 4 scaling trials of 30 steps")
    parser.add_argument("--output", type=Path, default=REPO / "runs" / "distributed-bench", help="where the studies write (replaced); results.json goes here too")
    parser.add_argument("--verbose", action="store_true", help="show each study's own progress and the trials' logs")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.steps, args.scaling_trials, args.scaling_steps, args.repeats = 4, 20, 4, 30, 1

    if "overhead" in args.parts and (os.cpu_count() or 1) < args.concurrency:
        print(f"warning: {args.concurrency} trials at a time on {os.cpu_count()} cores: the trials will share cores", file=sys.stderr)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # run_study sets these too, but after our ray.init
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    data = write_data(output / "data")
    begun = time.perf_counter()
    loop = one = two = None
    scaling: list[StudyRun] = []

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - begun:5.0f} s] {text}", flush=True)

    if "overhead" in args.parts:
        spec = make_spec("bench-c1", data, args.trials, args.steps, 1)
        say(f"plain loop: {args.trials} trainings of {args.steps} steps")
        loop = plain_loop(spec)
        say(f"  T_loop {loop['total_s']:.1f} s")
        say("study, 1 trial at a time")
        one = measured_study(spec, output / "c1", "1 at a time", verbose=args.verbose)
        say(f"  T_fit {one.fit_s:.1f} s, run_study {one.wall_s:.1f} s")
        say(f"study, {args.concurrency} trials at a time")
        spec = make_spec(f"bench-c{args.concurrency}", data, args.trials, args.steps, args.concurrency)
        two = measured_study(spec, output / f"c{args.concurrency}", f"{args.concurrency} at a time", verbose=args.verbose)
        say(f"  T_fit {two.fit_s:.1f} s, run_study {two.wall_s:.1f} s")
    if "scaling" in args.parts:
        spec = make_spec("bench-scaling", data, args.scaling_trials, args.scaling_steps, 2)
        for repeat in range(args.repeats):
            for nodes in (1, 2) if repeat % 2 == 0 else (2, 1):
                say(f"scaling: {nodes}-node cluster, {args.scaling_trials} trials of {args.scaling_steps} steps")
                scaling.append(measured_study(spec, output / f"scaling-{nodes}node-{repeat}", f"{nodes} node(s)", nodes=nodes, verbose=args.verbose))
                say(f"  T_fit {scaling[-1].fit_s:.1f} s, run_study {scaling[-1].wall_s:.1f} s")

    (output / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "loop": loop, "studies": [asdict(r) for r in (one, two, *scaling) if r]}, indent=2))
    cores = os.cpu_count()
    print(f"\n## Results ({cores} cores, torch {torch.__version__}; total {time.perf_counter() - begun:.0f} s)\n")
    if loop and one:
        print(f"### Overhead and throughput ({args.trials} trials of {args.steps} steps)\n")
        print(overhead_table(loop, one, two) + "\n")
    if scaling:
        print(f"### Scaling ({args.scaling_trials} trials of {args.scaling_steps} steps)\n")
        print(scaling_table(scaling) + "\n")
    print("### Targets\n")
    print(targets_table(loop, one, two, scaling))
    for r in (one, two, *scaling):
        if r and (r.missing_hooks or set(r.statuses) - {"FINISHED"}):
            print(f"\nnote: {r.label}: trial statuses {r.statuses}; run_study parts not timed: {r.missing_hooks or 'none'}")
    print(f"\nraw numbers: {output / 'results.json'}")


if __name__ == "__main__":
    main()
