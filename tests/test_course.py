"""The notebooks as committed, and the headless course run that executes them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat

from grading import PROJECT_ROOT
from grading.course_run import build_solved_tree, chapter_notebooks, run_course

NOTEBOOKS = chapter_notebooks(PROJECT_ROOT / "course")


def test_there_is_a_chapter_0() -> None:
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("00_")


def test_notebooks_are_valid_and_committed_without_outputs() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"


def test_chapter_0_runs_the_first_check_and_reports_the_device() -> None:
    source = "\n".join(c.source for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells)
    assert 'check("relu")' in source and "device_report" in source and "load_embedded_mnist" in source


def test_solved_tree_holds_the_reference_and_leaves_the_repo_alone(tmp_path: Path) -> None:
    solved = build_solved_tree(tmp_path)
    layers = (solved / "exercises" / "layers.py").read_text()
    assert "NotImplementedError" not in layers and "### BEGIN SOLUTION" not in layers
    assert "NotImplementedError" in (PROJECT_ROOT / "exercises" / "layers.py").read_text()


def _tiny_course(root: Path, failing: bool) -> Path:
    (root / "course").mkdir(parents=True)
    (root / "exercises").mkdir()
    (root / "exercises" / "__init__.py").write_text("")
    (root / "solutions").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\n"
                                                                   "print('fast', os.environ['COURSE_FAST'])"),
                                         nbformat.v4.new_code_cell("1 / 0" if failing else "print('done')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "course" / "00_demo.ipynb")
    return root


def test_headless_run_writes_notebooks_and_html(tmp_path: Path) -> None:
    assert run_course(tmp_path / "out", root=_tiny_course(tmp_path / "repo", failing=False)) == 0
    executed = json.loads((tmp_path / "out" / "00_demo.ipynb").read_text())
    assert "fast 1" in "".join(executed["cells"][0]["outputs"][0]["text"])
    assert "done" in (tmp_path / "out" / "00_demo.html").read_text()


def test_headless_run_fails_when_a_cell_fails(tmp_path: Path, capsys) -> None:
    assert run_course(tmp_path / "out", root=_tiny_course(tmp_path / "repo", failing=True)) == 1
    assert "00_demo.ipynb" in capsys.readouterr().err


def test_progress_bars_show_in_the_executed_html(tmp_path: Path) -> None:
    root = _tiny_course(tmp_path / "repo", failing=False)
    shutil.copytree(PROJECT_ROOT / "exercises" / "kit", root / "exercises" / "kit")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import time\nfrom exercises.kit.figures import progress_bar\n"
        "for _ in progress_bar(range(3), desc='steps'):\n    time.sleep(0.2)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "course" / "01_bars.ipynb")
    assert run_course(tmp_path / "out", root=root, notebooks=["01_bars"]) == 0
    html = (tmp_path / "out" / "01_bars.html").read_text()
    assert "steps: 100%" in html and "3/3" in html  # the bar's final state, as text
    assert "steps:   0%" not in html  # carriage returns resolved: one line, not every redraw


def _code(path: Path) -> str:
    """The notebook's own code cells (not the generated Colab set-up cell)."""
    return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells
                     if c.cell_type == "code" and "course-setup" not in c.metadata.get("tags", []))


def test_one_rule_for_fast_mode_stated_in_chapter_0() -> None:
    from exercises.kit.devices import fast_mode

    for path in NOTEBOOKS:
        code = _code(path)
        assert "environ.get(\"COURSE_FAST\"" not in code, f"{path.name} reads COURSE_FAST itself, not fast_mode()"
        if re.search(r"\bFAST\b", code):
            assert "FAST = fast_mode()" in code, path.name
    welcome = "\n".join(c.source for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells)
    assert "**Fast mode**, one rule for every chapter" in welcome and "fast_mode()" in welcome
    import os

    before = os.environ.get("COURSE_FAST")
    try:
        for value, expected in (("1", True), ("0", False), ("", False)):
            os.environ["COURSE_FAST"] = value
            assert fast_mode() is expected
    finally:
        os.environ.pop("COURSE_FAST", None) if before is None else os.environ.__setitem__("COURSE_FAST", before)


def test_chapter_4_keeps_its_checkpoints_in_the_course_folder() -> None:
    import subprocess

    code = _code(PROJECT_ROOT / "course" / "04_training.ipynb")
    assert "tempfile" not in code and "mkdtemp" not in code  # nothing left behind in /tmp
    assert 'Path(os.environ.get("COURSE_CHECKPOINTS", "../checkpoints"))' in code  # beside course/ and exercises/
    ignored = subprocess.run(["git", "check-ignore", "-q", "checkpoints/fast/04_mnist_budget.pt"], cwd=PROJECT_ROOT)
    assert ignored.returncode == 0, "checkpoints/ must be ignored by git"
