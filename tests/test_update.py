"""Updating a learner's copy to a newer release keeps every piece of their work."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exercises.update import UpdateError, merge_exercise_module, update_course
from grading.release import build_release
from tests.conftest import REFERENCE_LAYERS

NEW_FUNCTION = '''

def sigmoid_forward(x):
    """Sigmoid.

    Explained in course/02_backprop.ipynb, section "Sigmoid".
    """
    raise NotImplementedError('sigmoid_forward is not implemented yet: see course/02_backprop.ipynb.')
'''


def _implemented(stub: str) -> str:
    """The stub with relu_forward implemented the reference's way, plus a helper of the learner's."""
    start = REFERENCE_LAYERS.index("def relu_forward")
    end = REFERENCE_LAYERS.index("def relu_backward")
    mine = REFERENCE_LAYERS[start:end].rstrip() + "\n"
    stub_start, stub_end = stub.index("def relu_forward"), stub.index("def relu_backward")
    return stub[:stub_start] + mine + "\n\n" + stub[stub_end:] + "\n\nimport math\n\n\ndef my_helper(x):\n    return x\n"


@pytest.fixture
def releases(tmp_path: Path):
    v1 = build_release(tmp_path / "v1")
    v2 = tmp_path / "v2"
    shutil.copytree(v1, v2)
    (v2 / "exercises" / "layers.py").write_text((v2 / "exercises" / "layers.py").read_text() + NEW_FUNCTION)
    nb = json.loads((v2 / "course" / "00_welcome.ipynb").read_text())
    nb["cells"][0]["source"] = "# Chapter 0, revised\n"
    (v2 / "course" / "00_welcome.ipynb").write_text(json.dumps(nb))
    (v2 / "course" / "99_new.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                            "nbformat_minor": 5}))
    from exercises.update import write_manifest

    (v2 / ".course-release.json").unlink()
    write_manifest(v2)
    learner = tmp_path / "learner"
    shutil.copytree(v1, learner)
    return v1, v2, learner


def test_update_keeps_implemented_functions_helpers_notes_and_progress(releases) -> None:
    _, v2, learner = releases
    layers = learner / "exercises" / "layers.py"
    layers.write_text(_implemented(layers.read_text()))
    (learner / ".course-progress.json").write_text('{"version": 1, "attempts": []}')
    before_progress = (learner / ".course-progress.json").read_bytes()

    report = update_course(v2, learner)

    merged = layers.read_text()
    assert "out = torch.where(x > 0, x, torch.zeros_like(x))" in merged  # the learner's relu_forward
    assert "def sigmoid_forward" in merged  # the release's new exercise
    assert "relu_backward is not implemented yet" in merged  # still a stub: the new stub
    assert "def my_helper" in merged and "import math" in merged
    compile(merged, "layers.py", "exec")
    assert report.merged["exercises/layers.py"] == ["relu_forward", "my_helper"]
    assert "course/99_new.ipynb" in report.added
    assert "course/00_welcome.ipynb" in report.replaced  # untouched by the learner: replaced
    assert (learner / ".course-progress.json").read_bytes() == before_progress
    assert report.backup and (report.backup / "exercises" / "layers.py").read_text() == _implemented(
        (releases[0] / "exercises" / "layers.py").read_text())

    again = update_course(v2, learner)  # idempotent
    assert not again.added and not again.replaced and not again.merged and not again.kept


def test_an_edited_notebook_is_kept_and_the_new_one_written_beside_it(releases) -> None:
    _, v2, learner = releases
    notebook = learner / "course" / "00_welcome.ipynb"
    nb = json.loads(notebook.read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "My notes"})
    notebook.write_text(json.dumps(nb))
    report = update_course(v2, learner)
    assert "My notes" in notebook.read_text()
    assert "Chapter 0, revised" in (learner / "course" / "00_welcome.updated.ipynb").read_text()
    assert any("00_welcome.ipynb" in k for k in report.kept)


def test_running_a_notebook_is_not_an_edit(releases) -> None:
    _, v2, learner = releases
    notebook = learner / "course" / "00_welcome.ipynb"
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [{"output_type": "stream", "name": "stdout", "text": "x"}], 1
    notebook.write_text(json.dumps(nb))
    assert "course/00_welcome.ipynb" in update_course(v2, learner).replaced


def test_nothing_is_ever_deleted_and_dry_run_writes_nothing(releases) -> None:
    _, v2, learner = releases
    (learner / "my_notes.txt").write_text("mine")
    snapshot = {p: p.read_bytes() for p in learner.rglob("*") if p.is_file()}
    report = update_course(v2, learner, dry_run=True)
    assert report.added and {p: p.read_bytes() for p in learner.rglob("*") if p.is_file()} == snapshot
    update_course(v2, learner)
    assert all(p.exists() for p in snapshot)


def test_merge_refuses_a_file_with_a_syntax_error() -> None:
    with pytest.raises(UpdateError, match="syntax error"):
        merge_exercise_module("def f():\n    pass\n", "def f(:\n")


def test_update_from_a_zip_on_the_command_line(releases, tmp_path: Path) -> None:
    _, v2, learner = releases
    archive = shutil.make_archive(str(tmp_path / "v2-zip"), "zip", v2.parent, v2.name)
    script = "import sys; from exercises.__main__ import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", script, "update", archive, "--into", str(learner)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "course/99_new.ipynb" in proc.stdout and "nothing was deleted" in proc.stdout
    assert (learner / "course" / "99_new.ipynb").exists()
    proc = subprocess.run([sys.executable, "-c", script, "update", str(tmp_path / "missing")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
