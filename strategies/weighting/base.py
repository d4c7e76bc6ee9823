"""The weighting contract: how a strategy turns K task losses into one update.

The training loop owns autograd; a strategy is pure math on tensors. There are two kinds:

* :class:`LossWeighting` maps the task losses ``[K]`` to a scalar objective; the loop calls
  ``backward()`` on it once. (equal, scalarization, uncertainty, ...)
* :class:`GradientAggregator` maps the per-task gradients, a Jacobian ``[K, P]``, and the
  detached task losses ``[K]`` to the one gradient ``[P]`` the optimizer applies. ``grad_space``
  says which gradients it needs: of the shared *parameters* (exact, K backward passes through
  the shared part) or of the shared *representation* (the MGDA-UB trick of Sener & Koltun 2018:
  one backward through the encoder). Most aggregators only need inner products: they implement
  :meth:`GradientAggregator.gramian_weights`, ``[K, K]`` Gramian -> weights ``[K]``, and the
  update is ``sum_k w_k g_k``. The engine then never hands them the Jacobian, so it can build
  the Gramian block by block and write the update straight into each parameter's ``.grad``.

Call order within one training step, for both kinds::

    objective = strategy(losses)          # or update = strategy(jacobian, losses)
    ... optimizer.step() ...
    strategy.on_step_end(losses)          # detached; re-evaluated after the step on the same
                                          # batch when the strategy sets loss_after_step
    ... at the end of each epoch: strategy.on_epoch_end(mean_epoch_losses)

Every hyperparameter is a typed keyword argument with a default, stored as an attribute of the
same name (so ``repr`` echoes it and the platform can list it). State lives in parameters and
persistent buffers, so ``state_dict()`` is a complete checkpoint: a resumed trial continues the
strategy exactly. An ``nn.Parameter`` is trained by the loop's optimizer (at
``learning_rate()``) from the ``.grad`` it receives: through the objective for a loss weighting,
or set by the aggregator itself inside ``forward``. ``task_weights()`` reports the weights
currently applied so they can be logged.
"""

from __future__ import annotations

import inspect
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

GradSpace = Literal["parameters", "representation"]


class Weighting(nn.Module):
    """Common base of both kinds; not used directly."""

    #: registry name used in study specs
    name: ClassVar[str]
    #: the paper the method comes from, as "Authors, Title, Venue Year"
    paper: ClassVar[str]
    #: "loss" or "gradient", for listings and MLflow tags
    family: ClassVar[str]
    #: draws random numbers (from torch's global generator, seeded per trial)
    stochastic: ClassVar[bool] = False
    #: wants ``on_step_end`` to receive the losses re-evaluated on the same batch after the
    #: optimizer step (FAMO); the loop pays one extra forward pass for it
    loss_after_step: ClassVar[bool] = False
    #: stays sound when a step carries only some tasks' losses, the others an exact 0 with no
    #: gradient (one dataset per task, one task's batch per step): true of fixed or random
    #: weights of the losses; not of methods that read loss values (log L, L/L_0) or gradients
    #: (a zero gradient is a trivial min-norm solution)
    partial_steps: ClassVar[bool] = False

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be at least 1, got {num_tasks}")
        self.num_tasks = num_tasks

    @classmethod
    def hyperparameters(cls) -> dict[str, inspect.Parameter]:
        """The keyword arguments a study spec may set (everything but ``num_tasks``)."""
        params = inspect.signature(cls.__init__).parameters
        return {n: p for n, p in params.items() if n not in ("self", "num_tasks")}

    def task_weights(self) -> Tensor:
        """Weights ``[K]`` currently applied to the tasks (for logging)."""
        raise NotImplementedError

    def learning_rate(self) -> float | None:
        """Learning rate for this strategy's own parameters; None uses the model's."""
        return None

    def on_step_end(self, losses: Tensor) -> None:
        """Called after each optimizer step with the detached task losses ``[K]``."""

    def on_epoch_end(self, epoch_losses: Tensor) -> None:
        """Called after each epoch with the mean training loss of each task ``[K]``."""

    def reset(self) -> None:
        """Restore the state right after construction."""

    def extra_repr(self) -> str:
        values = [f"num_tasks={self.num_tasks}"]
        values += [f"{n}={getattr(self, n)!r}" for n in self.hyperparameters()]
        return ", ".join(values)

    def _check_losses(self, losses: Tensor) -> None:
        if losses.shape != (self.num_tasks,):
            raise ValueError(f"expected {self.num_tasks} task losses, got shape {tuple(losses.shape)}")


class LossWeighting(Weighting):
    """Combines task losses ``[K]`` into the scalar objective the loop differentiates."""

    family: ClassVar[str] = "loss"

    def forward(self, losses: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class GradientAggregator(Weighting):
    """Combines per-task gradients ``[K, P]`` into one gradient ``[P]``.

    Subclasses implement either :meth:`gramian_weights` (the update is ``sum_k w_k g_k`` with
    ``w`` a function of the Gramian and the losses) or ``forward`` itself (the update depends
    on more than inner products, e.g. GradDrop's signs); the latter record in ``self._weights``
    the weights they report.
    """

    family: ClassVar[str] = "gradient"
    #: default space; a strategy may expose ``grad_space`` as a hyperparameter to let users trade
    #: exactness for speed.
    grad_space: GradSpace = "parameters"

    def __init__(self, num_tasks: int) -> None:
        super().__init__(num_tasks)
        self.register_buffer("_weights", torch.ones(num_tasks), persistent=False)

    def set_grad_space(self, grad_space: GradSpace) -> None:
        """For aggregators that let users pick the space (a hyperparameter ``grad_space``)."""
        if grad_space not in ("parameters", "representation"):
            raise ValueError(f"grad_space must be 'parameters' or 'representation', got {grad_space!r}")
        self.grad_space = grad_space

    def forward(self, jacobian: Tensor, losses: Tensor) -> Tensor:
        """``jacobian [K, P]`` (rows are task gradients), ``losses [K]`` detached -> ``[P]``."""
        self._check_jacobian(jacobian)
        weights = self.combine_weights(jacobian @ jacobian.T, losses)
        return weights.to(device=jacobian.device, dtype=jacobian.dtype) @ jacobian

    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """``gramian [K, K]`` (float64, ``G G^T``), ``losses [K]`` -> task weights ``[K]``."""
        raise NotImplementedError(f"{type(self).__name__} needs the full Jacobian; call it on one")

    @classmethod
    def uses_gramian(cls) -> bool:
        """True when the update needs only inner products of the task gradients."""
        return cls.gramian_weights is not GradientAggregator.gramian_weights

    def combine_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """Weights for this step from the Gramian, recorded for :meth:`task_weights`."""
        if gramian.shape != (self.num_tasks, self.num_tasks):
            raise ValueError(f"expected a [{self.num_tasks}, {self.num_tasks}] Gramian, got {tuple(gramian.shape)}")
        self._check_losses(losses)
        weights = self.gramian_weights(gramian.double(), losses.detach().double())
        self._weights = weights.detach().to(self._weights)
        return weights

    def task_weights(self) -> Tensor:
        return self._weights.detach().clone()

    def reset(self) -> None:
        self._weights.fill_(1.0)

    def _check_jacobian(self, jacobian: Tensor) -> None:
        if jacobian.dim() != 2 or jacobian.shape[0] != self.num_tasks:
            raise ValueError(
                f"expected a Jacobian of shape [{self.num_tasks}, P], got {tuple(jacobian.shape)}"
            )
