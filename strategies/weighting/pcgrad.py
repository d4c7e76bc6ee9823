"""PCGrad: projecting conflicting gradients.

Yu, Kumar, Gupta, Levine, Hausman & Finn, "Gradient Surgery for Multi-Task Learning",
NeurIPS 2020, Algorithm 1. For each task i, in a random order over the other tasks j:

    if g_i' . g_j < 0:   g_i' <- g_i' - (g_i' . g_j / ||g_j||^2) g_j

and the update is the sum of the projected gradients, sum_i g_i'.

Every projected g_i' stays a linear combination of the original task gradients, so we track its
coefficients C[i] (g_i' = C[i] @ G) and need only the Gramian M = G G^T for the inner products:
g_i' . g_j = C[i] @ M[:, j]. The update is then w @ G with w = sum_i C[i] — one K x P pass for
M, one for the result — and w is logged as the task weights.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GradSpace, GramianAggregator


class PCGrad(GramianAggregator):
    """Project each task gradient off the gradients it conflicts with, then sum."""

    name = "pcgrad"
    stochastic = True  # the order in which the other tasks are visited is random
    paper = "Yu et al., Gradient Surgery for Multi-Task Learning, NeurIPS 2020"

    def __init__(self, num_tasks: int, grad_space: GradSpace = "parameters") -> None:
        super().__init__(num_tasks)
        self.set_grad_space(grad_space)

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        k = self.num_tasks
        coeffs = torch.eye(k, dtype=gram.dtype, device=gram.device)
        for i in range(k):
            for j in torch.randperm(k).tolist():
                if j == i or gram[j, j] <= 0:
                    continue
                dot = coeffs[i] @ gram[:, j]
                if dot < 0:
                    coeffs[i, j] -= dot / gram[j, j]
        return coeffs.sum(dim=0)
