"""Single-task baselines: the reference every multi-task result is measured against.

With ``comparison.single_task_baselines``, a study trains one model per main task and seed: the
study's own model for that task alone (the same encoder, the layers of the study's ``sharing``
between encoder and head, the same head; polytask.study.single_task), the study's training settings
and budget (epochs, steps, batch size, learning rate), selected on validation like every trial. Δm (polytask.results.stats) compares each strategy with them (Maninis et al.,
CVPR 2019; Vandenhende et al., TPAMI 2021).

A baseline depends only on its task's data, the encoder, its sharing layers, the heads, the
training settings, the selection rule and its seed, so it is trained once and reused by every
study where all of those are identical. Its *fingerprint* is the sha256 of exactly those: the
task's encoded arrays (inputs and labels of every split: a changed file or tokenizer changes
them), the task, encoder, single-task sharing, heads and training specs, the selection rule and
the seed. Finished baselines are
kept in a cache folder (``comparison.baseline_cache``, default ``<POLYTASK_CACHE>/baselines``),
one JSON file per fingerprint with the final metrics and where they came from. A reused
baseline gets a nested MLflow run in the new study too (tag ``polytask.reused_from``), so the
study's MLflow experiment alone holds everything its report reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from polytask.data import PreparedData
from polytask.ops.tracking import Tracking, TrialRun, trial_runs
from polytask.schema import BASELINE, BEST_SCORE, COMPLETED, EPOCH, FIXED, TrialTags, baseline_label, baseline_task, run_name
from polytask.spec import StudySpec
from polytask.study.single_task import INPUT_ARRAYS, single_task_data, single_task_sharing, single_task_spec, single_task_tuner

FINGERPRINT_VERSION = 2  # bump when training changes in a way that makes cached baselines stale (2: the study's sharing layers)
KEPT_METRICS = ("best/", "test/", "cost/", "epoch", "global_step")  # what a cached baseline keeps


def fingerprint(spec: StudySpec, data: PreparedData, task: str, seed: int) -> str:
    """sha256 of everything a single-task model of ``task`` with ``seed`` depends on."""
    digest = hashlib.sha256()
    reduced = single_task_data(data, task)
    for name, split in sorted(reduced.splits.items()):
        for field in INPUT_ARRAYS[:2] + INPUT_ARRAYS[3:]:  # frozen_hidden is derived from the encoder, hashed through its spec
            _update(digest, f"{name}/{field}", getattr(split, field))
        _update(digest, f"{name}/labels", split.labels[task])
    settings = {
        "version": FINGERPRINT_VERSION,
        "task": next(t for t in spec.tasks if t.name == task).model_dump(mode="json", exclude={"auxiliary"}),
        "task_info": dataclasses.asdict(reduced.tasks[0]),
        "encoder": spec.encoder.model_dump(mode="json"),
        "sharing": single_task_sharing(spec.sharing, spec.task_names, task).model_dump(mode="json"),
        "heads": spec.heads.model_dump(mode="json"),
        "training": spec.training.model_dump(mode="json", exclude={"log_every_steps", "eval_batch_size"}),
        "selection": spec.comparison.selection,
        "seed": seed,
    }
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _update(digest, name: str, array: np.ndarray | None) -> None:
    if array is not None:
        array = np.ascontiguousarray(array)
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())


class BaselineCache:
    """Finished baselines by fingerprint: ``<folder>/<fingerprint>.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def of(cls, spec: StudySpec) -> BaselineCache:
        from polytask.ops.artifacts import cache_root

        return cls(Path(spec.comparison.baseline_cache).expanduser() if spec.comparison.baseline_cache else cache_root() / "baselines")

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # absent, or a torn write: train it again

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Written to a temporary file and renamed, so a reader never sees half a record."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.folder, suffix=".tmp", delete=False) as f:
            json.dump(record, f, indent=2)
        os.replace(f.name, self.folder / f"{key}.json")


def run_baselines(spec: StudySpec, data: PreparedData, tracking: Tracking, console: Console, resume: bool = False) -> dict[str, int]:
    """Reuse or train every (main task, seed) baseline; returns counts of reused, trained and
    failed. ``resume`` restores the baselines' Tune run (finished ones are not trained again)."""
    from polytask.study.trial import StudyContext

    cache = BaselineCache.of(spec)
    keys = {(t.name, seed): fingerprint(spec, data, t.name, seed) for t in spec.main_tasks for seed in spec.seeds}
    logged = {tags.fingerprint for tags in map(TrialTags.from_mlflow, (run.data.tags for run in trial_runs(tracking))) if tags.role == BASELINE}
    counts = {"reused": 0, "trained": 0, "failed": 0}
    configs = []
    for (task, seed), key in keys.items():
        record = cache.get(key) if spec.comparison.reuse_baselines else None
        if record is not None:
            if key not in logged:  # a resumed study logged it already
                _log_reused(tracking, task, seed, key, record, single_task_sharing(spec.sharing, spec.task_names, task).name)
            counts["reused"] += 1
        else:
            configs.append({"candidate": baseline_label(task), "seed": seed, "role": BASELINE, "fingerprint": key})
    console.print(f"Single-task baselines: {counts['reused']} reused from {cache.folder}, {len(configs)} to train")
    if not configs:
        return counts
    tasks = {c["candidate"]: baseline_task(c["candidate"]) for c in configs}
    contexts = {label: StudyContext(single_task_spec(spec, task, label, spec.seeds), single_task_data(data, task), tracking) for label, task in tasks.items()}
    for result in single_task_tuner(spec, contexts, configs, f"{tracking.tune_path}-baselines", console, resume).fit():
        config, metrics = result.config["trial"], result.metrics or {}
        if result.error is not None or metrics.get("diverged") or BEST_SCORE not in metrics:
            counts["failed"] += 1
            continue
        kept = {k: float(v) for k, v in metrics.items() if k.startswith(KEPT_METRICS) and isinstance(v, (int, float))}
        source = {"study": spec.name, "run_name": run_name(config["candidate"], config["seed"]), "parent_run_id": tracking.parent_run_id, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        cache.put(config["fingerprint"], {"fingerprint": config["fingerprint"], "task": tasks[config["candidate"]], "seed": config["seed"], "metrics": kept, "source": source})
        counts["trained"] += 1
    return counts


def _log_reused(tracking: Tracking, task: str, seed: int, key: str, record: dict[str, Any], sharing: str) -> None:
    """A nested run holding a cached baseline's final metrics (at its last epoch)."""
    label, source = baseline_label(task), record.get("source", {})
    tags = TrialTags(
        candidate=label,
        strategy="equal",
        family=BASELINE,
        sharing=sharing,
        seed=seed,
        role=BASELINE,
        phase=FIXED,
        fingerprint=key,
        reused_from=f"{source.get('study', '?')} {source.get('run_name', '')} (run {source.get('parent_run_id', '?')[:8]}, {source.get('created', '?')})",
    )
    run = TrialRun.open(tracking, trial_id=f"reused-{key[:12]}", run_name=run_name(label, seed), tags=tags.to_mlflow(), params={"candidate": label, "seed": seed, "fingerprint": key}, resuming=False)
    metrics = record["metrics"]
    run.log(metrics, int(metrics.get(EPOCH, 0)))
    run.finish("FINISHED", outcome=COMPLETED)
