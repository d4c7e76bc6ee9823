"""What every polytask encoder is: a stem, trainable stages and a readout (the
:class:`polytask.strategies.sharing.Backbone` protocol), plus per-task LoRA adapters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import Tensor, nn

from polytask.strategies.sharing import Batch


class Encoder(nn.Module):
    """Subclasses set ``output_dim`` and implement ``stem``, ``stage_modules`` (the trainable
    blocks, in order), ``stage`` and ``readout``. ``forward`` composes them; a subclass may
    override it with a faster path that gives the same result."""

    output_dim: int

    def stem(self, batch: Batch) -> Tensor:
        raise NotImplementedError

    def stage_modules(self) -> Sequence[nn.Module]:
        raise NotImplementedError

    @property
    def num_stages(self) -> int:
        return len(self.stage_modules())

    def stage(self, index: int, hidden: Tensor, batch: Batch) -> Tensor:
        raise NotImplementedError

    def readout(self, hidden: Tensor, batch: Batch) -> Tensor:
        raise NotImplementedError

    def width(self, depth: int) -> int:
        """Size of the readout after ``depth`` stages; stages that keep one width by default."""
        return self.output_dim

    def forward(self, batch: Batch) -> Tensor:
        hidden = self.stem(batch)
        for index in range(self.num_stages):
            hidden = self.stage(index, hidden, batch)
        return self.readout(hidden, batch)

    def add_task_adapters(self, tasks: Sequence[str], rank: int, alpha: float, dropout: float) -> None:
        """Freeze every weight of the encoder and give each task its own LoRA adapters on the
        linear layers of the stages (peft; see polytask.encoders.adapters)."""
        from polytask.encoders.adapters import add_lora_adapters

        self.requires_grad_(False)
        add_lora_adapters(list(self.stage_modules()), tasks, rank=rank, alpha=alpha, dropout=dropout)

    @contextmanager
    def task_adapter(self, task: str) -> Iterator[None]:
        from polytask.encoders.adapters import active_adapter

        with active_adapter(list(self.stage_modules()), task):
            yield
