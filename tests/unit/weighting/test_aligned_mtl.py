"""Aligned-MTL: the conformance suite, aligned gradients orthogonal with equal norms, dependent
gradients, and agreement with torchjd."""

from __future__ import annotations

import pytest
import torch
from torchjd.aggregation import AlignedMTL

from polytask.strategies.weighting import get_weighting
from tests.weighting_support import F64, GramianConformance, random_jacobian


class TestConformance(GramianConformance):
    name = "aligned_mtl"


def balance_matrix(grads: torch.Tensor) -> torch.Tensor:
    """B, column by column: with preferences e_k the weights are B e_k."""
    k = grads.shape[0]
    columns = []
    for index in range(k):
        strategy = get_weighting("aligned_mtl", k, preferences=torch.eye(k)[index].tolist())
        strategy(grads, torch.ones(k))
        columns.append(strategy.task_weights().double())
    return torch.stack(columns, dim=1)


@pytest.mark.parametrize("seed", range(5))
def test_aligned_mtl_aligned_gradients_are_orthogonal_with_equal_norms(seed):
    grads = random_jacobian(4, 30, seed) * torch.tensor([[0.1], [1.0], [3.0], [10.0]], dtype=F64)
    aligned = balance_matrix(grads) @ grads
    smallest = torch.linalg.eigvalsh(grads @ grads.T).min()
    assert torch.allclose(aligned @ aligned.T, smallest * torch.eye(4, dtype=F64), atol=1e-5 * smallest)


def test_aligned_mtl_on_dependent_gradients_is_orthonormal_on_their_span():
    grads = random_jacobian(4, 3, 2)  # four gradients in three dimensions: rank 3
    aligned = balance_matrix(grads) @ grads
    eigenvalues = torch.linalg.eigvalsh(aligned @ aligned.T)
    kept = torch.linalg.eigvalsh(grads @ grads.T)[1:]
    assert eigenvalues[0].abs() < 1e-9 * kept.max()
    assert torch.allclose(eigenvalues[1:], kept.min().expand(3), rtol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_aligned_mtl_agrees_with_torchjd(seed):
    grads = random_jacobian(3, 30, seed)
    ours = get_weighting("aligned_mtl", 3)(grads, torch.ones(3))
    # torchjd's default preferences are 1/K (a mean), ours 1 (a sum)
    assert torch.allclose(ours, AlignedMTL(pref_vector=torch.ones(3, dtype=F64))(grads))
    assert torch.allclose(ours / 3, AlignedMTL()(grads))
    preferences = [0.2, 1.0, 3.0]
    weighted = get_weighting("aligned_mtl", 3, preferences=preferences)(grads, torch.ones(3))
    assert torch.allclose(weighted, AlignedMTL(pref_vector=torch.tensor(preferences, dtype=F64))(grads))


@pytest.mark.parametrize("preferences", [[1.0], [-1.0, 1.0], [0.0, 0.0], [float("inf"), 1.0]])
def test_aligned_mtl_rejects_bad_preferences(preferences):
    with pytest.raises(ValueError, match="preferences"):
        get_weighting("aligned_mtl", 2, preferences=preferences)
