"""Images through the data layer and the spec: pixels stacked once, batches as floats in 0..1,
and image-specific mistakes caught before training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from polytask.data import check_frames, load_datasets, prepare_data
from polytask.data.batches import collate
from polytask.errors import StudyError
from polytask.spec import parse_spec
from polytask.training.model import build_model


def image_frame(count: int, seed: int, side: int = 8) -> pd.DataFrame:
    """Images whose bright quadrant is the label: 'top' or 'bottom' half, 'left' or 'right'."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        image = rng.integers(0, 40, (side, side), dtype=np.uint8)
        top, left = bool(rng.integers(2)), bool(rng.integers(2))
        rows_, cols = slice(0, side // 2) if top else slice(side // 2, side), slice(0, side // 2) if left else slice(side // 2, side)
        image[rows_, cols] += 200
        rows.append({"image": image.tolist(), "vertical": "top" if top else "bottom", "horizontal": "left" if left else "right"})
    return pd.DataFrame(rows)


def image_study(folder, encoder: dict | None = None, side: int = 8, **overrides) -> dict:
    paths = {}
    for split, (count, seed) in {"train": (64, 1), "validation": (24, 2)}.items():
        paths[split] = str(folder / f"{split}.parquet")
        image_frame(count, seed, side).to_parquet(paths[split])
    raw = {
        "name": "images",
        "data": {"source": {"kind": "files", **paths}, "split": {"test": 0}},
        "tasks": [{"name": "vertical", "label_column": "vertical"}, {"name": "horizontal", "label_column": "horizontal"}],
        "encoder": encoder or {"kind": "cnn", "channels": [4, 8]},
        "candidates": [{"weighting": "equal"}],
        "training": {"epochs": 2, "steps_per_epoch": 4, "batch_size": 16, "learning_rate": 1e-2},
    }
    raw.update(overrides)
    return raw


def test_images_are_stacked_once_and_batched_as_floats(tmp_path):
    spec = parse_spec(image_study(tmp_path))
    datasets = load_datasets(spec)
    assert check_frames(spec, datasets) == []
    data = prepare_data(spec, datasets, None)
    train = data.splits["train"]
    assert data.image_shape == (1, 8, 8) and train.images.dtype == np.uint8 and train.images.shape == (64, 1, 8, 8)
    source = np.array(pd.read_parquet(tmp_path / "train.parquet")["image"][5].tolist(), dtype=np.uint8)
    assert np.array_equal(train.images[5, 0], source)
    batch = collate(train, np.array([5, 6]))
    assert batch["pixel_values"].dtype.is_floating_point and float(batch["pixel_values"].max()) <= 1.0
    assert np.allclose(batch["pixel_values"][0, 0].numpy(), source / 255.0)
    for encoder in ({"kind": "cnn", "channels": [4, 8]}, {"kind": "vit", "patch_size": 4, "hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 16}):
        model = build_model(parse_spec(image_study(tmp_path, encoder)), data)
        _, outputs = model(batch)
        assert {k: tuple(v.shape) for k, v in outputs.items()} == {"vertical": (2, 2), "horizontal": (2, 2)}


def test_an_image_of_another_size_names_its_row(tmp_path):
    spec = parse_spec(image_study(tmp_path))
    frame = image_frame(24, 2)
    frame.at[9, "image"] = np.zeros((6, 8), dtype=np.uint8).tolist()
    frame.to_parquet(tmp_path / "validation.parquet")
    problems = [str(p) for p in check_frames(spec, load_datasets(spec))]
    assert problems == ["data (data.source: files validation.parquet), validation split, column 'image', row 9: has shape (1, 6, 8) (channels, height, width), but the first image has (1, 8, 8); every image of a study must have one size"]


def test_a_vit_patch_must_divide_the_image(tmp_path):
    spec = parse_spec(image_study(tmp_path, {"kind": "vit", "patch_size": 3}))
    problems = [str(p) for p in check_frames(spec, load_datasets(spec))]
    assert problems == ["encoder.patch_size: a vit encoder cuts square images into patches of 3 pixels, but the images are 8x8; choose a patch size that divides the side, or a cnn encoder"]


def test_lora_needs_linear_stages(tmp_path):
    with pytest.raises(StudyError, match=r"sharing.name: lora adds adapters to the linear layers of the encoder's stages, and a cnn encoder's stages are convolutions"):
        parse_spec(image_study(tmp_path, sharing={"name": "lora"}))
    parse_spec(image_study(tmp_path, {"kind": "vit", "patch_size": 4}, sharing={"name": "lora"}))  # fine with a ViT


def test_token_tasks_need_a_text_encoder(tmp_path):
    raw = image_study(tmp_path)
    raw["tasks"][0] = {"name": "vertical", "label_column": "vertical", "type": "token_classification"}
    with pytest.raises(StudyError, match=r"tasks\[0\].type: token_classification tags the words of a text, but encoder kind 'cnn' reads no text"):
        parse_spec(raw)


def test_hierarchical_depth_zero_needs_mean_pooling_on_a_vit(tmp_path):
    vit = {"kind": "vit", "patch_size": 4, "pooling": "cls"}
    with pytest.raises(StudyError, match=r"sharing.params.depths: depth 0 reads the stem's output, and with pooling cls a vit's stem output there is the \[CLS\] embedding alone"):
        parse_spec(image_study(tmp_path, vit, sharing={"name": "hierarchical", "params": {"depths": {"vertical": 0, "horizontal": 2}}}))
    parse_spec(image_study(tmp_path, {**vit, "pooling": "mean"}, sharing={"name": "hierarchical", "params": {"depths": [0, 2]}}))
    parse_spec(image_study(tmp_path, vit, sharing={"name": "hierarchical", "params": {"depths": [1, 2]}}))
