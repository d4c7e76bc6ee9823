"""Hierarchical sharing: the conformance suite and several depth profiles, which parameters are
shared or private, the boundary, unused stages frozen, bad depths rejected."""

from __future__ import annotations

import pytest
import torch

from polytask.spec import ParamError, sharing_kwargs
from polytask.spec.models import SharingSpec
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.sharing.hierarchical import Hierarchical
from tests.sharing_support import (
    SETTINGS,
    TASKS,
    SharingConformance,
    ToyEncoder,
    build,
    check_all,
    check_boundary,
    text_batch,
    text_encoder,
    toy_batch,
)

PROFILES = [None, [3, 3, 3], [1, 3, 3], [0, 2, 3], [0, 0, 3], [1, 1, 2], [0, 1, 2], [2, 0, 1], [0, 0, 0]]


def ids(params):
    return {id(p) for p in params}


def stage(sharing, i):
    return ids(sharing.encoder.blocks[i].parameters())


class TestConformance(SharingConformance):
    name = "hierarchical"

    def make(self, encoder):
        # depths [1, 2, 3], cut to the stages this encoder has (one, when only its top layer trains)
        return Hierarchical(TASKS, encoder, depths=[min(d, encoder.num_stages) for d in SETTINGS["hierarchical"]["depths"]])


@pytest.mark.parametrize("depths", PROFILES)
def test_conformance_on_a_toy_encoder(depths):
    check_all(Hierarchical(TASKS, ToyEncoder(), depths=depths), toy_batch())


@pytest.mark.parametrize("depths", [[1, 3, 3], [0, 1, 2]])
def test_conformance_with_a_frozen_stem(depths):
    check_all(Hierarchical(TASKS, ToyEncoder(frozen_stem=True), depths=depths), toy_batch())


def test_a_frozen_stem_shared_by_all_leaves_nothing_shared():
    sharing = Hierarchical(TASKS, ToyEncoder(frozen_stem=True), depths=[0, 0, 2])
    assert not list(sharing.shared_parameters())
    assert ids(sharing.task_parameters("c")) == stage(sharing, 0) | stage(sharing, 1)
    check_all(sharing, toy_batch())


@pytest.mark.parametrize(("trainable_layers", "depths"), [(None, [0, 2, 3]), (None, [1, 1, 3]), (1, [0, 1, 1]), (1, [1, 1, 1])])
def test_conformance_on_a_text_encoder(trainable_layers, depths):
    check_all(Hierarchical(TASKS, text_encoder(trainable_layers), depths=depths), text_batch())


def test_registered_with_its_hyperparameter():
    assert SHARINGS["hierarchical"] is Hierarchical
    assert list(Hierarchical.hyperparameters()) == ["depths"]
    assert "depths=[1, 3, 3]" in repr(Hierarchical(TASKS, ToyEncoder(), depths=[1, 3, 3]))


def test_each_task_reads_its_depth():
    encoder = ToyEncoder()
    sharing = Hierarchical(TASKS, encoder, depths=[0, 2, 3])
    batch = toy_batch()
    with torch.no_grad():
        out = sharing(batch)
        h = [encoder.stem(batch)]
        for i in range(3):
            h.append(encoder.stage(i, h[-1], batch))
    assert torch.equal(out.representations["a"], h[0])
    assert torch.equal(out.representations["b"], h[2])
    assert torch.equal(out.representations["c"], h[3])
    assert torch.equal(out.representations["c"], encoder(batch))


def test_partition_for_depths_1_3_3():
    sharing = Hierarchical(TASKS, ToyEncoder(), depths=[1, 3, 3])
    stem = ids(sharing.encoder.embed.parameters())
    # stem and stage 0: every task; stages 1 and 2: b and c
    assert ids(sharing.shared_parameters()) == stem | stage(sharing, 0) | stage(sharing, 1) | stage(sharing, 2)
    assert all(not list(sharing.task_parameters(t)) for t in TASKS)
    assert all(p.requires_grad for p in sharing.encoder.parameters())  # every stage is run


def test_partition_for_depths_0_2_3():
    sharing = Hierarchical(TASKS, ToyEncoder(), depths=[0, 2, 3])
    stem = ids(sharing.encoder.embed.parameters())
    # stem: all three; stages 0 and 1: b and c; stage 2: c alone
    assert ids(sharing.shared_parameters()) == stem | stage(sharing, 0) | stage(sharing, 1)
    assert ids(sharing.task_parameters("c")) == stage(sharing, 2)
    assert not list(sharing.task_parameters("a")) and not list(sharing.task_parameters("b"))


