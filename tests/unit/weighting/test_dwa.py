"""DWA: the conformance suite, its equation from the third epoch, checked against a computation
written here."""

from __future__ import annotations

import math

import pytest
import torch

from polytask.strategies.weighting.dwa import DWA
from tests.weighting_support import F64, WeightingConformance, applied_weights


class TestConformance(WeightingConformance):
    name = "dwa"


@pytest.mark.parametrize("temperature", [0.5, 2.0, 10.0])
def test_dwa_follows_its_equation_from_the_third_epoch(temperature):
    generator = torch.Generator().manual_seed(2)
    epochs = 0.2 + torch.rand(6, 3, generator=generator, dtype=F64)
    strategy = DWA(3, temperature=temperature)
    batch = 0.5 + torch.rand(3, generator=generator, dtype=F64)
    assert torch.equal(applied_weights(strategy, batch), torch.ones(3, dtype=F64))  # epoch 1
    for epoch in range(6):
        strategy.on_step_end(batch)  # steps leave the weights alone
        strategy.on_epoch_end(epochs[epoch])
        if epoch == 0:  # the weights for epoch 2: still 1
            expected = torch.ones(3, dtype=F64)
        else:
            ratio = epochs[epoch] / epochs[epoch - 1]
            expected = 3 * torch.exp(ratio / temperature) / torch.exp(ratio / temperature).sum()
        assert torch.allclose(strategy.task_weights().double(), expected, rtol=1e-6)
        assert torch.allclose(applied_weights(strategy, batch), expected, rtol=1e-6)
        assert strategy.task_weights().sum().item() == pytest.approx(3.0)


def test_dwa_favours_the_task_whose_loss_fell_least():
    strategy = DWA(2)
    strategy.on_epoch_end(torch.tensor([1.0, 1.0]))
    strategy.on_epoch_end(torch.tensor([0.5, 0.9]))
    weights = strategy.task_weights()
    assert weights[1] > 1 > weights[0]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": math.inf}, "temperature"),
    ],
)
def test_bad_hyperparameters_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name) as info:
        DWA(2, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(info.value)
