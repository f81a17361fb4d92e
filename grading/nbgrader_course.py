"""The course as nbgrader assignments, graded by the same isolated runner as ``python -m grading grade``.

``build_course`` writes an nbgrader course folder: ``nbgrader_config.py`` and, for every chapter
notebook that teaches graded exercises, ``source/<chapter>/`` holding the notebook (course notebooks
are never edited: this is a copy) with one graded test cell per exercise appended, and the learner's
``exercises/`` package (the stubs, never the solutions: nbgrader copies ``.py`` files verbatim). A
test cell's hidden region is only a call (``hidden_tests("relu_forward")``), so nbgrader's feedback,
which shows hidden regions, shows a call and never the tests.

The configuration (``configure``) makes nbgrader's own commands do the right thing:

* ``autograde`` grades each learner's own ``exercises/*.py`` (``Autograde.exclude_overwriting``) with
  the hidden tests, in the sandbox, through the ``HiddenTests`` preprocessor, which takes the place of
  nbgrader's ``Execute``. It reads the learner's files before anything of theirs runs, writes each test
  cell's output itself (the diagnoses, then the points as a number: nbgrader's partial credit), and
  tags those cells so that no kernel ever executes them. The learner's notebook cells are not executed
  at all by default (the grade depends only on ``exercises/``, and learner code then never runs outside
  the sandbox); ``execute_learner_cells=True`` runs them in a kernel for the feedback's sake, with a
  timeout sized for the chapter notebooks, warnings and progress bars on stderr ignored, and a dead
  kernel costing nothing that was already graded.
* A learner's ``skip-execution`` tag, a test cell that ends in ``False``, a deleted, duplicated or
  retyped test cell, stripped metadata or a notebook that is not even JSON neither change a score nor
  stop the batch: a pre-convert hook repairs or replaces each submitted notebook before nbgrader reads
  it (the original is kept under ``quarantine/``), ``OverwriteCells.add_missing_cells`` restores
  deleted test cells, and test cells' outputs come only from ``HiddenTests``.
* ``generate_feedback`` and ``export`` then work unchanged: per-exercise points are in the gradebook.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from grading import PROJECT_ROOT

COURSE_ID = "deep-practice"
GRADE_PREFIX = "hidden_"
SECRET_TAG = f"deep-practice-graded-{secrets.token_hex(12)}"  # unguessable: Execute skips only these cells
LEARNER_TAGS = {"skip-execution", "raises-exception", "skip", "remove-cell"}
DEFAULT_DIR = PROJECT_ROOT / "build" / "nbgrader"
IGNORE_STDERR = r"(?:\w*Warning\b|\d+%\||it/s\]|s/it\])"
NOTEBOOK_TIMEOUT = 600  # seconds per cell when learner cells are executed (chapter 4 trains a CNN)
REPAIR_NOTES: dict[tuple[str, str], list[str]] = {}  # (student, assignment) -> notes from the pre-convert hook


# ----------------------------------------------------------------------------- what the course holds


def graded_chapters(root: Path = PROJECT_ROOT) -> dict[str, dict[str, float]]:
    """``{chapter notebook stem: {exercise: points}}`` for every chapter notebook in ``course/`` that
    teaches exercises with hidden tests, exercises in the order their tests are defined."""
    from grading.suite import load_suite

    notebooks = {p.stem for p in (root / "course").glob("[0-9][0-9]_*.ipynb")}
    chapters: dict[str, dict[str, float]] = {}
    for test in load_suite():
        if test.chapter in notebooks:
            points = chapters.setdefault(test.chapter, {})
            points[test.exercise] = points.get(test.exercise, 0.0) + test.points
    return dict(sorted(chapters.items()))


def _test_cell(exercise: str, points: float) -> Any:
    import nbformat

    source = (f"# Hidden tests of {exercise} ({points:g} points): the grader runs them on your exercises/ files in an\n"
              "# isolated process. Use this chapter's check cells to test your code before you submit.\n"
              "### BEGIN HIDDEN TESTS\n"
              "from grading.nbgrader_course import hidden_tests\n"
              f"hidden_tests({exercise!r})\n"
              "### END HIDDEN TESTS")
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": f"{GRADE_PREFIX}{exercise}", "locked": True,
                                 "points": points, "schema_version": 3, "solution": False, "task": False}
    cell.metadata["editable"] = False
    cell.metadata["deletable"] = False
    cell.id = f"{GRADE_PREFIX}{exercise}".replace("_", "-")[:64]
    return cell


def source_notebook(notebook: Path, exercises: dict[str, float]) -> Any:
    """The nbgrader source version of a chapter notebook: outputs cleared, test cells appended."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.cells.append(nbformat.v4.new_markdown_cell(
        "## Graded exercises\n\nThe cells below are the grader's: each runs the hidden tests of one exercise "
        "on your `exercises/` files, in an isolated process, when your submission is graded. They do nothing "
        "in your copy; leave them as they are."))
    nb.cells.extend(_test_cell(exercise, points) for exercise, points in exercises.items())
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    return nb


