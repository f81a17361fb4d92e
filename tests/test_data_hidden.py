"""The hidden tests of chapter 1, run in-process on the same variants as the visible checks: every
correct implementation passes all of them, and every realistic mistake fails at least one, with its
diagnosis. (test_data_grading.py runs a few of these through the real grader and its sandbox.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exercises.checks import evaluate
from grading.suite import load_suite
from tests.conftest import forget_module, module_installer
from tests.test_data_checks import CORRECT, MISTAKES, REFERENCE, with_body


@pytest.fixture
def install(tmp_path: Path, monkeypatch):
    yield module_installer("data", tmp_path, monkeypatch)
    forget_module("data")


def _hidden(exercise: str) -> list:
    return [t for t in load_suite() if t.exercise == exercise and t.name.startswith("data.")]


def _failures(exercise: str, run) -> list[str]:
    failures = []
    for test in _hidden(exercise):
        passed, message = evaluate(test.build(), run)
        if not passed:
            failures.append(f"{test.name}: {message}")
    return failures


def test_the_reference_passes_every_hidden_test(install) -> None:
    run = install(REFERENCE)
    for exercise in CORRECT:
        assert _hidden(exercise), exercise
        assert _failures(exercise, run) == [], exercise


@pytest.mark.parametrize("exercise, name", [(e, n) for e, variants in CORRECT.items() for n in variants])
def test_correct_implementations_pass_every_hidden_test(exercise: str, name: str, install) -> None:
    assert _failures(exercise, install(with_body(exercise, CORRECT[exercise][name]))) == [], f"{exercise}: {name}"


@pytest.mark.parametrize("exercise, name", [(e, n) for e, variants in MISTAKES.items() for n in variants])
def test_each_mistake_fails_a_hidden_test_with_its_diagnosis(exercise: str, name: str, install) -> None:
    body, words = MISTAKES[exercise][name]
    failures = _failures(exercise, install(with_body(exercise, body)))
    assert any(words in f for f in failures), f"{exercise}: '{name}': {failures or 'passed every hidden test'}"
