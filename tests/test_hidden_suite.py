"""Every hidden test, on the reference solutions, in-process: passes, and passes again when the same
built property is judged a second time (a judge or a program that changed its own inputs would fail
the second time: harnesses that build a property once and judge many submissions depend on this)."""

from __future__ import annotations

import sys

import pytest

import exercises
from exercises.checks import evaluate
from exercises.checks.program import run_program
from grading.stubs import solution_modules, strip_markers
from grading.suite import load_suite

SLOW = ("cnn_budget",)  # trains a CNN for ~13 s; graded through the sandbox in test_train_grading.py


@pytest.fixture(scope="module")
def reference_package(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    for name, source in solution_modules().items():
        (folder / name).write_text(strip_markers(source), encoding="utf-8")
    saved_path, saved_flag = list(exercises.__path__), sys.dont_write_bytecode
    exercises.__path__[:] = [str(folder), *saved_path]
    sys.dont_write_bytecode = True
    ours = [name.removesuffix(".py") for name in solution_modules()]
    for name in ours:
        sys.modules.pop(f"exercises.{name}", None)
    yield
    exercises.__path__[:] = saved_path
    sys.dont_write_bytecode = saved_flag
    for name in ours:
        sys.modules.pop(f"exercises.{name}", None)


def _run(program):
    return run_program(program.steps, program.fetches, forbidden=program.forbidden)


@pytest.mark.parametrize("chapter", sorted({t.name.split(".")[0] for t in load_suite()}))
def test_the_reference_passes_every_hidden_test_twice(chapter: str, reference_package) -> None:
    tests = [t for t in load_suite() if t.name.split(".")[0] == chapter and not any(s in t.name for s in SLOW)]
    assert tests
    failures = []
    for test in tests:
        prop = test.build()
        for attempt in ("first", "second"):
            passed, message = evaluate(prop, _run)
            if not passed:
                failures.append(f"{test.name} ({attempt} judging): {message}")
    assert not failures, "\n".join(failures)


def test_the_suite_covers_every_solution_module() -> None:
    modules = {name.removesuffix(".py") for name in solution_modules()}
    tested = {t.name.split(".")[0] for t in load_suite()}
    assert modules <= tested | {"__init__"}, sorted(modules - tested)
