"""The multi-task model: a sharing strategy (which owns the encoder) and one head per task."""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from polytask.data import PreparedData
from polytask.encoders import Encoder, TabularEncoder, TextEncoder, build_backbone
from polytask.spec import StudySpec, TabularEncoderSpec, sharing_kwargs
from polytask.spec.models import SharingSpec
from polytask.strategies.sharing import Sharing, get_sharing_class
from polytask.tasks import TASK_TYPES


class MultiTaskModel(nn.Module):
    def __init__(self, sharing: Sharing, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.sharing = sharing
        self.heads = nn.ModuleDict(heads)
        self.tasks = list(heads)

    def forward(self, batch: dict[str, Tensor]) -> tuple[list[Tensor], dict[str, Tensor]]:
        """The boundary of the shared computation (what representation-space gradient
        strategies differentiate against; see polytask.strategies.sharing.base) and each task's
        logits."""
        shared = self.sharing(batch)
        return shared.boundary, {task: self.heads[task](shared.representations[task]) for task in self.tasks}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters two or more tasks' losses reach."""
        return self.sharing.shared_parameters()

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Trainable parameters only ``task``'s loss reaches."""
        yield from (p for p in self.heads[task].parameters() if p.requires_grad)
        yield from self.sharing.task_parameters(task)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters: ``shared``, one entry per task (its private ones), ``total``
        (each counted once) and ``frozen``."""
        counts = {"shared": sum(p.numel() for p in self.shared_parameters())}
        counts.update({task: sum(p.numel() for p in self.task_parameters(task)) for task in self.tasks})
        counts["total"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        counts["frozen"] = sum(p.numel() for p in self.parameters() if not p.requires_grad)
        return counts


def build_encoder(spec: StudySpec, data: PreparedData) -> Encoder:
    """The study's encoder: tabular (feature columns) or text (a transformers model)."""
    enc = spec.encoder
    if isinstance(enc, TabularEncoderSpec):
        return TabularEncoder(data.categorical_sizes, data.numeric_count, embedding_dim=enc.embedding_dim, hidden=enc.hidden, dropout=enc.stage_dropout)
    return TextEncoder(build_backbone(enc, data.vocab_size, data.pad_id), pooling=enc.pooling, trainable_layers=enc.trainable_layers)


def build_head(in_dim: int, num_classes: int, hidden: list[int], dropout: float, task_type: str) -> nn.Module:
    """Dropout, then a tower of hidden layers (none by default), then the task type's output
    layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers, TASK_TYPES[task_type].head(in_dim, num_classes, dropout=dropout))


def build_model(spec: StudySpec, data: PreparedData, sharing: SharingSpec | None = None) -> MultiTaskModel:
    """The model of one candidate: its sharing strategy (default: the study's) over the study's
    encoder, and the study's heads."""
    sharing = sharing or spec.sharing
    encoder = build_encoder(spec, data)
    module = get_sharing_class(sharing.name)(data.task_names, encoder, **sharing_kwargs(sharing, data.task_names))
    heads = {
        t.name: build_head(module.output_dim(t.name), len(t.classes), spec.heads.hidden, spec.encoder.dropout, t.type)
        for t in data.tasks
    }
    return MultiTaskModel(module, heads)
