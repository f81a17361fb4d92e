"""Grade a folder of submissions: one sandbox per learner, results written as they finish.

Output folder layout::

    grades.csv                        one row per learner: a column per exercise (the course's order), total,
                                      max, notes (why a submission could not be graded, what was missing)
    results/<learner>.json            every test's outcome (written atomically; reused by a re-run)
    feedback/<learner>.md, .html      what passed, what failed, and the likely mistake
    gradescope/<learner>/results.json the same, in Gradescope's autograder format
    batch.json                        the manifest of a finished batch (``grading.shards``)
    regrade-report.md                 whose grade changed when graded again, and why (``grading.regrade``)

``results/<learner>.json`` is the record of truth; everything else is derived from the records on
every run. A re-run grades only learners whose record is missing or stale (their files or the
grader changed), so a batch killed at any point resumes where it stopped and ends with the same
files as a run that was never interrupted. A shard (``--shard K/N``) writes the per-learner files of
its learners and ``shards/K-of-N.json``; ``python -m grading merge`` makes ``grades.csv`` from the shards.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exercises.kit.catalogue import find
from grading import PROJECT_ROOT, feedback, regrade
from grading.files import atomic_write, write_if_changed
from grading.records import LearnerRecord, TestResult
from grading.sandbox import Limits, Sandbox
from grading.shards import Manifest, Shard, manifest_path, write_manifest
from grading.submissions import Submission, SubmissionsError, discover, module_files, stage
from grading.suite import HiddenTest, exercise_columns, fingerprint, in_course_order, load_suite, run_suite


@dataclass
class BatchReport:
    graded: list[str]
    reused: list[str]
    out_dir: Path
    csv_path: Path | None  # None for a shard: ``merge`` writes grades.csv
    isolation: str = ""  # in words, what the sandbox had in force (empty when nothing was graded)
    isolation_record: dict[str, Any] = field(default_factory=dict)
    ungraded: dict[str, str] = field(default_factory=dict)  # learner -> why nothing could be graded
    shard: Shard | None = None
    regrades: list[regrade.Regrade] = field(default_factory=list)
    regrade_report: Path | None = None
    kept: list[str] = field(default_factory=list)  # with ``learners``: others left with older results


class IsolationError(RuntimeError):
    """Full isolation was required and this machine does not give it; the message says what is missing."""


def merge_isolation(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One record for a submission graded in several sandboxes: a mechanism counts as in force only if
    it was in every one."""
    if not records:
        return {}
    if len(records) == 1:
        return dict(records[0])
    names = [set(r.get("mechanisms", {})) for r in records]
    mechanisms = {k: all(r.get("mechanisms", {}).get(k, False) for r in records) for k in sorted(set().union(*names))}
    unavailable = list(dict.fromkeys(u for r in records for u in r.get("unavailable", [])))
    in_force = [t for t in records[0].get("in_force", []) if all(t in r.get("in_force", []) for r in records)]
    return {"full": all(r.get("full", False) for r in records), "mechanisms": mechanisms, "in_force": in_force,
            "unavailable": unavailable, "grouped": all(r.get("grouped", False) for r in records),
            "summary": records[0].get("summary", "")}


def isolation_summary(record: dict[str, Any]) -> str:
    """What ``grade`` prints first when isolation is incomplete (``""`` when it is full)."""
    if not record or record.get("full"):
        return ""
    missing = "; ".join(record.get("unavailable", [])) or "unknown"
    return (f"warning: learner code is NOT fully isolated on this machine. Missing: {missing}. Grade on a host "
            "that allows namespaces (see the README, 'How grading stays trustworthy'), or pass "
            "--require-isolation to refuse to grade here.")


def probe_isolation(limits: Limits, stage_root: Path | None = None) -> dict[str, Any]:
    """What the sandbox has in force on this machine, from a sandbox started on the course's own package."""
    with tempfile.TemporaryDirectory(prefix="isolation-probe-", dir=stage_root) as tmp:
        root = stage(Submission("probe", Path(tmp)), Path(tmp), {})
        with Sandbox(root, limits) as sandbox:
            return dict(sandbox.record)


