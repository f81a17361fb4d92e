"""Throughput of the vectorized augmentations against a per-image Python loop.

    python benchmarks/augment.py                     # the reference (solutions.data), on the best device
    python benchmarks/augment.py --device cpu --images 50000 --batch 256
    python benchmarks/augment.py --module exercises.data   # a learner's own implementation

Works on 50,000 CIFAR-sized float32 images (3×32×32) by default, on the device given (or the best one),
and prints, for ``random_crop`` (padding 4) and ``random_hflip`` (p = 0.5), images per second of:

* a per-image Python loop (what one writes first: pad, draw and slice one image at a time);
* the vectorized function on the whole array at once;
* the vectorized function in mini-batches (``--batch``, 256 by default), as a training loop applies it;

and the ratios against the loop, measured in the same run. The course's target is at least 20× on a GPU.
The loop is timed once (it is slow and steady); the vectorized runs take the best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout


def crop_loop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """``random_crop`` one image at a time: the baseline."""
    out = torch.empty_like(images)
    height, width = images.shape[-2:]
    for n in range(len(images)):
        framed = F.pad(images[n], [padding] * 4)
        top, left = torch.randint(0, 2 * padding + 1, (2,), generator=generator, device=generator.device).tolist()
        out[n] = framed[:, top:top + height, left:left + width]
    return out


def flip_loop(images: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """``random_hflip`` one image at a time: the baseline."""
    out = torch.empty_like(images)
    for n in range(len(images)):
        coin = torch.rand((), generator=generator, device=generator.device).item()
        out[n] = images[n].flip(-1) if coin < p else images[n]
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def seconds(run: Callable[[], object], device: torch.device, repeat: int,
            clock: Callable[[], float] = time.perf_counter) -> float:
    """The best time of ``repeat`` runs (after one warm-up run), by ``clock``."""
    run()
    _sync(device)
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        run()
        _sync(device)
        best = min(best, clock() - start)
    return best


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default="solutions.data", help="where random_crop and random_hflip come from")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=256, help="mini-batch size for the batched runs")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by the process's CPU time instead of the wall clock (CPU only; with --threads 1, "
                             "figures that hold up on a machine busy with other work)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from exercises.kit.devices import get_device

    device = get_device(args.device)
    if args.cpu_time and device.type != "cpu":
        parser.error("--cpu-time only makes sense on the CPU")
    clock = time.process_time if args.cpu_time else time.perf_counter
    module = importlib.import_module(args.module)
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.rand(args.images, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"{args.images:,} images 3×32×32 float32 on {device.type} ({name}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads; {args.module}; {'CPU' if args.cpu_time else 'wall'} time; "
          f"load average {_load()}")

    for label, loop, fast, arg in (("random_crop(padding=4)", crop_loop, module.random_crop, 4),
                                   ("random_hflip(p=0.5)", flip_loop, module.random_hflip, 0.5)):
        batches = images.split(args.batch)
        loop_s = seconds(lambda: loop(images, arg, generator), device, 1, clock)  # noqa: B023
        whole_s = seconds(lambda: fast(images, arg, generator), device, args.repeat, clock)  # noqa: B023
        batch_s = seconds(lambda: [fast(b, arg, generator) for b in batches], device, args.repeat, clock)  # noqa: B023
        print(f"{label:24s} loop {args.images / loop_s:>12,.0f} img/s | "
              f"whole array {args.images / whole_s:>12,.0f} img/s "
              f"({loop_s / whole_s:6.1f}×) | batches of {args.batch} {args.images / batch_s:>12,.0f} img/s "
              f"({loop_s / batch_s:6.1f}×)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
