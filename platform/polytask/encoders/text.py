"""Text encoders and their tokenizers: a transformers ``AutoModel`` (pinned, local or hub) or a
small random BERT, pooled to one feature vector per text."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from polytask.encoders.base import Encoder
from polytask.ops.artifacts import ARTIFACTS, fetch
from polytask.spec import PretrainedEncoder, RandomEncoder
from polytask.strategies.sharing import Batch

SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}


def resolve_pretrained(name: str) -> str:
    """A pinned artifact name -> its cached folder; a local folder -> itself; else a hub id."""
    if name in ARTIFACTS:
        return str(fetch(name))
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    return name


def load_tokenizer(spec: PretrainedEncoder | RandomEncoder, train_texts: list[str]):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    if isinstance(spec, PretrainedEncoder):
        return AutoTokenizer.from_pretrained(resolve_pretrained(spec.name))
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    tokenizer = Tokenizer(models.WordPiece(vocab=_vocabulary(train_texts, spec.vocab_size, normalizer, pre_tokenizer), unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer, tokenizer.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def _vocabulary(texts: list[str], size: int, normalizer, pre_tokenizer) -> dict[str, int]:
    """A WordPiece vocabulary built deterministically: the special tokens, every character seen
    (alone and as a ``##`` continuation, so any word can be spelled), then the most frequent
    words (ties by string) up to ``size``. The tokenizers library's WordPiece trainer breaks
    frequency ties in hash-map order, so its vocabulary changed from run to run; a random
    encoder's ids must not (a seed, a resumed study and a baseline's fingerprint rely on it)."""
    from collections import Counter

    words = Counter(word for text in texts for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({c for word in words for c in word})
    tokens = list(dict.fromkeys([*SPECIAL_TOKENS.values(), *characters, *(f"##{c}" for c in characters)]))
    for word, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        if len(tokens) >= size:
            break
        if word not in tokens:
            tokens.append(word)
    return {token: i for i, token in enumerate(tokens)}


def build_backbone(spec: PretrainedEncoder | RandomEncoder, vocab_size: int, pad_id: int) -> nn.Module:
    from transformers import AutoModel, BertConfig, BertModel

    if isinstance(spec, PretrainedEncoder):
        return AutoModel.from_pretrained(resolve_pretrained(spec.name))
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        intermediate_size=spec.intermediate_size,
        max_position_embeddings=spec.max_length,
        pad_token_id=pad_id,
    )
    return BertModel(config)


class TextEncoder(Encoder):
    """A transformers encoder pooled to ``[B, hidden]`` (or, ``token_level``, its token states
    ``[B, T, hidden]`` for token classification; polytask.training.model pools them for the other tasks).

    With ``trainable_layers`` set, the embeddings and all but the top ``trainable_layers``
    transformer layers are frozen *and kept in eval mode* (no dropout), so the frozen bottom is a
    fixed function of the text. That makes its output cacheable: :meth:`frozen_hidden` computes
    it once, and a batch carrying it as ``frozen_hidden`` runs only the trainable top — the same
    result as the full forward pass (checked in polytask.training.frozen before a study relies on it).

    As a :class:`~polytask.strategies.sharing.Backbone`: the stem is the embeddings and the
    frozen layers (or the cached ``frozen_hidden``), the stages are the trainable layers, the
    readout is the pooling. A stage runs the model's own forward over one layer, so attention
    masks and position encodings are prepared exactly as the model does.
    """

    def __init__(self, backbone: nn.Module, pooling: str = "mean", trainable_layers: int | None = None, token_level: bool = False) -> None:
        super().__init__()
        self.token_level = token_level  # readout: the token states [B, T, hidden], unpooled
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None  # the [CLS] dense+tanh pooler is unused: we pool ourselves
        self.backbone = backbone
        self.pooling = pooling
        self.output_dim = backbone.config.hidden_size
        # Kept by name, not as an attribute, which would register the layers a second time.
        # None: a model whose layers we cannot find still runs whole (hard sharing), untruncated.
        self._stack_name = transformer_layers_name(backbone) if trainable_layers is not None else _find_layers(backbone)
        count = len(self._stack()) if self._stack_name else 0
        self.frozen_layers = 0 if trainable_layers is None else count - trainable_layers
        if trainable_layers is not None:
            if trainable_layers > count:
                raise ValueError(f"trainable_layers={trainable_layers} but the encoder has {count} layers")
            backbone.requires_grad_(False)
            for layer in self._stack()[self.frozen_layers :]:
                layer.requires_grad_(True)
        self.partly_frozen = trainable_layers is not None
        self.train()

    def _stack(self) -> nn.ModuleList:
        if self._stack_name is None:
            raise ValueError(f"cannot find the transformer layers of {type(self.backbone).__name__}; layer-wise sharing and adapters need them")
        return self.backbone.get_submodule(self._stack_name)

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        if self.partly_frozen:
            self.backbone.eval()
            for layer in self._stack()[self.frozen_layers :]:
                layer.train(mode)
        return self

    def forward(self, batch: Batch) -> Tensor:
        """One pass of the model over the layers above the stem (all of them, or the trainable
        top on a batch with ``frozen_hidden``)."""
        if "frozen_hidden" not in batch:
            hidden = self.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        else:
            hidden = self._run_layers(slice(self.frozen_layers, None), batch["frozen_hidden"], batch)
        return self.readout(hidden, batch)

    def stem(self, batch: Batch) -> Tensor:
        if "frozen_hidden" in batch:
            return batch["frozen_hidden"]
        return self._run_layers(slice(0, self.frozen_layers), None, batch)

    def stage_modules(self) -> list[nn.Module]:
        return list(self._stack())[self.frozen_layers :]

    def stage(self, index: int, hidden: Tensor, batch: Batch) -> Tensor:
        layer = self.frozen_layers + index
        return self._run_layers(slice(layer, layer + 1), hidden, batch)

    def readout(self, hidden: Tensor, batch: Batch) -> Tensor:
        return hidden if self.token_level else pool_tokens(hidden, batch["attention_mask"], self.pooling)

    @torch.no_grad()
    def frozen_hidden(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Output of the frozen bottom ``[B, T, hidden]``: the input of the first trainable layer."""
        if not self.partly_frozen:
            raise ValueError("the encoder has no frozen layers (set trainable_layers)")
        return self._run_layers(slice(0, self.frozen_layers), None, {"input_ids": input_ids, "attention_mask": attention_mask})

    def _run_layers(self, layers: slice, embedded: Tensor | None, batch: Batch) -> Tensor:
        """The model's forward over ``layers`` only; ``embedded`` replaces the embeddings'
        output (the hidden states entering ``layers``)."""
        embeddings = getattr(self.backbone, "embeddings", None)
        if embeddings is None:
            raise ValueError(f"{type(self.backbone).__name__} has no 'embeddings' module; layer-wise sharing and cached frozen layers need one")
        with _only_layers(self._stack(), layers), _output_replaced(embeddings, embedded):
            return self.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state



