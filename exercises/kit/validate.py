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


# ----------------------------------------------------------------------------- chapter 2


def require_shape(name: str, value: torch.Tensor, shape: tuple[int | None, ...], meaning: str) -> None:
    """Raise ``ValueError`` unless ``value`` has ``len(shape)`` dimensions and each size given in
    ``shape`` (``None`` matches any size); ``meaning`` names the dimensions, e.g. ``"N×D"``."""
    got = tuple(value.shape)
    if len(got) != len(shape) or any(want is not None and want != size for want, size in zip(shape, got, strict=False)):
        wanted = ", ".join("any" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} must have shape {meaning} = ({wanted}); got {got}")


def require_same_dtype(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``value`` and ``other`` have the same dtype."""
    if value.dtype != other.dtype:
        raise ValueError(f"{name} must have the dtype of {other_name}, {other.dtype}; got {value.dtype}")


def require_class_labels(name: str, labels: object, num_samples: int, num_classes: int) -> torch.Tensor:
    """Return ``labels`` if it is an ``int64`` tensor of shape ``num_samples`` with values in
    ``0..num_classes-1``; raise ``ValueError`` otherwise."""
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of int64 class indices, got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise ValueError(f"{name} must hold int64 class indices, got {labels.dtype}; convert it with {name}.long()")
    if tuple(labels.shape) != (num_samples,):
        raise ValueError(f"{name} must have shape ({num_samples},), one label per sample; got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"{name} must lie in 0..{num_classes - 1}; got values from {int(labels.min())} "
                         f"to {int(labels.max())}")
    return labels


def require_fraction(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a number with ``0 <= value < 1``; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number with 0 <= {name} < 1, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- chapter 1


def require_images(name: str, value: object, floating: bool = True) -> torch.Tensor:
    """Return ``value`` if it is a batch of images ``N×C×H×W`` (floating-point when ``floating``);
    raise ``ValueError`` otherwise."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of images N×C×H×W, got {type(value).__name__}")
    if value.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions, N×C×H×W (images, channels, height, width); "
                         f"got shape {tuple(value.shape)}")
    if floating:
        require_float_tensor(name, value)
    return value


def require_label_vector(name: str, value: object, num_classes: int | None = None) -> torch.Tensor:
    """Return ``value`` if it is a 1-D ``int64`` tensor of class indices ``>= 0`` (and ``< num_classes``
    when given); raise ``ValueError`` otherwise."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of int64 class indices, got {type(value).__name__}")
    if value.dtype != torch.int64:
        raise ValueError(f"{name} must hold int64 class indices, got {value.dtype}; convert it with {name}.long()")
    if value.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one label per sample (shape N); got shape {tuple(value.shape)}")
    if value.numel():
        low, high = int(value.min()), int(value.max())
        if low < 0 or (num_classes is not None and high >= num_classes):
            wanted = "0 or more" if num_classes is None else f"in 0..{num_classes - 1}"
            raise ValueError(f"{name} must be {wanted}; got values from {low} to {high}")
    return value


def require_count(name: str, value: object, minimum: int = 0) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) ``>= minimum``; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def require_probability(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a number with ``0 <= value <= 1``; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability, a number with 0 <= {name} <= 1; got {value!r}")
    return float(value)


def require_generator(name: str, value: object) -> torch.Generator:
    """Return ``value`` if it is a ``torch.Generator``; raise ``ValueError`` otherwise."""
    if not isinstance(value, torch.Generator):
        raise ValueError(f"{name} must be a torch.Generator (for example torch.Generator().manual_seed(0)), "
                         f"got {type(value).__name__}: all randomness comes from it, so results are reproducible")
    return value


def require_channel_values(name: str, value: object, images: torch.Tensor) -> torch.Tensor:
    """``value`` (a tensor or a sequence of numbers, one per channel of ``images``) as a 1-D tensor in
    the dtype and on the device of ``images``; raise ``ValueError`` if it is not one number per channel."""
    try:
        tensor = torch.as_tensor(value, dtype=images.dtype, device=images.device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be one number per channel, got {type(value).__name__}") from exc
    if tensor.ndim != 1 or tensor.shape[0] != images.shape[1]:
        raise ValueError(f"{name} must have shape ({images.shape[1]},), one value per channel of the images; "
                         f"got shape {tuple(tensor.shape)}")
    return tensor


# ----------------------------------------------------------------------------- chapter 3


def require_int_at_least(name: str, value: object, minimum: int) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) ``>= minimum``; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def require_int_pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """``value`` (an int, or a pair of ints for height and width, each ``>= minimum``) as ``(h, w)``;
    raise ``ValueError`` otherwise."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in pair)):
        raise ValueError(f"{name} must be an int >= {minimum} or a pair (height, width) of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def require_window_fits(image_size: tuple[int, int], kernel: tuple[int, int], padding: tuple[int, int],
                        what: str = "the kernel") -> None:
    """Raise ``ValueError`` unless a ``kernel`` window fits inside the padded image (``H + 2·padding``
    by ``W + 2·padding``), so that there is at least one output position."""
    for axis, size, k, p in zip(("height", "width"), image_size, kernel, padding, strict=True):
        if size + 2 * p < k:
            raise ValueError(f"{what} ({k} in {axis}) does not fit in the input: its {axis} is {size}, "
                             f"{size + 2 * p} with padding {p} on each side, so there is no output position")