def not_run(tests: list[HiddenTest], why: str) -> list[TestResult]:
    return [TestResult(t.exercise, t.name, t.name.rpartition(".")[2].replace("_", " "), 0.0, t.points, False, why)
            for t in tests]


def grade_submission(sub: Submission, tests: list[HiddenTest], limits: Limits, stage_root: Path | None = None,
                     isolation: list[dict[str, Any]] | None = None,
                     require_isolation: bool = False) -> list[TestResult]:
    """Run the hidden suite on one submission, each chapter's files in a sandbox of their own.

    In nbgrader's layout an exercise is graded from the folder of the chapter that teaches it (the
    latest chapter's folder when its chapter is unknown); with no folder for that chapter, its
    tests score 0 and say so. Each sandbox's isolation record is appended to ``isolation``; with
    ``require_isolation``, a sandbox without full isolation raises ``IsolationError`` before any test.
    """
    groups: dict[str, list[HiddenTest]] = {}
    for t in tests:
        if not sub.chapters:
            key = ""
        elif t.chapter in sub.chapters:
            key = t.chapter
        elif t.chapter is None:
            key = max(sub.chapters)
        else:
            key = f"missing:{t.chapter}"
        groups.setdefault(key, []).append(t)
    outcome: dict[str, TestResult] = {}
    with tempfile.TemporaryDirectory(prefix=f"stage-{sub.learner}-", dir=stage_root) as tmp:
        for index, (key, group) in enumerate(groups.items()):
            if key.startswith("missing:"):
                why = f"nothing was submitted for {key.removeprefix('missing:')}, the chapter that teaches this."
                outcome.update((r.name, r) for r in not_run(group, why))
                continue
            root = stage(sub, Path(tmp) / str(index), sub.chapters[key] if key else sub.files)
            with Sandbox(root, limits) as sandbox:
                if require_isolation and not sandbox.record.get("full"):
                    raise IsolationError(isolation_summary(sandbox.record) or "isolation unknown")
                if isolation is not None:
                    isolation.append(dict(sandbox.record, summary=sandbox.isolation))
                outcome.update((r.name, r) for r in run_suite(sandbox.run, group, sandbox.run_group))
    return [outcome[t.name] for t in tests]


def make_record(sub: Submission, results: list[TestResult], columns: list[str], key: str,
                isolation: list[dict[str, Any]] | None = None) -> LearnerRecord:
    return LearnerRecord.from_results(sub.learner, results, columns, source=sub.path.name, key=key,
                                      notes=list(sub.notes), isolation=merge_isolation(isolation or []))


def unsubmitted_chapters(sub: Submission, tests: list[HiddenTest]) -> list[str]:
    """The chapters of ``tests`` for which ``sub`` holds none of the exercise modules they grade (in
    nbgrader's layout: no folder for the chapter, or one without those modules)."""
    needed: dict[str, set[str]] = {}
    for t in tests:
        entry = find(t.exercise)
        needed.setdefault(t.chapter or "", set()).add(f"{entry.module}.py" if entry else "")
    missing = []
    for chapter, modules in needed.items():
        if sub.chapters:
            files = sub.chapters.get(chapter) or (sub.chapters[max(sub.chapters)] if not chapter else {})
        else:
            files = sub.files
        if not modules & set(files):
            missing.append(chapter)
    return sorted(m for m in missing if m)


_MISSING = "missing from the submission: "


def relevant_notes(notes: list[str], tests: list[HiddenTest]) -> list[str]:
    """``notes`` with "missing from the submission" narrowed to the modules ``tests`` grade (a batch of one
    chapter does not need the others), and dropped when none of those is missing."""
    needed = {f"exercises/{entry.module}.py" for entry in map(find, {t.exercise for t in tests}) if entry}
    kept = []
    for note in notes:
        head, sep, listed = note.partition(_MISSING)
        if sep:
            missing = [m for m in listed.split(", ") if m in needed]
            if not missing:
                continue
            note = f"{head}{_MISSING}{', '.join(missing)}"
        kept.append(note)
    return kept


