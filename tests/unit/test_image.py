"""Image encoders (polytask.encoders.image): shapes on Multi-Fashion's 36x36 and MNIST's 28x28
images, the Backbone pieces composing to the forward pass, widths per depth, and every sharing
strategy's conformance checks over each encoder (LoRA with the ViT; a clear error with the CNN)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from polytask.encoders.image import ConvEncoder, VitEncoder, normalised_pixels
from polytask.strategies.sharing import SHARINGS
from polytask.strategies.sharing.lora import TaskAdapters, adapter_owner
from polytask.training.gradients import backward
from tests.sharing_support import TASKS, SumAggregator, build, check_all, losses_of


def image_batch(size: int = 4, image_size: int = 36, channels: int = 1, seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"pixel_values": torch.rand(size, channels, image_size, image_size, generator=generator)}


def small_cnn(image_size: int = 36, channels=(4, 6)) -> ConvEncoder:
    torch.manual_seed(0)
    return ConvEncoder(1, image_size, channels=channels)


def small_vit(image_size: int = 36, pooling: str = "cls", layers: int = 2) -> VitEncoder:
    torch.manual_seed(0)
    return VitEncoder(1, image_size, patch_size=4, hidden_size=16, layers=layers, heads=2, intermediate_size=32, pooling=pooling)


ENCODERS = {"cnn": small_cnn, "vit": small_vit, "vit_mean": lambda: small_vit(pooling="mean")}

# Small hyperparameters per sharing strategy (as in the sharing tests); a strategy not listed
# runs with its defaults. Hierarchical sharing reads depth 0 only where the pooling can see the
# image there (a CNN's average pool, a ViT's mean pool; a ViT's [CLS] at depth 0 is a constant).
SETTINGS = {
    "hard": {"hidden": [4]},
    "mmoe": {"experts": 3, "expert_hidden": [4]},
    "ple": {"shared_experts": 1, "task_experts": 1, "expert_hidden": [4]},
    "lora": {"rank": 2},
    "single_task": {"hidden": [4]},
}
DEPTHS = {"cnn": [[0, 1, 2], [1, 2, 2], None], "vit": [[1, 2, 2], [1, 1, 2], None], "vit_mean": [[0, 1, 2], [0, 0, 2]]}


def perturb_adapters(sharing: nn.Module) -> None:
    """Non-zero B matrices (LoRA starts them at zero), so each task's adapters change its output."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in sharing.named_parameters():
            if ".lora_B." in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("image_size", [36, 28])
def test_forward_shapes_with_the_default_sizes(image_size):
    batch = image_batch(3, image_size)
    cnn, vit = ConvEncoder(1, image_size), VitEncoder(1, image_size)
    assert cnn(batch).shape == (3, 64) and cnn.output_dim == 64 and cnn.num_stages == 2
    assert vit(batch).shape == (3, 64) and vit.output_dim == 64 and vit.num_stages == 2
    assert vit.model.embeddings.patch_embeddings.num_patches == (image_size // 4) ** 2


@pytest.mark.parametrize("image_size", [36, 28])
def test_conv_feature_maps_halve_per_stage_and_widths_follow_the_channels(image_size):
    encoder = ConvEncoder(3, image_size, channels=(5, 7, 9), kernel_size=5)
    batch = image_batch(2, image_size, channels=3)
    hidden = encoder.stem(batch)
    assert hidden.shape == (2, 3, image_size, image_size)
    assert encoder.readout(hidden, batch).shape == (2, encoder.width(0)) and encoder.width(0) == 3
    side = image_size
    for index, width in enumerate([5, 7, 9]):
        hidden = encoder.stage(index, hidden, batch)
        side //= 2
        assert hidden.shape == (2, width, side, side)
        assert encoder.readout(hidden, batch).shape == (2, encoder.width(index + 1)) and encoder.width(index + 1) == width
    assert encoder.output_dim == 9 and torch.equal(encoder.readout(hidden, batch), encoder(batch))


@pytest.mark.parametrize("make", [small_cnn, small_vit, lambda: small_vit(pooling="mean")], ids=["cnn", "vit", "vit_mean"])
def test_stem_stages_readout_compose_to_the_forward_pass(make):
    encoder = make().eval()
    batch = image_batch()
    hidden = encoder.stem(batch)
    for index in range(encoder.num_stages):
        hidden = encoder.stage(index, hidden, batch)
    assert torch.equal(encoder.readout(hidden, batch), encoder(batch))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_the_vit_encoder_is_the_transformers_model_pooled(pooling):
    encoder = small_vit(pooling=pooling).eval()
    batch = image_batch()
    with torch.no_grad():
        states = encoder.model(pixel_values=normalised_pixels(batch, 1, 36)).last_hidden_state  # [B, 1 + 81, 16]
        expected = states[:, 0] if pooling == "cls" else states.mean(dim=1)
        assert torch.allclose(encoder(batch), expected, atol=1e-6)
    assert states.shape == (4, 82, 16)
    assert [encoder.width(d) for d in range(3)] == [16, 16, 16]
    # the readout has no parameters: the final LayerNorm keeps neither scale nor bias
    assert not list(encoder.model.layernorm.parameters())
    assert all(p.requires_grad for p in encoder.parameters())


def test_pixels_are_mapped_to_minus_one_one_and_uint8_is_read_as_0_255():
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 1, 3, 3)
    as_float = {"pixel_values": pixels.float() / 255}
    assert torch.allclose(normalised_pixels({"pixel_values": pixels}, 1, 3), normalised_pixels(as_float, 1, 3))
    assert normalised_pixels(as_float, 1, 3)[0, 0, 0].tolist() == pytest.approx([-1.0, -0.6, 1.0])
    # the stem (this normalisation) and the readout have no parameters: only the convolutions do
    assert sum(p.numel() for p in ConvEncoder(1, 28, channels=(4,)).parameters()) == 4 * 9 + 4


