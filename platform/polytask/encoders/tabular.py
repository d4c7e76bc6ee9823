"""The tabular encoder: an embedding per categorical column, the numeric features, an MLP.

Each categorical column's codes (0: missing or unseen, see polytask.data.prepare) are looked up
in the column's own embedding table ("entity embeddings", Guo & Berkhahn, arXiv:1604.06737,
2016); the embeddings and the standardised numeric features are concatenated and go through
Linear -> ReLU stages. This is the usual encoder of tabular deep learning (fastai's
``TabularModel`` is this plus batch norm). Multi-task models for such data, like the
feed-forward experts and shared bottom of MMoE on UCI census-income (Ma et al., KDD 2018),
are networks over these features; in polytask they sit above the encoder, as sharing
strategies (hard sharing's ``hidden`` is the shared bottom).

As a :class:`~polytask.strategies.sharing.Backbone`: the stem is the embedding lookup and the
concatenation (``[B, width]``), the stages are the MLP layers, the readout is the identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from polytask.encoders.base import Encoder
from polytask.strategies.sharing import Batch


def embedding_size(codes: int) -> int:
    """fastai's rule of thumb (``emb_sz_rule``) for a column of ``codes`` distinct codes:
    ``min(600, round(1.6 * codes ** 0.56))``: 3 for a yes/no column (3 codes with the one for
    missing), 15 for 52 codes, 77 for 1,000; the cap of 600 is reached at about 39,500 codes."""
    return min(600, round(1.6 * codes**0.56))


class TabularEncoder(Encoder):
    """``categorical`` int64 [B, C] and ``numeric`` float32 [B, F] -> [B, output_dim].

    ``categorical_sizes``: codes per categorical column (0 included); ``embedding_dim``: one
    width for every column, None: :func:`embedding_size` of each; ``hidden``: the widths of the
    MLP stages; ``dropout``: after each stage's ReLU."""

    def __init__(
        self,
        categorical_sizes: Sequence[int],
        numeric_count: int,
        embedding_dim: int | None = None,
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not categorical_sizes and numeric_count == 0:
            raise ValueError("a tabular encoder needs at least one categorical or numeric column")
        self.embeddings = nn.ModuleList(nn.Embedding(n, embedding_dim or embedding_size(n)) for n in categorical_sizes)
        self.numeric_count = numeric_count
        self.input_dim = sum(e.embedding_dim for e in self.embeddings) + numeric_count
        self.widths = [self.input_dim, *hidden]  # of the stem's output, then of each stage's
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(w_in, w_out), nn.ReLU(), *([nn.Dropout(dropout)] if dropout else [])) for w_in, w_out in zip(self.widths, self.widths[1:])
        )
        self.output_dim = self.widths[-1]

    def stem(self, batch: Batch) -> Tensor:
        parts = [embedding(batch["categorical"][:, j]) for j, embedding in enumerate(self.embeddings)]
        if self.numeric_count:
            parts.append(batch["numeric"].float())
        return torch.cat(parts, dim=1)

    def stage_modules(self) -> list[nn.Module]:
        return list(self.blocks)

    def stage(self, index: int, hidden: Tensor, batch: Batch) -> Tensor:
        return self.blocks[index](hidden)

    def readout(self, hidden: Tensor, batch: Batch) -> Tensor:
        return hidden

    def width(self, depth: int) -> int:
        return self.widths[depth]
