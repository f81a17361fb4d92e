"""Chapter 4's reference training recipe against well-known baselines, measured in one run, on one machine.

CPU part (always runs):
    the chapter's reference recipe on full MNIST (``solutions``' ``build_cnn``, ``SGD`` with Nesterov
    momentum, ``warmup_cosine_lr``, ``train_one_epoch``/``evaluate``; the data kept as tensors with
    shifts done on them, ``channels_last``, bfloat16 autocast where the CPU computes bfloat16 natively)
    against PyTorch's own ``examples/mnist`` recipe, re-implemented here from its description (the same
    network, Adadelta with lr 1.0, StepLR with gamma 0.7, batch 64, 14 epochs, a ``DataLoader``).
    Prints the test accuracy and wall time of each, and their ratios. Target: ≥ 99.3 % in ≤ 60 s on
    the project's 2-core machine.

GPU part (runs when CUDA is available):
    the reference CIFAR-10 recipe (``build_cnn(3, 10)``, data on the GPU with flips and shifts there,
    mixed precision as ``amp_dtype`` chooses, ``channels_last``) against ``airbench``'s ``train94`` (pip
    package ``airbench``, which needs ``torchvision``) on the same data in the same run: test accuracy,
    wall time, images/s and the fraction of the GPU's peak. The data is the CIFAR-10 JPEG copy in
    ``../shared/datasets/cifar10`` unless ``--cifar-archive`` names the official python archive; every
    figure says which.

Usage (from the project root, with the instructor checkout's ``solutions/``)::

    python benchmarks/training.py                       # CPU part, and the GPU part if CUDA is there
    python benchmarks/training.py --part cpu --examples-epochs 3   # a shorter baseline run
    python benchmarks/training.py --part cpu --threads 1           # on a busy machine: CPU time ≈ idle wall time
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exercises.kit import training as tu  # noqa: E402
from exercises.kit.datasets import CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD  # noqa: E402
from solutions.optim import SGD, warmup_cosine_lr  # noqa: E402
from solutions.train import build_cnn, evaluate, set_seed, train_one_epoch  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


# ----------------------------------------------------------------------------- data


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped): big-endian dimensions, then uint8 data."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_full_mnist(folder: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train images, train labels, test images, test labels)``, images ``uint8`` ``N×1×28×28``: with the
    course's own loader when it accepts the folder as a mirror, else by reading the IDX files here."""
    try:
        from exercises.kit.datasets import load_mnist

        train = load_mnist("train", mirrors=[folder], download=False, progress=False)
        test = load_mnist("test", mirrors=[folder], download=False, progress=False)
        return train.images, train.labels, test.images, test.labels
    except Exception as exc:  # the loader is missing or refuses the copy: read the files directly
        print(f"(exercises.kit.datasets.load_mnist unavailable here: {type(exc).__name__}; "
              "reading the IDX files directly)")
    arrays = [read_idx(folder / f"{name}-ubyte.gz") for name in
              ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")]
    xtr, ytr, xte, yte = (torch.from_numpy(a.copy()) for a in arrays)
    return xtr.unsqueeze(1), ytr.long(), xte.unsqueeze(1), yte.long()


# ----------------------------------------------------------------------------- the chapter's reference recipe


def cpu_bf16_is_native() -> bool:
    """True where oneDNN computes bfloat16 in hardware (AVX-512 BF16 or AMX): then autocast pays off."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def reference_mnist(xtr, ytr, xte, yte, *, epochs: int, batch_size: int, peak_lr: float, seed: int = 0) -> dict:
    set_seed(seed)
    low = torch.bfloat16 if cpu_bf16_is_native() else None
    shift = lambda x, g: tu.random_shift_flip(x, g, max_shift=2)  # noqa: E731
    start, cpu_start = time.perf_counter(), time.process_time()
    train = tu.TensorLoader(xtr, ytr, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed),
                            augment=shift, mean=MNIST_MEAN, std=MNIST_STD, channels_last=True, drop_last=True)
    test = tu.TensorLoader(xte, yte, 1000, mean=MNIST_MEAN, std=MNIST_STD, channels_last=True)
    model = build_cnn(1, 10).to(memory_format=torch.channels_last)
    optimizer = SGD(model.parameters(), lr=peak_lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total = epochs * len(train)
    tu.StepSchedule(optimizer, lambda k: warmup_cosine_lr(k, total, peak_lr, max(1, total // 10)))
    per_epoch = []
    for _ in range(epochs):
        loss = train_one_epoch(model, train, optimizer, "cpu", amp_dtype=low)
        per_epoch.append(round(loss, 4))
    metrics = evaluate(model, test, "cpu", amp_dtype=low)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"name": "reference recipe", "accuracy": metrics["accuracy"], "seconds": seconds, "cpu_seconds": cpu_seconds,
            "images_per_s": epochs * len(train) * batch_size / seconds, "train_losses": per_epoch,
            "details": f"build_cnn ({tu.count_parameters(model):,} parameters), {epochs} epochs, batch {batch_size}, "
                       f"SGD Nesterov 0.9, peak lr {peak_lr}, warmup-cosine (10 % warmup), shifts ±2 px, "
                       "channels_last, "
                       f"autocast {'bfloat16' if low else 'off (no native bfloat16 on this CPU)'}"}


# ----------------------------------------------------------------------------- PyTorch's examples/mnist


class ExamplesNet(nn.Module):
    """The network of PyTorch's examples/mnist: two 3×3 convolutions (32, 64), max pooling, dropout,
    a 9216→128 linear layer, dropout, 128→10, log-softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 1), nn.Conv2d(32, 64, 3, 1)
        self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)
        self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = self.dropout2(F.relu(self.fc1(torch.flatten(self.dropout1(x), 1))))
        return F.log_softmax(self.fc2(x), dim=1)


