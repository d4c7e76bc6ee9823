"""Cross-stitch networks: the conformance suite, the paper's initialisation, the identity units
giving K separate networks, and the mix itself."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.sharing import SHARINGS
from polytask.strategies.sharing.cross_stitch import CrossStitch
from tests.sharing_support import TASKS, SharingConformance, ToyEncoder, build, check_all, losses_of, text_batch, text_encoder, toy_batch


def perturb_columns(sharing: CrossStitch) -> None:
    """Make the columns differ, as they do after training."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for k, column in enumerate(sharing.columns):
            for p in column.parameters():
                if p.requires_grad:
                    p.add_(0.2 * (k + 1) * torch.randn(p.shape, generator=generator))


class TestConformance(SharingConformance):
    name = "cross_stitch"

    def prepare(self, sharing):
        perturb_columns(sharing)


# the default init_self = 0.9 runs in TestConformance
@pytest.mark.parametrize("init_self", [0.5, 1.0])
def test_conformance_on_a_toy_encoder(init_self):
    sharing = CrossStitch(TASKS, ToyEncoder(), init_self=init_self)
    perturb_columns(sharing)
    check_all(sharing, toy_batch())


@pytest.mark.parametrize("trainable_layers", [None, 1])
def test_one_unit_after_each_trainable_stage(trainable_layers):
    sharing = CrossStitch(TASKS, text_encoder(trainable_layers))
    assert len(sharing.alphas) == (3 if trainable_layers is None else 1)


def test_conformance_with_a_frozen_stem():
    sharing = CrossStitch(TASKS, ToyEncoder(frozen_stem=True))
    perturb_columns(sharing)
    check_all(sharing, toy_batch())
    assert sharing.columns[0].embed.weight is sharing.columns[2].embed.weight  # stored once
    assert sharing.columns[0].blocks[0][0].weight is not sharing.columns[2].blocks[0][0].weight


def test_registered_with_its_hyperparameter():
    assert SHARINGS["cross_stitch"] is CrossStitch
    assert CrossStitch.shares_parameters
    assert list(CrossStitch.hyperparameters()) == ["init_self"]
    assert "init_self=0.9" in repr(CrossStitch(TASKS, ToyEncoder()))


def test_units_start_as_the_papers_convex_mix():
    sharing = CrossStitch(TASKS, ToyEncoder(depth=2), init_self=0.8)
    assert len(sharing.alphas) == 2
    expected = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    for alpha in sharing.alphas:
        assert torch.allclose(alpha, expected)
    assert sharing.alphas[0] is not sharing.alphas[1]
    two = CrossStitch(["a", "b"], ToyEncoder(), init_self=0.9)
    assert torch.allclose(two.alphas[0], torch.tensor([[0.9, 0.1], [0.1, 0.9]]))


@pytest.mark.parametrize(("make", "make_batch", "atol"), [(ToyEncoder, toy_batch, 1e-6), (lambda: text_encoder(None), text_batch, 1e-5)], ids=["toy", "text"])
def test_identity_units_are_separate_networks(make, make_batch, atol):
    sharing = CrossStitch(TASKS, make(), init_self=1.0).eval()
    perturb_columns(sharing)
    batch = make_batch()
    with torch.no_grad():
        out = sharing(batch)
        for task, column in zip(TASKS, sharing.columns):
            assert torch.allclose(out.representations[task], column(batch), atol=atol)
        assert not torch.allclose(out.representations["a"], out.representations["b"])


def test_the_default_mix_joins_the_columns():
    separate = CrossStitch(TASKS, ToyEncoder(), init_self=1.0)
    perturb_columns(separate)
    mixed = CrossStitch(TASKS, ToyEncoder(), init_self=0.9)
    mixed.columns.load_state_dict(separate.columns.state_dict())
    batch = toy_batch()
    with torch.no_grad():
        assert not torch.allclose(mixed(batch).representations["a"], separate.columns[0](batch))


def test_identity_units_still_learn_to_share():
    """With alpha = I a task's loss leaves no gradient on the other columns, but it does on its
    row of every unit, so the mix can move away from the identity."""
    sharing = CrossStitch(TASKS, ToyEncoder(), init_self=1.0)
    model = build(sharing)
    _, losses = losses_of(model, toy_batch())
    losses[0].backward()
    for alpha in sharing.alphas:
        assert alpha.grad[0].abs().sum() > 0  # row a: how much of b and c to take in
    assert torch.count_nonzero(sharing.alphas[-1].grad[1:]) == 0  # the top unit's other rows feed only their task
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in sharing.columns[1].parameters())


def test_the_stitch_mixes_stage_outputs():
    sharing = CrossStitch(["a", "b"], ToyEncoder(depth=1), init_self=0.75)
    perturb_columns(sharing)
    batch = toy_batch()
    with torch.no_grad():
        x = [column.stage(0, column.stem(batch), batch) for column in sharing.columns]
        out = sharing(batch)
    assert torch.allclose(out.representations["a"], 0.75 * x[0] + 0.25 * x[1])
    assert torch.allclose(out.representations["b"], 0.25 * x[0] + 0.75 * x[1])
    assert len(out.boundary) == 2


def test_everything_is_shared_nothing_private():
    sharing = CrossStitch(TASKS, ToyEncoder())
    shared = {id(p) for p in sharing.shared_parameters()}
    assert shared == {id(p) for p in sharing.parameters()}
    assert {id(a) for a in sharing.alphas} <= shared
    assert all(not list(sharing.task_parameters(t)) for t in TASKS)
    with pytest.raises(KeyError):
        sharing.task_parameters("nope")


@pytest.mark.parametrize("init_self", [-0.1, 1.5, float("nan")])
def test_bad_init_self_is_rejected(init_self):
    with pytest.raises(ValueError, match="init_self"):
        CrossStitch.check_params(TASKS, init_self=init_self)


def test_one_task_or_no_stage_is_rejected():
    with pytest.raises(ValueError, match="two or more task"):
        CrossStitch.check_params(["a"])
    with pytest.raises(ValueError, match="after each encoder stage, and this encoder has none"):
        CrossStitch(TASKS, ToyEncoder(depth=0))
    CrossStitch.check_params(TASKS)


def test_weight_decay_leaves_the_cross_stitch_units_alone():
    from polytask.strategies.weighting import Equal
    from polytask.training.train import _optimizer

    sharing = CrossStitch(TASKS, ToyEncoder())
    optimizer = _optimizer(build(sharing), Equal(len(TASKS)), lr=1e-3, weight_decay=0.1)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert all(decay[id(alpha)] == 0.0 for alpha in sharing.alphas)
    assert decay[id(sharing.columns[1].blocks[0][0].weight)] == 0.1
