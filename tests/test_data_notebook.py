"""Chapter 1's notebook as committed: its set-up cell, a check after each exercise, the learner's own
functions used afterwards, and a fast mode that needs no dataset but the embedded one.

(`make test` and `python -m grading course` execute it against the reference.)
"""

from __future__ import annotations

import re

import nbformat

from grading import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "course" / "01_data.ipynb"
EXERCISES = ("stratified_split", "channel_stats", "normalize", "random_crop", "random_hflip", "one_hot",
             "minibatch_indices")


GENERATED = {"colab-badge", "course-setup"}  # the cells every chapter starts with (`python -m grading notebooks`)


def _cells() -> list:
    """The notebook's own cells, after the generated Colab badge and set-up cell."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    return [c for c in nb.cells if not GENERATED & set(c.get("metadata", {}).get("tags", []))]


def test_title_then_autoreload_and_imports() -> None:
    cells = _cells()
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# Chapter 1")
    assert cells[1].cell_type == "code"
    assert cells[1].source.splitlines()[:2] == ["%load_ext autoreload", "%autoreload 2"]
    assert "from exercises.checks import check" in cells[1].source


def test_each_exercise_is_explained_checked_and_then_used() -> None:
    cells = _cells()
    sources = [c.source for c in cells]
    for name in EXERCISES:
        check_at = next(i for i, s in enumerate(sources) if s.strip() == f'check("{name}")')
        assert cells[check_at - 1].cell_type == "markdown" and "**Now:**" in sources[check_at - 1], name
        used_at = next(i for i, s in enumerate(sources) if re.search(rf"from exercises\.data import .*\b{name}\b", s))
        assert used_at > check_at, f"{name} is used before its check"


def test_the_lessons_the_issue_asks_for_are_there() -> None:
    text = "\n".join(c.source for c in _cells())
    for words in ("Look at the data first", "Class balance", "histogram", "leakage", "stratified",
                  "E[x^2] - E[x]^2", "Normalization", "random crop", "A mirrored digit", "Mini-batches",
                  "A Python loop versus a vectorized batch operation", "COURSE_DATA_MIRROR", "on_colab()"):
        assert words.lower() in text.lower(), words


def test_fast_mode_uses_only_the_embedded_dataset() -> None:
    setup = "\n".join(c.source for c in _cells() if "load_mnist(" in c.source)
    assert 'data_sets = {"embedded MNIST": load_embedded_mnist()}' in setup
    assert "if not FAST:" in setup
