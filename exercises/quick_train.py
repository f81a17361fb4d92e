"""A small CNN, a short training loop and a three-way split: chapter 5's model when no chapter 4
checkpoint is at hand.

Chapter 5 is about evaluating a classifier, so it needs one. With a checkpoint from chapter 4 it
evaluates that; otherwise it trains this small CNN on the embedded MNIST digits in a few seconds on a
CPU. Nothing here is an exercise: it is given code, written plainly so that you can read it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the usual MNIST normalization, pixels scaled to [0, 1] first


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


def to_model_input(images: torch.Tensor, mean: float = MNIST_MEAN, std: float = MNIST_STD) -> torch.Tensor:
    """``uint8`` images ``N×C×H×W`` (0..255) as the float32 input the models here take: ``(x/255 − mean)/std``."""
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (0..255), got {images.dtype}")
    return (images.float() / 255 - mean) / std


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
