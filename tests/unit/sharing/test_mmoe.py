"""MMoE: the conformance suite, gates that are distributions (per token over token states) and
mix the experts as the paper writes it, the configured experts and parameter counts, and the
hyperparameter checks."""

from __future__ import annotations

import pytest
import torch

from polytask.spec import ParamError, sharing_kwargs
from polytask.spec.models import SharingSpec
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.sharing.mmoe import MMoE
from tests.sharing_support import (
    TASKS,
    SharingConformance,
    ToyEncoder,
    assert_distribution,
    build,
    check_all,
    parameter_count,
    parameter_ids,
    text_batch,
    text_encoder,
    toy_batch,
)


class TestConformance(SharingConformance):
    name = "mmoe"


def test_registered():
    assert SHARINGS["mmoe"] is MMoE and MMoE.shares_parameters


# experts=3, expert_hidden=[4] runs in TestConformance
@pytest.mark.parametrize("expert_hidden", [[5, 4]])
def test_mmoe_conforms_on_a_toy_encoder(expert_hidden):
    check_all(MMoE(TASKS, ToyEncoder(), experts=3, expert_hidden=expert_hidden), toy_batch())


def test_mmoe_conforms_on_a_text_encoder():
    sharing = MMoE(TASKS, text_encoder(None), experts=3, expert_hidden=[8])
    check_all(sharing, text_batch())
    assert sharing.output_dim("a") == 8


def test_mmoe_gates_are_distributions_that_mix_the_experts():
    torch.manual_seed(0)
    sharing = MMoE(TASKS, ToyEncoder(), experts=4, expert_hidden=[5]).eval()
    batch = toy_batch()
    gates = sharing.gates(batch)
    for task in TASKS:
        assert_distribution(gates[task], 8, 4)
    assert not torch.allclose(gates["a"], gates["b"])  # one gate per task
    out = sharing(batch)
    x = sharing.encoder(batch)
    experts = [expert(x) for expert in sharing.expert_nets]
    for task in TASKS:
        expected = sum(gates[task][:, e : e + 1] * experts[e] for e in range(4))
        assert torch.allclose(out.representations[task], expected, atol=1e-6)


def test_mmoe_experts_and_parameter_counts():
    encoder = ToyEncoder()
    sharing = MMoE(TASKS, encoder, experts=3, expert_hidden=[5, 4])
    assert len(sharing.expert_nets) == 3
    per_expert = (6 * 5 + 5) + (5 * 4 + 4)
    assert parameter_count(sharing.shared_parameters()) == parameter_count(encoder.parameters()) + 3 * per_expert
    for task in TASKS:
        assert parameter_count(sharing.task_parameters(task)) == 6 * 3  # W_k: experts x D, no bias


def test_mmoe_on_a_frozen_encoder_shares_the_experts_only():
    encoder = ToyEncoder()
    encoder.requires_grad_(False)
    sharing = MMoE(TASKS, encoder, experts=2, expert_hidden=[4])
    assert parameter_ids(sharing.expert_nets) == {id(p) for p in sharing.shared_parameters()}
    check_all(sharing, toy_batch())


def test_mixture_gates_are_per_token_distributions():
    sharing = SHARINGS["mmoe"](TASKS, text_encoder(token_level=True), experts=3, expert_hidden=[4])
    gates = build(sharing, pooling="mean").sharing.gates(text_batch())
    for gate in gates.values():
        assert gate.shape == (4, 7, 3) and torch.allclose(gate.sum(-1), torch.ones(4, 7))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"experts": 0}, "experts"),
        ({"expert_hidden": []}, "expert_hidden"),
        ({"expert_hidden": [4, 0]}, "expert_hidden"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_check_params_rejects_what_cannot_work(params, message):
    with pytest.raises(ValueError, match=message):
        MMoE.check_params(TASKS, **params)
    with pytest.raises(ValueError, match=message):
        MMoE(TASKS, ToyEncoder(), **params)


def test_check_params_accepts_the_defaults_and_the_spec_checks_them():
    MMoE.check_params(TASKS)
    with pytest.raises(ParamError, match="experts"):
        sharing_kwargs(SharingSpec(name="mmoe", params={"experts": 0}), TASKS)
