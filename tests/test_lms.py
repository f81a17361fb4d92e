"""Canvas's and Moodle's own grade files, read back the way the vendors' importers read them.

``canvas_import`` follows Canvas's importer (canvas-lms app/models/gradebook_importer.rb: the header must
start Student, ID[, SIS User ID][, SIS Login ID] and end its identity columns with Section; a row whose
first cell says Points Possible sets the points; a student is found by the ID column; an assignment column
``Title (123)`` names assignment 123, ``Assignment.title_and_id``). ``moodle_worksheet_import`` follows
Moodle's offline grading worksheet importer (mod/assign/feedback/offline/importgradeslib.php: the columns
``Identifier``, ``Grade`` and ``Last modified (grade)``, the ``Participant `` prefix stripped from the id).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from grading import lms
from grading.records import LearnerRecord, TestResult
from grading.shards import Manifest, write_manifest
from grading.submissions import learner_id

COLUMNS = ["relu_forward", "relu_backward", "stratified_split", "one_hot"]  # chapter 0, then chapter 1
CANVAS_ADA = learner_id(Path("lovelace_ada_12345_67890_hw0.zip"))
CANVAS_BEN = learner_id(Path("babbage_LATE_12399_67891_hw0.zip"))
MOODLE_ADA = learner_id(Path("Ada Lovelace_123456_assignsubmission_file_"))
MOODLE_GRACE = learner_id(Path("Grace Hopper_424242_assignsubmission_file_"))


def _record(learner: str, scores: dict[str, tuple[float, float]], unsubmitted: tuple[str, ...] = (),
            ungraded: str = "") -> LearnerRecord:
    results = [TestResult(e, f"t.{e}", "p", got, of, got == of, "") for e, (got, of) in scores.items()]
    record = LearnerRecord.from_results(learner, results, COLUMNS, key=f"suite:{learner}")
    record.unsubmitted, record.ungraded = list(unsubmitted), ungraded
    return record


def _batch(out: Path, records: list[LearnerRecord]) -> Path:
    for record in records:
        (out / "results").mkdir(parents=True, exist_ok=True)
        (out / "results" / f"{record.learner}.json").write_text(json.dumps(record.to_json()))
    write_manifest(out, Manifest("suite", COLUMNS, {r.learner: r.key for r in records}))
    return out


FULL = {"relu_forward": (4, 4), "relu_backward": (4, 4), "stratified_split": (6, 6), "one_hot": (3, 3)}


def canvas_import(text: str) -> tuple[dict[str, str], dict[str, dict[str, str]], list[tuple[str, str | None]]]:
    """(points possible, grades by Canvas user id, (title, assignment id) per column), as Canvas reads the file."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert len(header) > 3 and re.search("Student", header[0]) and re.search("ID", header[1]), header
    columns = 3
    if re.search(r"SIS\s+Login\s+ID", header[2]):
        columns += 1
    elif re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3]):
        columns += 2
    assert re.search("Section", header[columns - 1]), "the last identity column must be Section"
    assignments = []
    for name in header[columns:]:
        match = re.fullmatch(r"(.*)\s\((\d+)\)", name)
        assignments.append((match[1], match[2]) if match else (name, None))
    points: dict[str, str] = {}
    grades: dict[str, dict[str, str]] = {}
    for row in rows[1:]:
        cells = dict(zip([a[0] for a in assignments], row[columns:], strict=True))
        if re.search("Points Possible", row[0]):
            points = cells
        else:
            grades[row[1]] = cells
    return points, grades, assignments


