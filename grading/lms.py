"""Grade files that Canvas and Moodle import as they are, keyed by the ids their download names carry.

``python -m grading export OUT --to canvas|moodle`` reads the records of a finished batch (``OUT/batch.json``
and ``OUT/results/``, what ``grade`` or ``merge`` wrote) and writes, in ``OUT/lms/``:

**Canvas** (``canvas-gradebook.csv``), the gradebook's own CSV layout: the columns ``Student``, ``ID``, ``SIS User
ID``, ``SIS Login ID`` and ``Section``, then one column per chapter assignment, named ``Name (assignment id)``;
its second row is ``Points Possible``. Canvas matches a row to a learner by ``ID``, the Canvas user id, which
is the number its submission downloads carry (``lovelace_ada_12345_67890_hw0.zip``: user 12345, submission
67890; ``grading.submissions.learner_id`` keeps it: ``lovelace_ada_12345``). An assignment column is matched by
the id in parentheses, else by its exact name, else Canvas offers to create the assignment.
Sources: Canvas's importer (canvas-lms ``app/models/gradebook_importer.rb``: ``header?``, ``process_pp``,
``parse_assignments``, ``process_student``), the Canvas Instructor Guide "How do I import grades in the
Gradebook?" (https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807),
https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades
and https://nemogb-dev.github.io/nemogb-r/articles/detailed-canvas-export-info.html (columns like ``Quiz 1 (875684)``).

**Moodle** (``moodle-grading-worksheet.csv``), the assignment's offline grading worksheet (Assignment > View all
submissions > Upload grading worksheet; the assignment needs the "Offline grading worksheet" feedback type):
``Identifier`` (``Participant 123456``), ``Full name``, ``Grade``, ``Maximum Grade``, ``Last modified (grade)``.
Moodle's assignment downloads are named ``<Full name>_<participant id>_assignsubmission_file_`` and this is the
id the worksheet's ``Identifier`` carries (``ada_lovelace_123456`` is participant 123456); participant ids are
per assignment, so one worksheet is one assignment's grade (the batch's total). An empty ``Grade`` leaves the
grade in Moodle as it is. Sources: moodle ``mod/assign/feedback/offline/importgradeslib.php`` (the ``Identifier``,
``Grade`` and ``Last modified (grade)`` columns it requires; the ``Participant `` prefix it strips),
``mod/assign/locallib.php`` (``download_submissions``: the download names) and ``mod/assign/lang/en/assign.php``.
With ``--roster`` (that worksheet as Moodle gives it, which lists every participant and, where the site shows
them, their email address or ID number), ``moodle-gradebook.csv`` is written too: the gradebook's "Import > CSV
file" format, one identifier column (``Email address``, ``ID number`` or ``Username``; map it to ``useremail``,
``useridnumber`` or ``username``) and one column per chapter grade item
(https://docs.moodle.org/311/en/Grade_import: "Map from" / "Map to").

A chapter a learner handed nothing in for (or a learner on the roster with no submission at all) gets ``0``
(``--missing zero``, the default) or an empty cell (``--missing empty``: the LMS keeps what it has). Learners
whose id carries no LMS id, and, with a roster, learners the roster does not list, are left out and reported.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from exercises.kit.catalogue import chapter_titles, find
from grading.files import atomic_write
from grading.records import LearnerRecord
from grading.shards import read_manifest

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_WORKSHEET = ["Identifier", "Full name", "Grade", "Maximum Grade", "Last modified (grade)"]
MOODLE_PARTICIPANT = "Participant "
MOODLE_IDENTIFIERS = ("ID number", "Email address", "Username")
_TRAILING_ID = re.compile(r"^(?P<name>.*?)_(?P<id>\d{3,})$")


class ExportError(ValueError):
    """The batch or the roster cannot be exported; the message says what to do."""


@dataclass
class Batch:
    """A finished batch's records and the chapters its exercises belong to, in the course's order."""

    records: dict[str, LearnerRecord]
    chapters: dict[str, list[str]]  # notebook -> its exercises (the grade sheet's columns)


@dataclass
class Export:
    path: Path
    rows: int
    unmatched: list[str] = field(default_factory=list)  # graded learners the file could not name
    extra: list[Path] = field(default_factory=list)  # other files written


def load_batch(out_dir: Path) -> Batch:
    """The records ``grade`` or ``merge`` left in ``out_dir``, as its ``batch.json`` lists them."""
    out_dir = Path(out_dir)
    manifest_file = out_dir / "batch.json"
    if not manifest_file.exists():
        raise ExportError(f"{manifest_file} does not exist: export the output of a finished grade run, or of "
                          "merge after a sharded run (python -m grading merge OUT)")
    manifest = read_manifest(manifest_file)
    records = {}
    for learner, key in manifest.learners.items():
        path = out_dir / "results" / f"{learner}.json"
        try:
            record = LearnerRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ExportError(f"{path} is missing or unreadable ({exc}): grade (or merge) again") from None
        if record.key != key:
            raise ExportError(f"{path} changed after {manifest_file} was written: grade (or merge) again")
        records[learner] = record
    chapters: dict[str, list[str]] = {}
    for exercise in manifest.columns:
        entry = find(exercise)
        chapters.setdefault(entry.notebook if entry else "", []).append(exercise)
    return Batch(records, dict(sorted(chapters.items())))


def lms_id(learner: str) -> tuple[str, str] | None:
    """(name, the LMS's numeric id) from a learner id made of a download name: ``lovelace_ada_12345`` ->
    ``("lovelace ada", "12345")``; ``None`` when the id carries no number."""
    match = _TRAILING_ID.match(learner)
    return (match["name"].replace("_", " "), match["id"]) if match else None


def _matched(batch: Batch) -> tuple[dict[str, LearnerRecord], dict[str, str], list[str]]:
    """LMS id -> record and LMS id -> name for the learners whose id carries one (in learner order), and the
    learners whose id carries none."""
    by_id: dict[str, LearnerRecord] = {}
    names: dict[str, str] = {}
    unmatched = []
    for learner, record in sorted(batch.records.items()):
        ids = lms_id(learner)
        if ids is None:
            unmatched.append(learner)
        else:
            names[ids[1]], by_id[ids[1]] = ids[0], record
    return by_id, names, unmatched


def _num(x: float) -> str:
    return f"{round(x, 4):g}"


def _scaled(score: float, maximum: float, out_of: float | None) -> float:
    return score if out_of is None or maximum == 0 else score * out_of / maximum


def chapter_score(record: LearnerRecord, exercises: list[str]) -> tuple[float, float]:
    scores = [record.exercises[e] for e in exercises if e in record.exercises]
    return sum(s.score for s in scores), sum(s.max for s in scores)


def _cell(record: LearnerRecord | None, chapter: str, exercises: list[str], maximum: float, missing: str,
          out_of: float | None) -> str:
    if record is None or chapter in record.unsubmitted or record.ungraded:
        return "0" if missing == "zero" else ""
    score, _ = chapter_score(record, exercises)
    return _num(_scaled(score, maximum, out_of))


def _read_csv(path: Path) -> list[list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"the roster {path} could not be read ({exc}); pass the CSV file the LMS exported") from None
    return [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]


def canvas_roster(path: Path) -> list[dict[str, str]]:
    """The students of a Canvas gradebook export (Grades > Export): their identity columns, in file order.
    The ``Points Possible`` row and Canvas's "Test Student" are left out."""
    rows = _read_csv(path)
    header = [h.strip() for h in rows[0]] if rows else []
    if "Student" not in header or "ID" not in header:
        raise ExportError(f"the roster {path} is not a Canvas gradebook export: its first row must name the columns "
                          "Student and ID (Canvas: Grades > Export > Export Entire Gradebook)")
    students = []
    for row in rows[1:]:
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        name, user = cells.get("Student", ""), cells.get("ID", "")
        if "Points Possible" in name or not user.isdigit() or name.lower() in ("student, test", "test student"):
            continue
        students.append({column: cells.get(column, "") for column in CANVAS_IDENTITY})
    return students


def _assignment_header(notebook: str, given: str | None, titles: dict[int, str]) -> str:
    default = f"Chapter {int(notebook[:2])}: {titles.get(int(notebook[:2]), notebook)}" if notebook else "Other"
    if given is None:
        return default
    return f"{default} ({given})" if given.isdigit() else given


def canvas_gradebook(batch: Batch, dest: Path, missing: str = "zero", roster: Path | None = None,
                     assignments: dict[str, str] | None = None, out_of: float | None = None) -> Export:
    """Write Canvas's gradebook CSV for ``batch`` to ``dest``; see the module docstring.

    ``assignments`` maps a chapter (``01_data``) to its Canvas assignment id (``4711``: the column becomes
    ``Chapter 1: Data preparation (4711)``) or to a whole column name. ``out_of`` rescales each chapter to that
    many points."""
    assignments = assignments or {}
    unknown = sorted(set(assignments) - set(batch.chapters))
    if unknown:
        raise ExportError(f"--canvas-assignment names {', '.join(unknown)}, which this batch did not grade "
                          f"(its chapters: {', '.join(batch.chapters)})")
    titles = chapter_titles()
    maxima = {ch: max((chapter_score(r, ex)[1] for r in batch.records.values()), default=0.0)
              for ch, ex in batch.chapters.items()}
    by_id, names, unmatched = _matched(batch)
    if roster is not None:
        students = canvas_roster(roster)
        listed = {s["ID"] for s in students}
        unmatched += sorted(r.learner for user, r in by_id.items() if user not in listed)
    else:
        students = [{"Student": names[user], "ID": user, "SIS User ID": "", "SIS Login ID": "", "Section": ""}
                    for user in by_id]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CANVAS_IDENTITY, *(_assignment_header(ch, assignments.get(ch), titles) for ch in batch.chapters)])
    writer.writerow(["Points Possible", "", "", "", "",
                     *(_num(out_of if out_of is not None else maxima[ch]) for ch in batch.chapters)])
    for student in students:
        record = by_id.get(student["ID"])
        writer.writerow([*(student[c] for c in CANVAS_IDENTITY),
                         *(_cell(record, ch, ex, maxima[ch], missing, out_of) for ch, ex in batch.chapters.items())])
    _write(dest, buffer.getvalue())
    return Export(dest, len(students), sorted(unmatched))


