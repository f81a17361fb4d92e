"""The parsers of the official formats and of image folders, on small files the tests build themselves.

The helpers here (IDX files, CIFAR-10 archives written as Python 2 pickled them) are shared with
test_datasets_download.py. No network, no real data.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from exercises.kit import datasets
from exercises.kit.datasets import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_image_folder,
    parse_idx,
    read_cifar10_archive,
    read_idx,
)
from exercises.kit.download import DatasetUnavailable, DataWarning


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in IDX format: ``00 00 08 <ndim>``, big-endian uint32 sizes, the values."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def idx_gz(array: np.ndarray, level: int = 9) -> bytes:
    return gzip.compress(idx_bytes(array), compresslevel=level, mtime=0)


class Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle wrote CIFAR-10's batches: protocol 2, byte strings as
    ``BINSTRING`` opcodes and NumPy arrays rebuilt by ``numpy.core.multiarray._reconstruct``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256
                   else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj, name=None) -> None:  # noqa: ANN001
        if obj is np.empty(0).__reduce__()[0]:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def cifar_batch(data: np.ndarray, labels: list[int], name: bytes) -> bytes:
    return py2_pickle({b"batch_label": name, b"labels": labels, b"data": data,
                       b"filenames": [b"img_%d.png" % i for i in range(len(labels))]})


def cifar_archive(path: Path, per_batch: int = 4, test: int = 3, seed: int = 0, level: int = 9,
                  members: dict[str, bytes] | None = None) -> dict[str, object]:
    """A small ``cifar-10-python.tar.gz`` in the official layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    content: dict[str, bytes] = {}
    arrays: dict[str, object] = {}
    for i in range(1, 6):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        content[f"data_batch_{i}"] = cifar_batch(data, labels, b"training batch %d of 5" % i)
        arrays[f"data_batch_{i}"] = (data, labels)
    data = rng.integers(0, 256, (test, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, test).tolist()
    content["test_batch"] = cifar_batch(data, labels, b"testing batch 1 of 1")
    arrays["test_batch"] = (data, labels)
    content["batches.meta"] = py2_pickle({b"num_cases_per_batch": per_batch, b"num_vis": 3072,
                                          b"label_names": [c.encode() for c in CIFAR10_CLASSES]})
    content["readme.html"] = b"<html>CIFAR-10</html>"
    content.update(members or {})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data_bytes in content.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data_bytes)
            tar.addfile(info, io.BytesIO(data_bytes))
    path.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=level, mtime=0))
    arrays["members"] = content
    return arrays


# ----------------------------------------------------------------------------- IDX


def test_idx_round_trip_gzipped_or_not(tmp_path: Path) -> None:
    images = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    (tmp_path / "a.gz").write_bytes(idx_gz(images))
    (tmp_path / "a").write_bytes(idx_bytes(images))
    for name in ("a.gz", "a"):
        got = read_idx(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (7, 28, 28) and np.array_equal(got, images)
    labels = parse_idx(idx_bytes(np.arange(5, dtype=np.uint8)))
    assert labels.ndim == 1 and np.array_equal(labels, np.arange(5))


def test_idx_big_endian_types_are_read_in_native_order() -> None:
    values = np.array([[1, -2], [300000, 4]], dtype=">i4")
    data = bytes([0, 0, 0x0C, 2]) + struct.pack(">2I", 2, 2) + values.tobytes()
    got = parse_idx(data)
    assert got.dtype == np.dtype("int32") and got.tolist() == [[1, -2], [300000, 4]]


@pytest.mark.parametrize("data, words", [
    (b"PK\x03\x04 not idx", "not an IDX file"),
    (b"<html>403 Forbidden</html>", "not an IDX file"),
    (bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 28, 28) + bytes(100), "truncated or corrupted"),
    (bytes([0, 0, 8, 3]) + struct.pack(">2I", 2, 28), "header is incomplete"),
])
def test_bad_idx_data_is_refused_with_a_reason(data: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_idx(data, "x")


# ----------------------------------------------------------------------------- CIFAR-10 python archive


def test_cifar_archive_in_the_official_format_is_read_exactly(tmp_path: Path) -> None:
    written = cifar_archive(tmp_path / "cifar-10-python.tar.gz", per_batch=4, test=3)
    train = read_cifar10_archive(tmp_path / "cifar-10-python.tar.gz", "train")
    test = read_cifar10_archive(tmp_path / "cifar-10-python.tar.gz", "test")
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (3, 3, 32, 32) and train.labels.dtype == torch.int64
    assert train.classes == CIFAR10_CLASSES
    data, labels = written["data_batch_2"]
    # Row layout: 1024 red values, 1024 green, 1024 blue, each row-major over 32×32.
    n, c, r, w = 1, 2, 5, 7
    assert int(train.images[4 + n, c, r, w]) == int(data[n, c * 1024 + r * 32 + w])
    assert train.labels[4:8].tolist() == labels
    test_data, test_labels = written["test_batch"]
    assert np.array_equal(test.images.reshape(3, -1).numpy(), test_data) and test.labels.tolist() == test_labels


def test_cifar_reader_refuses_a_pickle_that_would_run_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2)
    cifar_archive(tmp_path / "bad.tar.gz", members={"test_batch": evil})
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (__builtin__|builtins)\.print"):
        read_cifar10_archive(tmp_path / "bad.tar.gz", "test")


