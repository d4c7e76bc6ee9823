"""GradNorm: the conformance suite, the gradient of the balancing loss, renormalisation, and the
balance it reaches."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting import get_weighting
from tests.weighting_support import GramianConformance, positive, random_jacobian


class TestConformance(GramianConformance):
    name = "gradnorm"


@pytest.mark.parametrize("seed", range(5))
def test_gradnorm_gradient_is_that_of_the_balancing_loss(seed):
    k, alpha = 3, 1.5
    strategy = get_weighting("gradnorm", k, alpha=alpha)
    initial = positive(k, seed)
    strategy(random_jacobian(k, 20, seed), initial)  # the first step records L(0)
    with torch.no_grad():
        strategy.weights.copy_(torch.tensor([0.5, 1.7, 0.8]))
    grads, losses = random_jacobian(k, 20, seed + 100), positive(k, seed + 100)
    update = strategy(grads, losses)

    # L_grad written out as in the paper, differentiated by autograd
    w = torch.tensor([0.5, 1.7, 0.8], dtype=torch.float64, requires_grad=True)
    norms = (w[:, None] * grads).norm(dim=1)
    ratios = (losses / initial) / (losses / initial).mean()
    target = (norms.mean() * ratios**alpha).detach()
    (norms - target).abs().sum().backward()
    assert torch.allclose(strategy.weights.grad.double(), w.grad, rtol=1e-5)
    assert torch.allclose(update, w.detach() @ grads, rtol=1e-6)  # the update uses the current weights
    assert torch.equal(strategy.initial_losses, initial)


def test_gradnorm_renormalises_the_weights_to_sum_to_k():
    strategy = get_weighting("gradnorm", 4)
    with torch.no_grad():
        strategy.weights.copy_(torch.tensor([0.2, 3.0, 1.0, 0.3]))
    strategy.on_step_end(torch.ones(4))
    assert strategy.weights.sum().item() == pytest.approx(4.0)
    assert torch.allclose(strategy.weights, torch.tensor([0.2, 3.0, 1.0, 0.3]) * 4 / 4.5)
    with torch.no_grad():  # an optimizer step through zero cannot flip a task's sign
        strategy.weights.copy_(torch.tensor([-0.5, 2.0, 1.0, 1.0]))
    strategy.on_step_end(torch.ones(4))
    assert (strategy.weights > 0).all() and strategy.weights.sum().item() == pytest.approx(4.0)


def train_gradnorm(strategy, grads: torch.Tensor, losses_at, steps: int) -> None:
    """What the training loop does: the weights from the Gramian (they set .grad), an AdamW step
    at the strategy's rate, the step-end hook."""
    optimizer = torch.optim.AdamW(strategy.parameters(), lr=strategy.learning_rate(), weight_decay=0.0)
    gram = grads @ grads.T
    for t in range(steps):
        optimizer.zero_grad(set_to_none=True)
        losses = losses_at(t)
        strategy.combine_weights(gram, losses)
        optimizer.step()
        strategy.on_step_end(losses)


def test_gradnorm_equalises_weighted_gradient_norms_when_tasks_train_at_equal_rates():
    grads = random_jacobian(3, 30, 7) * torch.tensor([[1.0], [4.0], [16.0]], dtype=torch.float64)
    strategy = get_weighting("gradnorm", 3)
    train_gradnorm(strategy, grads, lambda t: torch.full((3,), 2.0, dtype=torch.float64) * 0.99**t, 600)
    weighted = strategy.weights.detach().double() * grads.norm(dim=1)
    assert (weighted.max() / weighted.min()).item() < 1.05
    assert strategy.weights.sum().item() == pytest.approx(3.0)


def test_gradnorm_gives_more_weight_to_the_task_that_trains_slower():
    grads = torch.eye(2, 10, dtype=torch.float64)  # equal norms: only the training rates differ
    strategy = get_weighting("gradnorm", 2)
    # task 0 stays at its initial loss, task 1 falls to a quarter: r = (1.6, 0.4)
    train_gradnorm(strategy, grads, lambda t: torch.tensor([1.0, 1.0 if t == 0 else 0.25], dtype=torch.float64), 400)
    w = strategy.weights.detach()
    # With the norms equal to 1, mean G = mean w = 1 after renormalisation, so task 1 settles at
    # its target r_1^alpha = 0.4^1.5 = 0.253; task 0 (target 1.6^1.5 = 2.02 > 2) takes the rest.
    assert w[1].item() == pytest.approx(0.4**1.5, abs=0.02)
    assert w[0].item() == pytest.approx(2 - 0.4**1.5, abs=0.02)


@pytest.mark.parametrize("kwargs", [{"alpha": -1.0}, {"lr": 0.0}, {"lr": float("nan")}, {"grad_space": "weights"}])
def test_gradnorm_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        get_weighting("gradnorm", 2, **kwargs)
