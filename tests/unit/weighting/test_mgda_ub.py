"""MGDA-UB: the conformance suite; MGDA's weights on the gradients of the shared representation."""

from __future__ import annotations

import torch

from polytask.strategies.weighting.mgda import MGDA
from polytask.strategies.weighting.mgda_ub import MGDAUB
from tests.weighting_support import F64, GramianConformance, gen, scaled_conflicting


class TestConformance(GramianConformance):
    name = "mgda_ub"


def test_mgda_ub_runs_in_representation_space_with_mgda_weights():
    assert MGDAUB(3).grad_space == "representation"
    assert "grad_space" not in MGDAUB.hyperparameters()
    assert MGDA(3).grad_space == "parameters"
    for seed in range(5):
        features_jacobian = scaled_conflicting(3, 50, seed)
        losses = 0.5 + torch.rand(3, generator=gen(seed), dtype=F64)
        gram = features_jacobian @ features_jacobian.T
        for normalization in ("none", "loss+"):
            ub = MGDAUB(3, normalization=normalization).combine_weights(gram, losses)
            assert torch.equal(ub, MGDA(3, normalization=normalization).combine_weights(gram, losses))
            assert torch.equal(ub, MGDA(3, normalization=normalization, grad_space="representation").combine_weights(gram, losses))
