"""The whole GPU check in one command, with its figures written as Markdown (date, GPU, torch, commit).

On a CUDA machine, in about 8 minutes (``--budget-s``; optional parts are skipped when time runs short):

1. the CUDA tests: every test file under ``tests/`` that skips without CUDA, run with pytest; a test
   still skipped for want of CUDA counts as a failure on a GPU;
2. chapter 4's speed-run (``exercises.kit.speedrun``) and ``airbench``'s 94 % recipe (``train94``, PyPI
   package ``airbench``) trained on the same images in the same run, each after its own untimed warm-up:
   test accuracy, wall time, images/s, the ratio of the wall times, achieved TFLOP/s and the expected
   time on a Colab T4 by the ratio of the two GPUs' dense 16-bit peaks;
3. the augmentation benchmark (``benchmarks/augment.py``) on CUDA: vectorized crop and flip against a
   per-image loop;
4. chapter 4's notebook executed in GPU mode (``COURSE_FAST=0`` on CUDA, so that its CIFAR-10 and
   speed-run sections train) against the reference solutions, cell by cell in a plain Python process
   (the device machine has no Jupyter).

The data is the CIFAR-10 JPEG copy (``cifar10-jpeg.tar.gz``): every figure from it says "CIFAR-10 (JPEG
copy)". Figures go to ``docs/benchmarks/gpu-check.md`` (``--report``) and, when the environment names an
``$OUT`` folder (the device machine's), to ``$OUT/gpu-check.md`` too.

A machine without network access or ``../shared`` reads what it needs from ``.gpu/`` (git-ignored; ``make
gpu-prepare`` fills it): ``cifar10/cifar10-jpeg.tar.gz``, the wheels ``airbench-*.whl`` and
``mlxtend-*.whl`` (pure Python: unpacked onto the import path, as pip would install them) and
``commit.txt``.

    python benchmarks/gpu.py                  # on a CUDA machine: the whole check
    python benchmarks/gpu.py --dry-run        # on a CPU: a few hundred images, one epoch, no airbench (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GPU_DIR = ROOT / ".gpu"
SHARED_CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10" / "cifar10-jpeg.tar.gz"
DATA_NAME = "CIFAR-10 (JPEG copy)"
# Dense 16-bit tensor-core peaks (TFLOP/s) from the vendors' data sheets, without sparsity.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "V100": 125.0, "T4": 65.0}
TARGET_ACCURACY, TARGET_RATIO, TARGET_AUGMENT = 0.94, 3.0, 20.0


def peak_tflops(name: str) -> float | None:
    """The dense 16-bit peak of a GPU named ``name`` (as ``torch.cuda.get_device_name`` gives it), if known."""
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


# ----------------------------------------------------------------------------- the report


@dataclass
class Report:
    """Markdown sections, and one line per target: what was measured against what was asked."""

    title: str
    started: float = field(default_factory=time.monotonic)
    header: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    targets: list[tuple[str, str, str]] = field(default_factory=list)  # (target, measured, verdict)
    failures: list[str] = field(default_factory=list)

    def section(self, title: str, *lines: str) -> None:
        self.sections.append("\n".join([f"## {title}", "", *lines, ""]))
        print(f"\n== {title}\n" + "\n".join(lines), flush=True)

    def target(self, what: str, measured: str, met: bool | None) -> None:
        self.targets.append((what, measured, {True: "met", False: "**missed**", None: "not measured"}[met]))

    def fail(self, step: str, message: str) -> None:
        self.failures.append(f"{step}: {message}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", *self.header, ""]
        if self.targets:
            lines += ["## Targets", "", "| target | measured | verdict |", "| --- | --- | --- |"]
            lines += [f"| {a} | {b} | {c} |" for a, b, c in self.targets] + [""]
        if self.failures:
            lines += ["## Failures", "", *[f"* {f}" for f in self.failures], ""]
        lines += self.sections
        lines += [f"Total time of the check: {self.elapsed():.0f} s.", ""]
        return "\n".join(lines)


def _text(captured: str | bytes | None) -> str:
    """What a timed-out child printed (``TimeoutExpired`` holds bytes even with ``text=True``)."""
    return captured.decode(errors="replace") if isinstance(captured, bytes) else captured or ""


def table(rows: list[dict[str, str]]) -> list[str]:
    """A Markdown table of ``rows`` (dicts with the same keys, in order)."""
    keys = list(rows[0])
    return ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |",
            *["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]]


# ----------------------------------------------------------------------------- what the machine needs


def commit() -> str:
    """The checkout's commit (``+ changes`` when the tree differs from it), else ``.gpu/commit.txt``'s."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        recorded = GPU_DIR / "commit.txt"
        return recorded.read_text().strip() + " (from .gpu/commit.txt)" if recorded.is_file() else "unknown"


