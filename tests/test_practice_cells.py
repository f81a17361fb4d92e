"""Every chapter ends with its practice: drills (chapters 1-5), a reflection and the plan; chapter 0 with the
reading list that sources its claims about deliberate practice and about the people behind the course's models."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from exercises.kit.drills import DRILLS
from exercises.kit.progress import load_events
from grading import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "course").glob("[0-9][0-9]_*.ipynb"))


def _cells(path: Path) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"])) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]


def _practice(path: Path) -> list[tuple[str, str]]:
    """The chapter's closing cells: from its drills (or its reflection) to the end."""
    cells = _cells(path)
    start = next(i for i, (kind, text) in enumerate(cells)
                 if kind == "markdown" and text.startswith(("## Drills", "## Reflect")))
    return cells[start:]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_ends_with_its_drills_a_reflection_and_the_plan(path: Path) -> None:
    chapter = int(path.stem[:2])
    practice = _practice(path)
    code = [text for kind, text in practice if kind == "code"]
    reflection = f'reflect(chapter={chapter}, hard="", caught="", practise="")'
    assert any(reflection in c and "show_progress()" in c for c in code), path.name
    headings = [text.splitlines()[0] for kind, text in practice if kind == "markdown"]
    expected = ["## Drills: practise until fluent", "## Reflect, and plan your practice"]
    if chapter == 0:
        expected.append("## Reading list: deliberate practice, and the people behind the course's models")
        assert practice[-1][1].startswith("## Reading list")  # the reading list closes chapter 0
    assert headings == expected
    shown = re.findall(r'drill\("(\w+)"\)', code[0])
    assert shown and all(DRILLS[name].chapter == chapter for name in shown), shown
    assert "d.answer(None)" in code[1]
    listed = set(re.findall(r'drill\("(\w+)"\)', practice[0][1]))
    assert listed == {d.name for d in DRILLS.values() if d.chapter == chapter}  # the text names them all


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_practice_cells_run_headless_without_recording_anything(path: Path, tmp_path, monkeypatch) -> None:
    """What CI's headless run (no stdin, no widgets) does with them: nothing fails, nothing fake is saved."""
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        for kind, text in _practice(path):
            if kind == "code":
                exec(compile(text, f"{path.name} practice cell", "exec"), namespace)
    assert load_events() == []
    printed = out.getvalue()
    assert "Nothing saved yet" in printed and "Next practice plan:" in printed
    assert "No answer yet" in printed and namespace["d"].result is None


def test_chapter_0_says_the_course_is_built_on_deliberate_practice() -> None:
    text = "\n".join(t for _, t in _cells(PROJECT_ROOT / "course" / "00_welcome.ipynb"))
    assert "This course is built on **deliberate practice**" in text


def test_every_claim_of_the_reading_list_carries_a_source() -> None:
    reading = _practice(PROJECT_ROOT / "course" / "00_welcome.ipynb")[-1][1]
    items = re.split(r"\n\* ", reading)[1:]
    assert len(items) >= 10
    sourced = re.compile(r"\]\(https?://")  # a link to the paper, the book's quotation, the page or the repository
    for item in items:
        assert sourced.search(item), f"no source for: {item[:120]}"
    flat = " ".join(reading.split())
    for needed in ("*Psychological Review* 100(3), 363–406", "Gladwell (2008), *Outliers", "Pool (2016), *Peak",
                   "doi:10.1177/0956797614535810", "doi:10.1037/0033-295X.100.3.363", "PhD is from Stanford",
                   "purl.stanford.edu/wf528qt3314", "His adviser was Fei-Fei Li",
                   "did not create TensorFlow", "first taught in the winter quarter of 2015",
                   "github.com/karpathy/micrograd", "github.com/karpathy/nn-zero-to-hero"):
        assert needed in flat, needed
