"""Grade a folder of submissions: one sandbox per learner, results written as they finish.

Output folder layout::

    grades.csv              one row per learner: a column per exercise, total, max
    results/<learner>.json  every test's outcome (written atomically; reused by a re-run)
    feedback/<learner>.md   what passed, what failed, and the likely mistake

A re-run grades only learners whose result is missing or stale (their files or the hidden
tests changed), so an interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grading import PROJECT_ROOT
from grading.sandbox import Limits, Sandbox
from grading.submissions import Submission, discover, stage
from grading.suite import HiddenTest, TestResult, exercise_columns, fingerprint, load_suite


@dataclass
class BatchReport:
    graded: list[str]
    reused: list[str]
    out_dir: Path
    csv_path: Path


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


def _hidden_paths(submissions_root: Path, out_dir: Path) -> tuple[Path, ...]:
    """What learner code must not import or find on its path."""
    paths = {PROJECT_ROOT / "grading", PROJECT_ROOT / "solutions", PROJECT_ROOT / "tests",
             Path(__file__).resolve().parent, submissions_root.resolve(), out_dir.resolve()}
    try:
        import solutions

        paths.add(Path(solutions.__file__).resolve().parent)
    except ImportError:
        pass
    return tuple(sorted(paths))


def grade_submission(sub: Submission, tests: list[HiddenTest], limits: Limits,
                     hide: tuple[Path, ...]) -> list[TestResult]:
    """Run the hidden suite on one submission in its own sandbox."""
    from grading.suite import run_suite

    with tempfile.TemporaryDirectory(prefix=f"stage-{sub.learner}-") as tmp:
        root = stage(sub, Path(tmp))
        with Sandbox(root, limits, hide=hide) as sandbox:
            return run_suite(sandbox.run, tests)


def summarize(results: list[TestResult], columns: list[str]) -> dict[str, dict[str, float]]:
    scores = {c: {"score": 0.0, "max": 0.0} for c in columns}
    for r in results:
        scores[r.exercise]["score"] += r.points
        scores[r.exercise]["max"] += r.max_points
    return scores


def feedback_markdown(record: dict[str, Any]) -> str:
    """The learner's feedback: each exercise, each property, and the diagnosis of each failure."""
    lines = [f"# Feedback for {record['learner']}", "",
             f"**Score: {_num(record['total'])} / {_num(record['max'])}**", ""]
    for note in record["notes"]:
        lines.append(f"> Note: {note}")
    if record["notes"]:
        lines.append("")
    by_exercise: dict[str, list[dict[str, Any]]] = {}
    for test in record["tests"]:
        by_exercise.setdefault(test["exercise"], []).append(test)
    for exercise, tests in by_exercise.items():
        score = record["exercises"][exercise]
        lines.append(f"## {exercise}: {_num(score['score'])} / {_num(score['max'])}")
        for t in tests:
            mark = "✓" if t["passed"] else "✗"
            lines.append(f"- {mark} {t['title']} ({_num(t['max_points'])} pt)")
            if not t["passed"]:
                lines.extend(f"  {line}" for line in t["message"].splitlines())
        lines.append("")
    return "\n".join(lines)


def _num(x: float) -> str:
    return f"{x:g}"


def write_csv(out_dir: Path, records: list[dict[str, Any]], columns: list[str]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["learner", *columns, "total", "max"])
    for r in sorted(records, key=lambda r: r["learner"]):
        writer.writerow([r["learner"], *(_num(r["exercises"].get(c, {}).get("score", 0.0)) for c in columns),
                         _num(r["total"]), _num(r["max"])])
    path = out_dir / "grades.csv"
    atomic_write(path, buffer.getvalue())
    return path


def grade_batch(submissions_root: Path, out_dir: Path, jobs: int = 2, limits: Limits | None = None,
                force: bool = False, progress: bool = True) -> BatchReport:
    """Grade every submission in ``submissions_root`` into ``out_dir``; see the module docstring."""
    limits = limits or Limits()
    submissions = discover(submissions_root)
    tests = load_suite()
    columns = exercise_columns(tests)
    suite_id = fingerprint()
    hide = _hidden_paths(Path(submissions_root), Path(out_dir))
    results_dir = Path(out_dir) / "results"
    records: dict[str, dict[str, Any]] = {}
    todo: list[Submission] = []
    reused: list[str] = []
    for sub in submissions:
        key = f"{suite_id}:{sub.digest()}"
        path = results_dir / f"{sub.learner}.json"
        if not force and path.exists():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
                if old.get("key") == key:
                    records[sub.learner] = old
                    reused.append(sub.learner)
                    continue
            except (OSError, ValueError):
                pass  # unreadable: grade again
        todo.append(sub)

    def finish(sub: Submission, results: list[TestResult]) -> None:
        scores = summarize(results, columns)
        record = {
            "learner": sub.learner, "source": sub.path.name, "key": f"{suite_id}:{sub.digest()}",
            "exercises": scores, "total": sum(s["score"] for s in scores.values()),
            "max": sum(s["max"] for s in scores.values()), "notes": sub.notes,
            "tests": [r.to_dict() for r in results],
        }
        atomic_write(Path(out_dir) / "feedback" / f"{sub.learner}.md", feedback_markdown(record))
        atomic_write(results_dir / f"{sub.learner}.json", json.dumps(record, indent=1))
        records[sub.learner] = record

    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="grading", unit="learner", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_submission, sub, tests, limits, hide): sub for sub in todo}
        for future in as_completed(futures):
            sub = futures[future]
            try:
                results = future.result()
            except Exception as exc:  # the sandbox itself failed: grade 0 with the reason, keep going
                sub.notes.append(f"the grader could not run this submission: {exc}")
                results = [TestResult(t.exercise, t.name, t.name, 0.0, t.points, False, "not run") for t in tests]
            finish(sub, results)
            if bar:
                bar.update(1)
    if bar:
        bar.close()
    csv_path = write_csv(Path(out_dir), list(records.values()), columns)
    return BatchReport([s.learner for s in todo], reused, Path(out_dir), csv_path)