def unpack_wheels(folder: Path, site: Path) -> list[str]:
    """Unpack every pure-Python wheel in ``folder`` whose top-level package does not import yet into
    ``site`` (put first on ``sys.path`` and on the ``PYTHONPATH`` of child processes). A wheel is a zip
    archive of the files to install: unpacking it is what pip does for a pure-Python one."""
    import importlib.util

    done = []
    for wheel in sorted(folder.glob("*.whl")):
        package = wheel.name.split("-")[0].replace("-", "_").lower()
        if importlib.util.find_spec(package) is not None:
            done.append(f"{wheel.name}: `{package}` already installed, not unpacked")
            continue
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        done.append(f"{wheel.name}: unpacked")
    if done:
        sys.path.insert(0, str(site))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))
    return done


def find_cifar(explicit: Path | None) -> Path | None:
    for candidate in (explicit, GPU_DIR / "cifar10" / "cifar10-jpeg.tar.gz", GPU_DIR / "cifar10-jpeg.tar.gz",
                      SHARED_CIFAR):
        if candidate is not None and Path(candidate).is_file():
            return Path(candidate)
    return None


def machine(device) -> list[str]:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    lines = [f"* date: {datetime.datetime.now():%Y-%m-%d %H:%M}", f"* commit: {commit()}",
             f"* torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN "
             f"{torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else 'none'}), "
             f"Python {platform.python_version()}",
             f"* CPU: {cpu}, {os.cpu_count()} cores"]
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        lines.insert(1, f"* GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}")
    else:
        lines.insert(1, "* GPU: none (a CPU dry run: the figures below only show that the check works)")
    return lines


# ----------------------------------------------------------------------------- 1. the CUDA tests


def cuda_test_files() -> list[Path]:
    """Every test module that skips something without CUDA (``skipif(not torch.cuda.is_available(), ...)``)."""
    marker = re.compile(r"skipif\(\s*not torch\.cuda\.is_available\(\)")
    return sorted(p for p in (ROOT / "tests").glob("test_*.py") if marker.search(p.read_text(encoding="utf-8")))


def run_cuda_tests(report: Report, on_gpu: bool, timeout: int) -> None:
    """Run the CUDA test files (on a CPU, only collect them: the suite runs them there anyway)."""
    files = cuda_test_files()
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *([] if on_gpu else ["--co"]),
               *[str(f.relative_to(ROOT)) for f in files]]
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        output, rc = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        output, rc = f"{_text(exc.stdout)}\n(timed out after {timeout} s)", -1
    summary = next((line for line in reversed(output.splitlines())
                    if re.search(r"\d+ (passed|failed|tests? collected)", line)), "no summary")
    no_cuda = [line for line in output.splitlines() if line.startswith("SKIPPED") and "CUDA" in line]
    title = "CUDA tests" if on_gpu else "CUDA tests (collected only: no GPU here)"
    report.section(title, f"`{' '.join(command[1:])}` ({time.monotonic() - start:.0f} s): {summary.strip('= ')}",
                   "", f"Files: {', '.join(f'`{f.name}`' for f in files)}.",
                   *([f"Skipped for want of CUDA: {len(no_cuda)}."] if no_cuda else []),
                   "", "```", *output.strip().splitlines()[-15:], "```")
    if rc != 0:
        report.fail("CUDA tests", summary)
    if on_gpu:
        report.target("every CUDA test passes on the GPU", summary.strip("= "), rc == 0 and not no_cuda)
        if no_cuda:
            report.fail("CUDA tests", f"{len(no_cuda)} skipped for want of CUDA on a CUDA machine")


