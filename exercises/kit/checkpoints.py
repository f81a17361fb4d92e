"""Checkpoints: one file format to resume a training run and to use its weights later; and export.

A checkpoint is a ``dict`` saved with ``torch.save``:

* ``"model"``: the model's ``state_dict`` (CPU tensors), and ``"meta"``: plain facts needed to use the
  weights again (the architecture's name, the class names, the input normalization);
* when a training run saves it (``fit`` does, after every epoch), also ``"epoch"``, ``"optimizer"``,
  ``"history"``, ``"stateful"`` (a ``GradScaler``'s, a schedule's, a loader's ``state_dict``) and
  ``"rng"`` (torch's random state, CPU and CUDA), so that the run continues exactly where it stopped.

``save_checkpoint`` writes it atomically (a temporary file, then a rename): a disconnect during the
write leaves the previous checkpoint, never a truncated one. ``load_checkpoint`` reads it with
``weights_only=True``, which cannot run code hidden in a file, so a checkpoint from someone else is
safe to open. ``export_model`` writes a ``torch.export`` program that runs without this course's code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, meta: dict[str, Any] | None = None,
                    epoch: int | None = None, optimizer: torch.optim.Optimizer | None = None,
                    history: list[dict[str, float]] | None = None, **stateful: Any) -> Path:
    """Save ``model``'s weights and ``meta`` (plain values: strings, numbers, lists) to ``path``; returns it.

    With ``optimizer`` (a training run), also what the run needs to continue after ``epoch``: the
    optimizer, the ``history``, the named ``stateful`` objects (anything with a ``state_dict()``: a
    ``GradScaler``, a ``StepSchedule``, a ``TensorLoader``) and torch's random state, so dropout draws the
    same masks after a resume. Written beside ``path`` and renamed over it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                               "meta": dict(meta or {})}
    if optimizer is not None:
        payload.update(epoch=int(epoch or 0), optimizer=optimizer.state_dict(), history=list(history or []),
                       rng=_rng_state(),
                       stateful={name: obj.state_dict() for name, obj in stateful.items() if obj is not None})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` read besides the weights: ``meta``, and for a training run's checkpoint
    the ``epoch`` it finished (0 otherwise) and its ``history``."""

    meta: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, meta)`` from a checkpoint file: this module's format, a bare ``state_dict``, or a
    dict holding one under ``"model_state_dict"``, ``"state_dict"`` or ``"model"`` (``meta`` is then the
    rest of the dict's plain values). Opened with ``weights_only=True`` on the CPU."""
    return _weights_and_meta(_read(path), path)


def _read(path: str | os.PathLike) -> Any:
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def _weights_and_meta(data: Any, path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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


def load_checkpoint(path: str | os.PathLike, model: nn.Module, *, optimizer: torch.optim.Optimizer | None = None,
                    **stateful: Any) -> Checkpoint:
    """Load the weights of the checkpoint at ``path`` into ``model``; return its ``Checkpoint`` facts.

    To use a trained model: ``model = build_cnn(1, 10); load_checkpoint(path, model)``. To resume a
    run, also pass the ``optimizer`` and the ``stateful`` objects ``save_checkpoint`` was given: they and
    torch's random state are restored too. Weights saved by other code (a bare ``state_dict``, or one
    under ``"model_state_dict"`` or ``"state_dict"``) load as well. Raises ``ValueError`` saying what
    differs when the weights do not fit ``model``.
    """
    payload = _read(path)
    state, meta = _weights_and_meta(payload, path)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"the weights in {path} do not fit the model built here: is it the same architecture? "
                         f"{str(exc)[:600]}") from None
    found = Checkpoint(meta=meta)
    if optimizer is not None and "optimizer" in payload:
        optimizer.load_state_dict(payload["optimizer"])  # moves the state to the parameters' device
        for name, obj in stateful.items():
            if obj is not None and name in payload.get("stateful", {}):
                obj.load_state_dict(payload["stateful"][name])
        if "rng" in payload:
            _set_rng_state(payload["rng"])
        found.epoch, found.history = int(payload["epoch"]), list(payload["history"])
    return found


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
