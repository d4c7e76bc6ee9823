"""What every sharing strategy must satisfy, as reusable checks, two tiny encoders to run them
on (a toy MLP encoder and a small random BERT, the real TextEncoder), and the conformance suite
every registered architecture runs from its own file (``tests/unit/sharing/test_<name>.py``):

    class TestConformance(SharingConformance):
        name = "mmoe"
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import torch
from torch import Tensor, nn

from polytask.encoders import Encoder, TextEncoder
from polytask.strategies.registry import describe
from polytask.strategies.sharing import SHARINGS, Sharing
from polytask.training.gradients import backward
from polytask.training.model import MultiTaskModel
from tests.weighting_support import SumAggregator

TASKS = ["a", "b", "c"]
#: small hyperparameters for the tiny models the tests build, by architecture (default: none)
SETTINGS: dict[str, dict[str, Any]] = {"mmoe": {"experts": 3, "expert_hidden": [4]}, "ple": {"expert_hidden": [4]}, "hierarchical": {"depths": [1, 2, 3]}, "lora": {"rank": 2}}


class ToyEncoder(Encoder):
    """stem: Linear(5 -> 6); stages: ``depth`` x (Linear(6 -> 6), tanh); readout: identity."""

    def __init__(self, depth: int = 3, frozen_stem: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(5, 6)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(6, 6), nn.Tanh()) for _ in range(depth))
        self.output_dim = 6
        if frozen_stem:
            self.embed.requires_grad_(False)

    def stem(self, batch):
        return self.embed(batch["x"])

    def stage_modules(self):
        return list(self.blocks)

    def stage(self, index, hidden, batch):
        return self.blocks[index](hidden)

    def readout(self, hidden, batch):
        return hidden


def toy_batch(size: int = 8, seed: int = 1) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(size, 5, generator=generator)}


def text_encoder(trainable_layers: int | None = None, token_level: bool = False) -> TextEncoder:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
    return TextEncoder(BertModel(config), pooling="mean", trainable_layers=trainable_layers, token_level=token_level)


def text_batch(size: int = 4, seed: int = 1) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 50, (size, 7), generator=generator)
    mask = torch.ones(size, 7, dtype=torch.long)
    mask[0, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def build(sharing: Sharing, seed: int = 0, pooling: str | None = None) -> MultiTaskModel:
    """``pooling``: the sharing hands over token states, which the heads read pooled."""
    torch.manual_seed(seed)
    heads = {t: nn.Linear(sharing.output_dim(t), 2) for t in sharing.tasks}
    return MultiTaskModel(sharing, heads, pooling=pooling).eval()  # eval: no dropout, so repeated passes agree


def parameter_count(params) -> int:
    return sum(p.numel() for p in params)


def parameter_ids(*modules: nn.Module) -> set[int]:
    return {id(p) for m in modules for p in m.parameters()}


def assert_distribution(gate: Tensor, rows: int, width: int) -> None:
    assert gate.shape == (rows, width)
    assert (gate >= 0).all()
    assert torch.allclose(gate.sum(dim=-1), torch.ones(rows))


def trainable_copies(sharing: Sharing) -> list[list[nn.Parameter]]:
    """The trainable parameters of each task's encoder copy (soft sharing, single-task)."""
    return [list(p for p in encoder.parameters() if p.requires_grad) for encoder in sharing.encoders]


def spread_copies(sharing: Sharing) -> None:
    """Make the copies differ, so that soft sharing's penalty and its gradient are not zero."""
    with torch.no_grad():
        for k, params in enumerate(trainable_copies(sharing)):
            for p in params:
                p.add_(0.1 * k)


def losses_of(model: MultiTaskModel, batch: dict[str, Tensor]) -> tuple[list[Tensor], Tensor]:
    boundary, logits = model(batch)
    targets = torch.arange(len(next(iter(logits.values())))) % 2
    return boundary, torch.stack([nn.functional.cross_entropy(logits[t], targets) for t in model.tasks])


def _grads(loss: Tensor, params: list[nn.Parameter]) -> list[Tensor | None]:
    if not params:
        return []
    return list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))


def check_forward(model: MultiTaskModel, batch: dict[str, Tensor]) -> None:
    shared = model.sharing(batch)
    rows = len(next(iter(batch.values())))
    for task in model.tasks:
        shape = shared.representations[task].shape  # [B, D], or token states [B, T, D]
        assert (shape[0], shape[-1]) == (rows, model.sharing.output_dim(task)) and len(shape) == (3 if model.pooling else 2)
    assert shared.boundary, "the boundary is empty"


