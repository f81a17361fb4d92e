"""The course's CIFAR-10 speed-run: a network and a recipe built to reach 94 % test accuracy in seconds on a GPU.

Chapter 4's section "The speed-run: 94 % on CIFAR-10 in seconds" explains every layer and every number.
None of it is an exercise. It puts into practice what the fastest public CIFAR-10 recipes found (D. Page's
"How to train your ResNet" series, tysam-code's hlb-CIFAR10, K. Jordan's airbench and its paper,
arXiv:2404.00498), written for this course from their descriptions; none of their code is used:

* ``speedrun_net``: only standard PyTorch modules. A 2×2 convolution whose filters **whiten** the image's
  2×2 patches (set from the data by ``whiten_``, then frozen), three blocks of conv 3×3 → max-pool →
  batch norm → GELU → conv 3×3 → batch norm → GELU (64, 256, 256 channels), a global max-pool and one
  linear layer: about 2 million parameters;
* ``identity_init_``: each block's convolutions start as the identity on their input channels, so a
  fresh network passes its input through and learns corrections to it;
* ``param_groups`` and ``schedule_factor``: Nesterov SGD with a linear warmup and decay, a faster learning
  rate for the batch-norm biases, a slower one for the last layer;
* ``train_speedrun``: data on the device with flips and shifts done there (``TensorLoader``,
  ``random_shift_flip``), label smoothing, mixed precision as ``amp_dtype`` chooses (bfloat16 on Ampere
  and newer, float16 with a ``GradScaler`` on a T4, none on a CPU), ``channels_last``, optionally
  ``torch.compile`` (on CUDA only), and test-time augmentation (``predict_tta``), timed as a whole;
* ``training_flops_per_image``: what one training image costs, to compare GPUs by their peak FLOP rates.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from exercises.kit.datasets import CIFAR10_MEAN, CIFAR10_STD
from exercises.kit.devices import amp_dtype, get_device, seed_everything
from exercises.kit.training import StepSchedule, TensorLoader, random_shift_flip


@dataclass(frozen=True)
class SpeedrunConfig:
    """Every number of the recipe. ``lr`` is the peak learning rate for the batch's *mean* loss;
    ``weight_decay`` is PyTorch SGD's (added to the gradient as ``weight_decay · p``, so the decay per
    step is ``lr · weight_decay · p``). ``bn_momentum`` follows PyTorch: the weight of the new batch."""

    epochs: int = 18
    batch_size: int = 1024
    widths: tuple[int, int, int] = (64, 256, 256)
    lr: float = 1.5
    momentum: float = 0.85
    weight_decay: float = 1.33e-3
    bn_bias_lr_scale: float = 64.0  # batch-norm biases learn 64× faster, with the same decay per step
    head_lr_scale: float = 1 / 81  # the last layer learns 81× slower (as if its output were divided by 9)
    label_smoothing: float = 0.2
    max_shift: int = 2
    flip: bool = True
    whiten_images: int = 5000
    whiten_eps: float = 5e-4
    whiten_bias_epochs: int = 3  # the whitening layer's bias learns for this many epochs, then stops
    bn_momentum: float = 0.4
    lr_start: float = 0.2  # of the peak, at the first step
    lr_peak_at: float = 0.23  # of all steps
    lr_end: float = 0.07  # of the peak, at the last step
    tta: int = 2  # test-time augmentation: 0 none, 1 mirror, 2 mirror and 1-pixel shifts
    eval_batch_size: int = 2000
    channels_last: bool = True
    amp: bool = True
    compile: bool = False


SPEEDRUN = SpeedrunConfig()


# ----------------------------------------------------------------------------- the network


def conv_block(in_channels: int, out_channels: int, bn_momentum: float = 0.4) -> nn.Sequential:
    """conv 3×3 → max-pool 2×2 → batch norm → GELU → conv 3×3 → batch norm → GELU:
    ``N×in_channels×H×W`` → ``N×out_channels×⌊H/2⌋×⌊W/2⌋``. Pooling right after the first convolution
    makes the second one, and both normalizations, work on a quarter of the positions."""
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        pool=nn.MaxPool2d(2),
        norm1=nn.BatchNorm2d(out_channels, momentum=bn_momentum),
        act1=nn.GELU(),
        conv2=nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        norm2=nn.BatchNorm2d(out_channels, momentum=bn_momentum),
        act2=nn.GELU(),
    ))


def speedrun_net(num_classes: int = 10, widths: tuple[int, ...] = (64, 256, 256), in_channels: int = 3,
                 bn_momentum: float = 0.4) -> nn.Sequential:
    """The speed-run network: ``N×in_channels×H×W`` images (H, W ≥ 16) → ``N×num_classes`` logits.

    ``whiten`` (a 2×2 convolution, ``2·in_channels·4`` filters, frozen weights; set them with ``whiten_``)
    → GELU → one ``conv_block`` per width → global max-pool → flatten → ``head`` (linear, no bias, zero at
    first: every class starts equally likely). Batch norms keep their scale at 1 (frozen) and learn only
    their bias; each block's convolutions start as the identity (``identity_init_``). 32×32 images are
    31×31 after ``whiten``, then 15, 7 and 3 pixels wide after the blocks.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        whiten=nn.Conv2d(in_channels, 2 * in_channels * 4, kernel_size=2, bias=True), act=nn.GELU())
    inputs = (2 * in_channels * 4, *widths[:-1])
    for i, (cin, width) in enumerate(zip(inputs, widths, strict=True), start=1):
        layers[f"block{i}"] = conv_block(cin, width, bn_momentum)
    layers.update(pool=nn.AdaptiveMaxPool2d(1), flatten=nn.Flatten(),
                  head=nn.Linear(widths[-1], num_classes, bias=False))
    net = nn.Sequential(layers)
    net.whiten.weight.requires_grad_(False)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.requires_grad_(False)
    nn.init.zeros_(net.head.weight)
    identity_init_(net)
    return net


