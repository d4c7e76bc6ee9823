"""What each weighting strategy costs: training-step time and peak memory relative to equal
weighting, for K tasks and two encoder sizes, side by side in one run.

    python benchmarks/weighting_cost.py                      # tiny + MiniLM-L6, K = 2, 3, 8
    python benchmarks/weighting_cost.py --encoders tiny --tasks 3 --rounds 5

Every method runs the trials' own ``training_step`` (forward, the gradient engine, optimizer
step, hooks) on the same model and batch. The methods take turns within each round, in a fresh
random order per round, so drift on a shared machine spreads over all of them; each cell is
the median over the rounds. Three reference rows isolate the gradient engine:

* ``naive K backward`` — the way LibMTL does it: ``loss_k.backward(retain_graph=True)`` per
  task, each shared gradient copied out of ``.grad``, then summed back into ``.grad``;
* ``engine sequential VJPs`` / ``engine batched VJPs`` — our engine's two ways of getting the K
  per-task gradients, combined by a plain sum (no method cost on top).

Peak memory is measured in a separate pass (so the sampler does not disturb the timing): on a
GPU ``torch.cuda.max_memory_allocated``; on a CPU the peak of glibc's live heap bytes
(``mallinfo2``, sampled every 0.2 ms) during two steps, above what was live before them.
On a GPU, forward passes run under bfloat16 autocast, as the trials do there.
"""

from __future__ import annotations

import argparse
import ctypes
import random
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from polytask.encoders import TextEncoder, build_backbone
from polytask.spec.models import PretrainedEncoder, RandomEncoder, TrainingSpec
from polytask.strategies.sharing import HardSharing
from polytask.strategies.weighting import WEIGHTINGS, GradientAggregator, GramianAggregator, Weighting, get_weighting
from polytask.training.model import MultiTaskModel
from polytask.training.train import autocast_context, task_losses, training_step

ENCODERS = {
    "tiny": RandomEncoder(kind="random", hidden_size=64, layers=2, heads=2, intermediate_size=128, vocab_size=2000),
    "minilm": PretrainedEncoder(kind="pretrained", name="minilm-l6"),
}


class Sum(GramianAggregator):
    """Reference aggregator: the plain sum of the task gradients (engine cost alone)."""

    name = "sum (reference)"
    paper = "none"

    def __init__(self, num_tasks: int, grad_space="parameters") -> None:
        super().__init__(num_tasks)
        self.set_grad_space(grad_space)

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        return torch.ones(self.num_tasks, dtype=gramian.dtype)


@dataclass
class Variant:
    label: str
    weighting: Weighting
    gradient_method: str = "auto"
    naive: bool = False


def naive_step(model: MultiTaskModel, optimizer, batch, tasks, settings, autocast) -> None:
    """LibMTL's way: K full backward passes, shared gradients copied out of ``.grad``."""
    with autocast:
        _, losses = task_losses(model, batch, tasks)
    shared = list(model.shared_parameters())
    optimizer.zero_grad(set_to_none=True)
    rows = []
    for k in range(len(tasks)):
        losses[k].backward(retain_graph=k < len(tasks) - 1)
        rows.append(torch.cat([p.grad.flatten() for p in shared]))
        for p in shared:
            p.grad = None
    combined = torch.stack(rows).sum(0)
    offset = 0
    for p in shared:
        p.grad = combined[offset : offset + p.numel()].view_as(p).clone()
        offset += p.numel()
    if settings.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
    optimizer.step()


def build(encoder: str, k: int, batch_size: int, seq_len: int, device: torch.device):
    spec = ENCODERS[encoder]
    torch.manual_seed(0)
    backbone = build_backbone(spec, spec.vocab_size if encoder == "tiny" else 30522, 0)
    text = TextEncoder(backbone, pooling="mean")
    names = [f"task{i}" for i in range(k)]
    heads = {n: nn.Linear(text.output_dim, 2) for n in names}
    model = MultiTaskModel(HardSharing(names, text), heads).to(device)
    generator = torch.Generator().manual_seed(1)
    batch = {
        "input_ids": torch.randint(1, 1000, (batch_size, seq_len), generator=generator),
        "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
        **{f"labels/{n}": torch.randint(0, 2, (batch_size,), generator=generator) for n in names},
    }
    tasks = [SimpleNamespace(name=n, type="classification") for n in names]
    return model, {key: value.to(device) for key, value in batch.items()}, tasks


def variants(k: int, methods: list[str]) -> list[Variant]:
    out = [Variant(name, get_weighting(name, k)) for name in methods]
    out += [
        Variant("naive K backward", Sum(k), naive=True),
        Variant("engine sequential VJPs", Sum(k), "sequential"),
        Variant("engine batched VJPs", Sum(k), "batched"),
    ]
    return out


