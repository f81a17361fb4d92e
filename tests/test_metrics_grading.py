"""Chapter 5's hidden tests through the real grader: the reference scores full marks, the stubs 0, and a
realistic mistake loses only the tests of the exercise it breaks, with its diagnosis in the feedback.
(test_metrics_checks.py runs every hidden test in-process against every mistake it knows.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grading.grade import grade_batch
from grading.sandbox import Limits
from grading.suite import load_suite
from tests.test_metrics_checks import CHECKS, MISTAKES, REFERENCE, STUB, with_body

METRICS_EXERCISES = tuple(CHECKS)
SUBMISSIONS = {
    "ref": REFERENCE,
    "stub": STUB,
    "transposed": with_body("confusion_matrix", MISTAKES["confusion_matrix"]["transposed"][0]),
    "no_eval": with_body("tta_predict", MISTAKES["tta_predict"]["no eval()"][0]),
    "fixed_alpha": with_body("bootstrap_accuracy_ci", MISTAKES["bootstrap_accuracy_ci"]["ignores alpha"][0]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, list[dict]]:
    root = tmp_path_factory.mktemp("chapter5-submissions")
    for learner, source in SUBMISSIONS.items():
        package = root / learner / "exercises"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "metrics.py").write_text(source, encoding="utf-8")
    out = tmp_path_factory.mktemp("chapter5-graded")
    grade_batch(root, out, jobs=2, limits=Limits(timeout=20.0, memory_mb=1536), progress=False)
    results = {}
    for learner in SUBMISSIONS:
        record = json.loads((out / "results" / f"{learner}.json").read_text())
        results[learner] = [t for t in record["tests"] if t["exercise"] in METRICS_EXERCISES]
        results[learner + ".md"] = (out / "feedback" / f"{learner}.md").read_text()
    return results


def test_every_exercise_has_hidden_tests() -> None:
    for exercise in METRICS_EXERCISES:
        assert sum(1 for t in load_suite() if t.exercise == exercise) >= 4, exercise


def test_reference_gets_full_marks(graded) -> None:
    tests = graded["ref"]
    assert len(tests) == sum(1 for t in load_suite() if t.exercise in METRICS_EXERCISES)
    assert [t for t in tests if not t["passed"]] == []
    assert sum(t["points"] for t in tests) == sum(t["max_points"] for t in tests) > 0


def test_stubs_get_zero(graded) -> None:
    assert all(not t["passed"] and t["points"] == 0 for t in graded["stub"])
    assert all("is not implemented yet" in t["message"] for t in graded["stub"])


@pytest.mark.parametrize("learner, exercise, words", [
    ("transposed", "confusion_matrix", "cm is transposed"),
    ("no_eval", "tta_predict", "ran the model in training mode"),
    ("fixed_alpha", "bootstrap_accuracy_ci", "did not shrink when alpha grew"),
])
def test_a_mistake_costs_only_the_tests_it_breaks(graded, learner: str, exercise: str, words: str) -> None:
    failed = [t for t in graded[learner] if not t["passed"]]
    assert failed and all(t["exercise"] == exercise for t in failed), failed
    assert any(words in t["message"] for t in failed), failed
    assert any(t["passed"] for t in graded[learner] if t["exercise"] == exercise), "the other properties still hold"
    assert words in graded[learner + ".md"]


def test_feedback_never_shows_hidden_inputs(graded) -> None:
    hidden = (Path(__file__).parents[1] / "grading" / "hidden" / "metrics.py").read_text()
    for learner in SUBMISSIONS:
        text = graded[learner + ".md"]
        assert "tensor(" not in text and "seed=" not in text
        for line in hidden.splitlines():
            if len(line.strip()) > 30:
                assert line.strip() not in text
