"""Frozen layers: kept deterministic, computed once, and equivalent to the full forward pass."""

from __future__ import annotations

import pytest
import torch

from polytask.data import load_splits, prepare_data
from polytask.data.batches import collate, eval_batches
from polytask.encoders import TextEncoder, build_backbone, load_tokenizer
from polytask.spec import parse_spec
from polytask.training import frozen
from polytask.training.train import TrialPlan, train
from tests.support import Recorder


@pytest.fixture
def pretrained_study(make_study, tiny_pretrained):
    def make(**encoder):
        return parse_spec(make_study(encoder={"kind": "pretrained", "name": str(tiny_pretrained), "max_length": 32, **encoder}))

    return make


def prepared(spec):
    frames = load_splits(spec.data)
    return prepare_data(spec, frames, load_tokenizer(spec.encoder, []))


def test_frozen_layers_stay_in_eval_mode_and_untrained(pretrained_study):
    spec = pretrained_study(trainable_layers=1)
    data = prepared(spec)
    encoder = TextEncoder(build_backbone(spec.encoder, data.vocab_size, data.pad_id), "mean", trainable_layers=1)
    encoder.train()
    layers = list(encoder.backbone.encoder.layer)
    assert [layer.training for layer in layers] == [False, False, True]
    assert not encoder.backbone.embeddings.training
    assert [any(p.requires_grad for p in layer.parameters()) for layer in layers] == [False, False, True]
    assert not any(p.requires_grad for p in encoder.backbone.embeddings.parameters())


@pytest.mark.parametrize("trainable", [0, 1, 3])
def test_shortcut_equals_the_full_forward_pass(pretrained_study, trainable):
    spec = pretrained_study(trainable_layers=trainable)
    data = prepared(spec)
    encoder = TextEncoder(build_backbone(spec.encoder, data.vocab_size, data.pad_id), "mean", trainable).eval()
    _, batch = next(eval_batches(data.splits["validation"], 16))
    full = encoder(batch)
    hidden = encoder.frozen_hidden(batch["input_ids"], batch["attention_mask"])
    assert hidden.shape == (*batch["input_ids"].shape, 32)
    assert torch.allclose(encoder({**batch, "frozen_hidden": hidden}), full, atol=1e-5)
    # and the layer stack is whole again afterwards
    assert len(encoder.backbone.encoder.layer) == 3


@pytest.mark.parametrize("trainable", [None, 1, 3])
@pytest.mark.parametrize("cached", [False, True])
def test_stem_stages_and_readout_compose_to_the_forward_pass(pretrained_study, trainable, cached):
    # the Backbone law layer-wise sharing strategies rely on
    spec = pretrained_study(trainable_layers=trainable)
    data = prepared(spec)
    encoder = TextEncoder(build_backbone(spec.encoder, data.vocab_size, data.pad_id), "mean", trainable).eval()
    _, batch = next(eval_batches(data.splits["validation"], 16))
    if cached and trainable is not None:
        batch = {**batch, "frozen_hidden": encoder.frozen_hidden(batch["input_ids"], batch["attention_mask"])}
    assert encoder.num_stages == (3 if trainable is None else trainable)
    hidden = encoder.stem(batch)
    for index in range(encoder.num_stages):
        hidden = encoder.stage(index, hidden, batch)
    assert torch.allclose(encoder.readout(hidden, batch), encoder(batch), atol=1e-5)


def test_precompute_attaches_every_split(pretrained_study):
    spec = pretrained_study(trainable_layers=1)
    data = prepared(spec)
    assert frozen.applies(spec)
    note = frozen.precompute(spec, data)
    assert note.startswith("computed the 2 frozen encoder layers once for 640 rows")
    for split in data.splits.values():
        assert split.frozen_hidden.shape == (len(split), split.input_ids.shape[1], 32)
        assert split.frozen_hidden.dtype.name == "float16"
    batch = collate(data.splits["train"], torch.arange(4).numpy())
    assert batch["frozen_hidden"].shape == (*batch["input_ids"].shape, 32)


def test_training_with_the_cache_matches_training_without(pretrained_study):
    spec = pretrained_study(trainable_layers=1)
    cached, plain = prepared(spec), prepared(spec)
    frozen.precompute(spec, cached)
    results = []
    for data in (cached, plain):
        recorder = Recorder()
        results.append(train(TrialPlan(spec, "equal", seed=0), data, recorder).metrics)
    for key in ("val/score", "val/subjectivity/loss", "val/sentiment/loss", "train/sentiment/loss"):
        assert results[0][key] == pytest.approx(results[1][key], abs=5e-3), key  # float16 storage only


def test_cache_does_not_apply_without_frozen_layers(pretrained_study, make_study):
    assert not frozen.applies(pretrained_study())  # everything trains
    assert not frozen.applies(pretrained_study(trainable_layers=1, cache_frozen_layers=False))
    assert not frozen.applies(parse_spec(make_study()))  # random encoders differ per seed
