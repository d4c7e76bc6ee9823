"""The single-task architecture (K independent networks side by side): the conformance suite,
private bottoms, no penalty, frozen weights stored once."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.sharing import SHARINGS
from polytask.strategies.sharing.single_task import SingleTask
from tests.sharing_support import TASKS, SharingConformance, ToyEncoder, check_all, spread_copies, text_batch, text_encoder, toy_batch


class TestConformance(SharingConformance):
    name = "single_task"

    def prepare(self, sharing):
        spread_copies(sharing)


def test_registered_with_its_hyperparameters():
    assert SHARINGS["single_task"] is SingleTask
    assert list(SingleTask.hyperparameters()) == ["hidden", "dropout"]


@pytest.mark.parametrize(("make", "batch"), [(ToyEncoder, toy_batch), (lambda: text_encoder(1), text_batch)], ids=["toy", "text"])
def test_no_parameter_is_shared(make, batch):
    sharing = SingleTask(TASKS, make())
    assert not SingleTask.shares_parameters and not list(sharing.shared_parameters())
    assert set(sharing(batch()).representations) == set(TASKS)


def test_frozen_stem_is_stored_once_on_the_toy_encoder():
    sharing = SingleTask(TASKS, ToyEncoder(frozen_stem=True))
    assert sharing.encoders[0].embed.weight is sharing.encoders[2].embed.weight
    assert sharing.encoders[0].blocks[0][0].weight is not sharing.encoders[2].blocks[0][0].weight
    assert all(p.requires_grad for t in TASKS for p in sharing.task_parameters(t))


def test_single_task_bottoms_are_private_and_set_the_head_width():
    sharing = SingleTask(TASKS, ToyEncoder(), hidden=[4])
    assert sharing.output_dim("a") == 4
    own = {id(p) for p in sharing.task_parameters("b")}
    assert {id(p) for p in sharing.bottoms[1].parameters()} <= own
    assert not own & {id(p) for p in sharing.bottoms[0].parameters()}
    check_all(sharing, toy_batch())


def test_no_penalty_even_when_the_copies_differ():
    sharing = SingleTask(TASKS, ToyEncoder())
    with torch.no_grad():
        sharing.encoders[0].embed.weight.add_(1.0)
    assert sharing.regularizer() is None


def test_check_params_accepts_the_defaults():
    SingleTask.check_params(TASKS)
