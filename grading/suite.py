"""The hidden test suite: registry, running one submission through it, and scores.

A hidden test is a function returning a ``Property`` (from ``exercises.checks``) built on inputs
the learner has not seen. The property's program runs in the submission's sandbox; its judge
runs here, in the grader's process, so expected values never reach learner code. Hidden tests
live in ``grading/hidden/<module>.py``, one file per exercise module.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exercises.checks import Property, evaluate
from exercises.checks.program import Program, StepFailed
from exercises.kit.catalogue import catalogue, find
from grading.feedback import redact
from grading.records import TestResult
from grading.sandbox import SandboxFailure

HIDDEN_DIR = Path(__file__).with_name("hidden")


@dataclass(frozen=True)
class HiddenTest:
    exercise: str
    name: str
    points: float
    build: Callable[[], Property]

    @property
    def chapter(self) -> str | None:
        """The notebook that teaches this test's exercise (``00_welcome``), if known."""
        entry = find(self.exercise)
        return entry.notebook if entry else None


_TESTS: list[HiddenTest] = []


def hidden_test(exercise: str, points: float = 1.0) -> Callable[[Callable[[], Property]], Callable[[], Property]]:
    """Register a hidden test of ``exercise`` worth ``points``; the function builds its Property."""

    def wrap(build: Callable[[], Property]) -> Callable[[], Property]:
        _TESTS.append(HiddenTest(exercise, f"{build.__module__.rpartition('.')[2]}.{build.__name__}", points, build))
        return build

    return wrap


def load_suite(chapter: str | None = None) -> list[HiddenTest]:
    """Every hidden test, in the order the modules define them; only ``chapter``'s when given."""
    for info in sorted(pkgutil.iter_modules([str(HIDDEN_DIR)]), key=lambda m: m.name):
        importlib.import_module(f"grading.hidden.{info.name}")
    return [t for t in _TESTS if chapter is None or t.chapter == chapter]


def exercise_columns(tests: list[HiddenTest]) -> list[str]:
    """Exercise names in the order their first test appears: the grade sheet's columns."""
    return list(dict.fromkeys(t.exercise for t in tests))


def in_course_order(tests: list[HiddenTest]) -> list[HiddenTest]:
    """``tests`` ordered as the course teaches their exercises (chapter 0 first, then the position of each
    exercise's section in its notebook); an exercise's own tests keep their order."""
    rank = {e.name: i for i, e in enumerate(catalogue())}
    return sorted(tests, key=lambda t: rank.get(t.exercise, len(rank)))


def fingerprint() -> str:
    """Changes whenever the grader, its hidden tests or the course's ``exercises`` helpers change:
    results computed before are then stale and get regraded."""
    digest = hashlib.sha256()
    grading_dir = Path(__file__).parent
    exercises_dir = Path(importlib.import_module("exercises").__file__).parent
    for base in (grading_dir, exercises_dir):
        for path in sorted(base.rglob("*.py")):
            digest.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _targets(program: Program) -> set[str]:
    return {step["target"] for step in program.steps if isinstance(step.get("target"), str)}


def _exercise_modules(program: Program) -> set[str]:
    """The exercise modules a program calls into (``layers`` for ``layers.relu_forward``)."""
    from exercises.checks.program import TRUSTED_MODULES

    modules = {target.rpartition(".")[0] for target in _targets(program)}
    return {m for m in modules if m and m.split(".")[0] not in TRUSTED_MODULES}


def run_suite(run: Callable[[Program], dict[str, Any]], tests: list[HiddenTest],
              run_group: Callable[[list[Program]], list[Any]] | None = None) -> list[TestResult]:
    """Run every test with ``run`` (a sandbox's ``run``); never raises for anything the learner did.

    With ``run_group`` (a sandbox's ``run_group``), the tests of each exercise first run together in
    one process; every test that gets no verdict there (``None``) then runs on its own with ``run``.
    Once a call has hit the time limit, later tests that make the same call fail at once instead
    of waiting for the limit again; once a module could not be imported (missing, a syntax error, an
    exit at import), later tests of that module fail at once with the same diagnosis.
    """
    unimportable: dict[str, str] = {}
    hung: dict[str, str] = {}

    def settle(outcome: dict[str, Any] | Exception) -> dict[str, Any]:
        """What ``evaluate`` gets from one run: the values, or the exception, first made fit for feedback."""
        if isinstance(outcome, StepFailed):  # the learner's own words: they must not carry the hidden inputs out
            outcome.message = redact(outcome.message)
            if outcome.error_type == "MemoryError" or "can't allocate memory" in outcome.message:
                outcome.message = ("ran out of memory: it asked for more than a test may use (an allocation failed). "
                                   + outcome.message).strip()
            if outcome.error_type == "ImportFailed":
                unimportable[outcome.target.rpartition(".")[0]] = outcome.message
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def judged(prop: Property, outcome: Callable[[], dict[str, Any] | Exception]) -> tuple[bool, str]:
        try:
            return evaluate(prop, lambda _: settle(outcome()))
        except SandboxFailure as exc:
            if exc.timed_out_target:
                hung[exc.timed_out_target] = str(exc).split(" (")[0] + " in an earlier test"
            return False, str(exc)

    def skipped(prop: Property) -> str | None:
        stuck = sorted(_targets(prop.program) & hung.keys())
        broken = sorted(_exercise_modules(prop.program) & unimportable.keys())
        if stuck:
            return f"not run: {hung[stuck[0]]}"
        return unimportable[broken[0]] if broken else None

    def alone(program: Program) -> dict[str, Any] | Exception:
        try:
            return run(program)
        except (StepFailed, SandboxFailure) as exc:
            return exc

    props = [test.build() for test in tests]
    verdicts: dict[int, tuple[bool, str]] = {}
    by_exercise: dict[str, list[int]] = {}
    for index, test in enumerate(tests):
        by_exercise.setdefault(test.exercise, []).append(index)
    for indices in by_exercise.values():
        if run_group is not None:
            todo = [i for i in indices if skipped(props[i]) is None]
            try:
                outcomes = run_group([props[i].program for i in todo])
            except SandboxFailure:  # the sandbox stopped answering: every test of the group runs alone
                outcomes = [None] * len(todo)
            for i, outcome in zip(todo, outcomes, strict=True):
                if outcome is not None:
                    verdicts[i] = judged(props[i], lambda o=outcome: o)
        for i in indices:
            if i in verdicts:
                continue
            why = skipped(props[i])
            verdicts[i] = (False, why) if why is not None else judged(props[i], lambda p=props[i].program: alone(p))
    results = []
    for index, (test, prop) in enumerate(zip(tests, props, strict=True)):
        passed, message = verdicts[index]
        results.append(TestResult(test.exercise, test.name, prop.title, test.points if passed else 0.0,
                                  test.points, passed, message))
    return results
