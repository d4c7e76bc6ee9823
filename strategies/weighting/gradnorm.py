"""GradNorm: learn task weights that balance the tasks' gradient norms and training rates.

Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for Adaptive Loss
Balancing in Deep Multitask Networks", ICML 2018, Section 3 and Algorithm 1. Learnable weights
w_k (initially 1) scale the task losses; with g_k the gradient of task k and L_k(0) its loss at
the first step:

    G_k = w_k ||g_k||                       weighted gradient norm
    L~_k = L_k / L_k(0),  r_k = L~_k / mean_j L~_j      relative inverse training rate
    L_grad = sum_k | G_k - mean_j(G_j) r_k^alpha |       (the target held constant)

so dL_grad/dw_k = sign(G_k - target_k) ||g_k||, which we write into ``weights.grad``; the
training loop's optimizer then steps w (at :meth:`learning_rate`). The update is sum_k w_k g_k
with the current w, and after each step w is renormalised to sum to K.

Only ||g_k|| = sqrt(M_kk) of the Gramian M = G G^T is needed. The paper measures the norms on
the last shared layer's weights, to save computation; we measure them where ``grad_space`` says, by
default on the shared representation, the equally cheap point at the same depth. The update is
the same either way: sum_k w_k g_k on the representation, backpropagated, is the gradient of
sum_k w_k L_k.

Choices the paper leaves open, made here so every input gives a finite result: a task whose
initial loss is 0 keeps ratio 1 (it had nothing to learn); negative loss ratios count as 0; and
before renormalising, each weight is floored at 1e-3 (of the mean weight 1), because a large
optimizer step could otherwise push a weight through zero and turn its task's descent into
ascent, which the renormalisation would then amplify (a non-finite sum resets w to 1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .base import GradSpace, GramianAggregator

#: smallest weight kept before renormalisation (the mean weight is 1)
_WEIGHT_FLOOR = 1e-3


class GradNorm(GramianAggregator):
    """Learn loss weights that equalise the weighted gradient norms, scaled by each task's relative training rate."""

    name = "gradnorm"
    paper = (
        "Chen, Badrinarayanan, Lee & Rabinovich, GradNorm: Gradient Normalization for Adaptive Loss "
        "Balancing in Deep Multitask Networks, ICML 2018"
    )

    def __init__(self, num_tasks: int, alpha: float = 1.5, lr: float | None = 1e-2, grad_space: GradSpace = "representation") -> None:
        super().__init__(num_tasks)
        if not (math.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number or None (the model's learning rate), got {lr!r}")
        self.alpha = alpha
        # Why not the model's learning rate by default: the paper trains w with the network's
        # optimizer, but at fine-tuning rates (1e-5 .. 1e-4) w would barely leave 1 in a short
        # study. Adam moves each weight by about lr per step whatever the gradient's scale, so
        # 1e-2 lets a weight travel O(1) in ~100 steps while jittering ~1% around its balance.
        self.lr = lr
        self.set_grad_space(grad_space)
        self.weights = nn.Parameter(torch.ones(num_tasks))
        self.register_buffer("initial_losses", torch.zeros(num_tasks, dtype=torch.float64))
        self.register_buffer("has_initial_losses", torch.tensor(False))

    def gramian_weights(self, gram: Tensor, losses: Tensor) -> Tensor:
        if not self.has_initial_losses:
            self.initial_losses.copy_(losses)
            self.has_initial_losses.fill_(True)
        initial = self.initial_losses.to(losses)
        ratios = torch.where(initial > 0, losses / initial.clamp(min=torch.finfo(initial.dtype).tiny), torch.ones_like(losses)).clamp(min=0)
        mean_ratio = ratios.mean()
        relative = ratios / mean_ratio if mean_ratio > 0 else torch.ones_like(ratios)

        norms = gram.diagonal().clamp(min=0).sqrt()
        weights = self.weights.detach().to(gram)
        weighted = weights * norms
        # mean(G) and r are constants of L_grad (the paper's choice, so the weights cannot drift
        # to zero by shrinking the target along with G)
        target = weighted.mean() * relative**self.alpha
        grad = torch.sign(weighted - target) * norms
        self.weights.grad = grad.to(self.weights)
        return weights

    def on_step_end(self, losses: Tensor) -> None:
        with torch.no_grad():
            floored = self.weights.clamp(min=_WEIGHT_FLOOR)
            total = floored.sum()
            if torch.isfinite(total):
                self.weights.copy_(floored * (self.num_tasks / total))
            else:  # a diverged optimizer step: start the balancing over
                self.weights.fill_(1.0)

    def learning_rate(self) -> float | None:
        return self.lr

    def reset(self) -> None:
        super().reset()
        with torch.no_grad():
            self.weights.fill_(1.0)
        self.weights.grad = None
        self.initial_losses.zero_()
        self.has_initial_losses.fill_(False)
