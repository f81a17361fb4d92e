"""Where to compute, and how to make a run repeatable: devices, a report of the environment, seeds.

The course prefers ``cuda``, then Apple's ``mps``, then the ``cpu``: every exercise and notebook
runs on all three; only the speed differs. ``seed_everything`` seeds every random number generator
the course uses.
"""

from __future__ import annotations

import os
import platform
import random
import sys

import numpy as np
import torch


def on_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


FAST_ENV = "COURSE_FAST"


def fast_mode() -> bool:
    """The course's one rule for its small, quick mode: on when ``COURSE_FAST=1``, off otherwise.

    CI and the headless course run set it, to run every notebook in seconds on a small CPU. Unset, each
    chapter runs at full size, which fits a laptop CPU; what needs a GPU (CIFAR-10 in chapter 4) runs
    only when there is one, whatever the mode.
    """
    return os.environ.get(FAST_ENV) == "1"


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: ``cuda``, then ``mps``, then ``cpu``.

    ``prefer`` (``"cuda"``, ``"mps"`` or ``"cpu"``) forces a choice; asking for one that is not
    available raises ``ValueError`` naming what is. The environment variable ``COURSE_DEVICE``
    does the same as ``prefer`` without editing a notebook.
    """
    available = available_devices()
    choice = prefer or os.environ.get("COURSE_DEVICE") or available[0]
    if choice not in ("cuda", "mps", "cpu"):
        raise ValueError(f"device must be 'cuda', 'mps' or 'cpu', got {choice!r}")
    if choice not in available:
        raise ValueError(f"device {choice!r} is not available here; available: {', '.join(available)}")
    return torch.device(choice)


def available_devices() -> list[str]:
    """The device types usable here, best first; ``"cpu"`` is always last."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype worth using on ``device``, or ``None`` for full precision.

    bfloat16 on GPUs of compute capability 8.0 and newer (A100, L4, H100, RTX 30xx+); float16 on
    older ones such as Colab's T4, where bfloat16 is emulated and slow; ``None`` on the CPU.
    """
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return torch.bfloat16 if major >= 8 else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


def device_report(device: torch.device | None = None) -> str:
    """A few lines describing Python, torch and the device the course will use."""
    device = device or get_device()
    lines = [
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads",
        f"devices available: {', '.join(available_devices())}; using: {device.type}",
    ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines.append(
            f"GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB, "
            f"compute capability {props.major}.{props.minor}"
        )
    amp = amp_dtype(device)
    lines.append(f"mixed precision: {str(amp).removeprefix('torch.') if amp else 'off (full float32)'}")
    if device.type == "cpu":
        if on_colab():
            lines.append(
                "No GPU attached. On Colab: Runtime > Change runtime type > T4 GPU, then re-run "
                "this notebook from the top. Every chapter also runs on the CPU, only slower."
            )
        else:
            lines.append("No GPU found: everything runs on the CPU, in a smaller fast mode where it matters.")
    return "\n".join(lines)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device) with ``seed``.

    Returns a fresh CPU ``torch.Generator`` seeded with ``seed``, for the exercises that take an
    explicit generator. (Chapter 4 asks you to write ``set_seed`` yourself; until then, this is it.)
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)
