"""Input checks shared by the exercises: bad input raises ``ValueError`` saying what was expected."""

from __future__ import annotations

import torch


def require_float_tensor(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a floating-point ``torch.Tensor``; raise ``ValueError`` otherwise."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(
            f"{name} must be a floating-point tensor (float32 or float64), got {value.dtype}; "
            f"convert it with {name}.float()"
        )
    return value


def require_same_shape(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``value`` and ``other`` have the same shape."""
    if tuple(value.shape) != tuple(other.shape):
        raise ValueError(
            f"{name} must have the shape of {other_name}, {tuple(other.shape)}; got {tuple(value.shape)}"
        )
