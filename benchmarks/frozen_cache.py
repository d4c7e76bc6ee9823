"""What caching the frozen encoder layers saves: training-step and evaluation time of one
trial with and without the cache, side by side in one process, on the quickstart's settings.

    python benchmarks/frozen_cache.py [--steps 30] [--threads 1]

Both variants train the same model from the same seed on the same batches; the script also
prints the largest difference between their validation metrics (the cache stores float16).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from polytask.spec import load_spec
from polytask.study.run import prepare
from polytask.training import frozen
from polytask.training.model import build_model
from polytask.training.train import Reporter, TrialPlan, evaluate, train

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(REPO / "studies" / "quickstart.yaml"))
    parser.add_argument("--steps", type=int, default=30, help="training steps timed per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the quickstart gives a trial 1)")
    args = parser.parse_args()
    spec = load_spec(args.spec)
    spec = spec.model_copy(update={"training": spec.training.model_copy(update={"epochs": 1, "steps_per_epoch": args.steps})})
    torch.set_num_threads(args.threads)

    cached, plain = prepare(spec), prepare(spec)
    started = time.perf_counter()
    note = frozen.precompute(spec, cached)
    precompute_s = time.perf_counter() - started
    print(note, f"in {precompute_s:.1f} s")

    rows = {}
    for name, data in (("full forward", plain), ("cached frozen layers", cached)):
        final = train(TrialPlan(spec, "equal", seed=0), data, Reporter()).metrics
        model = build_model(spec, data)
        started = time.perf_counter()
        evaluate(model, data.splits["validation"], data, spec.training.eval_batch_size, torch.device("cpu"), "val")
        eval_s = time.perf_counter() - started
        rows[name] = (final["cost/step_time_ms"], eval_s, final)
    print(f"{'variant':<22} {'step ms':>8} {'eval s':>7}   (validation: {len(plain.splits['validation'])} rows, {args.threads} thread(s))")
    for name, (step_ms, eval_s, _) in rows.items():
        print(f"{name:<22} {step_ms:8.0f} {eval_s:7.2f}")
    (full_step, full_eval, full), (fast_step, fast_eval, fast) = rows.values()
    print(f"ratio cached/full: step {fast_step / full_step:.2f}, evaluation {fast_eval / full_eval:.2f}")
    keys = [k for k in full if k.startswith("val/")]
    print(f"largest |difference| of validation metrics: {max(abs(full[k] - fast[k]) for k in keys):.4f}")


if __name__ == "__main__":
    main()
