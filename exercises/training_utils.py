"""What chapter 4's notebook needs around your exercises to train the way professionals do.

None of this is an exercise; all of it calls yours (``train_one_epoch``, ``evaluate``, the
optimizers, ``warmup_cosine_lr``), which ``fit`` takes as arguments:

* ``TensorLoader``: batches from tensors that already live on the device (the GPU, if there is
  one), converted, augmented and normalized there: no worker processes, no copy per batch;
* ``random_shift_flip``: that augmentation, done on the device with one ``grid_sample`` call;
* ``StepSchedule``: sets the learning rate before every optimizer step from a function of the step;
* ``save_checkpoint`` / ``load_checkpoint``: everything a run needs to continue exactly where it
  stopped (weights, optimizer, scaler, schedule, the loader's and torch's random states), written
  atomically so a disconnect during the write never leaves a broken file;
* ``LivePlot``: loss and accuracy curves redrawn after every epoch;
* ``fit``: the epochs loop tying it together, resuming from its checkpoint when there is one;
* ``CPU_BUDGET`` and ``embedded_split``: the fixed CPU training budget ``build_cnn`` is graded with.
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

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


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


def embedded_split(val_size: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The embedded 5,000-digit MNIST subset split at random into ``5000 − val_size`` training and
    ``val_size`` validation digits: ``(train_images, train_labels, val_images, val_labels)``, images
    ``uint8`` ``N×1×28×28``, labels ``int64``. Same ``seed``, same split."""
    from exercises.datasets import load_embedded_mnist

    data = load_embedded_mnist()
    order = torch.randperm(len(data.labels), generator=torch.Generator().manual_seed(seed))
    val, train = order[:val_size], order[val_size:]
    return data.images[train], data.labels[train], data.images[val], data.labels[val]


# ----------------------------------------------------------------------------- data on the device


def random_shift_flip(images: torch.Tensor, generator: torch.Generator, max_shift: int = 2,
                      flip: bool = False) -> torch.Tensor:
    """Each image of ``images`` (float ``N×C×H×W``, on any device) moved by a random whole number of
    pixels in ``−max_shift..max_shift`` along each axis (what leaves the frame is lost, what enters is
    0), and mirrored left-right with probability ½ when ``flip``. Random numbers come from
    ``generator`` (a CPU generator, so its state is easy to save), the work is one ``affine_grid`` +
    ``grid_sample`` on the images' device: no Python loop over images."""
    n, _, h, w = images.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).to(images.dtype)
    scale_x = torch.ones(n, dtype=images.dtype)
    if flip:
        scale_x = torch.where(torch.rand(n, generator=generator) < 0.5, -scale_x, scale_x)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = scale_x, 1.0
    theta[:, 0, 2], theta[:, 1, 2] = shifts[:, 0] * 2 / w, shifts[:, 1] * 2 / h  # a pixel is 2/size wide
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


class TensorLoader:
    """Mini-batches ``(x, y)`` from whole-dataset tensors kept on ``device``.

    ``images`` (``uint8`` 0..255, or float in [0, 1]) ``N×C×H×W`` and ``labels`` ``N`` are moved to
    ``device`` once. Each batch is then indexed there, converted to float in [0, 1], augmented
    (``augment(x, generator)``, e.g. ``random_shift_flip``), normalized with per-channel ``mean`` and
    ``std``, and put in ``channels_last`` memory order if asked. ``shuffle`` draws a new order every
    epoch from ``generator``. ``len(loader)`` is the number of batches; ``state_dict()`` holds the
    generator's state, for checkpoints.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, device: torch.device | str = "cpu",
                 shuffle: bool = False, generator: torch.Generator | None = None,
                 augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                 channels_last: bool = False, drop_last: bool = False, dtype: torch.dtype = torch.float32) -> None:
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"images must be N×C×H×W and labels N; got {tuple(images.shape)} and {tuple(labels.shape)}")
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


# ----------------------------------------------------------------------------- schedule, checkpoints


class StepSchedule:
    """Sets every parameter group's ``lr`` to ``lr_at(k)`` just before the optimizer's ``k``-th step
    (k = 0, 1, ...), through ``optimizer.register_step_pre_hook``: your ``train_one_epoch`` needs to
    know nothing about it. A step that a ``GradScaler`` skips (its gradients overflowed) does not
    count. ``state_dict()`` holds ``k``, for checkpoints."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_at: Callable[[int], float]) -> None:
        self.optimizer, self.lr_at, self.steps_done = optimizer, lr_at, 0
        self._handle = optimizer.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        lr = float(self.lr_at(self.steps_done))
        for group in optimizer.param_groups:
            group["lr"] = lr
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


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, *, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    history: list[dict[str, float]] | None = None, meta: dict[str, Any] | None = None,
                    **stateful: Any) -> Path:
    """Write everything a run needs to continue after ``epoch`` to ``path``, atomically.

    ``stateful`` names more objects with a ``state_dict()`` (a ``GradScaler``, a ``StepSchedule``, a
    ``TensorLoader``); torch's own random state (CPU and CUDA) is saved too, so dropout draws the
    same masks after a resume. ``meta`` holds plain facts about the model (``arch``, ``mean``,
    ``std``) for whoever loads it later: chapter 5 reads this file as it is. The file is written
    beside ``path`` and renamed over it, so a checkpoint on disk is always complete: an interrupted
    save leaves the previous one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
               "history": list(history or []), "rng": _rng_state(), "meta": dict(meta or {}),
               "stateful": {name: obj.state_dict() for name, obj in stateful.items() if obj is not None}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer,
                    **stateful: Any) -> tuple[int, list[dict[str, float]]]:
    """Restore what ``save_checkpoint`` wrote into ``model``, ``optimizer`` and the named ``stateful``
    objects, and torch's random state; return ``(epoch, history)``. Loads with ``weights_only=True``:
    a checkpoint holds tensors and plain data, never code."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    payload = torch.load(Path(path), map_location=device, weights_only=True)
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    for name, obj in stateful.items():
        if obj is not None and name in payload["stateful"]:
            state = payload["stateful"][name]
            if isinstance(obj, TensorLoader):  # a generator's state is a CPU byte tensor
                state = {k: v.cpu() for k, v in state.items()}
            obj.load_state_dict(state)
    _set_rng_state({k: (v.cpu() if isinstance(v, torch.Tensor) else [t.cpu() for t in v])
                    for k, v in payload["rng"].items()})
    return int(payload["epoch"]), list(payload["history"])


