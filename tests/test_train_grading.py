"""Chapter 4's hidden tests through the real grader (sandbox, fork per test, time limits): the reference
gets full marks, the stubs get 0, and a submission with the chapter's classic mistakes loses exactly the
tests that look for them, with a diagnosis that names the mistake. This also trains ``build_cnn`` with
the CPU budget inside the sandbox, under the grader's default 10 s per-test limit, which the training
program raises for itself."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

from grading import PROJECT_ROOT
from grading.grade import grade_batch
from grading.sandbox import Limits
from grading.stubs import BEGIN, END, strip_markers
from grading.suite import load_suite
from tests.test_optim_checks import MISTAKES as OPTIM_MISTAKES
from tests.test_optim_checks import REFERENCE as OPTIM_REFERENCE
from tests.test_optim_checks import STUB as OPTIM_STUB
from tests.test_train_checks import REFERENCE as TRAIN_REFERENCE
from tests.test_train_checks import STUB as TRAIN_STUB
from tests.test_train_checks import loop

CHAPTER = "04_training"
EXERCISES = ["SGD", "AdamW", "warmup_cosine_lr", "train_one_epoch", "evaluate", "build_cnn", "set_seed"]
WEAK_CNN = """
    return nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(in_channels * 4, num_classes))
"""


def _write(root: Path, learner: str, optim: str, train: str) -> None:
    package = root / learner / "exercises"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "optim.py").write_text(optim)
    (package / "train.py").write_text(train)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("ch4-submissions")
    _write(root, "ref", OPTIM_REFERENCE, TRAIN_REFERENCE)
    _write(root, "stub", OPTIM_STUB, TRAIN_STUB)
    _write(root, "buggy", _buggy_optim(), _buggy_train())
    out = tmp_path_factory.mktemp("ch4-out")
    grade_batch(root, out, jobs=2, limits=Limits(timeout=10.0), progress=False, assignment=CHAPTER)
    rows = {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}
    results = {name: json.loads((out / "results" / f"{name}.json").read_text())["tests"] for name in rows}
    return rows, results


def _buggy_optim() -> str:
    """SGD with the weight decay applied after the momentum buffer, AdamW without bias correction, and a
    schedule whose warmup starts at 0: one classic mistake each."""
    source = (PROJECT_ROOT / "solutions" / "optim.py").read_text(encoding="utf-8")
    source = _replace_region(source, "class SGD(", OPTIM_MISTAKES["SGD"]["decay after momentum"][0])
    source = _replace_region(source, "class AdamW(", OPTIM_MISTAKES["AdamW"]["no bias correction"][0])
    source = _replace_region(source, "def warmup_cosine_lr(",
                             OPTIM_MISTAKES["warmup_cosine_lr"]["warmup starts at 0"][0])
    return strip_markers(source)


def _buggy_train() -> str:
    """No zero_grad in train_one_epoch, and a CNN too weak for the budget; evaluate and set_seed correct."""
    source = (PROJECT_ROOT / "solutions" / "train.py").read_text(encoding="utf-8")
    source = _replace_region(source, "def train_one_epoch(", loop(zero=""))
    return strip_markers(_replace_region(source, "def build_cnn(", WEAK_CNN))


def _replace_region(source: str, owner: str, body: str) -> str:
    """``source`` with the solution region that follows ``owner`` holding ``body`` (markers kept)."""
    start = source.index(owner)
    begin = source.index(BEGIN, start)
    line_start = source.rindex("\n", 0, begin) + 1
    indent = source[line_start:begin]
    end = source.index("\n", source.index(END, begin)) + 1
    replaced = textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", indent)
    return source[:line_start] + f"{indent}{BEGIN}\n" + replaced + f"{indent}{END}\n" + source[end:]


def _max(exercise: str, name_part: str = "") -> float:
    return sum(t.points for t in load_suite(CHAPTER) if t.exercise == exercise and name_part in t.name)


def test_every_chapter_4_exercise_is_a_grade_column(graded) -> None:
    rows, _ = graded
    assert all(exercise in rows["ref"] for exercise in EXERCISES)


def test_reference_gets_full_marks(graded) -> None:
    rows, results = graded
    failed = [(t["name"], t["message"]) for t in results["ref"] if not t["passed"]]
    assert not failed
    for exercise in EXERCISES:
        assert float(rows["ref"][exercise]) == _max(exercise) > 0, exercise


def test_stubs_get_zero_and_say_not_implemented(graded) -> None:
    rows, results = graded
    assert float(rows["stub"]["total"]) == 0
    assert all("not implemented yet" in t["message"] for t in results["stub"]), \
        [t["message"] for t in results["stub"] if "not implemented yet" not in t["message"]]


def test_each_classic_mistake_costs_its_tests_with_a_diagnosis(graded) -> None:
    rows, results = graded
    failed = {t["name"]: t["message"] for t in results["buggy"] if not t["passed"]}
    assert "the order is wrong" in failed["optim.sgd_momentum_and_decay_order"]
    assert "optim.sgd_decay_only" not in failed and "optim.sgd_momentum" not in failed
    assert "no bias correction" in failed["optim.adamw_defaults"]
    assert "first step's learning rate is 0" in failed["optim.schedule_long"]
    assert "gradients accumulate" in failed["train.train_gradients_uneven"]
    assert "the contract asks for at least 97 %" in failed["train.cnn_budget_accuracy"]
    assert "train.cnn_shapes_and_size" not in failed
    assert float(rows["buggy"]["evaluate"]) == _max("evaluate")
    assert float(rows["buggy"]["set_seed"]) == _max("set_seed")


def test_feedback_never_shows_the_hidden_validation_labels(graded) -> None:
    _, results = graded
    for tests in results.values():
        for t in tests:
            assert "tensor(" not in t["message"] and "seed=" not in t["message"]