def test_canvas_gradebook_is_read_by_canvas_rules_with_ids_from_download_names(tmp_path: Path) -> None:
    assert (CANVAS_ADA, CANVAS_BEN) == ("lovelace_ada_12345", "babbage_12399")
    batch = lms.load_batch(_batch(tmp_path, [
        _record(CANVAS_ADA, FULL),
        _record(CANVAS_BEN, {**FULL, "relu_backward": (1, 4), "stratified_split": (0, 6), "one_hot": (0, 3)},
                unsubmitted=("01_data",)),
        _record("ada", FULL),  # a folder named by hand: no Canvas id to match
    ]))
    export = lms.canvas_gradebook(batch, tmp_path / "canvas.csv", assignments={"00_welcome": "4711"})
    text = export.path.read_text()
    assert text.splitlines()[0].split(",")[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    points, grades, assignments = canvas_import(text)
    assert assignments == [("Chapter 0: Welcome: how this course works", "4711"), ("Chapter 1: Data preparation", None)]
    assert points == {"Chapter 0: Welcome: how this course works": "8", "Chapter 1: Data preparation": "9"}
    assert grades == {"12345": {"Chapter 0: Welcome: how this course works": "8", "Chapter 1: Data preparation": "9"},
                      "12399": {"Chapter 0: Welcome: how this course works": "5", "Chapter 1: Data preparation": "0"}}
    assert export.unmatched == ["ada"] and export.rows == 2
    empty = lms.canvas_gradebook(batch, tmp_path / "empty.csv", missing="empty", out_of=100)
    points, grades, _ = canvas_import(empty.path.read_text())
    assert set(points.values()) == {"100"}
    assert grades["12399"] == {"Chapter 0: Welcome: how this course works": "62.5", "Chapter 1: Data preparation": ""}


def test_canvas_roster_gives_every_enrolled_student_a_row(tmp_path: Path) -> None:
    roster = tmp_path / "export.csv"
    roster.write_text(
        "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Homework 1 (9),Current Score\n"
        "    Points Possible,,,,,10,(read only)\n"
        '"Lovelace, Ada",12345,S-1,alovelace,Section A,7,70\n'
        '"Menabrea, Luigi",12346,S-2,lmenabrea,Section B,,\n'
        '"Student, Test",99999,,,Section A,,\n')
    batch = lms.load_batch(_batch(tmp_path / "out", [_record(CANVAS_ADA, FULL), _record("hopper_grace_777", FULL)]))
    for missing, cell in (("zero", "0"), ("empty", "")):
        export = lms.canvas_gradebook(batch, tmp_path / f"{missing}.csv", missing=missing, roster=roster)
        rows = list(csv.reader(export.path.open()))
        assert rows[2] == ["Lovelace, Ada", "12345", "S-1", "alovelace", "Section A", "8", "9"]
        assert rows[3] == ["Menabrea, Luigi", "12346", "S-2", "lmenabrea", "Section B", cell, cell]
        assert len(rows) == 4 and export.unmatched == ["hopper_grace_777"]  # not enrolled: reported, left out
    (tmp_path / "bad.csv").write_text("name,score\nada,1\n")
    with pytest.raises(lms.ExportError, match="not a Canvas gradebook export"):
        lms.canvas_gradebook(batch, tmp_path / "x.csv", roster=tmp_path / "bad.csv")


def moodle_worksheet_import(text: str) -> dict[str, tuple[str, datetime]]:
    """Participant id -> (grade, last modified), as Moodle's worksheet importer reads the file."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    index = {name: header.index(name) for name in ("Identifier", "Grade", "Last modified (grade)")}
    found = {}
    for row in rows[1:]:
        pid = row[index["Identifier"]][len("Participant "):]
        found[pid] = (row[index["Grade"]], datetime.fromisoformat(row[index["Last modified (grade)"]]))
    return found


def test_moodle_worksheet_is_keyed_by_the_participant_id_of_the_download_names(tmp_path: Path) -> None:
    assert MOODLE_ADA == "ada_lovelace_123456"
    batch = lms.load_batch(_batch(tmp_path, [
        _record(MOODLE_ADA, FULL),
        _record(MOODLE_GRACE, {e: (0, of) for e, (_, of) in FULL.items()}, ungraded="grace.zip is empty"),
    ]))
    when = datetime(2024, 10, 1, 12, 0, tzinfo=UTC)
    export = lms.moodle_worksheet(batch, tmp_path / "w.csv", graded_at=when)
    text = export.path.read_text()
    assert text.splitlines()[0] == "Identifier,Full name,Grade,Maximum Grade,Last modified (grade)"
    assert text.splitlines()[1].startswith("Participant 123456,ada lovelace,17,17,")
    assert moodle_worksheet_import(text) == {"123456": ("17", when), "424242": ("0", when)}
    empty = lms.moodle_worksheet(batch, tmp_path / "e.csv", missing="empty", out_of=10, graded_at=when)
    assert moodle_worksheet_import(empty.path.read_text()) == {"123456": ("10", when), "424242": ("", when)}
    assert empty.extra == []  # no gradebook CSV without a roster to name the learners


def test_moodle_roster_adds_absent_participants_and_the_gradebook_csv(tmp_path: Path) -> None:
    roster = tmp_path / "worksheet.csv"
    roster.write_text(
        "Identifier,\"Full name\",\"Email address\",Status,Grade,\"Maximum Grade\",\"Grade can be changed\","
        "\"Last modified (submission)\",\"Last modified (grade)\",\"Feedback comments\"\n"
        "\"Participant 123456\",\"Ada Lovelace\",ada@example.org,Submitted,,100.00,Yes,-,-,\n"
        "\"Participant 123457\",\"Luigi Menabrea\",luigi@example.org,\"No submission\",,100.00,Yes,-,-,\n")
    batch = lms.load_batch(_batch(tmp_path / "out", [_record(MOODLE_ADA, FULL), _record(MOODLE_GRACE, FULL)]))
    export = lms.moodle_worksheet(batch, tmp_path / "w.csv", roster=roster)
    grades = moodle_worksheet_import(export.path.read_text())
    assert {pid: grade for pid, (grade, _) in grades.items()} == {"123456": "17", "123457": "0"}
    assert export.unmatched == [MOODLE_GRACE]
    (gradebook,) = export.extra
    assert list(csv.reader(gradebook.open())) == [
        ["Email address", "Chapter 0: Welcome: how this course works", "Chapter 1: Data preparation"],
        ["ada@example.org", "8", "9"], ["luigi@example.org", "0", "0"]]


def test_export_command_writes_into_the_output_folder_and_names_what_it_left_out(tmp_path: Path) -> None:
    out = _batch(tmp_path / "out", [_record(CANVAS_ADA, FULL), _record("ada", FULL)])
    proc = subprocess.run([sys.executable, "-m", "grading", "export", str(out), "--to", "canvas",
                           "--canvas-assignment", "01_data=42", "--missing", "empty"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"canvas: {out / 'lms' / 'canvas-gradebook.csv'} (1 learner row(s))" in proc.stdout
    assert "left out, no Canvas learner to match them to (1): ada" in proc.stdout
    assert "Chapter 1: Data preparation (42)" in (out / "lms" / "canvas-gradebook.csv").read_text()
    bad = subprocess.run([sys.executable, "-m", "grading", "export", str(tmp_path), "--to", "moodle"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "batch.json does not exist" in bad.stderr and "Traceback" not in bad.stderr
