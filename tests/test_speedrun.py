"""The course's CIFAR-10 speed-run (``exercises.kit.speedrun``): its network, its pieces, and small runs on a CPU.

The 94 % figure itself needs a GPU and the full data set: ``benchmarks/gpu.py`` measures it. Here: shapes,
parameter count, the whitening and identity initializations against their definitions, the optimizer's
groups and schedule, test-time augmentation against an independent computation, a tiny run that learns,
determinism, and what the AMP / channels_last / compile options do on a CPU. The CUDA tests at the end run
on a GPU machine (``benchmarks/gpu.py`` runs them) and skip elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from exercises.kit import speedrun as sr
from exercises.kit.training import StepSchedule, random_shift_flip

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
TINY = replace(sr.SPEEDRUN, epochs=3, batch_size=64, widths=(16, 32, 32), whiten_images=256, eval_batch_size=100)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is faster, and steady on a shared machine
    yield
    torch.set_num_threads(threads)


def blobs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uint8 3×32×32 images whose class (0..9) decides their colour and a bright square's corner."""
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]
    colours = torch.rand(10, 3, 1, 1, generator=torch.Generator().manual_seed(99))
    images = colours[labels] * 150 + torch.rand(n, 3, 32, 32, generator=g) * 60
    for i, c in enumerate(labels.tolist()):
        y, x = 4 + 12 * (c % 2), 4 + 4 * (c // 2)
        images[i, :, y:y + 8, x:x + 8] += 45
    return images.clamp(0, 255).to(torch.uint8), labels


def test_the_network_maps_images_to_logits_of_ten_classes() -> None:
    net = sr.speedrun_net()
    assert net(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    assert net(torch.randn(2, 3, 40, 40)).shape == (2, 10)  # global pooling: any size from 16 up
    assert sr.speedrun_net(num_classes=100, in_channels=1)(torch.randn(2, 1, 28, 28)).shape == (2, 100)
    kinds = {type(m) for m in net.modules()}
    assert kinds <= {nn.Sequential, nn.Conv2d, nn.GELU, nn.MaxPool2d, nn.BatchNorm2d, nn.AdaptiveMaxPool2d,
                     nn.Flatten, nn.Linear}, "standard PyTorch modules only"


def test_parameter_count_is_that_of_the_layers() -> None:
    def conv(i: int, o: int, k: int = 3) -> int:
        return i * o * k * k

    widths, stem = (64, 256, 256), 24
    expected = conv(3, stem, 2) + stem  # whitening filters and bias
    for i, o in zip((stem, *widths[:-1]), widths, strict=True):
        expected += conv(i, o) + conv(o, o) + 2 * 2 * o  # two convolutions, two batch norms (scale and bias)
    expected += widths[-1] * 10
    net = sr.speedrun_net()
    assert sum(p.numel() for p in net.parameters()) == expected == 1_972_792
    frozen = conv(3, stem, 2) + 2 * sum(widths)  # whitening filters, batch-norm scales
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == expected - frozen


def test_a_fresh_network_gives_every_class_the_same_chance() -> None:
    net = sr.speedrun_net().eval()
    logits = net(torch.randn(8, 3, 32, 32))
    assert torch.equal(logits, torch.zeros_like(logits))
    assert F.cross_entropy(logits, torch.arange(8)).item() == pytest.approx(math.log(10))


def test_identity_init_makes_each_convolution_pass_its_input_channels_through() -> None:
    net = sr.speedrun_net(widths=(8, 16, 16))
    x = torch.randn(2, 8, 5, 5)
    square = net.block1.conv2  # 8 → 8: the identity map
    torch.testing.assert_close(square(x), x)
    wider = net.block2.conv1  # 8 → 16: the first 8 outputs are the input, the others are not
    out = wider(x)
    torch.testing.assert_close(out[:, :8], x)
    assert not torch.allclose(out[:, 8:], torch.zeros_like(out[:, 8:]))


def test_whitening_gives_uncorrelated_unit_variance_outputs_and_their_negatives() -> None:
    g = torch.Generator().manual_seed(0)
    smooth = F.avg_pool2d(torch.randn(64, 3, 20, 20, generator=g), 3, 1)  # neighbouring pixels correlated
    mixed = torch.einsum("ij,njhw->nihw", torch.tensor([[1.0, 0.5, 0.2], [0.3, 1.0, 0.1], [0.0, 0.4, 1.0]]), smooth)
    images = mixed + 0.3
    conv = nn.Conv2d(3, 24, 2)
    eigenvalues = sr.whiten_(conv, images, eps=1e-9)
    with torch.no_grad():
        out = conv(images)
    first = out[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    torch.testing.assert_close(first.mean(0), torch.zeros(12, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.cov(first.T, correction=0), torch.eye(12, dtype=torch.float64), atol=1e-3,
                               rtol=0)
    torch.testing.assert_close(out[:, 12:], -out[:, :12])
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).double()
    torch.testing.assert_close(eigenvalues.double(), torch.linalg.eigvalsh(torch.cov(patches.T, correction=0)).flip(0),
                               rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="24 filters"):
        sr.whiten_(nn.Conv2d(3, 12, 2), images)


def test_the_groups_hold_every_trainable_parameter_once_with_the_same_decay_per_step() -> None:
    net = sr.speedrun_net()
    groups = sr.param_groups(net)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters() if p.requires_grad) and len(set(ids)) == len(ids)
    by_name = {g["name"]: g for g in groups}
    assert by_name["head"]["params"] == [net.head.weight] and by_name["whitening bias"]["params"] == [net.whiten.bias]
    assert all(p.ndim == 1 for p in by_name["batch-norm biases"]["params"])
    assert by_name["batch-norm biases"]["lr_scale"] == 64 and by_name["head"]["lr_scale"] == pytest.approx(1 / 81)
    for g in groups:  # the fraction of each weight removed per step: lr · lr_scale · weight_decay
        assert g["lr_scale"] * g["weight_decay"] == pytest.approx(sr.SPEEDRUN.weight_decay)


def test_step_schedule_applies_each_groups_lr_scale() -> None:
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr_scale": 0.5}], lr=1.0)
    StepSchedule(optimizer, lambda k: 0.2)
    a.grad, b.grad = torch.ones(1), torch.ones(1)
    optimizer.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.2, 0.1])
    assert (a.item(), b.item()) == pytest.approx((-0.2, -0.1))