def examples_mnist(xtr, ytr, xte, yte, *, epochs: int, seed: int = 1) -> dict:
    """The example's recipe: Adadelta (lr 1.0), StepLR(step_size=1, gamma=0.7), batch 64 shuffled, test batch
    1000, images normalized with (0.1307, 0.3081). Its torchvision dataset decodes a PIL image per sample;
    here the loader indexes a tensor instead, which can only make the baseline faster."""
    torch.manual_seed(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    normalize = lambda x: ((x.float() / 255 - 0.1307) / 0.3081)  # noqa: E731
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(normalize(xtr), ytr), batch_size=64,
                                        shuffle=True)
    test = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(normalize(xte), yte), batch_size=1000)
    model = ExamplesNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    accuracies = []
    for _ in range(epochs):
        model.train()
        for x, y in train:
            optimizer.zero_grad()
            F.nll_loss(model(x), y).backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test:
                correct += int((model(x).argmax(1) == y).sum())
        accuracies.append(correct / len(yte))
        scheduler.step()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"name": "PyTorch examples/mnist", "accuracy": accuracies[-1], "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "images_per_s": epochs * len(ytr) / seconds, "accuracy_per_epoch": [round(a, 4) for a in accuracies],
            "details": f"ExamplesNet ({sum(p.numel() for p in model.parameters()):,} parameters), {epochs} epochs, "
                       "batch 64, Adadelta lr 1.0, StepLR gamma 0.7, DataLoader, "
                       "evaluated every epoch as the example does"}


# ----------------------------------------------------------------------------- GPU: CIFAR-10


PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "T4": 65.0, "A10": 125.0, "V100": 125.0}


