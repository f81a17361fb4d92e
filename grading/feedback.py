"""What a learner reads about their grade: Markdown, HTML and Gradescope's ``results.json`` from one record.

A record (``grading.records.LearnerRecord``, saved as ``results/<learner>.json``) lists every hidden
test: its exercise, the property it checks (a title such as "equals max(0, x) on a 2×3 float32
input"), its points, and for a failure the diagnosis: which property failed and the likely mistake.
Diagnoses are written by the course's judges and never quote hidden inputs or expected values. Text
that comes from the learner's own code (an exception's message) goes through ``redact`` first, so
that code cannot smuggle the hidden inputs it was given into its own feedback; what it printed is
never shown.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

from grading.records import LearnerRecord, TestResult

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RUN = re.compile(rf"{_NUMBER}(?:[\s,;\[\]()]+{_NUMBER}){{3,}}")


def redact(text: str, limit: int = 600) -> str:
    """Learner-originated text made safe to show: runs of four or more numbers (a printed tensor,
    a list of values) become ``[…]``, and the whole is cut to ``limit`` characters."""
    text = _NUMBER_RUN.sub("[…]", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(x: float) -> str:
    return f"{x:g}"


def _by_exercise(record: LearnerRecord) -> dict[str, list[TestResult]]:
    """The record's tests grouped by exercise, in the order of its exercises (the course's order)."""
    grouped: dict[str, list[TestResult]] = {name: [] for name in record.exercises}
    for test in record.tests:
        grouped.setdefault(test.exercise, []).append(test)
    return {name: tests for name, tests in grouped.items() if tests}


_NOT_IMPLEMENTED = re.compile(r"^(?P<what>.+?) is not implemented yet\b")


def one_reason(tests: list[TestResult]) -> str | None:
    """One line for an exercise none of whose properties passed, all for one reason (not implemented
    yet, a missing module, nothing submitted); ``None`` when its failures need a line each."""
    if len(tests) < 2 or any(t.passed for t in tests):
        return None
    points = _num(sum(t.max_points for t in tests))
    messages = list(dict.fromkeys(t.message.strip() for t in tests))
    if len(messages) == 1:
        return f"all {len(tests)} properties ({points} pt): {messages[0]}"
    names = []
    for message in messages:
        match = _NOT_IMPLEMENTED.match(message)
        if match is None:
            return None
        names.append(match["what"])
    return (f"not implemented yet: {', '.join(dict.fromkeys(names))} still raise NotImplementedError "
            f"(all {len(tests)} properties, {points} pt)")


def _notes(record: LearnerRecord) -> list[str]:
    """The notes to show above the exercises (those the reason nothing could be graded repeats are left out)."""
    return [note for note in record.notes if note not in record.ungraded]


INTRO = ("Each line is one property of an exercise, checked on inputs you have not seen. "
         "For each one that failed: what went wrong, and the likely mistake.")


def markdown(record: LearnerRecord) -> str:
    """The learner's feedback as Markdown: each exercise, each property, each diagnosis."""
    lines = [f"# Feedback for {record.learner}", "",
             f"**Score: {_num(record.total)} / {_num(record.max)}**", "", INTRO, ""]
    for note in _notes(record):
        lines.append(f"> Note: {note}")
    if _notes(record):
        lines.append("")
    if record.ungraded:
        lines += [f"**Nothing could be graded**: {record.ungraded}. Every exercise scores 0:", ""]
        lines += [f"- {name}: {_num(score.score)} / {_num(score.max)}" for name, score in record.exercises.items()]
        return "\n".join([*lines, ""])
    for exercise, tests in _by_exercise(record).items():
        score = record.exercises[exercise]
        lines.append(f"## {exercise}: {_num(score.score)} / {_num(score.max)}")
        reason = one_reason(tests)
        if reason is not None:
            lines.append(f"- ✗ {reason}")
        for t in tests if reason is None else []:
            mark = "✓" if t.passed else "✗"
            lines.append(f"- {mark} {t.title} ({_num(t.max_points)} pt)")
            if not t.passed:
                lines.extend(f"  {line}" for line in t.message.splitlines())
        lines.append("")
    return "\n".join(lines)


_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 54rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 1.6rem; border-bottom: 1px solid #ddd; }
.score { font-size: 1.2rem; font-weight: 600; }
.note { background: #fff6d6; border-left: 4px solid #e0b400; padding: .4rem .8rem; margin: .4rem 0; }
ul { list-style: none; padding-left: 0; } li { margin: .35rem 0; }
.pass::before { content: "✓ "; color: #1a7f37; font-weight: 700; }
.fail::before { content: "✗ "; color: #cf222e; font-weight: 700; }
.why { white-space: pre-wrap; margin: .2rem 0 0 1.4rem; color: #444; }
.pts { color: #777; font-size: .9em; }
"""


def html(record: LearnerRecord) -> str:
    """The same feedback as a standalone HTML page (no scripts, no external resources)."""
    e = html_lib.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Feedback for {e(record.learner)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>Feedback for {e(record.learner)}</h1>",
             f'<p class="score">Score: {_num(record.total)} / {_num(record.max)}</p>',
             f"<p>{e(INTRO)}</p>"]
    parts += [f'<p class="note">Note: {e(note)}</p>' for note in _notes(record)]
    if record.ungraded:
        parts.append(f"<p><strong>Nothing could be graded</strong>: {e(record.ungraded)}. Every exercise scores 0:</p>"
                     "<ul>")
        parts += [f"<li>{e(name)}: {_num(score.score)} / {_num(score.max)}</li>"
                  for name, score in record.exercises.items()]
        parts.append("</ul>")
    for exercise, tests in ({} if record.ungraded else _by_exercise(record)).items():
        score = record.exercises[exercise]
        parts.append(f"<h2>{e(exercise)}: {_num(score.score)} / {_num(score.max)}</h2><ul>")
        reason = one_reason(tests)
        if reason is not None:
            parts.append(f'<li class="fail">{e(reason)}</li>')
        for t in tests if reason is None else []:
            status = "pass" if t.passed else "fail"
            why = "" if t.passed else f'<div class="why">{e(t.message)}</div>'
            parts.append(f'<li class="{status}">{e(t.title)} '
                         f'<span class="pts">({_num(t.max_points)} pt)</span>{why}</li>')
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def summary_text(record: LearnerRecord) -> str:
    """A short plain-text summary: the score, the notes, and each exercise's points."""
    lines = [f"Score: {_num(record.total)} / {_num(record.max)}"]
    lines += [f"Note: {note}" for note in record.notes]
    for exercise, score in record.exercises.items():
        lines.append(f"{exercise}: {_num(score.score)} / {_num(score.max)}")
    return "\n".join(lines)


def gradescope_results(record: LearnerRecord) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one learner's record: a test per hidden test, the diagnosis as its output."""
    tests = [{"name": f"{t.exercise}: {t.title}", "score": t.points, "max_score": t.max_points,
              "status": "passed" if t.passed else "failed", "output": "" if t.passed else t.message,
              "visibility": "visible"} for t in record.tests]
    return {"score": record.total, "output": INTRO + "\n\n" + summary_text(record), "visibility": "visible",
            "stdout_visibility": "hidden", "tests": tests}
