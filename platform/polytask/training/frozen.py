"""Frozen layers computed once per study instead of once per step of every trial.

When a pretrained encoder trains only its top layers, the embeddings and the layers below are a
fixed function of the text (frozen and without dropout, see TextEncoder). Their output for every
row is computed here, in the driver, once; trials receive it through Ray's object store and run
only the trainable layers. On the quickstart (MiniLM-L6, 2 of 6 layers trained) a training step
takes 0.71x and an evaluation 0.38x the time (docs/quickstart.md, benchmarks/frozen_cache.py).

The shortcut is taken only after checking, on real rows, that it gives the same features as the
full forward pass; otherwise the study runs without it and says so. Hidden states are stored as
float16 (half the memory; differences ~1e-3, far below training noise).
"""

from __future__ import annotations

import numpy as np
import torch

from polytask.data import PreparedData
from polytask.data.batches import eval_batches
from polytask.encoders import TextEncoder, build_backbone
from polytask.spec import PretrainedEncoder, StudySpec

MAX_CACHE_BYTES = 4 * 2**30  # beyond this the cache costs more memory than it saves time
CHECK_TOLERANCE = 1e-4


def applies(spec: StudySpec) -> bool:
    enc = spec.encoder
    return isinstance(enc, PretrainedEncoder) and enc.cache_frozen_layers and enc.trainable_layers is not None


def precompute(spec: StudySpec, data: PreparedData, batch_size: int = 64) -> str:
    """Attach each split's frozen hidden states to ``data``; returns a line for the user."""
    enc = spec.encoder
    encoder = TextEncoder(build_backbone(enc, data.vocab_size, data.pad_id), enc.pooling, enc.trainable_layers).eval()
    hidden_size = encoder.output_dim
    size = sum(len(s) * s.input_ids.shape[1] * hidden_size * 2 for s in data.splits.values())
    if size > MAX_CACHE_BYTES:
        return f"frozen layers not cached: {size / 2**30:.1f} GiB would exceed {MAX_CACHE_BYTES / 2**30:.0f} GiB; each trial computes them"
    if not getattr(encoder.backbone, "embeddings", None) or not _same_as_full_pass(encoder, data):
        return f"frozen layers not cached: the shortcut does not reproduce {type(encoder.backbone).__name__}'s forward pass; each trial computes them"
    for split in data.splits.values():
        cache = np.zeros((len(split), split.input_ids.shape[1], hidden_size), dtype=np.float16)
        for rows, batch in eval_batches(split, batch_size):
            hidden = encoder.frozen_hidden(batch["input_ids"], batch["attention_mask"])
            cache[rows, : hidden.shape[1]] = hidden.numpy().astype(np.float16)
        split.frozen_hidden = cache
    rows = sum(len(s) for s in data.splits.values())
    return f"computed the {encoder.frozen_layers} frozen encoder layers once for {rows} rows ({size / 2**20:.0f} MiB), shared by every trial"


@torch.no_grad()
def _same_as_full_pass(encoder: TextEncoder, data: PreparedData) -> bool:
    split = data.splits["validation"]
    _, batch = next(eval_batches(split, 8))
    full = encoder(batch)
    hidden = encoder.frozen_hidden(batch["input_ids"], batch["attention_mask"])
    shortcut = encoder({**batch, "frozen_hidden": hidden})
    return torch.allclose(full, shortcut, atol=CHECK_TOLERANCE, rtol=CHECK_TOLERANCE)
