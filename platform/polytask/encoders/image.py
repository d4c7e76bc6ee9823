"""Image encoders: a small convolutional network and a small Vision Transformer, trained from
scratch on images such as Multi-Fashion's (polytask.data.multi_fashion).

Both read the batch key ``pixel_values``: float32 ``[B, C, H, W]`` in [0, 1] (uint8 0..255 is
accepted too and divided by 255), and both start by mapping pixels to [-1, 1]
(``(x - 0.5) / 0.5``, what transformers' ``ViTImageProcessor`` does), a fixed map with no
parameters.

Each is a :class:`~polytask.strategies.sharing.Backbone`:

* :class:`ConvEncoder`: the stem is that normalisation (nothing trainable), the stages are the
  convolution blocks, the readout is global average pooling, ``[B, channels at that depth]``.
* :class:`VitEncoder`: the stem is the ViT embeddings (patches, [CLS], positions), the stages are
  the transformer layers, the readout a LayerNorm with no parameters and the pooling.

Neither readout has a trainable parameter, so every sharing strategy, hierarchical sharing's
reads at several depths included, works with them unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from polytask.encoders.base import Encoder
from polytask.strategies.sharing import Batch


def normalised_pixels(batch: Batch, in_channels: int, image_size: int) -> Tensor:
    """``batch["pixel_values"]`` as float32 in [-1, 1], its shape checked."""
    pixels = batch["pixel_values"]
    if pixels.ndim != 4 or pixels.shape[1] != in_channels or tuple(pixels.shape[2:]) != (image_size, image_size):
        raise ValueError(f"pixel_values must be [B, {in_channels}, {image_size}, {image_size}], got {list(pixels.shape)}")
    pixels = pixels.float() / 255.0 if not pixels.is_floating_point() else pixels.float()
    return (pixels - 0.5) / 0.5


class ConvEncoder(Encoder):
    """``pixel_values`` [B, in_channels, image_size, image_size] -> [B, channels[-1]].

    Each stage is a LeNet-style block (LeCun et al., "Gradient-based learning applied to document
    recognition", Proc. IEEE 1998): ``Conv2d`` (``kernel_size``, "same" padding) -> ReLU ->
    ``MaxPool2d(2)`` (-> Dropout), so stage ``i`` has ``channels[i]`` maps at half the previous
    resolution (36 -> 18 -> 9 with two stages). This is the kind of encoder Pareto MTL (Lin et
    al., "Pareto Multi-Task Learning", NeurIPS 2019) and Sener and Koltun (NeurIPS 2018) share
    on Multi-MNIST and Multi-Fashion: two conv + max-pool layers below the task heads. Theirs
    ends in a flattening fully connected layer (to 50 features); this one ends in global average
    pooling, so that the readout has no parameters and can be read at any depth.

    No batch normalisation, as in those LeNet encoders: with it, a forward pass would depend on
    the rest of the batch and on train/eval mode, and its running statistics would be updated
    once per encoder pass, which is several times a step for strategies that run the stages
    per task or per column (cross-stitch, soft sharing, LoRA).

    The readout is global average pooling: ``width(depth)`` is ``in_channels`` at depth 0 (the
    mean normalised pixel) and ``channels[depth - 1]`` after ``depth`` stages.
    """

    def __init__(self, in_channels: int, image_size: int, channels: Sequence[int] = (32, 64), kernel_size: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        channels = list(channels)
        if not channels or min(channels) < 1 or in_channels < 1:
            raise ValueError(
                f"a conv encoder needs in_channels >= 1 and at least one stage of >= 1 channels, got in_channels={in_channels}, channels={channels}"
            )
        if image_size < 2 ** len(channels):
            raise ValueError(
                f"{len(channels)} stages halve the image {len(channels)} times, more than a {image_size}x{image_size} image allows; use fewer channels entries"
            )
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be at least 1, got {kernel_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.image_size, self.channels, self.kernel_size, self.dropout = in_channels, image_size, channels, kernel_size, dropout
        self.widths = [in_channels, *channels]  # of the readout at each depth
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size, padding="same"),
                nn.ReLU(),
                nn.MaxPool2d(2),
                *([nn.Dropout(dropout)] if dropout else []),
            )
            for c_in, c_out in zip(self.widths, self.widths[1:])
        )
        self.output_dim = channels[-1]

    def stem(self, batch: Batch) -> Tensor:
        return normalised_pixels(batch, self.in_channels, self.image_size)

    def stage_modules(self) -> list[nn.Module]:
        return list(self.blocks)

    def stage(self, index: int, hidden: Tensor, batch: Batch) -> Tensor:
        return self.blocks[index](hidden)

    def readout(self, hidden: Tensor, batch: Batch) -> Tensor:
        return hidden.mean(dim=(2, 3))

    def width(self, depth: int) -> int:
        return self.widths[depth]

    def add_task_adapters(self, tasks: Sequence[str], rank: int, alpha: float, dropout: float) -> None:
        raise ValueError(
            "lora sharing puts LoRA adapters on the linear layers of the encoder's stages, and the cnn encoder's stages are convolutions; "
            "use lora with a text, tabular or vit encoder, or another sharing strategy with the cnn encoder"
        )

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, image_size={self.image_size}, channels={self.channels}, kernel_size={self.kernel_size}, dropout={self.dropout}"


class VitEncoder(Encoder):
    """``pixel_values`` [B, in_channels, image_size, image_size] -> [B, hidden_size].

    A Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
    Image Recognition at Scale", ICLR 2021), randomly initialised: transformers' ``ViTModel``
    from a ``ViTConfig`` with these sizes, ``add_pooling_layer=False``. The image is cut into
    ``patch_size`` x ``patch_size`` patches (``image_size`` must be a multiple of it: 36 -> 9 x 9
    = 81 patches of 4 x 4), each linearly embedded; a learned [CLS] token is prepended and
    learned position embeddings added (the stem). ``layers`` pre-LayerNorm transformer layers
    follow (the stages), each run as the model runs it (``ViTLayer(hidden, attention_mask=None)``;
    every token sees every token).

    The readout is the model's final LayerNorm, kept without its scale and bias (a task head
    is linear, so it absorbs them; and a readout with parameters would leave them unreached or
    wrongly shared when hierarchical sharing reads several depths), then the pooling:
    ``"cls"``, the [CLS] token's state, or ``"mean"``, the mean over all tokens, [CLS] included.
    The [CLS] state at depth 0 is the same for every image (its embedding and position), so a
    task read at depth 0 (hierarchical sharing) needs ``pooling="mean"``.

    ``dropout`` is the config's hidden and attention dropout. The forward pass equals
    ``pool(ViTModel(...).last_hidden_state)`` of the wrapped model (a test checks it).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        patch_size: int = 4,
        hidden_size: int = 64,
        layers: int = 2,
        heads: int = 2,
        intermediate_size: int = 128,
        pooling: Literal["cls", "mean"] = "cls",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        from transformers import ViTConfig, ViTModel

        if patch_size < 1 or image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size ({patch_size})")
        if hidden_size % heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of heads ({heads})")
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        config = ViTConfig(
            image_size=image_size,
            patch_size=patch_size,
            num_channels=in_channels,
            hidden_size=hidden_size,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=intermediate_size,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
        )
        self.model = ViTModel(config, add_pooling_layer=False)
        self.model.layernorm = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps, elementwise_affine=False)
        self.in_channels, self.image_size, self.patch_size, self.pooling = in_channels, image_size, patch_size, pooling
        self.output_dim = hidden_size

    @property
    def config(self):
        return self.model.config

    def stem(self, batch: Batch) -> Tensor:
        return self.model.embeddings(normalised_pixels(batch, self.in_channels, self.image_size))

    def stage_modules(self) -> list[nn.Module]:
        return list(self.model.layers)

    def stage(self, index: int, hidden: Tensor, batch: Batch) -> Tensor:
        return self.model.layers[index](hidden, None)

    def readout(self, hidden: Tensor, batch: Batch) -> Tensor:
        hidden = self.model.layernorm(hidden)
        return hidden[:, 0] if self.pooling == "cls" else hidden.mean(dim=1)

    def width(self, depth: int) -> int:
        return self.output_dim

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"in_channels={self.in_channels}, image_size={self.image_size}, patch_size={self.patch_size}, hidden_size={c.hidden_size}, "
            f"layers={c.num_hidden_layers}, heads={c.num_attention_heads}, intermediate_size={c.intermediate_size}, pooling={self.pooling!r}, dropout={c.hidden_dropout_prob}"
        )


__all__ = ["ConvEncoder", "VitEncoder", "normalised_pixels"]
