"""Multi-Fashion built from a tiny synthetic Fashion-MNIST (idx files written here, nothing
downloaded): where each item goes, how overlaps combine, labels, determinism, sizes, the cache."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from polytask.data import multi_fashion
from polytask.data.multi_fashion import CLASSES, read_idx

TRAIN, TEST = 20, 8


def write_idx(path: Path, array: np.ndarray) -> None:
    header = b"\0\0\x08" + bytes([array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def fake_source(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Random 28x28 items (unique, so each can be recognised) and labels: train classes 0..3,
    test classes 5..7."""
    rng = np.random.default_rng(123)
    source = {
        "train": (rng.integers(0, 256, (TRAIN, 28, 28), dtype=np.uint8), np.arange(TRAIN, dtype=np.uint8) % 4),
        "test": (rng.integers(0, 256, (TEST, 28, 28), dtype=np.uint8), 5 + np.arange(TEST, dtype=np.uint8) % 3),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for split, (image_file, label_file) in multi_fashion.FILES.items():
        write_idx(folder / image_file, source[split][0])
        write_idx(folder / label_file, source[split][1])
    return source


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYTASK_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "fashion-mnist"
    fetched = []

    def fake_fetch(name):
        assert name == "fashion_mnist"
        fetched.append(name)
        return folder

    monkeypatch.setattr(multi_fashion, "fetch", fake_fetch)
    data = fake_source(folder)
    data["fetched"] = fetched
    return data


def test_idx_files_read_back():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
        write_idx(Path(folder) / "a.gz", array)
        assert np.array_equal(read_idx(Path(folder) / "a.gz"), array)
        (Path(folder) / "b").write_bytes(b"\0\0\x0d\x01\0\0\0\x01abcd")  # 0x0d: float, not bytes
        with pytest.raises(ValueError, match="not an idx file of unsigned bytes"):
            read_idx(Path(folder) / "b")


@pytest.mark.parametrize("pairs", [1, 3])
def test_each_image_overlays_its_left_item_at_0_0_and_its_right_item_at_8_8(source, pairs):
    frames = multi_fashion.load(pairs_per_image=pairs, seed=0)
    assert set(frames) == {"train", "validation", "test"}
    held_out = TRAIN // 6  # the last sixth of the source's train images: validation's items
    sources = {
        "train": (source["train"][0][: TRAIN - held_out], source["train"][1][: TRAIN - held_out]),
        "validation": (source["train"][0][TRAIN - held_out :], source["train"][1][TRAIN - held_out :]),
        "test": source["test"],
    }
    for split, (items, labels) in sources.items():
        count = len(labels)
        frame = frames[split]
        assert len(frame) == pairs * count  # every source image is the left item `pairs` times
        assert list(frame.columns) == ["image", "left", "right"]
        for row in range(len(frame)):
            image = frame.image[row]
            assert image.shape == (1, 36, 36) and image.dtype == np.uint8
            left = row % count  # rows go by repetition, then source index
            # the right item is the one whose bottom 8 rows fill rows 28..35 (no overlap there)
            (right,) = [j for j in range(count) if np.array_equal(items[j, 20:], image[0, 28:, 8:])]
            expected = np.zeros((36, 36), dtype=np.uint8)
            expected[:28, :28] = items[left]
            expected[8:, 8:] = np.maximum(expected[8:, 8:], items[right])
            assert np.array_equal(image[0], expected)
            assert np.array_equal(image[0, :8, :28], items[left, :8])  # left only
            assert np.array_equal(image[0, 8:28, 8:28], np.maximum(items[left, 8:, 8:], items[right, :20, :20]))  # max
            assert frame.left[row] == CLASSES[labels[left]] and frame.right[row] == CLASSES[labels[right]]
            assert labels[left] != labels[right]  # partners come from another class


def test_labels_are_class_names_and_partners_spread_over_the_other_classes(source):
    frames = multi_fashion.load(pairs_per_image=10, seed=0)
    train = frames["train"]
    assert set(train.left) == set(train.right) == {"T-shirt/top", "Trouser", "Pullover", "Dress"}
    assert set(frames["test"].left) == {"Sandal", "Shirt", "Sneaker"}
    assert (train.left != train.right).all()
    assert train.right.value_counts().min() > 20  # 200 draws over 4 classes: none left out


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(source, tmp_path):
    first = multi_fashion.load(seed=0)
    for path in (tmp_path / "cache" / "built").iterdir():
        path.unlink()  # built again from the source, not read back
    again = multi_fashion.load(seed=0)
    other = multi_fashion.load(seed=1)
    for split in ("train", "test"):
        assert np.array_equal(np.stack(first[split].image), np.stack(again[split].image))
        assert first[split].right.tolist() == again[split].right.tolist()
        assert first[split].left.tolist() == other[split].left.tolist()  # the left items are the source order
    assert not np.array_equal(np.stack(first["train"].image), np.stack(other["train"].image))


def test_the_built_arrays_are_cached_and_read_back(source, tmp_path, monkeypatch):
    first = multi_fashion.load(pairs_per_image=2, seed=7)
    path = tmp_path / "cache" / "built" / "multi_fashion-7-2.npz"
    assert path.is_file() and source["fetched"] == ["fashion_mnist"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    stamp = path.stat().st_mtime_ns

    def no_fetch(name):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(multi_fashion, "fetch", no_fetch)
    second = multi_fashion.load(pairs_per_image=2, seed=7)
    assert path.stat().st_mtime_ns == stamp
    for split in ("train", "test"):
        assert np.array_equal(np.stack(first[split].image), np.stack(second[split].image))
        assert first[split].left.tolist() == second[split].left.tolist() and first[split].right.tolist() == second[split].right.tolist()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_an_unreadable_cache_is_built_again(source, tmp_path, damage):
    path = tmp_path / "cache" / "built" / "multi_fashion-0-1.npz"
    expected = multi_fashion.load(pairs_per_image=1)
    path.write_bytes(b"not an npz" if damage == "garbage" else path.read_bytes()[:-100])
    frames = multi_fashion.load(pairs_per_image=1)
    assert np.array_equal(np.stack(frames["train"].image), np.stack(expected["train"].image))
    assert np.load(path)["train_images"].shape == (TRAIN - TRAIN // 6, 36, 36)  # and written whole again


def test_pairs_per_image_must_be_positive(source):
    with pytest.raises(ValueError, match="pairs_per_image"):
        multi_fashion.load(pairs_per_image=0)


def test_a_cache_built_from_another_pin_is_built_again(source, tmp_path, monkeypatch):
    from dataclasses import replace

    from polytask.ops import artifacts

    multi_fashion.load(pairs_per_image=1)
    assert source["fetched"] == ["fashion_mnist"]
    multi_fashion.load(pairs_per_image=1)
    assert source["fetched"] == ["fashion_mnist"]  # read back
    monkeypatch.setitem(artifacts.ARTIFACTS, "fashion_mnist", replace(artifacts.ARTIFACTS["fashion_mnist"], sha256="0" * 64))
    multi_fashion.load(pairs_per_image=1)
    assert source["fetched"] == ["fashion_mnist"] * 2  # built again
