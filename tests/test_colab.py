"""The Colab set-up cell, run in a simulated Colab: it installs the course once, never touches torch,
and re-running it changes nothing. Every notebook carries the same generated cell and badge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from exercises.kit.colab import REPOSITORY, SETUP_CELL, colab_badge
from grading import PROJECT_ROOT, notebooks
from grading.release import build_release

FAKE_DRIVE = '''
import os
MOUNTS = []
def mount(path, **kwargs):
    os.makedirs(os.path.join(path, "MyDrive"), exist_ok=True)
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(f"mount {path}\\n")
'''
FAKE_GIT = '''#!/bin/sh
# A stand-in for git: records the call and "clones" the course from a local release.
echo "git $*" >> "$FAKE_LOG"
dest=""
for arg in "$@"; do dest="$arg"; done
mkdir -p "$dest" && cp -r "$FAKE_RELEASE"/. "$dest"/
'''
FAKE_PIP = '''
import sys
with open(__import__("os").environ["FAKE_LOG"], "a") as log:
    log.write("pip " + " ".join(sys.argv[1:]) + "\\n")
'''


@pytest.fixture
def colab(tmp_path: Path):
    fake = tmp_path / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "drive.py").write_text(FAKE_DRIVE)
    (fake / "bin").mkdir()
    (fake / "bin" / "git").write_text(FAKE_GIT)
    (fake / "bin" / "git").chmod(0o755)
    (fake / "pip").mkdir()
    (fake / "pip" / "__main__.py").write_text(FAKE_PIP)  # `python -m pip` resolves here first
    (fake / "pip" / "__init__.py").write_text("")
    release = build_release(tmp_path / "release")
    log = tmp_path / "log.txt"
    log.write_text("")
    env = {**os.environ, "PATH": f"{fake / 'bin'}{os.pathsep}{os.environ['PATH']}", "FAKE_LOG": str(log),
           "FAKE_RELEASE": str(release), "COURSE_COLAB_ROOT": str(tmp_path / "content"),
           "PYTHONPATH": str(fake)}
    return env, log, tmp_path / "content"


def _run_twice(env: dict[str, str], missing: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(f"""
        import importlib.util, sys
        import google.colab  # what Colab's kernel has imported
        real_find_spec = importlib.util.find_spec
        # Packages in `missing` look uninstalled to the set-up code.
        importlib.util.find_spec = lambda name, *a: None if name in {missing!r} else real_find_spec(name, *a)
        for attempt in range(2):
            exec(compile({SETUP_CELL!r}, "setup-cell", "exec"))
        print("cwd", __import__("os").getcwd())
        print("paths", sys.path.count(home))
    """)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_setup_cell_installs_once_keeps_torch_and_is_idempotent(colab) -> None:
    env, log, content = colab
    proc = _run_twice(env, missing=("mlxtend",))
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert [c for c in calls if c.startswith("git")] == [
        f"git clone --depth 1 {REPOSITORY} {content / 'drive/MyDrive/deep-practice'}"]  # cloned once, into Drive
    pips = [c for c in calls if c.startswith("pip")]
    assert pips and all("--no-deps" in c and "mlxtend" in c for c in pips)
    assert not any("torch" in c for c in calls)
    assert f"cwd {content / 'drive/MyDrive/deep-practice/course'}" in proc.stdout
    assert "paths 1" in proc.stdout  # re-running does not stack sys.path entries
    assert "no GPU is attached" in proc.stdout and "T4 GPU" in proc.stdout


def test_setup_cell_with_everything_installed_installs_nothing(colab) -> None:
    env, log, _ = colab
    proc = _run_twice(env)
    assert proc.returncode == 0, proc.stderr
    assert not any(c.startswith("pip") for c in log.read_text().splitlines())


def test_setup_cell_does_nothing_outside_colab() -> None:
    namespace: dict = {}
    exec(compile(SETUP_CELL, "setup-cell", "exec"), namespace)
    assert "home" not in namespace


def test_every_notebook_carries_the_badge_and_set_up_cell() -> None:
    assert notebooks.drift() == [], "run `make stubs` (python -m grading notebooks)"
    for path in sorted((PROJECT_ROOT / "course").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        assert "".join(cells[0]["source"]) == colab_badge(path.name)
        assert "".join(cells[1]["source"]) == SETUP_CELL
        assert REPOSITORY.removeprefix("https://github.com/") in colab_badge(path.name)
