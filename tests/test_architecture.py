"""The import graph of the project's own code: no cycles, and every import in the direction DESIGN.md gives.

The graph is read statically (``ast``) from every module of ``exercises``, ``solutions`` and ``grading``
and from the code cells of the chapter notebooks, imports inside functions included:

* ``course`` notebooks import ``exercises`` only;
* ``exercises`` never imports ``solutions`` or ``grading`` (a learner release holds neither);
  inside it, ``exercises.kit`` (given code) imports only ``exercises.kit``; an exercise module imports
  only ``exercises.kit``; ``exercises.checks`` never imports an exercise module by name (it loads the
  learner's file afresh at every check);
* ``solutions`` imports only the given code ``exercises.kit`` (never an exercise module, the checks or
  ``grading``);
* ``grading.sandbox_child`` imports nothing of ``grading`` (the hidden tests live there).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from exercises.kit.catalogue import exercise_modules
from grading import PROJECT_ROOT

PACKAGES = ("exercises", "solutions", "grading")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in sorted((PROJECT_ROOT / package).rglob("*.py"))
            if "__pycache__" not in p.parts}


def _imports(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules ``tree`` imports (``from a import b`` counts as ``a.b`` when that is a module)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import exercises.kit.datasets as d` -> that module
                target = target.rpartition(".")[0]
            if target:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = _imports(tree, name, path.name == "__init__.py", known) - {name}
    return graph


def _notebook_imports() -> dict[str, set[str]]:
    known = set(_modules()) | {"exercises", "solutions", "grading"}
    found = {}
    for path in sorted((PROJECT_ROOT / "course").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join(line for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines()
                         if not line.lstrip().startswith(("%", "!")))
        found[path.name] = _imports(ast.parse(code), "course", False, known) | {
            root for root in ("solutions", "grading") if f"import {root}" in code or f"from {root}" in code}
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_correctly() -> None:
    """A check that the reader itself sees the imports it must judge (else the tests below prove nothing)."""
    graph = _graph()
    assert "exercises.kit.validate" in graph["solutions.layers"]
    assert "exercises.checks.wire" in graph["grading.sandbox"]
    assert "exercises.checks.wire" in graph["grading.sandbox_child"]  # an import inside a function
    assert "grading.nbgrader_course" in graph["grading.nbgrader_plugins"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "modules that import each other (directly or around a loop): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_imports_go_the_way_the_design_says() -> None:
    graph = _graph()
    exercise = {f"exercises.{m}" for m in exercise_modules()}
    wrong = []
    for module, targets in graph.items():
        for target in sorted(targets):
            top = target.split(".")[0]
            if module.startswith("exercises") and top in ("solutions", "grading"):
                wrong.append(f"{module} imports {target}: a learner release holds no {top}/")
            if module.startswith("exercises.kit") and not target.startswith("exercises.kit"):
                wrong.append(f"{module} imports {target}: given code imports only exercises.kit")
            if module in exercise and top == "exercises" and not target.startswith("exercises.kit"):
                wrong.append(f"{module} imports {target}: an exercise module imports only exercises.kit")
            if module.startswith("exercises.checks") and target in exercise:
                wrong.append(f"{module} imports {target}: checks load the learner's module afresh, never import it")
            if module.startswith("solutions") and top != "solutions" and not target.startswith("exercises.kit"):
                wrong.append(f"{module} imports {target}: solutions import only exercises.kit")
            if module == "grading.sandbox_child" and top == "grading":
                wrong.append(f"{module} imports {target}: the sandbox's child must not import the grader")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("notebook", sorted(p.name for p in (PROJECT_ROOT / "course").glob("*.ipynb")))
def test_notebooks_import_only_exercises(notebook: str) -> None:
    imported = _notebook_imports()[notebook]
    assert imported, "no import of exercises found: the reader is broken"
    assert {m.split(".")[0] for m in imported} == {"exercises"}, imported