def moodle_roster(path: Path) -> list[dict[str, str]]:
    """The participants of a Moodle offline grading worksheet (Assignment > View all submissions > Download
    grading worksheet), in file order, each row by its column names."""
    rows = _read_csv(path)
    header = [h.strip() for h in rows[0]] if rows else []
    if "Identifier" not in header:
        raise ExportError(f"the roster {path} is not a Moodle grading worksheet: its first row must name the column "
                          "Identifier (Assignment > View all submissions > Download grading worksheet)")
    participants = []
    for row in rows[1:]:
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        if cells.get("Identifier", "").startswith(MOODLE_PARTICIPANT.strip()):
            participants.append(cells)
    return participants


def _participant(identifier: str) -> str:
    return identifier[len(MOODLE_PARTICIPANT.strip()):].strip()


def moodle_worksheet(batch: Batch, dest: Path, missing: str = "zero", roster: Path | None = None,
                     out_of: float | None = None, graded_at: datetime | None = None) -> Export:
    """Write Moodle's offline grading worksheet for ``batch`` to ``dest`` (and, with ``roster``, the gradebook
    import CSV beside it); see the module docstring. ``graded_at`` (default: now) fills ``Last modified
    (grade)``: Moodle skips a row whose grade in Moodle was changed after it, unless the upload's "Allow
    updating records that have been modified more recently in Moodle than in the spreadsheet" is ticked."""
    stamp = (graded_at or datetime.now(UTC)).replace(microsecond=0).isoformat()
    maximum = max((r.max for r in batch.records.values()), default=0.0)
    by_id, names, unmatched = _matched(batch)
    if roster is not None:
        participants = moodle_roster(roster)
        listed = {_participant(p["Identifier"]) for p in participants}
        unmatched += sorted(r.learner for pid, r in by_id.items() if pid not in listed)
    else:
        participants = [{"Identifier": f"{MOODLE_PARTICIPANT}{pid}", "Full name": names[pid]} for pid in by_id]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MOODLE_WORKSHEET)
    for p in participants:
        record = by_id.get(_participant(p["Identifier"]))
        if record is None or record.ungraded:
            grade = "0" if missing == "zero" else ""
        else:
            grade = _num(_scaled(record.total, maximum, out_of))
        writer.writerow([p["Identifier"], p.get("Full name", ""), grade,
                         _num(out_of if out_of is not None else maximum), stamp])
    _write(dest, buffer.getvalue())
    export = Export(dest, len(participants), sorted(unmatched))
    if roster is not None:
        export.extra.append(_moodle_gradebook(batch, dest.with_name("moodle-gradebook.csv"), participants, by_id,
                                              missing, out_of, roster))
    return export


