"""DB-MTL: dual balancing of loss scales (log transform) and gradient magnitudes (max norm).

Lin, Jiang, Ye, Zhang, Chen, Chen, Liu & Kwok, "Dual-Balancing for Multi-Task Learning", arXiv
2308.12029, 2023 (Algorithm 1; a later version adds Tsang as an author). At step t = 1, 2, ...:

    loss-scale balancing:   h_k = grad log(L_k + eps) = g_k / (L_k + eps)         (eps = 1e-8)
    EMA of each task:       h^_k <- beta_t h^_k + (1 - beta_t) h_k,   beta_t = beta / t^beta_sigma,   h^_k = 0 at t = 0
    magnitude balancing:    update = sum_k (max_j ||h^_j|| / ||h^_k||) h^_k

so every task contributes a vector of the largest EMA norm. Defaults beta = 0.9 and
beta_sigma = 0 (a constant rate) are those of the official code (LibMTL, whose DB_MTL is the
authors' implementation); as there, the EMA is not bias-corrected.

The EMA keeps one vector per task, a [K, P] buffer sized at the first call. The update depends on
the vectors themselves, not only their inner products, so this aggregator takes the Jacobian.
It always works on the shared parameters: an EMA of representation gradients would average
gradients of different examples (the official code rejects that mode too).

task_weights() reports the weight this step's raw gradient g_k receives in the update,
alpha_k (1 - beta_t) / (L_k + eps) with alpha_k = max_j ||h^_j|| / ||h^_k||; the rest of the
update is the decayed history of earlier steps.

Deviations, for robustness or the aggregator contract: a task whose EMA is zero, or below 1e-30
of the largest norm, contributes nothing (its factor would be 0/0, or overflow float32); losses
are clamped at 0 before the log (they are non-negative here). With a single task there is
nothing to balance, and we return its log-loss gradient g / (L + eps) itself rather than its EMA:
the contract asks that a single task's update be a positive multiple of its current gradient,
which a momentum average is not.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .base import JacobianAggregator

#: the official code's guard inside the log, log(L + eps)
_EPS = 1e-8
#: an EMA norm this small relative to the largest is treated as zero
_NEGLIGIBLE = 1e-30


class DBMTL(JacobianAggregator):
    """Balance loss scales by taking logs and gradient magnitudes by rescaling each task's EMA gradient to the largest norm."""

    name = "db_mtl"
    paper = "Lin, Jiang, Ye, Zhang, Chen, Chen, Liu & Kwok, Dual-Balancing for Multi-Task Learning, arXiv:2308.12029 2023"

    def __init__(self, num_tasks: int, beta: float = 0.9, beta_sigma: float = 0.0) -> None:
        super().__init__(num_tasks)
        if not (0 <= beta < 1):
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        if not (math.isfinite(beta_sigma) and beta_sigma >= 0):
            raise ValueError(f"beta_sigma must be a finite number >= 0, got {beta_sigma!r}")
        self.beta = beta
        self.beta_sigma = beta_sigma
        self.register_buffer("steps", torch.tensor(0, dtype=torch.long))
        # [K, P] once the first Jacobian arrives; [K, 0] means "no history yet"
        self.register_buffer("ema", torch.zeros(num_tasks, 0))

    def forward(self, jacobian: Tensor, losses: Tensor) -> Tensor:
        self._check_jacobian(jacobian)
        self._check_losses(losses)
        scale = 1.0 / (losses.detach().to(jacobian.dtype).clamp(min=0) + _EPS)  # d log(L + eps) = g / (L + eps)
        if self.num_tasks == 1:
            self._weights = scale.detach().to(self._weights)
            return jacobian[0] * scale[0]

        self.steps += 1
        rate = self.beta / float(self.steps) ** self.beta_sigma
        if self.ema.shape[1] == 0:
            self.ema = torch.zeros_like(jacobian)
        elif self.ema.shape[1] != jacobian.shape[1]:
            raise ValueError(f"DB-MTL keeps a gradient average of {self.ema.shape[1]} entries per task, got a Jacobian with {jacobian.shape[1]}")
        # in place: no second [K, P] copy of the (possibly parameter-sized) gradients
        self.ema.mul_(rate).addcmul_(jacobian, ((1 - rate) * scale)[:, None].to(self.ema.dtype))

        norms = self.ema.norm(dim=1).double()
        largest = norms.max()
        # below 1e-30 of the largest a task counts as zero: its factor would overflow float32
        active = norms > largest * _NEGLIGIBLE
        factors = torch.where(active, largest / torch.where(active, norms, torch.ones_like(norms)), torch.zeros_like(norms))
        self._weights = (factors * (1 - rate) * scale.double()).to(self._weights)
        return (factors.to(self.ema.dtype) @ self.ema).to(jacobian.dtype)

    def reset(self) -> None:
        super().reset()
        self.steps.zero_()
        self.ema = torch.zeros(self.num_tasks, 0, device=self.ema.device)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # The saved EMA may be [K, P] while a fresh instance holds [K, 0]: take its shape first.
        saved = state_dict.get(prefix + "ema")
        if isinstance(saved, Tensor):
            self.ema = torch.empty(saved.shape, dtype=saved.dtype, device=self.ema.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
