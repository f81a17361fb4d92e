"""Training and evaluating a classifier, the learner's CNN, and reproducible seeds (chapter 4).

A *loader* here is anything that yields batches ``(x, y)``: images ``x`` of shape ``N×C×H×W`` and
``int64`` labels ``y`` of shape ``N``, possibly still on the CPU (a ``torch.utils.data.DataLoader``,
a list of pairs, or the course's ``exercises.kit.training.TensorLoader``). The last batch may be
shorter than the others.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from exercises.kit.validate import require_count, require_device, require_seed

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def autocast(device: torch.device, amp_dtype: torch.dtype | None) -> AbstractContextManager[Any]:
    """``torch.autocast`` on ``device`` with ``amp_dtype``, or a context that does nothing when it is ``None``."""
    return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()


def train_one_epoch(model: nn.Module, loader: Batches, optimizer: torch.optim.Optimizer, device: torch.device | str,
                    scaler: torch.amp.GradScaler | None = None, amp_dtype: torch.dtype | None = None) -> float:
    """One pass over ``loader`` with the cross-entropy loss; returns the mean loss over **samples**.

    For each batch ``(x, y)``: move both to ``device``; compute ``loss = cross_entropy(model(x), y)``
    (the mean over the batch); zero the gradients; back-propagate; step the optimizer. Precisely:

    * the model is in training mode (``model.train()``: dropout active, batch norm uses and updates
      batch statistics), whatever mode it arrived in;
    * gradients are zeroed before every backward pass (``backward`` *adds* into ``.grad``);
    * with a ``scaler`` (a ``torch.amp.GradScaler``, for float16 mixed precision): back-propagate
      ``scaler.scale(loss)``, step with ``scaler.step(optimizer)`` (it un-scales the gradients and
      skips the step if they overflowed), then ``scaler.update()``; without one, plain
      ``loss.backward()`` and ``optimizer.step()``;
    * with ``amp_dtype`` (``torch.float16`` or ``torch.bfloat16``), the forward pass and the loss run
      under ``torch.autocast(device.type, dtype=amp_dtype)``; ``None`` (the default) is full precision.

    The result is ``Σ_batches loss_b·n_b / Σ_batches n_b`` with ``n_b`` the batch's size, measured
    before each step: a short last batch counts less than a full one. A Python ``float``.

    Explained in course/04_training.ipynb, section "The training loop: train_one_epoch".
    """
    device = require_device("device", device)
    ### BEGIN SOLUTION
    model.train()
    # One code path: a disabled scaler's scale() returns the loss as it is, its step() is optimizer.step().
    scaler = scaler if scaler is not None else torch.amp.GradScaler(device.type, enabled=False)
    total = torch.zeros((), device=device)
    count = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, amp_dtype):
            loss = F.cross_entropy(model(x), y)
        model.zero_grad(set_to_none=True)  # backward() adds into .grad: start each step from nothing
        scaler.scale(loss).backward()
        scaler.step(optimizer)  # un-scales the gradients, skips the step if they overflowed
        scaler.update()
        total += loss.detach().float() * len(y)  # stays on the device: no synchronisation per batch
        count += len(y)
    if count == 0:
        raise ValueError("the loader yielded no batches")
    return (total / count).item()
    ### END SOLUTION


def evaluate(model: nn.Module, loader: Batches, device: torch.device | str,
             amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """The model's mean cross-entropy and accuracy over every sample ``loader`` yields.

    Returns ``{"loss": Σ_i CE(model(x_i), y_i) / N, "accuracy": (number correct) / N}`` (Python
    floats) where a prediction is the ``argmax`` of the logits. The model runs in evaluation mode
    (``model.eval()``: dropout off, batch norm uses its running statistics) with gradient tracking
    off (``torch.no_grad()``), and nothing about it changes: no parameter, no buffer (batch norm's
    running mean and variance), no ``.grad``. Batches are moved to ``device``; ``amp_dtype`` as in
    ``train_one_epoch``.

    Explained in course/04_training.ipynb, section "Evaluation: evaluate".
    """
    device = require_device("device", device)
    ### BEGIN SOLUTION
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    count = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, amp_dtype):
                logits = model(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(dim=1) == y).sum()
            count += len(y)
    if count == 0:
        raise ValueError("the loader yielded no batches")
    return {"loss": (loss_sum / count).item(), "accuracy": correct.item() / count}
    ### END SOLUTION


def build_cnn(in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """Your own convolutional network for small images: ``N×in_channels×H×W`` → ``N×num_classes`` logits.

    Requirements: it accepts images of 28×28 (MNIST) and 32×32 (CIFAR-10), so end with a global
    pooling such as ``nn.AdaptiveMaxPool2d(1)`` rather than a ``Linear`` sized for one image size;
    it returns raw logits (no softmax: the cross-entropy applies it); it has at most 2 million
    parameters; and trained with the course's fixed CPU budget (``exercises.kit.training.
    CPU_BUDGET``: 4 epochs of AdamW with a warmup-cosine schedule, batch size 64, on 4,000 digits of
    the embedded MNIST subset, single-threaded) it reaches at least 97 % validation accuracy on the
    other 1,000. Batch normalization after each convolution makes that easy; see the notebook.

    Explained in course/04_training.ipynb, section "Your CNN: build_cnn".
    """
    require_count("in_channels", in_channels, 1)
    require_count("num_classes", num_classes, 2)
    ### BEGIN SOLUTION
    head = nn.Linear(128, num_classes)
    # Zero weights: every logit starts at its class's bias (nn.Linear's small uniform draw), the same for every
    # input, so predictions start near uniform and the loss near ln(C) (exactly ln(C) only with the bias zeroed too).
    nn.init.zeros_(head.weight)
    layers: list[nn.Module] = []
    channels = in_channels
    for width in (32, 64, 128):  # conv 3×3 → batch norm → ReLU, then halve the image (28 → 14 → 7)
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        layers.append(nn.MaxPool2d(2) if width < 128 else nn.AdaptiveMaxPool2d(1))  # the last: any size → 1×1
        channels = width
    return nn.Sequential(*layers, nn.Flatten(), head)
    ### END SOLUTION


def set_seed(seed: int) -> None:
    """Seed every random number generator a training run draws from: Python's ``random``, NumPy's
    global generator, and torch's (the CPU one and those of every CUDA device).

    After ``set_seed(s)`` the next draws (``random.random()``, ``np.random.rand()``,
    ``torch.rand(...)``) are the same every time; other seeds give other draws. ``0 <= seed < 2**32``.

    Explained in course/04_training.ipynb, section "Fixing the seeds: set_seed".
    """
    require_seed("seed", seed)
    ### BEGIN SOLUTION
    for seed_one in (random.seed, np.random.seed, torch.manual_seed, torch.cuda.manual_seed_all):
        seed_one(seed)
    ### END SOLUTION