def test_the_schedule_warms_up_then_decays_linearly() -> None:
    total = 100
    values = [sr.schedule_factor(s, total) for s in range(total + 5)]
    assert values[0] == pytest.approx(0.2) and values[23] == pytest.approx(1.0) and max(values) == pytest.approx(1.0)
    assert values[total] == pytest.approx(0.07) and values[-1] == pytest.approx(0.07)
    assert all(b > a for a, b in zip(values[:23], values[1:24], strict=True))
    assert all(b < a for a, b in zip(values[23:total], values[24:total + 1], strict=True))
    assert values[11] == pytest.approx(0.2 + 0.8 * 11 / 23)


def test_reflection_shifts_fill_the_border_with_the_image_mirrored() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(200, 1, 1, 1)
    out = random_shift_flip(x, torch.Generator().manual_seed(0), max_shift=1, padding_mode="reflection")
    padded = torch.cat([x[..., :1], x, x[..., -1:]], -1)  # pixel −1 is pixel 0, pixel 4 is pixel 3
    padded = torch.cat([padded[..., :1, :], padded, padded[..., -1:, :]], -2)
    windows = {tuple(padded[0, 0, 1 + dy:5 + dy, 1 + dx:5 + dx].flatten().tolist())
               for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    seen = {tuple(o.flatten().tolist()) for o in out}
    assert seen <= windows and len(seen) == 9
    with pytest.raises(ValueError, match="padding_mode"):
        random_shift_flip(x, torch.Generator(), padding_mode="wrap")


def test_test_time_augmentation_averages_mirrored_and_shifted_views() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5))
    x = torch.randn(6, 3, 8, 8)
    model(x)

    def f(v: torch.Tensor) -> torch.Tensor:
        return model(v).detach()

    def mirror(v: torch.Tensor) -> torch.Tensor:
        return (f(v) + f(torch.flip(v, dims=[3]))) / 2

    index = torch.tensor([1, *range(8), 6])  # reflection padding by one pixel, as an index
    padded = x[:, :, index][:, :, :, index]
    level2 = mirror(x) / 2 + (mirror(padded[:, :, 0:8, 0:8]) + mirror(padded[:, :, 2:10, 2:10])) / 4
    for level, expected in ((0, f(x)), (1, mirror(x)), (2, level2)):
        with_tta, plain = sr.predict_tta(model, x, level=level, batch_size=4)
        torch.testing.assert_close(with_tta, expected)
        torch.testing.assert_close(plain, f(x))
    with pytest.raises(ValueError, match="level"):
        sr.predict_tta(model, x, level=3)


