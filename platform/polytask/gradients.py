"""The one place that turns task losses into gradients on the model.

* a :class:`LossWeighting` gives a scalar objective: one backward pass;
* a :class:`GradientAggregator` in ``parameters`` space: the Jacobian of the task losses with
  respect to the shared parameters, one backward pass per task through the shared part;
* a :class:`GradientAggregator` in ``representation`` space: the Jacobian with respect to the
  shared features ``[B, D]`` (cheap: only the heads lie behind them), combined, then one backward
  pass through the encoder (Sener & Koltun 2018, MGDA-UB).

Each task's private parameters (its head) always receive that task's own gradient, unweighted.
"""

from __future__ import annotations

import torch
from torch import Tensor

from polytask.model import MultiTaskModel
from polytask.strategies.weighting import GradientAggregator, LossWeighting, Weighting


def backward(weighting: Weighting, losses: Tensor, model: MultiTaskModel, features: Tensor) -> int:
    """Fill ``.grad`` of every trainable parameter for this step. Returns the number of
    backward passes through the shared encoder (logged as ``cost/backward_passes``)."""
    if isinstance(weighting, LossWeighting):
        weighting(losses).backward()
        return 1
    assert isinstance(weighting, GradientAggregator)
    if not features.requires_grad:  # nothing shared is trained (a fully frozen encoder)
        losses.sum().backward()  # each head gets its own task's gradient
        return 0
    if weighting.grad_space == "representation":
        return _representation_space(weighting, losses, model, features)
    return _parameter_space(weighting, losses, model)


def _parameter_space(aggregator: GradientAggregator, losses: Tensor, model: MultiTaskModel) -> int:
    shared = list(model.shared_parameters())
    rows = []
    for k, task in enumerate(model.tasks):
        private = list(model.task_parameters(task))
        grads = torch.autograd.grad(losses[k], shared + private, retain_graph=k < len(model.tasks) - 1, allow_unused=True)
        rows.append(_flatten(grads[: len(shared)], shared))
        _accumulate(private, grads[len(shared) :])
    combined = aggregator(torch.stack(rows))
    _accumulate(shared, _unflatten(combined, shared))
    return len(model.tasks)


def _representation_space(aggregator: GradientAggregator, losses: Tensor, model: MultiTaskModel, features: Tensor) -> int:
    rows = []
    for k, task in enumerate(model.tasks):
        private = list(model.task_parameters(task))
        # The last call may free the heads' graph; the encoder's stays for features.backward.
        grads = torch.autograd.grad(losses[k], [features] + private, retain_graph=k < len(model.tasks) - 1, allow_unused=True)
        rows.append(torch.zeros_like(features).flatten() if grads[0] is None else grads[0].flatten())
        _accumulate(private, grads[1:])
    combined = aggregator(torch.stack(rows)).view_as(features)
    features.backward(combined)
    return 1


def _flatten(grads: tuple[Tensor | None, ...], params: list[Tensor]) -> Tensor:
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for g, p in zip(grads, params)])


def _unflatten(vector: Tensor, params: list[Tensor]) -> list[Tensor]:
    out, offset = [], 0
    for p in params:
        out.append(vector[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


def _accumulate(params: list[Tensor], grads) -> None:
    for p, g in zip(params, grads):
        if g is None:
            continue
        p.grad = g.detach().clone() if p.grad is None else p.grad + g