def check_partition(model: MultiTaskModel, batch: dict[str, Tensor]) -> None:
    """Shared and private sets are disjoint and cover every trainable parameter; a task's loss
    does not reach another task's private parameters and does reach its own; every shared
    parameter is reached by two or more tasks. "Reached" is structural: the parameter is in the
    graph of that task's own loss (a separate root per task, so autograd gives None otherwise)."""
    shared = list(model.sharing.shared_parameters())
    private = {t: list(model.sharing.task_parameters(t)) for t in model.tasks}
    ids = [id(p) for p in shared] + [id(p) for ps in private.values() for p in ps]
    assert len(ids) == len(set(ids)), "a parameter is declared twice"
    own = {id(p) for p in model.sharing.parameters() if p.requires_grad}
    assert set(ids) == own, f"{len(own - set(ids))} trainable parameter(s) are neither shared nor private"
    _, logits = model(batch)
    targets = torch.arange(len(next(iter(logits.values())))) % 2
    reached_by = {id(p): 0 for p in shared}
    for task in model.tasks:
        loss = nn.functional.cross_entropy(logits[task], targets)
        for other, params in private.items():
            reached = [g is not None for g in _grads(loss, params)]
            if other == task:
                assert all(reached), f"{task}'s loss does not reach all of its own parameters"
            else:
                assert not any(reached), f"{task}'s loss reaches {other}'s private parameters"
        for p, g in zip(shared, _grads(loss, shared)):
            reached_by[id(p)] += g is not None
    assert all(count >= 2 for count in reached_by.values()), "a 'shared' parameter is reached by fewer than two tasks"


def check_boundary(model: MultiTaskModel, batch: dict[str, Tensor]) -> None:
    """Each task's gradient on the shared parameters is its gradient on the boundary sent back
    through the boundary (nothing shared lies past it, no boundary tensor feeds another)."""
    shared = list(model.sharing.shared_parameters())
    if not shared:
        return  # nothing shared: the engine never differentiates against the boundary
    boundary, losses = losses_of(model, batch)
    boundary = [b for b in boundary if b.requires_grad]
    for k in range(len(model.tasks)):
        direct = _grads(losses[k], shared)
        cotangents = [torch.zeros_like(b) if g is None else g for b, g in zip(boundary, _grads(losses[k], boundary))]
        through = torch.autograd.grad(boundary, shared, cotangents, retain_graph=True, allow_unused=True)
        for d, t in zip(direct, through):
            d = torch.zeros(()) if d is None else d
            t = torch.zeros(()) if t is None else t
            assert torch.allclose(d, t, atol=1e-6), "the boundary misses or double-counts a path"


def check_engine(model: MultiTaskModel, batch: dict[str, Tensor]) -> None:
    """In both gradient spaces, a summing aggregator fills ``.grad`` exactly like the summed
    loss's own backward pass (with the regularizer, if any, added in both)."""

    def plain() -> dict[str, Tensor]:
        model.zero_grad(set_to_none=True)
        _, losses = losses_of(model, batch)
        total = losses.sum()
        regularizer = model.sharing.regularizer()
        (total if regularizer is None else total + regularizer).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    expected = plain()
    for space in ("parameters", "representation"):
        model.zero_grad(set_to_none=True)
        boundary, losses = losses_of(model, batch)
        backward(SumAggregator(len(model.tasks), space), losses, model, boundary, "sequential")
        regularizer = model.sharing.regularizer()
        if regularizer is not None:
            regularizer.backward()
        got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        assert got.keys() == expected.keys(), f"{space}: gradients reach {sorted(got.keys() ^ expected.keys())} differently"
        for name, value in expected.items():
            assert torch.allclose(got[name], value, atol=1e-5), f"{space}: {name}"


CHECKS: list[Callable[[MultiTaskModel, dict[str, Tensor]], None]] = [check_forward, check_partition, check_boundary, check_engine]


def check_all(sharing: Sharing, batch: dict[str, Tensor], pooling: str | None = None) -> None:
    model = build(sharing, pooling=pooling)
    for check in CHECKS:
        check(model, batch)


class SharingConformance:
    """What every registered architecture must satisfy, on every kind of encoder polytask
    builds (with its hyperparameters from :data:`SETTINGS`). A file subclasses this as
    ``TestConformance``, sets ``name`` and, where the architecture starts degenerate (identical
    copies, zero adapters), overrides ``prepare`` to move it off that point."""

    name: ClassVar[str]

    def prepare(self, sharing: Sharing) -> None:
        """Called on every sharing built here before the checks run."""

    def make(self, encoder) -> Sharing:
        sharing = SHARINGS[self.name](TASKS, encoder, **SETTINGS.get(self.name, {}))
        self.prepare(sharing)
        return sharing

    def test_registered_with_paper_and_summary(self):
        cls = SHARINGS[self.name]
        assert cls.name == self.name
        assert len(cls.paper) > 10 and cls.summary
        info = describe(cls)
        assert info["name"] == self.name and info["family"] == "sharing" and info["summary"]
        assert not cls.__abstractmethods__

    def test_hyperparameters_are_typed_keywords_with_defaults(self):
        cls = SHARINGS[self.name]
        for name, param in cls.hyperparameters().items():
            assert param.default is not inspect.Parameter.empty, name
            assert param.annotation is not inspect.Parameter.empty, name
        cls.check_params(TASKS, **SETTINGS.get(self.name, {}))

    def test_conforms_on_a_toy_encoder(self):
        check_all(self.make(ToyEncoder()), toy_batch())

    @pytest.mark.parametrize("trainable_layers", [None, 1])
    def test_conforms_on_a_text_encoder(self, trainable_layers):
        check_all(self.make(text_encoder(trainable_layers)), text_batch())

    def test_conforms_over_token_states(self):
        # a study with a token-classification task: representations [B, T, D], read pooled
        check_all(self.make(text_encoder(token_level=True)), text_batch(), pooling="mean")
