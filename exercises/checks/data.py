"""Properties of the data-preparation exercises in ``exercises.data`` (chapter 1), and their visible checks.

The judges compare with independent oracles (NumPy in float64, ``torch.nn.functional``) and, for the
random operations, with properties that every correct implementation has whatever random numbers it
draws: each cropped image is a window of the zero-padded input, every offset occurs, offsets and coin
flips differ between images, the same generator state gives the same result.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from exercises.checks import (
    Mistake,
    Property,
    count_mismatches,
    expect_tensor,
    expect_unchanged,
    explain_failure,
    register,
)
from exercises.checks.program import ImportFailed, Program, Ref, StepFailed, resolve

# ----------------------------------------------------------------------------- shared helpers


def _describe(x: torch.Tensor) -> str:
    return f"{'×'.join(map(str, x.shape))} {str(x.dtype).removeprefix('torch.')}"


def _generator(p: Program, seed: int) -> Ref:
    """A ``torch.Generator`` seeded with ``seed``, made in the process that runs the program."""
    return p.method(p.call("torch.Generator"), "manual_seed", seed)


def _expect_index_tensor(value: Any, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise Mistake(f"{what} must be a torch.Tensor of indices; got {type(value).__name__}.")
    if value.dtype != torch.int64:
        raise Mistake(f"{what} has dtype {value.dtype}; indices must be int64 (torch.long): "
                      "torch.arange, torch.randperm and torch.nonzero give int64.")
    if value.ndim != 1:
        raise Mistake(f"{what} must be 1-D; it has shape {tuple(value.shape)}.")
    return value


def _raised(got: Any, target: str) -> None:
    """Turn an error that ``count_torch_calls`` caught into the diagnosis a learner reads."""
    if not isinstance(got, dict):
        raise Mistake(f"could not count the torch calls of {target.rpartition('.')[2]} (got {type(got).__name__}).")
    if "raised" in got:
        raise Mistake(explain_failure(StepFailed(target, str(got["raised"]), str(got.get("message", "")))))
    if type(got.get("calls")) is not int:
        raise Mistake(f"could not count the torch calls of {target.rpartition('.')[2]}.")


class _CallCounter(TorchFunctionMode):
    """Counts the torch functions and tensor methods called while it is active (not the calls they make)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self.calls += 1
        return func(*args, **(kwargs or {}))


