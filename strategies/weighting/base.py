"""The weighting contract: how a strategy turns K task losses into one update.

The training loop owns autograd; a strategy is pure math on tensors. There are two families,
and gradient aggregators come in two kinds (torchjd makes the same split: its
``GramianWeightedAggregator`` and the plain ``Aggregator`` that reads the Jacobian):

* :class:`LossWeighting` maps the task losses ``[K]`` to a scalar objective; the loop calls
  ``backward()`` on it once. (equal, scalarization, uncertainty, ...)
* :class:`GradientAggregator` maps the per-task gradients, a Jacobian ``[K, P]``, and the
  detached task losses ``[K]`` to the one gradient ``[P]`` the optimizer applies. ``grad_space``
  says which gradients it needs: of the shared *parameters* (exact, K backward passes through
  the shared part) or of the shared *representation* (the MGDA-UB trick of Sener & Koltun 2018:
  one backward through the encoder). Every aggregator is one of two kinds:

  - :class:`GramianAggregator` (PCGrad, MGDA, CAGrad, Nash-MTL, UPGrad, ...) needs only inner
    products of the task gradients: it implements :meth:`GramianAggregator.gramian_weights`,
    ``[K, K]`` Gramian -> weights ``[K]``, and the update is ``sum_k w_k g_k``. The engine
    (``polytask.training.gradients``) still builds the whole ``[K, P]`` Jacobian, forms the
    Gramian from it (products in the Jacobian's dtype, the result cast to float64) and applies
    ``sum_k w_k g_k`` itself, with kernels chosen per device; the strategy only ever sees the
    ``K x K`` matrix.
  - :class:`JacobianAggregator` (GradDrop's signs, DB-MTL's per-task averages) needs the
    gradients themselves: it implements ``forward(jacobian, losses)`` and records in
    ``self._weights`` the weights it reports.

What the tasks' private parameters receive (their heads, and any layers a sharing architecture
gives one task alone): under a gradient aggregator, each task's private parameters get that
task's own, unweighted gradient; the aggregator's weights act on the shared part only. Under a
loss weighting they get the gradient of the objective, so task k's are scaled by
dObjective/dL_k, like everything else.

Call order within one training step, for both families::

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
or set by the aggregator itself inside ``forward`` (or ``gramian_weights``). ``task_weights()``
reports the weights currently applied so they can be logged.

The bases are abstract (:mod:`abc`): a subclass that leaves out a method its kind requires
cannot be instantiated.
"""

from __future__ import annotations

import abc
import inspect
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

GradSpace = Literal["parameters", "representation"]


class Weighting(nn.Module, abc.ABC):
    """Common base of both families; not used directly."""

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

    @abc.abstractmethod
    def task_weights(self) -> Tensor:
        """Weights ``[K]`` currently applied to the tasks (for logging)."""

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

    @abc.abstractmethod
    def forward(self, losses: Tensor) -> Tensor:
        """``losses [K]`` -> the scalar objective."""


class GradientAggregator(Weighting):
    """Combines per-task gradients ``[K, P]`` into one gradient ``[P]``.

    The common base of the two kinds, which is what the platform tests for (``isinstance``):
    subclass :class:`GramianAggregator` when the update is ``sum_k w_k g_k`` with ``w`` a
    function of the Gramian and the losses, :class:`JacobianAggregator` when it depends on more
    than inner products. Subclassing this class directly is an error.
    """

    family: ClassVar[str] = "gradient"
    #: default space; a strategy may expose ``grad_space`` as a hyperparameter to let users trade
    #: exactness for speed.
    grad_space: GradSpace = "parameters"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__module__ != __name__ and not issubclass(cls, (GramianAggregator, JacobianAggregator)):
            raise TypeError(
                f"{cls.__qualname__} subclasses GradientAggregator directly; subclass GramianAggregator "
                "(implement gramian_weights: the update is sum_k w_k g_k) or JacobianAggregator "
                "(implement forward on the Jacobian)"
            )

    def __init__(self, num_tasks: int) -> None:
        super().__init__(num_tasks)
        self.register_buffer("_weights", torch.ones(num_tasks), persistent=False)

    def set_grad_space(self, grad_space: GradSpace) -> None:
        """For aggregators that let users pick the space (a hyperparameter ``grad_space``)."""
        if grad_space not in ("parameters", "representation"):
            raise ValueError(f"grad_space must be 'parameters' or 'representation', got {grad_space!r}")
        self.grad_space = grad_space

    @abc.abstractmethod
    def forward(self, jacobian: Tensor, losses: Tensor) -> Tensor:
        """``jacobian [K, P]`` (rows are task gradients), ``losses [K]`` detached -> ``[P]``."""

    def task_weights(self) -> Tensor:
        return self._weights.detach().clone()

    def reset(self) -> None:
        self._weights.fill_(1.0)

    def _check_jacobian(self, jacobian: Tensor) -> None:
        if jacobian.dim() != 2 or jacobian.shape[0] != self.num_tasks:
            raise ValueError(
                f"expected a Jacobian of shape [{self.num_tasks}, P], got {tuple(jacobian.shape)}"
            )


class GramianAggregator(GradientAggregator):
    """An aggregator whose update is ``sum_k w_k g_k``, the weights ``w`` a function of the
    Gramian ``G G^T`` and the losses alone. Subclasses implement :meth:`gramian_weights`; the
    engine calls :meth:`combine_weights` with the Gramian it forms and applies the weights
    itself, and ``forward`` does the same on a Jacobian it is handed (tests, direct use)."""

    def forward(self, jacobian: Tensor, losses: Tensor) -> Tensor:
        """``jacobian [K, P]`` (rows are task gradients), ``losses [K]`` detached -> ``[P]``."""
        self._check_jacobian(jacobian)
        weights = self.combine_weights(jacobian @ jacobian.T, losses)
        return weights.to(device=jacobian.device, dtype=jacobian.dtype) @ jacobian

    @abc.abstractmethod
    def gramian_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """``gramian [K, K]`` (``G G^T``: its products taken in the Jacobian's dtype, then cast
        to float64), ``losses [K]`` (float64) -> task weights ``[K]``."""

    def combine_weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """Weights for this step from the Gramian, recorded for :meth:`task_weights`."""
        if gramian.shape != (self.num_tasks, self.num_tasks):
            raise ValueError(f"expected a [{self.num_tasks}, {self.num_tasks}] Gramian, got {tuple(gramian.shape)}")
        self._check_losses(losses)
        weights = self.gramian_weights(gramian.double(), losses.detach().double())
        self._weights = weights.detach().to(self._weights)
        return weights


class JacobianAggregator(GradientAggregator):
    """An aggregator whose update depends on more than the inner products of the task gradients
    (GradDrop's signs, DB-MTL's per-task averages). Subclasses implement ``forward`` on the
    Jacobian and record in ``self._weights`` the weights they report."""

    @abc.abstractmethod
    def forward(self, jacobian: Tensor, losses: Tensor) -> Tensor:
        """``jacobian [K, P]`` (rows are task gradients), ``losses [K]`` detached -> ``[P]``."""
