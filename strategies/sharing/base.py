"""The sharing contract: which parameters the tasks share, and where sharing ends.

A sharing strategy owns the encoder (or its copies) and everything between it and the task
heads. Given a batch it returns one representation per task (the input of that task's head) and
the *boundary*: the tensors where shared computation ends.

Every trainable parameter of a strategy is either

* **shared**: reached by the losses of two or more tasks (gradient strategies combine the
  tasks' gradients on these), or
* **private** to one task: reached by that task's loss only (it gets that task's gradient).

The boundary is a list of tensors such that every shared parameter lies upstream of them, every
private parameter downstream, and no boundary tensor is computed from another. Representation-
space gradient strategies (MGDA-UB's ``Z``, Sener & Koltun 2018) differentiate the task losses
against the boundary and send the combined gradient back through it, so these rules make that
exact: nothing shared is missed, nothing private is counted twice. A tensor that shared and
private modules both read must reach the private ones through :func:`tap`.

The encoder is seen through :class:`Backbone`: a stem, a stack of trainable stages and a
readout. Strategies that work layer by layer (cross-stitch, hierarchical) or copy the encoder
(soft sharing) need nothing else from it, so they work with any encoder polytask builds.
"""

from __future__ import annotations

import abc
import copy
import inspect
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from torch import Tensor, nn

Batch = Mapping[str, Tensor]


@runtime_checkable
class Backbone(Protocol):
    """An encoder as sharing strategies see it: ``forward(batch) == readout(stage_{n-1}(...
    stage_0(stem(batch))))``. The stages are the encoder's trainable blocks in order (the top
    transformer layers of a partly frozen text encoder, the hidden layers of an MLP); the stem is
    everything below them (frozen or not)."""

    output_dim: int  # size of the readout, [B, output_dim]
    num_stages: int

    def stem(self, batch: Batch) -> Tensor: ...

    def stage(self, index: int, hidden: Tensor, batch: Batch) -> Tensor: ...

    def stage_modules(self) -> Sequence[nn.Module]:
        """The modules of the stages, in order (what a stage runs)."""
        ...

    def readout(self, hidden: Tensor, batch: Batch) -> Tensor: ...

    def width(self, depth: int) -> int:
        """Size of the readout of the hidden state after ``depth`` stages (``output_dim`` at
        ``num_stages``; MLP stages may change it, transformer layers do not)."""
        ...

    def __call__(self, batch: Batch) -> Tensor: ...

    def add_task_adapters(self, tasks: Sequence[str], rank: int, alpha: float, dropout: float) -> None:
        """Freeze every base weight and give each task its own low-rank adapters in the stages."""
        ...

    def task_adapter(self, task: str) -> AbstractContextManager[None]:
        """Within the context, the forward pass uses ``task``'s adapters only."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


@dataclass
class SharedOutput:
    representations: dict[str, Tensor]  # task -> input of its head
    boundary: list[Tensor]  # where shared computation ends (see the module docstring)


def tap(x: Tensor) -> Tensor:
    """``x`` as a new autograd node: a gradient taken with respect to the tap counts only what
    reads the tap, not the other readers of ``x``."""
    return x.view_as(x)


def copy_trainable(module: nn.Module) -> nn.Module:
    """A deep copy whose trainable parameters are new and whose frozen ones are the original's
    (one copy of a frozen pretrained bottom in memory, however many tasks)."""
    memo: dict[int, Any] = {id(p): p for p in module.parameters() if not p.requires_grad}
    return copy.deepcopy(module, memo)


def mlp(in_dim: int, hidden: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear -> ReLU (-> Dropout) per hidden size; the identity when ``hidden`` is empty."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    return nn.Sequential(*layers)


class Sharing(nn.Module, abc.ABC):
    """Base class (abstract). Subclasses set ``name`` and ``paper``, take their hyperparameters
    as typed keyword arguments with defaults, and implement ``forward``, ``output_dim``,
    ``shared_parameters`` and ``task_parameters``: one that leaves any out cannot be
    instantiated."""

    name: ClassVar[str]
    paper: ClassVar[str]
    summary: ClassVar[str] = ""
    # False where no parameter is reached by two tasks (soft sharing, adapters): a gradient
    # aggregator would have nothing to combine, so a spec pairing them is rejected.
    shares_parameters: ClassVar[bool] = True

    def __init__(self, tasks: Sequence[str], encoder: Backbone) -> None:
        super().__init__()
        if len(set(tasks)) != len(tasks) or not tasks:
            raise ValueError(f"tasks must be distinct and non-empty, got {list(tasks)}")
        self.tasks = list(tasks)

    @abc.abstractmethod
    def forward(self, batch: Batch) -> SharedOutput:
        """Each task's representation (the input of its head) and the boundary."""

    @abc.abstractmethod
    def output_dim(self, task: str) -> int:
        """Size of the representation handed to ``task``'s head."""

    @abc.abstractmethod
    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters reached by two or more tasks' losses."""

    @abc.abstractmethod
    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Trainable parameters reached by ``task``'s loss only."""

    def no_decay_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters weight decay must leave alone (mixing coefficients whose scale is their
        meaning, such as cross-stitch units); biases and norm scales are exempt anyway."""
        return iter(())

    def regularizer(self) -> Tensor | None:
        """A term added to the training objective as is, outside any task weighting (soft
        sharing's penalty); None when there is none."""
        return None

    @classmethod
    def hyperparameters(cls) -> dict[str, inspect.Parameter]:
        """The keyword arguments a spec may set (everything after ``tasks`` and ``encoder``)."""
        params = inspect.signature(cls.__init__).parameters
        return {n: p for n, p in params.items() if n not in ("self", "tasks", "encoder")}

    @classmethod
    def check_params(cls, tasks: Sequence[str], **params: Any) -> None:
        """Raise ValueError for hyperparameters that cannot work with these tasks, before any
        encoder is built (the spec check calls this)."""

    # Hyperparameters that hold one value per task, as lists in task order.
    per_task_hyperparameters: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def one_task(cls, index: int, **params: Any) -> tuple[str, dict[str, Any]]:
        """The architecture (a registered name) and hyperparameters of this one built for task
        ``index`` of the multi-task model alone: the single-task model a multi-task result is
        measured against (its baseline), with the same layers between encoder and head. By
        default this architecture itself, each per-task hyperparameter cut to the task's value."""
        return cls.name, {k: [v[index]] if k in cls.per_task_hyperparameters and v is not None else v for k, v in params.items()}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters() if hasattr(self, k))


class EverythingShared:
    """For a :class:`Sharing` whose every trainable parameter serves all tasks (hard sharing,
    cross-stitch: the units mix the columns, so every column is shared): no task owns any."""

    tasks: list[str]

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        return trainable(self.parameters())  # type: ignore[attr-defined]

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        if task not in self.tasks:
            raise KeyError(task)
        return iter(())


def trainable(params: Iterator[nn.Parameter]) -> Iterator[nn.Parameter]:
    return (p for p in params if p.requires_grad)