def test_bad_inputs_and_sizes_are_clear_errors():
    with pytest.raises(ValueError, match=r"pixel_values must be \[B, 1, 36, 36\], got \[2, 1, 28, 28\]"):
        small_cnn()(image_batch(2, 28))
    with pytest.raises(ValueError, match=r"pixel_values must be \[B, 1, 36, 36\], got \[2, 3, 36, 36\]"):
        small_vit()(image_batch(2, 36, channels=3))
    with pytest.raises(ValueError, match="multiple of patch_size"):
        VitEncoder(1, 36, patch_size=5)
    with pytest.raises(ValueError, match="multiple of heads"):
        VitEncoder(1, 36, hidden_size=10, heads=4)
    with pytest.raises(ValueError, match="pooling"):
        VitEncoder(1, 36, pooling="max")
    with pytest.raises(ValueError, match="halve the image 3 times"):
        ConvEncoder(1, 4, channels=(2, 2, 2))
    with pytest.raises(ValueError, match="at least one stage"):
        ConvEncoder(1, 28, channels=())


def test_repr_echoes_the_hyperparameters():
    assert "channels=[4, 6], kernel_size=3" in repr(small_cnn())
    assert "patch_size=4, hidden_size=16, layers=2, heads=2, intermediate_size=32, pooling='cls'" in repr(small_vit())


def sharing_cases():
    for name in sorted(SHARINGS):
        for kind in ENCODERS:
            if name == "lora" and kind == "cnn":
                continue  # a clear error, tested below
            if name == "hierarchical":
                for depths in DEPTHS[kind]:
                    yield pytest.param(name, kind, {"depths": depths}, id=f"{name}-{kind}-{depths}")
            else:
                yield pytest.param(name, kind, SETTINGS.get(name, {}), id=f"{name}-{kind}")


@pytest.mark.parametrize(("name", "kind", "params"), list(sharing_cases()))
def test_every_sharing_strategy_conforms_over_the_image_encoders(name, kind, params):
    sharing = SHARINGS[name](TASKS, ENCODERS[kind](), **params)
    if name == "lora":
        perturb_adapters(sharing)
    check_all(sharing, image_batch())


def test_lora_adapts_the_linear_layers_of_the_vit_layers_only():
    encoder = small_vit()
    base = copy.deepcopy(encoder).eval()
    sharing = TaskAdapters(TASKS, encoder, rank=2).eval()
    trainable = [n for n, p in sharing.named_parameters() if p.requires_grad]
    assert trainable and all(adapter_owner(n) in TASKS and ".layers." in n for n in trainable)
    for task in TASKS:
        # per layer: q, k, v, o projections and the MLP's fc1, fc2; A and B each; 2 layers
        assert len(list(sharing.task_parameters(task))) == 2 * 6 * 2
    batch = image_batch()
    with torch.no_grad():
        expected = base(batch)
        assert all(torch.allclose(r, expected, atol=1e-6) for r in sharing(batch).representations.values())  # B = 0: the base encoder
        perturb_adapters(sharing)
        moved = sharing(batch).representations
    assert not torch.allclose(moved["a"], moved["b"])


def test_lora_over_the_cnn_is_a_clear_error():
    with pytest.raises(ValueError, match="lora sharing puts LoRA adapters on the linear layers.*cnn encoder's stages are convolutions.*vit encoder"):
        TaskAdapters(TASKS, small_cnn(), rank=2)


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_batched_vjps_match_sequential_ones(kind):
    """The engine's ``batched`` method (vmap over the backward pass, what ``auto`` picks on a
    GPU) goes through convolutions, pooling and attention and gives the sequential result."""
    model = build(SHARINGS["hard"](TASKS, ENCODERS[kind](), hidden=[4]))
    batch = image_batch()
    grads = {}
    for method in ("sequential", "batched"):
        model.zero_grad(set_to_none=True)
        boundary, losses = losses_of(model, batch)
        backward(SumAggregator(len(TASKS), "parameters"), losses, model, boundary, method)
        grads[method] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads["batched"].keys() == grads["sequential"].keys()
    for name, value in grads["sequential"].items():
        assert torch.allclose(grads["batched"][name], value, atol=1e-5), name
