"""FAMO: the conformance suite, its update equations step by step (written here in float64), its
state, and agreement with torchjd."""

from __future__ import annotations

import math

import pytest
import torch

from polytask.strategies.weighting.famo import FAMO
from tests.weighting_support import F64, WeightingConformance, applied_weights


class TestConformance(WeightingConformance):
    name = "famo"


def famo_reference(pairs, lr: float, gamma: float, bounds: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """FAMO step by step from the paper's equations, in float64: the softmax Jacobian by
    autograd, Adam with its bias corrections written out. ``pairs``: (losses before, losses after
    the model step) per step. Returns (applied weights, logits after the step) per step."""
    k = bounds.numel()
    xi, m, v = torch.zeros(k, dtype=F64), torch.zeros(k, dtype=F64), torch.zeros(k, dtype=F64)
    out = []
    for t, (before, after) in enumerate(pairs, start=1):
        z = torch.exp(xi) / torch.exp(xi).sum()
        gap_before, gap_after = before - bounds + 1e-8, after - bounds + 1e-8
        c = 1 / (z / gap_before).sum()
        weights = c * z / gap_before  # d/dL_k of c sum_i z_i log(gap_i)
        delta = gap_before.log() - gap_after.log()
        jacobian = torch.autograd.functional.jacobian(lambda x: torch.softmax(x, dim=0), xi)  # [i, j] = dz_i/dxi_j
        grad = jacobian.T @ delta + gamma * xi
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        xi = xi - lr * (m / (1 - 0.9**t)) / (torch.sqrt(v / (1 - 0.999**t)) + 1e-8)
        out.append((weights, xi.clone()))
    return out


def famo_steps(k: int, count: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(before, after) losses: task 0 tends to improve most, the last task least (it sometimes
    gets worse), each step by a random fraction, so the logits drift steadily."""
    generator = torch.Generator().manual_seed(seed)
    rates = torch.linspace(1.0, 0.1, k, dtype=F64)
    pairs = []
    for _ in range(count):
        before = 0.5 + torch.rand(k, generator=generator, dtype=F64)
        after = before * (1.05 - rates * 0.4 * torch.rand(k, generator=generator, dtype=F64))
        pairs.append((before, after))
    return pairs


@pytest.mark.parametrize(("lr", "gamma", "bounds"), [(0.025, 1e-3, None), (0.1, 0.05, [0.2, 0.0, 0.1, 0.3])])
def test_famo_follows_its_update_equations(lr, gamma, bounds):
    pairs = famo_steps(4, 15, seed=6)
    lower = torch.zeros(4, dtype=F64) if bounds is None else torch.tensor(bounds, dtype=F64)
    reference = famo_reference(pairs, lr, gamma, lower)
    strategy = FAMO(4, lr=lr, gamma=gamma, lower_bounds=bounds)
    for (before, after), (weights, logits) in zip(pairs, reference):
        applied = applied_weights(strategy, before)
        assert torch.allclose(applied, weights, rtol=1e-10)
        assert torch.allclose(strategy.task_weights().double(), weights, rtol=1e-6)
        assert applied.sum().item() == pytest.approx(1.0)
        strategy.on_step_end(after)
        assert torch.allclose(strategy.logits, logits, rtol=1e-9, atol=1e-12)
    assert strategy.logits[0] < -5 * lr and strategy.logits[-1] > 5 * lr  # the fastest task lost weight


def test_famo_shifts_weight_to_the_task_that_improved_less():
    strategy = FAMO(2)
    strategy(torch.tensor([1.0, 1.0]))
    strategy.on_step_end(torch.tensor([0.5, 0.99]))
    weights = applied_weights(strategy, torch.tensor([1.0, 1.0]))
    assert weights[1] > weights[0]


def test_famo_state_is_outside_autograd_and_the_loops_optimizer():
    strategy = FAMO(3)
    assert list(strategy.parameters()) == []
    strategy(torch.tensor([1.0, 2.0, 3.0]))
    strategy.on_step_end(torch.tensor([0.9, 1.0, 2.9]))
    logits = strategy.logits.clone()
    losses = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    strategy(losses).backward()  # the objective's backward reaches the losses only
    assert torch.equal(strategy.logits, logits)
    strategy.on_step_end(torch.tensor([0.8, 1.9, 2.9]))
    strategy.on_step_end(torch.tensor([0.1, 0.1, 0.1]))  # no forward since: nothing to compare
    moved = strategy.logits.clone()
    assert not torch.equal(moved, logits)
    strategy.on_step_end(torch.tensor([0.1, 0.1, 0.1]))
    assert torch.equal(strategy.logits, moved)


def test_famo_agrees_with_torchjd():
    # torchjd (a test dependency) implements FAMO independently of us
    scalarization = pytest.importorskip("torchjd.scalarization")
    ours, theirs = FAMO(3), scalarization.FAMO(3)
    for before, after in famo_steps(3, 12, seed=7):
        x = before.float().requires_grad_(True)
        (reference,) = torch.autograd.grad(theirs(x), x)
        assert torch.allclose(applied_weights(ours, before.float()), reference, atol=1e-6)
        ours.on_step_end(after.float())
        theirs.update(after.float())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lr": -0.1}, "lr"),
        ({"gamma": -1.0}, "gamma"),
        ({"lower_bounds": [0.0]}, "lower_bounds"),
        ({"lower_bounds": [0.0, math.nan]}, "lower_bounds"),
    ],
)
def test_bad_hyperparameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name) as info:
        FAMO(2, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)
