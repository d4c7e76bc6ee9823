"""Per-task LoRA adapters (polytask.encoders.adapters) and the "lora" sharing strategy: the
conformance suite, the frozen encoder left unchanged, each task's representation moved by its
own adapters only, adapters that stay trainable through task switches, and the cached frozen
bottom."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from polytask.encoders.adapters import active_adapter, add_lora_adapters, lora_layers
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.sharing.lora import TaskAdapters, adapter_owner
from tests.sharing_support import TASKS, SharingConformance, ToyEncoder, build, losses_of, text_batch, text_encoder, toy_batch


def adapter_params(sharing: TaskAdapters) -> list[nn.Parameter]:
    return [p for task in TASKS for p in sharing.task_parameters(task)]


def perturb(sharing: TaskAdapters, task: str, seed: int = 0) -> None:
    """Give ``task``'s adapters non-zero B matrices (they start at zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sharing.named_parameters():
            if adapter_owner(name) == task and ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=generator))


def representations(sharing: TaskAdapters, batch) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return sharing(batch).representations


class TestConformance(SharingConformance):
    name = "lora"

    def prepare(self, sharing):
        for task in TASKS:
            perturb(sharing, task, seed=TASKS.index(task))  # so that every adapter gets a gradient


def test_registered_and_shares_nothing():
    assert SHARINGS["lora"] is TaskAdapters
    assert not TaskAdapters.shares_parameters


@pytest.mark.parametrize(("make", "batch"), [(ToyEncoder, toy_batch), (lambda: text_encoder(1), text_batch)], ids=["toy", "text"])
def test_nothing_is_shared_and_the_boundary_carries_no_gradient(make, batch):
    sharing = TaskAdapters(TASKS, make(), rank=2)
    assert not list(sharing.shared_parameters())
    assert all(not b.requires_grad for b in sharing(batch()).boundary)  # the frozen stem's output: no shared gradient to carry


def test_adapters_sit_in_the_trainable_layers_only_and_base_weights_are_frozen():
    encoder = text_encoder(1)
    sharing = TaskAdapters(TASKS, encoder, rank=2)
    trainable = [n for n, p in sharing.named_parameters() if p.requires_grad]
    assert trainable and all(adapter_owner(n) in TASKS for n in trainable)
    assert all(".layer.2." in n for n in trainable)  # the top layer of 3, the only stage
    for task in TASKS:
        names = [n for n, p in sharing.named_parameters() if adapter_owner(n) == task]
        # query, key, value, attention output, intermediate, output: 6 linear layers, A and B each
        assert len(names) == 12 and len(list(sharing.task_parameters(task))) == 12
    assert count(lora_layers(encoder.stage_modules())) == 6


def count(items) -> int:
    return len(list(items))


@pytest.mark.parametrize(("make", "batch"), [(ToyEncoder, toy_batch), (lambda: text_encoder(None), text_batch)], ids=["toy", "text"])
def test_every_task_starts_as_the_base_encoder(make, batch):
    encoder = make().eval()
    base = copy.deepcopy(encoder)
    sharing = TaskAdapters(TASKS, encoder, rank=4).eval()
    assert all(torch.count_nonzero(p) == 0 for n, p in sharing.named_parameters() if ".lora_B." in n)
    with torch.no_grad():
        expected = base(batch())
    for task, rep in representations(sharing, batch()).items():
        assert torch.allclose(rep, expected, atol=1e-6), task


def test_a_task_s_adapters_move_its_representation_only():
    sharing = TaskAdapters(TASKS, ToyEncoder(), rank=2).eval()
    before = representations(sharing, toy_batch())
    perturb(sharing, "b")
    after = representations(sharing, toy_batch())
    assert not torch.allclose(after["b"], before["b"])
    assert torch.equal(after["a"], before["a"]) and torch.equal(after["c"], before["c"])


def test_an_optimizer_step_changes_the_adapters_and_leaves_the_encoder_alone():
    sharing = TaskAdapters(TASKS, ToyEncoder(), rank=2)
    model = build(sharing).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    _, losses = losses_of(model, toy_batch())
    losses.sum().backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    encoder_changed = {n for n in changed if n.startswith("sharing.")}
    assert encoder_changed and all(adapter_owner(n) in TASKS for n in encoder_changed)
    assert {adapter_owner(n) for n in encoder_changed} == set(TASKS)  # every task's adapters trained
    assert all(n.startswith("heads.") or adapter_owner(n) in TASKS for n in changed)


