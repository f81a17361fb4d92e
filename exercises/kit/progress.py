"""Your practice history: every check you run, every drill you answer and every reflection you write is
recorded, and ``show_progress()`` sums it up and proposes what to practise next.

(``show_progress`` lives in ``exercises.checks``, which knows the checks; this module only keeps and
reads the history, so that it depends on nothing but the exercise catalogue.)

The history is a small JSON file kept beside your copy of the course (``.course-progress.json``
in the folder that holds ``course/`` and ``exercises/``), or at ``COURSE_PROGRESS_FILE`` if you set
that variable. Re-running cells, restarting the kernel, reinstalling or updating the course never
touches it. From a terminal: ``python -m exercises progress`` (``--plot`` draws it).

The file is ``{"version": 2, "attempts": [event, ...]}``, oldest event first. An event without a
``kind`` is a run of a check (version 1 files hold only these); ``"kind": "drill"`` is one answered
drill item and ``"kind": "reflection"`` one end-of-chapter reflection. Every event has a ``check``
string (``"drill:conv_shapes"``, ``"reflection:3"`` for the new kinds), so that the code of an older
release, which keeps every event with one and shows only the checks it knows, never drops them.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from exercises.kit.catalogue import PACKAGE_DIR, catalogue, chapter_titles

FILE_NAME = ".course-progress.json"
VERSION = 2
FLUENT_STREAK = 5  # a drill is mastered after this many right answers in a row ...
FLUENT_SECONDS = 30.0  # ... each given within this many seconds of the item being shown
DRILL, REFLECTION = "drill", "reflection"


def progress_file() -> Path:
    """Where the history lives (see the module docstring)."""
    if os.environ.get("COURSE_PROGRESS_FILE"):
        return Path(os.environ["COURSE_PROGRESS_FILE"]).expanduser()
    root = PACKAGE_DIR.parent
    if (root / "course").is_dir() and os.access(root, os.W_OK):
        return root / FILE_NAME
    return Path.home() / ".deep-practice" / "progress.json"


def _read(path: Path) -> tuple[dict[str, Any], list[Any]]:
    """The file's contents and its list of events, every entry kept as it is (``{}`` and ``[]`` when there is no
    file). A file that cannot be read as a history is moved aside, never deleted, and a new one started."""
    if not path.exists():
        return {}, []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("attempts"), list):
            raise ValueError('expected {"version": ..., "attempts": [...]}')
        return data, data["attempts"]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        stamp = int(time.time())
        backup = path.with_name(f"{path.name}.unreadable-{stamp}")
        n = 1
        while backup.exists():  # never overwrite an earlier copy
            backup, n = path.with_name(f"{path.name}.unreadable-{stamp}-{n}"), n + 1
        try:
            path.replace(backup)
        except OSError:
            pass
        warnings.warn(f"your progress file {path} could not be read ({exc}). Nothing is lost: it was kept as "
                      f"{backup}, and a new one started. To get your history back, repair that copy (it is JSON: "
                      '{"version": 2, "attempts": [...]}) and rename it to ' f"{path.name}.", stacklevel=3)
        return {}, []


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _understood(event: Any) -> bool:
    """Whether ``event`` is an entry this code can read: the right kind of value in every field it uses."""
    if not isinstance(event, dict) or not isinstance(event.get("check"), str):
        return False
    kind = _kind(event)
    if kind == DRILL:
        return (isinstance(event.get("drill"), str) and isinstance(event.get("chapter"), int)
                and _number(event.get("seconds")) and isinstance(event.get("correct"), bool))
    if kind == REFLECTION:
        return isinstance(event.get("chapter"), int) and all(
            isinstance(event.get(k, ""), str) for k in ("hard", "caught", "practise"))
    exercises, failed = event.get("exercises") or {}, event.get("failed") or []
    return (isinstance(exercises, dict) and all(isinstance(k, str) for k in exercises)
            and isinstance(failed, list) and all(isinstance(f, str) for f in failed))


def load_events(path: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded event (check runs, drill answers, reflections), oldest first. An unreadable file is set
    aside, never fatal; an entry this code cannot read (edited by hand, or written by a newer release) is left
    out of the view and kept in the file."""
    path = path or progress_file()
    _, entries = _read(path)
    events = [e for e in entries if _understood(e)]
    if len(events) < len(entries):
        skipped = len(entries) - len(events)
        warnings.warn(f"{skipped} entr{'ies' if skipped != 1 else 'y'} of your progress file {path} could not be "
                      f"read and {'are' if skipped != 1 else 'is'} left out of the progress view; "
                      f"{'they are' if skipped != 1 else 'it is'} kept in the file, unchanged.", stacklevel=2)
    return events


