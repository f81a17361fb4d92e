"""Data preparation (chapter 1): splits, statistics, normalization, augmentation, batching.

Images are ``N×C×H×W`` tensors, labels ``int64`` of shape ``N``. Every function works on any
device, returns its result on the input's device (and, for images, in the input's dtype), never
modifies its inputs in place, and draws randomness only from the ``torch.Generator`` (or seed) it
is given, so the same generator state always gives the same result.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from exercises.kit.validate import (
    require_channel_values,
    require_count,
    require_fraction,
    require_generator,
    require_images,
    require_label_vector,
    require_probability,
)


def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sample indices into a training and a validation part with the same class balance.

    For each class with ``n`` samples, ``floor(n · val_fraction + 0.5)`` of them, chosen at random,
    go to the validation part; the rest go to training.

    Args:
        labels: ``int64`` class indices of shape ``N``.
        val_fraction: the share of each class to hold out, ``0 <= val_fraction < 1``.
        seed: seeds the random choice: the same seed gives the same split, another seed another one.

    Returns:
        ``(train_idx, val_idx)``: sorted ``int64`` index tensors on the device of ``labels``,
        disjoint, together exactly ``0..N-1``.

    Explained in course/01_data.ipynb, section "A validation split that keeps the class balance".
    """
    require_label_vector("labels", labels)
    val_fraction = require_fraction("val_fraction", val_fraction)
    seed = require_count("seed", seed)
    ### BEGIN SOLUTION
    generator = torch.Generator().manual_seed(seed)
    cpu_labels = labels.cpu()
    in_val = torch.zeros(len(cpu_labels), dtype=torch.bool)
    for c in torch.unique(cpu_labels).tolist():
        members = torch.nonzero(cpu_labels == c).flatten()
        n_val = math.floor(len(members) * val_fraction + 0.5)
        chosen = torch.randperm(len(members), generator=generator)[:n_val]
        in_val[members[chosen]] = True
    train_idx = torch.nonzero(~in_val).flatten()
    val_idx = torch.nonzero(in_val).flatten()
    return train_idx.to(labels.device), val_idx.to(labels.device)
    ### END SOLUTION


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and population standard deviation of a batch of images.

    With ``m = N·H·W`` values per channel ``c``:
    ``mean[c] = Σ x[:, c] / m`` and ``std[c] = sqrt(Σ (x[:, c] − mean[c])² / m)`` (divide by the
    count ``m``, not ``m − 1``). Accurate to 1e-6 relative even for millions of float32 pixels whose
    mean is far from zero: accumulate in float64, and never use ``E[x²] − E[x]²`` in float32.

    Args:
        images: floating-point images ``N×C×H×W``.

    Returns:
        ``(mean, std)``, each of shape ``C``, in the dtype and on the device of ``images``.

    Explained in course/01_data.ipynb, section "Channel statistics, computed on the training split only".
    """
    require_images("images", images)
    if images.shape[0] * images.shape[2] * images.shape[3] == 0:
        raise ValueError(f"images must hold at least one pixel per channel; got shape {tuple(images.shape)}")
    ### BEGIN SOLUTION
    x = images.detach()
    if x.device.type == "mps":  # Apple GPUs have no float64
        x = x.cpu()
    count = x.shape[0] * x.shape[2] * x.shape[3]
    # Two passes in float64, a slice of the batch at a time (about 16 million values) to bound memory.
    chunks = x.split(max(1, 2**24 // x[0].numel()))
    mean = sum(chunk.double().sum(dim=(0, 2, 3)) for chunk in chunks) / count
    centred = (chunk.double() - mean.view(1, -1, 1, 1) for chunk in chunks)
    var = sum(d.square().sum(dim=(0, 2, 3)) for d in centred) / count
    return mean.to(images.device, images.dtype), var.sqrt().to(images.device, images.dtype)
    ### END SOLUTION


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Standardize each channel: ``out[:, c] = (images[:, c] − mean[c]) / std[c]``.

    Args:
        images: floating-point images ``N×C×H×W``.
        mean, std: one value per channel (shape ``C``; a tensor or a sequence of numbers), ``std > 0``.

    Returns:
        A new tensor of the shape, dtype and device of ``images``.

    Explained in course/01_data.ipynb, section "Normalization".
    """
    require_images("images", images)
    mean = require_channel_values("mean", mean, images)
    std = require_channel_values("std", std, images)
    if not bool((std > 0).all()):
        raise ValueError(f"std must be positive in every channel; got {std.tolist()}")
    ### BEGIN SOLUTION
    return (images - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
    ### END SOLUTION


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random translation: pad with zeros, then cut each image back to its size at a random offset.

    Each image is zero-padded by ``padding`` pixels on every side, to ``(H+2p)×(W+2p)``, and
    independently takes the ``H×W`` window whose top-left corner ``(dy, dx)`` is drawn uniformly
    from the ``(2p+1)²`` possibilities ``0 <= dy, dx <= 2p``:
    ``out[n, :, i, j] = padded[n, :, dy[n] + i, dx[n] + j]``. ``padding=0`` is the identity.
    Vectorized: no Python loop over the images.

    Args:
        images: images ``N×C×H×W`` of any dtype.
        padding: ``p >= 0``, the largest shift in pixels.
        generator: the source of the offsets (on the CPU, or on the images' device).

    Returns:
        A new tensor of the shape, dtype and device of ``images``.

    Explained in course/01_data.ipynb, section "Augmentation: random crops".
    """
    require_images("images", images, floating=False)
    padding = require_count("padding", padding)
    require_generator("generator", generator)
    ### BEGIN SOLUTION
    if padding == 0:
        return images.clone()
    count, height, width = len(images), images.shape[2], images.shape[3]
    padded = F.pad(images, (padding, padding, padding, padding))
    # Every window of every image, as a view N×C×(2p+1)×(2p+1)×H×W: nothing is copied yet.
    windows = padded.unfold(2, height, 1).unfold(3, width, 1)
    offsets = torch.randint(0, 2 * padding + 1, (2, count), generator=generator, device=generator.device)
    dy, dx = offsets.to(images.device)
    return windows[torch.arange(count, device=images.device), :, dy, dx]
    ### END SOLUTION


def random_hflip(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right, independently, with probability ``p``.

    ``out[n] = images[n].flip(-1)`` (the last axis, the width) if ``u[n] < p`` else ``images[n]``,
    with ``u[n]`` uniform in ``[0, 1)``, one draw per image. Vectorized: no Python loop over images.

    Args:
        images: images ``N×C×H×W`` of any dtype.
        p: the probability of a flip, ``0 <= p <= 1``.
        generator: the source of the coin flips (on the CPU, or on the images' device).

    Returns:
        A new tensor of the shape, dtype and device of ``images``.

    Explained in course/01_data.ipynb, section "Augmentation: horizontal flips, and when not to use them".
    """
    require_images("images", images, floating=False)
    p = require_probability("p", p)
    require_generator("generator", generator)
    ### BEGIN SOLUTION
    flip = torch.rand(images.shape[0], generator=generator, device=generator.device) < p
    flip = flip.to(images.device).view(-1, 1, 1, 1)
    return torch.where(flip, images.flip(-1), images)
    ### END SOLUTION


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot encoding: ``out[n, k] = 1.0 if labels[n] == k else 0.0``.

    Args:
        labels: ``int64`` class indices of shape ``N``, each in ``0..num_classes-1``.
        num_classes: ``K >= 1``.

    Returns:
        A float32 tensor ``N×K`` on the device of ``labels``.

    Explained in course/01_data.ipynb, section "Labels as one-hot vectors".
    """
    num_classes = require_count("num_classes", num_classes, minimum=1)
    require_label_vector("labels", labels, num_classes)
    ### BEGIN SOLUTION
    out = torch.zeros(labels.shape[0], num_classes, device=labels.device)
    out[torch.arange(labels.shape[0], device=labels.device), labels] = 1.0
    return out
    ### END SOLUTION


def minibatch_indices(
    n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """The sample indices of one epoch, cut into mini-batches.

    Together the batches hold each of ``0..n-1`` exactly once: in order when ``shuffle`` is false,
    in a random order drawn from ``generator`` when it is true. Every batch has ``batch_size``
    indices except the last, which holds the remaining ``1..batch_size``.

    Args:
        n: the number of samples, ``n >= 0`` (``n == 0`` gives no batches).
        batch_size: ``>= 1``.
        shuffle: whether to shuffle the order.
        generator: required when ``shuffle`` is true.

    Returns:
        A list of ``ceil(n / batch_size)`` ``int64`` tensors (on the generator's device when
        shuffling, else on the CPU).

    Explained in course/01_data.ipynb, section "Mini-batches".
    """
    n = require_count("n", n)
    batch_size = require_count("batch_size", batch_size, minimum=1)
    if shuffle:
        require_generator("generator", generator)
    if n == 0:
        return []
    ### BEGIN SOLUTION
    if shuffle:
        order = torch.randperm(n, generator=generator, device=generator.device)
    else:
        order = torch.arange(n)
    return list(order.split(batch_size))
    ### END SOLUTION
