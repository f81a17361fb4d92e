"""Shared helpers: the reference source, and submissions built from variants of it."""

from __future__ import annotations

import re
import sys
import textwrap
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import exercises
from exercises.checks.program import Program, run_program
from grading import PROJECT_ROOT
from grading.stubs import strip_markers

REFERENCE_LAYERS = strip_markers((PROJECT_ROOT / "solutions" / "layers.py").read_text(encoding="utf-8"))
STUB_LAYERS = (PROJECT_ROOT / "exercises" / "layers.py").read_text(encoding="utf-8")

# Where the learner releases built by the tests say their course comes from (an instructor's own repository).
TEST_SOURCE = "https://github.com/example-school/dl-course-release"

FORWARD_LINE = "    out = torch.where(x > 0, x, torch.zeros_like(x))\n"
BACKWARD_LINE = "    return torch.where(x > 0, dout, torch.zeros_like(dout))\n"


def variant(old: str, new: str, source: str = REFERENCE_LAYERS) -> str:
    """The reference with one line changed: a realistic mistake or a correct alternative."""
    assert old in source, f"the reference no longer contains {old!r}; update the test variant"
    return source.replace(old, new, 1)


def write_submission(root: Path, learner: str, layers_source: str, as_zip: bool = False, nested: str = "") -> Path:
    """A learner's submission holding ``exercises/layers.py``, as a folder or a zip."""
    if as_zip:
        path = root / f"{learner}.zip"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr(f"{nested}exercises/__init__.py", "")
            z.writestr(f"{nested}exercises/layers.py", layers_source)
        return path
    package = root / learner / nested / "exercises"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text(layers_source)
    return root / learner


def module_installer(module: str, folder: Path,
                     monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Callable[[Program], dict[str, Any]]]:
    """``put(source)`` makes ``exercises.<module>`` the file ``source`` (written in ``folder``) and returns
    a runner for programs against it. Undo with ``forget_module(module)`` after the test."""
    monkeypatch.setattr(exercises, "__path__", [str(folder), *exercises.__path__])
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    def put(source: str) -> Callable[[Program], dict[str, Any]]:
        (folder / f"{module}.py").write_text(source, encoding="utf-8")
        sys.modules.pop(f"exercises.{module}", None)
        return lambda program: run_program(program.steps, program.fetches, forbidden=program.forbidden)

    return put


def solution_with_body(solution: str, function: str, body: str) -> str:
    """``solution`` (a solutions/ module's source) with the solution region of ``function`` replaced by
    ``body`` (dedented, then indented as a function body), markers stripped: a learner's variant."""
    pattern = re.compile(rf"(def {function}\(.*?)(    ### BEGIN SOLUTION\n.*?    ### END SOLUTION\n)", re.S)
    match = pattern.search(solution)
    assert match, f"no solution region in {function}"
    new = solution[: match.start(2)] + textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", "    ") \
        + solution[match.end(2):]
    return strip_markers(new)


def forget_module(module: str) -> None:
    sys.modules.pop(f"exercises.{module}", None)


def throwaway_packages(filename: str, folder: Path) -> Iterator[Callable[[str], Callable[[Program], dict[str, Any]]]]:
    """For a generator fixture: ``install(source)`` puts ``source`` as ``filename`` in a new package of
    its own under ``folder`` and returns a runner for programs against it; all are removed afterwards."""
    made = []

    def install(source: str) -> Callable[[Program], dict[str, Any]]:
        name = f"variant_{uuid.uuid4().hex[:8]}"
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text("")
        (folder / name / filename).write_text(source)
        made.append(name)
        return lambda program: run_program(program.steps, program.fetches, package=name, forbidden=program.forbidden)

    sys.path.insert(0, str(folder))
    yield install
    sys.path.remove(str(folder))
    for name in made:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


@pytest.fixture
def reference_layers() -> str:
    return REFERENCE_LAYERS


@pytest.fixture(autouse=True)
def _private_progress_file(tmp_path_factory, monkeypatch):
    """Checks record attempts; tests keep theirs out of the working tree."""
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(tmp_path_factory.mktemp("progress") / "progress.json"))
