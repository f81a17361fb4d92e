"""The progress view: attempts recorded by every check, summed up per chapter, with a next step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import exercises
from exercises.checks import CheckFailed, check, check_catalogue
from exercises.kit.progress import load_history, progress_file, progress_report, record_attempt, summarize
from tests.conftest import BACKWARD_LINE, REFERENCE_LAYERS, STUB_LAYERS, variant


@pytest.fixture
def learner_file(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(exercises, "__path__", [str(tmp_path), *exercises.__path__])
    monkeypatch.delitem(sys.modules, "exercises.layers", raising=False)
    yield tmp_path / "layers.py"
    sys.modules.pop("exercises.layers", None)


def test_each_check_run_is_recorded_with_per_exercise_results(learner_file: Path, capsys) -> None:
    learner_file.write_text(variant(BACKWARD_LINE, "    return torch.where(x >= 0, dout, torch.zeros_like(dout))\n"))
    with pytest.raises(CheckFailed):
        check("relu")
    learner_file.write_text(REFERENCE_LAYERS)
    check("relu")
    check("relu")
    history = load_history()
    assert [a["passed"] for a in history] == [False, True, True]
    assert history[0]["exercises"] == {"relu_forward": True, "relu_backward": False}
    assert "x == 0" in history[0]["failed"][0]
    row = next(r for r in summarize(check_catalogue()) if r.check == "relu")
    # The third run had the same code as the second: not a new attempt.
    assert (row.attempts, row.attempts_to_pass, row.passing_now) == (2, 2, True)
    report = progress_report(check_catalogue())
    assert "✓ passing" in report and "2 attempts, first passed on attempt 2" in report


def test_runs_on_the_untouched_stub_or_on_unchanged_code_are_not_attempts(learner_file: Path) -> None:
    learner_file.write_text(STUB_LAYERS)  # what Run All on a fresh copy checks
    for _ in range(2):
        with pytest.raises(CheckFailed):
            check("relu", verbose=False)
    assert [a["untouched"] for a in load_history()] == [True, True]
    row = next(r for r in summarize(check_catalogue()) if r.check == "relu")
    assert row.attempts == 0 and "Next: chapter 0, relu_forward" in progress_report(check_catalogue())
    learner_file.write_text(variant(BACKWARD_LINE, "    return torch.where(x >= 0, dout, torch.zeros_like(dout))\n"))
    learner_file.write_text(learner_file.read_text() + "\n# a comment is not code\n")
    for _ in range(3):
        with pytest.raises(CheckFailed):
            check("relu", verbose=False)
    row = next(r for r in summarize(check_catalogue()) if r.check == "relu")
    assert row.attempts == 1
    report = progress_report(check_catalogue())
    assert "1 attempt so far. Last time:" in report and ".." not in report


def test_next_step_follows_the_learner(tmp_path: Path) -> None:
    checks = check_catalogue()
    assert "Next: chapter 0, relu_forward, relu_backward" in progress_report(checks, [])
    failing = [{"check": "relu", "passed": False, "exercises": {"relu_backward": False}, "failed": ["at zero"]}]
    report = progress_report(checks, failing)
    assert 'Keep going with check("relu") (chapter 0)' in report and "at zero" in report
    passed = [{"check": "relu", "passed": True, "exercises": {"relu_forward": True, "relu_backward": True}}]
    assert 'Next: chapter 1, stratified_split — then run check("stratified_split")' in progress_report(checks, passed)


def test_unreadable_history_is_set_aside_not_fatal() -> None:
    path = progress_file()
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="could not be read"):
        assert load_history() == []
    assert list(path.parent.glob("progress.json.unreadable-*"))
    record_attempt("relu", "layers", {"relu_forward": True}, [])
    assert json.loads(path.read_text())["attempts"][0]["check"] == "relu"


def test_progress_lives_beside_the_course_copy(monkeypatch) -> None:
    monkeypatch.delenv("COURSE_PROGRESS_FILE")
    assert progress_file() == Path(exercises.__file__).resolve().parent.parent / ".course-progress.json"


def test_command_line_progress_view() -> None:
    proc = subprocess.run([sys.executable, "-m", "exercises", "progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Course progress:" in proc.stdout and 'check("relu")' in proc.stdout
