"""Which modules are exercises, and which chapter teaches each exercise, read from the course itself.

This is the single source of both facts; the progress view, the update command, the release builder
and the grader all read it:

* an **exercise module** is a top-level module of ``exercises/`` (not a package such as ``checks``
  or ``kit``, not ``__init__`` or ``__main__``) whose definitions say where they are explained;
* an **exercise** is a top-level function or class of such a module whose docstring (or, for a class,
  one of its methods' docstrings) holds an ``Explained in course/NN_name.ipynb, section "..."`` line;
  ``NN_name`` is its chapter's notebook and ``NN`` the chapter's number.

The course's order (chapter, then the position of the section in the chapter's notebook, then the
order of definition) is the order of every list here. The stubs carry the same docstrings as the
reference solutions they are generated from, so a learner's copy, the learner release and the
instructor's checkout all give the same catalogue.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
STUB_MARK = "is not implemented yet"  # in every stub's message: "relu_forward is not implemented yet: see ..."
STUB_DIGESTS = "stub_digests.json"  # beside this file: each exercise's code as generated, before any edit
_EXPLAINED = re.compile(r'Explained in course/(?P<notebook>\d\d_[^\s/]+?)\.ipynb(?:, section "(?P<section>[^"]+)")?')


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: ``relu_forward`` of module ``layers``, taught in ``00_welcome``."""

    name: str
    module: str
    notebook: str
    section: str

    @property
    def chapter(self) -> int:
        return int(self.notebook[:2])


def _explained(node: ast.stmt) -> re.Match[str] | None:
    docs = [ast.get_docstring(node) or ""]  # type: ignore[arg-type]
    if isinstance(node, ast.ClassDef):
        docs += [ast.get_docstring(n) or "" for n in node.body
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    for doc in docs:
        match = _EXPLAINED.search(" ".join(doc.split()))
        if match:
            return match
    return None


def _exercise_nodes(source: str) -> list[tuple[ast.stmt, re.Match[str]]]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            match = _explained(node)
            if match:
                found.append((node, match))
    return found


def module_exercises(source: str, module: str) -> list[Exercise]:
    """The exercises defined in one module's ``source``, in the order of definition."""
    return [Exercise(node.name, module, m["notebook"], m["section"] or "")  # type: ignore[attr-defined]
            for node, m in _exercise_nodes(source)]


def code_digests(source: str) -> dict[str, str]:
    """``{exercise: digest of its code}`` for a module's ``source``: the syntax tree, so comments, blank lines
    and formatting are not code. (A module that does not parse has no digests.)"""
    return {node.name: hashlib.sha256(ast.dump(node).encode()).hexdigest()[:16]  # type: ignore[attr-defined]
            for node, _ in _exercise_nodes(source)}


def untouched(exercise: str, digest: str | None, package_dir: Path = PACKAGE_DIR) -> bool:
    """Whether ``digest`` (from ``code_digests``) is the exercise's code exactly as the course generated it."""
    try:
        stubs = json.loads((Path(package_dir) / "kit" / STUB_DIGESTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return digest is not None and stubs.get(exercise) == digest


def _section_positions(course_dir: Path, notebook: str) -> dict[str, int]:
    """Heading text -> its position in the notebook (empty when the notebook is not there)."""
    try:
        cells = json.loads((course_dir / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return {}
    positions: dict[str, int] = {}
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        for line in ("".join(source) if isinstance(source, list) else source).splitlines():
            if line.startswith("#"):
                positions.setdefault(line.lstrip("#").strip(), len(positions))
    return positions


@lru_cache(maxsize=8)
def _catalogue(package_dir: Path) -> tuple[Exercise, ...]:
    found: list[tuple[Exercise, int]] = []
    for path in sorted(package_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        exercises = module_exercises(path.read_text(encoding="utf-8", errors="replace"), path.stem)
        found += [(e, i) for i, e in enumerate(exercises)]
    course_dir = package_dir.parent / "course"
    positions = {nb: _section_positions(course_dir, nb) for nb in {e.notebook for e, _ in found}}
    module_rank = {m: r for r, m in enumerate(dict.fromkeys(e.module for e, _ in found))}

    def key(item: tuple[Exercise, int]) -> tuple[int, int, int, int]:
        e, index = item
        return (e.chapter, positions[e.notebook].get(e.section, 1 << 30), module_rank[e.module], index)

    return tuple(e for e, _ in sorted(found, key=key))


def catalogue(package_dir: Path = PACKAGE_DIR) -> list[Exercise]:
    """Every exercise of the ``exercises`` package at ``package_dir``, in the course's order."""
    return list(_catalogue(Path(package_dir).resolve()))


def exercise_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Names of the exercise modules (``data``, ``layers``, ...), in the order the course first uses them."""
    return list(dict.fromkeys(e.module for e in catalogue(package_dir)))


def find(exercise: str, package_dir: Path = PACKAGE_DIR) -> Exercise | None:
    """The catalogue entry of ``exercise`` (``relu_forward``, ``Value``), or ``None``."""
    return next((e for e in catalogue(package_dir) if e.name == exercise), None)


def chapter_titles(package_dir: Path = PACKAGE_DIR) -> dict[int, str]:
    """Chapter number -> its title, from the first heading of each chapter notebook
    (``# Chapter 1 — Data preparation`` gives ``Data preparation``)."""
    titles = {}
    for path in sorted((Path(package_dir).parent / "course").glob("[0-9][0-9]_*.ipynb")):
        headings = list(_section_positions(path.parent, path.stem))
        title = headings[0] if headings else path.stem[3:].replace("_", " ")
        titles[int(path.stem[:2])] = title.split("—", 1)[-1].strip()
    return titles
