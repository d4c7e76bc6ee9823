"""GradVac: gradient vaccine, align each pair of tasks to a learned target similarity.

Wang, Tsvetkov, Firat & Cao, "Gradient Vaccine: Investigating and Improving Multi-task
Optimization in Massively Multilingual Models", ICLR 2021, Algorithm 1. Each ordered pair (i, j)
keeps a target cosine phi^_ij (an EMA, 0 initially). For each task i, visiting the other tasks j
in a random order, with phi = cos(g_i', g_j) and g_i' the gradient of i modified so far:

    if phi < phi^_ij:   g_i' <- g_i' + ||g_i'|| (phi^_ij sqrt(1 - phi^2) - phi sqrt(1 - phi^_ij^2)) / (||g_j|| sqrt(1 - phi^_ij^2)) g_j
    phi^_ij <- (1 - beta) phi^_ij + beta phi

which raises the cosine of g_i' with g_j to exactly phi^_ij; the update is sum_i g_i'. With
phi^ = 0 this is PCGrad's projection of conflicting gradients. beta = 0.01 is the paper's value
(LibMTL and torchjd default to 0.5).

As in pcgrad.py, every g_i' is a linear combination of the task gradients, so we track its
coefficients C[i] (g_i' = C[i] @ G) and need only the Gramian M: g_i' . g_j = C[i] @ M[:, j] and
||g_i'||^2 = C[i] @ M @ C[i]. The update is w @ G with w = sum_i C[i], reported as the weights.

Granularity: one cosine per task pair for the whole gradient (the paper's "whole model"
variant; it also aligns per layer, which would need per-layer Gramians from the engine).

Robustness choices the paper leaves open: a pair in which either gradient is zero has no cosine,
so it is neither corrected nor measured; and the target used in the correction is capped at
cos = 1 - 1e-6, because the coefficient grows like 1 / sqrt(1 - phi^^2) and a target of 1
(gradients that were always collinear) would ask for an infinite multiple of g_j.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import GradSpace, GramianAggregator

#: the largest target cosine used in the correction (see the module docstring)
_MAX_TARGET = 1 - 1e-6


class GradVac(GramianAggregator):
    """Raise each pair's gradient cosine to a running target similarity, then sum the corrected gradients."""

    name = "gradvac"
    stochastic = True  # the order in which the other tasks are visited is random
    paper = (
        "Wang, Tsvetkov, Firat & Cao, Gradient Vaccine: Investigating and Improving Multi-task Optimization "
        "in Massively Multilingual Models, ICLR 2021"
    )

    def __init__(self, num_tasks: int, beta: float = 1e-2, grad_space: GradSpace = "parameters") -> None:
        super().__init__(num_tasks)
        if not (math.isfinite(beta) and 0 <= beta <= 1):
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        self.beta = beta
        self.set_grad_space(grad_space)
        self.register_buffer("targets", torch.zeros(num_tasks, num_tasks, dtype=torch.float64))

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        k = self.num_tasks
        norms = gram.diagonal().clamp(min=0).sqrt()
        targets = self.targets.to(gram)
        updated = targets.clone()
        coeffs = torch.eye(k, dtype=gram.dtype, device=gram.device)
        for i in range(k):
            others = [j for j in range(k) if j != i]
            for j in [others[n] for n in torch.randperm(k - 1).tolist()]:
                norm_i = (coeffs[i] @ gram @ coeffs[i]).clamp(min=0).sqrt()
                if norm_i <= 0 or norms[j] <= 0:
                    continue
                cosine = ((coeffs[i] @ gram[:, j]) / (norm_i * norms[j])).clamp(-1, 1)
                target = targets[i, j]
                if cosine < target:
                    goal = target.clamp(max=_MAX_TARGET)
                    sine, goal_sine = (1 - cosine**2).sqrt(), (1 - goal**2).sqrt()
                    coeffs[i, j] += norm_i * (goal * sine - cosine * goal_sine) / (norms[j] * goal_sine)
                updated[i, j] = (1 - self.beta) * target + self.beta * cosine
        self.targets.copy_(updated)
        return coeffs.sum(dim=0)

    def reset(self) -> None:
        super().reset()
        self.targets.zero_()
