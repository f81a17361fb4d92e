"""The loaders on the real datasets, read from the project's shared local mirror (``../shared/datasets``).

That folder holds MNIST and Fashion-MNIST as IDX ``.gz`` files recompressed by their providers (so the
files' SHA-256 differ from the official downloads while their content is the official one) and a
JPEG copy of CIFAR-10 as a tar of class folders. It is used here as a user would use a local mirror;
the tests are skipped where it does not exist.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from exercises.kit.datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    load_fashion_mnist,
    load_image_folder,
    load_mnist,
)
from exercises.kit.download import MIRROR_ENV, DatasetUnavailable, find_local_copy, sha256_file
from grading import PROJECT_ROOT

SHARED = PROJECT_ROOT.parent / "shared" / "datasets"
pytestmark = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                reason=f"no local dataset mirror at {SHARED} (the project's ../shared/datasets)")


def _stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    x = images.double() / 255
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3), correction=0).tolist()


@pytest.mark.parametrize("load, classes, mean, std", [
    (load_mnist, MNIST_CLASSES, 0.1307, 0.3081),
    (load_fashion_mnist, FASHION_MNIST_CLASSES, 0.2860, 0.3530),
])
def test_mnist_and_fashion_from_the_local_mirror(load, classes, mean: float, std: float, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # recompressed, yet verified by content: no warning
        train = load("train", root=tmp_path, mirrors=[SHARED], download=False)
        test = load("test", root=tmp_path, mirrors=[SHARED], download=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.classes == classes and int(train.labels.max()) == 9 and len(train.labels.unique()) == 10
    (m,), (s,) = _stats(train.images)
    assert round(m, 4) == mean and round(s, 4) == std
    assert not any(tmp_path.iterdir()), "a mirror is read in place, never copied into the cache"


def test_the_shared_copies_are_not_the_official_files_but_hold_their_content() -> None:
    from exercises.kit.datasets import DATASET_FILES

    spec = DATASET_FILES["mnist"]["t10k-labels-idx1-ubyte.gz"]
    copy = SHARED / "mnist" / spec.name
    assert sha256_file(copy) != spec.sha256 and spec.verify_content(copy)


def test_the_mirror_can_be_named_by_the_environment_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, str(SHARED))
    test = load_mnist("test", root=tmp_path, download=False)
    assert test.images.shape == (10000, 1, 28, 28) and test.labels.bincount().tolist()[:2] == [980, 1135]
    monkeypatch.delenv(MIRROR_ENV)
    with pytest.raises(DatasetUnavailable, match="load_embedded_mnist"):
        load_mnist("test", root=tmp_path, download=False)


@pytest.mark.skipif(not (SHARED / "cifar10" / "cifar10-jpeg.tar.gz").is_file(), reason="no CIFAR-10 JPEG copy")
def test_cifar10_jpeg_copy_through_the_image_folder_loader(monkeypatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, str(SHARED))
    archive = find_local_copy("cifar10-jpeg.tar.gz", "cifar10")
    assert archive == SHARED / "cifar10" / "cifar10-jpeg.tar.gz"
    train = load_image_folder(archive, subdir="train")
    test = load_image_folder(archive, subdir="test")
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert train.classes == CIFAR10_CLASSES == test.classes  # alphabetical order is the official label order
    assert train.labels.bincount().tolist() == [5000] * 10 and test.labels.bincount().tolist() == [1000] * 10
    means, _ = _stats(train.images)
    assert all(abs(m - e) < 0.002 for m, e in zip(means, (0.491, 0.482, 0.447), strict=True)), means