def count_torch_calls(target: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call ``exercises.<target>(*args, **kwargs)`` counting the torch operations it calls.

    Returns ``{"calls": count}``, or ``{"raised": error type, "message": ...}`` when the call raised
    (the counting mode is always switched off again). A program calls this as
    ``"checks.data.count_torch_calls"``: a Python loop over the images shows as a count that grows
    with the number of images.
    """
    try:
        function = resolve(target)
    except ImportFailed as exc:
        return {"raised": "ImportFailed", "message": str(exc)}
    except AttributeError as exc:
        return {"raised": "AttributeError", "message": str(exc)}
    counter = _CallCounter()
    try:
        with counter:
            function(*args, **kwargs)
    except Exception as exc:
        return {"raised": type(exc).__name__, "message": str(exc)[:2000]}
    return {"calls": counter.calls}


def _vectorized_property(exercise: str, small: torch.Tensor, big: torch.Tensor, args: tuple, seed: int) -> Property:
    """The number of torch calls must not grow with the number of images: no Python loop over them.

    A loop over the images makes at least one call per image; a loop over something else (the
    ``(2p+1)²`` possible offsets, say) may make a few more calls when a larger batch happens to use
    more of them. So the property fails when the larger batch costs at least one extra call per two
    extra images, and ``big`` should hold many more images than ``small`` (a few hundred more).
    """
    p = Program()
    counts = {}
    for label, x in (("small", small), ("big", big)):
        counts[label] = p.call("checks.data.count_torch_calls", f"data.{exercise}", p.put(x.clone()), *args,
                               _generator(p, seed))
    p.fetch(**counts)

    def judge(got: dict[str, Any]) -> None:
        for label in ("small", "big"):
            _raised(got[label], f"data.{exercise}")
        few, many = int(got["small"]["calls"]), int(got["big"]["calls"])
        if many - few >= (big.shape[0] - small.shape[0]) / 2:
            raise Mistake(
                f"{exercise} made {few} torch calls for {small.shape[0]} images and {many} for {big.shape[0]}: "
                "it loops over the images in Python. Work on the whole batch at once: draw every image's random "
                "numbers in one call (a tensor of N values) and select with tensor indexing."
            )

    return Property(exercise, f"is vectorized (no Python loop over {big.shape[0]} images)", p, judge)


def _labels_with_counts(counts: dict[int, int], seed: int) -> torch.Tensor:
    """Labels holding ``counts[c]`` samples of class ``c``, in a random order."""
    labels = torch.cat([torch.full((n,), c, dtype=torch.int64) for c, n in counts.items()])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def _images(n: int, c: int, h: int, w: int, seed: int, dtype: torch.dtype = torch.float32,
            mean: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """Random images without exact zeros or symmetries, so that windows and mirrors are told apart."""
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale + mean
    x[x == 0] = 0.5
    return x.to(dtype)


# ----------------------------------------------------------------------------- stratified_split


def _split_program(labels: torch.Tensor, val_fraction: float, seeds: list[int]) -> Program:
    p = Program()
    lr = p.put(labels.clone())
    calls = {f"split{i}": p.call("data.stratified_split", lr, val_fraction, s) for i, s in enumerate(seeds)}
    return p.fetch(**calls, labels_after=lr)


def _expect_split(value: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``value`` must be ``(train_idx, val_idx)``: sorted int64 indices that partition ``0..n-1``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Mistake(f"stratified_split must return a pair (train_idx, val_idx); it returned {type(value).__name__}.")
    train = _expect_index_tensor(value[0], "train_idx")
    val = _expect_index_tensor(value[1], "val_idx")
    for name, idx in (("train_idx", train), ("val_idx", val)):
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise Mistake(f"{name} holds {int(idx.min())}..{int(idx.max())}; indices of {n} samples lie in 0..{n - 1}.")
        if idx.unique().numel() != idx.numel():
            raise Mistake(f"{name} holds some indices more than once: each sample goes to exactly one part, once.")
    both = torch.zeros(n, dtype=torch.int64)
    both[train] += 1
    both[val] += 1
    if bool((both > 1).any()):
        raise Mistake(f"{int((both > 1).sum())} indices are in both train_idx and val_idx: the parts must be disjoint.")
    if bool((both == 0).any()):
        raise Mistake(f"{int((both == 0).sum())} of the {n} indices are in neither part: together they must be 0..N-1.")
    for name, idx in (("train_idx", train), ("val_idx", val)):
        if idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
            raise Mistake(f"{name} is not sorted: return sorted indices (torch.sort(idx).values).")
    return train, val


def stratified_split_partition(labels: torch.Tensor, val_fraction: float, seed: int) -> Property:
    """``(train_idx, val_idx)`` are sorted int64 indices, disjoint, together ``0..N-1``; labels untouched."""

    def judge(got: dict[str, Any]) -> None:
        _expect_split(got["split0"], len(labels))
        expect_unchanged(got["labels_after"], labels, "labels", "stratified_split")

    return Property("stratified_split", f"splits {len(labels)} samples into two sorted, disjoint parts covering all",
                    _split_program(labels, val_fraction, [seed]), judge)


def stratified_split_counts(labels: torch.Tensor, val_fraction: float, seed: int) -> Property:
    """Each class with ``n`` samples puts ``floor(n·val_fraction + 0.5)`` of them in ``val_idx``."""
    classes = torch.unique(labels)
    sizes = [int((labels == c).sum()) for c in classes]
    expected = [math.floor(n * val_fraction + 0.5) for n in sizes]

    def judge(got: dict[str, Any]) -> None:
        _, val = _expect_split(got["split0"], len(labels))
        counts = [int((labels[val] == c).sum()) for c in classes]
        if counts == expected:
            return
        table = ", ".join(f"class {int(c)}: {k} of {n}" for c, k, n in zip(classes, counts, sizes, strict=True))
        wanted = ", ".join(f"{e}" for e in expected)
        if counts == [n - e for n, e in zip(sizes, expected, strict=True)]:
            raise Mistake("train_idx and val_idx are swapped: val_idx must hold the val_fraction share of each class.")
        if counts == [math.floor(n * val_fraction) for n in sizes]:
            raise Mistake(f"the validation counts ({table}) were rounded down; the contract rounds to nearest, "
                          "halves up: floor(n * val_fraction + 0.5), not int(n * val_fraction).")
        if counts == [round(n * val_fraction) for n in sizes]:
            raise Mistake(f"the validation counts ({table}) use Python's round(), which rounds halves to even "
                          "(2.5 -> 2); the contract rounds halves up: floor(n * val_fraction + 0.5).")
        if sum(counts) == sum(expected) or abs(sum(counts) - len(labels) * val_fraction) <= 1:
            raise Mistake(f"the split is not stratified: the validation part holds {table}, but each class must put "
                          f"floor(n * val_fraction + 0.5) of its n samples there ({wanted}). Split each class "
                          "separately instead of sampling from the whole dataset.")
        raise Mistake(f"the validation part holds {table}; expected {wanted} per class: floor(n * val_fraction + 0.5).")

    title = f"puts floor(n·{val_fraction:g} + 0.5) of each class in val_idx ({len(sizes)} classes)"
    return Property("stratified_split", title, _split_program(labels, val_fraction, [seed]), judge)


def stratified_split_reproducible(labels: torch.Tensor, val_fraction: float, seed: int, other_seed: int) -> Property:
    """The same seed gives the same split; another seed gives another split."""

    def judge(got: dict[str, Any]) -> None:
        first = _expect_split(got["split0"], len(labels))
        again = _expect_split(got["split1"], len(labels))
        other = _expect_split(got["split2"], len(labels))
        if not torch.equal(first[1], again[1]):
            raise Mistake(f"two calls with seed={seed} gave different splits: draw every random number from a "
                          "generator seeded with `seed` (torch.Generator().manual_seed(seed)), "
                          "not from the global one.")
        if torch.equal(first[1], other[1]):
            raise Mistake(f"seeds {seed} and {other_seed} gave the same split: the choice must be random, driven by "
                          "`seed` (shuffle each class with torch.randperm(..., generator=...)).")

    return Property("stratified_split", "same seed, same split; other seed, other split",
                    _split_program(labels, val_fraction, [seed, seed, other_seed]), judge)


@register("stratified_split")
def stratified_split_check() -> list[Property]:
    """The visible check for ``stratified_split``."""
    labels = _labels_with_counts({0: 30, 1: 12, 2: 7, 4: 50, 5: 1}, seed=3)  # imbalanced, class 3 absent
    halves = _labels_with_counts({0: 10, 1: 6, 2: 2, 3: 14}, seed=4)  # n·0.25 = 2.5, 1.5, 0.5, 3.5
    return [
        stratified_split_partition(labels, 0.2, seed=0),
        stratified_split_counts(labels, 0.2, seed=0),
        stratified_split_counts(halves, 0.25, seed=0),
        stratified_split_counts(labels, 0.0, seed=0),
        stratified_split_reproducible(labels, 0.2, seed=0, other_seed=1),
    ]


# ----------------------------------------------------------------------------- channel_stats


def _stats_program(images: torch.Tensor) -> Program:
    p = Program()
    xr = p.put(images.clone())
    return p.fetch(result=p.call("data.channel_stats", xr), images_after=xr)


def _expect_stats_shape(value: Any, what: str, images: torch.Tensor) -> torch.Tensor:
    n, c, h, w = images.shape
    if isinstance(value, torch.Tensor) and tuple(value.shape) != (c,):
        shape = tuple(value.shape)
        hint = {(): "one number for everything: keep one value per channel",
                (n, c): "one value per image and channel: also reduce over the batch",
                (c, h, w): "reduced over the batch only",
                (n,): "one value per image"}.get(shape)
        if hint is None and shape in ((w,), (h,)):
            hint = "reduced over the wrong axes: dims (0, 1, 2) belong to a channels-last N×H×W×C layout"
        if hint:
            raise Mistake(f"{what} has shape {shape}; expected ({c},), one value per channel ({hint}). "
                          "Reduce over N, H and W: dims (0, 2, 3).")
    # float64 results (accumulated in float64 and not cast back) are more precise, not wrong.
    dtype = torch.float64 if isinstance(value, torch.Tensor) and value.dtype == torch.float64 else images.dtype
    return expect_tensor(value, what, torch.empty(c, dtype=dtype))


def channel_stats_values(images: torch.Tensor) -> Property:
    """``(mean, std)`` per channel over ``N, H, W``, population std, to 1e-6 relative (NumPy float64 oracle)."""
    x = images.double().numpy()
    mean_ref = torch.from_numpy(x.mean(axis=(0, 2, 3)))
    std_ref = torch.from_numpy(x.std(axis=(0, 2, 3)))
    count = images.shape[0] * images.shape[2] * images.shape[3]

    def judge(got: dict[str, Any]) -> None:
        result = got["result"]
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise Mistake(f"channel_stats must return a pair (mean, std); it returned {type(result).__name__}.")
        mean = _expect_stats_shape(result[0], "channel_stats's mean", images).double()
        std = _expect_stats_shape(result[1], "channel_stats's std", images).double()
        mean_err = float(((mean - mean_ref).abs() / torch.maximum(mean_ref.abs(), std_ref)).max())
        std_err = float(((std - std_ref).abs() / std_ref).max())
        if mean_err <= 1e-6 and std_err <= 1e-6:
            return
        if mean_err > 1e-6:
            raise Mistake(f"the mean is off by {mean_err:.1e} relative (allowed: 1e-6): average over N, H and W "
                          "(dims 0, 2, 3), accumulating in float64 (images.double()).")
        if torch.allclose(std, std_ref * math.sqrt(count / (count - 1)), rtol=1e-6, atol=0):
            raise Mistake("std divides by n − 1 (torch.std's default, the unbiased estimate); the contract asks for "
                          "the population std, dividing by n: use correction=0 (or unbiased=False).")
        if torch.allclose(std, std_ref.square(), rtol=1e-5, atol=0):
            raise Mistake("channel_stats returned the variance as std: take its square root.")
        spread = float((mean_ref.abs() / std_ref).max())
        if spread > 100:
            raise Mistake(f"std is off by {std_err:.1e} relative (allowed: 1e-6) on {count:,} values per channel "
                          f"whose mean is about {spread:.0f} standard deviations from zero: E[x²] − E[x]² cancels "
                          "catastrophically in float32. Accumulate in float64 (images.double()) and subtract the "
                          "mean before squaring: sqrt(mean((x − mean)²)).")
        raise Mistake(f"std is off by {std_err:.1e} relative (allowed: 1e-6): "
                      "std[c] = sqrt(mean((x[:, c] − mean[c])²)) over N, H and W.")

    return Property("channel_stats", f"gives the per-channel mean and population std of a {_describe(images)} input",
                    _stats_program(images), judge)


def channel_stats_keeps_input(images: torch.Tensor) -> Property:
    """The images hold their original values after the call."""

    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["images_after"], images, "images", "channel_stats")

    return Property("channel_stats", "leaves its input unchanged", _stats_program(images), judge)


def _cancellation_images(seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """About a million values whose channel means lie 500 to 4,000 standard deviations from zero."""
    x = _images(64, 3, 74, 74, seed=seed, dtype=torch.float64)
    x = x * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) + torch.tensor([1000.0, -1000.0, 2000.0]).view(1, 3, 1, 1)
    return x.to(dtype)


@register("channel_stats")
def channel_stats_check() -> list[Property]:
    """The visible check for ``channel_stats``."""
    small = _images(4, 3, 5, 6, seed=5) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) \
        + torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)
    return [
        channel_stats_values(small),
        channel_stats_values(small.double()),
        channel_stats_values(_cancellation_images(seed=6)),
        channel_stats_keeps_input(small),
    ]


# ----------------------------------------------------------------------------- normalize


def _normalize_program(images: torch.Tensor, mean: Any, std: Any) -> Program:
    p = Program()
    xr = p.put(images.clone())
    mr = p.put(mean.clone() if isinstance(mean, torch.Tensor) else mean)
    sr = p.put(std.clone() if isinstance(std, torch.Tensor) else std)
    return p.fetch(out=p.call("data.normalize", xr, mr, sr), images_after=xr, mean_after=mr, std_after=sr)


def normalize_values(images: torch.Tensor, mean: Any, std: Any) -> Property:
    """``(x − mean[c]) / std[c]`` per channel, to float rounding, in the input's dtype."""
    x = images.double()
    m = torch.as_tensor(mean, dtype=torch.float64)
    s = torch.as_tensor(std, dtype=torch.float64)
    expected = (x - m.view(1, -1, 1, 1)) / s.view(1, -1, 1, 1)
    rtol = 1e-5 if images.dtype == torch.float32 else 1e-10
    atol = rtol * float(expected.abs().max())

    def close(candidate: torch.Tensor, out: torch.Tensor) -> bool:
        return candidate.shape == out.shape and count_mismatches(out, candidate, atol=atol, rtol=rtol) == 0

    def judge(got: dict[str, Any]) -> None:
        out = expect_tensor(got["out"], "normalize's output", images)
        if close(expected, out):
            return
        if images.shape[-1] == images.shape[1] and close((x - m) / s, out):
            raise Mistake("mean and std were applied along the last axis (the width), not the channels: reshape "
                          "them to C×1×1, e.g. mean.view(1, -1, 1, 1), so they broadcast over N, H and W.")
        batch_mean = x.mean(dim=(0, 2, 3), keepdim=True)
        batch_std = x.std(dim=(0, 2, 3), keepdim=True, correction=0)
        candidates = {
            "multiplied by std instead of dividing by it: (x − mean) / std.":
                (x - m.view(1, -1, 1, 1)) * s.view(1, -1, 1, 1),
            "divided before subtracting: compute (x − mean) / std, not x / std − mean.":
                x / s.view(1, -1, 1, 1) - m.view(1, -1, 1, 1),
            "subtracted the mean but did not divide by std.": x - m.view(1, -1, 1, 1),
            "used the batch's own statistics instead of the mean and std passed in (those come from the training "
            "split, and must be used for every split).": (x - batch_mean) / batch_std,
            "divided by the variance: divide by std.": (x - m.view(1, -1, 1, 1)) / s.square().view(1, -1, 1, 1),
        }
        for message, candidate in candidates.items():
            if close(candidate, out):
                raise Mistake(f"normalize {message}")
        raise Mistake("normalize's output differs from (x − mean[c]) / std[c] at "
                      f"{count_mismatches(out, expected, atol, rtol)} of {out.numel()} elements.")

    return Property("normalize", f"gives (x − mean[c]) / std[c] on a {_describe(images)} input",
                    _normalize_program(images, mean, std), judge)


def normalize_keeps_inputs(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> Property:
    """``images``, ``mean`` and ``std`` hold their original values after the call."""

    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["images_after"], images, "images", "normalize")
        expect_unchanged(got["mean_after"], mean, "mean", "normalize")
        expect_unchanged(got["std_after"], std, "std", "normalize")

    return Property("normalize", "leaves images, mean and std unchanged", _normalize_program(images, mean, std), judge)


@register("normalize")
def normalize_check() -> list[Property]:
    """The visible check for ``normalize``."""
    images = _images(4, 3, 5, 3, seed=7) * 0.3 + 0.5  # W == C: a broadcast over the wrong axis still runs
    mean = torch.tensor([0.5, 0.2, -0.3])
    std = torch.tensor([0.25, 2.0, 0.5])
    return [
        normalize_values(images, mean, std),
        normalize_values(images.double(), mean.double(), std.double()),
        normalize_values(_images(2, 1, 4, 6, seed=8), [0.1307], [0.3081]),
        normalize_keeps_inputs(images, mean, std),
    ]


# ----------------------------------------------------------------------------- random_crop


def _crop_program(images: torch.Tensor, padding: int, seeds: list[int]) -> Program:
    p = Program()
    xr = p.put(images.clone())
    outs = {f"out{i}": p.call("data.random_crop", xr, padding, _generator(p, s)) for i, s in enumerate(seeds)}
    return p.fetch(**outs, images_after=xr)


def _window_offsets(x: torch.Tensor, out: torch.Tensor, padding: int) -> torch.Tensor:
    """``N×2`` offsets ``(dy, dx)`` of the window of the zero-padded ``x`` that each output image equals; -1 if none."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)
    offsets = torch.full((n, 2), -1, dtype=torch.int64)
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            match = (padded[:, :, dy:dy + h, dx:dx + w] == out).flatten(1).all(1) & (offsets[:, 0] < 0)
            offsets[match] = torch.tensor([dy, dx])
    return offsets


def _explain_bad_window(x: torch.Tensor, out: torch.Tensor, padding: int, i: int) -> str:
    """Why output image ``i`` is not a window of the zero-padded input ``x[i]``."""
    _, c, h, w = x.shape
    k = 2 * padding + 1
    image, result = x[i], out[i]
    shifts = range(-padding, padding + 1)
    if any(torch.equal(torch.roll(image, (sy, sx), dims=(1, 2)), result) for sy in shifts for sx in shifts):
        return ("the image wraps around (torch.roll?): pixels pushed out on one side come back on the other. "
                "Pad with zeros, then cut the window.")
    for mode in ("reflect", "replicate"):
        if padding < min(h, w):
            padded = F.pad(image.unsqueeze(0), (padding,) * 4, mode=mode)[0]
            if any(torch.equal(padded[:, dy:dy + h, dx:dx + w], result) for dy in range(k) for dx in range(k)):
                return f"the border is filled by {mode} padding; the contract pads with zeros."
    padded = F.pad(image, (padding,) * 4)
    per_channel = [{(dy, dx) for dy in range(k) for dx in range(k)
                    if torch.equal(padded[ch, dy:dy + h, dx:dx + w], result[ch])} for ch in range(c)]
    if all(per_channel) and not set.intersection(*per_channel):
        return "its channels were cut at different offsets: all channels of one image share one offset (dy, dx)."
    others = F.pad(x, (padding,) * 4)
    for j in range(min(len(x), 64)):
        if j != i and any(torch.equal(others[j, :, dy:dy + h, dx:dx + w], result)
                          for dy in range(k) for dx in range(k)):
            return f"it is a window of input image {j}, not of image {i}: keep the images in their order."
    return (f"it must equal padded[{i}, :, dy:dy+H, dx:dx+W] for some 0 <= dy, dx <= 2·padding, where padded has "
            f"{padding} zeros on every side.")


def _expect_windows(value: Any, x: torch.Tensor, padding: int) -> torch.Tensor:
    """The output must be, image by image, an ``H×W`` window of the zero-padded input; returns the offsets."""
    n, c, h, w = x.shape
    if isinstance(value, torch.Tensor) and tuple(value.shape) == (n, c, h + 2 * padding, w + 2 * padding):
        raise Mistake(f"random_crop returned the padded images, {h + 2 * padding}×{w + 2 * padding}: cut each back "
                      f"to an {h}×{w} window.")
    out = expect_tensor(value, "random_crop's output", x)
    offsets = _window_offsets(x, out, padding)
    bad = torch.nonzero(offsets[:, 0] < 0).flatten()
    if bad.numel():
        i = int(bad[0])
        raise Mistake(f"{bad.numel()} of {n} output images are not an {h}×{w} window of their zero-padded input. "
                      f"Image {i}: {_explain_bad_window(x, out, padding, i)}")
    return offsets


def random_crop_windows(images: torch.Tensor, padding: int, seed: int) -> Property:
    """Each output image is an ``H×W`` window of its own zero-padded input image."""

    def judge(got: dict[str, Any]) -> None:
        _expect_windows(got["out0"], images, padding)

    return Property("random_crop", f"cuts a window of each zero-padded image ({_describe(images)}, padding={padding})",
                    _crop_program(images, padding, [seed]), judge)


def _chi2_threshold(dof: int, z: float = 4.75) -> float:
    """The chi-square quantile with ``dof`` degrees of freedom that a uniform sample exceeds with
    probability about 1e-6 (Wilson–Hilferty approximation, ``z`` standard deviations)."""
    a = 2 / (9 * dof)
    return dof * (1 - a + z * math.sqrt(a)) ** 3


def random_crop_offsets(images: torch.Tensor, padding: int, seed: int) -> Property:
    """Over many images all ``(2p+1)²`` offsets occur, about equally often, drawn per image and per axis."""
    n = images.shape[0]
    k = 2 * padding + 1
    if n < 5 * k * k or min(images.shape[2:]) <= padding:
        raise ValueError("random_crop_offsets needs at least 5 images per offset and images larger than the padding")

    def judge(got: dict[str, Any]) -> None:
        offsets = _expect_windows(got["out0"], images, padding)
        dy, dx = offsets[:, 0], offsets[:, 1]
        seen = {(int(a), int(b)) for a, b in offsets.tolist()}
        if len(seen) == 1:
            (a, b), = seen
            raise Mistake(f"all {n} images got the same offset (dy, dx) = ({a}, {b}): draw one offset per image "
                          "(N random values), not one for the whole batch.")
        if bool((dy == dx).all()):
            raise Mistake("dy always equals dx: draw the vertical and the horizontal offsets independently.")
        top = 2 * padding
        if int(dy.max()) < top or int(dx.max()) < top:
            raise Mistake(f"over {n} images the offsets never reached 2·padding = {top} (largest dy {int(dy.max())}, "
                          f"dx {int(dx.max())}): windows at the far edge never occur. torch.randint's upper bound is "
                          "exclusive: draw from torch.randint(0, 2 * padding + 1, ...).")
        if int(dy.min()) > 0 or int(dx.min()) > 0:
            raise Mistake(f"over {n} images the offsets never were 0 (smallest dy {int(dy.min())}, "
                          f"dx {int(dx.min())}): windows at the near edge never occur. "
                          "Offsets run from 0 to 2·padding.")
        missing = sorted({(a, b) for a in range(k) for b in range(k)} - seen)
        if missing:
            raise Mistake(f"{len(missing)} of the {k * k} offsets never occurred over {n} images, for example "
                          f"{missing[0]}: each (dy, dx) with 0 <= dy, dx <= 2·padding must be possible.")
        counts = torch.bincount(dy * k + dx, minlength=k * k).double()
        expected = n / (k * k)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        if chi2 > _chi2_threshold(k * k - 1):
            raise Mistake(f"the offsets are not uniform over the {k * k} possibilities: each occurred between "
                          f"{int(counts.min())} and {int(counts.max())} times over {n} images, where about "
                          f"{expected:.0f} each are expected. "
                          "Draw dy and dx with torch.randint(0, 2 * padding + 1, ...).")

    return Property("random_crop",
                    f"draws each of the {k * k} offsets, uniformly, per image ({n} images, padding={padding})",
                    _crop_program(images, padding, [seed]), judge)


def random_crop_identity(images: torch.Tensor, seed: int) -> Property:
    """``padding=0`` returns the images unchanged."""

    def judge(got: dict[str, Any]) -> None:
        out = expect_tensor(got["out0"], "random_crop's output", images)
        if not torch.equal(out, images):
            raise Mistake("with padding=0 the only window is the image itself: random_crop must return it unchanged.")

    return Property("random_crop", "padding=0 is the identity", _crop_program(images, 0, [seed]), judge)


def random_crop_reproducible(images: torch.Tensor, padding: int, seed: int, other_seed: int) -> Property:
    """The same generator state gives the same crops; another one gives other crops."""

    def judge(got: dict[str, Any]) -> None:
        first, again, other = (_expect_windows(got[f"out{i}"], images, padding) for i in range(3))
        if not torch.equal(first, again):
            raise Mistake("two generators seeded alike gave different crops: draw every random number from "
                          "`generator` (torch.randint(..., generator=generator)), never from the global one.")
        if torch.equal(first, other):
            raise Mistake(f"generators seeded with {seed} and {other_seed} gave the same crops: the offsets must come "
                          "from `generator`.")

    return Property("random_crop", "same generator state, same crops; other state, other crops",
                    _crop_program(images, padding, [seed, seed, other_seed]), judge)


def random_crop_keeps_input(images: torch.Tensor, padding: int, seed: int) -> Property:
    """The images hold their original values after the call."""

    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["images_after"], images, "images", "random_crop")

    return Property("random_crop", "leaves its input unchanged", _crop_program(images, padding, [seed]), judge)


def random_crop_vectorized(small: torch.Tensor, big: torch.Tensor, padding: int, seed: int) -> Property:
    """The number of torch calls does not grow with the number of images."""
    return _vectorized_property("random_crop", small, big, (padding,), seed)


@register("random_crop")
def random_crop_check() -> list[Property]:
    """The visible check for ``random_crop``."""
    images = _images(16, 3, 6, 7, seed=9)
    return [
        random_crop_windows(images, 2, seed=0),
        random_crop_windows(images.double(), 1, seed=1),
        random_crop_offsets(_images(1000, 1, 4, 4, seed=10), 2, seed=2),
        random_crop_identity(images, seed=3),
        random_crop_reproducible(images, 2, seed=4, other_seed=5),
        random_crop_keeps_input(images, 2, seed=6),
        random_crop_vectorized(_images(50, 3, 5, 5, seed=11), _images(400, 3, 5, 5, seed=12), 2, seed=7),
    ]


# ----------------------------------------------------------------------------- random_hflip


def _flip_program(images: torch.Tensor, p: float, seeds: list[int]) -> Program:
    prog = Program()
    xr = prog.put(images.clone())
    outs = {f"out{i}": prog.call("data.random_hflip", xr, p, _generator(prog, s)) for i, s in enumerate(seeds)}
    return prog.fetch(**outs, images_after=xr)


def _expect_flips(value: Any, x: torch.Tensor) -> torch.Tensor:
    """Each output image must be its input or the input mirrored along the width; returns which were mirrored."""
    out = expect_tensor(value, "random_hflip's output", x)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    bad = torch.nonzero(~(same | mirrored)).flatten()
    if bad.numel():
        i = int(bad[0])
        wrong = {"flipped upside down (along the height, dim 2): a horizontal flip mirrors the last axis, the width "
                 "(images.flip(-1))": x[i].flip(-2),
                 "flipped along both axes (a 180° rotation): mirror only the last axis (images.flip(-1))":
                     x[i].flip(-1, -2),
                 "reversed the channels (dim 1): mirror the last axis, the width (images.flip(-1))": x[i].flip(0)}
        for message, candidate in wrong.items():
            if torch.equal(out[i], candidate):
                raise Mistake(f"random_hflip {message}.")
        if torch.equal(out, x.flip(0)) or torch.equal(out, x.flip(0).flip(-1)):
            raise Mistake("random_hflip reversed the order of the images (dim 0): "
                          "mirror each image along its last axis.")
        raise Mistake(f"{bad.numel()} of {len(x)} output images are neither their input nor its mirror image "
                      f"(image {i}): out[n] must be images[n] or images[n].flip(-1).")
    return mirrored


def random_hflip_images(images: torch.Tensor, p: float, seed: int) -> Property:
    """Each output image is its input or its left-right mirror; ``p=0`` flips none, ``p=1`` all."""

    def judge(got: dict[str, Any]) -> None:
        mirrored = _expect_flips(got["out0"], images)
        if p == 0 and bool(mirrored.any()):
            raise Mistake(f"with p=0 no image may be flipped; {int(mirrored.sum())} were. Flip where the uniform "
                          "draw is < p.")
        if p == 1 and not bool(mirrored.all()):
            raise Mistake(f"with p=1 every image must be flipped; {int((~mirrored).sum())} were not. Flip where the "
                          "uniform draw is < p.")

    return Property("random_hflip", f"mirrors whole images along the width ({_describe(images)}, p={p:g})",
                    _flip_program(images, p, [seed]), judge)


def random_hflip_rate(images: torch.Tensor, p: float, seed: int) -> Property:
    """About ``p·N`` of ``N`` images are flipped, each by its own coin (a 6-sigma binomial bound)."""
    n = len(images)
    sigma = math.sqrt(n * p * (1 - p))
    if sigma < 5:
        raise ValueError("random_hflip_rate needs enough images for a binomial bound")

    def judge(got: dict[str, Any]) -> None:
        flips = int(_expect_flips(got["out0"], images).sum())
        if abs(flips - n * p) <= 6 * sigma:
            return
        if flips in (0, n):
            raise Mistake(f"{'all' if flips else 'none'} of the {n} images were flipped with p={p:g}: one coin was "
                          "tossed for the whole batch. Toss one per image: torch.rand(N, generator=generator) < p.")
        if abs(flips - n * (1 - p)) <= 6 * sigma:
            raise Mistake(f"{flips} of {n} images were flipped with p={p:g}, about 1 − p: the comparison is reversed. "
                          "Flip where the uniform draw is < p.")
        raise Mistake(f"{flips} of {n} images were flipped with p={p:g}; expected about {n * p:.0f} "
                      f"(± {6 * sigma:.0f}).")

    return Property("random_hflip", f"flips each image with probability p (p={p:g}, {n} images)",
                    _flip_program(images, p, [seed]), judge)


def random_hflip_reproducible(images: torch.Tensor, p: float, seed: int, other_seed: int) -> Property:
    """The same generator state gives the same flips; another one gives other flips."""

    def judge(got: dict[str, Any]) -> None:
        first, again, other = (_expect_flips(got[f"out{i}"], images) for i in range(3))
        if not torch.equal(first, again):
            raise Mistake("two generators seeded alike gave different flips: draw the coins from `generator` "
                          "(torch.rand(..., generator=generator)), never from the global one.")
        if torch.equal(first, other):
            raise Mistake(f"generators seeded with {seed} and {other_seed} flipped the same images: the coins must "
                          "come from `generator`.")

    return Property("random_hflip", "same generator state, same flips; other state, other flips",
                    _flip_program(images, p, [seed, seed, other_seed]), judge)


def random_hflip_keeps_input(images: torch.Tensor, p: float, seed: int) -> Property:
    """The images hold their original values after the call."""

    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["images_after"], images, "images", "random_hflip")

    return Property("random_hflip", "leaves its input unchanged", _flip_program(images, p, [seed]), judge)


def random_hflip_vectorized(small: torch.Tensor, big: torch.Tensor, p: float, seed: int) -> Property:
    """The number of torch calls does not grow with the number of images."""
    return _vectorized_property("random_hflip", small, big, (p,), seed)


@register("random_hflip")
def random_hflip_check() -> list[Property]:
    """The visible check for ``random_hflip``."""
    images = _images(20, 3, 4, 5, seed=13)
    return [
        random_hflip_images(images, 0.5, seed=0),
        random_hflip_images(images, 0.0, seed=1),
        random_hflip_images(images.double(), 1.0, seed=2),
        random_hflip_rate(_images(2000, 1, 2, 3, seed=14), 0.3, seed=3),
        random_hflip_reproducible(_images(64, 1, 3, 3, seed=15), 0.5, seed=4, other_seed=5),
        random_hflip_keeps_input(images, 0.5, seed=6),
        random_hflip_vectorized(_images(50, 3, 4, 4, seed=16), _images(400, 3, 4, 4, seed=17), 0.5, seed=7),
    ]


# ----------------------------------------------------------------------------- one_hot


def _one_hot_program(labels: torch.Tensor, num_classes: int) -> Program:
    p = Program()
    lr = p.put(labels.clone())
    return p.fetch(out=p.call("data.one_hot", lr, num_classes), labels_after=lr)


def one_hot_values(labels: torch.Tensor, num_classes: int) -> Property:
    """A float ``N×K`` tensor with a single 1.0 per row, in the label's column."""
    n = len(labels)
    expected = F.one_hot(labels, num_classes)

    def judge(got: dict[str, Any]) -> None:
        out = got["out"]
        if not isinstance(out, torch.Tensor):
            raise Mistake(f"one_hot must return a torch.Tensor; got {type(out).__name__}.")
        if tuple(out.shape) != (n, num_classes):
            if tuple(out.shape) == (num_classes, n):
                raise Mistake(f"one_hot returned num_classes×N = {tuple(out.shape)}; "
                              "expected N×num_classes (one row per label).")
            if n and tuple(out.shape) == (n, int(labels.max()) + 1):
                raise Mistake(f"one_hot has {out.shape[1]} columns, max(labels) + 1, instead of num_classes = "
                              f"{num_classes}: pass num_classes on (F.one_hot(labels) alone guesses it).")
            raise Mistake(f"one_hot returned shape {tuple(out.shape)}; expected ({n}, {num_classes}).")
        if not out.is_floating_point():
            raise Mistake(f"one_hot returned dtype {out.dtype}; the contract asks for a float tensor "
                          "(torch.nn.functional.one_hot gives int64: convert with .float()).")
        if torch.equal(out, expected.to(out.dtype)):
            return
        if torch.equal(out, 1 - expected.to(out.dtype)):
            raise Mistake("one_hot is inverted: the label's column must be 1 and every other column 0.")
        rows = torch.nonzero((out != expected.to(out.dtype)).any(1)).flatten()
        i = int(rows[0])
        raise Mistake(f"{rows.numel()} of {n} rows are not one-hot vectors of their label; row {i} should have its "
                      f"single 1.0 in column {int(labels[i])}.")

    return Property("one_hot", f"encodes {n} labels as {n}×{num_classes} float one-hot rows",
                    _one_hot_program(labels, num_classes), judge)


def one_hot_keeps_input(labels: torch.Tensor, num_classes: int) -> Property:
    """The labels hold their original values after the call."""

    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["labels_after"], labels, "labels", "one_hot")

    return Property("one_hot", "leaves its input unchanged", _one_hot_program(labels, num_classes), judge)