# ----------------------------------------------------------------------------- 2. the speed-run and airbench94


def load_data(archive: Path, limit: int | None):
    from exercises.kit.datasets import load_image_folder

    start = time.monotonic()
    train = load_image_folder(archive, subdir="train", channels=3)
    test = load_image_folder(archive, subdir="test", channels=3)
    xtr, ytr, xte, yte = train.images, train.labels, test.images, test.labels
    if limit:
        import torch

        g = torch.Generator().manual_seed(0)
        pick, pick_test = torch.randperm(len(ytr), generator=g)[:limit], torch.randperm(len(yte), generator=g)[:limit]
        xtr, ytr, xte, yte = xtr[pick], ytr[pick], xte[pick_test], yte[pick_test]
    return xtr, ytr, xte, yte, time.monotonic() - start


@dataclass
class Speedruns:
    """The speed-run's measured runs, by number of epochs, and the table rows that show them."""

    config: object
    warm_up_s: float = 0.0
    by_epochs: dict[int, list] = field(default_factory=dict)
    rows: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def run(self, data, device, epochs: int, seed: int, compile: bool = False) -> None:
        from exercises.kit import speedrun as sr

        xtr, ytr, xte, yte = data
        config = replace(self.config, epochs=epochs, compile=compile)
        r = sr.train_speedrun(xtr, ytr, xte, yte, config=config, device=device, seed=seed)
        if not compile:
            self.by_epochs.setdefault(epochs, []).append(r)
        self.rows.append({"epochs": f"{epochs}{', torch.compile' if r.compiled else ''}", "seed": seed,
                          "test accuracy (TTA)": f"{r.accuracy:.2%}", "without TTA": f"{r.accuracy_plain:.2%}",
                          "wall time": f"{r.seconds:.2f} s", "images/s": f"{r.images_per_s:,.0f}",
                          "precision": r.precision})
        print(f"  speed-run, {epochs} epochs{', compiled' if r.compiled else ''}, seed {seed}: {r.accuracy:.2%} "
              f"(without TTA {r.accuracy_plain:.2%}), {r.seconds:.2f} s", flush=True)

    def section(self, report: Report, n_train: int, n_test: int) -> None:
        from exercises.kit import speedrun as sr

        net = sr.speedrun_net(widths=self.config.widths)
        flops = sr.training_flops_per_image(net)
        report.section(
            f"Speed-run on {DATA_NAME}",
            f"`exercises.kit.speedrun.train_speedrun` with `SPEEDRUN` ({self.config.batch_size} per batch, widths "
            f"{self.config.widths}, {sum(p.numel() for p in net.parameters()):,} parameters, {flops / 1e9:.2f} GFLOP "
            f"per training image), {n_train:,} training and {n_test:,} test images, after an untimed warm-up of "
            f"{self.warm_up_s:.1f} s. Wall time: from the uint8 images in memory to the test accuracy with "
            "test-time augmentation (data to the device, whitening, training, evaluation). The recipe's epochs "
            "come first; other epoch counts are probes, run when time allowed.", "", *table(self.rows), "",
            *self.notes)