def ungraded_reason(sub: Submission, tests: list[HiddenTest]) -> str:
    """Why nothing of ``sub`` can be graded (no exercise module that ``tests`` grade is in it), or ``""``."""
    if not tests:
        return ""
    unsubmitted = unsubmitted_chapters(sub, tests)
    if {t.chapter for t in tests} - set(unsubmitted) - {None}:
        return ""
    if any(t.chapter is None for t in tests) and set(sub.files) & module_files():
        return ""
    return "; ".join(sub.notes) or "it holds none of the exercise modules these hidden tests grade"


def _num(x: float) -> str:
    return f"{x:g}"


def write_csv(out_dir: Path, records: list[LearnerRecord], columns: list[str]) -> Path:
    """``grades.csv``: a row per learner (sorted by id), a column per exercise in the course's order, the
    total, the maximum, and the record's notes (why a submission could not be graded, what was missing)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["learner", *columns, "total", "max", "notes"])
    for r in sorted(records, key=lambda r: r.learner):
        writer.writerow([r.learner, *(_num(r.exercises[c].score if c in r.exercises else 0.0) for c in columns),
                         _num(r.total), _num(r.max), " ".join("; ".join(r.notes).split())])
    path = out_dir / "grades.csv"
    write_if_changed(path, buffer.getvalue())
    return path


def write_outputs(out_dir: Path, record: LearnerRecord) -> None:
    """Every file derived from one learner's record."""
    learner = record.learner
    write_if_changed(out_dir / "feedback" / f"{learner}.md", feedback.markdown(record))
    write_if_changed(out_dir / "feedback" / f"{learner}.html", feedback.html(record))
    write_if_changed(out_dir / "gradescope" / learner / "results.json",
                      json.dumps(feedback.gradescope_results(record), indent=1))


def _read_record(path: Path) -> LearnerRecord | None:
    try:
        return LearnerRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, unreadable or of an older format (it cannot be half-written): grade again


def suite_for(assignment: str | None, exclude: tuple[str, ...], submitted: set[str] | None = None
              ) -> tuple[list[HiddenTest], str]:
    """The hidden tests a batch runs (in the course's order) and the grader's identity for its records."""
    tests = [t for t in load_suite(assignment) if not any(part in t.name for part in exclude)]
    if submitted:  # nbgrader layout: grade the chapters that were handed out
        tests = [t for t in tests if t.chapter is None or t.chapter in submitted]
    return in_course_order(tests), f"{fingerprint()}:{assignment or ''}:{','.join(sorted(exclude))}"