def pool_tokens(hidden: Tensor, attention_mask: Tensor, pooling: str) -> Tensor:
    """``[B, T, D] -> [B, D]``: the first ([CLS]) token's state, or the mean over real tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


@contextmanager
def _only_layers(layers: nn.ModuleList, keep: slice) -> Iterator[None]:
    """Let the model's own forward loop over ``layers[keep]`` only."""
    original = layers._modules
    layers._modules = OrderedDict((str(i), m) for i, m in enumerate(list(original.values())[keep]))
    try:
        yield
    finally:
        layers._modules = original


@contextmanager
def _output_replaced(module: nn.Module, value: Tensor | None) -> Iterator[None]:
    """Make ``module`` return ``value`` (given hidden states) instead of its output; None: leave it."""
    if value is None:
        yield
        return
    handle = module.register_forward_hook(lambda _module, _inputs, _output: value)
    try:
        yield
    finally:
        handle.remove()


def _find_layers(backbone: nn.Module) -> str | None:
    try:
        return transformer_layers_name(backbone)
    except ValueError:
        return None


def transformer_layers_name(backbone: nn.Module) -> str:
    """Where the stack of transformer blocks is: the ModuleList as long as the config's layer
    count (``encoder.layer`` in BERT/RoBERTa, ``transformer.layer`` in DistilBERT, ...)."""
    count = backbone.config.num_hidden_layers
    for name, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return name
    raise ValueError(f"cannot find the {count} transformer layers of {type(backbone).__name__}; set trainable_layers: null")