# ----------------------------------------------------------------------------- curves, and the epochs loop


class LivePlot:
    """Training and validation loss, and validation accuracy, per epoch: one figure redrawn in place
    (in Jupyter) after every epoch. ``save(path)`` writes it as an image."""

    def __init__(self, title: str = "") -> None:
        import matplotlib.pyplot as plt

        self.fig, (self.ax_loss, self.ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
        self.title = title
        self._handle: Any = None
        plt.close(self.fig)  # shown through the display handle only, never twice

    def update(self, history: list[dict[str, float]]) -> None:
        epochs = [h["epoch"] for h in history]
        self.ax_loss.clear()
        self.ax_acc.clear()
        self.ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="training")
        self.ax_loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
        self.ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        self.ax_loss.legend()
        self.ax_acc.plot(epochs, [100 * h["val_accuracy"] for h in history], "o-", color="C2")
        self.ax_acc.set(xlabel="epoch", ylabel="%", title="validation accuracy")
        for ax in (self.ax_loss, self.ax_acc):
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        if self.title:
            self.fig.suptitle(self.title)
        self.fig.tight_layout()
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(self.fig, display_id=True)
        else:
            self._handle.update(self.fig)

    def save(self, path: str | os.PathLike) -> None:
        self.fig.savefig(path, dpi=100)


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
    from tqdm.auto import tqdm

    history: list[dict[str, float]] = []
    start = 0
    stateful = {"scaler": scaler, "schedule": schedule, "loader": train_loader if hasattr(train_loader, "state_dict") else None}
    if checkpoint is not None and Path(checkpoint).exists():
        start, history = load_checkpoint(checkpoint, model=model, optimizer=optimizer, **stateful)
        print(f"resumed from {checkpoint}: {start} of {epochs} epochs already done")
        if plot is not None and history:
            plot.update(history)
    epochs_bar = tqdm(range(start + 1, epochs + 1), desc="epochs", disable=not progress, initial=start, total=epochs)
    for epoch in epochs_bar:
        began = time.perf_counter()
        batches = tqdm(train_loader, desc=f"epoch {epoch}", leave=False, disable=not progress)
        train_loss = train_one_epoch(model, batches, optimizer, device, scaler=scaler, amp_dtype=amp_dtype)
        metrics = evaluate(model, val_loader, device, amp_dtype=amp_dtype)
        history.append({"epoch": epoch, "train_loss": float(train_loss), "val_loss": float(metrics["loss"]),
                        "val_accuracy": float(metrics["accuracy"]), "lr": float(optimizer.param_groups[0]["lr"]),
                        "seconds": time.perf_counter() - began})
        epochs_bar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{metrics['accuracy']:.2%}")
        if checkpoint is not None:
            save_checkpoint(checkpoint, epoch=epoch, model=model, optimizer=optimizer, history=history, meta=meta,
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
    (``exercises.datasets.load_cifar10``: a local mirror or the cache, else a download), or, when a
    mirror folder named by ``COURSE_DATA_MIRROR`` holds only ``cifar10/cifar10-jpeg.tar.gz``, from
    that JPEG copy, whose name says so (accuracy on it is close to, not equal to, CIFAR-10's)."""
    from exercises import datasets
    from exercises.download import MIRROR_ENV

    for folder in filter(None, os.environ.get(MIRROR_ENV, "").split(os.pathsep)):
        official = Path(folder) / "cifar10" / "cifar-10-python.tar.gz"
        jpeg = Path(folder) / "cifar10" / "cifar10-jpeg.tar.gz"
        if not official.exists() and jpeg.exists():
            data = datasets.load_image_folder(jpeg, subdir=split, channels=3)
            return data.images, data.labels, "CIFAR-10 (JPEG copy)"
    data = datasets.load_cifar10(split)
    return data.images, data.labels, "CIFAR-10"
