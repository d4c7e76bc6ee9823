"""The per-task-gradient engine: the one place that turns task losses into ``.grad``.

What a strategy needs decides the work, done once per step:

* a :class:`LossWeighting` gives a scalar objective: one backward pass;
* a :class:`GradientAggregator` in ``parameters`` space needs the Jacobian of the task losses
  with respect to the shared parameters: one vector-Jacobian product (VJP) per task through the
  shared part;
* a :class:`GradientAggregator` in ``representation`` space needs the Jacobian with respect to
  the boundary of the shared computation (the encoder's features under hard sharing; see
  polytask.strategies.sharing.base) — cheap: only task-private modules lie behind it; the
  combined row then goes back through the shared part in one backward pass (Sener & Koltun
  2018, MGDA-UB).

How the K VJPs are computed is the ``method``:

* ``sequential``: K calls of ``torch.autograd.grad`` over one retained graph;
* ``batched``: one call with ``is_grads_batched=True``, which vmaps the backward pass over the K
  one-hot cotangents — one pass of larger kernels, the fast way on a GPU; on a CPU the vmap
  fallbacks make it no faster (measured: docs/architecture.md), so ``auto`` picks it only on CUDA.

A :class:`GramianAggregator` (most of them) needs only inner products between task gradients:
the engine forms the ``K x K`` Gramian ``G G^T`` from the full ``[K, P]`` Jacobian, hands it
over, gets weights back and applies ``sum_k w_k g_k`` itself (see :func:`gramian` and
:func:`weighted_sum` for how, per device). A :class:`JacobianAggregator` is handed the Jacobian
and returns the update. On the ``sequential`` path each task's gradient is written straight
into its row of one flat ``[K, P]`` matrix; the ``batched`` path gets one ``[K, ...]`` gradient
per input tensor and concatenates them into that matrix (a second ``K x P`` copy, briefly).
The update goes back into ``.grad`` as views of one vector, with no copy per parameter tensor.

What each task's private parameters (its head) receive is the weighting contract's
(polytask.strategies.weighting.base): under a gradient aggregator, that task's own gradient,
unweighted, accumulated here while the Jacobian is built; under a loss weighting, the gradient
of the objective.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from polytask.strategies.weighting import GradientAggregator, GramianAggregator, LossWeighting, Weighting
from polytask.training.model import MultiTaskModel

VJPMethod = Literal["auto", "sequential", "batched"]


def resolve_method(method: VJPMethod, device: torch.device) -> Literal["sequential", "batched"]:
    """``auto``: batched VJPs on CUDA, sequential ones elsewhere."""
    if method == "auto":
        return "batched" if device.type == "cuda" else "sequential"
    return method


def backward(weighting: Weighting, losses: Tensor, model: MultiTaskModel, boundary: list[Tensor], method: VJPMethod = "auto") -> int:
    """Fill ``.grad`` of every trainable parameter for this step. ``boundary`` is the model's
    (where the shared computation ends). Returns the number of backward passes through the
    shared part (logged as ``cost/backward_passes``; a batched VJP over K tasks counts as K: it
    does the work of K passes, in one)."""
    if isinstance(weighting, LossWeighting):
        weighting(losses).backward()
        return 1
    assert isinstance(weighting, GradientAggregator)
    boundary = [b for b in boundary if b.requires_grad]
    shared = list(model.shared_parameters())
    if not boundary or not shared:  # nothing shared is trained (a frozen encoder, task adapters)
        losses.sum().backward()  # each task's parameters get its own gradient
        return 0
    method = resolve_method(method, losses.device)
    inputs = boundary if weighting.grad_space == "representation" else shared
    # the representation path still needs the shared part's graph afterwards; the parameter path frees it
    jacobian = _task_jacobian(losses, model, inputs, method, keep_graph=weighting.grad_space == "representation")
    combined = _combine(weighting, jacobian, losses)
    pieces = combined.split([x.numel() for x in inputs])
    if weighting.grad_space == "representation":
        torch.autograd.backward(boundary, [g.view_as(b).to(b.dtype) for g, b in zip(pieces, boundary)])
        return 1
    for p, g in zip(inputs, pieces):
        _accumulate(p, g.view_as(p))
    return len(model.tasks)


def _task_jacobian(losses: Tensor, model: MultiTaskModel, inputs: list[Tensor], method: str, keep_graph: bool) -> Tensor:
    """The per-task gradients of ``inputs`` as one flat ``[K, P]`` matrix, while each task's
    private parameters receive that task's gradient. ``keep_graph``: the graph survives the
    last VJP."""
    k_tasks = len(model.tasks)
    private = [list(model.task_parameters(task)) for task in model.tasks]
    if method == "batched":
        every_private = [p for params in private for p in params]
        eye = torch.eye(k_tasks, dtype=losses.dtype, device=losses.device)
        grads = torch.autograd.grad(losses, inputs + every_private, grad_outputs=eye, is_grads_batched=True, retain_graph=keep_graph, allow_unused=True)
        offset = len(inputs)
        for k, params in enumerate(private):
            for p, g in zip(params, grads[offset : offset + len(params)]):
                if g is not None:
                    _accumulate(p, g[k])
            offset += len(params)
        return torch.cat([(x.new_zeros((k_tasks, x.numel())) if g is None else g.flatten(1)) for g, x in zip(grads, inputs)], dim=1)
    jacobian = None
    for k, params in enumerate(private):
        grads = torch.autograd.grad(losses[k], inputs + params, retain_graph=keep_graph or k < k_tasks - 1, allow_unused=True)
        pieces = [(torch.zeros_like(x) if g is None else g).flatten() for g, x in zip(grads, inputs)]
        if jacobian is None:
            jacobian = pieces[0].new_empty((k_tasks, sum(piece.numel() for piece in pieces)))
        torch.cat(pieces, out=jacobian[k])  # straight into its row: no second copy of K x P
        for p, g in zip(params, grads[len(inputs) :]):
            if g is not None:
                _accumulate(p, g)
    return jacobian


def _combine(aggregator: GradientAggregator, jacobian: Tensor, losses: Tensor) -> Tensor:
    """The aggregator's update ``[P]`` from the task gradients ``[K, P]``."""
    if jacobian.dtype in (torch.float16, torch.bfloat16):
        jacobian = jacobian.float()
    losses = losses.detach()
    if isinstance(aggregator, GramianAggregator):
        weights = aggregator.combine_weights(gramian(jacobian), losses)
        return weighted_sum(weights, jacobian)
    return aggregator(jacobian, losses)


