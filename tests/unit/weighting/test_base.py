"""The weighting contract's bases: abstract, and two explicit kinds of gradient aggregator."""

from __future__ import annotations

import pytest
import torch

from polytask.strategies.weighting import GradientAggregator, GramianAggregator, JacobianAggregator, LossWeighting, Weighting
from tests.weighting_support import SumAggregator, random_jacobian


@pytest.mark.parametrize("base", [Weighting, LossWeighting, GradientAggregator, GramianAggregator, JacobianAggregator])
def test_the_bases_cannot_be_instantiated(base):
    with pytest.raises(TypeError, match="abstract"):
        base(2)


def test_a_kind_without_its_method_cannot_be_instantiated():
    class NoWeights(GramianAggregator):
        pass

    class NoForward(JacobianAggregator):
        pass

    class NoObjective(LossWeighting):
        def task_weights(self):
            return torch.ones(self.num_tasks)

    for cls, method in ((NoWeights, "gramian_weights"), (NoForward, "forward"), (NoObjective, "forward")):
        with pytest.raises(TypeError, match=method):
            cls(2)


def test_an_aggregator_must_pick_a_kind():
    with pytest.raises(TypeError, match="GramianAggregator.*JacobianAggregator"):

        class Neither(GradientAggregator):  # noqa: F841 - the class statement itself raises
            def forward(self, jacobian, losses):
                return jacobian.sum(0)


def test_a_gramian_aggregator_applies_its_weights_to_the_jacobian():
    jacobian = random_jacobian(3, 7, 0)
    strategy = SumAggregator(3)
    assert isinstance(strategy, GradientAggregator) and not isinstance(strategy, JacobianAggregator)
    assert torch.allclose(strategy(jacobian, torch.ones(3, dtype=jacobian.dtype)), jacobian.sum(0))
    assert torch.equal(strategy.task_weights(), torch.ones(3))
    with pytest.raises(ValueError, match=r"\[3, 3\] Gramian"):
        strategy.combine_weights(torch.eye(2, dtype=jacobian.dtype), torch.ones(3))
