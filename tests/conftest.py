"""Shared helpers: the reference source, and submissions built from variants of it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from grading import PROJECT_ROOT
from grading.stubs import strip_markers

REFERENCE_LAYERS = strip_markers((PROJECT_ROOT / "solutions" / "layers.py").read_text(encoding="utf-8"))
STUB_LAYERS = (PROJECT_ROOT / "exercises" / "layers.py").read_text(encoding="utf-8")

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


@pytest.fixture
def reference_layers() -> str:
    return REFERENCE_LAYERS


@pytest.fixture(autouse=True)
def _private_progress_file(tmp_path_factory, monkeypatch):
    """Checks record attempts; tests keep theirs out of the working tree."""
    monkeypatch.setenv("COURSE_PROGRESS_FILE", str(tmp_path_factory.mktemp("progress") / "progress.json"))
