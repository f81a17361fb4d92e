"""nbgrader end to end: the real ``nbgrader`` commands on a course built from chapter 0.

``generate_assignment``, ``autograde``, ``generate_feedback`` and ``export`` run as an instructor would
run them, with the project's configuration, over learners who are perfect, partial, untouched,
crashing, malicious, and who tampered with or broke their notebook. The hidden tests run in the
sandbox; no learner can change a score by what they do to the notebook, and none stops the batch.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from html import unescape
from pathlib import Path

import pytest

from grading.nbgrader_course import build_course, nbgrader, repair_notebook
from grading.suite import load_suite
from tests.conftest import REFERENCE_LAYERS, STUB_LAYERS
from tests.test_grading import ZERO_BUG

CHAPTER = "00_welcome"
HIDDEN = Path("grading/hidden/layers.py").resolve()


def _points(exercise: str | None = None, name_part: str = "") -> float:
    return sum(t.points for t in load_suite(CHAPTER) if exercise in (None, t.exercise) and name_part in t.name)


def _notebook(folder: Path) -> Path:
    return folder / f"{CHAPTER}.ipynb"


def _edit(folder: Path, change) -> None:
    nb = json.loads(_notebook(folder).read_text())
    change(nb)
    _notebook(folder).write_text(json.dumps(nb))


def _test_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]


def _malicious_notebook(nb: dict) -> None:
    for cell in _test_cells(nb):
        cell["metadata"]["tags"] = ["skip-execution"]  # nbgrader's default: skipped cells score full marks
        cell["source"] += "\nFalse"  # a non-numeric last value scores full marks too
    nb["cells"].append({"cell_type": "code", "id": "sneaky", "metadata": {}, "execution_count": None, "outputs": [],
                        "source": f"print(open({str(HIDDEN)!r}).read())\nFalse"})


def _tamper(nb: dict) -> None:
    cells = _test_cells(nb)
    nb["cells"].append(json.loads(json.dumps(cells[0])))  # split/duplicated: aborts a stock nbgrader batch
    del cells[1]["metadata"]["nbgrader"]["schema_version"]  # stripped metadata: "old metadata version"
    nb["cells"][0]["cell_type"] = "code"  # a retyped cell
    nb["cells"][0].update(outputs=[], execution_count=None)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course_dir = tmp_path_factory.mktemp("nbgrader-course")
    chapters = build_course(course_dir, only=[CHAPTER])
    assert list(chapters) == [CHAPTER]
    nbgrader(course_dir, "generate_assignment", CHAPTER, "--force", timeout=300)
    release = course_dir / "release" / CHAPTER

    def learner(name: str, layers: str | None = None, notebook=None, raw: str | None = None) -> None:
        folder = course_dir / "submitted" / name / CHAPTER
        shutil.copytree(release, folder)
        if layers is not None:
            (folder / "exercises" / "layers.py").write_text(layers)
        if notebook is not None:
            _edit(folder, notebook)
        if raw is not None:
            _notebook(folder).write_text(raw)

    learner("perfect", REFERENCE_LAYERS)
    learner("partial", ZERO_BUG)
    learner("untouched")
    learner("crashing", REFERENCE_LAYERS + "\nimport os\nos._exit(1)\n",
            notebook=lambda nb: nb["cells"].insert(1, {"cell_type": "code", "id": "crash", "metadata": {},
                                                       "execution_count": None, "outputs": [],
                                                       "source": "import os\nos._exit(1)"}))
    learner("malicious", STUB_LAYERS + f"\n_peek = open({str(HIDDEN)!r}).read() if __import__('os').path.exists("
                                       f"{str(HIDDEN)!r}) else ''\n", notebook=_malicious_notebook)
    learner("tampered", REFERENCE_LAYERS, notebook=_tamper)
    learner("broken", REFERENCE_LAYERS, raw='{"cells": [ this is not json')
    autograde = nbgrader(course_dir, "autograde", CHAPTER, check=False, timeout=600)
    feedback = nbgrader(course_dir, "generate_feedback", CHAPTER, check=False, timeout=300)
    export = nbgrader(course_dir, "export", check=False, timeout=300)
    grades = {r["student_id"]: r for r in csv.DictReader((course_dir / "grades.csv").open())}
    return course_dir, autograde, feedback, export, grades


def test_every_command_succeeds_and_the_batch_is_complete(course) -> None:
    _, autograde, feedback, export, grades = course
    for proc in (autograde, feedback, export):
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert sorted(grades) == ["broken", "crashing", "malicious", "partial", "perfect", "tampered", "untouched"]


@pytest.mark.parametrize("learner, expected", [
    ("perfect", "all"), ("tampered", "all"), ("broken", "all"),
    ("partial", "all but zero"), ("untouched", 0), ("crashing", 0), ("malicious", 0),
])
def test_scores(course, learner: str, expected) -> None:
    _, _, _, _, grades = course
    total = _points()
    want = {"all": total, "all but zero": total - _points("relu_backward", "zero")}.get(expected, expected)
    assert float(grades[learner]["max_score"]) == total
    assert float(grades[learner]["score"]) == want, grades[learner]


def test_the_gradebook_holds_points_per_exercise(course) -> None:
    from nbgrader.api import Gradebook

    course_dir = course[0]
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gb:
        for learner, backward in (("perfect", _points("relu_backward")),
                                  ("partial", _points("relu_backward") - _points("relu_backward", "zero"))):
            notebook = gb.find_submission_notebook(CHAPTER, CHAPTER, learner)
            scores = {g.name: g.score for g in notebook.grades}
            assert scores == {"hidden_relu_forward": _points("relu_forward"), "hidden_relu_backward": backward}


def test_feedback_shows_a_call_and_the_diagnosis_never_the_tests(course) -> None:
    course_dir = course[0]
    html = (course_dir / "feedback" / "partial" / CHAPTER / f"{CHAPTER}.html").read_text()
    page = unescape(re.sub(r"<[^>]+>", "", html))  # the text, without the syntax highlighting's markup
    assert "hidden_tests('relu_backward')" in page
    assert "The mask must be x > 0, not x >= 0." in page
    for line in HIDDEN.read_text().splitlines():
        if len(line.strip()) > 30 and not line.strip().startswith(("from ", "import ")):
            assert line.strip() not in page


def test_hidden_tests_never_reach_the_release(course) -> None:
    course_dir = course[0]
    text = (course_dir / "release" / CHAPTER / f"{CHAPTER}.ipynb").read_text()
    assert "hidden_tests(" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError" in (course_dir / "release" / CHAPTER / "exercises" / "layers.py").read_text()


def test_repaired_notebooks_keep_their_originals(course) -> None:
    course_dir = course[0]
    quarantined = {p.parts[-3] for p in (course_dir / "quarantine").rglob("*.ipynb")}
    assert {"malicious", "tampered", "broken"} <= quarantined
    assert "perfect" not in quarantined


def test_repair_notebook_replaces_what_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    path.write_bytes(b"\xff\xfe not a notebook")
    notes = repair_notebook(path)
    assert notes and "could not be read" in notes[0]
    assert json.loads(path.read_text())["cells"] == []


def test_the_configuration_neutralises_nbgraders_traps(tmp_path: Path) -> None:
    from traitlets.config import Config

    from grading.nbgrader_course import configure

    (tmp_path / "source" / CHAPTER).mkdir(parents=True)
    c = Config()
    configure(c, course_dir=tmp_path)
    assert c.IgnorePattern.enabled is True and c.IgnorePattern.pattern  # both keys, or nothing is ignored
    for stderr in ("/x.py:3: UserWarning: careful\n", " 45%|████▌     | 45/100 [00:01<00:01, 40.1it/s]"):
        assert re.search(c.IgnorePattern.pattern, stderr)
    assert c.Execute.skip_cells_with_tag not in ("skip-execution", "") and len(c.Execute.skip_cells_with_tag) > 30
    assert c.Execute.timeout >= 300
    assert "exercises/layers.py" in c.Autograde.exclude_overwriting[CHAPTER]
    assert c.OverwriteCells.add_missing_cells is True and callable(c.Autograde.pre_convert_hook)
    assert not any(str(p).rpartition(".")[2] == "Execute" for p in c.Autograde.autograde_preprocessors)
