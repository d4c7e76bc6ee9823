"""Shared helpers for the weighting tests: drive any strategy on a given Jacobian, seeded inputs,
a brute-force min-norm solver, a test-only summing aggregator, and the conformance suite every
registered method runs from its own file (``tests/unit/weighting/test_<name>.py``):

    class TestConformance(GramianConformance):   # or WeightingConformance
        name = "pcgrad"
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar

import pytest
import torch
from torch import Tensor

from polytask.strategies.weighting import (
    WEIGHTINGS,
    GradientAggregator,
    GramianAggregator,
    JacobianAggregator,
    LossWeighting,
    Weighting,
    describe,
    get_weighting,
)

F64 = torch.float64


# --------------------------------------------------------------------------- driving a strategy


def combine(strategy: Weighting, jacobian: Tensor, losses: Tensor | None = None) -> Tensor:
    """The update a strategy makes from task gradients G [K, P] at task losses ``losses``
    (default all 1). For a loss weighting: the gradient of its objective on the losses
    L(x) = G x + losses, whose gradients are the rows g_k, at x = 0."""
    if losses is None:
        losses = torch.ones(jacobian.shape[0], dtype=jacobian.dtype)
    if isinstance(strategy, GradientAggregator):
        return strategy(jacobian, losses)
    x = torch.zeros(jacobian.shape[1], dtype=jacobian.dtype, requires_grad=True)
    (grad,) = torch.autograd.grad(strategy(jacobian @ x + losses), x)
    return grad


def step(strategy: Weighting, jacobian: Tensor, losses: Tensor) -> Tensor:
    """One training step's worth of calls: the update, then the step-end hook (a stateful
    strategy moves on), as the training loop makes them."""
    update = combine(strategy, jacobian, losses)
    strategy.on_step_end(losses.detach())
    return update


def applied_weights(strategy: LossWeighting, losses: Tensor) -> Tensor:
    """dObjective/dL_k at ``losses``: the weights a loss weighting's update really applies."""
    x = losses.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(strategy(x), x)
    return grad


def history(k: int, seed: int, steps: int = 4) -> list[tuple[Tensor, Tensor]]:
    """A few steps of (Jacobian [k, 11], positive losses [k]) to drive stateful strategies."""
    generator = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(k, 11, generator=generator, dtype=F64), 0.5 + torch.rand(k, generator=generator, dtype=F64))
        for _ in range(steps)
    ]


def run(strategy: Weighting, steps: list[tuple[Tensor, Tensor]], seed: int = 100) -> Tensor:
    """Feed the steps as training would (the first half as one epoch) and return the last
    update. Each step reseeds torch from ``seed``, so stochastic strategies given the same seed
    see the same draws."""
    update = None
    for index, (jacobian, losses) in enumerate(steps):
        torch.manual_seed(seed + index)
        update = step(strategy, jacobian, losses)
        if index == len(steps) // 2 - 1:
            strategy.on_epoch_end(torch.stack([l for _, l in steps[: index + 1]]).mean(0))
    return update


# --------------------------------------------------------------------------- seeded inputs


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ones(k: int) -> Tensor:
    return torch.ones(k, dtype=F64)


def random_jacobian(k: int, p: int, seed: int) -> Tensor:
    """A seeded float64 Jacobian [k, p] of standard normals."""
    return torch.randn(k, p, generator=gen(seed), dtype=F64)


def positive(k: int, seed: int) -> Tensor:
    """Seeded losses [k] in [0.2, 1.2)."""
    return 0.2 + torch.rand(k, generator=gen(seed), dtype=F64)


def random_conflicting(k: int, p: int, seed: int) -> Tensor:
    """A random float64 Jacobian in which tasks 0 and 1 conflict (negative inner product)."""
    generator = torch.Generator().manual_seed(seed)
    jacobian = torch.randn(k, p, generator=generator, dtype=F64)
    jacobian[1] = -0.8 * jacobian[0] + 0.3 * jacobian[1]
    return jacobian


def scaled_conflicting(k: int, p: int, seed: int) -> Tensor:
    """A conflicting Jacobian whose rows have norms spread over 1e-8 .. 1e4 (in a random order)."""
    jacobian = random_conflicting(k, p, seed)
    norms = torch.logspace(-8, 4, k, dtype=F64)[torch.randperm(k, generator=gen(seed))]
    return jacobian / jacobian.norm(dim=1, keepdim=True) * norms[:, None]


def simplex_points(count: int, k: int, seed: int) -> Tensor:
    """``count`` seeded points uniform on the simplex (normalised exponentials)."""
    exponential = -torch.rand(count, k, generator=gen(seed), dtype=F64).log()
    return exponential / exponential.sum(dim=1, keepdim=True)


# --------------------------------------------------------------------------- reference solvers


def brute_force_min_norm(gram: Tensor) -> tuple[float, Tensor]:
    """min_{w in simplex} w^T M w by enumerating supports S: on S the KKT system is
    [M_SS 1; 1^T 0] [w; -lambda] = [0; 1]; keep the non-negative solutions, take the lowest."""
    k = gram.shape[0]
    best_value, best = math.inf, None
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            s = list(support)
            system = torch.zeros(size + 1, size + 1, dtype=F64)
            system[:size, :size] = gram[s][:, s]
            system[:size, size] = 1.0
            system[size, :size] = 1.0
            rhs = torch.zeros(size + 1, dtype=F64)
            rhs[size] = 1.0
            solution = torch.linalg.lstsq(system, rhs.unsqueeze(1), driver="gelsd").solution.squeeze(1)
            w = torch.zeros(k, dtype=F64)
            w[s] = solution[:size]
            if (w < -1e-12).any() or abs(w.sum().item() - 1) > 1e-9:
                continue
            value = (w @ gram @ w).item()
            if value < best_value:
                best_value, best = value, w
    return best_value, best