def peak_tflops(name: str) -> float | None:
    """Dense 16-bit tensor-core peak of a known GPU, from its vendor's data sheet."""
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def load_cifar10(archive: Path | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    from exercises.kit import datasets

    if archive is not None:
        train, test = datasets.read_cifar10_archive(archive, "train"), datasets.read_cifar10_archive(archive, "test")
        name = "CIFAR-10"
    else:
        jpeg = DATASETS / "cifar10" / "cifar10-jpeg.tar.gz"
        train = datasets.load_image_folder(jpeg, subdir="train", channels=3)
        test = datasets.load_image_folder(jpeg, subdir="test", channels=3)
        name = "CIFAR-10 (JPEG copy)"
    return train.images, train.labels, test.images, test.labels, name


def flops_per_image(model: nn.Module, shape: tuple[int, ...]) -> float:
    """Forward + backward FLOPs for one image (backward taken as twice the forward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape, device=next(model.parameters()).device))
    return 3.0 * counter.get_total_flops()


def reference_cifar(xtr, ytr, xte, yte, *, epochs: int, batch_size: int = 512, seed: int = 0) -> dict:
    from exercises.kit.devices import amp_dtype

    device = torch.device("cuda")
    set_seed(seed)
    start = time.perf_counter()
    shift_flip = lambda x, g: tu.random_shift_flip(x, g, max_shift=2, flip=True)  # noqa: E731
    train = tu.TensorLoader(xtr, ytr, batch_size, device=device, shuffle=True,
                            generator=torch.Generator().manual_seed(seed), augment=shift_flip,
                            mean=CIFAR10_MEAN, std=CIFAR10_STD, channels_last=True, drop_last=True)
    test = tu.TensorLoader(xte, yte, 1000, device=device, mean=CIFAR10_MEAN, std=CIFAR10_STD, channels_last=True)
    model = build_cnn(3, 10).to(device).to(memory_format=torch.channels_last)
    optimizer = SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total = epochs * len(train)
    tu.StepSchedule(optimizer, lambda k: warmup_cosine_lr(k, total, 0.2, len(train)))
    low = amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda") if low == torch.float16 else None
    for _ in range(epochs):
        train_one_epoch(model, train, optimizer, device, scaler=scaler, amp_dtype=low)
    metrics = evaluate(model, test, device, amp_dtype=low)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    images_per_s = epochs * len(train) * batch_size / seconds
    peak = peak_tflops(torch.cuda.get_device_name())
    achieved = flops_per_image(model, (3, 32, 32)) * images_per_s / 1e12
    return {"name": "reference CIFAR-10 recipe", "accuracy": metrics["accuracy"], "seconds": seconds,
            "images_per_s": images_per_s, "tflops": achieved, "peak_fraction": achieved / peak if peak else None,
            "details": f"build_cnn(3, 10), {epochs} epochs, batch {batch_size}, SGD Nesterov, warmup-cosine, "
                       f"autocast {low}, channels_last, data on the GPU"}


def airbench94(xtr, ytr, xte, yte) -> dict:
    """``airbench.train94()`` on the same images: it reads ``cifar10/train.pt`` and ``cifar10/test.pt`` (uint8
    N×H×W×C) from the working directory, which we write from our copy of the data."""
    import airbench

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifar10"
        folder.mkdir()
        classes = [str(i) for i in range(10)]
        for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
            torch.save({"images": x.permute(0, 2, 3, 1).contiguous(), "labels": y, "classes": classes},
                       folder / f"{split}.pt")
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            airbench.warmup94(verbose=False)  # its own warm-up (compilation), not timed, as its benchmark does
            torch.cuda.synchronize()
            start = time.perf_counter()
            model = airbench.train94(verbose=False)  # (airbench 0.1.8 returns the trained model)
            # Its test-time augmentation (mirror + translate) counts, as in airbench's own timing.
            test = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
            accuracy = float(airbench.evaluate(model, test, tta_level=2))
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
        finally:
            os.chdir(cwd)
    return {"name": "airbench94", "accuracy": accuracy, "seconds": seconds, "images_per_s": None,
            "details": "airbench 0.1.8 train94() defaults (its own network, label smoothing, whitening), "
                       "evaluated with its TTA level 2 (timed)"}


# ----------------------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = f"; load average at start {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    gpu = f"; GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}{load}"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def show(result: dict) -> None:
    rate = f", {result['images_per_s']:,.0f} images/s" if result.get("images_per_s") else ""
    cpu = f", process CPU time {result['cpu_seconds']:.1f} s" if result.get("cpu_seconds") is not None else ""
    print(f"  {result['name']}: test accuracy {result['accuracy']:.2%}, wall time {result['seconds']:.1f} s{cpu}{rate}")
    print(f"    {result['details']}")
    for key in ("accuracy_per_epoch", "train_losses", "tflops", "peak_fraction"):
        if result.get(key) is not None:
            print(f"    {key}: {result[key]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("cpu", "gpu", "all"), default="all")
    parser.add_argument("--mnist", type=Path, default=DATASETS / "mnist", help="folder of the four MNIST IDX .gz files")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the reference MNIST recipe")
    parser.add_argument("--seed", type=int, default=0, help="seed of the reference MNIST recipe")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--peak-lr", type=float, default=0.1)
    parser.add_argument("--examples-epochs", type=int, default=14,
                        help="epochs of PyTorch's example (14 is its default)")
    parser.add_argument("--skip-examples", action="store_true")
    parser.add_argument("--cifar-archive", type=Path, default=None, help="the official cifar-10-python.tar.gz")
    parser.add_argument("--cifar-epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N digits only (a smoke test)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"chapter 4 training benchmarks — {datetime.datetime.now():%Y-%m-%d %H:%M}, commit {commit()}")
    print(f"machine: {machine()}")
    if args.part in ("cpu", "all"):
        print(f"\nCPU, full MNIST from {args.mnist} (60,000 training, 10,000 test digits):")
        xtr, ytr, xte, yte = load_full_mnist(args.mnist)
        if args.limit:
            xtr, ytr = xtr[:args.limit], ytr[:args.limit]
            print(f"  (smoke test: training on the first {args.limit} digits only)")
        ours = reference_mnist(xtr, ytr, xte, yte, epochs=args.epochs, batch_size=args.batch_size, peak_lr=args.peak_lr,
                               seed=args.seed)
        show(ours)
        if not args.skip_examples:
            theirs = examples_mnist(xtr, ytr, xte, yte, epochs=args.examples_epochs)
            show(theirs)
            print(f"  ratio (reference / examples): wall time {ours['seconds'] / theirs['seconds']:.3f}, "
                  f"CPU time {ours['cpu_seconds'] / theirs['cpu_seconds']:.3f}, "
                  f"test error {(1 - ours['accuracy']) / max(1e-9, 1 - theirs['accuracy']):.2f}")
        target = ours["accuracy"] >= 0.993 and ours["seconds"] <= 60
        print(f"  target (>= 99.3 % in <= 60 s of wall time): {'met' if target else 'NOT met'}"
              + ("" if torch.get_num_threads() > 1 else f"; with one thread the CPU time, {ours['cpu_seconds']:.0f} s, "
                 "is what an idle machine's wall time would be"))
    if args.part in ("gpu", "all"):
        if not torch.cuda.is_available():
            print("\nGPU part skipped: CUDA is not available on this machine.")
            return 0
        xtr, ytr, xte, yte, name = load_cifar10(args.cifar_archive)
        print(f"\nGPU {torch.cuda.get_device_name()}, {name} (50,000 training, 10,000 test images):")
        ours = reference_cifar(xtr, ytr, xte, yte, epochs=args.cifar_epochs)
        show(ours)
        try:
            bench = airbench94(xtr, ytr, xte, yte)
        except ImportError as exc:
            print(f"  airbench94 not run: {exc} (pip install airbench torchvision)")
            return 0
        show(bench)
        print(f"  ratio (reference / airbench94) on {name}: wall time {ours['seconds'] / bench['seconds']:.2f}, "
              f"accuracy {ours['accuracy'] - bench['accuracy']:+.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
