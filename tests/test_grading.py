"""The grade command, end to end: inputs in every layout, every output, resuming after kill -9."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grading.grade import grade_batch
from grading.sandbox import Limits
from grading.submissions import discover, learner_id
from grading.suite import load_suite
from tests.conftest import REFERENCE_LAYERS, STUB_LAYERS, write_submission

CHAPTER = "00_welcome"
LIMITS = Limits(timeout=3.0, memory_mb=1024)
ZERO_BUG = REFERENCE_LAYERS + '''

_reference_relu_forward, _reference_relu_backward = relu_forward, relu_backward


def relu_forward(x):
    out, cache = _reference_relu_forward(x)
    return out, (x.clone(), cache)


def relu_backward(dout, cache):  # the classic mistake: the gradient at exactly 0 lets dout through (x >= 0)
    x, inner = cache
    return torch.where(x == 0, dout, _reference_relu_backward(dout, inner))
'''


def _points(exercise: str, name_part: str = "") -> float:
    return sum(t.points for t in load_suite(CHAPTER) if t.exercise == exercise and name_part in t.name)


def _rows(out: Path) -> dict[str, dict[str, str]]:
    return {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("submissions")
    write_submission(root, "ada", REFERENCE_LAYERS)
    write_submission(root, "ben", STUB_LAYERS)
    write_submission(root, "cleo", ZERO_BUG)
    write_submission(root, "lovelace_ada_12345_67890_hw0", REFERENCE_LAYERS, as_zip=True, nested="hw0/")
    write_submission(root, "Grace Hopper_424242_assignsubmission_file_", REFERENCE_LAYERS)
    (root / "ivy.zip").write_bytes(b"")  # an empty upload
    zipfile.ZipFile(root / "jo.zip", "w").close()  # a valid zip with nothing inside
    out = tmp_path_factory.mktemp("out")
    report = grade_batch(root, out, jobs=2, limits=LIMITS, progress=False, assignment=CHAPTER)
    return root, out, report, _rows(out)


def _result(out: Path, learner: str) -> dict:
    return json.loads((out / "results" / f"{learner}.json").read_text())


@pytest.mark.parametrize("name, expected", [
    ("alice", "alice"),
    ("alice.zip", "alice"),
    ("lovelace_ada_12345_67890_hw0.zip", "lovelace_ada_12345"),
    ("lovelaceada_LATE_12345_67890_hw0.zip", "lovelaceada_12345"),
    ("Ada Lovelace_123456_assignsubmission_file_", "ada_lovelace_123456"),
    ("hw0_alovelace_attempt_2024-10-01-10-00-00_ex.zip", "alovelace"),
    ("../../etc", "etc"),
    ("..", "learner"),
])
def test_learner_ids_from_folder_and_lms_names(name: str, expected: str) -> None:
    assert learner_id(Path(name)) == expected


def test_csv_has_a_row_per_learner_and_a_column_per_exercise(batch) -> None:
    _, out, report, rows = batch
    header = (out / "grades.csv").read_text().splitlines()[0].split(",")
    assert header == ["learner", "relu_forward", "relu_backward", "total", "max", "notes"]
    assert sorted(rows) == ["ada", "ben", "cleo", "grace_hopper_424242", "ivy", "jo", "lovelace_ada_12345"]
    assert sorted(report.graded) == sorted(rows)


def test_reference_gets_full_marks_in_a_folder_or_a_nested_lms_zip(batch) -> None:
    _, _, _, rows = batch
    for learner in ("ada", "lovelace_ada_12345", "grace_hopper_424242"):
        assert (float(rows[learner]["total"]) == float(rows[learner]["max"])
                == _points("relu_forward") + _points("relu_backward"))


def test_untouched_stubs_get_zero(batch) -> None:
    _, out, _, rows = batch
    assert float(rows["ben"]["total"]) == 0
    assert all("not implemented yet" in t["message"] for t in _result(out, "ben")["tests"])


def test_gradient_at_zero_bug_loses_exactly_that_property_with_its_diagnosis(batch) -> None:
    _, out, _, rows = batch
    lost = float(rows["cleo"]["max"]) - float(rows["cleo"]["total"])
    assert lost == _points("relu_backward", "zero") > 0
    failed = [t for t in _result(out, "cleo")["tests"] if not t["passed"]]
    assert all("x > 0, not x >= 0" in t["message"] for t in failed), failed
    for suffix in ("md", "html"):
        assert "x &gt; 0, not x &gt;= 0" in (out / "feedback" / f"cleo.{suffix}").read_text() or suffix == "md"
    assert "The mask must be x > 0, not x >= 0." in (out / "feedback" / "cleo.md").read_text()


def test_empty_zips_are_graded_zero_with_a_note(batch) -> None:
    _, out, _, rows = batch
    assert float(rows["ivy"]["total"]) == 0 and float(rows["jo"]["total"]) == 0
    assert "not a readable zip" in (out / "feedback" / "ivy.md").read_text()
    assert "jo.zip is empty" in (out / "feedback" / "jo.md").read_text()


def test_feedback_in_markdown_and_html_never_shows_hidden_inputs(batch) -> None:
    _, out, _, _ = batch
    hidden_source = Path("grading/hidden/layers.py").read_text()
    for feedback in (out / "feedback").iterdir():
        text = feedback.read_text()
        assert "seed=" not in text and "tensor(" not in text
        for line in hidden_source.splitlines():
            if len(line.strip()) > 30:
                assert line.strip() not in text
    page = (out / "feedback" / "cleo.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "Score: " in page


def test_gradescope_results_per_learner(batch) -> None:
    _, out, _, rows = batch
    result = json.loads((out / "gradescope" / "cleo" / "results.json").read_text())
    assert result["score"] == float(rows["cleo"]["total"])
    assert sum(t["score"] for t in result["tests"]) == result["score"]
    assert sum(t["max_score"] for t in result["tests"]) == float(rows["cleo"]["max"])
    failed = [t for t in result["tests"] if t["status"] == "failed"]
    assert failed and all(t["output"] and t["name"].startswith("relu_backward: ") for t in failed)
    assert {t["visibility"] for t in result["tests"]} == {"visible"} and result["stdout_visibility"] == "hidden"


def test_rerun_reuses_results_and_regrades_only_what_changed(batch) -> None:
    root, out, _, _ = batch
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    report = grade_batch(root, out, jobs=2, limits=LIMITS, progress=False, assignment=CHAPTER)
    assert report.graded == [] and len(report.reused) == 7
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    layers = root / "ben" / "exercises" / "layers.py"
    original = layers.read_text()
    layers.write_text(REFERENCE_LAYERS)
    try:
        report = grade_batch(root, out, jobs=2, limits=LIMITS, progress=False, assignment=CHAPTER)
        assert report.graded == ["ben"]
        assert _rows(out)["ben"]["total"] == _rows(out)["ben"]["max"]
    finally:
        layers.write_text(original)
        grade_batch(root, out, jobs=2, limits=LIMITS, progress=False, assignment=CHAPTER)


def test_nbgrader_layout_grades_each_exercise_from_its_chapter_folder(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    write_submission(course / "submitted" / "ada", CHAPTER, REFERENCE_LAYERS)
    write_submission(course / "submitted" / "ben", CHAPTER, STUB_LAYERS)
    write_submission(course / "submitted" / "ben", "99_later", REFERENCE_LAYERS)  # not chapter 0: not used for relu
    subs = {s.learner: s for s in discover(course)}
    assert sorted(subs) == ["ada", "ben"] and sorted(subs["ben"].chapters) == [CHAPTER, "99_later"]
    report = grade_batch(course, tmp_path / "out", jobs=2, limits=LIMITS, progress=False)
    rows = _rows(report.out_dir)
    assert float(rows["ada"]["relu_forward"]) == _points("relu_forward")
    assert float(rows["ben"]["relu_forward"]) == 0  # graded from 00_welcome/, the chapter that teaches it
    only = grade_batch(course / "submitted", tmp_path / "out2", limits=LIMITS, progress=False, assignment=CHAPTER)
    assert _rows(only.out_dir)["ada"]["total"] == _rows(only.out_dir)["ada"]["max"]


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_kill_9_mid_batch_then_rerun_grades_only_what_is_missing_with_identical_results(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    slow = REFERENCE_LAYERS + "\n\nimport time as _time\n_time.sleep(0.25)  # every test re-imports this module\n"
    for n in range(6):
        write_submission(subs, f"learner{n}", slow if n % 2 else REFERENCE_LAYERS if n % 3 else STUB_LAYERS)
    command = [sys.executable, "-m", "grading", "grade", str(subs), "-q", "-j", "1", "--timeout", "5",
               "--assignment", CHAPTER]
    clean = subprocess.run([*command, "-o", str(tmp_path / "clean")], capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([*command, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list((out / "results").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.stem for p in (out / "results").glob("*.json"))
    assert 2 <= len(done) < 6, done
    time.sleep(1.0)  # nothing of the killed batch is left running: its fork server saw the end of its socket
    ps = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout.splitlines()
    assert not [line for line in ps if str(out) in line]
    orphans = [line for line in ps[1:] if "sandbox_child.py --server" in line and line.split()[1] == "1"
               and int(line.split()[0]) > proc.pid]
    assert not orphans, orphans
    rerun = subprocess.run([*command, "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"graded {6 - len(done)} submission(s), reused {len(done)} earlier result(s)" in rerun.stdout
    assert _snapshot(out) == _snapshot(tmp_path / "clean")


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
                           "-q", "--timeout", "5", "-a", CHAPTER], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "graded 1 submission(s)" in proc.stdout and "isolation: " in proc.stdout
    assert (tmp_path / "o" / "grades.csv").read_text().splitlines()[1].startswith("ada,")
    assert (tmp_path / "o" / "feedback" / "ada.html").exists()
    assert (tmp_path / "o" / "gradescope" / "ada" / "results.json").exists()


def test_the_summary_lists_every_submission_that_could_not_be_graded_and_why(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    write_submission(subs, "ada", REFERENCE_LAYERS)
    (subs / "empty").mkdir()
    (subs / "zero.zip").write_bytes(b"")
    zipfile.ZipFile(subs / "nothing.zip", "w").close()
    (subs / "text.zip").write_text("not a zip at all\n")
    proc = subprocess.run([sys.executable, "-m", "grading", "grade", str(subs), "-o", str(tmp_path / "o"), "-q",
                           "--timeout", "5", "-a", CHAPTER], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "graded 5 submission(s)" in proc.stdout
    listed = proc.stdout.split("could not be graded (4), each scored 0:\n")[1].splitlines()[:4]
    assert [line.split(":")[0].strip() for line in listed] == ["empty", "nothing", "text", "zero"]
    assert "no exercises folder found" in listed[0] and "nothing.zip is empty" in listed[1]
    assert "text.zip is not a readable zip file" in listed[2] and "zero.zip is not a readable zip file" in listed[3]
    rows = _rows(tmp_path / "o")
    assert rows["ada"]["notes"] == "" and "nothing.zip is empty; nothing could be graded" in rows["nothing"]["notes"]
    feedback = (tmp_path / "o" / "feedback" / "zero.md").read_text().splitlines()
    assert len(feedback) < 20 and any("zero.zip is not a readable zip file" in line for line in feedback[:10])


@pytest.mark.parametrize("layout", ["exercises/layers.py", "layers.py"])
def test_one_learners_folder_is_refused_with_the_command_that_grades_it(tmp_path: Path, layout: str) -> None:
    learner = tmp_path / "ada"
    (learner / layout).parent.mkdir(parents=True, exist_ok=True)
    (learner / layout).write_text(REFERENCE_LAYERS)
    (learner / "course").mkdir()
    proc = subprocess.run([sys.executable, "-m", "grading", "grade", str(learner), "-o", str(tmp_path / "o"), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"looks like one learner's submission (it holds {layout})" in proc.stderr
    assert f"mkdir -p submissions && cp -r '{learner}' submissions/ && python -m grading grade submissions" \
        in proc.stderr
    assert not (tmp_path / "o").exists()


def test_grade_sheet_and_feedback_follow_the_course_order(tmp_path: Path) -> None:
    from exercises.kit.catalogue import catalogue, find

    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "ivy.zip").write_bytes(b"")  # nothing to run: the whole suite's columns, at once
    grade_batch(tmp_path / "subs", tmp_path / "o", progress=False)
    header = (tmp_path / "o" / "grades.csv").read_text().splitlines()[0].split(",")[1:-3]
    assert header == [e.name for e in catalogue() if e.name in header] and len(header) > 40
    chapters = [find(name).chapter for name in header]
    assert chapters == sorted(chapters) and chapters[0] == 0 and chapters[-1] == 5
    listed = [line[2:].split(":")[0] for line in (tmp_path / "o" / "feedback" / "ivy.md").read_text().splitlines()
              if line.startswith("- ")]
    assert listed == header


def test_feedback_lists_exercises_in_the_records_order_and_one_line_for_an_unimplemented_one() -> None:
    from grading.feedback import html, markdown
    from grading.records import LearnerRecord, TestResult

    def failed(exercise: str, what: str) -> TestResult:
        return TestResult(exercise, f"t.{what}", f"{what} works", 0.0, 1.0, False,
                          f"{what} is not implemented yet (it still raises NotImplementedError).")

    tests = [failed("Value", "backward()"), failed("Value", "add"), failed("Value", "add"), failed("Value", "mul"),
             TestResult("relu_forward", "t.r", "equals max(0, x)", 1.0, 1.0, True, ""),
             failed("relu_backward", "relu_backward"),
             TestResult("relu_backward", "t.z", "zero at x == 0", 0.0, 1.0, False, "The mask must be x > 0.")]
    record = LearnerRecord.from_results("ada", tests, ["relu_forward", "relu_backward", "Value"])
    text = markdown(record)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## relu_forward: 1 / 1", "## relu_backward: 0 / 2", "## Value: 0 / 4"]
    value = text.split("## Value: 0 / 4\n")[1].strip().splitlines()
    assert value == ["- ✗ not implemented yet: backward(), add, mul still raise NotImplementedError "
                     "(all 4 properties, 4 pt)"]
    assert "- ✗ zero at x == 0 (1 pt)" in text  # failures for different reasons keep a line each
    assert html(record).count("not implemented yet: backward(), add, mul") == 1


def test_an_untouched_stub_gets_one_line_per_exercise(batch) -> None:
    _, out, _, _ = batch
    lines = [line for line in (out / "feedback" / "ben.md").read_text().splitlines() if line.startswith("- ")]
    assert len(lines) == 2 and all("not implemented yet" in line for line in lines), lines


def test_no_two_properties_of_an_exercise_share_a_title() -> None:
    seen: dict[tuple[str, str], str] = {}
    for test in load_suite():
        key = (test.exercise, test.build().title)
        assert key not in seen, f"{test.name} and {seen[key]} are both titled {key[1]!r}"
        seen[key] = test.name
