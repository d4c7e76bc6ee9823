"""Texts to token ids, once per distinct (texts, tokenizer, max length), cached on disk.

Tokenisation runs through ``datasets.Dataset.map`` with a cache file named by a fingerprint of
its inputs (every text, the tokenizer's full serialisation, the maximum length), under
``<cache>/tokenised/``. A later study, or ``polytask validate``, over the same data and encoder
loads the token ids from that Arrow file instead of tokenising again; within a study the driver
tokenises once and every trial reads the result from Ray's object store.

A text is a string, or a list of words (token classification: ``is_split_into_words``, and each
token's word index is kept to align the tags with the first sub-word of each word).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from polytask.ops.artifacts import cache_root

NO_WORD = -1  # word index of special tokens and padding


def tokenise(texts: Sequence[str] | Sequence[list[str]], tokenizer, max_length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``input_ids`` int32 [N, longest] right-padded with the pad id, ``lengths`` int32 [N],
    and for word lists ``word_ids`` int32 [N, longest] (NO_WORD for none), else None."""
    import datasets

    words = bool(len(texts)) and isinstance(texts[0], list)
    key = fingerprint(texts, tokenizer, max_length, words)
    folder = cache_root() / "tokenised"
    folder.mkdir(parents=True, exist_ok=True)

    def encode(batch: dict) -> dict:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length, is_split_into_words=words)
        out = {"input_ids": encoded["input_ids"]}
        if words:
            out["word_ids"] = [[NO_WORD if w is None else w for w in encoded.word_ids(i)] for i in range(len(batch["text"]))]
        return out

    datasets.disable_progress_bars()
    table = datasets.Dataset.from_dict({"text": list(texts)})
    # An explicit cache file: in-memory datasets are otherwise never cached.
    encoded = table.map(encode, batched=True, batch_size=2000, remove_columns=["text"], cache_file_name=str(folder / f"{key}.arrow"), new_fingerprint=key)
    ids = encoded["input_ids"]
    lengths = np.array([len(row) for row in ids], dtype=np.int32)
    input_ids = np.full((len(ids), int(lengths.max(initial=1))), tokenizer.pad_token_id, dtype=np.int32)
    word_ids = np.full(input_ids.shape, NO_WORD, dtype=np.int32) if words else None
    for row, values in enumerate(ids):
        input_ids[row, : len(values)] = values
    if words:
        for row, values in enumerate(encoded["word_ids"]):
            word_ids[row, : len(values)] = values
    return input_ids, lengths, word_ids


def fingerprint(texts: Sequence, tokenizer, max_length: int, words: bool) -> str:
    """sha256 of everything the token ids depend on."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # the vocabulary and pipeline; not the truncation/padding state a call leaves behind
        state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
        digest.update(json.dumps(state, sort_keys=True).encode())
    else:
        digest.update(repr(tokenizer).encode())
    digest.update(f"\0{max_length}\0{words}\0{len(texts)}\0".encode())
    for text in texts:
        digest.update(("\x1f".join(text) if words else str(text)).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]
