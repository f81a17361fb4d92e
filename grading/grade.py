"""Grade a folder of submissions: one sandbox per learner, results written as they finish.

Output folder layout::

    grades.csv                        one row per learner: a column per exercise, total, max
    results/<learner>.json            every test's outcome (written atomically; reused by a re-run)
    feedback/<learner>.md, .html      what passed, what failed, and the likely mistake
    gradescope/<learner>/results.json the same, in Gradescope's autograder format

``results/<learner>.json`` is the record of truth; everything else is derived from the records on
every run. A re-run grades only learners whose record is missing or stale (their files or the
grader changed), so a batch killed at any point resumes where it stopped and ends with the same
files as a run that was never interrupted.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grading import PROJECT_ROOT, feedback
from grading.records import LearnerRecord, TestResult
from grading.sandbox import Limits, Sandbox
from grading.submissions import Submission, discover, stage
from grading.suite import HiddenTest, exercise_columns, fingerprint, load_suite, run_suite


@dataclass
class BatchReport:
    graded: list[str]
    reused: list[str]
    out_dir: Path
    csv_path: Path
    isolation: str = ""  # in words, what the sandbox had in force (empty when nothing was graded)
    isolation_record: dict[str, Any] = field(default_factory=dict)


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


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write(path, text)


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


def _num(x: float) -> str:
    return f"{x:g}"


def write_csv(out_dir: Path, records: list[LearnerRecord], columns: list[str]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["learner", *columns, "total", "max"])
    for r in sorted(records, key=lambda r: r.learner):
        writer.writerow([r.learner, *(_num(r.exercises[c].score if c in r.exercises else 0.0) for c in columns),
                         _num(r.total), _num(r.max)])
    path = out_dir / "grades.csv"
    _write_if_changed(path, buffer.getvalue())
    return path


def write_outputs(out_dir: Path, record: LearnerRecord) -> None:
    """Every file derived from one learner's record."""
    learner = record.learner
    _write_if_changed(out_dir / "feedback" / f"{learner}.md", feedback.markdown(record))
    _write_if_changed(out_dir / "feedback" / f"{learner}.html", feedback.html(record))
    _write_if_changed(out_dir / "gradescope" / learner / "results.json",
                      json.dumps(feedback.gradescope_results(record), indent=1))


def grade_batch(submissions_root: Path, out_dir: Path, jobs: int = 2, limits: Limits | None = None,
                force: bool = False, progress: bool = True, assignment: str | None = None,
                exclude: tuple[str, ...] = (), require_isolation: bool = False,
                on_isolation: Callable[[dict[str, Any]], None] | None = None) -> BatchReport:
    """Grade every submission in ``submissions_root`` into ``out_dir``; see the module docstring.

    ``assignment`` (a chapter notebook's name) grades only that chapter's exercises; tests whose name
    contains one of ``exclude`` are left out (a quick run without, say, the test that trains a CNN).
    Before grading anyone, a sandbox is started to see what isolation this machine gives; its record
    goes to ``on_isolation``, and with ``require_isolation`` anything less than full isolation raises
    ``IsolationError`` before a single submission is graded.
    """
    limits = limits or Limits()
    out_dir = Path(out_dir)
    submissions = discover(Path(submissions_root), assignment)
    tests = [t for t in load_suite(assignment) if not any(part in t.name for part in exclude)]
    submitted = {c for sub in submissions for c in sub.chapters}
    if submitted:  # nbgrader layout: grade the chapters that were handed out
        tests = [t for t in tests if t.chapter is None or t.chapter in submitted]
    columns = exercise_columns(tests)
    suite_id = f"{fingerprint()}:{assignment or ''}:{','.join(sorted(exclude))}"
    results_dir = out_dir / "results"
    records: dict[str, LearnerRecord] = {}
    todo: list[Submission] = []
    reused: list[str] = []
    for sub in submissions:
        key = f"{suite_id}:{sub.digest()}"
        path = results_dir / f"{sub.learner}.json"
        if not force and path.exists():
            try:
                old = LearnerRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
                if old.key == key:
                    records[sub.learner] = old
                    reused.append(sub.learner)
                    continue
            except (OSError, ValueError, KeyError, TypeError):
                pass  # unreadable or of an older format (it cannot be half-written): grade again
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

    def run_one(sub: Submission) -> list[TestResult]:
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
    csv_path = write_csv(out_dir, list(records.values()), columns)
    summary = next((i[0].get("summary", "") for i in isolations.values() if i), "")
    return BatchReport([s.learner for s in todo], reused, out_dir, csv_path, summary, probe)


__all__ = ["BatchReport", "IsolationError", "PROJECT_ROOT", "atomic_write", "grade_batch", "grade_submission",
           "write_csv"]
