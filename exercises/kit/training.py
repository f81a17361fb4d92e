"""Training helpers: what chapters 4 and 5 need around your exercises to train the way professionals do.

None of this is an exercise. Chapter 4's helpers call yours (``train_one_epoch``, ``evaluate``, the
optimizers, ``warmup_cosine_lr``), which ``fit`` takes as arguments:

* ``TensorLoader``: batches from tensors that already live on the device (the GPU, if there is
  one), converted, augmented and normalized there: no worker processes, no copy per batch;
* ``random_shift_flip``: that augmentation, done on the device with one ``grid_sample`` call;
* ``StepSchedule``: sets the learning rate before every optimizer step from a function of the step;
* ``fit``: the epochs loop tying it together, saving a checkpoint after every epoch
  (``exercises.kit.checkpoints``) and resuming from it when there is one;
* ``CPU_BUDGET`` and ``embedded_split``: the fixed CPU training budget ``build_cnn`` is graded with.

Chapter 5 evaluates a classifier, so it needs one: with no chapter 4 checkpoint at hand it trains
``small_cnn`` with ``train_quickly`` on a ``three_way_split`` of the embedded digits in seconds on a CPU.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from exercises.kit.checkpoints import load_checkpoint, save_checkpoint
from exercises.kit.datasets import MNIST_MEAN, MNIST_STD
from exercises.kit.figures import LivePlot, progress_bar


@dataclass(frozen=True)
class Budget:
    """A fixed training recipe: how ``build_cnn`` is graded, and what the notebook's fast mode runs."""

    epochs: int = 4
    batch_size: int = 64
    peak_lr: float = 3e-3  # AdamW, default betas and weight decay
    warmup_fraction: float = 0.125  # of all steps: half of the first epoch
    train_size: int = 4000
    val_size: int = 1000
    threads: int = 1


CPU_BUDGET = Budget()


def embedded_split(val_size: int = 1000,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The embedded 5,000-digit MNIST subset split at random into ``5000 − val_size`` training and
    ``val_size`` validation digits: ``(train_images, train_labels, val_images, val_labels)``, images
    ``uint8`` ``N×1×28×28``, labels ``int64``. Same ``seed``, same split."""
    from exercises.kit.datasets import load_embedded_mnist

    data = load_embedded_mnist()
    order = torch.randperm(len(data.labels), generator=torch.Generator().manual_seed(seed))
    val, train = order[:val_size], order[val_size:]
    return data.images[train], data.labels[train], data.images[val], data.labels[val]


# ----------------------------------------------------------------------------- data on the device


def random_shift_flip(images: torch.Tensor, generator: torch.Generator, max_shift: int = 2,
                      flip: bool = False, padding_mode: str = "zeros") -> torch.Tensor:
    """Each image of ``images`` (float ``N×C×H×W``, on any device) moved by a random whole number of
    pixels in ``−max_shift..max_shift`` along each axis (what leaves the frame is lost), and mirrored
    left-right with probability ½ when ``flip``. What enters the frame is 0 (``padding_mode="zeros"``),
    or the image's own border mirrored (``"reflection"``: pixel ``−1`` is pixel ``0``, ``−2`` is ``1``),
    which keeps a photo's statistics. Random numbers come from ``generator`` (a CPU generator, so its
    state is easy to save), the work is one ``affine_grid`` + ``grid_sample`` on the images' device: no
    Python loop over images."""
    if padding_mode not in ("zeros", "reflection"):
        raise ValueError(f"padding_mode must be 'zeros' or 'reflection', got {padding_mode!r}")
    n, _, h, w = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).to(images.dtype)
    scale_x = torch.ones(n, dtype=images.dtype)
    if flip:
        scale_x = torch.where(torch.rand(n, generator=generator) < 0.5, -scale_x, scale_x)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = scale_x, 1.0
    theta[:, 0, 2], theta[:, 1, 2] = shifts[:, 0] * 2 / w, shifts[:, 1] * 2 / h  # a pixel is 2/size wide
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode=padding_mode, align_corners=False)


class TensorLoader:
    """Mini-batches ``(x, y)`` from whole-dataset tensors kept on ``device``.

    ``images`` (``uint8`` 0..255, or float in [0, 1]) ``N×C×H×W`` and ``labels`` ``N`` are moved to
    ``device`` once. Each batch is then indexed there, converted to float in [0, 1], augmented
    (``augment(x, generator)``, e.g. ``random_shift_flip``), normalized with per-channel ``mean`` and
    ``std``, and put in ``channels_last`` memory order if asked. ``shuffle`` draws a new order every
    epoch from ``generator``. ``len(loader)`` is the number of batches; ``state_dict()`` holds the
    generator's state, for checkpoints.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *,
                 device: torch.device | str = "cpu", shuffle: bool = False, generator: torch.Generator | None = None,
                 augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                 channels_last: bool = False, drop_last: bool = False, dtype: torch.dtype = torch.float32) -> None:
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"images must be N×C×H×W and labels N; got {tuple(images.shape)} "
                             f"and {tuple(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.augment, self.channels_last, self.dtype = augment, channels_last, dtype
        c = images.shape[1]
        self.mean = None if mean is None else torch.tensor(mean, dtype=dtype, device=self.device).view(1, c, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=dtype, device=self.device).view(1, c, 1, 1)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.device)
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[index]
            x = x.to(self.dtype) / 255 if x.dtype == torch.uint8 else x.to(self.dtype)
            if self.augment is not None:
                x = self.augment(x, self.generator)
            if self.mean is not None:
                x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index]

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


