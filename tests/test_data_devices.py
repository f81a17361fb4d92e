"""The chapter 1 reference on every device: results on the input's device, equal to the CPU's.

On a machine without a GPU only the CPU runs and the other devices are skipped; on a CUDA or MPS
machine these prove that ``random_crop`` and ``random_hflip`` (and the rest) run there as on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from exercises.checks.data import _expect_flips, _expect_windows
from solutions import data

DEVICES = ["cpu",
           pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
           pytest.param("mps", marks=pytest.mark.skipif(not (getattr(torch.backends, "mps", None)
                                                             and torch.backends.mps.is_available()),
                                                        reason="no Apple GPU"))]


def _images(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(dtype) + 0.1


@pytest.mark.parametrize("device", DEVICES)
def test_augmentations_on_the_device_equal_the_cpu_for_the_same_generator(device: str) -> None:
    x = _images()
    for function, arg in ((data.random_crop, 3), (data.random_hflip, 0.5)):
        on_cpu = function(x, arg, torch.Generator().manual_seed(5))
        on_device = function(x.to(device), arg, torch.Generator().manual_seed(5))
        assert on_device.device.type == device and on_device.dtype == x.dtype
        assert torch.equal(on_device.cpu(), on_cpu), function.__name__


@pytest.mark.parametrize("device", DEVICES)
def test_augmentations_accept_a_generator_on_the_device(device: str) -> None:
    x = _images().to(device)
    generator = torch.Generator(device=device).manual_seed(1)
    crops = data.random_crop(x, 2, generator)
    flips = data.random_hflip(x, 0.5, generator)
    assert crops.device.type == flips.device.type == device
    _expect_windows(crops.cpu(), x.cpu(), 2)
    _expect_flips(flips.cpu(), x.cpu())


@pytest.mark.parametrize("device", DEVICES)
def test_the_other_exercises_keep_the_device(device: str) -> None:
    x = _images().to(device)
    labels = torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(2)).to(device)
    mean, std = data.channel_stats(x)
    assert mean.device.type == std.device.type == device
    expected = x.cpu().double()
    torch.testing.assert_close(mean.cpu().double(), expected.mean(dim=(0, 2, 3)), rtol=1e-6, atol=0)
    torch.testing.assert_close(std.cpu().double(), expected.std(dim=(0, 2, 3), correction=0), rtol=1e-6, atol=0)
    assert data.normalize(x, mean, std).device.type == device
    train_idx, val_idx = data.stratified_split(labels, 0.2, seed=0)
    assert train_idx.device.type == val_idx.device.type == device
    assert torch.equal(val_idx.cpu(), data.stratified_split(labels.cpu(), 0.2, seed=0)[1])
    assert data.one_hot(labels, 4).device.type == device
    batches = data.minibatch_indices(10, 4, True, torch.Generator(device=device).manual_seed(0))
    assert sorted(torch.cat(batches).cpu().tolist()) == list(range(10))
