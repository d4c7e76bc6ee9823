"""Multi-Fashion: two Fashion-MNIST items overlapped in one 36x36 image, two tasks (which item
is at the top left, which at the bottom right), built from the pinned Debian package.

Fashion-MNIST (Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking
Machine Learning Algorithms", arXiv:1708.07747, 2017) has 60,000 train and 10,000 test 28x28
grey images of Zalando articles in 10 classes (``CLASSES``). polytask reads it from Debian's
``dataset-fashion-mnist`` package (the ``fashion_mnist`` artifact: the .deb is pinned by sha256,
see polytask.ops.artifacts), which holds the four original idx files gzipped under
``usr/share/datasets/fashion-mnist/``. The files are always read through
:func:`polytask.ops.artifacts.fetch`, never from a ``/usr/share/datasets`` an installed package may
have left: only the fetched copy is verified against the pin. For a machine without network,
put the .deb (``apt-get download dataset-fashion-mnist``) in ``$POLYTASK_ARTIFACT_DIR``.

Multi-Fashion is the benchmark of Lin, Zhen, Li, Zhang and Kwong, "Pareto Multi-Task Learning",
NeurIPS 2019, built like MultiMNIST (Sabour, Frosst and Hinton, "Dynamic Routing Between
Capsules", NeurIPS 2017; used for MTL by Sener and Koltun, "Multi-Task Learning as
Multi-Objective Optimization", NeurIPS 2018). Here, for each split separately:

* every source image is the *left* item ``pairs_per_image`` times; each time its partner, the
  *right* item, is drawn uniformly from the images of the same split whose class differs from
  the left one's (Sabour et al.: "a digit from the same set ... but different class");
* the left item fills rows and columns 0..27 of a black 36x36 canvas, the right item rows and
  columns 8..35, and where they overlap each pixel is the larger of the two (pixel-wise max).

The last sixth of Fashion-MNIST's train images (10,000) make the validation split, pairs among
themselves, so no item of a validation image appears in training (each source image is used
``pairs_per_image`` times, so a random hold-out of rows would leak). So train has
``pairs_per_image * 50,000`` images (100,000 by default), validation and test
``pairs_per_image * 10,000`` (20,000) each; rows are ordered by repetition, then by source index.
(Sener and Koltun's loader puts the right digit at offset 6 and resizes the canvas to 28x28;
this keeps the 36x36 canvas, so nothing is resampled.) Partners come from a numpy Generator
seeded with ``(seed, split)``: the same ``seed`` gives the same data on any machine.

:func:`load` returns one DataFrame per split with columns ``image`` (numpy uint8 ``[1, 36, 36]``,
0 black .. 255 white, as in the source), ``left`` and ``right`` (the class names). Building
takes a few seconds; the arrays are cached as
``<cache_root>/built/multi_fashion-<seed>-<pairs_per_image>.npz`` and read back afterwards (a
cache built by another format of this module or from another pin is built again).
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from polytask.ops.artifacts import ARTIFACTS, cache_root, fetch

ARTIFACT = "fashion_mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {  # source split -> (images, labels) in the artifact's folder
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# split -> (source split, which source images): validation gets the last sixth of the source's
# train images (10,000), so no item of a validation image is ever seen in training
SPLITS = {"train": ("train", "head"), "validation": ("train", "tail"), "test": ("test", "all")}
ITEM = 28  # side of a Fashion-MNIST image
OFFSET = 8  # where the right item starts, in rows and columns
SIZE = ITEM + OFFSET  # side of a Multi-Fashion image: 36
FORMAT = 2  # of the cached .npz; a cache of another format is rebuilt


def load(pairs_per_image: int = 2, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Splits "train", "validation" and "test": columns ``image`` (uint8 ``[1, 36, 36]``),
    ``left``, ``right``."""
    if pairs_per_image < 1:
        raise ValueError(f"pairs_per_image must be at least 1, got {pairs_per_image}")
    path = cache_root() / "built" / f"multi_fashion-{seed}-{pairs_per_image}.npz"
    arrays = _read_cache(path)
    if arrays is None:
        arrays = build(fetch(ARTIFACT), pairs_per_image, seed)
        _write_atomically(path, arrays)
    names = np.array(CLASSES, dtype=object)
    frames = {}
    for split in SPLITS:
        images = arrays[f"{split}_images"]  # [N, 36, 36]
        frames[split] = pd.DataFrame(
            {
                "image": list(images[:, None]),  # views of one array, [1, 36, 36] each
                "left": names[arrays[f"{split}_left"]],
                "right": names[arrays[f"{split}_right"]],
            }
        )
    return frames


