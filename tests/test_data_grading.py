"""Chapter 1's hidden tests through the real grader: the reference scores full marks, the stubs 0, and a
realistic mistake loses exactly the tests of the property it breaks, with its diagnosis in the feedback."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from grading.grade import grade_batch
from grading.sandbox import Limits
from grading.suite import load_suite
from tests.test_data_checks import MISTAKES, REFERENCE, STUB, with_body

# Grade chapter 1 only, where the grader can select a chapter (the other chapters' tests only cost time here).
ONLY_CHAPTER_1 = {"assignment": "01_data"} if "assignment" in inspect.signature(grade_batch).parameters else {}
DATA_EXERCISES = ("stratified_split", "channel_stats", "normalize", "random_crop", "random_hflip", "one_hot",
                  "minibatch_indices")
SUBMISSIONS = {
    "ref": REFERENCE,
    "stub": STUB,
    "crop_edge": with_body("random_crop", MISTAKES["random_crop"]["randint's exclusive bound"][0]),
    "flip_loop": with_body("random_hflip", MISTAKES["random_hflip"]["a Python loop over the images"][0]),
    "unstratified": with_body("stratified_split", MISTAKES["stratified_split"]["not stratified"][0]),
    "cancellation": with_body("channel_stats", MISTAKES["channel_stats"]["E[x²] − E[x]² in float32"][0]),
    "drop_last": with_body("minibatch_indices", MISTAKES["minibatch_indices"]["drops the last batch"][0]),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, list[dict]]:
    root = tmp_path_factory.mktemp("chapter1-submissions")
    for learner, source in SUBMISSIONS.items():
        package = root / learner / "exercises"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data.py").write_text(source, encoding="utf-8")
    out = tmp_path_factory.mktemp("chapter1-graded")
    grade_batch(root, out, jobs=2, limits=Limits(timeout=20.0, memory_mb=1536), progress=False, **ONLY_CHAPTER_1)
    results = {}
    for learner in SUBMISSIONS:
        record = json.loads((out / "results" / f"{learner}.json").read_text())
        results[learner] = [t for t in record["tests"] if t["exercise"] in DATA_EXERCISES]
        results[learner + ".md"] = (out / "feedback" / f"{learner}.md").read_text()
    return results


def test_every_exercise_has_hidden_tests() -> None:
    exercises = {t.exercise for t in load_suite()}
    assert set(DATA_EXERCISES) <= exercises
    for exercise in DATA_EXERCISES:
        assert sum(1 for t in load_suite() if t.exercise == exercise) >= 3, exercise


def test_reference_gets_full_marks(graded) -> None:
    tests = graded["ref"]
    assert len(tests) == sum(1 for t in load_suite() if t.exercise in DATA_EXERCISES)
    assert [t for t in tests if not t["passed"]] == []


def test_stubs_get_zero(graded) -> None:
    assert all(not t["passed"] and t["points"] == 0 for t in graded["stub"])
    assert all("is not implemented yet" in t["message"] for t in graded["stub"])


@pytest.mark.parametrize("learner, exercise, words", [
    ("crop_edge", "random_crop", "torch.randint's upper bound is exclusive"),
    ("flip_loop", "random_hflip", "loops over the images"),
    ("unstratified", "stratified_split", "not stratified"),
    ("cancellation", "channel_stats", "cancels catastrophically"),
    ("drop_last", "minibatch_indices", "last, shorter batch is missing"),
])
def test_a_mistake_costs_only_the_tests_it_breaks(graded, learner: str, exercise: str, words: str) -> None:
    failed = [t for t in graded[learner] if not t["passed"]]
    assert failed and all(t["exercise"] == exercise for t in failed), failed
    assert any(words in t["message"] for t in failed), failed
    assert any(t["passed"] for t in graded[learner] if t["exercise"] == exercise), "the other properties still hold"
    assert words in graded[learner + ".md"]


def test_feedback_never_shows_hidden_inputs(graded) -> None:
    hidden = (Path(__file__).parents[1] / "grading" / "hidden" / "data.py").read_text()
    for learner in SUBMISSIONS:
        text = graded[learner + ".md"]
        assert "tensor(" not in text and "seed=" not in text
        for line in hidden.splitlines():
            if len(line.strip()) > 30:
                assert line.strip() not in text