def airbench_runs(report: Report, data, runs: int) -> list[dict]:
    """``airbench.train94`` (after ``warmup94``) on our images, evaluated with its own TTA, ``runs`` times."""
    import airbench
    import torch

    xtr, ytr, xte, yte = data
    results = []
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
            torch.manual_seed(0)
            airbench.warmup94(verbose=False)  # its own untimed warm-up: a whole run (with verbose off)
            for seed in range(runs):
                torch.manual_seed(seed)
                torch.cuda.synchronize()
                start = time.perf_counter()
                model = airbench.train94(verbose=False)
                test = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
                accuracy = float(airbench.evaluate(model, test, tta_level=2))
                torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                steps = math.ceil(len(ytr) // 1024 * 9.9)
                results.append({"accuracy": accuracy, "seconds": seconds, "images_per_s": steps * 1024 / seconds})
                print(f"  airbench94 run {seed}: {accuracy:.2%}, {seconds:.2f} s", flush=True)
        finally:
            os.chdir(cwd)
    version = getattr(airbench, "__version__", None) or _dist_version("airbench")
    rows = [{"run": i, "test accuracy (its TTA)": f"{r['accuracy']:.2%}", "wall time": f"{r['seconds']:.2f} s",
             "images/s": f"{r['images_per_s']:,.0f}"} for i, r in enumerate(results)]
    report.section(f"airbench94 on {DATA_NAME}",
                   f"`airbench.train94()` (airbench {version}, its defaults: 9.9 epochs, batch 1024, fp16 weights) "
                   "on the same images, after its own untimed `warmup94()`; wall time from the call to the accuracy "
                   "with its test-time augmentation (level 2), as airbench times itself.", "", *table(rows))
    return results


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown version"


def compare(report: Report, ours: dict[int, list], default_epochs: int, bench: list[dict], device) -> None:
    import torch

    main = ours.get(default_epochs, [])
    if not main:
        return
    acc = statistics.mean(r.accuracy for r in main)
    secs = statistics.mean(r.seconds for r in main)
    spread = f" (runs: {', '.join(f'{r.accuracy:.2%}' for r in main)})" if len(main) > 1 else ""
    report.target(f"speed-run ≥ 94 % on {DATA_NAME}, mean of {len(main)} seed(s), {default_epochs} epochs",
                  f"{acc:.2%}{spread}", acc >= TARGET_ACCURACY if device.type == "cuda" else None)
    lines = []
    if bench:
        ab_acc, ab_secs = statistics.mean(b["accuracy"] for b in bench), statistics.mean(b["seconds"] for b in bench)
        ratio = secs / ab_secs
        report.target("speed-run wall time ≤ 3× airbench94's, same run", f"{secs:.2f} s against {ab_secs:.2f} s: "
                      f"{ratio:.2f}×", ratio <= TARGET_RATIO)
        lines.append(f"Mean over the runs: speed-run {acc:.2%} in {secs:.2f} s, airbench94 {ab_acc:.2%} in "
                     f"{ab_secs:.2f} s: **{ratio:.2f}× airbench94's wall time**, {100 * (acc - ab_acc):+.2f} points.")
        for epochs, runs in sorted(ours.items()):
            if epochs != default_epochs:
                mean_acc = statistics.mean(r.accuracy for r in runs)
                mean_s = statistics.mean(r.seconds for r in runs)
                lines.append(f"* {epochs} epochs: {mean_acc:.2%} in {mean_s:.2f} s "
                             f"({mean_s / ab_secs:.2f}× airbench94)")
    else:
        report.target("speed-run wall time ≤ 3× airbench94's, same run", "airbench94 not run", None)
        lines.append("airbench94 was not run" + (" (a dry run never runs it)." if device.type != "cuda" else "."))
    if device.type == "cuda":
        from exercises.kit import speedrun as sr

        name = torch.cuda.get_device_name(device)
        flops = sr.training_flops_per_image(sr.speedrun_net(widths=main[0].config.widths))
        achieved = flops * statistics.mean(r.images_per_s for r in main) / 1e12
        peak = peak_tflops(name)
        if peak:
            t4 = secs * peak / PEAK_TFLOPS["T4"]
            lines.append(f"Achieved: {achieved:.0f} TFLOP/s of training arithmetic, {achieved / peak:.1%} of the "
                         f"{name}'s dense 16-bit peak ({peak:.0f} TFLOP/s). **Expected on a Colab T4** (65 TFLOP/s "
                         f"dense float16, NVIDIA's data sheet) at the same fraction of its peak: {secs:.1f} s × "
                         f"{peak:.0f} / 65 ≈ **{t4:.0f} s** (an estimate, not a measurement: a T4 often reaches a "
                         "larger fraction of its smaller peak, and float16 with a GradScaler costs a little more).")
        else:
            lines.append(f"Achieved: {achieved:.0f} TFLOP/s ({name}: peak unknown to this script).")
    report.section("Speed-run against airbench94", *lines)


# ----------------------------------------------------------------------------- 3. the augmentation benchmark


def run_augment(report: Report, device, dry: bool, timeout: int) -> None:
    args = ["--device", device.type] + (["--images", "2000", "--repeat", "1"] if dry else [])
    command = [sys.executable, str(ROOT / "benchmarks" / "augment.py"), *args]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        output, rc = (done.stdout + done.stderr).strip(), done.returncode
    except subprocess.TimeoutExpired:
        output, rc = f"(timed out after {timeout} s)", -1
    ratios = [float(x) for x in re.findall(r"\(\s*([\d.]+)×\)", output)]
    report.section(f"Augmentation benchmark on {device.type}", f"`python benchmarks/augment.py {' '.join(args)}`:",
                   "", "```", *output.splitlines()[-6:], "```")
    if rc != 0 or len(ratios) != 4:
        report.fail("augmentation benchmark", f"exit status {rc}, {len(ratios)} ratios found")
        return
    if device.type == "cuda":  # per function: (whole array, batches of 256)
        crop, flip = min(ratios[0:2]), min(ratios[2:4])
        report.target("random crop and flip on CUDA ≥ 20× a per-image loop (the lower of whole array and "
                      "batches of 256)", f"crop {crop:.0f}×, flip {flip:.0f}×", min(crop, flip) >= TARGET_AUGMENT)


# ----------------------------------------------------------------------------- 4. chapter 4 in GPU mode


def execute_notebook(path: Path, max_cells: int | None = None) -> int:
    """Run the code cells of the notebook at ``path`` in order, in this process, as a kernel would (one
    namespace; IPython's ``%`` and ``!`` lines skipped); print each cell's time; 1 at the first failure."""
    # As a Jupyter kernel: the notebook's folder first on the import path, not this checkout (whose
    # exercises/ are the learner's stubs: the caller puts the solved copy on PYTHONPATH).
    sys.path[:] = [os.getcwd(), *(p for p in sys.path if p and Path(p).resolve() != ROOT)]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [c for c in json.loads(Path(path).read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    namespace: dict = {"__name__": "__main__"}
    for number, cell in enumerate(cells[:max_cells] if max_cells else cells, start=1):
        source = "".join(cell["source"])
        code = "\n".join("pass  # " + line if line.lstrip().startswith(("%", "!")) else line
                         for line in source.splitlines())
        start = time.monotonic()
        try:
            exec(compile(code, f"<{Path(path).name}, code cell {number}>", "exec"), namespace)
        except Exception:
            traceback.print_exc()
            print(f"CELL FAILED: code cell {number} of {len(cells)}", flush=True)
            return 1
        finally:
            plt.close("all")
        first = next((line for line in source.splitlines() if line.strip() and not line.startswith("#")), "")
        print(f"cell {number}: ok ({time.monotonic() - start:.1f} s)  {first[:70]}", flush=True)
    print(f"NOTEBOOK OK: {min(len(cells), max_cells or len(cells))} of {len(cells)} code cells", flush=True)
    return 0


def run_notebook(report: Report, notebook: Path, device, cifar: Path | None, max_cells: int | None,
                 timeout: int) -> None:
    from grading.course_run import build_solved_tree

    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        tmp_path = Path(tmp)
        solved = build_solved_tree(tmp_path / "solved")
        mirror = tmp_path / "mirror"
        if cifar is not None:
            (mirror / "cifar10").mkdir(parents=True)
            os.symlink(cifar.resolve(), mirror / "cifar10" / "cifar10-jpeg.tar.gz")
        fast = "0" if device.type == "cuda" else "1"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(solved), os.environ.get("PYTHONPATH")])),
               "COURSE_FAST": fast, "COURSE_DATA_MIRROR": str(mirror), "COURSE_CHECKPOINTS": str(tmp_path / "ckpt"),
               "MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}
        target = solved / "course" / notebook.name
        command = [sys.executable, str(Path(__file__).resolve()), "--execute-notebook", str(target)]
        if max_cells:
            command += ["--notebook-cells", str(max_cells)]
        start = time.monotonic()
        try:
            done = subprocess.run(command, cwd=target.parent, env=env, capture_output=True, text=True, timeout=timeout)
            output, rc = (done.stdout + done.stderr).strip(), done.returncode
        except subprocess.TimeoutExpired as exc:
            output, rc = f"{_text(exc.stdout)}\n(timed out after {timeout} s)", -1
    seconds = time.monotonic() - start
    mode = "GPU mode (COURSE_FAST=0, CUDA)" if device.type == "cuda" else "fast mode on the CPU"
    lines = output.splitlines()
    keep = [line for line in lines if not line.startswith("cell ")][-25:]
    highlights = [f"* {line.strip()}" for line in lines if "test accuracy" in line]
    report.section(f"Chapter 4's notebook, {mode}",
                   f"`{notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook}` against the "
                   f"reference solutions, {seconds:.0f} s" + (f", first {max_cells} code cells" if max_cells else "")
                   + f": {'green' if rc == 0 else 'FAILED'}.", "", *highlights, "", "```",
                   *[line for line in lines if line.startswith("cell ")][-60:], *keep, "```")
    if rc != 0:
        report.fail("notebook", f"{notebook.name} failed in {mode}")
    if device.type == "cuda":
        verdict = f"{'green' if rc == 0 else 'failed'} in {seconds:.0f} s"
        report.target("chapter 4's notebook green in GPU mode", verdict, rc == 0)


