"""Chapter 3's hidden tests through the real grader: the reference gets full marks, the stubs get 0,
and a loop over images or overwritten overlaps costs exactly the tests that check for them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from grading.grade import grade_batch
from grading.sandbox import Limits
from grading.suite import load_suite
from tests.test_conv_checks import COL2IM_SCATTER, REFERENCE, STUB, conv_many

CONV_EXERCISES = ["conv_output_size", "conv2d_forward_naive", "im2col", "col2im", "conv2d_forward",
                  "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward", "Conv2d"]
IM2COL_SLICE = ("            cols[:, :, p, q] = xpad[:, :, p : p + SH * (OH - 1) + 1 : SH, "
                "q : q + SW * (OW - 1) + 1 : SW]\n")
LOOPY = conv_many(
    (IM2COL_SLICE, "            for n in range(N):\n" + IM2COL_SLICE.replace("cols[:, :,", "    cols[n, :,")
     .replace("xpad[:, :,", "xpad[n, :,")),
    (COL2IM_SCATTER, COL2IM_SCATTER.replace(" += ", " = ")),
)


def _write(root: Path, learner: str, source: str) -> None:
    package = root / learner / "exercises"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "conv.py").write_text(source)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv-submissions")
    _write(root, "ref", REFERENCE)
    _write(root, "stub", STUB)
    _write(root, "loopy", LOOPY)
    out = tmp_path_factory.mktemp("conv-out")
    grade_batch(root, out, jobs=2, limits=Limits(timeout=20.0), progress=False)
    rows = {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}
    results = {name: json.loads((out / "results" / f"{name}.json").read_text())["tests"] for name in rows}
    return rows, results, out


def _max(exercise: str, name_part: str = "") -> float:
    return sum(t.points for t in load_suite() if t.exercise == exercise and name_part in t.name)


def test_every_conv_exercise_is_a_grade_column(graded) -> None:
    rows, _, out = graded
    header = (out / "grades.csv").read_text().splitlines()[0].split(",")
    assert all(column in header for column in CONV_EXERCISES)


def test_reference_gets_full_marks_on_every_conv_exercise(graded) -> None:
    rows, results, _ = graded
    failed = [(t["name"], t["message"]) for t in results["ref"] if t["name"].startswith("conv.") and not t["passed"]]
    assert not failed
    for exercise in CONV_EXERCISES:
        assert float(rows["ref"][exercise]) == _max(exercise) > 0, exercise


def test_stubs_get_zero_and_say_not_implemented(graded) -> None:
    rows, results, _ = graded
    for exercise in CONV_EXERCISES:
        assert float(rows["stub"][exercise]) == 0, exercise
    assert all("not implemented yet" in t["message"] for t in results["stub"] if t["name"].startswith("conv."))


def test_a_loop_over_images_and_overwritten_overlaps_cost_their_tests(graded) -> None:
    rows, results, _ = graded
    failed = {t["name"]: t["message"] for t in results["loopy"] if t["name"].startswith("conv.") and not t["passed"]}
    for name in ("conv.im2col_vectorized", "conv.forward_vectorized"):  # conv2d_forward calls the looping im2col
        assert "a Python loop over images" in failed.pop(name)
    for name in ("conv.col2im_overlapping_float64", "conv.col2im_strided", "conv.backward_overlapping_float64",
                 "conv.backward_strided", "conv.backward_non_square_stride_three", "conv.pool_backward_overlapping"):
        assert "overlapping windows overwrite each other" in failed.pop(name)
    # What is left fails because Conv2d runs the broken conv2d_backward.
    assert set(failed) == {"conv.layer_gradients_float32", "conv.layer_gradients_float64",
                           "conv.layer_passes_float64_gradcheck"}
    for exercise in ("conv_output_size", "conv2d_forward_naive", "maxpool2d_forward"):
        assert float(rows["loopy"][exercise]) == _max(exercise)
