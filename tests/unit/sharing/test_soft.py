"""Soft sharing: one encoder copy per task, the conformance suite, the penalty's value and
gradient, frozen weights stored once."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.sharing import SHARINGS
from polytask.strategies.sharing.soft import SoftSharing
from tests.sharing_support import TASKS, SharingConformance, ToyEncoder, spread_copies, text_batch, text_encoder, toy_batch, trainable_copies


class TestConformance(SharingConformance):
    name = "soft"

    def prepare(self, sharing):
        spread_copies(sharing)


def test_registered_with_its_hyperparameter():
    assert SHARINGS["soft"] is SoftSharing
    assert list(SoftSharing.hyperparameters()) == ["strength"]
    assert "strength=0.001" in repr(SoftSharing(TASKS, ToyEncoder()))


@pytest.mark.parametrize(("make", "batch"), [(ToyEncoder, toy_batch), (lambda: text_encoder(1), text_batch)], ids=["toy", "text"])
def test_no_parameter_is_shared(make, batch):
    sharing = SoftSharing(TASKS, make())
    assert not SoftSharing.shares_parameters and not list(sharing.shared_parameters())
    assert set(sharing(batch()).representations) == set(TASKS)


def test_each_task_has_its_own_copy_and_representation():
    sharing = SoftSharing(TASKS, ToyEncoder(), strength=0.5)
    batch = toy_batch()
    with torch.no_grad():
        sharing.encoders[1].blocks[0][0].weight.add_(1.0)
        out = sharing(batch)
    for task, encoder in zip(TASKS, sharing.encoders):
        assert torch.equal(out.representations[task], encoder(batch))
    assert not torch.allclose(out.representations["a"], out.representations["b"])
    assert torch.equal(out.representations["a"], out.representations["c"])  # untouched copies agree
    private = {t: {id(p) for p in sharing.task_parameters(t)} for t in TASKS}
    assert all(len(ids) == 8 for ids in private.values())  # 4 linear layers, weight + bias
    assert not (private["a"] & private["b"]) and not (private["b"] & private["c"])
    assert sharing.output_dim("b") == 6


def test_frozen_parameters_are_stored_once():
    sharing = SoftSharing(TASKS, text_encoder(1))
    first, *others = sharing.encoders
    frozen = [name for name, p in first.named_parameters() if not p.requires_grad]
    tuned = [name for name, p in first.named_parameters() if p.requires_grad]
    assert frozen and tuned
    for other in others:
        params = dict(other.named_parameters())
        assert all(params[n] is dict(first.named_parameters())[n] for n in frozen)
        assert all(params[n] is not dict(first.named_parameters())[n] for n in tuned)
        assert all(torch.equal(params[n], dict(first.named_parameters())[n]) for n in tuned)  # copies start equal
    per_copy = sum(p.numel() for p in first.parameters())
    frozen_size = sum(p.numel() for p in first.parameters() if not p.requires_grad)
    assert sum(p.numel() for p in sharing.parameters()) == per_copy + 2 * (per_copy - frozen_size)


def test_the_penalty_is_zero_for_equal_copies():
    sharing = SoftSharing(TASKS, ToyEncoder(), strength=0.1)
    penalty = sharing.regularizer()
    assert penalty is not None and penalty.item() == 0.0


def test_the_penalty_measures_the_spread_around_the_mean():
    strength = 0.1
    sharing = SoftSharing(TASKS, ToyEncoder(), strength=strength)
    delta = torch.randn(6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sharing.encoders[1].blocks[2][0].weight.add_(delta)
    # copy b sits 2/3 delta from the mean, a and c 1/3 delta: (4 + 1 + 1) / 9 ||delta||^2
    expected = strength * 2 / 3 * delta.pow(2).sum()
    assert torch.allclose(sharing.regularizer(), expected)


def test_for_two_tasks_the_penalty_is_half_of_duong_et_al_s_distance():
    sharing = SoftSharing(["a", "b"], ToyEncoder(), strength=0.3)
    with torch.no_grad():
        for p in sharing.encoders[0].parameters():
            p.add_(torch.randn_like(p))
    distance = sum((p - q).pow(2).sum() for p, q in zip(*trainable_copies(sharing)))
    assert torch.allclose(sharing.regularizer(), 0.3 / 2 * distance)


def test_the_penalty_gradient_pulls_every_copy_toward_the_mean():
    strength = 0.1
    sharing = SoftSharing(TASKS, ToyEncoder(), strength=strength)
    with torch.no_grad():
        for k, params in enumerate(trainable_copies(sharing)):
            for p in params:
                p.add_(torch.randn_like(p) * (k + 1))
    before = sharing.regularizer()
    before.backward()
    for corresponding in zip(*trainable_copies(sharing)):
        mean = torch.stack(corresponding).mean(dim=0)
        for p in corresponding:
            assert torch.allclose(p.grad, 2 * strength * (p - mean), atol=1e-6)
    with torch.no_grad():  # a small step down the gradient brings the copies together
        for p in sharing.parameters():
            p.sub_(0.5 * p.grad)
    assert sharing.regularizer() < before


def test_a_fully_frozen_encoder_has_nothing_to_penalise():
    encoder = ToyEncoder()
    encoder.requires_grad_(False)
    sharing = SoftSharing(TASKS, encoder, strength=1.0)
    assert sharing.regularizer() is None
    assert sharing.encoders[0].embed.weight is sharing.encoders[1].embed.weight


def test_no_penalty_without_strength():
    assert SoftSharing(TASKS, ToyEncoder(), strength=0.0).regularizer() is None


@pytest.mark.parametrize("strength", [-0.1, float("nan"), float("inf")])
def test_bad_strength_is_rejected(strength):
    with pytest.raises(ValueError, match="strength"):
        SoftSharing.check_params(TASKS, strength=strength)
    with pytest.raises(ValueError, match="strength"):
        SoftSharing(TASKS, ToyEncoder(), strength=strength)
    SoftSharing.check_params(TASKS)