@register("one_hot")
def one_hot_check() -> list[Property]:
    """The visible check for ``one_hot``."""
    labels = torch.tensor([2, 0, 1, 2, 0, 1])
    return [
        one_hot_values(labels, 5),
        one_hot_values(labels, 3),
        one_hot_keeps_input(labels, 5),
    ]


# ----------------------------------------------------------------------------- minibatch_indices


def _batches_program(n: int, batch_size: int, shuffle: bool, seeds: list[int]) -> Program:
    p = Program()
    calls = {f"batches{i}": p.call("data.minibatch_indices", n, batch_size, shuffle, _generator(p, s))
             for i, s in enumerate(seeds)}
    return p.fetch(**calls)


def _expect_batches(value: Any, n: int, batch_size: int, shuffle: bool) -> list[torch.Tensor]:
    """Batches of int64 indices covering ``0..n-1`` once, sized ``batch_size`` but the last, in order
    unless shuffled."""
    if not isinstance(value, (list, tuple)):
        kind = getattr(value, "type_name", type(value).__name__)
        raise Mistake(f"minibatch_indices must return a list of index tensors; it returned a {kind}"
                      + (" (a generator function? collect the batches in a list)" if kind == "generator" else "") + ".")
    batches = [_expect_index_tensor(b, f"batch {i}") for i, b in enumerate(value)]
    everything = torch.cat(batches) if batches else torch.zeros(0, dtype=torch.int64)
    if everything.numel() and (int(everything.min()) < 0 or int(everything.max()) >= n):
        raise Mistake(f"the batches hold indices {int(everything.min())}..{int(everything.max())}; with n = {n} they "
                      f"lie in 0..{n - 1}.")
    counts = torch.bincount(everything, minlength=n)
    if bool((counts > 1).any()):
        i = int(torch.nonzero(counts > 1)[0])
        raise Mistake(f"index {i} appears {int(counts[i])} times (and {int((counts > 1).sum())} indices repeat): "
                      "each sample appears once per epoch. Shuffle without replacement (torch.randperm), "
                      "not with torch.randint.")
    missing = int((counts == 0).sum())
    tail = n % batch_size
    if missing:
        if missing == tail and len(batches) == n // batch_size:
            raise Mistake(f"the last, shorter batch is missing: {missing} of the {n} samples never appear. Keep the "
                          f"remaining n mod batch_size = {tail} samples as a final, smaller batch.")
        raise Mistake(f"{missing} of the {n} samples never appear in any batch: together the batches hold each of "
                      "0..n-1 exactly once.")
    sizes = [len(b) for b in batches]
    wanted = [batch_size] * (n // batch_size) + ([tail] if tail else [])
    if sizes != wanted:
        if sorted(sizes) == sorted(wanted) and all(_consecutive(b) for b in batches):
            raise Mistake("only the order of the batches was shuffled; each batch still holds consecutive samples "
                          "(and the short batch is no longer the last). Shuffle all n indices first, then cut them "
                          "into batches.")
        if sorted(sizes) == sorted(wanted):
            raise Mistake(f"the batch sizes are {_sizes(sizes)}: the short batch must be the last one.")
        if sizes == [*wanted, 0]:
            raise Mistake(f"the last batch is empty: with n = {n} and batch_size = {batch_size} there are "
                          f"{len(wanted)} batches, none of them empty.")
        raise Mistake(f"the batch sizes are {_sizes(sizes)}; expected {_sizes(wanted)}: every batch holds batch_size "
                      "indices except the last, which holds the rest.")
    if not shuffle and not torch.equal(everything, torch.arange(n)):
        raise Mistake("with shuffle=False the batches must hold 0, 1, ..., n-1 in order.")
    return batches


def _consecutive(batch: torch.Tensor) -> bool:
    return bool(batch.numel() == 0
                or torch.equal(batch.sort().values, torch.arange(int(batch.min()), int(batch.min()) + len(batch))))


def _sizes(sizes: list[int]) -> str:
    return (str(sizes) if len(sizes) <= 6
            else f"[{', '.join(map(str, sizes[:3]))}, ..., {', '.join(map(str, sizes[-2:]))}]")


def minibatch_indices_cover(n: int, batch_size: int, shuffle: bool, seed: int) -> Property:
    """The batches hold each index once, sized ``batch_size`` but the last; in order unless shuffled."""

    def judge(got: dict[str, Any]) -> None:
        _expect_batches(got["batches0"], n, batch_size, shuffle)

    title = f"covers 0..{n - 1} once in batches of {batch_size}{', shuffled' if shuffle else ', in order'}"
    return Property("minibatch_indices", title, _batches_program(n, batch_size, shuffle, [seed]), judge)


def minibatch_indices_shuffled(n: int, batch_size: int, seed: int, other_seed: int) -> Property:
    """With ``shuffle=True`` the order is random, mixes the whole dataset, and follows the generator."""

    def judge(got: dict[str, Any]) -> None:
        first, again, other = (_expect_batches(got[f"batches{i}"], n, batch_size, True) for i in range(3))
        order = torch.cat(first)
        if torch.equal(order, torch.arange(n)):
            raise Mistake("with shuffle=True the indices came out in order: shuffle them with "
                          "torch.randperm(n, generator=generator).")
        if all(_consecutive(b) for b in first if len(b) == batch_size):
            raise Mistake("only the order of the batches was shuffled; each batch still holds consecutive samples. "
                          "Shuffle all n indices first, then cut them into batches.")
        if not torch.equal(order, torch.cat(again)):
            raise Mistake("two generators seeded alike gave different batches: shuffle with `generator` "
                          "(torch.randperm(n, generator=generator)), never with the global one.")
        if torch.equal(order, torch.cat(other)):
            raise Mistake(f"generators seeded with {seed} and {other_seed} gave the same order: the shuffle must "
                          "come from `generator`.")

    return Property("minibatch_indices", f"shuffles all {n} indices with the generator",
                    _batches_program(n, batch_size, True, [seed, seed, other_seed]), judge)


@register("minibatch_indices")
def minibatch_indices_check() -> list[Property]:
    """The visible check for ``minibatch_indices``."""
    return [
        minibatch_indices_cover(10, 3, False, seed=0),
        minibatch_indices_cover(12, 4, False, seed=0),
        minibatch_indices_cover(12, 5, False, seed=0),
        minibatch_indices_cover(2, 5, False, seed=0),
        minibatch_indices_cover(10, 3, True, seed=1),
        minibatch_indices_shuffled(1000, 100, seed=2, other_seed=3),
    ]

