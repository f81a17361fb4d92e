"""Updating a learner's copy to a newer release keeps every piece of their work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exercises.kit.update import UpdateError, merge_exercise_module, update_course
from grading.release import build_release
from tests.conftest import REFERENCE_LAYERS, TEST_SOURCE

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
    return (stub[:stub_start] + mine + "\n\n" + stub[stub_end:]
            + "\n\nimport math\n\n\ndef my_helper(x):\n    return x\n")


@pytest.fixture
def releases(tmp_path: Path):
    v1 = build_release(tmp_path / "v1", repository=TEST_SOURCE)
    v2 = tmp_path / "v2"
    shutil.copytree(v1, v2)
    (v2 / "exercises" / "layers.py").write_text((v2 / "exercises" / "layers.py").read_text() + NEW_FUNCTION)
    nb = json.loads((v2 / "course" / "00_welcome.ipynb").read_text())
    nb["cells"][0]["source"] = "# Chapter 0, revised\n"
    (v2 / "course" / "00_welcome.ipynb").write_text(json.dumps(nb))
    (v2 / "course" / "99_new.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                            "nbformat_minor": 5}))
    from exercises.kit.update import write_manifest

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


OLD_RELEASE = Path(__file__).with_name("fixtures") / "learner-release-0.1.zip"  # the release before exercises/kit/
OLD_HELPERS = ["colab", "datasets", "devices", "download", "evaluation_plots", "plotting", "progress", "quick_train",
               "seeding", "shipping", "training_utils", "update", "validate"]


def _old_copy_with_relu_done(tmp_path: Path) -> Path:
    """A learner's copy of release 0.1 (the course's helpers beside the exercise files) with relu implemented,
    and a helper of theirs that imports one of the old helper modules."""
    import zipfile

    with zipfile.ZipFile(OLD_RELEASE) as z:
        z.extractall(tmp_path / "old")
    learner = tmp_path / "old" / "learner-release"
    layers = learner / "exercises" / "layers.py"
    text = layers.read_text()
    assert "from exercises.validate import" in text  # the old layout, really
    for name, body in (("relu_forward", "    out = torch.where(x > 0, x, torch.zeros_like(x))\n    return out, x"),
                       ("relu_backward", "    x = cache\n"
                                         "    require_same_shape(\"dout\", dout, \"the forward's input\", x)\n"
                                         "    return torch.where(x > 0, dout, torch.zeros_like(dout))")):
        stub = next(ln for ln in text.splitlines() if f"raise NotImplementedError('{name} is" in ln)
        text = text.replace(stub, body)
    text += ("\n\nfrom exercises.seeding import seed_everything\n\n\n"
             "def my_noise(n):\n    return torch.randn(n, generator=seed_everything(1))\n")
    layers.write_text(text)
    return learner


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd), "COURSE_PROGRESS_FILE": str(cwd / ".progress-test.json")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


CHECK_RELU = ["-c", "from exercises.checks import check; from exercises.layers import my_noise; "
                    "assert my_noise(3).shape == (3,); check('relu')"]


def test_update_from_the_old_layout_keeps_the_work_and_lists_the_old_helpers(tmp_path: Path) -> None:
    learner = _old_copy_with_relu_done(tmp_path)
    new = build_release(tmp_path / "new" / "learner-release", repository=TEST_SOURCE)
    # The new release's updater, run on the old copy (what the learner README says to do once).
    proc = _run(["-m", "exercises", "update", "--into", str(learner), str(new)], cwd=new)
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split("no longer used by the course (kept; delete them when you like): ")[1].splitlines()[0]
    assert listed.split(", ") == [f"exercises/{m}.py" for m in OLD_HELPERS]
    assert all((learner / "exercises" / f"{m}.py").exists() for m in OLD_HELPERS)  # never deleted
    merged = (learner / "exercises" / "layers.py").read_text()
    assert "out = torch.where(x > 0, x, torch.zeros_like(x))" in merged  # the learner's relu, kept
    assert "from exercises.kit.devices import seed_everything" in merged  # their import, pointed at kit/
    assert "from exercises.validate" not in merged and "from exercises.seeding" not in merged
    assert (learner / "exercises" / "kit" / "catalogue.py").exists()
    # The course works afterwards, from the learner's copy: the check passes, the progress view runs.
    proc = _run(CHECK_RELU, cwd=learner)
    assert proc.returncode == 0 and "All properties of 'relu' hold" in proc.stdout, proc.stdout + proc.stderr
    proc = _run(["-m", "exercises", "progress"], cwd=learner)
    assert proc.returncode == 0 and "Course progress: 1 of" in proc.stdout, proc.stdout + proc.stderr


def test_the_old_updater_also_leaves_a_working_course(tmp_path: Path) -> None:
    """A learner who runs their old copy's own `python -m exercises update NEW` loses nothing either; a run
    of the new updater afterwards lists the files no release ships any more."""
    learner = _old_copy_with_relu_done(tmp_path)
    new = build_release(tmp_path / "new" / "learner-release", repository=TEST_SOURCE)
    proc = _run(["-m", "exercises", "update", str(new)], cwd=learner)  # the 0.1 updater
    assert proc.returncode == 0, proc.stderr
    assert "out = torch.where(x > 0, x, torch.zeros_like(x))" in (learner / "exercises" / "layers.py").read_text()
    proc = _run(CHECK_RELU, cwd=learner)
    assert proc.returncode == 0 and "All properties of 'relu' hold" in proc.stdout, proc.stdout + proc.stderr
    proc = _run(["-m", "exercises", "update", str(new)], cwd=learner)  # now the new updater
    assert proc.returncode == 0, proc.stderr
    assert "not part of this release (left from an older one, or yours; kept): " in proc.stdout
    assert all(f"exercises/{m}.py" in proc.stdout for m in OLD_HELPERS)