# On a CPU, for K x P with large P, BLAS's GEMM/GEMV kernels handle this tall-skinny shape
# poorly: K(K+1)/2 dot products and K in-place axpy passes measured about 2x faster for
# MiniLM-L6 (K=3, P=22.7M; benchmarks/weighting_cost.py). A GPU's GEMM handles it well.


def gramian(jacobian: Tensor) -> Tensor:
    """``G G^T`` (``[K, K]``) as float64. The products are taken in the Jacobian's own dtype
    (float32 for float32 parameters; ``_combine`` upcasts a half-precision Jacobian to float32
    first) and only the result is cast to float64, where the aggregators' solvers work."""
    if jacobian.is_cuda:
        return (jacobian @ jacobian.T).double()
    k = jacobian.shape[0]
    out = torch.empty(k, k, dtype=torch.float64)
    for i in range(k):
        for j in range(i, k):
            out[i, j] = out[j, i] = float(torch.dot(jacobian[i], jacobian[j]))
    return out


def weighted_sum(weights: Tensor, jacobian: Tensor) -> Tensor:
    """``sum_k w_k G_k`` (``[P]``)."""
    weights = weights.to(device=jacobian.device, dtype=jacobian.dtype)
    if jacobian.is_cuda:
        return weights @ jacobian
    out = jacobian[0] * weights[0]
    for k in range(1, jacobian.shape[0]):
        out.add_(jacobian[k], alpha=float(weights[k]))
    return out


def _accumulate(p: Tensor, g: Tensor) -> None:
    """Add ``g`` into ``p.grad``; a fresh gradient (nothing else refers to it) is used as is."""
    g = g.detach().to(p.dtype)
    p.grad = g if p.grad is None else p.grad + g