def _moodle_gradebook(batch: Batch, dest: Path, participants: list[dict[str, str]],
                      by_id: dict[str, LearnerRecord], missing: str, out_of: float | None, roster: Path) -> Path:
    column = next((c for c in MOODLE_IDENTIFIERS if any(p.get(c) for p in participants)), None)
    if column is None:
        raise ExportError(f"the roster {roster} has none of the columns {', '.join(MOODLE_IDENTIFIERS)} filled in, so "
                          "the gradebook import could not name the learners; the grading worksheet beside it needs "
                          "no such column (or show email addresses in the worksheet: Site administration > Users > "
                          "Permissions > User policies > Show user identity)")
    titles = chapter_titles()
    maxima = {ch: max((chapter_score(r, ex)[1] for r in batch.records.values()), default=0.0)
              for ch, ex in batch.chapters.items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column, *(_assignment_header(ch, None, titles) for ch in batch.chapters)])
    for p in participants:
        if not p.get(column):
            continue
        record = by_id.get(_participant(p["Identifier"]))
        writer.writerow([p[column], *(_cell(record, ch, ex, maxima[ch], missing, out_of)
                                      for ch, ex in batch.chapters.items())])
    _write(dest, buffer.getvalue())
    return dest


def _write(dest: Path, text: str) -> None:
    atomic_write(Path(dest), text)


def parse_assignments(pairs: Iterable[str]) -> dict[str, str]:
    """``["01_data=4711", ...]`` as ``{"01_data": "4711"}``; ``ExportError`` for a pair without ``=``."""
    found = {}
    for pair in pairs:
        chapter, sep, value = pair.partition("=")
        if not sep or not chapter.strip() or not value.strip():
            raise ExportError(f"--canvas-assignment expects CHAPTER=ID (for example 01_data=4711), not {pair!r}")
        found[chapter.strip()] = value.strip()
    return found