# ----------------------------------------------------------------------------- the schedule


class StepSchedule:
    """Sets every parameter group's ``lr`` to ``lr_at(k)`` just before the optimizer's ``k``-th step
    (k = 0, 1, ...), through ``optimizer.register_step_pre_hook``: your ``train_one_epoch`` needs to
    know nothing about it. A group holding an ``"lr_scale"`` entry gets ``lr_scale · lr_at(k)``
    instead (a layer that learns faster or slower than the rest, or not at all with 0). A step that a
    ``GradScaler`` skips (its gradients overflowed) does not count. ``state_dict()`` holds ``k``, for
    checkpoints."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: Callable[[int], float]) -> None:
        self.optimizer, self.lr_at, self.steps_done = optimizer, lr_at, 0
        self._handle = optimizer.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        lr = float(self.lr_at(self.steps_done))
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        self.steps_done += 1

    @property
    def last_lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def remove(self) -> None:
        self._handle.remove()

    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_done = int(state["steps_done"])


# ----------------------------------------------------------------------------- the epochs loop


def fit(model: nn.Module, train_loader: Any, val_loader: Any, optimizer: torch.optim.Optimizer, *, epochs: int,
        device: torch.device | str, train_one_epoch: Callable[..., float], evaluate: Callable[..., dict[str, float]],
        scaler: torch.amp.GradScaler | None = None, amp_dtype: torch.dtype | None = None,
        schedule: StepSchedule | None = None, checkpoint: str | os.PathLike | None = None,
        meta: dict[str, Any] | None = None, plot: LivePlot | None = None, progress: bool = True,
        on_epoch_end: Callable[[int, list[dict[str, float]]], None] | None = None) -> list[dict[str, float]]:
    """Train for ``epochs`` epochs with your ``train_one_epoch``, evaluating with your ``evaluate``
    after each; return the history, one dict per epoch (``epoch``, ``train_loss``, ``val_loss``,
    ``val_accuracy``, ``lr``, ``seconds``).

    With ``checkpoint`` (a file path), the state is saved after every epoch, and a run that finds the
    file already there continues after the epoch it records (a Colab disconnect costs at most one
    epoch): with the same seed, the result is the same as a run never interrupted (``meta`` is saved
    with it; see ``save_checkpoint``). ``progress``
    shows tqdm bars (epochs, and batches within the epoch); ``plot`` is redrawn after each epoch;
    ``on_epoch_end(epoch, history)`` is called once the epoch's checkpoint is on disk.
    """
    history: list[dict[str, float]] = []
    start = 0
    stateful = {"scaler": scaler, "schedule": schedule,
                "loader": train_loader if hasattr(train_loader, "state_dict") else None}
    if checkpoint is not None and Path(checkpoint).exists():
        resumed = load_checkpoint(checkpoint, model, optimizer=optimizer, **stateful)
        start, history = resumed.epoch, resumed.history
        print(f"resumed from {checkpoint}: {start} of {epochs} epochs already done")
        if plot is not None and history:
            plot.update(history)
    epochs_bar = progress_bar(range(start + 1, epochs + 1), desc="epochs", disable=not progress, initial=start,
                              total=epochs)
    for epoch in epochs_bar:
        began = time.perf_counter()
        batches = progress_bar(train_loader, desc=f"epoch {epoch}", leave=False, disable=not progress)
        train_loss = train_one_epoch(model, batches, optimizer, device, scaler=scaler, amp_dtype=amp_dtype)
        metrics = evaluate(model, val_loader, device, amp_dtype=amp_dtype)
        history.append({"epoch": epoch, "train_loss": float(train_loss), "val_loss": float(metrics["loss"]),
                        "val_accuracy": float(metrics["accuracy"]), "lr": float(optimizer.param_groups[0]["lr"]),
                        "seconds": time.perf_counter() - began})
        epochs_bar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{metrics['accuracy']:.2%}")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, meta=meta, epoch=epoch, optimizer=optimizer, history=history,
                            **stateful)
        if plot is not None:
            plot.update(history)
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    return history


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_cifar10_for_training(split: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """CIFAR-10's ``split`` as ``(uint8 images N×3×32×32, labels, name)``: from the official archive
    (``exercises.kit.datasets.load_cifar10``: a local mirror or the cache, else a download), or, when a
    mirror folder named by ``COURSE_DATA_MIRROR`` holds only ``cifar10/cifar10-jpeg.tar.gz``, from
    that JPEG copy, whose name says so (accuracy on it is close to, not equal to, CIFAR-10's)."""
    from exercises.kit import datasets
    from exercises.kit.download import MIRROR_ENV

    for folder in filter(None, os.environ.get(MIRROR_ENV, "").split(os.pathsep)):
        official = Path(folder) / "cifar10" / "cifar-10-python.tar.gz"
        jpeg = Path(folder) / "cifar10" / "cifar10-jpeg.tar.gz"
        if not official.exists() and jpeg.exists():
            data = datasets.load_image_folder(jpeg, subdir=split, channels=3)
            return data.images, data.labels, "CIFAR-10 (JPEG copy)"
    data = datasets.load_cifar10(split)
    return data.images, data.labels, "CIFAR-10"


# ----------------------------------------------------------------------------- chapter 5's quick model


def three_way_split(labels: torch.Tensor, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified ``(train_idx, val_idx, test_idx)``: sorted ``int64`` index tensors, disjoint, covering
    ``0..N-1``, each class split in the proportions ``fractions`` (rounded; the test part takes the rest)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    gen = torch.Generator().manual_seed(seed)
    parts: list[list[torch.Tensor]] = [[], [], []]
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        n_train = round(len(members) * fractions[0])
        n_val = round(len(members) * fractions[1])
        for part, chunk in zip(parts, (members[:n_train], members[n_train:n_train + n_val],
                                       members[n_train + n_val:]), strict=True):
            part.append(chunk)
    train, val, test = (torch.cat(p).sort().values for p in parts)
    return train, val, test


def to_model_input(images: torch.Tensor, mean: tuple[float, ...] = MNIST_MEAN,
                   std: tuple[float, ...] = MNIST_STD) -> torch.Tensor:
    """``uint8`` images ``N×C×H×W`` (0..255) as the float32 input the models here take:
    ``(x/255 − mean[c]) / std[c]`` per channel (``mean`` and ``std``: one number per channel)."""
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (0..255), got {images.dtype}")
    shape = (1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(shape)
    std_t = torch.as_tensor(std, dtype=torch.float32).reshape(shape)
    return (images.float() / 255 - mean_t) / std_t


def small_cnn(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """Two convolution blocks (16 and 32 filters, batch norm, ReLU, 2×2 max pooling), dropout and a linear
    layer: about 20 thousand parameters, ``N×in_channels×28×28`` images to ``N×num_classes`` logits."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 7 * 7, num_classes),
    )


def linear_model(in_features: int = 28 * 28, num_classes: int = 10) -> nn.Module:
    """Softmax regression on the raw pixels: the baseline a CNN has to beat."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, num_classes))


def train_quickly(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int = 64,
                  lr: float = 3e-3, seed: int = 0, device: torch.device | str = "cpu") -> list[float]:
    """Train ``model`` on ``x`` (float ``N×C×H×W``) and ``y`` (``int64`` ``N``) with AdamW, a one-cycle
    learning-rate schedule and cross-entropy, on ``device``; returns the mean loss of each epoch."""
    device = torch.device(device)
    model.to(device).train()
    x, y = x.to(device), y.to(device)
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(x) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(1, steps))
    losses = []
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            idx = idx.to(device)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
    return losses


def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """``model``'s logits for ``x`` in evaluation mode without gradient tracking, batch by batch, on the CPU."""
    device = torch.device(device)
    model.to(device).eval()
    with torch.no_grad():
        return torch.cat([model(chunk.to(device)).float().cpu() for chunk in x.split(batch_size)])


def predict_image(model: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                  prepare: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Class probabilities (``K``) for one ``1×C×H×W`` uint8 image: ``softmax(model(prepare(image)))``,
    in evaluation mode without gradient tracking."""
    if isinstance(model, nn.Module):
        model.eval()
    with torch.no_grad():
        return torch.softmax(model(prepare(image)), dim=1)[0]
