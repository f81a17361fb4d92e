"""The Gradescope autograder bundle: what it holds, and run_autograder grading a submission with it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from exercises.kit.catalogue import catalogue
from grading.gradescope import build_bundle
from grading.suite import load_suite
from tests.conftest import REFERENCE_LAYERS


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("gradescope") / "autograder.zip")


def test_bundle_holds_the_scripts_the_grader_and_the_hidden_tests_but_no_solution(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in z.infolist()}
        texts = {n: z.read(n).decode("utf-8", errors="replace") for n in names}
    assert {"setup.sh", "run_autograder", "grading/__main__.py", "grading/sandbox_child.py",
            "grading/hidden/layers.py", "exercises/checks/program.py", "course/00_welcome.ipynb"} <= names
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert not any(n.startswith(("solutions/", "tests/")) for n in names)
    assert all(n.endswith(".ipynb") for n in names if n.startswith("course/"))  # the notebooks: the course's order
    assert not any(text.lstrip().startswith("### BEGIN SOLUTION") for text in texts.values())
    assert "raise NotImplementedError" in texts["exercises/layers.py"]  # the stubs, not the reference
    with tempfile.TemporaryDirectory() as tmp:  # the bundle's own stubs give the same exercise catalogue
        with zipfile.ZipFile(bundle) as z:
            z.extractall(tmp)
        assert catalogue(Path(tmp) / "exercises") == catalogue()
    assert ("/autograder/results/results.json" in texts["run_autograder"]
            or "results/results.json" in texts["run_autograder"])


def test_run_autograder_grades_a_submission_into_results_json(bundle: Path, tmp_path: Path) -> None:
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    submission = root / "submission"
    submission.mkdir(parents=True)
    (submission / "layers.py").write_text(REFERENCE_LAYERS)  # uploaded as loose files, as Gradescope keeps them
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "AUTOGRADER_PYTHON": sys.executable}
    script = root / "source" / "run_autograder"
    proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "isolation: " in proc.stdout
    result = json.loads((root / "results" / "results.json").read_text())
    layers = [t for t in load_suite() if t.name.startswith("layers.")]
    passed = [t for t in result["tests"] if t["status"] == "passed"]
    assert len(result["tests"]) == len(load_suite())
    assert sum(t["score"] for t in passed) == result["score"] == sum(t.points for t in layers)
    assert all(t["name"].split(":")[0] in {x.exercise for x in layers} for t in passed)
