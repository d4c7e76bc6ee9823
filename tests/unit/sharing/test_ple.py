"""PLE (CGC at one level): the conformance suite, gates that are distributions and mix the
experts as the paper writes it, the configured experts and parameter counts, the shared/private
split of a multi-level PLE, and the hyperparameter checks."""

from __future__ import annotations

import pytest
import torch

from polytask.spec import sharing_kwargs
from polytask.spec.models import SharingSpec
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.sharing.ple import PLE
from tests.sharing_support import (
    TASKS,
    SharingConformance,
    ToyEncoder,
    assert_distribution,
    build,
    check_all,
    losses_of,
    parameter_count,
    parameter_ids,
    text_batch,
    text_encoder,
    toy_batch,
)


class TestConformance(SharingConformance):
    name = "ple"


def test_registered():
    assert SHARINGS["ple"] is PLE and PLE.shares_parameters


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_ple_conforms_on_a_toy_encoder(levels):
    check_all(PLE(TASKS, ToyEncoder(), levels=levels, shared_experts=2, task_experts=2, expert_hidden=[5, 4]), toy_batch())


@pytest.mark.parametrize("levels", [1, 2])
def test_ple_conforms_on_a_text_encoder(levels):
    sharing = PLE(TASKS, text_encoder(None), levels=levels, shared_experts=1, task_experts=1, expert_hidden=[8])
    check_all(sharing, text_batch())
    assert sharing.output_dim("c") == 8


def test_cgc_mixes_own_and_shared_experts():
    torch.manual_seed(0)
    sharing = PLE(TASKS, ToyEncoder(), levels=1, shared_experts=2, task_experts=3, expert_hidden=[4]).eval()
    batch = toy_batch()
    (level,) = sharing.gates(batch)
    assert level.shared is None  # one level: no shared gate
    for task in TASKS:
        assert_distribution(level.tasks[task], 8, 3 + 2)
    x = sharing.encoder(batch)
    net = sharing.extraction[0]
    out = sharing(batch)
    for task in TASKS:
        experts = [e(x) for e in net.task_experts[task]] + [e(x) for e in net.shared_experts]
        expected = sum(level.tasks[task][:, e : e + 1] * experts[e] for e in range(5))
        assert torch.allclose(out.representations[task], expected, atol=1e-6)


def test_ple_gates_at_every_level_are_distributions():
    sharing = PLE(TASKS, ToyEncoder(), levels=3, shared_experts=2, task_experts=1, expert_hidden=[4])
    gates = sharing.gates(toy_batch())
    assert len(gates) == 3
    for j, level in enumerate(gates):
        for task in TASKS:
            assert_distribution(level.tasks[task], 8, 1 + 2)
        if j < 2:
            assert_distribution(level.shared, 8, 3 * 1 + 2)  # every task's experts and the shared ones
        else:
            assert level.shared is None


def test_ple_experts_and_parameter_counts():
    encoder = ToyEncoder()
    sharing = PLE(TASKS, encoder, levels=2, shared_experts=2, task_experts=1, expert_hidden=[4])
    low, top = sharing.extraction
    assert len(low.shared_experts) == len(top.shared_experts) == 2
    assert all(len(low.task_experts[t]) == len(top.task_experts[t]) == 1 for t in TASKS)
    assert low.shared_gate is not None and top.shared_gate is None
    # level 1 reads x (6 wide), level 2 reads level 1's output (4 wide); gates have no bias
    low_expert, top_expert = 6 * 4 + 4, 4 * 4 + 4
    for task in TASKS:
        assert parameter_count(sharing.task_parameters(task)) == top_expert + 4 * 3 + 6 * 3  # top expert + top gate + level-1 gate
    shared = 2 * low_expert + 3 * low_expert + 6 * 5 + 2 * top_expert  # level-1 experts, shared gate, level-2 shared experts
    assert parameter_count(sharing.shared_parameters()) == parameter_count(encoder.parameters()) + shared


def test_ple_lower_level_task_experts_are_shared_and_top_ones_private():
    sharing = PLE(TASKS, ToyEncoder(), levels=2, shared_experts=1, task_experts=1, expert_hidden=[4])
    low, top = sharing.extraction
    shared = {id(p) for p in sharing.shared_parameters()}
    for task in TASKS:
        private = {id(p) for p in sharing.task_parameters(task)}
        assert parameter_ids(low.task_experts[task]) <= shared
        assert parameter_ids(top.task_experts[task], top.task_gates[task], low.task_gates[task]) == private
    # why: task b's loss reaches task a's level-1 experts (through the shared gate), but neither
    # a's level-1 gate (its output feeds a's level 2 only) nor a's level-2 experts
    model = build(sharing)
    _, losses = losses_of(model, toy_batch())
    reached = list(low.task_experts["a"].parameters())
    unreached = [*low.task_gates["a"].parameters(), *top.task_experts["a"].parameters()]
    grads = torch.autograd.grad(losses[TASKS.index("b")], reached + unreached, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads[: len(reached)])
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads[len(reached) :])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"levels": 0}, "levels"),
        ({"shared_experts": 0}, "shared_experts"),
        ({"task_experts": 0}, "task_experts"),
        ({"expert_hidden": []}, "expert_hidden"),
        ({"dropout": -0.1}, "dropout"),
    ],
)
def test_check_params_rejects_what_cannot_work(params, message):
    with pytest.raises(ValueError, match=message):
        PLE.check_params(TASKS, **params)
    with pytest.raises(ValueError, match=message):
        PLE(TASKS, ToyEncoder(), **params)


def test_check_params_accepts_the_defaults_and_the_spec_types_them():
    PLE.check_params(TASKS)
    kwargs = sharing_kwargs(SharingSpec(name="ple", params={"levels": 2, "expert_hidden": [8, 4], "dropout": 0.1}), TASKS)
    assert kwargs["levels"] == 2 and list(kwargs["expert_hidden"]) == [8, 4]