def build_course(course_dir: Path = DEFAULT_DIR, execute_learner_cells: bool = False,
                 root: Path = PROJECT_ROOT, only: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Write ``nbgrader_config.py`` and ``source/<chapter>/`` for every graded chapter (or the chapters
    in ``only``); return ``{chapter: {exercise: points}}``."""
    import nbformat

    course_dir = Path(course_dir).resolve()
    course_dir.mkdir(parents=True, exist_ok=True)
    chapters = {k: v for k, v in graded_chapters(root).items() if only is None or k in only}
    (course_dir / "nbgrader_config.py").write_text(
        "# Generated by `python -m grading nbgrader build`: change grading/nbgrader_course.py, not this file.\n"
        "import sys\n\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "from grading.nbgrader_course import configure  # noqa: E402\n\n"
        f"configure(c, course_dir={str(course_dir)!r}, "
        f"execute_learner_cells={execute_learner_cells!r})  # noqa: F821\n",
        encoding="utf-8")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".progress*")
    for chapter, exercises in chapters.items():
        dest = course_dir / "source" / chapter
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        nbformat.write(source_notebook(root / "course" / f"{chapter}.ipynb", exercises), dest / f"{chapter}.ipynb")
        shutil.copytree(root / "exercises", dest / "exercises", ignore=ignore)
    return chapters


# ----------------------------------------------------------------------------- nbgrader configuration


def configure(c: Any, course_dir: str | Path, execute_learner_cells: bool = False) -> None:
    """Fill nbgrader's config object ``c`` (called from the generated ``nbgrader_config.py``)."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from exercises.kit.catalogue import exercise_modules

    course_dir = Path(course_dir)
    os.environ.setdefault("COURSE_FAST", "1")
    c.CourseDirectory.root = str(course_dir)
    c.CourseDirectory.course_id = COURSE_ID
    assignments = sorted(p.name for p in (course_dir / "source").iterdir() if p.is_dir()) \
        if (course_dir / "source").is_dir() else []
    learner_files = [f"exercises/{name}.py" for name in exercise_modules()]
    c.Autograde.exclude_overwriting = {a: learner_files for a in assignments}
    c.Autograde.pre_convert_hook = sanitize_submission
    c.OverwriteCells.add_missing_cells = True
    c.OverwriteCells.missing_cell_notification = ("# (This cell was missing from the submission; "
                                                  "nbgrader put it back.)\n")
    # The course's own preprocessors by name: nbgrader imports them (grading.nbgrader_plugins imports
    # this module, never the other way round).
    chain: list[Any] = ["grading.nbgrader_plugins.HiddenTests"]
    if execute_learner_cells:
        chain.append("grading.nbgrader_plugins.SafeExecute")
    chain += [IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades, AssignLatePenalties,
              CheckCellMetadata]
    c.Autograde.autograde_preprocessors = chain
    c.Execute.timeout = NOTEBOOK_TIMEOUT
    c.Execute.skip_cells_with_tag = SECRET_TAG
    c.Execute.interrupt_on_timeout = True
    c.IgnorePattern.enabled = True  # both keys, or nbgrader ignores nothing
    c.IgnorePattern.pattern = IGNORE_STDERR


# ----------------------------------------------------------------------------- repairing submissions


def strip_learner_tags(cell: Any) -> bool:
    """Drop the tags that change how nbgrader runs a cell (``skip-execution``, a forged grading tag);
    True if any was there."""
    tags = cell.metadata.get("tags")
    if tags is None:
        return False
    kept = [t for t in tags if isinstance(t, str) and t not in LEARNER_TAGS
            and not t.startswith("deep-practice-graded")] if isinstance(tags, list) else []
    if kept == tags:
        return False
    cell.metadata["tags"] = kept
    return True


def repair_notebook(path: Path) -> list[str]:
    """Make a submitted notebook safe for nbgrader to read; return what was wrong (empty if nothing).

    An unreadable or invalid notebook is replaced by an empty one (its test cells are put back by
    nbgrader, and the grade comes from ``exercises/`` anyway); in a readable one, nbgrader metadata
    that is duplicated or does not validate is removed (the test cell is then put back), cell ids are
    made unique, and tags that change how cells run are dropped.
    """
    import nbformat
    from nbgrader.nbgraderformat import MetadataValidator

    notes: list[str] = []
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # not JSON, not a notebook, wrong schema: nothing of it can be trusted
        notes.append(f"{path.name} could not be read as a notebook ({type(exc).__name__}); it was graded from "
                     "your exercises/ files alone")
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, path)
        return notes
    validator = MetadataValidator()
    seen_grade_ids: set[str] = set()
    seen_ids: set[str] = set()
    changed = False
    for index, cell in enumerate(nb.cells):
        cell_id = cell.get("id")
        if cell_id is None or cell_id in seen_ids:
            cell["id"] = f"cell-{index}-{secrets.token_hex(4)}"
            changed = True
        seen_ids.add(cell["id"])
        if strip_learner_tags(cell):
            notes.append(f"tags that change how cells run were removed from cell {index + 1}")
            changed = True
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        problem = None
        try:
            validator.validate_cell(cell)
            grade_id = meta.get("grade_id")
            if (meta.get("grade") or meta.get("solution") or meta.get("locked")) and grade_id in seen_grade_ids:
                problem = f"a second copy of the graded cell '{grade_id}'"
            elif grade_id:
                seen_grade_ids.add(grade_id)
            if str(grade_id or "").startswith(GRADE_PREFIX) and cell.cell_type != "code":
                problem = f"the graded cell '{grade_id}' turned into a {cell.cell_type} cell"
        except Exception as exc:
            problem = f"a cell with damaged grading metadata ({type(exc).__name__})"
        if problem:
            del cell.metadata["nbgrader"]
            notes.append(f"{problem} was set aside; the original test cell was restored")
            changed = True
    if changed:
        nbformat.write(nb, path)
    return notes


