"""The multi-task model: a shared encoder, a sharing strategy, one head per task."""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

from polytask.data import PreparedData
from polytask.encoders import TextEncoder, build_backbone
from polytask.spec import StudySpec
from polytask.strategies.sharing import Sharing, get_sharing_class
from polytask.tasks import TASK_TYPES


class MultiTaskModel(nn.Module):
    def __init__(self, encoder: TextEncoder, sharing: Sharing, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.encoder = encoder
        self.sharing = sharing
        self.heads = nn.ModuleDict(heads)
        self.tasks = list(heads)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Returns the shared features ``[B, D]`` (the representation that representation-space
        gradient strategies differentiate against) and each task's logits. A batch carrying
        ``frozen_hidden`` (the cached output of the frozen layers) skips those layers."""
        features = self.encoder(batch["input_ids"], batch["attention_mask"], batch.get("frozen_hidden"))
        return features, self.heads_forward(features)

    def heads_forward(self, features: Tensor) -> dict[str, Tensor]:
        representations = self.sharing(features)
        return {task: self.heads[task](representations[task]) for task in self.tasks}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Trainable parameters every task's loss reaches."""
        yield from (p for p in self.encoder.parameters() if p.requires_grad)
        yield from (p for p in self.sharing.shared_parameters() if p.requires_grad)

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Trainable parameters only ``task``'s loss reaches."""
        yield from (p for p in self.heads[task].parameters() if p.requires_grad)
        yield from (p for p in self.sharing.task_parameters(task) if p.requires_grad)


def build_model(spec: StudySpec, data: PreparedData) -> MultiTaskModel:
    enc = spec.encoder
    backbone = build_backbone(enc, data.vocab_size, data.pad_id)
    encoder = TextEncoder(backbone, pooling=enc.pooling, trainable_layers=enc.trainable_layers)
    sharing = get_sharing_class(spec.sharing.name)(data.task_names, encoder.output_dim, **spec.sharing.params)
    heads = {
        t.name: TASK_TYPES[t.type].head(sharing.output_dim(t.name), len(t.classes), dropout=enc.dropout)
        for t in data.tasks
    }
    return MultiTaskModel(encoder, sharing, heads)
