"""Keep every chapter notebook's Colab badge and set-up cell in step with ``exercises.kit.colab``.

Each notebook starts with two generated cells, found by their tags: a markdown cell with the
"Open in Colab" badge (``colab-badge``) and the set-up code cell (``course-setup``). ``sync``
rewrites them from the single source; ``drift`` lists notebooks that are out of date.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from exercises.kit.colab import REPOSITORY, colab_badge, setup_cell
from grading import PROJECT_ROOT

BADGE_TAG, SETUP_TAG = "colab-badge", "course-setup"


def _tagged(nb: nbformat.NotebookNode, tag: str) -> int | None:
    for i, cell in enumerate(nb.cells):
        if tag in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def synced(nb: nbformat.NotebookNode, name: str, source: str = REPOSITORY) -> nbformat.NotebookNode:
    """``nb`` with its badge and set-up cells first, as generated now for a course fetched from ``source``."""
    nb = nbformat.from_dict(nb)
    badge = nbformat.v4.new_markdown_cell(colab_badge(name, source), metadata={"tags": [BADGE_TAG]})
    setup = nbformat.v4.new_code_cell(setup_cell(source), metadata={"tags": [SETUP_TAG]})
    for tag, cell in ((BADGE_TAG, badge), (SETUP_TAG, setup)):
        index = _tagged(nb, tag)
        if index is not None:
            cell["id"] = nb.cells[index].get("id", cell["id"])  # the same cell, regenerated: keep its id
            del nb.cells[index]
    nb.cells[:0] = [badge, setup]
    return nb


def _notebooks(course_dir: Path) -> list[Path]:
    return sorted(course_dir.glob("[0-9][0-9]_*.ipynb"))


def _normal(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, c.get("metadata", {}).get("tags", [])) for c in nb.cells]


def drift(course_dir: Path = PROJECT_ROOT / "course") -> list[str]:
    """Names of notebooks whose generated cells are missing or out of date."""
    stale = []
    for path in _notebooks(course_dir):
        nb = nbformat.read(path, as_version=4)
        if _normal(nb) != _normal(synced(nb, path.name)):
            stale.append(path.name)
    return stale


def sync(course_dir: Path = PROJECT_ROOT / "course", source: str = REPOSITORY) -> list[str]:
    """Rewrite the generated cells where needed (for a course fetched from ``source``); return the
    notebooks written."""
    written = []
    for path in _notebooks(course_dir):
        nb = nbformat.read(path, as_version=4)
        new = synced(nb, path.name, source)
        if _normal(nb) != _normal(new):
            nbformat.write(new, path)
            written.append(path.name)
    return written
