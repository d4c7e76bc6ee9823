"""Encoders: text (transformers) and tabular (embeddings + MLP); each one a
:class:`polytask.strategies.sharing.Backbone`."""

from __future__ import annotations

from polytask.encoders.base import Encoder
from polytask.encoders.tabular import TabularEncoder, embedding_size
from polytask.encoders.text import TextEncoder, build_backbone, load_tokenizer, resolve_pretrained, transformer_layers_name

__all__ = ["Encoder", "TabularEncoder", "TextEncoder", "build_backbone", "embedding_size", "load_tokenizer", "resolve_pretrained", "transformer_layers_name"]
