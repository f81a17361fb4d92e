"""The notebooks as committed, and the headless course run that executes them."""

from __future__ import annotations

import json
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
