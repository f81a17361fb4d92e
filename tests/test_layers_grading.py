"""Chapter 2's hidden tests through the real grader: sandboxed, on whole submissions.

The reference gets full marks, the untouched stubs get zero, and one realistic mistake costs the
properties of its own exercise only (and of ``two_layer_net_loss`` when it breaks a layer the net is
built from), with its diagnosis in the learner's feedback.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from grading import PROJECT_ROOT
from grading.grade import grade_batch
from grading.sandbox import Limits
from grading.stubs import strip_markers
from grading.suite import load_suite
from tests import test_autograd_checks as autograd_variants
from tests import test_layers_checks as layer_variants

LIMITS = Limits(timeout=10.0, memory_mb=1024)
CHAPTER_2_MODULES = ("autograd", "layers")
REFERENCE = {m: strip_markers((PROJECT_ROOT / "solutions" / f"{m}.py").read_text(encoding="utf-8"))
             for m in CHAPTER_2_MODULES}
STUBS = {m: (PROJECT_ROOT / "exercises" / f"{m}.py").read_text(encoding="utf-8") for m in CHAPTER_2_MODULES}

# learner -> (which module is changed, the mistake's name in the variants, the exercises that may lose points)
ONE_BUG = {
    "cleo": ("layers", "batch norm with the unbiased variance",  # spatial batch norm is built on batch norm
             {"batchnorm_forward", "batchnorm_backward", "spatial_batchnorm_forward", "spatial_batchnorm_backward"}),
    "dan": ("autograd", "= instead of += in addition", {"Value", "Neuron", "Layer", "MLP"}),  # nets of Values
    "eve": ("layers", "dropout not scaled at training time", {"dropout_forward", "dropout_backward"}),
    "finn": ("layers", "dW transposed", {"linear_backward", "two_layer_net_loss"}),
    "gia": ("layers", "softmax by torch.log_softmax", {"softmax_cross_entropy", "two_layer_net_loss"}),
    "hal": ("autograd", "x not restored", {"numerical_gradient"}),
}
WORDS = {"cleo": "unbiased variance", "dan": "only one use's contribution", "eve": "unscaled",
         "finn": "transpose", "gia": "must not use", "hal": "left x modified"}


def _write(root: Path, learner: str, modules: dict[str, str]) -> None:
    package = root / learner / "exercises"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, source in modules.items():
        (package / f"{name}.py").write_text(source)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("chapter2-submissions")
    _write(root, "ada", REFERENCE)
    _write(root, "ben", STUBS)
    for learner, (module, mistake, _) in ONE_BUG.items():
        source = (autograd_variants if module == "autograd" else layer_variants).MISTAKES[mistake][0]
        _write(root, learner, {**REFERENCE, module: source})
    out = tmp_path_factory.mktemp("chapter2-out")
    with pytest.MonkeyPatch.context() as mp:  # chapter 2's hidden tests only: other chapters grade their own
        mp.setattr("grading.grade.load_suite", lambda *args, **kwargs: _chapter_2_suite())
        grade_batch(root, out, jobs=2, limits=LIMITS, progress=False)
    rows = {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}
    return out, rows


def _chapter_2_suite() -> list:
    """Chapter 2's hidden tests (ReLU, chapter 0's exercise, is graded with chapter 0)."""
    return [t for t in load_suite() if t.name.split(".")[0] in CHAPTER_2_MODULES and not t.exercise.startswith("relu")]


def _chapter_2_exercises() -> list[str]:
    return list(dict.fromkeys(t.exercise for t in _chapter_2_suite()))


def _max(exercise: str) -> float:
    return sum(t.points for t in load_suite() if t.exercise == exercise)


def _tests(out: Path, learner: str) -> list[dict]:
    return [t for t in json.loads((out / "results" / f"{learner}.json").read_text())["tests"]
            if t["exercise"] in _chapter_2_exercises()]


def test_reference_gets_full_marks_on_every_chapter_2_exercise(graded) -> None:
    out, rows = graded
    for exercise in _chapter_2_exercises():
        assert float(rows["ada"][exercise]) == _max(exercise) > 0, exercise
    assert all(t["passed"] for t in _tests(out, "ada"))


def test_untouched_stubs_get_zero_and_are_told_why(graded) -> None:
    out, rows = graded
    for exercise in _chapter_2_exercises():
        assert float(rows["ben"][exercise]) == 0, exercise
    assert all("not implemented yet" in t["message"] for t in _tests(out, "ben"))


@pytest.mark.parametrize("learner", ONE_BUG)
def test_one_mistake_costs_only_its_own_exercises(graded, learner: str) -> None:
    out, rows = graded
    _, _, allowed = ONE_BUG[learner]
    lost = {e for e in _chapter_2_exercises() if float(rows[learner][e]) < _max(e)}
    assert lost and lost <= allowed, (learner, lost)
    failed = [t for t in _tests(out, learner) if not t["passed"]]
    assert any(WORDS[learner] in t["message"] for t in failed), [t["message"] for t in failed]
    assert WORDS[learner] in (out / "feedback" / f"{learner}.md").read_text()


def test_feedback_names_properties_without_hidden_inputs(graded) -> None:
    out, _ = graded
    hidden = "\n".join((PROJECT_ROOT / "grading" / "hidden" / f"{m}.py").read_text() for m in CHAPTER_2_MODULES)
    for learner in ("ben", *ONE_BUG):
        text = (out / "feedback" / f"{learner}.md").read_text()
        assert "seed=" not in text and "tensor(" not in text
        for line in hidden.splitlines():
            if len(line.strip()) > 30:
                assert line.strip() not in text, (learner, line)