def test_cifar_reader_names_a_missing_batch(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        data = py2_pickle({b"label_names": [c.encode() for c in CIFAR10_CLASSES]})
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "partial.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="data_batch_1 is missing"):
        read_cifar10_archive(tmp_path / "partial.tar.gz", "train")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        read_cifar10_archive(tmp_path / "partial.tar.gz", "val")


def test_a_repacked_cifar_archive_is_accepted_by_content_and_a_different_one_is_not(
    tmp_path: Path, monkeypatch
) -> None:
    """A local copy whose bytes differ from the official archive is used only if every member is the official file."""
    original = cifar_archive(tmp_path / "original.tar.gz", level=9)
    official = {name: hashlib.md5(data).hexdigest() for name, data in original["members"].items()
                if name != "readme.html"}
    monkeypatch.setattr(datasets, "CIFAR10_MEMBER_MD5", official)
    spec = datasets.DATASET_FILES["cifar10"]["cifar-10-python.tar.gz"]
    monkeypatch.setitem(datasets.DATASET_FILES["cifar10"], spec.name,
                        dataclasses.replace(spec, sha256=hashlib.sha256((tmp_path / "original.tar.gz").read_bytes())
                                            .hexdigest()))
    mirror = tmp_path / "mirror" / "cifar10"
    mirror.mkdir(parents=True)
    cifar_archive(mirror / "cifar-10-python.tar.gz", level=1)  # same members, compressed differently
    assert (mirror / "cifar-10-python.tar.gz").read_bytes() != (tmp_path / "original.tar.gz").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = load_cifar10("test", root=tmp_path / "cache", mirrors=[tmp_path / "mirror"], download=False)
    assert got.images.shape == (3, 3, 32, 32)
    cifar_archive(mirror / "cifar-10-python.tar.gz", seed=1)  # other images: not the official content
    with pytest.warns(DataWarning, match="ignoring .*cifar-10-python.tar.gz"), pytest.raises(DatasetUnavailable):
        load_cifar10("test", root=tmp_path / "cache", mirrors=[tmp_path / "mirror"], download=False)


# ----------------------------------------------------------------------------- folders of class folders


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _tree(rng: np.random.Generator, shape: tuple[int, ...] = (6, 5, 3)) -> dict[str, np.ndarray]:
    return {f"{cls}/{i:02d}.png": rng.integers(0, 256, shape, dtype=np.uint8)
            for cls in ("zebra", "apple", "mango") for i in range(2 + len(cls) % 3)}


def test_image_folder_reads_classes_sorted_and_pixels_exactly(tmp_path: Path) -> None:
    files = _tree(np.random.default_rng(2))
    for rel, array in files.items():
        (tmp_path / "train" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "train" / rel).write_bytes(_png(array))
    (tmp_path / "train" / "apple" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "apple" / "._00.png").write_bytes(b"macOS resource fork")
    data = load_image_folder(tmp_path, subdir="train")
    assert data.classes == ("apple", "mango", "zebra")
    assert data.images.shape == (len(files), 3, 6, 5) and data.images.dtype == torch.uint8
    order = sorted(files)
    for i, rel in enumerate(order):
        assert data.classes[int(data.labels[i])] == rel.split("/")[0]
        assert np.array_equal(data.images[i].permute(1, 2, 0).numpy(), files[rel])


def test_image_folder_from_a_tar_equals_the_folder(tmp_path: Path) -> None:
    files = _tree(np.random.default_rng(3), shape=(4, 4))  # grayscale
    for rel, array in files.items():
        (tmp_path / "tree" / "train" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / "train" / rel).write_bytes(_png(array))
    with tarfile.open(tmp_path / "tree.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "tree" / "train", arcname="./train")
    from_dir = load_image_folder(tmp_path / "tree" / "train")
    from_tar = load_image_folder(tmp_path / "tree.tar.gz", subdir="train")
    assert from_dir.images.shape == (len(files), 1, 4, 4)
    assert torch.equal(from_dir.images, from_tar.images) and torch.equal(from_dir.labels, from_tar.labels)
    assert from_dir.classes == from_tar.classes
    rgb = load_image_folder(tmp_path / "tree.tar.gz", subdir="train", channels=3)
    assert rgb.images.shape == (len(files), 3, 4, 4) and torch.equal(rgb.images[:, 0], from_dir.images[:, 0])


def test_image_folder_sizes_must_agree_unless_resized(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(_png(np.zeros((4, 6, 3), np.uint8)))
    (tmp_path / "b" / "y.png").write_bytes(_png(np.zeros((5, 6, 3), np.uint8)))
    with pytest.raises(ValueError, match=r"differ in size: a/x.png is 6×4, b/y.png is 6×5; pass size=\(H, W\)"):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=(8, 8)).images.shape == (2, 3, 8, 8)


def test_image_folder_says_what_it_expected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no images found"):
        load_image_folder(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="neither a folder nor a tar"):
        load_image_folder(tmp_path / "file.txt")


# ----------------------------------------------------------------------------- the one-pass tar reader


def _reference_tar_files(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path, "r:*") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_reader_agrees_with_tarfile(tmp_path: Path, fmt: int, mode: str) -> None:
    long_dir = "d" * 60 + "/" + "e" * 60  # over 100 characters with the file name: prefix field or long name
    entries = {"a/1.png": b"one", "a/2.png": bytes(1000), f"{long_dir}/3.png": b"three" * 300, "b/empty.png": b""}
    if fmt != tarfile.USTAR_FORMAT:
        entries["c/" + "x" * 150 + ".png"] = b"long name"  # beyond what a ustar header can hold
        entries["c/ünïcødé.png"] = b"unicode"
    path = tmp_path / "t.tar"
    with tarfile.open(path, mode, format=fmt,
                      pax_headers={"comment": "global"} if fmt == tarfile.PAX_FORMAT else None) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("a/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "1.png"
        tar.addfile(link)
    got = datasets.tar_files(path)
    assert got == _reference_tar_files(path)
    assert datasets._ustar_files(path, lambda name: True) == got  # the fast path read it, no fallback
    assert dict(got) == entries
    assert datasets.tar_files(path, keep=lambda name: name.startswith("a/")) == [("a/1.png", b"one"),
                                                                                 ("a/2.png", bytes(1000))]


def test_a_truncated_tar_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "t.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("a/1.png")
        info.size = 5000
        tar.addfile(info, io.BytesIO(bytes(5000)))
    path.write_bytes(path.read_bytes()[:2048])
    with pytest.raises(tarfile.TarError):
        datasets.tar_files(path)
