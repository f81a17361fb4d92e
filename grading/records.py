"""What grading one learner produces: a ``TestResult`` per hidden test, summed up in a ``LearnerRecord``.

The record flows from the sandbox's verdicts to every output: ``results/<learner>.json`` (its JSON
form, the record of truth a re-run reuses), ``grades.csv``, the feedback files and Gradescope's
``results.json``. Plain data; nothing here runs or imports anything of the grader.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TestResult:
    """The verdict of one hidden test."""

    __test__ = False  # not a pytest test class

    exercise: str
    name: str
    title: str
    points: float
    max_points: float
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Score:
    score: float = 0.0
    max: float = 0.0


@dataclass
class LearnerRecord:
    """One learner's grade: every test's result, per-exercise scores (in the course's order), notes."""

    learner: str
    source: str = ""
    key: str = ""  # what the record was computed from (grader fingerprint and submission digest)
    exercises: dict[str, Score] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    isolation: dict[str, Any] = field(default_factory=dict)  # the sandbox mechanisms in force
    unsubmitted: list[str] = field(default_factory=list)  # chapters (notebook names) with nothing handed in
    ungraded: str = ""  # why nothing of the submission could be graded ("" when something could)

    @classmethod
    def from_results(cls, learner: str, results: list[TestResult], columns: list[str], **kwargs: Any) -> LearnerRecord:
        """Sum ``results`` per exercise; ``columns`` gives every exercise (one with no test scores 0 of 0)."""
        scores = {c: Score() for c in columns}
        for r in results:
            score = scores.setdefault(r.exercise, Score())
            score.score += r.points
            score.max += r.max_points
        return cls(learner, exercises=scores, tests=list(results), **kwargs)

    @property
    def total(self) -> float:
        return sum(s.score for s in self.exercises.values())

    @property
    def max(self) -> float:
        return sum(s.max for s in self.exercises.values())

    def to_json(self) -> dict[str, Any]:
        return {"learner": self.learner, "source": self.source, "key": self.key,
                "exercises": {name: asdict(s) for name, s in self.exercises.items()},
                "total": self.total, "max": self.max, "notes": list(self.notes),
                "isolation": dict(self.isolation), "unsubmitted": list(self.unsubmitted), "ungraded": self.ungraded,
                "tests": [t.to_dict() for t in self.tests]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LearnerRecord:
        """The record ``to_json`` wrote; ``KeyError``/``TypeError``/``ValueError`` when it is not one."""
        return cls(learner=str(data["learner"]), source=str(data.get("source", "")), key=str(data.get("key", "")),
                   exercises={str(k): Score(float(v["score"]), float(v["max"])) for k, v in data["exercises"].items()},
                   notes=[str(n) for n in data.get("notes", [])],
                   tests=[TestResult(**t) for t in data["tests"]],
                   isolation=dict(data.get("isolation", {})),
                   unsubmitted=[str(c) for c in data.get("unsubmitted", [])], ungraded=str(data.get("ungraded", "")))