def test_every_adapter_stays_trainable_through_task_switches():
    encoder = text_encoder(1)
    sharing = TaskAdapters(TASKS, encoder, rank=2)
    params = adapter_params(sharing)
    assert params and all(p.requires_grad for p in params)
    sharing(text_batch())
    assert all(p.requires_grad for p in params)
    with encoder.task_adapter("b"):  # peft's set_adapter alone would freeze a's and c's adapters
        assert all(p.requires_grad for p in params)
    assert all(p.requires_grad for p in params)
    assert all(not p.requires_grad for n, p in sharing.named_parameters() if adapter_owner(n) is None)


def test_the_cached_frozen_bottom_gives_the_full_pass_result():
    encoder = text_encoder(1)
    sharing = TaskAdapters(TASKS, encoder, rank=2).eval()
    for task in TASKS:
        perturb(sharing, task, seed=TASKS.index(task))
    batch = text_batch()
    cached = {**batch, "frozen_hidden": encoder.frozen_hidden(batch["input_ids"], batch["attention_mask"])}
    full, shortcut = representations(sharing, batch), representations(sharing, cached)
    assert not torch.allclose(full["a"], full["b"])  # the adapters matter
    for task in TASKS:
        with torch.no_grad(), encoder.task_adapter(task):
            whole = encoder(batch)  # the model's own forward over every layer
        assert torch.allclose(full[task], whole, atol=1e-5), task
        assert torch.allclose(shortcut[task], whole, atol=1e-5), task


def test_active_adapter_selects_one_task_and_restores_the_previous_state():
    block = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 3))
    base = copy.deepcopy(block)
    add_lora_adapters([block], ["a", "b"], rank=2, alpha=4.0, dropout=0.0)
    assert not any(p.requires_grad for n, p in block.named_parameters() if "lora_" not in n)
    with torch.no_grad():
        for name, p in block.named_parameters():
            if ".lora_B.a." in name:
                p.fill_(1.0)
    x = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.allclose(block(x), base(x))  # outside any context: the base function
        with active_adapter([block], "a"):
            moved = block(x)
            with active_adapter([block], "b"):
                assert torch.allclose(block(x), base(x))  # b's B is still zero
            assert torch.equal(block(x), moved)  # nested context restored a
        assert not torch.allclose(moved, base(x))
        assert torch.allclose(block(x), base(x))  # disabled again
    layers = lora_layers([block])
    assert len(layers) == 2 and all(layer.disable_adapters for layer in layers)
    assert all(p.requires_grad for n, p in block.named_parameters() if "lora_" in n)


def test_an_adapted_layer_adds_the_scaled_low_rank_update():
    block = nn.Sequential(nn.Linear(4, 3))
    base = copy.deepcopy(block)
    add_lora_adapters([block], ["a", "b"], rank=2, alpha=5.0, dropout=0.0)
    layer = block[0]
    with torch.no_grad():
        layer.lora_B["a"].weight.normal_()
        x = torch.randn(6, 4)
        a, b = layer.lora_A["a"].weight, layer.lora_B["a"].weight  # [r, in], [out, r]
        with active_adapter([block], "a"):
            assert torch.allclose(block(x), base(x) + (5.0 / 2) * x @ a.T @ b.T, atol=1e-6)


def test_adapter_errors():
    block = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="hold no linear layer to adapt"):
        add_lora_adapters([nn.Sequential(nn.Tanh())], ["a"], rank=2, alpha=4.0, dropout=0.0)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        with active_adapter([block], "a"):
            pass
    add_lora_adapters([block], ["a", "b"], rank=2, alpha=4.0, dropout=0.0)
    with pytest.raises(KeyError, match="'c'"):
        with active_adapter([block], "c"):
            pass
    with pytest.raises(ValueError, match="already"):
        add_lora_adapters([block], ["c"], rank=2, alpha=4.0, dropout=0.0)


def test_adapter_owner():
    assert adapter_owner("encoder.blocks.0.0.lora_A.a.weight") == "a"
    assert adapter_owner("backbone.encoder.layer.2.attention.self.query.lora_B.sentiment.weight") == "sentiment"
    assert adapter_owner("encoder.blocks.0.0.base_layer.weight") is None


@pytest.mark.parametrize(("params", "message"), [({"rank": 0}, "rank"), ({"alpha": 0.0}, "alpha"), ({"dropout": 1.0}, "dropout")])
def test_check_params_rejects_what_cannot_work(params, message):
    TaskAdapters.check_params(TASKS)
    with pytest.raises(ValueError, match=message):
        TaskAdapters.check_params(TASKS, **params)
    with pytest.raises(ValueError, match=message):
        TaskAdapters(TASKS, ToyEncoder(), **params)
