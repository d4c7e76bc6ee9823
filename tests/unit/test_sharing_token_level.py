"""Every sharing strategy over token states (a study with a token-classification task): the
conformance checks hold with representations [B, T, D] that the heads read pooled."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.sharing import SHARINGS
from tests.sharing_support import TASKS, build, check_all, text_batch, text_encoder

SETTINGS = {"mmoe": {"experts": 3, "expert_hidden": [4]}, "ple": {"expert_hidden": [4]}, "hierarchical": {"depths": [1, 2, 3]}, "lora": {"rank": 2}}


@pytest.mark.parametrize("name", sorted(SHARINGS))
def test_every_sharing_strategy_conforms_over_token_states(name):
    sharing = SHARINGS[name](TASKS, text_encoder(token_level=True), **SETTINGS.get(name, {}))
    check_all(sharing, text_batch(), pooling="mean")


def test_mixture_gates_are_per_token_distributions():
    sharing = SHARINGS["mmoe"](TASKS, text_encoder(token_level=True), experts=3, expert_hidden=[4])
    gates = build(sharing, pooling="mean").sharing.gates(text_batch())
    for gate in gates.values():
        assert gate.shape == (4, 7, 3) and torch.allclose(gate.sum(-1), torch.ones(4, 7))
