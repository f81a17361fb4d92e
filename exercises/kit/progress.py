"""Your practice history: every check you run is recorded, and ``show_progress()`` sums it up.

(``show_progress`` lives in ``exercises.checks``, which knows the checks; this module only keeps and
reads the history, so that it depends on nothing but the exercise catalogue.)

The history is a small JSON file kept beside your copy of the course (``.course-progress.json``
in the folder that holds ``course/`` and ``exercises/``), or at ``COURSE_PROGRESS_FILE`` if you set
that variable. Re-running cells, restarting the kernel, reinstalling or updating the course never
touches it. From a terminal: ``python -m exercises progress``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exercises.kit.catalogue import PACKAGE_DIR, catalogue, chapter_titles

FILE_NAME = ".course-progress.json"


def progress_file() -> Path:
    """Where the history lives (see the module docstring)."""
    if os.environ.get("COURSE_PROGRESS_FILE"):
        return Path(os.environ["COURSE_PROGRESS_FILE"]).expanduser()
    root = PACKAGE_DIR.parent
    if (root / "course").is_dir() and os.access(root, os.W_OK):
        return root / FILE_NAME
    return Path.home() / ".deep-practice" / "progress.json"


def load_history(path: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded attempt, oldest first; an unreadable file is set aside, never fatal."""
    path = path or progress_file()
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        attempts = data["attempts"]
        if not isinstance(attempts, list):
            raise ValueError("attempts is not a list")
        return [a for a in attempts if isinstance(a, dict) and isinstance(a.get("check"), str)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        backup = path.with_name(f"{path.name}.unreadable-{int(time.time())}")
        try:
            path.replace(backup)
        except OSError:
            pass
        warnings.warn(f"your progress file could not be read ({exc}); it was kept as {backup} and a new one started",
                      stacklevel=2)
        return []


def record_attempt(check: str, module: str, results: dict[str, bool], failed: list[str],
                   path: Path | None = None, code: dict[str, str] | None = None, untouched: bool = False) -> None:
    """Record one run of ``check``; ``results`` maps each exercise to whether all its properties held,
    ``code`` each exercise to a digest of its code then, and ``untouched`` says the code was still the stub.

    Never raises: a check must work even where the history cannot be written.
    """
    path = path or progress_file()
    try:
        attempts = load_history(path)
        attempts.append({"check": check, "module": module, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                         "passed": all(results.values()), "exercises": results, "failed": failed[:20],
                         "code": dict(code or {}), "untouched": untouched})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "attempts": attempts}, f, indent=0)
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"could not record this attempt in {path}: {exc}", stacklevel=2)


@dataclass
class CheckProgress:
    """What the history says about one visible check."""

    check: str
    chapter: int
    exercises: list[str]
    attempts: int = 0  # runs on code of yours that had changed since the run before (not on an untouched stub)
    attempts_to_pass: int | None = None  # attempts up to and including the first full pass
    passing_now: bool = False  # the latest attempt passed
    exercise_passed: dict[str, bool] = field(default_factory=dict)
    last_failed: list[str] = field(default_factory=list)


def summarize(checks: list[tuple[str, list[str]]], history: list[dict[str, Any]] | None = None) -> list[CheckProgress]:
    """One ``CheckProgress`` per visible check (``checks``: each check's name and the exercises it covers),
    in the course's order: a check sits in the chapter, and at the place, of the first exercise it covers."""
    history = load_history() if history is None else history
    order = {e.name: (e.chapter, i) for i, e in enumerate(catalogue())}
    rows = []
    for name, exercises in sorted(checks, key=lambda c: min((order.get(e, (99, 0)) for e in c[1]), default=(99, 0))):
        chapter = min((order[e][0] for e in exercises if e in order), default=0)
        row = CheckProgress(name, chapter, exercises)
        last_code: object = None
        for attempt in (a for a in history if a["check"] == name):
            if attempt.get("untouched"):
                continue  # a run on the untouched stub (Run All, say) is not an attempt
            code = attempt.get("code") or None
            if code is None or code != last_code:  # the same code run again is not a new attempt
                row.attempts += 1
            last_code = code
            if attempt.get("passed") and row.attempts_to_pass is None:
                row.attempts_to_pass = row.attempts
            row.passing_now = bool(attempt.get("passed"))
            for exercise, ok in (attempt.get("exercises") or {}).items():
                row.exercise_passed[exercise] = bool(ok)
            row.last_failed = list(attempt.get("failed") or [])
        rows.append(row)
    return rows


def _sentence(text: str) -> str:
    """``text`` ending with exactly one full stop (diagnoses end with their own)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def next_step(rows: list[CheckProgress]) -> str:
    """What to practise next: finish what you started, then the next check, then deliberate repetition."""
    started = [r for r in rows if r.attempts and not r.passing_now]
    if started:
        r = started[0]
        hint = f" Last time: {_sentence(r.last_failed[0])}" if r.last_failed else ""
        tries = f"{r.attempts} attempt{'s' * (r.attempts != 1)}"
        return f"Keep going with check(\"{r.check}\") (chapter {r.chapter}): {tries} so far.{hint}"
    fresh = [r for r in rows if not r.attempts]
    if fresh:
        r = fresh[0]
        return f"Next: chapter {r.chapter}, {', '.join(r.exercises)} — then run check(\"{r.check}\")."
    hardest = max(rows, key=lambda r: r.attempts_to_pass or 0, default=None)
    if hardest and (hardest.attempts_to_pass or 0) > 1:
        return (f"Every check passes. Practise again: rewrite {', '.join(hardest.exercises)} from scratch without "
                f"looking (it took {hardest.attempts_to_pass} attempts the first time), "
                f"then check(\"{hardest.check}\").")
    return "Every check passes. Try breaking one on purpose and predict the diagnosis before you run the check."


def progress_report(checks: list[tuple[str, list[str]]], history: list[dict[str, Any]] | None = None) -> str:
    """The progress view as text: per chapter and check, status and attempts, then the next step."""
    rows = summarize(checks, history)
    titles = chapter_titles()
    lines = []
    done = sum(r.passing_now for r in rows)
    lines.append(f"Course progress: {done} of {len(rows)} checks passing")
    chapter = None
    for r in rows:
        if r.chapter != chapter:
            chapter = r.chapter
            lines.append(f"\nChapter {chapter} — {titles.get(chapter, '')}")
        status = "✓ passing" if r.passing_now else ("✗ not yet" if r.attempts else "· not started")
        tries = f"{r.attempts} attempt{'s' * (r.attempts != 1)}" if r.attempts else ""
        first = f", first passed on attempt {r.attempts_to_pass}" if r.attempts_to_pass else ""
        lines.append(f"  {status:<14} check(\"{r.check}\"): {', '.join(r.exercises)}  {tries}{first}".rstrip())
        for exercise in r.exercises:
            if r.attempts and not r.passing_now and exercise in r.exercise_passed:
                lines.append(f"      {'✓' if r.exercise_passed[exercise] else '✗'} {exercise}")
    lines.append("\n" + next_step(rows))
    return "\n".join(lines)
