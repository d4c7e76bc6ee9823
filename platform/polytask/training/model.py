"""The multi-task model: a sharing strategy (which owns the encoder) and one head per task.

When a task tags tokens, the text encoder hands every task its token states ``[B, L, D]``
(sharing strategies work on the last dimension); the other tasks' representations are pooled
here, just before their heads, as the encoder would pool them otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from polytask.data import PreparedData
from polytask.encoders import ConvEncoder, Encoder, TabularEncoder, TextEncoder, VitEncoder, build_backbone, pool_tokens
from polytask.spec import CnnEncoderSpec, StudySpec, TabularEncoderSpec, VitEncoderSpec, sharing_kwargs
from polytask.spec.models import SharingSpec
from polytask.strategies.sharing import Sharing, get_sharing_class
from polytask.tasks import TASK_TYPES, TaskInfo


class MultiTaskModel(nn.Module):
    """``pooling`` ("mean" or "cls"): the representations are token states and the tasks not in
    ``token_tasks`` read them pooled; None: every representation is one vector per row."""

    def __init__(self, sharing: Sharing, heads: dict[str, nn.Module], pooling: str | None = None, token_tasks: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.sharing = sharing
        self.heads = nn.ModuleDict(heads)
        self.tasks = list(heads)
        self.pooling = pooling
        self.token_tasks = token_tasks

    def forward(self, batch: dict[str, Tensor]) -> tuple[list[Tensor], dict[str, Tensor]]:
        """The boundary of the shared computation (what representation-space gradient
        strategies differentiate against; see polytask.strategies.sharing.base) and each task's
        outputs."""
        shared = self.sharing(batch)
        outputs = {}
        for task in self.tasks:
            representation = shared.representations[task]
            if self.pooling is not None and task not in self.token_tasks:
                representation = pool_tokens(representation, batch["attention_mask"], self.pooling)
            outputs[task] = self.heads[task](representation)
        return shared.boundary, outputs

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
    """The study's encoder: tabular (feature columns), images (a CNN or a ViT) or text (a
    transformers model; token states when a task tags tokens)."""
    enc = spec.encoder
    if isinstance(enc, TabularEncoderSpec):
        return TabularEncoder(data.categorical_sizes, data.numeric_count, embedding_dim=enc.embedding_dim, hidden=enc.hidden, dropout=enc.stage_dropout)
    if isinstance(enc, CnnEncoderSpec):
        channels, size, _ = data.image_shape
        return ConvEncoder(channels, size, channels=enc.channels, kernel_size=enc.kernel_size, dropout=enc.stage_dropout)
    if isinstance(enc, VitEncoderSpec):
        channels, size, _ = data.image_shape
        return VitEncoder(
            channels, size, patch_size=enc.patch_size, hidden_size=enc.hidden_size, layers=enc.layers, heads=enc.heads,
            intermediate_size=enc.intermediate_size, pooling=enc.pooling, dropout=enc.stage_dropout,
        )
    token_level = any(TASK_TYPES[t.type].token_level for t in data.tasks)
    return TextEncoder(build_backbone(enc, data.vocab_size, data.pad_id), pooling=enc.pooling, trainable_layers=enc.trainable_layers, token_level=token_level)


def build_head(in_dim: int, task: TaskInfo, hidden: list[int], dropout: float) -> nn.Module:
    """Dropout, then a tower of hidden layers (none by default), then the task type's output
    layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    return nn.Sequential(*layers, TASK_TYPES[task.type].head(in_dim, task, dropout=dropout))


def build_model(spec: StudySpec, data: PreparedData, sharing: SharingSpec | None = None) -> MultiTaskModel:
    """The model of one candidate: its sharing strategy (default: the study's) over the study's
    encoder, and the study's heads."""
    sharing = sharing or spec.sharing
    encoder = build_encoder(spec, data)
    module = get_sharing_class(sharing.name)(data.task_names, encoder, **sharing_kwargs(sharing, data.task_names))
    heads = {t.name: build_head(module.output_dim(t.name), t, spec.heads.hidden, spec.encoder.dropout) for t in data.tasks}
    token_tasks = tuple(t.name for t in data.tasks if TASK_TYPES[t.type].token_level)
    return MultiTaskModel(module, heads, pooling=spec.encoder.pooling if token_tasks else None, token_tasks=token_tasks)