@torch.no_grad()
def identity_init_(net: nn.Module) -> None:
    """Make the first ``in_channels`` filters of every 3×3 convolution the identity (``nn.init.dirac_``:
    a 1 at the centre of its own input channel, 0 elsewhere); the other filters keep their random
    start. A square convolution thus starts as the identity map."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            nn.init.dirac_(module.weight[:min(module.in_channels, module.out_channels)])


@torch.no_grad()
def whiten_(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4, chunk: int = 500) -> torch.Tensor:
    """Set ``conv``'s filters so that it **whitens** the patches of ``images``, and return the patches'
    covariance's eigenvalues (largest first).

    ``images``: float ``N×C×H×W`` (normalized as the network sees them). With ``k = C·kh·kw`` numbers per
    patch, mean ``μ`` and covariance ``Σ = V diag(λ) Vᵀ``, filter ``i`` is ``v_i / sqrt(λ_i + eps)`` and
    filter ``k + i`` its negative (so that a GELU after it keeps both signs); the biases are ``∓ filter·μ``.
    The first ``k`` outputs are then uncorrelated with unit variance over the patches (up to ``eps``):
    what a smooth image repeats from pixel to pixel is removed, what is left is the detail. ``conv`` must
    have ``2k`` output channels and no padding.
    """
    out_channels, c, kh, kw = conv.weight.shape
    k = c * kh * kw
    if out_channels != 2 * k or images.ndim != 4 or images.shape[1] != c:
        raise ValueError(f"whiten_ needs a convolution with 2·C·kh·kw = {2 * k} filters and N×{c}×H×W images; "
                         f"got {out_channels} filters and images of shape {tuple(images.shape)}")
    total = torch.zeros(k, dtype=torch.float64, device=images.device)
    products = torch.zeros(k, k, dtype=torch.float64, device=images.device)
    count = 0
    for part in images.split(chunk):
        patches = part.unfold(2, kh, 1).unfold(3, kw, 1)  # N×C×H'×W'×kh×kw
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, k).double()  # (c, i, j) order, as conv weights
        total += patches.sum(0)
        products += patches.T @ patches
        count += len(patches)
    mean = total / count
    covariance = products / count - torch.outer(mean, mean)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]  # k×k, one filter a row
    conv.weight.copy_(torch.cat([filters, -filters]).reshape(2 * k, c, kh, kw).to(conv.weight))
    if conv.bias is not None:
        shift = filters @ mean
        conv.bias.copy_(torch.cat([-shift, shift]).to(conv.bias))
    return eigenvalues.float()


# ----------------------------------------------------------------------------- the optimizer and its schedule


def param_groups(net: nn.Module, config: SpeedrunConfig = SPEEDRUN) -> list[dict[str, Any]]:
    """The trainable parameters of a ``speedrun_net`` in four groups, each with an ``lr_scale`` (read by
    ``StepSchedule``) and a ``weight_decay`` chosen so that every weight decays by the same fraction
    ``lr · weight_decay`` per step: convolution weights (scale 1), batch-norm biases
    (``bn_bias_lr_scale``), the head (``head_lr_scale``), and the whitening bias (1, set to 0 after
    ``whiten_bias_epochs``). Frozen parameters (whitening filters, batch-norm scales) are left out."""
    named = {name: p for name, p in net.named_parameters() if p.requires_grad}
    wd = config.weight_decay
    groups = [
        {"name": "whitening bias", "keys": [n for n in named if n.startswith("whiten.")], "lr_scale": 1.0,
         "weight_decay": wd},
        {"name": "batch-norm biases", "keys": [n for n in named if ".norm" in n], "lr_scale": config.bn_bias_lr_scale,
         "weight_decay": wd / config.bn_bias_lr_scale},
        {"name": "head", "keys": [n for n in named if n.startswith("head.")], "lr_scale": config.head_lr_scale,
         "weight_decay": wd / config.head_lr_scale},
    ]
    taken = {n for g in groups for n in g["keys"]}
    groups.append({"name": "convolutions", "keys": [n for n in named if n not in taken], "lr_scale": 1.0,
                   "weight_decay": wd})
    return [{"params": [named[n] for n in g.pop("keys")], **g} for g in groups]


def schedule_factor(step: int, total_steps: int, start: float = 0.2, peak_at: float = 0.23,
                    end: float = 0.07) -> float:
    """The learning rate at ``step`` as a fraction of the peak: linear from ``start`` at step 0 to 1 at
    step ``round(peak_at · total_steps)``, then linear down to ``end`` at ``total_steps`` (and after)."""
    peak = max(1, round(peak_at * total_steps))
    if step < peak:
        return start + (1.0 - start) * step / peak
    return 1.0 + (end - 1.0) * min(1.0, (step - peak) / max(1, total_steps - peak))


# ----------------------------------------------------------------------------- test-time augmentation


def predict_tta(model: nn.Module, images: torch.Tensor, level: int = 2, batch_size: int = 2000,
                precision: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits with test-time augmentation, plain logits)``, float32 ``N×K``, for normalized float
    ``images`` ``N×C×H×W`` (on the model's device), in evaluation mode without gradients.

    Level 0: the plain logits. Level 1: the mean of the logits of each image and of its mirror image.
    Level 2: half of level 1's, plus half of the mean of level 1's for the image shifted by one pixel
    (up-left, and down-right; borders mirrored). ``precision``: the autocast dtype, or ``None``.
    """
    if level not in (0, 1, 2):
        raise ValueError(f"level must be 0, 1 or 2, got {level!r}")
    model.eval()
    device_type = images.device.type
    with_tta, plain = [], []
    with torch.no_grad(), torch.autocast(device_type, dtype=precision or torch.float32, enabled=precision is not None):
        def mirrored(x: torch.Tensor) -> torch.Tensor:
            return 0.5 * (model(x).float() + model(x.flip(-1)).float())

        for x in images.split(batch_size):
            logits = model(x).float()
            plain.append(logits)
            if level == 0:
                with_tta.append(logits)
                continue
            both = 0.5 * (logits + model(x.flip(-1)).float())
            if level == 2:
                h, w = x.shape[-2:]
                padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
                shifted = 0.5 * (mirrored(padded[..., :h, :w]) + mirrored(padded[..., 2:, 2:]))
                both = 0.5 * both + 0.5 * shifted
            with_tta.append(both)
    return torch.cat(with_tta), torch.cat(plain)


