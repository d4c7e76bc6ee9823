"""Every weighting strategy with every sharing architecture: the pair trains through the one
training step, or the spec rejects it before anything starts (a gradient aggregator over an
architecture that shares no parameter)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from polytask.errors import StudyError
from polytask.spec import parse_spec
from polytask.spec.models import TrainingSpec
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.weighting import WEIGHTINGS, GradientAggregator, get_weighting
from polytask.training.train import _optimizer, autocast_context, training_step
from tests.sharing_support import SETTINGS, TASKS, ToyEncoder, build, toy_batch


def rejected(sharing: str, weighting: str) -> bool:
    return issubclass(WEIGHTINGS[weighting], GradientAggregator) and not SHARINGS[sharing].shares_parameters


@pytest.mark.parametrize("sharing", sorted(SHARINGS))
@pytest.mark.parametrize("weighting", sorted(WEIGHTINGS))
def test_the_pair_trains_or_the_spec_rejects_it(make_study, sharing, weighting):
    raw = make_study(candidates=[{"weighting": weighting, "sharing": {"name": sharing}}])
    if rejected(sharing, weighting):
        with pytest.raises(StudyError, match=rf"candidates\[0\].weighting: '{weighting}' combines task gradients on shared parameters, but sharing '{sharing}'"):
            parse_spec(raw)
        return
    parse_spec(raw)
    torch.manual_seed(0)
    model = build(SHARINGS[sharing](TASKS, ToyEncoder(), **SETTINGS.get(sharing, {}))).train()
    strategy = get_weighting(weighting, len(TASKS))
    optimizer = _optimizer(model, strategy, lr=1e-2, weight_decay=0.0)
    batch = toy_batch(16) | {f"labels/{t}": torch.arange(16) % 2 for t in TASKS}
    tasks = [SimpleNamespace(name=t, type="classification") for t in TASKS]
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    for step in range(2):
        result = training_step(model, strategy, optimizer, batch, tasks, TrainingSpec(), autocast_context(torch.device("cpu"), "fp32"), step)
        assert torch.isfinite(result.losses).all()
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    heads = [n for n in before if n.startswith("heads.")]
    assert set(heads) <= set(moved), "every task head trains"
    assert any(not n.startswith("heads.") for n in moved), "the architecture's own parameters train"
