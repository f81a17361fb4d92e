"""One source for "this module is an exercise module, of chapter N", and every consumer agrees with it.

The source is ``exercises.kit.catalogue``: the top-level modules of ``exercises/`` whose definitions
carry ``Explained in course/NN_name.ipynb`` lines. Its consumers: the stub generator, the grader's
hidden tests and submissions reader, nbgrader's configuration, the progress view, the update command,
the learner release and the notebooks' check cells.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from exercises.checks import check_catalogue
from exercises.kit.catalogue import catalogue, exercise_modules, find, module_exercises
from exercises.kit.progress import summarize
from exercises.kit.update import update_course
from grading import PROJECT_ROOT
from grading.nbgrader_course import graded_chapters
from grading.release import build_release
from grading.stubs import generate
from grading.submissions import module_files
from grading.suite import load_suite
from tests.conftest import TEST_SOURCE

CATALOGUE = {e.name: e for e in catalogue()}
MODULES = exercise_modules()


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return build_release(tmp_path_factory.mktemp("release") / "learner", repository=TEST_SOURCE)


def test_the_source_reads_the_structure() -> None:
    assert MODULES == ["layers", "data", "autograd", "conv", "train", "optim", "metrics"]  # the course's order
    assert CATALOGUE["relu_forward"].chapter == 0 and CATALOGUE["relu_forward"].module == "layers"
    assert CATALOGUE["Value"].notebook == "02_backprop" and CATALOGUE["col2im"].chapter == 3
    chapters = [e.chapter for e in catalogue()]
    assert chapters == sorted(chapters)
    source = '"""m."""\ndef f():\n    """Does f.\n\n    Explained in course/07_more.ipynb,\n    section "F".\n    """\n'
    assert [(e.name, e.notebook, e.section) for e in module_exercises(source, "m")] == [("f", "07_more", "F")]
    assert module_exercises("def helper():\n    return 1\n", "m") == []  # no "Explained in": not an exercise


def test_stubs_are_generated_for_exactly_the_exercise_modules() -> None:
    assert sorted(generate()) == sorted(f"{m}.py" for m in MODULES)
    top_level = sorted(p.name for p in (PROJECT_ROOT / "exercises").iterdir() if p.name != "__pycache__")
    assert top_level == sorted(["__init__.py", "__main__.py", "checks", "kit", *(f"{m}.py" for m in MODULES)])


def test_the_grader_files_each_hidden_test_under_its_exercises_chapter() -> None:
    tests = load_suite()
    assert {t.exercise for t in tests} <= set(CATALOGUE)
    for t in tests:
        assert t.chapter == CATALOGUE[t.exercise].notebook, t.name
        assert t.name.split(".")[0] == CATALOGUE[t.exercise].module, t.name  # grading/hidden/<module>.py
    assert module_files() == {f"{m}.py" for m in MODULES}
    chapters = graded_chapters()
    assert {ex: ch for ch, exercises in chapters.items() for ex in exercises} == {
        t.exercise: CATALOGUE[t.exercise].notebook for t in tests}


def test_nbgrader_keeps_each_learners_exercise_modules() -> None:
    from traitlets.config import Config

    from grading.nbgrader_course import configure

    c = Config()
    configure(c, PROJECT_ROOT / "build" / "no-such-course")
    assert c.Autograde.exclude_overwriting == {}
    course = PROJECT_ROOT / "build" / "catalogue-test-course"
    (course / "source" / "00_welcome").mkdir(parents=True, exist_ok=True)
    try:
        configure(c, course)
        assert c.Autograde.exclude_overwriting == {"00_welcome": [f"exercises/{m}.py" for m in MODULES]}
    finally:
        shutil.rmtree(course)


def test_the_progress_view_files_each_check_under_its_exercises_chapter() -> None:
    checks = check_catalogue()
    covered = {e for _, exercises in checks for e in exercises}
    assert covered <= set(CATALOGUE)
    assert set(CATALOGUE) - covered <= {"Conv2dFunction"}  # checked through Conv2d, whose check covers both
    rows = summarize(checks, [])
    for row in rows:
        assert row.chapter == min(CATALOGUE[e].chapter for e in row.exercises), row.check
    assert next(r for r in rows if r.check == "relu").chapter == 0
    order = [min(list(CATALOGUE).index(e) for e in r.exercises) for r in rows]
    assert order == sorted(order)  # the course's order, chapter 0 first


def test_each_check_cell_sits_in_the_notebook_that_teaches_its_exercises() -> None:
    by_check = dict(check_catalogue())
    seen = set()
    for path in sorted((PROJECT_ROOT / "course").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for name in re.findall(r'\bcheck\("(\w+)"\)', code):
            assert name in by_check, f"{path.name} calls check({name!r}), which does not exist"
            assert {CATALOGUE[e].notebook for e in by_check[name]} == {path.stem}, (path.name, name)
            seen.add(name)
    assert seen == set(by_check)  # every check is run somewhere in the course


def test_the_release_and_the_update_command_read_the_same_catalogue(release: Path, tmp_path: Path) -> None:
    assert catalogue(release / "exercises") == catalogue()
    assert sorted(p.name for p in (release / "exercises").iterdir()) == sorted(
        ["__init__.py", "__main__.py", "checks", "kit", *(f"{m}.py" for m in MODULES)])
    learner = tmp_path / "learner"
    shutil.copytree(release, learner)
    for module in MODULES:  # an edit in every exercise module: update must merge each, and only those
        path = learner / "exercises" / f"{module}.py"
        path.write_text(path.read_text() + "\n\ndef my_helper():\n    return 1\n")
    (learner / "exercises" / "kit" / "figures.py").write_text("# edited given code\n")
    report = update_course(release, learner)
    assert sorted(report.merged) == sorted(f"exercises/{m}.py" for m in MODULES)
    assert "exercises/kit/figures.py (your edited copy is in the backup)" in report.replaced
    assert find("relu_forward", learner / "exercises").chapter == 0