def _kind(event: dict[str, Any]) -> str:
    return str(event.get("kind") or "check")


def load_history(path: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded run of a check, oldest first (``load_events`` also has drills and reflections)."""
    return [a for a in load_events(path) if _kind(a) == "check"]


def _version(data: dict[str, Any]) -> int:
    version = data.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def _append(event: dict[str, Any], path: Path | None) -> None:
    """Add ``event`` to the history, written atomically (a temporary file, then a rename). Never raises: a check
    or a drill must work even where the history cannot be written."""
    path = path or progress_file()
    try:
        data, entries = _read(path)  # every entry kept, even those this code cannot read
        entries.append({**event, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({**data, "version": max(VERSION, _version(data)), "attempts": entries}, f, indent=0)
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"could not record this in {path}: {exc}", stacklevel=3)


def record_attempt(check: str, module: str, results: dict[str, bool], failed: list[str],
                   path: Path | None = None, code: dict[str, str] | None = None, untouched: bool = False) -> None:
    """Record one run of ``check``; ``results`` maps each exercise to whether all its properties held,
    ``code`` each exercise to a digest of its code then, and ``untouched`` says the code was still the stub."""
    _append({"check": check, "module": module, "passed": all(results.values()), "exercises": results,
             "failed": failed[:20], "code": dict(code or {}), "untouched": untouched}, path)


def record_drill(drill: str, chapter: int, seed: int, correct: bool, seconds: float, path: Path | None = None) -> None:
    """Record one answered drill item: right or wrong, and the seconds from when it was shown to the answer."""
    _append({"kind": DRILL, "check": f"{DRILL}:{drill}", "drill": drill, "chapter": int(chapter), "seed": int(seed),
             "correct": bool(correct), "seconds": round(float(seconds), 2)}, path)


def reflect(chapter: int, hard: str = "", caught: str = "", practise: str = "", path: Path | None = None) -> None:
    """Save your reflection on ``chapter`` with your progress: what was ``hard``, which mistake a check ``caught``,
    and what you will ``practise``. The progress view shows your notes on what to practise in its plan.

    Nothing is saved while every answer is empty, nor when the same answers are already saved for the chapter.
    """
    try:
        chapter = int(chapter)
    except (TypeError, ValueError):
        print(f"Nothing saved: chapter is the chapter's number (0 to 5, say), not {chapter!r}. "
              "Write it as in reflect(chapter=3, ...) and run the cell again.")
        return
    notes = {"hard": str(hard).strip(), "caught": str(caught).strip(), "practise": str(practise).strip()}
    if not any(notes.values()):
        print(f"Nothing saved yet: write your answers between the quotes, then run this cell again "
              f"(reflect(chapter={chapter}, hard=\"...\", caught=\"...\", practise=\"...\")).")
        return
    latest = latest_reflections(load_events(path)).get(int(chapter))
    if latest and all(latest.get(k, "") == v for k, v in notes.items()):
        print(f"Your reflection on chapter {chapter} is already saved.")
        return
    _append({"kind": REFLECTION, "check": f"{REFLECTION}:{int(chapter)}", "chapter": int(chapter), **notes}, path)
    print(f"Saved your reflection on chapter {chapter} with your progress ({path or progress_file()}).")


def latest_reflections(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Chapter -> your latest reflection on it."""
    return {int(e["chapter"]): e for e in events if _kind(e) == REFLECTION and isinstance(e.get("chapter"), int)}


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


def counted_runs(history: list[dict[str, Any]]) -> list[tuple[dict[str, Any], bool]]:
    """Every run of a check in ``history``, each with whether it counts as an attempt: not on the untouched stub
    (Run All, say), and on code that changed since the check's previous run (the same code run again is not)."""
    last_code: dict[str, object] = {}
    runs = []
    for run in (a for a in history if _kind(a) == "check"):
        if run.get("untouched"):
            runs.append((run, False))
            continue
        code = run.get("code") or None
        new = code is None or code != last_code.get(run["check"])
        last_code[run["check"]] = code
        runs.append((run, new))
    return runs


def summarize(checks: list[tuple[str, list[str]]], history: list[dict[str, Any]] | None = None) -> list[CheckProgress]:
    """One ``CheckProgress`` per visible check (``checks``: each check's name and the exercises it covers),
    in the course's order: a check sits in the chapter, and at the place, of the first exercise it covers."""
    history = load_history() if history is None else history
    order = {e.name: (e.chapter, i) for i, e in enumerate(catalogue())}
    rows = {}
    for name, exercises in sorted(checks, key=lambda c: min((order.get(e, (99, 0)) for e in c[1]), default=(99, 0))):
        chapter = min((order[e][0] for e in exercises if e in order), default=0)
        rows[name] = CheckProgress(name, chapter, exercises)
    for run, new in counted_runs(history):
        row = rows.get(run["check"])
        if row is None or run.get("untouched"):
            continue
        row.attempts += new
        if run.get("passed") and row.attempts_to_pass is None:
            row.attempts_to_pass = row.attempts
        row.passing_now = bool(run.get("passed"))
        for exercise, ok in (run.get("exercises") or {}).items():
            row.exercise_passed[exercise] = bool(ok)
        row.last_failed = list(run.get("failed") or [])
    return list(rows.values())


@dataclass
class DrillProgress:
    """What the history says about one drill: fluency is right answers in a row, each within ``FLUENT_SECONDS``."""

    drill: str
    chapter: int
    answers: int = 0
    right: int = 0
    streak: int = 0  # right answers in a row, each within FLUENT_SECONDS, ending with the latest answer
    best_streak: int = 0
    seconds: list[float] = field(default_factory=list)  # per answer, oldest first

    @property
    def mastered(self) -> bool:
        return self.streak >= FLUENT_STREAK

    @property
    def median_seconds(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


def fluent_answer(event: dict[str, Any]) -> bool:
    """Whether a drill answer counts towards fluency: right, and within ``FLUENT_SECONDS`` of being shown."""
    return bool(event.get("correct")) and float(event.get("seconds", 1e9)) <= FLUENT_SECONDS


def drill_progress(drills: list[tuple[str, int]], events: list[dict[str, Any]] | None = None) -> list[DrillProgress]:
    """One ``DrillProgress`` per drill (``drills``: each drill's name and chapter), in that order; answers to a
    drill the list does not hold (from another release) are left out."""
    events = load_events() if events is None else events
    rows = {name: DrillProgress(name, chapter) for name, chapter in drills}
    for event in events:
        row = rows.get(str(event.get("drill"))) if _kind(event) == DRILL else None
        if row is None:
            continue
        row.answers += 1
        row.right += bool(event.get("correct"))
        row.streak = row.streak + 1 if fluent_answer(event) else 0
        row.best_streak = max(row.best_streak, row.streak)
        row.seconds.append(float(event.get("seconds", 0.0)))
    return list(rows.values())


def _sentence(text: str) -> str:
    """``text`` ending with exactly one full stop (diagnoses end with their own)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def next_step(rows: list[CheckProgress]) -> str:
    """What to practise next: finish what you started, then the next check, then deliberate repetition."""
    started = [r for r in rows if r.attempts and not r.passing_now]
    if started:
        r = started[0]
        hint = f" Last time: {_sentence(r.last_failed[0])}" if r.last_failed else ""
        tries = _plural(r.attempts, "attempt")
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


def practice_plan(rows: list[CheckProgress], drill_rows: list[DrillProgress], events: list[dict[str, Any]],
                  titles: dict[int, str] | None = None, limit: int = 3) -> list[str]:
    """The next practice plan, from what the history holds: the exercises that took the most attempts (to re-do
    from scratch), the drills not yet fluent (those you started first), the chapters not started, and your own
    notes on what to practise."""
    titles = chapter_titles() if titles is None else titles
    plan = []
    redo = sorted((r for r in rows if r.attempts >= 2), key=lambda r: -r.attempts)[:limit]
    if redo:
        plan.append("Re-do from scratch, without looking: " + "; ".join(
            f"{', '.join(r.exercises)} ({_plural(r.attempts, 'attempt')}, check(\"{r.check}\"))" for r in redo) + ".")
    reached = {r.chapter for r in rows if r.attempts} | {d.chapter for d in drill_rows if d.answers}
    unfluent = sorted((d for d in drill_rows if not d.mastered and (d.answers or d.chapter in reached)),
                      key=lambda d: (not d.answers, d.chapter))[:limit]
    if unfluent:
        plan.append("Drills to make fluent (" + f"{FLUENT_STREAK} right in a row, each within {FLUENT_SECONDS:.0f} s): "
                    + "; ".join(f"drill(\"{d.drill}\") (chapter {d.chapter}, "
                                + (f"{d.streak} in a row now)" if d.answers else "not tried yet)") for d in unfluent)
                    + ".")
    started = reached | {r.chapter for r in rows if r.passing_now}
    waiting = [c for c in sorted({r.chapter for r in rows} | {d.chapter for d in drill_rows}) if c not in started]
    if waiting:
        plan.append("Chapters not started: " + ", ".join(f"{c} — {titles.get(c, '')}".rstrip(" —") for c in waiting)
                    + ".")
    notes = [(c, r["practise"]) for c, r in sorted(latest_reflections(events).items()) if r.get("practise")]
    if notes:
        plan.append("Your own notes: " + "; ".join(f"chapter {c}: {_sentence(text)[:-1]}" for c, text in notes) + ".")
    return plan or ["Nothing left to propose: every check passes and every drill is mastered. Teach it to someone."]


def progress_report(checks: list[tuple[str, list[str]]], history: list[dict[str, Any]] | None = None,
                    drills: Sequence[tuple[str, int]] = ()) -> str:
    """The progress view as text: per chapter and check, status and attempts; the drills' fluency; the next
    step; and the next practice plan. ``history`` is the list of events (``load_events``), ``drills`` each
    drill's name and chapter (``exercises.kit.drills.drill_catalogue()``; this module records the drills' answers,
    so it does not import them)."""
    events = load_events() if history is None else history
    rows = summarize(checks, events)
    drill_rows = drill_progress(list(drills), events)
    titles = chapter_titles()
    lines = []
    done = sum(r.passing_now for r in rows)
    lines.append(f"Course progress: {done} of {len(rows)} checks passing")
    by_chapter: dict[int, list[DrillProgress]] = {}
    for d in drill_rows:
        by_chapter.setdefault(d.chapter, []).append(d)
    last_of = {r.chapter: r for r in rows}
    chapter = None
    for r in rows:
        if r.chapter != chapter:
            chapter = r.chapter
            lines.append(f"\nChapter {chapter} — {titles.get(chapter, '')}")
        status = "✓ passing" if r.passing_now else ("✗ not yet" if r.attempts else "· not started")
        tries = _plural(r.attempts, "attempt") if r.attempts else ""
        first = f", first passed on attempt {r.attempts_to_pass}" if r.attempts_to_pass else ""
        lines.append(f"  {status:<14} check(\"{r.check}\"): {', '.join(r.exercises)}  {tries}{first}".rstrip())
        for exercise in r.exercises:
            if r.attempts and not r.passing_now and exercise in r.exercise_passed:
                lines.append(f"      {'✓' if r.exercise_passed[exercise] else '✗'} {exercise}")
        if last_of[r.chapter] is r:
            lines.extend(_drill_lines(by_chapter.pop(chapter, [])))
    for c in sorted(by_chapter):  # drills of chapters without checks
        lines.append(f"\nChapter {c} — {titles.get(c, '')}")
        lines.extend(_drill_lines(by_chapter[c]))
    lines.append("\n" + next_step(rows))
    lines.append("\nNext practice plan:")
    lines.extend(f"  {i}. {item}" for i, item in enumerate(practice_plan(rows, drill_rows, events, titles), 1))
    return "\n".join(lines)


def _drill_lines(rows: list[DrillProgress]) -> list[str]:
    lines = []
    for d in rows:
        if d.mastered:
            status = "★ mastered"
        elif d.answers:
            status = "◐ practising"
        else:
            status = "· not tried"
        detail = (f"{d.right} of {_plural(d.answers, 'answer')} right, {d.streak} in a row, median "
                  f"{d.median_seconds:.0f} s" if d.answers else "")
        lines.append(f"  {status:<14} drill(\"{d.drill}\")  {detail}".rstrip())
    return lines


def _when(event: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(event.get("time")))
    except ValueError:
        return None


Series = list[tuple[datetime, int]]


def history_series(events: list[dict[str, Any]]) -> tuple[Series, dict[str, Series]]:
    """What ``--plot`` draws: the running count of attempts over time, and for each drill the fluency streak
    (right answers in a row within ``FLUENT_SECONDS``) after each of its answers."""
    attempts, count = [], 0
    for run, new in counted_runs(events):
        when = _when(run)
        if new and when is not None:
            count += 1
            attempts.append((when, count))
    streaks: dict[str, Series] = {}
    for event in events:
        when = _when(event)
        if _kind(event) != DRILL or when is None:
            continue
        series = streaks.setdefault(str(event.get("drill")), [])
        series.append((when, series[-1][1] + 1 if series and fluent_answer(event) else int(fluent_answer(event))))
    return attempts, streaks


def plot_history(events: list[dict[str, Any]] | None = None):
    """The figure of your history (``events``, default: the progress file): attempts and drill fluency over time."""
    from exercises.kit.figures import plot_practice_history

    events = load_events() if events is None else events
    return plot_practice_history(*history_series(events), mastered_at=FLUENT_STREAK, fluent_seconds=FLUENT_SECONDS)
