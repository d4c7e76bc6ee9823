"""The per-task-gradient engine: what each kind of strategy puts into ``.grad``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from polytask.strategies.sharing import HardSharing
from polytask.strategies.weighting import Equal, JacobianAggregator, PCGrad
from polytask.training.gradients import backward, resolve_method
from polytask.training.model import MultiTaskModel


class ToyEncoder(nn.Module):
    """Stands in for TextEncoder: a shared layer over fixed inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 3)
        self.output_dim = 3

    def forward(self, batch):
        return torch.tanh(self.layer(batch["input_ids"].float()))


def toy_model(seed: int = 0) -> MultiTaskModel:
    torch.manual_seed(seed)
    tasks = ["a", "b", "c"]
    return MultiTaskModel(HardSharing(tasks, ToyEncoder()), {t: nn.Linear(3, 1) for t in tasks})


def forward(model: MultiTaskModel, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    batch = {"input_ids": torch.randn(8, 4, generator=generator), "attention_mask": torch.ones(8, 4)}
    targets = torch.randn(3, 8, generator=generator)
    boundary, logits = model(batch)
    losses = torch.stack([((logits[t].squeeze(-1) - y) ** 2).mean() for t, y in zip(model.tasks, targets)])
    return boundary, losses


def per_task_grads(model: MultiTaskModel, seed: int = 1) -> list[dict[str, torch.Tensor]]:
    out = []
    for k in range(3):
        model.zero_grad()
        _, losses = forward(model, seed)
        losses[k].backward()
        out.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    model.zero_grad()
    return out


def test_loss_weighting_is_one_backward_pass_of_the_weighted_sum():
    model = toy_model()
    expected = per_task_grads(model)
    boundary, losses = forward(model)
    assert backward(Equal(3), losses, model, boundary) == 1
    for name, p in model.named_parameters():
        assert torch.allclose(p.grad, sum(g[name] for g in expected if name in g), atol=1e-6)


class ElementwiseMedian(JacobianAggregator):
    """A test aggregator that needs the whole Jacobian (not only inner products)."""

    name = "elementwise_median_for_tests"
    paper = "none: exercises the engine's Jacobian path"

    def __init__(self, num_tasks: int, grad_space="parameters") -> None:
        super().__init__(num_tasks)
        self.set_grad_space(grad_space)

    def forward(self, jacobian, losses):
        self._check_jacobian(jacobian)
        return jacobian.median(dim=0).values * losses.sum()


# one of each kind: the engine applies a GramianAggregator's weights itself, hands a
# JacobianAggregator the Jacobian
AGGREGATORS = {"gramian": PCGrad, "jacobian": ElementwiseMedian}


@pytest.mark.parametrize("method", ["sequential", "batched"])
@pytest.mark.parametrize("kind", ["gramian", "jacobian"])
def test_parameter_space_aggregates_shared_and_gives_heads_their_own_gradient(kind, method):
    model = toy_model()
    expected = per_task_grads(model)
    boundary, losses = forward(model)
    strategy = AGGREGATORS[kind](3)
    torch.manual_seed(5)
    assert backward(strategy, losses, model, boundary, method) == 3
    shared = [n for n, _ in model.named_parameters() if n.startswith("sharing.encoder.")]
    jacobian = torch.stack([torch.cat([g[n].flatten() for n in shared]) for g in expected])
    torch.manual_seed(5)
    combined = AGGREGATORS[kind](3)(jacobian, losses.detach())
    got = torch.cat([dict(model.named_parameters())[n].grad.flatten() for n in shared])
    assert torch.allclose(got, combined, atol=1e-6)
    for k, task in enumerate(model.tasks):
        for name, p in model.heads[task].named_parameters():
            assert torch.allclose(p.grad, expected[k][f"heads.{task}.{name}"], atol=1e-6)


@pytest.mark.parametrize("method", ["sequential", "batched"])
@pytest.mark.parametrize("kind", ["gramian", "jacobian"])
def test_representation_space_backpropagates_the_combined_feature_gradient(kind, method):
    model = toy_model()
    expected = per_task_grads(model)
    boundary, losses = forward(model)
    (features,) = boundary
    feature_grads = torch.stack([torch.autograd.grad(losses[k], features, retain_graph=True)[0].flatten() for k in range(3)])
    torch.manual_seed(3)
    combined = AGGREGATORS[kind](3)(feature_grads, losses.detach()).view_as(features)
    (expected_encoder_grad,) = torch.autograd.grad(features, model.sharing.encoder.layer.weight, combined, retain_graph=True)
    model.zero_grad()
    strategy = AGGREGATORS[kind](3, grad_space="representation")
    torch.manual_seed(3)
    assert backward(strategy, losses, model, boundary, method) == 1
    assert torch.allclose(model.sharing.encoder.layer.weight.grad, expected_encoder_grad, atol=1e-6)
    for k, task in enumerate(model.tasks):
        for name, p in model.heads[task].named_parameters():
            assert torch.allclose(p.grad, expected[k][f"heads.{task}.{name}"], atol=1e-6)


def test_auto_picks_batched_vjps_only_on_cuda():
    assert resolve_method("auto", torch.device("cuda")) == "batched"
    assert resolve_method("auto", torch.device("cpu")) == "sequential"
    assert resolve_method("batched", torch.device("cpu")) == "batched"


@pytest.mark.parametrize("grad_space", ["parameters", "representation"])
def test_frozen_encoder_trains_heads_only(grad_space):
    model = toy_model()
    model.sharing.encoder.requires_grad_(False)
    boundary, losses = forward(model)
    assert backward(PCGrad(3, grad_space=grad_space), losses, model, boundary) == 0
    assert model.sharing.encoder.layer.weight.grad is None
    assert all(p.grad is not None for p in model.heads.parameters())
