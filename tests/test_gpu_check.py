"""``benchmarks/gpu.py``, the one-command GPU check, kept from rotting on machines without a GPU.

Its CPU dry run (a few hundred images, one epoch, no airbench) goes through every step a GPU run takes,
on a small JPEG archive built here; its pieces (wheels unpacked from ``.gpu/``, the plain notebook runner
the device machine uses for want of Jupyter) are tested one by one.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from grading import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu.py"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu = _load()


def jpeg_archive(path: Path, per_class: dict[str, int]) -> Path:
    """A ``train/<class>/NNNN.jpg`` + ``test/<class>/NNNN.jpg`` tar like the CIFAR-10 JPEG copy, small."""
    from PIL import Image

    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for split, n in per_class.items():
            for c, name in enumerate(CLASSES):
                for i in range(n):
                    pixels = (rng.random((32, 32, 3)) * 80 + 17 * c).astype(np.uint8)
                    blob = io.BytesIO()
                    Image.fromarray(pixels).save(blob, format="JPEG", quality=75)
                    info = tarfile.TarInfo(f"{split}/{name}/{i:04d}.jpg")
                    info.size = blob.tell()
                    blob.seek(0)
                    tar.addfile(info, blob)
    return path


def _notebook(path: Path, *sources: str) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]}]
    cells += [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
               "source": [line + "\n" for line in s.splitlines()]} for s in sources]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the full check runs instead")
def test_the_dry_run_takes_every_step_on_a_cpu_and_writes_its_report(tmp_path: Path) -> None:
    archive = jpeg_archive(tmp_path / "cifar10-jpeg.tar.gz", {"train": 30, "test": 10})
    report = tmp_path / "report.md"
    env = {k: v for k, v in os.environ.items() if k != "OUT"} | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--data", str(archive), "--report", str(report)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = report.read_text()
    for expected in ("CPU dry run", "* commit: ", "* torch ", "* date: ", "## CUDA tests", "test_data_devices.py",
                     "test_speedrun.py", "## Speed-run on CIFAR-10 (JPEG copy)", "300 training and 100 test images",
                     "## Augmentation benchmark on cpu", "random_crop(padding=4)",
                     "## Chapter 4's notebook, fast mode on the CPU", "green", "airbench94 was not run"):
        assert expected in text, expected
    assert "## Failures" not in text


def test_without_cuda_the_full_check_refuses_and_names_the_dry_run(capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine runs the full check")
    assert gpu.main([]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_the_cuda_test_files_are_those_that_skip_without_cuda() -> None:
    names = {p.name for p in gpu.cuda_test_files()}
    assert {"test_data_devices.py", "test_speedrun.py"} <= names and "test_gpu_check.py" not in names


def test_pure_python_wheels_are_unpacked_onto_the_import_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    with zipfile.ZipFile(tmp_path / "wheels_demo_pkg-1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("wheels_demo_pkg/__init__.py", "ANSWER = 42\n")
        wheel.writestr("wheels_demo_pkg-1.0.dist-info/METADATA", "Name: wheels-demo-pkg\n")
    with zipfile.ZipFile(tmp_path / "torch-0.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("torch/__init__.py", "raise ImportError('never unpacked over the installed torch')\n")
    site = tmp_path / "site"
    done = gpu.unpack_wheels(tmp_path, site)
    assert any("wheels_demo_pkg" in d and "unpacked" in d for d in done)
    assert any("torch-0.0" in d and "already installed" in d for d in done) and not (site / "torch").exists()
    assert importlib.import_module("wheels_demo_pkg").ANSWER == 42
    assert str(site) in os.environ["PYTHONPATH"]
    sys.modules.pop("wheels_demo_pkg", None)


def test_the_plain_notebook_runner_shares_one_namespace_and_skips_magics(tmp_path: Path, capsys) -> None:
    path = _notebook(tmp_path / "ok.ipynb", "%load_ext autoreload\nx = 2", "import matplotlib.pyplot as plt\n"
                     "plt.plot([1, 2])\nplt.show()\nprint('x is', x * 21)")
    assert gpu.execute_notebook(path) == 0
    out = capsys.readouterr().out
    assert "x is 42" in out and "NOTEBOOK OK: 2 of 2 code cells" in out


def test_the_plain_notebook_runner_stops_at_the_first_failing_cell(tmp_path: Path, capsys) -> None:
    path = _notebook(tmp_path / "bad.ipynb", "a = 1", "1 / 0", "print('never')")
    assert gpu.execute_notebook(path) == 1
    captured = capsys.readouterr()
    assert "CELL FAILED: code cell 2 of 3" in captured.out and "never" not in captured.out
    assert "ZeroDivisionError" in captured.err
    assert gpu.execute_notebook(path, max_cells=1) == 0


def test_known_gpus_have_their_dense_16_bit_peaks() -> None:
    assert gpu.peak_tflops("NVIDIA H200") == gpu.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu.peak_tflops("Tesla T4") == 65.0 and gpu.peak_tflops("Some Future GPU") is None