def sanitize_submission(assignment: str = "", student: str = "", notebooks: list[str] | None = None, **_: Any) -> None:
    """nbgrader's pre-convert hook: repair each submitted notebook before nbgrader reads it."""
    for name in notebooks or []:
        path = Path(name).resolve()
        parts = path.parts
        learner = parts[-3] if len(parts) >= 3 else student
        chapter = parts[-2] if len(parts) >= 2 else assignment
        course_root = path.parents[3] if len(parts) >= 4 else path.parent
        try:
            original = path.read_bytes()
        except OSError:
            continue
        try:
            notes = repair_notebook(path)
        except Exception as exc:  # never let a notebook stop the batch
            notes = [f"{path.name} could not be repaired ({type(exc).__name__}); it was replaced by an empty notebook"]
            import nbformat

            nbformat.write(nbformat.v4.new_notebook(), path)
        if notes:
            quarantined = course_root / "quarantine" / learner / chapter / path.name
            quarantined.parent.mkdir(parents=True, exist_ok=True)
            if not quarantined.exists():
                quarantined.write_bytes(original)
        REPAIR_NOTES[(learner, chapter)] = notes


# ----------------------------------------------------------------------------- grading inside nbgrader


def grade_folder(folder: Path, exercises: list[str], learner: str, notes: list[str], timeout: float,
                 memory_mb: int) -> tuple[dict[str, list[Any]], list[str]]:
    """Hidden tests of ``exercises`` on the ``exercises/`` package in ``folder``, in the sandbox."""
    from grading.grade import grade_submission
    from grading.sandbox import Limits
    from grading.submissions import Submission, read_exercises_folder
    from grading.suite import load_suite

    notes = list(notes)
    tests = [t for t in load_suite() if t.exercise in exercises]
    needed = {t.name.partition(".")[0] + ".py" for t in tests}  # hidden module layers -> exercises/layers.py
    sub = Submission(learner, folder, read_exercises_folder(folder, notes, needed), notes)
    results = grade_submission(sub, tests, Limits(timeout=timeout, memory_mb=memory_mb))
    by_exercise: dict[str, list[Any]] = {e: [] for e in exercises}
    for r in results:
        by_exercise[r.exercise].append(r)
    return by_exercise, sub.notes


