"""Shared fixtures: a small synthetic two-task text dataset, tiny encoders, study specs.

The synthetic data mirrors the quickstart's shape (a subjectivity task on every row, a
sentiment task missing on "plot" rows) with word-level signals a tiny model learns in a few
steps, so real studies finish in seconds and tests never need the network or the hub.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.support import study_dict, synthetic_rows


@pytest.fixture(scope="session")
def text_data(tmp_path_factory) -> dict[str, Path]:
    """train/validation/test CSV files of synthetic reviews and plot summaries."""
    folder = tmp_path_factory.mktemp("text_data")
    paths = {}
    for split, (count, seed) in {"train": (400, 1), "validation": (120, 2), "test": (120, 3)}.items():
        paths[split] = folder / f"{split}.csv"
        synthetic_rows(count, seed).to_csv(paths[split], index=False)
    return paths


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory, text_data) -> Path:
    """A 'pretrained' encoder folder in the Hugging Face layout: a tiny random BERT and a
    WordPiece tokenizer saved with save_pretrained, so the pretrained path (and the frozen-layer
    cache) runs offline."""
    import torch
    from transformers import BertConfig, BertModel

    from polytask.encoders import load_tokenizer
    from polytask.spec import RandomEncoder

    folder = tmp_path_factory.mktemp("tiny_bert")
    texts = pd.read_csv(text_data["train"])["review"].tolist()
    tokenizer = load_tokenizer(RandomEncoder(kind="random", vocab_size=200), texts)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def pinned_cache(tmp_path_factory, monkeypatch) -> Path:
    """A polytask cache for this test session: pinned artifacts are downloaded into it once."""
    folder = tmp_path_factory.getbasetemp() / "polytask-cache"
    monkeypatch.setenv("POLYTASK_CACHE", str(folder))
    return folder


@pytest.fixture
def make_study(text_data):
    def make(**overrides) -> dict:
        return study_dict(text_data, **overrides)

    return make


@pytest.fixture
def s3_bucket(monkeypatch):
    """A local S3-compatible endpoint (moto's server on 127.0.0.1, standing in for a cloud
    bucket) with the bucket `polytask-results`; credentials and endpoint in the environment, as
    pyarrow, boto3 and MLflow read them on a cluster. Yields a boto3 S3 client."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="polytask-results")
        yield s3
    finally:
        server.stop()
