"""Aligned-MTL: make the task gradients orthogonal with equal norms, then combine them.

Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment for Multi-Task
Learning", CVPR 2023, Algorithm 1. With the Gramian M = G G^T = V Lambda V^T (eigen-decomposition):

    keep the R eigenvalues above the rank tolerance, lambda_1 >= ... >= lambda_R > 0
    B = sqrt(lambda_R) V_R Lambda_R^{-1/2} V_R^T       the balance transformation
    aligned gradients  G^ = B G                         (G^ G^^T = lambda_R V_R V_R^T)
    update = G^^T w = (B w) @ G                         w: task preferences

The aligned gradients are orthogonal with equal norms sqrt(lambda_R) on the span of the task
gradients, so their condition number is 1 (the paper's stability criterion), at the scale of the
smallest singular value of G, as Algorithm 1 chooses. (torchjd, adapted from the official code,
notes that the original implementation scales by the mean eigenvalue instead; we follow the
paper.)

Preferences: the paper leaves the task preference weights w to the user; we default to w = 1 for
every task, so the update is the sum of the aligned gradients like PCGrad's and the other
aggregators' sums here (torchjd defaults to 1/K, a K times smaller update, same direction).

``grad_space`` "parameters" is Algorithm 1; "representation" is the paper's cheaper Aligned-MTL-UB
variant, which aligns the gradients of the shared representation instead.

The rank tolerance is lambda > K eps lambda_max, the usual numerical-rank rule, with eps the
float32 machine epsilon although the Gramian arrives in float64: the gradients it is built from
are float32, so eigenvalues below that are rounding noise, and keeping them would shrink the
update to the noise's scale. When every gradient is zero, B = I.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .base import GradSpace, GramianAggregator

_EPS32 = torch.finfo(torch.float32).eps


class AlignedMTL(GramianAggregator):
    """Align the task gradients to orthogonal directions of equal norm (the smallest singular value), then sum them."""

    name = "aligned_mtl"
    paper = "Senushkin, Patakin, Kuznetsov & Konushin, Independent Component Alignment for Multi-Task Learning, CVPR 2023"

    def __init__(self, num_tasks: int, preferences: Sequence[float] | None = None, grad_space: GradSpace = "parameters") -> None:
        super().__init__(num_tasks)
        values = [1.0] * num_tasks if preferences is None else [float(p) for p in preferences]
        if len(values) != num_tasks:
            raise ValueError(f"preferences has {len(values)} entries for {num_tasks} tasks")
        if not all(math.isfinite(p) and p >= 0 for p in values) or not any(p > 0 for p in values):
            raise ValueError(f"preferences must be finite, non-negative and not all zero, got {preferences!r}")
        self.preferences = preferences
        self.set_grad_space(grad_space)
        self.register_buffer("_preferences", torch.tensor(values, dtype=torch.float64), persistent=False)

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        preferences = self._preferences.to(gram)
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        largest = eigenvalues.max()
        if not largest > 0:
            return preferences
        kept = eigenvalues > self.num_tasks * _EPS32 * largest
        values, vectors = eigenvalues[kept], eigenvectors[:, kept]
        balance = values.min().sqrt() * (vectors / values.sqrt()) @ vectors.T
        return balance @ preferences
