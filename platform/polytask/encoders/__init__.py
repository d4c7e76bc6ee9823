"""Encoders: text (transformers), tabular (embeddings + MLP) and images (a CNN or a ViT); each
one a :class:`polytask.strategies.sharing.Backbone`."""

from __future__ import annotations

from polytask.encoders.base import Encoder
from polytask.encoders.image import ConvEncoder, VitEncoder
from polytask.encoders.tabular import TabularEncoder, embedding_size
from polytask.encoders.text import TextEncoder, build_backbone, load_tokenizer, pool_tokens, resolve_pretrained, transformer_layers_name

__all__ = [
    "ConvEncoder",
    "Encoder",
    "TabularEncoder",
    "TextEncoder",
    "VitEncoder",
    "build_backbone",
    "embedding_size",
    "load_tokenizer",
    "pool_tokens",
    "resolve_pretrained",
    "transformer_layers_name",
]