def run_variant(variant: Variant, model, batch, tasks, settings, autocast, step: int) -> None:
    params = [p for p in model.parameters() if p.requires_grad] + list(variant.weighting.parameters())
    # SGD without momentum keeps no state: the methods share one model without sharing state
    optimizer = torch.optim.SGD(params, lr=1e-6)
    if variant.naive:
        naive_step(model, optimizer, batch, tasks, settings, autocast)
    else:
        method_settings = settings.model_copy(update={"gradient_method": variant.gradient_method})
        training_step(model, variant.weighting, optimizer, batch, tasks, method_settings, autocast, step)


class LiveHeapPeak:
    """Peak of glibc's live heap bytes while the context is open, above the level at entry."""

    class _Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    def __init__(self) -> None:
        self._libc = ctypes.CDLL("libc.so.6")
        self._libc.mallinfo2.restype = self._Info

    def live(self) -> int:
        info = self._libc.mallinfo2()
        return info.uordblks + info.hblkhd

    def __enter__(self):
        self.base = self.peak = self.live()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.live())
            time.sleep(0.0002)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.live())

    @property
    def extra_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def peak_memory_mb(variant: Variant, model, batch, tasks, settings, autocast, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        for step in range(2):
            run_variant(variant, model, batch, tasks, settings, autocast, step)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with LiveHeapPeak() as meter:
        for step in range(2):
            run_variant(variant, model, batch, tasks, settings, autocast, step)
    return meter.extra_mb


def measure(encoder: str, k: int, args, device: torch.device) -> dict[str, tuple[float, float]]:
    model, batch, tasks = build(encoder, k, args.batch_size, args.seq_len, device)
    model.train()
    settings = TrainingSpec()
    autocast = autocast_context(device, "auto")
    runs = variants(k, args.methods)
    times: dict[str, list[float]] = {v.label: [] for v in runs}
    order = random.Random(0)
    for round_index in range(args.rounds + 1):  # round 0 warms up and is not counted
        order.shuffle(runs)
        for variant in runs:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            run_variant(variant, model, batch, tasks, settings, autocast, round_index)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_index:
                times[variant.label].append(time.perf_counter() - started)
        print(f"  {encoder} K={k}: round {round_index}/{args.rounds} done", flush=True)
    memory = {v.label: peak_memory_mb(v, model, batch, tasks, settings, autocast, device) if args.memory else float("nan") for v in runs}
    return {label: (1000 * statistics.median(times[label]), memory[label]) for label in times}


def kind(label: str) -> str:
    cls = WEIGHTINGS.get(label)
    if cls is None:
        return "reference"
    if not issubclass(cls, GradientAggregator):
        return "loss"
    return f"gradient ({cls(2).grad_space})"


def table(results: dict[tuple[str, int], dict[str, tuple[float, float]]]) -> str:
    configs = list(results)
    labels = list(next(iter(results.values())))
    header = "| method | kind | " + " | ".join(f"{enc} K={k} time" for enc, k in configs) + " | " + " | ".join(f"{enc} K={k} mem" for enc, k in configs) + " |"
    lines = [header, "|" + "---|" * (2 + 2 * len(configs))]
    for label in sorted(labels, key=lambda n: (kind(n), n)):
        cells = []
        for config in configs:
            ms, _ = results[config][label]
            cells.append(f"{ms / results[config]['equal'][0]:.2f}×")
        for config in configs:
            _, mb = results[config][label]
            base = results[config]["equal"][1]
            cells.append("n/a" if mb != mb else f"{mb:.0f} MB ({mb / base:.1f}×)" if base > 0 else f"{mb:.0f} MB")
        lines.append(f"| {label} | {kind(label)} | " + " | ".join(cells) + " |")
    equal = " · ".join(f"{enc} K={k}: {results[(enc, k)]['equal'][0]:.1f} ms" for enc, k in configs)
    return "\n".join(lines) + f"\n\nEqual weighting's median step time (the 1.00× reference): {equal}.\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", default="tiny,minilm", help="comma-separated: tiny, minilm")
    parser.add_argument("--tasks", default="2,3,8", help="comma-separated task counts K")
    parser.add_argument("--methods", default=",".join(sorted(WEIGHTINGS)), help="comma-separated registered methods (default: all)")
    parser.add_argument("--rounds", type=int, default=7, help="timed steps per method (median taken)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the peak-memory pass")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table here")
    args = parser.parse_args()
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if "equal" not in args.methods:
        args.methods.insert(0, "equal")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), torch {torch.__version__}")

    results = {}
    for encoder in args.encoders.split(","):
        for k in (int(v) for v in args.tasks.split(",")):
            results[(encoder, k)] = measure(encoder, k, args, device)
    text = table(results)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