def cell_report(exercise: str, results: list[Any], notes: list[str]) -> tuple[str, float, float]:
    lines = [f"Hidden tests of {exercise}: each line is a property checked on inputs you have not seen."]
    lines += [f"Note: {note}" for note in notes]
    for r in results:
        lines.append(f"{'✓' if r.passed else '✗'} {r.title} ({r.max_points:g} pt)")
        if not r.passed:
            lines.extend(f"    {line}" for line in r.message.splitlines())
    return "\n".join(lines) + "\n", sum(r.points for r in results), sum(r.max_points for r in results)


def hidden_tests(exercise: str, folder: str | Path = ".") -> float:
    """Run the hidden tests of ``exercise`` on ``folder``'s ``exercises/`` (the current folder) in the
    sandbox, print the diagnoses and return the points: what a test cell's hidden region does when an
    instructor runs it by hand. During ``nbgrader autograde`` test cells are graded by ``HiddenTests``
    and never executed."""
    folder = Path(folder).resolve()
    by_exercise, notes = grade_folder(folder, [exercise], "instructor", [], (), 10.0, 2048)
    report, score, _ = cell_report(exercise, by_exercise[exercise], notes)
    print(report, end="")
    return score


# ----------------------------------------------------------------------------- running nbgrader


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader's commands: its ``generate_assignment`` runs ``alembic``, which must
    be on ``PATH`` (the virtual environment's ``bin/``)."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    return env


def nbgrader(course_dir: Path, *args: str, check: bool = True,
             timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader ARGS`` in ``course_dir`` (with the environment above); output captured."""
    exe = Path(sys.executable).with_name("nbgrader")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "nbgrader"]
    proc = subprocess.run([*command, *args], cwd=course_dir, env=nbgrader_env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def generate_all(course_dir: Path, chapters: list[str]) -> None:
    for chapter in chapters:
        nbgrader(course_dir, "generate_assignment", chapter, "--force")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="nbgrader_command", required=True)
    b = sub.add_parser("build", help="write the nbgrader course (config, source/) and generate every assignment")
    b.add_argument("--execute-learner-cells", action="store_true",
                   help="also run learners' notebook cells in a kernel during autograde (unsandboxed; off by default)")
    b.add_argument("--no-generate", action="store_true", help="only write source/ and nbgrader_config.py")
    for name, help_text in (("autograde", "nbgrader autograde ASSIGNMENT, with the hidden tests in the sandbox"),
                            ("feedback", "nbgrader generate_feedback ASSIGNMENT"),
                            ("export", "nbgrader export (grades.csv in the course folder)")):
        p = sub.add_parser(name, help=help_text)
        if name != "export":
            p.add_argument("assignment", help="a chapter, e.g. 00_welcome")
            p.add_argument("--force", action="store_true", help="redo learners already processed")
    for p in sub.choices.values():
        p.add_argument("-d", "--course-dir", default=str(DEFAULT_DIR),
                       help=f"the nbgrader course folder (default: {DEFAULT_DIR})")


def main(args: argparse.Namespace) -> int:
    course_dir = Path(args.course_dir).resolve()
    command = args.nbgrader_command
    if command == "build":
        chapters = build_course(course_dir, execute_learner_cells=args.execute_learner_cells)
        if not args.no_generate:
            generate_all(course_dir, list(chapters))
        for chapter, exercises in chapters.items():
            print(f"{chapter}: {len(exercises)} graded exercises, {sum(exercises.values()):g} points")
        print(f"nbgrader course: {course_dir} "
              "(learners' copies in release/, their work goes in submitted/<learner>/<chapter>/)")
        return 0
    force = ["--force"] if getattr(args, "force", False) else []
    steps = {"autograde": ["autograde", getattr(args, "assignment", ""), *force],
             "feedback": ["generate_feedback", getattr(args, "assignment", ""), *force],
             "export": ["export"]}
    proc = nbgrader(course_dir, *steps[command], check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr[-20000:])
    if command == "export" and proc.returncode == 0:
        print(f"grades: {course_dir / 'grades.csv'}")
    return proc.returncode


__all__ = ["build_course", "cell_report", "configure", "grade_folder", "hidden_tests", "repair_notebook",
           "sanitize_submission", "strip_learner_tags"]