# ----------------------------------------------------------------------------- the check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, a few hundred images, one epoch, no airbench: that the check works (CI runs it)")
    parser.add_argument("--data", type=Path, default=None, help="cifar10-jpeg.tar.gz (default: .gpu/ or ../shared/)")
    parser.add_argument("--limit", type=int, default=None, help="use this many training and test images")
    parser.add_argument("--epochs", type=int, nargs="+", default=None,
                        help="speed-run epochs: the recipe's first, then optional probes (default: 18 12 24)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--airbench-runs", type=int, default=2)
    parser.add_argument("--no-compile-run", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--notebook", type=Path, default=ROOT / "course" / "04_training.ipynb")
    parser.add_argument("--notebook-cells", type=int, default=None, help="run only the first N code cells")
    parser.add_argument("--skip", nargs="*", default=[], choices=("tests", "speedrun", "augment", "notebook"))
    parser.add_argument("--budget-s", type=float, default=480.0, help="optional parts stop after this much time")
    parser.add_argument("--report", type=Path, default=None,
                        help="where to write the Markdown (default: docs/benchmarks/gpu-check.md; "
                             "build/gpu-check-dry-run.md with --dry-run)")
    parser.add_argument("--execute-notebook", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.execute_notebook:
        return execute_notebook(args.execute_notebook, args.notebook_cells)

    site = Path(tempfile.mkdtemp(prefix="gpu-check-site-"))
    unpacked = unpack_wheels(GPU_DIR, site) if GPU_DIR.is_dir() else []
    import torch

    from exercises.kit import speedrun as sr

    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        print("error: no CUDA device here. On a CPU, run `python benchmarks/gpu.py --dry-run` (what CI runs).",
              file=sys.stderr)
        return 2
    device = torch.device("cpu" if dry else "cuda")
    report_path = args.report or (ROOT / "build" / "gpu-check-dry-run.md" if dry else
                                  ROOT / "docs" / "benchmarks" / "gpu-check.md")
    report = Report("GPU check (`benchmarks/gpu.py`)" + (": CPU dry run" if dry else ""))
    report.header = [f"Written by `python benchmarks/gpu.py{' --dry-run' if dry else ''}`; every figure below was "
                     "measured in this one run.", "", *machine(device)]
    if unpacked:
        report.header.append("* wheels from `.gpu/`: " + "; ".join(unpacked))
    if dry:
        report.header.append("* dry run: CPU, few images, one epoch, no airbench, small widths: no figure here means "
                             "anything about speed or accuracy")

    if "tests" not in args.skip:
        run_cuda_tests(report, on_gpu=not dry, timeout=240)

    cifar = find_cifar(args.data)
    runs: Speedruns | None = None
    bench: list[dict] = []
    data = None
    if "speedrun" not in args.skip:
        if cifar is None:
            report.fail("data", "no cifar10-jpeg.tar.gz: pass --data, or put it in .gpu/cifar10/ (make gpu-prepare)")
        else:
            *data, load_s = load_data(cifar, args.limit or (300 if dry else None))
            print(f"data: {len(data[1]):,} training and {len(data[3]):,} test images from {cifar} in {load_s:.0f} s")
            config = (replace(sr.SPEEDRUN, epochs=1, batch_size=100, widths=(32, 64, 64), whiten_images=300,
                              eval_batch_size=100) if dry else sr.SPEEDRUN)
            epochs = args.epochs or ([1] if dry else [config.epochs, 12, 24])
            runs = Speedruns(replace(config, epochs=epochs[0]))
            seeds = args.seeds[:1] if dry else args.seeds
            try:
                runs.warm_up_s = sr.warm_up(runs.config, device)
                for seed in seeds:
                    runs.run(data, device, epochs[0], seed)
            except Exception as exc:  # report it, and go on with the other steps
                traceback.print_exc()
                report.fail("speed-run", f"{type(exc).__name__}: {exc}")
            if not dry and args.airbench_runs > 0:
                try:
                    bench = airbench_runs(report, data, args.airbench_runs)
                except Exception as exc:
                    traceback.print_exc()
                    report.fail("airbench94", f"{type(exc).__name__}: {exc} (its wheel belongs in .gpu/; it needs "
                                "torchvision)")

    if "augment" not in args.skip:
        run_augment(report, device, dry, timeout=240)

    if "notebook" not in args.skip:
        run_notebook(report, args.notebook, device, cifar, args.notebook_cells or (6 if dry else None),
                     timeout=max(60, int(args.budget_s + 60 - report.elapsed())))

    if runs is not None and data is not None:
        try:  # optional: other epoch counts, then torch.compile, while the time budget lasts
            for extra in epochs[1:]:
                for seed in seeds:
                    if report.elapsed() < args.budget_s - 30:
                        runs.run(data, device, extra, seed)
            if device.type == "cuda" and not args.no_compile_run and report.elapsed() < args.budget_s - 90:
                compile_s = sr.warm_up(replace(runs.config, compile=True), device)
                runs.run(data, device, runs.config.epochs, seeds[0], compile=True)
                runs.notes.append(f"The `torch.compile` row ran after a compiling warm-up of {compile_s:.0f} s, not "
                                  "counted in its wall time (a new model may still recompile within it).")
        except Exception as exc:
            traceback.print_exc()
            report.fail("speed-run probes", f"{type(exc).__name__}: {exc}")
        runs.section(report, len(data[1]), len(data[3]))
        compare(report, runs.by_epochs, runs.config.epochs, bench, device)

    text = report.markdown()
    out = Path(os.environ["OUT"]) / "gpu-check.md" if os.environ.get("OUT") else None
    for path in filter(None, [report_path, out]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"report written to {path}")
    shutil.rmtree(site, ignore_errors=True)
    print(f"\n{len(report.failures)} failure(s); targets: "
          + "; ".join(f"{what}: {verdict}" for what, _, verdict in report.targets))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