def test_a_tiny_run_learns_and_reports_what_it_did_on_a_cpu() -> None:
    images, labels = blobs(700)
    result = sr.train_speedrun(images[:500], labels[:500], images[500:], labels[500:], config=TINY, device="cpu")
    assert result.train_losses[-1] < result.train_losses[0]
    assert result.accuracy >= 0.6 and result.accuracy_plain >= 0.5  # chance is 0.1
    assert result.device == "cpu" and result.precision == "float32" and not result.compiled
    assert result.seconds > 0 and result.images_per_s == pytest.approx(3 * 7 * 64 / result.seconds)
    weight = result.model.block1.conv1.weight
    assert result.channels_last and weight.is_contiguous(memory_format=torch.channels_last)


def test_the_same_seed_gives_the_same_model_and_another_seed_another() -> None:
    images, labels = blobs(300)
    config = replace(TINY, epochs=1)
    runs = [sr.train_speedrun(images[:200], labels[:200], images[200:], labels[200:], config=config, device="cpu",
                              seed=s) for s in (1, 1, 2)]
    states = [r.model.state_dict() for r in runs]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert runs[0].train_losses == runs[1].train_losses
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_options_on_a_cpu_are_honoured_or_skipped_with_a_note() -> None:
    images, labels = blobs(300)
    config = replace(TINY, epochs=1, compile=True, channels_last=False, amp=True)
    result = sr.train_speedrun(images[:200], labels[:200], images[200:], labels[200:], config=config, device="cpu")
    assert not result.compiled and any("torch.compile skipped on cpu" in n for n in result.notes)
    assert result.precision == "float32"  # amp_dtype(cpu) is None: no autocast on a CPU
    assert not result.channels_last and result.model.block1.conv1.weight.is_contiguous()


def test_the_learners_own_sgd_can_drive_the_recipe() -> None:
    from solutions.optim import SGD

    images, labels = blobs(300)
    config = replace(TINY, epochs=1)
    ours = sr.train_speedrun(images[:200], labels[:200], images[200:], labels[200:], config=config, device="cpu",
                             sgd=SGD)
    torchs = sr.train_speedrun(images[:200], labels[:200], images[200:], labels[200:], config=config, device="cpu")
    for a, b in zip(ours.model.parameters(), torchs.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_training_flops_count_three_times_the_forward_convolutions_and_products() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(8 * 32 * 32, 10))
    forward = 2 * (3 * 9 * 8 * 32 * 32) + 2 * (8 * 32 * 32 * 10)
    assert sr.training_flops_per_image(net) == 3 * forward
    assert 0.6e9 < sr.training_flops_per_image(sr.speedrun_net()) < 0.8e9


@CUDA
def test_on_cuda_the_run_uses_mixed_precision_channels_last_and_the_device() -> None:
    images, labels = blobs(700)
    result = sr.train_speedrun(images[:500], labels[:500], images[500:], labels[500:], config=TINY, device="cuda")
    major, _ = torch.cuda.get_device_capability()
    assert result.precision == ("bfloat16" if major >= 8 else "float16 + GradScaler")
    assert result.device == "cuda" and next(result.model.parameters()).is_cuda and result.accuracy >= 0.6


@CUDA
def test_on_cuda_torch_compile_is_used_when_asked() -> None:
    images, labels = blobs(300)
    config = replace(TINY, epochs=1, compile=True)
    result = sr.train_speedrun(images[:200], labels[:200], images[200:], labels[200:], config=config, device="cuda")
    assert result.compiled and not result.notes
