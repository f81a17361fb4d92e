"""Regrades: after a hidden test is fixed and its points change, every learner it touches is graded again
and a report says whose grade changed, from what to what, and which tests explain it; --learner grades
one learner again."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

import grading.grade
from grading.grade import grade_batch
from grading.merge import merge
from grading.regrade import REPORT
from grading.sandbox import Limits
from grading.shards import Shard
from grading.submissions import SubmissionsError
from grading.suite import load_suite
from tests.conftest import REFERENCE_LAYERS, STUB_LAYERS, write_submission
from tests.test_grading import ZERO_BUG

CHAPTER = "00_welcome"
LIMITS = Limits(timeout=5.0, memory_mb=1024)
FIXED = "layers.relu_backward_zero_input"


def _fixed_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    """The grader after a fix: the test at x == 0 is replaced (it now checks what the float32 test checks)
    and is worth 2 points instead of 1; the grader's fingerprint changes with it."""
    original = load_suite

    def suite(chapter: str | None = None):
        tests = original(chapter)
        donor = next(t for t in tests if t.name == "layers.relu_backward_float32")
        return [dataclasses.replace(t, points=2.0, build=donor.build) if t.name == FIXED else t for t in tests]

    monkeypatch.setattr(grading.grade, "load_suite", suite)
    monkeypatch.setattr(grading.grade, "fingerprint", lambda: "fixed-grader")


def _totals(out: Path) -> dict[str, tuple[str, str]]:
    return {r["learner"]: (r["total"], r["max"]) for r in csv.DictReader((out / "grades.csv").open())}


def test_a_fixed_hidden_test_regrades_everyone_and_the_report_says_whose_grade_changed_and_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    write_submission(subs, "ada", REFERENCE_LAYERS)
    write_submission(subs, "ben", STUB_LAYERS)
    write_submission(subs, "cleo", ZERO_BUG)
    first = grade_batch(subs, out, limits=LIMITS, progress=False, assignment=CHAPTER)
    assert first.regrades == [] and not (out / REPORT).exists()  # nobody had results before
    before = _totals(out)
    old_points = next(t.points for t in load_suite(CHAPTER) if t.name == FIXED)
    assert old_points == 1.0 and float(before["cleo"][0]) == float(before["cleo"][1]) - 1  # cleo fails it

    _fixed_suite(monkeypatch)
    report = grade_batch(subs, out, limits=LIMITS, progress=False, assignment=CHAPTER)
    assert sorted(report.graded) == ["ada", "ben", "cleo"] and report.regrade_report == out / REPORT
    after = _totals(out)
    assert after["ada"] == (f"{float(before['ada'][0]) + 1:g}", f"{float(before['ada'][1]) + 1:g}")
    assert after["cleo"][0] == after["cleo"][1]  # the fixed test no longer fails cleo's correct cases
    text = (out / REPORT).read_text()
    assert "3 learner(s) graded again over earlier results: 3 grade(s) changed" in text
    assert f"## cleo: {before['cleo'][0]} / {before['cleo'][1]} → {after['cleo'][0]} / {after['cleo'][1]}" in text
    assert f"## ben: 0 / {before['ben'][1]} → 0 / {after['ben'][1]}" in text
    cleo = text.split("## cleo")[1].split("##")[0]
    assert "Why: the grader changed (its hidden tests, their points or its code)." in cleo
    assert "(relu_backward): 0 → 2 / 2 pt (worth 1 → 2 pt, now passes, it was “" in cleo
    assert "(relu_backward): 1 → 2 / 2 pt (worth 1 → 2 pt, it was “" in text.split("## ada")[1].split("##")[0]

    layers = subs / "ben" / "exercises" / "layers.py"
    layers.write_text(REFERENCE_LAYERS)
    one = grade_batch(subs, out, limits=LIMITS, progress=False, assignment=CHAPTER, learners=("ben",))
    assert one.graded == ["ben"] and sorted(one.reused) == ["ada", "cleo"] and one.kept == []
    assert _totals(out)["ben"] == after["ada"]
    assert [(r.learner, r.reasons) for r in one.regrades] == [("ben", ["the submission changed"])]
    monkeypatch.undo()  # the grader as it is: ada's and cleo's results are now from another grader
    again = grade_batch(subs, out, limits=LIMITS, progress=False, assignment=CHAPTER, learners=("cleo",))
    assert again.graded == ["cleo"] and again.kept == ["ada", "ben"] and again.reused == []
    with pytest.raises(SubmissionsError, match="no submission is graded as zed"):
        grade_batch(subs, out, limits=LIMITS, progress=False, assignment=CHAPTER, learners=("zed",))


def test_shards_keep_their_regrades_apart_and_merge_reports_them(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    write_submission(subs, "cleo", ZERO_BUG)
    grade_batch(subs, out, limits=LIMITS, progress=False, assignment=CHAPTER, shard=Shard(0, 1))
    _fixed_suite(monkeypatch)
    report = grade_batch(subs, out, limits=LIMITS, progress=False, assignment=CHAPTER, shard=Shard(0, 1))
    assert report.regrade_report is None and (out / "regrades" / "0-of-1.json").exists()
    assert not (out / REPORT).exists()
    merged = merge([out])
    assert merged.regrade_report == out / REPORT and "## cleo: " in (out / REPORT).read_text()
