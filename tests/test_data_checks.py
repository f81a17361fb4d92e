"""The chapter 1 properties accept every correct implementation and name each realistic mistake.

Each variant is the reference ``solutions/data.py`` with one exercise's body replaced. The properties
run in-process here, exactly as the visible checks run them; test_data_grading.py runs the hidden
tests through the sandbox.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

import exercises
from exercises.checks import CheckFailed, check, evaluate
from exercises.checks.data import (
    channel_stats_check,
    minibatch_indices_check,
    normalize_check,
    one_hot_check,
    random_crop_check,
    random_hflip_check,
    stratified_split_check,
)
from grading import PROJECT_ROOT
from grading.stubs import strip_markers
from tests.conftest import forget_module, module_installer, solution_with_body

SOLUTION = (PROJECT_ROOT / "solutions" / "data.py").read_text(encoding="utf-8")
REFERENCE = strip_markers(SOLUTION)
STUB = (PROJECT_ROOT / "exercises" / "data.py").read_text(encoding="utf-8")
CHECKS = {
    "stratified_split": stratified_split_check,
    "channel_stats": channel_stats_check,
    "normalize": normalize_check,
    "random_crop": random_crop_check,
    "random_hflip": random_hflip_check,
    "one_hot": one_hot_check,
    "minibatch_indices": minibatch_indices_check,
}


def with_body(function: str, body: str) -> str:
    """The reference with the solution region of ``function`` replaced by ``body``."""
    return solution_with_body(SOLUTION, function, body)


CORRECT = {
    "stratified_split": {
        "numpy generator": """
            import numpy as np
            rng = np.random.default_rng(seed)
            lab = labels.cpu().numpy()
            val = []
            for c in np.unique(lab):
                idx = np.flatnonzero(lab == c)
                k = int(np.floor(len(idx) * val_fraction + 0.5))
                val.extend(rng.choice(idx, size=k, replace=False).tolist())
            val_idx = torch.tensor(sorted(val), dtype=torch.int64)
            keep = torch.ones(len(lab), dtype=torch.bool)
            keep[val_idx] = False
            return torch.arange(len(lab))[keep], val_idx
        """,
        "one permutation, grouped by class": """
            g = torch.Generator().manual_seed(seed)
            perm = torch.randperm(len(labels), generator=g)
            grouped = perm[torch.sort(labels[perm], stable=True).indices]
            classes, counts = torch.unique(labels, return_counts=True)
            val, start = [], 0
            for n in counts.tolist():
                val.append(grouped[start:start + int(n * val_fraction + 0.5)])
                start += n
            val_idx = torch.cat(val).sort().values
            mask = torch.ones(len(labels), dtype=torch.bool)
            mask[val_idx] = False
            return mask.nonzero().flatten(), val_idx
        """,
        "seeds the global generator": """
            torch.manual_seed(seed)
            train, val = [], []
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                idx = idx[torch.randperm(len(idx))]
                k = math.floor(len(idx) * val_fraction + 0.5)
                val.append(idx[:k])
                train.append(idx[k:])
            return torch.cat(train).sort().values, torch.cat(val).sort().values
        """,
    },
    "channel_stats": {
        "float64 results, not cast back": """
            x = images.double()
            mean = x.mean(dim=(0, 2, 3))
            return mean, ((x - mean.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3)).sqrt()
        """,
        "var_mean in float64": """
            var, mean = torch.var_mean(images.double(), dim=(0, 2, 3), correction=0)
            return mean.to(images.dtype), var.sqrt().to(images.dtype)
        """,
        "numpy": """
            import numpy as np
            x = images.detach().cpu().numpy().astype(np.float64)
            mean, std = x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
            return torch.from_numpy(mean).to(images), torch.from_numpy(std).to(images)
        """,
        "E[x²] − E[x]² in float64": """
            x = images.double()
            mean = x.mean(dim=(0, 2, 3))
            var = (x * x).mean(dim=(0, 2, 3)) - mean ** 2
            return mean.to(images.dtype), var.sqrt().to(images.dtype)
        """,
        "channels first, then flatten": """
            x = images.transpose(0, 1).reshape(images.shape[1], -1).double()
            return x.mean(dim=1).to(images.dtype), x.std(dim=1, unbiased=False).to(images.dtype)
        """,
        "two passes in float32": """
            mean = images.mean(dim=(0, 2, 3))
            var = ((images - mean.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))
            return mean, var.sqrt()
        """,
    },
    "normalize": {
        "None indexing": "return (images - mean[None, :, None, None]) / std[None, :, None, None]",
        "methods": "return images.sub(mean.view(-1, 1, 1)).div(std.view(-1, 1, 1))",
        "reciprocal": "return (images - mean.view(1, -1, 1, 1)) * (1 / std).view(1, -1, 1, 1)",
        "channels last and back": "return ((images.movedim(1, -1) - mean) / std).movedim(-1, 1)",
    },
    "random_crop": {
        "rows and columns by advanced indexing": """
            n, _, h, w = images.shape
            padded = F.pad(images, (padding,) * 4)
            off = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
            rows = (off[:, :1] + torch.arange(h)).view(n, 1, h, 1)
            cols = (off[:, 1:] + torch.arange(w)).view(n, 1, 1, w)
            return padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(images.shape[1]).view(1, -1, 1, 1), rows, cols]
        """,
        "flat gather": """
            n, c, h, w = images.shape
            padded = F.pad(images, (padding, padding, padding, padding))
            dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
            dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
            width = w + 2 * padding
            index = ((dy.view(n, 1, 1) + torch.arange(h).view(1, h, 1)) * width
                     + dx.view(n, 1, 1) + torch.arange(w).view(1, 1, w))
            return padded.flatten(2).gather(2, index.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
        """,
        "one draw of (2p+1)² and a loop over offsets": """
            n, _, h, w = images.shape
            k = 2 * padding + 1
            padded = images.new_zeros(n, images.shape[1], h + 2 * padding, w + 2 * padding)
            padded[:, :, padding:padding + h, padding:padding + w] = images
            which = torch.randint(0, k * k, (n,), generator=generator)
            out = torch.empty_like(images)
            for o in range(k * k):
                sel = which == o
                out[sel] = padded[sel, :, o // k:o // k + h, o % k:o % k + w]
            return out
        """,
        "a loop over the offsets that occur": """
            n, c, h, w = images.shape
            k = 2 * padding + 1
            padded = F.pad(images, (padding,) * 4)
            which = torch.randint(0, k * k, (n,), generator=generator)
            out = torch.empty_like(images)
            for o in which.unique().tolist():
                sel = (which == o).nonzero().flatten()
                out[sel] = padded[sel, :, o // k:o // k + h, o % k:o % k + w]
            return out
        """,
    },
    "random_hflip": {
        "clone and assign": """
            flip = torch.rand(images.shape[0], generator=generator) < p
            out = images.clone()
            out[flip] = images[flip].flip(-1)
            return out
        """,
        "bernoulli": """
            coins = torch.bernoulli(torch.full((images.shape[0],), p), generator=generator).bool()
            return torch.where(coins[:, None, None, None], images.flip(3), images)
        """,
        "gather with mirrored columns": """
            n, c, h, w = images.shape
            flip = torch.rand(n, generator=generator) < p
            cols = torch.where(flip[:, None], torch.arange(w - 1, -1, -1), torch.arange(w))
            return images.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))
        """,
    },
    "one_hot": {
        "functional": "return F.one_hot(labels, num_classes).float()",
        "scatter": "return torch.zeros(len(labels), num_classes).scatter_(1, labels[:, None], 1.0)",
        "eye": "return torch.eye(num_classes, device=labels.device)[labels]",
        "comparison": "return (labels[:, None] == torch.arange(num_classes)).to(torch.float32)",
    },
    "minibatch_indices": {
        "slices": """
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            return [order[i:i + batch_size] for i in range(0, n, batch_size)]
        """,
        "tuple from split": """
            return (torch.randperm(n, generator=generator) if shuffle else torch.arange(n)).split(batch_size)
        """,
    },
}

MISTAKES = {  # exercise -> variant -> (body, words the diagnosis must contain)
    "stratified_split": {
        "not stratified": ("""
            g = torch.Generator().manual_seed(seed)
            perm = torch.randperm(len(labels), generator=g)
            k = math.floor(len(labels) * val_fraction + 0.5)
            return perm[k:].sort().values, perm[:k].sort().values
        """, "not stratified"),
        "global generator, not seeded": ("""
            in_val = torch.zeros(len(labels), dtype=torch.bool)
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                in_val[idx[torch.randperm(len(idx))[:math.floor(len(idx) * val_fraction + 0.5)]]] = True
            return (~in_val).nonzero().flatten(), in_val.nonzero().flatten()
        """, "different splits"),
        "ignores the seed": ("""
            g = torch.Generator().manual_seed(0)
            in_val = torch.zeros(len(labels), dtype=torch.bool)
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                in_val[idx[torch.randperm(len(idx), generator=g)[:math.floor(len(idx) * val_fraction + 0.5)]]] = True
            return (~in_val).nonzero().flatten(), in_val.nonzero().flatten()
        """, "gave the same split"),
        "the first samples of each class": ("""
            in_val = torch.zeros(len(labels), dtype=torch.bool)
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                in_val[idx[:math.floor(len(idx) * val_fraction + 0.5)]] = True
            return (~in_val).nonzero().flatten(), in_val.nonzero().flatten()
        """, "gave the same split"),
        "int() truncates": ("""
            g = torch.Generator().manual_seed(seed)
            in_val = torch.zeros(len(labels), dtype=torch.bool)
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                in_val[idx[torch.randperm(len(idx), generator=g)[:int(len(idx) * val_fraction)]]] = True
            return (~in_val).nonzero().flatten(), in_val.nonzero().flatten()
        """, "rounded down"),
        "round() rounds halves to even": ("""
            g = torch.Generator().manual_seed(seed)
            in_val = torch.zeros(len(labels), dtype=torch.bool)
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                in_val[idx[torch.randperm(len(idx), generator=g)[:round(len(idx) * val_fraction)]]] = True
            return (~in_val).nonzero().flatten(), in_val.nonzero().flatten()
        """, "rounds halves to even"),
        "unsorted": ("""
            g = torch.Generator().manual_seed(seed)
            val = []
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                val.append(idx[torch.randperm(len(idx), generator=g)[:math.floor(len(idx) * val_fraction + 0.5)]])
            val = torch.cat(val)
            keep = torch.ones(len(labels), dtype=torch.bool)
            keep[val] = False
            return keep.nonzero().flatten(), val
        """, "not sorted"),
        "swapped": ("""
            g = torch.Generator().manual_seed(seed)
            in_val = torch.zeros(len(labels), dtype=torch.bool)
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                in_val[idx[torch.randperm(len(idx), generator=g)[:math.floor(len(idx) * val_fraction + 0.5)]]] = True
            return in_val.nonzero().flatten(), (~in_val).nonzero().flatten()
        """, "swapped"),
        "int32 indices": ("""
            g = torch.Generator().manual_seed(seed)
            in_val = torch.zeros(len(labels), dtype=torch.bool)
            for c in labels.unique():
                idx = (labels == c).nonzero().flatten()
                in_val[idx[torch.randperm(len(idx), generator=g)[:math.floor(len(idx) * val_fraction + 0.5)]]] = True
            return (~in_val).nonzero().flatten().int(), in_val.nonzero().flatten().int()
        """, "int64"),
    },
    "channel_stats": {
        "E[x²] − E[x]² in float32": ("""
            mean = images.mean(dim=(0, 2, 3))
            return mean, ((images ** 2).mean(dim=(0, 2, 3)) - mean ** 2).sqrt()
        """, "cancels catastrophically"),
        "unbiased std": ("""
            x = images.double()
            return x.mean(dim=(0, 2, 3)).to(images.dtype), x.std(dim=(0, 2, 3)).to(images.dtype)
        """, "n − 1"),
        "channels-last axes": ("""
            x = images.double()
            return x.mean(dim=(0, 1, 2)).to(images.dtype), x.std(dim=(0, 1, 2), correction=0).to(images.dtype)
        """, "channels-last"),
        "per image": ("""
            x = images.double()
            return x.mean(dim=(2, 3)).to(images.dtype), x.std(dim=(2, 3), correction=0).to(images.dtype)
        """, "also reduce over the batch"),
        "variance": ("""
            x = images.double()
            return x.mean(dim=(0, 2, 3)).to(images.dtype), x.var(dim=(0, 2, 3), correction=0).to(images.dtype)
        """, "variance"),
        "centres the input in place": ("""
            mean = images.double().mean(dim=(0, 2, 3))
            images -= mean.to(images.dtype).view(1, -1, 1, 1)
            return mean.to(images.dtype), images.double().square().mean(dim=(0, 2, 3)).sqrt().to(images.dtype)
        """, "in place"),
    },
    "normalize": {
        "broadcast along the width": ("return (images - mean) / std", "along the last axis"),
        "multiplies by std": ("return (images - mean.view(1, -1, 1, 1)) * std.view(1, -1, 1, 1)", "multiplied by std"),
        "divides first": ("return images / std.view(1, -1, 1, 1) - mean.view(1, -1, 1, 1)",
                          "divided before subtracting"),
        "batch statistics": ("""
            m = images.mean(dim=(0, 2, 3), keepdim=True)
            return (images - m) / images.std(dim=(0, 2, 3), keepdim=True, correction=0)
        """, "batch's own statistics"),
        "in place": ("return images.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))", "in place"),
        "float64 result": ("return (images.double() - mean.view(1, -1, 1, 1).double()) "
                           "/ std.view(1, -1, 1, 1).double()",
                           "dtype"),
    },
    "random_crop": {
        "randint's exclusive bound": ("""
            n, _, h, w = images.shape
            windows = F.pad(images, (padding,) * 4).unfold(2, h, 1).unfold(3, w, 1)
            dy, dx = torch.randint(0, 2 * padding, (2, n), generator=generator)
            return windows[torch.arange(n), :, dy, dx]
        """, "never reached 2·padding"),
        "one offset for the batch": ("""
            n, _, h, w = images.shape
            dy, dx = torch.randint(0, 2 * padding + 1, (2,), generator=generator).tolist()
            return F.pad(images, (padding,) * 4)[:, :, dy:dy + h, dx:dx + w]
        """, "the same offset"),
        "dy equals dx": ("""
            n, _, h, w = images.shape
            windows = F.pad(images, (padding,) * 4).unfold(2, h, 1).unfold(3, w, 1)
            d = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
            return windows[torch.arange(n), :, d, d]
        """, "dy always equals dx"),
        "offsets 0..p only": ("""
            n, _, h, w = images.shape
            windows = F.pad(images, (padding,) * 4).unfold(2, h, 1).unfold(3, w, 1)
            dy, dx = torch.randint(0, padding + 1, (2, n), generator=generator)
            return windows[torch.arange(n), :, dy, dx]
        """, "never reached 2·padding"),
        "torch.roll wraps around": ("""
            n = images.shape[0]
            shifts = torch.randint(-padding, padding + 1, (n, 2), generator=generator).tolist()
            return torch.stack([torch.roll(img, tuple(s), dims=(1, 2)) for img, s in zip(images, shifts)])
        """, "wraps around"),
        "reflect padding": ("""
            n, _, h, w = images.shape
            windows = F.pad(images, (padding,) * 4, mode="reflect").unfold(2, h, 1).unfold(3, w, 1)
            dy, dx = torch.randint(0, 2 * padding + 1, (2, n), generator=generator)
            return windows[torch.arange(n), :, dy, dx]
        """, "reflect padding"),
        "returns the padded images": ("return F.pad(images, (padding,) * 4)", "returned the padded images"),
        "each channel its own offset": ("""
            n, c, h, w = images.shape
            windows = F.pad(images, (padding,) * 4).unfold(2, h, 1).unfold(3, w, 1)
            dy, dx = torch.randint(0, 2 * padding + 1, (2, n, c), generator=generator)
            return windows[torch.arange(n)[:, None], torch.arange(c), dy, dx]
        """, "different offsets"),
        "a Python loop over the images": ("""
            n, _, h, w = images.shape
            out = torch.empty_like(images)
            for i in range(n):
                dy, dx = torch.randint(0, 2 * padding + 1, (2,), generator=generator).tolist()
                out[i] = F.pad(images[i], (padding,) * 4)[:, dy:dy + h, dx:dx + w]
            return out
        """, "loops over the images"),
        "global generator": ("""
            n, _, h, w = images.shape
            windows = F.pad(images, (padding,) * 4).unfold(2, h, 1).unfold(3, w, 1)
            dy, dx = torch.randint(0, 2 * padding + 1, (2, n))
            return windows[torch.arange(n), :, dy, dx]
        """, "different crops"),
    },
    "random_hflip": {
        "upside down": ("""
            flip = torch.rand(len(images), generator=generator) < p
            return torch.where(flip[:, None, None, None], images.flip(-2), images)
        """, "upside down"),
        "both axes": ("""
            flip = torch.rand(len(images), generator=generator) < p
            return torch.where(flip[:, None, None, None], images.flip(2, 3), images)
        """, "both axes"),
        "channels": ("""
            flip = torch.rand(len(images), generator=generator) < p
            return torch.where(flip[:, None, None, None], images.flip(1), images)
        """, "reversed the channels"),
        "one coin for the batch": ("""
            return images.flip(-1) if float(torch.rand(1, generator=generator)) < p else images.clone()
        """, "one coin was tossed for the whole batch"),
        "reversed comparison": ("""
            flip = torch.rand(len(images), generator=generator) > p
            return torch.where(flip[:, None, None, None], images.flip(-1), images)
        """, "reversed"),
        "global generator": ("""
            flip = torch.rand(len(images)) < p
            return torch.where(flip[:, None, None, None], images.flip(-1), images)
        """, "different flips"),
        "flips in place": ("""
            flip = torch.rand(len(images), generator=generator) < p
            images[flip] = images[flip].flip(-1)
            return images
        """, "in place"),
        "a Python loop over the images": ("""
            return torch.stack([img.flip(-1) if float(torch.rand((), generator=generator)) < p else img
                                for img in images])
        """, "loops over the images"),
    },
    "one_hot": {
        "int64": ("return F.one_hot(labels, num_classes)", "float"),
        "ignores num_classes": ("return F.one_hot(labels).float()", "max(labels) + 1"),
        "transposed": ("return F.one_hot(labels, num_classes).float().t()", "num_classes×N"),
        "inverted": ("return 1 - F.one_hot(labels, num_classes).float()", "inverted"),
    },
    "minibatch_indices": {
        "drops the last batch": ("""
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
        """, "last, shorter batch is missing"),
        "with replacement": ("""
            order = torch.randint(0, n, (n,), generator=generator) if shuffle else torch.arange(n)
            return list(order.split(batch_size))
        """, "without replacement"),
        "an empty last batch": ("""
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            return [order[i:i + batch_size] for i in range(0, n + 1, batch_size)]
        """, "last batch is empty"),
        "torch.chunk": ("""
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            return list(order.chunk(-(-n // batch_size)))
        """, "batch sizes are"),
        "shuffles the batches only": ("""
            batches = list(torch.arange(n).split(batch_size))
            if shuffle:
                batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
            return batches
        """, "only the order of the batches"),
        "never shuffles": ("return list(torch.arange(n).split(batch_size))", "came out in order"),
        "global generator": ("""
            order = torch.randperm(n) if shuffle else torch.arange(n)
            return list(order.split(batch_size))
        """, "different batches"),
        "a generator function": ("""
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            return (order[i:i + batch_size] for i in range(0, n, batch_size))
        """, "must return a list"),
        "int32": ("""
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            return list(order.int().split(batch_size))
        """, "int64"),
    },
}


@pytest.fixture
def install(tmp_path: Path, monkeypatch):
    """Make ``exercises.data`` a file the test writes; return a runner for programs against it."""
    yield module_installer("data", tmp_path, monkeypatch)
    forget_module("data")


def _failures(exercise: str, run) -> list[str]:
    return [f"{prop.title}: {message}" for prop in CHECKS[exercise]()
            for passed, message in [evaluate(prop, run)] if not passed]


def test_reference_passes_every_property(install) -> None:
    run = install(REFERENCE)
    for exercise in CHECKS:
        assert _failures(exercise, run) == [], exercise


@pytest.mark.parametrize("exercise, name", [(e, n) for e, variants in CORRECT.items() for n in variants])
def test_correct_implementations_pass(exercise: str, name: str, install) -> None:
    run = install(with_body(exercise, CORRECT[exercise][name]))
    assert _failures(exercise, run) == [], f"{exercise}: {name}"


@pytest.mark.parametrize("exercise, name", [(e, n) for e, variants in MISTAKES.items() for n in variants])
def test_each_mistake_fails_with_its_diagnosis(exercise: str, name: str, install) -> None:
    body, words = MISTAKES[exercise][name]
    failures = _failures(exercise, install(with_body(exercise, body)))
    assert failures, f"{exercise}: '{name}' passed every property"
    assert any(words in f for f in failures), f"{exercise}: '{name}': {failures}"


def test_stubs_fail_every_property_as_not_implemented(install) -> None:
    run = install(STUB)
    for exercise, factory in CHECKS.items():
        for prop in factory():
            passed, message = evaluate(prop, run)
            assert not passed and f"{exercise} is not implemented yet" in message, (exercise, prop.title, message)


def test_given_validation_in_the_stub_rejects_bad_input() -> None:
    """The input checks are given code: they hold in the learner's stub as shipped."""
    namespace: dict = {}
    exec(compile(STUB, "exercises/data.py", "exec"), namespace)
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(2, 3, 4, 4)
    bad = [
        ("stratified_split", (torch.tensor([0.0, 1.0]), 0.2, 0), "int64"),
        ("stratified_split", (torch.tensor([0, 1]), 1.0, 0), "0 <= val_fraction < 1"),
        ("stratified_split", (torch.tensor([[0, 1]]), 0.2, 0), "1-D"),
        ("stratified_split", (torch.tensor([0, -1]), 0.2, 0), "0 or more"),
        ("channel_stats", (torch.zeros(3, 4, 4),), "N×C×H×W"),
        ("channel_stats", (torch.zeros(2, 3, 4, 4, dtype=torch.uint8),), "floating-point"),
        ("normalize", (images, [0.5, 0.5], [1.0, 1.0, 1.0]), "one value per channel"),
        ("normalize", (images, [0.0] * 3, [1.0, 0.0, 1.0]), "positive"),
        ("random_crop", (images, -1, g), "padding must be an int >= 0"),
        ("random_crop", (images, 2, 7), "torch.Generator"),
        ("random_hflip", (images, 1.5, g), "probability"),
        ("one_hot", (torch.tensor([0, 3]), 3), "in 0..2"),
        ("one_hot", (torch.tensor([0, 1]), 0), "num_classes must be an int >= 1"),
        ("minibatch_indices", (10, 0, False, None), "batch_size must be an int >= 1"),
        ("minibatch_indices", (10, 3, True, None), "torch.Generator"),
    ]
    for function, args, words in bad:
        with pytest.raises(ValueError, match=re.escape(words)):
            namespace[function](*args)


@pytest.fixture
def learner_file(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(exercises, "__path__", [str(tmp_path), *exercises.__path__])
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delitem(sys.modules, "exercises.data", raising=False)
    yield tmp_path / "data.py"
    sys.modules.pop("exercises.data", None)


def test_check_prints_each_property_and_rereads_the_file(learner_file: Path, capsys) -> None:
    learner_file.write_text(with_body("random_crop", MISTAKES["random_crop"]["randint's exclusive bound"][0]))
    with pytest.raises(CheckFailed, match="properties of 'random_crop' failed"):
        check("random_crop")
    assert "torch.randint's upper bound is exclusive" in capsys.readouterr().out
    learner_file.write_text(REFERENCE + "\n# edited\n")
    assert check("random_crop") is None  # passes without a value for the notebook to print
    out = capsys.readouterr().out
    assert out.count("✓") == len(random_crop_check()) and "✗" not in out


def test_every_chapter_1_exercise_has_a_visible_check() -> None:
    from exercises.checks import available_checks

    assert set(CHECKS) <= set(available_checks())


def test_counting_helper_switches_itself_off_when_the_exercise_raises(install) -> None:
    from torch.overrides import _get_current_function_mode_stack

    from exercises.checks.data import count_torch_calls

    install(STUB)
    before = len(_get_current_function_mode_stack())
    got = count_torch_calls("data.random_crop", torch.zeros(1, 1, 2, 2), 1, torch.Generator())
    assert got["raised"] == "NotImplementedError"
    assert len(_get_current_function_mode_stack()) == before
