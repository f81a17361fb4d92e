"""nbgrader preprocessors of the course (see ``nbgrader_course.py``): nbgrader imports them by the names
its configuration gives. This module imports ``nbgrader_course``, never the other way round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Float, Integer

from grading.nbgrader_course import (
    GRADE_PREFIX,
    REPAIR_NOTES,
    SECRET_TAG,
    cell_report,
    grade_folder,
    strip_learner_tags,
)


class HiddenTests(NbGraderPreprocessor):
    """Grade the notebook's test cells with the hidden tests, in the sandbox, before any kernel runs.

    Reads the learner's ``exercises/`` from the autograded folder (nbgrader has copied it there, and
    nothing of the learner's has run yet), grades every exercise that has a test cell, and writes each
    test cell's outputs: the diagnoses on stdout, then the points as the cell's value (nbgrader's
    partial credit, scaled to the points the gradebook holds). It then tags those cells with a secret
    tag, the only one ``Execute`` skips, so no kernel ever runs them or changes their outputs.
    """

    timeout = Float(10.0, help="seconds per hidden test").tag(config=True)
    memory_mb = Integer(2048, help="memory per hidden test, MiB").tag(config=True)

    def preprocess(self, nb: Any, resources: Any) -> Any:
        info = resources.get("nbgrader", {})
        learner, assignment = str(info.get("student", "")), str(info.get("assignment", ""))
        folder = Path(resources.get("metadata", {}).get("path") or ".").resolve()
        for cell in nb.cells:  # nothing of the learner's decides what runs
            strip_learner_tags(cell)
        cells = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
                 and str(c.metadata["nbgrader"].get("grade_id", "")).startswith(GRADE_PREFIX)]
        exercises = [c.metadata["nbgrader"]["grade_id"][len(GRADE_PREFIX):] for c in cells]
        notes = REPAIR_NOTES.get((learner, assignment), [])
        try:
            by_exercise, notes = grade_folder(folder, exercises, learner, notes, self.timeout, self.memory_mb)
        except Exception as exc:  # the grader itself failed: 0 with the reason, never a crash
            self.log.error("grading %s/%s failed: %s", learner, assignment, exc)
            by_exercise = {e: [] for e in exercises}
            notes = [*notes, f"the grader could not run: {type(exc).__name__}: {exc}"]
        for cell, exercise in zip(cells, exercises, strict=True):
            report, score, total = cell_report(exercise, by_exercise.get(exercise, []), notes)
            points = float(cell.metadata["nbgrader"].get("points", total) or 0.0)
            earned = min(points, score * points / total) if total else 0.0
            cell.outputs = [
                nbformat.v4.new_output("stream", name="stdout", text=report),
                nbformat.v4.new_output("execute_result", data={"text/plain": f"{round(earned, 6):g}"},
                                       execution_count=1),
            ]
            cell.execution_count = 1
            cell.metadata.setdefault("tags", []).append(SECRET_TAG)
        return nb, resources


class SafeExecute(Execute):
    """nbgrader's ``Execute`` (used only with ``execute_learner_cells``), but a dead or hung kernel only
    ends the notebook's execution: the test cells were graded before it started, and their outputs stand."""

    def preprocess(self, nb: Any, resources: Any = None, km: Any = None) -> Any:
        try:
            return super().preprocess(nb, resources, km=km)
        except Exception as exc:  # DeadKernelError, CellTimeoutError, an unresponsive kernel, ...
            self.log.warning("executing the learner's notebook stopped (%s: %s); the hidden tests' results stand",
                             type(exc).__name__, exc)
            return nb, resources
