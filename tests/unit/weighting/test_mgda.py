"""MGDA: the conformance suite, the KKT conditions of the min-norm problem, agreement with
torchjd's Frank-Wolfe, and the official code's gradient normalisation."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import MGDA as TorchjdMGDA

from polytask.strategies.weighting.mgda import MGDA
from tests.weighting_support import F64, GramianConformance, brute_force_min_norm, ones, random_conflicting, scaled_conflicting


class TestConformance(GramianConformance):
    name = "mgda"


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_mgda_update_is_a_common_descent_direction(k, seed):
    # KKT of the min-norm problem: g_i . d >= ||d||^2 for every task, equality on the support.
    jacobian = scaled_conflicting(k, 30, seed) if seed % 2 else random_conflicting(k, 30, seed)
    strategy = MGDA(k)
    d = strategy(jacobian, ones(k))
    weights = strategy.task_weights().to(F64)
    assert (weights >= 0).all() and weights.sum().item() == pytest.approx(1.0, abs=1e-6)
    inner = jacobian @ d
    norm_sq = d @ d
    assert (inner >= norm_sq * (1 - 1e-7) - 1e-9 * jacobian.norm(dim=1) * d.norm()).all()
    on_support = weights > 1e-3
    assert torch.allclose(inner[on_support], norm_sq.expand(int(on_support.sum())), rtol=1e-5)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("k", [2, 3, 5])
def test_mgda_matches_torchjd(k, seed):
    jacobian = random_conflicting(k, 30, seed)
    ours = MGDA(k)(jacobian, ones(k))
    theirs = TorchjdMGDA()(jacobian)  # Frank-Wolfe, stopped at a tolerance
    if k == 2:  # one exact line search solves the two-point case
        assert torch.allclose(ours, theirs, rtol=1e-9, atol=1e-12)
        return
    # ours is the exact minimum: never longer, and, the hull being convex, any of its points x
    # satisfies ||x - d*||^2 <= ||x||^2 - ||d*||^2 — Frank-Wolfe's iterate included.
    assert ours.norm() <= theirs.norm() * (1 + 1e-12)
    assert (theirs - ours).norm() ** 2 <= theirs.norm() ** 2 - ours.norm() ** 2 + 1e-12
    assert (theirs - ours).norm() <= 0.3 * theirs.norm()


def test_mgda_normalization_weights_the_raw_gradients_with_the_normalised_problem():
    jacobian = random_conflicting(3, 10, 0) * torch.tensor([[1.0], [10.0], [0.1]], dtype=F64)
    losses = torch.tensor([0.5, 2.0, 1.0], dtype=F64)
    gram = jacobian @ jacobian.T
    norms = gram.diagonal().sqrt()
    for normalization, scale in [("l2", norms), ("loss", losses), ("loss+", losses * norms)]:
        strategy = MGDA(3, normalization=normalization)
        update = strategy(jacobian, losses)
        _, expected = brute_force_min_norm(gram / scale[:, None] / scale[None, :])
        assert torch.allclose(strategy.task_weights().to(F64), expected, atol=1e-6)
        assert torch.allclose(update, expected @ jacobian, rtol=1e-9, atol=1e-12)
    # "l2" is invariant to the gradients' scales; "none" is not
    rescaled = jacobian * torch.tensor([[3.0], [0.01], [7.0]], dtype=F64)
    assert torch.allclose(MGDA(3, normalization="l2").combine_weights(rescaled @ rescaled.T, losses), MGDA(3, normalization="l2").combine_weights(gram, losses))
    assert not torch.allclose(MGDA(3).combine_weights(rescaled @ rescaled.T, losses), MGDA(3).combine_weights(gram, losses))


def test_mgda_normalization_survives_zero_gradients_and_losses():
    jacobian = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=F64)
    for normalization in ("l2", "loss", "loss+"):
        update = MGDA(2, normalization=normalization)(jacobian, torch.tensor([0.0, 1.0], dtype=F64))
        assert torch.equal(update, torch.zeros(2, dtype=F64))  # 0 is in the hull


def test_mgda_rejects_an_unknown_normalization():
    with pytest.raises(ValueError, match="normalization.*'l1'"):
        MGDA(2, normalization="l1")
