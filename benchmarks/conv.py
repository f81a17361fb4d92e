"""Chapter 3's speed ladder on the CPU: naive loops, im2col (the reference solution) and ``F.conv2d``.

    python benchmarks/conv.py              # forward and backward times and ratios, two layer shapes
    python benchmarks/conv.py --markdown   # the same as a Markdown table, for docs/benchmarks/conv.md
    python benchmarks/conv.py train        # the reference Conv2d in a small CNN on the embedded MNIST subset

Shapes: CS231n's benchmark (x 100×3×31×31, w 25×3×3×3, stride 2, padding 1) and a 64→64-channel 3×3
layer over 32×32 maps (x 16×64×32×32, padding 1). Targets for the reference: im2col at least 100×
faster than the naive loops, and within 5× of torch, forward and backward (torch's backward is
autograd's, timed alone). The naive loops run over images in the outermost loop, so their time is
exactly linear in N: by default they are timed on a few images and scaled (``--full-naive`` times every
image, which takes minutes). The fast versions are timed in interleaved rounds (each round runs all
four, so they share the machine's conditions) and each reports its best round, the figure least
disturbed by other processes; the load average is printed so a loaded machine shows. On a loaded
machine ``--threads 1`` avoids torch's worker threads waiting on one another.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from solutions.conv import conv2d_backward, conv2d_forward, conv2d_forward_naive  # noqa: E402

SHAPES = {  # name: (N, C, H, W, F, K, stride, padding, naive images timed by default)
    "CS231n: x 100×3×31×31, w 25×3×3×3, stride 2, pad 1": (100, 3, 31, 31, 25, 3, 2, 1, 10),
    "64→64, 3×3, 32×32 maps: x 16×64×32×32, pad 1": (16, 64, 32, 32, 64, 3, 1, 1, 1),
}


def conv2d_backward_naive(dout: torch.Tensor, cache: tuple) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The backward pass of ``conv2d_forward_naive``, written with the same four loops."""
    x, w, b, stride, padding = cache
    N, _, H, W = x.shape
    num_filters, _, KH, KW = w.shape
    xpad = F.pad(x, (padding,) * 4)
    dxpad, dw, db = torch.zeros_like(xpad), torch.zeros_like(w), torch.zeros_like(b)
    for n in range(N):
        for f in range(num_filters):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    g = dout[n, f, i, j]
                    rows, cols = slice(i * stride, i * stride + KH), slice(j * stride, j * stride + KW)
                    dxpad[n, :, rows, cols] += g * w[f]
                    dw[f] += g * xpad[n, :, rows, cols]
                    db[f] += g
    return dxpad[:, :, padding : padding + H, padding : padding + W], dw, db


def best_times(calls: dict[str, Callable[[], object]], rounds: int, min_seconds: float = 3.0) -> dict[str, float]:
    """Seconds of the fastest call of each of ``calls``, timed in interleaved rounds (each round calls
    every one three times, so all see the same conditions) until ``rounds`` rounds and ``min_seconds``
    have passed."""
    for call in calls.values():  # warm-up: allocator, thread pool, one-time kernels
        call()
    best = dict.fromkeys(calls, math.inf)
    start, done = time.perf_counter(), 0
    while (done < rounds or time.perf_counter() - start < min_seconds) and done < 1000:
        for name, call in calls.items():
            for _ in range(3):  # a few calls in a row, as in a training loop: the allocator's memory is reused
                begin = time.perf_counter()
                call()
                best[name] = min(best[name], time.perf_counter() - begin)
        done += 1
    return best


