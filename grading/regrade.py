"""Regrades: whose grade changed when a learner was graded again, from what to what, and why.

A learner is graded again when their record's key no longer matches: the grader changed (a hidden
test, its points, the grader's code: ``suite.fingerprint``) or their submission did. ``changes`` compares
the record they had with the new one, test by test; ``write_report`` writes ``regrade-report.md``,
listing each learner whose total or maximum changed and the tests that explain it.

A shard keeps its regrades in ``regrades/K-of-N.json`` (so that shards sharing an output folder never
write the same file); ``merge`` gathers them into one report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grading.files import atomic_write
from grading.records import LearnerRecord, TestResult

REPORT = "regrade-report.md"


@dataclass
class TestChange:
    """One hidden test whose outcome for a learner changed (``before``/``after``: ``None`` where it did not exist)."""

    __test__ = False  # not a pytest test class

    name: str
    exercise: str
    title: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def describe(self) -> str:
        if self.before is None:
            return f"new test “{self.title}” ({self.exercise}): {_outcome(self.after)}"
        if self.after is None:
            return f"test “{self.before['title']}” ({self.exercise}) removed: it gave {_outcome(self.before)}"
        what = []
        if self.before["max_points"] != self.after["max_points"]:
            what.append(f"worth {_num(self.before['max_points'])} → {_num(self.after['max_points'])} pt")
        if self.before["passed"] != self.after["passed"]:
            what.append("now passes" if self.after["passed"] else "now fails")
        if self.before["title"] != self.after["title"]:
            what.append(f"it was “{self.before['title']}”")
        detail = f" ({', '.join(what)})" if what else ""
        return (f"“{self.title}” ({self.exercise}): {_num(self.before['points'])} → "
                f"{_num(self.after['points'])} / {_num(self.after['max_points'])} pt{detail}")


@dataclass
class Regrade:
    """A learner graded again: totals before and after, why they were graded again, and the tests that changed."""

    learner: str
    before: tuple[float, float]
    after: tuple[float, float]
    reasons: list[str] = field(default_factory=list)
    tests: list[TestChange] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def to_json(self) -> dict[str, Any]:
        return {"learner": self.learner, "before": list(self.before), "after": list(self.after),
                "reasons": list(self.reasons), "tests": [asdict(t) for t in self.tests]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Regrade:
        return cls(str(data["learner"]), (float(data["before"][0]), float(data["before"][1])),
                   (float(data["after"][0]), float(data["after"][1])), [str(r) for r in data["reasons"]],
                   [TestChange(**t) for t in data["tests"]])


def _num(x: float) -> str:
    return f"{x:g}"


def _outcome(test: dict[str, Any] | None) -> str:
    if test is None:
        return "nothing"
    return f"{_num(test['points'])} / {_num(test['max_points'])} pt, {'passed' if test['passed'] else 'failed'}"


def _essential(test: TestResult) -> dict[str, Any]:
    return {"title": test.title, "points": test.points, "max_points": test.max_points, "passed": test.passed}


def _key_parts(key: str) -> tuple[str, str]:
    """(grader part, submission digest) of a record key ``<suite>:<digest>``."""
    suite, _, digest = key.rpartition(":")
    return suite, digest


def changes(old: LearnerRecord, new: LearnerRecord) -> Regrade:
    """How ``new`` differs from ``old`` (the same learner's earlier record)."""
    old_suite, old_digest = _key_parts(old.key)
    new_suite, new_digest = _key_parts(new.key)
    reasons = []
    if old_suite != new_suite:
        reasons.append("the grader changed (its hidden tests, their points or its code)")
    if old_digest != new_digest:
        reasons.append("the submission changed")
    before = {t.name: t for t in old.tests}
    after = {t.name: t for t in new.tests}
    tests = []
    for name in [*after, *(n for n in before if n not in after)]:
        b, a = before.get(name), after.get(name)
        eb, ea = (_essential(b) if b else None), (_essential(a) if a else None)
        if eb is not None and ea is not None and (eb["points"], eb["max_points"], eb["passed"]) == (
                ea["points"], ea["max_points"], ea["passed"]):
            continue
        source = a or b
        assert source is not None
        tests.append(TestChange(name, source.exercise, source.title, eb, ea))
    return Regrade(new.learner, (old.total, old.max), (new.total, new.max), reasons, tests)


def render(regrades: list[Regrade]) -> str:
    """The Markdown report: one section per learner whose grade changed, a count of the others."""
    changed = sorted((r for r in regrades if r.changed), key=lambda r: r.learner)
    same = len(regrades) - len(changed)
    lines = ["# Regrade report", "",
             f"{len(regrades)} learner(s) graded again over earlier results: {len(changed)} grade(s) changed, "
             f"{same} unchanged.", ""]
    for r in changed:
        lines.append(f"## {r.learner}: {_num(r.before[0])} / {_num(r.before[1])} → "
                     f"{_num(r.after[0])} / {_num(r.after[1])}")
        lines.append(f"Why: {'; '.join(r.reasons) or 'its record was recomputed'}.")
        lines.extend(f"- {t.describe()}" for t in r.tests)
        lines.append("")
    return "\n".join(lines)


def regrades_path(out_dir: Path, shard_name: str) -> Path:
    return Path(out_dir) / "regrades" / f"{shard_name}.json"


def save(out_dir: Path, shard_name: str, suite: str, regrades: list[Regrade]) -> Path:
    path = regrades_path(out_dir, shard_name)
    atomic_write(path, json.dumps({"suite": suite, "regrades": [r.to_json() for r in regrades]}, indent=1) + "\n")
    return path


def load(paths: list[Path], suite: str) -> list[Regrade]:
    """The regrades recorded in ``paths`` by runs of the grader ``suite`` (earlier graders' are left out)."""
    found: list[Regrade] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("suite") == suite:
                found += [Regrade.from_json(r) for r in data["regrades"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def write_report(out_dir: Path, regrades: list[Regrade]) -> Path:
    path = Path(out_dir) / REPORT
    atomic_write(path, render(regrades))
    return path