def require_conv_inputs(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is ``N×C×H×W``, ``w`` is ``F×C×KH×KW`` and ``b`` is ``F``:
    floating-point tensors of one dtype on one device."""
    for name, value, ndim, layout in (("x", x, 4, "N×C×H×W"), ("w", w, 4, "F×C×KH×KW"), ("b", b, 1, "F")):
        if require_float_tensor(name, value).ndim != ndim:
            raise ValueError(f"{name} must have {ndim} dimension{'s' if ndim > 1 else ''}, {layout}; "
                             f"got shape {tuple(value.shape)}")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have as many input channels as x: x is N×C×H×W with C = {x.shape[1]}, "
                         f"but w has shape {tuple(w.shape)} (F×C×KH×KW)")
    if tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"b must have shape ({w.shape[0]},), one bias per filter of w; got {tuple(b.shape)}")
    for name, value in (("w", w), ("b", b)):
        if value.dtype != x.dtype or value.device != x.device:
            raise ValueError(f"{name} must have the dtype and device of x ({x.dtype} on {x.device}); "
                             f"got {value.dtype} on {value.device}")


# ----------------------------------------------------------------------------- chapter 5


def require_scores(name: str, value: object, num_samples: int | None = None) -> torch.Tensor:
    """Return ``value`` if it is a floating-point ``N×C`` tensor of per-class scores (logits or
    probabilities) with ``C >= 1`` (and ``N == num_samples`` when given); raise ``ValueError`` otherwise."""
    value = require_float_tensor(name, value)
    if value.ndim != 2 or value.shape[1] < 1:
        raise ValueError(f"{name} must have shape N×C, one score per class for each sample; got {tuple(value.shape)}")
    if num_samples is not None and value.shape[0] != num_samples:
        raise ValueError(f"{name} must have one row per sample ({num_samples}); got {value.shape[0]} rows")
    return value


def require_same_length(name: str, value: torch.Tensor, other_name: str, other: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``value`` and ``other`` have as many samples (first dimension) and
    lie on one device."""
    if value.shape[0] != other.shape[0]:
        raise ValueError(f"{name} and {other_name} must hold one entry per sample, as many of each; "
                         f"got {value.shape[0]} and {other.shape[0]}")
    if value.device != other.device:
        raise ValueError(f"{name} and {other_name} must be on one device; got {value.device} and {other.device}")


def require_nonempty(name: str, value: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``value`` holds no samples (its first dimension is 0)."""
    if value.ndim == 0 or value.shape[0] == 0:
        raise ValueError(f"{name} holds no samples: the metric of an empty set is undefined")


def require_probabilities(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a floating-point ``N×C`` tensor with every entry in ``[0, 1]``;
    raise ``ValueError`` otherwise (logits, which are not, are the usual cause)."""
    value = require_scores(name, value)
    if value.numel() and not bool(((value >= 0) & (value <= 1)).all()):
        raise ValueError(f"{name} must hold probabilities in [0, 1]; got values from {float(value.min()):g} to "
                         f"{float(value.max()):g}. Logits? Apply torch.softmax(logits, dim=1) first.")
    return value


def require_square_counts(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a square ``C×C`` tensor of finite, non-negative counts; raise
    ``ValueError`` otherwise."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor (a C×C confusion matrix), got {type(value).__name__}")
    if value.ndim != 2 or value.shape[0] != value.shape[1] or value.shape[0] < 1:
        raise ValueError(f"{name} must be a square C×C confusion matrix; got shape {tuple(value.shape)}")
    if value.dtype == torch.bool or value.is_complex():
        raise ValueError(f"{name} must hold counts (int64, or floats), got {value.dtype}")
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must hold finite counts")
    if value.numel() and bool((value < 0).any()):
        raise ValueError(f"{name} must hold non-negative counts; got a minimum of {value.min().item()}")
    return value


def require_choice(name: str, value: object, choices: tuple[object, ...]) -> object:
    """Return ``value`` if it is one of ``choices``; raise ``ValueError`` naming them otherwise."""
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def require_bool_vector(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a non-empty 1-D ``bool`` tensor; raise ``ValueError`` otherwise."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of bools, got {type(value).__name__}")
    if value.dtype != torch.bool or value.ndim != 1:
        raise ValueError(f"{name} must be a 1-D bool tensor, one entry per sample (for example preds == labels); "
                         f"got {value.dtype} of shape {tuple(value.shape)}")
    require_nonempty(name, value)
    return value


def require_open_fraction(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a number with ``0 < value < 1``; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number with 0 < {name} < 1, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- chapter 4


def require_non_negative(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number ``>= 0``; raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def require_betas(name: str, value: object) -> tuple[float, float]:
    """Return ``value`` as ``(beta1, beta2)`` if it is a pair of numbers in ``[0, 1)``; raise ``ValueError``
    otherwise."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (beta1, beta2), got {value!r}")
    return require_fraction(f"{name}[0]", value[0]), require_fraction(f"{name}[1]", value[1])


def require_seed(name: str, value: object) -> int:
    """Return ``value`` if it is an ``int`` with ``0 <= value < 2**32`` (what every generator accepts);
    raise ``ValueError`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
        raise ValueError(f"{name} must be an int with 0 <= {name} < 2**32, got {value!r}")
    return value


def require_device(name: str, value: object) -> torch.device:
    """``value`` (a ``torch.device`` or a string such as ``"cuda"``) as a ``torch.device``; raise
    ``ValueError`` otherwise."""
    if isinstance(value, torch.device):
        return value
    if isinstance(value, str):
        try:
            return torch.device(value)
        except RuntimeError as exc:
            raise ValueError(f"{name} must name a device such as 'cpu', 'cuda' or 'mps', got {value!r}") from exc
    raise ValueError(f"{name} must be a torch.device or a string such as 'cuda', got {type(value).__name__}")