def measure(shape: tuple[int, ...], full_naive: bool, repeat: int) -> dict[str, float]:
    N, C, H, W, Fn, K, stride, padding, naive_images = shape
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(N, C, H, W, generator=g), torch.randn(Fn, C, K, K, generator=g), torch.randn(Fn, generator=g)
    out, cache = conv2d_forward(x, w, b, stride, padding)
    dout = torch.randn(out.shape, generator=g)
    xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
    graph = F.conv2d(xs, ws, bs, stride=stride, padding=padding)
    r: dict[str, float] = best_times({
        "im2col_fwd": lambda: conv2d_forward(x, w, b, stride, padding),
        "torch_fwd": lambda: F.conv2d(x, w, b, stride=stride, padding=padding),
        "im2col_bwd": lambda: conv2d_backward(dout, cache),
        "torch_bwd": lambda: torch.autograd.grad(graph, (xs, ws, bs), dout, retain_graph=True),
    }, repeat)
    n = N if full_naive else min(N, naive_images)
    start = time.perf_counter()
    _, naive_cache = conv2d_forward_naive(x[:n], w, b, stride, padding)
    r["naive_fwd"] = (time.perf_counter() - start) * N / n
    start = time.perf_counter()
    conv2d_backward_naive(dout[:n], naive_cache)
    r["naive_bwd"] = (time.perf_counter() - start) * N / n
    r["naive_images"] = n
    return r


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def speed_ladder(args: argparse.Namespace) -> int:
    print(f"# conv benchmark, {datetime.date.today().isoformat()}, commit {revision()}")
    print(f"# machine: {machine()}")
    print(f"# load average at start (1, 5, 15 min): {load()}")
    ok = True
    rows = []
    for name, shape in SHAPES.items():
        r = measure(shape, args.full_naive, args.repeat)
        ratios = {"naive/im2col fwd": r["naive_fwd"] / r["im2col_fwd"],
                  "naive/im2col bwd": r["naive_bwd"] / r["im2col_bwd"],
                  "im2col/torch fwd": r["im2col_fwd"] / r["torch_fwd"],
                  "im2col/torch bwd": r["im2col_bwd"] / r["torch_bwd"]}
        met = (min(ratios["naive/im2col fwd"], ratios["naive/im2col bwd"]) >= 100
               and max(ratios["im2col/torch fwd"], ratios["im2col/torch bwd"]) <= 5)
        ok &= met
        rows.append((name, r, ratios, met))
        if not args.markdown:
            scaled = ("" if r["naive_images"] == shape[0]
                      else f" (timed on {r['naive_images']} of {shape[0]} images, scaled)")
            print(f"\n{name}")
            for impl in ("naive", "im2col", "torch"):
                print(f"  {impl:7s} forward {r[impl + '_fwd'] * 1e3:10.2f} ms   "
                      f"backward {r[impl + '_bwd'] * 1e3:10.2f} ms"
                      + (scaled if impl == "naive" else ""))
            print("  ratios: " + ", ".join(f"{k} {v:,.1f}×" for k, v in ratios.items())
                  + f"  -> targets (naive/im2col >= 100×, im2col/torch <= 5×) {'met' if met else 'NOT met'}")
    if args.markdown:
        print("\n| layer | naive fwd | naive bwd | im2col fwd | im2col bwd | torch fwd | torch bwd "
              "| naive/im2col fwd, bwd | im2col/torch fwd, bwd | targets |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for name, r, ratios, met in rows:
            ms = [f"{r[k] * 1e3:,.1f} ms" for k in ("naive_fwd", "naive_bwd", "im2col_fwd", "im2col_bwd", "torch_fwd",
                                                    "torch_bwd")]
            print(f"| {name} | {' | '.join(ms)} "
                  f"| {ratios['naive/im2col fwd']:,.0f}×, {ratios['naive/im2col bwd']:,.0f}× "
                  f"| {ratios['im2col/torch fwd']:.2f}×, {ratios['im2col/torch bwd']:.2f}× "
                  f"| {'met' if met else 'NOT met'} |")
    print(f"\n# load average at end (1, 5, 15 min): {load()}")
    return 0 if ok else 1


def train(args: argparse.Namespace) -> int:
    """The chapter's "done when": the reference Conv2d in place of nn.Conv2d in a small CNN, trained on the
    embedded MNIST subset (4,000 train, 1,000 validation), reaches at least 97 % validation accuracy."""
    from torch import nn

    from exercises.kit.datasets import load_embedded_mnist
    from solutions.conv import Conv2d

    print(f"# train, {datetime.date.today().isoformat()}, commit {revision()}; machine: {machine()}; load {load()}")
    torch.manual_seed(args.seed)
    data = load_embedded_mnist()
    x, y = (data.images.float() / 255 - 0.1307) / 0.3081, data.labels
    g = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(y), generator=g)
    train_idx, val_idx = order[:4000], order[4000:]
    model = nn.Sequential(
        Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 7 * 7, 10),
    )
    batch = 64
    steps = args.epochs * math.ceil(len(train_idx) / batch)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    start = time.perf_counter()
    accuracy = 0.0
    for epoch in range(args.epochs):
        model.train()
        shuffled = train_idx[torch.randperm(len(train_idx), generator=g)]
        for i in range(0, len(shuffled), batch):
            idx = shuffled[i : i + batch]
            loss = F.cross_entropy(model(shift(x[idx], g)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x[val_idx]).argmax(1) == y[val_idx]).float().mean().item()
        print(f"epoch {epoch + 1}: loss {loss.item():.3f}, validation accuracy {accuracy:.2%} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"validation accuracy {accuracy:.2%} (target 97 %) in {time.perf_counter() - start:.0f} s; load {load()}")
    return 0 if accuracy >= 0.97 else 1


def shift(images: torch.Tensor, generator: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Each image moved by up to ``pixels`` in each direction (zero fill): a cheap augmentation."""
    n, _, h, w = images.shape
    padded = F.pad(images, (pixels,) * 4)
    dy = torch.randint(0, 2 * pixels + 1, (n, 1, 1, 1), generator=generator)
    dx = torch.randint(0, 2 * pixels + 1, (n, 1, 1, 1), generator=generator)
    rows = dy + torch.arange(h).view(1, 1, h, 1)
    cols = dx + torch.arange(w).view(1, 1, 1, w)
    return padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(images.shape[1]).view(1, -1, 1, 1), rows, cols]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="?", default="ladder", choices=["ladder", "train"])
    parser.add_argument("--markdown", action="store_true", help="print the ladder as a Markdown table")
    parser.add_argument("--full-naive", action="store_true", help="time the naive loops on every image")
    parser.add_argument("--repeat", type=int, default=20, help="rounds of the fast versions (the best of each is kept)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (train)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the initialization and the batches")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return train(args) if args.what == "train" else speed_ladder(args)


if __name__ == "__main__":
    sys.exit(main())
