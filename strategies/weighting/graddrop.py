"""GradDrop: gradient sign dropout.

Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, "Just Pick a Sign: Optimizing Deep
Multitask Models with Gradient Sign Dropout", NeurIPS 2020, Algorithm 1 (with f the identity).
For every element (coordinate) of the task gradients g_i:

    P = 1/2 (1 + sum_i g_i / sum_i |g_i|)        positive sign purity, in [0, 1]
    U ~ Uniform(0, 1), one draw per element
    M_i = [g_i > 0 and P > U]  or  [g_i < 0 and P < U]
    update = sum_i (l_i + (1 - l_i) M_i) g_i     l_i: the task's leak, 0 by default

At each element one sign survives, chosen with probability equal to its share of the gradient
mass, and every task gradient of the other sign is dropped there; a leak l_i lets that fraction
of task i's gradient through regardless.

The paper inserts GradDrop at a layer's activations, so ``grad_space`` defaults to
"representation". There, the paper computes P per activation unit over the batch: it first sums
each task's gradient over the batch dimension, multiplied by the sign of the input activations.
The engine hands us the flattened per-example gradients [K, B*D] without the activations, so we
compute P and draw U per example and unit instead (the same rule applied to each example's
gradient separately). In "parameters" space each parameter is an element.

The update is not a fixed linear combination of the task gradients, so this aggregator takes the
Jacobian. task_weights() reports for each task the fraction of its squared gradient mass that
survived, ||(l_i + (1 - l_i) M_i) g_i||^2 / ||g_i||^2 (1 for a zero gradient: nothing was dropped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .base import GradSpace, JacobianAggregator


class GradDrop(JacobianAggregator):
    """Keep, at every coordinate, only the task gradients of one randomly chosen sign, weighted by its share of the mass."""

    name = "graddrop"
    stochastic = True  # U is drawn afresh at every step
    paper = (
        "Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, Just Pick a Sign: Optimizing Deep "
        "Multitask Models with Gradient Sign Dropout, NeurIPS 2020"
    )

    def __init__(self, num_tasks: int, leak: float | Sequence[float] = 0.0, grad_space: GradSpace = "representation") -> None:
        super().__init__(num_tasks)
        values = [float(leak)] * num_tasks if isinstance(leak, (int, float)) else [float(v) for v in leak]
        if len(values) != num_tasks:
            raise ValueError(f"leak has {len(values)} entries for {num_tasks} tasks; give one per task or a single number")
        if not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
            raise ValueError(f"leak values must lie in [0, 1], got {leak!r}")
        self.leak = leak
        self.set_grad_space(grad_space)
        self.register_buffer("_leak", torch.tensor(values, dtype=torch.float64), persistent=False)

    def forward(self, jacobian: Tensor, losses: Tensor) -> Tensor:
        self._check_jacobian(jacobian)
        self._check_losses(losses)
        mass = jacobian.abs().sum(dim=0)
        # where every task's gradient is zero the purity is irrelevant; 1/2 avoids 0/0
        ratio = torch.where(mass > 0, jacobian.sum(dim=0) / torch.where(mass > 0, mass, torch.ones_like(mass)), torch.zeros_like(mass))
        purity = 0.5 * (1 + ratio)
        draws = torch.rand(purity.shape, dtype=jacobian.dtype, device=jacobian.device)
        kept = ((purity > draws) & (jacobian > 0)) | ((purity < draws) & (jacobian < 0))
        leak = self._leak.to(jacobian)[:, None]
        masked = (leak + (1 - leak) * kept.to(jacobian.dtype)) * jacobian

        total = jacobian.norm(dim=1).double().square()
        survived = masked.norm(dim=1).double().square()
        fraction = torch.where(total > 0, survived / torch.where(total > 0, total, torch.ones_like(total)), torch.ones_like(total))
        self._weights = fraction.to(self._weights)
        return masked.sum(dim=0)
