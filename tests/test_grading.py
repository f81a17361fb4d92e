"""The grade command, end to end, on a batch of realistic submissions (the spine's acceptance tests)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grading.grade import grade_batch
from grading.sandbox import Limits
from grading.suite import load_suite
from tests.conftest import BACKWARD_LINE, FORWARD_LINE, REFERENCE_LAYERS, STUB_LAYERS, variant, write_submission

IMPORTS = "from exercises.validate import require_float_tensor, require_same_shape\n"
LIMITS = Limits(timeout=3.0, memory_mb=1024)


def _points(exercise: str, name_part: str = "") -> float:
    return sum(t.points for t in load_suite() if t.exercise == exercise and name_part in t.name)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    write_submission(root, "ada", REFERENCE_LAYERS)
    write_submission(root, "ben", STUB_LAYERS)
    write_submission(root, "cleo", variant(BACKWARD_LINE, "    return torch.where(x >= 0, dout, torch.zeros_like(dout))\n"))
    write_submission(root, "dan", variant(BACKWARD_LINE, "    import signal\n    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                         "    while True:\n        pass\n"))
    write_submission(root, "eve", variant(IMPORTS, IMPORTS + "import sys\nsys.exit(0)\n"))
    write_submission(root, "finn", REFERENCE_LAYERS.replace("def relu_backward(", "def relu_backward(("))
    write_submission(root, "gia_12345_submission", REFERENCE_LAYERS, as_zip=True, nested="hw0/")
    write_submission(root, "hal", variant(FORWARD_LINE, "    import os\n    os._exit(0)\n"))
    (root / "ivy.zip").write_bytes(b"")  # an empty upload
    zipfile.ZipFile(root / "jo.zip", "w").close()  # a valid zip with nothing inside
    out = tmp_path_factory.mktemp("out")
    report = grade_batch(root, out, jobs=2, limits=LIMITS, progress=False)
    rows = {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}
    return root, out, report, rows


def _result(out: Path, learner: str) -> dict:
    return json.loads((out / "results" / f"{learner}.json").read_text())


def test_csv_has_a_row_per_learner_and_a_column_per_exercise(batch) -> None:
    _, out, report, rows = batch
    header = (out / "grades.csv").read_text().splitlines()[0].split(",")
    assert header == ["learner", "relu_forward", "relu_backward", "total", "max"]
    assert sorted(rows) == ["ada", "ben", "cleo", "dan", "eve", "finn", "gia_12345_submission", "hal", "ivy", "jo"]
    assert len(report.graded) == 10


def test_reference_gets_full_marks_in_a_folder_or_a_nested_zip(batch) -> None:
    _, _, _, rows = batch
    for learner in ("ada", "gia_12345_submission"):
        assert float(rows[learner]["total"]) == float(rows[learner]["max"]) > 0, rows[learner]


def test_untouched_stubs_get_zero(batch) -> None:
    _, out, _, rows = batch
    assert float(rows["ben"]["total"]) == 0
    assert all("not implemented yet" in t["message"] for t in _result(out, "ben")["tests"])


def test_gradient_at_zero_bug_loses_exactly_that_property(batch) -> None:
    _, out, _, rows = batch
    lost = float(rows["cleo"]["max"]) - float(rows["cleo"]["total"])
    assert lost == _points("relu_backward", "zero_input") > 0
    failed = [t for t in _result(out, "cleo")["tests"] if not t["passed"]]
    assert len(failed) == 1 and "gradient at x == 0 is 1" in failed[0]["message"]
    assert "x == 0" in (out / "feedback" / "cleo.md").read_text()


def test_infinite_loop_costs_only_what_it_breaks(batch) -> None:
    _, out, _, rows = batch
    assert float(rows["dan"]["relu_forward"]) == _points("relu_forward")
    assert float(rows["dan"]["relu_backward"]) == 0
    messages = [t["message"] for t in _result(out, "dan")["tests"] if not t["passed"]]
    assert "relu_backward did not finish within 3 s" in messages[0]
    assert all("did not finish" in m for m in messages)


def test_exit_at_import_and_syntax_error_get_zero_with_a_reason(batch) -> None:
    _, out, _, rows = batch
    assert float(rows["eve"]["total"]) == 0 and float(rows["finn"]["total"]) == 0
    assert "importing exercises/layers.py failed with SystemExit" in _result(out, "eve")["tests"][0]["message"]
    assert "syntax error on line" in _result(out, "finn")["tests"][0]["message"]


def test_os_exit_in_a_function_costs_its_tests(batch) -> None:
    _, out, _, rows = batch
    assert float(rows["hal"]["total"]) == 0
    assert "before returning" in _result(out, "hal")["tests"][0]["message"]


def test_empty_zip_is_graded_zero_with_a_note(batch) -> None:
    _, out, _, rows = batch
    assert float(rows["ivy"]["total"]) == 0 and float(rows["jo"]["total"]) == 0
    assert "not a readable zip" in (out / "feedback" / "ivy.md").read_text()
    assert "jo.zip is empty" in (out / "feedback" / "jo.md").read_text()


def test_feedback_never_shows_hidden_inputs(batch) -> None:
    _, out, _, _ = batch
    hidden_source = Path("grading/hidden/layers.py").read_text()
    for feedback in (out / "feedback").glob("*.md"):
        text = feedback.read_text()
        assert "seed=" not in text and "tensor(" not in text
        for line in hidden_source.splitlines():
            if len(line.strip()) > 30:
                assert line.strip() not in text


def test_rerun_reuses_results_and_regrades_only_what_changed(batch, tmp_path: Path) -> None:
    root, out, _, _ = batch
    before = (out / "grades.csv").read_text()
    report = grade_batch(root, out, jobs=2, limits=LIMITS, progress=False)
    assert report.graded == [] and len(report.reused) == 10
    assert (out / "grades.csv").read_text() == before
    layers = root / "ben" / "exercises" / "layers.py"
    original = layers.read_text()
    layers.write_text(REFERENCE_LAYERS)
    try:
        report = grade_batch(root, out, jobs=2, limits=LIMITS, progress=False)
        assert report.graded == ["ben"]
        rows = {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}
        assert rows["ben"]["total"] == rows["ben"]["max"]
    finally:
        layers.write_text(original)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "is not a folder"),
    (lambda p: p, "holds no submissions"),
])
def test_bad_submissions_folder_gives_a_clear_message_and_no_traceback(tmp_path: Path, make, message) -> None:
    target = make(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "grading", "grade", str(target), "-o", str(tmp_path / "o"), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_cli_grades_and_prints_where_the_results_are(tmp_path: Path) -> None:
    write_submission(tmp_path / "subs", "ada", REFERENCE_LAYERS)
    proc = subprocess.run([sys.executable, "-m", "grading", "grade", str(tmp_path / "subs"), "-o", str(tmp_path / "o"),
                           "-q", "--timeout", "5"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "graded 1 submission(s)" in proc.stdout
    assert (tmp_path / "o" / "grades.csv").read_text().splitlines()[1].startswith("ada,")