# ----------------------------------------------------------------------------- the whole run


@dataclass
class SpeedrunResult:
    """What ``train_speedrun`` measured. ``seconds``: wall time from the data in memory to the test
    accuracy, both included (GPU work waited for); ``images_per_s``: training images (every epoch)
    per second of that time."""

    model: nn.Module
    accuracy: float  # with test-time augmentation (``config.tta``)
    accuracy_plain: float  # the same model without it
    seconds: float
    images_per_s: float
    train_losses: list[float]
    device: str
    precision: str  # "bfloat16", "float16 + GradScaler" or "float32"
    channels_last: bool
    compiled: bool
    config: SpeedrunConfig
    notes: list[str] = field(default_factory=list)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_speedrun(train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                   test_labels: torch.Tensor, *, config: SpeedrunConfig = SPEEDRUN,
                   device: torch.device | str | None = None, seed: int = 0,
                   sgd: Callable[..., torch.optim.Optimizer] = torch.optim.SGD,
                   progress: bool = False) -> SpeedrunResult:
    """Train a ``speedrun_net`` on ``train_images`` (``uint8`` ``N×3×H×W``) and ``train_labels`` and measure
    its test accuracy on ``test_images``/``test_labels``, everything on ``device`` (default: the best).

    The recipe (``config``): whitening filters from the first ``whiten_images`` training images;
    ``epochs`` epochs of mini-batches of ``batch_size`` (shuffled, the last partial batch dropped),
    mirrored with probability ½ and shifted by up to ``max_shift`` pixels (borders mirrored) on the
    device; cross-entropy with ``label_smoothing``; ``sgd`` (``torch.optim.SGD`` or your own) with
    Nesterov momentum over ``param_groups``, the learning rate ``lr · lr_scale · schedule_factor(step)``;
    mixed precision from ``amp_dtype(device)`` when ``amp``; ``channels_last``; ``torch.compile`` when
    ``compile`` and the device is CUDA (skipped, with a note, elsewhere). Same seed, same device and
    library versions: the same result on a CPU (cuDNN's autotuner makes GPU runs differ in the last bits).
    """
    from tqdm.auto import tqdm

    device = get_device() if device is None else torch.device(device)
    notes: list[str] = []
    seed_everything(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # time the convolution algorithms once, then use the fastest
    low = amp_dtype(device) if config.amp else None
    _sync(device)
    start = time.perf_counter()

    def shift_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return random_shift_flip(x, g, max_shift=config.max_shift, flip=config.flip, padding_mode="reflection")

    train = TensorLoader(train_images, train_labels, min(config.batch_size, len(train_labels)), device=device,
                         shuffle=True, generator=torch.Generator().manual_seed(seed), augment=shift_flip,
                         mean=CIFAR10_MEAN, std=CIFAR10_STD, channels_last=config.channels_last, drop_last=True)
    normalize = TensorLoader(test_images, test_labels, len(test_labels), device=device, mean=CIFAR10_MEAN,
                             std=CIFAR10_STD, channels_last=config.channels_last)
    net = speedrun_net(10, config.widths, train_images.shape[1], config.bn_momentum).to(device)
    first = train.images[:config.whiten_images].float() / 255
    whiten_(net.whiten, (first - train.mean) / train.std, eps=config.whiten_eps)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last)
    groups = param_groups(net, config)
    optimizer = sgd(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    total_steps = config.epochs * len(train)
    StepSchedule(optimizer, lambda k: config.lr * schedule_factor(k, total_steps, config.lr_start, config.lr_peak_at,
                                                                  config.lr_end))
    scaler = torch.amp.GradScaler(device.type, enabled=low == torch.float16)
    model: nn.Module = net
    compiled = False
    if config.compile:
        if device.type == "cuda":
            model, compiled = torch.compile(net), True
        else:
            notes.append(f"torch.compile skipped on {device.type}: the course compiles on CUDA only")
    losses = []
    for epoch in tqdm(range(config.epochs), desc="speed-run", disable=not progress):
        if epoch == config.whiten_bias_epochs:
            groups_by_name = {g["name"]: g for g in optimizer.param_groups}
            groups_by_name["whitening bias"]["lr_scale"] = 0.0
        model.train()
        batch_losses = []
        for x, y in train:
            with torch.autocast(device.type, dtype=low or torch.float32, enabled=low is not None):
                loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            batch_losses.append(loss.detach().float())
        losses.append(torch.stack(batch_losses).mean().item())
    test_x, test_y = next(iter(normalize))
    with_tta, plain = predict_tta(model, test_x, config.tta, config.eval_batch_size, low)
    accuracy = (with_tta.argmax(1) == test_y).float().mean().item()
    accuracy_plain = (plain.argmax(1) == test_y).float().mean().item()
    _sync(device)
    seconds = time.perf_counter() - start
    precision = {torch.bfloat16: "bfloat16", torch.float16: "float16 + GradScaler"}.get(low, "float32")
    return SpeedrunResult(net, accuracy, accuracy_plain, seconds, total_steps * train.batch_size / seconds, losses,
                          device.type, precision, config.channels_last, compiled, config, notes)


def warm_up(config: SpeedrunConfig = SPEEDRUN, device: torch.device | str | None = None,
            image_size: int = 32) -> float:
    """A short run on random images of the real shapes (two training batches, one evaluation batch),
    untimed by the caller's clock: cuDNN's autotuner and ``torch.compile`` do their one-time work here,
    as ``airbench``'s own warm-up does before it is timed. Returns the seconds it took."""
    device = get_device() if device is None else torch.device(device)
    g = torch.Generator().manual_seed(0)
    n, m = 2 * config.batch_size, config.eval_batch_size
    images = torch.randint(0, 256, (n + m, 3, image_size, image_size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n + m,), generator=g)
    short = replace(config, epochs=1, whiten_images=min(config.whiten_images, n))
    return train_speedrun(images[:n], labels[:n], images[n:], labels[n:], config=short, device=device).seconds


def training_flops_per_image(model: nn.Module, shape: tuple[int, ...] = (3, 32, 32)) -> float:
    """Floating-point operations to train on one image: forward + backward, the backward counted as
    twice the forward (one product for the inputs' gradient, one for the weights'), by
    ``torch.utils.flop_counter`` (convolutions and matrix products; element-wise work is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    probe = copy.deepcopy(model).eval()  # the caller's model keeps its mode and its statistics
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        probe(torch.zeros(1, *shape, device=next(probe.parameters()).device))
    return 3.0 * counter.get_total_flops()
