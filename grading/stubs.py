"""Learner stubs from the reference solutions: one source of truth, and a drift check.

For every module ``solutions/<name>.py`` that holds ``### BEGIN SOLUTION`` / ``### END SOLUTION``
regions, ``exercises/<name>.py`` is generated: a region inside a function becomes a
``raise NotImplementedError`` naming the exercise and where it is explained (the ``Explained in``
line of the function's docstring); a region at module level is removed. Everything else (imports,
signatures, docstrings, given code) is kept as written.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from exercises.kit.catalogue import STUB_DIGESTS, STUB_MARK, code_digests
from grading import PROJECT_ROOT

LINE_LENGTH = 120  # [tool.ruff] line-length: a longer raise line is wrapped
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
SOLUTIONS_DIR = PROJECT_ROOT / "solutions"
EXERCISES_DIR = PROJECT_ROOT / "exercises"

HEADER = '''\
# Your exercises: replace each `raise NotImplementedError(...)` with your code, save, and run the
# notebook's check cell. Keep the names and signatures: the checks and the grader call them.
# (Course maintainers: this file is generated from solutions/{name} by `python -m grading stubs`;
# edit that file, not this one.)
# ruff: noqa: F401  (imports the reference uses stay, for you to use too)
'''

_EXPLAINED = re.compile(r"Explained in (.+?)\.?\s*$", re.MULTILINE)


class StubError(ValueError):
    """A solution file the generator cannot turn into a stub; the message says where and why."""


@dataclass(frozen=True)
class Region:
    begin: int  # 0-based line index of the BEGIN marker
    end: int  # 0-based line index of the END marker
    function: str | None  # enclosing function, None at module level
    explained_in: str | None


def _regions(source: str, filename: str) -> list[Region]:
    lines = source.splitlines()
    tree = ast.parse(source, filename=filename)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    regions, begin = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith(BEGIN):
            if begin is not None:
                raise StubError(f"{filename}:{i + 1}: '{BEGIN}' inside another solution region "
                                f"(opened on line {begin + 1})")
            begin = i
        elif text.startswith(END):
            if begin is None:
                raise StubError(f"{filename}:{i + 1}: '{END}' without a matching '{BEGIN}'")
            # Markers are comments, outside the AST: a region belongs to the innermost function
            # whose lines include the BEGIN marker.
            enclosing = [f for f in functions if f.lineno <= begin + 1 <= (f.end_lineno or 0)]
            func = max(enclosing, key=lambda f: f.lineno) if enclosing else None
            explained = None
            if func is not None:
                match = _EXPLAINED.search(ast.get_docstring(func) or "")
                if not match:
                    raise StubError(
                        f"{filename}: {func.name}'s docstring needs an 'Explained in <notebook>, section \"...\".' "
                        "line, so that the learner's stub can say where the exercise is explained"
                    )
                explained = " ".join(match.group(1).split())
            regions.append(Region(begin, i, func.name if func else None, explained))
            begin = None
    if begin is not None:
        raise StubError(f"{filename}:{begin + 1}: '{BEGIN}' is never closed by '{END}'")
    return regions


def _literal(text: str) -> str:
    """``text`` as a double-quoted string literal (``repr`` where it holds what that cannot spell)."""
    if text.isprintable() and "\\" not in text:
        return '"' + text.replace('"', '\\"') + '"'
    return repr(text)


def _pieces(text: str, width: int) -> list[str]:
    """``text`` cut into consecutive pieces whose literals fit in ``width`` characters: first after the
    notebook's name (the first ", "), then between words, a piece keeping the space it ends on."""
    head, sep, tail = text.partition(", ")
    chunks = [head + sep, tail] if sep and tail else [text]
    pieces: list[str] = []
    for chunk in chunks:
        current = ""
        for word in re.findall(r"\S+\s*|\s+", chunk):
            if current and len(_literal(current + word)) > width:
                pieces.append(current)
                current = ""
            while len(_literal(word)) > width and len(word) > 1:  # one word longer than a line: cut it
                cut = len(word) - 1
                while cut > 1 and len(_literal(word[:cut])) > width:
                    cut -= 1
                pieces.append(word[:cut])
                word = word[cut:]
            current += word
        if current:
            pieces.append(current)
    return pieces