# --------------------------------------------------------------------------- a test aggregator


class SumAggregator(GramianAggregator):
    """Weights (1, ..., 1), the plain sum of the task gradients: through the engine it must give
    what one backward pass of the summed loss gives."""

    name = "sum_for_tests"
    paper = "none"

    def __init__(self, num_tasks: int, grad_space="parameters") -> None:
        super().__init__(num_tasks)
        self.set_grad_space(grad_space)

    def gramian_weights(self, gramian, losses):
        return torch.ones(self.num_tasks, dtype=gramian.dtype)


# --------------------------------------------------------------------------- conformance


class WeightingConformance:
    """What every registered weighting must satisfy. A method's test file subclasses this (or
    :class:`GramianConformance`) as ``TestConformance`` and sets ``name``."""

    name: ClassVar[str]

    def test_registered_with_paper_and_family(self):
        cls = WEIGHTINGS[self.name]
        assert cls.name == self.name
        assert cls.family in ("loss", "gradient")
        assert len(cls.paper) > 10
        info = describe(cls)
        assert info["name"] == self.name and info["summary"]

    def test_is_exactly_one_kind(self):
        cls = WEIGHTINGS[self.name]
        kinds = [kind for kind in (LossWeighting, GramianAggregator, JacobianAggregator) if issubclass(cls, kind)]
        assert len(kinds) == 1, kinds
        assert cls.family == ("loss" if kinds[0] is LossWeighting else "gradient")
        assert not cls.__abstractmethods__

    def test_shape_and_finite(self):
        torch.manual_seed(0)
        strategy = get_weighting(self.name, 3)
        for jacobian, losses in history(3, seed=0):
            update = step(strategy, jacobian, losses)
            assert update.shape == (11,)
            assert torch.isfinite(update).all()
            weights = strategy.task_weights()
            assert weights.shape == (3,) and torch.isfinite(weights).all()

    def test_single_task_gives_a_positive_multiple_of_its_gradient(self):
        torch.manual_seed(1)
        strategy = get_weighting(self.name, 1)
        for jacobian, losses in history(1, seed=1):
            update = step(strategy, jacobian, losses)
            cosine = torch.nn.functional.cosine_similarity(update, jacobian[0], dim=0)
            assert cosine.item() == pytest.approx(1.0, abs=1e-6)

    def test_permuting_tasks_permutes_the_weights_and_keeps_the_update(self):
        name = self.name
        steps = history(3, seed=2)
        order = [2, 0, 1]
        permuted = [(jacobian[order], losses[order]) for jacobian, losses in steps]
        if WEIGHTINGS[name].stochastic:
            # equal in distribution: compare means over many draws
            draws = 400
            plain = torch.stack([run(get_weighting(name, 3), steps[:1], seed=1000 * d) for d in range(draws)]).mean(0)
            swapped = torch.stack([run(get_weighting(name, 3), permuted[:1], seed=1000 * d + 1) for d in range(draws)]).mean(0)
            assert torch.allclose(plain, swapped, atol=0.15 * plain.norm().item() / plain.numel() ** 0.5 + 0.05)
            return
        original, other = get_weighting(name, 3), get_weighting(name, 3)
        assert torch.allclose(run(original, steps), run(other, permuted), rtol=1e-5, atol=1e-7)
        assert torch.allclose(original.task_weights()[order], other.task_weights(), rtol=1e-5, atol=1e-7)

    def test_reset_restores_initial_state(self):
        strategy = get_weighting(self.name, 2)
        before = {k: v.clone() for k, v in strategy.state_dict().items()}
        initial_weights = strategy.task_weights().clone()
        with torch.no_grad():
            for p in strategy.parameters():
                p.add_(0.7)
        run(strategy, history(2, seed=3))
        strategy.reset()
        for key, value in strategy.state_dict().items():
            assert torch.equal(value, before[key]), key
        assert torch.allclose(strategy.task_weights(), initial_weights)

    def test_state_dict_is_a_complete_checkpoint(self):
        steps = history(3, seed=4, steps=6)
        trained = get_weighting(self.name, 3)
        run(trained, steps[:4])
        restored = get_weighting(self.name, 3)
        restored.load_state_dict(trained.state_dict())
        assert torch.allclose(run(trained, steps[4:]), run(restored, steps[4:]))

    def test_repr_echoes_hyperparameters(self):
        strategy = get_weighting(self.name, 2)
        text = repr(strategy)
        assert "num_tasks=2" in text
        for hyperparameter in WEIGHTINGS[self.name].hyperparameters():
            assert f"{hyperparameter}=" in text

    def test_wrong_number_of_tasks_is_an_error(self):
        strategy = get_weighting(self.name, 3)
        with pytest.raises(ValueError, match="3"):
            if isinstance(strategy, LossWeighting):
                strategy(torch.ones(2))
            else:
                strategy(torch.ones(2, 5), torch.ones(2))


class GramianConformance(WeightingConformance):
    """The conformance suite of a :class:`GramianAggregator`, plus what the engine relies on."""

    def test_gramian_path_agrees_with_the_jacobian(self):
        # The engine hands a Gramian-based method just G G^T and applies sum_k w_k g_k itself.
        assert issubclass(WEIGHTINGS[self.name], GramianAggregator)
        jacobian, losses = history(3, seed=5, steps=1)[0]
        torch.manual_seed(0)
        update = get_weighting(self.name, 3)(jacobian, losses)
        torch.manual_seed(0)
        weights = get_weighting(self.name, 3).combine_weights(jacobian @ jacobian.T, losses)
        assert torch.allclose(update, weights @ jacobian)
