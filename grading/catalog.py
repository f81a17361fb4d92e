"""Which modules learners edit, and which chapter (notebook) teaches each exercise.

Both are read from the reference solutions: a module of ``solutions/`` with solution regions is an
exercise module, and the ``Explained in course/<notebook>.ipynb`` line of an exercise's docstring
names its chapter. A Gradescope bundle carries no solutions, so ``write_manifest`` records both in
``catalog.json`` beside this file, and the functions here fall back to it.
"""

from __future__ import annotations

import ast
import json
import re
from functools import lru_cache
from pathlib import Path

from grading import PROJECT_ROOT

MANIFEST = Path(__file__).with_name("catalog.json")
_EXPLAINED = re.compile(r"Explained in course/([^\s/]+?)\.ipynb")


def _from_solutions(solutions_dir: Path) -> dict[str, dict[str, str]] | None:
    if not solutions_dir.is_dir():
        return None
    from grading.stubs import solution_modules

    modules = solution_modules(solutions_dir)
    chapters: dict[str, str] = {}
    for source in modules.values():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            docs = [ast.get_docstring(node) or ""]
            if isinstance(node, ast.ClassDef):
                docs += [ast.get_docstring(n) or "" for n in node.body
                         if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            for doc in docs:
                match = _EXPLAINED.search(doc)
                if match:
                    chapters[node.name] = match.group(1)
                    break
    return {"modules": {name: "" for name in sorted(modules)}, "chapters": chapters}


@lru_cache(maxsize=1)
def _catalog() -> dict[str, dict[str, str]]:
    found = _from_solutions(PROJECT_ROOT / "solutions")
    if found is not None:
        return found
    if MANIFEST.exists():
        return json.loads(MANIFEST.read_text(encoding="utf-8"))
    return {"modules": {}, "chapters": {}}


def exercise_modules() -> set[str]:
    """File names (``layers.py``, ...) of the modules learners edit in ``exercises/``."""
    return set(_catalog()["modules"])


def exercise_chapters() -> dict[str, str]:
    """Exercise name (``relu_forward``, ``Value``) -> the notebook stem that teaches it."""
    return dict(_catalog()["chapters"])


def chapter_of(exercise: str) -> str | None:
    return _catalog()["chapters"].get(exercise)


def write_manifest(path: Path = MANIFEST) -> Path:
    """Record the catalog for a copy of the grader that ships without ``solutions/``."""
    path.write_text(json.dumps(_catalog(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path