def test_partition_for_depths_0_0_3():
    sharing = Hierarchical(TASKS, ToyEncoder(), depths=[0, 0, 3])
    assert ids(sharing.shared_parameters()) == ids(sharing.encoder.embed.parameters())
    assert ids(sharing.task_parameters("c")) == stage(sharing, 0) | stage(sharing, 1) | stage(sharing, 2)


def test_stages_above_the_largest_depth_are_frozen_and_unclaimed():
    sharing = Hierarchical(TASKS, ToyEncoder(), depths=[0, 1, 1])
    assert all(p.requires_grad for p in sharing.encoder.blocks[0].parameters())
    assert not any(p.requires_grad for b in sharing.encoder.blocks[1:] for p in b.parameters())
    claimed = ids(sharing.shared_parameters()) | set().union(*(ids(sharing.task_parameters(t)) for t in TASKS))
    assert claimed == ids(p for p in sharing.parameters() if p.requires_grad)
    assert not claimed & (stage(sharing, 1) | stage(sharing, 2))
    # and never run: a stage that raised would not be noticed
    sharing.encoder.blocks[2] = None
    sharing(toy_batch())


def test_the_boundary_taps_lower_reads_and_ends_at_the_last_shared_stage():
    encoder = ToyEncoder()
    sharing = Hierarchical(TASKS, encoder, depths=[0, 2, 3])
    batch = toy_batch()
    out = sharing(batch)
    assert len(out.boundary) == 2  # tap(h0) for a, h2 (after the last stage b and c share)
    with torch.no_grad():
        h0 = encoder.stem(batch)
        h2 = encoder.stage(1, encoder.stage(0, h0, batch), batch)
    assert torch.equal(out.boundary[0], h0) and torch.equal(out.boundary[1], h2)
    assert out.representations["a"] is out.boundary[0]  # a reads the tap, not h0 itself
    # everything above depth 0 lies past the tap: a's loss reaches the stem through it only
    grad_h0 = torch.autograd.grad(out.representations["c"].sum(), out.boundary[0], allow_unused=True)[0]
    assert grad_h0 is None


def test_without_tap_the_boundary_check_fails(monkeypatch):
    """The tap is what makes the boundary exact: with h0 itself on the boundary, h2 is computed
    from another boundary tensor and the stem's gradient is counted twice."""
    sharing = Hierarchical(TASKS, ToyEncoder(), depths=[0, 2, 3])
    check_boundary(build(sharing), toy_batch())
    monkeypatch.setattr("polytask.strategies.sharing.hierarchical.tap", lambda x: x)
    with pytest.raises(AssertionError, match="boundary"):
        check_boundary(build(sharing), toy_batch())


def test_one_task_owns_everything():
    sharing = Hierarchical(["a"], ToyEncoder(), depths=[2])
    assert not list(sharing.shared_parameters())
    assert ids(sharing.task_parameters("a")) == ids(p for p in sharing.parameters() if p.requires_grad)
    check_all(sharing, toy_batch())


def test_bad_depths_are_rejected():
    with pytest.raises(ValueError, match="one depth per task"):
        Hierarchical.check_params(TASKS, depths=[1, 2])
    with pytest.raises(ValueError, match="'b' at -1"):
        Hierarchical.check_params(TASKS, depths=[1, -1, 3])
    with pytest.raises(ValueError, match="'c' at 4, but the encoder has 3 stages"):
        Hierarchical(TASKS, ToyEncoder(), depths=[1, 3, 4])
    Hierarchical.check_params(TASKS, depths=None)
    Hierarchical.check_params(TASKS, depths=[0, 3, 9])  # the encoder decides the top


def test_a_spec_maps_tasks_to_depths():
    kwargs = sharing_kwargs(SharingSpec(name="hierarchical", params={"depths": {"c": 3, "a": 1, "b": 2}}), TASKS)
    assert list(kwargs["depths"]) == [1, 2, 3]
    assert Hierarchical(TASKS, ToyEncoder(), **kwargs).task_depth == {"a": 1, "b": 2, "c": 3}
    with pytest.raises(ParamError):
        sharing_kwargs(SharingSpec(name="hierarchical", params={"depths": [1, 2]}), TASKS)


def test_each_task_reads_the_width_of_its_depth():
    from polytask.encoders import TabularEncoder

    encoder = TabularEncoder([4, 3], numeric_count=2, embedding_dim=2, hidden=[8, 5])
    sharing = Hierarchical(TASKS, encoder, depths=[0, 1, 2])
    assert [sharing.output_dim(t) for t in TASKS] == [6, 8, 5]  # 2 embeddings x 2 + 2 numbers, then the stages
    generator = torch.Generator().manual_seed(0)
    batch = {"categorical": torch.stack([torch.randint(0, 4, (6,), generator=generator), torch.randint(0, 3, (6,), generator=generator)], dim=1), "numeric": torch.randn(6, 2, generator=generator)}
    check_all(sharing, batch)