def build(folder: Path, pairs_per_image: int, seed: int) -> dict[str, np.ndarray]:
    """``{split}_images`` uint8 [N, 36, 36], ``{split}_left`` / ``{split}_right`` class codes
    (uint8) for each split, from the idx files in ``folder``."""
    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT), "source": np.array(ARTIFACTS[ARTIFACT].sha256)}
    for index, (split, (source, part)) in enumerate(SPLITS.items()):
        image_file, label_file = FILES[source]
        images, labels = read_idx(folder / image_file), read_idx(folder / label_file)
        if images.ndim != 3 or images.shape[1:] != (ITEM, ITEM) or labels.shape != images.shape[:1]:
            raise ValueError(f"{folder}: {image_file} {images.shape} and {label_file} {labels.shape} are not N 28x28 images and N labels")
        if labels.max(initial=0) >= len(CLASSES):
            raise ValueError(f"{folder}: {label_file} has label {labels.max()}, but Fashion-MNIST has {len(CLASSES)} classes (0..{len(CLASSES) - 1})")
        held_out = len(labels) // 6  # the tail: the last sixth of the source's images
        rows = {"all": slice(None), "head": slice(0, len(labels) - held_out), "tail": slice(len(labels) - held_out, None)}[part]
        images, labels = images[rows], labels[rows]
        rng = np.random.default_rng([seed, index])
        left = np.tile(np.arange(len(labels)), pairs_per_image)
        right = different_class_partners(labels, left, rng)
        arrays[f"{split}_images"] = overlay(images[left], images[right])
        arrays[f"{split}_left"], arrays[f"{split}_right"] = labels[left], labels[right]
    return arrays


def different_class_partners(labels: np.ndarray, left: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each index in ``left``, an index drawn uniformly from those of another class
    (rejection sampling: draws that hit the left item's class are drawn again)."""
    if len(np.unique(labels)) < 2:
        raise ValueError("pairing items of different classes needs at least two classes")
    right = rng.integers(len(labels), size=len(left))
    redo = np.flatnonzero(labels[right] == labels[left])
    while len(redo):
        right[redo] = rng.integers(len(labels), size=len(redo))
        redo = redo[labels[right[redo]] == labels[left[redo]]]
    return right


def overlay(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """[N, 28, 28] twice -> [N, 36, 36]: ``left`` at the top left, ``right`` at (8, 8), max where
    they overlap."""
    canvas = np.zeros((len(left), SIZE, SIZE), dtype=np.uint8)
    canvas[:, :ITEM, :ITEM] = left
    np.maximum(canvas[:, OFFSET:, OFFSET:], right, out=canvas[:, OFFSET:, OFFSET:])
    return canvas


def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format, optionally gzipped): two zero bytes, a type code
    (0x08: unsigned byte), the number of dimensions, each dimension as a big-endian uint32,
    then the data in row-major order."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} bytes of data for dimensions {shape}")
    return data.reshape(shape)


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # unreadable: build again
        return None
    if "format" not in arrays or int(arrays["format"]) != FORMAT or str(arrays.get("source")) != ARTIFACTS[ARTIFACT].sha256:
        return None  # another format, or built from another pin of Fashion-MNIST
    return arrays


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file beside ``path``, then rename: a reader sees all or nothing, and
    trials building at once each write a whole file (the last rename wins, same content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