def grade_batch(submissions_root: Path, out_dir: Path, jobs: int = 2, limits: Limits | None = None,
                force: bool = False, progress: bool = True, assignment: str | None = None,
                exclude: tuple[str, ...] = (), shard: Shard | None = None, learners: tuple[str, ...] = (),
                require_isolation: bool = False,
                on_isolation: Callable[[dict[str, Any]], None] | None = None) -> BatchReport:
    """Grade every submission in ``submissions_root`` into ``out_dir``; see the module docstring.

    ``assignment`` (a chapter notebook's name) grades only that chapter's exercises; tests whose name
    contains one of ``exclude`` are left out (a quick run without, say, the test that trains a CNN).
    ``shard`` grades only the learners that shard holds (``grading.shards``). ``learners`` grades these
    learners again, whatever their results; the others keep the results they have.
    Before grading anyone, a sandbox is started to see what isolation this machine gives; its record
    goes to ``on_isolation``, and with ``require_isolation`` anything less than full isolation raises
    ``IsolationError`` before a single submission is graded.
    """
    limits = limits or Limits()
    out_dir = Path(out_dir)
    manifest_path(out_dir, shard).unlink(missing_ok=True)  # a manifest on disk describes a finished run
    submissions = discover(Path(submissions_root), assignment, shard.holds if shard else None)
    known = {sub.learner for sub in submissions}
    unknown = sorted(set(learners) - known)
    if unknown:
        where = f" in shard {shard.index}/{shard.count}" if shard else ""
        raise SubmissionsError(f"no submission{where} is graded as {', '.join(unknown)}; the learners are: "
                               f"{', '.join(sorted(known)[:20])}{' ...' if len(known) > 20 else ''}")
    tests, suite_id = suite_for(assignment, exclude, {c for sub in submissions for c in sub.chapters})
    columns = exercise_columns(tests)
    results_dir = out_dir / "results"
    records: dict[str, LearnerRecord] = {}
    previous: dict[str, LearnerRecord] = {}
    todo: list[Submission] = []
    reused: list[str] = []
    kept: list[str] = []
    for sub in submissions:
        sub.notes = relevant_notes(sub.notes, tests)
        key = f"{suite_id}:{sub.digest()}"
        old = _read_record(results_dir / f"{sub.learner}.json")
        if learners and sub.learner not in learners:
            if old is not None:
                records[sub.learner] = old
                (reused if old.key == key else kept).append(sub.learner)
            continue
        if old is not None and old.key == key and not force and not learners:
            records[sub.learner] = old
            reused.append(sub.learner)
            continue
        if old is not None:
            previous[sub.learner] = old
        todo.append(sub)

    stage_root = Path(tempfile.mkdtemp(prefix="grade-stage-"))
    probe: dict[str, Any] = {}
    if todo:
        try:
            probe = probe_isolation(limits, stage_root)
        except BaseException:
            shutil.rmtree(stage_root, ignore_errors=True)
            raise
        if on_isolation is not None:
            on_isolation(probe)
        if require_isolation and not probe.get("full"):
            shutil.rmtree(stage_root, ignore_errors=True)
            raise IsolationError(isolation_summary(probe) or "isolation unknown")
    isolations: dict[str, list[dict[str, Any]]] = {sub.learner: [] for sub in todo}

    ungraded = {sub.learner: ungraded_reason(sub, tests) for sub in todo}

    def run_one(sub: Submission) -> list[TestResult]:
        if ungraded[sub.learner]:  # nothing to run: no sandbox, one reason
            return not_run(tests, f"not graded: {ungraded[sub.learner]}.")
        return grade_submission(sub, tests, limits, stage_root, isolations[sub.learner], require_isolation)

    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="grading", unit="learner", file=sys.stderr)
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(run_one, sub): sub for sub in todo}
            for future in as_completed(futures):
                sub = futures[future]
                try:
                    results = future.result()
                except IsolationError:
                    raise
                except Exception as exc:  # the sandbox itself failed: grade 0 with the reason, keep going
                    sub.notes.append(f"the grader could not run this submission: {exc}")
                    results = not_run(tests, "not run: the grader could not start a sandbox for this submission.")
                record = make_record(sub, results, columns, f"{suite_id}:{sub.digest()}", isolations[sub.learner])
                record.unsubmitted = unsubmitted_chapters(sub, tests)
                record.ungraded = ungraded[sub.learner]
                atomic_write(results_dir / f"{sub.learner}.json", json.dumps(record.to_json(), indent=1))
                records[sub.learner] = record
                if bar:
                    bar.update(1)
    finally:
        if bar:
            bar.close()
        shutil.rmtree(stage_root, ignore_errors=True)
    for record in records.values():
        write_outputs(out_dir, record)
    regrades = [regrade.changes(previous[name], records[name]) for name in sorted(previous)]
    report_path = None
    if regrades and shard is not None:
        regrade.save(out_dir, shard.name, suite_id, regrades)
    elif regrades:
        report_path = regrade.write_report(out_dir, regrades)
    csv_path = None if shard is not None else write_csv(out_dir, list(records.values()), columns)
    write_manifest(out_dir, Manifest(suite_id, columns, {name: r.key for name, r in records.items()}, shard))
    summary = next((i[0].get("summary", "") for i in isolations.values() if i), "")
    return BatchReport([s.learner for s in todo], reused, out_dir, csv_path, summary, probe,
                       {name: r.ungraded for name, r in sorted(records.items()) if r.ungraded}, shard, regrades,
                       report_path, kept)


__all__ = ["BatchReport", "IsolationError", "PROJECT_ROOT", "atomic_write", "grade_batch", "grade_submission",
           "suite_for", "write_csv", "write_outputs"]
