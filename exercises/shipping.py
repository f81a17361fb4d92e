"""Shipping a trained classifier: save and load a checkpoint, export the model with ``torch.export``,
and turn an image file someone gives you into the input the model expects.

A checkpoint here is a plain ``dict`` saved with ``torch.save``: ``{"model": state_dict, "meta": {...}}``,
where ``meta`` records what is needed to use the weights again (the architecture's name, the class
names, the input normalization). Loading uses ``weights_only=True``, which cannot run code hidden in a
file, so a checkpoint from someone else is safe to open.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **meta: Any) -> Path:
    """Save ``model``'s weights and ``meta`` (plain values: strings, numbers, lists) to ``path``.

    Written to a temporary file first and then renamed, so an interrupted save never leaves a truncated
    checkpoint behind. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"model": state, "meta": meta}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, meta)`` from a checkpoint file: this module's format, a bare ``state_dict``, or a
    dict holding one under ``"model_state_dict"``, ``"state_dict"`` or ``"model"`` (``meta`` is then the
    rest of the dict's plain values). Opened with ``weights_only=True`` on the CPU."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a dict of weights (got {type(data).__name__})")
    for key in ("model", "model_state_dict", "state_dict"):
        if isinstance(data.get(key), dict):
            meta = data.get("meta") if isinstance(data.get("meta"), dict) else \
                {k: v for k, v in data.items() if k != key and not isinstance(v, (dict, torch.Tensor))}
            return data[key], dict(meta)
    if all(isinstance(v, torch.Tensor) for v in data.values()):
        return data, {}
    raise ValueError(f"{path} holds no state_dict: expected a dict of tensors, or one under 'model', "
                     f"'model_state_dict' or 'state_dict'; found keys {sorted(map(str, data))[:8]}")


def load_checkpoint(path: str | os.PathLike, build: Callable[[], nn.Module]) -> tuple[nn.Module, dict[str, Any]]:
    """A model from ``build()`` with the weights of the checkpoint at ``path``, in evaluation mode, and
    the checkpoint's ``meta``. Raises ``ValueError`` saying what differs when the weights do not fit."""
    state, meta = read_checkpoint(path)
    model = build()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"the weights in {path} do not fit the model built here: is it the same architecture? "
                         f"{str(exc)[:600]}") from None
    return model.eval(), meta


def export_model(model: nn.Module, example: torch.Tensor, path: str | os.PathLike) -> Path:
    """Export ``model`` with ``torch.export`` (evaluation mode, a batch dimension of any size) and save the
    program to ``path`` (``.pt2``). The file runs without this course's code, or the model's class:
    ``torch.export.load(path).module()(images)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    example = example if example.shape[0] > 1 else example.repeat(2, *([1] * (example.ndim - 1)))
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)
    return path


def load_exported(path: str | os.PathLike) -> Callable[[torch.Tensor], torch.Tensor]:
    """The callable an exported ``.pt2`` file holds: images in, logits out."""
    return torch.export.load(Path(path)).module()


# ----------------------------------------------------------------------------- a new image


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


def predict_image(model: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                  prepare: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Class probabilities (``K``) for one ``1×C×H×W`` uint8 image: ``softmax(model(prepare(image)))``,
    in evaluation mode without gradient tracking."""
    if isinstance(model, nn.Module):
        model.eval()
    with torch.no_grad():
        return torch.softmax(model(prepare(image)), dim=1)[0]
