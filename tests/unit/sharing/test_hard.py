"""Hard sharing: the conformance suite, and with a shared MLP bottom on a toy encoder and a small BERT."""

from __future__ import annotations

import pytest

from polytask.strategies.sharing import HardSharing
from tests.sharing_support import TASKS, SharingConformance, ToyEncoder, check_all, text_batch, text_encoder, toy_batch


class TestConformance(SharingConformance):
    name = "hard"


# the default hidden = () runs in TestConformance
@pytest.mark.parametrize("hidden", [[4], [7, 4]])
def test_hard_sharing_on_a_toy_encoder(hidden):
    check_all(HardSharing(TASKS, ToyEncoder(), hidden=hidden), toy_batch())


@pytest.mark.parametrize("trainable_layers", [None, 1])
def test_hard_sharing_on_a_text_encoder(trainable_layers):
    sharing = HardSharing(TASKS, text_encoder(trainable_layers), hidden=[8])
    check_all(sharing, text_batch())
    assert sharing.output_dim("a") == 8