def _raise_lines(indent: str, message: str) -> list[str]:
    """The stub's ``raise NotImplementedError(message)``: one line, or the message split into implicitly
    concatenated literals on continuation lines when one line would be longer than ``LINE_LENGTH``."""
    line = f"{indent}raise NotImplementedError({message!r})"
    if len(line) <= LINE_LENGTH:
        return [line]
    inner = indent + "    "
    width = LINE_LENGTH - len(inner) - len(")")  # the last piece closes the call
    literals = [_literal(piece) for piece in _pieces(message, width)]
    lines = [f"{indent}raise NotImplementedError("] + [inner + lit for lit in literals]
    lines[-1] += ")"
    value = ast.literal_eval("(" + " ".join(literals) + ")")
    if value != message:  # the generator's own guarantee: the learner's message is unchanged
        raise StubError(f"wrapping changed the message {message!r} into {value!r}")
    return lines


def make_stub(source: str, name: str) -> str:
    """The learner's version of the solution module ``source`` (file name ``name``)."""
    lines = source.splitlines()
    out: list[str] = []
    cursor = 0
    for region in _regions(source, f"solutions/{name}"):
        out.extend(lines[cursor : region.begin])
        if region.function is not None:
            indent = lines[region.begin][: len(lines[region.begin]) - len(lines[region.begin].lstrip())]
            message = f"{region.function} {STUB_MARK}: see {region.explained_in}."
            out.extend(_raise_lines(indent, message))
        cursor = region.end + 1
    out.extend(lines[cursor:])
    return HEADER.format(name=name) + "\n".join(out) + "\n"


def strip_markers(source: str) -> str:
    """The solution module with its marker lines removed: the code CI runs the notebooks with."""
    kept = [ln for ln in source.splitlines() if not ln.strip().startswith((BEGIN, END))]
    return "\n".join(kept) + "\n"


def solution_modules(solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, str]:
    """``{file name: source}`` of every solution module that holds solution regions."""
    found = {}
    for path in sorted(solutions_dir.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        if any(line.strip().startswith(BEGIN) for line in source.splitlines()):
            found[path.name] = source
    return found


def generate(solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, str]:
    """``{file name: stub source}`` for every exercise module."""
    return {name: make_stub(source, name) for name, source in solution_modules(solutions_dir).items()}


def generated_files(solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, str]:
    """Every file the generator writes, by its path inside ``exercises/``: the stubs, and
    ``kit/stub_digests.json``, the digest of each exercise's code as generated (the progress view counts a
    check as an attempt only once that code has changed)."""
    stubs = generate(solutions_dir)
    digests = {name: digest for stub in stubs.values() for name, digest in code_digests(stub).items()}
    return {**stubs, f"kit/{STUB_DIGESTS}": json.dumps(dict(sorted(digests.items())), indent=1) + "\n"}


def drift(exercises_dir: Path = EXERCISES_DIR, solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """Unified diffs between ``exercises/`` and what the generator writes; empty when in sync."""
    diffs = []
    for name, stub in generated_files(solutions_dir).items():
        path = exercises_dir / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != stub:
            diffs.append("".join(difflib.unified_diff(
                current.splitlines(keepends=True), stub.splitlines(keepends=True),
                f"exercises/{name} (in the tree)", f"exercises/{name} (generated)",
            )))
    return diffs


def write(exercises_dir: Path = EXERCISES_DIR, solutions_dir: Path = SOLUTIONS_DIR) -> list[str]:
    """Write every stub whose content changed; return the names written."""
    written = []
    for name, stub in generated_files(solutions_dir).items():
        path = exercises_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != stub:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(stub, encoding="utf-8")
            written.append(name)
    return written
